"""Installer commands that call Lambda through the database, on the real cluster and the real local stack:
``invoke`` (wrapper and generic), ``verify --probe`` and a passing ``doctor``."""

from __future__ import annotations

import itertools
import types

import psycopg
import pytest

from sqlambda import api
from sqlambda.errors import InvokeError, VerifyFailed
from sqlambda.spec.model import Spec

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]
_n = itertools.count()


@pytest.fixture
def stack(request):
    # skip only while the local stack work has not landed (its package, then its fixtures)
    if not hasattr(pytest.importorskip("sqlambda.local"), "LocalStack"):
        pytest.skip("sqlambda.local.LocalStack has not landed yet")
    try:
        request.getfixturevalue("echo_function")
    except pytest.FixtureLookupError:
        pytest.skip("the local stack fixtures have not landed yet")
    return request.getfixturevalue("local_stack")


@pytest.fixture
def dsn(pg_cluster, stack):
    dsn = pg_cluster.create_database(f"stack_{next(_n)}")
    dbname = dsn.split("dbname=")[1].split()[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {dbname} SET sqlambda.endpoint_url = '{stack.endpoint_url}'")
    return dsn


def loaded(functions):
    spec = Spec.model_validate({"project": "stk", "functions": functions})
    return types.SimpleNamespace(spec=spec, path="stack.yaml", checksum="c" * 64)


ORDER_STATUS = {"name": "order_status", "lambda": "echo", "args": {"order_id": "bigint", "note": "text"},
                "returns": {"type": "text", "path": "Status"}}
ORDER_ECHO = {"name": "order_echo", "lambda": "echo", "args": {"order_id": "bigint", "meta": "jsonb"}}


def test_invoke_calls_a_wrapper_by_name_and_otherwise_the_generic_function(dsn):
    api.install(loaded([ORDER_STATUS, ORDER_ECHO]), dsn)
    assert api.invoke(dsn, "order_status", '{"order_id": 42, "note": "hi"}').result == "OK"
    echoed = api.invoke(dsn, "order_echo", '{"order_id": 7, "meta": {"a": [1, 2]}}').result
    assert echoed["order_id"] == 7 and echoed["meta"] == {"a": [1, 2]} and echoed["Status"] == "OK"
    generic = api.invoke(dsn, "echo", '{"x": "y"}').result
    assert generic == {"x": "y", "Status": "OK"}


def test_invoke_of_an_unknown_function_is_an_invoke_error(dsn):
    api.install(None, dsn)
    with pytest.raises(InvokeError) as exc:
        api.invoke(dsn, "no_such_function", "{}")
    assert exc.value.details["sqlstate"] == "42883"


def test_verify_probe_dry_runs_each_function(dsn):
    good = loaded([ORDER_STATUS])
    api.install(good, dsn)
    report = api.verify(good, dsn, probe=True)
    assert report.ok and [p.ok for p in report.probes] == [True]
    broken = loaded([{**ORDER_STATUS, "lambda": "not_deployed"}])
    api.install(broken, dsn)
    with pytest.raises(VerifyFailed) as exc:
        api.verify(broken, dsn, probe=True)
    probes = exc.value.details["probes"]
    assert probes[0]["ok"] is False and "42883" in probes[0]["detail"]


def test_doctor_passes_against_the_local_stack(dsn, stack):
    report = api.doctor(dsn)
    assert report.ok, report.to_dict()
    names = [c.name for c in report.checks]
    assert names == ["database connection", "plpython3u available", "boto3 in server", "settings",
                     "endpoint reachable", "credentials resolve", "lambda api"]
    assert stack.endpoint_url in {c.name: c for c in report.checks}["settings"].detail
