"""Artifacts: one database object each, as the statements that create it and the ones that drop it.

Rendering produces artifacts and nothing else touches templates afterwards: the planner compares
artifacts with the registry, the executor runs their statements. An artifact is pure data (a frozen
dataclass); its checksum covers exactly what would be executed, so a changed template, spec or
PL/Python body shows up as a ``replace`` step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Artifact:
    """One database object.

    ``key`` identifies the object inside the target across versions (e.g.
    ``function public.awslambda_fn(text,text)``); two artifacts of one render never share a key.
    ``statements`` create or replace it; ``drop`` removes it and is stored in the registry, so an
    object that later leaves the spec can still be removed exactly. ``replace`` says how a changed
    artifact is updated in place: ``"statements"`` (CREATE OR REPLACE), ``"recreate"`` (drop then
    create; safe for stateless objects such as triggers) or ``"refuse"`` (tables holding data: a
    change needs a human). ``interface`` is the part of the object an in-place replace cannot change
    (a PostgreSQL function's argument names, defaults and result type): when it differs from the
    installed one the planner recreates the object instead, and re-applies the artifacts that
    ``requires`` it (a DROP takes their grants with it).
    """

    key: str
    kind: str
    statements: tuple[str, ...]
    drop: tuple[str, ...] = ()
    order: int = 100
    replace: str = "statements"
    #: the file ``render -o`` writes this artifact into (several artifacts may share a file)
    file: str = "install.sql"
    #: catalog lookup facts a target's ``verify`` uses (e.g. {"regprocedure": "public.f(text)"})
    probe: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: a one-line, human description shown in plans
    summary: str = ""
    #: what CREATE OR REPLACE cannot change; "" when everything can be replaced in place
    interface: str = ""
    #: keys of artifacts this one is applied on (a grant requires its function)
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.replace not in ("statements", "recreate", "refuse"):
            raise ValueError(f"artifact {self.key}: bad replace mode {self.replace!r}")
        if not self.statements:
            raise ValueError(f"artifact {self.key}: no statements")

    @property
    def checksum(self) -> str:
        h = hashlib.sha256()
        for s in self.statements:
            h.update(s.encode())
            h.update(b"\x00")
        return h.hexdigest()

    @property
    def probe_dict(self) -> dict[str, str]:
        return dict(self.probe)


def check_unique(artifacts: list[Artifact]) -> list[Artifact]:
    """Return the artifacts sorted by (order, key) after checking keys are unique."""
    seen: dict[str, Artifact] = {}
    for a in artifacts:
        if a.key in seen:
            raise ValueError(f"two artifacts share the key {a.key!r}")
        seen[a.key] = a
    return sorted(artifacts, key=lambda a: (a.order, a.key))
