"""`sqlambda demo` end to end, as a user runs it: a subprocess that starts its own PostgreSQL cluster
and local AWS stack, installs the demo spec and calls Lambda from SQL; exit code and output checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sqlambda import resources
from sqlambda.devkit import demo

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack, pytest.mark.slow]


def test_demo_spec_is_valid_and_renders():
    import types

    import yaml

    from sqlambda.spec.model import Spec
    from sqlambda.targets.postgres.render import render_postgres

    spec = Spec.model_validate(yaml.safe_load((resources.examples() / "demo.yaml").read_text()))
    artifacts = render_postgres(types.SimpleNamespace(spec=spec, path="demo.yaml", checksum="0" * 64))
    keys = {a.key for a in artifacts}
    # every wrapper the demo calls exists in the spec it installs, and every role it uses is created
    for name in ("order_status(bigint,text)", "order_echo(bigint)", "order_notify(text)"):
        assert f"function public.{name}" in keys
    assert {c.role for c in demo.CALLS if c.role} <= set(demo.DEMO_ROLES)
    assert {v for a in artifacts for k, v in a.probe if k == "role"} <= set(demo.DEMO_ROLES)


def test_sqlambda_demo_runs_end_to_end():
    if not hasattr(pytest.importorskip("sqlambda.local"), "LocalStack"):
        pytest.skip("sqlambda.local.LocalStack has not landed yet")
    pytest.importorskip("sqlambda.devkit.deploy")
    pytest.importorskip("sqlambda.spec.loader")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    exe = os.path.join(os.path.dirname(sys.executable), "sqlambda")
    res = subprocess.run([exe, "demo", "--json"], capture_output=True, text=True, timeout=300,
                         env={**env, "COLUMNS": "200"})
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] is True and len(doc["calls"]) == len(demo.CALLS)
    by_label = {c["label"]: c for c in doc["calls"]}
    assert '"Status": "OK"' in by_label["generic, synchronous"]["result"]
    assert by_label["typed wrapper -> text"]["result"] == "OK"
    assert by_label["an error, caught: unknown function"]["result"].startswith("ERROR [42883]")
    assert f"[5/{len(demo.STEPS)}] call Lambda from SQL" in res.stderr  # progress goes to stderr in --json mode
    # the five scenarios ran and each saw on the AWS side what SQL sent
    assert [(x["scenario"], x["ok"]) for x in doc["scenarios"]] == [
        ("CloudWatch metrics", True), ("Firehose to Redshift", True), ("Kinesis reads", True),
        ("Modernize price_quote()", True), ("Event sinks without DMS", True)]
    assert "60 equal to their reading" in doc["scenarios"][0]["seen"]
    assert "(25 insert, 5 update, 2 delete)" in doc["scenarios"][1]["seen"]
    assert "170 rows read" in doc["scenarios"][2]["seen"]
    assert "2 seeded mismatch(es) found, then 8/8 match" in doc["scenarios"][3]["seen"]
    assert "rollback exact" in doc["scenarios"][3]["seen"]
    assert "6/6 order views in S3 equal to SQL's join" in doc["scenarios"][4]["seen"]
    assert "4/4 groups in order" in doc["scenarios"][4]["seen"]
    # the human rendering shows the same calls, and cleans up after itself
    human = subprocess.run([exe, "demo"], capture_output=True, text=True, timeout=300, env={**env, "COLUMNS": "200"})
    assert human.returncode == 0, human.stdout + human.stderr
    assert "SQL calls through the bridge" in human.stdout and f"{len(demo.CALLS)}/{len(demo.CALLS)} calls and 5/5 scenarios as expected" in human.stdout
    assert "Scenarios: what went in, what arrived" in human.stdout
