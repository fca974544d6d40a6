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
