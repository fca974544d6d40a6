"""Reading modernization state from Oracle: ``modernize status`` and the samples ``scaffold`` replays.

Owns: the queries over the Oracle modernize tables (``sql/oracle/modernize_*.sql.j2``), returned as
:class:`~sqlambda.modernize.ModernizeStatus` and the samples dict, shaped exactly like the
PostgreSQL target's. Read-only.

Must not: change anything, print, or render.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlambda import resources
from sqlambda.errors import UsageError
from sqlambda.modernize import Mismatch, ModernizeStatus


def _portable(kind: str, args: str, result: str | None, error: str | None) -> tuple:
    """A kept call as the PostgreSQL target shapes it: the result unwrapped from the router's
    ``{"v": ...}`` (JSON_OBJECT is how Oracle writes any scalar as JSON), the error as an object."""
    value = None
    if result is not None:
        to_json = resources.plpython_module("sqlambda_functions").to_json
        value = to_json(json.loads(result, parse_float=Decimal).get("v"))
    return (kind, args, value, json.dumps({"message": error}) if error is not None else None)


class OracleModernize:
    """``Target.modernize()`` for Oracle."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def _tables(self, conn: Any, schema: str | None) -> bool:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM ALL_TABLES WHERE owner = NVL(:o, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) "
                    "AND table_name = 'SQLAMBDA_MODERNIZE'", o=schema.upper() if schema else None)
        return bool(cur.fetchone()[0])

    def status(self, dsn: str, schema: str | None, recent: int) -> list[Any]:
        conn = self.target.connect(dsn)
        try:
            if not self._tables(conn, schema):
                return []
            own = f'"{schema.upper()}".' if schema else ""
            cur = conn.cursor()
            cur.execute(f"SELECT name, target, lambda_name, stage, "
                        f"TO_CHAR(taken_at, 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM'), TO_CHAR(staged_at, 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM'), calls, errors, "
                        f"answers, fallbacks FROM {own}SQLAMBDA_MODERNIZE ORDER BY name")
            out = []
            for name, target, lam, stage, taken, staged, calls, errors, answers, fallbacks in cur.fetchall():
                c2 = conn.cursor()
                c2.execute(f"SELECT COUNT(*), "
                           f"PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CASE WHEN kind <> 'lambda' THEN duration_us END), "
                           f"PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY CASE WHEN kind <> 'lambda' THEN duration_us END), "
                           f"PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CASE WHEN kind = 'lambda' THEN duration_us END), "
                           f"PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY CASE WHEN kind = 'lambda' THEN duration_us END) "
                           f"FROM {own}SQLAMBDA_MODERNIZE_CALL WHERE name = :n", n=name)
                kept, o50, o99, l50, l99 = c2.fetchone()
                out.append(ModernizeStatus(
                    name=name, function=target, lambda_name=lam, stage=stage, taken_at=taken, staged_at=staged,
                    calls=calls, errors=errors, lambda_answers=answers, fallbacks=fallbacks, kept=kept, shadow_queued=0,
                    compared=0, matched=0, lambda_errors=0, original_p50_us=o50, original_p99_us=o99,
                    lambda_p50_us=l50, lambda_p99_us=l99, lambda_measured_by="router" if l50 is not None else "none",
                    mismatches=tuple[Mismatch, ...]()))
            return out
        finally:
            conn.close()

    def samples(self, dsn: str, schema: str | None, name: str) -> dict:
        conn = self.target.connect(dsn)
        try:
            own = f'"{schema.upper()}".' if schema else ""
            cur = conn.cursor()
            row = None
            if self._tables(conn, schema):
                cur.execute(f"SELECT target, definition FROM {own}SQLAMBDA_MODERNIZE WHERE name = :n", n=name.upper())
                row = cur.fetchone()
            if row is None:
                raise UsageError(f"{name!r} is not taken over in this schema (no modernize entry of that name)",
                                 hint="sqlambda modernize status --target oracle lists what is")
            target, definition = row[0], row[1].read() if hasattr(row[1], "read") else row[1]
            cur.execute(f"SELECT kind, args, result, error FROM {own}SQLAMBDA_MODERNIZE_CALL WHERE name = :n "
                        f"AND kind IN ('original', 'error') ORDER BY called_at", n=name.upper())
            calls = [_portable(*(v.read() if hasattr(v, "read") else v for v in r)) for r in cur.fetchall()]
            return {"name": name, "function": target, "definition": definition, "options": {}, "calls": calls}
        finally:
            conn.close()
