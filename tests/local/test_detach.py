"""The local stack in the background (`local start --detach`, `local status`, `local stop`) and
what happens without the `local` extra.

The README's background recipe is run as written: start detached, use the endpoint, stop; then
nothing of the stack may be left (server, workers, its temporary state).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from cli_helpers import hiding, no_traceback, run

from sqlambda.errors import EnvironmentProblem

pytestmark = pytest.mark.local_stack


def _alive(pid: int) -> bool:
    try:
        return b"sqlambda.local" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_detach_status_stop_round_trip(tmp_path):
    pid_file = tmp_path / "stack.pid"
    state = tmp_path / "state"
    res = run("local", "start", "--detach", "--pid-file", str(pid_file), "--state-dir", str(state), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    pid, url = info["pid"], info["endpoint_url"]
    try:
        assert url.startswith("http://127.0.0.1:") and _alive(pid)
        assert oct(pid_file.stat().st_mode & 0o777) == "0o600"
        # it outlives the command that started it, and it runs functions
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        assert run("lambdas", "deploy", "echo", "--endpoint-url", url, env=env).returncode == 0
        import boto3

        lam = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test")
        assert json.loads(lam.invoke(FunctionName="echo", Payload=b'{"a": 1}')["Payload"].read())["Status"] == "OK"
        workers = json.loads(__import__("urllib.request").request.urlopen(f"{url}/_sqlambda/pids").read())["workers"]
        assert workers

        st = run("local", "status", "--pid-file", str(pid_file), "--json")
        assert st.returncode == 0 and json.loads(st.stdout)["endpoint_url"] == url
        again = run("local", "start", "--detach", "--pid-file", str(pid_file))
        assert again.returncode == 9 and "already running" in again.stderr

        stop = run("local", "stop", "--pid-file", str(pid_file), "--json")
        assert stop.returncode == 0 and json.loads(stop.stdout)["stopped"] is True
        assert json.loads(stop.stdout)["forced"] is False  # SIGTERM was enough: workers stopped by the server
        assert not _alive(pid) and not pid_file.exists()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{w}").exists() for w in workers)
        assert run("local", "status", "--pid-file", str(pid_file)).returncode == 9
        nothing = run("local", "stop", "--pid-file", str(pid_file))
        assert nothing.returncode == 0 and "nothing to stop" in nothing.stdout
    finally:
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_a_stale_pid_file_is_never_signalled(tmp_path):
    pid_file = tmp_path / "stack.pid"
    # a live process that is not the stack: our own test process
    pid_file.write_text(json.dumps({"pid": os.getpid(), "endpoint_url": "http://127.0.0.1:1"}))
    res = run("local", "stop", "--pid-file", str(pid_file))
    assert res.returncode == 0 and "not running" in res.stdout and not pid_file.exists()


def test_without_the_local_extra_every_entry_point_names_it(tmp_path, monkeypatch):
    env = hiding(tmp_path / "hide", "werkzeug")
    for args in (("local", "start"), ("local", "start", "--detach", "--pid-file", str(tmp_path / "p"))):
        res = run(*args, env=env)
        assert res.returncode == 10, res.stderr
        no_traceback(res)
        assert "pip install 'sqlambda[local]'" in res.stderr
    import subprocess
    import sys

    mod = subprocess.run([sys.executable, "-m", "sqlambda.local"], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=60)
    assert mod.returncode == 10 and "sqlambda[local]" in mod.stderr and "Traceback" not in mod.stderr
    # the library handle (what the demo and the pytest plugin use) raises the same problem
    from sqlambda.local import LocalStack

    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    with pytest.raises(EnvironmentProblem) as err:
        LocalStack().start()
    assert "local" in err.value.message and err.value.hint.startswith("pip install 'sqlambda[local]'")
