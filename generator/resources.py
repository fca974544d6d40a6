"""Where the non-Python folders (sql/, plpython/, oracle_java/, lambdas/, mysql_udf/) are found.

In a source checkout or an editable install they sit next to ``generator/``; in a wheel they are
shipped as package data under ``sqlambda/_data/``. Nothing else in the package should compute
these paths.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

_PKG = Path(__file__).resolve().parent
_FOLDERS = ("sql", "plpython", "oracle_java", "lambdas", "mysql_udf")


def _root() -> Path:
    checkout = _PKG.parent
    if (checkout / "sql").is_dir() and (checkout / "plpython").is_dir():
        return checkout
    return _PKG / "_data"


def folder(name: str) -> Path:
    """Path of one of the shipped folders: ``sql``, ``plpython``, ``oracle_java``, ``lambdas``, ``mysql_udf``."""
    if name not in _FOLDERS:
        raise ValueError(f"unknown resource folder {name!r}")
    return _root() / name


def examples() -> Path:
    """Folder of the example specs shipped inside the package."""
    return _PKG / "examples"


def repo_root() -> Path:
    """The checkout root (only meaningful in a source checkout; used by tests and benches)."""
    return _PKG.parent


@lru_cache(maxsize=None)
def plpython_module(name: str) -> Any:
    """``plpython/<name>.py`` loaded as a plain module: the same file the database runs, so rules
    written there once (batch cutting, error classification, the endpoint rule) hold outside too."""
    import sys

    if name == "sqlambda_core":
        # the core imports its call path by its bare name, as the database's loader provides it
        sys.modules.setdefault("sqlambda_http", plpython_module("sqlambda_http"))
    elif name != "sqlambda_http":
        # the modules import the core by its bare name, as the database's loader provides it
        sys.modules.setdefault("sqlambda_core", plpython_module("sqlambda_core"))
    path = folder("plpython") / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sqlambda._plpython_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
