"""No user code runs with sqlambda's privileges (issue 13, property 2), attacked by an ordinary login.

``mallory`` owns a schema with two tables that carry sqlambda triggers (outbox and immediate) and
may INSERT into a table of the DBA's. She plants her own code everywhere PostgreSQL could run it
for us: a cast to json of a type she owns (row_to_json calls it while building row images), arrays
and composites of that type, functions and operators named like the catalog's on her search_path,
and rows she appends to the queue herself. Every hook records who ran it and tries to escalate
(become superuser, rewrite a route, forge another trigger's events, touch the registry). The
property: every hook runs as mallory or not at all, every escalation fails, and she can queue
events only for her own tables' triggers, in shapes the drainer can always handle.
"""

from __future__ import annotations

import threading
import time
import types

import psycopg
import pytest
from pg_helpers import loaded_spec, q

from sqlambda import api
from sqlambda.targets.postgres import drain as outbox

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

MALLORY = "mallory_uc"


# What mallory's planted code does when it runs: note who it runs as, then try to escalate. Each
# attempt is caught, so the statement that ran it goes on and the tests can read what happened.
HOOK_BODY = """
DECLARE outcome text;
BEGIN
  INSERT INTO ms.hits (hook, who) VALUES (%(hook)s, current_user::text);
  BEGIN EXECUTE format('ALTER ROLE %%I SUPERUSER', session_user); outcome := 'became superuser';
  EXCEPTION WHEN OTHERS THEN outcome := SQLSTATE; END;
  INSERT INTO ms.hits (hook, who, what) VALUES (%(hook)s, current_user::text, 'superuser: ' || outcome);
  BEGIN UPDATE sqlambda.outbox_route SET target = 'evil'; outcome := 'rewrote routes';
  EXCEPTION WHEN OTHERS THEN outcome := SQLSTATE; END;
  INSERT INTO ms.hits (hook, who, what) VALUES (%(hook)s, current_user::text, 'route: ' || outcome);
  BEGIN INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('dba_out', 'insert', 1, '[{"forged": true}]');
        outcome := 'forged dba_out';
  EXCEPTION WHEN OTHERS THEN outcome := SQLSTATE; END;
  INSERT INTO ms.hits (hook, who, what) VALUES (%(hook)s, current_user::text, 'forge: ' || outcome);
  BEGIN DELETE FROM sqlambda.installed; outcome := 'emptied the registry';
  EXCEPTION WHEN OTHERS THEN outcome := SQLSTATE; END;
  INSERT INTO ms.hits (hook, who, what) VALUES (%(hook)s, current_user::text, 'registry: ' || outcome);
  RETURN %(ret)s;
END
"""


@pytest.fixture(scope="module")
def env(pg_cluster, local_stack, echo_function, recorder):
    dsn = pg_cluster.create_database("sec_user_code")
    q(dsn, f"DROP ROLE IF EXISTS {MALLORY}")
    q(dsn, f"CREATE ROLE {MALLORY} LOGIN")
    q(dsn, f"CREATE SCHEMA ms AUTHORIZATION {MALLORY}")
    mdsn = dsn.replace("user=postgres", f"user={MALLORY}")
    # mallory's own tables (she owns them, so she may ALTER them later) and one of the DBA's she may write
    q(mdsn, "CREATE TABLE ms.m_out (id int PRIMARY KEY, note text)")
    q(mdsn, "CREATE TABLE ms.m_now (id int PRIMARY KEY, note text)")
    q(mdsn, "CREATE TABLE ms.hits (hook text, who text, what text)")
    q(dsn, "CREATE TABLE shared_out (id int PRIMARY KEY, note text)")
    q(dsn, f"GRANT INSERT ON shared_out TO {MALLORY}")
    q(dsn, "CREATE TABLE dba_out (id int PRIMARY KEY, note text)")  # mallory has no privilege here
    spec = {
        "project": "secuc",
        "aws": {"endpoint_url": local_stack.endpoint_url, "max_attempts": 2},
        "postgres": {"generic_roles": [MALLORY]},
        "functions": [{"name": "uc_status", "lambda": "echo", "args": {"order_id": "bigint", "note": "text"},
                       "returns": {"type": "text", "path": "Status"}, "roles": [MALLORY]}],
        "triggers": [
            {"name": "m_out", "table": "ms.m_out", "lambda": recorder.name, "mode": "sync", "delivery": "outbox",
             "retry": {"base_delay_ms": 1, "max_delay_ms": 5}},
            {"name": "m_now", "table": "ms.m_now", "lambda": recorder.name, "mode": "sync", "delivery": "immediate"},
            {"name": "shared_out", "table": "shared_out", "lambda": recorder.name, "mode": "sync",
             "delivery": "outbox", "events": ["insert", "update"], "retry": {"base_delay_ms": 1, "max_delay_ms": 5}},
            {"name": "dba_out", "table": "dba_out", "lambda": recorder.name, "mode": "sync", "delivery": "outbox"},
        ],
    }
    api.install(loaded_spec(spec), dsn)
    return types.SimpleNamespace(dsn=dsn, mdsn=mdsn, recorder=recorder)


@pytest.fixture
def clean(env):
    env.recorder.clear()
    q(env.dsn, "DELETE FROM sqlambda.outbox; DELETE FROM sqlambda.outbox_dead; TRUNCATE ms.hits, ms.m_out, ms.m_now, shared_out")
    yield env
    q(env.dsn, f"ALTER ROLE {MALLORY} NOSUPERUSER")


def _routes(dsn):
    return q(dsn, "SELECT trigger_name, target FROM sqlambda.outbox_route ORDER BY 1")


def _assert_no_escalation(env, routes_before):
    super_, = q(env.dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (MALLORY,))[0]
    assert super_ is False, "mallory became a superuser"
    assert _routes(env.dsn) == routes_before
    assert q(env.dsn, "SELECT count(*) FROM sqlambda.installed")[0][0] > 0
    assert q(env.dsn, "SELECT count(*) FROM sqlambda.outbox WHERE trigger_name = 'dba_out'")[0][0] == 0
    outcomes = q(env.dsn, "SELECT hook, who, what FROM ms.hits WHERE what IS NOT NULL")
    assert len(outcomes) >= 4
    for hook, who, what in outcomes:
        assert who == MALLORY, f"{hook} ran as {who}"
        assert what.split(": ")[1] == "42501", f"{hook}: {what}"  # insufficient privilege, every time


def test_a_cast_to_json_in_row_images_runs_as_the_writer_only(clean):
    """The reported attack: an enum with a cast to json, through the outbox and the immediate trigger."""
    env = clean
    routes = _routes(env.dsn)
    with psycopg.connect(env.mdsn, autocommit=True) as m:
        m.execute("CREATE TYPE ms.mood AS ENUM ('happy', 'sad')")
        m.execute("CREATE FUNCTION ms.mood_json(ms.mood) RETURNS json LANGUAGE plpgsql AS $f$"
                  + HOOK_BODY % {"hook": "'cast'", "ret": "to_json($1::text)"} + "$f$")
        m.execute("CREATE CAST (ms.mood AS json) WITH FUNCTION ms.mood_json(ms.mood)")
        for t in ("m_out", "m_now"):
            m.execute(f"ALTER TABLE ms.{t} ADD COLUMN m ms.mood DEFAULT 'happy', "
                      f"ADD COLUMN ms ms.mood[] DEFAULT '{{sad,happy}}'")
        m.execute("INSERT INTO ms.m_out (id, note) VALUES (1, 'x')")
        m.execute("INSERT INTO ms.m_now (id, note) VALUES (1, 'x')")
    hooks = q(env.dsn, "SELECT DISTINCT who FROM ms.hits")
    assert hooks == [(MALLORY,)], f"the cast ran as {hooks}"
    _assert_no_escalation(env, routes)
    # and her events were still queued and sent, built by her own cast
    assert outbox.drain(env.dsn).delivered == 1
    recs = env.recorder.wait_records("m_out", 1) + env.recorder.wait_records("m_now", 1)
    assert {r["new"]["m"] for r in recs} == {"happy"}
    for t in ("m_out", "m_now"):
        q(env.mdsn, f"ALTER TABLE ms.{t} DROP COLUMN m, DROP COLUMN ms")
    q(env.mdsn, "DROP CAST (ms.mood AS json); DROP FUNCTION ms.mood_json(ms.mood); DROP TYPE ms.mood")


def test_a_composite_column_with_a_cast_inside_runs_as_the_writer_only(clean):
    env = clean
    routes = _routes(env.dsn)
    with psycopg.connect(env.mdsn, autocommit=True) as m:
        m.execute("CREATE TYPE ms.tag AS ENUM ('t')")
        m.execute("CREATE FUNCTION ms.tag_json(ms.tag) RETURNS json LANGUAGE plpgsql AS $f$"
                  + HOOK_BODY % {"hook": "'composite'", "ret": "'\"t\"'::json"} + "$f$")
        m.execute("CREATE CAST (ms.tag AS json) WITH FUNCTION ms.tag_json(ms.tag)")
        m.execute("CREATE TYPE ms.pair AS (a int, t ms.tag)")
        m.execute("ALTER TABLE ms.m_out ADD COLUMN p ms.pair DEFAULT ROW(1, 't')")
        m.execute("INSERT INTO ms.m_out (id) VALUES (2)")
    assert q(env.dsn, "SELECT DISTINCT who FROM ms.hits") == [(MALLORY,)]
    _assert_no_escalation(env, routes)
    q(env.mdsn, "ALTER TABLE ms.m_out DROP COLUMN p; DROP TYPE ms.pair; DROP CAST (ms.tag AS json); "
                "DROP FUNCTION ms.tag_json(ms.tag); DROP TYPE ms.tag")


# -- search_path objects and operators ------------------------------------------------------------------

#: functions and operators named like what sqlambda's code calls, planted first on the search_path
PLANTED = [
    ("function", "ms.current_setting(text, boolean)", "text", "NULL::text"),
    ("function", "ms.current_setting(text)", "text", "NULL::text"),
    ("function", "ms.current_database()", "name", "'x'::name"),
    ("function", "ms.pg_sleep(double precision)", "void", "NULL"),
    ("function", "ms.to_char(timestamp, text)", "text", "'x'"),
    ("function", "ms.pg_current_xact_id()", "xid8", "NULL::xid8"),
    ("function", "ms.row_to_json(record)", "json", "'{}'::json"),
    ("function", "ms.to_regprocedure(text)", "regprocedure", "NULL"),
    ("function", "ms.has_any_column_privilege(text, text)", "boolean", "true"),
    ("function", "ms.array_to_json(anyarray)", "json", "'[]'::json"),
    ("function", "ms.pg_notify(text, text)", "void", "NULL"),
    ("function", "ms.now()", "timestamptz", "NULL::timestamptz"),
]
OPERATORS = [("name", "name"), ("oid", "oid"), ("text", "text"), ("bigint", "bigint"), ("integer", "integer"),
             ("text", "unknown")]


@pytest.fixture(scope="module")
def planted(env):
    with psycopg.connect(env.mdsn, autocommit=True) as m:
        for _kind, sig, ret, value in PLANTED:
            name = sig.split("(")[0]
            ret_stmt = "RETURN;" if ret == "void" else f"RETURN {value};"
            m.execute(f"CREATE OR REPLACE FUNCTION {sig} RETURNS {ret} LANGUAGE plpgsql AS $f$ BEGIN "
                      f"INSERT INTO ms.hits (hook, who) VALUES ('{name}', current_user::text); {ret_stmt} END $f$")
        for left, right in OPERATORS:
            if right == "unknown":
                continue
            fname = f"ms.eq_{left}_{right}".replace(" ", "_")
            m.execute(f"CREATE OR REPLACE FUNCTION {fname}({left}, {right}) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN "
                      f"INSERT INTO ms.hits (hook, who) VALUES ('= {left} {right}', current_user::text); RETURN true; END $f$")
            m.execute(f"CREATE OPERATOR ms.= (LEFTARG = {left}, RIGHTARG = {right}, FUNCTION = {fname})")
    return env


CALLS = [
    "SELECT awslambda_fn('echo', '{}')",
    "SELECT awslambda_fn_async('echo', '{}')",
    "SELECT * FROM sqlambda.invoke('echo', '{}')",
    "SELECT public.uc_status(1, 'x')",
    "INSERT INTO ms.m_out (id, note) VALUES (10, 'x')",
    "INSERT INTO ms.m_now (id, note) VALUES (10, 'x')",
    "INSERT INTO shared_out (id, note) VALUES (10, 'x')",
]


@pytest.mark.parametrize("who", ["mallory", "superuser"])
def test_objects_on_the_callers_search_path_are_never_resolved(planted, clean, who):
    """The reported attack: a caller (a superuser too) whose search_path puts someone's schema before
    pg_catalog. Nothing planted there may run inside any sqlambda function or trigger."""
    env = planted
    dsn = env.mdsn if who == "mallory" else env.dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path = ms, pg_catalog, public")
        for i, call in enumerate(CALLS):
            conn.execute(call.replace("(10,", f"({10 + i},"))
    hits = q(env.dsn, "SELECT hook, who FROM ms.hits")
    assert hits == [], f"planted objects ran: {hits}"
    assert outbox.drain(env.dsn).delivered == 2


# -- the queue: what a writer can and cannot append -------------------------------------------------------

def _denied(dsn: str, statement: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(psycopg.Error) as e:
        conn.execute(statement)
    return e.value.sqlstate


@pytest.mark.parametrize("statement,sqlstate", [
    # another trigger's events, or her own trigger's events for an operation she may not perform
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('dba_out', 'insert', 1, '[{}]')", "42501"),
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows, old_rows) VALUES ('shared_out', 'update', 1, '[{}]', '[{}]')", "42501"),
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, old_rows) VALUES ('shared_out', 'delete', 1, '[{}]')", "42501"),
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('nobody', 'insert', 1, '[{}]')", "42501"),
    # the columns that make idempotency keys and schedule retries come from their defaults only
    ("INSERT INTO sqlambda.outbox (id, trigger_name, op, n, new_rows) VALUES (1, 'm_out', 'insert', 1, '[{}]')", "42501"),
    ("INSERT INTO sqlambda.outbox (txid, trigger_name, op, n, new_rows) VALUES ('1', 'm_out', 'insert', 1, '[{}]')", "42501"),
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows, next_attempt_at) VALUES ('m_out', 'insert', 1, '[{}]', now())", "42501"),
    # rows the drainer could not read
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('m_out', 'insert', 1, '{\"not\": \"an array\"}')", "23514"),
    ("INSERT INTO sqlambda.outbox (trigger_name, op, n, old_rows) VALUES ('m_out', 'insert', 1, '[{}]')", "23514"),
    # reading, changing, deleting: none of it
    ("SELECT * FROM sqlambda.outbox", "42501"),
    ("UPDATE sqlambda.outbox SET attempts = 0", "42501"),
    ("DELETE FROM sqlambda.outbox", "42501"),
    ("TRUNCATE sqlambda.outbox", "42501"),
    ("SELECT * FROM sqlambda.outbox_dead", "42501"),
    ("INSERT INTO sqlambda.outbox_route (trigger_name, table_name, target, mode, max_rows, max_bytes, max_attempts, "
     "base_delay_ms, max_delay_ms, max_age_s, region) VALUES ('x', 'x', 'x', 'sync', 1, 1024, 1, 1, 1, 60, 'us-east-1')", "42501"),
    ("UPDATE sqlambda.outbox_route SET target = 'evil'", "42501"),
    ("SELECT * FROM sqlambda.outbox_claim(10)", "42501"),
    ("DELETE FROM sqlambda.installed", "42501"),
    ("INSERT INTO sqlambda.install_log (action) VALUES ('x')", "42501"),
    ("ALTER POLICY enqueue_m_out ON sqlambda.outbox WITH CHECK (true)", "42501"),
    ("ALTER FUNCTION sqlambda.trg_m_out_insert() SECURITY DEFINER", "42501"),
    ("SELECT sqlambda.settings()", "42501"),
])
def test_direct_queue_tampering_is_refused(clean, statement, sqlstate):
    assert _denied(clean.mdsn, statement) == sqlstate


def test_a_writer_may_append_only_her_own_triggers_events(clean):
    env = clean
    q(env.mdsn, "INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('m_out', 'insert', 1, '[{\"id\": 7}]')")
    q(env.mdsn, "INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('shared_out', 'insert', 1, '[{\"id\": 8}]')")
    # the ones she appended herself look exactly like her inserts would: allowed, nothing more
    assert q(env.dsn, "SELECT trigger_name FROM sqlambda.outbox ORDER BY 1") == [("m_out",), ("shared_out",)]
    assert outbox.drain(env.dsn).delivered == 2


def test_a_chunk_that_lies_about_its_size_cannot_block_the_queue(clean):
    env = clean
    # a chunk holds at most 1,000 events (so sink positions of two chunks never meet): more is refused
    with pytest.raises(psycopg.errors.CheckViolation):
        q(env.mdsn, "INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('m_out', 'insert', 1000000, '[{\"id\": 1}]')")
    q(env.mdsn, "INSERT INTO sqlambda.outbox (trigger_name, op, n, new_rows) VALUES ('m_out', 'insert', 1000, '[{\"id\": 1}]')")
    q(env.mdsn, "INSERT INTO ms.m_out VALUES (2, 'after')")
    stats = outbox.drain(env.dsn)
    assert stats.delivered == 2 and stats.dead == 999
    assert {r["new"]["id"] for r in env.recorder.wait_records("m_out", 2)} == {1, 2}
    assert "fewer events" in q(env.dsn, "SELECT last_error FROM sqlambda.outbox_dead")[0][0]
    assert q(env.dsn, "SELECT count(*) FROM sqlambda.outbox")[0][0] == 0


def test_a_notify_flood_costs_at_most_spaced_polls(clean):
    """Any role may NOTIFY the channel: the drainer ignores the payload and spaces its polls."""
    env = clean
    stop = threading.Event()
    result = []
    worker = threading.Thread(target=lambda: result.append(outbox.drain(env.dsn, follow=True, stop=stop)))
    worker.start()
    try:
        time.sleep(1.0)
        started = time.monotonic()
        with psycopg.connect(env.mdsn, autocommit=True) as m:
            while time.monotonic() - started < 2.0:
                m.execute("NOTIFY \"sqlambda.outbox\", 'DROP TABLE x; m_out'")
        elapsed = time.monotonic() - started
        q(env.mdsn, "INSERT INTO ms.m_out VALUES (3, 'real')")
        deadline = time.monotonic() + 10
        while not env.recorder.records("m_out") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(15)
    assert [r["new"]["id"] for r in env.recorder.records("m_out")] == [3]
    polls = result[0].polls
    # one worker: at most one poll per MIN_POLL_SECONDS while flooded, plus the idle polls around it
    assert polls <= (elapsed + 4.0) / outbox.MIN_POLL_SECONDS, polls
