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

import json
import os

import boto3
from order_view_core import apply_batch, empty_state, view

s3 = boto3.client("s3")
BUCKET = os.environ["VIEW_BUCKET"]
PREFIX = os.environ.get("VIEW_PREFIX", "views/")


def _load():
    try:
        return json.loads(s3.get_object(Bucket=BUCKET, Key=PREFIX + "state.json")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return empty_state()


def _write(state, order_id):
    doc, key = view(state, order_id), "%sorders/%s.json" % (PREFIX, order_id)
    if doc is None:
        s3.delete_object(Bucket=BUCKET, Key=key)
    else:
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc, sort_keys=True).encode())


def handler(event, context):
    state = _load()
    touched = apply_batch(state, event)
    for order_id in touched:
        _write(state, order_id)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "state.json", Body=json.dumps(state).encode())
    return {"applied": len(event["Records"]), "views": len(touched)}
