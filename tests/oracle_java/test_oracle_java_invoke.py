"""LambdaInvoke on the real JVM against ``sqlambda local``: sync, async, function errors, the
function's own timeout, the client's read timeout, throttling and 5xx with retries, dropped
connections, CLOB payloads over the VARCHAR2 limit, and a DBA-configured credentials provider.

Every call goes through the real local stack (moto + awslambdaric workers); fault injection is
the stack's own (``faults`` fixture), so a retry is something the stack actually saw.
"""

from __future__ import annotations

import json
import time

import pytest

from sqlambda.devkit.deploy import deploy_source

pytestmark = pytest.mark.local_stack

WORKER_SOURCE = '''
import time


def handler(event, context):
    if event.get("fail"):
        raise ValueError("boom: " + event["fail"])
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0), "echo": event.get("echo")}
'''
WORKER = "ojava-worker"
WORKER_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def worker(local_stack):
    deploy_source(WORKER, WORKER_SOURCE, endpoint_url=local_stack.endpoint_url, timeout=WORKER_TIMEOUT_S)
    return WORKER


#: what the database server's environment holds inside Oracle: the credentials, IMDS switched off
ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}


def _props(stack, **extra) -> dict:
    """The probe's configure_* values (what the runtime package passes from the spec)."""
    props = {
        "probe.endpointUrl": stack.endpoint_url,
        "probe.region": "us-east-1",
        # Short backoff keeps retry tests quick; the backoff shape is the same.
        "probe.retryBaseDelayMs": "20",
    }
    props.update({k: str(v) for k, v in extra.items()})
    return props


def _call(java_build, stack, command: str, fn: str, payload: str = "", env=None, **props) -> dict:
    proc = java_build.run("InvokeProbe", command, fn, input=payload, props=_props(stack, **props), env=env or ENV)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sync_returns_the_function_result(java_build, local_stack, echo_function):
    payload = {"id": 42, "name": "Zoë 中文 😀", "nested": {"list": [1, 2, 3]}}
    got = _call(java_build, local_stack, "sync", "echo", json.dumps(payload, ensure_ascii=False))
    assert got["ok"] is True, got
    result = json.loads(got["result"])
    assert result["Status"] == "OK"
    assert {k: result[k] for k in payload} == payload


def test_async_is_accepted_with_202_and_runs(java_build, local_stack, echo_function, faults):
    before = faults.stats("echo").get("invocations", 0)
    got = _call(java_build, local_stack, "async", "echo", '{"async": true}')
    assert got == {"ok": True, "status": 202}
    # The event runs after the 202; wait for it (bounded), the assertion is on the count only.
    deadline = time.monotonic() + 30
    while faults.stats("echo").get("invocations", 0) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert faults.stats("echo").get("invocations", 0) > before


def test_function_error_carries_error_type_and_message(java_build, local_stack, worker):
    got = _call(java_build, local_stack, "sync", worker, '{"fail": "bad input"}')
    assert got["ok"] is False
    assert got["class"] == "sqlambda.LambdaFunctionException"
    assert got["kind"] == "function_error"
    assert got["errorType"] == "ValueError"
    assert got["errorMessage"] == "boom: bad input"
    assert got["message"] == f"Lambda {worker}: ValueError: boom: bad input"
    assert got["attempts"] == 1, "a function error is never retried"


def test_function_running_past_its_timeout_is_a_function_error(java_build, local_stack, worker):
    got = _call(java_build, local_stack, "sync", worker, json.dumps({"sleep": WORKER_TIMEOUT_S + 2}))
    assert got["ok"] is False
    assert got["class"] == "sqlambda.LambdaFunctionException"
    assert "timed out" in got["errorMessage"].lower()
    assert got["attempts"] == 1


def test_client_read_timeout_is_a_clear_timeout_exception(java_build, local_stack, worker):
    got = _call(java_build, local_stack, "sync", worker, json.dumps({"sleep": 1.5}),
                **{"probe.readTimeoutMs": 500})
    assert got["ok"] is False
    assert got["class"] == "sqlambda.LambdaTimeoutException"
    assert got["kind"] == "timeout"
    assert "500 ms" in got["message"] and "read timeout" in got["message"]
    assert got["attempts"] == 1, "a read timeout must not be retried: the function may be running"


def test_throttles_are_retried_until_the_call_succeeds(java_build, local_stack, echo_function, faults):
    before = faults.stats("echo")
    faults.throttle("echo", 2)
    got = _call(java_build, local_stack, "sync_detail", "echo", '{"n": 1}')
    assert got["ok"] is True, got
    assert got["attempts"] == 3
    assert json.loads(got["result"])["Status"] == "OK"
    after = faults.stats("echo")
    assert after.get("throttled", 0) - before.get("throttled", 0) == 2, after
    assert after["invocations"] - before["invocations"] >= 1


def test_throttles_beyond_max_attempts_raise_throttled(java_build, local_stack, echo_function, faults):
    faults.throttle("echo", 5)
    got = _call(java_build, local_stack, "sync", "echo", "{}", **{"probe.maxAttempts": 3})
    assert got["ok"] is False
    assert got["kind"] == "throttled" and got["status"] == 429
    assert got["attempts"] == 3


def test_server_errors_are_retried(java_build, local_stack, echo_function, faults):
    faults.server_error("echo", 1, status=503)
    got = _call(java_build, local_stack, "sync_detail", "echo", '{"x": 1}')
    assert got["ok"] is True, got
    assert got["attempts"] == 2


def test_dropped_connections_are_retried(java_build, local_stack, echo_function, faults):
    faults.drop("echo", 1)
    got = _call(java_build, local_stack, "sync_detail", "echo", '{"x": 2}')
    assert got["ok"] is True, got
    assert json.loads(got["result"])["x"] == 2


def test_clob_variant_carries_payloads_over_32k(java_build, local_stack, echo_function):
    big = "x" * 40_000 + "é中😀" * 2_000  # well past PL/SQL's 32767-byte VARCHAR2
    payload = json.dumps({"big": big}, ensure_ascii=False)
    assert len(payload.encode("utf-8")) > 32 * 1024
    got = _call(java_build, local_stack, "sync_clob", "echo", payload)
    assert got["ok"] is True, got
    assert got["clob_class"] == "javax.sql.rowset.serial.SerialClob"
    assert json.loads(got["result"])["big"] == big
    assert got["length"] == len(got["result"])


def test_unknown_function_is_a_not_found_error_without_retries(java_build, local_stack):
    got = _call(java_build, local_stack, "sync", "ojava-no-such-function", "{}")
    assert got["ok"] is False
    assert got["kind"] == "http" and got["status"] == 404
    assert got["errorType"] == "ResourceNotFoundException"
    assert got["attempts"] == 1


def test_invalid_function_name_is_rejected_before_any_call(java_build, local_stack):
    got = _call(java_build, local_stack, "sync", "no spaces/or slashes", "{}")
    assert got["ok"] is False
    assert got["kind"] == "config" and got["errorType"] == "InvalidFunctionName"
    assert got["attempts"] == 0


def test_refused_connection_retries_then_says_so(java_build, local_stack):
    # Port 9 on localhost is closed here; the retries must end in a clear connection error.
    got = _call(java_build, local_stack, "sync", "echo", "{}",
                **{"probe.endpointUrl": "http://127.0.0.1:9", "probe.maxAttempts": 2})
    assert got["ok"] is False
    assert got["kind"] == "connection" and got["attempts"] == 2
    assert "refused" in got["message"]


def test_configured_provider_supplies_credentials(java_build, local_stack, echo_function):
    props = _props(local_stack, **{"probe.provider": "ProbeCredentialsProvider"})
    proc = java_build.run("InvokeProbe", "sync_detail", "echo", input='{"p": 1}', props=props,
                          env={"AWS_EC2_METADATA_DISABLED": "true"})
    got = json.loads(proc.stdout.strip())
    assert got["ok"] is True, got
    assert got["providerCalls"] >= 1


def test_bad_provider_class_is_a_config_error(java_build, local_stack):
    got = _call(java_build, local_stack, "sync", "echo", "{}", **{"probe.provider": "no.such.Provider"})
    assert got["ok"] is False and got["kind"] == "config"
    assert "no.such.Provider" in got["message"]


def test_a_failing_provider_does_not_leak_its_secret_into_the_error(java_build, local_stack):
    got = _call(java_build, local_stack, "sync", "echo", "{}", **{"probe.provider": "LeakyProbeProvider"})
    assert got["ok"] is False and got["kind"] == "credentials"
    assert "LeakyProbeProvider" in got["message"]
    assert "AKIALEAKYLEAKY" not in got["message"] and "s3cr3t" not in got["message"]


def test_system_properties_a_session_can_set_never_move_the_request(java_build, local_stack, echo_function):
    """Any Oracle session may DBMS_JAVA.SET_PROPERTY before calling a definer's wrapper: endpoint,
    region, proxies, credentials and the metadata server set that way must all be ignored."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "security"))
    from listener import Listener

    lst = Listener().start()
    try:
        host, port = lst.url.split("//")[1].split(":")
        attacker = {
            "sqlambda.endpointUrl": lst.url, "sqlambda.region": "eu-west-3",
            "http.proxyHost": host, "http.proxyPort": port, "https.proxyHost": host, "https.proxyPort": port,
            "socksProxyHost": host, "socksProxyPort": port,
            "aws.accessKeyId": "AKIAATTACKER", "aws.secretAccessKey": "attacker", "sqlambda.imdsEndpoint": lst.url,
            "sqlambda.readTimeoutMs": "1", "sqlambda.maxAttempts": "1",
        }
        # as configured by the runtime package: region and endpoint from the spec
        got = _call(java_build, local_stack, "sync", "echo", '{"who": "caller"}', **attacker)
        assert got["ok"] is True and json.loads(got["result"])["who"] == "caller", got
        # with no endpoint in the spec: AWS's regional endpoint from the server's environment, never a property
        props = {k: v for k, v in _props(local_stack, **attacker).items() if k != "probe.endpointUrl"}
        proc = java_build.run("InvokeProbe", "sync", "echo", input="{}", props=props,
                              env={**ENV, "AWS_ENDPOINT_URL": local_stack.endpoint_url})
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["ok"] is True, got
        assert lst.take() == [], "a signed request reached the caller's listener"
    finally:
        lst.stop()


def test_the_runtime_package_can_see_a_java_state_reset(java_build, local_stack):
    """PL/SQL package state (g_configured) outlives a reset of the session's Java state (ORA-29549 after
    an upgrade, DBMS_JAVA.endsession); the runtime package therefore also asks the JVM, which must
    answer 0 after a reset so that it configures again instead of failing with "no AWS region"."""
    from sqlambda.spec.model import Spec
    from sqlambda.targets.oracle import render as R

    got = _call(java_build, local_stack, "reset_state", "-")
    assert got == {"ok": True, "before": 1, "after": 0}
    rt = next(a for a in R.render(Spec(project="p")).artifacts if "configures the Java client" in a.summary)
    assert '"SQLAMBDA_JAVA".is_configured() = 1' in "\n".join(rt.statements)


def test_the_doctor_checks_answer_from_the_client(java_build, local_stack, tmp_path):
    got = _call(java_build, local_stack, "doctor", "-")
    assert got["credentials"] == "ok: environment"
    assert got["endpoint"].startswith("ok: TCP connection to 127.0.0.1:")
    none = _call(java_build, local_stack, "doctor", "-", env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert none["credentials"].startswith("error: CredentialsError: no AWS credentials")


def test_the_doctor_sees_an_untrusted_tls_endpoint(java_build, local_stack, tmp_path):
    """An https endpoint whose certificate the JVM's trust store does not hold: what a database JVM
    without the Amazon root CA meets. The check must say so, naming the trust store."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        proc = java_build.run("InvokeProbe", "doctor", "-", input="", props={**_props(local_stack), "probe.endpointUrl": url},
                              env=ENV)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["endpoint"].startswith("error: TLS to 127.0.0.1:") and "trust store" in got["endpoint"], got
    finally:
        server.server_close()
