"""``sqlambda local``: a Docker-free local AWS stack that really executes Lambda handlers.

moto (server mode, in-process) serves the AWS APIs; sqlambda serves Invoke and runs handlers in
warm ``awslambdaric`` workers, runs the Kinesis and SQS event source mappings, and injects faults
into Invoke and into the services' data plane (see ``server``, ``invoke``, ``runtime``, ``esm``,
``faults``, ``service_faults``). This module
owns :class:`LocalStack`, the handle scripts and tests use to start the stack as a subprocess,
reach it and stop it. Everything else talks to the stack only through its endpoint URL, so the
same code runs against real AWS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request

from sqlambda.errors import EnvironmentProblem, LocalStackError, SqlambdaError, UsageError
from sqlambda.local.faults import ADMIN_TOKEN_HEADER, FaultClient, is_loopback

__all__ = ["LocalStack", "FaultClient", "require_extra"]

#: what the stack itself imports: the ``local`` extra (moto's server brings werkzeug)
_EXTRA_MODULES = ("werkzeug.serving", "moto.moto_server.werkzeug_app", "awslambdaric")


def require_extra() -> None:
    """Raise EnvironmentProblem (exit 10) naming the extra to install when the stack cannot run here."""
    import importlib

    for module in _EXTRA_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvironmentProblem(
                f"the local AWS stack needs the 'local' extra: {module.split('.')[0]} cannot be imported ({exc})",
                hint="pip install 'sqlambda[local]' (from a checkout: .ci/dev setup installs it)") from None


def child_failure(code: int | None, output: str, fallback: str) -> SqlambdaError:
    """The error a stack process that failed at start reported (its ``error:`` and ``hint:`` lines,
    never a traceback), as the same exception class its exit code stands for."""
    message = hint = None
    for line in output.splitlines():
        if line.startswith("error: ") and message is None:
            message = line.removeprefix("error: ").strip()
        elif line.startswith("hint: ") and hint is None:
            hint = line.removeprefix("hint: ").strip()
    if message is None:
        tail = output.strip()[-2000:]
        message = f"{fallback}: {tail}" if tail else fallback
    cls = {EnvironmentProblem.exit_code: EnvironmentProblem, UsageError.exit_code: UsageError}.get(code, LocalStackError)
    return cls(message, hint=hint)


class LocalStack:
    """Start ``python -m sqlambda.local`` in the background and talk to it."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, state_dir: str | None = None,
                 region: str = "us-east-1", allow_remote: bool = False, localstack: bool = False) -> None:
        self.host, self.port, self.state_dir, self.region = host, port, state_dir, region
        self.allow_remote, self.localstack = allow_remote, localstack
        self.proc: subprocess.Popen | None = None
        self.endpoint_url = ""
        #: printed by the stack when it listens beyond loopback; remote admin calls need it
        self.admin_token: str | None = None
        self.faults: FaultClient | None = None

    def start(self, timeout: float = 60) -> "LocalStack":
        cmd = [sys.executable, "-m", "sqlambda.local", "--host", self.host]
        if self.port is not None:
            cmd += ["--port", str(self.port)]
        if self.localstack:
            cmd.append("--localstack")
        if self.state_dir:
            cmd += ["--state-dir", self.state_dir]
        if self.allow_remote:
            cmd.append("--allow-remote")
        env = {**os.environ, "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
               "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].startswith("http"):
            code = self.proc.poll()
            err = self.proc.stderr.read() if code is not None else ""
            self.stop()
            raise child_failure(code, err, "the local stack did not start")
        self.endpoint_url = line[0].strip()
        if self.allow_remote and not is_loopback(self.host):
            self.admin_token = self.proc.stdout.readline().strip().split("admin-token: ", 1)[-1]
        self.faults = FaultClient(self.endpoint_url, self.admin_token)
        # drain stderr so a chatty server never blocks on a full pipe
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        return self

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self, service: str, **kw):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id="test", aws_secret_access_key="test", **kw)

    def _admin(self, what: str) -> dict:
        req = urllib.request.Request(f"{self.endpoint_url}/_sqlambda/{what}",
                                     headers={ADMIN_TOKEN_HEADER: self.admin_token} if self.admin_token else {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def pids(self) -> list[int]:
        """Process ids of the stack: the server first, then every live worker."""
        info = self._admin("pids")
        return [info["server"], *info["workers"]]

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for ln in fh:
                        if ln.startswith("VmRSS:"):
                            total += int(ln.split()[1]) * 1024
            except OSError:
                pass
        return total

