"""``sqlambda local start --detach`` / ``local stop`` / ``local status``: the stack in the background.

Owns: starting ``python -m sqlambda.local`` in a session of its own (so a terminal's Ctrl-C or a
closing shell does not reach it), waiting for its endpoint URL, and the pid file that records it
(JSON: pid, endpoint URL, admin token, log file; mode 0600 because of the token); stopping it
through that file with SIGTERM (the server then stops its workers and removes its temporary
state), and SIGKILL to its whole process group only when it does not stop in time. A pid that no
longer belongs to a ``sqlambda.local`` process is never signalled (pids are reused).

Must not: import the server (it runs in the child) nor know anything about Lambda or moto.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlambda.errors import LocalStackError
from sqlambda.local import child_failure


def default_pid_file() -> Path:
    """``$XDG_RUNTIME_DIR/sqlambda-local.pid``, else ``~/.cache/sqlambda/local.pid``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "sqlambda-local.pid"
    return Path.home() / ".cache" / "sqlambda" / "local.pid"


def _read(pid_file: Path) -> dict | None:
    try:
        return json.loads(pid_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LocalStackError(f"cannot read the pid file {pid_file}: {exc}",
                              hint="remove it if no stack is running") from None


def _is_stack(pid: int) -> bool:
    """Is ``pid`` alive and a ``python -m sqlambda.local`` process (not a reused pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"sqlambda.local" in cmdline


def status(pid_file: Path | None = None) -> dict:
    """What the pid file records and whether that process is still the stack."""
    pid_file = Path(pid_file or default_pid_file())
    info = _read(pid_file)
    if info is None:
        return {"running": False, "pid_file": str(pid_file)}
    return {**info, "running": _is_stack(int(info["pid"])), "pid_file": str(pid_file)}


def start_detached(*, host: str = "127.0.0.1", port: int | None = None, state_dir: str | None = None,
                   allow_remote: bool = False, pid_file: Path | None = None, timeout: float = 60,
                   localstack: bool = False) -> dict:
    """Start the stack in the background; returns what was written to the pid file."""
    pid_file = Path(pid_file or default_pid_file())
    current = status(pid_file)
    if current["running"]:
        raise LocalStackError(f"a local stack is already running (pid {current['pid']}, {current['endpoint_url']})",
                              hint=f"sqlambda local stop --pid-file {pid_file}, or start another with a different --pid-file")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log = pid_file.with_suffix(".log")
    cmd = [sys.executable, "-m", "sqlambda.local", "--host", host, "--json"]
    if port is not None:
        cmd += ["--port", str(port)]
    if localstack:
        cmd.append("--localstack")
    if state_dir:
        cmd += ["--state-dir", state_dir]
    if allow_remote:
        cmd.append("--allow-remote")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while True:
        first = _first_json_line(log)
        if first is not None:
            break
        code = proc.poll()
        if code is not None or time.monotonic() > deadline:
            if code is None:
                _kill_group(proc.pid)
            raise child_failure(code, log.read_text(errors="replace"),
                                f"the local stack did not start within {timeout:g}s (log: {log})")
        time.sleep(0.05)
    info = {"pid": proc.pid, "endpoint_url": first["endpoint_url"], "admin_token": first.get("admin_token"),
            "log": str(log), "started_at": time.time()}
    tmp = pid_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, pid_file)
    return {**info, "pid_file": str(pid_file)}


def stop(pid_file: Path | None = None, timeout: float = 20) -> dict:
    """Stop the stack recorded in ``pid_file``. Nothing recorded, or a dead pid: nothing to stop."""
    pid_file = Path(pid_file or default_pid_file())
    info = _read(pid_file)
    if info is None:
        return {"stopped": False, "reason": "no stack recorded", "pid_file": str(pid_file)}
    pid = int(info["pid"])
    if not _is_stack(pid):
        pid_file.unlink(missing_ok=True)
        return {"stopped": False, "reason": f"pid {pid} is not running (stale pid file removed)", "pid_file": str(pid_file)}
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_stack(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    forced = _is_stack(pid)
    if forced:
        _kill_group(pid)
    pid_file.unlink(missing_ok=True)
    return {"stopped": True, "pid": pid, "forced": forced, "pid_file": str(pid_file)}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _first_json_line(log: Path) -> dict | None:
    try:
        with open(log, errors="replace") as fh:
            for line in fh:
                if line.startswith("{"):
                    try:
                        return json.loads(line)
                    except ValueError:
                        return None
    except FileNotFoundError:
        return None
    return None
