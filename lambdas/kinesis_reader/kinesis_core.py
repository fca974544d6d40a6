"""Read one batch of records from a Kinesis shard: the pure core behind ``handler.handler``.

Owns the request contract (StreamName; optional ShardId, SequenceNumber, NextShardIterator, Limit,
Timeout), choosing the shard iterator, looping GetRecords while it returns nothing within the
time budget, and decoding each record's data (JSON, else UTF-8 text, else base64). It is handed a
boto3 Kinesis client (and, for tests, the sleep and clock functions) and never creates one; stdlib
only, because the Lambda zip carries no third-party packages. It reads; it never writes a stream.

Where reading starts, first match wins: NextShardIterator (as returned by the previous call; it
expires after five minutes), then SequenceNumber (AFTER_SEQUENCE_NUMBER: resumes with nothing
skipped or repeated, and never expires while the data is retained), else TRIM_HORIZON.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timezone

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000  # GetRecords' own maximum
DEFAULT_TIMEOUT_MS = 1000
# Kinesis allows 5 GetRecords calls per second per shard; polling faster only earns throttling.
POLL_INTERVAL_S = 0.2


class InvalidInput(ValueError):
    """The request is missing a field or has one of the wrong kind."""


class ReadFailed(RuntimeError):
    """Kinesis refused a call (unknown stream or shard, expired iterator, bad sequence number...)."""


def _request(event) -> dict:
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidInput("the event is a string that is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidInput("the event must be a JSON object with at least StreamName")
    req = dict(event)
    if not isinstance(req.get("StreamName"), str) or not req["StreamName"]:
        raise InvalidInput("StreamName is required (the Kinesis stream to read)")
    for key in ("ShardId", "NextShardIterator"):
        if req.get(key) is not None and (not isinstance(req[key], str) or not req[key]):
            raise InvalidInput(f"{key} must be a non-empty string")
    seq = req.get("SequenceNumber")
    if seq is not None:
        if isinstance(seq, int) and not isinstance(seq, bool):
            seq = str(seq)  # a caller may have sent the number itself; Kinesis wants the digits
        if not isinstance(seq, str) or not seq.isdigit():
            raise InvalidInput(f"SequenceNumber must be a string of digits, not {json.dumps(seq)}")
        req["SequenceNumber"] = seq
    for key, default, low, high in (("Limit", DEFAULT_LIMIT, 1, MAX_LIMIT), ("Timeout", DEFAULT_TIMEOUT_MS, 0, 900_000)):
        value = req.get(key)
        if value is None:
            req[key] = default
        elif isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"{key} must be an integer from {low} to {high}, not {json.dumps(value)}")
    return req


def decode_data(data: bytes) -> tuple[str, object]:
    """("json", value) when the bytes are JSON, else ("text", str) when UTF-8, else ("base64", str)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64", base64.b64encode(data).decode("ascii")
    try:
        # NaN/Infinity are not JSON; keeping them as text keeps the answer valid JSON.
        return "json", json.loads(text, parse_constant=_refuse)
    except ValueError:
        return "text", text


def _refuse(name: str):
    raise ValueError(name)


def _iso(ts) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat()


def _call(what: str, stream: str, fn, **kwargs) -> dict:
    try:
        return fn(**kwargs)
    except Exception as exc:  # ClientError / BotoCoreError: say which call on which stream
        err = (getattr(exc, "response", None) or {}).get("Error", {})
        code = err.get("Code") or type(exc).__name__
        hint = " (iterators expire after 5 minutes; resume with SequenceNumber)" if code == "ExpiredIteratorException" else ""
        raise ReadFailed(f"{what} on stream {stream!r} failed: {code}: {err.get('Message') or exc}{hint}") from exc


def start_iterator(kinesis, req: dict) -> tuple[str, str | None]:
    """The shard iterator to read from, and the shard it belongs to (None if only an iterator was given)."""
    stream = req["StreamName"]
    if req.get("NextShardIterator"):
        return req["NextShardIterator"], req.get("ShardId")
    shard = req.get("ShardId")
    if shard is None:
        shards = _call("ListShards", stream, kinesis.list_shards, StreamName=stream, MaxResults=1).get("Shards") or []
        if not shards:
            raise ReadFailed(f"stream {stream!r} has no shards")
        shard = shards[0]["ShardId"]
    args = {"StreamName": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}
    if req.get("SequenceNumber"):
        args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=req["SequenceNumber"])
    return _call("GetShardIterator", stream, kinesis.get_shard_iterator, **args)["ShardIterator"], shard


def read(event, kinesis, sleep=time.sleep, clock=time.monotonic) -> dict:
    """One batch of at most Limit records, oldest first, with what is needed to resume.

    Empty answers with a live iterator are retried until Timeout ms have passed (Kinesis may
    answer empty several times before reaching data, e.g. after a trimmed prefix). The top-level
    SequenceNumber is the last record's, or the one given when nothing new was read, so passing it
    back always resumes at the right place.
    """
    req = _request(event)
    stream = req["StreamName"]
    iterator, shard = start_iterator(kinesis, req)
    deadline = clock() + req["Timeout"] / 1000.0
    while True:
        resp = _call("GetRecords", stream, kinesis.get_records, ShardIterator=iterator, Limit=req["Limit"])
        raw, iterator = resp.get("Records") or [], resp.get("NextShardIterator")
        remaining = deadline - clock()
        if raw or iterator is None or remaining <= 0:
            break
        sleep(min(POLL_INTERVAL_S, remaining))
    records = []
    for r in raw:
        fmt, data = decode_data(r["Data"])
        records.append({"SequenceNumber": r["SequenceNumber"], "PartitionKey": r.get("PartitionKey"),
                        "ApproximateArrivalTimestamp": _iso(r.get("ApproximateArrivalTimestamp")),
                        "DataFormat": fmt, "Data": data})
    return {"StreamName": stream, "ShardId": shard, "Records": records, "Count": len(records),
            "SequenceNumber": records[-1]["SequenceNumber"] if records else req.get("SequenceNumber"),
            "NextShardIterator": iterator, "MillisBehindLatest": resp.get("MillisBehindLatest")}
