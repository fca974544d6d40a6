"""sqlambda's pytest plugin: the local AWS stack and a throwaway PostgreSQL with the bridge, as fixtures.

Installed with the package and loaded by pytest through the ``pytest11`` entry point (nothing to
add to a conftest), the way pytest-postgresql gives a database:

``sqlambda_local`` (session)
    A running ``sqlambda local`` with test credentials and ``AWS_ENDPOINT_URL`` set in
    ``os.environ`` for the session. A :class:`LocalStackFixture`: a
    :class:`~sqlambda.local.LocalStack` (``endpoint_url``, ``client(service)``, ``faults``,
    ``pids()``) plus ``deploy(*names)`` for the example Lambdas, ``deploy_folder(path)`` for one's
    own, ``deploy_source(name, code)`` and ``invoke(name, payload)``.
``sqlambda_faults`` (function)
    The stack's fault injector (``latency``, ``throttle``, ``server_error``, ``drop``), every fault
    cleared after the test.
``sqlambda_postgres_cluster`` (session)
    A private PostgreSQL cluster with plpython3u, whose server process has the stack's test
    credentials (PL/Python resolves them like any process).
``sqlambda_postgres`` (function)
    A fresh database in that cluster with the bridge installed from the spec named by
    ``@pytest.mark.sqlambda_spec("path.yaml")``, else ``--sqlambda-spec``, else the ini value
    ``sqlambda_spec``, else the core functions only; its calls go to ``sqlambda_local``. Roles the
    spec names are created (NOLOGIN) first, since the installer never creates roles. A
    :class:`PostgresFixture`: ``dsn``, ``connect()``, ``query(sql, params)``, ``install(spec)``.

Owns only the fixtures' lifecycles; installing goes through :mod:`sqlambda.api`, the stack through
:mod:`sqlambda.local`, deploying through :mod:`sqlambda.devkit.deploy`. Must not hold test logic.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from sqlambda.local import LocalStack

TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


class LocalStackFixture(LocalStack):
    """The running stack plus deploy and invoke helpers."""

    def deploy(self, *names: str, **kw: Any) -> list[dict]:
        """Deploy example Lambdas shipped with sqlambda (``echo``, ``cloudwatch_metrics``, ...)."""
        from sqlambda.devkit.deploy import deploy_lambdas

        return deploy_lambdas(list(names), endpoint_url=self.endpoint_url, **kw)

    def deploy_folder(self, folder: str | os.PathLike, name: str | None = None, **kw: Any) -> dict:
        """Deploy a folder of one's own (``handler.py``, optional ``lambda.json``)."""
        from sqlambda.devkit.deploy import deploy_folder

        return deploy_folder(folder, name, endpoint_url=self.endpoint_url, **kw)

    def deploy_source(self, name: str, source: str, **kw: Any) -> str:
        """Deploy one file of source whose ``handler(event, context)`` is the function."""
        from sqlambda.devkit.deploy import deploy_source

        return deploy_source(name, source, endpoint_url=self.endpoint_url, **kw)

    def invoke(self, name: str, payload: Any = None) -> Any:
        """Call a function (RequestResponse) and return its decoded result; a function error raises
        :class:`AssertionError` with its errorType and errorMessage."""
        out = self.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
        body = json.loads(out["Payload"].read() or b"null")
        if out.get("FunctionError"):
            raise AssertionError(f"{name} failed: {body.get('errorType')}: {body.get('errorMessage')}")
        return body


class PostgresFixture:
    """One fresh database in the session cluster."""

    def __init__(self, cluster: Any, dsn: str, endpoint_url: str | None) -> None:
        self.cluster, self.dsn, self.endpoint_url = cluster, dsn, endpoint_url
        self.dbname = dsn.split("dbname=")[1].split()[0]

    def connect(self, **kw: Any) -> Any:
        """A psycopg connection (autocommit unless ``autocommit=False`` is passed)."""
        import psycopg

        return psycopg.connect(self.dsn, **{"autocommit": True, **kw})

    def query(self, sql: str, params: Any = None) -> list:
        """Run one statement; its rows ([] when it returns none)."""
        with self.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def install(self, spec: Any = None) -> Any:
        """Install (or update to) ``spec`` (a path or a loaded spec; None: the core only)."""
        from psycopg import sql

        from sqlambda import api

        loaded = api.load(spec)
        if loaded is not None:
            with self.connect() as conn:
                for role in sorted(_roles(loaded.spec)):
                    if not conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone():
                        try:
                            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                        except Exception:  # noqa: BLE001 - created meanwhile by a parallel test: fine
                            pass
        result = api.install(loaded, self.dsn)
        if self.endpoint_url:
            with self.connect() as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} SET sqlambda.endpoint_url = {}").format(
                    sql.Identifier(self.dbname), sql.Literal(self.endpoint_url)))
        return result


def _roles(spec: Any) -> set[str]:
    """Every role a spec names (generic, per-function, per-trigger), from its PostgreSQL side."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            if key.endswith("roles") and all(isinstance(v, str) for v in value):
                found.update(value)
            else:
                for v in value:
                    walk(v, key)

    data = spec.model_dump(mode="json")
    data.pop("oracle", None)
    walk(data)
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sqlambda")
    group.addoption("--sqlambda-spec", default=None, help="Spec the sqlambda_postgres fixture installs.")
    parser.addini("sqlambda_spec", "Spec the sqlambda_postgres fixture installs (relative to the rootdir).", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlambda_spec(path): the spec sqlambda_postgres installs for this test")


@pytest.fixture(scope="session")
def sqlambda_local():
    """A running local AWS stack; test credentials and AWS_ENDPOINT_URL set for the session."""
    keys = [*TEST_CREDENTIALS, "AWS_ENDPOINT_URL"]
    saved = {k: os.environ.get(k) for k in keys}
    for k, v in TEST_CREDENTIALS.items():
        os.environ.setdefault(k, v)
    stack = LocalStackFixture(region=os.environ["AWS_DEFAULT_REGION"]).start()
    os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
    try:
        yield stack
    finally:
        stack.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def sqlambda_faults(sqlambda_local):
    """The stack's fault injector, cleared before and after the test."""
    sqlambda_local.faults.clear()
    yield sqlambda_local.faults
    sqlambda_local.faults.clear()


@pytest.fixture(scope="session")
def sqlambda_postgres_cluster():
    """A private PostgreSQL cluster (127.0.0.1, a free port) with plpython3u, removed at the end."""
    from sqlambda.targets.postgres.cluster import Cluster

    cluster = Cluster(extra_env=dict(TEST_CREDENTIALS))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


_databases = itertools.count()


@pytest.fixture
def sqlambda_postgres(request, sqlambda_postgres_cluster, sqlambda_local) -> PostgresFixture:
    """A fresh database with the bridge installed from the test's spec; calls go to sqlambda_local."""
    marker = request.node.get_closest_marker("sqlambda_spec")
    spec = (marker.args[0] if marker and marker.args else None) or request.config.getoption("--sqlambda-spec") \
        or request.config.getini("sqlambda_spec") or None
    if spec is not None and not Path(spec).is_absolute():
        spec = str(Path(request.config.rootpath) / spec)
    name = "sq_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[-40:] + f"_{next(_databases)}"
    dsn = sqlambda_postgres_cluster.create_database(name)
    db = PostgresFixture(sqlambda_postgres_cluster, dsn, sqlambda_local.endpoint_url)
    db.install(spec)
    return db
