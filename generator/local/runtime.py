"""Warm Lambda workers: one awslambdaric process per instance, each behind its own Runtime API.

Owns: unpacking a function's code once, spawning ``python -m awslambdaric <handler>`` with the
environment AWS gives a function, serving the Lambda Runtime API (``/2018-06-01/runtime/...``) that
awslambdaric polls, handing it one invocation at a time, collecting the result or error, the
invocation's log lines, and killing and replacing a worker whose handler ran past its timeout.
Must not parse Invoke HTTP requests (``invoke.py``) nor know about moto (``server.py``).

Each worker gets a private Runtime API on its own loopback port, so "next invocation" needs no
routing: whatever is put into the worker's inbox is what its runtime client receives.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class _Spawner:
    """Creates every worker process from one long-lived thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process; the
    HTTP server runs each request on a short-lived thread, so forking there would kill the worker
    as soon as its first request finished.
    """

    def __init__(self) -> None:
        self._q: "queue.Queue" = queue.Queue()
        threading.Thread(target=self._loop, daemon=True, name="worker-spawner").start()

    def _loop(self) -> None:
        while True:
            args, kwargs, box = self._q.get()
            try:
                box.put((True, subprocess.Popen(*args, **kwargs)))
            except BaseException as exc:  # hand the error to the caller's thread
                box.put((False, exc))

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        box: "queue.Queue" = queue.Queue(1)
        self._q.put((args, kwargs, box))
        ok, value = box.get()
        if not ok:
            raise value
        return value


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _popen(*args, **kwargs) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.popen(*args, **kwargs)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # If the stack is killed (even with SIGKILL) the kernel kills its workers: no orphans.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass(frozen=True)
class FunctionConfig:
    """What a worker needs to know about one function version; its fingerprint keys the pool."""

    name: str
    arn: str
    version: str
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    reserved_concurrency: int | None = None

    @property
    def fingerprint(self) -> str:
        raw = json.dumps([self.arn, self.version, self.handler, self.timeout, self.memory,
                          self.environment, self.code_sha256], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class Outcome:
    """The result of running one invocation on a worker."""

    ok: bool
    body: bytes
    error_type: str | None = None
    log: bytes = b""
    duration_ms: float = 0.0
    worker_lost: bool = False


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    arn: str
    client_context: str | None = None
    result: "queue.Queue[tuple[str, bytes, str | None]]" = field(default_factory=lambda: queue.Queue(1))


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; without TCP_NODELAY delayed ACKs add ~40 ms
    disable_nagle_algorithm = True
    server: "_RuntimeServer"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:
        if not self.path.endswith("/runtime/invocation/next"):
            return self._reply(404)
        worker = self.server.worker
        inv = worker.inbox.get()
        if inv is None:  # worker is stopping: hold the client; it is killed right after
            return self._reply(500)
        worker.current = inv
        headers = {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            "Content-Type": "application/json",
        }
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        self._reply(200, inv.payload, headers)

    def do_POST(self) -> None:
        body = self._body()
        worker = self.server.worker
        parts = self.path.rstrip("/").split("/")
        if self.path.endswith("/init/error"):
            worker.init_error = body
            inv = worker.current
            if inv is not None:
                inv.result.put(("error", body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
            return self._reply(202, b'{"status":"OK"}')
        if len(parts) >= 2 and parts[-1] in ("response", "error"):
            inv = worker.current
            if inv is None or parts[-2] != inv.request_id:
                return self._reply(400, b'{"errorMessage":"unknown request id"}')
            worker.current = None
            kind = "ok" if parts[-1] == "response" else "error"
            inv.result.put((kind, body, self.headers.get("Lambda-Runtime-Function-Error-Type")))
            return self._reply(202, b'{"status":"OK"}')
        self._reply(404)


class _RuntimeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, worker: "Instance") -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeHandler)
        self.worker = worker


class Instance:
    """One warm instance of a function: a Runtime API plus one awslambdaric process."""

    def __init__(self, cfg: FunctionConfig, code_dir: Path, log_dir: Path, base_env: dict[str, str]) -> None:
        self.cfg = cfg
        self.code_dir = code_dir
        self.inbox: "queue.Queue[_Invocation | None]" = queue.Queue()
        self.current: _Invocation | None = None
        self.init_error: bytes | None = None
        self._server = _RuntimeServer(self)
        threading.Thread(target=self._server.serve_forever, daemon=True, name=f"rapi-{cfg.name}").start()
        self.log_path = log_dir / f"{cfg.name}-{uuid.uuid4().hex[:8]}.log"
        self._log = open(self.log_path, "ab")
        port = self._server.server_address[1]
        env = {
            **base_env,
            **dict(cfg.environment),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_VERSION": cfg.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[") + cfg.version + "]" + uuid.uuid4().hex,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg.runtime}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(code_dir),
            "_HANDLER": cfg.handler,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(code_dir),
        }
        self.proc = _popen(
            [sys.executable, "-m", "awslambdaric", cfg.handler],
            cwd=str(code_dir), env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.invocations = 0
        self._killed = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, payload: bytes, *, request_id: str | None = None, client_context: str | None = None) -> Outcome:
        """Send one invocation and wait for its outcome, at most the function's timeout."""
        request_id = request_id or str(uuid.uuid4())
        start = time.monotonic()
        deadline = start + self.cfg.timeout
        inv = _Invocation(request_id, payload, int((time.time() + self.cfg.timeout) * 1000), self.cfg.arn, client_context)
        offset = self.log_path.stat().st_size
        self.inbox.put(inv)
        self.invocations += 1
        result = None
        while result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                result = inv.result.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                if not self.alive:
                    # the process died (init error, os._exit, OOM...): give what it said
                    try:
                        result = inv.result.get(timeout=0.2)
                    except queue.Empty:
                        break
        duration = (time.monotonic() - start) * 1000
        head = f"START RequestId: {request_id} Version: {self.cfg.version}\n".encode()
        if result is None:
            self._terminate()  # the pool discards this worker (worker_lost) and cleans it up
            log = head + self._read_log(offset)
            msg = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {request_id} Task timed out after {self.cfg.timeout:.2f} seconds"
            log += f"{msg}\nEND RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tStatus: timeout\n".encode()
            if not self.alive and duration < self.cfg.timeout * 1000 - 1:
                body = {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {self.proc.returncode}"}
                return Outcome(False, json.dumps(body).encode(), "Runtime.ExitError", log, duration, worker_lost=True)
            body = {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} Error: Task timed out after {self.cfg.timeout:.2f} seconds"}
            return Outcome(False, json.dumps(body).encode(), "Sandbox.Timedout", log, duration, worker_lost=True)
        kind, body, err_type = result
        log = head + self._read_log(offset) + (
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration + 0.999))} ms\tMemory Size: {self.cfg.memory} MB\n"
        ).encode()
        if kind == "ok":
            return Outcome(True, body, None, log, duration)
        if not err_type:
            try:
                err_type = json.loads(body).get("errorType")
            except (ValueError, AttributeError):
                err_type = "Unhandled"
        return Outcome(False, body, err_type, log, duration, worker_lost=not self.alive or self.init_error is not None)

    def _read_log(self, offset: int) -> bytes:
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read()

    def _terminate(self) -> None:
        if self.alive:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def kill(self) -> None:
        """Stop the process, its Runtime API and remove its log; safe to call twice."""
        self._terminate()
        if self._killed:
            return
        self._killed = True
        self.inbox.put(None)
        self._server.shutdown()
        self._server.server_close()
        self._log.close()
        try:
            self.log_path.unlink()
        except OSError:
            pass


def unpack_code(zip_bytes: bytes, code_root: Path) -> Path:
    """Unpack a function's zip once per code hash; returns the directory."""
    sha = hashlib.sha256(zip_bytes).hexdigest()
    target = code_root / sha
    if not (target / ".complete").exists():
        tmp = code_root / f".{sha}.{uuid.uuid4().hex[:6]}"
        tmp.mkdir(parents=True)
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            for info in zf.infolist():
                dest = (tmp / info.filename).resolve()
                if not str(dest).startswith(str(tmp.resolve())):
                    raise ValueError(f"zip entry escapes the code directory: {info.filename}")
            zf.extractall(tmp)
        (tmp / ".complete").write_text(sha)
        try:
            tmp.rename(target)
        except OSError:  # another thread unpacked it meanwhile
            pass
    return target


class Pool:
    """Warm workers of one function version (one FunctionConfig fingerprint)."""

    def __init__(self, cfg: FunctionConfig, code_dir: Path, log_dir: Path, base_env: dict[str, str], max_workers: int = 16) -> None:
        self.cfg = cfg
        self.code_dir = code_dir
        self.log_dir = log_dir
        self.base_env = base_env
        self.max_workers = max_workers
        self._idle: list[Instance] = []
        self._all: set[Instance] = set()
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self.closed = False

    def acquire(self) -> Instance:
        with self._cv:
            while True:
                while self._idle:
                    w = self._idle.pop()
                    if w.alive:
                        return w
                    self._all.discard(w)
                if len(self._all) < self.max_workers:
                    w = Instance(self.cfg, self.code_dir, self.log_dir, self.base_env)
                    self._all.add(w)
                    return w
                self._cv.wait(timeout=1.0)

    def release(self, w: Instance, lost: bool) -> None:
        with self._cv:
            if lost or self.closed or not w.alive:
                self._all.discard(w)
                threading.Thread(target=w.kill, daemon=True).start()
            else:
                self._idle.append(w)
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self.closed = True
            idle, self._idle = self._idle, []
            for w in idle:
                self._all.discard(w)
        for w in idle:
            w.kill()

    def kill_all(self) -> None:
        with self._cv:
            self.closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
        for w in workers:
            w.kill()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._all if w.alive]

    def size(self) -> int:
        with self._lock:
            return len(self._all)
