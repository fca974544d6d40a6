"""What the CLI prints is the text it was given: no user or remote text is read as rich markup or
emoji codes, and piped output is never wrapped or cut.

Each case carries markup-like text through a different source: a spec path, a hint that names an
extra in brackets, a Lambda's errorMessage, a renderer message with an index, a long path, a
table cell. Before the fix the first crashed with rich.errors.MarkupError and the others lost
their bracketed words.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import hiding, no_traceback, run
from pg_helpers import dba_settings

MARKUP = "bad [order] 7 [/path] [red]x[/red] :smile: [bold]"


def test_a_spec_path_full_of_markup_is_printed_as_given(tmp_path):
    folder = tmp_path / "a[/path]" / f"{MARKUP}"
    folder.mkdir(parents=True)
    spec = folder / "spec [x].yaml"
    spec.write_text("project: p\nbogus_key: 1\n")
    res = run("validate", str(spec))
    assert res.returncode == 3, res.stderr
    no_traceback(res)
    assert str(spec) in res.stderr and "bogus_key" in res.stderr


def test_a_hint_naming_an_extra_keeps_its_brackets(tmp_path):
    res = run("plan", "--target", "oracle", "--dsn", "u/p@127.0.0.1:1/svc", env=hiding(tmp_path, "oracledb"))
    assert res.returncode == 10, res.stderr
    no_traceback(res)
    assert "pip install 'sqlambda[oracle]'" in res.stderr


def test_a_renderer_message_with_an_index_keeps_it(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("project: p\nfunctions:\n  - {name: f, lambda: x, args: {GD: text}}\n")
    res = run("render", str(spec), "-o", str(tmp_path / "out"))
    assert res.returncode == 4 and "functions[0].args: GD is reserved" in res.stderr, res.stderr


@pytest.mark.postgres
@pytest.mark.local_stack
def test_a_lambda_error_message_reaches_the_user_verbatim(pg_cluster, local_stack):
    from sqlambda.devkit.deploy import deploy_source

    deploy_source("markup_raiser", f"def handler(event, context):\n    raise ValueError({MARKUP!r})\n",
                  endpoint_url=local_stack.endpoint_url)
    dsn = pg_cluster.create_database("cli_markup")
    assert run("install", "--dsn", dsn).returncode == 0
    with dba_settings(dsn, endpoint_url=local_stack.endpoint_url):
        human = run("invoke", "markup_raiser", "{}", "--dsn", dsn)
        doc = json.loads(run("invoke", "markup_raiser", "{}", "--dsn", dsn, "--json").stdout)
    assert human.returncode == 8
    no_traceback(human)
    assert f"ValueError: {MARKUP}" in human.stderr
    assert f"ValueError: {MARKUP}" in doc["message"]


def test_piped_output_is_not_wrapped_or_cut(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60) / "out"
    res = run("render", "-o", str(deep), env={"COLUMNS": ""})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert f"wrote {deep / '00_core.sql'}" in lines and all(len(ln) > 80 for ln in lines)


@pytest.mark.postgres
def test_a_piped_table_keeps_whole_cells(pg_cluster):
    dsn = pg_cluster.create_database("cli_wide")
    doc = json.loads(run("doctor", "--dsn", dsn, "--endpoint-url", "http://127.0.0.1:1", "--json").stdout)
    settings = next(c for c in doc["details"]["checks"] if c["name"] == "settings")["detail"]
    assert len(settings) > 120
    human = run("doctor", "--dsn", dsn, "--endpoint-url", "http://127.0.0.1:1")
    assert human.returncode == 11
    row = next(ln for ln in human.stdout.splitlines() if " settings " in ln)
    assert settings in row
