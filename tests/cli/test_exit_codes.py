"""Every row of the README's exit-code table, as a user meets it: one real command per code.

The table is read from README.md, so a row added there without a case here fails
(``test_every_documented_exit_code_has_a_case``); a case whose command exits differently fails
too. No case may print a traceback.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import SQLAMBDA, hiding, no_traceback, run
from pg_helpers import dba_settings, q

pytestmark = pytest.mark.postgres

README = Path(__file__).resolve().parents[2] / "README.md"
BAD_DSN = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2"


def documented_codes() -> list[int]:
    text = README.read_text()
    table = text[text.index("### Exit codes"):]
    table = table[:table.index("\n\n", table.index("| code |"))]
    return [int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)]


@pytest.fixture
def fresh_db(pg_cluster, request):
    return pg_cluster.create_database("x_" + re.sub(r"\W", "_", request.node.name)[-40:].lower())


def _demo_step_fails(tmp_path, dsn):
    # the one place a plain SqlambdaError (1) arises: a demo step failing with an unexpected error;
    # run in-process with one step replaced, so no cluster is started for it
    from sqlambda.cli import cli, common
    from sqlambda.devkit import demo

    def boom(ctx):
        raise RuntimeError("disk on fire [/path] [red]")

    saved = demo.STEPS
    demo.STEPS = [demo.Step("explode", boom)]
    try:
        code = common.run_cli(cli, ["demo"])
    finally:
        demo.STEPS = saved
    return subprocess.CompletedProcess(["demo"], code, "", "")


def _interrupted(signum: int):
    def case(tmp_path, dsn):
        assert run("install", "--dsn", dsn).returncode == 0
        proc = subprocess.Popen([SQLAMBDA, "uninstall", "--dsn", dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # wait for the confirmation prompt (the command is then blocked reading stdin)
        deadline = time.monotonic() + 60
        buf = ""
        while "Remove every object" not in buf and time.monotonic() < deadline:
            buf += proc.stdout.read(1)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        # nothing was removed, and the message says how it ended
        assert q(dsn, "SELECT to_regprocedure('public.awslambda_fn(text,text)') IS NOT NULL")[0][0]
        assert f"stopped by {signal.Signals(signum).name}" in err
        return subprocess.CompletedProcess(proc.args, proc.returncode, buf + out, err)
    return case


def _port_in_use(tmp_path, dsn):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        res = run("local", "start", "--port", str(s.getsockname()[1]), "--json")
    assert json.loads(res.stdout)["error"] == "local" and "in use" in json.loads(res.stdout)["message"]
    return res


def _verify_drift(tmp_path, dsn):
    assert run("install", "--dsn", dsn).returncode == 0
    q(dsn, "DROP FUNCTION public.awslambda_fn_async(text, text)")
    return run("verify", "--dsn", dsn)


def _lambda_missing(tmp_path, dsn, stack):
    assert run("install", "--dsn", dsn).returncode == 0
    with dba_settings(dsn, endpoint_url=stack.endpoint_url):
        res = run("invoke", "no_such_function", "{}", "--dsn", dsn, "--json")
    assert json.loads(res.stdout)["details"]["sqlstate"] == "42883"
    return res


CASES = {
    0: lambda tmp_path, dsn: run("validate", "generator/examples/demo.yaml"),
    1: _demo_step_fails,
    # the JSON is checked before connecting: a DSN that cannot connect must not turn this into 5
    2: lambda tmp_path, dsn: run("invoke", "echo", "{not json", "--dsn", BAD_DSN),
    3: lambda tmp_path, dsn: run("validate", "tests/spec/bad/many_problems.yaml"),
    4: lambda tmp_path, dsn: (tmp_path.joinpath("s.yaml").write_text(
        "project: p\nfunctions:\n  - {name: f, lambda: x, args: {GD: text}}\n"),
        run("render", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")))[1],
    5: lambda tmp_path, dsn: run("doctor", "--dsn", BAD_DSN),
    6: lambda tmp_path, dsn: (tmp_path.joinpath("s.yaml").write_text(
        "project: p\npostgres: {generic_roles: [nobody_has_this_role]}\n"),
        run("install", str(tmp_path / "s.yaml"), "--dsn", dsn))[1],
    7: _verify_drift,
    8: _lambda_missing,
    9: _port_in_use,
    10: lambda tmp_path, dsn: run("local", "start", env=hiding(tmp_path / "hide", "werkzeug")),
    11: lambda tmp_path, dsn: run("doctor", "--dsn", dsn, "--endpoint-url", "http://127.0.0.1:1"),
    12: lambda tmp_path, dsn: run("drain", "--dsn", dsn),
    13: lambda tmp_path, dsn: run("lambdas", "deploy", "echo", "--endpoint-url", "http://127.0.0.1:1",
                                  env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}),
    129: _interrupted(signal.SIGHUP),
    130: lambda tmp_path, dsn: (run("install", "--dsn", dsn), run("uninstall", "--dsn", dsn, input="n\n"))[1],
    143: _interrupted(signal.SIGTERM),
}


def test_every_documented_exit_code_has_a_case():
    codes = documented_codes()
    assert codes == sorted(codes) and len(codes) >= 15, codes
    assert set(codes) == set(CASES), f"README rows without a case: {set(codes) - set(CASES)}; cases not in README: {set(CASES) - set(codes)}"


@pytest.mark.parametrize("code", sorted(CASES))
def test_exit_code(code, tmp_path, fresh_db, request, monkeypatch):
    monkeypatch.chdir(README.parent)
    case = CASES[code]
    if case is _lambda_missing:
        res = case(tmp_path, fresh_db, request.getfixturevalue("local_stack"))
    else:
        res = case(tmp_path, fresh_db)
    assert res.returncode == code, (res.stdout[-2000:], res.stderr[-2000:])
    no_traceback(res)
    if code not in (0, 1, 129, 130, 143):
        # a message for people on stderr, or one JSON error document on stdout for scripts
        assert "error:" in res.stderr or json.loads(res.stdout)["error"], res.stderr
