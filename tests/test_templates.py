"""The template plumbing every target renders with: statement splitting and literal quoting."""

from __future__ import annotations

import pytest

from sqlambda import templates
from sqlambda.errors import RenderError


def test_statements_are_split_on_boundary_lines_only():
    text = "CREATE TABLE a (x int)\n-- ;;\n-- a comment only\n-- ;;\nALTER TABLE a OWNER TO b\n"
    assert templates.split_statements(text) == ("CREATE TABLE a (x int)", "ALTER TABLE a OWNER TO b")


def test_a_boundary_glued_to_a_statement_is_a_render_error_not_a_lost_statement():
    # what a whitespace-eating {#- comment #} right after a boundary produced: the ALTER became part
    # of a comment line and never ran (the queue's row-level security was never enabled)
    with pytest.raises(RenderError) as e:
        templates.split_statements("CREATE TABLE a (x int)\n-- ;;ALTER TABLE a ENABLE ROW LEVEL SECURITY\n")
    assert "not on a line of its own" in e.value.message


@pytest.mark.parametrize("target", ["postgres", "oracle"])
def test_no_template_glues_a_boundary_to_a_statement(target):
    from sqlambda import resources

    for path in (resources.folder("sql") / target).rglob("*.j2"):
        text = path.read_text()
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "-- ;;" and i + 1 < len(lines):
                assert not lines[i + 1].lstrip().startswith(("{#-", "{%-")), f"{path.name}:{i + 2}"
