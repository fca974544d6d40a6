"""SQL written for the RDS/Aurora PostgreSQL ``aws_lambda`` extension, run verbatim through psql.

AWS's documented examples (the user guides' "Invoking an AWS Lambda function from RDS for
PostgreSQL" pages and the ``aws_lambda`` function reference): ``CREATE EXTENSION IF NOT EXISTS
aws_lambda CASCADE``, ``create_lambda_function_arn`` with ``\\gset`` in its three forms, invoke with
2 to 6 arguments and the ``:'aws_lambda_arn_1'`` psql variable, Event, Tail, a qualifier, the
documented grants for a login role, the documented settings. Substituted only: the function name
stays ``my-function``, account 111122223333 becomes the local stack's, ``aws-region`` becomes
us-east-1, and the endpoint (on RDS a parameter group's aws_lambda.endpoint_override) is the local
stack, set the documented way by the DBA.

Both flavours run the same text: the real extensions (``sqlambda extension install``) and a spec
with ``rds_compat: true`` (without the CREATE EXTENSION line). Before this issue: CREATE EXTENSION
failed ("not available"), the documented grants ended in "permission denied for schema
aws_commons", the six-argument example was "not unique", aws_lambda.* settings were ignored, the
conflicts AWS documents did not raise, and a partial ARN was not found by the local stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import psycopg
import pytest
from cli_helpers import run
from pg_helpers import q

from sqlambda import api
from sqlambda.targets.postgres import extension

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

ACCOUNT = "123456789012"  # the local stack's account, for the docs' 111122223333
CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
HELLO = '{"body": "Hello from Postgres!"}'

DOC_SCRIPT = f"""\\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;
SELECT aws_commons.create_lambda_function_arn(
   'my-function',
   'us-east-1'
) AS aws_lambda_arn_1 \\gset
SELECT aws_commons.create_lambda_function_arn(
   '{ACCOUNT}:function:my-function',
   'us-east-1'
) AS lambda_partial_arn_1 \\gset
SELECT aws_commons.create_lambda_function_arn(
   'arn:aws:lambda:us-east-1:{ACCOUNT}:function:my-function'
) AS lambda_arn_1 \\gset
\\echo step:2args
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::json);
\\echo step:3args
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::json, 'RequestResponse');
\\echo step:event
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::json, 'Event');
\\echo step:tail
SELECT *, convert_from(decode(log_result, 'base64'), 'utf-8') as log FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::json, 'RequestResponse', 'Tail');
\\echo step:qualifier
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::json, 'RequestResponse', 'None', NULL, 'custom_version');
\\echo step:inline-qualifier
SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('my-function:custom_version', 'us-east-1'),
'{{"body": "Hello from Postgres!"}}'::json);
\\echo step:inline
SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn('my-function', 'us-east-1'),
'{{"body": "Hello from Postgres!"}}'::json
);
\\echo step:partial
SELECT * FROM aws_lambda.invoke(:'lambda_partial_arn_1', '{{"body": "Hello from Postgres!"}}'::json);
\\echo step:arn
SELECT * FROM aws_lambda.invoke(:'lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::json);
\\echo step:jsonb
SELECT * FROM aws_lambda.invoke(:'aws_lambda_arn_1', '{{"body": "Hello from Postgres!"}}'::jsonb);
"""

DOC_GRANTS = """GRANT USAGE ON SCHEMA aws_lambda TO db_username;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA aws_lambda TO db_username;
"""


def psql(dsn: str, script: str, user: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    conninfo = dsn if user is None else re.sub(r"user=\S+", f"user={user}", dsn)
    return subprocess.run([exe, "-X", "-q", "-A", "-F", "|", "-v", "ON_ERROR_STOP=1", "-d", conninfo], input=script, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})


def steps(out: str) -> dict[str, list[list[str]]]:
    """psql -A output cut at each ``\\echo step:NAME``: the data rows (header and footer dropped)."""
    found: dict[str, list[list[str]]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("step:"):
            current = found.setdefault(line[5:], [])
        elif current is not None and "|" in line and not line.startswith("status_code|"):
            current.append(line.split("|"))
    return found


@pytest.fixture(scope="module")
def function(local_stack):
    res = run("lambdas", "deploy", "echo", "--function-name", "my-function", "--alias", "custom_version",
              "--endpoint-url", local_stack.endpoint_url, env=CREDS)
    assert res.returncode == 0, res.stderr
    return "my-function"


@pytest.fixture(scope="module")
def extension_files():
    """The extensions installed into the server's directory (removed again at the end)."""
    res = run("extension", "install", "--json")
    assert res.returncode == 0, res.stderr
    yield [p for p in json.loads(res.stdout)["files"]]
    assert run("extension", "uninstall").returncode == 0


def _database(pg_cluster, local_stack, name: str) -> str:
    dsn = pg_cluster.create_database(name)
    # the endpoint, the documented way: on RDS the parameter group's aws_lambda.endpoint_override
    q(dsn, f"ALTER DATABASE {name} SET aws_lambda.endpoint_override = '{local_stack.endpoint_url}'")
    return dsn


@pytest.fixture(params=["extension", "spec"])
def flavour(request, pg_cluster, local_stack, function, tmp_path):
    """A database with the aws_lambda API: from the extension, or from a spec with rds_compat: true."""
    name = f"rds_{request.param}_{request.node.name[-20:].strip('[]').replace('-', '_')}".lower()
    dsn = _database(pg_cluster, local_stack, re.sub(r"\W", "_", name))
    if request.param == "extension":
        request.getfixturevalue("extension_files")
        script = DOC_SCRIPT
    else:
        spec = tmp_path / "rds.yaml"
        spec.write_text("project: rds\npostgres:\n  rds_compat: true\n")
        api.install(str(spec), dsn)
        script = DOC_SCRIPT.replace("CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;\n", "")
    return request.param, dsn, script


def _check_doc_output(out: str) -> None:
    got = steps(out)
    hello = {"body": "Hello from Postgres!", "Status": "OK"}
    for step in ("2args", "3args", "inline", "partial", "arn", "jsonb"):
        (row,) = got[step]
        assert row[0] == "200" and json.loads(row[1]) == hello and row[2] == "$LATEST", (step, row)
    (event,) = got["event"]
    assert event[0] == "202" and event[1] in ("", '""') and event[2] in ("", "$LATEST"), event
    (tail,) = got["tail"]
    assert tail[0] == "200" and tail[3] and "START RequestId" in tail[4] + "".join(got["tail"][0][4:]), tail
    for step in ("qualifier", "inline-qualifier"):
        (row,) = got[step]
        assert row[0] == "200" and json.loads(row[1]) == hello and row[2] == "1", (step, row)  # the alias's version


def test_the_documented_examples_run_verbatim(flavour):
    kind, dsn, script = flavour
    res = psql(dsn, script)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    _check_doc_output(res.stdout)
    if kind == "extension":
        assert q(dsn, "SELECT extname FROM pg_extension WHERE extname LIKE 'aws_%' ORDER BY 1") == [("aws_commons",), ("aws_lambda",)]


def test_the_documented_grants_are_enough(flavour):
    kind, dsn, script = flavour
    q(dsn, "DO $$ BEGIN CREATE ROLE db_username LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    q(dsn, "DO $$ BEGIN CREATE ROLE outsider LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    if kind == "extension":
        assert psql(dsn, "CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;").returncode == 0
    assert psql(dsn, DOC_GRANTS).returncode == 0
    body = script.replace("CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;\n", "")
    res = psql(dsn, body, user="db_username")
    assert res.returncode == 0, res.stderr[-3000:]
    _check_doc_output(res.stdout)
    denied = psql(dsn, f"SELECT * FROM aws_lambda.invoke('my-function', '{HELLO}'::json);", user="outsider")
    assert denied.returncode != 0 and "permission denied for schema aws_lambda" in denied.stderr


def test_the_documented_settings_are_honoured_within_the_security_rules(flavour, faults):
    kind, dsn, _ = flavour
    if kind == "extension":
        psql(dsn, "CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;")
    call = f"SELECT status_code FROM aws_lambda.invoke('my-function', '{HELLO}'::json)"
    faults.latency("my-function", 1500)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute(call).fetchone()[0] == 200  # documented default request timeout: 3000 ms
        conn.execute("SET aws_lambda.request_timeout_ms = 500")  # a session may lower it
        with pytest.raises(psycopg.Error) as err:
            conn.execute(call)
        assert err.value.sqlstate == "LA003"
        conn.execute("RESET aws_lambda.request_timeout_ms")
        # a session may not move the endpoint: its value is ignored, the DBA's is used
        conn.execute("SET aws_lambda.endpoint_override = 'http://127.0.0.1:1'")
        faults.clear()
        assert conn.execute(call).fetchone()[0] == 200
    # the DBA sets the timeout (as in a parameter group): a session may not raise it
    q(dsn, "ALTER DATABASE " + dsn.split("dbname=")[1].split()[0] + " SET aws_lambda.request_timeout_ms = 400")
    faults.latency("my-function", 1500)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET aws_lambda.request_timeout_ms = 60000")
        started = time.monotonic()
        with pytest.raises(psycopg.Error) as err:
            conn.execute(call)
        assert err.value.sqlstate == "LA003" and time.monotonic() - started < 1.4


def test_the_documented_conflicts_raise(flavour):
    kind, dsn, _ = flavour
    if kind == "extension":
        psql(dsn, "CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql, word in (
            (f"SELECT * FROM aws_lambda.invoke(aws_commons.create_lambda_function_arn("
             f"'arn:aws:lambda:us-west-2:{ACCOUNT}:function:my-function', 'us-east-1'), '{HELLO}'::json)", "conflicts"),
            (f"SELECT * FROM aws_lambda.invoke('arn:aws:lambda:us-west-2:{ACCOUNT}:function:my-function', '{HELLO}'::json, "
             "'us-east-1')", "conflicts"),
            (f"SELECT * FROM aws_lambda.invoke('my-function:custom_version', '{HELLO}'::json, qualifier => 'other')",
             "derived qualifier"),
        ):
            with pytest.raises(psycopg.Error) as err:
                conn.execute(sql)
            assert err.value.sqlstate == "22023" and word in err.value.diag.message_primary, sql


def test_pg_dump_carries_the_extension_and_restores(pg_cluster, local_stack, function, extension_files):
    src = _database(pg_cluster, local_stack, "rds_dump_src")
    assert psql(src, "CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;").returncode == 0
    from sqlambda.targets.postgres.cluster import pg_bindir

    dump = subprocess.run([str(pg_bindir() / "pg_dump"), "-d", src], capture_output=True, text=True, check=True).stdout
    assert "CREATE EXTENSION IF NOT EXISTS aws_lambda WITH SCHEMA aws_lambda;" in dump
    assert "CREATE FUNCTION aws_lambda.invoke" not in dump  # carried as an extension, not as loose objects
    dst = _database(pg_cluster, local_stack, "rds_dump_dst")
    res = psql(dst, "\\set ON_ERROR_STOP on\n" + dump)
    assert res.returncode == 0, res.stderr[-2000:]
    row = q(dst, f"SELECT status_code, payload::text FROM aws_lambda.invoke('my-function', '{HELLO}'::json)")[0]
    assert row[0] == 200 and json.loads(row[1])["Status"] == "OK"


def test_alter_extension_update_moves_to_the_installed_release(pg_cluster, local_stack, function, extension_files):
    directory = extension.extension_dir()
    try:
        extension.install(directory, package_version="0.0.9")  # what an older sqlambda installed
        dsn = _database(pg_cluster, local_stack, "rds_update")
        assert psql(dsn, "CREATE EXTENSION aws_lambda CASCADE;").returncode == 0
        assert q(dsn, "SELECT extversion FROM pg_extension WHERE extname = 'aws_lambda'") == [("1.0-0.0.9",)]
    finally:
        res = run("extension", "install", "--json")  # this release: writes 1.0-0.0.9 -> current
    assert res.returncode == 0 and any("1.0-0.0.9--1.0-" in f for f in json.loads(res.stdout)["files"])
    assert psql(dsn, "ALTER EXTENSION aws_commons UPDATE; ALTER EXTENSION aws_lambda UPDATE;").returncode == 0
    assert q(dsn, "SELECT extversion FROM pg_extension WHERE extname = 'aws_lambda'") == [(extension.version_of("aws_lambda"),)]
    assert q(dsn, f"SELECT status_code FROM aws_lambda.invoke('my-function', '{HELLO}'::json)") == [(200,)]


def test_extension_and_spec_do_not_fight(pg_cluster, local_stack, function, extension_files, tmp_path):
    dsn = _database(pg_cluster, local_stack, "rds_both")
    assert psql(dsn, "CREATE EXTENSION aws_lambda CASCADE;").returncode == 0
    spec = tmp_path / "rds.yaml"
    spec.write_text("project: rds\npostgres:\n  rds_compat: true\n")
    res = run("install", str(spec), "--dsn", dsn)
    assert res.returncode == 6 and "rds_compat" in res.stderr and "DROP EXTENSION" in res.stderr
    other = _database(pg_cluster, local_stack, "rds_both_other")
    api.install(str(spec), other)
    clash = psql(other, "CREATE EXTENSION aws_lambda CASCADE;")
    # PostgreSQL itself refuses to adopt sqlambda's objects into the extension
    assert clash.returncode != 0 and "not allowed to replace an object that it does not own" in clash.stderr
