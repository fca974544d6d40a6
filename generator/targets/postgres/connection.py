"""Connecting to PostgreSQL: the one place a psycopg connection is opened (installer, drainer, calls).

Owns: the DSN rules (a libpq DSN or postgresql:// URL; "" = ``DATABASE_URL`` resolved by the CLI,
else libpq's PG* variables), a connect timeout when none is given, and the message a failed
connection gives: psycopg's first line (it names host and port, never the password) and a hint.
Must not: run SQL beyond connecting (and closing); ``schema_sql`` only composes it.
"""

from __future__ import annotations

import os
from typing import Any

from sqlambda.errors import ConnectionFailed

#: seconds to wait for the server when neither the DSN nor PGCONNECT_TIMEOUT says
CONNECT_TIMEOUT_S = 10
HINT = ("pass --dsn 'host=... port=... dbname=... user=...' (or a postgresql:// URL), set DATABASE_URL, or set "
        "libpq's PGHOST/PGPORT/PGDATABASE/PGUSER; is the server running?")


def connect(dsn: str, *, autocommit: bool = True, application_name: str = "sqlambda") -> Any:
    """An open psycopg connection, or ConnectionFailed with a hint."""
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": autocommit, "application_name": application_name}
    if "connect_timeout" not in (dsn or "") and "PGCONNECT_TIMEOUT" not in os.environ:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        return psycopg.connect(dsn or "", **kwargs)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionFailed(f"cannot connect to PostgreSQL: {first}", hint=HINT) from None


def close_quietly(conn: Any) -> None:
    """Close ``conn``; closing a broken connection must not mask the error that broke it."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - see the docstring
        pass


def schema_sql(schema: str, text: str, **parts: str) -> Any:
    """``text`` with ``{s}`` as the quoted schema and each ``{name}`` as the SQL in ``parts``."""
    from psycopg import sql

    return sql.SQL(text).format(s=sql.Identifier(schema), **{k: sql.SQL(v) for k, v in parts.items()})
