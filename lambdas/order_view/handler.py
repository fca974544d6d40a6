"""order_view: a consumer of sqlambda change events on Kinesis that keeps a denormalized view of
each order in S3 (the order, its customer and its lines, one JSON object per order).

Reads the records of one batch of the event source mapping (Kinesis: base64 JSON, one change
event a record, in the sqlambda change-event envelope), applies them to its state
(``<prefix>state.json``: the customers, orders and lines it has seen, and per row the position of
the last change applied) and writes ``<prefix>orders/<id>.json`` for every order whose view
changed, deleting the view of a deleted order.

At-least-once safe: a change whose position is not after the last one applied to its row (a
redelivered record) is skipped, so a retried batch changes nothing twice. It relies on the event
source mapping handing it one shard's batches in order, one at a time: deploy it on a one-shard
stream (or give it state per shard) so no two batches read and write the state at once.
"""

import base64
import json
import os

import boto3

s3 = boto3.client("s3")
BUCKET = os.environ["VIEW_BUCKET"]
PREFIX = os.environ.get("VIEW_PREFIX", "views/")
TABLES = {"public.customers": "customers", "public.orders": "orders", "public.order_items": "items"}


def _load():
    try:
        body = s3.get_object(Bucket=BUCKET, Key=PREFIX + "state.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {"customers": {}, "orders": {}, "items": {}, "applied": {}}
    return json.loads(body)


def _row_key(kind, row):
    if kind == "items":
        return "%s/%s" % (row["order_id"], row["line_no"])
    return str(row["id"])


def apply(state, change):
    """Apply one change event; the order id whose view it touches (None when skipped or unrelated)."""
    kind = TABLES.get(change.get("table"))
    if kind is None:
        return None  # another table's change, or a send_after_commit record: not this view's
    record = change["records"][0]
    row = record["new"] if record["new"] is not None else record["old"]
    key = kind + ":" + _row_key(kind, row)
    if change["position"] <= state["applied"].get(key, 0):
        return None  # redelivered: already applied
    state["applied"][key] = change["position"]
    table = state[kind]
    if change["operation"] == "delete":
        table.pop(_row_key(kind, row), None)
    else:
        table[_row_key(kind, row)] = row
    if kind == "customers":
        return [oid for oid, o in state["orders"].items() if str(o["customer_id"]) == str(row["id"])]
    return [str(row["order_id"] if kind == "items" else row["id"])]


def view(state, order_id):
    order = state["orders"].get(order_id)
    if order is None:
        return None
    lines = sorted((i for k, i in state["items"].items() if k.split("/")[0] == order_id), key=lambda i: i["line_no"])
    return {"order": order, "customer": state["customers"].get(str(order["customer_id"])), "lines": lines,
            "total_qty": sum(i["qty"] for i in lines)}


def handler(event, context):
    state = _load()
    touched = set()
    for rec in event["Records"]:
        change = json.loads(base64.b64decode(rec["kinesis"]["data"]))
        touched.update(apply(state, change) or [])
    for order_id in sorted(touched):
        doc = view(state, order_id)
        key = "%sorders/%s.json" % (PREFIX, order_id)
        if doc is None:
            s3.delete_object(Bucket=BUCKET, Key=key)
        else:
            s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc, sort_keys=True).encode())
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "state.json", Body=json.dumps(state).encode())
    return {"applied": len(event["Records"]), "views": len(touched)}
