"""Record sinks (sqlambda.delivery.records): limits, cutting, per-record partial failures and retries.

The limits and cutting are checked without AWS; partial failures with a scripted client that answers
like the real APIs do (a record-level ErrorCode inside an HTTP 200), because no service fails chosen
records on request; and delivery end to end against the local stack's real Kinesis, SQS FIFO,
Firehose (to S3) and EventBridge, reading back what arrived.
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sqlambda.delivery.records import LIMITS, Record, RecordSink, as_record, cut, deliver, record_size


def rec(i: int, size: int = 100, key: str | None = None) -> Record:
    return Record(json.dumps({"i": i, "pad": "x" * size}), key or f"k{i % 7}", f"id-{i}")


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_cut_respects_count_and_bytes_in_order_and_sets_oversized_aside(kind):
    lim = LIMITS[kind]
    small = [rec(i, 50) for i in range(lim.records * 2 + 3)]
    batches, aside = cut(kind, small)
    assert not aside and [r for b in batches for r in b] == small
    assert all(len(b) <= lim.records for b in batches) and len(batches) == 3
    near = lim.record_bytes - 300  # records of nearly the per-record limit: the request bytes cut first
    big = [rec(i, near) for i in range(12)]
    batches, aside = cut(kind, big)
    assert not aside and [r for b in batches for r in b] == big
    assert all(sum(record_size(kind, r) for r in b) <= lim.request_bytes for b in batches)
    over = rec(99, lim.record_bytes + 10)
    batches, aside = cut(kind, [small[0], over, small[1]])
    assert [r for b in batches for r in b] == [small[0], small[1]]
    assert aside[0][0] is over and f"at most {lim.record_bytes:,}" in aside[0][1]


def test_a_kinesis_key_over_256_characters_is_set_aside():
    _, aside = cut("kinesis", [rec(1, key="k" * 257)])
    assert "partition key is 257 characters" in aside[0][1]


class ScriptedKinesis:
    """Answers put_records like Kinesis: per-record ErrorCode for the records named in ``fail``
    (record id -> codes, one per attempt), or raises what ``raise_first`` says on the first call."""

    def __init__(self, fail: dict[str, list[str]], raise_first: Exception | None = None) -> None:
        self.fail, self.raise_first, self.calls = {k: list(v) for k, v in fail.items()}, raise_first, []

    def put_records(self, StreamName, Records):  # noqa: N803 - boto3's names
        self.calls.append([json.loads(r["Data"])["i"] for r in Records])
        if self.raise_first is not None:
            exc, self.raise_first = self.raise_first, None
            raise exc
        out = []
        for r in Records:
            i = f"id-{json.loads(r['Data'])['i']}"
            codes = self.fail.get(i)
            code = codes.pop(0) if codes else None
            out.append({"ErrorCode": code, "ErrorMessage": "scripted"} if code else {"SequenceNumber": "1", "ShardId": "s"})
        return {"FailedRecordCount": sum(1 for o in out if "ErrorCode" in o), "Records": out}


def test_partial_failures_are_retried_record_by_record():
    client = ScriptedKinesis({"id-3": ["ProvisionedThroughputExceededException"],
                              "id-5": ["InternalFailure", "InternalFailure"],
                              "id-7": ["ValidationException"]})
    d = deliver(RecordSink("kinesis", "s", client), [rec(i) for i in range(10)], sleep=lambda s: None)
    assert client.calls == [list(range(10)), [3, 5], [5]]  # only the failed ones, never the batch again
    assert d.failed == [7] and d.outcome[7].kind == "permanent" and "ValidationException" in d.outcome[7].text
    assert d.requests == 3


@pytest.mark.parametrize("exc, retried", [
    (ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                  "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutRecords"), True),
    (ClientError({"Error": {"Code": "InternalFailure", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutRecords"), True),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True),
    (ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no stream"},
                  "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutRecords"), False),
])
def test_a_failed_request_fails_its_records_alike(exc, retried):
    client = ScriptedKinesis({}, raise_first=exc)
    d = deliver(RecordSink("kinesis", "s", client), [rec(i) for i in range(4)], sleep=lambda s: None)
    assert (d.failed == []) is retried and len(client.calls) == (2 if retried else 1)
    if not retried:
        assert all(f.kind == "permanent" and "ResourceNotFoundException" in f.text for f in d.outcome)


def test_attempts_run_out_with_the_last_reason():
    client = ScriptedKinesis({"id-0": ["ProvisionedThroughputExceededException"] * 10})
    d = deliver(RecordSink("kinesis", "s", client), [rec(0)], max_attempts=3, sleep=lambda s: None)
    assert d.failed == [0] and d.outcome[0].kind == "transient" and len(client.calls) == 3


def test_a_change_event_keys_by_table_and_key_columns():
    a = as_record({"table": "public.orders", "operation": "update", "new": {"id": 7, "s": "x"}, "old": {"id": 7}}, ["id"], "t:1:2.3")
    b = as_record({"table": "public.orders", "operation": "delete", "new": None, "old": {"id": 7}}, ["id"], "t:1:2.4")
    assert a.key == b.key == '["public.orders",7]' and a.id == "t:1:2.3" and a.detail_type == "public.orders update"


# -- the real services, on the local stack ----------------------------------------------------------


def _client(stack, service):
    return boto3.client(service, endpoint_url=stack.endpoint_url, region_name="us-east-1")


@pytest.mark.local_stack
def test_kinesis_gets_every_record_in_order_per_key(local_stack):
    kinesis = _client(local_stack, "kinesis")
    stream = f"rs-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    records = [rec(i, 2000) for i in range(1200)]
    d = deliver(RecordSink("kinesis", stream, kinesis), records)
    assert d.failed == [] and d.requests == 3  # 500 + 500 + 200: the count cuts first at 2 KB a record
    got = []
    for shard in kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            out = kinesis.get_records(ShardIterator=it, Limit=1000)
            got += [(r["PartitionKey"], json.loads(r["Data"])["i"]) for r in out["Records"]]
            it = out.get("NextShardIterator") if out["Records"] else None
    assert sorted(i for _, i in got) == list(range(1200))
    for key in {k for k, _ in got}:
        mine = [i for k, i in got if k == key]
        assert mine == sorted(mine)


@pytest.mark.local_stack
def test_sqs_fifo_groups_by_key_and_deduplicates_on_the_idempotency_key(local_stack):
    sqs = _client(local_stack, "sqs")
    url = sqs.create_queue(QueueName=f"rs-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sink = RecordSink("sqs", url, sqs)
    records = [rec(i, 100) for i in range(25)]
    assert deliver(sink, records).requests == 3  # 10 + 10 + 5
    assert deliver(sink, records[:10]).failed == []  # a redelivery: same de-duplication ids
    bodies = []
    while True:
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"])
        if not out.get("Messages"):
            break
        for m in out["Messages"]:
            bodies.append((m["Attributes"]["MessageGroupId"], json.loads(m["Body"])["i"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(i for _, i in bodies) == list(range(25))  # each once
    assert all(g == f"k{i % 7}" for g, i in bodies)


@pytest.mark.local_stack
def test_firehose_delivers_one_json_line_per_record_to_s3(local_stack):
    s3, firehose = _client(local_stack, "s3"), _client(local_stack, "firehose")
    bucket, name = f"rs-{uuid.uuid4().hex[:8]}", f"rs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    role = "arn:aws:iam::000000000000:role/firehose"
    firehose.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                                    ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}",
                                                                        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}})
    records = [rec(i, 300) for i in range(700)]
    assert deliver(RecordSink("firehose", name, firehose), records).failed == []
    lines = []
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        lines += s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode().splitlines()
    assert sorted(json.loads(line)["i"] for line in lines) == list(range(700))


@pytest.mark.local_stack
def test_eventbridge_takes_ten_entries_a_request(local_stack):
    events = _client(local_stack, "events")
    bus = f"rs-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    d = deliver(RecordSink("eventbridge", bus, events), [rec(i, 100) for i in range(23)])
    assert d.failed == [] and d.requests == 3
