"""Oracle code written for the original call specs (oracle/sql/awslambda_ddl.sql of the awslabs
integration, kept verbatim in tests/compat/original/) after ``sqlambda install`` with no spec.

Checked against the original text itself: every function and procedure it declares exists with the
same name, parameters and return type (awslambda_proc included, which did not exist before); the
original's PUBLIC grants and synonyms only when the spec says so in words; nothing granted to
PUBLIC otherwise; awslambda_fn_async answers NULL like the original (it was '202'); and a function
error reaches SQLERRM as the original's ``java.lang.Exception: <error JSON>``, proven on the real JVM
against the local stack. Oracle itself cannot run here: the live side is in tests/oracle/test_live.py.
"""

from __future__ import annotations

import json
import re

import pytest
from compat_helpers import original

from sqlambda.targets.oracle import render as R
from sqlambda.targets.oracle.render import render

# the original's declarations: CREATE OR REPLACE FUNCTION|PROCEDURE name(params) [RETURN type]
DECL = re.compile(r"CREATE OR REPLACE (FUNCTION|PROCEDURE) ((?:\"?\w+\"?\.)?\"?\w+\"?)\(([^)]*)\)\s*(?:RETURN (\w+))?", re.I)


def _loaded(spec: dict | None):
    import hashlib
    import types

    from sqlambda.spec.model import Spec

    data = {"project": "orig", **(spec or {})}
    return types.SimpleNamespace(spec=Spec.model_validate(data), path="orig.yaml",
                                 checksum=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())


def _statements(spec: dict | None = None) -> list[str]:
    return [st for a in render(_loaded(spec)).artifacts for st in a.statements]


def _params(text: str) -> list[tuple[str, str]]:
    return [tuple(p.replace(" IN ", " ").split()[:2]) for p in (x.strip() for x in text.split(",")) if p]


def test_every_original_declaration_exists_with_its_signature():
    ours = {}
    for st in _statements():
        m = DECL.search(st)
        if m:
            name = m.group(2).split(".")[-1].strip('"').upper()
            ours[name] = (m.group(1).upper(), [(n.lower(), t.upper()) for n, t in _params(m.group(3))],
                          (m.group(4) or "").upper() or None)
    for kind, name, params, returns in DECL.findall(original("oracle_awslambda_ddl.sql")):
        want = (kind.upper(), [(n.lower(), t.upper()) for n, t in _params(params)], returns.upper() or None)
        assert ours.get(name.upper()) == want, (name, ours.get(name.upper()), want)


def test_nothing_is_granted_to_public_unless_the_spec_says_so():
    from sqlambda import resources

    for example in sorted(resources.examples().glob("*.yaml")):
        from sqlambda.spec.loader import load_spec_file

        loaded = load_spec_file(str(example))
        if any(t.sink for t in loaded.spec.triggers):
            continue  # sinks are PostgreSQL-only: Oracle refuses the spec at render (tests/golden shows it)
        for st in (s for a in render(loaded).artifacts for s in a.statements):
            assert not re.search(r"\bTO\s+\"?PUBLIC\b|PUBLIC\s+SYNONYM", st, re.I), (example.name, st[:200])
    granted = [st for st in _statements({"oracle": {"generic_roles": ["PUBLIC"]}}) if st.startswith("GRANT")]
    assert sorted(granted) == sorted(f'GRANT EXECUTE ON "{n}" TO PUBLIC' for n in R.GENERIC)


def test_public_and_private_synonyms_on_request():
    originals = re.findall(r"CREATE OR REPLACE PUBLIC SYNONYM (\w+) FOR (\w+);", original("oracle_awslambda_ddl.sql"))
    public = [st for st in _statements({"oracle": {"synonyms": "public"}}) if "SYNONYM" in st]
    for name, target in originals:
        assert f'CREATE OR REPLACE PUBLIC SYNONYM "{name.upper()}" FOR "{target.upper()}"' in public
    private = [st for st in _statements({"oracle": {"schema": "lambda_owner", "synonyms": ["app1", "app2"]}})
               if "SYNONYM" in st]
    assert 'CREATE OR REPLACE SYNONYM "APP1"."AWSLAMBDA_FN" FOR "LAMBDA_OWNER"."AWSLAMBDA_FN"' in private
    assert 'CREATE OR REPLACE SYNONYM "APP2"."AWSLAMBDA_PROC" FOR "LAMBDA_OWNER"."AWSLAMBDA_PROC"' in private
    assert not any("PUBLIC" in st for st in private)
    arts = {a.key: a for a in render(_loaded({"oracle": {"synonyms": "public"}})).artifacts}
    assert arts["synonym PUBLIC.AWSLAMBDA_FN"].drop == ('DROP PUBLIC SYNONYM "AWSLAMBDA_FN"',)


def test_async_answers_null_as_the_original_did():
    (fn,) = [st for st in _statements() if re.search(r'FUNCTION "AWSLAMBDA_FN_ASYNC"\(', st)]
    assert "RETURN NULL;" in fn and "TO_CHAR" not in fn


@pytest.mark.local_stack
def test_a_function_error_reaches_sqlerrm_as_the_original_exception(java_build, local_stack, echo_function):
    """The original class threw ``new Exception(result)``: code reads the error JSON out of SQLERRM."""
    from sqlambda.devkit.deploy import deploy_source

    deploy_source("orig_fails", "def handler(e, c):\n    raise ValueError('bad order 7')\n",
                  endpoint_url=local_stack.endpoint_url)
    props = {"probe.endpointUrl": local_stack.endpoint_url, "probe.region": "us-east-1"}
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}
    proc = java_build.run("InvokeProbe", "sync_original", "orig_fails", input="{}", props=props, env=env)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["class"] == "java.lang.Exception"
    # what Oracle puts in SQLERRM: ORA-29532: Java call terminated by uncaught Java exception: <toString()>
    sqlerrm = "ORA-29532: Java call terminated by uncaught Java exception: " + got["toString"]
    error = json.loads(sqlerrm[sqlerrm.index("{"):])  # how code written for the original reads it
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "bad order 7"
    ok = java_build.run("InvokeProbe", "sync_original", "echo", input='{"name":"bob"}', props=props, env=env)
    assert json.loads(json.loads(ok.stdout.strip().splitlines()[-1])["result"])["name"] == "bob"
