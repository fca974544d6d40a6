"""The Oracle Java client compiled once per session (``javac --release 8``): the ``java_build``
fixture, for the Java tests under tests/oracle_java/ and the compatibility tests. Helpers live in
``tests/oracle_java/ojava.py``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "oracle_java"))

from ojava import HARNESSES, JavaBuild, javac_or_skip, load_order  # noqa: E402


@pytest.fixture(scope="session")
def java_build(tmp_path_factory) -> JavaBuild:
    javac = javac_or_skip()
    if shutil.which("java") is None:
        pytest.skip("java not found on PATH: install a JDK to run oracle_java/ tests")
    out = tmp_path_factory.mktemp("oracle_java_classes")
    sources = [str(p) for p in load_order()] + [str(p) for p in HARNESSES]
    proc = subprocess.run([javac, "--release", "8", "-encoding", "UTF-8", "-d", str(out), *sources],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"javac failed:\n{proc.stdout}\n{proc.stderr}"
    return JavaBuild(out)
