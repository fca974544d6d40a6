"""Record sinks: change events delivered as records to Kinesis Data Streams, Firehose, SQS and EventBridge.

Owns, per sink kind, what its batch API accepts and how it answers (the drainer sends through them;
the spec's ``sinks`` choose them):
- the request limits, looked up in each API's reference (see ``LIMITS``), and :func:`cut`, which
  cuts records in order into requests by record count AND bytes as the service counts them; a record
  over the per-record limit is set aside alone with a clear reason (it can never be sent); keys and
  ids a service would refuse (a Kinesis key over 256 characters, an SQS FIFO id with a space or over
  128 characters) are replaced by their SHA-256, so one key still means one shard or group;
- :class:`RecordSink.put`, one request, answered per record: ``None`` (accepted) or a
  :class:`~sqlambda.delivery.model.Failure` (transient: throttling, internal errors, the service
  unreachable; permanent: what the service rejects for the record itself). Partial failures
  (Kinesis/Firehose ``FailedRecordCount``, SQS ``Failed``, EventBridge ``FailedEntryCount``) are
  read record by record; a failed request fails each of its records alike;
- :func:`deliver`, which sends a list of records request after request and retries only the failed
  records of a request, with capped exponential backoff, before the next request goes out. Order:
  on a sink that keeps order (a Kinesis shard, an SQS FIFO group) a request never holds two records
  of one key, so a record retried after a partial failure can never land after a later record of
  its key: each key's records arrive in order, exactly (a record retried inside one PutRecords
  would not be: Kinesis says so of PutRecords itself);
- :class:`RecordSinks`, the clients and sinks of a drain run.

Must not: claim from or write to a database (the drainer does), or choose the sink (the spec does).
boto3 is the client: these are plain AWS APIs with nothing to sign by hand.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlambda.delivery.model import Failure


@dataclass(frozen=True)
class Limits:
    """One batch request's limits, as the service counts bytes (``record_size``)."""

    records: int
    record_bytes: int
    request_bytes: int


#: Kinesis PutRecords: 500 records, 1 MiB a record (data + partition key), 5 MiB a request (with keys).
#: Firehose PutRecordBatch: 500 records, 1,000 KiB a record (before base64), 4 MiB a request.
#: SQS SendMessageBatch: 10 messages, 1 MiB a message and a request (raised from 256 KiB in 2025;
#: older SDK documentation still says 256 KiB). EventBridge PutEvents: 10 entries, 256 KiB a request
#: (an entry's size: Source, DetailType, Detail and Resources in UTF-8 bytes, plus 14 for Time).
LIMITS = {
    "kinesis": Limits(500, 1_048_576, 5_242_880),
    "firehose": Limits(500, 1_024_000, 4_194_304),
    "sqs": Limits(10, 1_048_576, 1_048_576),
    "eventbridge": Limits(10, 262_144, 262_144),
}
#: per-record error codes that a retry can fix (everything else the service rejects for good)
TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "KMSThrottlingException", "InternalFailure", "InternalError",
    "ServiceUnavailableException", "ServiceUnavailable", "ThrottlingException", "Throttling",
    "RequestThrottled", "KMSThrottling", "LimitExceededException", "KmsThrottled", "TooManyRequestsException",
    "RequestThrottledException", "RequestTimeout", "RequestTimeoutException",
})
EVENT_SOURCE = "sqlambda"
#: a Kinesis partition key may be 256 Unicode characters long
MAX_PARTITION_KEY = 256
#: an SQS FIFO message group or de-duplication id: 1 to 128 printable ASCII characters, no space
_SQS_ID = re.compile(r"[!-~]{1,128}")
#: an EventBridge DetailType is at most 128 characters
MAX_DETAIL_TYPE = 128


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def partition_key(key: str) -> str:
    """A Kinesis partition key: the key itself, or its SHA-256 when longer than Kinesis allows (the
    same key always maps to the same digest, so its records still share a shard)."""
    return key if 0 < len(key) <= MAX_PARTITION_KEY else _digest(key)


def sqs_id(value: str) -> str:
    """An SQS FIFO group or de-duplication id: the value when SQS accepts it as is, else its SHA-256
    (deterministic: one key is one group; never cut short, which could make two ids one)."""
    return value if _SQS_ID.fullmatch(value) else _digest(value)


def detail_type(value: str) -> str:
    return value if 0 < len(value) <= MAX_DETAIL_TYPE else value[:MAX_DETAIL_TYPE - 17] + "~" + _digest(value)[:16]


@dataclass(frozen=True)
class Record:
    """One change event as a record: its JSON text, its key (Kinesis partition key, SQS FIFO message
    group) and its idempotency key (SQS FIFO de-duplication id). ``detail_type`` names it on EventBridge."""

    data: str
    key: str
    id: str
    detail_type: str = "sqlambda change"


def record_size(kind: str, record: Record, source: str = EVENT_SOURCE) -> int:
    """The bytes a record counts for against ``LIMITS[kind]`` (``source``: EventBridge's Source)."""
    data = len(record.data.encode("utf-8"))
    if kind == "kinesis":
        return data + len(partition_key(record.key).encode("utf-8"))
    if kind == "firehose":
        return data + 1  # the newline that ends each record's line
    if kind == "eventbridge":
        return data + len(source.encode()) + len(detail_type(record.detail_type).encode("utf-8")) + 14
    return data


def ordered(kind: str, target: str) -> bool:
    """Whether the service keeps records of one key in order: a Kinesis shard, an SQS FIFO group.
    Firehose, standard SQS and EventBridge promise no order, so none is kept for them either."""
    return kind == "kinesis" or (kind == "sqs" and target.endswith(".fifo"))


def cut_positions(kind: str, records: list[Record], *, distinct_keys: bool = False,
                  source: str = EVENT_SOURCE) -> tuple[list[list[int]], list[tuple[int, str]]]:
    """:func:`cut` by position in ``records`` (a record may appear twice; each place is its own).

    ``distinct_keys``: a request never holds two records of one key (a repeated key starts the
    next request), so a record that fails in a request can be retried before anything later of its
    key is sent: see :func:`deliver`."""
    lim = LIMITS[kind]
    batches: list[list[int]] = []
    aside: list[tuple[int, str]] = []
    current: list[int] = []
    keys: set[str] = set()
    used = 0
    for i, r in enumerate(records):
        size = record_size(kind, r, source)
        if size > lim.record_bytes:
            aside.append((i, f"the record is {size:,} bytes; {kind} takes at most {lim.record_bytes:,} a record"))
            continue
        if kind == "eventbridge" and not r.data.lstrip().startswith("{"):
            aside.append((i, "an EventBridge event's detail must be a JSON object"))
            continue
        if current and (len(current) >= lim.records or used + size > lim.request_bytes
                        or (distinct_keys and r.key in keys)):
            batches.append(current)
            current, used = [], 0
            keys.clear()
        current.append(i)
        used += size
        if distinct_keys:
            keys.add(r.key)
    if current:
        batches.append(current)
    return batches, aside


def cut(kind: str, records: list[Record]) -> tuple[list[list[Record]], list[tuple[Record, str]]]:
    """(requests, set aside): the records in order, cut by count and bytes; a record over the
    per-record limit (or not a JSON object, for EventBridge) is set aside with why."""
    batches, aside = cut_positions(kind, records)
    return [[records[i] for i in b] for b in batches], [(records[i], why) for i, why in aside]


def _code_failure(code: str | None, message: str | None, sender_fault: bool | None = None) -> Failure:
    transient = code in TRANSIENT_CODES if sender_fault is None else (not sender_fault or code in TRANSIENT_CODES)
    return Failure("transient" if transient else "permanent", f"[{code}] {message or ''}".strip())


def _per_record(entries: list[dict]) -> list[Failure | None]:
    """Kinesis ``Records``, Firehose ``RequestResponses``, EventBridge ``Entries``: one result per
    record sent, in order, an ``ErrorCode`` where that record failed."""
    return [_code_failure(e["ErrorCode"], e.get("ErrorMessage")) if e.get("ErrorCode") else None for e in entries]


def _request_failure(exc: Exception) -> Failure:
    """A whole request that failed. Transient, whatever the reason, except a request the client
    refused to build (ParamValidationError: the same request can never be sent): throttling, 5xx and
    the network pass by themselves, and expired or missing credentials, a denied action or a stream
    that does not exist yet are an operator's to fix, after which the records must still go out.
    Records are never dead-lettered because their request failed: an outage is lag, not loss."""
    from botocore.exceptions import ParamValidationError

    if isinstance(exc, ParamValidationError):
        return Failure("permanent", f"[{type(exc).__name__}] {exc}")
    response = getattr(exc, "response", None)
    if response is None:
        return Failure("transient", f"[{type(exc).__name__}] {exc}")
    error = response.get("Error", {})
    return Failure("transient", f"[{error.get('Code')}] {error.get('Message', '')}")


class RecordSink:
    """One target of one kind: a stream, delivery stream, queue (name or URL; FIFO when it ends in
    .fifo) or event bus. ``client`` is a boto3 client of the kind's service; ``source`` is the
    EventBridge events' Source."""

    def __init__(self, kind: str, target: str, client: Any, source: str | None = None) -> None:
        if kind not in LIMITS:
            raise ValueError(f"unknown record sink {kind!r}; expected one of {', '.join(sorted(LIMITS))}")
        self.kind, self.target, self.client = kind, target, client
        self.source = source or EVENT_SOURCE
        self.fifo = kind == "sqs" and target.endswith(".fifo")
        self.ordered = ordered(kind, target)
        self._queue_url = target if kind == "sqs" and target.startswith(("http://", "https://")) else None

    def put(self, batch: list[Record]) -> list[Failure | None]:
        """Send one request (already cut to the limits); per record, None or why not."""
        try:
            out = getattr(self, f"_{self.kind}")(batch)
        except Exception as exc:  # noqa: BLE001 - every record of a failed request failed alike
            failure = _request_failure(exc)
            return [failure] * len(batch)
        if len(out) != len(batch):  # an answer that does not say what became of each record
            return [Failure("transient", f"the {self.kind} answer holds {len(out)} results for {len(batch)} records")] * len(batch)
        return out

    def _kinesis(self, batch: list[Record]) -> list[Failure | None]:
        out = self.client.put_records(StreamName=self.target, Records=[
            {"Data": r.data.encode("utf-8"), "PartitionKey": partition_key(r.key)} for r in batch])
        return _per_record(out["Records"])

    def _firehose(self, batch: list[Record]) -> list[Failure | None]:
        # one JSON document a line, so whatever reads the delivered objects can split them
        out = self.client.put_record_batch(DeliveryStreamName=self.target, Records=[
            {"Data": (r.data + "\n").encode("utf-8")} for r in batch])
        return _per_record(out["RequestResponses"])

    def _sqs(self, batch: list[Record]) -> list[Failure | None]:
        entries = []
        for i, r in enumerate(batch):
            entry = {"Id": str(i), "MessageBody": r.data}
            if self.fifo:
                entry.update(MessageGroupId=sqs_id(r.key), MessageDeduplicationId=sqs_id(r.id))
            entries.append(entry)
        if self._queue_url is None:  # a queue name: its URL once (an error here fails the request, retried)
            self._queue_url = self.client.get_queue_url(QueueName=self.target)["QueueUrl"]
        out = self.client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        result: list[Failure | None] = [None] * len(batch)
        for f in out.get("Failed", []):
            result[int(f["Id"])] = _code_failure(f.get("Code"), f.get("Message"), f.get("SenderFault"))
        return result

    def _eventbridge(self, batch: list[Record]) -> list[Failure | None]:
        out = self.client.put_events(Entries=[
            {"Source": self.source, "DetailType": detail_type(r.detail_type), "Detail": r.data, "EventBusName": self.target}
            for r in batch])
        return _per_record(out["Entries"])


@dataclass(frozen=True)
class Delivery:
    """What :func:`deliver` did: per record index, None (delivered) or the last Failure; how many
    requests it took."""

    outcome: tuple[Failure | None, ...]
    requests: int

    @property
    def failed(self) -> list[int]:
        return [i for i, f in enumerate(self.outcome) if f is not None]


def deliver(sink: RecordSink, records: list[Record], *, max_attempts: int = 8, base_delay_s: float = 0.1,
            max_delay_s: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Send ``records`` in order, one request after the other; a request's failed records (transient
    failures only) are retried, with capped exponential backoff and jitter, up to ``max_attempts``
    requests each, BEFORE the next request goes out; when one still fails, nothing after its
    request is sent (those records stay "not attempted"). Set-aside records fail at once.

    On an ordered sink (:func:`ordered`) requests are cut with distinct keys, so no record is ever
    accepted while an earlier record of its key is unconfirmed: each key's records land in their
    order, across partial failures and retries, exactly."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    outcome: list[Failure | None] = [Failure("transient", "not attempted")] * len(records)
    batches, aside = cut_positions(sink.kind, records, distinct_keys=sink.ordered, source=sink.source)
    for i, why in aside:
        outcome[i] = Failure("permanent", why)
    requests = 0
    for batch in batches:
        pending = batch
        for attempt in range(1, max_attempts + 1):
            if attempt > 1:
                delay = min(max_delay_s, base_delay_s * 2 ** (attempt - 2))
                sleep(delay / 2 + random.uniform(0, delay / 2))
            requests += 1
            retry: list[int] = []
            for i, failure in zip(pending, sink.put([records[i] for i in pending]), strict=True):
                outcome[i] = failure
                if failure is not None and failure.kind == "transient":
                    retry.append(i)
            pending = retry
            if not pending:
                break
        if pending:
            break  # later records wait: sending them now could put a later record of a key first
    return Delivery(tuple(outcome), requests)


class RecordSinks:
    """The record sinks of a drain run: one boto3 client per service, region and endpoint (boto3
    clients are thread-safe; creating one is not, hence the lock), one :class:`RecordSink` per target."""

    SERVICE = {"kinesis": "kinesis", "firehose": "firehose", "sqs": "sqs", "eventbridge": "events"}

    def __init__(self, endpoint_url: str | None = None, connect_timeout_s: float = 2.0, read_timeout_s: float = 30.0) -> None:
        import threading

        self.endpoint_url = endpoint_url
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        self._clients: dict[tuple, Any] = {}
        self._sinks: dict[tuple, RecordSink] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, target: str, region: str, endpoint_url: str | None, source: str | None) -> RecordSink:
        endpoint = self.endpoint_url or endpoint_url
        key = (kind, target, region, endpoint, source)
        with self._lock:
            sink = self._sinks.get(key)
            if sink is None:
                ckey = (self.SERVICE[kind], region, endpoint)
                client = self._clients.get(ckey)
                if client is None:
                    import boto3
                    from botocore.config import Config

                    # our own retries (deliver, then the outbox's backoff) decide; botocore's would
                    # hide throttling from them and retry a whole partially failed request
                    client = self._clients[ckey] = boto3.session.Session().client(
                        ckey[0], region_name=region, endpoint_url=endpoint,
                        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                      connect_timeout=self.connect_timeout_s, read_timeout=self.read_timeout_s))
                sink = self._sinks[key] = RecordSink(kind, target, client, source)
            return sink


def as_record(event: dict, key_columns: list[str], idempotency_key: str) -> Record:
    """A change event (one record of the envelope, with its table and operation) as a sink record:
    the key is the table and the key columns' values of the row (new, else old), so every change of
    one row goes to one shard / message group, in order."""
    row = event.get("new") or event.get("old") or {}
    key = json.dumps([event.get("table"), *[row.get(c) for c in key_columns]], separators=(",", ":"), default=str)
    return Record(json.dumps(event, separators=(",", ":"), default=str), key, idempotency_key,
                  f"{event.get('table')} {event.get('operation')}")
