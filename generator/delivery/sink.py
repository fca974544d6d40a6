"""The one interface a batch of change events leaves through, and its Lambda implementation.

A :class:`Sink` sends one batch (a payload already cut to the route's limits) and answers None, or
a :class:`~sqlambda.delivery.model.Failure` that says whether retrying can help: ``transient``
(endpoint down, timeout, throttling, 5xx, credentials), ``function`` (the receiver's own error) or
``permanent`` (a request that can never succeed). :class:`LambdaSink` invokes the route's Lambda
through ``plpython/sqlambda_core.py`` (the module the database runs), so a failure is classified
exactly as a SQL caller sees it.

Must not: claim, record or retry across batches (the drainer does), or know any database.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

from sqlambda.delivery.model import PERMANENT, Failure, Route
from sqlambda.resources import plpython_module


class Sink(Protocol):
    def send(self, route: Route, payload: str) -> Failure | None:
        """Send one batch; None on success, else why not."""


class LambdaSink:
    """Invokes the route's Lambda with one batch (one boto3 client per settings, shared by the workers)."""

    def __init__(self, endpoint_url: str | None = None, request_timeout_ms: int = 30000,
                 connect_timeout_ms: int = 2000, max_attempts: int = 3) -> None:
        self.core = plpython_module("sqlambda_core")
        # precedence: explicit option, then AWS_ENDPOINT_URL, then the route (DBA override, else spec)
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.request_timeout_ms = request_timeout_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.max_attempts = max_attempts
        self.gd: dict = {}
        self._lock = threading.Lock()

    def cfg(self, route: Route) -> dict:
        return {
            "region": route.region,
            "endpoint_url": self.endpoint_url or route.endpoint_url,
            "connect_timeout_ms": self.connect_timeout_ms,
            "request_timeout_ms": self.request_timeout_ms,
            "max_attempts": self.max_attempts,
        }

    def send(self, route: Route, payload: str) -> Failure | None:
        """None on success, else the Failure (errorType and message, as the database reports it)."""
        return self.call(route, payload)[1]

    def call(self, route: Route, payload: str) -> tuple[str | None, Failure | None]:
        """The Lambda's response payload and None, or None and why it failed (a shadow comparison
        needs the answer itself; ``send`` needs only whether it came)."""
        core = self.core
        trig = plpython_module("sqlambda_triggers")
        cfg = self.cfg(route)
        with self._lock:  # create the shared client once, not once per thread
            core.client(self.gd, cfg, route.region)
        try:
            result = core.invoke_raw(None, self.gd, route.lambda_name, payload, trig.invocation_type(route.mode),
                                     "None", route.qualifier, cfg=cfg, raise_function_error=False)
        except core.LambdaFailure as failure:
            kind = "permanent" if failure.sqlstate in PERMANENT else "transient"
            if failure.sqlstate == "LA006" and not failure.retryable:
                kind = "permanent"  # an unexpected 4xx: retrying the same request cannot succeed
            return None, Failure(kind, f"[{failure.sqlstate}] {failure.message}")
        if result.get("function_error"):
            f = core.function_error(route.lambda_name, result["function_error"], result.get("payload") or "")
            return None, Failure("function", f"[{f.sqlstate}] {f.message}")
        return result.get("payload"), None
