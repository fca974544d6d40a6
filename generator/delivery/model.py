"""What every target's drainer shares: routes, failures, run statistics, queue status, backoff.

Must not: talk to a database or to AWS (targets claim and record; sinks send).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

#: SQLSTATEs of failures that can never succeed by retrying: no such function (404), payload too
#: large (413), invalid request (400)
PERMANENT = frozenset(("42883", "54000", "22023", "22P02"))


@dataclass(frozen=True)
class Route:
    """Where one route's events go (a row of ``<schema>.outbox_route``). For a sink route
    ``lambda_name`` is the sink's target (stream, delivery stream, queue, bus) and ``key_columns``
    the columns keying its records (the table's primary key unless the spec names them)."""

    trigger_name: str
    table_name: str
    lambda_name: str
    qualifier: str | None
    mode: str
    max_rows: int
    max_bytes: int
    max_attempts: int
    base_delay_ms: int
    max_delay_ms: int
    region: str
    endpoint_url: str | None
    max_age_s: int = 86_400
    sink: str = "lambda"
    key_columns: tuple[str, ...] | None = None
    source: str | None = None

    @property
    def spec_trigger(self) -> str:
        """The spec trigger (a trigger streaming to a Lambda and a sink has routes ``t`` and ``t@sink``)."""
        return self.trigger_name.split("@", 1)[0]


@dataclass(frozen=True)
class Failure:
    """Why a batch was not delivered: ``kind`` is transient, function or permanent (see module doc)."""

    kind: str
    text: str


@dataclass
class DrainStats:
    """What a drain run did. ``delivered`` counts events; a redelivered event counts again."""

    delivered: int = 0
    batches: int = 0
    failed_batches: int = 0
    failed_events: int = 0
    dead: int = 0
    last_error: str | None = None
    #: claims made (each a short transaction); a NOTIFY, which any role may send, costs at most one
    polls: int = 0
    #: modernize shadow calls compared (``sqlambda.targets.postgres.shadow``)
    compared: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: Any) -> None:
        with self._lock:
            for k, v in counts.items():
                if k == "last_error":
                    self.last_error = v
                else:
                    setattr(self, k, getattr(self, k) + v)

    @property
    def ok(self) -> bool:
        """False when the run dead-lettered anything, or had events to send and delivered none."""
        return self.dead == 0 and not (self.delivered == 0 and self.compared == 0 and self.failed_events > 0)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("delivered", "batches", "failed_batches", "failed_events", "dead", "last_error", "polls", "compared")}
        out["ok"] = self.ok
        return out


@dataclass(frozen=True)
class TriggerStatus:
    trigger: str
    table: str | None
    lambda_name: str | None
    sink: str | None
    queued: int
    ready: int
    waiting_retry: int
    in_flight: int
    dead: int
    oldest_age_seconds: float | None


@dataclass(frozen=True)
class OutboxStatus:
    """The two numbers operators alert on (``depth``, ``oldest_age_seconds``) and their breakdown."""

    schema: str
    depth: int
    in_flight: int
    waiting_retry: int
    dead: int
    oldest_age_seconds: float | None
    triggers: tuple[TriggerStatus, ...]

    @property
    def sinks(self) -> tuple["SinkStatus", ...]:
        """Depth and lag per destination (a Lambda, a stream, a queue...): the routes sending to it summed."""
        by: dict[tuple[str, str], list[TriggerStatus]] = {}
        for t in self.triggers:
            by.setdefault((t.sink or "lambda", t.lambda_name or "?"), []).append(t)
        out = []
        for (kind, target), ts in sorted(by.items()):
            ages = [t.oldest_age_seconds for t in ts if t.oldest_age_seconds is not None]
            out.append(SinkStatus(kind, target, tuple(t.trigger for t in ts), sum(t.queued for t in ts),
                                  sum(t.in_flight for t in ts), sum(t.waiting_retry for t in ts), sum(t.dead for t in ts),
                                  max(ages) if ages else None))
        return tuple(out)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["triggers"] = [asdict(t) for t in self.triggers]
        d["sinks"] = [asdict(s) for s in self.sinks]
        return d


@dataclass(frozen=True)
class SinkStatus:
    """One destination's share of the queue: ``depth`` events queued for it, ``lag_seconds`` the
    age of its oldest (how far behind the destination is)."""

    kind: str
    target: str
    routes: tuple[str, ...]
    depth: int
    in_flight: int
    waiting_retry: int
    dead: int
    lag_seconds: float | None


def backoff_seconds(route: Route, attempts: int) -> float:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, capped."""
    delay = min(route.max_delay_ms, route.base_delay_ms * (2 ** min(max(0, attempts - 1), 40))) / 1000.0
    return delay / 2 + random.uniform(0, delay / 2)
