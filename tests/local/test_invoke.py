"""Invoke semantics of `sqlambda local`, each checked through a plain boto3 client against the real stack."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
import urllib.request
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sqlambda import resources
from sqlambda.devkit.deploy import build_zip, deploy_lambdas, deploy_source
from sqlambda.local import LocalStack


@pytest.fixture(scope="module")
def lam(local_stack):
    # max_attempts=1: these tests look at single responses, botocore must not retry 429/5xx
    return local_stack.client("lambda", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30))


def _json(resp) -> dict:
    return json.loads(resp["Payload"].read())


def test_request_response_returns_handler_result(lam, echo_function):
    resp = lam.invoke(FunctionName="echo", Payload=json.dumps({"n": 1, "s": "é"}))
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert _json(resp) == {"n": 1, "s": "é", "Status": "OK"}
    assert resp["ExecutedVersion"] == "$LATEST"


def test_event_returns_202_then_runs(local_stack, lam):
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket="evt")
    deploy_source("writer", "import boto3, json\ndef handler(e, c):\n    boto3.client('s3').put_object(Bucket='evt', Key=e['key'], Body=json.dumps(e))\n",
                  endpoint_url=local_stack.endpoint_url, timeout=10)
    key = uuid.uuid4().hex
    resp = lam.invoke(FunctionName="writer", InvocationType="Event", Payload=json.dumps({"key": key}))
    assert resp["StatusCode"] == 202
    for _ in range(100):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evt").get("Contents", [])]
        if key in keys:
            break
        time.sleep(0.1)
    assert key in keys, "the Event invocation never ran its handler"
    assert json.loads(s3.get_object(Bucket="evt", Key=key)["Body"].read()) == {"key": key}


def test_dry_run_returns_204_without_running(local_stack, lam, echo_function):
    before = local_stack.faults.stats("echo")["invocations"]
    resp = lam.invoke(FunctionName="echo", InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    assert local_stack.faults.stats("echo")["invocations"] == before


def test_handler_exception_is_unhandled_function_error(local_stack, lam):
    deploy_source("boom", "def handler(e, c):\n    raise ValueError('bad input: ' + str(e.get('x')))\n", endpoint_url=local_stack.endpoint_url)
    resp = lam.invoke(FunctionName="boom", Payload=b'{"x": 7}')
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = _json(resp)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad input: 7"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]


def test_timeout_kills_worker_and_next_call_succeeds(local_stack, lam):
    deploy_source("sleepy", "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return {'slept': e.get('s', 0)}\n",
                  endpoint_url=local_stack.endpoint_url, timeout=1)
    lam.invoke(FunctionName="sleepy", Payload=b'{"s": 0}')  # warm
    before = set(local_stack.pids())
    resp = lam.invoke(FunctionName="sleepy", Payload=b'{"s": 5}')
    assert resp["FunctionError"] == "Unhandled"
    body = _json(resp)
    assert body["errorType"] == "Sandbox.Timedout"
    assert "timed out after 1.00 seconds" in body["errorMessage"]
    resp = lam.invoke(FunctionName="sleepy", Payload=b'{"s": 0}')
    assert "FunctionError" not in resp and _json(resp) == {"slept": 0}
    after = set(local_stack.pids())
    assert before - after, "the timed-out worker should have been replaced"


def test_log_tail_is_last_4kb_base64(local_stack, lam):
    deploy_source("chatty", "def handler(e, c):\n    for i in range(e['n']):\n        print('line', i)\n    return 'ok'\n",
                  endpoint_url=local_stack.endpoint_url)
    resp = lam.invoke(FunctionName="chatty", Payload=b'{"n": 3}', LogType="Tail")
    log = base64.b64decode(resp["LogResult"]).decode()
    assert log.startswith("START RequestId:")
    assert "line 2" in log and "REPORT RequestId:" in log
    resp = lam.invoke(FunctionName="chatty", Payload=b'{"n": 2000}', LogType="Tail")
    raw = base64.b64decode(resp["LogResult"])
    assert len(raw) == 4096
    assert b"line 1999" in raw and b"line 0\n" not in raw
    assert "LogResult" not in lam.invoke(FunctionName="chatty", Payload=b'{"n": 1}')


def test_qualifiers_versions_and_aliases(local_stack, lam):
    url = local_stack.endpoint_url
    deploy_source("versioned", "def handler(e, c):\n    return 'v1'\n", endpoint_url=url)
    v1 = lam.publish_version(FunctionName="versioned")["Version"]
    lam.create_alias(FunctionName="versioned", Name="live", FunctionVersion=v1)
    deploy_source("versioned", "def handler(e, c):\n    return 'v2'\n", endpoint_url=url)
    assert _json(lam.invoke(FunctionName="versioned")) == "v2"
    assert _json(lam.invoke(FunctionName="versioned", Qualifier=v1)) == "v1"
    resp = lam.invoke(FunctionName="versioned", Qualifier="live")
    assert _json(resp) == "v1" and resp["ExecutedVersion"] == v1
    assert _json(lam.invoke(FunctionName="versioned:live")) == "v1"
    for kwargs in ({"FunctionName": "no-such-function"}, {"FunctionName": "versioned", "Qualifier": "nope"}):
        with pytest.raises(ClientError) as exc:
            lam.invoke(**kwargs)
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("itype,size", [("RequestResponse", 6 * 1024 * 1024 + 1), ("Event", 1024 * 1024 + 1)])
def test_oversized_payload_413(lam, echo_function, itype, size):
    body = b'"' + b"x" * (size - 2) + b'"'
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo", InvocationType=itype, Payload=body)
    assert exc.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_payload_just_under_limit_is_accepted(lam, echo_function):
    body = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
    assert lam.invoke(FunctionName="echo", InvocationType="Event", Payload=body)["StatusCode"] == 202


def test_non_json_body_400(lam, echo_function):
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo", Payload=b"{not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_reserved_concurrency_throttles_the_extra_call(local_stack, lam):
    deploy_source("narrow", "import time\ndef handler(e, c):\n    time.sleep(1.5)\n    return 1\n",
                  endpoint_url=local_stack.endpoint_url, timeout=10, reserved_concurrency=2)
    results: list = []

    def call():
        try:
            results.append(lam.invoke(FunctionName="narrow")["StatusCode"])
        except ClientError as exc:
            results.append(exc.response)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.7)  # both are running now (cold start included)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="narrow")
    for t in threads:
        t.join()
    err = exc.value.response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert results == [200, 200]


def test_workers_are_reused_and_several_serve_concurrent_calls(local_stack, lam):
    deploy_source("pidder", "import os, time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return os.getpid()\n",
                  endpoint_url=local_stack.endpoint_url, timeout=10)
    first = _json(lam.invoke(FunctionName="pidder"))
    assert all(_json(lam.invoke(FunctionName="pidder")) == first for _ in range(5))
    pids: list[int] = []
    threads = [threading.Thread(target=lambda: pids.append(_json(lam.invoke(FunctionName="pidder", Payload=b'{"s": 0.8}')))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 3


def test_update_code_and_configuration_take_effect(local_stack, lam):
    url = local_stack.endpoint_url
    deploy_source("mutable", "import os\ndef handler(e, c):\n    return ['a', os.environ.get('V')]\n", endpoint_url=url, environment={"V": "1"})
    assert _json(lam.invoke(FunctionName="mutable")) == ["a", "1"]
    lam.update_function_configuration(FunctionName="mutable", Environment={"Variables": {"V": "2"}})
    assert _json(lam.invoke(FunctionName="mutable")) == ["a", "2"]
    deploy_source("mutable", "import os\ndef handler(e, c):\n    return ['b', os.environ.get('V')]\n", endpoint_url=url, environment={"V": "2"})
    assert _json(lam.invoke(FunctionName="mutable")) == ["b", "2"]


def test_handler_sees_endpoint_and_function_env(local_stack, lam):
    deploy_source("envy", "import os\ndef handler(e, c):\n    return [os.environ['AWS_ENDPOINT_URL'], os.environ['MY'], c.function_name, c.get_remaining_time_in_millis() > 0]\n",
                  endpoint_url=local_stack.endpoint_url, environment={"MY": "x"})
    assert _json(lam.invoke(FunctionName="envy")) == [local_stack.endpoint_url, "x", "envy", True]


def test_fault_injection_throttle_5xx_latency_and_drop(local_stack, lam, echo_function, faults):
    faults.throttle("echo", 2)
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            lam.invoke(FunctionName="echo")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert lam.invoke(FunctionName="echo")["StatusCode"] == 200
    faults.server_error("echo", 1, status=503)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="echo")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    faults.latency("echo", 300, count=1)
    t = time.monotonic()
    assert lam.invoke(FunctionName="echo")["StatusCode"] == 200
    assert time.monotonic() - t >= 0.3  # the injected delay happened (a lower bound, not a speed claim)
    faults.drop("echo", 1)
    with pytest.raises(Exception) as exc:
        lam.invoke(FunctionName="echo")
    assert "Connection" in type(exc.value).__name__ or "connection" in str(exc.value).lower()
    assert lam.invoke(FunctionName="echo")["StatusCode"] == 200
    stats = faults.stats("echo")
    assert stats["throttled"] == 2 and stats["faults"] >= 5


def test_lambda_control_plane_and_services_through_moto(local_stack, echo_function):
    lam = local_stack.client("lambda")
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "echo" in names
    assert local_stack.client("sts").get_caller_identity()["Account"] == "123456789012"
    kin = local_stack.client("kinesis")
    kin.create_stream(StreamName="s1", ShardCount=1)
    assert kin.describe_stream_summary(StreamName="s1")["StreamDescriptionSummary"]["StreamName"] == "s1"
    cw = local_stack.client("cloudwatch")
    cw.put_metric_data(Namespace="T", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert cw.list_metrics(Namespace="T")["Metrics"]


def test_deploy_is_deterministic_and_idempotent(local_stack):
    folder = resources.folder("lambdas") / "echo"
    assert build_zip(folder) == build_zip(folder)
    rows = deploy_lambdas(["echo"], endpoint_url=local_stack.endpoint_url)
    rows2 = deploy_lambdas(["echo"], endpoint_url=local_stack.endpoint_url)
    assert rows2[0]["action"] == "unchanged" and rows2[0]["code_sha256"] == rows[0]["code_sha256"]
    live = deploy_lambdas(["echo"], endpoint_url=local_stack.endpoint_url, alias="live")
    assert live[0]["alias"].startswith("live -> ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_no_orphan_workers_after_stop(how):
    stack = LocalStack().start()
    try:
        url = stack.endpoint_url
        deploy_source("o1", "def handler(e, c):\n    return 1\n", endpoint_url=url)
        deploy_source("o2", "def handler(e, c):\n    return 2\n", endpoint_url=url)
        lam = stack.client("lambda")
        lam.invoke(FunctionName="o1")
        lam.invoke(FunctionName="o2")
        pids = stack.pids()
        assert len(pids) >= 3
    finally:
        if how == "stop":
            stack.stop()
        else:
            stack.proc.send_signal(signal.SIGKILL)
            stack.proc.wait(10)
    for _ in range(50):
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "worker processes outlived the stack"


def test_cli_prints_endpoint_first(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "sqlambda.cli", "local", "start", "--port", "0", "--state-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(line + "/_sqlambda/health", timeout=10) as r:
            assert json.loads(r.read())["status"] == "ok"
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_client_context_reaches_handler_decoded(local_stack, lam):
    deploy_source("ctx", "def handler(e, c):\n    return c.client_context.custom\n", endpoint_url=local_stack.endpoint_url)
    cc = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
    assert _json(lam.invoke(FunctionName="ctx", ClientContext=cc)) == {"tenant": "t1"}
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="ctx", ClientContext=base64.b64encode(b"not json").decode())
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_deploy_without_credentials_is_a_clear_error(local_stack, tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)  # no ~/.aws either
    res = subprocess.run([sys.executable, "-m", "sqlambda.cli", "lambdas", "deploy", "echo", "--endpoint-url", local_stack.endpoint_url],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 13
    assert "no AWS credentials found" in res.stderr and "Traceback" not in res.stderr


def test_deploy_to_unreachable_endpoint_is_a_clear_error():
    import socket

    from sqlambda.errors import DeployError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeployError) as exc:
        deploy_lambdas(["echo"], endpoint_url=f"http://127.0.0.1:{port}")
    assert "cannot reach" in exc.value.message
