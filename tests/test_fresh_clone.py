"""The README's two commands in a clean copy of this tree, with stock Debian ``/usr/bin/python3``
first on PATH and nothing of this test run's environment (no venv, no PYTHONPATH).

Stock Debian 12 python3 refuses ``pip install`` outside a venv (PEP 668); before the fix
``.ci/dev`` swallowed that refusal and then failed with ``exec: sqlambda: not found`` (127). The
copy holds what ``git ls-files`` lists plus untracked files that are not ignored, i.e. what a
clone of this tree would hold. The test suite run inside it is narrowed to one folder (the whole
suite is what this test is part of).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sqlambda import resources

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.local_stack]

ROOT = resources.repo_root()
STOCK = "/usr/bin/python3"


def _stock_env() -> dict:
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: nothing to clone")
    if not os.access(STOCK, os.X_OK):
        pytest.skip(f"no stock {STOCK} on this machine")
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.split(b"\0")
    dest = tmp_path_factory.mktemp("clone") / "sqlambda"
    for rel in filter(None, listed):
        src = ROOT / rel.decode()
        if src.is_file():
            (dest / rel.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel.decode())
    return dest


def _dev(clone: Path, *args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    res = subprocess.run([str(clone / ".ci/dev"), *args], cwd=clone, env=_stock_env(), capture_output=True, text=True,
                         timeout=timeout)
    return res, time.monotonic() - started


def test_stock_python_is_externally_managed():
    # the premise: this machine's /usr/bin/python3 is a PEP 668 one, so the test below means something
    if not os.access(STOCK, os.X_OK):
        pytest.skip(f"no stock {STOCK}")
    res = subprocess.run([STOCK, "-c", "import sysconfig, os; print(os.path.exists(os.path.join("
                                      "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"], capture_output=True, text=True)
    assert res.stdout.strip() == "True"


def test_the_two_readme_commands_work_with_stock_python(clone):
    setup, first = _dev(clone, "setup")
    assert setup.returncode == 0, setup.stderr[-4000:]
    venv_python = clone / ".venv/bin/python"
    base = subprocess.run([str(venv_python), "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True)
    assert base.stdout.strip() == "/usr", base.stdout  # made by the stock python, not one of this run's
    again, second = _dev(clone, "setup")
    assert again.returncode == 0 and "installing sqlambda" not in again.stderr, again.stderr  # reused, not reinstalled

    demo, t_demo = _dev(clone, "demo")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "10/10 calls and 5/5 scenarios as expected" in demo.stdout + demo.stderr

    tests, t_tests = _dev(clone, "test", "tests/spec", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0 and " passed" in tests.stdout, tests.stdout[-3000:] + tests.stderr[-3000:]
    print(f"setup {first:.0f}s (again {second:.1f}s), demo {t_demo:.0f}s, tests/spec {t_tests:.0f}s")


def test_an_install_failure_stops_setup_with_its_message(clone, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(clone, broken, ignore=shutil.ignore_patterns(".venv"))
    pyproject = broken / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('dependencies = [', 'dependencies = [\n  "sqlambda-no-such-package>=1",', 1))
    res, _ = _dev(broken, "setup")
    assert res.returncode == 1, res.stderr
    assert "sqlambda-no-such-package" in res.stderr and "pip install -e .[test] failed" in res.stderr
    assert not (broken / ".venv/.sqlambda-stamp").exists()
