"""Record sinks (sqlambda.delivery.records): limits, cutting, per-record partial failures and retries.

The limits and cutting are checked without AWS; partial failures with a scripted client that answers
like the real APIs do (a record-level ErrorCode inside an HTTP 200), because no service fails chosen
records on request; and delivery end to end against the local stack's real Kinesis, SQS FIFO,
Firehose (to S3) and EventBridge, reading back what arrived.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sqlambda.delivery.records import (
    LIMITS,
    Record,
    RecordSink,
    as_record,
    cut,
    cut_positions,
    deliver,
    partition_key,
    record_size,
    sqs_id,
)


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


def test_keys_and_ids_a_service_would_refuse_are_replaced_by_their_digest():
    long_key = "k" * 300
    assert partition_key(long_key) == partition_key(long_key) != long_key and len(partition_key(long_key)) == 64
    assert partition_key("short") == "short"
    for bad in ('["public.orders","2024-01-01 00:00:00"]', "x" * 129, "John Smith", ""):
        assert re.fullmatch(r"[!-~]{1,128}", sqs_id(bad)) and sqs_id(bad) == sqs_id(bad)
    assert sqs_id("orders_out:81234:17.3") == "orders_out:81234:17.3"
    # two long ids that share their first 128 characters stay two ids (never cut short)
    assert sqs_id("a" * 128 + "1") != sqs_id("a" * 128 + "2")


def test_the_firehose_newline_counts_and_eventbridge_takes_objects_only():
    exact = Record("x" * LIMITS["firehose"].record_bytes, "k", "1")
    assert cut("firehose", [exact])[1][0][1].startswith("the record is 1,024,001 bytes")
    _, aside = cut("eventbridge", [Record("[1, 2]", "k", "1"), Record('{"a": 1}', "k", "2")])
    assert [why for _, why in aside] == ["an EventBridge event's detail must be a JSON object"]


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
    # only the failed ones are sent again, never the batch; record 7 repeats record 0's key, so it
    # goes in the next request, after the failed records of the first one were retried
    assert client.calls == [list(range(7)), [3, 5], [5], [7, 8, 9]]
    assert d.failed == [7] and d.outcome[7].kind == "permanent" and "ValidationException" in d.outcome[7].text
    assert d.requests == 4


def test_no_record_is_sent_while_an_earlier_record_of_its_key_is_unconfirmed():
    """The exact order guarantee: on an ordered sink a key's next record goes out only after its
    previous one was accepted (or refused for good); when a record is still failing after its
    attempts, nothing after it is sent at all (it waits for the outbox's backoff)."""
    client = ScriptedKinesis({"id-0": ["ProvisionedThroughputExceededException"]})
    records = [rec(i, key="same") for i in range(3)] + [rec(3, key="other")]
    d = deliver(RecordSink("kinesis", "s", client), records, sleep=lambda s: None)
    assert client.calls == [[0], [0], [1], [2, 3]] and d.failed == []
    stuck = ScriptedKinesis({"id-1": ["ProvisionedThroughputExceededException"] * 5})
    d = deliver(RecordSink("kinesis", "s", stuck), [rec(i, key=f"k{i % 2}") for i in range(6)], max_attempts=2,
                sleep=lambda s: None)
    assert stuck.calls == [[0, 1], [1]]  # records 2..5 were never sent
    assert d.outcome[0] is None and all(f is not None and f.kind == "transient" for f in d.outcome[1:])
    # Firehose and EventBridge promise no order: their requests are cut by count and bytes only
    assert len(cut("firehose", [rec(i, key="same") for i in range(5)])[0]) == 1


@pytest.mark.parametrize("exc, retried", [
    (ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                  "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutRecords"), True),
    (ClientError({"Error": {"Code": "InternalFailure", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutRecords"), True),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True),
    # an operator's problem (a stream not created yet, credentials expired or denied): retried, never buried
    (ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no stream"},
                  "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutRecords"), True),
    (ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "expired"},
                  "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutRecords"), True),
])
def test_a_failed_request_fails_its_records_alike(exc, retried):
    client = ScriptedKinesis({}, raise_first=exc)
    d = deliver(RecordSink("kinesis", "s", client), [rec(i) for i in range(4)], sleep=lambda s: None)
    assert (d.failed == []) is retried and len(client.calls) == (2 if retried else 1)


def test_attempts_run_out_with_the_last_reason():
    client = ScriptedKinesis({"id-0": ["ProvisionedThroughputExceededException"] * 10})
    d = deliver(RecordSink("kinesis", "s", client), [rec(0)], max_attempts=3, sleep=lambda s: None)
    assert d.failed == [0] and d.outcome[0].kind == "transient" and len(client.calls) == 3


def test_the_same_record_twice_is_two_places_with_their_own_outcome():
    r, q = rec(1), rec(2)
    client = ScriptedKinesis({"id-1": ["InternalFailure", "ValidationException"]})
    d = deliver(RecordSink("kinesis", "s", client), [r, q, r], sleep=lambda s: None)
    # the first r: InternalFailure, then ValidationException on its retry; the second r: accepted
    assert d.outcome[1] is None and {d.outcome[0] is None, d.outcome[2] is None} == {True, False}
    assert [f.kind for f in d.outcome if f is not None] == ["permanent"]


def test_a_request_the_client_refuses_to_send_is_permanent_and_attempts_must_be_positive():
    from botocore.exceptions import ParamValidationError

    client = ScriptedKinesis({}, raise_first=ParamValidationError(report="PartitionKey too short"))
    d = deliver(RecordSink("kinesis", "s", client), [rec(1)], sleep=lambda s: None)
    assert d.outcome[0].kind == "permanent" and len(client.calls) == 1
    with pytest.raises(ValueError):
        deliver(RecordSink("kinesis", "s", client), [rec(1)], max_attempts=0)


class ScriptedSqs:
    def __init__(self) -> None:
        self.calls = []

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's names
        self.calls.append(Entries)
        if len(self.calls) == 1:  # the first request: entry 1 throttled, entry 2 refused for good
            return {"Successful": [{"Id": "0"}], "Failed": [
                {"Id": "1", "Code": "InternalError", "SenderFault": False, "Message": "try again"},
                {"Id": "2", "Code": "InvalidMessageContents", "SenderFault": True, "Message": "bad"}]}
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_sqs_failed_entries_are_read_by_id_and_sender_fault():
    client = ScriptedSqs()
    records = [Record('{"i": %d}' % i, f"John Smith {i}", f"id {i}") for i in range(3)]
    d = deliver(RecordSink("sqs", "https://q/x.fifo", client), records, sleep=lambda s: None)
    assert d.outcome[0] is None and d.outcome[1] is None and d.outcome[2].kind == "permanent"
    assert [e["MessageBody"] for e in client.calls[1]] == ['{"i": 1}']
    first = client.calls[0][0]
    assert re.fullmatch(r"[!-~]{1,128}", first["MessageGroupId"]) and re.fullmatch(r"[!-~]{1,128}", first["MessageDeduplicationId"])


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
    records = [rec(i, 2000, key=f"k{i % 600}") for i in range(1200)]
    d = deliver(RecordSink("kinesis", stream, kinesis), records)
    # 500 + 500 + 200: the count cuts first at 2 KB a record; no request holds a key twice (record
    # 600 has record 0's key, and goes in the second request)
    assert d.failed == [] and d.requests == 3
    got = []
    for shard in kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            out = kinesis.get_records(ShardIterator=it, Limit=1000)
            got += [(r["PartitionKey"], json.loads(r["Data"])["i"]) for r in out["Records"]]
            it = out.get("NextShardIterator") if out["Records"] else None
    assert sorted(i for _, i in got) == list(range(1200))
    assert len(cut_positions("kinesis", records[:700], distinct_keys=True)[0]) == 2
    assert len(cut_positions("kinesis", [rec(i, 10, key=f"k{i % 100}") for i in range(300)], distinct_keys=True)[0]) == 3
    for key in {k for k, _ in got}:
        mine = [i for k, i in got if k == key]
        assert mine == sorted(mine)


@pytest.mark.local_stack
def test_sqs_fifo_groups_by_key_and_deduplicates_on_the_idempotency_key(local_stack):
    sqs = _client(local_stack, "sqs")
    url = sqs.create_queue(QueueName=f"rs-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sink = RecordSink("sqs", url, sqs)
    records = [rec(i, 100) for i in range(25)]
    # a row keyed by a timestamp: its key holds a space, which a FIFO group id may not (its own queue)
    other = sqs.create_queue(QueueName=f"rs-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    stamped = as_record({"table": "public.t", "operation": "insert", "new": {"at": datetime(2024, 1, 1)}}, ["at"], "t:1:1.1")
    assert " " in stamped.key and deliver(RecordSink("sqs", other, sqs), [stamped]).failed == []
    (got,) = sqs.receive_message(QueueUrl=other, MaxNumberOfMessages=10)["Messages"]
    assert got["Body"] == stamped.data
    assert deliver(sink, records).requests == 4  # 7 + 7 + 7 + 4: seven keys, never one twice in a request
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
