"""Each example Lambda ships the least-privilege execution policy it needs (lambdas/<name>/policy.json).

The policy must allow exactly the AWS API calls the Lambda's code makes (found in its source, so a
new call without a policy change fails here), nothing broader, and only its own log group.
"""

from __future__ import annotations

import json
import re

import pytest

from sqlambda import resources
from sqlambda.devkit.deploy import available

# boto3 method -> IAM action, for the services the example Lambdas use
ACTIONS = {
    ("cloudwatch", "put_metric_data"): "cloudwatch:PutMetricData",
    ("firehose", "put_record_batch"): "firehose:PutRecordBatch",
    ("kinesis", "list_shards"): "kinesis:ListShards",
    ("kinesis", "get_shard_iterator"): "kinesis:GetShardIterator",
    ("kinesis", "get_records"): "kinesis:GetRecords",
    ("s3", "get_object"): "s3:GetObject",
    ("s3", "put_object"): "s3:PutObject",
    ("s3", "delete_object"): "s3:DeleteObject",
}
#: what Lambda's event source mapping needs of the function's role to read a stream for it (AWS's
#: AWSLambdaKinesisExecutionRole, without the account-wide ListStreams and the enhanced fan-out
#: SubscribeToShard): the code makes none of these calls itself
ESM_KINESIS = {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
               "kinesis:GetShardIterator", "kinesis:ListShards"}
LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
CALL = re.compile(r"\b(cloudwatch|firehose|kinesis|s3|client)\.([a-z_]+)\b")


def _calls(name: str) -> set[str]:
    out = set()
    for path in (resources.folder("lambdas") / name).glob("*.py"):
        for service, method in CALL.findall(path.read_text()):
            for (svc, m), action in ACTIONS.items():
                if m == method and (service == svc or service == "client"):
                    out.add(action)
    return out


def _policy(name: str) -> dict:
    return json.loads((resources.folder("lambdas") / name / "policy.json").read_text())


@pytest.mark.parametrize("name", available())
def test_policy_allows_exactly_the_calls_the_code_makes(name):
    doc = _policy(name)
    allowed = set()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        assert all("*" not in a for a in actions), f"{name}: wildcard action in {st}"
        if st.get("Sid") == "EventSourceKinesis":
            assert set(actions) == ESM_KINESIS and st["Resource"].endswith(":stream/${STREAM_NAME}")
            continue
        allowed.update(actions)
    assert allowed - LOG_ACTIONS == _calls(name)
    assert LOG_ACTIONS <= allowed  # it can write its own logs


@pytest.mark.parametrize("name", available())
def test_resources_are_scoped(name):
    for st in _policy(name)["Statement"]:
        if st["Resource"] == "*":
            # only PutMetricData has no resource ARN; then a namespace condition scopes it
            assert st["Action"] == "cloudwatch:PutMetricData"
            assert st["Condition"]["StringEquals"]["cloudwatch:namespace"]
        elif "logs:CreateLogStream" in st["Action"]:
            assert st["Resource"].endswith(":log-group:/aws/lambda/${FunctionName}:*")


def test_placeholders_are_the_documented_ones():
    known = {"Partition", "Region", "AccountId", "FunctionName", "METRIC_NAMESPACE", "DELIVERY_STREAM_NAME",
             "STREAM_NAME_PATTERN", "STREAM_NAME", "VIEW_BUCKET", "VIEW_PREFIX"}
    for name in available():
        text = (resources.folder("lambdas") / name / "policy.json").read_text()
        assert set(re.findall(r"\$\{([A-Za-z_]+)\}", text)) <= known
