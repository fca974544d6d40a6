"""Event source mappings that run: Kinesis and SQS pollers invoking the local Lambdas with AWS's events.

Owns: for every mapping moto's Lambda backend holds, in any account and region, one poller (a
thread; for Kinesis one more per shard) that reads the source and invokes the mapped function
synchronously, then does with the outcome what Lambda does. The control plane
(Create/List/Get/Update/DeleteEventSourceMapping) stays moto's; a poller reads its mapping's
settings afresh before each batch, so an update (Enabled, BatchSize, FunctionName...) applies to
the next batch, and a deleted mapping's poller stops.

Kinesis: per shard, in order, one batch in flight; from StartingPosition (TRIM_HORIZON, LATEST,
AT_TIMESTAMP; LATEST is pinned when CreateEventSourceMapping returns) for the shards that exist
then, and from their start for shards that appear later, each after its parents are read to the
end (a closed shard is still read afterwards: moto goes on putting a split shard's keys into it). A batch is up to BatchSize records (and under the 6 MB synchronous payload), gathered for up
to MaximumBatchingWindowInSeconds. The next batch of a shard goes only after the previous one
succeeded: a function error retries the batch (MaximumRetryAttempts, -1 = until the records
expire; MaximumRecordAgeInSeconds), BisectBatchOnFunctionError halves it first (which consumes no
retry), ReportBatchItemFailures checkpoints before the first failed sequence number, and a batch
whose retries run out is skipped, its description sent to the OnFailure destination (SQS or SNS).
An Invoke that fails before the handler runs (throttled, a service error, function missing) is
retried with backoff and consumes no retry.

SQS: ReceiveMessage in pages of 10 up to BatchSize (within MaximumBatchingWindowInSeconds), then
DeleteMessageBatch of what succeeded. A function error leaves the messages to come back after the
queue's visibility timeout; ReportBatchItemFailures keeps only the reported ones (in a FIFO queue
also the later messages of a reported message's group, so the group stays in order). One batch is
in flight per mapping: AWS scales SQS pollers out, the local stack does not, which keeps every
FIFO group in order whatever moto's queue model does with concurrent receives. For moto's sake too,
the messages of a FIFO queue left to come back are made visible again all at once, with
ChangeMessageVisibilityBatch when their visibility timeout ends: moto frees an expired message's
group one message at a time and would otherwise hand a group's later message out first.

Kinesis and SQS are read through the stack's own endpoint with boto3, as Lambda's pollers read the
real services: reads go through moto's API layer and the fault table like any client's, and
nothing here depends on how moto stores records or messages. Moto is touched directly only where
no API serves: listing every account's and region's mappings, switching off moto's own reaction
to a mapping (on SendMessage and PutRecord(s) moto invokes the function itself through Docker,
which would double-invoke and steal messages), and the function's role for the records'
invokeIdentityArn (read where Invoke reads the function). Functions are invoked through
:meth:`~sqlambda.local.invoke.InvokeService.invoke_sync`: the same warm workers, fault rules and
statistics as an Invoke request.

Must not: serve any API, run handler code itself, or stop the stack: an error in a poller is
logged as one line on stderr, then the poller backs off and goes on. DynamoDB Streams mappings
are not run here (moto keeps its own, Docker-based, handling of those).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

from sqlambda.local.invoke import SYNC_LIMIT, InvokeService, parse_function_name

#: seconds between reads of a shard that just had records, or between empty polls; an idle shard
#: is read less and less often, down to once a second as AWS reads a shard (the stack idles cheaply)
IDLE_POLL = 0.25
IDLE_POLL_MOST = 1.0
#: seconds between looks for new and deleted mappings (creating or deleting one through the
#: endpoint also looks at once)
SCAN_EVERY = 1.0
#: seconds between ListShards of a mapped stream (resharding), growing while nothing changes
SHARDS_EVERY = 1.0
SHARDS_EVERY_MOST = 5.0
#: what a payload may hold besides its records (the {"Records": [...]} envelope, separators)
_ENVELOPE = 1024
#: the same error of a poller is logged at most this often (seconds)
_LOG_EVERY = 30.0
#: how long before their visibility timeout ends the FIFO messages left to come back are released
_RELEASE_EARLY = 0.1


def _log(message: str) -> None:
    print(f"sqlambda local: {message}", file=sys.stderr, flush=True)


class _Backoff:
    """Growing waits between retries, so that retrying forever does not spin."""

    def __init__(self, first: float = 0.2, most: float = 1.0) -> None:
        self.first, self.most, self.current = first, most, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.most, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.first


@dataclass
class _Outcome:
    """What one Invoke answered."""

    status: int
    function_error: str | None
    body: bytes
    request_id: str | None
    version: str | None
    error_type: str | None = None  # of an Invoke that failed (x-amzn-ErrorType)

    @property
    def invoked(self) -> bool:
        """The handler ran (it may have failed); otherwise the Invoke itself failed (throttled...)."""
        return self.status == 200

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.function_error

    def describe(self) -> str:
        try:
            body = json.loads(self.body or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        what = self.error_type or body.get("errorType") or ""
        message = body.get("errorMessage") or body.get("message") or ""
        return f"{self.status} {what}: {message}".strip()

    def item_failures(self, identifiers: list[str]) -> list[str] | None:
        """The identifiers a ReportBatchItemFailures answer names ([] when none failed), or None when
        the answer is no valid report (an empty, null or unknown itemIdentifier, a bad key name):
        then the whole batch failed, as AWS decides."""
        try:
            answer = json.loads(self.body or b"null")
        except ValueError:
            return []
        if not isinstance(answer, dict):
            return []
        failures = answer.get("batchItemFailures")
        if failures is None:
            return []
        if not isinstance(failures, list):
            return None
        known = set(identifiers)
        out = []
        for item in failures:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(ident, str) or ident not in known:
                return None
            out.append(ident)
        return out


def _iso(epoch: float) -> str:
    """2019-11-14T00:13:49.717Z, the timestamps of Lambda's invocation records."""
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 5 else ""


def _moto_mappings():
    """(account, region, mapping) for every mapping in moto's Lambda backends."""
    from moto.awslambda.models import lambda_backends

    for account, regions in list(dict.items(lambda_backends)):
        for region, backend in list(dict.items(regions)):
            for esm in list(backend._event_source_mappings.values()):  # noqa: SLF001 - no API lists all accounts
                yield account, region, esm


def _detach_moto_hooks(account: str, region: str, esm) -> None:
    """Stop moto from invoking the function itself on SendMessage / PutRecord(s): this module does."""
    kind = _service(esm.event_source_arn)
    if kind == "sqs":
        from moto.sqs.models import sqs_backends

        holders = list(sqs_backends[account][region].queues.values())
    elif kind == "kinesis":
        from moto.kinesis.models import kinesis_backends

        holders = list(kinesis_backends[account][region].streams.values())
    else:
        return
    for holder in holders:
        hooks = getattr(holder, "lambda_event_source_mappings", None)
        if hooks:
            hooks.clear()


class EventSourcePoller:
    """Runs every enabled mapping; ``start`` with the stack, ``stop`` before its workers stop."""

    def __init__(self, invoke: InvokeService, endpoint_url: str) -> None:
        self.invoke = invoke
        self.endpoint_url = endpoint_url
        self._workers: dict[str, _Mapping] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients_lock = threading.Lock()
        self._last_error: tuple[str, float] = ("", 0.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="esm-scan")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop looking and every poller; a batch in flight ends with the function's workers."""
        self._stop.set()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for w in workers:
            w.stop()
        deadline = time.monotonic() + timeout
        for t in [self._thread, *workers]:
            if t is not None and t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stop.wait(SCAN_EVERY):
            self.scan()

    def scan(self) -> None:
        """Start a poller for each new mapping and stop those whose mapping is gone. Never raises."""
        if self._stop.is_set():
            return
        with self._lock:
            try:
                mappings = list(_moto_mappings())
            except Exception as exc:  # noqa: BLE001 - the scan runs again; the stack must go on
                self.log(f"event source mappings: {type(exc).__name__}: {exc}")
                return
            for account, region, esm in mappings:
                current = self._workers.get(esm.uuid)
                if current is not None and current.esm is esm:
                    continue
                kind = {"kinesis": _KinesisMapping, "sqs": _SqsMapping}.get(_service(esm.event_source_arn))
                if kind is None:
                    continue
                try:
                    _detach_moto_hooks(account, region, esm)
                    worker = kind(self, account, region, esm)
                except Exception as exc:  # noqa: BLE001 - tried again at the next scan
                    self.log(f"event source mapping {esm.uuid}: {type(exc).__name__}: {exc}")
                    continue
                if current is not None:  # moto was reset and a new mapping took the same id
                    current.stop()
                self._workers[esm.uuid] = worker
                worker.start()
            for gone in set(self._workers) - {esm.uuid for _, _, esm in mappings}:
                self._workers.pop(gone).stop()

    def log(self, message: str) -> None:
        last, at = self._last_error
        now = time.monotonic()
        if message != last or now - at > _LOG_EVERY:
            self._last_error = (message, now)
            _log(message)

    def client(self, service: str, region: str, account: str):
        """A boto3 client of the stack's own endpoint acting in ``account`` (test credentials)."""
        import boto3
        from botocore.config import Config

        with self._clients_lock:  # creating clients from one session is not thread-safe
            client = boto3.session.Session().client(
                service, endpoint_url=self.endpoint_url, region_name=region, aws_access_key_id="test",
                aws_secret_access_key="test",
                config=Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60))

        def in_account(request, **_):
            request.headers["x-moto-account-id"] = account

        client.meta.events.register("before-sign.*.*", in_account)
        return client


class _Mapping(threading.Thread):
    """One mapping's poller: what Kinesis and SQS share (settings, invoking, stopping, logging)."""

    def __init__(self, poller: EventSourcePoller, account: str, region: str, esm) -> None:
        super().__init__(daemon=True, name=f"esm-{esm.uuid[:8]}")
        self.poller, self.account, self.region, self.esm = poller, account, region, esm
        self.source_arn = esm.event_source_arn
        self.halt = threading.Event()
        self._last_log: tuple[str, float] = ("", 0.0)

    def stop(self) -> None:
        self.halt.set()

    def running(self) -> bool:
        return not self.halt.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait; False when the poller was stopped meanwhile."""
        return not self.halt.wait(seconds)

    def enabled(self) -> bool:
        return bool(self.esm.enabled)

    def batch_size(self, default: int) -> int:
        try:
            return max(1, int(self.esm.batch_size or default))
        except (TypeError, ValueError):
            return default

    def window(self) -> float:
        try:
            return max(0.0, float(self.esm.max_batch_window or 0))
        except (TypeError, ValueError):
            return 0.0

    def report_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.esm.function_response_types or [])

    def log(self, message: str) -> None:
        now = time.monotonic()
        last, at = self._last_log
        if message != last or now - at > _LOG_EVERY:
            self._last_log = (message, now)
            _log(f"event source mapping {self.esm.uuid} ({self.source_arn}): {message}")

    def function(self) -> dict:
        """The mapped function (name, qualifier, account, region), read afresh: an update may change it."""
        parsed = parse_function_name(self.esm.function_arn) or {"name": self.esm.function_arn, "qualifier": None}
        return {"name": parsed["name"], "qualifier": parsed["qualifier"],
                "account": parsed.get("account") or self.account, "region": parsed.get("region") or self.region}

    def invoke(self, payload: bytes) -> _Outcome:
        fn = self.function()
        status, headers, body = self.poller.invoke.invoke_sync(fn["account"], fn["region"], fn["name"], fn["qualifier"],
                                                               payload)
        return _Outcome(status, headers.get("X-Amz-Function-Error"), body, headers.get("x-amzn-RequestId"),
                        headers.get("X-Amz-Executed-Version"), headers.get("x-amzn-ErrorType"))

    def role_arn(self) -> str:
        """The function's execution role (Kinesis records carry it as invokeIdentityArn), best effort."""
        from moto.awslambda.models import lambda_backends

        fn = self.function()
        try:
            return lambda_backends[fn["account"]][fn["region"]].get_function(fn["name"], fn["qualifier"]).role or ""
        except Exception:  # noqa: BLE001 - the Invoke that follows reports a missing function
            return ""


@dataclass
class _Record:
    """One Kinesis record read from a shard and not yet processed."""

    seq: str
    key: str
    data: str  # base64, as the event carries it
    arrival: float  # epoch seconds
    size: int  # about what it adds to a payload


class _Segment:
    """Records of a shard to deliver together, with the function errors and invocations they met."""

    def __init__(self, records: list[_Record], errors: int = 0, invokes: int = 0) -> None:
        self.records, self.errors, self.invokes = records, errors, invokes


class _KinesisMapping(_Mapping):
    """A stream's mapping: discovers shards (resharding too) and runs one reader per shard."""

    def __init__(self, poller: EventSourcePoller, account: str, region: str, esm) -> None:
        super().__init__(poller, account, region, esm)
        parts = self.source_arn.split(":")
        self.stream_region, self.stream_account = parts[3], parts[4]
        self.client = poller.client("kinesis", self.stream_region, self.stream_account)
        self.readers: dict[str, _ShardReader] = {}
        self.listed: set[str] = set()
        self.finished: set[str] = set()
        self._state = threading.Lock()
        self._first_error: Exception | None = None
        try:
            # the shards that exist now start at StartingPosition, taken now: LATEST means what is put
            # after CreateEventSourceMapping returned
            self._discover(initial=True)
        except Exception as exc:  # noqa: BLE001 - retried by run()
            self._first_error = exc

    def _list_shards(self) -> list[dict]:
        shards, token = [], None
        while True:
            out = self.client.list_shards(**({"NextToken": token} if token else {"StreamARN": self.source_arn}))
            shards += out.get("Shards", [])
            token = out.get("NextToken")
            if not token:
                return shards

    def _discover(self, initial: bool = False) -> bool:
        """Look at the stream's shards; True when something changed (a shard appeared or closed)."""
        shards = self._list_shards()
        with self._state:
            before = {sid: r.closed() for sid, r in self.readers.items()}, set(self.listed)
            self.listed = {s["ShardId"] for s in shards}
            for shard in shards:
                sid = shard["ShardId"]
                reader = self.readers.get(sid)
                if reader is not None:
                    reader.shard = shard  # EndingSequenceNumber appears when the shard closes
                    continue
                if sid in self.finished:
                    continue
                reader = _ShardReader(self, shard, self.esm.starting_position if initial else "TRIM_HORIZON")
                if initial:
                    reader.iterator = reader.new_iterator()
                self.readers[sid] = reader
                if self.is_alive():
                    reader.start()
            return before != ({sid: r.closed() for sid, r in self.readers.items()}, self.listed)

    def parents_done(self, shard: dict) -> bool:
        """A child shard is read only once its parents are read to their end (per-key order)."""
        with self._state:
            return all(not p or p not in self.listed or p in self.finished
                       for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")))

    def shard_finished(self, shard_id: str, reader_done: bool = True) -> None:
        """``shard_id`` was read to its end: its children may start (and its reader stops, unless
        ``reader_done`` is False: moto keeps putting records into a closed shard after a split)."""
        with self._state:
            self.finished.add(shard_id)
            if reader_done:
                self.readers.pop(shard_id, None)

    def run(self) -> None:
        try:
            self._run()
        finally:  # the readers watch the same halt event: let the batches in flight end
            with self._state:
                readers = [r for r in self.readers.values() if r.is_alive()]
            deadline = time.monotonic() + 2.0
            for r in readers:
                r.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        backoff = _Backoff(1.0, 5.0)
        if self._first_error is not None:
            self.log(f"cannot list the stream's shards: {self._first_error}")
        with self._state:
            readers = list(self.readers.values())
        for r in readers:
            r.start()
        every = _Backoff(SHARDS_EVERY, SHARDS_EVERY_MOST)
        while self.sleep(every.next()):
            try:
                if self._discover(initial=not self.readers and not self.finished and self._first_error is not None):
                    every.reset()
                self._first_error = None
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - a deleted stream, the stack stopping...
                self.log(f"cannot list the stream's shards: {exc}")
                self.sleep(backoff.next())

    # -- delivering a batch ---------------------------------------------------------------------
    def payload(self, shard_id: str, records: list[_Record]) -> bytes:
        role = self.role_arn()
        return json.dumps({"Records": [{
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r.key, "sequenceNumber": r.seq, "data": r.data,
                        "approximateArrivalTimestamp": r.arrival},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard_id}:{r.seq}",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": role, "awsRegion": self.stream_region,
            "eventSourceARN": self.source_arn,
        } for r in records]}).encode()

    def deliver(self, reader: "_ShardReader", batch: list[_Record]) -> int:
        """Process ``batch`` (the head of a shard's unprocessed records) until each of its records is
        processed or discarded; how many of them are (fewer only when the poller stops meanwhile)."""
        done = 0
        segments = deque([_Segment(batch)])
        backoff = _Backoff()
        while segments and self.running():
            if not self.enabled():  # disabled meanwhile: hold the checkpoint until enabled again
                self.sleep(IDLE_POLL)
                continue
            seg = segments[0]
            expired = self._expired(seg.records)
            if expired:
                self.discard(reader.shard_id, seg.records[:expired], "RecordAgeExceeded", None, seg.invokes)
                done += expired
                seg.records = seg.records[expired:]
                if not seg.records:
                    segments.popleft()
                    continue
            outcome = self.invoke(self.payload(reader.shard_id, seg.records))
            if not outcome.invoked:  # not the function's error: retried until the records expire
                self.log(f"shard {reader.shard_id}: Invoke failed ({outcome.describe()}); retrying")
                self.sleep(backoff.next())
                continue
            seg.invokes += 1
            failures = []
            if outcome.ok and self.report_failures():
                failures = outcome.item_failures([r.seq for r in seg.records])
            if outcome.ok and failures == []:
                done += len(seg.records)
                segments.popleft()
                backoff.reset()
                continue
            if failures:  # checkpoint before the first failed record; the rest is retried
                first = min(i for i, r in enumerate(seg.records) if r.seq in set(failures))
                done += first
                seg.records = seg.records[first:]
                seg.errors += 1
            elif self.esm.bisect_on_error and len(seg.records) > 1:
                half = (len(seg.records) + 1) // 2  # splitting consumes no retry
                segments.popleft()
                segments.extendleft([_Segment(seg.records[half:], seg.errors, seg.invokes),
                                     _Segment(seg.records[:half], seg.errors, seg.invokes)])
                continue
            else:
                seg.errors += 1
            retries = self._int(self.esm.max_retry_attempts, -1)
            if retries >= 0 and seg.errors > retries:
                self.discard(reader.shard_id, seg.records, "RetryAttemptsExhausted", outcome, seg.invokes)
                done += len(seg.records)
                segments.popleft()
                backoff.reset()
                continue
            self.sleep(backoff.next())
        return done

    @staticmethod
    def _int(value, default: int) -> int:
        try:
            return int(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    def _expired(self, records: list[_Record]) -> int:
        """How many records at the head are older than MaximumRecordAgeInSeconds (-1: none ever)."""
        age = self._int(self.esm.max_record_age, -1)
        if age < 0:
            return 0
        limit = time.time() - age
        n = 0
        while n < len(records) and records[n].arrival < limit:
            n += 1
        return n

    def discard(self, shard_id: str, records: list[_Record], condition: str, outcome: _Outcome | None,
                invokes: int) -> None:
        """Skip ``records``; their description goes to the OnFailure destination when there is one."""
        first, last = records[0], records[-1]
        self.log(f"shard {shard_id}: {len(records)} record(s) {first.seq}..{last.seq} skipped ({condition})")
        destination = ((self.esm.destination_config or {}).get("OnFailure") or {}).get("Destination")
        if not destination:
            return
        fn = self.function()
        request_context = {"requestId": (outcome.request_id if outcome else None) or str(uuid.uuid4()),
                           "functionArn": self.esm.function_arn, "condition": condition,
                           "approximateInvokeCount": invokes}
        document = {"requestContext": request_context, "version": "1.0", "timestamp": _iso(time.time()),
                    "KinesisBatchInfo": {
                        "shardId": shard_id, "startSequenceNumber": first.seq, "endSequenceNumber": last.seq,
                        "approximateArrivalOfFirstRecord": _iso(first.arrival),
                        "approximateArrivalOfLastRecord": _iso(last.arrival), "batchSize": len(records),
                        "streamArn": self.source_arn}}
        if outcome is not None:
            document["responseContext"] = {"statusCode": outcome.status,
                                           "executedVersion": outcome.version or fn["qualifier"] or "$LATEST",
                                           "functionError": outcome.function_error or ""}
        send_to_destination(self, destination, json.dumps(document))


def send_to_destination(mapping: _Mapping, destination: str, message: str) -> None:
    """Best effort, as AWS's: an SQS queue or an SNS topic (an S3 bucket is not supported locally)."""
    parts = destination.split(":")
    kind = _service(destination)
    try:
        if kind == "sqs":
            sqs = mapping.poller.client("sqs", parts[3], parts[4])
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=message)
        elif kind == "sns":
            mapping.poller.client("sns", parts[3], parts[4]).publish(TopicArn=destination, Message=message)
        else:
            mapping.log(f"OnFailure destination {destination} is not supported locally (SQS and SNS are)")
    except Exception as exc:  # noqa: BLE001 - the destination is best effort
        mapping.log(f"cannot send to the OnFailure destination {destination}: {exc}")


class _ShardReader(threading.Thread):
    """Reads one shard in order and hands its records to the mapping a batch at a time."""

    def __init__(self, mapping: _KinesisMapping, shard: dict, position: str | None) -> None:
        super().__init__(daemon=True, name=f"esm-{mapping.esm.uuid[:8]}-{shard['ShardId'][-4:]}")
        self.mapping, self.shard, self.shard_id = mapping, shard, shard["ShardId"]
        self.position = position or "TRIM_HORIZON"
        self.iterator: str | None = None
        self.pending: list[_Record] = []  # read, not yet processed, in order
        self.pending_bytes = 0
        self.last_read: str | None = None  # sequence number of the last record read
        self.gathering_since: float | None = None  # when the oldest pending record was read
        self.at_end = False  # no next iterator: the shard is closed and read to its end
        self.drained = False  # closed, and a read found nothing more

    def new_iterator(self) -> str:
        kw: dict = {"StreamARN": self.mapping.source_arn, "ShardId": self.shard_id}
        if self.last_read is not None:
            kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=self.last_read)
        elif self.position == "AT_TIMESTAMP":
            stamp = self.mapping.esm.starting_position_timestamp
            if isinstance(stamp, str):
                try:
                    stamp = float(stamp)
                except ValueError:
                    stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            kw.update(ShardIteratorType="AT_TIMESTAMP",
                      Timestamp=dt.datetime.fromtimestamp(float(stamp or 0), dt.timezone.utc))
        else:
            kw["ShardIteratorType"] = self.position
        return self.mapping.client.get_shard_iterator(**kw)["ShardIterator"]

    def closed(self) -> bool:
        return "EndingSequenceNumber" in (self.shard.get("SequenceNumberRange") or {})

    def read(self, limit: int) -> bool:
        """One GetRecords; True when it filled ``limit`` (more may be waiting)."""
        from botocore.exceptions import ClientError

        if self.iterator is None:
            self.iterator = self.new_iterator()
        closed = self.closed()  # known before the read: a closed shard takes no more records
        try:
            out = self.mapping.client.get_records(ShardIterator=self.iterator, Limit=limit, StreamARN=self.mapping.source_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                self.iterator = None
                return True
            raise
        records = out.get("Records") or []
        self.iterator = out.get("NextShardIterator")
        self.at_end = self.iterator is None
        self.drained = self.drained or (closed and not records)
        if records and self.gathering_since is None:
            self.gathering_since = time.monotonic()
        overhead = len(self.mapping.source_arn) + len(self.shard_id) + 400
        for r in records:
            data = base64.b64encode(r["Data"]).decode()
            stamp = r.get("ApproximateArrivalTimestamp")
            arrival = round(stamp.timestamp() if isinstance(stamp, dt.datetime) else float(stamp or time.time()), 3)
            rec = _Record(r["SequenceNumber"], r["PartitionKey"], data, arrival,
                          len(data) + len(r["PartitionKey"]) + 2 * len(r["SequenceNumber"]) + overhead)
            self.pending.append(rec)
            self.pending_bytes += rec.size
        if records:
            self.last_read = records[-1]["SequenceNumber"]
        return len(records) >= limit

    def batch(self, size: int) -> list[_Record]:
        """The head of the pending records: at most ``size``, within the synchronous payload quota."""
        total, n = _ENVELOPE, 0
        for rec in self.pending[:size]:
            if n and total + rec.size > SYNC_LIMIT:
                break
            total += rec.size + 1
            n += 1
        return self.pending[:n]

    def run(self) -> None:
        m = self.mapping
        backoff = _Backoff(0.2, 5.0)
        idle = _Backoff(IDLE_POLL, IDLE_POLL_MOST)
        while m.running():
            try:
                if not m.enabled() or not m.parents_done(self.shard):
                    m.sleep(IDLE_POLL)
                    continue
                size = min(10000, m.batch_size(100))
                if len(self.pending) < size and not self.at_end and self.pending_bytes < SYNC_LIMIT:
                    full = self.read(min(10000, size - len(self.pending)))
                    window = m.window()
                    if self.pending and len(self.pending) < size and window > 0 and not self.at_end:
                        left = self.gathering_since + window - time.monotonic()
                        if left > 0:  # gather for the batching window
                            if not full:
                                m.sleep(min(IDLE_POLL, left))
                            continue
                if not self.pending:
                    if self.at_end:
                        m.shard_finished(self.shard_id)
                        return
                    if self.drained:
                        m.shard_finished(self.shard_id, reader_done=False)
                    m.sleep(idle.next())
                    continue
                idle.reset()
                batch = self.batch(size)
                done = m.deliver(self, batch)
                for rec in self.pending[:done]:
                    self.pending_bytes -= rec.size
                del self.pending[:done]
                if not self.pending:
                    self.gathering_since = None
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - the poller goes on after a pause
                m.log(f"shard {self.shard_id}: {type(exc).__name__}: {exc}")
                m.sleep(backoff.next())


class _SqsMapping(_Mapping):
    """A queue's mapping: receive a batch, invoke, delete what succeeded; one batch at a time."""

    def __init__(self, poller: EventSourcePoller, account: str, region: str, esm) -> None:
        super().__init__(poller, account, region, esm)
        parts = self.source_arn.split(":")
        self.queue_region, self.queue_account, self.queue_name = parts[3], parts[4], parts[5]
        self.fifo = self.queue_name.endswith(".fifo")
        self.client = poller.client("sqs", self.queue_region, self.queue_account)
        self.queue_url: str | None = None
        self._visibility = (30.0, 0.0)  # (seconds, when read)
        self.errors = _Backoff()
        #: FIFO messages left to come back: (when their visibility timeout ends, receipt handles)
        self.held: list[tuple[float, list[str]]] = []

    def visibility_timeout(self) -> float:
        seconds, at = self._visibility
        if time.monotonic() - at > 10:
            attrs = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"])
            seconds = float(attrs.get("Attributes", {}).get("VisibilityTimeout", 30))
            self._visibility = (seconds, time.monotonic())
        return seconds

    def run(self) -> None:
        from botocore.exceptions import ClientError

        backoff = _Backoff(0.2, 5.0)
        while self.running():
            try:
                if not self.enabled():
                    self.sleep(IDLE_POLL)
                    continue
                if self.queue_url is None:
                    self.queue_url = self.client.get_queue_url(QueueName=self.queue_name,
                                                               QueueOwnerAWSAccountId=self.queue_account)["QueueUrl"]
                messages, received_at = self.receive()
                for chunk in self._chunks(messages):
                    self.deliver(chunk, received_at)
                backoff.reset()
            except ClientError as exc:
                if "NonExistentQueue" in str(exc) or "QueueDoesNotExist" in str(exc):
                    self.queue_url = None
                self.log(f"{type(exc).__name__}: {exc}")
                self.sleep(backoff.next())
            except Exception as exc:  # noqa: BLE001 - the poller goes on after a pause
                self.log(f"{type(exc).__name__}: {exc}")
                self.sleep(backoff.next())

    def receive(self) -> tuple[list[dict], float]:
        """Up to BatchSize messages in pages of 10: long-poll for the first, then gather for the
        batching window (none: while full pages come)."""
        size, window = min(10000, self.batch_size(10)), self.window()
        out: list[dict] = []
        started = time.monotonic()
        while self.running() and len(out) < size:
            self._release_held()
            release = min((at for at, _ in self.held), default=None)
            # a long poll must not outlast the release of held messages (moto would see them expire)
            soon = release is not None and release - time.monotonic() < 1.05
            want = min(10, size - len(out))
            left = started + window - time.monotonic()
            if not out:
                wait = 0 if soon else 1  # short enough to notice a stop or a disabled mapping soon
            elif window > 0 and left > 0:
                wait = 1 if left >= 1 and not soon else 0
            elif window > 0:
                break
            else:
                wait = 0
            sent = time.monotonic()  # not later than the moment the messages' visibility timeout starts
            page = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=want, WaitTimeSeconds=wait,
                                               MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]).get(
                "Messages", [])
            if page and not out:
                started = sent
            out += page
            if not out:
                if soon:
                    self.sleep(max(0.0, min(IDLE_POLL, release - time.monotonic())))
                break
            if window <= 0 and len(page) < want:
                break
            if not page and wait == 0:
                self.sleep(min(0.05, max(0.0, left)))
        return out, started

    def _chunks(self, messages: list[dict]):
        chunk: list[dict] = []
        total = _ENVELOPE
        for m in messages:
            size = len(json.dumps(self.record(m)))
            if chunk and total + size > SYNC_LIMIT:
                yield chunk
                chunk, total = [], _ENVELOPE
            chunk.append(m)
            total += size + 1
        if chunk:
            yield chunk

    def record(self, m: dict) -> dict:
        rec = {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m.get("Body", ""),
               "attributes": dict(m.get("Attributes") or {}),
               "messageAttributes": {k: _message_attribute(v) for k, v in (m.get("MessageAttributes") or {}).items()},
               "md5OfBody": m.get("MD5OfBody", "")}
        if m.get("MD5OfMessageAttributes"):
            rec["md5OfMessageAttributes"] = m["MD5OfMessageAttributes"]
        rec.update({"eventSource": "aws:sqs", "eventSourceARN": self.source_arn, "awsRegion": self.queue_region})
        return rec

    def deliver(self, messages: list[dict], received_at: float) -> None:
        payload = json.dumps({"Records": [self.record(m) for m in messages]}).encode()
        backoff = _Backoff()
        # an Invoke that fails before the handler runs is retried while the messages are still ours
        held_until = received_at + self.visibility_timeout() - 0.5
        while True:
            outcome = self.invoke(payload)
            if outcome.invoked:
                break
            delay = backoff.next()
            if time.monotonic() + delay >= held_until or not self.running():
                self.log(f"Invoke failed ({outcome.describe()}); {len(messages)} message(s) return to the queue")
                self._hold(messages, received_at)
                return
            self.sleep(delay)
        if not outcome.ok:  # they come back after the visibility timeout; meanwhile ease off
            self._hold(messages, received_at)
            self.sleep(self.errors.next())
            return
        self.errors.reset()
        keep: set[str] = set()
        if self.report_failures():
            failures = outcome.item_failures([m["MessageId"] for m in messages])
            if failures is None:  # not a valid report: the whole batch failed
                self._hold(messages, received_at)
                return
            keep = set(failures)
            if self.fifo and keep:  # a group's messages after its first failure wait with it, in order
                blocked: set[str] = set()
                for m in messages:
                    group = (m.get("Attributes") or {}).get("MessageGroupId")
                    if m["MessageId"] in keep or group in blocked:
                        keep.add(m["MessageId"])
                        blocked.add(group)
        self._hold([m for m in messages if m["MessageId"] in keep], received_at)
        done = [m for m in messages if m["MessageId"] not in keep]
        for i in range(0, len(done), 10):
            entries = [{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(done[i:i + 10])]
            out = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if out.get("Failed"):
                self.log(f"{len(out['Failed'])} message(s) could not be deleted: {out['Failed'][0].get('Message')}")

    def _hold(self, messages: list[dict], received_at: float) -> None:
        if self.fifo and messages:
            # released a little before moto lets them expire, so that no receive comes in between
            self.held.append((received_at + self.visibility_timeout() - _RELEASE_EARLY, [m["ReceiptHandle"] for m in messages]))

    def _release_held(self) -> None:
        """Make the FIFO messages whose visibility timeout ended visible again in one go (see above)."""
        now = time.monotonic()
        due = [handles for at, handles in self.held if at <= now]
        if not due:
            return
        self.held = [(at, handles) for at, handles in self.held if at > now]
        handles = [h for batch in due for h in batch]
        for i in range(0, len(handles), 10):
            entries = [{"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0} for j, h in enumerate(handles[i:i + 10])]
            # a handle that no longer holds its message (deleted meanwhile) fails harmlessly
            self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)


def _message_attribute(value: dict) -> dict:
    """A message attribute as Lambda's SQS event writes it (binary values in base64)."""
    out: dict = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [base64.b64encode(b).decode() for b in value.get("BinaryListValues") or []]
    out["dataType"] = value.get("DataType", "String")
    return out
