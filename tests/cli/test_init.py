"""`sqlambda init`: a valid commented starter spec, the examples for pip users, never an overwrite."""

from __future__ import annotations

import json

from cli_helpers import no_traceback, run

from sqlambda.spec.loader import load_spec_file


def test_init_writes_a_valid_commented_spec(tmp_path):
    res = run("init", str(tmp_path), "--project", "billing")
    assert res.returncode == 0, res.stderr
    spec = tmp_path / "sqlambda.yaml"
    text = spec.read_text()
    assert text.count("\n#") > 10  # commented, not a bare skeleton
    assert load_spec_file(str(spec)).spec.project == "billing"
    assert run("validate", str(spec)).returncode == 0


def test_init_never_overwrites_unless_forced(tmp_path):
    spec = tmp_path / "sqlambda.yaml"
    spec.write_text("project: mine\n")
    res = run("init", str(tmp_path), "--examples")
    assert res.returncode == 2 and "already exists" in res.stderr and "--force" in res.stderr
    assert spec.read_text() == "project: mine\n" and not (tmp_path / "sqlambda-examples").exists()  # nothing written
    forced = run("init", str(tmp_path), "--force", "--json")
    assert forced.returncode == 0 and json.loads(forced.stdout)["files"] == [str(spec)]
    assert "project: myapp" in spec.read_text()


def test_init_refuses_a_project_that_is_not_an_identifier(tmp_path):
    res = run("init", str(tmp_path), "--project", "my-app; drop")
    assert res.returncode == 2 and "not a SQL identifier" in res.stderr
    no_traceback(res)
    assert not (tmp_path / "sqlambda.yaml").exists()


def test_init_examples_are_laid_out_like_a_checkout(tmp_path):
    res = run("init", str(tmp_path), "--examples", "--json")
    assert res.returncode == 0, res.stderr
    root = tmp_path / "sqlambda-examples"
    for rel in ("generator/examples/scenarios.yaml", "generator/examples/demo.yaml",
                "sql/postgres/samples/scenario_tables.sql", "sql/postgres/samples/process_sensor_readings.sql",
                "lambdas/echo/handler.py", "lambdas/kinesis_reader/policy.json"):
        assert (root / rel).is_file(), rel
    # the README's scenario commands work from there
    assert run("validate", "generator/examples/scenarios.yaml", cwd=root).returncode == 0
