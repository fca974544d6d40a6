"""Helpers for the CLI tests: ``sqlambda`` in a subprocess as a user runs it, and a folder of
packages that hide real ones (an import of them fails like a missing install)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SQLAMBDA = os.path.join(os.path.dirname(sys.executable), "sqlambda")


def run(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """``sqlambda ARGS``; the caller's DATABASE_URL / PG* never leak in; stdout and stderr are pipes."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    return subprocess.run([SQLAMBDA, *args], capture_output=True, text=True, env={**base, **(env or {})},
                          input=input, timeout=timeout, cwd=cwd)


def hiding(folder: Path, *modules: str) -> dict:
    """Environment whose PYTHONPATH puts packages named ``modules`` first, each failing to import."""
    for m in modules:
        pkg = folder / m
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(f"raise ImportError({f'No module named {m!r} (hidden by the test)'!r})\n")
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def no_traceback(res: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_bash_block(after: str) -> str:
    """The first ```bash block of README.md after the text ``after`` (a heading or a sentence), as written."""
    text = README.read_text()
    start = text.index(after)
    body = text[text.index("```bash\n", start) + len("```bash\n"):]
    return body[:body.index("```")]
