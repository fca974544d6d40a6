"""plpython/sqlambda_http.py against botocore, the oracle: the same Invoke request, the same SigV4
signature, the same answer, on thousands of generated cases; and the kept-alive connection against a
real local HTTP server (reuse, a server that closed the idle connection, timeouts, threads).

botocore is driven through a real ``lambda`` client whose ``before-send`` hook captures the prepared
request (after signing) and answers with the raw response under test, so both sides see the same
bytes. Signing time is pinned through ``botocore.auth.get_current_datetime``.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import io
import json
import random
import re
import socket
import string
import threading
import time
from unittest import mock

import boto3
import botocore.auth
import botocore.session
import pytest
import sqlambda_core
import sqlambda_http
from botocore import exceptions as bx
from botocore.awsrequest import AWSResponse

ENDPOINTS = [
    "http://127.0.0.1:4566",
    "https://lambda.eu-west-1.amazonaws.com",
    "https://lambda.us-east-1.amazonaws.com:443",
    "http://localhost:80",
    "https://vpce-0abc.lambda.eu-central-1.vpce.amazonaws.com:8443",
    "http://[::1]:9001",
    "http://10.0.0.7:8080/prefix/path",
    "https://lambda.cn-north-1.amazonaws.com.cn/",
]
REGIONS = ["eu-west-1", "us-east-1", "cn-north-1", "us-gov-west-1", "ap-southeast-3", "il-central-1"]
NAME_CHARS = string.ascii_letters + string.digits + "-_"
ODD_CHARS = " %+~!$&'()*,;=@/?#[]é中\u00a0"


class _Raw(io.BytesIO):
    """The raw stream botocore reads: whole (``stream``) for a parsed answer, ``read`` for a Payload."""

    def stream(self, **_kw):
        yield self.getvalue()


def _client(endpoint, region, token, answer):
    """A botocore lambda client whose requests never leave: captured, then answered with ``answer()``."""
    session = botocore.session.get_session()
    c = session.create_client("lambda", region_name=region, endpoint_url=endpoint, aws_access_key_id="AKIDTEST",
                              aws_secret_access_key="s3cr3t/Key+x", aws_session_token=token,
                              config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    captured = []

    def before_send(request, **_kw):
        captured.append(request)
        status, headers, body = answer()
        return AWSResponse(request.url, status, headers, _Raw(body))

    c.meta.events.register("before-send", before_send)
    return c, captured


def _name(rnd: random.Random) -> str:
    kind = rnd.random()
    base = "".join(rnd.choice(NAME_CHARS) for _ in range(rnd.randint(1, 40)))
    if kind < 0.4:
        return base
    if kind < 0.6:
        return f"arn:aws:lambda:{rnd.choice(REGIONS)}:{rnd.randint(10**11, 10**12 - 1)}:function:{base}"
    if kind < 0.75:
        return f"{rnd.randint(10**11, 10**12 - 1)}:function:{base}:{rnd.choice(['$LATEST', 'v1', 'live'])}"
    # what botocore accepts is what must encode the same, whatever Lambda later says about it
    return base + "".join(rnd.choice(ODD_CHARS) for _ in range(rnd.randint(1, 6)))


def _case(rnd: random.Random) -> dict:
    payload = json.dumps({"k": rnd.random(), "s": "".join(rnd.choice(string.printable + "é中") for _ in range(rnd.randint(0, 80)))})
    return {
        "FunctionName": _name(rnd)[:170],
        "Payload": payload.encode() if rnd.random() < 0.9 else b"",
        "InvocationType": rnd.choice(["RequestResponse", "Event", "DryRun"]),
        "LogType": rnd.choice([None, "None", "Tail"]),
        "ClientContext": base64.b64encode(json.dumps({"custom": {"n": rnd.randint(0, 9**9)}}).encode()).decode()
        if rnd.random() < 0.3 else None,
        "Qualifier": rnd.choice([None, None, "$LATEST", "v12", "prod-2", "a b+c%/é"]),
        "when": datetime.datetime(2026, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59),
                                  rnd.randint(0, 59)),
    }


def _ours(endpoint, region, token, case):
    url, headers = sqlambda_http.invoke_request(endpoint.rstrip("/"), case["FunctionName"], case["Payload"],
                                                case["InvocationType"], case["LogType"], case["Qualifier"],
                                                case["ClientContext"])
    headers = sqlambda_http.sign("POST", url, headers, case["Payload"], "AKIDTEST", "s3cr3t/Key+x", token, region,
                                 "lambda", now=case["when"].timetuple())
    return url, headers


def _botocores(client, captured, case):
    kwargs = {k: v for k, v in case.items() if k != "when" and v is not None}
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=case["when"]):
        try:
            result = client.invoke(**kwargs)
        except bx.ClientError as exc:
            result = exc
    return captured.pop(), result


SEMANTIC = ("x-amz-invocation-type", "x-amz-log-type", "x-amz-client-context", "x-amz-date", "x-amz-security-token",
            "authorization")
BOTOCORE_ONLY = {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "content-length"}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_request_and_signature_equal_botocores_on_generated_requests(endpoint):
    rnd = random.Random(endpoint)
    checked = 0
    for region in rnd.sample(REGIONS, 3):
        token = rnd.choice([None, "FwoGZXIvYXdzE" + "".join(rnd.choice(string.ascii_letters + "/+=") for _ in range(60))])
        client, captured = _client(endpoint, region, token, lambda: (200, {}, b"{}"))
        for _ in range(120):
            case = _case(rnd)
            request, _ = _botocores(client, captured, case)
            url, headers = _ours(endpoint, region, token, case)
            theirs = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
            mine = {k.lower(): v for k, v in headers.items()}
            assert url == request.url, case
            assert request.body in (case["Payload"], None) and (request.body or b"") == case["Payload"]
            for name in SEMANTIC:
                assert mine.get(name) == theirs.get(name), (name, case, url)
            assert set(theirs) - set(mine) <= BOTOCORE_ONLY, set(theirs) - set(mine)
            assert set(mine) <= set(theirs), set(mine) - set(theirs)
            checked += 1
    assert checked == 360


def _answers(rnd: random.Random):
    """Raw Lambda answers: successes (with and without a function error, logs, versions) and errors as
    Lambda, moto and proxies send them."""
    ok = [
        (200, {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": "r1"}, b'{"ok": true}'),
        (200, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Log-Result": base64.b64encode(b"log\n").decode()},
         b'{"errorType": "ValueError", "errorMessage": "bad"}'),
        (202, {}, b""),
        (204, {}, b""),
        (200, {"X-Amz-Executed-Version": "7"}, "é中".encode() * rnd.randint(1, 50)),
    ]
    errors = [
        (404, {"x-amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws/"},
         b'{"Type": "User", "message": "Function not found: arn:aws:lambda:eu-west-1:1:function:x"}'),
        (404, {}, b'{"__type": "ResourceNotFoundException", "Message": "Function not found"}'),
        (429, {"x-amzn-ErrorType": "TooManyRequestsException"}, b'{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "message": "Rate exceeded"}'),
        (413, {"x-amzn-ErrorType": "RequestTooLargeException"}, b'{"message": "Request must be smaller than 6291456 bytes"}'),
        (400, {}, b'{"__type": "com.amazon.coral.validate#InvalidRequestContentException", "message": "Could not parse"}'),
        (403, {"x-amzn-ErrorType": "UnrecognizedClientException"}, b'{"message": "The security token included in the request is invalid."}'),
        (500, {"x-amzn-ErrorType": "ServiceException"}, b'{"message": "internal"}'),
        (502, {}, b"<html>Bad Gateway</html>"),
        (503, {}, b""),
        (400, {"x-amzn-ErrorType": "InvalidParameterValueException"}, b'{"code": "InvalidParameterValueException", "message": "x"}'),
    ]
    # and the cross product of what an error answer can carry (not a JSON array: botocore itself
    # fails on one with AttributeError, which sqlambda_http answers as an error with the status code)
    bodies = [b"", b"  ", b"<html><body>Service Unavailable</body></html>", b"not json", b"{}",
              b'{"message": "m1"}', b'{"Message": "m2", "Code": "SomeCode"}', b'{"__type": "a.b#TypeCode:x", "message": "m3"}',
              b'{"code": "c:d", "Message": "m4", "__type": "T"}', "{\"message\": \"é中\"}".encode()]
    types = [None, "ResourceNotFoundException", "ns#Thing:extra", "ServiceException:"]
    for _ in range(150):
        headers = {"x-amzn-RequestId": "rq"}
        t = rnd.choice(types)
        if t:
            headers["X-Amzn-ErrorType"] = t
        errors.append((rnd.choice([400, 401, 403, 404, 409, 413, 415, 429, 500, 502, 503, 504]), headers,
                       rnd.choice(bodies)))
    return ok, errors


def test_answers_parse_as_botocore_parses_them():
    rnd = random.Random(5)
    ok, errors = _answers(rnd)
    pending: list = []
    client, captured = _client("http://127.0.0.1:4566", "eu-west-1", None, lambda: pending.pop())
    for status, headers, body in ok + errors:
        pending.append((status, headers, body))
        case = {"FunctionName": "f", "Payload": b"{}", "InvocationType": "RequestResponse", "LogType": None,
                "ClientContext": None, "Qualifier": None, "when": datetime.datetime(2026, 12, 2)}
        _, theirs = _botocores(client, captured, case)
        lower = {k.lower(): v for k, v in headers.items()}
        if isinstance(theirs, bx.ClientError):
            with pytest.raises(bx.ClientError) as raised:
                sqlambda_http.response(status, lower, body)
            mine = raised.value.response
            assert mine["Error"]["Code"] == theirs.response["Error"]["Code"], (status, headers, body)
            assert mine["Error"]["Message"] == theirs.response["Error"].get("Message", ""), (status, body)
            assert mine["ResponseMetadata"]["HTTPStatusCode"] == status
            # and the classification a SQL caller sees is the same as for botocore's exception
            cfg = {"endpoint_url": "http://127.0.0.1:4566", "request_timeout_ms": 1000, "connect_timeout_ms": 100}
            a, b = (sqlambda_core.classify("f", e, cfg, "eu-west-1") for e in (raised.value, theirs))
            # the one difference, on purpose: botocore's own retries are off (sqlambda retries by
            # classification), so its "(reached max retries: 0)" said nothing true
            b_message = re.sub(r" \(reached max retries: \d+\)", "", b.message)
            assert (a.sqlstate, a.message, a.detail, a.hint, a.retryable) == \
                (b.sqlstate, b_message, b.detail, b.hint, b.retryable), (status, body)
        else:
            mine = sqlambda_http.response(status, lower, body)
            assert mine["Payload"] == theirs["Payload"].read()
            assert mine["StatusCode"] == theirs["StatusCode"]
            for key in ("FunctionError", "LogResult", "ExecutedVersion"):
                assert mine[key] == theirs.get(key), key


# -- the connection, against a real server ---------------------------------------------------------
class _Server:
    """A local HTTP/1.1 server: echoes each body with the connection's serial number; can close idle
    connections, stall, and counts what arrived."""

    def __init__(self) -> None:
        outer = self
        self.requests: list[bytes] = []
        self.connections = 0
        self.stall = 0.0
        self.close_after_each = False
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.connections += 1
                    self.serial = outer.connections

            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.requests.append(body)
                if outer.stall:
                    time.sleep(outer.stall)
                out = json.dumps({"echo": body.decode(), "conn": self.serial}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                if outer.close_after_each:
                    self.close_connection = True  # without "Connection: close": the client finds out later

            def log_message(self, *_a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.stop()


def _post(sender, body: bytes, read_timeout=5.0):
    status, _headers, data = sender.send(sender.endpoint_url + "/2015-03-31/functions/f/invocations",
                                         {"X-Amz-Invocation-Type": "RequestResponse"}, body, 2.0, read_timeout)
    return status, json.loads(data)


def test_one_connection_carries_many_calls(server):
    sender = sqlambda_http.Sender(server.url)
    answers = [_post(sender, b"%d" % i) for i in range(50)]
    assert [a[1]["echo"] for a in answers] == [str(i) for i in range(50)]
    assert server.connections == 1 and len(server.requests) == 50


def test_a_connection_the_server_closed_is_opened_again_and_the_request_arrives_once(server):
    server.close_after_each = True
    sender = sqlambda_http.Sender(server.url)
    conns = [_post(sender, b"%d" % i)[1]["conn"] for i in range(5)]
    time.sleep(0.05)
    assert len(set(conns)) == 5  # each call after the first found its kept connection closed
    assert server.requests == [b"%d" % i for i in range(5)]


def test_a_read_timeout_is_not_retried_here_and_raises_botocores_error(server):
    server.stall = 0.5
    sender = sqlambda_http.Sender(server.url)
    with pytest.raises(bx.ReadTimeoutError):
        _post(sender, b"slow", read_timeout=0.1)
    time.sleep(0.6)
    assert server.requests == [b"slow"]  # sent once: the function may be running
    server.stall = 0
    assert _post(sender, b"next")[1]["echo"] == "next"  # a fresh connection afterwards


def test_nothing_listening_raises_endpoint_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = sqlambda_http.Sender("http://127.0.0.1:%d" % port)
    with pytest.raises(bx.EndpointConnectionError):
        _post(sender, b"x")


def test_threads_sharing_one_gd_each_get_their_own_answer(server):
    """The drainer's workers share one GD: every answer must be the one to its own request."""
    gd = {"sqlambda.session": boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="eu-west-1")}
    client = gd["sqlambda.session"].client("lambda", endpoint_url=server.url)
    wrong: list = []
    barrier = threading.Barrier(8)

    def worker(n):
        barrier.wait()
        for i in range(60):
            body = b"%d-%d" % (n, i)
            _status, answer = _post(sqlambda_core._sender(gd, client), body)
            if answer["echo"] != body.decode():
                wrong.append((body, answer))

    errors: list = []

    def run(n):
        try:
            worker(n)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not wrong, (errors[:3], wrong[:3])
    assert sorted(server.requests) == sorted(b"%d-%d" % (n, i) for n in range(8) for i in range(60))


class _RawServer:
    """Answers every request with the next scripted bytes (then closes if the script says so)."""

    def __init__(self, script: list[tuple[bytes, bool]]) -> None:
        self.script = list(script)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.script:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while self.script:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    size = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                    while len(buf) < size:
                        buf += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + buf[:size])
                    buf = buf[size:]
                    answer, close = self.script.pop(0)
                    conn.sendall(answer)
                    if close:
                        break

    def stop(self):
        self.sock.close()


OK = b'{"ok":1}'


@pytest.mark.parametrize("answer,close,expected", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + OK, False, (200, OK)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"o\r\n5;ext=1\r\nk\":1}\r\n0\r\nX-Trailer: t\r\n\r\n", False, (200, OK)),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n" + OK, False, (200, OK)),
    (b"HTTP/1.0 200 OK\r\n\r\n" + OK, True, (200, OK)),  # no length: the body ends at close
    (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", True, (202, b"")),
    (b"HTTP/1.1 204 No Content\r\n\r\n", False, (204, b"")),
    (b"HTTP/1.1 429 Too Many\r\nX-Amzn-ErrorType: TooManyRequestsException\r\nSet: a\r\nSet: b\r\nContent-Length: 2\r\n\r\n{}",
     False, (429, b"{}")),
])
def test_every_http_1x_answer_shape_is_read_whole(answer, close, expected):
    server = _RawServer([(answer, close), (b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + OK, False)])
    try:
        sender = sqlambda_http.Sender(server.url)
        status, headers, data = sender.send(server.url + "/p", {"X-A": "1"}, b"body", 2.0, 5.0)
        assert (status, data) == expected
        if status == 429:
            assert headers["x-amzn-errortype"] == "TooManyRequestsException" and headers["set"] == "a, b"
        # and the next call on the same sender works, on the kept or a new connection
        assert sender.send(server.url + "/p", {}, b"again", 2.0, 5.0)[2] == OK
        assert server.requests[0].startswith(b"POST /p HTTP/1.1\r\nHost: 127.0.0.1:") and server.requests[0].endswith(b"body")
    finally:
        server.stop()


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH_9\r\n\r\n",  # not HTTP
    b"HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",  # closed mid-body
    b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"x" * 70000,  # headers without end
])
def test_a_broken_answer_is_a_connection_error_never_a_result(answer):
    server = _RawServer([(answer, True)])
    try:
        with pytest.raises(bx.ConnectionClosedError):
            sqlambda_http.Sender(server.url).send(server.url + "/p", {}, b"x", 2.0, 5.0)
        assert len(server.requests) == 1  # an answer had started: never sent twice
    finally:
        server.stop()


# -- found in review: each of these failed before its fix ---------------------------------------------
def _gd_cfg(url, attempts=3):
    gd = {"sqlambda.session": boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")}
    cfg = {"region": "us-east-1", "endpoint_url": url, "connect_timeout_ms": 2000, "request_timeout_ms": 5000,
           "max_attempts": attempts}
    return gd, cfg


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",  # cut off mid-body
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":",  # cut off mid-chunk
    b"HTTP/1.1 200 OK\r\nContent-Length: 8, 8\r\n\r\n" + OK,  # not a length
])
def test_an_answer_cut_off_is_never_sent_again(answer):
    """The function ran once its answer began: retrying would run it again (3 runs before the fix)."""
    server = _RawServer([(answer, True)] + [(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + OK, False)] * 3)
    try:
        gd, cfg = _gd_cfg(server.url)
        with pytest.raises(sqlambda_core.LambdaFailure) as e:
            sqlambda_core.invoke_raw(None, gd, "f", "{}", cfg=cfg)
        assert e.value.sqlstate == "LA004" and not e.value.retryable and "cut off" in e.value.message
        assert "was not called again" in e.value.hint
        time.sleep(0.2)
        assert len(server.requests) == 1
    finally:
        server.stop()


def test_a_stale_answer_on_an_idle_connection_is_never_read_as_the_next_one():
    """A server that sends 408 + close on an idle kept connection: the next call must go out on a new
    connection and get its own answer (before the fix it returned the 408, its request never sent)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    url = "http://127.0.0.1:%d" % sock.getsockname()[1]
    seen = []

    def serve():
        for n in range(2):
            conn, _ = sock.accept()
            with conn:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += conn.recv(65536)
                seen.append(buf)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + OK)
                if n == 0:
                    time.sleep(0.1)
                    conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                    time.sleep(0.3)

    threading.Thread(target=serve, daemon=True).start()
    try:
        sender = sqlambda_http.Sender(url)
        assert sender.send(url + "/p", {}, b"1", 2.0, 5.0)[0] == 200
        time.sleep(0.25)  # the 408 has arrived on the idle connection
        status, _h, data = sender.send(url + "/p", {}, b"2", 2.0, 5.0)
        assert (status, data) == (200, OK) and len(seen) == 2
    finally:
        sock.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" + OK,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n" * 11 + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + OK,
    b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 8\r\n\r\n" + OK,
])
def test_hostile_answers_are_refused_without_reading_them_whole(answer):
    server = _RawServer([(answer, True)])
    try:
        with pytest.raises(bx.ConnectionClosedError):
            sqlambda_http.Sender(server.url).send(server.url + "/p", {}, b"x", 2.0, 5.0)
    finally:
        server.stop()


def test_a_large_answer_is_read_in_linear_time():
    big = b"[" + b"1," * (3 * 1024 * 1024) + b"1]"
    server = _RawServer([(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big, False)])
    try:
        status, _h, data = sqlambda_http.Sender(server.url).send(server.url + "/p", {}, b"x", 2.0, 30.0)
        assert status == 200 and data == big
    finally:
        server.stop()


def test_a_resend_on_a_new_connection_counts_as_an_attempt():
    """max_attempts bounds what is really sent: the sender's own resend (a kept connection the server
    had closed) is one of them (before the fix: max_attempts + 1 requests, 'after N attempts' said N)."""
    drop = (b"", True)  # the server closes without answering
    # answered, the connection kept; the next request on it is dropped unanswered, as is its resend
    server = _RawServer([(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + OK, False), drop, drop, drop, drop])
    try:
        gd, cfg = _gd_cfg(server.url, attempts=2)
        assert sqlambda_core.invoke_raw(None, gd, "f", "{}", cfg=cfg)["payload"] == OK.decode()
        with pytest.raises(sqlambda_core.LambdaFailure) as e:
            sqlambda_core.invoke_raw(None, gd, "f", "{}", cfg=cfg)
        assert e.value.sqlstate == "LA004" and "(after 2 attempts)" in e.value.message
        time.sleep(0.2)
        assert len(server.requests) == 1 + 2
    finally:
        server.stop()


@pytest.mark.parametrize("name", [".", "..", "a/../b"])
def test_dot_segments_are_signed_as_botocore_signs_them(name):
    when = datetime.datetime(2026, 12, 2, 1, 2, 3)
    case = {"FunctionName": name, "Payload": b"{}", "InvocationType": "RequestResponse", "LogType": None,
            "ClientContext": None, "Qualifier": None, "when": when}
    client, captured = _client("http://127.0.0.1:4566", "us-east-1", None, lambda: (200, {}, b"{}"))
    request, _ = _botocores(client, captured, case)
    url, headers = _ours("http://127.0.0.1:4566", "us-east-1", None, case)
    assert url == request.url and headers["Authorization"] == request.headers["Authorization"].decode()


def test_nested_windows_never_share_a_connection(server):
    """A row image's own code can fire another immediate trigger while a window has calls in flight:
    the inner window must lease other connections (before the fix it reused slot 1 and the outer
    call's answer was lost)."""
    gd, cfg = _gd_cfg(server.url)
    outer = sqlambda_core.Window(None, gd, "f", "RequestResponse", None, cfg, 2)
    outer.submit('{"n": "outer-1"}')
    outer.submit('{"n": "outer-2"}')
    inner = sqlambda_core.Window(None, gd, "f", "RequestResponse", None, cfg, 2)
    inner.submit('{"n": "inner-1"}')
    assert inner.close() == 1
    assert outer.close() == 2
    assert sorted(json.loads(b)["n"] for b in server.requests) == ["inner-1", "outer-1", "outer-2"]
    assert not any(s.leased for s in gd["sqlambda.senders"].values())  # all given back
