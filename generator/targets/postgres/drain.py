"""The PostgreSQL outbox backend (:class:`PostgresOutbox`): ``drain``, ``status``, ``retry_dead``.

Owns: delivering committed change events from ``<schema>.outbox`` through a delivery
:class:`~sqlambda.delivery.sink.Sink` (today the Lambda sink), outside the database.
The queue holds chunks (one row per up to 1,000 consecutive events of one statement, see
``sql/postgres/outbox/queue.sql.j2``). A worker repeats one short transaction: lock the oldest ready
chunks, about one batch's worth, with ``<schema>.outbox_claim`` (``FOR UPDATE SKIP LOCKED``), read
their undelivered events, cut ONE batch (per trigger, per run of one operation, by the route's
max_rows AND max_bytes, the same code the immediate trigger uses: ``plpython/sqlambda_triggers.py``),
send it through the sink (the Lambda sink uses ``plpython/sqlambda_core.py``'s invoke, so errors are
classified exactly as in the database), record how far each chunk got, and commit. Progress is committed per delivered batch, so
a drainer killed at any moment redelivers at most the batch it had in flight.

Why the row locks are held during the HTTP call: two drainers can then never send the same event
at the same time (the second one skips locked chunks), and a drainer killed mid-batch (kill -9, a
crash, a lost connection) simply releases its locks: the events are still in the queue and are
redelivered, with the same idempotency key (``trigger:txid:chunk.event``), which is the
at-least-once contract Lambdas de-duplicate on.

Failures (``_fail``): an outage is lag, not loss. Transient failures (endpoint unreachable, timeouts,
throttling, 5xx, rejected credentials) retry with capped exponential backoff and jitter until the
event is older than the route's ``max_age_s`` (default a day); the Lambda's own error counts toward
``retry.max_attempts``; a 4xx that can never succeed (404 no such function, 413, 400) is a poison at
once. Poisons and events past their age go to ``<schema>.outbox_dead``. While a chunk waits for its
retry, the claim holds back that trigger's later chunks, so events never overtake older ones.

Trust: the queue may hold rows a table writer appended (row-level security admits only its own
triggers' events, in the shape the CHECK constraints allow); a chunk whose arrays hold fewer events
than it claims is moved to the dead letters instead of blocking the queue. A NOTIFY on the channel,
which any role can send, only wakes a drainer for one poll: its payload is ignored and polls after
a wake are spaced (``MIN_POLL_SECONDS``).

Must not: print (it logs one INFO line per batch to the ``sqlambda.drain`` logger), parse
command-line options (``cli/outbox_cmd.py`` calls it through ``sqlambda.api``), or hold DDL (templates in
``sql/postgres/outbox/``). Routes (Lambda, mode, limits) come from ``<schema>.outbox_route``, which
install writes from the spec, so draining needs only a DSN. Where requests go: ``--endpoint-url``,
else the drain process's ``AWS_ENDPOINT_URL``, else a DBA's ``ALTER DATABASE ... SET
sqlambda.endpoint_url`` (read from the catalog, like the functions in the database do), else the spec.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Iterator

from sqlambda import resources
from sqlambda.delivery.model import DrainStats, Failure, OutboxStatus, Route, TriggerStatus, backoff_seconds
from sqlambda.delivery.records import Record, RecordSinks, deliver
from sqlambda.delivery.sink import LambdaSink, Sink
from sqlambda.errors import ConnectionFailed, OutboxError, UsageError
from sqlambda.targets.postgres import triggers
from sqlambda.targets.postgres.connection import close_quietly
from sqlambda.targets.postgres.connection import connect as pg_connect
from sqlambda.targets.postgres.connection import schema_sql as _sql
from sqlambda.targets.postgres.shadow import ShadowWorker

DEFAULT_SCHEMA = "sqlambda"
#: how often an idle follower looks for events whose backoff ended (NOTIFY wakes it for new ones)
POLL_SECONDS = 1.0
#: the least time between two polls that found nothing: a flood of NOTIFYs (any role may send one)
#: costs at most this many empty polls per second per worker
MIN_POLL_SECONDS = 0.05
log = logging.getLogger("sqlambda.drain")
log.addHandler(logging.NullHandler())  # a library logs only where its user configured logging


#: the shared PL/Python modules, loaded as plain modules (the same files the database runs)
runtime_module = resources.plpython_module


# -- connections -------------------------------------------------------------------------------------
def connect(dsn: str, autocommit: bool = False) -> Any:
    return pg_connect(dsn, autocommit=autocommit, application_name="sqlambda-drain")


def _check_schema(conn: Any, schema: str) -> tuple[bool, bool]:
    """(has an outbox, has a modernize shadow queue); neither is an error."""
    outbox_q, shadow_q = conn.execute(
        "SELECT pg_catalog.to_regclass(pg_catalog.format('%%I.outbox', %s::text)) IS NOT NULL, "
        "pg_catalog.to_regclass(pg_catalog.format('%%I.modernize_shadow', %s::text)) IS NOT NULL", (schema, schema)).fetchone()
    if not (outbox_q or shadow_q):
        raise OutboxError(
            f"no outbox in schema {schema!r} of this database",
            hint="install a spec with a trigger using delivery: outbox (sqlambda install SPEC), or pass --schema",
        )
    return outbox_q, shadow_q


def _require_outbox(conn: Any, schema: str) -> None:
    if not _check_schema(conn, schema)[0]:
        raise OutboxError(f"no outbox in schema {schema!r} of this database (only modernize's shadow queue)",
                          hint="sqlambda modernize status shows the shadow queue")


def load_routes(conn: Any, schema: str) -> dict[str, Route]:
    """The routes, with a DBA's ALTER DATABASE / ALTER ROLE ALL SET of endpoint and region applied.

    A sink route without key columns in the spec gets its table's primary key, read from the
    catalog here (none: every change of the table shares one key, the table's name)."""
    rows = conn.execute(_sql(schema,
        "SELECT r.trigger_name, r.table_name, r.target, r.qualifier, r.mode, r.max_rows, r.max_bytes, r.max_attempts, "
        "r.base_delay_ms, r.max_delay_ms, r.region, r.endpoint_url, r.max_age_s, r.sink, "
        "coalesce(r.key_columns, CASE WHEN r.sink <> 'lambda' AND r.table_name <> '' THEN "
        "  ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i "
        "        CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) "
        "        JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "        WHERE i.indrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(pg_catalog.split_part(r.table_name, '.', 1)) "
        "              || '.' || pg_catalog.quote_ident(pg_catalog.split_part(r.table_name, '.', 2))) "
        "          AND i.indisprimary ORDER BY k.pos) END), "
        "r.source FROM {s}.outbox_route r")).fetchall()
    routes = [Route(*r[:14], key_columns=None if r[14] is None else tuple(r[14]), source=r[15]) for r in rows]
    return {route.trigger_name: route for route in with_dba_settings(conn, routes)}


def with_dba_settings(conn: Any, routes: list[Route]) -> list[Route]:
    """``routes`` with a DBA's ALTER DATABASE / ALTER ROLE ALL SET of endpoint and region applied."""
    core = runtime_module("sqlambda_core")
    admin = conn.execute(core._SETTINGS_SQL).fetchone()
    # only the DBA's values (ALTER ROLE ALL, ALTER DATABASE: the first two columns): the drain
    # session's own settings are not the database's decision
    settings = {"cluster": admin[0], "database": admin[1]}
    out = []
    for route in routes:
        saved = dict(core.DEFAULTS)
        try:
            core.DEFAULTS.update(region=route.region, endpoint_url=route.endpoint_url)
            cfg, _sources, _ignored = core.resolve_settings(settings)
        except core.LambdaFailure as failure:
            raise OutboxError(failure.message, hint=failure.hint) from None
        finally:
            core.DEFAULTS.clear()
            core.DEFAULTS.update(saved)
        out.append(replace(route, region=cfg["region"], endpoint_url=cfg["endpoint_url"]))
    return out


# -- one worker ----------------------------------------------------------------------------------------
#: lock the oldest ready chunks holding at least ``target`` events (``outbox/claim_function.sql.j2``),
#: with their fields: (id, base, trigger, op, txid, ts, attempts, age in seconds, function errors, n, done)
_CLAIM = ("SELECT chunk_id, chunk_base, c_trigger, c_op, c_txid, c_ts, c_attempts, c_age, c_function_errors, c_n, c_done "
          "FROM {s}.outbox_claim(%s, %s)")
#: the same for one ordered route (Kinesis, SQS FIFO), its route row locked: ``outbox/claim_function.sql.j2``
_CLAIM_ORDERED = _CLAIM.replace("outbox_claim(", "outbox_claim_ordered(")
#: the chunks named by two parallel arrays of ids and bases
_CHUNKS = "(id, base) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest(%s::bigint[]), pg_catalog.unnest(%s::integer[])))"
#: the claimed chunks' undelivered events, one row each, in queue order. A separate statement from
#: the claim, so its snapshot already sees the latest version of every chunk the claim locked
_EVENTS = (
    "SELECT id, base, e.k::integer, e.nw::text, e.od::text "
    "FROM {s}.outbox o CROSS JOIN LATERAL ROWS FROM (pg_catalog.json_array_elements(o.new_rows), "
    "pg_catalog.json_array_elements(o.old_rows)) WITH ORDINALITY AS e(nw, od, k) "
    "WHERE " + _CHUNKS + " AND e.k > o.done AND e.k <= o.n "
    "ORDER BY id, base, e.k"
)
#: the first k events of each chunk are settled (delivered, or dead-lettered on their own)
_PROGRESS = (
    "WITH d(id, base, k) AS (SELECT * FROM ROWS FROM (pg_catalog.unnest(%s::bigint[]), pg_catalog.unnest(%s::integer[]), pg_catalog.unnest(%s::integer[]))), "
    "gone AS (DELETE FROM {s}.outbox o USING d WHERE o.id = d.id AND o.base = d.base AND d.k >= o.n) "
    "UPDATE {s}.outbox o SET done = d.k FROM d WHERE o.id = d.id AND o.base = d.base AND d.k < o.n"
)
_FAIL = (
    "UPDATE {s}.outbox SET attempts = attempts + 1, function_errors = function_errors + %s, last_error = %s, "
    "next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => %s) WHERE " + _CHUNKS
)
_COLS = "id, base, trigger_name, op, txid, created_at, n, done, new_rows, old_rows, attempts, function_errors, last_error"
#: chunks that are poison or too old move to the dead letters whole (their `done` says what was delivered)
_BURY = (
    "WITH moved AS (DELETE FROM {s}.outbox WHERE " + _CHUNKS + " RETURNING " + _COLS + "), "
    "buried AS (INSERT INTO {s}.outbox_dead (" + _COLS + ") SELECT id, base, trigger_name, op, txid, created_at, n, done, "
    "new_rows, old_rows, attempts, function_errors, %s FROM moved RETURNING n - done AS events) "
    "SELECT coalesce(sum(events), 0)::bigint FROM buried"
)
#: one event that can never fit a request goes to the dead letters on its own, keeping its key
_BURY_ONE = (
    "INSERT INTO {s}.outbox_dead (" + _COLS + ") "
    "SELECT id, base + %(k)s - 1, trigger_name, op, txid, created_at, 1, 0, "
    "CASE WHEN new_rows IS NULL THEN NULL ELSE pg_catalog.json_build_array(new_rows -> (%(k)s - 1)) END, "
    "CASE WHEN old_rows IS NULL THEN NULL ELSE pg_catalog.json_build_array(old_rows -> (%(k)s - 1)) END, "
    "attempts, function_errors, %(error)s FROM {s}.outbox WHERE id = %(id)s AND base = %(base)s"
)


#: a sink record's position: chunk id * POSITION_SPAN + its event number (a chunk holds at most
#: CHUNK_ROWS events, so positions of one chunk never reach the next chunk's)
POSITION_SPAN = 1_000_000
#: requests per record batch before a still-failing record waits for the outbox's backoff
SINK_ATTEMPTS = 4


def call_row(new: str) -> tuple[str, str]:
    """A send_after_commit queue row's image (``{"sender": role, "payload": ...}``, see
    ``outbox/send_function.sql.j2``) as (sender, payload as JSON text); raises on anything else."""
    call = json.loads(new)
    return str(call["sender"]), json.dumps(call["payload"], separators=(",", ":"))


def idempotency_key(trigger: str, txid: str, chunk_id: int, base: int, k: int) -> str:
    """``trigger:txid:chunk.event``: the same for every delivery of one event, unique across events."""
    return f"{trigger}:{txid}:{chunk_id}.{base + k}"


class DrainWorker:
    """One connection, one claim-send-commit loop. Several run in threads for ``--workers N``."""

    def __init__(self, dsn: str, schema: str, sink: Sink, stats: DrainStats, claim_limit: int | None = None,
                 on_batch: Callable[[str, int], None] | None = None, cutoff: Any = None,
                 records: RecordSinks | None = None) -> None:
        self.conn = connect(dsn)
        self.records = records or RecordSinks()
        self.database = self.conn.info.dbname
        #: with --once, events whose retry falls after the run started wait for the next run, so one
        #: run never burns through an event's attempts against an endpoint that is down
        self.cutoff = cutoff
        self.schema = schema
        self.sink = sink
        self.stats = stats
        self.claim_limit = claim_limit
        self.on_batch = on_batch
        #: (id, base) -> (done as this worker left it, the chunk's events after that)
        self._cache: dict[tuple[int, int], tuple[int, list]] = {}
        self._settled: dict[tuple[int, int], int] = {}
        self.trig = runtime_module("sqlambda_triggers")
        self._ordered_first = True
        self.routes = load_routes(self.conn, schema)
        self.conn.commit()
        self._q = {name: _sql(schema, text) for name, text in
                   (("claim", _CLAIM), ("claim_ordered", _CLAIM_ORDERED), ("events", _EVENTS), ("progress", _PROGRESS), ("fail", _FAIL),
                    ("bury", _BURY), ("bury_one", _BURY_ONE))}

    def close(self) -> None:
        close_quietly(self.conn)

    def _limit(self) -> int:
        """Events to claim per transaction: one batch of the largest route (a batch is cut per trigger)."""
        if self.claim_limit:
            return self.claim_limit
        return max(1, max((r.max_rows for r in self.routes.values()), default=500))

    def run_once(self) -> int:
        """One transaction: claim, settle what cannot be sent, send ONE batch, record, commit.

        Returns how many events were claimed (0: none ready).
        """
        conn = self.conn
        with conn.transaction():
            # ordered routes and the others in turn, so neither kind starves the other
            first, second = ("claim_ordered", "claim") if self._ordered_first else ("claim", "claim_ordered")
            self._ordered_first = not self._ordered_first
            claimed = conn.execute(self._q[first], (self._limit(), self.cutoff)).fetchall()
            if not claimed:
                claimed = conn.execute(self._q[second], (self._limit(), self.cutoff)).fetchall()
            self.stats.add(polls=1)
            if not claimed:
                return 0
            chunks = {(c[0], c[1]): c for c in claimed}
            if any(c[2] not in self.routes for c in chunks.values()):
                self.routes = load_routes(conn, self.schema)
            groups: dict[str, list] = {}
            seen: set[tuple[int, int]] = set()
            n = 0
            rows = self._events(chunks)
            self._settled: dict[tuple[int, int], int] = {}
            for cid, base, k, new, old in rows:
                chunk = chunks[(cid, base)]
                groups.setdefault(chunk[2], []).append((chunk, k, new, old))
                seen.add((cid, base))
                n += 1
            hollow = [key for key in chunks if key not in seen]
            if hollow:
                # its arrays hold fewer events than it says: nothing left to send, and left in place it
                # would be claimed first forever
                self._bury(hollow, "[22000] the chunk holds fewer events than its n says; nothing more to send")
            for trigger, events in groups.items():
                self._deliver(trigger, events)
                break  # one batch per transaction: progress is committed per delivered batch
            self._keep(rows, self._settled)
        return max(n, len(claimed))

    def _events(self, chunks: dict) -> list[tuple]:
        """The undelivered events ``(id, base, k, new, old)`` of the claimed chunks, in queue order.

        A chunk larger than a batch is claimed again by the next step: its events left over from
        this step's read are kept, and reused when the chunk comes back with exactly the progress
        this worker recorded (no other drainer touched it), instead of expanding its arrays again.
        """
        cache, self._cache = self._cache, {}
        out: dict[tuple[int, int], list] = {}
        missing = []
        for key, chunk in chunks.items():
            kept = cache.get(key)
            if kept is not None and kept[0] == chunk[10]:
                out[key] = kept[1]
            else:
                missing.append(key)
        if missing:
            for row in self.conn.execute(self._q["events"], ([k[0] for k in missing], [k[1] for k in missing])).fetchall():
                out.setdefault((row[0], row[1]), []).append(row)
        return [e for key in sorted(out) for e in out[key]]

    def _keep(self, events: list, settled: dict[tuple[int, int], int]) -> None:
        """Remember the events after ``settled[chunk]`` of the chunks this step made progress in."""
        rest: dict[tuple[int, int], list] = {}
        for cid, base, k, new, old in events:
            done = settled.get((cid, base))
            if done is not None and k > done:
                rest.setdefault((cid, base), []).append((cid, base, k, new, old))
        self._cache = {key: (settled[key], evs) for key, evs in rest.items()}

    def _actions(self, trigger: str, route: Route, events: list) -> Iterator[tuple]:
        """The trigger's events ``(chunk row, k, new, old)`` as ordered actions: ("send", payload,
        tags) or ("bury", tag, error), where a tag is ``(chunk id, base, k, attempts)``. A generator:
        a step sends one batch, so the events after it are never formatted in that step (a claimed
        chunk holds up to 1,000 events; formatting all of them every step cost a third of the CPU).

        One batch = one run of one operation, cut by the route's max_rows and max_bytes; a change of
        operation starts a new batch so order is kept. An event too big for any request is buried
        in its place in the sequence, so progress through its chunk stays a simple count.
        """
        trig = self.trig
        limit = trig.effective_max_bytes(route.mode, route.max_bytes)
        i = 0
        while i < len(events):
            op = events[i][0][3]
            j = i
            while j < len(events) and events[j][0][3] == op:
                j += 1
            if op == "call":
                # send_after_commit: each payload is one invocation, as the caller wrote it
                quota = trig.effective_max_bytes(route.mode, trig.SYNC_LIMIT)
                for chunk, k, new, _old in events[i:j]:
                    tag = (chunk[0], chunk[1], k, chunk[6])
                    try:
                        _sender, new = call_row(new)
                    except (ValueError, TypeError, KeyError) as exc:
                        yield ("bury", tag, f"[22000] not a send_after_commit record ({type(exc).__name__}: {exc})")
                        continue
                    size = len(new.encode("utf-8"))
                    if size > quota:
                        yield ("bury", tag, f"[54000] the send_after_commit payload is {size} bytes, over Lambda's "
                                            f"{quota} bytes for a {route.mode} call")
                        continue
                    yield ("send", new, [tag])
                i = j
                continue
            prefix, suffix = trig.envelope(trigger, route.table_name, op)
            batcher = trig.Batcher(prefix, suffix, route.max_rows, limit)
            heads: dict = {}
            add = batcher.add
            for chunk, k, new, old in events[i:j]:
                cid, base, txid, ts, attempts = chunk[0], chunk[1], chunk[4], chunk[5], chunk[6]
                tag = (cid, base, k, attempts)
                parts = heads.get((cid, base))
                if parts is None:
                    # what the chunk's records share, encoded once: the key up to the event's number
                    parts = heads[(cid, base)] = trig.record_parts(idempotency_key(trigger, txid, cid, 0, 0)[:-1], txid, ts)
                try:
                    done = add(trig.record_at(parts, base + k, new, old), tag)
                except trig.OversizeRecord as exc:
                    # retrying cannot make it smaller: straight to dead-letter, with the reason
                    last = batcher.flush()
                    if last is not None:
                        yield ("send", last[0], last[1])
                    yield ("bury", tag, f"[54000] event is {exc.size} bytes as a batch, over the limit of "
                                    f"{exc.limit} bytes (batch.max_bytes / Lambda quota); raise batch.max_bytes "
                                    f"or send fewer columns")
                    continue
                if done is not None:
                    yield ("send", done[0], done[1])
            last = batcher.flush()
            if last is not None:
                yield ("send", last[0], last[1])
            i = j

    def _deliver(self, trigger: str, events: list) -> None:
        """Bury what cannot be sent ahead of the first batch, then send that one batch."""
        route = self.routes.get(trigger)
        chunk_of = {(c[0], c[1]): c for c, _k, _n, _o in events}
        if route is None:
            tags = [(c[0], c[1], k, c[6]) for c, k, _new, _old in events]
            self._fail(None, tags, Failure("transient", f"no route for trigger {trigger!r} in {self.schema}.outbox_route "
                                                        "(reinstall the spec)"), chunk_of)
            return
        if route.sink != "lambda":
            self._deliver_records(trigger, route, events, chunk_of)
            return
        for action, body, extra in self._actions(trigger, route, events):
            if action == "bury":
                self._bury_event(trigger, route, body, extra)
                self._progress([body])
                self.stats.add(failed_batches=1)
                continue
            attempt = max(t[3] for t in extra) + 1
            started = time.monotonic()
            failure = self.sink.send(route, body)
            latency_ms = (time.monotonic() - started) * 1000.0
            if failure is None:
                self._progress(extra)
                self.stats.add(delivered=len(extra), batches=1)
                log.info("batch trigger=%s lambda=%s rows=%d latency_ms=%.1f attempt=%d ok",
                         trigger, route.lambda_name, len(extra), latency_ms, attempt)
                if self.on_batch:
                    self.on_batch(trigger, len(extra))
            else:
                log.warning("batch trigger=%s lambda=%s rows=%d latency_ms=%.1f attempt=%d failed (%s): %s",
                            trigger, route.lambda_name, len(extra), latency_ms, attempt, failure.kind, failure.text)
                self._fail(route, extra, failure, chunk_of)
            return

    def _records(self, trigger: str, route: Route, events: list) -> tuple[list[Record | str], list[tuple]]:
        """Up to one batch (the route's max_rows) of events as sink records, with their tags; an event
        that cannot be made a record (a queue row written by hand that the CHECKs let through: an
        image that is not an object, a key that is not text) is the reason why instead, and goes to
        the dead letters in its place: one bad row never stops the drainer.

        A change event is the envelope with one record, the database and its position; its key is
        ``[table, key column values...]`` of the row (the new image, the old one for a delete), so
        every change of one row goes to one shard or message group. A send_after_commit record is
        the same envelope with operation "call", the sender and the payload as ``new`` (so it can
        never pass for a table's change), keyed by the caller's key, else by its idempotency key."""
        trig = self.trig
        heads: dict = {}
        parts: dict = {}
        keys = list(route.key_columns or ())
        records: list[Record | str] = []
        tags = []
        loads = json.loads
        for chunk, k, new, old in events[:route.max_rows]:
            cid, base, op, txid, ts = chunk[0], chunk[1], chunk[3], chunk[4], chunk[5]
            ikey = idempotency_key(trigger, txid, cid, base, k)
            tags.append((cid, base, k, chunk[6]))
            p = parts.get((cid, base))
            if p is None:
                p = parts[(cid, base)] = trig.record_parts(idempotency_key(trigger, txid, cid, 0, 0)[:-1], txid, ts)
            head = heads.get(op)
            if head is None:
                head = heads[op] = trig.sink_head(route.spec_trigger, route.table_name, op, self.database)
            try:
                if op == "call":
                    sender, payload = call_row(new)
                    key = loads(old) if old is not None else ikey
                    if not isinstance(key, str) or not key:
                        raise TypeError(f"the key must be non-empty text, not {old}")
                    data = trig.sink_record(head + ',"sender":' + json.dumps(sender),
                                            cid * POSITION_SPAN + base + k, trig.record_at(p, base + k, payload, None))
                    records.append(Record(data, key, ikey, f"{route.spec_trigger} call"))
                    continue
                row = loads(new if new is not None else old) if keys else {}
                key = json.dumps([route.table_name, *[row.get(c) for c in keys]], separators=(",", ":"), default=str)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                records.append(f"[22000] the queued event cannot be made a {route.sink} record ({type(exc).__name__}: {exc})")
                continue
            data = trig.sink_record(head, cid * POSITION_SPAN + base + k, trig.record_at(p, base + k, new, old))
            records.append(Record(data, key, ikey, f"{route.table_name} {op}"))
        return records, tags

    def _deliver_records(self, trigger: str, route: Route, events: list, chunk_of: dict) -> None:
        """Send up to one batch to a record sink; settle the prefix that arrived (and the records the
        service refused for good, each dead-lettered in its place with the reason); the first record
        still failing after the in-request retries, and everything after it, waits for the backoff."""
        sink = self.records.get(route.sink, route.lambda_name, route.region, route.endpoint_url, route.source)
        built, tags = self._records(trigger, route, events)
        good = [i for i, r in enumerate(built) if not isinstance(r, str)]
        started = time.monotonic()
        result = deliver(sink, [built[i] for i in good], max_attempts=SINK_ATTEMPTS,
                         base_delay_s=route.base_delay_ms / 1000.0, max_delay_s=min(route.max_delay_ms / 1000.0, 2.0))
        latency_ms = (time.monotonic() - started) * 1000.0
        outcome: list[Failure | None] = [Failure("permanent", r) if isinstance(r, str) else None for r in built]
        for i, failure in zip(good, result.outcome):
            outcome[i] = failure
        settled: list[tuple] = []
        sent = 0
        stop = None
        for i, (tag, failure) in enumerate(zip(tags, outcome)):
            if failure is None:
                settled.append(tag)
                sent += 1
            elif failure.kind == "permanent":
                self._bury_event(trigger, route, tag, failure.text)
                settled.append(tag)
            else:
                stop = (i, failure)
                break
        if settled:
            self._progress(settled)
        if sent:
            self.stats.add(delivered=sent, batches=1)
            if self.on_batch:
                self.on_batch(trigger, sent)
        log.info("batch route=%s sink=%s:%s rows=%d requests=%d latency_ms=%.1f%s", trigger, route.sink,
                 route.lambda_name, sent, result.requests, latency_ms, "" if stop is None else " partial")
        if stop is not None:
            i, failure = stop
            self._fail(route, tags[i:], failure, chunk_of)

    def _bury_event(self, trigger: str, route: Route, tag: tuple, error: str) -> None:
        """Dead-letter the one event ``tag`` names, in its place, with the reason (the caller records
        the progress past it)."""
        cid, base, k, _attempts = tag
        self.conn.execute(self._q["bury_one"], {"id": cid, "base": base, "k": k, "error": error[:4000]})
        self.stats.add(failed_events=1, dead=1, last_error=error)
        log.warning("dead-lettered route=%s %s=%s rows=1 reason=%s", trigger, route.sink, route.lambda_name, error)

    def _progress(self, tags: list[tuple]) -> None:
        """Record that the events of ``tags`` are settled: chunks fully settled are deleted."""
        last: dict[tuple[int, int], int] = {}
        for cid, base, k, _attempts in tags:
            last[(cid, base)] = max(k, last.get((cid, base), 0))
        self.conn.execute(self._q["progress"], ([c[0] for c in last], [c[1] for c in last], list(last.values())))
        self._settled.update(last)

    def _bury(self, keys: list[tuple[int, int]], error: str) -> int:
        for key in keys:
            self._settled.pop(key, None)
        dead = int(self.conn.execute(self._q["bury"], ([k[0] for k in keys], [k[1] for k in keys], error[:4000])).fetchone()[0])
        self.stats.add(dead=dead, last_error=error)
        return dead

    def _fail(self, route: Route | None, tags: list[tuple], failure: Failure, chunk_of: dict) -> None:
        """Record a failed batch on the chunks it touched; bury them when the failure says they are poison."""
        keys = list(dict.fromkeys((t[0], t[1]) for t in tags))
        self.stats.add(failed_batches=1, failed_events=len(tags), last_error=failure.text)
        attempts = max(chunk_of[k][6] for k in keys)
        delay = backoff_seconds(route, attempts + 1) if route else 60.0
        ids, bases = [k[0] for k in keys], [k[1] for k in keys]
        self.conn.execute(self._q["fail"], (1 if failure.kind == "function" else 0, failure.text[:4000], delay, ids, bases))
        if route is None:
            return  # no route (yet): never a reason to give an event up
        if failure.kind == "permanent":
            self._bury(keys, failure.text)
        elif failure.kind == "function" and max(chunk_of[k][8] for k in keys) + 1 >= route.max_attempts:
            self._bury(keys, f"{failure.text} (the Lambda's error {route.max_attempts} times: retry.max_attempts)")
        elif failure.kind == "transient" and max(chunk_of[k][7] for k in keys) > route.max_age_s:
            self._bury(keys, f"{failure.text} (still failing when older than retry.max_age_s = {route.max_age_s} s)")


# -- drain ----------------------------------------------------------------------------------------------
def drain(dsn: str, *, schema: str = DEFAULT_SCHEMA, follow: bool = False, workers: int = 1,
          endpoint_url: str | None = None, claim_limit: int | None = None, request_timeout_ms: int = 30000,
          stop: threading.Event | None = None, on_batch: Callable[[str, int], None] | None = None) -> DrainStats:
    """Deliver queued events. ``follow=False`` (--once): until no event is ready, then return.

    ``follow=True``: keep going; LISTEN wakes the workers as soon as a transaction that queued events
    commits, and a short poll picks up events whose backoff ended. Returns when ``stop`` is set.
    """
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    import psycopg

    stop = stop or threading.Event()
    while True:
        try:
            with connect(dsn) as conn:
                has_outbox, has_shadow = _check_schema(conn, schema)
                cutoff = None if follow else conn.execute("SELECT pg_catalog.clock_timestamp()").fetchone()[0]
            break
        except (ConnectionFailed, psycopg.OperationalError) as exc:
            # a follower outlives the database restarting (or still recovering) at its start, too
            if not follow:
                raise
            log.warning("waiting for the database: %s", str(getattr(exc, "message", exc)).splitlines()[0])
            if stop.wait(1.0):
                return DrainStats()
    sink = LambdaSink(endpoint_url, request_timeout_ms=request_timeout_ms)
    records = RecordSinks(endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
                          read_timeout_s=request_timeout_ms / 1000.0)
    stats = DrainStats()
    wake = threading.Event()
    errors: list[BaseException] = []
    channel = triggers.channel(schema)

    def listen() -> None:
        from psycopg import sql

        while not stop.is_set():
            try:
                with connect(dsn, autocommit=True) as lc:
                    lc.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    wake.set()  # events may have arrived while (re)connecting
                    while not stop.is_set():
                        # the payload is never read: any role may NOTIFY this channel
                        for _ in lc.notifies(timeout=0.5, stop_after=1):
                            wake.set()
            except Exception:  # noqa: BLE001 - the database restarting must not end a follower
                if stop.wait(1.0):
                    return

    def work() -> None:
        w = sw = None
        try:
            while not stop.is_set():
                if (has_outbox and w is None) or (has_shadow and sw is None):
                    try:
                        if has_outbox and w is None:
                            w = DrainWorker(dsn, schema, sink, stats, claim_limit, on_batch, cutoff, records)
                        if has_shadow and sw is None:
                            sw = ShadowWorker(connect(dsn), schema, sink, stats, cutoff)
                    except (ConnectionFailed, psycopg.OperationalError):
                        if not follow:
                            raise
                        stop.wait(1.0)
                        continue
                try:
                    claimed = (w.run_once() if w is not None else 0) + (sw.run_once() if sw is not None else 0)
                except Exception as exc:  # noqa: BLE001
                    if follow and isinstance(exc, psycopg.OperationalError):
                        for x in (w, sw):
                            if x is not None:
                                x.close()
                        w = sw = None
                        stop.wait(1.0)
                        continue
                    raise
                if claimed:
                    continue
                if not follow:
                    return
                wake.wait(POLL_SECONDS)
                wake.clear()
                stop.wait(MIN_POLL_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller thread
            errors.append(exc)
            stop.set()
        finally:
            for x in (w, sw):
                if x is not None:
                    x.close()

    threads = [threading.Thread(target=work, name=f"sqlambda-drain-{i}", daemon=True) for i in range(workers)]
    listener = threading.Thread(target=listen, name="sqlambda-drain-listen", daemon=True) if follow else None
    if listener:
        listener.start()
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    finally:
        stop.set()
        if listener:
            listener.join(2)
    if errors:
        exc = errors[0]
        if isinstance(exc, (OutboxError, ConnectionFailed, UsageError)):
            raise exc
        raise OutboxError(f"drain failed: {type(exc).__name__}: {exc}") from exc
    return stats


# -- administration ---------------------------------------------------------------------------------------
def status(dsn: str, schema: str = DEFAULT_SCHEMA) -> OutboxStatus:
    """Depth, in-flight, waiting, dead and the oldest event's age, in total and per trigger.

    Counts are events (a queue row holds a chunk of them). In-flight events are the ones a drainer
    holds locked right now: counted as the queued events whose chunk this transaction cannot take a
    KEY SHARE lock on (SKIP LOCKED), then rolled back. KEY SHARE
    conflicts only with the drainers' FOR UPDATE, so writers are never blocked.
    """
    with connect(dsn) as conn:
        _require_outbox(conn, schema)
        rows = conn.execute(_sql(schema, """
            WITH q AS (
                SELECT trigger_name, sum(n - done) AS queued,
                       sum(n - done) FILTER (WHERE next_attempt_at IS NULL OR next_attempt_at <= pg_catalog.now()) AS ready,
                       sum(n - done) FILTER (WHERE next_attempt_at > pg_catalog.now()) AS waiting,
                       extract(epoch FROM pg_catalog.clock_timestamp() - min(created_at))::float8 AS oldest
                  FROM {s}.outbox GROUP BY trigger_name),
            free AS (
                SELECT trigger_name, sum(events) AS n
                  FROM (SELECT trigger_name, n - done AS events FROM {s}.outbox FOR KEY SHARE SKIP LOCKED) f
                 GROUP BY trigger_name),
            d AS (SELECT trigger_name, sum(n - done) AS n FROM {s}.outbox_dead GROUP BY trigger_name),
            names AS (SELECT trigger_name FROM q UNION SELECT trigger_name FROM d
                      UNION SELECT trigger_name FROM {s}.outbox_route)
            SELECT n.trigger_name, r.table_name, r.target, r.sink, coalesce(q.queued, 0), coalesce(q.ready, 0),
                   coalesce(q.waiting, 0), coalesce(q.queued, 0) - coalesce(free.n, 0), coalesce(d.n, 0), q.oldest
              FROM names n
              LEFT JOIN q USING (trigger_name) LEFT JOIN free USING (trigger_name)
              LEFT JOIN d USING (trigger_name) LEFT JOIN {s}.outbox_route r USING (trigger_name)
             ORDER BY n.trigger_name""")).fetchall()
        conn.rollback()
    triggers = tuple(TriggerStatus(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), max(0, int(r[7])), int(r[8]),
                                   None if r[9] is None else round(float(r[9]), 3)) for r in rows)
    ages = [t.oldest_age_seconds for t in triggers if t.oldest_age_seconds is not None]
    return OutboxStatus(
        schema=schema,
        depth=sum(t.queued for t in triggers),
        in_flight=sum(t.in_flight for t in triggers),
        waiting_retry=sum(t.waiting_retry for t in triggers),
        dead=sum(t.dead for t in triggers),
        oldest_age_seconds=max(ages) if ages else None,
        triggers=triggers,
    )


def retry_dead(dsn: str, schema: str = DEFAULT_SCHEMA, *, trigger: str | None = None,
               ids: list[int] | None = None) -> int:
    """Move dead-lettered events (all, one trigger's, or the given chunk ids) back into the queue, ready now.

    A chunk id is the number between the txid and the dot of an idempotency key. Chunks keep their
    id, base and progress, hence every event keeps its idempotency key; their attempt counts start
    again at zero. Returns how many events were requeued.
    """
    with connect(dsn) as conn:
        _require_outbox(conn, schema)
        with conn.transaction():
            cur = conn.execute(_sql(schema, """
                WITH moved AS (
                    DELETE FROM {s}.outbox_dead
                     WHERE (%(trigger)s::text IS NULL OR trigger_name = %(trigger)s::text)
                       AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
                    RETURNING id, base, trigger_name, op, txid, created_at, n, done, new_rows, old_rows, last_error),
                requeued AS (
                    INSERT INTO {s}.outbox (id, base, trigger_name, op, txid, created_at, n, done, new_rows, old_rows,
                                            attempts, function_errors, last_error)
                    SELECT id, base, trigger_name, op, txid, created_at, n, done, new_rows, old_rows, 0, 0, last_error
                      FROM moved ORDER BY id, base
                    RETURNING n - done AS events)
                SELECT coalesce(sum(events), 0)::bigint FROM requeued"""),
                {"trigger": trigger, "ids": ids})
            n = int(cur.fetchone()[0])
            if n:
                conn.execute("SELECT pg_catalog.pg_notify(%s, 'retry-dead')", (triggers.channel(schema),))
    return n


class PostgresOutbox:
    """The PostgreSQL outbox behind ``sqlambda drain`` and ``sqlambda outbox`` (an OutboxBackend)."""

    def drain(self, dsn: str, *, schema: str | None, follow: bool, workers: int, endpoint_url: str | None,
              request_timeout_ms: int, stop: Any, on_batch: Callable[[str, int], None] | None = None,
              claim_limit: int | None = None) -> DrainStats:
        return drain(dsn, schema=schema or DEFAULT_SCHEMA, follow=follow, workers=workers, endpoint_url=endpoint_url,
                     request_timeout_ms=request_timeout_ms, stop=stop, on_batch=on_batch, claim_limit=claim_limit)

    def status(self, dsn: str, schema: str | None) -> OutboxStatus:
        return status(dsn, schema or DEFAULT_SCHEMA)

    def retry_dead(self, dsn: str, schema: str | None, *, trigger: str | None, ids: list[int] | None) -> int:
        return retry_dead(dsn, schema or DEFAULT_SCHEMA, trigger=trigger, ids=ids)
