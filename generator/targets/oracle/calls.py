"""Calling Lambda through Oracle for ``sqlambda invoke``: wrappers by name, else ``AWSLAMBDA_FN_CLOB``.

Owns: finding an installed wrapper (registry and ALL_ARGUMENTS), binding JSON values to its
arguments by Oracle type (ISO 8601 text for dates and timestamps, 1/0 for booleans, JSON text for
objects and arrays), the generic CLOB call, and turning an ORA- error (ORA-29532 wraps the Java
client's) into an InvokeError. The argument checks every target shares are the pipeline's.
"""

from __future__ import annotations

import json
from typing import Any

from sqlambda.errors import InvokeError, UsageError
from sqlambda.targets.oracle import render as oracle_render
from sqlambda.targets.oracle.target import _clob_type, _text

#: how `invoke` binds a JSON value for a wrapper argument of each Oracle type (ISO 8601 text in)
_BIND_SQL = {
    "DATE": "TO_DATE(SUBSTR({b}, 1, 10), 'YYYY-MM-DD')",
    "TIMESTAMP": "TO_TIMESTAMP(REPLACE({b}, 'T', ' '), 'YYYY-MM-DD HH24:MI:SS.FF')",
    "TIMESTAMP WITH TIME ZONE": "TO_TIMESTAMP_TZ(REPLACE({b}, 'T', ' '), 'YYYY-MM-DD HH24:MI:SS.FFTZH:TZM')",
}


def _arguments(conn: Any, schema: str | None, name: str) -> list[tuple[str, str]]:
    cur = conn.cursor()
    cur.execute(
        "SELECT argument_name, data_type FROM ALL_ARGUMENTS WHERE owner = NVL(:o, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) "
        "AND object_name = :n AND package_name IS NULL AND argument_name IS NOT NULL ORDER BY position",
        o=schema, n=name.upper(),
    )
    return cur.fetchall()


def wrapper_arguments(target: Any, conn: Any, schema: str | None, name: str) -> list[str] | None:
    """The wrapper's argument names (lower case), or None when ``name`` is no installed wrapper."""
    if name.upper() in oracle_render.GENERIC:
        raise UsageError(f"{name} is a generic function; invoke a Lambda by name instead: sqlambda invoke <lambda> '<json>'")
    wanted = f"function {oracle_render.Names(schema).label(name)}"
    if not any(r.key == wanted for r in target.read_registry(conn, schema)):
        return None
    return [a.lower() for a, _ in _arguments(conn, schema, name)]


def _run(conn: Any, sql: str, binds: dict) -> Any:
    cur = conn.cursor()
    try:
        cur.setinputsizes(**({"p": _clob_type()} if "p" in binds else {}))
        cur.execute(sql, **binds)
        return _text(cur.fetchone()[0])
    except Exception as exc:  # oracledb.DatabaseError: ORA-29532 carries the Lambda's error
        raise InvokeError(str(exc).strip().splitlines()[0],
                          hint="ORA-29532 wraps the Java client's error (function error, timeout, endpoint, credentials)") from None


def call_wrapper(target: Any, conn: Any, schema: str | None, name: str, args: dict) -> Any:
    names = oracle_render.Names(schema)
    parts, binds = [], {}
    for i, (arg, typ) in enumerate(_arguments(conn, schema, name)):
        value = args.get(arg.lower())
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        b = f":a{i}"
        parts.append(f"{oracle_render.oracle_ident(arg)} => " + _BIND_SQL.get(typ, "{b}").format(b=b))
        binds[f"a{i}"] = value
    sql = f"SELECT {names.obj(name)}({', '.join(parts)}) FROM dual" if parts else f"SELECT {names.obj(name)} FROM dual"
    value = _run(conn, sql, binds)
    return value if isinstance(value, (str, int, float, type(None))) else str(value)


def call_generic(conn: Any, schema: str | None, lambda_name: str, json_text: str) -> Any:
    value = _run(conn, f"SELECT {oracle_render.Names(schema).obj('AWSLAMBDA_FN_CLOB')}(:n, :p) FROM dual",
                 {"n": lambda_name, "p": json_text})
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value if isinstance(value, (int, float, type(None))) else str(value)
