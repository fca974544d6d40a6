"""What ``sqlambda modernize status`` reports, as data: one :class:`ModernizeStatus` per function.

Owns the frozen dataclasses the targets fill (``Target.modernize()``) and the API and CLI show.
Must not: query a database (the targets do) or print (the CLI does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Mismatch:
    """One shadow comparison that did not match (or whose Lambda failed)."""

    compared_at: str
    args: Any
    original: Any
    lambda_result: Any
    lambda_error: str | None
    diff: str | None


@dataclass(frozen=True)
class ModernizeStatus:
    """One modernized function: its stage and the evidence for the next one.

    ``calls`` counts every call the router saw (a rollback does not uncount it), ``errors`` the
    original's errors in stage record, ``lambda_answers`` the calls the Lambda answered (canary,
    cutover), ``fallbacks`` the canary calls the original answered after the Lambda failed.
    ``compared`` / ``matched`` / ``lambda_errors`` are the drainer's shadow comparisons; latencies
    are microseconds (``None`` without data): the original's as the router measured it, the Lambda's
    as the router measured it where it answered calls, else as the drainer measured it.
    """

    name: str
    function: str
    lambda_name: str
    stage: str
    taken_at: str
    staged_at: str
    calls: int
    errors: int
    lambda_answers: int
    fallbacks: int
    kept: int
    shadow_queued: int
    compared: int
    matched: int
    lambda_errors: int
    original_p50_us: float | None
    original_p99_us: float | None
    lambda_p50_us: float | None
    lambda_p99_us: float | None
    lambda_measured_by: str
    mismatches: tuple[Mismatch, ...] = ()

    @property
    def match_rate(self) -> float | None:
        return None if not self.compared else self.matched / self.compared

    def to_dict(self) -> dict:
        d = asdict(self)
        d["match_rate"] = self.match_rate
        return d
