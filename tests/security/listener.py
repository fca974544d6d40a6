"""An attacker's HTTP listener: records every request it gets and answers like Lambda would.

The security tests point every setting a caller could try at it; a request arriving here means a
signed AWS request (with its ``Authorization`` and ``X-Amz-Security-Token`` headers) went where a
caller decided, which must never happen.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = {"Status": "FROM-THE-LISTENER", "Records": [{"id": 666}]}


class Listener:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with listener._lock:
                    listener.requests.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "body": body})
                out = json.dumps(ANSWER).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Amz-Executed-Version", "$LATEST")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> "Listener":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def take(self) -> list[dict]:
        with self._lock:
            out, self.requests = self.requests, []
        return out
