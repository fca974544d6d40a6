"""A tiny EC2 instance-metadata server with IMDSv2 enforced (Python ``http.server``) for the Java
credential tests: every GET needs the token a PUT handed out, or it answers 401; credentials carry
an Expiration. The ``imds`` fixture runs one per test."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROLE = "sqlambda-db-role"


class FakeImds:
    """State of the metadata server: what it serves and every request it saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.issued = 0
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, token header)
        self.credentials: list[dict] = []  # served in order, the last one repeats
        self.served = 0
        self.v1_only = False
        self.revoke_after_serving = 0  # forget all tokens once this many documents were served
        self.unauthorized = 0

    def issue_token(self) -> str:
        self.issued += 1
        token = f"tok-{self.issued}"
        self.tokens.add(token)
        return token


def _make_handler(state: FakeImds):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):
            with state.lock:
                state.requests.append(("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")))
                if state.v1_only:
                    return self._send(403, "Forbidden")
                if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._send(400, "missing TTL header")
                token = state.issue_token()
            self._send(200, token)

        def do_GET(self):
            token = self.headers.get("X-aws-ec2-metadata-token")
            with state.lock:
                state.requests.append(("GET", self.path, token))
                if token not in state.tokens:
                    state.unauthorized += 1
                    return self._send(401, "Unauthorized")
                if self.path == "/latest/meta-data/iam/security-credentials/":
                    return self._send(200, ROLE + "\n")
                if self.path == f"/latest/meta-data/iam/security-credentials/{ROLE}":
                    doc = state.credentials[min(state.served, len(state.credentials) - 1)]
                    state.served += 1
                    if state.served == state.revoke_after_serving:
                        state.tokens.clear()
                    return self._send(200, json.dumps(doc))
            self._send(404, "Not Found")

    return Handler


@pytest.fixture
def imds():
    state = FakeImds()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _creds_doc(key: str, expires_in: dt.timedelta) -> dict:
    expiration = dt.datetime.now(dt.timezone.utc) + expires_in
    return {
        "Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC",
        "AccessKeyId": f"ASIA{key}", "SecretAccessKey": f"secret-{key}", "Token": f"session-{key}",
        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
