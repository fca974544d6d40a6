"""The three example Lambdas deployed with ``sqlambda.devkit.deploy`` and invoked on the real local stack:
their handlers run in awslambdaric workers and reach moto's services through AWS_ENDPOINT_URL,
exactly the path real AWS takes. One invocation each; the unit tests cover the cases."""

import json
from datetime import datetime, timezone

import boto3
import pytest

from sqlambda.devkit.deploy import deploy_lambdas

pytestmark = pytest.mark.local_stack


@pytest.fixture(scope="module")
def deployed(local_stack):
    url = local_stack.endpoint_url
    clients = {s: boto3.client(s, endpoint_url=url) for s in ("lambda", "s3", "firehose", "kinesis", "cloudwatch")}
    clients["s3"].create_bucket(Bucket="lambdas-staging")
    import setup_stream  # lambdas/firehose_to_redshift, on sys.path through conftest

    setup_stream.create_delivery_stream(clients["firehose"], "s3", stream_name="sqlambda-rows", role_arn=
                                        "arn:aws:iam::123456789012:role/firehose", bucket="lambdas-staging",
                                        prefix="rows/", exist_ok=True)
    rows = deploy_lambdas(["cloudwatch_metrics", "firehose_to_redshift", "kinesis_reader"], endpoint_url=url)
    assert {r["name"] for r in rows} == {"cloudwatch_metrics", "firehose_to_redshift", "kinesis_reader"}
    return clients


def invoke(clients, name, event):
    resp = clients["lambda"].invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return resp.get("FunctionError"), json.loads(resp["Payload"].read())


def test_cloudwatch_metrics_on_the_stack(deployed):
    now = datetime.now(timezone.utc).isoformat()
    error, out = invoke(deployed, "cloudwatch_metrics",
                        {"records": [{"reading_time": now, "reading_value": 19.5}, {"reading_time": now}]})
    assert error is None and (out["published"], out["rejected"]) == (1, 1)
    metrics = deployed["cloudwatch"].list_metrics(Namespace="Sqlambda/Sensors")["Metrics"]
    assert {"Name": "Sensor", "Value": "demo"} in metrics[0]["Dimensions"]


def test_firehose_to_redshift_on_the_stack(deployed):
    event = {"table": "public.orders", "operation": "delete", "records": [
        {"idempotency_key": "k9", "new": None, "old": {"id": 9, "status": "void"}}]}
    error, out = invoke(deployed, "firehose_to_redshift", event)
    assert error is None and out["delivered"] == 1
    s3 = deployed["s3"]
    bodies = [s3.get_object(Bucket="lambdas-staging", Key=o["Key"])["Body"].read()
              for o in s3.list_objects_v2(Bucket="lambdas-staging", Prefix="rows/")["Contents"]]
    assert b'{"id":9,"status":"void","_op":"delete","_idempotency_key":"k9"}\n' in bodies


def test_kinesis_reader_on_the_stack(deployed):
    kinesis = deployed["kinesis"]
    kinesis.create_stream(StreamName="lambdas-readings", ShardCount=1)
    seqs = [kinesis.put_record(StreamName="lambdas-readings", Data=json.dumps({"n": i}).encode(),
                               PartitionKey="p")["SequenceNumber"] for i in range(3)]
    error, out = invoke(deployed, "kinesis_reader", {"StreamName": "lambdas-readings", "Limit": 2})
    assert error is None and [r["Data"] for r in out["Records"]] == [{"n": 0}, {"n": 1}]
    error, out = invoke(deployed, "kinesis_reader", {"StreamName": "lambdas-readings", "Limit": 2,
                                                     "SequenceNumber": out["SequenceNumber"]})
    assert error is None and [r["SequenceNumber"] for r in out["Records"]] == seqs[2:]
    # without Limit: the original one-record answer
    error, out = invoke(deployed, "kinesis_reader", {"StreamName": "lambdas-readings", "SequenceNumber": seqs[1]})
    assert error is None and out == {"Data": {"n": 2}, "SequenceNumber": seqs[2], "NextShardIterator": out["NextShardIterator"]}
    error, out = invoke(deployed, "kinesis_reader", {"Limit": 2})
    assert error == "Unhandled" and out["errorType"] == "InvalidInput" and "StreamName" in out["errorMessage"]
