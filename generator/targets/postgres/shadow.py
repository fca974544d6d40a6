"""The shadow comparisons of modernize entries: ``sqlambda drain`` asks each Lambda what the original answered.

Owns: :class:`ShadowWorker`, which repeats one short transaction: lock the oldest ready calls of
``<schema>.modernize_shadow`` (``FOR UPDATE SKIP LOCKED``, so several drainers share the queue),
call the entry's Lambda with each call's payload through the delivery sink, compare the value at
the entry's ``path`` with the original's result under the entry's rules
(:mod:`sqlambda.delivery.compare`), write the comparison to ``<schema>.modernize_result`` and
delete the call, then commit. The calls were queued in the callers' transactions, after the
original answered, so the callers never waited for this and never saw it fail.

Failures: an outage is lag, as for the outbox: a transient failure (endpoint down, timeout,
throttling, 5xx) leaves the call queued with capped exponential backoff until it is
``MAX_AGE_S`` old, then it is compared as a Lambda error. The Lambda's own error and a permanent
failure are comparison results at once (a mismatch, with the error as the Lambda's side).

Must not: parse options, print, or hold DDL (``sql/postgres/modernize/``).
"""

from __future__ import annotations

import decimal
import json
import time
from decimal import Decimal
from typing import Any

from sqlambda import resources
from sqlambda.delivery.compare import diff_text, differences
from sqlambda.delivery.model import DrainStats, Route, backoff_seconds
from sqlambda.delivery.sink import LambdaSink
from sqlambda.targets.postgres.connection import close_quietly
from sqlambda.targets.postgres.connection import schema_sql as _sql

#: calls compared per transaction (each is one Lambda call; the locks are held meanwhile)
BATCH = 20
#: a call whose Lambda stays unreachable this long is compared as a Lambda error
MAX_AGE_S = 86_400

_CLAIM = ("SELECT id, name, args::text, result::text, duration_us, attempts, called_by, "
          "pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) enqueued_at) "
          "FROM {s}.modernize_shadow WHERE next_at IS NULL "
          "OR next_at OPERATOR(pg_catalog.<=) LEAST(pg_catalog.now(), %s::timestamptz) "
          "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED")
_ENTRIES = "SELECT name, options FROM {s}.modernize"
_RESULT = ("INSERT INTO {s}.modernize_result (name, args, original, lambda, lambda_error, match, diff, original_us, lambda_us, "
           "called_by) VALUES (%s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s, %s)")
_DONE = "DELETE FROM {s}.modernize_shadow WHERE id = %s"
_RETRY = ("UPDATE {s}.modernize_shadow SET attempts = attempts + 1, last_error = %s, "
          "next_at = pg_catalog.now() + pg_catalog.make_interval(secs => %s) WHERE id = %s")


def _route(name: str, options: dict) -> Route:
    return Route(trigger_name=name, table_name="", lambda_name=options["lambda"], qualifier=options.get("qualifier"),
                 mode="sync", max_rows=1, max_bytes=6 * 1024 * 1024, max_attempts=1, base_delay_ms=200,
                 max_delay_ms=60_000, region=options.get("region") or "us-east-1",
                 endpoint_url=options.get("endpoint_url"), max_age_s=MAX_AGE_S)


class ShadowWorker:
    """One connection's share of the shadow queue (the drain workers each run one beside their outbox work)."""

    def __init__(self, conn: Any, schema: str, sink: LambdaSink, stats: DrainStats, cutoff: Any = None) -> None:
        self.conn, self.schema, self.sink, self.stats = conn, schema, sink, stats
        #: with --once, calls whose retry falls after the run started wait for the next run (as the outbox)
        self.cutoff = cutoff
        self._q = {k: _sql(schema, v) for k, v in
                   (("claim", _CLAIM), ("entries", _ENTRIES), ("result", _RESULT), ("done", _DONE), ("retry", _RETRY))}
        self.functions = resources.plpython_module("sqlambda_functions")
        self.entries: dict[str, tuple[Route, dict]] = {}

    def close(self) -> None:
        close_quietly(self.conn)

    def _load(self) -> None:
        from sqlambda.targets.postgres.drain import with_dba_settings

        rows = self.conn.execute(self._q["entries"]).fetchall()
        routes = with_dba_settings(self.conn, [_route(name, opts) for name, opts in rows])
        self.entries = {r.trigger_name: (r, opts) for r, (_n, opts) in zip(routes, rows)}

    def _answer(self, options: dict, payload: str) -> Any:
        doc = json.loads(payload, parse_float=Decimal)
        if options.get("path"):
            value = self.functions.extract(doc, options["path"])
            if value is self.functions._MISSING:
                raise LookupError(f"the result has no {options['path']}")
            return value
        return doc

    def run_once(self) -> int:
        """Compare up to BATCH queued calls in one transaction; how many were claimed."""
        conn = self.conn
        with conn.transaction():
            rows = conn.execute(self._q["claim"], (self.cutoff, BATCH)).fetchall()
            if not rows:
                return 0
            self._load()  # an install may have changed an entry's Lambda, path or rules
            for qid, name, args, result, original_us, attempts, called_by, age in rows:
                entry = self.entries.get(name)
                if entry is None:  # the entry was given back (rollback): nothing to compare with
                    conn.execute(self._q["done"], (qid,))
                    continue
                route, options = entry
                started = time.perf_counter()
                payload, failure = self.sink.call(route, args)
                lambda_us = int((time.perf_counter() - started) * 1e6)
                if failure is not None and failure.kind == "transient" and age < MAX_AGE_S:
                    conn.execute(self._q["retry"], (failure.text, backoff_seconds(route, attempts + 1), qid))
                    self.stats.add(failed_events=1, last_error=failure.text)
                    continue
                answer, error, lines = self._compare(options, result, payload, failure)
                conn.execute(self._q["result"], (
                    name, args, result, answer, error, not lines, diff_text(lines), original_us, lambda_us, called_by))
                conn.execute(self._q["done"], (qid,))
                self.stats.add(compared=1)
            return len(rows)

    def _compare(self, options: dict, result: str | None, payload: str | None, failure: Any) -> tuple[str | None, str | None, list[str]]:
        """(the Lambda's answer as JSON text, its error, the differences). Anything in the queue row or the answer
        that cannot be compared (a number too large for any context, say) is a mismatch that says
        why, never an exception: one odd row must not stop the drainer (and the outbox with it)."""
        if failure is not None:
            return None, failure.text, [f"the Lambda failed: {failure.text}"]
        try:
            answer = self._answer(options, payload or "null")
        except (ValueError, LookupError) as exc:
            return None, f"[LA007] {exc}", [f"the Lambda failed: [LA007] {exc}"]
        rules = options.get("compare") or {}
        try:
            with decimal.localcontext() as ctx:
                ctx.traps[decimal.Overflow] = ctx.traps[decimal.InvalidOperation] = False
                original = json.loads(result, parse_float=Decimal) if result is not None else None
                lines = differences(original, answer, ignore_keys=rules.get("ignore_keys", ()),
                                    tolerance=rules.get("tolerance", 0.0), unordered=rules.get("unordered", False))
                text = self.functions.to_json(answer)  # what is stored must be JSON
        except Exception as exc:  # noqa: BLE001 - see the docstring
            return None, f"[22000] cannot compare: {type(exc).__name__}: {exc}", [f"cannot compare: {type(exc).__name__}"]
        return text, None, lines
