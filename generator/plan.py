"""The planner: compare rendered artifacts with what the registry says is installed.

``plan`` and ``install`` share this one function; only the executor differs
(:class:`sqlambda.pipeline.DisplayExecutor` runs nothing, :class:`sqlambda.pipeline.ApplyExecutor`
runs each step through the target's hooks). The planner is pure: no database, no templates. Its
input is the artifact list and a snapshot of registry rows; its output is a frozen :class:`Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Literal

from sqlambda.artifacts import Artifact
from sqlambda.errors import InstallError

Action = Literal["create", "replace", "recreate", "drop", "unchanged"]


@dataclass(frozen=True)
class InstalledRow:
    """What the registry remembers of one installed artifact."""

    key: str
    kind: str
    checksum: str
    drop: tuple[str, ...]
    order: int = 100
    #: the artifact's ``interface`` when it was installed; None when the registry did not record it
    interface: str | None = None


@dataclass(frozen=True)
class Step:
    action: Action
    key: str
    kind: str
    #: statements to run for this step (empty for unchanged)
    statements: tuple[str, ...]
    checksum: str | None
    previous_checksum: str | None = None
    artifact: Artifact | None = field(default=None, compare=False, repr=False)
    summary: str = ""

    @property
    def changes(self) -> bool:
        return self.action != "unchanged"


@dataclass(frozen=True)
class Plan:
    target: str
    steps: tuple[Step, ...]

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.changes)

    @property
    def is_noop(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "replace": 0, "recreate": 0, "drop": 0, "unchanged": 0}
        for s in self.steps:
            out[s.action] += 1
        return out

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "counts": self.counts(),
            "steps": [
                {"action": s.action, "key": s.key, "kind": s.kind, "checksum": s.checksum,
                 "previous_checksum": s.previous_checksum, "summary": s.summary}
                for s in self.steps
            ],
        }


def _interface_changed(a: Artifact, row: InstalledRow) -> bool:
    """An in-place replace would be refused (e.g. a function's result type changed).

    A row installed before interfaces were recorded (None) counts as unchanged: its replace is
    tried, and the step records the interface for next time.
    """
    return bool(a.interface) and row.interface is not None and row.interface != a.interface


def reapply(step: Step, summary: str) -> Step:
    """An unchanged step run again as its artifact is updated: drop then create for ``recreate``
    artifacts, its statements otherwise (a repair, or a dependent of a recreated object)."""
    a = step.artifact
    assert a is not None, step.key
    if a.replace == "recreate":
        return replace(step, action="recreate", statements=a.drop + a.statements, summary=summary)
    return replace(step, action="replace", statements=a.statements, summary=summary)


def _reapply_dependents(steps: list[Step]) -> list[Step]:
    """Unchanged artifacts that require a recreated one run again: the DROP removed them too.

    Steps are in install order, so a dependent always comes after what it requires.
    """
    recreated = {s.key for s in steps if s.action == "recreate"}
    out = []
    for s in steps:
        a = s.artifact
        if s.action == "unchanged" and a is not None and a.replace != "refuse" and recreated.intersection(a.requires):
            s = reapply(s, f"{a.summary} (again: {', '.join(sorted(recreated.intersection(a.requires)))} is recreated)")
            if s.action == "recreate":
                recreated.add(s.key)
        out.append(s)
    return out


def make_plan(target: str, artifacts: Iterable[Artifact], installed: Iterable[InstalledRow], *, remove_all: bool = False) -> Plan:
    """Steps that bring the database from ``installed`` to ``artifacts``.

    Drops come first, in reverse install order (dependents before what they depend on), then
    creates and replaces in install order. With ``remove_all`` every installed artifact is dropped
    (``uninstall``) and nothing is created.
    """
    wanted = {a.key: a for a in artifacts} if not remove_all else {}
    have = {r.key: r for r in installed}

    drops = [r for k, r in have.items() if k not in wanted]
    drops.sort(key=lambda r: (r.order, r.key), reverse=True)
    steps: list[Step] = [
        Step("drop", r.key, r.kind, r.drop, None, r.checksum, summary=f"drop {r.kind} {r.key}") for r in drops
    ]

    for a in sorted(wanted.values(), key=lambda a: (a.order, a.key)):
        row = have.get(a.key)
        if row is None:
            steps.append(Step("create", a.key, a.kind, a.statements, a.checksum, None, a, a.summary))
        elif row.checksum == a.checksum:
            steps.append(Step("unchanged", a.key, a.kind, (), a.checksum, row.checksum, a, a.summary))
        elif a.replace == "recreate" or (a.replace == "statements" and _interface_changed(a, row)):
            summary = a.summary if a.replace == "recreate" else f"{a.summary} (drop and create: {row.interface} -> {a.interface})"
            steps.append(Step("recreate", a.key, a.kind, row.drop + a.statements, a.checksum, row.checksum, a, summary))
        elif a.replace == "statements":
            steps.append(Step("replace", a.key, a.kind, a.statements, a.checksum, row.checksum, a, a.summary))
        else:
            raise InstallError(
                f"{a.kind} {a.key} changed since it was installed and holds data, so it is not replaced automatically",
                hint="migrate it by hand (or uninstall and install again if its data may go)",
            )
    steps = _reapply_dependents(steps)
    return Plan(target, tuple(steps))
