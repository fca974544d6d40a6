"""On Oracle, no procedure a caller can reach may change where a signed request goes (issue 13, §1).

What callers can execute is exactly what the installer GRANTs: the generic functions and the
wrappers. None of them takes a region, an endpoint or credentials; the configure_* call specs, the
runtime package and the Java class are granted to nobody, and the runtime package passes the spec's
constants. Checked on the rendered artifacts of a spec that uses every feature.
"""

from __future__ import annotations

import re
import types

from sqlambda.spec.model import Spec
from sqlambda.targets.oracle.render import render

SPEC = {
    "project": "reach",
    "aws": {"region": "eu-west-1", "endpoint_url": "https://lambda.eu-west-1.amazonaws.com"},
    "oracle": {"generic_roles": ["app_admin"], "scheduler_drain": True},
    "functions": [
        {"name": "order_status", "lambda": "echo", "roles": ["app_reader"], "args": {"order_id": "bigint", "note": "text"},
         "returns": {"type": "text", "path": "Status"}},
        {"name": "notify", "lambda": "echo", "mode": "async", "roles": ["app_writer"]},
    ],
    "triggers": [{"name": "o_out", "table": "orders", "columns": ["id"], "lambda": "echo", "delivery": "outbox"}],
}


def _artifacts():
    loaded = types.SimpleNamespace(spec=Spec.model_validate(SPEC), path="reach.yaml", checksum="9" * 64)
    return render(loaded).artifacts


def test_only_generic_functions_and_wrappers_are_granted_and_none_takes_settings():
    arts = _artifacts()
    granted = {dict(a.probe)["grant"] for a in arts if a.kind == "grant"}
    assert {"ORDER_STATUS", "NOTIFY", "AWSLAMBDA_FN", "AWSLAMBDA_FN_ASYNC"} <= granted
    assert granted <= {"AWSLAMBDA_FN", "AWSLAMBDA_FN_ASYNC", "AWSLAMBDA_PROC", "AWSLAMBDA_FN_CLOB",
                       "AWSLAMBDA_FN_ASYNC_CLOB", "ORDER_STATUS", "NOTIFY"}, granted
    by_name = {dict(a.probe).get("name"): a for a in arts if a.kind in ("function", "procedure", "wrapper")}
    for name in granted:
        header = "\n".join(by_name[name].statements).split("RETURN", 1)[0].lower()
        assert not re.search(r"region|endpoint|credential|proxy|access_key|secret", header), (name, header)
    # the grants name nothing else: no package, no Java class
    text = "\n".join(s for a in arts for s in a.statements)
    assert not re.search(r"GRANT\s+EXECUTE\s+ON\s+\S*(SQLAMBDA_JAVA|SQLAMBDA_RT|LambdaInvoke)", text, re.I)


def test_the_runtime_package_configures_the_spec_constants_only():
    rt = next(a for a in _artifacts() if "configures the Java client" in a.summary)
    body = "\n".join(rt.statements)
    assert ".configure('eu-west-1', 'https://lambda.eu-west-1.amazonaws.com');" in body
    spec_part = body.split("CREATE OR REPLACE PACKAGE BODY", 1)[0]
    declarations = [ln for ln in spec_part.splitlines() if not ln.strip().startswith("--")]
    # what the package offers (to its owner only): no procedure takes a region, an endpoint or a key
    # (the doctor's credentials_check/endpoint_check take nothing: they report what configure() set)
    decls = re.findall(r"^\s*(PROCEDURE|FUNCTION)\s+(\w+)\s*(\([^)]*\))?", "\n".join(declarations[1:]), re.M)
    assert len(decls) >= 5, declarations
    for _kind, name, params in decls:
        assert not re.search(r"region|endpoint|credential|proxy|key|secret|token", params, re.I), (name, params)
    checks = {name for _k, name, params in decls if re.search(r"region|endpoint|credential|proxy", name, re.I)}
    assert checks == {"credentials_check", "endpoint_check"}, checks
    assert all(not params for _k, name, params in decls if name in checks)
