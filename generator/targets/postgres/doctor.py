"""``sqlambda doctor`` for PostgreSQL: checks run in and by the server, where Lambda calls happen.

Owns: the server version and plpython3u availability, and running ``plpython/sqlambda_doctor.py``
in a temporary PL/Python function (created in ``pg_temp`` in a transaction that is rolled back, so
nothing is left behind) with the spec's aws values, or, without a spec, the values the installed
functions carry (read through ``<schema>.settings()``). Must not change anything in the database.
"""

from __future__ import annotations

import json
from typing import Any

from sqlambda import templates
from sqlambda.targets.postgres.calls import pg_error


def installed_spec_settings(target: Any, conn: Any) -> dict:
    """The spec's aws values the installed functions carry (from ``<schema>.settings()``), so a
    doctor run without the spec checks what the calls really use; {} when nothing is installed."""
    from psycopg import sql

    found = target.find_registries(conn)
    if len(found) != 1 or not conn.execute("SELECT pg_catalog.to_regprocedure(format('%%I.settings()', %s::text)) IS NOT NULL",
                                            (found[0],)).fetchone()[0]:
        return {}
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            rows = conn.execute(sql.SQL("SELECT name, spec_value FROM {}.settings()").format(sql.Identifier(found[0]))).fetchall()
    except psycopg.Error:
        return {}  # e.g. a DBA's invalid ALTER DATABASE value: the doctor's own settings check reports it
    out: dict = {}
    for name, value in rows:
        if name in ("connect_timeout_ms", "request_timeout_ms", "max_attempts"):
            out[name] = int(value)
        else:
            out[name] = value or None
    return out

def doctor(target: Any, conn: Any, endpoint_url: str | None, loaded: Any = None) -> list[dict]:
    """Checks run in and by the server; nothing is left behind (one transaction, rolled back)."""
    import psycopg
    from psycopg import sql

    from sqlambda.targets.postgres.render import build_context, make_bundle

    checks: list[dict] = []
    row = conn.execute("SELECT version(), (SELECT default_version FROM pg_catalog.pg_available_extensions "
                       "WHERE name = 'plpython3u'), (SELECT extversion FROM pg_catalog.pg_extension "
                       "WHERE extname = 'plpython3u')").fetchone()
    server = row[0].split(",")[0]
    if row[1] is None:
        checks.append({"name": "plpython3u available", "ok": False, "detail": f"{server}: plpython3u is not available",
                       "hint": "install it on the server (Debian/Ubuntu: apt-get install postgresql-plpython3-<major>)"})
        return checks
    checks.append({"name": "plpython3u available", "ok": True, "hint": None,
                   "detail": f"{server}; plpython3u {row[1]} " + ("installed in this database" if row[2] else "available (install creates it)")})
    defaults = build_context(loaded)["aws_defaults"]
    if loaded is None:
        defaults.update(installed_spec_settings(target, conn))
    bundle = make_bundle(["sqlambda_doctor"], defaults)
    body = templates.render(target.name, "doctor.sql.j2", bundle=bundle)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("CREATE EXTENSION IF NOT EXISTS plpython3u")
            conn.execute(body)
            result = conn.execute(sql.SQL("SELECT pg_temp.sqlambda_doctor(%s)"), (endpoint_url,)).fetchone()[0]
    except psycopg.Error as exc:
        message, sqlstate, _, _ = pg_error(exc)
        checks.append({"name": "python in server", "ok": False, "detail": f"{message} [SQLSTATE {sqlstate}]",
                       "hint": "doctor runs a temporary PL/Python function: connect as a superuser"})
        return checks
    checks.extend(json.loads(result))
    return checks
