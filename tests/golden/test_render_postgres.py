"""Properties of render_postgres that hold for any spec: stable keys, drops, probes, quoting, grants."""

from __future__ import annotations

import types

import pytest
from pydantic import ValidationError

from sqlambda.errors import RenderError
from sqlambda.spec.model import Spec
from sqlambda.targets.postgres.render import render_files, render_postgres


def _loaded(doc: dict):
    return types.SimpleNamespace(spec=Spec.model_validate(doc), path="t.yaml", checksum="2" * 64)


FULL = {
    "project": "shop",
    "postgres": {"schema": "lam", "generic_schema": "api", "generic_roles": ["app_admin"], "rds_compat": True},
    "functions": [
        {"name": "OrderStatus", "lambda": "orders", "args": {"orderId": "bigint", "note": "text"},
         "returns": {"type": "text", "path": "Status"}, "roles": ["app_reader", "app_admin"]},
        {"name": "notify", "lambda": "arn:aws:lambda:us-east-1:123456789012:function:n:prod", "mode": "async",
         "roles": ["app_writer"]},
    ],
}


def test_core_only_keys():
    keys = [a.key for a in render_postgres(None)]
    assert keys == [
        "extension plpython3u",
        "role sqlambda_owner",
        "schema sqlambda",
        "function public.awslambda_fn(text,text)",
        "function public.awslambda_fn_async(text,text)",
        "function sqlambda.invoke(text,jsonb,text,text,text,jsonb,text)",
        "function sqlambda.settings()",
    ]


def test_full_spec_keys_and_order():
    arts = render_postgres(_loaded(FULL))
    keys = [a.key for a in arts]
    for expected in [
        "schema api", "schema lam", "schema aws_commons", "schema aws_lambda",
        "type aws_commons._lambda_function_arn_1",
        "function api.OrderStatus(bigint,text)", "function api.notify()",
        "grant execute api.OrderStatus(bigint,text) to app_reader",
        "grant execute api.awslambda_fn(text,text) to app_admin",
        "grant usage schema api to app_reader", "grant usage schema api to app_writer",
        "grant usage schema lam to app_admin",
        "function aws_lambda.invoke(aws_commons._lambda_function_arn_1,jsonb,text,text,jsonb,character varying)",
    ]:
        assert expected in keys, expected
    assert "grant usage schema api to app_admin" in keys and keys.count("grant usage schema api to app_admin") == 1
    assert [a.order for a in arts] == sorted(a.order for a in arts)
    # everything that is created can be dropped, except the shared language
    for a in arts:
        assert a.drop or a.kind == "extension", a.key


def test_grants_carry_role_probes_naming_the_spec_entry():
    arts = {a.key: a for a in render_postgres(_loaded(FULL))}
    p = arts["grant execute api.OrderStatus(bigint,text) to app_reader"].probe_dict
    assert p == {"role": "app_reader", "regprocedure": '"api"."OrderStatus"(bigint, text)', "where": "functions[0].roles"}
    assert arts["grant execute api.awslambda_fn(text,text) to app_admin"].probe_dict["where"] == "postgres.generic_roles"


def test_identifiers_are_quoted_and_wrappers_locked_down():
    arts = {a.key: a for a in render_postgres(_loaded(FULL))}
    w = arts["function api.OrderStatus(bigint,text)"]
    create = w.statements[0]
    assert create.startswith('CREATE OR REPLACE FUNCTION "api"."OrderStatus"("orderId" bigint, "note" text)')
    assert "SECURITY DEFINER" in create and "SET search_path = pg_catalog, pg_temp" in create
    assert 'REVOKE ALL ON FUNCTION "api"."OrderStatus"(bigint, text) FROM PUBLIC' in w.statements
    assert w.drop == ('DROP FUNCTION IF EXISTS "api"."OrderStatus"(bigint, text)',)
    for key in ("function api.awslambda_fn(text,text)", "function lam.invoke(text,jsonb,text,text,text,jsonb,text)"):
        assert any(s.startswith("REVOKE ALL ON FUNCTION") and s.endswith("FROM PUBLIC") for s in arts[key].statements)


def test_no_rds_objects_unless_asked():
    assert not [a for a in render_postgres(_loaded({"project": "p"})) if "aws_" in a.key]


def test_reserved_plpython_argument_names_are_refused():
    with pytest.raises(RenderError, match=r"functions\[0\]\.args: GD is reserved"):
        render_postgres(_loaded({"project": "p", "functions": [{"name": "f", "lambda": "x", "args": {"GD": "text"}}]}))


@pytest.mark.parametrize("bad", [
    {"functions": [{"name": 'f"; DROP TABLE users; --', "lambda": "x"}]},
    {"functions": [{"name": "f", "lambda": "x", "args": {"a text); DROP TABLE t; --": "text"}}]},
    {"functions": [{"name": "f", "lambda": "x", "roles": ["r; DROP ROLE postgres"]}]},
    {"postgres": {"schema": "s; DROP SCHEMA public CASCADE"}},
    {"functions": [{"name": "f", "lambda": "x'; DROP TABLE t; --"}]},
    {"functions": [{"name": "f", "lambda": "x", "args": {"a": "text; DROP TABLE t"}}]},
])
def test_injection_attempts_never_reach_sql(bad):
    with pytest.raises(ValidationError):
        Spec.model_validate({"project": "p", **bad})


def test_render_is_deterministic():
    assert render_files(_loaded(FULL)) == render_files(_loaded(FULL))
    assert [a.checksum for a in render_postgres(_loaded(FULL))] == [a.checksum for a in render_postgres(_loaded(FULL))]


def test_files_split_by_concern():
    assert sorted(render_files(_loaded(FULL))) == ["00_core.sql", "10_rds_compat.sql", "20_wrappers.sql"]
