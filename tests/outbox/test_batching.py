"""The change-event batch shape and the cutting by rows and bytes (plpython/sqlambda_triggers.py),
plus the drainer's backoff, without a database: pure functions, exact expectations."""

from __future__ import annotations

import json
import random

import pytest

from sqlambda.targets.postgres.drain import Route, backoff_seconds, runtime_module

trig = runtime_module("sqlambda_triggers")


def _records(n: int, width: int = 10) -> list[tuple[str, int]]:
    rnd = random.Random(n * 7 + width)
    out = []
    for i in range(n):
        new = json.dumps({"id": i, "note": "é" * rnd.randint(0, width)}, ensure_ascii=False)
        out.append((trig.record(f"t:1:{i}", 1, "2024-01-01T00:00:00.000000Z", new, None), i))
    return out


def test_envelope_is_the_documented_json_shape():
    prefix, suffix = trig.envelope("orders_out", "public.orders", "update")
    rec = trig.record("orders_out:77:5", 77, "2024-01-01T00:00:00Z", '{"id": 2}', '{"id": 1}')
    doc = json.loads(prefix + rec + suffix)
    assert doc == {
        "source": "sqlambda", "trigger": "orders_out", "table": "public.orders", "operation": "update",
        "records": [{"idempotency_key": "orders_out:77:5", "txid": "77", "ts": "2024-01-01T00:00:00Z",
                     "new": {"id": 2}, "old": {"id": 1}}],
    }


def test_absent_images_are_null_and_strings_are_escaped():
    rec = trig.record('k"\\', 1, "t", None, '{"a": "x"}')
    assert json.loads(rec) == {"idempotency_key": 'k"\\', "txid": "1", "ts": "t", "new": None, "old": {"a": "x"}}


@pytest.mark.parametrize("max_rows,max_bytes", [(1, 4096), (7, 4096), (500, 1500), (3, 1100), (1000, 10**6)])
def test_batches_respect_rows_and_bytes_and_keep_every_record_in_order(max_rows, max_bytes):
    records = _records(300, width=60)
    prefix, suffix = trig.envelope("t", "public.x", "insert")
    batches = trig.cut(records, prefix, suffix, max_rows, max_bytes)
    seen = []
    for payload, tags in batches:
        doc = json.loads(payload)
        assert len(doc["records"]) == len(tags) <= max_rows
        assert len(payload.encode("utf-8")) <= max_bytes  # UTF-8 bytes, not characters
        seen += tags
    assert seen == list(range(300))
    # batches are full: the next record would not have fitted (no needless small calls)
    for (payload, tags), nxt in zip(batches, batches[1:]):
        first_next = records[nxt[1][0]][0]
        grown = len(payload.encode()) + 1 + len(first_next.encode())
        assert len(tags) == max_rows or grown > max_bytes


def test_one_record_per_call_only_with_batch_size_one():
    records = _records(20)
    prefix, suffix = trig.envelope("t", "public.x", "insert")
    assert len(trig.cut(records, prefix, suffix, 500, 10**6)) == 1
    assert len(trig.cut(records, prefix, suffix, 1, 10**6)) == 20


def test_a_record_larger_than_a_batch_is_an_error_not_an_oversized_request():
    prefix, suffix = trig.envelope("t", "public.x", "insert")
    big = trig.record("k", 1, "t", json.dumps({"blob": "x" * 5000}), None)
    b = trig.Batcher(prefix, suffix, 10, 2048)
    with pytest.raises(trig.OversizeRecord) as err:
        b.add(big, tag=42)
    assert err.value.tag == 42 and err.value.size > 2048 and err.value.limit == 2048


def test_lambda_quota_caps_the_batch_limit():
    assert trig.effective_max_bytes("async", 6 * 1024 * 1024) == 1024 * 1024
    assert trig.effective_max_bytes("sync", 6 * 1024 * 1024) == 6 * 1024 * 1024
    assert trig.effective_max_bytes("async", 4096) == 4096
    assert trig.invocation_type("async") == "Event" and trig.invocation_type("sync") == "RequestResponse"


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    route = Route("t", "public.x", "f", None, "sync", 10, 4096, 5, 100, 1000, "us-east-1", None)
    for attempt, full in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        values = [backoff_seconds(route, attempt) for _ in range(200)]
        assert all(full / 2 <= v <= full for v in values)
        assert len(set(values)) > 100  # jitter: drainers that failed together do not retry together


def test_the_shipped_json_schema_is_the_one_definition():
    from sqlambda.delivery import envelope

    assert envelope.SCHEMA_FILE.read_text() == envelope.schema_text(), \
        "regenerate generator/delivery/change_event.schema.json from sqlambda.delivery.envelope"
    schema = envelope.json_schema()
    assert schema["required"] == list(trig.ENVELOPE_FIELDS)
    assert schema["$defs"]["record"]["required"] == list(trig.RECORD_FIELDS)


def test_batches_built_here_match_the_schema():
    import jsonschema

    from sqlambda.delivery import envelope

    prefix, suffix = trig.envelope("orders_out", "public.orders", "update")
    rec = trig.record("orders_out:7:1.1", 7, "2024-01-01T00:00:00Z", '{"id": 2}', '{"id": 1}')
    jsonschema.validate(json.loads(prefix + rec + suffix), envelope.json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(prefix + rec + suffix), "operation": "merge"}, envelope.json_schema())


def test_oracle_builds_the_same_envelope_from_the_same_names():
    import types

    from sqlambda.spec.model import Spec
    from sqlambda.targets.oracle.render import render

    spec = Spec.model_validate({"project": "e", "triggers": [
        {"name": "o_out", "table": "orders", "columns": ["id"], "lambda": "echo", "delivery": "outbox"},
        {"name": "o_now", "table": "orders", "columns": ["id"], "lambda": "echo", "delivery": "immediate"}]})
    text = "\n".join(s for a in render(types.SimpleNamespace(spec=spec, path="e", checksum="0" * 64)).artifacts
                     for s in a.statements)
    puts = [f"v_env.put('{f}'" for f in trig.ENVELOPE_FIELDS]
    for block in (text.split("FUNCTION drain_batch")[1], text.split("PROCEDURE send")[1]):
        positions = [block.index(p) for p in puts]
        assert positions == sorted(positions), "envelope fields out of the defined order"
    assert "v_env.put('source', 'sqlambda')" in text
    for field in ("txid", "ts", "new", "old"):
        assert f"KEY '{field}' VALUE" in text


def test_the_drainers_batches_are_byte_identical_to_record_with():
    """The drainer formats records with each chunk's constant parts encoded once; the bytes must be
    exactly what ``record()`` / ``record_with()`` produce (the immediate trigger and Oracle share them)."""
    from sqlambda.targets.postgres.drain import DrainWorker, idempotency_key

    worker = DrainWorker.__new__(DrainWorker)
    worker.trig = trig
    rnd = random.Random(3)
    route = Route("t_x", "public.x", "fn", None, "sync", 7, 4096, 3, 10, 100, "us-east-1", None)
    events = []
    for cid in (5, 9):
        for base in (1, 1001):
            chunk = (cid, base, "t_x", "update", str(rnd.randint(1, 10**9)), "2026-12-02T00:00:00.000001Z", 0, 1.0, 0, 30, 0)
            for k in range(1, 12):
                new = json.dumps({"id": k, "s": "é\"\\" * rnd.randint(0, 3)}, ensure_ascii=False)
                events.append((chunk, k, new, None if k % 3 else '{"id": 0}'))
    sent = [a for a in worker._actions("t_x", route, events) if a[0] == "send"]
    prefix, suffix = trig.envelope("t_x", "public.x", "update")
    expected = trig.cut([(trig.record_with(trig.record_head(c[4], c[5]), idempotency_key("t_x", c[4], c[0], c[1], k), n, o),
                          (c[0], c[1], k, c[6])) for c, k, n, o in events], prefix, suffix, 7, 4096)
    assert [(a[1], a[2]) for a in sent] == expected and len(expected) == 7


@pytest.mark.parametrize("prefix", ["t:1:abc:", "t_x:77:5.", 'odd"\\é:'])
def test_record_parts_give_record_byte_for_byte(prefix):
    parts = trig.record_parts(prefix, 81234, "2026-12-02T00:00:00.000001Z")
    for n, new, old in ((0, '{"id":1}', None), (17, None, '{"a":"é"}'), (1001, '{"x":[1]}', '{"x":[2]}')):
        assert trig.record_at(parts, n, new, old) == trig.record(prefix + str(n), 81234, "2026-12-02T00:00:00.000001Z", new, old)
