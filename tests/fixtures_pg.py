"""PostgreSQL fixtures: one throwaway cluster per test session, one fresh database per module."""

from __future__ import annotations

import re

import psycopg
import pytest

from sqlambda.targets.postgres.cluster import Cluster


@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL 15 cluster on 127.0.0.1 with plpython3u available.

    PL/Python sees the postmaster's environment, so the server starts with the local stack's test
    credentials (test/test, us-east-1): boto3 inside the server then resolves them like any process.
    """
    cluster = Cluster(extra_env={
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


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
