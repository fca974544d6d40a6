"""Packaging: every file under the non-Python folders is shipped in the wheel as package data.

`pip install sqlambda` alone must be able to render and install everything (DESIGN.md), so a
template or PL/Python module that the package-data globs miss would break installs from PyPI
while every test in a checkout still passes.
"""

from __future__ import annotations

import fnmatch
import os
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


# -- the built wheel, on every supported Python found on this machine ----------------------------

def _pythons() -> dict[str, str]:
    """One interpreter per minor version: the stock /usr/bin one first, then PATH, then pyenv's."""
    import glob
    import shutil
    import subprocess

    found: dict[str, str] = {}
    candidates = ["/usr/bin/python3"] + [shutil.which(f"python3.{m}") or "" for m in range(10, 15)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    for exe in candidates:
        if exe and os.access(exe, os.X_OK):
            out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True)
            if out.returncode == 0:
                found.setdefault(out.stdout.strip(), exe)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # the license metadata is in the current form: no deprecation from setuptools about it
    assert "license" not in " ".join(ln for ln in (res.stdout + res.stderr).splitlines() if "Deprecat" in ln).lower()
    (whl,) = out.glob("sqlambda-*.whl")
    return whl


@pytest.mark.slow
def test_license_file_and_spdx_metadata(wheel):
    import zipfile

    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        shipped = z.read(next(n for n in names if n.endswith("licenses/LICENSE"))).decode()
    assert "License-Expression: Apache-2.0" in meta.splitlines()
    assert shipped == text


@pytest.mark.slow
def test_the_wheel_runs_on_every_supported_python_here(wheel, tmp_path):
    import subprocess

    pythons = _pythons()
    supported = {v: exe for v, exe in pythons.items() if tuple(map(int, v.split("."))) >= (3, 11)}
    assert "3.11" in supported, pythons  # Debian 12's python3 at least
    print("testing the wheel with", supported)
    for version, exe in sorted(supported.items()):
        venv = tmp_path / f"venv{version}"
        subprocess.run([exe, "-m", "venv", str(venv)], check=True, timeout=120)
        pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              str(wheel)], capture_output=True, text=True, timeout=600)
        assert pip.returncode == 0, (version, pip.stderr[-3000:])
        exe_s = str(venv / "bin/sqlambda")
        for args in (["--version"], ["validate", "--json", _example(venv, "demo.yaml")],
                     ["render", _example(venv, "shop.yaml"), "-o", str(tmp_path / f"out{version}")],
                     ["iam-policy", _example(venv, "shop.yaml")]):
            res = subprocess.run([exe_s, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
            assert res.returncode == 0, (version, args, res.stderr)
        # pip users have no checkout: init copies the examples, and the README's paths work from there
        work = tmp_path / f"init{version}"
        res = subprocess.run([exe_s, "init", str(work), "--examples"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, (version, res.stderr)
        for rel in ("sqlambda.yaml", "sqlambda-examples/generator/examples/scenarios.yaml",
                    "sqlambda-examples/sql/postgres/samples/scenario_tables.sql", "sqlambda-examples/lambdas/echo/handler.py"):
            assert (work / rel).is_file(), (version, rel)
        # without the `local` extra, the stack says which extra to install
        res = subprocess.run([exe_s, "local", "start"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 10 and "sqlambda[local]" in res.stderr and "Traceback" not in res.stderr, res.stderr
    older = {v: exe for v, exe in pythons.items() if v == "3.10"}  # the newest unsupported one
    for version, exe in older.items():  # refused by pip with the reason, not installed half-way
        venv = tmp_path / f"old{version}"
        subprocess.run([exe, "-m", "venv", str(venv)], check=True, timeout=120)
        pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                             capture_output=True, text=True, timeout=600)
        assert pip.returncode != 0 and "'>=3.11'" in pip.stderr, (version, pip.stderr)


def _example(venv, name: str) -> str:
    import glob

    (path,) = glob.glob(str(venv / "lib/python3.*/site-packages/sqlambda/examples" / name))
    return path
