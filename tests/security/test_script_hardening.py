"""Spec strings that reach a rendered script can never change its structure (issue 13, property 5).

The attack: a payload key (or any spec string) holding a newline and a lone "/" renders a line that
ends the PL/SQL unit in SQL*Plus, and what follows (HOST ..., GRANT DBA TO PUBLIC) would run; a
description holding "-- ;;" cut a PostgreSQL statement in two; a NUL failed with no position; an
endpoint "https://*" became SocketPermission '*:443'. Identifiers, keys and qualifiers refuse
control characters at validation, at their file:line:col; free text (descriptions, defaults) may hold
line breaks, which every target renders as escapes, so they round-trip; the SQL*Plus writer refuses
any statement SQL*Plus would not read as one.
"""

from __future__ import annotations

import types

import psycopg
import pytest

from sqlambda import api
from sqlambda.artifacts import Artifact
from sqlambda.errors import RenderError, SpecError
from sqlambda.spec.loader import load_spec_text
from sqlambda.spec.model import Spec
from sqlambda.targets.oracle.render import render as render_oracle
from sqlambda.targets.oracle.script import install_script, sqlplus_problem
from sqlambda.targets.postgres.render import render_files

INJECTION = "x\n/\nHOST rm -rf /\nGRANT DBA TO PUBLIC\n/\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_spec_text(text, "s.yaml")
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize("field,yaml_value,where", [
    ("key", '"x\\n/\\nGRANT DBA TO PUBLIC"', "s.yaml:6:28: functions[0].args.a.key"),
    ("key", '"tab\\there"', "s.yaml:6:28: functions[0].args.a.key"),
    ("key", '"nul\\0"', "s.yaml:6:28: functions[0].args.a.key"),
    ("key", '"line\\u2028sep"', "s.yaml:6:28: functions[0].args.a.key"),
    ("default", '"nul\\0"', "s.yaml:6:32: functions[0].args.a.default"),
    ("default", '"bell\\a"', "s.yaml:6:32: functions[0].args.a.default"),
])
def test_control_characters_are_refused_at_their_position(field, yaml_value, where):
    text = ("project: p\nfunctions:\n  - name: f\n    lambda: echo\n    args:\n"
            f"      a: {{type: text, {field}: {yaml_value}}}\n")
    problems = _problems(text)
    assert len(problems) == 1 and problems[0].startswith(where), problems


def test_a_nul_in_a_description_is_refused_at_its_position():
    problems = _problems('project: p\nfunctions:\n  - name: f\n    lambda: echo\n    description: "a\\0b"\n')
    assert problems[0].startswith("s.yaml:5:18: functions[0].description") and "U+0000" in problems[0]


@pytest.mark.parametrize("url", ["https://*", "https://*.amazonaws.com", "http://[::1", "http://host/prefix/",
                                 "http://user:pw@host", "http://host?x", "file:///etc/passwd", "http://h\n/"])
def test_endpoints_with_wildcards_paths_or_credentials_are_refused(url):
    problems = _problems(f"project: p\naws:\n  endpoint_url: {url!r}\n".replace("'", '"'))
    assert problems and problems[0].startswith("s.yaml:3:17: aws.endpoint_url"), problems


def _spec(**extra) -> Spec:
    return Spec.model_validate({
        "project": "inj",
        "aws": {"endpoint_url": "http://127.0.0.1:4566"},
        "functions": [{"name": "f", "lambda": "echo", "description": "first line\n-- ;;\n/\nHOST id\n" + INJECTION,
                       "args": {"b": "bigint", "a": {"type": "text", "default": INJECTION}}, **extra}],
        "triggers": [{"name": "t_out", "table": "orders", "lambda": "echo", "delivery": "outbox", "columns": ["id"]}],
    })


def _loaded(spec: Spec):
    return types.SimpleNamespace(spec=spec, path="inj.yaml", checksum="8" * 64)


def test_free_text_never_breaks_a_sqlplus_script():
    script = install_script(render_oracle(_loaded(_spec())).artifacts, "inj.yaml", "8" * 64)
    lines = script.splitlines()
    assert "GRANT DBA TO PUBLIC" not in lines and "HOST rm -rf /" not in lines and "HOST id" not in lines
    # every "/" line ends a unit the writer meant to end: the line before it closes a block
    for i, line in enumerate(lines):
        if line.strip() == "/":
            assert lines[i - 1].rstrip().endswith((";", "END", "}")) or lines[i - 1].strip().upper().startswith("END"), \
                (i, lines[i - 3:i + 1])


def test_free_text_never_breaks_a_postgres_statement():
    files = render_files(_loaded(_spec()))
    text = "\n".join(files.values())
    assert "\nGRANT DBA TO PUBLIC\n" not in text and "\n-- ;;\n" not in "\n".join(files.values())
    assert "E'first line\\u000a-- ;;\\u000a/\\u000aHOST id" in text


@pytest.mark.parametrize("statement", [
    "CREATE OR REPLACE PROCEDURE p AS\nBEGIN\n  NULL;\nEND;\n/\nGRANT DBA TO PUBLIC",
    "CREATE OR REPLACE PACKAGE BODY p AS\n.\nHOST id",
    "CREATE TABLE t (a int);\nGRANT DBA TO PUBLIC",
    "BEGIN\n  NULL;\nEND;\n#HOST id",
    "BEGIN\n  NULL;\r\nEND;",
])
def test_the_sqlplus_writer_refuses_statements_that_are_not_one(statement):
    assert sqlplus_problem(statement)
    art = Artifact(key="x", kind="function", statements=(statement,))
    with pytest.raises(RenderError) as e:
        install_script([art], "s", "0" * 64)
    assert "refusing to write a SQL*Plus script" in e.value.message


@pytest.mark.postgres
def test_line_breaks_in_descriptions_and_defaults_round_trip_through_install(pg_cluster):
    dsn = pg_cluster.create_database("sec_roundtrip")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id int)")
    spec = _spec()
    api.install(_loaded(spec), dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        comment = c.execute("SELECT obj_description('public.f(bigint,text)'::regprocedure, 'pg_proc')").fetchone()[0]
        default = c.execute("SELECT pg_get_function_arg_default('public.f(bigint,text)'::regprocedure, 2)").fetchone()[0]
        value = c.execute(f"SELECT {default}").fetchone()[0]
    assert comment == spec.functions[0].description
    assert value == INJECTION
