"""Temperature readings to CloudWatch custom metrics: the pure core behind ``handler.handler``.

Owns reading the event (one reading, a ``{"records": [...]}`` batch, or the change-event batch
sqlambda's triggers send), strict validation of every reading, the configuration read from the
environment, and cutting PutMetricData requests within the API's limits. It is handed a boto3
CloudWatch client and never creates one, reads no files and keeps no state between calls, so it
runs unchanged under tests, the local stack and AWS. Stdlib only (plus the client it is given):
the Lambda zip carries no third-party packages.

Limits (botocore's service model and the PutMetricData reference, checked 2025): at most 1,000
metrics per request and 1 MB per HTTP POST body; at most 30 dimensions per metric; values within
±2^360 and never NaN/±Infinity; timestamps no more than two weeks old and two hours ahead (one
datum outside that window makes CloudWatch reject the whole request, so such a reading is rejected
here on its own instead).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

MAX_METRICS_PER_REQUEST = 1000
# "1 MB" read as the smaller of 10^6 and 2^20 bytes, so either reading of the quota holds.
MAX_REQUEST_BYTES = 1_000_000
MAX_DIMENSIONS = 30
MAX_ABS_VALUE = 2.0**360
# Older API references also state a smallest magnitude; one such value would fail the whole request.
MIN_ABS_VALUE = 2.0**-360
MAX_AGE = timedelta(days=14)
MAX_AHEAD = timedelta(hours=2)
UNITS = frozenset(
    "Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits "
    "Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second "
    "Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second "
    "Terabits/Second Count/Second None".split()
)

# ISO 8601 / RFC 3339 date-time: 'T' or a space between date and time (the space is what PostgreSQL's
# text output and the original Oracle trigger's TO_CHAR use), optional seconds and fraction, then Z,
# ±hh[:mm], a trailing " UTC", or nothing (naive: UTC, as the original sample meant it).
# Written out rather than datetime.fromisoformat because that accepts different inputs on each
# Python version a Lambda runtime may have (3.9 rejects 'Z', 3.11 accepts week dates and naive).
_ISO_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ](?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?| ?UTC)?"
)
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class ConfigError(ValueError):
    """An environment variable is missing or invalid (the function is misconfigured)."""


class InvalidEvent(ValueError):
    """The event as a whole is not something this function reads (not one bad record)."""


class PublishFailed(RuntimeError):
    """PutMetricData failed; raised so a caller with retries (the outbox drainer) sends again."""


class BadReading(ValueError):
    """One record cannot be published; its message is the reason reported back."""


class NothingPublished(ValueError):
    """Every record of the request was rejected: a function error, so the caller sees it (an answer
    of 200 with nothing published would let an asynchronous trigger lose readings without a trace)."""


@dataclass(frozen=True)
class Config:
    namespace: str = "Sqlambda/Sensors"
    metric_name: str = "Temperature"
    dimensions: tuple[tuple[str, str], ...] = ()
    unit: str = "None"
    storage_resolution: int = 60

    @classmethod
    def from_env(cls, env) -> "Config":
        """Read METRIC_NAMESPACE, METRIC_NAME, METRIC_DIMENSIONS (JSON object), METRIC_UNIT and
        METRIC_STORAGE_RESOLUTION; every problem raises ConfigError naming the variable."""
        namespace = env.get("METRIC_NAMESPACE") or cls.namespace
        if len(namespace) > 255 or namespace.startswith((":", "AWS/")):
            raise ConfigError(f"METRIC_NAMESPACE {namespace!r}: 1-255 characters, not starting with ':' or 'AWS/'")
        name = env.get("METRIC_NAME") or cls.metric_name
        if len(name) > 255:
            raise ConfigError("METRIC_NAME: at most 255 characters")
        raw = env.get("METRIC_DIMENSIONS") or "{}"
        try:
            dims = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"METRIC_DIMENSIONS is not JSON ({exc}); expected an object like {{\"Sensor\": \"lab-1\"}}") from None
        if not isinstance(dims, dict):
            raise ConfigError("METRIC_DIMENSIONS must be a JSON object of dimension name to value")
        if len(dims) > MAX_DIMENSIONS:
            raise ConfigError(f"METRIC_DIMENSIONS has {len(dims)} dimensions; CloudWatch allows {MAX_DIMENSIONS}")
        for key, value in dims.items():
            if not (isinstance(value, str) and 1 <= len(key) <= 255 and 1 <= len(value) <= 1024):
                raise ConfigError(f"METRIC_DIMENSIONS[{key!r}]: names 1-255 and values 1-1024 characters, values strings")
        unit = env.get("METRIC_UNIT") or cls.unit
        if unit not in UNITS:
            raise ConfigError(f"METRIC_UNIT {unit!r} is not a CloudWatch unit (e.g. None, Count, Percent)")
        resolution = env.get("METRIC_STORAGE_RESOLUTION") or str(cls.storage_resolution)
        if resolution not in ("1", "60"):
            raise ConfigError("METRIC_STORAGE_RESOLUTION must be 1 (high resolution) or 60")
        return cls(namespace, name, tuple(dims.items()), unit, int(resolution))


def parse_timestamp(value) -> datetime:
    """An aware UTC datetime from ISO 8601, or from epoch seconds (a JSON number).

    A time without a zone is UTC: that is what the original awslabs sample sends
    (``"2016-02-15 12:00:00"``, from ``TO_CHAR(SYS_EXTRACT_UTC(...))`` in its Oracle trigger) and
    what its Lambda passed to CloudWatch, which reads it as UTC. Numeric strings are refused:
    epoch seconds must come as a JSON number so a string is always read as ISO 8601.
    """
    if isinstance(value, bool):
        raise BadReading("reading_time is a boolean; expected ISO 8601 with a zone or epoch seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise BadReading("reading_time is not a finite number")
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise BadReading(f"reading_time {value!r} is out of range for epoch seconds") from None
    if not isinstance(value, str):
        raise BadReading(f"reading_time must be a string or a number, not {type(value).__name__}")
    m = _ISO_RE.fullmatch(value.strip())
    if not m:
        raise BadReading(f"reading_time {value!r} is not ISO 8601 (YYYY-MM-DD[T ]hh:mm[:ss[.f]], then Z, ±hh:mm "
                         "or nothing for UTC)")
    tz = (m["tz"] or "Z").strip()
    if tz in ("Z", "z", "UTC"):
        offset = timedelta(0)
    else:
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if offset >= timedelta(hours=24):
            raise BadReading(f"reading_time {value!r} has an impossible offset")
        offset = -offset if tz[0] == "-" else offset
    micros = int((m["f"] or "0")[:6].ljust(6, "0"))
    try:
        return datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"] or 0),
                        micros, tzinfo=timezone(offset)).astimezone(timezone.utc)
    except ValueError as exc:
        raise BadReading(f"reading_time {value!r}: {exc}") from None


def parse_value(value) -> float:
    """A finite float within CloudWatch's range, from a JSON number or a decimal string."""
    if isinstance(value, bool) or value is None:
        raise BadReading(f"reading_value must be a number, not {json.dumps(value)}")
    if isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value.strip()):
            raise BadReading(f"reading_value {value!r} is not a decimal number")
        value = float(value)
    if not isinstance(value, (int, float)):
        raise BadReading(f"reading_value must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise BadReading("reading_value is out of CloudWatch's range (±2^360)") from None
    if not math.isfinite(number):
        raise BadReading("reading_value must be finite (CloudWatch refuses NaN and Infinity)")
    if abs(number) > MAX_ABS_VALUE or 0 < abs(number) < MIN_ABS_VALUE:
        raise BadReading("reading_value is out of CloudWatch's range (2^-360 to 2^360 in magnitude, or 0)")
    return number


def _records(event) -> tuple[list, str | None]:
    """The list of records and the envelope's operation (change events), or InvalidEvent."""
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


def _reading_row(record, envelope_op: str | None):
    """The row holding the reading, or None when the record is a delete (nothing to count)."""
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            raise BadReading("record is a string that is not JSON") from None
    if not isinstance(record, dict):
        raise BadReading(f"record must be an object, not {type(record).__name__}")
    if "new" in record or "old" in record:  # a change event: the reading is the new row image
        op = record.get("op") or record.get("operation") or envelope_op
        row = record.get("new")
        if row is None:
            if op in (None, "delete", "DELETE", "d", "D") and record.get("old") is not None:
                return None
            raise BadReading("change event has no new row image")
        if isinstance(row, str):
            try:
                row = json.loads(row)
            except ValueError:
                raise BadReading("the new row image is a string that is not JSON") from None
        if not isinstance(row, dict):
            raise BadReading("the new row image must be an object")
        return row
    return record


def _datum(row: dict, cfg: Config, now: datetime) -> dict:
    missing = [k for k in ("reading_time", "reading_value") if k not in row]
    if missing:
        raise BadReading(f"missing {' and '.join(missing)}")
    ts = parse_timestamp(row["reading_time"])
    if ts < now - MAX_AGE:
        raise BadReading(f"reading_time {ts.isoformat()} is more than 14 days old; CloudWatch refuses it")
    if ts > now + MAX_AHEAD:
        raise BadReading(f"reading_time {ts.isoformat()} is more than 2 hours ahead; CloudWatch refuses it")
    datum = {"MetricName": cfg.metric_name, "Timestamp": ts, "Value": parse_value(row["reading_value"]),
             "Unit": cfg.unit, "StorageResolution": cfg.storage_resolution}
    if cfg.dimensions:
        datum["Dimensions"] = [{"Name": n, "Value": v} for n, v in cfg.dimensions]
    return datum


def _q(text: str) -> int:
    return len(quote(text, safe="-_.~"))


def datum_bytes(datum: dict) -> int:
    """An upper bound of one datum's share of a PutMetricData body.

    Measured in the query protocol (the most verbose one boto3 may pick: form-encoded, every key
    repeating ``MetricData.member.NNNN.``), with the widest index and room for any timestamp and
    value rendering, so the CBOR or JSON bodies newer boto3 sends are always smaller.
    """
    head = len("MetricData.member.1000.")
    size = head + len("MetricName=&") + _q(datum["MetricName"])
    size += head + len("Timestamp=&") + 40 + head + len("Value=&") + 32
    size += head + len("Unit=&") + _q(datum["Unit"]) + head + len("StorageResolution=&") + 2
    for dim in datum.get("Dimensions", ()):
        dhead = head + len("Dimensions.member.30.")
        size += dhead + len("Name=&") + _q(dim["Name"]) + dhead + len("Value=&") + _q(dim["Value"])
    return size


def chunks(data: list[dict], namespace: str, max_count: int = MAX_METRICS_PER_REQUEST,
           max_bytes: int = MAX_REQUEST_BYTES) -> list[list[dict]]:
    """Cut data into requests of at most max_count metrics and max_bytes (estimated) each."""
    base = len("Action=PutMetricData&Version=2010-08-01&Namespace=") + _q(namespace) + 64
    out: list[list[dict]] = []
    current: list[dict] = []
    size = base
    for datum in data:
        n = datum_bytes(datum)
        if current and (len(current) >= max_count or size + n > max_bytes):
            out.append(current)
            current, size = [], base
        current.append(datum)
        size += n
    if current:
        out.append(current)
    return out


def publish(event, cloudwatch, cfg: Config, now: datetime | None = None) -> dict:
    """Validate every record, publish the good ones, and return counts plus each bad record.

    Bad records (index + reason) never stop the others, but a request whose every record is bad
    raises NothingPublished (a function error). A delete change event is skipped: it carries no
    new reading. ``Status`` is ``OK`` (the original sample's answer) when nothing was rejected. A failed PutMetricData raises PublishFailed (after boto3's own
    retries) so the caller retries the batch; CloudWatch has no idempotency key, so a retried
    batch can count a reading twice.
    """
    now = now or datetime.now(timezone.utc)
    records, envelope_op = _records(event)
    data, errors, skipped = [], [], []
    for index, record in enumerate(records):
        try:
            row = _reading_row(record, envelope_op)
            if row is None:
                skipped.append({"index": index, "reason": "delete event: no new reading"})
                continue
            data.append(_datum(row, cfg, now))
        except BadReading as exc:
            errors.append({"index": index, "reason": str(exc)})
    if errors and not data:
        shown = "; ".join(f"record {e['index']}: {e['reason']}" for e in errors[:5])
        raise NothingPublished(f"none of the {len(errors)} reading(s) could be published: {shown}"
                               + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""))
    requests = chunks(data, cfg.namespace)
    published = 0
    for number, chunk in enumerate(requests, 1):
        try:
            cloudwatch.put_metric_data(Namespace=cfg.namespace, MetricData=chunk)
        except Exception as exc:  # botocore's ClientError/BotoCoreError: the caller's retry decides
            raise PublishFailed(f"PutMetricData request {number} of {len(requests)} failed after {published} "
                                f"metrics were published: {exc}") from exc
        published += len(chunk)
    return {"Status": "OK" if not errors else "PARTIAL",
            "received": len(records), "published": published, "rejected": len(errors), "skipped": len(skipped),
            "requests": len(requests), "namespace": cfg.namespace, "metric_name": cfg.metric_name,
            "errors": errors, "skips": skipped}
