"""Helpers the PostgreSQL tests share: a loaded spec from a dict, one-statement queries, a DBA's
database settings for the length of a block. (A module of its own name, importable from any test
directory: tests/ is on sys.path.)"""

from __future__ import annotations

import contextlib
import hashlib
import json
import types

import psycopg
from psycopg import sql


def loaded_spec(spec: dict, name: str = "tests/spec.yaml"):
    """A loaded-spec object (``.spec``, ``.path``, ``.checksum``) as the installer takes it."""
    from sqlambda.spec.model import Spec

    checksum = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return types.SimpleNamespace(spec=Spec.model_validate(spec), path=name, checksum=checksum)


def q(dsn: str, query: str, params=()) -> list:
    """Run one statement in autocommit; its rows, or [] for a statement that returns none."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def dbname(dsn: str) -> str:
    return dsn.split("dbname=")[1].split()[0]


@contextlib.contextmanager
def dba_settings(dsn: str, **values):
    """What a DBA does: ALTER DATABASE ... SET sqlambda.<name> (new sessions see it), undone afterwards."""
    name = sql.Identifier(dbname(dsn))
    with psycopg.connect(dsn, autocommit=True) as c:
        for k, v in values.items():
            c.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(name, sql.Identifier(f"sqlambda.{k}"), sql.Literal(str(v))))
    try:
        yield
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            for k in values:
                c.execute(sql.SQL("ALTER DATABASE {} RESET {}").format(name, sql.Identifier(f"sqlambda.{k}")))
