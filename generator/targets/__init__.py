"""The explicit table of targets. Adding a database adds one entry here, nothing else."""

from __future__ import annotations

from sqlambda.errors import UsageError
from sqlambda.targets.base import Target


def _postgres() -> Target:
    from sqlambda.targets.postgres import PostgresTarget

    return PostgresTarget()


def _oracle() -> Target:
    from sqlambda.targets.oracle import OracleTarget

    return OracleTarget()


TARGETS = {"postgres": _postgres, "oracle": _oracle}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]()
    except KeyError:
        raise UsageError(f"unknown target {name!r}; choose one of: {', '.join(sorted(TARGETS))}") from None
