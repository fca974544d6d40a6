"""The PostgreSQL installer on the real cluster: install, plan, verify, uninstall and their failure modes.

Each test gets its own fresh database (installs change database-wide state), and checks the
catalog and the registry directly rather than trusting what the installer reports.
"""

from __future__ import annotations

import itertools
import threading
import types

import psycopg
import pytest

from sqlambda import api
from sqlambda.artifacts import Artifact
from sqlambda.errors import InstallError, InvokeError, RenderError, UsageError, VerifyFailed
from sqlambda.pipeline import ApplyExecutor
from sqlambda.plan import make_plan
from sqlambda.spec.model import Spec
from sqlambda.targets.postgres.target import LOCK_KEY, PostgresTarget

pytestmark = pytest.mark.postgres

READER, ADMIN = "inst_reader", "inst_admin"
_n = itertools.count()


@pytest.fixture(scope="module")
def roles(pg_cluster):
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        for r in (READER, ADMIN):
            conn.execute(f"DROP ROLE IF EXISTS {r}")
            conn.execute(f"CREATE ROLE {r} NOLOGIN")
    return READER, ADMIN


@pytest.fixture
def dsn(pg_cluster):
    return pg_cluster.create_database(f"inst_{next(_n)}")


def loaded(functions=(), *, name="spec.yaml", checksum="a" * 64, **postgres):
    spec = Spec.model_validate({"project": "inst", "postgres": {"generic_roles": [ADMIN], **postgres},
                                "functions": list(functions)})
    return types.SimpleNamespace(spec=spec, path=name, checksum=checksum)


def fn(name, lam="echo", roles=(READER,), path="Status", **extra):
    return {"name": name, "lambda": lam, "args": {"order_id": "bigint", "note": "text"},
            "returns": {"type": "text", "path": path}, "roles": list(roles), **extra}


def q(dsn, query, params=()):
    """Run one statement; its rows, or [] for a statement that returns none."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def proc_xmins(dsn):
    return dict(q(dsn, "SELECT p.oid::regprocedure::text, p.xmin::text FROM pg_proc p "
                       "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', 'sqlambda')"))


def registry_keys(dsn, schema="sqlambda"):
    return {r[0] for r in q(dsn, f'SELECT key FROM "{schema}".installed')}


def log_count(dsn, schema="sqlambda"):
    return q(dsn, f'SELECT count(*) FROM "{schema}".install_log')[0][0]


def exists(dsn, regprocedure):
    return q(dsn, "SELECT to_regprocedure(%s) IS NOT NULL", (regprocedure,))[0][0]


# -- install ------------------------------------------------------------------------------------------
def test_install_without_spec_installs_the_core_only(dsn):
    result = api.install(None, dsn)
    assert result.registry_created and result.spec_name == "(no spec)"
    assert {a.action for a in result.applied} == {"create"}
    assert exists(dsn, "public.awslambda_fn(text,text)") and exists(dsn, "public.awslambda_fn_async(text,text)")
    assert exists(dsn, "sqlambda.invoke(text,jsonb,text,text,text,jsonb,text)")
    assert registry_keys(dsn) == {a.key for a in result.applied}
    # nobody but the owner may call the generic functions when the spec names no roles
    assert q(dsn, "SELECT proacl::text FROM pg_proc WHERE oid = 'public.awslambda_fn(text,text)'::regprocedure")[0][0] \
        .count("=") == 1
    rows = q(dsn, "SELECT action, count(*) FROM sqlambda.install_log GROUP BY 1")
    assert dict(rows) == {"bootstrap": 1, "create": len(result.applied)}
    row = q(dsn, "SELECT spec_name, tool_version, installed_by FROM sqlambda.installed LIMIT 1")[0]
    assert row == ("(no spec)", __import__("sqlambda").__version__, "postgres")


def test_install_twice_is_a_noop_that_runs_no_ddl(dsn, roles):
    spec = loaded([fn("order_status")])
    api.install(spec, dsn)
    before_procs, before_log = proc_xmins(dsn), log_count(dsn)
    again = api.install(spec, dsn)
    assert again.plan.is_noop and not again.applied and not again.registry_created
    assert set(again.plan.counts().items()) >= {("unchanged", len(again.plan.steps)), ("create", 0)}
    assert proc_xmins(dsn) == before_procs  # no CREATE OR REPLACE ran: catalog rows untouched
    assert log_count(dsn) == before_log  # and no log spam
    assert api.plan(spec, dsn).is_noop


def test_a_changed_spec_replaces_and_drops_exactly_what_changed(dsn, roles):
    api.install(loaded([fn("order_status"), fn("order_total", path="Total")]), dsn)
    v2 = loaded([fn("order_status", path="Other")], checksum="b" * 64)
    p = api.plan(v2, dsn)
    actions = {s.key: s.action for s in p.steps}
    assert actions["function public.order_status(bigint,text)"] == "replace"
    assert actions["function public.order_total(bigint,text)"] == "drop"
    assert actions[f"grant execute public.order_total(bigint,text) to {READER}"] == "drop"
    assert actions["function public.awslambda_fn(text,text)"] == "unchanged"
    # drops come first, dependents (grants) before what they depend on
    drops = [s.key for s in p.steps if s.action == "drop"]
    assert drops.index(f"grant execute public.order_total(bigint,text) to {READER}") < drops.index("function public.order_total(bigint,text)")

    xmins = proc_xmins(dsn)
    result = api.install(v2, dsn)
    assert {(a.action, a.key) for a in result.applied} == {(s.action, s.key) for s in p.changes}
    assert not exists(dsn, "public.order_total(bigint,text)")
    assert "Other" in q(dsn, "SELECT prosrc FROM pg_proc WHERE oid = 'public.order_status(bigint,text)'::regprocedure")[0][0]
    after = proc_xmins(dsn)
    assert after["awslambda_fn(text,text)"] == xmins["awslambda_fn(text,text)"]  # unchanged stays untouched
    assert q(dsn, "SELECT spec_checksum FROM sqlambda.installed WHERE key = 'function public.order_status(bigint,text)'")[0][0] == "b" * 64
    assert "function public.order_total(bigint,text)" not in registry_keys(dsn)
    assert api.verify(v2, dsn).ok


def _typed(name, returns, args=None, roles=(READER,)):
    return {"name": name, "lambda": "echo", "args": args or {"order_id": "bigint"}, "returns": returns,
            "roles": list(roles)}


def _result_type(dsn, regprocedure):
    return q(dsn, "SELECT pg_get_function_result(%s::regprocedure), array_to_string(proargnames, ',') "
                  "FROM pg_proc WHERE oid = %s::regprocedure", (regprocedure, regprocedure))[0]


def test_a_changed_return_type_or_argument_name_drops_and_creates_the_wrapper_and_grants_again(dsn, roles):
    key = "function public.order_status(bigint)"
    api.install(loaded([_typed("order_status", {"type": "integer", "path": "n"})]), dsn)
    assert _result_type(dsn, "public.order_status(bigint)") == ("integer", "order_id")
    v2 = loaded([_typed("order_status", {"type": "text", "path": "n"}, {"id": "bigint"})], checksum="b" * 64)
    p = api.plan(v2, dsn)
    actions = {s.key: s.action for s in p.changes}
    assert actions == {key: "recreate", f"grant execute public.order_status(bigint) to {READER}": "replace"}
    assert '("order_id" bigint) RETURNS integer -> ("id" bigint) RETURNS text' in p.changes[0].summary

    result = api.install(v2, dsn)  # PostgreSQL refuses CREATE OR REPLACE for this change
    assert [(a.action, a.key) for a in result.applied] == [(s.action, s.key) for s in p.changes]
    assert _result_type(dsn, "public.order_status(bigint)") == ("text", "id")
    assert q(dsn, "SELECT has_function_privilege(%s, 'public.order_status(bigint)', 'EXECUTE')", (READER,))[0][0]
    assert q(dsn, "SELECT interface FROM sqlambda.installed WHERE key = %s", (key,))[0][0] == '("id" bigint) RETURNS text'
    assert api.verify(v2, dsn).ok and api.plan(v2, dsn).is_noop

    # a table result is a return type too; a body-only change afterwards is an in-place replace again
    v3 = loaded([_typed("order_status", {"type": "table", "path": "rows", "columns": {"sku": "text"}}, {"id": "bigint"})])
    api.install(v3, dsn)
    assert _result_type(dsn, "public.order_status(bigint)") == ("TABLE(sku text)", "id,sku")
    v4 = loaded([_typed("order_status", {"type": "table", "path": "items", "columns": {"sku": "text"}}, {"id": "bigint"})])
    assert {s.key: s.action for s in api.plan(v4, dsn).changes} == {key: "replace"}


def test_a_wrapper_a_view_depends_on_is_not_dropped_and_the_error_names_the_view(dsn, roles):
    api.install(loaded([_typed("order_status", {"type": "integer", "path": "n"})]), dsn)
    q(dsn, "CREATE VIEW public.status_view AS SELECT public.order_status(1::bigint) AS s")
    with pytest.raises(InstallError) as exc:
        api.install(loaded([_typed("order_status", {"type": "text", "path": "n"})]), dsn)
    assert "2BP01" in exc.value.message and "status_view" in exc.value.message
    assert "CASCADE" not in (exc.value.hint or "") and "drop them, run install" in exc.value.hint
    # nothing of the step ran: the old function, its grant and the view are all still there
    assert _result_type(dsn, "public.order_status(bigint)") == ("integer", "order_id")
    assert q(dsn, "SELECT has_function_privilege(%s, 'public.order_status(bigint)', 'EXECUTE')", (READER,))[0][0]
    assert q(dsn, "SELECT to_regclass('public.status_view') IS NOT NULL")[0][0]


def test_a_registry_from_before_interfaces_is_read_and_upgraded(dsn, roles):
    api.install(loaded([_typed("order_status", {"type": "integer", "path": "n"})]), dsn)
    q(dsn, "ALTER TABLE sqlambda.installed DROP COLUMN interface")
    spec = loaded([_typed("order_status", {"type": "integer", "path": "m"})])
    assert {s.key: s.action for s in api.plan(spec, dsn).changes} == {"function public.order_status(bigint)": "replace"}
    api.install(spec, dsn)
    assert q(dsn, "SELECT interface FROM sqlambda.installed WHERE key = 'function public.order_status(bigint)'")[0][0] \
        == '("order_id" bigint) RETURNS integer'


def test_dry_run_changes_nothing(dsn):
    result = api.install(None, dsn, dry_run=True)
    assert result.dry_run and result.plan.counts()["create"] > 0 and not result.applied
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL AND to_regprocedure('public.awslambda_fn(text,text)') IS NULL")[0][0]


def test_custom_schemas(dsn, roles):
    spec = loaded([fn("order_status")], schema="lambda_ops", generic_schema="lambda_api")
    api.install(spec, dsn)
    assert exists(dsn, "lambda_api.awslambda_fn(text,text)") and exists(dsn, "lambda_ops.invoke(text,jsonb,text,text,text,jsonb,text)")
    assert "function lambda_api.order_status(bigint,text)" in registry_keys(dsn, "lambda_ops")
    assert api.verify(spec, dsn).ok
    # uninstall finds the registry by itself (no spec needed)
    assert api.uninstall(dsn).was_installed
    assert q(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('lambda_ops', 'lambda_api')")[0][0] == 0


# -- refusals before any DDL ------------------------------------------------------------------------------
def test_missing_role_is_a_clear_error_and_nothing_is_installed(dsn):
    spec = loaded([fn("order_status", roles=["no_such_role"])])
    with pytest.raises(InstallError) as exc:
        api.install(spec, dsn)
    assert "no_such_role" in exc.value.message and "functions[0].roles" in exc.value.message
    assert 'CREATE ROLE "no_such_role" NOLOGIN' in exc.value.hint
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL AND to_regprocedure('public.awslambda_fn(text,text)') IS NULL")[0][0]
    assert not q(dsn, "SELECT 1 FROM pg_roles WHERE rolname = 'no_such_role'")  # never created for you


@pytest.mark.parametrize("name", ['x"; DROP TABLE victim; --', "x;drop table victim", "a b", "x'||pg_sleep(1)||'"])
def test_spec_names_that_attempt_sql_injection_are_rejected(name):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        loaded([fn(name)])
    with pytest.raises(ValidationError):
        loaded([fn("ok", roles=[name])])


def test_injection_attempt_in_a_spec_file_is_rejected_before_connecting(tmp_path, dsn):
    loader = pytest.importorskip("sqlambda.spec.loader")
    from sqlambda.errors import SpecError

    q(dsn, "CREATE TABLE victim (id int)")
    bad = tmp_path / "bad.yaml"
    bad.write_text('project: evil\nfunctions:\n  - name: "x; DROP TABLE victim; --"\n    lambda: echo\n')
    with pytest.raises(SpecError) as exc:
        api.install(bad, dsn)
    assert "functions[0].name" in str(exc.value.message) or "functions" in str(exc.value.to_dict())
    assert q(dsn, "SELECT to_regclass('victim') IS NOT NULL AND to_regnamespace('sqlambda') IS NULL")[0][0]
    assert loader is not None


def test_reserved_argument_name_is_refused_before_connecting():
    spec = loaded([{"name": "f", "lambda": "echo", "args": {"plpy": "text"}}])
    # a DSN that cannot connect: proves the refusal happens before any connection attempt
    with pytest.raises(RenderError, match="plpy"):
        api.install(spec, "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1")


# -- transactions and the lock ------------------------------------------------------------------------------
def test_a_failing_step_rolls_back_its_ddl_and_its_registry_row(dsn):
    target = PostgresTarget()
    good = Artifact(key="table public.good", kind="table", statements=("CREATE TABLE public.good (a int)",),
                    drop=("DROP TABLE IF EXISTS public.good",), order=1, probe=(("regclass", "public.good"),))
    bad = Artifact(key="table public.half_done", kind="table",
                   statements=("CREATE TABLE public.half_done (a int)", "SELECT 1/0"),
                   drop=("DROP TABLE IF EXISTS public.half_done",), order=2)
    plan = make_plan("postgres", [good, bad], [])
    with target.connect(dsn) as conn:
        target.ensure_registry(conn, "sqlambda", None)
        logged = target.log_count(conn, "sqlambda")
        ApplyExecutor(target, conn, "sqlambda", "hand-made", "0" * 64).step(plan.steps[0])
        with pytest.raises(InstallError) as exc:
            ApplyExecutor(target, conn, "sqlambda", "hand-made", "0" * 64).step(plan.steps[1])
        assert "division by zero" in exc.value.message and "22012" in exc.value.message
        assert exc.value.details["sqlstate"] == "22012"
        assert target.log_count(conn, "sqlambda") == logged + 1  # the good step's row only
    assert q(dsn, "SELECT to_regclass('public.good') IS NOT NULL, to_regclass('public.half_done') IS NULL")[0] == (True, True)
    assert registry_keys(dsn) == {"table public.good"}


def test_an_install_while_another_holds_the_lock_fails_naming_its_pid(dsn):
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        pid = holder.info.backend_pid
        with pytest.raises(InstallError, match=rf"another install is running \(pid {pid}\)"):
            api.install(None, dsn)
        with pytest.raises(InstallError, match="another install is running"):
            api.uninstall(dsn)
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL")[0][0]
    api.install(None, dsn)  # released with the session: the next install proceeds


def test_concurrent_installs_never_interleave(dsn, roles):
    spec = loaded([fn("order_status"), fn("order_total", path="Total")])
    outcomes: list = []

    def run():
        try:
            outcomes.append(api.install(spec, dsn, lock_wait=60))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    # exactly one did the work; the others waited for the lock and then found nothing to do
    assert sorted(bool(o.applied) for o in outcomes) == [False, False, True]
    assert q(dsn, "SELECT count(*) FROM sqlambda.install_log WHERE action = 'create'")[0][0] == len(registry_keys(dsn))
    assert api.verify(spec, dsn).ok


def test_install_log_is_append_only(dsn):
    api.install(None, dsn)
    for statement in ("UPDATE sqlambda.install_log SET action = 'x'", "DELETE FROM sqlambda.install_log",
                      "TRUNCATE sqlambda.install_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            q(dsn, statement)


# -- verify ---------------------------------------------------------------------------------------------------
def test_verify_ok_then_detects_a_manual_drop_and_a_manual_edit(dsn, roles):
    spec = loaded([fn("order_status")])
    api.install(spec, dsn)
    report = api.verify(spec, dsn)
    assert report.ok and report.checked == len(PostgresTarget().render(spec))

    q(dsn, "DROP FUNCTION public.awslambda_fn_async(text, text)")
    q(dsn, "CREATE OR REPLACE FUNCTION public.order_status(order_id bigint, note text) RETURNS text "
           "LANGUAGE sql AS $$ SELECT 'hijacked' $$")
    q(dsn, f"REVOKE EXECUTE ON FUNCTION sqlambda.invoke(text,jsonb,text,text,text,jsonb,text) FROM {ADMIN}")
    with pytest.raises(VerifyFailed) as exc:
        api.verify(spec, dsn)
    problems = exc.value.details["problems"]
    assert any(p.startswith("function public.awslambda_fn_async(text,text): missing") for p in problems)
    assert any(p.startswith("function public.order_status(bigint,text): changed") for p in problems)
    assert any(p.startswith(f"grant execute sqlambda.invoke(text,jsonb,text,text,text,jsonb,text) to {ADMIN}: missing")
               for p in problems)
    assert len(problems) == 4  # and the grant on the dropped function; nothing else is flagged

    # the registry still matches the spec, so a plain plan sees nothing; --repair re-applies what verify flagged
    assert api.plan(spec, dsn).is_noop
    repaired = api.install(spec, dsn, repair=True)
    assert {a.key for a in repaired.applied} == {
        "function public.awslambda_fn_async(text,text)", "function public.order_status(bigint,text)",
        f"grant execute public.awslambda_fn_async(text,text) to {ADMIN}",
        f"grant execute sqlambda.invoke(text,jsonb,text,text,text,jsonb,text) to {ADMIN}"}
    assert api.verify(spec, dsn).ok


def test_verify_reports_objects_not_installed_and_outdated(dsn, roles):
    api.install(loaded([fn("order_status")]), dsn)
    v2 = loaded([fn("order_status", path="Other"), fn("order_total")])
    report = api.verify(v2, dsn, strict=False)
    assert not report.ok
    assert "function public.order_status(bigint,text): installed version differs from the spec (run install)" in report.problems
    assert "function public.order_total(bigint,text): not installed (run install)" in report.problems


def test_alter_function_is_detected(dsn):
    api.install(None, dsn)
    q(dsn, "ALTER FUNCTION public.awslambda_fn(text, text) SECURITY DEFINER")
    report = api.verify(None, dsn, strict=False)
    assert report.problems == ("function public.awslambda_fn(text,text): changed: "
                               '"public"."awslambda_fn"(text, text) was changed outside sqlambda '
                               "(its definition differs from what was installed)",)


# -- uninstall ------------------------------------------------------------------------------------------------------
def test_uninstall_removes_exactly_what_was_installed_and_leaves_user_tables(dsn, roles):
    q(dsn, "CREATE TABLE public.orders (id int); INSERT INTO public.orders VALUES (1), (2)")
    spec = loaded([fn("order_status")])
    installed = api.install(spec, dsn)
    q(dsn, "CREATE TABLE sqlambda.user_notes (note text); INSERT INTO sqlambda.user_notes VALUES ('keep me')")

    result = api.uninstall(dsn)
    assert result.was_installed and not result.already_gone
    assert {s.key for s in result.removed} == {a.key for a in installed.applied}
    assert q(dsn, "SELECT count(*) FROM public.orders")[0][0] == 2
    assert q(dsn, "SELECT note FROM sqlambda.user_notes") == [("keep me",)]  # its schema stays for it
    assert q(dsn, "SELECT to_regclass('sqlambda.installed') IS NULL AND to_regclass('sqlambda.install_log') IS NULL")[0][0]
    assert q(dsn, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                  "WHERE n.nspname IN ('public', 'sqlambda')")[0][0] == 0
    assert q(dsn, "SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", (READER, ADMIN))[0][0] == 2


def test_uninstall_twice_is_a_clear_noop(dsn):
    api.install(None, dsn)
    assert api.uninstall(dsn).was_installed
    again = api.uninstall(dsn)
    assert not again.was_installed and not again.removed
    assert again.message == "nothing to uninstall: no sqlambda registry in this database"
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL")[0][0]


def test_uninstall_after_a_manual_drop_succeeds_and_says_what_was_gone(dsn, roles):
    api.install(loaded([fn("order_status")]), dsn)
    q(dsn, "DROP FUNCTION public.order_status(bigint, text)")
    result = api.uninstall(dsn)
    assert set(result.already_gone) == {"function public.order_status(bigint,text)",
                                        f"grant execute public.order_status(bigint,text) to {READER}"}
    assert "2 already gone" in result.message
    assert not exists(dsn, "public.awslambda_fn(text,text)")
    assert q(dsn, "SELECT to_regnamespace('sqlambda') IS NULL")[0][0]


# -- invoke (without the stack: refusals that need no Lambda) -------------------------------------------------------
def test_invoke_refuses_bad_json_and_unknown_arguments_and_a_missing_install(dsn, roles):
    with pytest.raises(InstallError, match="not installed"):
        api.invoke(dsn, "echo", "{}")
    api.install(loaded([fn("order_status")]), dsn)
    with pytest.raises(UsageError, match="not valid JSON"):
        api.invoke(dsn, "echo", "{nope")
    with pytest.raises(UsageError, match="no argument bogus; its arguments are: order_id, note"):
        api.invoke(dsn, "order_status", '{"bogus": 1}')


def test_invoke_maps_a_database_error_to_invoke_error_with_its_sqlstate(dsn):
    api.install(None, dsn)
    # nothing listens on port 1: the runtime reports the endpoint unreachable (LA004) with a hint
    q(dsn, "ALTER DATABASE " + dsn.split("dbname=")[1].split()[0] + " SET sqlambda.endpoint_url = 'http://127.0.0.1:1'")
    q(dsn, "ALTER DATABASE " + dsn.split("dbname=")[1].split()[0] + " SET sqlambda.max_attempts = 1")
    with pytest.raises(InvokeError) as exc:
        api.invoke(dsn, "echo", '{"a": 1}')
    assert exc.value.details["sqlstate"] == "LA004"
    assert "lambda echo failed: EndpointUnreachable" in exc.value.message
    assert "127.0.0.1:1" in exc.value.hint


# -- render -o ---------------------------------------------------------------------------------------------------------
def test_render_to_dir_writes_files_with_headers(tmp_path):
    paths = api.render_to_dir(None, "postgres", tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == ["00_core.sql", "uninstall.sql"]
    for p in paths:
        text = p.read_text()
        assert text.startswith("-- Generated by sqlambda ") and "(no spec)" in text.splitlines()[0]
        assert "Do not edit" in text.splitlines()[1]
    core = (tmp_path / "out" / "00_core.sql").read_text()
    assert "CREATE OR REPLACE FUNCTION \"public\".\"awslambda_fn\"(fn_name text, fn_args text)" in core
    uninstall = (tmp_path / "out" / "uninstall.sql").read_text()
    assert uninstall.index('DROP FUNCTION IF EXISTS "sqlambda".invoke') < uninstall.index("DROP SCHEMA")


def test_render_to_an_unwritable_place_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot write"):
        api.render_to_dir(None, "postgres", tmp_path / "file" / "sub")
