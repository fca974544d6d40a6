"""Modernize routers attacked by roles with an ordinary login (see README, Modernization, Trust).

The router stands in for the user's function: it must give nobody anything the original did not
(mallory, with no EXECUTE on it, gets nothing; a caller gets nothing but the function's answers),
and nothing a caller controls (search_path, operators, functions in their own schemas) may steer it:
its body names everything with its schema, operators included.
"""

from __future__ import annotations

import psycopg
import pytest
from pg_helpers import loaded_spec, q

from sqlambda import api

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

SIG = "public.secret_score(text)"
ORIGINAL = """
CREATE TABLE public.secrets (k text PRIMARY KEY, v numeric NOT NULL);
INSERT INTO public.secrets VALUES ('a', 1.5), ('b', 2.5);
REVOKE ALL ON public.secrets FROM PUBLIC;
CREATE FUNCTION public.secret_score(k text) RETURNS numeric LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN
  RETURN (SELECT s.v FROM public.secrets s WHERE s.k OPERATOR(pg_catalog.=) secret_score.k);
END $$;
ALTER TABLE public.secrets OWNER TO atk_owner;
ALTER FUNCTION public.secret_score(text) OWNER TO atk_owner;
REVOKE ALL ON FUNCTION public.secret_score(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.secret_score(text) TO atk_caller;
"""

#: a caller's own schema full of look-alikes of everything a careless router would name unqualified
HOSTILE = """
CREATE SCHEMA IF NOT EXISTS evil AUTHORIZATION {role};
CREATE OR REPLACE FUNCTION evil.random() RETURNS double precision LANGUAGE sql AS 'SELECT -1.0::float8';
CREATE OR REPLACE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$SELECT 'infinity'::timestamptz$$;
CREATE OR REPLACE FUNCTION evil.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql AS $$SELECT '{{"evil": true}}'::jsonb$$;
CREATE OR REPLACE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$SELECT '{{"evil": true}}'::jsonb$$;
CREATE OR REPLACE FUNCTION evil.lt(float8, float8) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.< (LEFTARG = float8, RIGHTARG = float8, FUNCTION = evil.lt);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
"""


def spec(endpoint: str, stage: str, **extra):
    entry = {"function": SIG, "lambda": "atk_lambda", "stage": stage, "side_effects": "none", **extra}
    return loaded_spec({"project": "atk", "aws": {"endpoint_url": endpoint, "max_attempts": 1}, "modernize": [entry]})


@pytest.fixture(scope="module")
def db(pg_dsn, local_stack):
    local_stack.deploy_source("atk_lambda", "def handler(event, context):\n    return 99\n", timeout=10)
    for role in ("atk_owner NOLOGIN", "atk_caller LOGIN", "atk_mallory LOGIN"):
        q(pg_dsn, f"CREATE ROLE {role}")
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        c.execute(ORIGINAL)
    for role in ("atk_caller", "atk_mallory"):
        q(pg_dsn, f"GRANT CREATE ON DATABASE {pg_dsn.split('dbname=')[1].split()[0]} TO {role}")
    yield pg_dsn
    api.uninstall(pg_dsn)


def as_role(dsn: str, role: str, query: str, params=()):
    """``query`` run by ``role`` logged in as itself (so session_user is the role)."""
    with psycopg.connect(dsn.replace("user=postgres", f"user={role}"), autocommit=True) as c:
        try:
            cur = c.execute(query, params)
            return ("ok", cur.fetchall() if cur.description else None)
        except psycopg.Error as exc:
            return ("error", exc.diag.sqlstate)


@pytest.mark.parametrize("stage", ["record", "shadow", "canary", "cutover"])
def test_mallory_gets_nothing_through_the_router_or_its_helpers(db, local_stack, stage):
    api.install(spec(local_stack.endpoint_url, stage), db)
    attempts = [
        f"SELECT {SIG.replace('(text)', '')}('a')",
        "SELECT sqlambda_original.secret_score('a')",
        "SELECT sqlambda.secret_score__lambda('{}'::jsonb)",
        "SELECT sqlambda.secret_score__keep('shadow', '{}'::jsonb, '1'::jsonb, NULL, 1, true)",
        "SELECT sqlambda.secret_score__log('original', '{}'::jsonb, '1'::jsonb, NULL, 1)",
        "SELECT sqlambda.modernize_apply('secret_score', 'public.secret_score(text)', 'rollback', '{}')",
        "SELECT sqlambda.modernize_release('secret_score')",
        "SELECT * FROM sqlambda.modernize",
        "SELECT * FROM sqlambda.modernize_call",
        "SELECT * FROM sqlambda.modernize_result",
        "DELETE FROM sqlambda.modernize_shadow",
        "SELECT pg_catalog.nextval('sqlambda.secret_score__calls')",
        "CREATE FUNCTION sqlambda_original.secret_score(k text, x int) RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "ALTER FUNCTION public.secret_score(text) SECURITY INVOKER",
    ]
    for statement in attempts:
        assert as_role(db, "atk_mallory", statement)[0] == "error", statement
    # and the function still answers its callers as before
    assert as_role(db, "atk_caller", "SELECT public.secret_score('a')")[1][0][0] in (1.5, 99)


def test_a_caller_s_search_path_cannot_steer_the_router(db, local_stack):
    api.install(spec(local_stack.endpoint_url, "canary", canary=0.0), db)
    q(db, "TRUNCATE sqlambda.modernize_call")
    answers = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sqlambda.secret_score__answers"
    before = q(db, answers)
    with psycopg.connect(db.replace("user=postgres", "user=atk_caller"), autocommit=True) as c:
        c.execute(HOSTILE.format(role="atk_caller"))
        c.execute("SET search_path = evil, pg_catalog, public")
        # evil.< says every random() is below the fraction, evil.random() is -1: either would send
        # the call to the Lambda (answer 99) if the router named them without pg_catalog
        assert [c.execute("SELECT public.secret_score('a')").fetchone()[0] for _ in range(5)] == [1.5] * 5
    assert q(db, answers) == before
    kept = q(db, "SELECT DISTINCT args, result FROM sqlambda.modernize_call")
    assert kept == [({"k": "a"}, 1.5)]  # not evil.jsonb_build_object / evil.to_jsonb


def test_a_caller_of_a_definer_function_gets_none_of_its_helpers(db, local_stack):
    api.install(spec(local_stack.endpoint_url, "canary", canary=0.0), db)
    # the router runs as its owner, so only the owner needs the helpers: a caller may not add
    # samples, queue shadow calls or call the Lambda with a payload of their own
    for statement in ("SELECT sqlambda.secret_score__keep('shadow', '{\"k\": \"z\"}', '7', NULL, 1, true)",
                      "SELECT sqlambda.secret_score__lambda('{}'::jsonb)"):
        assert as_role(db, "atk_caller", statement) == ("error", "42501"), statement
    assert as_role(db, "atk_caller", "SELECT public.secret_score('a')")[1][0][0] == 1.5
    assert as_role(db, "atk_caller", "SELECT * FROM sqlambda.modernize_shadow")[0] == "error"


def test_a_domain_in_the_callers_pg_temp_does_not_run_as_the_routers_owner(db, local_stack):
    # types named without a schema are looked up in pg_temp first: a look-alike domain whose CHECK
    # calls the caller's function would run it as the SECURITY DEFINER router's owner
    api.install(spec(local_stack.endpoint_url, "record"), db)
    with psycopg.connect(db.replace("user=postgres", "user=atk_caller"), autocommit=True) as c:
        c.execute("CREATE FUNCTION pg_temp.pwn(x anyelement) RETURNS boolean LANGUAGE plpgsql AS "
                  "$$BEGIN RAISE EXCEPTION 'pwned as %', current_user; END$$")
        for t in ("timestamptz", "numeric", "int8", "jsonb", "text", "float8", "int4", "bool"):
            c.execute(f"CREATE DOMAIN pg_temp.{t} AS pg_catalog.{t} CHECK (pg_temp.pwn(VALUE))")
        assert [c.execute("SELECT public.secret_score('b')").fetchone()[0] for _ in range(3)] == [2.5] * 3


def test_what_the_originals_owner_controls_never_reaches_the_installers_sql(db, local_stack):
    """The original's owner controls its argument defaults, comment and SET values, and may drop the
    router they own: none of it may make the installer (a superuser) run their SQL or hand them a
    router it owns."""
    q(db, "CREATE ROLE atk_evil LOGIN")
    evil_default = "E'x\\n SET foo.bar TO 1 AS $q$ SELECT 1 $q$; ALTER ROLE atk_evil SUPERUSER; CREATE FUNCTION pg_temp.zz(a text) RETURNS void LANGUAGE plpgsql\\n'"
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE FUNCTION public.evil_fn(a text DEFAULT " + evil_default + ") RETURNS text "
                  "LANGUAGE sql STABLE SECURITY DEFINER AS 'SELECT a'")
        c.execute("ALTER FUNCTION public.evil_fn(text) OWNER TO atk_evil")
    with psycopg.connect(db.replace("user=postgres", "user=atk_evil"), autocommit=True) as c:
        c.execute("ALTER FUNCTION public.evil_fn(text) SET application_name = E'y\\n SET role TO postgres'")
        c.execute("COMMENT ON FUNCTION public.evil_fn(text) IS E'c'';\\nALTER ROLE atk_evil SUPERUSER; --'")
    entry = {"function": "public.evil_fn(text)", "lambda": "atk_lambda", "stage": "record", "side_effects": "none"}
    loaded = loaded_spec({"project": "atk", "aws": {"endpoint_url": local_stack.endpoint_url}, "modernize": [entry]})
    api.install(loaded, db)
    try:
        assert q(db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'atk_evil'") == [(False,)]
        config = q(db, "SELECT proconfig FROM pg_proc WHERE oid = 'public.evil_fn(text)'::regprocedure")[0][0]
        original = q(db, "SELECT proconfig FROM pg_proc WHERE oid = 'sqlambda_original.evil_fn(text)'::regprocedure")[0][0]
        assert config == original and len(config) == 1  # copied value for value, never through text
        # the owner drops the router they own; the next install must not create one the installer owns
        with psycopg.connect(db.replace("user=postgres", "user=atk_evil"), autocommit=True) as c:
            c.execute("DROP FUNCTION public.evil_fn(text)")
        from sqlambda.errors import InstallError

        with pytest.raises(InstallError, match="not the router sqlambda created"):
            api.install(loaded_spec({"project": "atk", "aws": {"endpoint_url": local_stack.endpoint_url},
                                     "modernize": [{**entry, "stage": "cutover"}]}), db)
        assert q(db, "SELECT count(*) FROM pg_proc WHERE proname = 'evil_fn' AND proowner <> 'atk_evil'::regrole") == [(0,)]
    finally:
        api.install(loaded_spec({"project": "atk", "aws": {"endpoint_url": local_stack.endpoint_url},
                                 "modernize": [{**entry, "stage": "rollback"}]}), db)
        q(db, "DROP FUNCTION IF EXISTS public.evil_fn(text)")
        q(db, "DROP ROLE atk_evil")


def test_a_schema_someone_else_made_first_is_refused(pg_cluster, local_stack):
    from sqlambda.errors import InstallError

    dsn = pg_cluster.create_database("t_modernize_squat")
    q(dsn, "CREATE ROLE atk_squatter LOGIN") if not q(dsn, "SELECT 1 FROM pg_roles WHERE rolname = 'atk_squatter'") else None
    q(dsn, "GRANT CREATE ON DATABASE t_modernize_squat TO atk_squatter")
    with psycopg.connect(dsn.replace("user=postgres", "user=atk_squatter"), autocommit=True) as c:
        c.execute("CREATE SCHEMA sqlambda_original")
    q(dsn, "CREATE FUNCTION public.f(a text) RETURNS text LANGUAGE sql AS 'SELECT a'")
    loaded = loaded_spec({"project": "atk", "aws": {"endpoint_url": local_stack.endpoint_url},
                          "modernize": [{"function": "public.f(text)", "lambda": "atk_lambda"}]})
    with pytest.raises(InstallError, match="sqlambda_original exists and belongs to atk_squatter"):
        api.install(loaded, dsn)
    # the registry's own schema, too (a fresh database: nothing of sqlambda's in it yet)
    other = pg_cluster.create_database("t_modernize_squat2")
    q(other, "GRANT CREATE ON DATABASE t_modernize_squat2 TO atk_squatter")
    with psycopg.connect(other.replace("user=postgres", "user=atk_squatter"), autocommit=True) as c:
        c.execute("CREATE SCHEMA sqlambda")
    with pytest.raises(Exception, match="sqlambda exists and belongs to atk_squatter"):
        api.install(loaded, other)
