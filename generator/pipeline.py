"""The deploy pipeline, written once for every target: spec -> artifacts -> plan -> execute.

Stages (each a plain function; :mod:`sqlambda.api` strings them together per command):

1. **load**: the YAML spec becomes a validated model (``sqlambda.spec``); ``None`` means the core only.
2. **render**: ``target.render(loaded)`` turns it into :class:`~sqlambda.artifacts.Artifact` objects,
   purely (templates only: no database, no network).
3. **plan**: :func:`sqlambda.plan.make_plan` compares the artifacts with the registry rows the
   target reads and decides create / replace / recreate / drop / unchanged per artifact
   (:func:`with_repairs` also re-applies objects the catalog shows missing or edited).
4. **execute**: an executor walks the plan. :class:`ApplyExecutor` runs each step through the
   target's hooks, honouring its ``transactional_ddl`` fact; :class:`DisplayExecutor` runs
   nothing and records what would run, which is all ``plan`` and ``install --dry-run`` are.
5. **verify**: :func:`verify_problems` compares artifacts, registry and catalog.
6. **uninstall** is a plan that drops everything the registry holds, executed by the same executor.

``render -o`` writes the target's ``script_files`` (whose statements go through
:func:`sqlambda.targets.base.terminated`, the target's declared terminators) with :func:`write_files`.

Must not: hold SQL, import a database driver, or know a target by name: every database-specific
step is a hook of :class:`~sqlambda.targets.base.Target`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlambda.artifacts import Artifact
from sqlambda.errors import InstallError
from sqlambda.plan import Plan, Step, reapply
from sqlambda.targets.base import Target


# -- render -o -------------------------------------------------------------------------------------
def write_files(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write {name: text} into ``out_dir`` (created), in name order; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# -- plan -------------------------------------------------------------------------------------------
def with_repairs(target: Target, conn: Any, plan: Plan, schema: str | None) -> Plan:
    """Turn ``unchanged`` steps whose object is missing or hand-edited into steps that re-create it."""
    damaged = target.damaged(conn, [s.artifact for s in plan.steps if s.action == "unchanged" and s.artifact], schema)
    steps = []
    for s in plan.steps:
        if s.key in damaged and s.artifact is not None:
            s = reapply(s, f"repair ({damaged[s.key]})")
        steps.append(s)
    return Plan(plan.target, tuple(steps))


# -- execute ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Executed:
    """One step as an executor handled it: what it did and the notes it left (e.g. already gone)."""

    action: str
    key: str
    kind: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"action": self.action, "key": self.key, "kind": self.kind, "notes": list(self.notes)}


class ApplyExecutor:
    """Runs each step of a plan in the database, one step at a time, through the target's hooks.

    With transactional DDL (PostgreSQL) a step's statements and its registry row run in one
    transaction, so a failing statement rolls all of it back. Without (Oracle) the statements run
    (each DDL commits), the registry row is written once they all succeeded, and a failure is logged:
    the next install plans that step again and every step is safe to run twice.
    """

    def __init__(self, target: Target, conn: Any, schema: str | None, spec_name: str, spec_checksum: str,
                 progress: Callable[[Step, int, int], None] | None = None) -> None:
        self.target, self.conn, self.schema = target, conn, schema
        self.spec_name, self.spec_checksum = spec_name, spec_checksum
        #: called before each step with (step, its number from 1, the number of steps)
        self.progress = progress
        self._done, self._total = 0, 0

    def step(self, step: Step) -> Executed:
        t, conn = self.target, self.conn
        self._done += 1
        if self.progress:
            self.progress(step, self._done, max(self._total, self._done))
        notes = list(t.before_step(conn, step, self.schema))
        scope = t.transaction(conn) if t.transactional_ddl else nullcontext()
        try:
            with scope:
                for statement in step.statements:
                    note = t.execute_statement(conn, step, statement)
                    if note:
                        notes.append(note)
                t.record_step(conn, self.schema, step, self.spec_name, self.spec_checksum, notes)
        except InstallError as exc:
            if not t.transactional_ddl:
                t.record_failure(conn, self.schema, step, exc.message)
            raise
        return Executed(step.action, step.key, step.kind, tuple(notes))

    def run(self, plan: Plan) -> tuple[Executed, ...]:
        self._done, self._total = 0, len(plan.changes)
        return tuple(self.step(s) for s in plan.changes)


class DisplayExecutor:
    """Runs nothing: what ``plan`` and ``install --dry-run`` show is the plan this walks."""

    def step(self, step: Step) -> Executed:
        return Executed(step.action, step.key, step.kind, ("not run: display only",))

    def run(self, plan: Plan) -> tuple[Executed, ...]:
        return tuple(self.step(s) for s in plan.changes)


# -- verify -----------------------------------------------------------------------------------------
def verify_problems(target: Target, conn: Any, artifacts: list[Artifact], schema: str | None, *,
                    with_damaged: bool = False) -> Any:
    """One line per problem: not installed, outdated, missing from the catalog, invalid or changed by hand.

    ``with_damaged``: (the lines, {key: what is wrong} of the objects only a repair fixes)."""
    installed = {r.key: r for r in target.read_registry(conn, schema)}
    damaged = target.damaged(conn, [a for a in artifacts if a.key in installed], schema)
    problems = []
    for a in artifacts:
        row = installed.get(a.key)
        if row is None:
            problems.append(f"{a.key}: not installed (run install)")
            continue
        if row.checksum != a.checksum:
            problems.append(f"{a.key}: installed version differs from the spec (run install)")
        if a.key in damaged:
            problems.append(f"{a.key}: {damaged[a.key]}")
    return (problems, damaged) if with_damaged else problems
