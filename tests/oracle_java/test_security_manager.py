"""The Java client under a security manager with exactly the permissions the installer grants.

Oracle's JVM always runs a security manager: a schema's Java code has only the permissions granted
with DBMS_JAVA.GRANT_PERMISSION plus Oracle's defaults for PUBLIC. Here the JDK runs the client the
same way: ``-Djava.security.manager=default`` (installed at start) and a policy file generated from what the installer
renders for a spec (``render.java_permissions``, the same list the GRANT_PERMISSION blocks come
from), for each ``oracle.credentials`` source, plus ORACLE_PUBLIC below. The client's classes and the
test harness live in separate code bases; the harness has AllPermission, so every check sees the
client's permissions, as a definer's-rights call in Oracle would.

Then sync, async, CLOB, function error, timeout and throttle calls run against ``sqlambda local``.
A permission the code needs that the installer does not grant fails these tests; removing one
from the policy must give the client's own "permission" error naming it (never an uncaught
AccessControlException, which Oracle reports as ORA-29532 naming something else entirely).
Before this issue the default source failed every call with an uncaught AccessControlException
for SocketPermission 169.254.169.254:80: the getenv denial was swallowed and IMDS tried.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from imds_fake import _creds_doc
from ojava import HARNESSES, javac_or_skip, load_order

from sqlambda.spec.model import Spec
from sqlambda.targets.oracle import render as R

pytestmark = pytest.mark.local_stack

#: Oracle's default permissions for PUBLIC (Java Developer's Guide, "PUBLIC Default Permissions",
#: table 10-4 in 19c; the rows as DBA_JAVA_POLICY lists them for PUBLIC). Oracle-specific types
#: (oracle.aurora.security.JServerPermission) have no JDK counterpart and are left out.
ORACLE_PUBLIC = [
    ("java.util.PropertyPermission", "*", "read"),
    ("java.util.PropertyPermission", "user.language", "write"),
    ("java.util.PropertyPermission", "oracle.net.tns_admin", "write"),
    ("java.lang.RuntimePermission", "createSecurityManager", ""),
    ("java.lang.RuntimePermission", "exitVM", ""),
    ("java.lang.RuntimePermission", "getenv.ORACLE_HOME", ""),
    ("java.lang.RuntimePermission", "getenv.TNS_ADMIN", ""),
    ("java.lang.RuntimePermission", "modifyThread", ""),
    ("java.lang.RuntimePermission", "modifyThreadGroup", ""),
    ("java.lang.RuntimePermission", "preferences", ""),
]
CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@pytest.fixture(scope="session")
def split_build(tmp_path_factory):
    """The client (code base A) and the harnesses (code base B), compiled apart."""
    javac = javac_or_skip()
    if shutil.which("java") is None:
        pytest.skip("java not found on PATH")
    root = tmp_path_factory.mktemp("sm")
    a, b = root / "client", root / "harness"
    for out, sources, cp in ((a, load_order(), None), (b, HARNESSES, a)):
        cmd = [javac, "--release", "8", "-encoding", "UTF-8", "-d", str(out)] + (["-cp", str(cp)] if cp else [])
        res = subprocess.run(cmd + [str(p) for p in sources], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    return a, b


def _permissions(stack, source: str, imds_url: str | None = None) -> list[tuple[str, str, str]]:
    """What the installer grants for a spec calling ``stack`` with this credential source (the fake
    metadata server standing in for 169.254.169.254:80)."""
    oracle = {"credentials": source}
    if source == "provider":
        oracle["credentials_provider"] = "ProbeCredentialsProvider"
    spec = Spec.model_validate({"project": "sm", "aws": {"endpoint_url": stack.endpoint_url}, "oracle": oracle})
    perms = R.java_permissions(spec)
    if imds_url:
        perms = [(t, imds_url.split("//", 1)[1] if n == R.IMDS_HOST_PORT else n, a) for t, n, a in perms]
    return perms


def _policy(path: Path, build, perms) -> Path:
    client, harness = build
    lines = [f'grant codeBase "file:{harness}/-" {{ permission java.security.AllPermission; }};',
             f'grant codeBase "file:{client}/-" {{']
    for t, n, a in [*perms, *ORACLE_PUBLIC]:
        lines.append(f'  permission {t} "{n}"' + (f', "{a}"' if a else "") + ";")
    lines.append("};")
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(build, policy: Path, command: str, fn: str, payload: str, *, stack, env: dict, **props) -> dict:
    client, harness = build
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    args = [shutil.which("java"), "-Djava.security.manager=default", f"-Djava.security.policy=={policy}",
            "-cp", f"{client}:{harness}",
            f"-Dprobe.endpointUrl={stack.endpoint_url}", "-Dprobe.region=us-east-1", "-Dprobe.retryBaseDelayMs=20",
            *[f"-D{k.replace('_', '.')}={v}" for k, v in props.items()], "InvokeProbe", command, fn]
    res = subprocess.run(args, input=payload, capture_output=True, text=True, timeout=120, env={**base, **env})
    assert res.returncode == 0, f"the client failed outside its own errors:\n{res.stderr[-3000:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def failing(local_stack):
    from sqlambda.devkit.deploy import deploy_source

    deploy_source("sm_fails", "def handler(e, c):\n    raise ValueError('no such order')\n",
                  endpoint_url=local_stack.endpoint_url)
    return "sm_fails"


def _calls_work(build, policy, stack, faults, env, **props):
    got = _run(build, policy, "sync", "echo", '{"a": 1}', stack=stack, env=env, **props)
    assert got["ok"] and json.loads(got["result"])["Status"] == "OK", got
    assert _run(build, policy, "async", "echo", "{}", stack=stack, env=env, **props) == {"ok": True, "status": 202}
    got = _run(build, policy, "sync_clob", "echo", '{"big": "' + "x" * 40000 + '"}', stack=stack, env=env, **props)
    assert got["ok"], got
    got = _run(build, policy, "sync", "sm_fails", "{}", stack=stack, env=env, **props)
    assert got["kind"] == "function_error" and got["errorMessage"] == "no such order", got
    faults.latency("echo", 2000, count=1)
    got = _run(build, policy, "sync", "echo", "{}", stack=stack, env=env, probe_readTimeoutMs="400", **props)
    assert got["class"] == "sqlambda.LambdaTimeoutException", got
    faults.clear()
    faults.throttle("echo", count=None)
    got = _run(build, policy, "sync", "echo", "{}", stack=stack, env=env, probe_maxAttempts="2", **props)
    assert got["status"] == 429 and got["attempts"] == 2, got
    faults.clear()


@pytest.mark.parametrize("source", ["default", "environment"])
def test_environment_credentials(source, split_build, local_stack, echo_function, failing, faults, tmp_path):
    policy = _policy(tmp_path / "p.policy", split_build, _permissions(local_stack, source))
    _calls_work(split_build, policy, local_stack, faults, {**CREDS, "AWS_EC2_METADATA_DISABLED": "true"},
                probe_source=source)


@pytest.mark.parametrize("source", ["default", "imds"])
def test_instance_metadata_credentials(source, split_build, local_stack, echo_function, failing, faults, imds,
                                       tmp_path):
    imds.credentials = [_creds_doc("SMSM", dt.timedelta(hours=1))]
    policy = _policy(tmp_path / "p.policy", split_build, _permissions(local_stack, source, imds.url))
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}  # no keys in the environment: IMDS it is
    _calls_work(split_build, policy, local_stack, faults, env, probe_source=source)
    assert imds.served >= 1


def test_provider_credentials(split_build, local_stack, echo_function, failing, faults, tmp_path):
    policy = _policy(tmp_path / "p.policy", split_build, _permissions(local_stack, "provider"))
    _calls_work(split_build, policy, local_stack, faults, {}, probe_source="provider",
                probe_provider="ProbeCredentialsProvider")


@pytest.mark.parametrize("missing", ["getenv.AWS_SECRET_ACCESS_KEY", "socket"])
def test_a_permission_not_granted_is_named(missing, split_build, local_stack, echo_function, tmp_path):
    perms = _permissions(local_stack, "environment")
    endpoint = local_stack.endpoint_url.split("//", 1)[1]
    perms = [p for p in perms if p[1] != (endpoint if missing == "socket" else missing)]
    policy = _policy(tmp_path / "p.policy", split_build, perms)
    got = _run(split_build, policy, "sync", "echo", "{}", stack=local_stack, env=CREDS, probe_source="environment")
    assert got["ok"] is False and got["kind"] == "permission" and got["errorType"] == "JavaPermissionMissing", got
    named = "java.net.SocketPermission" if missing == "socket" else missing
    assert named in got["errorMessage"] and "DBMS_JAVA.GRANT_PERMISSION" in got["errorMessage"]
