"""boto3 missing from the PostgreSQL server's own Python.

``install`` must refuse before creating anything (exit 10, the fix in the hint), ``doctor`` must
say so, and functions installed earlier must fail with sqlambda's SQLSTATE LA008 and a HINT, not
a bare 38000 ModuleNotFoundError. The server's Python is made to miss boto3 for real: the
postmaster starts with a PYTHONPATH whose first folder holds a ``boto3`` package that fails to
import, exactly as a missing install does.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from cli_helpers import hiding, no_traceback, run

from sqlambda.targets.postgres.cluster import Cluster

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    c.start()
    yield c
    c.destroy()


@pytest.fixture
def hide_dir():
    """A folder the postgres OS user can read (pytest's tmp_path is private to this user)."""
    folder = Path(tempfile.mkdtemp(prefix="sqlambda-hide-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _without_boto3(cluster, folder):
    env = hiding(folder, "boto3")
    for p in [folder, *folder.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    cluster.extra_env.update(env)
    cluster.restart()


def _with_boto3(cluster):
    cluster.extra_env.pop("PYTHONPATH", None)
    cluster.restart()


def test_install_refuses_before_creating_anything_and_calls_get_LA008(cluster, hide_dir):
    dsn = cluster.create_database("no_boto3")
    try:
        _without_boto3(cluster, hide_dir)
        res = run("install", "--dsn", dsn)
        assert res.returncode == 10, res.stderr
        no_traceback(res)
        assert "cannot import boto3" in res.stderr and "apt-get install python3-boto3" in res.stderr
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT to_regnamespace('sqlambda') IS NULL AND NOT EXISTS "
                                "(SELECT FROM pg_extension WHERE extname = 'plpython3u')").fetchone()[0]

        doc = json.loads(run("doctor", "--dsn", dsn, "--json").stdout)
        boto = next(c for c in doc["details"]["checks"] if c["name"] == "boto3 in server")
        assert boto["ok"] is False and "python3-boto3" in boto["hint"]

        # installed while boto3 was there, called after it went: LA008 with the fix, nothing sent
        _with_boto3(cluster)
        assert run("install", "--dsn", dsn).returncode == 0
        _without_boto3(cluster, hide_dir)
        with psycopg.connect(dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as err:
                conn.execute("SELECT awslambda_fn('echo', '{}')")
        assert err.value.sqlstate == "LA008"
        assert "boto3" in err.value.diag.message_primary
        assert "python3-boto3" in err.value.diag.message_hint
    finally:
        _with_boto3(cluster)
