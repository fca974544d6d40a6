"""kinesis_reader core against moto's Kinesis: order, resuming after a sequence number or with the
returned iterator (nothing skipped or repeated), Limit, data decoding, shard choice, the empty-poll
time budget and input errors. The batch answer (a request with Limit) here; the original one-record
answer of the awslabs sample in tests/compat/test_original_samples.py."""

import json
from datetime import datetime

import boto3
import kinesis_core as kc
import pytest


def make_stream(name="readings", shards=1):
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis


def put(kinesis, items, stream="readings"):
    """Put each item (bytes, or JSON-serialised) one by one; return the sequence numbers."""
    seqs = []
    for i, item in enumerate(items):
        data = item if isinstance(item, bytes) else json.dumps(item).encode()
        seqs.append(kinesis.put_record(StreamName=stream, Data=data, PartitionKey=f"pk-{i}")["SequenceNumber"])
    return seqs


def test_reads_in_order_from_trim_horizon(aws):
    kinesis = make_stream()
    seqs = put(kinesis, [{"n": i} for i in range(30)])
    out = kc.read({"StreamName": "readings", "Limit": 100}, kinesis)
    assert [r["Data"] for r in out["Records"]] == [{"n": i} for i in range(30)]
    assert [r["SequenceNumber"] for r in out["Records"]] == seqs
    assert [r["PartitionKey"] for r in out["Records"]] == [f"pk-{i}" for i in range(30)]
    assert out["SequenceNumber"] == seqs[-1] and out["Count"] == 30
    assert out["ShardId"] == "shardId-000000000000"
    assert out["NextShardIterator"] and out["MillisBehindLatest"] is not None
    ts = datetime.fromisoformat(out["Records"][0]["ApproximateArrivalTimestamp"])
    assert ts.utcoffset().total_seconds() == 0
    json.dumps(out)  # the answer must be JSON as it is


def test_resume_after_sequence_number_skips_and_repeats_nothing(aws):
    kinesis = make_stream()
    seqs = put(kinesis, [{"n": i} for i in range(25)])
    seen, last = [], None
    for expected in (10, 10, 5):
        out = kc.read({"StreamName": "readings", "Limit": 10, "SequenceNumber": last, "Timeout": 0}, kinesis)
        assert out["Count"] == expected
        seen += [r["SequenceNumber"] for r in out["Records"]]
        last = out["SequenceNumber"]
    assert seen == seqs
    out = kc.read({"StreamName": "readings", "Limit": 10, "SequenceNumber": last, "Timeout": 0}, kinesis)
    assert out["Records"] == [] and out["SequenceNumber"] == last  # nothing new: same resume point
    more = put(kinesis, [{"n": 25}])
    out = kc.read({"StreamName": "readings", "Limit": 10, "SequenceNumber": last, "TimeoutMs": 0}, kinesis)
    assert [r["SequenceNumber"] for r in out["Records"]] == more


def test_resume_with_next_shard_iterator(aws):
    kinesis = make_stream()
    seqs = put(kinesis, [{"n": i} for i in range(12)])
    first = kc.read({"StreamName": "readings", "Limit": 5}, kinesis)
    second = kc.read({"StreamName": "readings", "Limit": 5, "NextShardIterator": first["NextShardIterator"],
                      "SequenceNumber": seqs[0]}, kinesis)  # the iterator wins over a sequence number
    third = kc.read({"StreamName": "readings", "Limit": 100, "NextShardIterator": second["NextShardIterator"]}, kinesis)
    got = [r["SequenceNumber"] for out in (first, second, third) for r in out["Records"]]
    assert got == seqs


def test_limit_asks_for_a_batch_and_its_absence_for_one_record(aws):
    kinesis = make_stream()
    put(kinesis, [{"n": i} for i in range(130)])
    out = kc.read({"StreamName": "readings", "Limit": 100}, kinesis)
    assert out["Count"] == 100
    rest = kc.read({"StreamName": "readings", "SequenceNumber": out["SequenceNumber"], "Limit": 1000}, kinesis)
    assert [r["Data"]["n"] for r in rest["Records"]] == list(range(100, 130))
    one = kc.read({"StreamName": "readings"}, kinesis)
    assert set(one) == {"Data", "SequenceNumber", "NextShardIterator"} and one["Data"] == {"n": 0}


def test_data_decoding(aws):
    kinesis = make_stream()
    raw = [b'{"a": [1, 2]}', b"42", b'"quoted"', b"hello world", "Zoë".encode(), b"\xff\xfe\x00binary", b"NaN", b""]
    put(kinesis, raw[:-1])
    out = kc.read({"StreamName": "readings", "Limit": 100}, kinesis)
    got = [(r["DataFormat"], r["Data"]) for r in out["Records"]]
    assert got == [("json", {"a": [1, 2]}), ("json", 42), ("json", "quoted"), ("text", "hello world"),
                   ("text", "Zoë"), ("base64", "//4AYmluYXJ5"), ("text", "NaN")]
    assert kc.decode_data(b"") == ("text", "")


def test_explicit_shard(aws):
    kinesis = make_stream(shards=2)
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName="readings")["Shards"]]
    # Explicit hash keys place records on a known shard: the low half of the key space is shard 0.
    for i in range(6):
        kinesis.put_record(StreamName="readings", Data=json.dumps({"n": i}).encode(), PartitionKey="k",
                           ExplicitHashKey="0" if i % 2 == 0 else str(2**127 + 1))
    first = kc.read({"StreamName": "readings", "Limit": 100}, kinesis)
    second = kc.read({"StreamName": "readings", "Limit": 100, "ShardId": shards[1]}, kinesis)
    assert first["ShardId"] == shards[0] and [r["Data"]["n"] for r in first["Records"]] == [0, 2, 4]
    assert second["ShardId"] == shards[1] and [r["Data"]["n"] for r in second["Records"]] == [1, 3, 5]


class FakeTime:
    """Time for the empty-poll loop without waiting: sleep advances the clock."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_empty_results_are_polled_until_timeout(aws):
    kinesis = make_stream()
    calls = []
    kinesis.meta.events.register("before-parameter-build.kinesis.GetRecords", lambda params, **kw: calls.append(1))
    t = FakeTime()
    out = kc.read({"StreamName": "readings", "Limit": 100, "TimeoutMs": 1000}, kinesis, sleep=t.sleep, clock=t.clock)
    assert out["Records"] == [] and out["NextShardIterator"]
    assert t.sleeps == [pytest.approx(0.2)] * 5 and len(calls) == 6  # one call, then one per 200 ms
    calls.clear()
    out = kc.read({"StreamName": "readings", "Limit": 100, "Timeout": 0}, kinesis, sleep=t.sleep, clock=t.clock)
    assert len(calls) == 1
    calls.clear()  # Timeout is in seconds, as the original took it: 1 s is five more polls
    t.sleeps.clear()
    kc.read({"StreamName": "readings", "Limit": 100, "Timeout": "1"}, kinesis, sleep=t.sleep, clock=t.clock)
    assert t.sleeps == [pytest.approx(0.2)] * 5 and len(calls) == 6


def test_polling_stops_when_records_arrive(aws):
    kinesis = make_stream()
    t = FakeTime()

    def sleep(seconds):  # a producer writes while the reader waits
        t.sleep(seconds)
        if len(t.sleeps) == 2:
            put(kinesis, [{"late": True}])

    out = kc.read({"StreamName": "readings", "Limit": 100, "Timeout": 5}, kinesis, sleep=sleep, clock=t.clock)
    assert [r["Data"] for r in out["Records"]] == [{"late": True}] and len(t.sleeps) == 2


@pytest.mark.parametrize("event, word", [
    ({}, "StreamName"), ("[1]", "JSON object"), (7, "JSON object"),
    ({"StreamName": "s", "Limit": 0}, "Limit"), ({"StreamName": "s", "Limit": 10001}, "Limit"),
    ({"StreamName": "s", "Limit": "5"}, "Limit"), ({"StreamName": "s", "Timeout": -1}, "Timeout"),
    ({"StreamName": "s", "Timeout": "soon"}, "Timeout"), ({"StreamName": "s", "Timeout": 901}, "Timeout"),
    ({"StreamName": "s", "Timeout": 1, "TimeoutMs": 5}, "not both"), ({"StreamName": "s", "TimeoutMs": 1.5}, "TimeoutMs"),
    ({"StreamName": ""}, "StreamName"),
    ({"StreamName": "s", "SequenceNumber": "abc"}, "SequenceNumber"), ({"StreamName": "s", "ShardId": 3}, "ShardId"),
])
def test_bad_input_is_named(event, word):
    with pytest.raises(kc.InvalidInput, match=word):
        kc.read(event, None)


def test_unknown_stream_and_bad_sequence_number(aws):
    kinesis = make_stream()
    with pytest.raises(kc.ReadFailed, match="ResourceNotFoundException"):
        kc.read({"StreamName": "nope"}, kinesis)
    with pytest.raises(kc.ReadFailed, match="GetShardIterator on stream 'readings'"):
        kc.read({"StreamName": "readings", "ShardId": "shardId-000000000009"}, kinesis)
