"""Every example Lambda's handler: at most 10 lines (DESIGN.md), stdlib + boto3 imports only, and
each one run as Lambda would call it (event, context) with its configuration in the environment."""

import ast
import json
import sys
from datetime import datetime, timezone

import boto3
import pytest
from lambda_helpers import LAMBDAS, load_handler

ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"boto3", "botocore"}


def handler_folders():
    return sorted(p.parent for p in LAMBDAS.glob("*/handler.py"))


def test_the_three_lambdas_exist():
    names = {p.name for p in handler_folders()}
    assert {"cloudwatch_metrics", "firehose_to_redshift", "kinesis_reader"} <= names


@pytest.mark.parametrize("folder", handler_folders(), ids=lambda p: p.name)
def test_handler_body_is_at_most_10_lines(folder):
    tree = ast.parse((folder / "handler.py").read_text())
    [fn] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
    body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) else fn.body
    lines = body[-1].end_lineno - body[0].lineno + 1
    assert lines <= 10, f"{folder.name}/handler.py: handler body is {lines} lines; move logic into the core"
    assert [a.arg for a in fn.args.args] == ["event", "context"]


@pytest.mark.parametrize("folder", handler_folders(), ids=lambda p: p.name)
def test_only_stdlib_boto3_and_own_modules_are_imported(folder):
    own = {p.stem for p in folder.glob("*.py")}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED_IMPORTS or top in own, f"{path.name} imports {name}: not in the Lambda runtime"


def run(name, event, monkeypatch, env=None):
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    module = load_handler(name)
    return json.loads(json.dumps(module.handler(event, None)))  # what the runtime would serialise


def test_cloudwatch_handler(aws, monkeypatch):
    now = datetime.now(timezone.utc).isoformat()
    out = run("cloudwatch_metrics", {"records": [{"reading_time": now, "reading_value": 21.5}, {"reading_time": "x"}]},
              monkeypatch, {"METRIC_NAMESPACE": "Demo/Handler", "METRIC_DIMENSIONS": '{"Sensor": "s1"}'})
    assert (out["published"], out["rejected"], out["errors"][0]["index"]) == (1, 1, 1)
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="Demo/Handler")["Metrics"]
    assert [m["Dimensions"] for m in metrics] == [[{"Name": "Sensor", "Value": "s1"}]]


def test_firehose_handler(aws, monkeypatch):
    boto3.client("s3").create_bucket(Bucket="bkt")
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName="h", ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/r",
                                                                      "BucketARN": "arn:aws:s3:::bkt"})
    out = run("firehose_to_redshift", {"records": [{"id": 1}, {"id": 2}]}, monkeypatch, {"DELIVERY_STREAM_NAME": "h"})
    assert out["delivered"] == 2
    [obj] = boto3.client("s3").list_objects_v2(Bucket="bkt")["Contents"]
    assert boto3.client("s3").get_object(Bucket="bkt", Key=obj["Key"])["Body"].read() == b'{"id":1}\n{"id":2}\n'


def test_firehose_handler_without_configuration(aws, monkeypatch):
    monkeypatch.delenv("DELIVERY_STREAM_NAME", raising=False)
    module = load_handler("firehose_to_redshift")
    with pytest.raises(ValueError, match="DELIVERY_STREAM_NAME is not set"):
        module.handler({"id": 1}, None)


def test_kinesis_handler(aws, monkeypatch):
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName="k", ShardCount=1)
    kinesis.put_record(StreamName="k", Data=b'{"t": 20.5}', PartitionKey="p")
    out = run("kinesis_reader", {"StreamName": "k", "Limit": 10}, monkeypatch)
    assert [r["Data"] for r in out["Records"]] == [{"t": 20.5}]
    assert run("kinesis_reader", {"StreamName": "k"}, monkeypatch)["Data"] == {"t": 20.5}
