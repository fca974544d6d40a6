"""The Oracle Java client compiles for Java 8 with the JDK alone, in its documented load order."""

from __future__ import annotations

import struct
import subprocess

from ojava import JAVA_SRC, javac_or_skip, load_order


def test_load_order_lists_every_source_once():
    listed = [p.name for p in load_order()]
    on_disk = sorted(p.name for p in JAVA_SRC.glob("*.java"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_compiles_with_release_8_without_warnings(tmp_path):
    javac = javac_or_skip()
    proc = subprocess.run(
        [javac, "--release", "8", "-Xlint:all", "-Werror", "-encoding", "UTF-8", "-d", str(tmp_path),
         *map(str, load_order())],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    classes = sorted(tmp_path.rglob("*.class"))
    assert any(c.name == "LambdaInvoke.class" for c in classes)
    for c in classes:
        magic, _minor, major = struct.unpack(">IHH", c.read_bytes()[:8])
        assert magic == 0xCAFEBABE
        assert major == 52, f"{c.name} targets class version {major}, Oracle 19c needs 52 (Java 8)"


def test_each_source_compiles_after_only_the_ones_before_it(tmp_path):
    """Oracle's CREATE JAVA SOURCE takes one unit at a time: the load order must be a real order."""
    javac = javac_or_skip()
    for src in load_order():
        proc = subprocess.run(
            [javac, "--release", "8", "-encoding", "UTF-8", "-cp", str(tmp_path), "-d", str(tmp_path), str(src)],
            capture_output=True, text=True,
        )
        assert proc.returncode == 0, f"{src.name} does not compile after its predecessors:\n{proc.stderr}"


def test_no_class_outside_the_jdk_is_imported():
    allowed = ("java.", "javax.", "sqlambda.")
    for src in load_order():
        for line in src.read_text().splitlines():
            if line.startswith("import "):
                name = line.split()[-1].rstrip(";")
                if name.startswith("static "):
                    name = name.split()[-1]
                assert name.startswith(allowed), f"{src.name} imports {name}"
