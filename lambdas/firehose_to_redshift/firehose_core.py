"""Rows to a Firehose delivery stream as newline-delimited JSON for Redshift: the pure core.

Owns reading the event (plain rows, a ``{"records": [...]}`` batch, or the change-event batch
sqlambda's triggers send), turning each row into one flat JSON line that Redshift's
``COPY ... FORMAT AS JSON 'auto'`` loads, cutting PutRecordBatch calls within Firehose's limits,
and retrying only the records Firehose reports as failed. It is handed a boto3 Firehose client
(and, for tests, the sleep and random functions) and never creates one; stdlib only, because the
Lambda zip carries no third-party packages. Creating the delivery stream is ``setup_stream``'s job.

Limits (Firehose quotas page and the PutRecordBatch reference): 500 records and 4 MiB per call,
1,000 KiB per record before base64.

Change events: the row forwarded is the new image (insert, update) or, for a delete, the old
image; every change-event row gains an ``_op`` column (insert/update/delete) and, when the event
carries one, ``_idempotency_key``, so the warehouse can apply deletes and drop duplicates
(delivery is at-least-once). Redshift's JSON 'auto' ignores keys that match no column, so these
extra columns cost nothing in a table that does not declare them. Nested objects and arrays are
sent as JSON text, keeping the row flat (load them into a SUPER or VARCHAR column).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024

# Errors no retry can fix: the stream is missing, the input or permissions are wrong.
PERMANENT_ERRORS = frozenset({
    "ResourceNotFoundException", "InvalidArgumentException", "ValidationException", "AccessDeniedException",
    "UnrecognizedClientException", "InvalidKMSResourceException", "InvalidSourceException",
})
# Debezium/DMS spell operations as one letter; the warehouse gets one spelling.
_OPS = {"c": "insert", "r": "insert", "i": "insert", "u": "update", "d": "delete"}


class ConfigError(ValueError):
    """An environment variable is missing or invalid (the function is misconfigured)."""


class InvalidEvent(ValueError):
    """The event as a whole is not something this function reads (not one bad record)."""


class DeliveryFailed(RuntimeError):
    """A call failed in a way no retry fixes (missing stream, access denied): nothing more is sent."""


class UndeliveredRecords(RuntimeError):
    """Records were still failing after the last attempt; the message is the JSON report."""


class BadRow(ValueError):
    """One record cannot be forwarded; its message is the reason reported back."""


@dataclass(frozen=True)
class Config:
    stream_name: str
    max_attempts: int = 4
    backoff_base_ms: int = 100
    backoff_max_ms: int = 2000
    on_failure: str = "raise"  # or "report": return the failures instead of raising

    @classmethod
    def from_env(cls, env) -> "Config":
        """Read DELIVERY_STREAM_NAME (required), MAX_ATTEMPTS, BACKOFF_BASE_MS, BACKOFF_MAX_MS and
        ON_FAILURE; every problem raises ConfigError naming the variable."""
        name = env.get("DELIVERY_STREAM_NAME", "")
        if not name:
            raise ConfigError("DELIVERY_STREAM_NAME is not set; it names the Firehose delivery stream to write to")
        ints = {}
        for var, field, low in (("MAX_ATTEMPTS", "max_attempts", 1), ("BACKOFF_BASE_MS", "backoff_base_ms", 0),
                                ("BACKOFF_MAX_MS", "backoff_max_ms", 0)):
            raw = env.get(var)
            if raw in (None, ""):
                continue
            try:
                ints[field] = int(raw)
            except ValueError:
                raise ConfigError(f"{var} must be an integer, not {raw!r}") from None
            if ints[field] < low:
                raise ConfigError(f"{var} must be at least {low}")
        on_failure = env.get("ON_FAILURE") or "raise"
        if on_failure not in ("raise", "report"):
            raise ConfigError(f"ON_FAILURE must be 'raise' or 'report', not {on_failure!r}")
        return cls(name, on_failure=on_failure, **ints)


def _records(event) -> tuple[list, str | None]:
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidEvent("the event is a string that is not JSON") from None
    if isinstance(event, list):
        return event, None
    if not isinstance(event, dict):
        raise InvalidEvent(f"the event must be a JSON object or array, not {type(event).__name__}")
    if "records" not in event:
        return [event], None
    if not isinstance(event["records"], list):
        raise InvalidEvent("'records' must be an array")
    op = event.get("op") or event.get("operation")
    return event["records"], op if isinstance(op, str) else None


def _image(value, which: str):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRow(f"the {which} row image is a string that is not JSON") from None
    if not isinstance(value, dict):
        raise BadRow(f"the {which} row image must be an object")
    return value


def row_of(record, envelope_op: str | None) -> dict:
    """The flat row to forward for one record (see the module docstring for change events)."""
    if not isinstance(record, dict):
        raise BadRow(f"record must be an object, not {type(record).__name__}")
    if "new" not in record and "old" not in record:
        row = dict(record)
    else:
        new, old = record.get("new"), record.get("old")
        op = record.get("op") or record.get("operation") or envelope_op
        if not isinstance(op, str):  # no operation given: the images say which it is
            op = "insert" if old is None else "delete" if new is None else "update"
        op = op.lower()
        op = _OPS.get(op, op)
        if op == "delete":
            if old is None:
                raise BadRow("delete event has no old row image")
            row = dict(_image(old, "old"))
        elif new is None:
            raise BadRow(f"{op} event has no new row image")
        else:
            row = dict(_image(new, "new"))
        row["_op"] = op
        if record.get("idempotency_key") is not None:
            row["_idempotency_key"] = record["idempotency_key"]
    return {k: json.dumps(v, ensure_ascii=False, separators=(",", ":")) if isinstance(v, (dict, list)) else v
            for k, v in row.items()}


def encode(row: dict) -> bytes:
    """One line of newline-delimited JSON; refuses rows Firehose would refuse."""
    try:
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
    except ValueError:
        raise BadRow("row holds NaN or Infinity, which JSON (and Redshift's COPY) cannot read") from None
    data = line.encode("utf-8")
    if len(data) > MAX_RECORD_BYTES:
        raise BadRow(f"row is {len(data)} bytes as JSON; Firehose takes at most {MAX_RECORD_BYTES} per record")
    return data


def batches(items: list[tuple[int, bytes]], max_records: int = MAX_BATCH_RECORDS,
            max_bytes: int = MAX_BATCH_BYTES) -> list[list[tuple[int, bytes]]]:
    """Cut (index, data) pairs into PutRecordBatch calls by record count and total data bytes."""
    out: list[list[tuple[int, bytes]]] = []
    current: list[tuple[int, bytes]] = []
    size = 0
    for item in items:
        n = len(item[1])
        if current and (len(current) >= max_records or size + n > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        out.append(current)
    return out


def _error_code(exc: Exception) -> tuple[str, str]:
    response = getattr(exc, "response", None) or {}
    err = response.get("Error", {})
    return err.get("Code") or type(exc).__name__, err.get("Message") or str(exc)


def send(client, cfg: Config, batch: list[tuple[int, bytes]], sleep, rand) -> tuple[int, int, list[dict]]:
    """Send one batch; resend only what failed, with full-jitter backoff, up to max_attempts calls.

    Returns (delivered, calls made, failures as {index, error_code, error_message}).
    """
    pending = batch
    failures: list[dict] = []
    calls = 0
    for attempt in range(1, cfg.max_attempts + 1):
        calls += 1
        try:
            response = client.put_record_batch(DeliveryStreamName=cfg.stream_name,
                                               Records=[{"Data": data} for _, data in pending])
            results = response.get("RequestResponses") or []
            if len(results) != len(pending):
                raise DeliveryFailed(f"PutRecordBatch answered {len(results)} results for {len(pending)} records")
            failures = [{"index": index, "error_code": r["ErrorCode"], "error_message": r.get("ErrorMessage", "")}
                        for (index, _), r in zip(pending, results) if r.get("ErrorCode")]
        except DeliveryFailed:
            raise
        except Exception as exc:  # ClientError / BotoCoreError after boto3's own retries
            code, message = _error_code(exc)
            if code in PERMANENT_ERRORS:
                raise DeliveryFailed(f"PutRecordBatch to {cfg.stream_name!r} failed: {code}: {message}") from exc
            failures = [{"index": index, "error_code": code, "error_message": message} for index, _ in pending]
        if not failures:
            return len(batch), calls, []
        failed = {f["index"] for f in failures}
        pending = [item for item in pending if item[0] in failed]
        if attempt < cfg.max_attempts:
            cap = min(cfg.backoff_max_ms, cfg.backoff_base_ms * 2 ** (attempt - 1))
            sleep(rand() * cap / 1000.0)
    return len(batch) - len(failures), calls, failures


def forward(event, firehose, cfg: Config, sleep=time.sleep, rand=random.random) -> dict:
    """Forward every good record; report bad ones (index + reason) and those Firehose kept refusing.

    With ON_FAILURE=raise (the default) records still failing after the last attempt raise
    UndeliveredRecords carrying the report, so a caller with retries (the outbox drainer) sends
    the batch again; rows already delivered then arrive twice, with the same _idempotency_key.
    """
    records, envelope_op = _records(event)
    items: list[tuple[int, bytes]] = []
    errors: list[dict] = []
    for index, record in enumerate(records):
        try:
            items.append((index, encode(row_of(record, envelope_op))))
        except BadRow as exc:
            errors.append({"index": index, "reason": str(exc)})
    delivered, calls, failures = 0, 0, []
    plan = batches(items)
    for batch in plan:
        ok, n, failed = send(firehose, cfg, batch, sleep, rand)
        delivered, calls, failures = delivered + ok, calls + n, failures + failed
    report = {"received": len(records), "delivered": delivered, "rejected": len(errors), "failed": len(failures),
              "batches": len(plan), "calls": calls, "stream": cfg.stream_name, "errors": errors,
              "failures": failures}
    if failures and cfg.on_failure == "raise":
        raise UndeliveredRecords(json.dumps(report))
    return report
