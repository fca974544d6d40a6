"""Golden renders: for every target in the target table, the no-spec core and every example spec
render to the files under tests/golden/<target>/<example>/, byte for byte.

The files are what ``sqlambda render --target <t> -o DIR`` writes (``Target.script_files``): for
PostgreSQL one file per artifact group plus ``uninstall.sql``, for Oracle ``install.sql`` and
``uninstall.sql`` for SQL*Plus. A change to a template, a plpython/ module, a Java source or a
renderer shows up here as a diff to review. Regenerate after an intended change with::

    SQLAMBDA_UPDATE_GOLDEN=1 python -m pytest tests/golden

A new target gets its goldens from the same command. An example a target cannot render (Oracle: a
trigger without an explicit ``columns`` list) has a golden ``RENDER_ERROR.txt`` holding the exact
error a user would see. The tool version in headers is pinned to GOLDEN_VERSION, and spec paths
are shown relative to the examples folder, so neither a release nor the machine churns the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sqlambda
from sqlambda import resources, templates
from sqlambda.errors import RenderError
from sqlambda.spec.loader import load_spec_file
from sqlambda.targets import TARGETS, get_target

GOLDEN = Path(__file__).resolve().parent
GOLDEN_VERSION = "0.0.0-golden"
UPDATE = os.environ.get("SQLAMBDA_UPDATE_GOLDEN") == "1"
EXAMPLES = sorted(resources.examples().glob("*.yaml"))
NO_SPEC_CHECKSUM = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of nothing


@pytest.fixture(autouse=True)
def _pinned_version(monkeypatch):
    monkeypatch.setattr(sqlambda, "__version__", GOLDEN_VERSION)
    monkeypatch.setattr(templates, "__version__", GOLDEN_VERSION)


def _load(path: Path | None):
    if path is None:
        return None
    loaded = load_spec_file(path)
    return type("Loaded", (), {"spec": loaded.spec, "path": f"examples/{path.name}", "checksum": loaded.checksum})()


def _render(target: str, loaded) -> dict[str, str]:
    t = get_target(target)
    try:
        artifacts = t.render(loaded)
        name, checksum = (str(loaded.path), loaded.checksum) if loaded is not None else ("(no spec)", NO_SPEC_CHECKSUM)
        return t.script_files(artifacts, loaded, name, checksum)
    except RenderError as exc:
        return {"RENDER_ERROR.txt": exc.message + "\n"}


def _compare(target: str, name: str, files: dict[str, str]) -> None:
    folder = GOLDEN / target / name
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if old.name not in files:
                old.unlink()
        for fname, text in files.items():
            (folder / fname).write_text(text, encoding="utf-8")
        return
    assert folder.is_dir(), f"no golden files for {target}/{name}; run SQLAMBDA_UPDATE_GOLDEN=1 python -m pytest tests/golden"
    expected = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert sorted(files) == sorted(expected), f"{target}/{name}: rendered files differ from the golden set"
    for fname, text in files.items():
        assert text == expected[fname], (
            f"{target}/{name}/{fname} differs from its golden file; review the change, then regenerate with "
            "SQLAMBDA_UPDATE_GOLDEN=1 python -m pytest tests/golden"
        )


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda p: "no_spec" if p is None else p.stem)
def test_golden(target, example):
    _compare(target, "no_spec" if example is None else example.stem, _render(target, _load(example)))


RELEASES_SPEC = GOLDEN / "specs" / "oracle_releases.yaml"


@pytest.mark.parametrize("version", __import__("sqlambda.targets.oracle.render", fromlist=["VERSIONS"]).VERSIONS)
def test_golden_oracle_release(version):
    """What differs between Oracle releases (oracle.version), one golden set per release."""
    import yaml

    from sqlambda.spec.model import Spec

    data = yaml.safe_load(RELEASES_SPEC.read_text())
    data["oracle"]["version"] = version
    loaded = type("Loaded", (), {"spec": Spec.model_validate(data), "path": f"specs/{RELEASES_SPEC.name}",
                                 "checksum": "r" * 64})()
    _compare("oracle", f"release-{version}", _render("oracle", loaded))


def test_every_target_has_goldens_for_every_example():
    from sqlambda.targets.oracle.render import VERSIONS

    for target in TARGETS:
        have = {p.name for p in (GOLDEN / target).iterdir() if p.is_dir()}
        extra = {f"release-{v}" for v in VERSIONS} if target == "oracle" else set()
        assert have == {"no_spec", *(e.stem for e in EXAMPLES), *extra}, target
