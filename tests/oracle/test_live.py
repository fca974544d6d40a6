"""Live Oracle tests: install, calls, wrappers, grants, trigger batching, outbox drain, uninstall, and
what the grammar, security-manager and doctor checks prove offline: every type and trigger kind
compiles (the coverage spec), the release gate, the doctor, the credential source from the
session, a Java state reset, bounded trigger buffers, the original's SQLERRM for function errors.

They run whenever ORACLE_TEST_DSN is set (``user/password@host:port/service``, python-oracledb thin
mode) and are skipped otherwise, with that reason shown by ``pytest -ra``. Oracle cannot run on the
CI machines of this project, so these tests have NOT been run there; they are written to run
unchanged against e.g. Oracle Database 23ai Free (``gvenzl/oracle-free``) or 19c.

What the database user needs (see README, Oracle): CREATE PROCEDURE, CREATE TRIGGER, CREATE TABLE,
CREATE JOB, quota on its tablespace, EXECUTE on SYS.DBMS_LOCK, Java socket permissions on the
endpoint (granted by a DBA with DBMS_JAVA.GRANT_PERMISSION, or the user holds JAVA_ADMIN), and for
the grant test CREATE ROLE (that test skips itself without it).

The Lambda endpoint must be reachable FROM THE DATABASE SERVER: set ORACLE_TEST_ENDPOINT_URL to the
local stack's URL as the server sees it (e.g. ``http://host.docker.internal:4566``); by default the
local stack fixture's own URL is used, which works when Oracle runs on this machine's network.
"""

from __future__ import annotations

import os

import pytest

from sqlambda.errors import InstallError
from sqlambda.pipeline import ApplyExecutor, verify_problems
from sqlambda.plan import make_plan
from sqlambda.spec.model import Spec
from sqlambda.targets.oracle import OracleTarget
from sqlambda.targets.oracle import render as R

DSN = os.environ.get("ORACLE_TEST_DSN")
pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(not DSN, reason="set ORACLE_TEST_DSN=user/pass@host:port/service to run live Oracle tests"),
]

ROLE = "SQLAMBDA_TEST_READER"
TABLE = "SQLAMBDA_TEST_ORDERS"


@pytest.fixture(scope="module")
def endpoint(request) -> str:
    if os.environ.get("ORACLE_TEST_ENDPOINT_URL"):
        return os.environ["ORACLE_TEST_ENDPOINT_URL"]
    request.getfixturevalue("echo_function")  # deploys lambdas/echo as `echo` on the local stack
    return request.getfixturevalue("local_stack").endpoint_url


@pytest.fixture(scope="module")
def target() -> OracleTarget:
    return OracleTarget()


@pytest.fixture(scope="module")
def conn(target):
    c = target.connect(DSN)
    yield c
    c.close()


def _spec(endpoint: str, **extra) -> Spec:
    return Spec.model_validate({
        "project": "live",
        "aws": {"region": "us-east-1", "endpoint_url": endpoint},
        "functions": [
            {"name": "sqlambda_t_status", "lambda": "echo", "args": {"order_id": "bigint", "note": "text", "rush": "boolean"},
             "returns": {"type": "text", "path": "Status"}, "roles": extra.get("roles", [])},
            {"name": "sqlambda_t_echo", "lambda": "echo", "args": {"doc": "jsonb"}},
            {"name": "sqlambda_t_async", "lambda": "echo", "mode": "async"},
        ],
        "triggers": extra.get("triggers", []),
        "send_after_commit": extra.get("send_after_commit", False),
    })


def _install(target, conn, spec, *, remove_all=False):
    r = R.render(spec)
    target.ensure_registry(conn, r.schema, None)
    plan = make_plan("oracle", r.artifacts, target.read_registry(conn, r.schema), remove_all=remove_all)
    target.lock(conn, r.schema, 30)
    try:
        ApplyExecutor(target, conn, r.schema, "live-test", r.spec_checksum).run(plan)
    finally:
        target.unlock(conn)
    return plan


def _scalar(conn, sql, **binds):
    cur = conn.cursor()
    cur.execute(sql, **binds)
    v = cur.fetchone()[0]
    return v.read() if hasattr(v, "read") else v


@pytest.fixture(scope="module")
def installed(target, conn, endpoint):
    spec = _spec(endpoint)
    _install(target, conn, spec)
    yield spec
    _install(target, conn, spec, remove_all=True)


def test_install_creates_valid_objects_and_is_idempotent(target, conn, installed):
    for name in ("AWSLAMBDA_FN", "AWSLAMBDA_FN_CLOB", "SQLAMBDA_T_STATUS", "SQLAMBDA_RT"):
        assert _scalar(conn, "SELECT status FROM USER_OBJECTS WHERE object_name = :n AND object_type IN ('FUNCTION', 'PACKAGE')", n=name) == "VALID"
    assert _scalar(conn, "SELECT COUNT(*) FROM USER_OBJECTS WHERE object_type = 'JAVA CLASS' AND object_name LIKE 'sqlambda/%' AND status <> 'VALID'") == 0
    again = make_plan("oracle", R.render(installed).artifacts, target.read_registry(conn, None))
    assert again.is_noop
    assert verify_problems(target, conn, R.render(installed).artifacts, None) == []


def test_generic_calls(conn, installed):
    out = _scalar(conn, "SELECT awslambda_fn('echo', '{\"a\": 1}') FROM dual")
    assert '"a"' in out and "Status" in out
    # the original's answer to an Event call: Lambda's empty body, NULL in Oracle
    assert _scalar(conn, "SELECT awslambda_fn_async('echo', '{\"a\": 1}') FROM dual") is None
    conn.cursor().execute("BEGIN awslambda_proc('echo', '{\"from\": \"awslambda_proc\"}'); END;")
    big = '{"pad": "' + "x" * 40000 + '"}'
    cur = conn.cursor()
    cur.execute("SELECT awslambda_fn_clob('echo', :p) FROM dual", p=big)
    assert "x" * 40000 in cur.fetchone()[0].read()


def test_wrappers(conn, installed):
    assert _scalar(conn, "SELECT sqlambda_t_status(42, 'hi', 1) FROM dual") == "OK"
    doc = _scalar(conn, "SELECT sqlambda_t_echo('{\"k\": [1, 2]}') FROM dual")
    assert '"k":[1,2]' in doc.replace(" ", "")
    assert '"status_code":202' in _scalar(conn, "SELECT sqlambda_t_async FROM dual").replace(" ", "")
    with pytest.raises(Exception, match="ORA-20002"):
        _scalar(conn, "SELECT sqlambda_t_status(1.5, 'x', 1) FROM dual")
    with pytest.raises(Exception, match="ORA-20002"):
        _scalar(conn, "SELECT sqlambda_t_status(1, 'x', 7) FROM dual")


def test_a_lambda_error_surfaces_as_ora_29532(conn, installed):
    with pytest.raises(Exception, match="ORA-29532"):
        _scalar(conn, "SELECT awslambda_fn('sqlambda-no-such-function', '{}') FROM dual")


def test_grants_only_to_the_spec_role(target, conn, endpoint):
    cur = conn.cursor()
    try:
        cur.execute(f"CREATE ROLE {ROLE}")
    except Exception as exc:  # noqa: BLE001
        if "ORA-01921" not in str(exc):  # already exists is fine
            pytest.skip(f"cannot create a test role: {exc}")
    spec = _spec(endpoint, roles=[ROLE.lower()])
    try:
        _install(target, conn, spec)
        rows = cur.execute("SELECT grantee, table_name FROM USER_TAB_PRIVS WHERE privilege = 'EXECUTE' AND table_name LIKE 'SQLAMBDA_T_%'").fetchall()
        assert (ROLE, "SQLAMBDA_T_STATUS") in rows
        assert not [r for r in rows if r[0] == "PUBLIC"]
        assert not cur.execute("SELECT COUNT(*) FROM ALL_SYNONYMS WHERE owner = 'PUBLIC' AND table_name LIKE 'AWSLAMBDA_FN%'").fetchone()[0]
        # removing the role from the spec revokes the grant
        _install(target, conn, _spec(endpoint))
        rows = cur.execute("SELECT grantee FROM USER_TAB_PRIVS WHERE table_name = 'SQLAMBDA_T_STATUS' AND privilege = 'EXECUTE'").fetchall()
        assert (ROLE,) not in rows
    finally:
        cur.execute(f"DROP ROLE {ROLE}")


@pytest.fixture
def orders_table(conn):
    cur = conn.cursor()
    try:
        cur.execute(f"DROP TABLE {TABLE} PURGE")
    except Exception:  # noqa: BLE001 - not there
        pass
    cur.execute(f"CREATE TABLE {TABLE} (id NUMBER PRIMARY KEY, status VARCHAR2(20))")
    yield TABLE
    cur.execute(f"DROP TABLE {TABLE} PURGE")


def test_immediate_trigger_sends_batches_cut_by_rows(target, conn, endpoint, request, orders_table):
    stack = request.getfixturevalue("local_stack") if not os.environ.get("ORACLE_TEST_ENDPOINT_URL") else None
    if stack is None:
        pytest.skip("counting invocations needs the local stack fixture's stats")
    trig = {"name": "sqlambda_t_now", "table": orders_table.lower(), "columns": ["id", "status"], "lambda": "echo",
            "delivery": "immediate", "mode": "sync", "batch": {"max_rows": 2, "max_bytes": 262144}}
    spec = _spec(endpoint, triggers=[trig])
    _install(target, conn, spec)
    try:
        before = stack.faults.stats("echo")["invocations"]
        conn.cursor().execute(f"INSERT INTO {orders_table} SELECT LEVEL, 'new' FROM dual CONNECT BY LEVEL <= 5")
        conn.commit()
        assert stack.faults.stats("echo")["invocations"] - before == 3  # 2 + 2 + 1 rows
    finally:
        _install(target, conn, _spec(endpoint))


def test_outbox_queues_in_the_transaction_and_drains(target, conn, endpoint, orders_table):
    trig = {"name": "sqlambda_t_out", "table": orders_table.lower(), "columns": ["id", "status"], "lambda": "echo",
            "delivery": "outbox", "batch": {"max_rows": 2, "max_bytes": 262144}}
    spec = _spec(endpoint, triggers=[trig])
    _install(target, conn, spec)
    cur = conn.cursor()
    try:
        cur.execute(f"INSERT INTO {orders_table} VALUES (100, 'rolled back')")
        conn.rollback()
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX") == 0
        cur.execute(f"INSERT INTO {orders_table} SELECT LEVEL, 'new' FROM dual CONNECT BY LEVEL <= 5")
        conn.commit()
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX WHERE op = 'insert'") == 5
        out = cur.var(int)
        # each batch commits autonomously: callable from a query, and the caller's own work stays its own
        cur.execute(f"INSERT INTO {orders_table} VALUES (300, 'not committed')")
        assert _scalar(conn, "SELECT SQLAMBDA_OUTBOX_PKG.drain FROM dual") == 5
        conn.rollback()
        assert _scalar(conn, f"SELECT COUNT(*) FROM {orders_table} WHERE id = 300") == 0
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX") == 0
        # uninstall refuses to drop a queue that still holds events
        cur.execute(f"INSERT INTO {orders_table} VALUES (200, 'queued')")
        conn.commit()
        with pytest.raises(InstallError, match="still holds 1 events"):
            _install(target, conn, _spec(endpoint))
        cur.execute("BEGIN :n := SQLAMBDA_OUTBOX_PKG.drain; END;", n=out)
    finally:
        cur.execute("DELETE FROM SQLAMBDA_OUTBOX")
        conn.commit()
        _install(target, conn, _spec(endpoint))


def test_send_after_commit_sends_only_committed_calls(target, conn, endpoint):
    _install(target, conn, _spec(endpoint, send_after_commit=True))
    cur = conn.cursor()
    try:
        cur.execute("BEGIN send_after_commit('sqlambda_t_echo', '{\"n\": 1}'); END;")
        conn.rollback()
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX") == 0
        cur.execute("BEGIN send_after_commit('sqlambda_t_echo', '{\"n\": 2}'); END;")
        conn.commit()
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX WHERE trigger_name = 'send:sqlambda_t_echo'") == 1
        assert _scalar(conn, "SELECT SQLAMBDA_OUTBOX_PKG.drain FROM dual") == 1
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX") == 0
        with pytest.raises(Exception, match="ORA-20404"):
            cur.execute("BEGIN send_after_commit('nope', '{}'); END;")
        with pytest.raises(Exception, match="ORA-20022"):
            cur.execute("BEGIN send_after_commit('sqlambda_t_echo', 'not json'); END;")
    finally:
        cur.execute("DELETE FROM SQLAMBDA_OUTBOX")
        conn.commit()
        _install(target, conn, _spec(endpoint))


def test_install_and_uninstall_through_the_commands_api(target, conn, endpoint):
    """The same path as `sqlambda install/uninstall --target oracle`."""
    import hashlib

    from sqlambda import api

    spec = _spec(endpoint)
    loaded = type("Loaded", (), {"spec": spec, "path": "live.yaml", "checksum": hashlib.sha256(b"live").hexdigest()})()
    first = api.install(loaded, DSN, "oracle")
    assert first.changed
    assert not api.install(loaded, DSN, "oracle").changed  # idempotent: nothing to do
    api.verify(loaded, DSN, "oracle")  # raises VerifyFailed on any problem
    result = api.uninstall(DSN, "oracle", spec=loaded)
    assert result.was_installed
    left = conn.cursor().execute(
        "SELECT object_type, object_name FROM USER_OBJECTS WHERE object_name LIKE 'SQLAMBDA_T_%' "
        "OR object_name LIKE 'AWSLAMBDA_FN%' OR object_name IN ('SQLAMBDA_RT', 'SQLAMBDA_JAVA', 'SQLAMBDA_INSTALLED') "
        "OR object_name LIKE 'sqlambda/%'"
    ).fetchall()
    assert left == []
    assert not api.uninstall(DSN, "oracle", spec=loaded).was_installed  # twice: nothing to do


def test_invoke_through_the_target(target, conn, installed):
    assert target.call_wrapper(conn, None, "sqlambda_t_status", {"order_id": 42, "note": "x", "rush": True}) == "OK"
    out = target.call_generic(conn, None, "echo", '{"a": 1}')
    assert out["a"] == 1


def test_second_installer_cannot_take_the_lock(target, conn):
    other = target.connect(DSN)
    try:
        target.lock(conn, None, 0)
        with pytest.raises(InstallError, match="another sqlambda install is running"):
            target.lock(other, None, 0)
    finally:
        target.unlock(conn)
        other.close()


@pytest.fixture
def coverage_spec(endpoint):
    """tests/oracle/oracle_specs.COVERAGE against this database: every type, return and trigger kind."""
    from oracle_specs import COVERAGE

    data = {**COVERAGE, "aws": {"region": "us-east-1", "endpoint_url": endpoint},
            "oracle": {"credentials": os.environ.get("ORACLE_TEST_CREDENTIALS", "environment")}, "triggers": []}
    return Spec.model_validate(data)


def test_every_type_and_return_compiles(target, conn, coverage_spec):
    plan = _install(target, conn, coverage_spec)
    try:
        for step in plan.changes:
            if step.kind in ("function", "procedure", "package"):
                name = dict(step.artifact.probe)["name"]
                assert _scalar(conn, "SELECT status FROM USER_OBJECTS WHERE object_name = :n AND ROWNUM = 1", n=name) == "VALID", name
        assert _scalar(conn, "SELECT ret_double_precision('x') FROM dual") is None  # echo has no key "v"
    finally:
        _install(target, conn, coverage_spec, remove_all=True)


def test_the_release_gate_and_the_doctor(target, conn, endpoint, installed):
    from sqlambda import api

    release = target.database_release(conn)
    have = R.version_of_release(release)
    assert have is not None, release
    newer = [v for v in R.VERSIONS if R.VERSIONS.index(v) > R.VERSIONS.index(have)]
    if newer:
        spec = Spec.model_validate({"project": "live", "oracle": {"version": newer[-1]}})
        with pytest.raises(InstallError, match=f"renders for Oracle {newer[-1]}"):
            target.prechecks(conn, R.render(spec).artifacts)
    loaded = type("L", (), {"spec": installed, "path": "live.yaml", "checksum": "l" * 64})()
    report = api.doctor(DSN, target="oracle", spec=loaded, strict=False)
    failed = [c for c in report.checks if not c.ok]
    assert not failed, failed


def test_a_java_state_reset_reconfigures(conn, installed):
    assert "Status" in _scalar(conn, "SELECT awslambda_fn('echo', '{}') FROM dual")
    conn.cursor().execute("DECLARE v VARCHAR2(100); BEGIN v := DBMS_JAVA.ENDSESSION; END;")
    # PL/SQL package state survived; the runtime package must notice the JVM forgot its configuration
    assert "Status" in _scalar(conn, "SELECT awslambda_fn('echo', '{}') FROM dual")


def test_a_function_error_reads_as_the_originals(conn, installed, request):
    if os.environ.get("ORACLE_TEST_ENDPOINT_URL"):
        pytest.skip("needs the local stack fixture to deploy a failing function")
    from sqlambda.devkit.deploy import deploy_source

    stack = request.getfixturevalue("local_stack")
    deploy_source("sqlambda-t-fails", "def handler(e, c):\n    raise ValueError('bad order 7')\n",
                  endpoint_url=stack.endpoint_url)
    with pytest.raises(Exception) as err:
        _scalar(conn, "SELECT awslambda_fn('sqlambda-t-fails', '{}') FROM dual")
    text = str(err.value)
    assert "ORA-29532" in text and "java.lang.Exception: {" in text and '"errorMessage": "bad order 7"' in text


def test_a_big_statement_is_queued_in_bounded_buffers(target, conn, endpoint, orders_table):
    trig = {"name": "sqlambda_t_bulk", "table": orders_table.lower(), "columns": ["id", "status"], "lambda": "echo",
            "delivery": "outbox"}
    spec = _spec(endpoint, triggers=[trig])
    _install(target, conn, spec)
    cur = conn.cursor()
    try:
        n = 3 * R.OUTBOX_FLUSH_ROWS + 7  # three flushes inside the statement, the rest at its end
        cur.execute(f"INSERT INTO {orders_table} SELECT LEVEL, 'bulk' FROM dual CONNECT BY LEVEL <= {n}")
        conn.commit()
        assert _scalar(conn, "SELECT COUNT(*) FROM SQLAMBDA_OUTBOX") == n
        ids = [r[0] for r in cur.execute("SELECT id FROM SQLAMBDA_OUTBOX ORDER BY id").fetchall()]
        assert ids == sorted(ids)  # queued in the statement's order across flushes
    finally:
        cur.execute("DELETE FROM SQLAMBDA_OUTBOX")
        conn.commit()
        _install(target, conn, _spec(endpoint))



QUOTE_FN = """CREATE OR REPLACE FUNCTION sqlambda_t_quote(sku VARCHAR2, qty NUMBER) RETURN NUMBER AUTHID DEFINER AS
BEGIN
  IF sku = 'Z' THEN
    RAISE_APPLICATION_ERROR(-20999, 'unknown sku ' || sku);
  END IF;
  RETURN ROUND(qty * CASE sku WHEN 'A' THEN 10 ELSE 2.5 END, 2);
END;"""


def _function_state(conn, name: str) -> tuple:
    cur = conn.cursor()
    src = "".join(r[0] for r in cur.execute("SELECT text FROM user_source WHERE name = :n ORDER BY line", n=name))
    oid = cur.execute("SELECT object_id FROM user_objects WHERE object_name = :n AND object_type = 'FUNCTION'", n=name).fetchone()
    grants = sorted(cur.execute("SELECT grantee, privilege FROM user_tab_privs WHERE table_name = :n", n=name).fetchall())
    return src, oid, grants


@pytest.mark.parametrize("stage", ["record", "canary", "cutover"])
def test_modernize_takes_a_function_over_and_gives_it_back_exactly(target, conn, endpoint, request, stage):
    request.getfixturevalue("local_stack").deploy_source(
        "sqlambda-t-quote", "def handler(event, context):\n    return round(event['qty'] * (10 if event['sku'] == 'A' else 2.5), 2)\n")
    cur = conn.cursor()
    cur.execute(QUOTE_FN)
    before = _function_state(conn, "SQLAMBDA_T_QUOTE")
    entry = {"function": "sqlambda_t_quote(varchar2, number)", "lambda": "sqlambda-t-quote", "stage": stage,
             "side_effects": "none", "canary": 1.0}
    spec = Spec.model_validate({"project": "live", "aws": {"region": "us-east-1", "endpoint_url": endpoint},
                                "modernize": [entry]})
    try:
        _install(target, conn, spec)
        assert _scalar(conn, "SELECT sqlambda_t_quote('A', 3) FROM dual") == 30
        assert _scalar(conn, "SELECT sqlambda_t_quote('B', 2) FROM dual") == 5
        if stage == "record":
            with pytest.raises(Exception, match="ORA-20999"):
                _scalar(conn, "SELECT sqlambda_t_quote('Z', 1) FROM dual")
            # the error's sample survived the failed statement (an autonomous transaction)
            assert _scalar(conn, "SELECT COUNT(*) FROM sqlambda_modernize_call WHERE kind = 'error'") == 1
        else:
            assert _scalar(conn, "SELECT answers FROM sqlambda_modernize WHERE name = 'SQLAMBDA_T_QUOTE'") == 2
        _install(target, conn, Spec.model_validate({**spec.model_dump(by_alias=True),
                                                    "modernize": [{**entry, "stage": "rollback"}]}))
        assert _function_state(conn, "SQLAMBDA_T_QUOTE") == before
    finally:
        _install(target, conn, spec, remove_all=True)
        assert _function_state(conn, "SQLAMBDA_T_QUOTE") == before
        cur.execute("DROP FUNCTION sqlambda_t_quote")
