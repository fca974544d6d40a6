"""Every signal that ends the demo cleans up what the demo started.

``sqlambda demo`` runs as a user runs it, in a subprocess of its own session with a private TMPDIR
and a tag in its environment; it gets SIGINT, SIGTERM or SIGHUP at several steps (and while kept
running with ``--keep``). Afterwards no process may be left that carries the tag in its
environment, runs from or names the private TMPDIR (postgres, the local stack, its awslambdaric
workers), and the TMPDIR must be empty. Before the fix SIGTERM and SIGHUP left a running
postgres, the stack, a worker and the temporary folders.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from cli_helpers import SQLAMBDA

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack, pytest.mark.slow]


def _leftovers(tag: str, tmp: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if tag.encode() in environ or tmp.encode() in cmdline or cwd.startswith(tmp):
            found.append(f"{proc.name}: {cmdline.decode(errors='replace')[:200]}")
    return found


@pytest.mark.parametrize("signum,when", [
    (signal.SIGTERM, "[1/"),   # while PostgreSQL starts
    (signal.SIGHUP, "[3/"),    # cluster and stack up, deploying
    (signal.SIGINT, "[5/"),    # SQL calls in flight
    (signal.SIGTERM, "[8/"),   # outbox scenario: a drain running
    (signal.SIGHUP, "press Ctrl-C"),  # demo --keep, waiting
])
def test_a_signal_at_any_step_leaves_nothing_behind(signum, when):
    tmp = tempfile.mkdtemp(prefix="sqlambda-sig-")
    os.chmod(tmp, 0o755)  # the cluster's folder under it belongs to the postgres OS user
    tag = f"sqlambda-signal-test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    env.update(TMPDIR=tmp, SQLAMBDA_SIGNAL_TEST_TAG=tag)
    args = [SQLAMBDA, "demo"] + (["--keep"] if when == "press Ctrl-C" else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    lines: list[str] = []
    reached = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if when in line:
                reached.set()
        reached.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert reached.wait(240), "".join(lines)
        assert proc.poll() is None, "the demo ended before the signal: " + "".join(lines)
        time.sleep(0.3)  # inside the step, not at its first line
        proc.send_signal(signum)
        proc.wait(120)
        reader.join(10)
        out = "".join(lines)
        # --keep: a signal is the documented way to end it (exit 0); otherwise 128 + the signal
        assert proc.returncode == (0 if "--keep" in args else 128 + signum), out
        assert "Traceback" not in out, out
        deadline = time.monotonic() + 20
        while _leftovers(tag, tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _leftovers(tag, tmp) == [], out
        assert os.listdir(tmp) == [], out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
