"""sqlambda's pytest plugin as a user's own test suite meets it: a separate pytest run (a
subprocess, so the plugin arrives through its ``pytest11`` entry point, not through this
project's conftest) in a folder holding nothing but the user's spec, a Lambda and tests.

Checked: the stack fixture with deploy and invoke helpers, a Lambda folder of the user's, fault
injection cleared between tests, the database fixture installing the spec named by the marker and
by the ini value (creating the roles it names), SQL calls reaching the stack.
"""

from __future__ import annotations

import textwrap

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack, pytest.mark.slow]

SPEC = """\
project: userproj
postgres:
  generic_roles: [app_admin]
functions:
  - name: greet
    lambda: greeter
    args: {name: text}
    returns: {type: text, path: hello}
    roles: [app_user]
"""

USER_TESTS = '''
import psycopg
import pytest


@pytest.fixture(scope="session")
def greeter(sqlambda_local, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fn") / "greeter"
    folder.mkdir()
    (folder / "handler.py").write_text("def handler(event, context):\\n    return {'hello': event['name']}\\n")
    sqlambda_local.deploy_folder(folder)
    return "greeter"


def test_stack_runs_my_lambda(sqlambda_local, greeter):
    assert sqlambda_local.invoke("greeter", {"name": "ada"}) == {"hello": "ada"}
    assert sqlambda_local.deploy("echo")[0]["name"] == "echo"
    assert sqlambda_local.invoke("echo", {"a": 1}) == {"a": 1, "Status": "OK"}


@pytest.mark.sqlambda_spec("spec.yaml")
def test_sql_calls_my_lambda(sqlambda_postgres, greeter):
    assert sqlambda_postgres.query("SELECT greet('bob')") == [("bob",)]
    roles = {r for (r,) in sqlambda_postgres.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'app_%'")}
    assert roles == {"app_user", "app_admin"}


def test_ini_spec_and_faults(sqlambda_postgres, sqlambda_faults, greeter):
    sqlambda_faults.throttle("greeter", count=10)
    with pytest.raises(psycopg.Error) as err:
        sqlambda_postgres.query("SELECT greet('eve')")
    assert err.value.sqlstate == "LA002"


def test_faults_were_cleared(sqlambda_postgres, greeter):
    assert sqlambda_postgres.query("SELECT greet('eve')") == [("eve",)]


def test_the_generic_function_is_there_too(sqlambda_postgres, greeter):
    assert sqlambda_postgres.query("SELECT awslambda_fn('greeter', '{\\"name\\": \\"zed\\"}')::jsonb ->> 'hello'") == [("zed",)]
'''


def test_a_user_suite_gets_the_fixtures_from_the_entry_point(pytester):
    pytester.makefile(".yaml", spec=SPEC)
    pytester.makeini("[pytest]\nsqlambda_spec = spec.yaml\n")
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=5)
