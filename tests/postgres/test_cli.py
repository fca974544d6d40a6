"""The installer CLI as a user runs it: a subprocess, real exit codes, rich output and ``--json``.

Covers details of the exit codes documented in the README (every row has a case in tests/cli/test_exit_codes.py):
0 ok, 2 usage, 3 spec, 5 connection, 6 install, 7 verify, 8 invoke, 11 doctor.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import psycopg
import pytest

from sqlambda.targets.postgres.target import LOCK_KEY

pytestmark = pytest.mark.postgres
_n = itertools.count()


def run(*args, env=None, input=None):
    """``sqlambda ARGS`` in a subprocess; the caller's DATABASE_URL / PG* never leak in unless given."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    full_env = {**base, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "sqlambda"), *args],
                          capture_output=True, text=True, env=full_env, input=input, timeout=120)


@pytest.fixture
def dsn(pg_cluster):
    return pg_cluster.create_database(f"cli_{next(_n)}")


def q(dsn, query):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def test_install_plan_verify_uninstall_round_trip_with_json(dsn):
    plan = run("plan", "--dsn", dsn, "--json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["target"] == "postgres" and doc["counts"]["create"] == len(doc["steps"]) > 0

    inst = run("install", "--dsn", dsn, "--json")
    assert inst.returncode == 0, inst.stderr
    doc = json.loads(inst.stdout)
    assert doc["registry_created"] and len(doc["applied"]) == doc["plan"]["counts"]["create"]

    again = json.loads(run("plan", "--dsn", dsn, "--json").stdout)
    assert again["counts"]["unchanged"] == len(again["steps"]) and again["counts"]["create"] == 0

    ver = run("verify", "--dsn", dsn, "--json")
    assert ver.returncode == 0 and json.loads(ver.stdout)["ok"] is True

    un = run("uninstall", "--dsn", dsn, "--yes", "--json")
    assert un.returncode == 0, un.stderr
    assert json.loads(un.stdout)["was_installed"] is True
    un2 = run("uninstall", "--dsn", dsn, "--yes")
    assert un2.returncode == 0 and "nothing to uninstall" in un2.stdout


def test_human_output_and_database_url(dsn):
    inst = run("install", env={"DATABASE_URL": dsn})
    assert inst.returncode == 0, inst.stderr
    assert "create function public.awslambda_fn(text,text)" in inst.stdout and "installed" in inst.stdout
    again = run("install", env={"DATABASE_URL": dsn})
    assert again.returncode == 0 and "up to date" in again.stdout and "nothing to do" in again.stdout
    plan = run("plan", env={"DATABASE_URL": dsn})
    assert "unchanged" in plan.stdout and "nothing to do" in plan.stdout


def test_libpq_environment_variables_are_used_when_no_dsn(pg_cluster, dsn):
    dbname = dsn.split("dbname=")[1].split()[0]
    env = {"PGHOST": pg_cluster.host, "PGPORT": str(pg_cluster.port), "PGDATABASE": dbname, "PGUSER": "postgres"}
    res = run("install", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert q(dsn, "SELECT to_regprocedure('public.awslambda_fn(text,text)') IS NOT NULL")[0][0]


def test_dry_run_prints_sql_and_changes_nothing(dsn):
    res = run("install", "--dsn", dsn, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "CREATE OR REPLACE FUNCTION" in res.stdout and "nothing was changed" in res.stdout
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL")[0][0]


def test_verify_failure_exits_7_with_the_report_in_json(dsn):
    assert run("install", "--dsn", dsn).returncode == 0
    q(dsn, "DROP FUNCTION public.awslambda_fn_async(text, text)")
    res = run("verify", "--dsn", dsn, "--json")
    assert res.returncode == 7
    doc = json.loads(res.stdout)  # one JSON document: the error, carrying the report
    assert doc["error"] == "verify" and doc["details"]["ok"] is False
    assert any("awslambda_fn_async" in p and "missing" in p for p in doc["details"]["problems"])
    human = run("verify", "--dsn", dsn)
    assert human.returncode == 7 and "awslambda_fn_async" in human.stdout and "error:" in human.stderr
    repaired = run("install", "--dsn", dsn, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert run("verify", "--dsn", dsn).returncode == 0


def test_connection_failure_exits_5_with_a_hint():
    res = run("plan", "--dsn", "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2")
    assert res.returncode == 5
    assert "cannot connect to PostgreSQL" in res.stderr and "hint:" in res.stderr
    doc = json.loads(run("plan", "--dsn", "host=127.0.0.1 port=1 dbname=x connect_timeout=2", "--json").stdout)
    assert doc["error"] == "connection" and "DATABASE_URL" in doc["hint"]


def test_lock_held_exits_6(dsn):
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        pid = holder.info.backend_pid
        res = run("install", "--dsn", dsn)
    assert res.returncode == 6 and f"another install is running (pid {pid})" in res.stderr


def test_uninstall_needs_confirmation(dsn):
    assert run("install", "--dsn", dsn).returncode == 0
    no = run("uninstall", "--dsn", dsn, input="n\n")
    assert no.returncode == 130
    assert q(dsn, "SELECT to_regprocedure('public.awslambda_fn(text,text)') IS NOT NULL")[0][0]
    assert run("uninstall", "--dsn", dsn, "--json").returncode == 2  # scripts must say --yes
    yes = run("uninstall", "--dsn", dsn, input="y\n")
    assert yes.returncode == 0 and "removed" in yes.stdout


def test_invoke_errors_exit_with_their_codes(dsn):
    assert run("invoke", "echo", "{}", "--dsn", dsn).returncode == 6  # not installed yet
    assert run("install", "--dsn", dsn).returncode == 0
    bad = run("invoke", "echo", "{not json", "--dsn", dsn, "--json")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"] == "usage"
    q(dsn, "ALTER DATABASE " + dsn.split("dbname=")[1].split()[0] + " SET sqlambda.endpoint_url = 'http://127.0.0.1:1'")
    down = run("invoke", "echo", '{"a": 1}', "--dsn", dsn, "--json")
    assert down.returncode == 8
    doc = json.loads(down.stdout)
    assert doc["error"] == "invoke" and doc["details"]["sqlstate"] == "LA004" and "127.0.0.1:1" in doc["hint"]


def test_doctor_fails_with_exit_11_when_the_endpoint_is_down(dsn):
    res = run("doctor", "--dsn", dsn, "--endpoint-url", "http://127.0.0.1:1", "--json")
    assert res.returncode == 11, res.stderr
    doc = json.loads(res.stdout)
    checks = {c["name"]: c for c in doc["details"]["checks"]}
    assert checks["plpython3u available"]["ok"] and checks["boto3 in server"]["ok"]
    assert "boto3 1." in checks["boto3 in server"]["detail"]
    assert checks["endpoint reachable"]["ok"] is False and "127.0.0.1:1" in checks["endpoint reachable"]["detail"]
    assert "sqlambda.endpoint_url" in checks["endpoint reachable"]["hint"]
    # the test cluster's postmaster has credentials in its environment: they resolve inside the server
    assert checks["credentials resolve"]["ok"] and "env" in checks["credentials resolve"]["detail"]
    # doctor leaves nothing behind
    assert q(dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'plpython3u'")[0][0] == 0
    human = run("doctor", "--dsn", dsn, "--endpoint-url", "http://127.0.0.1:1")
    assert human.returncode == 11 and "endpoint reachable" in human.stdout and "error:" in human.stderr


def test_doctor_connection_failure_is_a_failed_check_with_the_connection_exit_code():
    res = run("doctor", "--dsn", "host=127.0.0.1 port=1 dbname=x connect_timeout=2", "--json")
    assert res.returncode == 5 and json.loads(res.stdout)["error"] == "connection"
    checks = json.loads(res.stdout)["details"]["checks"]
    assert checks == [{"name": "database connection", "ok": False, "detail": checks[0]["detail"], "hint": checks[0]["hint"]}]
    assert "cannot connect" in checks[0]["detail"]


def test_render_writes_files_offline(tmp_path):
    res = run("render", "--target", "postgres", "-o", str(tmp_path / "out"), "--json")
    assert res.returncode == 0, res.stderr
    files = json.loads(res.stdout)["files"]
    assert sorted(os.path.basename(f) for f in files) == ["00_core.sql", "uninstall.sql"]
    assert all(open(f).read().startswith("-- Generated by sqlambda") for f in files)


def test_unknown_target_and_bad_usage_exit_2():
    assert run("plan", "--target", "sybase", "--dsn", "x").returncode == 2
    assert run("invoke", "--dsn", "x").returncode == 2


def test_bad_spec_file_exits_3_before_touching_the_database(tmp_path, dsn):
    pytest.importorskip("sqlambda.spec.loader")
    bad = tmp_path / "bad.yaml"
    bad.write_text('project: evil\nfunctions:\n  - name: "x; DROP TABLE victim; --"\n    lambda: echo\n')
    res = run("install", str(bad), "--dsn", dsn, "--json")
    assert res.returncode == 3
    assert json.loads(res.stdout)["error"] == "spec"
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL")[0][0]
