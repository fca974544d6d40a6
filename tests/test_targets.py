"""The target table and the declared protocol: every target implements every hook, and declares the
facts the pipeline reads; a target missing a hook cannot even be created."""

from __future__ import annotations

import inspect

import pytest

from sqlambda.targets import TARGETS, get_target
from sqlambda.targets.base import Target, terminated


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_target_implements_the_whole_protocol_with_its_signatures(name):
    t = get_target(name)
    assert isinstance(t, Target) and t.name == name
    assert isinstance(t.transactional_ddl, bool) and t.statement_terminator
    for hook, declared in inspect.getmembers(Target, predicate=inspect.isfunction):
        if not getattr(declared, "__isabstractmethod__", False):
            continue
        impl = getattr(type(t), hook)
        assert not getattr(impl, "__isabstractmethod__", False), f"{name} lacks {hook}"
        want = [p for p in inspect.signature(declared).parameters]
        got = [p for p in inspect.signature(impl).parameters]
        assert got[:len(want)] == want, f"{name}.{hook}{tuple(got)} does not match the protocol {tuple(want)}"


def test_a_target_missing_a_hook_cannot_be_created():
    class Half(Target):
        name = "half"
        transactional_ddl = True

        def render(self, loaded):
            return []

    with pytest.raises(TypeError) as e:
        Half()
    assert "abstract" in str(e.value) and "connect" in str(e.value)


def test_scripts_end_statements_with_the_terminators_the_target_declares():
    pg, ora = get_target("postgres"), get_target("oracle")
    assert terminated(pg, "DO $$ BEGIN NULL; END $$") == "DO $$ BEGIN NULL; END $$;"
    assert terminated(ora, "CREATE TABLE t (a NUMBER)") == "CREATE TABLE t (a NUMBER);"
    assert terminated(ora, "BEGIN\n  NULL;\nEND;") == "BEGIN\n  NULL;\nEND;\n/"
