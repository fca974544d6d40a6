"""Modernization end to end on real PostgreSQL and the local stack: a PL/pgSQL function taken over by
a router through each stage (record, shadow, canary, cutover) and back (rollback, uninstall), with
the caller's results and errors compared call by call against the original called directly."""

from __future__ import annotations

import json

import psycopg
import pytest
from mod_helpers import CORE_SOURCE, LAMBDA, ORIGINAL, SIGNATURE, outcome, snapshot
from pg_helpers import loaded_spec, q

from sqlambda import api

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

CALLS = [
    ("A-100", 3, "retail"), ("A-100", 120, "gold"), ("B-200", 60, "silver"), ("C-300", 1, "gold"),
    ("B-200", 100, "retail"), ("Z", 1, "retail"), ("A-100", 0, "retail"), ("A-100", 5, None),
]


def spec(endpoint: str, stage: str, **entry) -> object:
    m = {"function": SIGNATURE, "lambda": "mod_quote", "stage": stage, **entry}
    if stage in ("shadow", "canary"):
        m.setdefault("side_effects", "none")
    return loaded_spec({"project": "mod", "aws": {"endpoint_url": endpoint, "max_attempts": 1}, "modernize": [m]})


@pytest.fixture(scope="module")
def quote_lambda(local_stack):
    local_stack.deploy_source("mod_quote", LAMBDA, timeout=10)
    local_stack.deploy_source("mod_quote_bulk50", LAMBDA, timeout=10, environment={"BULK_AT": "50"})
    return local_stack


@pytest.fixture(scope="module")
def db(pg_dsn):
    q(pg_dsn, "CREATE ROLE mod_owner NOLOGIN")
    q(pg_dsn, "CREATE ROLE mod_reader LOGIN")
    q(pg_dsn, "CREATE ROLE mod_mallory LOGIN")
    return pg_dsn


@pytest.fixture
def original(db):
    """A fresh original owned by mod_owner, EXECUTE for mod_reader only; removed afterwards."""
    api.uninstall(db)
    q(db, "DROP FUNCTION IF EXISTS " + SIGNATURE)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(ORIGINAL)
        c.execute(f"ALTER FUNCTION {SIGNATURE} OWNER TO mod_owner")
        c.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
        c.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO mod_reader")
        c.execute("GRANT SELECT ON public.price_list TO mod_owner, mod_reader")
    before = snapshot(db)
    yield before
    api.uninstall(db)


def call_all(dsn: str, fn: str = "public.price_quote", role: str | None = None) -> list:
    with psycopg.connect(dsn, autocommit=True) as c:
        if role:
            c.execute(f"SET ROLE {role}")
        out = []
        for sku, qty, tier in CALLS:
            if tier is None:
                out.append(outcome(c, f"SELECT {fn}(%s, %s)", (sku, qty)))
            else:
                out.append(outcome(c, f"SELECT {fn}(%s, %s, %s)", (sku, qty, tier)))
        return out


def test_record_keeps_results_and_errors_and_captures_calls(original, quote_lambda, db):
    direct = call_all(db, role="mod_reader")
    api.install(spec(quote_lambda.endpoint_url, "record"), db)
    routed = call_all(db, role="mod_reader")
    assert routed == direct
    assert snapshot(db, "sqlambda_original.price_quote(text, integer, text)")["oid"] == original["oid"]
    router = snapshot(db)
    assert router["oid"] != original["oid"]
    assert (router["acl"], router["owner"], router["comment"], router["volatility"], router["secdef"], router["config"]) == \
        (original["acl"], original["owner"], original["comment"], original["volatility"], original["secdef"], original["config"])
    # every call kept once: a failed call's sample is stashed in the session (its transaction was
    # rolled back) and written by that session's next successful call; counters never roll back
    kept = q(db, "SELECT kind, args, result, error->>'sqlstate', error->>'message' FROM sqlambda.modernize_call")
    expected = []
    for (sku, n, tier), r in zip(CALLS, direct):
        args = {"sku": sku, "qty": n, "tier": tier or "retail"}
        expected.append(("original", args, float(r[1]), None, None) if r[0] == "ok" else ("error", args, None, r[1], r[2]))
    assert sorted(json.dumps(k, sort_keys=True) for k in kept) == sorted(json.dumps(k, sort_keys=True) for k in expected)
    assert q(db, "SELECT last_value FROM sqlambda.price_quote__calls")[0][0] == len(CALLS)
    assert q(db, "SELECT last_value FROM sqlambda.price_quote__errors")[0][0] == 2
    assert q(db, "SELECT min(duration_us) > 0, max(called_by) FROM sqlambda.modernize_call") == [(True, "postgres")]


def counters(dsn: str) -> dict:
    return {k: q(dsn, f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sqlambda.price_quote__{k}")[0][0]
            for k in ("calls", "errors", "answers", "fallbacks")}


def test_shadow_answers_with_the_original_and_the_drainer_compares(original, quote_lambda, db):
    direct = call_all(db, role="mod_reader")
    api.install(spec(quote_lambda.endpoint_url, "shadow", **{"lambda": "mod_quote_bulk50"}), db)
    assert call_all(db, role="mod_reader") == direct
    ok = [c for c, r in zip(CALLS, direct) if r[0] == "ok"]
    assert q(db, "SELECT count(*) FROM sqlambda.modernize_shadow")[0][0] == len(ok)
    stats = api.drain(db)
    assert stats.compared == len(ok)
    rows = q(db, "SELECT args->>'sku', (args->>'qty')::int, match, diff, original_us > 0, lambda_us > 0 "
                 "FROM sqlambda.modernize_result ORDER BY id")
    mismatches = [r for r in rows if not r[2]]
    # the seeded disagreement: the Lambda's bulk discount starts at 50, the original's at 100
    assert [(r[0], r[1], r[3]) for r in mismatches] == [("B-200", 60, "$: 142.50 != 135.38")]
    assert all(r[4] and r[5] for r in rows) and len(rows) == len(ok)
    assert q(db, "SELECT count(*) FROM sqlambda.modernize_shadow")[0][0] == 0


def test_shadow_with_the_lambda_unreachable_changes_nothing_for_callers(original, quote_lambda, db):
    direct = call_all(db, role="mod_reader")
    from sqlambda.targets.postgres.cluster import free_port

    down = f"http://127.0.0.1:{free_port()}"
    api.install(spec(down, "shadow"), db)
    # in shadow the router never calls the Lambda: a slow or dead one cannot reach the caller
    assert "__lambda" not in snapshot(db)["definition"] and "__keep" in snapshot(db)["definition"]
    assert call_all(db, role="mod_reader") == direct
    stats = api.drain(db, endpoint_url=down)  # nothing answers: every call stays queued for a retry, none is lost
    assert stats.compared == 0 and stats.failed_events > 0 and not stats.ok
    assert q(db, "SELECT count(*), min(attempts) FROM sqlambda.modernize_shadow") == [(6, 1)]


def test_canary_answers_from_the_lambda_and_falls_back_on_its_errors(original, quote_lambda, db):
    quote_lambda.deploy_source("mod_quote_fail_a", LAMBDA, timeout=10, environment={"FAIL_SKU": "A-100"})
    direct = call_all(db, role="mod_reader")
    api.install(spec(quote_lambda.endpoint_url, "canary", canary=1.0, **{"lambda": "mod_quote_fail_a"}), db)
    routed = call_all(db, role="mod_reader")
    # the Lambda gives the same answers; where it fails (sku A, and Z/0 which it refuses too) the
    # original answers, errors included, exactly as before
    assert routed == direct
    n = counters(db)
    answered_by_lambda = sum(1 for (sku, _, _), r in zip(CALLS, direct) if r[0] == "ok" and sku != "A-100")
    assert n["answers"] == answered_by_lambda
    assert n["fallbacks"] == len(CALLS) - answered_by_lambda
    kinds = q(db, "SELECT kind, count(*) FROM sqlambda.modernize_call GROUP BY kind ORDER BY kind")
    # a fallback whose original then failed too was counted, but its sample went with its statement
    assert dict(kinds)["fallback"] == sum(1 for (sku, _, _), r in zip(CALLS, direct) if r[0] == "ok" and sku == "A-100")
    assert q(db, "SELECT DISTINCT error->>'message' LIKE '%%pricing backend unavailable%%' FROM sqlambda.modernize_call "
                 "WHERE kind = 'fallback' AND args->>'sku' = 'A-100'") == [(True,)]


def test_canary_zero_is_the_original_and_shadow(original, quote_lambda, db):
    api.install(spec(quote_lambda.endpoint_url, "canary", canary=0.0), db)
    direct = call_all(db, fn="sqlambda_original.price_quote", role="mod_reader")
    assert call_all(db, role="mod_reader") == direct
    assert counters(db)["answers"] == 0
    assert api.drain(db).compared == sum(1 for r in direct if r[0] == "ok")
    assert q(db, "SELECT bool_and(match) FROM sqlambda.modernize_result") == [(True,)]


def test_cutover_answers_from_the_lambda_with_its_errors(original, quote_lambda, db):
    direct = call_all(db, role="mod_reader")
    api.install(spec(quote_lambda.endpoint_url, "cutover"), db)
    routed = call_all(db, role="mod_reader")
    for (sku, n, tier), d, r in zip(CALLS, direct, routed):
        if d[0] == "ok":
            assert r == d
        else:  # the Lambda's errorType and errorMessage, as every sqlambda function reports them
            assert r[0] == "error" and r[1].startswith("LA")
            assert ("LookupError" in r[2] and f"unknown sku {sku}" in r[2]) or ("ValueError" in r[2] and "qty must be positive" in r[2])
    assert counters(db)["answers"] == sum(1 for r in direct if r[0] == "ok")
    # the original stays installed, untouched, for rollback
    assert snapshot(db, "sqlambda_original.price_quote(text, integer, text)")["oid"] == original["oid"]


@pytest.mark.parametrize("stage", ["record", "shadow", "canary", "cutover"])
def test_rollback_and_uninstall_restore_the_original_exactly(original, quote_lambda, db, stage):
    api.install(spec(quote_lambda.endpoint_url, stage), db)
    call_all(db, role="mod_reader")
    assert snapshot(db) != original
    api.install(spec(quote_lambda.endpoint_url, "rollback"), db)
    assert snapshot(db) == original
    assert q(db, "SELECT count(*) FROM sqlambda.modernize") == [(0,)]
    assert call_all(db, role="mod_reader")[0] == ("ok", 30)
    # back into the same stage from rollback, then uninstall
    api.install(spec(quote_lambda.endpoint_url, stage), db)
    assert snapshot(db) != original
    api.uninstall(db)
    assert snapshot(db) == original
    assert q(db, "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'sqlambda%%'") == [(0,)]


def test_moving_between_stages_keeps_one_router_and_its_grants(original, quote_lambda, db):
    api.install(spec(quote_lambda.endpoint_url, "record"), db)
    first = snapshot(db)
    q(db, f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO mod_mallory")  # a grant made while taken over
    for stage in ("shadow", "canary", "cutover", "record"):
        api.install(spec(quote_lambda.endpoint_url, stage), db)
        now = snapshot(db)
        assert now["oid"] == first["oid"] and "mod_mallory=X" in now["acl"]
    assert api.verify(spec(quote_lambda.endpoint_url, "record"), db).ok


def test_no_new_failure_mode_in_read_only_transactions_and_parallel_plans(original, quote_lambda, db):
    api.install(spec(quote_lambda.endpoint_url, "shadow"), db)
    with psycopg.connect(db) as c:
        c.execute("SET ROLE mod_reader")
        c.execute("SET TRANSACTION READ ONLY")
        assert c.execute("SELECT public.price_quote('A-100', 3)").fetchone()[0] == 30
        c.rollback()
        # a query the planner would run in parallel: the router is PARALLEL UNSAFE, so it runs in
        # the leader only and may write its captures
        c.execute("SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
                  "SET min_parallel_table_scan_size = 0")
        total = c.execute("SELECT sum(public.price_quote('B-200', g % 5 + 1)) FROM generate_series(1, 2000) g").fetchone()[0]
        c.commit()
    assert total == sum(2.5 * (g % 5 + 1) for g in range(1, 2001))
    assert q(db, "SELECT count(*) FROM sqlambda.modernize_shadow")[0][0] == 2000


@pytest.mark.parametrize("ddl, problem", [
    ("CREATE FUNCTION public.m_set(a int) RETURNS SETOF int LANGUAGE sql AS 'SELECT a'", "returns a set"),
    ("CREATE PROCEDURE public.m_proc(a int) LANGUAGE sql AS 'SELECT a'", "is a procedure"),
    ("CREATE FUNCTION public.m_out(a int, OUT b int, OUT c int) LANGUAGE sql AS 'SELECT a, a'", "OUT, INOUT, VARIADIC"),
    ("CREATE FUNCTION public.m_unnamed(int) RETURNS int LANGUAGE sql AS 'SELECT $1'", "unnamed arguments"),
    ("CREATE FUNCTION public.m_var(VARIADIC a int[]) RETURNS int LANGUAGE sql AS 'SELECT 1'", "OUT, INOUT, VARIADIC"),
    ("CREATE FUNCTION public.m_trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'", "pseudo-type"),
    ("", "does not exist"),
])
def test_functions_a_router_cannot_stand_in_for_are_refused_clearly(db, quote_lambda, ddl, problem):
    from sqlambda.errors import InstallError

    api.uninstall(db)
    name = ddl.split("public.")[1].split("(")[0] if ddl else "m_missing"
    sig = {"m_set": "(integer)", "m_proc": "(integer)", "m_out": "(integer)", "m_unnamed": "(integer)",
           "m_var": "(integer[])", "m_trg": "()", "m_missing": "(text)"}[name]
    if ddl:
        q(db, ddl)
    loaded = loaded_spec({"project": "mod", "aws": {"endpoint_url": quote_lambda.endpoint_url},
                          "modernize": [{"function": f"public.{name}{sig}", "lambda": "mod_quote"}]})
    with pytest.raises(InstallError) as info:
        api.install(loaded, db)
    assert problem in str(info.value)
    # the step that failed was rolled back whole: the function is where and what it was
    assert q(db, "SELECT count(*) FROM sqlambda.modernize") == [(0,)]
    if ddl:
        assert q(db, "SELECT pg_catalog.to_regprocedure(%s)::text", (f"public.{name}{sig}",)) == [(f"{name}{sig}",)]
    api.uninstall(db)
    if ddl:
        q(db, f"DROP {'PROCEDURE' if 'PROCEDURE' in ddl else 'FUNCTION'} public.{name}{sig}")


CORE = CORE_SOURCE + "\ncompute = quote\n"


def test_scaffold_writes_a_lambda_and_a_replay_test_that_judges_the_port(original, quote_lambda, db, tmp_path):
    import subprocess
    import sys

    api.install(spec(quote_lambda.endpoint_url, "record", compare={"tolerance": 0.001}), db)
    call_all(db, role="mod_reader")
    written = api.modernize_scaffold(db, "price_quote", tmp_path)
    folder = tmp_path / "price_quote"
    assert sorted(p.name for p in written) == sorted(["handler.py", "price_quote_core.py", "test_replay.py",
                                                      "recorded_calls.json", "lambda.json"])
    recorded = json.loads((folder / "recorded_calls.json").read_text())
    assert len(recorded) == len(CALLS)
    assert {"id": "call-1", "args": {"sku": "A-100", "qty": 3, "tier": "retail"}, "result": 30.00, "error": None} in recorded
    assert sum(1 for c in recorded if c["error"]) == 2
    assert "round(unit * qty" in (folder / "price_quote_core.py").read_text()  # the original's source, to port
    assert len((folder / "handler.py").read_text().splitlines()) <= 10

    def replay() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                              capture_output=True, text=True, cwd=tmp_path)

    first = replay()
    assert first.returncode == 1 and "NotImplementedError" in first.stdout
    (folder / "price_quote_core.py").write_text(CORE.replace('"100"', '"50"'))  # the bulk discount bug
    buggy = replay()
    assert buggy.returncode == 1 and "'qty': 60" in buggy.stdout and "142.50 != 135.38" in buggy.stdout
    (folder / "price_quote_core.py").write_text(CORE)
    fixed = replay()
    assert fixed.returncode == 0, fixed.stdout
    # refreshing the recordings never touches the team's code
    api.modernize_scaffold(db, "price_quote", tmp_path, calls_only=True)
    assert (folder / "price_quote_core.py").read_text() == CORE
    from sqlambda.errors import UsageError

    with pytest.raises(UsageError):
        api.modernize_scaffold(db, "price_quote", tmp_path)


def test_status_shows_stage_comparisons_mismatches_and_latencies(original, quote_lambda, db):
    import subprocess
    import sys
    from pathlib import Path

    api.install(spec(quote_lambda.endpoint_url, "shadow", **{"lambda": "mod_quote_bulk50"}), db)
    call_all(db, role="mod_reader")
    api.drain(db)
    cli = str(Path(sys.executable).with_name("sqlambda"))
    out = subprocess.run([cli, "modernize", "status", "--json", "--dsn", db], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    # past stage record the router counts the calls that returned: an error passes through it untouched
    assert (row["name"], row["stage"], row["calls"], row["compared"], row["matched"]) == ("price_quote", "shadow", 6, 6, 5)
    assert abs(row["match_rate"] - 5 / 6) < 1e-9 and row["lambda_measured_by"] == "drainer"
    assert row["original_p50_us"] > 0 and row["lambda_p99_us"] >= row["lambda_p50_us"] > 0
    (m,) = row["mismatches"]
    assert m["args"] == {"sku": "B-200", "qty": 60, "tier": "silver"} and m["diff"] == "$: 142.50 != 135.38"
    human = subprocess.run([cli, "modernize", "status", "--dsn", db], capture_output=True, text=True)
    assert human.returncode == 0 and "142.50 != 135.38" in human.stdout and "83.3%" in human.stdout


def test_a_function_that_writes_can_be_recorded_and_cut_over_but_not_shadowed(db, quote_lambda):
    from sqlambda.errors import SpecError

    api.uninstall(db)
    q(db, "CREATE TABLE IF NOT EXISTS public.orders_log (id serial PRIMARY KEY, sku text)")
    q(db, "CREATE OR REPLACE FUNCTION public.place_order(sku text, qty integer) RETURNS integer LANGUAGE plpgsql AS "
          "$$ BEGIN INSERT INTO public.orders_log (sku) SELECT sku FROM generate_series(1, qty); RETURN qty; END $$")
    writer = {"function": "public.place_order(text, integer)", "lambda": "mod_quote"}
    from sqlambda.spec.loader import load_spec_text

    with pytest.raises(SpecError, match="would write twice"):
        load_spec_text("project: w\nmodernize:\n  - function: public.place_order(text, integer)\n    lambda: x\n"
                       "    stage: shadow\n", "w.yaml")
    try:
        api.install(loaded_spec({"project": "w", "aws": {"endpoint_url": quote_lambda.endpoint_url},
                                 "modernize": [{**writer, "stage": "record"}]}), db)
        with psycopg.connect(db) as c:  # many calls in one transaction: writes and samples all commit together
            assert [c.execute("SELECT public.place_order('A-100', 2)").fetchone()[0] for _ in range(100)] == [2] * 100
            c.commit()
            c.execute("SELECT public.place_order('A-100', 5)")
            c.rollback()  # the caller's rollback takes the write and its sample with it, as before
        assert q(db, "SELECT count(*) FROM public.orders_log") == [(200,)]
        assert q(db, "SELECT count(*) FROM sqlambda.modernize_call WHERE name = 'place_order'") == [(100,)]
    finally:
        api.uninstall(db)
        q(db, "DROP FUNCTION public.place_order(text, integer)")
        q(db, "DROP TABLE public.orders_log")
