"""Helpers for the Oracle Java client tests: compile ``oracle_java/`` and the test harnesses
with ``javac --release 8`` once per session and run their ``main`` methods on the real JVM.

Owns: building and launching Java. Must not: fake any AWS endpoint; the invoke tests talk to
``sqlambda local`` through the fixtures in ``tests/fixtures_local.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from sqlambda import resources

HERE = Path(__file__).resolve().parent
JAVA_SRC = resources.folder("oracle_java")
HARNESSES = sorted(HERE.glob("*.java"))


def javac_or_skip() -> str:
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("javac not found on PATH: install a JDK (8 or newer) to test oracle_java/")
    return javac


def load_order() -> list[Path]:
    """The Java sources in the order Oracle must load them (oracle_java/LOAD_ORDER)."""
    names = (JAVA_SRC / "LOAD_ORDER").read_text().split()
    return [JAVA_SRC / n for n in names]


@dataclass(frozen=True)
class JavaBuild:
    classes: Path

    def run(self, main: str, *args: str, input: str | None = None, props: dict | None = None,
            env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``main`` with a clean environment (no AWS_* variables leak in from the host)."""
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base_env.update(env or {})
        cmd = [shutil.which("java") or "java", "-cp", str(self.classes)]
        cmd += [f"-D{k}={v}" for k, v in (props or {}).items()]
        cmd += [main, *args]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                              env=base_env, encoding="utf-8")


