"""Service-level faults of `sqlambda local`: data-plane calls fail the way Kinesis, Firehose, SQS and
EventBridge fail, checked with plain boto3 clients and by reading back what was really stored."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlencode

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.local_stack

#: one attempt: these tests look at single answers, botocore must not retry throttling or 5xx
ONCE = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def kinesis(local_stack):
    return local_stack.client("kinesis", config=ONCE)


@pytest.fixture
def sqs(local_stack):
    return local_stack.client("sqs", config=ONCE)


def _name() -> str:
    return f"sf-{uuid.uuid4().hex[:12]}"


def _stream(kinesis) -> str:
    name = _name()
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return name


def _stored_records(kinesis, stream: str) -> list[bytes]:
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]]


def _drain(sqs, url: str, expected: int, timeout: float = 10) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        out += page
        if not page and len(out) >= expected:
            break
        if not page:
            time.sleep(0.1)
    return out


def test_kinesis_partial_stores_only_the_records_it_reports_stored(local_stack, kinesis, faults):
    stream = _stream(kinesis)
    faults.partial("Kinesis.PutRecords", 0.3, count=1, seed=3)
    records = [{"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(20)]
    out = kinesis.put_records(StreamName=stream, Records=records)
    failed = [i for i, r in enumerate(out["Records"]) if "ErrorCode" in r]
    assert out["FailedRecordCount"] == len(failed) == 6
    for i in failed:
        assert out["Records"][i]["ErrorCode"] == "ProvisionedThroughputExceededException"
        assert out["Records"][i]["ErrorMessage"].startswith(f"Rate exceeded for shard shardId-000000000000 in stream {stream}")
        assert "SequenceNumber" not in out["Records"][i]
    ok = [i for i in range(20) if i not in failed]
    assert all(out["Records"][i]["SequenceNumber"] and out["Records"][i]["ShardId"] for i in ok)
    assert _stored_records(kinesis, stream) == [records[i]["Data"] for i in ok]
    stats = faults.service_stats("Kinesis.PutRecords")
    assert (stats["requests"], stats["faults"], stats["records_failed"]) == (1, 1, 6)
    # the rule was for one request: the next one stores everything (the failed ones retried)
    again = kinesis.put_records(StreamName=stream, Records=[records[i] for i in failed])
    assert again["FailedRecordCount"] == 0
    assert sorted(_stored_records(kinesis, stream)) == sorted(r["Data"] for r in records)
    assert faults.service_stats("Kinesis.PutRecords")["requests"] == 2


def test_sqs_partial_fails_entries_in_the_failed_list_and_sends_the_others(sqs, faults):
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    faults.partial("SQS.SendMessageBatch", 0.5, count=1, seed=1)
    entries = [{"Id": f"e{i}", "MessageBody": f"body-{i}"} for i in range(10)]
    out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(out["Failed"]) == 5 and len(out["Successful"]) == 5
    assert {f["Id"] for f in out["Failed"]} | {s["Id"] for s in out["Successful"]} == {e["Id"] for e in entries}
    for f in out["Failed"]:
        assert f["Code"] == "InternalError" and f["SenderFault"] is False and f["Message"]
    sent = {s["Id"] for s in out["Successful"]}
    got = _drain(sqs, url, 5)
    assert sorted(m["Body"] for m in got) == sorted(e["MessageBody"] for e in entries if e["Id"] in sent)
    assert faults.service_stats("SQS.SendMessageBatch")["records_failed"] == 5


def test_sqs_partial_in_the_query_protocol(local_stack, sqs, faults):
    # older SDKs send SQS requests as forms and read XML: the same rule applies
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    faults.partial("SQS.SendMessageBatch", 0.5, count=1, seed=2)
    form = {"Action": "SendMessageBatch", "Version": "2012-11-05", "QueueUrl": url}
    for i in range(4):
        form[f"SendMessageBatchRequestEntry.{i + 1}.Id"] = f"q{i}"
        form[f"SendMessageBatchRequestEntry.{i + 1}.MessageBody"] = f"query-{i}"
    req = urllib.request.Request(local_stack.endpoint_url + "/", data=urlencode(form).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20240101/{local_stack.region}/sqs/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        xml = resp.read().decode()
    assert xml.count("<BatchResultErrorEntry>") == 2 and xml.count("<SendMessageBatchResultEntry>") == 2
    assert xml.count("<Code>InternalError</Code>") == 2
    assert len(_drain(sqs, url, 2)) == 2


def test_firehose_partial_delivers_only_the_records_it_reports_stored(local_stack, faults):
    s3 = local_stack.client("s3")
    firehose = local_stack.client("firehose", config=ONCE)
    bucket, stream = _name(), _name()
    s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(DeliveryStreamName=stream, ExtendedS3DestinationConfiguration={
        "RoleARN": f"arn:aws:iam::123456789012:role/{stream}", "BucketARN": f"arn:aws:s3:::{bucket}"})
    faults.partial("Firehose.PutRecordBatch", 0.4, count=1, seed=5)
    records = [{"Data": f"f{i};".encode()} for i in range(10)]
    out = firehose.put_record_batch(DeliveryStreamName=stream, Records=records)
    failed = [i for i, r in enumerate(out["RequestResponses"]) if "ErrorCode" in r]
    assert out["FailedPutCount"] == len(failed) == 4
    assert all(out["RequestResponses"][i]["ErrorCode"] == "ServiceUnavailableException" for i in failed)
    assert all(out["RequestResponses"][i]["RecordId"] for i in range(10) if i not in failed)
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    stored = b"".join(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objects)
    assert stored == b"".join(records[i]["Data"] for i in range(10) if i not in failed)


def test_eventbridge_partial_delivers_only_the_entries_it_reports_accepted(local_stack, sqs, faults):
    events = local_stack.client("events", config=ONCE)
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = f"sqlambda.test.{uuid.uuid4().hex[:8]}"
    rule = _name()
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    faults.partial("EventBridge.PutEvents", 0.5, count=1, seed=7)
    entries = [{"Source": source, "DetailType": "test", "Detail": json.dumps({"i": i})} for i in range(6)]
    out = events.put_events(Entries=entries)
    failed = [i for i, e in enumerate(out["Entries"]) if "ErrorCode" in e]
    assert out["FailedEntryCount"] == len(failed) == 3
    assert all(out["Entries"][i]["ErrorCode"] == "ThrottlingException" for i in failed)
    assert all(out["Entries"][i]["EventId"] for i in range(6) if i not in failed)
    got = _drain(sqs, url, 3)
    assert sorted(json.loads(m["Body"])["detail"]["i"] for m in got) == [i for i in range(6) if i not in failed]


def test_every_record_of_a_batch_can_fail(kinesis, faults):
    stream = _stream(kinesis)
    faults.partial("Kinesis.PutRecords", 1.0, count=1)
    out = kinesis.put_records(StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"}] * 3)
    assert out["FailedRecordCount"] == 3
    assert _stored_records(kinesis, stream) == []


@pytest.mark.parametrize("action, status, code", [
    ("Kinesis.PutRecords", 400, "ProvisionedThroughputExceededException"),
    ("Firehose.PutRecordBatch", 500, "ServiceUnavailableException"),
    ("SQS.SendMessageBatch", 400, "RequestThrottled"),
    ("EventBridge.PutEvents", 400, "ThrottlingException"),
])
def test_throttle_and_server_error_fail_the_whole_request_as_the_service_does(local_stack, faults, action, status, code):
    calls = {
        "Kinesis": lambda c: c.put_records(StreamName="any", Records=[{"Data": b"x", "PartitionKey": "k"}]),
        "Firehose": lambda c: c.put_record_batch(DeliveryStreamName="any", Records=[{"Data": b"x"}]),
        "SQS": lambda c: c.send_message_batch(QueueUrl=f"{local_stack.endpoint_url}/123456789012/any",
                                              Entries=[{"Id": "a", "MessageBody": "b"}]),
        "EventBridge": lambda c: c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
    }
    service = action.split(".")[0]
    client = local_stack.client({"Kinesis": "kinesis", "Firehose": "firehose", "SQS": "sqs", "EventBridge": "events"}[service],
                                config=ONCE)
    faults.throttle_service(action)
    with pytest.raises(ClientError) as exc:
        calls[service](client)
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    faults.server_error_service(action, status=503)
    with pytest.raises(ClientError) as exc:
        calls[service](client)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    stats = faults.service_stats(action)
    assert (stats["throttled"], stats["server_errors"], stats["faults"], stats["rules"]) == (1, 1, 2, [])


def test_clear_removes_service_rules_too(kinesis, faults):
    stream = _stream(kinesis)
    faults.throttle_service("Kinesis.PutRecords", count=None)
    faults.throttle("some-function", count=None)
    with pytest.raises(ClientError):
        kinesis.put_records(StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"}])
    faults.clear()
    assert kinesis.put_records(StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"}])["FailedRecordCount"] == 0
    assert faults.service_stats("Kinesis.PutRecords") == {"requests": 1, "faults": 0, "records_failed": 0, "throttled": 0,
                                                          "server_errors": 0, "rules": []}
    assert faults.stats("some-function")["rules"] == []


@pytest.mark.parametrize("body", [
    {"action": "Kinesis.GetRecords", "kind": "partial", "fraction": 0.5},  # partial needs a batch action
    {"action": "Nope.PutRecords", "kind": "throttle"},
    {"action": "Kinesis.PutRecords", "kind": "partial", "fraction": 1.5},
    {"action": "Kinesis.PutRecords", "kind": "server_error", "status": 429},
])
def test_the_admin_api_refuses_rules_that_cannot_apply(local_stack, faults, body):
    req = urllib.request.Request(local_stack.endpoint_url + "/_sqlambda/faults", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 400
