"""``sqlambda init``: a commented starter spec, and for pip users (who have no checkout) a copy of the
example specs, the sample SQL and the example Lambdas to read and run.

Owns: writing ``sqlambda.yaml`` from ``examples/starter.yaml`` (with the project name filled in and
the result validated by the real loader), and copying the examples into ``sqlambda-examples/``
laid out like a checkout (``generator/examples``, ``sql/postgres/samples``, ``lambdas``), so the
README's commands run unchanged from inside that folder. Never overwrites a file unless told to.
Must not touch a database or AWS.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sqlambda import resources
from sqlambda.errors import UsageError

SPEC_NAME = "sqlambda.yaml"
EXAMPLES_DIR = "sqlambda-examples"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def starter_text(project: str = "myapp") -> str:
    """The starter spec with ``project`` filled in."""
    if not _IDENT.match(project):
        raise UsageError(f"project {project!r} is not a SQL identifier",
                         hint="a letter or _, then letters, digits or _, at most 63 characters")
    text = (resources.examples() / "starter.yaml").read_text()
    return text.replace("project: myapp ", f"project: {project} ", 1)


def _example_files() -> list[tuple[Path, str]]:
    """(source, path inside the copy) for every example file a reader or the README needs."""
    out = [(p, f"generator/examples/{p.name}") for p in sorted(resources.examples().glob("*.yaml"))]
    samples = resources.folder("sql") / "postgres" / "samples"
    out += [(p, f"sql/postgres/samples/{p.name}") for p in sorted(samples.glob("*.sql"))]
    lambdas = resources.folder("lambdas")
    out += [(p, "lambdas/" + p.relative_to(lambdas).as_posix()) for p in sorted(lambdas.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return out


def init(dest: str | Path = ".", *, project: str = "myapp", examples: bool = False, force: bool = False) -> list[Path]:
    """Write the starter spec (and with ``examples`` the copy of the examples) into ``dest``; the
    files written. Refuses, before writing anything, when one of them exists and ``force`` is off."""
    from sqlambda.spec.loader import load_spec_text

    dest = Path(dest)
    text = starter_text(project)
    load_spec_text(text, SPEC_NAME)  # what is written is a valid spec
    plan: list[tuple[Path | None, Path]] = [(None, dest / SPEC_NAME)]
    if examples:
        plan += [(src, dest / EXAMPLES_DIR / rel) for src, rel in _example_files()]
    existing = [target for _, target in plan if target.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise UsageError(f"{shown} already exist{'s' if len(existing) == 1 else ''}; nothing was written",
                         hint="pass --force to overwrite, or choose another folder")
    written = []
    try:
        for src, target in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            if src is None:
                target.write_text(text)
            else:
                shutil.copyfile(src, target)
            written.append(target)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return written
