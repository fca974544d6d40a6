"""Fault injection for reliability tests: the server-side rule table and the client helper.

Off by default. Rules are set through the admin endpoint ``/_sqlambda/faults`` on the stack's own
port and apply to the next N calls (or every call when N is absent).

Invoke rules name a function (``"*"`` matches every function): ``latency`` (sleep first, then
run), ``throttle`` (429 TooManyRequestsException), ``server_error`` (5xx ServiceException) and
``drop`` (close the connection without a response).

Service rules name a data-plane action as ``Service.Operation`` (``Kinesis.PutRecords``,
``SQS.SendMessageBatch``...): ``partial`` (a fraction of a batch's records fails the way the real
service reports it: only on the four batch actions of ``SERVICE_BATCH_ACTIONS``), ``throttle`` (the
service's own throttling error) and ``server_error`` (a 5xx). ``service_faults`` applies them.

Owns the rules, the counters tests read, and :class:`FaultClient`. Must not run handlers, know
HTTP framing beyond the admin calls, nor any service's wire format (``service_faults`` does).
"""

from __future__ import annotations

import json
import random
import threading
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import quote

KINDS = ("latency", "throttle", "server_error", "drop")
SERVICE_KINDS = ("partial", "throttle", "server_error", "latency")
#: the services whose data-plane calls service rules can fail, as ``Service.Operation`` names them
SERVICES = ("Kinesis", "Firehose", "SQS", "EventBridge")
#: the batch actions a ``partial`` rule applies to: some records fail, the others are stored
SERVICE_BATCH_ACTIONS = ("Kinesis.PutRecords", "Firehose.PutRecordBatch", "SQS.SendMessageBatch", "EventBridge.PutEvents")


@dataclass
class Rule:
    kind: str
    remaining: int | None  # None = every call
    ms: int = 0
    status: int = 500

    def to_dict(self) -> dict:
        return {"kind": self.kind, "remaining": self.remaining, "ms": self.ms, "status": self.status}


@dataclass
class ServiceRule:
    """A rule for one data-plane action; ``rng`` (seeded once) picks which records a ``partial`` fails."""

    kind: str
    remaining: int | None  # None = every call
    fraction: float = 0.0
    status: int = 500
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)
    ms: int = 0

    def failed_positions(self, n: int) -> list[int]:
        """Which of ``n`` records fail: round(fraction × n) of them (halves up), picked at random."""
        k = min(n, int(self.fraction * n + 0.5))
        return sorted(self.rng.sample(range(n), k))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "remaining": self.remaining, "fraction": self.fraction, "status": self.status,
                "seed": self.seed}


def check_action(action: str) -> str:
    """``action`` when it names an operation of a service the rules know (``Kinesis.PutRecords``), else ValueError."""
    service, _, operation = action.partition(".")
    if service not in SERVICES or not operation.isalnum():
        raise ValueError(f"unknown action {action!r}: Service.Operation with a service among {', '.join(SERVICES)}")
    return action


class FaultTable:
    """Thread-safe rules per function name and per service action, plus counters for tests."""

    def __init__(self) -> None:
        self._rules: dict[str, list[Rule]] = {}
        self._stats: dict[str, dict[str, int]] = {}
        self._service_rules: dict[str, list[ServiceRule]] = {}
        self._service_stats: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, function: str, kind: str, count: int | None, ms: int = 0, status: int = 500) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if kind == "server_error" and not 500 <= status <= 599:
            raise ValueError("server_error status must be 5xx")
        with self._lock:
            self._rules.setdefault(function, []).append(Rule(kind, count, ms, status))

    def clear(self, function: str | None = None, action: str | None = None) -> None:
        """Every rule and counter (neither named), or those of one function or one action."""
        with self._lock:
            if function is None and action is None:
                self._rules.clear()
                self._stats.clear()
                self._service_rules.clear()
                self._service_stats.clear()
            if function is not None:
                self._rules.pop(function, None)
                self._stats.pop(function, None)
            if action is not None:
                self._service_rules.pop(action, None)
                self._service_stats.pop(action, None)

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

    # -- service rules --------------------------------------------------------------------------
    def add_service(self, action: str, kind: str, count: int | None, fraction: float = 0.0, status: int = 500,
                    seed: int | None = None, ms: int = 0) -> None:
        check_action(action)
        if kind not in SERVICE_KINDS:
            raise ValueError(f"unknown service fault kind {kind!r}; one of {', '.join(SERVICE_KINDS)}")
        if kind == "partial":
            if action not in SERVICE_BATCH_ACTIONS:
                raise ValueError(f"partial faults apply to {', '.join(SERVICE_BATCH_ACTIONS)}, not {action}")
            if not 0.0 <= fraction <= 1.0:
                raise ValueError("fraction must be between 0 and 1")
        if kind == "server_error" and not 500 <= status <= 599:
            raise ValueError("server_error status must be 5xx")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or absent: every request)")
        if kind == "latency" and not 0 <= ms <= 60_000:
            raise ValueError("latency ms must be between 0 and 60000")
        rule = ServiceRule(kind, count, float(fraction), status, seed, random.Random(seed), int(ms))
        with self._lock:
            self._service_rules.setdefault(action, []).append(rule)

    def take_service(self, action: str) -> ServiceRule | None:
        """The rule that fires for this request of ``action`` (the oldest; one use of it consumed)."""
        with self._lock:
            rules = self._service_rules.get(action)
            if not rules:
                return None
            rule = rules[0]
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.pop(0)
            return rule

    def count_service(self, action: str, what: str, n: int = 1) -> None:
        with self._lock:
            s = self._service_stats.setdefault(action, {})
            s[what] = s.get(what, 0) + n

    def service_stats(self, action: str) -> dict:
        """``requests`` seen, ``faults`` fired, ``records_failed`` by partial rules, ``throttled`` and
        ``server_errors`` answered, and the rules still pending."""
        with self._lock:
            s = {"requests": 0, "faults": 0, "records_failed": 0, "throttled": 0, "server_errors": 0,
                 **self._service_stats.get(action, {})}
            s["rules"] = [r.to_dict() for r in self._service_rules.get(action, [])]
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
        """Clear one function's rules and counters, or (no name) every rule and counter, service ones too."""
        self._call("DELETE", "/faults" + (f"?function={quote(function, safe='')}" if function else ""))

    def stats(self, function: str) -> dict:
        return self._call("GET", f"/stats?function={quote(function, safe='')}")

    # -- data-plane faults of the services (the outbox drainer's sinks meet these) -----------------
    def _add_service(self, action: str, kind: str, count: int | None, **kw) -> None:
        self._call("POST", "/faults", {"action": action, "kind": kind, "count": count, **kw})

    def partial(self, action: str, fraction: float, count: int | None = None, seed: int | None = None) -> None:
        """The next ``count`` requests (None: all) of a batch ``action`` (one of ``SERVICE_BATCH_ACTIONS``)
        fail round(``fraction`` × records) of their records, picked at random (``seed``: reproducibly).
        Failed records are not stored; the answer marks them as the service does (Kinesis
        ProvisionedThroughputExceededException, Firehose ServiceUnavailableException, SQS InternalError,
        EventBridge ThrottlingException) and the others carry the service's own result."""
        self._add_service(action, "partial", count, fraction=fraction, seed=seed)

    def throttle_service(self, action: str, count: int | None = 1) -> None:
        """The next ``count`` requests of ``action`` (``Service.Operation``) fail whole with the service's
        throttling error: Kinesis 400 ProvisionedThroughputExceededException, Firehose 500
        ServiceUnavailableException, SQS 400 RequestThrottled, EventBridge 400 ThrottlingException."""
        self._add_service(action, "throttle", count)

    def server_error_service(self, action: str, count: int | None = 1, status: int = 500) -> None:
        """The next ``count`` requests of ``action`` fail whole with a ``status`` (5xx) internal failure."""
        self._add_service(action, "server_error", count, status=status)

    def latency_service(self, action: str, ms: int, count: int | None = None) -> None:
        """The next ``count`` requests (None: all) of ``action`` wait ``ms`` milliseconds, then go on
        as usual (a far region, a slow network): for benchmarks that must not run on loopback speed."""
        self._add_service(action, "latency", count, ms=ms)

    def clear_service(self, action: str) -> None:
        """Clear one action's rules and counters."""
        self._call("DELETE", f"/faults?action={quote(action, safe='')}")

    def service_stats(self, action: str) -> dict:
        """Counters of ``action``: requests, faults, records_failed, throttled, server_errors, rules."""
        return self._call("GET", f"/stats?action={quote(action, safe='')}")
