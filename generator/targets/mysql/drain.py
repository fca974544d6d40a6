"""The MySQL / MariaDB outbox backend: ``sqlambda drain | outbox status | outbox retry-dead --target mysql``.

Owns: claiming due events (one route at a time: its route row locked FOR UPDATE SKIP LOCKED, so
workers share routes and every route's events go out in queue order, which Kinesis and FIFO sinks
need), sending them through the delivery seam (the same envelope, LambdaSink and record sinks as
PostgreSQL's drainer), deleting what was delivered in the claiming transaction, backing off
transient failures, dead-lettering poison events, and the status numbers. Must not render SQL of
the database's objects or know another target.

Guarantees (the same as PostgreSQL's): an event leaves the queue only in the transaction that
records its delivery, so a drainer killed mid-batch leaves its events to be delivered again
(at least once, each with its idempotency key ``<database>:<route>:<id>``); rows written by the
triggers commit with the writer's transaction (InnoDB, durable with the server's default
``innodb_flush_log_at_trx_commit=1``), so ``kill -9`` of mysqld loses nothing committed; an outage
is lag (transient failures wait and retry until ``max_age_s``), dead letters are for poison events.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from typing import Any, Callable

from sqlambda.delivery.model import DrainStats, Failure, OutboxStatus, Route, TriggerStatus, backoff_seconds
from sqlambda.delivery.records import RecordSinks, as_record, deliver, ordered
from sqlambda.delivery.sink import LambdaSink
from sqlambda.errors import ConnectionFailed, OutboxError, UsageError
from sqlambda.resources import plpython_module
from sqlambda.targets.mysql.target import connect
from sqlambda.templates import backtick

log = logging.getLogger("sqlambda.drain")
POLL_SECONDS = 0.5
_COLUMNS = "id, route, table_name, operation, txid, created_at, new_row, old_row, attempts"


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def _route(row: dict) -> Route:
    return Route(trigger_name=row["route"], table_name=row["table_name"], lambda_name=row["target"],
                 qualifier=row["qualifier"], mode=row["mode"], max_rows=row["max_rows"], max_bytes=row["max_bytes"],
                 max_attempts=row["max_attempts"], base_delay_ms=row["base_delay_ms"], max_delay_ms=row["max_delay_ms"],
                 region=row["region"], endpoint_url=row["endpoint_url"], max_age_s=row["max_age_s"], sink=row["sink"],
                 key_columns=tuple(json.loads(row["key_columns"])) if row["key_columns"] else None, source=row["source"])


class Worker:
    """One drain worker: its own connection, one route per claim."""

    def __init__(self, dsn: str, database: str, lambdas: LambdaSink, records: RecordSinks, stats: DrainStats,
                 on_batch: Callable[[str, int], None] | None, claim_limit: int | None) -> None:
        import pymysql.cursors

        self.conn = connect(dsn, autocommit=False)
        self.cur = self.conn.cursor(pymysql.cursors.DictCursor)
        self.db = backtick(database)
        self.database = database
        self.lambdas, self.records, self.stats = lambdas, records, stats
        self.on_batch, self.claim_limit = on_batch, claim_limit
        self.trig = plpython_module("sqlambda_triggers")
        self.cur.execute("SET SESSION innodb_lock_wait_timeout = 5")
        # READ COMMITTED: a claim locks the rows it read, not the gaps between them, so writers'
        # triggers keep appending to the queue while a batch is at the Lambda (REPEATABLE READ's
        # next-key locks made every writer wait for the whole delivery)
        self.cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self._keys: dict[str, list[str]] = {}
        self.conn.commit()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - already gone
            pass

    def run_once(self) -> int:
        """Claim and settle one batch of one route; how many events it claimed (0: nothing due anywhere)."""
        cur = self.cur
        cur.execute(f"SELECT r.* FROM {self.db}.sqlambda_outbox_route r WHERE EXISTS (SELECT 1 FROM "
                    f"{self.db}.sqlambda_outbox o WHERE o.route = r.route AND o.next_attempt_at <= UTC_TIMESTAMP(6)) "
                    f"ORDER BY RAND() LIMIT 1 FOR UPDATE SKIP LOCKED")
        row = cur.fetchone()
        if row is None:
            self.conn.commit()
            return 0
        route = _route(row)
        limit = max(1, min(route.max_rows, self.claim_limit or route.max_rows))
        if ordered(route.sink, route.lambda_name):
            # a Kinesis shard / FIFO group: the queue's head first, and nothing past an event that
            # waits for its retry (a later change of its row must not overtake it)
            cur.execute(f"SELECT {_COLUMNS}, next_attempt_at <= UTC_TIMESTAMP(6) AS due FROM {self.db}.sqlambda_outbox "
                        f"WHERE route = %s ORDER BY id LIMIT %s FOR UPDATE", (route.trigger_name, limit))
            rows = cur.fetchall()
            events = []
            for r in rows:
                if not r.pop("due"):
                    break
                events.append(r)
        else:
            cur.execute(f"SELECT {_COLUMNS} FROM {self.db}.sqlambda_outbox WHERE route = %s AND next_attempt_at <= "
                        f"UTC_TIMESTAMP(6) ORDER BY id LIMIT %s FOR UPDATE", (route.trigger_name, limit))
            events = cur.fetchall()
        try:
            if route.sink == "lambda":
                self._lambda(route, events)
            else:
                self._sink(route, events)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return len(events)

    # -- building -------------------------------------------------------------------------------

    def _record(self, route: Route, e: dict) -> tuple[str, str]:
        """(idempotency key, change event as JSON text) of one queued row."""
        key = f"{self.database}:{route.trigger_name}:{e['id']}"
        return key, self.trig.record(key, e["txid"] or "", _iso(e["created_at"]), e["new_row"], e["old_row"])

    # -- Lambda routes: envelope batches, one table and operation each -----------------------------

    def _lambda(self, route: Route, events: list[dict]) -> None:
        trig = self.trig
        max_bytes = trig.effective_max_bytes(route.mode, route.max_bytes)
        groups: list[list[dict]] = []
        for e in events:  # consecutive events of one operation share a batch, in queue order
            if groups and groups[-1][0]["operation"] == e["operation"] and groups[-1][0]["table_name"] == e["table_name"]:
                groups[-1].append(e)
            else:
                groups.append([e])
        for group in groups:
            prefix, suffix = trig.envelope(route.spec_trigger, group[0]["table_name"], group[0]["operation"])
            batcher = trig.Batcher(prefix, suffix, route.max_rows, max_bytes)
            batches = []
            for e in group:
                _, text = self._record(route, e)
                try:
                    done = batcher.add(text, e)
                except trig.OversizeRecord as big:
                    self._dead([e], f"[54000] {big}")
                    continue
                if done:
                    batches.append(done)
            last = batcher.flush()
            if last:
                batches.append(last)
            for payload, tags in batches:
                failure = self.lambdas.send(route, payload)
                self._settle(route, tags, failure)

    # -- record sinks: one record per event ------------------------------------------------------

    def _sink(self, route: Route, events: list[dict]) -> None:
        sink = self.records.get(route.sink, route.lambda_name, route.region, route.endpoint_url, route.source)
        recs, tags = [], []
        for e in events:
            key, text = self._record(route, e)
            event = json.loads(text)
            image = event.get("new") or event.get("old") or {}
            event.update({"table": e["table_name"], "operation": e["operation"], "trigger": route.spec_trigger})
            columns = list(route.key_columns or self._primary_key(e["table_name"]) or sorted(image))
            rec = as_record({**event, "database": self.database, "position": e["id"]}, columns, key)
            recs.append(rec)
            tags.append(e)
        done = deliver(sink, recs, max_attempts=4, base_delay_s=route.base_delay_ms / 1000.0,
                       max_delay_s=route.max_delay_ms / 1000.0)
        ok = [t for t, f in zip(tags, done.outcome) if f is None]
        self._settle(route, ok, None)
        for t, f in zip(tags, done.outcome):
            if f is not None:
                self._settle(route, [t], f)

    def _primary_key(self, table: str) -> list[str]:
        """The table's primary key columns (a sink's records are keyed by them unless the spec says)."""
        if table not in self._keys:
            db, _, name = table.rpartition(".")
            self.cur.execute("SELECT column_name AS c FROM information_schema.key_column_usage WHERE table_schema = %s "
                             "AND table_name = %s AND constraint_name = 'PRIMARY' ORDER BY ordinal_position", (db, name))
            self._keys[table] = [r["c"] for r in self.cur.fetchall()]
        return self._keys[table]

    # -- settling -------------------------------------------------------------------------------

    def _settle(self, route: Route, events: list[dict], failure: Failure | None) -> None:
        if not events:
            return
        ids = [e["id"] for e in events]
        marks = ", ".join(["%s"] * len(ids))
        if failure is None:
            self.cur.execute(f"DELETE FROM {self.db}.sqlambda_outbox WHERE id IN ({marks})", ids)
            self.stats.add(delivered=len(ids), batches=1)
            if self.on_batch:
                self.on_batch(route.trigger_name, len(ids))
            return
        self.stats.add(failed_batches=1, failed_events=len(ids), last_error=failure.text)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        oldest = min(e["created_at"] for e in events)
        prior = max(e["attempts"] for e in events)
        attempts = prior + (0 if failure.kind == "transient" else 1)  # an outage is not counted
        too_old = (now - oldest).total_seconds() > route.max_age_s
        if failure.kind == "permanent" or attempts >= route.max_attempts or too_old:
            why = failure.text if not too_old else f"older than max_age_s={route.max_age_s}: {failure.text}"
            self._dead(events, why)
            return
        delay = backoff_seconds(route, prior + 1)
        self.cur.execute(f"UPDATE {self.db}.sqlambda_outbox SET attempts = attempts + %s, last_error = %s, "
                         f"next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND WHERE id IN ({marks})",
                         [0 if failure.kind == "transient" else 1, failure.text[:4000], int(delay * 1e6), *ids])

    def _dead(self, events: list[dict], why: str) -> None:
        ids = [e["id"] for e in events]
        marks = ", ".join(["%s"] * len(ids))
        self.cur.execute(f"INSERT INTO {self.db}.sqlambda_outbox_dead (id, route, table_name, operation, txid, "
                         f"created_at, new_row, old_row, attempts, error, dead_at) SELECT id, route, table_name, operation, "
                         f"txid, created_at, new_row, old_row, attempts + 1, %s, UTC_TIMESTAMP(6) FROM "
                         f"{self.db}.sqlambda_outbox WHERE id IN ({marks})", [why[:4000], *ids])
        self.cur.execute(f"DELETE FROM {self.db}.sqlambda_outbox WHERE id IN ({marks})", ids)
        self.stats.add(dead=len(ids), last_error=why)


def drain(dsn: str, *, database: str, follow: bool = False, workers: int = 1, endpoint_url: str | None = None,
          request_timeout_ms: int = 30000, stop: threading.Event | None = None,
          on_batch: Callable[[str, int], None] | None = None, claim_limit: int | None = None) -> DrainStats:
    """Deliver due events; ``follow=False`` returns when nothing is due, ``follow=True`` when ``stop`` is set."""
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    stop = stop or threading.Event()
    lambdas = LambdaSink(endpoint_url, request_timeout_ms=request_timeout_ms)
    records = RecordSinks(endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None, read_timeout_s=request_timeout_ms / 1000)
    stats = DrainStats()
    errors: list[BaseException] = []

    def work() -> None:
        w = None
        try:
            while not stop.is_set():
                if w is None:
                    try:
                        w = Worker(dsn, database, lambdas, records, stats, on_batch, claim_limit)
                    except ConnectionFailed:
                        if not follow:
                            raise
                        stop.wait(1.0)
                        continue
                try:
                    claimed = w.run_once()
                except Exception as exc:  # noqa: BLE001
                    if follow and _is_connection_error(exc):
                        w.close()
                        w = None
                        stop.wait(1.0)
                        continue
                    raise
                if claimed:
                    continue
                if not follow:
                    return
                stop.wait(POLL_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller thread
            errors.append(exc)
            stop.set()
        finally:
            if w is not None:
                w.close()

    threads = [threading.Thread(target=work, name=f"sqlambda-drain-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    finally:
        stop.set()
    if errors:
        exc = errors[0]
        if isinstance(exc, (OutboxError, ConnectionFailed, UsageError)):
            raise exc
        raise OutboxError(f"drain failed: {type(exc).__name__}: {exc}") from exc
    return stats


def _is_connection_error(exc: BaseException) -> bool:
    import pymysql

    return isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError, ConnectionError))


def status(dsn: str, database: str) -> OutboxStatus:
    conn = connect(dsn)
    try:
        cur = conn.cursor()
        db = backtick(database)
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = "
                    "'sqlambda_outbox_route'", (database,))
        if cur.fetchone()[0] == 0:
            raise OutboxError(f"no outbox in {database}", hint="install a spec with triggers first")
        cur.execute(f"SELECT r.route, r.table_name, r.target, r.sink, "
                    f"(SELECT COUNT(*) FROM {db}.sqlambda_outbox o WHERE o.route = r.route), "
                    f"(SELECT COUNT(*) FROM {db}.sqlambda_outbox o WHERE o.route = r.route AND o.next_attempt_at <= UTC_TIMESTAMP(6)), "
                    f"(SELECT COUNT(*) FROM {db}.sqlambda_outbox o WHERE o.route = r.route AND o.next_attempt_at > UTC_TIMESTAMP(6)), "
                    f"(SELECT COUNT(*) FROM {db}.sqlambda_outbox_dead d WHERE d.route = r.route), "
                    f"(SELECT TIMESTAMPDIFF(MICROSECOND, MIN(o.created_at), UTC_TIMESTAMP(6)) FROM {db}.sqlambda_outbox o "
                    f"WHERE o.route = r.route) FROM {db}.sqlambda_outbox_route r ORDER BY r.route")
        triggers = tuple(TriggerStatus(route, table, target, sink, int(q), int(ready), int(wait), 0, int(dead),
                                       None if age is None else int(age) / 1e6)
                         for route, table, target, sink, q, ready, wait, dead, age in cur.fetchall())
    finally:
        conn.close()
    ages = [t.oldest_age_seconds for t in triggers if t.oldest_age_seconds is not None]
    return OutboxStatus(database, sum(t.queued for t in triggers), 0, sum(t.waiting_retry for t in triggers),
                        sum(t.dead for t in triggers), max(ages) if ages else None, triggers)


def retry_dead(dsn: str, database: str, *, trigger: str | None = None, ids: list[int] | None = None) -> int:
    conn = connect(dsn, autocommit=False)
    try:
        cur = conn.cursor()
        db = backtick(database)
        where, params = ["1 = 1"], []
        if trigger:
            where.append("(route = %s OR route LIKE %s)")
            params += [trigger, f"{trigger}@%"]
        if ids:
            where.append(f"id IN ({', '.join(['%s'] * len(ids))})")
            params += list(ids)
        cond = " AND ".join(where)
        cur.execute(f"INSERT INTO {db}.sqlambda_outbox (id, route, table_name, operation, txid, created_at, new_row, "
                    f"old_row, attempts, next_attempt_at) SELECT id, route, table_name, operation, txid, "
                    f"UTC_TIMESTAMP(6), new_row, old_row, 0, '1970-01-01' FROM {db}.sqlambda_outbox_dead WHERE {cond}",
                    params)
        moved = cur.rowcount
        cur.execute(f"DELETE FROM {db}.sqlambda_outbox_dead WHERE {cond}", params)
        conn.commit()
        return moved
    finally:
        conn.close()


class MysqlOutbox:
    """The OutboxBackend of the MySQL target (``schema`` is the spec's database)."""

    def drain(self, dsn: str, *, schema: str | None, follow: bool, workers: int, endpoint_url: str | None,
              request_timeout_ms: int, stop: Any, on_batch: Callable[[str, int], None] | None = None,
              claim_limit: int | None = None) -> DrainStats:
        return drain(dsn, database=schema or "sqlambda", follow=follow, workers=workers, endpoint_url=endpoint_url,
                     request_timeout_ms=request_timeout_ms, stop=stop, on_batch=on_batch, claim_limit=claim_limit)

    def status(self, dsn: str, schema: str | None) -> OutboxStatus:
        return status(dsn, schema or "sqlambda")

    def retry_dead(self, dsn: str, schema: str | None, *, trigger: str | None, ids: list[int] | None) -> int:
        return retry_dead(dsn, schema or "sqlambda", trigger=trigger, ids=ids)
