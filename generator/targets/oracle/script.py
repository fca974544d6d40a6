"""The SQL*Plus scripts ``render --target oracle -o DIR`` writes for DBAs who install by hand.

Owns: classifying each rendered statement (plain SQL ends with ``;``; PL/SQL units, Java sources
and anonymous blocks end with a ``/`` line), the session settings a safe run needs, and the check
after each unit that turns "created with compilation errors" (which SQL*Plus only reports) into a
failure ``WHENEVER SQLERROR`` stops on. Must not render templates or talk to a database; the
statement classifier is shared with the installer (:mod:`.target`), so both agree on what an
object is.

A hand-run install does not write the registry; a later ``sqlambda install`` adopts what it finds
(every unit is ``CREATE OR REPLACE``; an existing queue table is adopted) and records it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlambda.artifacts import Artifact
from sqlambda.errors import RenderError
from sqlambda.templates import header
from sqlambda.templates import render as render_template

_NAME = r'(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$#]*)'
_CREATE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:AND\s+(?:RE)?(?:COMPILE|RESOLVE)\s+)?"
    r"(?:EDITIONABLE\s+|NONEDITIONABLE\s+)?"
    r"(?P<type>JAVA\s+SOURCE\s+NAMED|PACKAGE\s+BODY|PACKAGE|FUNCTION|PROCEDURE|TRIGGER|TYPE\s+BODY|TYPE|TABLE|INDEX|VIEW|SEQUENCE)\s+"
    rf"(?P<name>{_NAME}(?:\.{_NAME})?)",
    re.IGNORECASE,
)
#: object types Oracle compiles (and may create INVALID without failing the statement)
COMPILED = {"JAVA SOURCE", "PACKAGE", "PACKAGE BODY", "FUNCTION", "PROCEDURE", "TRIGGER", "TYPE", "TYPE BODY"}


@dataclass(frozen=True)
class CreatedObject:
    type: str  # as USER_OBJECTS.OBJECT_TYPE spells it: FUNCTION, PACKAGE BODY, JAVA SOURCE...
    owner: str | None  # None: the session's current schema
    name: str  # as the dictionary stores it (quotes removed; unquoted names upper-cased)

    @property
    def compiled(self) -> bool:
        return self.type in COMPILED


def _unquote(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.upper()


def created_object(statement: str) -> CreatedObject | None:
    """The object a ``CREATE`` statement makes, or None for other statements."""
    m = _CREATE.match(statement)
    if not m:
        return None
    kind = " ".join(m.group("type").upper().split())
    kind = "JAVA SOURCE" if kind.startswith("JAVA SOURCE") else kind
    parts = re.findall(_NAME, m.group("name"))
    owner, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return CreatedObject(kind, _unquote(owner) if owner else None, _unquote(name))


def is_block(statement: str) -> bool:
    """True for what SQL*Plus must end with a '/' line: PL/SQL units, Java sources, anonymous blocks."""
    obj = created_object(statement)
    if obj is not None:
        return obj.compiled
    return bool(re.match(r"^\s*(BEGIN|DECLARE)\b", statement, re.IGNORECASE))


def sqlplus_problem(statement: str) -> str | None:
    """Why SQL*Plus would not read ``statement`` as ONE statement (None when it would).

    SQL*Plus ends a PL/SQL unit or Java source at a line holding only "/" (runs it) or "." (stops
    entry), a plain SQL statement also at a line ending in ";", and runs a line starting with "#"
    (SQLPREFIX) as a command at once. Whatever came after such a line would run as commands of its
    own: HOST, GRANT... Literals never hold line breaks (``templates.oracle_literal``) and the spec
    refuses control characters, so this can only trip on a template bug; it is checked anyway,
    because the script is what a DBA runs by hand.
    """
    block = is_block(statement)
    lines = statement.split("\n")
    for i, line in enumerate(lines):
        bare = line.strip()
        if bare in ("/", "."):
            return f"line {i + 1} holds only {bare!r}, which ends the statement in SQL*Plus"
        if line.startswith("#"):
            return f"line {i + 1} starts with '#', which SQL*Plus runs as a command (SQLPREFIX)"
        if not block and i < len(lines) - 1 and bare.endswith(";"):
            return f"line {i + 1} ends with ';', which ends the statement in SQL*Plus"
        if "\r" in line:
            return f"line {i + 1} holds a carriage return"
    return None


def _terminated(statement: str) -> str:
    problem = sqlplus_problem(statement)
    if problem:
        first = statement.strip().splitlines()[0][:80] if statement.strip() else ""
        raise RenderError(f"refusing to write a SQL*Plus script: {problem} (statement starting {first!r})")
    return f"{statement}\n/\n" if is_block(statement) else f"{statement};\n"


def _check(obj: CreatedObject) -> str:
    """SHOW ERRORS for the reader, then a block that fails the run when the object has errors."""
    return render_template("oracle", "sqlplus_check.sql.j2", obj=obj)


def install_script(artifacts: list[Artifact], spec_name: str, spec_checksum: str) -> str:
    parts = [header(spec_name, spec_checksum), render_template("oracle", "sqlplus_prologue.sql.j2", action="install")]
    total = len(artifacts)
    for i, a in enumerate(artifacts, 1):
        parts.append(f"PROMPT [{i}/{total}] {a.summary or a.key}\n")
        for st in a.statements:
            parts.append(_terminated(st))
            obj = created_object(st)
            if obj is not None and obj.compiled:
                parts.append(_check(obj))
        parts.append("\n")
    parts.append("PROMPT sqlambda: install finished\n")
    return "".join(parts)


def uninstall_script(artifacts: list[Artifact], spec_name: str, spec_checksum: str) -> str:
    """Drops in reverse install order. Drop statements of objects already gone fail the run unless
    the DBA comments them out: ``sqlambda uninstall`` tolerates those, a hand-run script stays strict."""
    parts = [header(spec_name, spec_checksum), render_template("oracle", "sqlplus_prologue.sql.j2", action="uninstall")]
    ordered = sorted(artifacts, key=lambda a: (a.order, a.key), reverse=True)
    total = len(ordered)
    for i, a in enumerate(ordered, 1):
        parts.append(f"PROMPT [{i}/{total}] drop {a.key}\n")
        for st in a.drop:
            parts.append(_terminated(st))
        parts.append("\n")
    parts.append("PROMPT sqlambda: uninstall finished\n")
    return "".join(parts)


def render_files(loaded) -> dict[str, str]:
    """What ``render --target oracle -o DIR`` writes, as {file name: text} (used by golden tests)."""
    from sqlambda.targets.oracle.render import render

    r = render(loaded)
    return {
        "install.sql": install_script(r.artifacts, r.spec_name, r.spec_checksum),
        "uninstall.sql": uninstall_script(r.artifacts, r.spec_name, r.spec_checksum),
    }
