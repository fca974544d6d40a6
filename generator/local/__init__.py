"""``sqlambda local``: a Docker-free local AWS stack that really executes Lambda handlers.

moto (server mode, in-process) serves the AWS APIs; sqlambda serves Invoke and runs handlers in
warm ``awslambdaric`` workers (see ``server``, ``invoke``, ``runtime``, ``faults``). This module
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

from sqlambda.errors import LocalStackError
from sqlambda.local.faults import ADMIN_TOKEN_HEADER, FaultClient, is_loopback

__all__ = ["LocalStack", "FaultClient"]


class LocalStack:
    """Start ``python -m sqlambda.local`` in the background and talk to it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state_dir: str | None = None, region: str = "us-east-1",
                 allow_remote: bool = False) -> None:
        self.host, self.port, self.state_dir, self.region = host, port, state_dir, region
        self.allow_remote = allow_remote
        self.proc: subprocess.Popen | None = None
        self.endpoint_url = ""
        #: printed by the stack when it listens beyond loopback; remote admin calls need it
        self.admin_token: str | None = None
        self.faults: FaultClient | None = None

    def start(self, timeout: float = 60) -> "LocalStack":
        cmd = [sys.executable, "-m", "sqlambda.local", "--host", self.host, "--port", str(self.port)]
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
            err = ""
            if self.proc.poll() is not None:
                err = self.proc.stderr.read()[-2000:]
            self.stop()
            raise LocalStackError(f"the local stack did not start: {err.strip() or 'no endpoint URL printed'}")
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

