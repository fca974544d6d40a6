"""PostgreSQL fixtures of this project's own tests, on top of sqlambda's pytest plugin: the
plugin's session cluster under its historical name, one fresh database per module."""

from __future__ import annotations

import re

import psycopg
import pytest


@pytest.fixture(scope="session")
def pg_cluster(sqlambda_postgres_cluster):
    """The plugin's private PostgreSQL cluster on 127.0.0.1 with plpython3u; its server process has
    the local stack's test credentials (test/test, us-east-1) in its environment."""
    return sqlambda_postgres_cluster


@pytest.fixture(scope="module")
def pg_dsn(pg_cluster, request) -> str:
    """DSN of a database created fresh for the requesting test module."""
    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.module.__name__.lower())[-50:]
    return pg_cluster.create_database(name)


@pytest.fixture
def pg_conn(pg_dsn):
    """An autocommit connection to the module's database."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn
