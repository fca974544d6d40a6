"""Reading modernization state from PostgreSQL: ``modernize status`` and the samples ``scaffold`` replays.

Owns: the queries over ``<schema>.modernize`` and its tables and sequences (see
``sql/postgres/modernize/``), returned as :class:`~sqlambda.modernize.ModernizeStatus` and plain
dicts. Read-only: one short transaction per call.

Must not: change anything, print, or render.
"""

from __future__ import annotations

from typing import Any

from sqlambda.errors import UsageError
from sqlambda.modernize import Mismatch, ModernizeStatus
from sqlambda.targets.postgres.connection import connect
from sqlambda.targets.postgres.connection import schema_sql as _sql

_ENTRIES = "SELECT name, target, options->>'lambda', stage, taken_at::text, staged_at::text FROM {s}.modernize ORDER BY name"
_COUNTER = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}"
_CALLS = ("SELECT count(*), "
          "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_us) FILTER (WHERE kind IN ('original', 'shadow', 'error')), "
          "percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) FILTER (WHERE kind IN ('original', 'shadow', 'error')), "
          "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_us) FILTER (WHERE kind = 'lambda'), "
          "percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) FILTER (WHERE kind = 'lambda') "
          "FROM {s}.modernize_call WHERE name = %s")
_RESULTS = ("SELECT count(*), count(*) FILTER (WHERE match), count(*) FILTER (WHERE lambda_error IS NOT NULL), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY lambda_us), percentile_cont(0.99) WITHIN GROUP (ORDER BY lambda_us) "
            "FROM {s}.modernize_result WHERE name = %s")
_QUEUED = "SELECT count(*) FROM {s}.modernize_shadow WHERE name = %s"
_MISMATCHES = ("SELECT compared_at::text, args, original, lambda, lambda_error, diff FROM {s}.modernize_result "
               "WHERE name = %s AND NOT match ORDER BY id DESC LIMIT %s")
_SAMPLES = ("SELECT kind, args::text, result::text, error::text FROM {s}.modernize_call "
            "WHERE name = %s AND kind IN ('original', 'shadow', 'error') ORDER BY called_at, slot")
_ENTRY = "SELECT target, definition, options FROM {s}.modernize WHERE name = %s"


def _has_tables(conn: Any, schema: str) -> bool:
    return conn.execute("SELECT pg_catalog.to_regclass(pg_catalog.format('%%I.modernize', %s::text)) IS NOT NULL",
                        (schema,)).fetchone()[0]


def status(dsn: str, schema: str, recent: int = 5) -> list[ModernizeStatus]:
    """Every modernized function's stage and evidence; [] when nothing is modernized."""
    from psycopg import sql

    out = []
    with connect(dsn) as conn:
        if not _has_tables(conn, schema):
            return []
        for name, target, lam, stage, taken, staged in conn.execute(_sql(schema, _ENTRIES)).fetchall():
            count = {}
            for k in ("calls", "errors", "answers", "fallbacks"):
                seq = sql.Identifier(schema, f"{name}__{k}").as_string(conn)
                count[k] = conn.execute(_sql(schema, _COUNTER, seq=seq)).fetchone()[0]
            kept, o50, o99, l50, l99 = conn.execute(_sql(schema, _CALLS), (name,)).fetchone()
            compared, matched, lerrors, d50, d99 = conn.execute(_sql(schema, _RESULTS), (name,)).fetchone()
            queued = conn.execute(_sql(schema, _QUEUED), (name,)).fetchone()[0]
            mism = tuple(Mismatch(*row) for row in conn.execute(_sql(schema, _MISMATCHES), (name, recent)).fetchall())
            by = "router" if l50 is not None else ("drainer" if d50 is not None else "none")
            out.append(ModernizeStatus(
                name=name, function=target, lambda_name=lam, stage=stage, taken_at=taken, staged_at=staged,
                calls=count["calls"], errors=count["errors"], lambda_answers=count["answers"], fallbacks=count["fallbacks"],
                kept=kept, shadow_queued=queued, compared=compared, matched=matched, lambda_errors=lerrors,
                original_p50_us=o50, original_p99_us=o99,
                lambda_p50_us=l50 if l50 is not None else d50, lambda_p99_us=l99 if l99 is not None else d99,
                lambda_measured_by=by, mismatches=mism))
    return out


def samples(dsn: str, schema: str, name: str) -> dict:
    """What scaffold needs: the function's signature and definition as taken over, its compare rules and
    payload keys, and the kept calls (raw JSON texts, so numbers keep every digit)."""
    with connect(dsn) as conn:
        row = conn.execute(_sql(schema, _ENTRY), (name,)).fetchone() if _has_tables(conn, schema) else None
        if row is None:
            raise UsageError(f"{name!r} is not taken over in this database (no modernize entry of that name)",
                             hint="sqlambda modernize status lists what is; install the spec with the entry in stage record first")
        target, definition, options = row
        calls = conn.execute(_sql(schema, _SAMPLES), (name,)).fetchall()
    return {"name": name, "function": target, "definition": definition, "options": options, "calls": calls}
