"""Pure core of order_view: applying sqlambda change events to the state and building each
order's view (no AWS calls here; handler.py reads and writes S3)."""

import base64
import json

TABLES = {"public.customers": "customers", "public.orders": "orders", "public.order_items": "items"}


def empty_state():
    return {"customers": {}, "orders": {}, "items": {}, "applied": {}}


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


def apply_batch(state, event):
    """Apply every record of a Kinesis event; the ids of the orders whose view may have changed."""
    touched = set()
    for rec in event["Records"]:
        change = json.loads(base64.b64decode(rec["kinesis"]["data"]))
        touched.update(apply(state, change) or [])
    return sorted(touched)
