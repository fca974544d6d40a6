"""The local AWS endpoint: one port, moto for the services, sqlambda for Invoke and admin.

Owns: the WSGI front that routes ``POST /2015-03-31/functions/*/invocations`` to
:class:`~sqlambda.local.invoke.InvokeService`, ``/_sqlambda/*`` to the admin API (faults, stats,
pids, health) and everything else to moto's in-process server app (Lambda control plane,
CloudWatch, CloudWatch Logs, Kinesis, Firehose, S3, IAM, STS, ...), data-plane calls through the
fault table's service rules first (``service_faults``); starting it on a free port with the event
source mappings' pollers (``esm``), printing the endpoint URL as the first line on stdout, and
stopping the pollers and every worker on SIGINT/SIGTERM/SIGHUP.

It is a development tool: whoever reaches the port can create a function and run code as the
stack's user. So it binds to loopback unless told otherwise with ``allow_remote`` (and then warns
on stderr), the admin endpoints (``/_sqlambda/*`` and moto's ``/moto-api/*``, which can reset or
dump every service's state) answer only to loopback peers or to the admin token printed at start,
and handlers never see the stack's own AWS credentials (they get the local stack's test ones).
Deleting a function stops its warm workers.
"""

from __future__ import annotations

import errno
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from urllib.parse import parse_qs, unquote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sqlambda.errors import LocalStackError, UsageError
from sqlambda.local import moto_patches
from sqlambda.local.esm import EventSourcePoller
from sqlambda.local.faults import ADMIN_TOKEN_HEADER, FaultTable, is_loopback
from sqlambda.local.invoke import INVOKE_RE, InvokeService, _Dropped
from sqlambda.local.service_faults import ServiceFaults

_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
            413: "Request Entity Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class _QuietHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # see runtime._RuntimeHandler: avoids 40 ms delayed-ACK stalls
    server: "BaseWSGIServer"

    def log_request(self, *args, **kwargs) -> None:
        pass

    def run_wsgi(self) -> None:
        # Invoke is the hot path: werkzeug's full environ building and response writer cost about
        # as much as the whole boto3 round trip, so Invoke is answered straight from the parsed
        # request in one write. Everything else (moto, admin, chunked bodies) goes through WSGI.
        path, _, query = self.path.partition("?")
        if (self.command == "POST" and INVOKE_RE.match(path)
                and "chunked" not in self.headers.get("Transfer-Encoding", "").lower()):
            self._invoke(path, query)
        else:
            super().run_wsgi()

    def _invoke(self, path: str, query: str) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": query,
                   "CONTENT_LENGTH": self.headers.get("Content-Length") or "0",
                   "wsgi.input": self.rfile, "werkzeug.socket": self.connection}
        for name in ("Authorization", "X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Client-Context"):
            value = self.headers.get(name)
            if value is not None:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        try:
            status, headers, body = self.server.app.invoke.handle(environ)
        except _Dropped:
            self.close_connection = True
            return
        except Exception:  # a bug here must answer like AWS's 500, not kill the connection
            traceback.print_exc()
            status, headers = 500, {"x-amzn-ErrorType": "ServiceException", "Content-Type": "application/json"}
            body = b'{"Type":"Service","message":"internal error in sqlambda local (see its stderr)"}'
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def _inflate_api_request(environ: dict) -> dict:
    """Hand moto an API request body that botocore gzipped (request compression) already inflated.

    botocore compresses large request bodies (PutMetricData over 10 KB, i.e. more than ~80
    datums, with ``Content-Encoding: gzip``). moto 5.x in server mode inflates such a body twice
    (``moto_server/utilities.py`` wraps the stream in GzipFile, then ``BaseResponse.setup_class``
    decompresses again) and answers 500 BadGzipFile. Only query and JSON protocol requests are
    inflated here: for S3, ``Content-Encoding`` describes the stored object and must be kept.
    """
    if environ.get("HTTP_CONTENT_ENCODING", "").strip().lower() != "gzip":
        return environ
    ctype = environ.get("CONTENT_TYPE", "")
    if not (environ.get("HTTP_X_AMZ_TARGET") or ctype.startswith("application/x-www-form-urlencoded")
            or ctype.startswith("application/x-amz-json")):
        return environ
    import gzip
    import io

    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = gzip.decompress(environ["wsgi.input"].read(n))
    environ = dict(environ, CONTENT_LENGTH=str(len(body)))
    environ["wsgi.input"] = io.BytesIO(body)
    del environ["HTTP_CONTENT_ENCODING"]
    return environ


#: DeleteFunction: DELETE /2015-03-31/functions/{name}
_DELETE_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/?$")
#: moto's Kinesis numbers a shard's next record as "the highest so far + 1" without a lock, so two
#: PutRecords at once (two drainers, a poller's checkpoint...) can get one number and the later
#: overwrite the earlier record: found losing 2.5% of 100,000 records with two drainers. Kinesis
#: calls are short (no long polls), so they go through moto one at a time.
_KINESIS_LOCK = threading.Lock()


def _serialized(environ: dict) -> bool:
    return environ.get("HTTP_X_AMZ_TARGET", "").startswith("Kinesis_20131202.")


#: CreateEventSourceMapping (POST) and DeleteEventSourceMapping (DELETE .../{uuid})
_EVENT_SOURCE_MAPPINGS = re.compile(r"^/2015-03-31/event-source-mappings(?:/[^/]+)?/?$")


#: CreateFunction (POST /2015-03-31/functions) and UpdateFunctionConfiguration (PUT .../configuration)
_FUNCTION_ROLE_CALL = re.compile(r"^/2015-03-31/functions(?:/[^/]+/configuration)?/?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::(?P<account>\d{12}):role/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]+)$")
_LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]})


class Front:
    """WSGI application in front of moto."""

    def __init__(self, invoke: InvokeService, faults: FaultTable, admin_token: str | None = None,
                 localstack: bool = False, esm: EventSourcePoller | None = None) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.moto = DomainDispatcherApplication(create_backend_app)
        self.invoke = invoke
        self.faults = faults
        self.service_faults = ServiceFaults(faults, self._forward)
        #: the event source mappings' pollers, told at once when a mapping is created or deleted
        self.esm = esm
        #: None: the stack listens on loopback only, where every peer is local
        self.admin_token = admin_token
        #: LocalStack's conventions (see ``serve``): a function's role need not have been created
        self.localstack = localstack

    def _admin_allowed(self, environ) -> bool:
        if is_loopback(environ.get("REMOTE_ADDR") or ""):
            return True
        given = environ.get("HTTP_" + ADMIN_TOKEN_HEADER.upper().replace("-", "_"), "")
        return bool(self.admin_token) and hmac.compare_digest(given.encode(), self.admin_token.encode())

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path.startswith(("/_sqlambda/", "/moto-api")) and not self._admin_allowed(environ):
            return self._respond(start_response, 403, {"Content-Type": "application/json"},
                                 b'{"error":"the admin endpoints answer only on loopback or with the admin token"}')
        if method == "POST" and INVOKE_RE.match(path):
            try:
                status, headers, body = self.invoke.handle(environ)
            except _Dropped:
                # The socket is already shut down; return nothing so no response is written.
                start_response("500 Internal Server Error", [("Content-Length", "0"), ("Connection", "close")])
                return [b""]
            return self._respond(start_response, status, headers, body)
        if path.startswith("/_sqlambda/"):
            return self._admin(environ, start_response, path[len("/_sqlambda/"):], method)
        if path.rstrip("/") == "/_localstack/health":
            return self._health(start_response, method)
        if self.localstack and method in ("POST", "PUT") and _FUNCTION_ROLE_CALL.match(path):
            environ = self._adopt_role(environ)
        deleted = _DELETE_FUNCTION.match(path) if method == "DELETE" else None
        if deleted:
            return self._delete_function(environ, start_response, unquote(deleted.group("name")))
        if self.esm is not None and method in ("POST", "DELETE") and _EVENT_SOURCE_MAPPINGS.match(path):
            return self._event_source_mapping(environ, start_response)
        environ = _inflate_api_request(environ)
        if method == "POST":
            environ, answer = self.service_faults.handle(environ)
            if answer is not None:
                return self._respond(start_response, *answer)
        if _serialized(environ):
            status, headers, body = self._call_moto(environ)
            start_response(status, headers)
            return [body]
        return self.moto(environ, start_response)

    def _call_moto(self, environ: dict) -> tuple[str, list, bytes]:
        """moto's answer to a request, as (status line, headers, body), for the front to look at."""
        if _serialized(environ):
            with _KINESIS_LOCK:
                return self._call_moto_now(environ)
        return self._call_moto_now(environ)

    def _call_moto_now(self, environ: dict) -> tuple[str, list, bytes]:
        captured: list = []

        def capture(status, headers, exc_info=None):
            captured[:] = [status, headers]
            return lambda _data: None

        chunks = self.moto(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return captured[0], captured[1], body

    def _forward(self, environ: dict) -> tuple[int, dict, bytes]:
        """moto's answer as (status, headers without Content-Length, body), for ``service_faults``."""
        status, headers, body = self._call_moto(environ)
        return int(status.split(" ", 1)[0]), {k: v for k, v in headers if k.lower() != "content-length"}, body

    def _event_source_mapping(self, environ, start_response):
        """Create/DeleteEventSourceMapping through moto; once it succeeded the pollers look at once, so a
        new mapping's LATEST is where the stream was when this call returned."""
        status, headers, body = self._call_moto(environ)
        if status.startswith("2"):
            self.esm.scan()
        start_response(status, headers)
        return [body]

    def _delete_function(self, environ, start_response, name: str):
        """DeleteFunction through moto; once it succeeded, the function's warm workers are stopped."""
        status: list[str] = []

        def capture(s, headers, exc_info=None):
            status.append(s)
            return start_response(s, headers, exc_info)

        body = list(self.moto(environ, capture))
        if status and status[0].startswith("2"):
            short = name.rsplit(":function:", 1)[-1].split(":")[0]
            self.invoke.retire(short)
        return body

    def _health(self, start_response, method: str):
        """LocalStack's readiness check (``GET /_localstack/health``), which LocalStack-style test
        suites poll before they start: every service answers in-process, so all are running."""
        from sqlambda import __version__

        if method == "HEAD":
            return self._respond(start_response, 200, {"Content-Type": "text/plain"}, b"ok")
        services = ("cloudwatch", "dynamodb", "firehose", "iam", "kinesis", "lambda", "logs", "s3", "sns", "sqs", "sts")
        body = {"services": {name: "running" for name in services}, "edition": "sqlambda-local", "version": __version__}
        return self._respond(start_response, 200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _adopt_role(self, environ: dict) -> dict:
        """LocalStack mode: the role a function names exists from now on (LocalStack never checks
        it; AWS and plain moto refuse a role that was not created). The body goes on to moto unchanged."""
        import io

        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            role = json.loads(body or b"{}").get("Role")
        except (ValueError, AttributeError):
            return environ
        m = _ROLE_ARN.match(role) if isinstance(role, str) else None
        if m:
            from moto.iam.exceptions import NotFoundException
            from moto.iam.models import iam_backends

            iam = iam_backends[m["account"]]["aws"]
            try:
                iam.get_role_by_arn(role)
            except NotFoundException:
                iam.create_role(m["name"], _LAMBDA_TRUST, "/" + m["path"], None, "created on first use (LocalStack mode)",
                                [], None)
        return environ

    @staticmethod
    def _respond(start_response, status: int, headers: dict, body: bytes):
        hdrs = [(k, str(v)) for k, v in headers.items()] + [("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", hdrs)
        return [body]

    def _admin(self, environ, start_response, what: str, method: str):
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if what == "health":
                out = {"status": "ok", "pid": os.getpid()}
            elif what == "pids":
                out = {"server": os.getpid(), "workers": self.invoke.pids()}
            elif what == "stats" and "action" in query:
                out = self.faults.service_stats(query["action"])
            elif what == "stats":
                out = self.faults.stats(query.get("function", "*"))
            elif what == "faults" and method == "POST":
                n = int(environ.get("CONTENT_LENGTH") or 0)
                req = json.loads(environ["wsgi.input"].read(n) or b"{}")
                count = None if req.get("count") is None else int(req["count"])
                if "action" in req:
                    seed = None if req.get("seed") is None else int(req["seed"])
                    self.faults.add_service(req["action"], req["kind"], count, float(req.get("fraction") or 0),
                                            int(req.get("status") or 500), seed, int(req.get("ms") or 0))
                else:
                    self.faults.add(req["function"], req["kind"], count, int(req.get("ms") or 0), int(req.get("status") or 500))
                out = {"ok": True}
            elif what == "faults" and method == "DELETE":
                self.faults.clear(query.get("function"), query.get("action"))
                out = {"ok": True}
            else:
                return self._respond(start_response, 404, {"Content-Type": "application/json"}, b'{"error":"unknown admin call"}')
        except (KeyError, ValueError, TypeError) as exc:
            return self._respond(start_response, 400, {"Content-Type": "application/json"}, json.dumps({"error": str(exc)}).encode())
        return self._respond(start_response, 200, {"Content-Type": "application/json"}, json.dumps(out).encode())


#: LocalStack's edge port and account: what LocalStack-style test suites expect
LOCALSTACK_PORT = 4566
LOCALSTACK_ACCOUNT = "000000000000"


def serve(host: str = "127.0.0.1", port: int | None = None, state_dir: str | None = None, out=None,
          allow_remote: bool = False, as_json: bool = False, localstack: bool = False) -> None:
    """Run the stack until SIGINT, SIGTERM or SIGHUP. The first stdout line is the endpoint URL
    (``as_json``: one line of JSON with ``endpoint_url``, ``pid`` and ``admin_token``).

    A host other than loopback needs ``allow_remote``; the stack then prints a warning on stderr and
    an admin token as the second stdout line (``admin-token: ...``), which remote admin calls send in
    the ``X-Sqlambda-Admin-Token`` header. A port that cannot be bound is a LocalStackError (exit 9).

    ``localstack``: LocalStack's conventions for test suites written for it: port 4566 unless one is
    given, account 000000000000 for every request (as LocalStack maps any non-numeric access key),
    and a function's role is created on first use instead of refused. Always, whatever the mode:
    ``GET /_localstack/health`` answers, and handlers get LOCALSTACK_HOSTNAME and EDGE_PORT.
    """
    if port is None:
        port = LOCALSTACK_PORT if localstack else 0
    if localstack:
        os.environ.setdefault("MOTO_ACCOUNT_ID", LOCALSTACK_ACCOUNT)
    out = out or sys.stdout
    token = None
    if not is_loopback(host):
        if not allow_remote:
            raise UsageError(
                f"refusing to listen on {host}: the local stack runs any code whoever reaches it sends",
                hint="use the default 127.0.0.1, or pass --allow-remote if other machines must reach it")
        token = secrets.token_urlsafe(24)
        print(f"WARNING: sqlambda local listens on {host}: anyone who can reach this port can create Lambda "
              f"functions and run code as user {_user()} on this machine. Admin endpoints need the token "
              "printed on stdout. Use it on trusted networks only.", file=sys.stderr, flush=True)
    # the handlers go in first: a signal at any moment from here on ends in the cleanup below
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    owned = state_dir is None
    state = Path(state_dir or tempfile.mkdtemp(prefix="sqlambda-local-"))
    server = invoke = pollers = None
    try:
        state.mkdir(parents=True, exist_ok=True)
        # moto in server mode must not try Docker for Lambda. moto 5 no longer reads this variable
        # (its switch, lambda use_docker=False, would move the Lambda control plane to another backend
        # than the one Invoke reads); what keeps Docker out is that Invoke is served here and that
        # ``esm`` detaches moto's own invocations on SendMessage / PutRecord(s) of a mapped source.
        os.environ.setdefault("MOTO_DOCKER_LAMBDA", "false")
        moto_patches.apply()
        faults = FaultTable()
        placeholder = InvokeService.__new__(InvokeService)
        front = Front(placeholder, faults, token, localstack=localstack)
        # bound here, not by werkzeug, which prints its own message and exits 1 when the port is taken
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, port), family=family, backlog=128)
        except OSError as exc:
            why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise LocalStackError(f"the local stack cannot listen on {host}:{port}: {why}",
                                  hint="pick another --port, or --port 0 for a free one") from None
        with listener:
            server = make_server(host, listener.getsockname()[1], front, threaded=True, request_handler=_QuietHandler,
                                 fd=listener.fileno())
        url = f"http://{host}:{server.port}"
        # what a handler sees: the stack's endpoint and its test credentials, never the stack process's
        # own environment (its real AWS keys, say), which any handler could otherwise read
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": url if is_loopback(host) else url.replace(f"//{host}:", "//127.0.0.1:"),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            # what LocalStack gives its handlers, so handlers written for it find the endpoint too
            "LOCALSTACK_HOSTNAME": "127.0.0.1",
            "EDGE_PORT": str(server.port),
        }
        invoke = InvokeService(state, url, faults, base_env)
        front.invoke = invoke
        # the pollers read the sources through the stack's own endpoint, on loopback
        pollers = EventSourcePoller(invoke, base_env["AWS_ENDPOINT_URL"])
        front.esm = pollers
        threading.Thread(target=server.serve_forever, daemon=True, name="front").start()
        pollers.start()
        if as_json:
            print(json.dumps({"endpoint_url": url, "pid": os.getpid(), "admin_token": token}), file=out, flush=True)
        else:
            print(url, file=out, flush=True)
            if token:
                print(f"admin-token: {token}", file=out, flush=True)
        stop.wait()
    finally:
        if pollers is not None:  # before the server: their last calls still get answers
            pollers.stop()
        if server is not None:
            server.shutdown()
        if invoke is not None:
            invoke.shutdown()
        if owned:
            shutil.rmtree(state, ignore_errors=True)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
