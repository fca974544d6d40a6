"""The local stack is a development tool, not an open door (issue 13, property 3).

Whoever reaches its port can create a function and run code as the stack's user, so: loopback
unless ``--allow-remote`` says otherwise (with a warning), the admin endpoints (ours and moto's,
which can reset or dump every service) answer a non-loopback peer only with the token printed at
start, a handler never sees the stack's own AWS credentials, and a deleted function's warm workers
stop. The non-loopback peer is this machine's own non-loopback address: a connection to it arrives
from that address, not from 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sqlambda.devkit.deploy import deploy_source
from sqlambda.local import LocalStack
from sqlambda.local.faults import ADMIN_TOKEN_HEADER

pytestmark = pytest.mark.local_stack

SQLAMBDA = os.path.join(os.path.dirname(sys.executable), "sqlambda")


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (the peer address of a connection to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={ADMIN_TOKEN_HEADER: token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.2"])
def test_a_non_loopback_address_needs_allow_remote(host):
    for cmd in ([SQLAMBDA, "local", "start", "--host", host], [sys.executable, "-m", "sqlambda.local", "--host", host]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2, (cmd, res.stderr)
        assert "refusing to listen on" in res.stderr and "--allow-remote" in res.stderr
        assert "Traceback" not in res.stderr and res.stdout == ""


@pytest.fixture(scope="module")
def remote_stack():
    addr = _outside_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    stack = LocalStack(host="0.0.0.0", allow_remote=True)
    stack.start()
    yield stack, addr
    stack.stop()


def test_remote_mode_warns_and_guards_the_admin_endpoints(remote_stack):
    stack, addr = remote_stack
    port = stack.endpoint_url.rsplit(":", 1)[1]
    assert stack.admin_token and len(stack.admin_token) >= 24
    for path in ("/_sqlambda/health", "/_sqlambda/pids", "/_sqlambda/stats?function=x", "/moto-api/data.json"):
        status, _ = _get(f"http://{addr}:{port}{path}")
        assert status == 403, path
        status, _ = _get(f"http://{addr}:{port}{path}", token="wrong-" + stack.admin_token)
        assert status == 403, path
        status, _ = _get(f"http://{addr}:{port}{path}", token=stack.admin_token)
        assert status == 200, path
        status, _ = _get(f"http://127.0.0.1:{port}{path}")  # loopback peers need no token
        assert status == 200, path
    # faults can only be injected with the token from outside
    req = urllib.request.Request(f"http://{addr}:{port}/_sqlambda/faults", method="POST",
                                 data=json.dumps({"function": "x", "kind": "throttle", "count": 1}).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403


def test_remote_mode_prints_a_warning(tmp_path):
    proc = subprocess.Popen([SQLAMBDA, "local", "start", "--host", "0.0.0.0", "--allow-remote"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        token_line = proc.stdout.readline().strip()
        assert url.startswith("http://0.0.0.0:") and token_line.startswith("admin-token: ")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "WARNING" in err and "run code as user" in err


def test_handlers_never_see_the_stacks_own_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEYOFTHEDEV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret-of-the-developer")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-session-token")
    with LocalStack() as stack:
        deploy_source("env_dump", "import os\ndef handler(e, c):\n    return dict(os.environ)\n",
                      endpoint_url=stack.endpoint_url)
        out = json.loads(stack.client("lambda").invoke(FunctionName="env_dump")["Payload"].read())
    leaked = [k for k, v in out.items() if "real" in v.lower() or "AKIAREAL" in v]
    assert not leaked, leaked
    assert out["AWS_ACCESS_KEY_ID"] == "test" and "AWS_SESSION_TOKEN" not in out


def test_deleting_a_function_stops_its_warm_workers(local_stack):
    deploy_source("doomed", "def handler(e, c):\n    return 1\n", endpoint_url=local_stack.endpoint_url)
    client = local_stack.client("lambda")
    before = set(local_stack.pids()[1:])
    client.invoke(FunctionName="doomed")
    workers = set(local_stack.pids()[1:]) - before
    assert workers, "the invocation started no worker"
    client.delete_function(FunctionName="doomed")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers), "workers of a deleted function kept running"
    assert not workers & set(local_stack.pids()[1:])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
