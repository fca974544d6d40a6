"""The PostgreSQL bridge end to end: rendered artifacts installed into a real PostgreSQL 15 cluster,
calling real handlers through the real local AWS stack (with its fault injection).

The artifacts are executed directly (one transaction, psycopg) so these tests depend on the renderer
and the PL/Python runtime only, not on the installer. Each section covers one part of issue 4:
generic functions, invoke(), typed wrappers, RDS compatibility, and every invocation fault.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import types
from decimal import Decimal

import psycopg
import pytest
from pg_helpers import dba_settings
from psycopg import sql

from sqlambda.spec.model import Spec
from sqlambda.targets.postgres.render import render_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

ROLE_ADMIN, ROLE_READER, ROLE_NOBODY = "rt_fn_admin", "rt_fn_reader", "rt_fn_nobody"

TYPED_SOURCE = '''
def handler(event, context):
    return {"i": 42, "big": 9007199254740993, "n": 2.5, "f": 0.25, "b": True, "t": "hello",
            "d": "2024-02-29", "ts": "2024-02-29T10:00:00Z", "u": "12345678-1234-5678-1234-567812345678",
            "nested": {"list": [1, {"x": "y"}]}, "bad": "abc", "nothing": None, "echo": event}
'''
BOOM_SOURCE = '''
def handler(event, context):
    raise ValueError("bad order %s" % event.get("id"))
'''


def _spec(endpoint_url: str) -> Spec:
    typed = [
        ("t_int", "integer", "i"), ("t_big", "bigint", "big"), ("t_num", "numeric", "n"),
        ("t_float", "double precision", "f"), ("t_bool", "boolean", "b"), ("t_text", "text", "t"),
        ("t_date", "date", "d"), ("t_ts", "timestamptz", "ts"), ("t_uuid", "uuid", "u"),
        ("t_nested", "jsonb", "nested.list[1]"), ("t_null", "integer", "nothing"),
        ("t_missing", "text", "nope"), ("t_bad", "integer", "bad"),
    ]
    functions = [
        {"name": name, "lambda": "rt_typed", "returns": {"type": rtype, "path": path}, "roles": [ROLE_READER]}
        for name, rtype, path in typed
    ]
    functions += [
        {"name": "t_whole", "lambda": "rt_typed", "args": {"id": "bigint", "amount": "numeric", "at": "timestamptz",
         "meta": "jsonb", "note": "text", "day": "date", "flag": "boolean"}, "roles": [ROLE_READER]},
        {"name": "order_status", "lambda": "echo", "args": {"order_id": "bigint", "note": "text"},
         "returns": {"type": "text", "path": "Status"}, "roles": [ROLE_READER]},
        {"name": "notify_async", "lambda": "echo", "mode": "async", "args": {"msg": "text"}, "roles": [ROLE_READER]},
        {"name": "explode", "lambda": "rt_boom", "args": {"id": "integer"}, "roles": [ROLE_READER]},
        # set-returning, with payload keys and a default: echo sends the items back as Records
        {"name": "t_rows", "lambda": "echo", "args": {
            "items": {"type": "jsonb", "key": "Records"}, "tag": {"type": "text", "key": "Tag", "default": "none"}},
         "returns": {"type": "table", "path": "Records", "columns": {
             "id": {"type": "bigint", "path": "id"}, "at": {"type": "timestamptz", "path": "when.at"},
             "doc": {"type": "jsonb", "path": "doc"}, "label": "text"}},
         "roles": [ROLE_READER]},
    ]
    return Spec.model_validate({
        "project": "rt",
        "aws": {"endpoint_url": endpoint_url, "max_attempts": 3, "request_timeout_ms": 10000},
        "postgres": {"generic_roles": [ROLE_ADMIN], "rds_compat": True},
        "functions": functions,
    })


def install(dsn: str, spec: Spec) -> None:
    loaded = types.SimpleNamespace(spec=spec, path="test_functions_pg", checksum="0" * 64)
    with psycopg.connect(dsn) as conn:
        for artifact in render_postgres(loaded):
            for statement in artifact.statements:
                conn.execute(statement)


@pytest.fixture(scope="module")
def db(pg_dsn, local_stack, echo_function):
    from sqlambda.devkit.deploy import deploy_source

    deploy_source("rt_typed", TYPED_SOURCE, endpoint_url=local_stack.endpoint_url)
    deploy_source("rt_boom", BOOM_SOURCE, endpoint_url=local_stack.endpoint_url)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for role in (ROLE_ADMIN, ROLE_READER, ROLE_NOBODY):
            conn.execute(sql.SQL("DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
                         .format(sql.Identifier(role)))
        # the endpoint comes from the spec default baked into the render; no GUC needed
    install(pg_dsn, _spec(local_stack.endpoint_url))
    return pg_dsn


@pytest.fixture
def conn(db):
    with psycopg.connect(db, autocommit=True) as c:
        yield c


def one(conn, query, *params):
    return conn.execute(query, params).fetchone()


def sql_error(conn, query, *params) -> psycopg.errors.Diagnostic:
    with pytest.raises(psycopg.Error) as e:
        conn.execute(query, params)
    return e.value.diag


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_invocations(faults, fn, at_least, deadline_s=15.0) -> int:
    """Poll the stack's counter until ``at_least`` (async work finishes on its own schedule)."""
    end = time.monotonic() + deadline_s
    n = faults.stats(fn)["invocations"]
    while n < at_least and time.monotonic() < end:
        time.sleep(0.05)
        n = faults.stats(fn)["invocations"]
    return n


# -- generic functions (awslabs compatibility) ---------------------------------------------------------


def test_awslambda_fn_round_trip(conn):
    (out,) = one(conn, "SELECT awslambda_fn('echo', %s)", '{"name": "bob"}')
    assert json.loads(out) == {"name": "bob", "Status": "OK"}


def test_awslambda_fn_async_is_accepted_and_the_handler_runs(conn, faults):
    before = faults.stats("echo")["invocations"]
    (out,) = one(conn, "SELECT awslambda_fn_async('echo', %s)", '{"name": "async"}')
    assert out == ""  # the awslabs originals returned the (empty) Event response payload
    assert wait_for_invocations(faults, "echo", before + 1) == before + 1


def test_async_call_runs_even_if_the_transaction_rolls_back(db, faults):
    before = faults.stats("echo")["invocations"]
    with psycopg.connect(db) as c:
        c.execute("SELECT awslambda_fn_async('echo', '{}')")
        c.rollback()
    assert wait_for_invocations(faults, "echo", before + 1) == before + 1


def test_generic_functions_live_on_the_default_search_path(conn):
    rows = conn.execute("SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname LIKE 'awslambda_fn%' ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["awslambda_fn(text,text)", "awslambda_fn_async(text,text)"]


# -- invoke() ---------------------------------------------------------------------------------------------


def test_invoke_columns(conn):
    row = conn.execute("SELECT status_code, payload, executed_version, log_result FROM sqlambda.invoke('echo', %s)",
                       ('{"a": 1}',)).fetchone()
    assert row[0] == 200 and row[1] == {"a": 1, "Status": "OK"} and row[2] == "$LATEST" and row[3] is None


def test_invoke_log_tail(conn):
    status, log = one(conn, "SELECT status_code, log_result FROM sqlambda.invoke('echo', '{}', log_type => 'Tail')")
    assert status == 200 and log and ("START" in log or "END" in log or "REPORT" in log)


def test_invoke_dry_run_does_not_run_the_handler(conn, faults):
    before = faults.stats("echo")["invocations"]
    status, payload = one(conn, "SELECT status_code, payload FROM sqlambda.invoke('echo', '{}', 'DryRun')")
    assert (status, payload) == (204, None)
    assert faults.stats("echo")["invocations"] == before


def test_invoke_event(conn):
    status, payload = one(conn, "SELECT status_code, payload FROM sqlambda.invoke('echo', '{}', 'Event')")
    assert status == 202


def test_invoke_qualifier(conn):
    (version,) = one(conn, "SELECT executed_version FROM sqlambda.invoke('echo', '{}', qualifier => '$LATEST')")
    assert version == "$LATEST"
    d = sql_error(conn, "SELECT * FROM sqlambda.invoke('echo', '{}', qualifier => 'no_such_alias')")
    assert d.sqlstate == "42883"


def test_invoke_published_version_and_alias(conn, local_stack):
    lam = local_stack.client("lambda")
    version = lam.publish_version(FunctionName="rt_typed")["Version"]
    try:
        lam.create_alias(FunctionName="rt_typed", Name="live", FunctionVersion=version)
    except lam.exceptions.ResourceConflictException:
        lam.update_alias(FunctionName="rt_typed", Name="live", FunctionVersion=version)
    (executed,) = one(conn, "SELECT executed_version FROM sqlambda.invoke('rt_typed', '{}', qualifier => %s)", version)
    assert executed == version
    (executed,) = one(conn, "SELECT executed_version FROM sqlambda.invoke('rt_typed', '{}', qualifier => 'live')")
    assert executed == version


def test_invoke_bad_invocation_type(conn):
    d = sql_error(conn, "SELECT * FROM sqlambda.invoke('echo', '{}', 'Later')")
    assert d.sqlstate == "22023" and "invocation_type" in d.message_primary


# -- typed wrappers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn,expected", [
    ("t_int", 42), ("t_big", 9007199254740993), ("t_num", Decimal("2.5")), ("t_float", 0.25), ("t_bool", True),
    ("t_text", "hello"), ("t_uuid", "12345678-1234-5678-1234-567812345678"), ("t_nested", {"x": "y"}), ("t_null", None),
])
def test_wrapper_return_types(conn, fn, expected):
    (value,) = one(conn, sql.SQL("SELECT {}()").format(sql.Identifier(fn)))
    assert (str(value) if fn == "t_uuid" else value) == expected


def test_wrapper_return_dates(conn):
    conn.execute("SET TimeZone = 'UTC'")
    d, ts = one(conn, "SELECT t_date()::text, t_ts()::text")
    assert (d, ts) == ("2024-02-29", "2024-02-29 10:00:00+00")


def test_wrapper_result_types_in_the_catalog(conn):
    (rtype,) = one(conn, "SELECT pg_get_function_result('t_big()'::regprocedure)")
    assert rtype == "bigint"


def test_wrapper_builds_a_typed_json_payload(conn):
    conn.execute("SET DateStyle = 'SQL, DMY'")  # the wrapper pins ISO, so the caller's style does not leak
    conn.execute("SET TimeZone = 'UTC'")
    (out,) = one(conn, "SELECT t_whole(9007199254740993, 12.50, '2024-05-01 10:00+02', %s, NULL, '2024-05-01', false)",
                 '{"deep": [1, {"k": null}]}')
    assert out["echo"] == {"id": 9007199254740993, "amount": 12.5, "at": "2024-05-01T08:00:00+00:00",
                           "meta": {"deep": [1, {"k": None}]}, "note": None, "day": "2024-05-01", "flag": False}


def test_wrapper_text_path_and_named_arguments(conn):
    (status,) = one(conn, "SELECT order_status(note => 'x', order_id => 7)")
    assert status == "OK"


def test_async_wrapper_returns_the_status(conn, faults):
    before = faults.stats("echo")["invocations"]
    (out,) = one(conn, "SELECT notify_async('hello')")
    assert out["status_code"] == 202
    assert wait_for_invocations(faults, "echo", before + 1) >= before + 1


def test_wrapper_missing_path(conn):
    d = sql_error(conn, "SELECT t_missing()")
    assert d.sqlstate == "LA007" and d.message_primary == "t_missing: the result of lambda rt_typed has no nope"
    assert '"i": 42' in d.message_detail


def test_wrapper_value_that_does_not_fit(conn):
    d = sql_error(conn, "SELECT t_bad()")
    assert d.sqlstate == "LA007" and 'bad = "abc"' in d.message_primary and "does not fit integer" in d.message_primary


def test_wrapper_is_security_definer_with_pinned_search_path(conn):
    secdef, config = one(conn, "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'order_status(bigint,text)'::regprocedure")
    assert secdef is True and "search_path=pg_catalog, pg_temp" in config


# -- permissions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "SELECT order_status(1, 'x')",
    "SELECT awslambda_fn('echo', '{}')",
    "SELECT awslambda_fn_async('echo', '{}')",
    "SELECT * FROM sqlambda.invoke('echo', '{}')",
])
def test_role_without_grant_is_denied(conn, faults, query):
    before = faults.stats("echo")["invocations"]
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE_NOBODY)))
    d = sql_error(conn, query)
    assert d.sqlstate == "42501"
    assert faults.stats("echo")["invocations"] == before


def test_granted_role_calls_its_wrapper_only(conn):
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE_READER)))
    assert one(conn, "SELECT order_status(1, 'x')") == ("OK",)
    assert sql_error(conn, "SELECT awslambda_fn('echo', '{}')").sqlstate == "42501"


def test_generic_role_calls_generic_functions(conn):
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE_ADMIN)))
    (out,) = one(conn, "SELECT awslambda_fn('echo', '{\"who\": \"admin\"}')")
    assert json.loads(out)["who"] == "admin"
    assert one(conn, "SELECT status_code FROM sqlambda.invoke('echo', '{}')") == (200,)
    assert sql_error(conn, "SELECT order_status(1, 'x')").sqlstate == "42501"


def test_public_has_no_execute_on_anything_sqlambda_created(conn):
    rows = conn.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace::regnamespace::text IN ('public', 'sqlambda', 'aws_lambda', 'aws_commons')
          AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpython3u')
          AND has_function_privilege('public', p.oid, 'EXECUTE')""").fetchall()
    assert rows == []


# -- faults ----------------------------------------------------------------------------------------------------------


def test_malformed_json_args(conn, faults):
    before = faults.stats("echo")["invocations"]
    d = sql_error(conn, "SELECT awslambda_fn('echo', '{not json')")
    assert d.sqlstate == "22P02" and d.message_primary.startswith("lambda echo: arguments are not valid JSON")
    assert d.message_detail == "{not json"
    assert faults.stats("echo")["invocations"] == before


def test_unknown_function(conn):
    d = sql_error(conn, "SELECT awslambda_fn('rt_no_such_function', '{}')")
    assert d.sqlstate == "42883"
    assert d.message_primary.startswith("lambda rt_no_such_function failed: ResourceNotFoundException")


def test_lambda_error_unhandled(conn):
    d = sql_error(conn, "SELECT explode(7)")
    assert d.sqlstate == "LA001"
    assert d.message_primary == "lambda rt_boom failed: ValueError: bad order 7"
    assert json.loads(d.message_detail)["errorType"] == "ValueError"


def test_endpoint_down(db):
    port = closed_port()
    with dba_settings(db, endpoint_url=f"http://127.0.0.1:{port}", max_attempts=2), \
            psycopg.connect(db, autocommit=True) as conn:
        d = sql_error(conn, "SELECT awslambda_fn('echo', '{}')")
    assert d.sqlstate == "LA004" and "(after 2 attempts)" in d.message_primary
    assert d.message_hint and f"127.0.0.1:{port}" in d.message_hint and "sqlambda.endpoint_url" in d.message_hint


def test_timeout(conn, faults):
    faults.latency("echo", 3000, count=1)
    conn.execute("SET sqlambda.request_timeout_ms = 500")
    d = sql_error(conn, "SELECT awslambda_fn('echo', '{}')")
    assert d.sqlstate == "LA003" and "500 ms" in d.message_primary


def test_throttling_below_max_attempts_succeeds_after_retries(conn, faults):
    faults.throttle("echo", 2)
    conn.execute("SET sqlambda.max_attempts = 3")
    (out,) = one(conn, "SELECT awslambda_fn('echo', '{\"retried\": true}')")
    assert json.loads(out)["retried"] is True


def test_throttling_beyond_max_attempts_fails(conn, faults):
    faults.throttle("echo", 5)
    conn.execute("SET sqlambda.max_attempts = 3")
    d = sql_error(conn, "SELECT awslambda_fn('echo', '{}')")
    assert d.sqlstate == "LA002" and "(after 3 attempts)" in d.message_primary


def test_server_error_is_retried(conn, faults):
    faults.server_error("echo", 1, status=503)
    (out,) = one(conn, "SELECT awslambda_fn('echo', '{\"ok\": 1}')")
    assert json.loads(out)["ok"] == 1


def test_dropped_connection_is_retried(conn, faults):
    faults.drop("echo", 1)
    conn.execute("SET sqlambda.max_attempts = 2")
    (out,) = one(conn, "SELECT awslambda_fn('echo', '{\"after_drop\": 1}')")
    assert json.loads(out)["after_drop"] == 1


def test_dropped_connection_every_time_fails_with_the_endpoint_hint(conn, faults):
    faults.drop("echo", 5)
    conn.execute("SET sqlambda.max_attempts = 2")
    d = sql_error(conn, "SELECT awslambda_fn('echo', '{}')")
    assert d.sqlstate == "LA004" and "(after 2 attempts)" in d.message_primary and d.message_hint


def test_function_error_is_never_retried(conn, faults):
    before = faults.stats("rt_boom")["invocations"]
    conn.execute("SET sqlambda.max_attempts = 5")
    assert sql_error(conn, "SELECT awslambda_fn('rt_boom', '{}')").sqlstate == "LA001"
    assert faults.stats("rt_boom")["invocations"] == before + 1


@pytest.mark.parametrize("fn,size", [("awslambda_fn", 6 * 1024 * 1024), ("awslambda_fn_async", 1024 * 1024)])
def test_payload_too_large_sends_nothing(conn, faults, fn, size):
    # requests, not invocations: an Event call of an earlier test may still be running (and
    # counting) now, but every request it made reached the stack before that test returned
    before = faults.stats("echo")["requests"]
    big = json.dumps({"blob": "x" * size})
    d = sql_error(conn, sql.SQL("SELECT {}('echo', %s)").format(sql.Identifier(fn)), big)
    assert d.sqlstate == "54000" and "nothing was sent" in d.message_primary
    assert faults.stats("echo")["requests"] == before


def test_a_session_cannot_move_the_endpoint(db, conn):
    # where a signed request goes is the DBA's decision (tests/security covers every way a caller
    # could try): the session's value is ignored, with one WARNING saying so
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("SET sqlambda.endpoint_url = 'http://127.0.0.1:1'")
    assert json.loads(conn.execute("SELECT awslambda_fn('echo', '{}')").fetchone()[0])["Status"] == "OK"
    conn.execute("SELECT awslambda_fn('echo', '{}')")
    assert len([n for n in notices if "is ignored" in n and "127.0.0.1:1" in n]) == 1


def test_one_bundle_loaded_per_backend(conn):
    conn.execute("SELECT awslambda_fn('echo', '{}'), order_status(1, 'x'), (sqlambda.invoke('echo', '{}')).status_code")
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("""DO $$ plpy.notice(str(len([k for k in GD if k.startswith('sqlambda.bundle:')])) + ' ' +
                                      str(len(GD.get('sqlambda.clients', {})))) $$ LANGUAGE plpython3u""")
    assert notices == ["1 1"]


# -- RDS / Aurora compatibility: AWS's documented examples, run unchanged through psql ------------------------------

RDS_DOC_SCRIPT = r"""
\set ON_ERROR_STOP 1
SELECT aws_commons.create_lambda_function_arn('echo', 'us-east-1') AS aws_lambda_arn_1 \gset
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{"body": "Hello from Postgres!"}'::json);
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{"body": "Hello from Postgres!"}'::json, 'RequestResponse');
SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('echo', 'us-east-1'), '{"body": "Hello from Postgres!"}'::json );
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{"body": "Hello from Postgres!"}'::json, 'Event');
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{"body": "Hello from Postgres!"}'::json, 'RequestResponse', 'Tail');
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{"body": "Hello from Postgres!"}'::json, 'RequestResponse', 'Tail', '{"custom": {"key": "value"}}'::json);
SELECT * FROM aws_lambda.invoke('echo', '{"body": "Hello from Postgres!"}'::jsonb, 'us-east-1', 'RequestResponse');
"""


def test_rds_documented_examples_run_unchanged(db, pg_cluster):
    psql = str(pg_cluster._bindir / "psql")
    res = subprocess.run([psql, "-X", "-A", "-t", "-F", "|", "-d", db, "-f", "-"], input=RDS_DOC_SCRIPT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [line.split("|") for line in res.stdout.strip().splitlines() if line.strip()]
    assert [r[0] for r in rows] == ["200", "200", "200", "202", "200", "200", "200"]
    assert json.loads(rows[0][1]) == {"body": "Hello from Postgres!", "Status": "OK"}
    assert rows[4][3] and rows[5][3]  # log_result present with 'Tail' (base64, as the Lambda API returns it)


def test_rds_overloads_match_the_documented_signatures(conn):
    rows = conn.execute("""
        SELECT p.oid::regprocedure::text, p.proargnames, pg_get_function_arguments(p.oid)
        FROM pg_proc p WHERE p.pronamespace = 'aws_lambda'::regnamespace ORDER BY 1""").fetchall()
    assert [r[0] for r in rows] == [
        "aws_lambda.invoke(aws_commons._lambda_function_arn_1,json,text,text,json,character varying)",
        "aws_lambda.invoke(aws_commons._lambda_function_arn_1,jsonb,text,text,jsonb,character varying)",
        # six required arguments: only there so AWS's documented six-argument psql example resolves
        "aws_lambda.invoke(text,json,text,text,text,character varying)",
        "aws_lambda.invoke(text,json,text,text,text,json,character varying)",
        "aws_lambda.invoke(text,jsonb,text,text,text,character varying)",
        "aws_lambda.invoke(text,jsonb,text,text,text,jsonb,character varying)",
    ]
    for _, names, _ in rows:
        assert names[-4:] == ["status_code", "payload", "executed_version", "log_result"]
    assert "region text DEFAULT NULL::text, invocation_type text DEFAULT 'RequestResponse'::text" in rows[3][2]
    assert "DEFAULT" not in rows[2][2]  # no defaults: it never takes part in a call of 2 to 5 arguments



def test_set_returning_wrapper_rows_typed_in_order(conn):
    items = [{"id": 3, "when": {"at": "2024-02-29T10:00:00Z"}, "doc": {"k": [1, "x"]}, "label": "c"},
             {"id": "1", "label": 7}, {"id": 2}]
    conn.execute("SET ROLE " + ROLE_READER)
    rows = conn.execute("SELECT id, at, doc, label FROM t_rows(%s::jsonb)", (json.dumps(items),)).fetchall()
    assert rows[0][0] == 3 and rows[0][1].isoformat() == "2024-02-29T10:00:00+00:00"
    assert rows[0][2] == {"k": [1, "x"]} and rows[0][3] == "c"
    assert rows[1:] == [(1, None, None, "7"), (2, None, None, None)]
    assert one(conn, "SELECT count(*) FROM t_rows('[]'::jsonb)")[0] == 0


def test_set_returning_wrapper_payload_keys_and_default(conn):
    # echo returns its input: rows exist only if the items travelled under the key "Records"
    rows = conn.execute("SELECT label FROM t_rows(%s::jsonb, 'x')", (json.dumps([{"label": "a"}]),)).fetchall()
    assert rows == [("a",)]
    sig = one(conn, "SELECT pg_get_function_arguments('t_rows'::regproc)")[0]
    assert sig == "items jsonb, tag text DEFAULT 'none'::text"


def test_set_returning_wrapper_bad_cell_is_la007_and_needs_execute(conn):
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT * FROM t_rows('[{\"id\": \"x\"}]'::jsonb)")
    assert exc.value.sqlstate == "LA007" and "row 0, column id" in exc.value.diag.message_primary
    conn.execute("SET ROLE " + ROLE_NOBODY)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM t_rows('[]'::jsonb)")
