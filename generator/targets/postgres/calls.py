"""Calling Lambda through PostgreSQL for ``sqlambda invoke`` and ``verify --probe``.

Owns: finding an installed wrapper (through the registry) and its argument names and types in the
catalog, calling it with named arguments cast to their types, calling ``awslambda_fn`` for any
other name, a DryRun through ``<schema>.invoke`` for the probe, and turning a database error into
an InvokeError carrying the SQLSTATE. The argument checks every target shares (JSON, named
arguments, unknown names) are the pipeline's (:func:`sqlambda.api.invoke`), not this module's.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlambda.errors import InstallError, InvokeError


def pg_error(exc: Exception) -> tuple[str, str | None, str | None, str | None]:
    """(message, sqlstate, detail, hint) of a psycopg error."""
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc)).strip()
    return (message, getattr(exc, "sqlstate", None), getattr(diag, "message_detail", None),
            getattr(diag, "message_hint", None))


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _wrapper_entry(target: Any, conn: Any, schema: str, name: str) -> Any:
    return next((e for e in target.registry_entries(conn, schema) if e.kind == "wrapper" and "regprocedure" in e.probe
                 and e.key.split("(", 1)[0].rsplit(".", 1)[-1].lower() == name.lower()), None)


def _signature(conn: Any, sig: str) -> tuple[list[str], list[str], str, str]:
    row = conn.execute(
        "SELECT p.proargnames, ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes) t), "
        "n.nspname, p.proname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.oid = pg_catalog.to_regprocedure(%s)", (sig,)).fetchone()
    if row is None:
        raise InvokeError(f"the wrapper {sig} is registered but missing from the database",
                          hint="run `sqlambda verify`, then `sqlambda install` to restore it")
    return list(row[0] or []), list(row[1]), row[2], row[3]


def wrapper_arguments(target: Any, conn: Any, schema: str, name: str) -> list[str] | None:
    entry = _wrapper_entry(target, conn, schema, name)
    return None if entry is None else _signature(conn, entry.probe["regprocedure"])[0]


def _call(conn: Any, query: Any, params: list) -> Any:
    import psycopg

    try:
        with conn.transaction():
            return conn.execute(query, params).fetchone()[0]
    except psycopg.Error as exc:
        message, sqlstate, detail, hint = pg_error(exc)
        raise InvokeError(f"{message} [SQLSTATE {sqlstate}]", hint=hint,
                          details={"sqlstate": sqlstate, "detail": detail}) from None


def call_wrapper(target: Any, conn: Any, schema: str, name: str, args: dict) -> Any:
    """The wrapper called with each argument by name, cast to its declared type (JSON values as text)."""
    from psycopg import sql

    names, types, nsp, proname = _signature(conn, _wrapper_entry(target, conn, schema, name).probe["regprocedure"])
    parts, params = [], []
    for n, t in zip(names, types):
        v = args.get(n)
        parts.append(sql.SQL("{} => %s::{}").format(sql.Identifier(n), sql.SQL(t)))
        params.append(None if v is None else (v if isinstance(v, str) else json.dumps(v)))
    query = sql.SQL("SELECT {}.{}({})").format(sql.Identifier(nsp), sql.Identifier(proname), sql.SQL(", ").join(parts))
    return jsonable(_call(conn, query, params))


def call_generic(target: Any, conn: Any, schema: str, lambda_name: str, json_text: str) -> Any:
    from psycopg import sql

    generic = next((e for e in target.registry_entries(conn, schema)
                    if e.key.startswith("function ") and e.key.endswith(".awslambda_fn(text,text)")), None)
    if generic is None:
        raise InstallError("awslambda_fn is not installed in this database", hint="run `sqlambda install --dsn ...`")
    gschema = generic.key[len("function "):].rsplit(".", 1)[0]
    value = _call(conn, sql.SQL("SELECT {}.awslambda_fn(%s, %s)").format(sql.Identifier(gschema)), [lambda_name, json_text])
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return jsonable(value)


def probe_lambda(conn: Any, schema: str, lambda_name: str, qualifier: str | None) -> None:
    """``verify --probe``: a DryRun through ``<schema>.invoke`` (name, endpoint, credentials; nothing runs)."""
    from psycopg import sql

    _call(conn, sql.SQL("SELECT status_code FROM {}.invoke(%s, '{{}}'::jsonb, 'DryRun', 'None', %s)")
          .format(sql.Identifier(schema)), [lambda_name, qualifier])
