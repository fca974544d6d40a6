"""The change-event envelope: specified once, as a JSON Schema shipped with the package.

Every target sends change events in this one shape (a batch: one table, one operation, its
records), so a consumer written for a DMS or Debezium stream reads ours without surprises. The
field names are defined where the events are built, in ``plpython/sqlambda_triggers.py``
(``SOURCE``, ``ENVELOPE_FIELDS``, ``RECORD_FIELDS``: PostgreSQL's triggers and drainer use them);
this module adds what each field means, turns both into the JSON Schema
(``change_event.schema.json`` beside this file, checked equal by a test) and hands the names to
the Oracle templates, which build the same envelope in PL/SQL.

Must not: build events (the targets do) or talk to anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlambda.resources import plpython_module

SCHEMA_FILE = Path(__file__).resolve().parent / "change_event.schema.json"
SCHEMA_ID = "https://sqlambda.dev/schemas/change-event/1.json"

_DESCRIPTIONS = {
    "source": "Always \"sqlambda\": who produced the event.",
    "trigger": "The spec trigger that captured the changes.",
    "table": "The changed table, schema-qualified.",
    "operation": "insert, update or delete: every record of a batch has this operation (call: a "
                 "send_after_commit record on a sink).",
    "records": "The changed rows, in the order the statement changed them.",
    "idempotency_key": "The same for every delivery of one event and unique across events: de-duplicate on it.",
    "txid": "The id of the transaction that made the change, as text.",
    "ts": "When the change was made (UTC, ISO 8601).",
    "new": "The row after the change (null for a delete): column name -> JSON value.",
    "old": "The row before the change (null for an insert).",
    "database": "Sink records only: the database the change was made in.",
    "position": "Sink records only: the event's place in the outbox queue; for the changes of one row it "
                "increases in their commit order (compare positions of one key only).",
    "sender": "send_after_commit records only (operation \"call\"): the role that sent it; the payload is the record's new.",
}


def sink_fields() -> tuple[str, ...]:
    """The optional envelope fields a sink record adds (one change event a record)."""
    return tuple(plpython_module("sqlambda_triggers").SINK_FIELDS)


def fields() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(source value, envelope field names, record field names), as the event builders define them."""
    t = plpython_module("sqlambda_triggers")
    return t.SOURCE, tuple(t.ENVELOPE_FIELDS), tuple(t.RECORD_FIELDS)


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of one batch of change events."""
    source, envelope, record = fields()
    image = {"type": ["object", "null"], "additionalProperties": True}
    record_props = {
        "idempotency_key": {"type": "string", "minLength": 1},
        "txid": {"type": "string"},
        "ts": {"type": "string"},
        "new": dict(image),
        "old": dict(image),
    }
    envelope_props = {
        "source": {"const": source},
        "trigger": {"type": "string"},
        "table": {"type": "string"},
        "operation": {"enum": ["insert", "update", "delete", "call"]},
        "records": {"type": "array", "items": {"$ref": "#/$defs/record"}},
    }
    sink_types = {"database": {"type": "string"}, "position": {"type": "integer", "minimum": 1},
                  "sender": {"type": "string"}}
    envelope_props.update({name: dict(sink_types[name]) for name in sink_fields()})
    for props in (record_props, envelope_props):
        for name, prop in props.items():
            prop["description"] = _DESCRIPTIONS[name]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "sqlambda change events: one batch of one table's changes of one operation "
                 "(a sink record: one change, with database and position)",
        "type": "object",
        "required": list(envelope),
        "properties": {name: envelope_props[name] for name in (*envelope, *sink_fields())},
        "additionalProperties": False,
        "$defs": {"record": {"type": "object", "required": list(record),
                             "properties": {name: record_props[name] for name in record},
                             "additionalProperties": False}},
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def oracle_context() -> dict:
    """What the Oracle templates need to build the same envelope in PL/SQL."""
    source, envelope, record = fields()
    return {"source": source, "envelope_fields": envelope, "record_fields": record}
