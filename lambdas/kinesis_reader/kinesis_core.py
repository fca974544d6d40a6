"""Read records from a Kinesis shard: the pure core behind ``handler.handler``.

Owns the request contract, choosing the shard iterator, looping GetRecords while it returns nothing
within the time budget, and decoding each record's data (JSON, else UTF-8 text, else base64). It is
handed a boto3 Kinesis client (and, for tests, the sleep and clock functions) and never creates one;
stdlib only, because the Lambda zip carries no third-party packages. It reads; it never writes.

Two answers, one request contract:

- **The original** (the awslabs ``lambdaReadKinesisStream`` that the classic ``processSensorReadings``
  SQL and the blog call): without ``Limit``, one record per call, answered as
  ``{"Data": <the record>, "SequenceNumber": "...", "NextShardIterator": "..."}``, and
  ``{"Data": "", "SequenceNumber": "", "NextShardIterator": "..."}`` when nothing arrived in time.
- **A batch** for callers that ask for one with ``Limit`` (what ``kinesis_read()`` sends): up to
  Limit records under ``Records``, with what is needed to resume.

Request keys: StreamName (required); ShardId, SequenceNumber, NextShardIterator (a JSON null or ``""``
means "not given", as the original treated them); Timeout in **seconds** (a number or a numeric
string, as the original took it; default 3 for the original answer, 1 for a batch) or TimeoutMs in
milliseconds; Limit (1-10000).

Where reading starts, first match wins: NextShardIterator (as returned by the previous call; it
expires after five minutes), then SequenceNumber (AFTER_SEQUENCE_NUMBER: resumes with nothing
skipped or repeated, and never expires while the data is retained), else TRIM_HORIZON.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timezone

MAX_LIMIT = 10_000  # GetRecords' own maximum
DEFAULT_TIMEOUT_MS = 1000  # a batch
ORIGINAL_TIMEOUT_MS = 3000  # the original answer: its Timeout default, 3 seconds
MAX_TIMEOUT_MS = 900_000  # Lambda's own longest run
# Kinesis allows 5 GetRecords calls per second per shard; polling faster only earns throttling.
POLL_INTERVAL_S = 0.2


class InvalidInput(ValueError):
    """The request is missing a field or has one of the wrong kind."""


class ReadFailed(RuntimeError):
    """Kinesis refused a call (unknown stream or shard, expired iterator, bad sequence number...)."""


def _given(value) -> bool:
    """The original's rule: a JSON null or an empty string means the key was not given."""
    return value is not None and value != ""


def _timeout_ms(req: dict, default: int) -> int:
    seconds, millis = req.get("Timeout"), req.get("TimeoutMs")
    if _given(seconds) and _given(millis):
        raise InvalidInput("give Timeout (seconds) or TimeoutMs (milliseconds), not both")
    if _given(millis):
        if isinstance(millis, bool) or not isinstance(millis, int) or not 0 <= millis <= MAX_TIMEOUT_MS:
            raise InvalidInput(f"TimeoutMs must be an integer from 0 to {MAX_TIMEOUT_MS}, not {json.dumps(millis)}")
        return millis
    if not _given(seconds):
        return default
    value = seconds
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"Timeout is in seconds: a number or a numeric string, not {json.dumps(seconds)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_TIMEOUT_MS / 1000:
        raise InvalidInput(f"Timeout must be from 0 to {MAX_TIMEOUT_MS // 1000} seconds, not {json.dumps(seconds)}")
    return int(round(value * 1000))


def _request(event) -> dict:
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidInput("the event is a string that is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidInput("the event must be a JSON object with at least StreamName")
    req = {k: v for k, v in event.items() if _given(v)}
    if not isinstance(req.get("StreamName"), str):
        raise InvalidInput("StreamName is required (the Kinesis stream to read)")
    for key in ("ShardId", "NextShardIterator"):
        if key in req and not isinstance(req[key], str):
            raise InvalidInput(f"{key} must be a string")
    seq = req.get("SequenceNumber")
    if seq is not None:
        if isinstance(seq, int) and not isinstance(seq, bool):
            seq = str(seq)  # a caller may have sent the number itself; Kinesis wants the digits
        if not isinstance(seq, str) or not seq.isdigit():
            raise InvalidInput(f"SequenceNumber must be a string of digits, not {json.dumps(seq)}")
        req["SequenceNumber"] = seq
    limit = req.get("Limit")
    req["batch"] = limit is not None
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT):
        raise InvalidInput(f"Limit must be an integer from 1 to {MAX_LIMIT}, not {json.dumps(limit)}")
    req["Limit"] = limit if limit is not None else 1
    req["TimeoutMs"] = _timeout_ms(event, DEFAULT_TIMEOUT_MS if req["batch"] else ORIGINAL_TIMEOUT_MS)
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
    """Records oldest first with what is needed to resume: the original one-record answer, or with
    Limit a batch of at most Limit records.

    Empty answers with a live iterator are retried until the timeout has passed (Kinesis may
    answer empty several times before reaching data, e.g. after a trimmed prefix). A batch's
    top-level SequenceNumber is the last record's, or the one given when nothing new was read, so
    passing it back always resumes at the right place.
    """
    req = _request(event)
    stream = req["StreamName"]
    iterator, shard = start_iterator(kinesis, req)
    deadline = clock() + req["TimeoutMs"] / 1000.0
    while True:
        resp = _call("GetRecords", stream, kinesis.get_records, ShardIterator=iterator, Limit=req["Limit"])
        raw, iterator = resp.get("Records") or [], resp.get("NextShardIterator")
        remaining = deadline - clock()
        if raw or iterator is None or remaining <= 0:
            break
        sleep(min(POLL_INTERVAL_S, remaining))
    if not req["batch"]:
        if not raw:
            return {"Data": "", "SequenceNumber": "", "NextShardIterator": iterator}
        return {"Data": decode_data(raw[0]["Data"])[1], "SequenceNumber": raw[0]["SequenceNumber"],
                "NextShardIterator": iterator}
    records = []
    for r in raw:
        fmt, data = decode_data(r["Data"])
        records.append({"SequenceNumber": r["SequenceNumber"], "PartitionKey": r.get("PartitionKey"),
                        "ApproximateArrivalTimestamp": _iso(r.get("ApproximateArrivalTimestamp")),
                        "DataFormat": fmt, "Data": data})
    return {"StreamName": stream, "ShardId": shard, "Records": records, "Count": len(records),
            "SequenceNumber": records[-1]["SequenceNumber"] if records else req.get("SequenceNumber"),
            "NextShardIterator": iterator, "MillisBehindLatest": resp.get("MillisBehindLatest")}
