"""Attacks on where a signed request goes, by a role with an ordinary login (issue 13, property 1).

``mallory`` may EXECUTE the generic functions, ``invoke()``, the RDS-compatible ``aws_lambda.invoke``
and three typed wrappers, and may INSERT into tables that have immediate and outbox triggers. She
points every setting a session can set at her own listener, through every way a session can set
one (SET, SET LOCAL, set_config() inside the query, PGOPTIONS, conninfo options, ALTER ROLE ... SET
by a DBA for her role, with and without IN DATABASE), then calls every kind of function and fires
every kind of trigger. The property: no request ever reaches her listener, every call reaches the
real Lambda, and only a DBA's ALTER DATABASE ... SET moves the endpoint. A session may lower
timeouts and attempts, never raise them.
"""

from __future__ import annotations

import contextlib
import json
import time

import psycopg
import pytest
from listener import Listener
from pg_helpers import dba_settings, dbname, loaded_spec
from psycopg import sql

from sqlambda import api
from sqlambda.targets.postgres import drain as outbox

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

MALLORY = "mallory"
SETTINGS = ("endpoint_url", "region")


@pytest.fixture(scope="module")
def listener():
    lst = Listener().start()
    yield lst
    lst.stop()


@pytest.fixture(scope="module")
def db(pg_cluster, local_stack, echo_function, recorder):
    dsn = pg_cluster.create_database("sec_settings")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"DROP ROLE IF EXISTS {MALLORY}")
        c.execute(f"CREATE ROLE {MALLORY} LOGIN")
        for t in ("s_now", "s_now_async", "s_out"):
            c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, note text)")
            c.execute(f"GRANT INSERT ON {t} TO {MALLORY}")
    spec = {
        "project": "sec",
        "aws": {"endpoint_url": local_stack.endpoint_url, "max_attempts": 2, "request_timeout_ms": 8000},
        "postgres": {"generic_roles": [MALLORY], "rds_compat": True},
        "functions": [
            {"name": "sec_status", "lambda": "echo", "args": {"order_id": "bigint"},
             "returns": {"type": "text", "path": "Status"}, "roles": [MALLORY]},
            {"name": "sec_notify", "lambda": "echo", "mode": "async", "args": {"msg": "text"}, "roles": [MALLORY]},
            {"name": "sec_rows", "lambda": "echo", "args": {"items": {"type": "jsonb", "key": "Records"}},
             "returns": {"type": "table", "path": "Records", "columns": {"id": "bigint"}}, "roles": [MALLORY]},
        ],
        "triggers": [
            {"name": "s_now", "table": "s_now", "lambda": recorder.name, "mode": "sync", "delivery": "immediate"},
            {"name": "s_now_async", "table": "s_now_async", "lambda": recorder.name, "mode": "async",
             "delivery": "immediate"},
            {"name": "s_out", "table": "s_out", "lambda": recorder.name, "mode": "sync", "delivery": "outbox",
             "retry": {"base_delay_ms": 1, "max_delay_ms": 5}},
        ],
    }
    api.install(loaded_spec(spec), dsn)
    return dsn


def mallory_dsn(dsn: str) -> str:
    return dsn.replace("user=postgres", f"user={MALLORY}")


# -- the ways a session can set a setting ----------------------------------------------------------------


def _assignments(url: str) -> dict[str, str]:
    # sqlambda's own names, and the RDS aws_lambda extension's documented endpoint setting, which
    # aws_lambda.invoke honours: both the DBA's, never the session's
    return {"sqlambda.endpoint_url": url, "sqlambda.region": "eu-west-3", "aws_lambda.endpoint_override": url}


@contextlib.contextmanager
def session(db: str, vector: str, url: str, monkeypatch):
    """Mallory's connection with the settings pointed at ``url`` the ``vector`` way; yields ``run(query, params)``."""
    values = _assignments(url)
    conninfo = mallory_dsn(db)
    setup: list[str] = []
    wrap = None
    superuser_cleanup: list[str] = []
    if vector == "pgoptions":
        monkeypatch.setenv("PGOPTIONS", " ".join(f"-c {k}={v}" for k, v in values.items()))
    elif vector == "conninfo":
        opts = " ".join(f"-c {k}={v}" for k, v in values.items())
        conninfo += f" options='{opts}'"
    elif vector in ("alter_role", "alter_role_in_database"):
        # mallory cannot do this herself on PostgreSQL 15 (permission denied to set parameter); a DBA
        # who did it for her role (or granted her SET on the parameter) still does not move our endpoint
        where = sql.SQL(" IN DATABASE {}").format(sql.Identifier(dbname(db))) if vector.endswith("database") else sql.SQL("")
        with psycopg.connect(db, autocommit=True) as c:
            for k, v in values.items():
                c.execute(sql.SQL("ALTER ROLE {}{} SET {} = {}").format(
                    sql.Identifier(MALLORY), where, sql.Identifier(k), sql.Literal(v)))
                superuser_cleanup.append(sql.SQL("ALTER ROLE {}{} RESET {}").format(
                    sql.Identifier(MALLORY), where, sql.Identifier(k)))
    elif vector == "set":
        setup = [f"SET {k} = '{v}'" for k, v in values.items()]
    elif vector == "set_config":
        def wrap(query: str) -> str:  # noqa: E306 - set inside the very query that calls
            sets = ", ".join(f"pg_catalog.set_config('{k}', '{v}', false)" for k, v in values.items())
            return f"WITH s AS MATERIALIZED (SELECT {sets}) SELECT * FROM s, LATERAL ({query}) q"
    try:
        with psycopg.connect(conninfo, autocommit=vector != "set_local") as conn:
            for st in setup:
                conn.execute(st)
            if vector in ("pgoptions", "conninfo", "alter_role", "alter_role_in_database", "set"):
                # the session really holds the attacker's values: it is our functions that ignore them
                got = conn.execute("SELECT current_setting('sqlambda.endpoint_url', true)").fetchone()[0]
                assert got == url, f"{vector} did not reach the session ({got!r})"

            def run(query: str, params: tuple = ()):
                if vector == "set_local":
                    with conn.transaction():
                        for k, v in values.items():
                            conn.execute(f"SET LOCAL {k} = '{v}'")
                        cur = conn.execute(query, params)
                        return cur.fetchall() if cur.description else []
                cur = conn.execute(wrap(query) if wrap and query.startswith("SELECT") else query, params)
                return cur.fetchall() if cur.description else []

            yield run
    finally:
        if superuser_cleanup:
            with psycopg.connect(db, autocommit=True) as c:
                for st in superuser_cleanup:
                    c.execute(st)


VECTORS = ["set", "set_local", "set_config", "pgoptions", "conninfo", "alter_role", "alter_role_in_database"]


# -- every kind of function and trigger ------------------------------------------------------------------

def _first(rows):
    return rows[0][-1]


def call_generic(run, ctx):
    out = json.loads(_first(run("SELECT awslambda_fn('echo', %s)", ('{"who": "mallory"}',))))
    assert out == {"who": "mallory", "Status": "OK"}


def call_generic_async(run, ctx):
    assert _first(run("SELECT awslambda_fn_async('echo', '{}')")) == ""


def call_invoke(run, ctx):
    row = run("SELECT status_code, payload FROM sqlambda.invoke('echo', '{\"a\": 1}')")[0]
    assert row[-2:] == (200, {"a": 1, "Status": "OK"})


def call_invoke_event(run, ctx):
    assert run("SELECT status_code FROM sqlambda.invoke('echo', '{}', 'Event')")[0][-1] == 202


def call_rds_arn(run, ctx):
    row = run("SELECT status_code, payload FROM aws_lambda.invoke("
              "aws_commons.create_lambda_function_arn('echo', 'us-east-1'), '{\"b\": 2}'::json)")[0]
    assert row[-2] == 200 and json.loads(json.dumps(row[-1]))["Status"] == "OK"


def call_rds_text(run, ctx):
    row = run("SELECT status_code, payload FROM aws_lambda.invoke('echo', '{\"c\": 3}'::jsonb)")[0]
    assert row[-2:] == (200, {"c": 3, "Status": "OK"})


def call_wrapper(run, ctx):
    assert _first(run("SELECT public.sec_status(7)")) == "OK"


def call_async_wrapper(run, ctx):
    assert json.loads(json.dumps(_first(run("SELECT public.sec_notify('hi')"))))["status_code"] == 202


def call_table_wrapper(run, ctx):
    assert [r[-1] for r in run("SELECT id FROM public.sec_rows('[{\"id\": 1}, {\"id\": 2}]')")] == [1, 2]


def fire_immediate_sync(run, ctx):
    n = ctx.next_id()
    run(f"INSERT INTO s_now VALUES ({n}, 'x')")
    assert [r["new"]["id"] for r in ctx.recorder.wait_records("s_now", ctx.count("s_now"))][-1] == n


def fire_immediate_async(run, ctx):
    n = ctx.next_id()
    run(f"INSERT INTO s_now_async VALUES ({n}, 'x')")
    assert n in [r["new"]["id"] for r in ctx.recorder.wait_records("s_now_async", ctx.count("s_now_async"))]


def fire_outbox(run, ctx):
    n = ctx.next_id()
    run(f"INSERT INTO s_out VALUES ({n}, 'x')")
    stats = outbox.drain(ctx.db)
    assert stats.delivered == 1 and stats.ok, stats.to_dict()
    assert n in [r["new"]["id"] for r in ctx.recorder.wait_records("s_out", ctx.count("s_out"))]


CALLS = [call_generic, call_generic_async, call_invoke, call_invoke_event, call_rds_arn, call_rds_text,
         call_wrapper, call_async_wrapper, call_table_wrapper, fire_immediate_sync, fire_immediate_async, fire_outbox]


class Ctx:
    """Per-test counters: row ids and how many records each trigger should have delivered by now."""

    def __init__(self, db, recorder):
        self.db, self.recorder = db, recorder
        self._id = 0
        self._expected: dict[str, int] = {}

    def next_id(self) -> int:
        self._id += 1
        return self._id

    def count(self, trigger: str) -> int:
        self._expected[trigger] = self._expected.get(trigger, 0) + 1
        return self._expected[trigger]


@pytest.fixture
def ctx(db, recorder):
    recorder.clear()
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("TRUNCATE s_now, s_now_async, s_out")
        c.execute("DELETE FROM sqlambda.outbox")
    return Ctx(db, recorder)


@pytest.mark.parametrize("vector", VECTORS)
def test_no_session_setting_moves_a_signed_request(db, ctx, listener, vector, monkeypatch):
    """Every vector against every kind of function and trigger: nothing reaches the listener."""
    failures = []
    with session(db, vector, listener.url, monkeypatch) as run:
        for call in CALLS:
            try:
                call(run, ctx)
            except Exception as exc:  # noqa: BLE001 - collect every case, report them together
                failures.append(f"{call.__name__}: {type(exc).__name__}: {exc}")
    got = listener.take()
    redirected = sorted({f"{r['method']} {r['path']}" for r in got})
    assert not redirected, f"{vector}: signed requests reached the caller's listener: {redirected}"
    assert not failures, f"{vector}: " + "; ".join(failures)


def test_the_listener_would_have_seen_a_redirect(db, ctx, listener):
    """Control: the DBA's ALTER DATABASE does move the endpoint, so the test above can fail."""
    with dba_settings(db, endpoint_url=listener.url):
        with psycopg.connect(mallory_dsn(db), autocommit=True) as conn:
            out = conn.execute("SELECT awslambda_fn('echo', '{}')").fetchone()[0]
            assert json.loads(out)["Status"] == "FROM-THE-LISTENER"
            conn.execute("INSERT INTO s_now VALUES (1, 'x')")
    got = listener.take()
    assert len(got) == 2 and all(r["headers"].get("Authorization", "").startswith("AWS4-HMAC-SHA256") for r in got)


def test_the_drainer_follows_the_dba_and_never_the_writer(db, ctx, listener, monkeypatch):
    """A DBA's ALTER DATABASE applies to the drainer too; the writer's session settings never do."""
    # the drain process's own AWS_ENDPOINT_URL ranks above the database's setting (the pytest plugin
    # sets it for the session); this test is about the database's sources only
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with psycopg.connect(mallory_dsn(db), autocommit=True) as conn:
        conn.execute(f"SET sqlambda.endpoint_url = '{listener.url}'")
        conn.execute("INSERT INTO s_out VALUES (1, 'x')")
    assert outbox.drain(db).delivered == 1 and listener.take() == []
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO s_out VALUES (2, 'x')")
    with dba_settings(db, endpoint_url=listener.url):
        assert outbox.drain(db).delivered == 1
    assert len(listener.take()) == 1


# -- timeouts and attempts: lower, never higher ----------------------------------------------------------


def test_a_session_can_lower_the_request_timeout_but_not_raise_it(db, faults):
    with dba_settings(db, request_timeout_ms=1500):
        with psycopg.connect(mallory_dsn(db), autocommit=True) as conn:
            conn.execute("SET sqlambda.request_timeout_ms = 600000")
            faults.latency("echo", 4000, count=1)
            with pytest.raises(psycopg.Error) as e:
                conn.execute("SELECT awslambda_fn('echo', '{}')")
            assert e.value.sqlstate == "LA003" and "1500 ms" in e.value.diag.message_primary
            conn.execute("SET sqlambda.request_timeout_ms = 300")
            faults.latency("echo", 2000, count=1)
            with pytest.raises(psycopg.Error) as e:
                conn.execute("SELECT awslambda_fn('echo', '{}')")
            assert e.value.sqlstate == "LA003" and "300 ms" in e.value.diag.message_primary


def test_a_session_can_lower_attempts_but_not_raise_them(db, faults):
    with psycopg.connect(mallory_dsn(db), autocommit=True) as conn:
        conn.execute("SET sqlambda.max_attempts = 10")  # the spec says 2
        faults.throttle("echo", 5)
        before = faults.stats("echo")["requests"]
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT awslambda_fn('echo', '{}')")
        assert e.value.sqlstate == "LA002" and "(after 2 attempts)" in e.value.diag.message_primary
        assert faults.stats("echo")["requests"] - before == 2
        faults.clear()
        conn.execute("SET sqlambda.max_attempts = 1")
        faults.throttle("echo", 5)
        before = faults.stats("echo")["requests"]
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT awslambda_fn('echo', '{}')")
        assert e.value.sqlstate == "LA002" and faults.stats("echo")["requests"] - before == 1


def test_a_region_argument_cannot_become_a_host(db):
    with psycopg.connect(mallory_dsn(db), autocommit=True) as conn:
        for region in ("evil.example.com#", "us-east-1.attacker.net/x", "127.0.0.1:9"):
            with pytest.raises(psycopg.Error) as e:
                conn.execute("SELECT status_code FROM sqlambda.invoke('echo', '{}', region => %s)", (region,))
            assert e.value.sqlstate == "22023" and "not an AWS region" in e.value.diag.message_primary


def test_doctor_shows_each_effective_value_and_where_it_came_from(db, local_stack):
    with dba_settings(db, request_timeout_ms=4321):
        report = api.doctor(db, strict=False)
    detail = {c.name: c.detail for c in report.checks}["settings"]
    assert f"endpoint_url = {local_stack.endpoint_url} [spec]" in detail
    assert "request_timeout_ms = 4321 [ALTER DATABASE SET]" in detail
    assert "max_attempts = 2 [spec]" in detail


def test_postgresql_conf_cannot_move_the_endpoint_and_is_treated_as_a_sessions_value(db, ctx, listener):
    """A placeholder's value from postgresql.conf / ALTER SYSTEM reaches a call only through
    current_setting(), like a session's SET (pg_settings never lists placeholders), so it gets exactly
    a session's rights: the endpoint stays put, a timeout may only go down. ALTER DATABASE is the channel."""

    def setting(conn, name):
        return conn.execute("SELECT value, source FROM sqlambda.settings() WHERE name = %s", (name,)).fetchone()

    with psycopg.connect(db, autocommit=True) as dba, psycopg.connect(db, autocommit=True) as observer, \
            psycopg.connect(mallory_dsn(db), autocommit=True) as conn:
        conn.execute("SELECT awslambda_fn('echo', '{}')")
        before = len(listener.requests)
        try:
            for name, value in (("endpoint_url", listener.url), ("request_timeout_ms", "600000")):
                dba.execute(f"SET sqlambda.{name} = '{value}'")  # PostgreSQL 15's ALTER SYSTEM needs the name known
                dba.execute(f"ALTER SYSTEM SET sqlambda.{name} = '{value}'")
            dba.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 10
            while observer.execute("SELECT current_setting('sqlambda.endpoint_url', true)").fetchone()[0] != listener.url:
                assert time.monotonic() < deadline, "the reload never reached the session"
                time.sleep(0.05)
            assert setting(observer, "endpoint_url")[1] == "spec" and setting(observer, "request_timeout_ms") == ("8000", "spec")
            for query in ("SELECT awslambda_fn('echo', '{\"k\": 1}')", "SELECT sec_status(7)"):
                assert conn.execute(query).fetchone()[0] is not None
            assert len(listener.requests) == before
        finally:
            for name in ("endpoint_url", "request_timeout_ms"):
                dba.execute(f"ALTER SYSTEM RESET sqlambda.{name}")
            dba.execute("SELECT pg_reload_conf()")
