"""Rendering of triggers and the outbox: artifact keys, install order, replace modes, names and the
refusal of anything that could smuggle SQL. Pure: no database."""

from __future__ import annotations

import pydantic
import pytest
from outbox_helpers import make_loaded

from sqlambda.errors import RenderError
from sqlambda.targets.postgres.render import render_files, render_postgres

BASE = {
    "project": "t",
    "functions": [{"name": "notify", "lambda": "echo", "mode": "sync"}],
    "triggers": [
        {"name": "orders_out", "table": "shop.orders", "function": "notify", "delivery": "outbox"},
        {"name": "orders_now", "table": "orders", "lambda": "rec", "delivery": "immediate", "events": ["update"],
         "columns": ["id", "note"], "batch": {"max_rows": 10, "max_bytes": 4096}},
    ],
}


def _artifacts(spec: dict):
    return {a.key: a for a in render_postgres(make_loaded(spec))}


def test_keys_order_and_replace_modes():
    arts = _artifacts(BASE)
    for table in ("outbox", "outbox_dead", "outbox_route"):
        a = arts[f"table sqlambda.{table}"]
        # holds data: recreated on a layout change, and the drop refuses while events are in it
        assert a.replace == "recreate" and a.order == 25
        if table != "outbox_route":
            drop = "\n".join(a.drop)
            assert drop.index("IN ACCESS EXCLUSIVE MODE") < drop.index("sum(n - done)") < drop.index("DROP TABLE")
    for ev in ("insert", "update", "delete"):
        t = arts[f"trigger orders_out_{ev} on shop.orders"]
        assert t.replace == "recreate" and t.order == 80
        assert dict(t.probe) == {"trigger": f'orders_out_{ev} ON "shop"."orders"'}
        assert arts[f"function sqlambda.trg_orders_out_{ev}()"].order == 75
    # the immediate trigger: only its event, on public (unqualified means public, not the search_path)
    assert "trigger orders_now_update on public.orders" in arts
    assert "trigger orders_now_insert on public.orders" not in arts
    assert arts["outbox route orders_out"].order == 70
    assert arts["outbox route orders_out"].requires == ("table sqlambda.outbox_route",)
    assert "outbox route orders_now" not in arts  # immediate triggers have no route


def test_no_triggers_no_outbox_objects():
    keys = _artifacts({"project": "t"}).keys()
    assert not [k for k in keys if "outbox" in k or k.startswith("trigger")]


def test_immediate_only_spec_creates_no_queue():
    spec = {**BASE, "triggers": [BASE["triggers"][1]]}
    assert not [k for k in _artifacts(spec) if k.startswith("table ")]


def test_a_trigger_on_a_spec_function_takes_its_lambda_and_mode():
    route = _artifacts(BASE)["outbox route orders_out"]
    text = "\n".join(route.statements)
    assert "'echo'" in text and "'sync'" in text  # the function's Lambda and mode (trigger mode not set)
    spec = {**BASE, "triggers": [{**BASE["triggers"][0], "mode": "async"}]}
    assert "'async'" in "\n".join(_artifacts(spec)["outbox route orders_out"].statements)


def test_trigger_functions_run_as_the_writer_with_pinned_search_path_owned_by_the_owner_role():
    # the row images may run the writer's own code (a cast to json of its type): never with our privileges
    arts = _artifacts(BASE)
    for key in ("function sqlambda.trg_orders_out_insert()", "function sqlambda.trg_orders_now_update()"):
        text = "\n".join(arts[key].statements)
        assert "SECURITY INVOKER" in text and "SECURITY DEFINER" not in text
        assert "SET search_path = pg_catalog, pg_temp" in text
        assert 'OWNER TO "sqlambda_owner"' in text
        assert "REVOKE ALL ON FUNCTION" in text and "FROM PUBLIC" in text


def test_each_outbox_trigger_gets_a_queue_policy_for_its_table_and_events_only():
    spec = {**BASE, "triggers": [{**BASE["triggers"][0], "events": ["insert", "update"]}]}
    arts = _artifacts(spec)
    policy = "\n".join(arts["policy enqueue_orders_out on sqlambda.outbox"].statements)
    assert "FOR INSERT TO PUBLIC" in policy and "trigger_name OPERATOR(pg_catalog.=) ANY (ARRAY['orders_out']::text[])" in policy
    assert """WHEN 'insert' THEN pg_catalog.has_any_column_privilege('"shop"."orders"', 'INSERT')""" in policy
    assert """WHEN 'update' THEN pg_catalog.has_any_column_privilege('"shop"."orders"', 'UPDATE')""" in policy
    assert "'delete'" not in policy and "ELSE false END" in policy
    assert arts["policy enqueue_orders_out on sqlambda.outbox"].requires == ("table sqlambda.outbox",)
    queue = "\n".join(arts["table sqlambda.outbox"].statements)
    assert "ENABLE ROW LEVEL SECURITY" in queue
    assert "GRANT INSERT (trigger_name, op, n, new_rows, old_rows) ON TABLE" in queue


def test_columns_subset_is_quoted_and_used_for_both_images():
    text = "\n".join(_artifacts(BASE)["function sqlambda.trg_orders_now_update()"].statements)
    # the query is embedded as a Python literal, so its quotes appear escaped
    assert """json_build_object(\\'id\\', n."id", \\'note\\', n."note")""" in text
    assert """json_build_object(\\'id\\', o."id", \\'note\\', o."note")""" in text


def test_drop_statements_refuse_to_lose_events():
    arts = _artifacts(BASE)
    assert "undelivered" in "\n".join(arts["table sqlambda.outbox"].drop)
    assert "dead-lettered" in "\n".join(arts["table sqlambda.outbox_dead"].drop)
    assert "undelivered" in "\n".join(arts["outbox route orders_out"].drop)


def test_files_have_headers_and_triggers_file():
    files = render_files(make_loaded(BASE))
    assert files["30_triggers.sql"].startswith("-- Generated by sqlambda")


@pytest.mark.parametrize("field,value", [
    ("name", "x; DROP TABLE users"),
    ("name", 'x"y'),
    ("table", "orders; DELETE FROM t"),
    ("table", "a.b.c"),
    ("columns", ["id", "note') --"]),
])
def test_injection_attempts_in_names_are_rejected(field, value):
    spec = {**BASE, "triggers": [{**BASE["triggers"][0], field: value}]}
    with pytest.raises(pydantic.ValidationError):
        make_loaded(spec)


def test_derived_names_longer_than_postgres_allows_are_refused():
    spec = {**BASE, "triggers": [{**BASE["triggers"][0], "name": "n" * 60}]}
    with pytest.raises(RenderError, match="longer than 63"):
        render_postgres(make_loaded(spec))
