"""The Oracle outbox behind ``sqlambda drain --target oracle`` and ``sqlambda outbox ... --target oracle``.

Owns: running the in-database drainer (``SQLAMBDA_OUTBOX_PKG.drain``, the PL/SQL the scheduler job
runs; it claims with FOR UPDATE SKIP LOCKED, sends, retries and dead-letters inside the database,
and commits) from a client session, once or in a loop; reading depth, ages, in-flight and dead
counts per trigger from the queue tables; and requeueing dead letters through the package's
``retry_dead``. Must not send anything to Lambda itself: on Oracle the database's Java client does.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from sqlambda.delivery.model import DrainStats, OutboxStatus, TriggerStatus
from sqlambda.errors import OutboxError, UsageError
from sqlambda.targets.oracle import render as oracle_render

#: seconds between drain runs with --follow (the scheduler job runs every SCHEDULER_INTERVAL_SECONDS)
FOLLOW_SECONDS = 1.0
#: batches one drain() call may send before it returns, so a follower checks for stop in between
MAX_BATCHES = 100


class OracleOutbox:
    """An OutboxBackend over the Oracle queue tables and the PL/SQL drainer."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def _names(self, schema: str | None) -> tuple[str, str, str]:
        n = oracle_render.Names(schema.upper() if schema else None)
        return n.obj(oracle_render.QUEUE), n.obj(oracle_render.DEAD), n.obj(oracle_render.OUTBOX_PKG)

    def _exists(self, conn: Any, schema: str | None) -> None:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM ALL_TABLES WHERE owner = NVL(:o, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) "
                    "AND table_name = :t", o=schema.upper() if schema else None, t=oracle_render.QUEUE)
        if not cur.fetchone()[0]:
            raise OutboxError("no sqlambda outbox in this schema",
                              hint="install a spec with a trigger using delivery: outbox (--target oracle), or pass --schema")

    def drain(self, dsn: str, *, schema: str | None, follow: bool, workers: int, endpoint_url: str | None,
              request_timeout_ms: int, stop: Any, on_batch: Callable[[str, int], None] | None = None,
              claim_limit: int | None = None) -> DrainStats:
        """Run the PL/SQL drainer (as the scheduler job does) until nothing is due, or with ``follow``
        until ``stop``. Workers, endpoint and timeouts are the database's: the Java client's settings."""
        if endpoint_url:
            raise UsageError("--endpoint-url does not apply to Oracle: the database's Java client sends, with the "
                             "endpoint of the installed spec")
        stop = stop or threading.Event()
        stats = DrainStats()
        conn = self.target.connect(dsn)
        try:
            self._exists(conn, schema)
            _, dead_table, pkg = self._names(schema)
            cur = conn.cursor()
            delivered = cur.var(int)
            while not stop.is_set():
                cur.execute(f"SELECT COUNT(*) FROM {dead_table}")
                dead_before = cur.fetchone()[0]
                cur.execute(f"BEGIN :n := {pkg}.drain(:b); END;", n=delivered, b=MAX_BATCHES)
                n = int(delivered.getvalue() or 0)
                cur.execute(f"SELECT COUNT(*) FROM {dead_table}")
                dead = max(0, cur.fetchone()[0] - dead_before)
                stats.add(delivered=n, dead=dead, polls=1)
                if n and on_batch:
                    on_batch("*", n)
                if not follow and n == 0:
                    break
                if follow and n == 0:
                    stop.wait(FOLLOW_SECONDS)
        finally:
            conn.close()
        return stats

    def status(self, dsn: str, schema: str | None) -> OutboxStatus:
        conn = self.target.connect(dsn)
        try:
            self._exists(conn, schema)
            queue, dead, _ = self._names(schema)
            cur = conn.cursor()
            cur.execute(
                f"SELECT trigger_name, MAX(table_name), COUNT(*), "
                f"SUM(CASE WHEN next_attempt_at <= SYSTIMESTAMP THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN next_attempt_at > SYSTIMESTAMP AND attempts > 0 THEN 1 ELSE 0 END), "
                f"MAX(EXTRACT(DAY FROM (SYSTIMESTAMP - created_at)) * 86400 + EXTRACT(HOUR FROM (SYSTIMESTAMP - created_at)) * 3600 "
                f"+ EXTRACT(MINUTE FROM (SYSTIMESTAMP - created_at)) * 60 + EXTRACT(SECOND FROM (SYSTIMESTAMP - created_at))) "
                f"FROM {queue} GROUP BY trigger_name")
            queued = {r[0]: r for r in cur.fetchall()}
            # in flight: rows a drainer holds locked now (a KEY SHARE-like probe: FOR UPDATE SKIP LOCKED, rolled back)
            cur.execute(f"SELECT trigger_name FROM {queue} FOR UPDATE SKIP LOCKED")
            free: dict[str, int] = {}
            for (t,) in cur.fetchall():
                free[t] = free.get(t, 0) + 1
            conn.rollback()
            cur.execute(f"SELECT trigger_name, COUNT(*) FROM {dead} GROUP BY trigger_name")
            dead_counts = dict(cur.fetchall())
        finally:
            conn.close()
        triggers = []
        for name in sorted(set(queued) | set(dead_counts)):
            q = queued.get(name)
            n = int(q[2]) if q else 0
            triggers.append(TriggerStatus(name, q[1] if q else None, None, "lambda", n, int(q[3]) if q else 0, int(q[4]) if q else 0,
                                          max(0, n - free.get(name, 0)), int(dead_counts.get(name, 0)),
                                          None if not q or q[5] is None else round(float(q[5]), 3)))
        ages = [t.oldest_age_seconds for t in triggers if t.oldest_age_seconds is not None]
        return OutboxStatus(schema=(schema or "(current schema)"), depth=sum(t.queued for t in triggers),
                            in_flight=sum(t.in_flight for t in triggers), waiting_retry=sum(t.waiting_retry for t in triggers),
                            dead=sum(t.dead for t in triggers), oldest_age_seconds=max(ages) if ages else None,
                            triggers=tuple(triggers))

    def retry_dead(self, dsn: str, schema: str | None, *, trigger: str | None, ids: list[int] | None) -> int:
        if ids:
            raise UsageError("--id is not available for Oracle: its dead letters are requeued per trigger (--trigger)")
        conn = self.target.connect(dsn)
        try:
            self._exists(conn, schema)
            _, _, pkg = self._names(schema)
            cur = conn.cursor()
            n = cur.var(int)
            cur.execute(f"BEGIN :n := {pkg}.retry_dead(:t); END;", n=n, t=trigger)
            return int(n.getvalue() or 0)
        finally:
            conn.close()
