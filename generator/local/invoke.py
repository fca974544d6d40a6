"""The Invoke API (``POST /2015-03-31/functions/{name}/invocations``), executed for real.

Owns AWS's Invoke semantics: RequestResponse (200 + result, or 200 + ``X-Amz-Function-Error``),
Event (202 at once, run afterwards), DryRun (204), LogType=Tail (last 4 KB of the log, base64, in
``X-Amz-Log-Result``), qualifiers (versions and aliases, 404 when unknown), payload quotas (413),
non-JSON bodies (400), reserved concurrency (429 with its Reason) and the injected faults, for
Invoke requests and for the stack's own event source mappings (``invoke_sync``). Function
definitions come from moto's Lambda backend in the same process; handlers run in ``runtime`` pools.
Must not serve other AWS APIs (moto does) nor manage processes directly (``runtime`` does).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, unquote

from sqlambda.local.faults import FaultTable
from sqlambda.local.runtime import FunctionConfig, Outcome, Pool, unpack_code
from sqlambda.resources import plpython_module

# Lambda's payload quotas, defined once (plpython/sqlambda_core.py): RequestResponse 6 MB, Event 1 MB
SYNC_LIMIT = plpython_module("sqlambda_core").SYNC_LIMIT
ASYNC_LIMIT = plpython_module("sqlambda_core").ASYNC_LIMIT
TAIL_BYTES = 4096
DEFAULT_ACCOUNT = "123456789012"  # moto's own default account
INVOKE_RE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_REGION_RE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/lambda/")
_ACCESS_KEY_RE = re.compile(r"Credential=(?P<key>[^/]+)/")
#: Lambda's FunctionName forms (the API reference's pattern): a name, name:qualifier, a partial ARN
#: (account:function:name[:qualifier]) or a full ARN, each optionally qualified
FUNCTION_NAME_RE = re.compile(
    r"^(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?(?:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$")


def parse_function_name(value: str) -> dict | None:
    """{name, qualifier, account, region} of any FunctionName form, or None when it fits none."""
    m = FUNCTION_NAME_RE.match(value)
    if not m or (value.startswith("arn:") and not (m["region"] and m["account"])):
        return None
    return {k: m[k] for k in ("name", "qualifier", "account", "region")}


def request_account(environ: dict) -> str:
    """The account a request acts in, decided as moto decides it for every other API (so Invoke finds
    what CreateFunction made): MOTO_ACCOUNT_ID, else the x-moto-account-id header, else the account
    an IAM access key belongs to, else moto's default."""
    import os

    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    m = _ACCESS_KEY_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m:
        from moto.iam.models import get_account_id_from

        return get_account_id_from(m["key"])
    return DEFAULT_ACCOUNT


class _Dropped(Exception):
    """The injected fault closed the connection; nothing is sent back."""


def _error(status: int, code: str, message: str, **extra) -> tuple[int, dict, bytes]:
    body = {"Type": "User" if status < 500 else "Service", "message": message, **extra}
    return status, {"x-amzn-ErrorType": code, "Content-Type": "application/json"}, json.dumps(body).encode()


class InvokeService:
    """Resolves functions in moto, enforces the API's rules and runs handlers on warm pools."""

    def __init__(self, state_dir: Path, endpoint_url: str, faults: FaultTable, base_env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.code_root = state_dir / "code"
        self.log_dir = state_dir / "logs"
        self.code_root.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint_url = endpoint_url
        self.faults = faults
        self.base_env = base_env
        self._pools: dict[str, Pool] = {}  # fingerprint -> pool
        self._latest_fp: dict[str, str] = {}  # arn:version -> fingerprint in use
        self._inflight: dict[str, int] = {}  # function name -> running invocations
        self._lock = threading.Lock()
        self._async = ThreadPoolExecutor(max_workers=16, thread_name_prefix="event-invoke")

    # -- moto lookups -------------------------------------------------------------------------
    @staticmethod
    def _backend(account: str, region: str):
        from moto.awslambda.models import lambda_backends

        return lambda_backends[account][region]

    def _config(self, account: str, region: str, name: str, qualifier: str | None):
        from moto.awslambda.exceptions import UnknownFunctionException

        backend = self._backend(account, region)
        try:
            fn = backend.get_function(name, qualifier)
        except UnknownFunctionException:
            fn = None
        except Exception as exc:  # moto raises its own errors for malformed qualifiers
            if type(exc).__name__ in ("InvalidParameterValueException", "ValidationException"):
                raise LookupError(str(exc)) from None
            raise
        if fn is None:
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
            raise LookupError(f"Function not found: {arn}{':' + qualifier if qualifier else ''}")
        base = backend.get_function(fn.function_name)  # $LATEST carries reserved concurrency
        cfg = FunctionConfig(
            name=fn.function_name,
            arn=fn.function_arn,
            version=str(getattr(fn, "version", "$LATEST")),
            handler=fn.handler or "handler.handler",
            runtime=fn.run_time or "python3.11",
            timeout=float(fn.timeout or 3),
            memory=int(getattr(fn, "memory_size", 128) or 128),
            environment=tuple(sorted((fn.environment_vars or {}).items())),
            code_sha256=fn.code_sha_256,
            reserved_concurrency=_int_or_none(getattr(base, "reserved_concurrency", None)),
        )
        return cfg, fn.code_bytes

    def _pool(self, cfg: FunctionConfig, code: bytes) -> Pool:
        fp = cfg.fingerprint
        with self._lock:
            pool = self._pools.get(fp)
            if pool is not None:
                return pool
        code_dir = unpack_code(code, self.code_root)
        with self._lock:
            pool = self._pools.get(fp)
            if pool is None:
                pool = Pool(cfg, code_dir, self.log_dir, self.base_env)
                self._pools[fp] = pool
                key = f"{cfg.name}:{cfg.version}"
                old = self._latest_fp.get(key)
                self._latest_fp[key] = fp
                if old and old != fp:  # code or configuration changed: retire the old instances
                    stale = self._pools.pop(old, None)
                    if stale is not None:
                        threading.Thread(target=stale.close, daemon=True).start()
        return pool

    # -- the API ------------------------------------------------------------------------------
    def handle(self, environ: dict) -> tuple[int, dict, bytes]:
        """One Invoke request; while it runs it counts as in flight for its function name (the
        ``in_flight_max`` statistic shows how many requests a client really had open at once)."""
        m = INVOKE_RE.match(environ.get("PATH_INFO", ""))
        name = unquote(m.group("name")) if m else ""
        self.faults.enter(name)
        try:
            return self._handle(environ, name)
        finally:
            self.faults.leave(name)

    def _handle(self, environ: dict, name: str) -> tuple[int, dict, bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [None])[0]
        auth = environ.get("HTTP_AUTHORIZATION", "")
        rm = _REGION_RE.search(auth)
        region = rm.group("region") if rm else "us-east-1"
        account = request_account(environ)
        parsed = parse_function_name(name)
        if parsed is None:
            return _error(400, "ValidationException", f"1 validation error detected: Value '{name}' at 'functionName' "
                          "failed to satisfy constraint: Member must satisfy the FunctionName pattern")
        if parsed["qualifier"] and qualifier and parsed["qualifier"] != qualifier:
            return _error(400, "InvalidParameterValueException",
                          "The derived qualifier from the function name does not match the specified qualifier.")
        if parsed["region"] and parsed["region"] != region:
            return _error(404, "ResourceNotFoundException",
                          f"Functions from '{parsed['region']}' are not reachable in this region ('{region}')")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        return self._invoke(parsed["account"] or account, region, parsed["name"], parsed["qualifier"] or qualifier, payload,
                            itype=environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse"),
                            log_type=environ.get("HTTP_X_AMZ_LOG_TYPE", "None"),
                            client_context=environ.get("HTTP_X_AMZ_CLIENT_CONTEXT"), sock=environ.get("werkzeug.socket"))

    def invoke_sync(self, account: str, region: str, name: str, qualifier: str | None,
                    payload: bytes) -> tuple[int, dict, bytes]:
        """A RequestResponse Invoke from inside the stack (event source mappings): the same checks, fault
        rules, statistics and warm workers as an Invoke request, answered as (status, headers, body).
        A ``drop`` fault, which has no connection to close here, answers 502 ServiceException."""
        self.faults.enter(name)
        try:
            return self._invoke(account, region, name, qualifier, payload)
        except _Dropped:
            return _error(502, "ServiceException", "injected fault: the connection was dropped")
        finally:
            self.faults.leave(name)

    def _invoke(self, account: str, region: str, name: str, qualifier: str | None, payload: bytes, *,
                itype: str = "RequestResponse", log_type: str = "None", client_context: str | None = None,
                sock: socket.socket | None = None) -> tuple[int, dict, bytes]:
        short = name
        self.faults.count(short, "requests")
        for rule in self.faults.take(short):
            self.faults.count(short, "faults")
            if rule.kind == "latency":
                time.sleep(rule.ms / 1000)
            elif rule.kind == "throttle":
                self.faults.count(short, "throttled")
                return _error(429, "TooManyRequestsException", "Rate Exceeded.", Reason="CallerRateLimitExceeded", retryAfterSeconds="1")
            elif rule.kind == "server_error":
                return _error(rule.status, "ServiceException", "injected fault: service error")
            elif rule.kind == "drop":
                if isinstance(sock, socket.socket):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                raise _Dropped()

        if itype not in ("RequestResponse", "Event", "DryRun"):
            return _error(400, "InvalidParameterValueException", f"Unsupported InvocationType: {itype}")
        try:
            cfg, code = self._config(account, region, name, qualifier)
        except LookupError as exc:
            return _error(404, "ResourceNotFoundException", str(exc))
        limit = ASYNC_LIMIT if itype == "Event" else SYNC_LIMIT
        if len(payload) > limit:
            return _error(413, "RequestTooLargeException",
                          f"Request must be smaller than {limit} bytes for the {itype} invocation type")
        if payload.strip():
            try:
                json.loads(payload)
            except (ValueError, UnicodeDecodeError) as exc:
                return _error(400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}")
        else:
            payload = b"{}"
        if client_context:
            # The API takes base64-encoded JSON; the runtime receives the decoded JSON.
            try:
                decoded = base64.b64decode(client_context, validate=True)
                json.loads(decoded)
                client_context = decoded.decode()
            except (ValueError, UnicodeDecodeError):
                return _error(400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
        if itype == "DryRun":
            return 204, {}, b""
        if not self._enter(cfg):
            self.faults.count(short, "throttled")
            return _error(429, "TooManyRequestsException", "Rate Exceeded.",
                          Reason="ReservedFunctionConcurrentInvocationLimitExceeded")
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id}
        if itype == "Event":
            self._async.submit(self._run_async, cfg, code, payload, request_id)
            return 202, headers, b""
        try:
            outcome = self._run(cfg, code, payload, request_id, client_context)
        finally:
            self._leave(cfg)
        headers["X-Amz-Executed-Version"] = cfg.version
        headers["Content-Type"] = "application/json"
        if not outcome.ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        if log_type == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(outcome.log[-TAIL_BYTES:]).decode()
        return 200, headers, outcome.body

    def _enter(self, cfg: FunctionConfig) -> bool:
        with self._lock:
            n = self._inflight.get(cfg.name, 0)
            if cfg.reserved_concurrency is not None and n >= cfg.reserved_concurrency:
                return False
            self._inflight[cfg.name] = n + 1
            return True

    def _leave(self, cfg: FunctionConfig) -> None:
        with self._lock:
            self._inflight[cfg.name] -= 1

    def _run(self, cfg: FunctionConfig, code: bytes, payload: bytes, request_id: str, client_context: str | None) -> Outcome:
        pool = self._pool(cfg, code)
        worker = pool.acquire()
        self.faults.count(cfg.name, "invocations")
        outcome = worker.run(payload, request_id=request_id, client_context=client_context)
        pool.release(worker, outcome.worker_lost)
        return outcome

    def _run_async(self, cfg: FunctionConfig, code: bytes, payload: bytes, request_id: str) -> None:
        try:
            self._run(cfg, code, payload, request_id, None)
        finally:
            self._leave(cfg)

    # -- lifecycle ----------------------------------------------------------------------------
    def retire(self, name: str) -> None:
        """Stop every warm worker of function ``name`` (it was deleted): no code of it runs on."""
        with self._lock:
            fps = [fp for fp, pool in self._pools.items() if pool.cfg.name == name]
            pools = [self._pools.pop(fp) for fp in fps]
            for key in [k for k in self._latest_fp if k.split(":", 1)[0] == name]:
                del self._latest_fp[key]
        for pool in pools:
            pool.kill_all()

    def pids(self) -> list[int]:
        with self._lock:
            pools = list(self._pools.values())
        return [pid for p in pools for pid in p.pids()]

    def shutdown(self) -> None:
        self._async.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        # side by side: stopping a worker waits for its Runtime API server's poll (half a second)
        stoppers = [threading.Thread(target=p.kill_all, daemon=True) for p in pools]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(30)


def _int_or_none(v) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None
