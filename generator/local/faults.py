"""Fault injection for reliability tests: the server-side rule table and the client helper.

Off by default. Rules are set through the admin endpoint ``/_sqlambda/faults`` on the stack's own
port and apply to a function's next N Invoke calls (or every call when N is absent):
``latency`` (sleep first, then run), ``throttle`` (429 TooManyRequestsException), ``server_error``
(5xx ServiceException) and ``drop`` (close the connection without a response). The function name
``"*"`` matches every function. Must not run handlers or know HTTP framing beyond the admin calls.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass

KINDS = ("latency", "throttle", "server_error", "drop")


@dataclass
class Rule:
    kind: str
    remaining: int | None  # None = every call
    ms: int = 0
    status: int = 500

    def to_dict(self) -> dict:
        return {"kind": self.kind, "remaining": self.remaining, "ms": self.ms, "status": self.status}


class FaultTable:
    """Thread-safe rules per function name, plus per-function counters for tests."""

    def __init__(self) -> None:
        self._rules: dict[str, list[Rule]] = {}
        self._stats: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, function: str, kind: str, count: int | None, ms: int = 0, status: int = 500) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if kind == "server_error" and not 500 <= status <= 599:
            raise ValueError("server_error status must be 5xx")
        with self._lock:
            self._rules.setdefault(function, []).append(Rule(kind, count, ms, status))

    def clear(self, function: str | None = None) -> None:
        with self._lock:
            if function is None:
                self._rules.clear()
                self._stats.clear()
            else:
                self._rules.pop(function, None)
                self._stats.pop(function, None)

    def take(self, function: str) -> list[Rule]:
        """Rules that fire for this call (consuming one use of each counted rule)."""
        fired: list[Rule] = []
        with self._lock:
            for key in (function, "*"):
                rules = self._rules.get(key)
                if not rules:
                    continue
                for r in list(rules):
                    fired.append(r)
                    if r.remaining is not None:
                        r.remaining -= 1
                        if r.remaining <= 0:
                            rules.remove(r)
        return fired

    def count(self, function: str, what: str) -> None:
        with self._lock:
            s = self._stats.setdefault(function, {})
            s[what] = s.get(what, 0) + 1

    def enter(self, function: str) -> None:
        """A request for ``function`` started: ``in_flight`` now, ``in_flight_max`` the most at once."""
        with self._lock:
            s = self._stats.setdefault(function, {})
            s["in_flight"] = s.get("in_flight", 0) + 1
            s["in_flight_max"] = max(s.get("in_flight_max", 0), s["in_flight"])

    def leave(self, function: str) -> None:
        with self._lock:
            s = self._stats.setdefault(function, {})
            s["in_flight"] = max(0, s.get("in_flight", 0) - 1)

    def stats(self, function: str) -> dict:
        with self._lock:
            s = {"invocations": 0, "requests": 0, "throttled": 0, "faults": 0, "in_flight": 0, "in_flight_max": 0,
                 **self._stats.get(function, {})}
            s["rules"] = [r.to_dict() for r in self._rules.get(function, [])]
            return s


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only addresses the stack binds without --allow-remote."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: the header remote admin calls carry (the stack prints the token at start with --allow-remote)
ADMIN_TOKEN_HEADER = "X-Sqlambda-Admin-Token"


class FaultClient:
    """Python helper for tests and benchmarks: ``FaultClient(endpoint_url).throttle("echo", 3)``."""

    def __init__(self, endpoint_url: str, admin_token: str | None = None) -> None:
        self.base = endpoint_url.rstrip("/") + "/_sqlambda"
        self.admin_token = admin_token

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.admin_token:
            headers[ADMIN_TOKEN_HEADER] = self.admin_token
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def _add(self, function: str, kind: str, count: int | None, **kw) -> None:
        self._call("POST", "/faults", {"function": function, "kind": kind, "count": count, **kw})

    def latency(self, function: str, ms: int, count: int | None = None) -> None:
        self._add(function, "latency", count, ms=ms)

    def throttle(self, function: str, count: int | None = 1) -> None:
        self._add(function, "throttle", count)

    def server_error(self, function: str, count: int | None = 1, status: int = 500) -> None:
        self._add(function, "server_error", count, status=status)

    def drop(self, function: str, count: int | None = 1) -> None:
        self._add(function, "drop", count)

    def clear(self, function: str | None = None) -> None:
        self._call("DELETE", "/faults" + (f"?function={function}" if function else ""))

    def stats(self, function: str) -> dict:
        return self._call("GET", f"/stats?function={function}")
