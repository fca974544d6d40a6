"""A test suite written the LocalStack way, run against `sqlambda local --localstack`.

Nothing here knows about sqlambda: clients come from the `localstack-client` package
(`localstack_client.session`), which talks to localhost:4566 (or $AWS_ENDPOINT_URL) with its own
fixed credentials; account 000000000000; a role ARN that was never created; a handler that finds
the endpoint through LOCALSTACK_HOSTNAME and EDGE_PORT; the health check LocalStack users poll.
Before: health was 404, the account 123456789012, a never-created role was refused ("cannot be
assumed"), MOTO_ACCOUNT_ID=000000000000 broke Invoke, handlers had no LocalStack variables.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest

from sqlambda.local import LocalStack

pytestmark = pytest.mark.local_stack

ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # never created, as in LocalStack examples

HANDLER = '''
import json, os
import boto3

def handler(event, context):
    endpoint = "http://%s:%s" % (os.environ["LOCALSTACK_HOSTNAME"], os.environ["EDGE_PORT"])
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.put_object(Bucket=event["bucket"], Key="from-lambda.json", Body=json.dumps(event).encode())
    return {"ok": True, "endpoint": endpoint}
'''


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", source)
    return buf.getvalue()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def localstack(tmp_path_factory):
    """The stack the LocalStack way: on 4566 when that port is free (what localstack-client
    assumes), else anywhere with AWS_ENDPOINT_URL set, which localstack-client honours too."""
    saved = os.environ.get("AWS_ENDPOINT_URL")
    stack = LocalStack(port=None if _free(4566) else 0, localstack=True).start()
    if stack.endpoint_url.endswith(":4566"):
        os.environ.pop("AWS_ENDPOINT_URL", None)
    else:
        os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
    try:
        yield stack
    finally:
        stack.stop()
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


@pytest.fixture
def ls(localstack):
    import localstack_client.session as boto3

    return boto3


def test_health(localstack):
    base = os.environ.get("AWS_ENDPOINT_URL") or "http://localhost:4566"
    with urllib.request.urlopen(f"{base}/_localstack/health", timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["services"]["lambda"] in ("available", "running") and "edition" in doc and "version" in doc


def test_lambda_with_a_role_never_created_and_localstack_variables(ls):
    s3 = ls.client("s3")
    s3.create_bucket(Bucket="ls-bucket")
    lam = ls.client("lambda")
    fn = lam.create_function(FunctionName="ls-fn", Runtime="python3.11", Role=ROLE, Handler="index.handler",
                             Code={"ZipFile": _zip(HANDLER)}, Timeout=30)
    assert fn["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:ls-fn"
    out = lam.invoke(FunctionName="ls-fn", Payload=json.dumps({"bucket": "ls-bucket"}).encode())
    assert "FunctionError" not in out, out["Payload"].read()
    result = json.loads(out["Payload"].read())
    assert result["ok"] is True and result["endpoint"].startswith("http://127.0.0.1:")
    body = s3.get_object(Bucket="ls-bucket", Key="from-lambda.json")["Body"].read()
    assert json.loads(body) == {"bucket": "ls-bucket"}
    # partial ARN and full ARN name the same function, as in Lambda
    for name in ("000000000000:function:ls-fn", fn["FunctionArn"]):
        assert json.loads(lam.invoke(FunctionName=name, Payload=b'{"bucket": "ls-bucket"}')["Payload"].read())["ok"]


def test_s3_kinesis_cloudwatch(ls):
    s3 = ls.client("s3")
    s3.create_bucket(Bucket="ls-data")
    s3.put_object(Bucket="ls-data", Key="a.txt", Body=b"hello")
    assert s3.get_object(Bucket="ls-data", Key="a.txt")["Body"].read() == b"hello"

    kinesis = ls.client("kinesis")
    kinesis.create_stream(StreamName="ls-stream", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="ls-stream", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    kinesis.put_record(StreamName="ls-stream", Data=b'{"temp": 21}', PartitionKey="k")
    shard = kinesis.list_shards(StreamName="ls-stream")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="ls-stream", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=it)["Records"]] == [{"temp": 21}]

    cw = ls.client("cloudwatch")
    cw.put_metric_data(Namespace="LS/Test", MetricData=[{"MetricName": "m", "Value": 3.0}])
    names = [m["MetricName"] for m in cw.list_metrics(Namespace="LS/Test")["Metrics"]]
    assert names == ["m"]


def test_firehose_to_s3(ls):
    ls.client("s3").create_bucket(Bucket="ls-fh")
    fh = ls.client("firehose")
    fh.create_delivery_stream(DeliveryStreamName="ls-fh-stream", DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::000000000000:role/fh",
                                                                  "BucketARN": "arn:aws:s3:::ls-fh", "Prefix": "out/"})
    fh.put_record(DeliveryStreamName="ls-fh-stream", Record={"Data": b'{"a": 1}\n'})
    deadline = time.monotonic() + 20
    keys: list = []
    while not keys and time.monotonic() < deadline:
        keys = [o["Key"] for o in ls.client("s3").list_objects_v2(Bucket="ls-fh", Prefix="out/").get("Contents", [])]
        time.sleep(0.2)
    assert keys
    assert ls.client("s3").get_object(Bucket="ls-fh", Key=keys[0])["Body"].read() == b'{"a": 1}\n'


def test_moto_account_id_set_by_the_user_keeps_invoke_working(monkeypatch):
    # the environment LocalStack users often carry: MOTO_ACCOUNT_ID=000000000000, default mode
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    saved = os.environ.get("MOTO_ACCOUNT_ID")
    os.environ["MOTO_ACCOUNT_ID"] = "000000000000"
    try:
        with LocalStack() as stack:
            from sqlambda.devkit.deploy import deploy_source

            arn = deploy_source("acct-fn", "def handler(e, c):\n    return {'ok': 1}\n", endpoint_url=stack.endpoint_url)
            assert ":000000000000:" in arn
            out = stack.client("lambda").invoke(FunctionName="acct-fn", Payload=b"{}")
            assert json.loads(out["Payload"].read()) == {"ok": 1}
    finally:
        if saved is None:
            os.environ.pop("MOTO_ACCOUNT_ID", None)
        else:
            os.environ["MOTO_ACCOUNT_ID"] = saved


def test_awslocal(localstack, tmp_path):
    awslocal = shutil.which("awslocal", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if awslocal is None or shutil.which("aws") is None:
        pytest.skip("awslocal needs the AWS CLI (`aws`) on PATH, which this machine lacks")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    res = subprocess.run([awslocal, "s3", "mb", "s3://ls-awslocal"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([awslocal, "s3api", "list-buckets"], capture_output=True, text=True, env=env, timeout=60)
    assert "ls-awslocal" in res.stdout
