"""Helpers for the compatibility tests: the original texts (tests/compat/original, see SOURCE.md)
and a database with the bridge whose calls go to the session's local stack."""

from __future__ import annotations

import re
from pathlib import Path

ORIGINAL = Path(__file__).resolve().parent / "original"


def original(name: str) -> str:
    """An original file, exactly as published (bytes decoded as UTF-8, nothing stripped)."""
    return (ORIGINAL / name).read_bytes().decode()


def py3(source: str) -> str:
    """The one change allowed to the original Lambdas: Python 2 print statements become calls."""
    return re.sub(r'^(\s*)print (.+?)\s*$', r"\1print(\2)", source, flags=re.M)
