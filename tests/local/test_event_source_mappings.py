"""Event source mappings of `sqlambda local`: Kinesis and SQS really invoke a consumer Lambda.

The consumer is a real handler run by the stack's workers. It writes every batch it processed to
S3 (through AWS_ENDPOINT_URL, as a deployed consumer would) with what it reported as failed; a
record's JSON asks it to misbehave: ``poison`` (always raise), ``fail_once`` (raise the first time
it sees that tag) or ``report_once`` (report that record in batchItemFailures the first time).
A failed invocation records nothing, so what S3 holds is exactly what was processed.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

pytestmark = pytest.mark.local_stack

CONSUMER = '''
import base64, json, os, time, uuid
import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3")
BUCKET = os.environ["BUCKET"]


def _payload(record):
    if "kinesis" in record:
        return json.loads(base64.b64decode(record["kinesis"]["data"]))
    return json.loads(record["body"])


def _ident(record):
    return record["kinesis"]["sequenceNumber"] if "kinesis" in record else record["messageId"]


def _first_time(tag):
    try:
        s3.head_object(Bucket=BUCKET, Key="markers/" + tag)
        return False
    except ClientError:
        s3.put_object(Bucket=BUCKET, Key="markers/" + tag, Body=b"")
        return True


def handler(event, context):
    records = event.get("Records", [])
    payloads = [_payload(r) for r in records]
    if any(p.get("poison") for p in payloads):
        raise ValueError("poison record")
    for p in payloads:
        if p.get("fail_once") and _first_time(p["fail_once"]):
            raise RuntimeError("failing once for " + p["fail_once"])
    failures = [_ident(r) for r, p in zip(records, payloads) if p.get("report_once") and _first_time(p["report_once"])]
    if records:
        key = "batches/%020d-%s" % (time.time_ns(), uuid.uuid4().hex)
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"event": event, "failures": failures}))
    return {"batchItemFailures": [{"itemIdentifier": f} for f in failures]}
'''


@pytest.fixture
def s3(local_stack):
    return local_stack.client("s3")


@pytest.fixture
def lam(local_stack):
    return local_stack.client("lambda")


@pytest.fixture
def consumer(local_stack, s3, lam, request):
    """A consumer function of its own and its bucket; its mappings are deleted after the test."""
    name = f"esm-{request.node.name[5:30].replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    bucket = f"esm-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    local_stack.deploy_source(name, CONSUMER, environment={"BUCKET": bucket}, timeout=30)
    local_stack.invoke(name, {"Records": []})  # warm: a cold start must not outlast a visibility timeout
    yield Consumer(name, bucket, s3)
    for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=m["UUID"])


class Consumer:
    def __init__(self, name: str, bucket: str, s3) -> None:
        self.name, self.bucket, self.s3 = name, bucket, s3

    def batches(self) -> list[dict]:
        """Every batch processed so far, in the order it was processed."""
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="batches/"):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return [json.loads(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read()) for k in sorted(keys)]

    def wait(self, count: int, timeout: float = 20) -> list[dict]:
        """The batches once they hold at least ``count`` records (fails at the deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            batches = self.batches()
            n = sum(len(b["event"]["Records"]) for b in batches)
            if n >= count:
                return batches
            assert time.monotonic() < deadline, f"only {n} of {count} records processed in {timeout}s"
            time.sleep(0.2)


def _payload(record: dict) -> dict:
    if "kinesis" in record:
        return json.loads(base64.b64decode(record["kinesis"]["data"]))
    return json.loads(record["body"])


def _stream(local_stack, shards: int) -> tuple[str, str]:
    kin = local_stack.client("kinesis")
    name = f"esm-{uuid.uuid4().hex[:10]}"
    kin.create_stream(StreamName=name, ShardCount=shards)
    return name, kin.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]


def _put(local_stack, stream: str, payloads: list[dict], key) -> list[str]:
    """PutRecords in requests of 500; the sequence numbers, in the order of ``payloads``."""
    kin = local_stack.client("kinesis")
    seqs = []
    for i in range(0, len(payloads), 500):
        chunk = payloads[i:i + 500]
        out = kin.put_records(StreamName=stream, Records=[{"Data": json.dumps(p).encode(), "PartitionKey": key(p)}
                                                          for p in chunk])
        assert out["FailedRecordCount"] == 0
        seqs += [r["SequenceNumber"] for r in out["Records"]]
    return seqs


def _queue(local_stack, fifo: bool = False, visibility: int = 3) -> tuple[str, str]:
    sqs = local_stack.client("sqs")
    name = f"esm-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
    attrs = {"VisibilityTimeout": str(visibility)}
    if fifo:
        attrs.update(FifoQueue="true", ContentBasedDeduplication="true")
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _wait_empty(local_stack, url: str, timeout: float = 10) -> None:
    sqs = local_stack.client("sqs")
    deadline = time.monotonic() + timeout
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        left = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} message(s) still in the queue after {timeout}s"
        time.sleep(0.2)


# -- Kinesis ------------------------------------------------------------------------------------
def test_kinesis_every_record_arrives_in_order_per_key_with_aws_event_shape(local_stack, lam, faults, consumer):
    stream, arn = _stream(local_stack, shards=2)
    keys = [f"key-{k}" for k in range(5)]
    payloads = [{"k": keys[i % 5], "n": i // 5} for i in range(1000)]
    _put(local_stack, stream, payloads, key=lambda p: p["k"])
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=100)
    batches = consumer.wait(1000)
    records = [r for b in batches for r in b["event"]["Records"]]
    assert len(records) == 1000, "no record may arrive twice when nothing failed"
    for k in keys:
        assert [_payload(r)["n"] for r in records if r["kinesis"]["partitionKey"] == k] == list(range(200))
    shards = set()
    for b in batches:
        recs = b["event"]["Records"]
        assert 1 <= len(recs) <= 100
        shard_ids = {r["eventID"].split(":")[0] for r in recs}
        assert len(shard_ids) == 1, "a batch holds records of one shard"
        shards |= shard_ids
        seqs = [int(r["kinesis"]["sequenceNumber"]) for r in recs]
        assert seqs == sorted(seqs)
    assert shards == {"shardId-000000000000", "shardId-000000000001"}
    first = records[0]
    assert first["eventSource"] == "aws:kinesis" and first["eventName"] == "aws:kinesis:record"
    assert first["eventVersion"] == "1.0" and first["awsRegion"] == local_stack.region
    assert first["eventSourceARN"] == arn
    assert first["invokeIdentityArn"].startswith("arn:aws:iam::") and ":role/" in first["invokeIdentityArn"]
    assert first["eventID"] == first["eventID"].split(":")[0] + ":" + first["kinesis"]["sequenceNumber"]
    assert first["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert isinstance(first["kinesis"]["approximateArrivalTimestamp"], float)
    assert abs(first["kinesis"]["approximateArrivalTimestamp"] - time.time()) < 120
    # invoked through the stack's Invoke path: counted like any Invoke
    assert local_stack.faults.stats(consumer.name)["invocations"] == len(batches) + 1  # + the warm-up


def test_kinesis_latest_starts_after_the_mapping_was_created(local_stack, lam, consumer):
    stream, arn = _stream(local_stack, shards=1)
    _put(local_stack, stream, [{"n": -1}], key=lambda p: "k")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="LATEST")
    _put(local_stack, stream, [{"n": i} for i in range(10)], key=lambda p: "k")
    batches = consumer.wait(10)
    time.sleep(0.5)  # nothing more may come
    assert [_payload(r)["n"] for b in consumer.batches() for r in b["event"]["Records"]] == list(range(10))
    assert len(batches) >= 1


def test_kinesis_at_timestamp_and_batching_window(local_stack, lam, consumer):
    stream, arn = _stream(local_stack, shards=1)
    _put(local_stack, stream, [{"n": -i} for i in range(1, 4)], key=lambda p: "k")
    time.sleep(0.05)
    stamp = time.time()
    time.sleep(0.05)
    _put(local_stack, stream, [{"n": i} for i in range(5)], key=lambda p: "k")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="AT_TIMESTAMP",
                                    StartingPositionTimestamp=stamp, BatchSize=100, MaximumBatchingWindowInSeconds=2)
    time.sleep(0.6)  # read by now, and held for the batching window
    assert consumer.batches() == []
    _put(local_stack, stream, [{"n": i} for i in range(5, 10)], key=lambda p: "k")
    batches = consumer.wait(10)
    assert [[_payload(r)["n"] for r in b["event"]["Records"]] for b in batches] == [list(range(10))]


def test_kinesis_resharding_loses_nothing_and_keeps_key_order(local_stack, lam, consumer):
    stream, arn = _stream(local_stack, shards=1)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=10)
    _put(local_stack, stream, [{"k": f"k{i % 3}", "n": i} for i in range(15)], key=lambda p: p["k"])
    consumer.wait(15)
    kin = local_stack.client("kinesis")
    kin.update_shard_count(StreamName=stream, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert len([s for s in kin.list_shards(StreamName=stream)["Shards"]
                if "EndingSequenceNumber" not in s["SequenceNumberRange"]]) == 2
    _put(local_stack, stream, [{"k": f"k{i % 3}", "n": i} for i in range(15, 30)], key=lambda p: p["k"])
    batches = consumer.wait(30)
    got = [_payload(r) for b in batches for r in b["event"]["Records"]]
    assert sorted(p["n"] for p in got) == list(range(30)), "every record exactly once"
    for k in ("k0", "k1", "k2"):
        ns = [p["n"] for p in got if p["k"] == k]
        assert ns == sorted(ns)


def test_kinesis_function_error_and_throttling_are_retried_in_order(local_stack, lam, faults, consumer):
    stream, arn = _stream(local_stack, shards=1)
    payloads = [{"n": i} for i in range(30)]
    payloads[12]["fail_once"] = uuid.uuid4().hex
    _put(local_stack, stream, payloads, key=lambda p: "k")
    faults.throttle(consumer.name, 2)  # the first two Invokes fail before the handler: retried, no retry spent
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=10, MaximumRetryAttempts=1)
    batches = consumer.wait(30)
    assert [_payload(r)["n"] for b in batches for r in b["event"]["Records"]] == list(range(30))
    stats = faults.stats(consumer.name)
    assert stats["throttled"] == 2
    assert stats["invocations"] == 1 + len(batches) + 1  # warm-up, the batches, the failed one


def test_kinesis_bisect_isolates_a_poison_record_and_reports_it_on_failure(local_stack, lam, consumer):
    stream, arn = _stream(local_stack, shards=1)
    payloads = [{"n": i} for i in range(40)]
    payloads[25]["poison"] = True
    seqs = _put(local_stack, stream, payloads, key=lambda p: "k")
    dlq_url, dlq_arn = _queue(local_stack)
    lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="TRIM_HORIZON", BatchSize=40,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
    batches = consumer.wait(39)
    got = [_payload(r)["n"] for b in batches for r in b["event"]["Records"]]
    assert got == [n for n in range(40) if n != 25], "every other record exactly once, in order"
    sqs = local_stack.client("sqs")
    deadline = time.monotonic() + 10
    messages: list = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "the skipped record was not reported to the OnFailure destination"
    doc = json.loads(messages[0]["Body"])
    info = doc["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"] == seqs[25]
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == arn
    assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert doc["requestContext"]["functionArn"].endswith(":function:" + consumer.name)
    assert doc["responseContext"]["functionError"] == "Unhandled"


def test_kinesis_report_batch_item_failures_checkpoints_before_the_failed_record(local_stack, lam, consumer):
    stream, arn = _stream(local_stack, shards=1)
    payloads = [{"n": i} for i in range(20)]
    payloads[7]["report_once"] = uuid.uuid4().hex
    seqs = _put(local_stack, stream, payloads, key=lambda p: "k")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=20, FunctionResponseTypes=["ReportBatchItemFailures"])
    batches = consumer.wait(20 + 13)
    first, second = batches[0], batches[1]
    assert [_payload(r)["n"] for r in first["event"]["Records"]] == list(range(20))
    assert first["failures"] == [seqs[7]]
    assert [_payload(r)["n"] for r in second["event"]["Records"]] == list(range(7, 20))
    assert second["failures"] == []
    time.sleep(0.5)
    assert len(consumer.batches()) == 2, "once reported records succeeded nothing is retried"


# -- SQS ----------------------------------------------------------------------------------------
def test_sqs_standard_delivers_deletes_and_redelivers_what_failed(local_stack, lam, consumer):
    sqs = local_stack.client("sqs")
    url, arn = _queue(local_stack, visibility=4)
    bodies = [{"n": i} for i in range(30)]
    bodies[5]["report_once"] = uuid.uuid4().hex
    bodies[17]["fail_once"] = uuid.uuid4().hex
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    for i in range(0, 30, 10):  # sent to a mapped queue: moto itself must not react
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": json.dumps(b),
             "MessageAttributes": {"origin": {"DataType": "String", "StringValue": "test"}}}
            for j, b in enumerate(bodies[i:i + 10])])
    consumer.wait(31)
    _wait_empty(local_stack, url)  # what succeeded was deleted
    records = [r for b in consumer.batches() for r in b["event"]["Records"]]
    seen: dict[int, list[dict]] = {}
    for r in records:
        seen.setdefault(_payload(r)["n"], []).append(r)
    assert sorted(seen) == list(range(30)), "every message was processed"
    assert len(seen[5]) == 2, "the reported message came back"
    assert seen[5][1]["attributes"]["ApproximateReceiveCount"] == "2"
    assert all(len(v) == 1 for n, v in seen.items() if n != 5), "what succeeded was deleted, not redelivered"
    assert seen[17][0]["attributes"]["ApproximateReceiveCount"] == "2", "the failed batch was redelivered"
    # received once by the poller alone (moto's own Docker-based reaction to a mapping is off)
    assert sum(v[0]["attributes"]["ApproximateReceiveCount"] == "1" for v in seen.values()) >= 30 - 10 - 1
    r = seen[0][0]
    assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == arn and r["awsRegion"] == local_stack.region
    assert set(r["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert r["messageAttributes"] == {"origin": {"stringValue": "test", "stringListValues": [], "binaryListValues": [],
                                                 "dataType": "String"}}
    assert r["md5OfBody"] and r["receiptHandle"] and r["messageId"]


def test_sqs_fifo_keeps_each_group_in_order_through_a_failure(local_stack, lam, consumer):
    sqs = local_stack.client("sqs")
    url, arn = _queue(local_stack, fifo=True, visibility=3)
    groups = ["g0", "g1", "g2"]
    bodies = [{"g": g, "n": n} for n in range(8) for g in groups]  # interleaved: batches mix the groups
    bodies[3 * 4 + 1]["fail_once"] = uuid.uuid4().hex  # g1's fifth message
    for i in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": json.dumps(b), "MessageGroupId": b["g"],
                                                       "MessageDeduplicationId": f"{b['g']}-{b['n']}"}
                                                      for j, b in enumerate(bodies[i:i + 10])])
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=consumer.name, BatchSize=10)
    batches = consumer.wait(len(bodies))
    _wait_empty(local_stack, url)
    records = [r for b in batches for r in b["event"]["Records"]]
    for g in groups:
        assert [_payload(r)["n"] for r in records if _payload(r)["g"] == g] == list(range(8)), f"group {g} out of order"
    failed = next(r for r in records if _payload(r).get("fail_once"))
    assert failed["attributes"]["ApproximateReceiveCount"] == "2"
    assert {"MessageGroupId", "SequenceNumber", "MessageDeduplicationId"} <= set(records[0]["attributes"])
