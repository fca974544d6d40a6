"""Specs the Oracle tests render: one that uses every feature, built here so the tests do not depend
on the example specs (the golden tests cover those). A module of its own name (not conftest), so an
import of it can never pick another directory's conftest."""

from __future__ import annotations

from sqlambda.spec.model import Spec

FULL = {
    "project": "shop",
    "aws": {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:4566"},
    "oracle": {"schema": "app", "generic_roles": ["app_admin"], "credentials": "imds", "scheduler_drain": True},
    "functions": [
        {"name": "order_status", "lambda": "echo", "roles": ["app_reader", "app_writer"],
         "args": {"order_id": "bigint", "note": "text", "rush": "boolean", "doc": "jsonb", "at": "timestamptz"},
         "returns": {"type": "text", "path": "Status"}},
        {"name": "notify", "lambda": "echo", "mode": "async"},
        {"name": "is_vip", "lambda": "arn:aws:lambda:eu-west-1:123456789012:function:vip", "qualifier": "live",
         "args": {"customer": "integer"}, "returns": {"type": "boolean", "path": "items[0].vip"}},
        {"name": "raw", "lambda": "echo", "args": {"d": "date"}},
    ],
    "triggers": [
        {"name": "orders_out", "table": "public.orders", "columns": ["id", "status"], "function": "order_status",
         "delivery": "outbox", "batch": {"max_rows": 100, "max_bytes": 65536}, "retry": {"max_attempts": 5}},
        {"name": "orders_now", "table": "sales.orders", "columns": ["id"], "lambda": "echo",
         "delivery": "immediate", "mode": "sync", "events": ["insert", "delete"],
         "batch": {"max_rows": 7, "max_bytes": 4096}},
    ],
}


def make_spec(**overrides) -> Spec:
    data = {**FULL}
    for k, v in overrides.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    return Spec.model_validate(data)


#: every argument type, every return kind (each scalar type, jsonb whole and by path, a table with a
#: column of each type, async), defaults, qualifiers, every trigger kind (immediate sync/async, outbox
#: sync/async, every event), and the options (credentials, scheduler drain, synonyms, PUBLIC grants):
#: what the grammar check renders so that every branch of every template is parsed
_ARG_TYPES = ["text", "varchar", "integer", "bigint", "smallint", "numeric", "double precision", "real", "boolean",
              "date", "timestamp", "timestamptz", "jsonb", "json", "uuid"]
_SCALARS = [t for t in _ARG_TYPES if t not in ("json", "jsonb")]
COVERAGE = {
    "project": "cover",
    "aws": {"region": "eu-west-1", "endpoint_url": "https://lambda.eu-west-1.amazonaws.com"},
    "oracle": {"schema": "app", "generic_roles": ["app_admin", "PUBLIC"], "scheduler_drain": True,
               "synonyms": ["app1"]},
    "functions": [
        {"name": "all_args", "lambda": "echo", "roles": ["app_reader"],
         "args": {f"a_{t.replace(' ', '_')}": t for t in _ARG_TYPES}, "returns": "jsonb"},
        {"name": "with_defaults", "lambda": "echo", "qualifier": "live",
         "args": {"n": {"type": "integer", "default": 3}, "s": {"type": "text", "default": "x\ny"},
                  "b": {"type": "boolean", "default": True}, "k": {"type": "text", "key": "Key", "default": None}},
         "returns": {"type": "jsonb", "path": "a.b[0]"}},
        *[{"name": f"ret_{t.replace(' ', '_')}", "lambda": "echo", "args": {"x": "text"},
           "returns": {"type": t, "path": "v"}} for t in _SCALARS],
        {"name": "rows_of_all", "lambda": "echo", "args": {"q": "text"},
         "returns": {"type": "table", "path": "Items", "columns": {
             f"c_{t.replace(' ', '_')}": {"type": t, "path": f"k{i}"} for i, t in enumerate(_ARG_TYPES) if t != "json"}}},
        {"name": "fire", "lambda": "echo", "mode": "async", "args": {"m": "text"}},
    ],
    "triggers": [
        {"name": "t_now_sync", "table": "app.orders", "columns": ["id", "status"], "lambda": "echo",
         "delivery": "immediate", "mode": "sync", "events": ["insert", "update", "delete"]},
        {"name": "t_now_async", "table": "app.items", "columns": ["id"], "lambda": "echo",
         "delivery": "immediate", "mode": "async", "events": ["insert"]},
        {"name": "t_out_sync", "table": "app.orders2", "columns": ["id", "note"], "function": "all_args",
         "delivery": "outbox", "mode": "sync", "events": ["insert", "update", "delete"]},
        {"name": "t_out_async", "table": "app.items2", "columns": ["id"], "lambda": "echo",
         "delivery": "outbox", "mode": "async", "events": ["update"]},
    ],
}
