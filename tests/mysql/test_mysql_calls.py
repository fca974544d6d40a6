"""Calling Lambda from MariaDB through the installed plugin, against the local stack: SQL written for
the original prototype and for Aurora MySQL, verbatim; typed wrappers; the fault matrix; 16
sessions at once; least privilege attacked by ordinary logins.

What runs where: the C plugin (built by the installer from mysql_udf/) inside a private mariadbd
(Debian's 10.11); its environment names the local stack's endpoint and credentials, the way a
DBA's systemd drop-in would. MySQL 8 is covered by the render tests only (no server here).
"""

from __future__ import annotations

import json
import threading
import time

import pymysql
import pytest
from compat_helpers import original

pytestmark = [pytest.mark.local_stack, pytest.mark.slow]

ARN = "arn:aws:lambda:us-east-1:123456789012:function:BasicTestLambda"


def _error(server, sql, params=None, **kw) -> str:
    with pytest.raises(pymysql.err.MySQLError) as info:
        server.one(sql, params, **kw)
    return str(info.value.args[-1])


# -- code written for the systems we replace, verbatim -----------------------------------------------

def test_original_prototype_readme_examples_run_unchanged(installed, local_stack):
    """mysql/README_MYSQL.md of aws-samples/aws-lambda-rdbms-integration: lambdaTest (the original
    samples/lambdaTest.py, unchanged) called with the README's own SQL."""
    local_stack.deploy_source("lambdaTest", original("lambdaTest.py"), handler="lambdaTest.lambda_handler")
    with installed.connect(database="sqlambda") as c, c.cursor() as cur:
        cur.execute("""SELECT awslambda_fn('lambdaTest','{"name":"bob"}') AS lambdatest ;""")
        assert json.loads(cur.fetchone()[0]) == {"Status": "OK", "name": "bob"}
        cur.execute("""SELECT awslambda_fn_async('lambdaTest','{"name":"bob"}') AS lambdatest ;""")
        assert json.loads(cur.fetchone()[0]) == {}  # the original printed an empty JSON object


def test_aurora_mysql_documented_examples_run_unchanged(installed, local_stack):
    """AuroraMySQL.Integrating.NativeLambda: the lambda_sync and lambda_async examples and the
    trigger example, character for character (the client's prompts and DELIMITER lines aside)."""
    from fixtures_local import deploy_recorder

    rec = deploy_recorder(local_stack, "BasicTestLambda")
    with installed.connect(database="sqlambda") as c, c.cursor() as cur:
        cur.execute("""SELECT lambda_sync(
    'arn:aws:lambda:us-east-1:123456789012:function:BasicTestLambda',
    '{"operation": "ping"}');""")
        assert json.loads(cur.fetchone()[0]) == {"received": 0}
        cur.execute("""SELECT lambda_async(
    'arn:aws:lambda:us-east-1:123456789012:function:BasicTestLambda',
    '{"operation": "ping"}');""")
        assert cur.fetchone()[0] == ""
        cur.execute("CREATE TABLE Test_trigger (id INT)")  # the page never defines its table
        cur.execute("SET @result=0;")
        cur.execute("""CREATE TRIGGER myFirstTrigger
      AFTER INSERT
          ON Test_trigger FOR EACH ROW
      BEGIN
      SELECT lambda_async(
          'arn:aws:lambda:us-east-1:123456789012:function:BasicTestLambda',
          '{"operation": "ping"}')
          INTO @result;
      END;""")
        try:
            cur.execute("INSERT INTO Test_trigger VALUES (1), (2)")
        finally:
            cur.execute("DROP TABLE Test_trigger")
    deadline = time.monotonic() + 30
    while len(rec.batches()) < 4 and time.monotonic() < deadline:  # sync + async + one per inserted row
        time.sleep(0.1)
    assert rec.batches() == [{"operation": "ping"}] * 4


# -- typed wrappers ----------------------------------------------------------------------------------

def test_typed_wrappers_build_json_and_read_results(installed):
    assert installed.one("SELECT sqlambda.order_status(1, 'x', TRUE)", user="alice", password="pw") == "OK"
    doc = json.loads(installed.one("SELECT sqlambda.order_echo(7, '{\"a\": [1, true]}')", user="alice", password="pw"))
    assert doc == {"order_id": 7, "tags": {"a": [1, True]}, "Status": "OK"}
    assert json.loads(installed.one("SELECT sqlambda.order_notify('hi')", user="alice", password="pw")) == {"StatusCode": 202}


def test_wrapper_payload_matches_the_postgres_wrapper_contract(installed):
    """Booleans are JSON booleans and NULLs are null in the payload, as on PostgreSQL."""
    doc = json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', JSON_OBJECT('b', JSON_EXTRACT('false', '$'), 'n', NULL))"))
    assert doc == {"b": False, "n": None, "Status": "OK"}


# -- the fault matrix ----------------------------------------------------------------------------------

def test_lambda_error_carries_error_type_and_message(installed):
    msg = _error(installed, "SELECT sqlambda.boom()", user="alice", password="pw")
    assert msg.startswith("lambda my_boom failed: ValueError: the boom Lambda failed on purpose"), msg


def test_unknown_function(installed):
    msg = _error(installed, "SELECT sqlambda.awslambda_fn('no_such_function', '{}')")
    assert "HTTP 404 ResourceNotFoundException" in msg and "no_such_function" in msg


def test_bad_json_payload_is_refused_by_lambda_with_its_reason(installed):
    msg = _error(installed, "SELECT sqlambda.awslambda_fn('echo', '{not json')")
    assert "HTTP 400" in msg and "InvalidRequestContent" in msg, msg


def test_oversized_payload_is_refused_before_any_request(installed, faults):
    before = faults.stats("echo")
    msg = _error(installed, "SELECT sqlambda.awslambda_fn_async('echo', CONCAT('\"', REPEAT('x', 1100000), '\"'))")
    assert "exceeds the asynchronous (Event) limit of 1048576 bytes" in msg
    msg = _error(installed, "SELECT sqlambda.awslambda_fn('echo', CONCAT('\"', REPEAT('x', 6400000), '\"'))")
    assert "exceeds the synchronous limit of 6291456 bytes" in msg
    assert faults.stats("echo") == before  # nothing was sent


def test_oversized_response_is_an_error_not_a_truncated_result(installed):
    msg = _error(installed, "SELECT sqlambda.awslambda_fn('my_boom', '{\"oversized\": true}')")
    assert "6 MB" in msg or "RequestEntityTooLarge" in msg or "ResponseSizeTooLarge" in msg, msg


def test_throttling_and_5xx_are_retried_with_backoff(installed, faults):
    faults.throttle("echo", count=2)
    assert json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', '{\"t\": 1}')"))["t"] == 1
    faults.server_error("echo", count=2, status=503)
    assert json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', '{\"t\": 2}')"))["t"] == 2
    faults.throttle("echo", count=None)
    msg = _error(installed, "SELECT sqlambda.awslambda_fn('echo', '{}')")
    assert "HTTP 429" in msg, msg
    faults.clear("echo")


def test_read_timeout_is_an_error_and_a_sync_call_is_not_sent_twice(installed, faults):
    # every call slow (a count of 1 could be taken by an earlier test's asynchronous call running late);
    # the server's read timeout is 3000 ms
    faults.latency("echo", 4500, count=None)
    before = faults.stats("echo")
    msg = _error(installed, "SELECT sqlambda.awslambda_fn('echo', '{}')")
    assert "no answer within 3000 ms" in msg, msg
    assert faults.stats("echo")["requests"] - before["requests"] == 1


def test_endpoint_down_is_a_clear_error(installed, local_stack):
    """mysqld configured with an endpoint where nothing listens: retried, then a clear error; the
    server is restarted with its real configuration afterwards."""
    from mysql_helpers import server_env

    from sqlambda.targets.mysql.cluster import free_port

    db = installed.db
    db.restart(env=server_env(local_stack, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"))
    try:
        msg = _error(installed, "SELECT sqlambda.awslambda_fn('echo', '{}')")
        assert "cannot reach http://127.0.0.1:" in msg and "connect" in msg.lower(), msg
    finally:
        db.restart(env=server_env(local_stack))
    assert json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', '{}')"))["Status"] == "OK"


# -- concurrency ---------------------------------------------------------------------------------------

def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def test_sixteen_sessions_at_once_no_crash_no_leak(installed):
    def round_(n_calls: int) -> list:
        results, errors = [], []

        def session(i: int) -> None:
            try:
                with installed.connect(user="carol", password="pw") as c, c.cursor() as cur:
                    for k in range(n_calls):
                        cur.execute("SELECT sqlambda.awslambda_fn('echo', JSON_OBJECT('s', %s, 'k', %s))", (i, k))
                        results.append(json.loads(cur.fetchone()[0]))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=session, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        return results

    pid = installed.db.pid
    first = round_(10)
    assert sorted((r["s"], r["k"]) for r in first) == sorted((i, k) for i in range(16) for k in range(10))
    warm = _rss_kb(pid)
    for _ in range(3):
        round_(10)
    grown = _rss_kb(pid) - warm
    assert installed.db.pid == pid  # the server did not crash and restart
    # 480 more calls: a leak of even 10 KB per call would show as ~5 MB
    assert grown < 4096, f"mariadbd grew {grown} KB over 480 calls"


# -- least privilege -----------------------------------------------------------------------------------

def test_a_login_without_execute_cannot_call_lambda(installed):
    """mallory owns a whole database (ALL on shop) but was granted nothing of sqlambda's."""
    for fn in ("awslambda_fn", "awslambda_fn_async", "lambda_sync", "lambda_async"):
        msg = _error(installed, f"SELECT sqlambda.{fn}('echo', '{{}}')", user="mallory", password="pw")
        assert "denied" in msg, msg
    assert "denied" in _error(installed, "SELECT sqlambda.order_status(1, 'x', TRUE)", user="mallory", password="pw")
    # alice holds the wrappers' role only: not the generic functions
    assert "denied" in _error(installed, "SELECT sqlambda.awslambda_fn('echo', '{}')", user="alice", password="pw")
    assert json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', '{}')", user="carol", password="pw"))["Status"] == "OK"


def test_the_loadable_function_itself_refuses_without_the_key(installed):
    """Loadable functions have no privileges in MySQL: anyone may name sqlambda_invoke. Without the
    key it sends nothing; the key table is out of reach; guesses fail."""
    for key in ("", "0" * 64, "x", "' OR 1=1 -- "):
        msg = _error(installed, "SELECT sqlambda_invoke(%s, 'echo', '{}', 0)", (key,), user="mallory", password="pw")
        assert "sqlambda's stored functions only" in msg
    assert "denied" in _error(installed, "SELECT k FROM sqlambda.sqlambda_key", user="mallory", password="pw")
    assert "denied" in _error(installed, "SELECT k FROM sqlambda.sqlambda_key", user="carol", password="pw")
    # the configuration function is callable by anyone and tells no secret
    cfg = installed.one("SELECT sqlambda_config()", user="mallory", password="pw")
    text = cfg.decode() if isinstance(cfg, bytes) else cfg
    key = installed.one("SELECT k FROM sqlambda.sqlambda_key")
    assert key not in text and "test" not in json.loads(text).values()


def test_the_definer_account_cannot_log_in_and_nothing_is_granted_to_everyone(installed):
    # the catalog says so (a login attempt over TCP would fail for a 'localhost' account anyway)
    assert installed.one("SELECT JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv "
                         "WHERE User = 'sqlambda_sqlambda' AND Host = 'localhost'") in ("true", "1")
    rows = installed.one("SELECT COUNT(*) FROM mysql.procs_priv WHERE Db = 'sqlambda' AND User IN ('', 'PUBLIC')")
    assert rows == 0
    assert installed.one("SELECT COUNT(*) FROM mysql.db WHERE Db = 'sqlambda' AND User IN ('', 'PUBLIC')") == 0


def test_a_table_writer_cannot_write_the_outbox_or_routes_directly(installed):
    for sql in ("INSERT INTO sqlambda.sqlambda_outbox (route, table_name, operation, created_at) "
                "VALUES ('orders_out', 'x', 'insert', NOW())",
                "UPDATE sqlambda.sqlambda_outbox_route SET target = 'evil'",
                "DELETE FROM sqlambda.sqlambda_outbox"):
        assert "denied" in _error(installed, sql, user="mallory", password="pw")


def test_an_arn_cannot_point_the_signed_request_at_another_host(installed):
    """The ARN's region becomes part of the host; a caller must not turn it into another service's."""
    for arn in ("arn:aws:lambda:s3:123456789012:function:x", "arn:aws:lambda:evil.example.com#:1:function:x",
                "arn:aws:lambda:us-east-1.attacker:123456789012:function:x", "arn:aws:lambda::123456789012:function:x"):
        msg = _error(installed, "SELECT sqlambda.awslambda_fn(%s, '{}')", (arn,), user="carol", password="pw")
        assert "invalid Lambda function" in msg, (arn, msg)


def test_a_planted_key_table_never_becomes_the_plugins_key(local_stack, tmp_path):
    """mallory may create tables in her own database: one named sqlambda_key, made before the first
    install, must not decide the key the plugin is built with (it would let her call it directly)."""
    from mysql_helpers import Server, server_env

    from sqlambda import api
    from sqlambda.targets.mysql.cluster import MariaDB

    planted = "a" * 64
    db = MariaDB(env=server_env(local_stack))
    try:
        db.start()
        server = Server(db, None)
        server.run("CREATE DATABASE aaa", "CREATE TABLE aaa.sqlambda_key (id TINYINT PRIMARY KEY, k CHAR(64))",
                   f"INSERT INTO aaa.sqlambda_key VALUES (1, '{planted}')",
                   "CREATE TABLE aaa.sqlambda_installed (artifact_key VARCHAR(512))",
                   "INSERT INTO aaa.sqlambda_installed VALUES ('plugin sqlambda_udf')")
        spec = tmp_path / "fresh.yaml"
        spec.write_text("project: fresh\n", encoding="utf-8")
        api.install(str(spec), db.dsn, target="mysql")
        assert server.one("SELECT k FROM sqlambda.sqlambda_key") != planted
        with pytest.raises(pymysql.err.MySQLError) as info:
            server.one("SELECT sqlambda_invoke(%s, 'echo', '{}', 0)", (planted,))
        assert "sqlambda's stored functions only" in str(info.value)
        # nor does the look-alike registry keep the plugin alive at uninstall
        result = api.uninstall(db.dsn, target="mysql", spec=str(spec))
        assert not [n for e in result.removed for n in e.notes if "kept" in n]
        assert server.one("SELECT COUNT(*) FROM mysql.func WHERE name LIKE 'sqlambda%%'") == 0
    finally:
        db.destroy()
