"""Packaging: every file under the non-Python folders is shipped in the wheel as package data.

`pip install sqlambda` alone must be able to render and install everything (DESIGN.md), so a
template or PL/Python module that the package-data globs miss would break installs from PyPI
while every test in a checkout still passes.
"""

from __future__ import annotations

import fnmatch
import tomllib

import pytest

from sqlambda import resources

ROOT = resources.repo_root()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _matches(rel: str, patterns: list[str]) -> bool:
    # setuptools' "**/" also matches files at the top of the folder
    return any(fnmatch.fnmatch(rel, p) or (p.startswith("**/") and fnmatch.fnmatch(rel, p[3:])) for p in patterns)


@pytest.mark.parametrize("folder", ["sql", "plpython", "oracle_java", "lambdas"])
def test_every_file_is_package_data(folder):
    package = f"sqlambda._data.{folder}"
    assert SETUPTOOLS["package-dir"][package] == folder
    assert package in SETUPTOOLS["packages"]
    patterns = SETUPTOOLS["package-data"][package]
    base = ROOT / folder
    files = [p.relative_to(base).as_posix() for p in base.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".class")]
    assert files, f"{folder}/ is empty"
    missed = [f for f in files if not _matches(f, patterns)]
    assert not missed, f"not shipped in the wheel: {missed}"


def test_every_python_package_is_listed():
    pkg_root = ROOT / "generator"
    found = {"sqlambda" + ("." + ".".join(p.parent.relative_to(pkg_root).parts) if p.parent != pkg_root else "")
             for p in pkg_root.rglob("__init__.py")}
    assert found <= set(SETUPTOOLS["packages"]), f"missing from [tool.setuptools].packages: {sorted(found - set(SETUPTOOLS['packages']))}"
