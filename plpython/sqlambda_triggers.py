"""sqlambda_triggers: the change-event batch shape, and the immediate (statement-level) trigger.

Owns: what a batch of change events looks like on the wire (one JSON object with the table, the
operation and a ``records`` array, each record carrying its idempotency key and the new / old row
images), how records are cut into batches by rows AND bytes, and ``fire()``, the body of the
immediate trigger, which reads the statement's transition tables and makes one Lambda call per
batch through ``sqlambda_core``.

The drainer outside the database loads this same file, so both paths send byte-identical envelopes
and cut batches the same way. The envelope's fields are defined here, once (``SOURCE``,
``ENVELOPE_FIELDS``, ``RECORD_FIELDS``): the JSON Schema shipped with the package and the Oracle
target's PL/SQL are rendered from these names (``sqlambda.delivery.envelope``).

Must not: ``import plpy`` (it is passed in), build SQL (the queries arrive rendered from
``sql/postgres/triggers/``), or hold a batch larger than its limits: a single record that cannot fit
``max_bytes`` is an error, never a silently oversized request.
"""

from __future__ import annotations

import json
import uuid

import sqlambda_core as core

SYNC_LIMIT = core.SYNC_LIMIT
ASYNC_LIMIT = core.ASYNC_LIMIT
OPERATIONS = ("insert", "update", "delete")

#: the change-event envelope, in order: one batch of one table's changes of one operation
SOURCE = "sqlambda"
ENVELOPE_FIELDS = ("source", "trigger", "table", "operation", "records")
#: one change event (a record of ``records``), in order
RECORD_FIELDS = ("idempotency_key", "txid", "ts", "new", "old")
#: what a sink record's envelope (one event a record) adds, before ``records``: the database, the
#: event's position in the outbox (for the changes of one row, their commit order) and, for a
#: send_after_commit record (operation "call"), the role that sent it
SINK_FIELDS = ("database", "position", "sender")


class OversizeRecord(Exception):
    """One record is larger than a whole batch may be."""

    def __init__(self, size, limit, tag=None):
        super().__init__("a single change event is %d bytes, over the batch limit of %d bytes" % (size, limit))
        self.size = size
        self.limit = limit
        self.tag = tag


def effective_max_bytes(mode, max_bytes):
    """The spec's batch.max_bytes, capped by Lambda's payload quota for the call type."""
    return min(int(max_bytes), ASYNC_LIMIT if mode == "async" else SYNC_LIMIT)


def invocation_type(mode):
    return "Event" if mode == "async" else "RequestResponse"


def envelope(trigger, table, operation):
    """(prefix, suffix) of a batch: the records go between them, comma-separated.

    The envelope is assembled as text, not with json.dumps of a dict, because the row images
    arrive from PostgreSQL as JSON text already and re-parsing 100,000 rows would dominate.
    """
    head = dict(zip(ENVELOPE_FIELDS, (SOURCE, trigger, table, operation)))
    text = json.dumps(head, separators=(",", ":"))
    return text[:-1] + ',"records":[', "]}"


def sink_head(trigger, table, operation, database):
    """The envelope of a sink record (one change event) up to its position, encoded once per batch."""
    head = dict(zip(ENVELOPE_FIELDS, (SOURCE, trigger, table, operation)))
    head["database"] = database
    return json.dumps(head, separators=(",", ":"))[:-1]


def sink_record(head, position, record_text):
    """One sink record: ``sink_head``'s envelope, the position, and the one change event."""
    return '%s,"position":%d,"records":[%s]}' % (head, position, record_text)


def record(key, txid, ts, new, old):
    """One change event as JSON text. ``new`` / ``old`` are JSON texts (or None: absent image)."""
    return record_with(record_head(txid, ts), key, new, old)


def record_head(txid, ts):
    """The part of a record that is the same for every event of a transaction (txid, ts), encoded
    once: a drainer builds a few thousand records per batch, each costing three json.dumps before."""
    return ',"txid":%s,"ts":%s,"new":' % (json.dumps(str(txid)), json.dumps(ts))


def record_with(head, key, new, old):
    """``record()`` with its per-transaction part already encoded by ``record_head``."""
    return '{"idempotency_key":%s%s%s,"old":%s}' % (
        json.dumps(key), head, new if new is not None else "null", old if old is not None else "null")


def record_parts(key_prefix, txid, ts):
    """What the records keyed ``<key_prefix><n>`` of one transaction share, encoded once: the text
    before ``n`` and after it, so that ``record_at(parts, n, new, old)`` is
    ``record(key_prefix + str(n), txid, ts, new, old)`` byte for byte (the key is JSON-escaped as a
    whole; the digits of ``n`` need no escaping). The immediate trigger's SQL appends the rest itself
    (``sql/postgres/triggers/immediate_function.sql.j2``); the drainer calls ``record_at``."""
    return '{"idempotency_key":' + json.dumps(key_prefix)[:-1], '"' + record_head(txid, ts)


def record_at(parts, n, new, old):
    """The record numbered ``n`` of ``record_parts``; ``new`` / ``old`` as for ``record()``."""
    return '%s%d%s%s,"old":%s}' % (parts[0], n, parts[1], "null" if new is None else new, "null" if old is None else old)


class Batcher:
    """Cuts a stream of records into payloads of at most ``max_rows`` records and ``max_bytes`` bytes.

    ``add`` returns the finished batch (payload text, tags of its records) when the new record
    does not fit the open one, else None; ``flush`` returns the last open batch. Sizes are UTF-8
    bytes of the whole request body, envelope included.
    """

    def __init__(self, prefix, suffix, max_rows, max_bytes):
        self.prefix = prefix
        self.suffix = suffix
        self.max_rows = int(max_rows)
        self.max_bytes = int(max_bytes)
        self._overhead = len(prefix.encode("utf-8")) + len(suffix.encode("utf-8"))
        self._parts = []
        self._tags = []
        self._size = self._overhead

    def add(self, text, tag=None):
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if self._overhead + size > self.max_bytes:
            raise OversizeRecord(self._overhead + size, self.max_bytes, tag)
        done = None
        extra = size + (1 if self._parts else 0)  # the comma
        if self._parts and (len(self._parts) >= self.max_rows or self._size + extra > self.max_bytes):
            done = self.flush()
            extra = size
        self._parts.append(text)
        self._tags.append(tag)
        self._size += extra
        return done

    def flush(self):
        if not self._parts:
            return None
        out = (self.prefix + ",".join(self._parts) + self.suffix, self._tags)
        self._parts, self._tags, self._size = [], [], self._overhead
        return out


def cut(records, prefix, suffix, max_rows, max_bytes):
    """All batches of ``records`` (list of (text, tag)) as a list of (payload, tags)."""
    b = Batcher(prefix, suffix, max_rows, max_bytes)
    out = []
    for text, tag in records:
        done = b.add(text, tag)
        if done is not None:
            out.append(done)
    last = b.flush()
    if last is not None:
        out.append(last)
    return out


# -- the immediate trigger (runs inside PostgreSQL) ---------------------------------------------
FETCH_ROWS = 2000


def fire(plpy, GD, TD, route):
    """Body of an immediate statement-level AFTER trigger: one Lambda call per batch.

    ``route`` is rendered into the function: trigger, table, operation, lambda, qualifier, mode,
    max_rows, max_bytes and ``query``, a SELECT over the transition table(s) returning ``new`` and
    ``old`` row images as JSON text in statement order. A failed call raises (the statement
    aborts); an async call already accepted stays sent even if the transaction rolls back.

    ``concurrency`` (batch.concurrency) batches are in flight at once: a batch is written as soon as
    it is full while earlier ones are still running, so a statement of N batches waits about
    N / concurrency Lambda latencies, not N. Order: with 1, batch k+1 is sent only after batch k
    succeeded; above 1 the Lambda may run a statement's batches in parallel (each record's
    idempotency key ends with its position in the statement). Either way the statement fails if any
    batch finally fails, and batches answered before that stay delivered.
    """
    # settings first, before the row images are built: building them may run the writer's own
    # code (a cast to json of a user type), which must not be able to change where we send
    cfg = core.settings(plpy, GD)
    head = plpy.execute("SELECT pg_catalog.pg_current_xact_id()::pg_catalog.text AS txid, "
                        "pg_catalog.to_char(pg_catalog.statement_timestamp() AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS ts")[0]
    txid, ts = head["txid"], head["ts"]
    # one random statement id: keys stay unique when a transaction runs the statement twice
    stmt = uuid.uuid4().hex[:12]
    prefix, suffix = envelope(route["trigger"], route["table"], route["operation"])
    limit = effective_max_bytes(route["mode"], route["max_bytes"])
    batcher = Batcher(prefix, suffix, route["max_rows"], limit)
    # up to batch.concurrency batches in flight at once (core.Window: kept connections, no threads)
    window = core.Window(plpy, GD, route["lambda"], invocation_type(route["mode"]), route.get("qualifier"), cfg,
                         route.get("concurrency", 1))
    try:
        _stream(plpy, GD, route, window, batcher, txid, ts, stmt)
    except core.LambdaFailure as failure:
        window.abort()
        core.raise_lambda_error(plpy, failure)
    except BaseException:
        window.abort()  # the writer's own code failed building a row image: nothing more is read or sent
        raise
    return None


def _stream(plpy, GD, route, window, batcher, txid, ts, stmt):
    """Read the statement's rows, cut batches, submit each as soon as it is full; wait for all.

    The query (``sql/postgres/triggers/immediate_function.sql.j2``) returns each row as its finished
    record, given the two ``record_parts``; its plan is prepared once per backend."""
    plans = GD.setdefault("sqlambda.trigger_plans", {})
    plan = plans.get(route["query"])
    if plan is None:
        plan = plans[route["query"]] = plpy.prepare(route["query"], ["text", "text"])
    cursor = plpy.cursor(plan, list(record_parts("%s:%s:%s:" % (route["trigger"], txid, stmt), txid, ts)))
    add = batcher.add
    n = 0
    while True:
        rows = cursor.fetch(FETCH_ROWS)
        if not rows:
            break
        for row in rows:
            n += 1
            try:
                done = add(row["rec"], n)
            except OversizeRecord as exc:
                window.abort()
                raise core.LambdaFailure(
                    "54000",
                    "trigger %s: row %d of the statement is %d bytes as a change event, over the batch "
                    "limit of %d bytes; nothing more was sent" % (route["trigger"], n, exc.size, exc.limit),
                    hint="raise batch.max_bytes (Lambda allows %d bytes for this call type) or send fewer "
                         "columns (triggers[].columns)" % (ASYNC_LIMIT if route["mode"] == "async" else SYNC_LIMIT),
                ) from None
            if done is not None:
                window.submit(done[0])
    last = batcher.flush()
    if last is not None:
        window.submit(last[0])
    window.close()
