"""Triggers and the outbox end to end: a spec installed with the real installer into a real PostgreSQL
15, changes made with SQL, events delivered through the real local stack to a recording Lambda
whose files show exactly what arrived. Faults come from the stack's fault injection.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg
import pytest
from outbox_helpers import make_loaded, queue_counts

from sqlambda import api
from sqlambda.errors import InstallError
from sqlambda.targets.postgres import drain as outbox

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

trig = outbox.runtime_module("sqlambda_triggers")
FAST_RETRY = {"max_attempts": 3, "base_delay_ms": 1, "max_delay_ms": 5}
SQLAMBDA = os.path.join(os.path.dirname(sys.executable), "sqlambda")
TABLES = ("basic", "limits", "flaky", "slow", "big", "now_sync", "now_async", "now_fail", "now_big", "now_par", "now_seq",
          "now_par_fail")


def spec_dict(endpoint: str, rec: str, flaky: str) -> dict:
    return {
        "project": "tg",
        "aws": {"endpoint_url": endpoint, "max_attempts": 2, "request_timeout_ms": 20000},
        "triggers": [
            {"name": "t_basic", "table": "basic", "lambda": rec, "mode": "sync", "delivery": "outbox",
             "batch": {"max_rows": 50}, "retry": FAST_RETRY},
            {"name": "t_limits", "table": "limits", "lambda": rec, "mode": "sync", "delivery": "outbox",
             "batch": {"max_rows": 7, "max_bytes": 2048}, "retry": FAST_RETRY},
            {"name": "t_flaky", "table": "flaky", "lambda": flaky, "mode": "sync", "delivery": "outbox",
             "retry": FAST_RETRY},
            {"name": "t_slow", "table": "slow", "lambda": rec, "mode": "sync", "delivery": "outbox",
             "batch": {"max_rows": 1000}, "retry": FAST_RETRY},
            {"name": "t_big", "table": "big", "lambda": rec, "mode": "sync", "delivery": "outbox",
             "events": ["insert"], "batch": {"max_rows": 500}, "retry": FAST_RETRY},
            {"name": "t_now", "table": "now_sync", "lambda": rec, "mode": "sync", "delivery": "immediate",
             "columns": ["id", "note"], "batch": {"max_rows": 10, "max_bytes": 2048}},
            {"name": "t_now_async", "table": "now_async", "lambda": rec, "mode": "async", "delivery": "immediate"},
            {"name": "t_now_fail", "table": "now_fail", "lambda": flaky, "mode": "sync", "delivery": "immediate"},
            {"name": "t_now_big", "table": "now_big", "lambda": rec, "mode": "async", "delivery": "immediate",
             "events": ["insert"], "batch": {"max_rows": 500}},
            {"name": "t_now_par", "table": "now_par", "lambda": rec, "mode": "sync", "delivery": "immediate",
             "events": ["insert"], "batch": {"max_rows": 10, "concurrency": 4}},
            {"name": "t_now_seq", "table": "now_seq", "lambda": rec, "mode": "sync", "delivery": "immediate",
             "events": ["insert"], "batch": {"max_rows": 10, "concurrency": 1}},
            {"name": "t_now_par_fail", "table": "now_par_fail", "lambda": flaky, "mode": "sync", "delivery": "immediate",
             "events": ["insert"], "batch": {"max_rows": 5, "concurrency": 3}},
        ],
    }


@pytest.fixture(scope="module")
def env(pg_dsn, local_stack, recorder, flaky):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, note text, amount numeric, extra jsonb)")
    loaded = make_loaded(spec_dict(local_stack.endpoint_url, recorder.name, flaky.name))
    api.install(loaded, pg_dsn)
    return {"dsn": pg_dsn, "loaded": loaded, "stack": local_stack}


@pytest.fixture
def db(env, recorder, flaky, faults):
    """The installed database; each test starts and must end with an empty queue and clean records."""
    recorder.clear()
    flaky.clear()
    with psycopg.connect(env["dsn"], autocommit=True) as conn:
        conn.execute("DELETE FROM sqlambda.outbox; DELETE FROM sqlambda.outbox_dead")
        for t in TABLES:
            conn.execute(f"TRUNCATE {t}")
    yield env["dsn"]
    flaky.fail(False)


def sql(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def orders_with_trigger(cluster, database: str, endpoint: str, trigger: dict, columns: str = "id int PRIMARY KEY, note text"):
    """A fresh database with an ``orders`` table and one trigger on it, installed: (dsn, loaded spec)."""
    dsn = cluster.create_database(database)
    sql(dsn, f"CREATE TABLE orders ({columns})")
    loaded = make_loaded({"project": trigger["name"], "aws": {"endpoint_url": endpoint},
                          "triggers": [{"table": "orders", **trigger}]})
    api.install(loaded, dsn)
    return dsn, loaded


def drain_all(dsn: str, **kw) -> outbox.DrainStats:
    return outbox.drain(dsn, **kw)


# -- delivery semantics ------------------------------------------------------------------------------
def test_a_rolled_back_transaction_sends_nothing(db, recorder):
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 20) g")
        # queued in the txn, as one chunk...
        assert conn.execute("SELECT count(*), sum(n) FROM sqlambda.outbox").fetchone() == (1, 20)
        conn.rollback()
    assert queue_counts(db) == (0, 0)  # ...and gone with it
    stats = drain_all(db)
    assert stats.delivered == 0 and recorder.batches("t_basic") == []


def test_committed_changes_arrive_exactly_as_made(db, recorder):
    sql(db,
        "INSERT INTO basic VALUES (1, 'one', 1.10, '{\"k\": [1, 2]}'), (2, 'two', 2, NULL), (3, 'thrée', NULL, NULL)",
        "UPDATE basic SET id = id + 10, note = note || '!' WHERE id >= 2",
        "DELETE FROM basic WHERE id = 1")
    stats = drain_all(db)
    assert stats.delivered == 6 and stats.failed_batches == 0
    batches = recorder.batches("t_basic")
    ops = [(b["operation"], [(r["new"], r["old"]) for r in b["records"]]) for b in batches]
    by_op = {op: recs for op, recs in ops}
    assert len(batches) == 3 and all(b["table"] == "public.basic" for b in batches)
    assert by_op["insert"] == [
        ({"id": 1, "note": "one", "amount": 1.10, "extra": {"k": [1, 2]}}, None),
        ({"id": 2, "note": "two", "amount": 2, "extra": None}, None),
        ({"id": 3, "note": "thrée", "amount": None, "extra": None}, None),
    ]
    assert by_op["update"] == [
        ({"id": 12, "note": "two!", "amount": 2, "extra": None}, {"id": 2, "note": "two", "amount": 2, "extra": None}),
        ({"id": 13, "note": "thrée!", "amount": None, "extra": None}, {"id": 3, "note": "thrée", "amount": None, "extra": None}),
    ]
    assert by_op["delete"] == [(None, {"id": 1, "note": "one", "amount": 1.10, "extra": {"k": [1, 2]}})]
    keys = [r["idempotency_key"] for b in batches for r in b["records"]]
    assert len(set(keys)) == 6 and all(k.startswith("t_basic:") for k in keys)
    assert queue_counts(db) == (0, 0)


def test_immediate_trigger_sends_one_call_per_batch_with_only_the_chosen_columns(db, recorder):
    sql(db, "INSERT INTO now_sync SELECT g, 'n' || g, g FROM generate_series(1, 25) g")
    # sync: recorded before the INSERT returned; files carry no order, the record keys do
    batches = sorted(recorder.batches("t_now"), key=lambda b: int(b["records"][0]["idempotency_key"].rsplit(":", 1)[1]))
    assert [len(b["records"]) for b in batches if b["operation"] == "insert"] == [10, 10, 5]
    recs = [r for b in batches for r in b["records"]]
    assert [r["new"] for r in recs] == [{"id": g, "note": f"n{g}"} for g in range(1, 26)]  # no amount/extra
    sql(db, "UPDATE now_sync SET note = 'x' WHERE id <= 3")
    upd = [b for b in recorder.batches("t_now") if b["operation"] == "update"]
    assert len(upd) == 1
    assert sorted((r["old"]["id"], r["old"]["note"], r["new"]["note"]) for r in upd[0]["records"]) == \
        [(1, "n1", "x"), (2, "n2", "x"), (3, "n3", "x")]
    assert queue_counts(db) == (0, 0)  # immediate never queues


def test_immediate_async_trigger_delivers_in_batches(db, recorder):
    sql(db, "INSERT INTO now_async SELECT g, 'a' FROM generate_series(1, 1200) g")
    recs = recorder.wait_records("t_now_async", 1200)
    assert sorted(r["new"]["id"] for r in recs) == list(range(1, 1201))
    assert sorted(len(b["records"]) for b in recorder.batches("t_now_async")) == [200, 500, 500]


def test_immediate_sync_lambda_error_aborts_the_statement(db, flaky):
    flaky.fail(True)
    with pytest.raises(psycopg.Error) as err:
        sql(db, "INSERT INTO now_fail VALUES (1, 'x')")
    assert err.value.sqlstate == "LA001"
    assert "lambda tg_flaky failed: RuntimeError: asked to fail" in str(err.value)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM now_fail").fetchone()[0] == 0


def test_immediate_row_larger_than_a_batch_is_refused_before_sending(db, recorder):
    with pytest.raises(psycopg.Error) as err:
        sql(db, f"INSERT INTO now_sync VALUES (1, '{'x' * 5000}')")
    assert err.value.sqlstate == "54000" and "over the batch limit of 2048 bytes" in str(err.value)
    assert recorder.batches("t_now") == []


# -- batches in flight at once (batch.concurrency) -----------------------------------------------------
def _delivered_ids(recorder, trigger):
    return sorted(r["new"]["id"] for b in recorder.batches(trigger) for r in b["records"])


def test_immediate_batches_are_in_flight_together_up_to_the_concurrency_and_arrive_once(db, recorder, faults):
    faults.clear(recorder.name)
    faults.latency(recorder.name, 300, count=None)  # a Lambda that takes 300 ms: the sends overlap
    try:
        sql(db, "INSERT INTO now_par SELECT g, 'p' FROM generate_series(1, 80) g")  # 8 batches of 10
        stats = faults.stats(recorder.name)
    finally:
        faults.clear(recorder.name)
    assert stats["in_flight_max"] == 4 and stats["requests"] == 8, stats  # never more than batch.concurrency
    assert _delivered_ids(recorder, "t_now_par") == list(range(1, 81))
    keys = [r["idempotency_key"] for b in recorder.batches("t_now_par") for r in b["records"]]
    assert len(set(keys)) == 80 and sorted(int(k.rsplit(":", 1)[1]) for k in keys) == list(range(80))


def test_concurrency_one_sends_each_batch_after_the_previous_one_succeeded(db, recorder, faults):
    faults.clear(recorder.name)
    faults.latency(recorder.name, 100, count=None)
    try:
        sql(db, "INSERT INTO now_seq SELECT g, 's' FROM generate_series(1, 40) g")
        stats = faults.stats(recorder.name)
    finally:
        faults.clear(recorder.name)
    assert stats["in_flight_max"] == 1 and stats["requests"] == 4, stats
    assert _delivered_ids(recorder, "t_now_seq") == list(range(1, 41))


def test_a_throttled_batch_is_retried_on_its_own_while_the_others_stay_in_flight(db, recorder, faults):
    faults.clear(recorder.name)
    faults.throttle(recorder.name, count=2)
    try:
        sql(db, "INSERT INTO now_par SELECT g, 't' FROM generate_series(1, 60) g")
        stats = faults.stats(recorder.name)
    finally:
        faults.clear(recorder.name)
    assert stats["throttled"] == 2 and stats["requests"] == 8, stats  # 6 batches + 2 retries
    assert _delivered_ids(recorder, "t_now_par") == list(range(1, 61))


def test_a_failing_batch_aborts_the_statement_and_the_session_stays_usable(db, flaky):
    flaky.fail(True)
    with psycopg.connect(db, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as err:
            conn.execute("INSERT INTO now_par_fail SELECT g, 'f' FROM generate_series(1, 20) g")
        assert err.value.sqlstate == "LA001" and "asked to fail" in str(err.value)
        assert conn.execute("SELECT count(*) FROM now_par_fail").fetchone()[0] == 0
        flaky.fail(False)
        flaky.clear()
        # the connections of the abandoned calls were dropped: no stale answer is read as a new one
        conn.execute("INSERT INTO now_par_fail SELECT g, 'g' FROM generate_series(1, 20) g")
        assert conn.execute("SELECT count(*) FROM now_par_fail").fetchone()[0] == 20
    # (calls of the failed statement that were in flight may still have run: their answers were dropped)
    second = sorted(r["new"]["id"] for b in flaky.batches("t_now_par_fail") for r in b["records"] if r["new"]["note"] == "g")
    assert second == list(range(1, 21))


# -- limits ---------------------------------------------------------------------------------------------
def _raw_size(batch: dict) -> int:
    """The exact request size: the envelope rebuilt from what arrived (row_to_json's text is compact
    JSON in column order, which json.dumps reproduces for rows of integers and ASCII strings)."""
    prefix, suffix = trig.envelope(batch["trigger"], batch["table"], batch["operation"])
    recs = [trig.record(r["idempotency_key"], r["txid"], r["ts"],
                        None if r["new"] is None else json.dumps(r["new"], separators=(",", ":")),
                        None if r["old"] is None else json.dumps(r["old"], separators=(",", ":"))) for r in batch["records"]]
    return len((prefix + ",".join(recs) + suffix).encode())


def test_row_and_byte_limits_are_respected(db, recorder):
    # narrow rows, then wide ones: the first batches are cut by max_rows (7), the later by max_bytes (2048)
    sql(db, "INSERT INTO limits SELECT g, repeat('x', CASE WHEN g <= 60 THEN 5 ELSE 300 END) FROM generate_series(1, 120) g")
    drain_all(db)
    batches = recorder.batches("t_limits")
    sizes = [_raw_size(b) for b in batches]
    counts = [len(b["records"]) for b in batches]
    assert sum(counts) == 120
    assert max(counts) == 7 and max(sizes) <= 2048
    assert any(c < 7 for c in counts[:-1])  # some batch was cut by bytes, not rows
    assert sorted(r["new"]["id"] for b in batches for r in b["records"]) == list(range(1, 121))


# -- faults ---------------------------------------------------------------------------------------------
def test_endpoint_down_keeps_rows_queued_until_recovery(db, recorder, faults):
    sql(db, "INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 30) g")
    faults.drop(recorder.name, count=None)  # every call: connection closed without a response
    stats = drain_all(db)
    assert stats.delivered == 0 and stats.failed_batches >= 1
    assert "EndpointUnreachable" in stats.last_error or "LA004" in stats.last_error
    with psycopg.connect(db) as conn:
        queued, attempts, err = conn.execute(
            "SELECT sum(n - done), min(attempts), min(last_error) FROM sqlambda.outbox WHERE trigger_name = 't_basic'").fetchone()
    assert queued == 30 and attempts == 1 and "LA004" in err
    faults.clear()
    time.sleep(0.05)  # past the (1 ms base) backoff
    stats = drain_all(db)
    assert stats.delivered == 30
    assert sorted(r["new"]["id"] for r in recorder.records("t_basic")) == list(range(1, 31))
    assert queue_counts(db) == (0, 0)


def test_throttling_and_5xx_are_retried_without_losing_order_or_rows(db, recorder, faults):
    sql(db, "INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 120) g")
    faults.throttle(recorder.name, count=3)
    faults.server_error(recorder.name, count=2, status=503)
    deadline = time.monotonic() + 30
    while queue_counts(db)[0] and time.monotonic() < deadline:
        drain_all(db)
        time.sleep(0.02)
    assert queue_counts(db) == (0, 0)
    ids = [r["new"]["id"] for b in recorder.batches("t_basic") for r in b["records"]]
    assert sorted(ids) == list(range(1, 121)) and len(ids) == 120
    for b in recorder.batches("t_basic"):  # order kept within a batch
        got = [r["new"]["id"] for r in b["records"]]
        assert got == sorted(got)


def test_events_that_keep_failing_go_dead_and_retry_dead_brings_them_back(db, flaky):
    sql(db, "INSERT INTO flaky SELECT g, 'f' FROM generate_series(1, 5) g")
    flaky.fail(True)
    for _ in range(50):
        drain_all(db)
        if queue_counts(db) == (0, 5):
            break
        time.sleep(0.02)
    assert queue_counts(db) == (0, 5)
    st = outbox.status(db)
    assert st.dead == 5 and st.depth == 0
    with psycopg.connect(db) as conn:
        attempts, err = conn.execute("SELECT min(attempts), min(last_error) FROM sqlambda.outbox_dead").fetchone()
    assert attempts == 3 and "lambda tg_flaky failed: RuntimeError: asked to fail" in err
    assert flaky.batches() == []
    flaky.fail(False)
    assert outbox.retry_dead(db, trigger="t_other") == 0
    assert outbox.retry_dead(db, trigger="t_flaky") == 5
    assert queue_counts(db) == (5, 0)
    assert drain_all(db).delivered == 5
    recs = flaky.records("t_flaky")
    assert sorted(r["new"]["id"] for r in recs) == [1, 2, 3, 4, 5]
    assert queue_counts(db) == (0, 0)


def test_a_chunk_that_fails_half_way_resumes_where_it_stopped(db, flaky):
    # one statement, two chunks (1000 + 200 events); batches of 500; the Lambda breaks after the first batch
    sql(db, "INSERT INTO flaky SELECT g, 'f' FROM generate_series(1, 1200) g")
    stats = outbox.drain(db, on_batch=lambda trigger, n: flaky.fail(True))
    assert stats.delivered == 500 and stats.failed_events == 500
    with psycopg.connect(db) as conn:
        chunks = conn.execute("SELECT n, done, attempts FROM sqlambda.outbox ORDER BY id, base").fetchall()
    # the first chunk keeps its progress; the second was not sent while the first waits for its retry,
    # so the trigger's events never overtake one another
    assert chunks == [(1000, 500, 1), (200, 0, 0)]
    assert queue_counts(db) == (700, 0)
    flaky.fail(False)
    time.sleep(0.05)  # past the backoff
    assert outbox.drain(db).delivered == 700
    recs = flaky.records("t_flaky")
    keys = Counter(r["idempotency_key"] for r in recs)
    assert len(keys) == 1200 and set(keys.values()) == {1}  # nothing sent twice, nothing skipped
    assert sorted(r["new"]["id"] for r in recs) == list(range(1, 1201))
    assert queue_counts(db) == (0, 0)


def test_an_oversized_event_goes_dead_alone_keeping_its_key(db, recorder):
    sql(db, "INSERT INTO limits SELECT g, CASE WHEN g = 5 THEN repeat('x', 5000) ELSE 'ok' END FROM generate_series(1, 10) g")
    stats = outbox.drain(db)
    assert stats.delivered == 9 and stats.dead == 1 and "over the limit of 2048 bytes" in stats.last_error
    batches = recorder.batches("t_limits")  # files carry no order; the keys do
    recs = sorted((r for b in batches for r in b["records"]), key=lambda r: int(r["idempotency_key"].rsplit(".", 1)[1]))
    assert [r["new"]["id"] for r in recs] == [1, 2, 3, 4, 6, 7, 8, 9, 10]  # the rest, around the dead one
    assert sorted(len(b["records"]) for b in batches) == [4, 5]  # cut at the dead one: order kept per batch
    chunk = {r["idempotency_key"].rsplit(".", 1)[0] for r in recs}
    assert len(chunk) == 1
    assert [int(r["idempotency_key"].rsplit(".", 1)[1]) for r in recs] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    with psycopg.connect(db) as conn:
        dead = conn.execute("SELECT id, base, n, done, (new_rows -> 0 ->> 'id')::int, last_error FROM sqlambda.outbox_dead").fetchall()
    assert len(dead) == 1
    cid, base, n, done, row_id, err = dead[0]
    assert (n, done, row_id) == (1, 0, 5) and "[54000]" in err
    assert f"{chunk.pop().rsplit(':', 1)[1]}.{base + 1}" == f"{cid}.5"  # the key it had in its chunk
    assert queue_counts(db) == (0, 1)
    with psycopg.connect(db) as conn:
        conn.execute("DELETE FROM sqlambda.outbox_dead")


def test_statements_are_queued_as_ordered_chunks(db, recorder):
    sql(db, "INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 2500) g",
        "UPDATE basic SET note = 'u' || id")
    with psycopg.connect(db) as conn:
        chunks = conn.execute(
            "SELECT op, n, json_array_length(new_rows), json_array_length(old_rows), (new_rows -> 0 ->> 'id')::int "
            "FROM sqlambda.outbox ORDER BY id, base").fetchall()
    assert [c[:4] for c in chunks] == [("insert", 1000, 1000, None), ("insert", 1000, 1000, None),
                                       ("insert", 500, 500, None), ("update", 1000, 1000, 1000),
                                       ("update", 1000, 1000, 1000), ("update", 500, 500, 500)]
    assert [c[4] for c in chunks[:3]] == [1, 1001, 2001]  # statement order
    assert outbox.drain(db).delivered == 5000
    recs = recorder.records("t_basic")
    ups = [r for r in recs if r["old"] is not None]
    assert len(ups) == 2500 and all(r["new"]["id"] == r["old"]["id"] and r["new"]["note"] == f"u{r['old']['id']}"
                                    and r["old"]["note"] == "n" for r in ups)  # images paired by position
    assert sorted(r["new"]["id"] for r in recs if r["old"] is None) == list(range(1, 2501))


def test_chunks_hold_every_image_in_statement_order(pg_cluster, local_stack, recorder, monkeypatch):
    """The enqueue loop cuts each statement into full chunks plus one partial, with nothing lost,
    nothing repeated and the images in statement order (chunks of 7 so that 250 rows make many)."""
    from sqlambda.targets.postgres import triggers as pg_outbox

    monkeypatch.setattr(pg_outbox, "CHUNK_ROWS", 7)
    dsn, _ = orders_with_trigger(pg_cluster, "t_chunks", local_stack.endpoint_url, {"name": "c_out", "lambda": recorder.name})
    sql(dsn, "INSERT INTO orders SELECT g, 'a' || g FROM generate_series(1, 250) g",
        "UPDATE orders SET note = 'b' || id WHERE id % 2 = 0",
        "UPDATE orders SET note = 'none' WHERE false",  # no rows: no chunk
        "DELETE FROM orders WHERE id > 200")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT op, n, new_rows::text, old_rows::text FROM sqlambda.outbox ORDER BY id, base").fetchall()
    chunks = [(op, n, json.loads(new) if new else None, json.loads(old) if old else None) for op, n, new, old in rows]
    assert [(c[0], c[1]) for c in chunks] == [("insert", 7)] * 35 + [("insert", 5)] + [("update", 7)] * 17 + \
        [("update", 6)] + [("delete", 7)] * 7 + [("delete", 1)]
    assert all(len(new or old) == n and (new is None or old is None or len(old) == n) for _, n, new, old in chunks)
    inserted = [img for op, _, news, _ in chunks if op == "insert" for img in news]
    assert inserted == [{"id": g, "note": f"a{g}"} for g in range(1, 251)]  # statement order, exact images
    ups = [(new, old) for op, _, news, olds in chunks if op == "update" for new, old in zip(news, olds)]
    assert sorted(new["id"] for new, _ in ups) == list(range(2, 251, 2))
    assert all(new["id"] == old["id"] and new["note"] == f"b{new['id']}" and old["note"] == f"a{old['id']}"
               for new, old in ups)  # old and new paired by position
    deleted = [img for op, _, _, olds in chunks if op == "delete" for img in olds]
    assert sorted(d["id"] for d in deleted) == list(range(201, 251))
    assert all(d["note"] == (f"b{d['id']}" if d["id"] % 2 == 0 else f"a{d['id']}") for d in deleted)
    assert outbox.drain(dsn).delivered == 250 + 125 + 50


def test_retry_dead_by_id(db, flaky):
    # two statements, two chunks: one event, then two
    sql(db, "INSERT INTO flaky VALUES (1, 'f')", "INSERT INTO flaky SELECT g, 'f' FROM generate_series(2, 3) g")
    flaky.fail(True)
    for _ in range(50):
        drain_all(db)
        if queue_counts(db) == (0, 3):
            break
        time.sleep(0.02)
    with psycopg.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM sqlambda.outbox_dead ORDER BY id")]
    assert outbox.retry_dead(db, ids=[ids[0]]) == 1
    assert queue_counts(db) == (1, 2)
    outbox.retry_dead(db)
    with psycopg.connect(db) as conn:
        conn.execute("DELETE FROM sqlambda.outbox")


def test_kill_9_mid_batch_redelivers_everything_with_the_same_keys(db, recorder, faults, env):
    sql(db, "INSERT INTO slow SELECT g, 's' FROM generate_series(1, 200) g")
    faults.latency(recorder.name, ms=3000, count=1)  # the first call hangs: the drainer is mid-batch
    proc = subprocess.Popen([SQLAMBDA, "drain", "--dsn", db, "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 30
        while outbox.status(db).in_flight == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the drainer never claimed the batch"
            time.sleep(0.05)
        assert outbox.status(db).in_flight == 200
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the server notices the dead client and releases the row locks: everything is still queued
    deadline = time.monotonic() + 20
    while outbox.status(db).in_flight:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert queue_counts(db) == (200, 0)
    assert drain_all(db).delivered == 200
    recs = recorder.wait_records("t_slow", 400, timeout=10)  # the hung call ran too: duplicates allowed
    counts = Counter(r["idempotency_key"] for r in recs)
    assert len(counts) == 200 and set(counts.values()) <= {1, 2}
    assert sorted({r["new"]["id"] for r in recs}) == list(range(1, 201))
    assert queue_counts(db) == (0, 0)


def test_two_drainers_never_send_the_same_event(db, recorder):
    sql(db, "INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 3000) g")
    workers: Counter = Counter()
    stats = []

    def run():
        stats.append(outbox.drain(db, workers=2, claim_limit=50,
                                  on_batch=lambda t, n: workers.update({threading.current_thread().name: n})))

    threads = [threading.Thread(target=run, name=f"drainer{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(s.delivered for s in stats) == 3000 and all(s.failed_batches == 0 for s in stats)
    keys = Counter(r["idempotency_key"] for r in recorder.records("t_basic"))
    assert len(keys) == 3000 and set(keys.values()) == {1}  # no failure, so no event twice
    assert len(workers) >= 2  # the work was really shared
    assert queue_counts(db) == (0, 0)


def test_follow_mode_wakes_on_notify(db, recorder):
    stop = threading.Event()
    result = []
    t = threading.Thread(target=lambda: result.append(outbox.drain(db, follow=True, stop=stop)))
    t.start()
    try:
        time.sleep(0.5)
        sql(db, "INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 10) g")
        recs = recorder.wait_records("t_basic", 10, timeout=20)
        assert sorted(r["new"]["id"] for r in recs) == list(range(1, 11))
    finally:
        stop.set()
        t.join(20)
    assert result and result[0].delivered == 10


def test_100k_rows_through_immediate_and_outbox_arrive_exactly_once(db, recorder):
    sql(db, "INSERT INTO now_big SELECT g, 'b' FROM generate_series(1, 100000) g",
        "INSERT INTO big SELECT g, 'b' FROM generate_series(1, 100000) g")
    with psycopg.connect(db) as conn:  # over the in-memory limit: chunked through sorts, in order
        chunks = conn.execute("SELECT n, (new_rows -> 0 ->> 'id')::int FROM sqlambda.outbox ORDER BY id, base").fetchall()
    assert chunks == [(1000, k * 1000 + 1) for k in range(100)]
    stats = outbox.drain(db, workers=2)
    assert stats.delivered == 100000
    for trigger in ("t_big", "t_now_big"):
        recs = recorder.wait_records(trigger, 100000, timeout=120)
        keys = Counter(r["idempotency_key"] for r in recs)
        assert len(keys) == 100000, trigger
        assert set(keys.values()) == {1}, trigger  # nothing failed, so no duplicates either
        assert len({r["new"]["id"] for r in recs}) == 100000
        assert all(len(b["records"]) <= 500 for b in recorder.batches(trigger))
    assert queue_counts(db) == (0, 0)


# -- operators ---------------------------------------------------------------------------------------------
def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SQLAMBDA, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_status_and_drain_from_the_command_line(db, recorder):
    sql(db, "INSERT INTO basic SELECT g, 'n' FROM generate_series(1, 40) g")
    time.sleep(1.1)
    res = _cli("outbox", "status", "--dsn", db, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["depth"] == 40 and doc["dead"] == 0 and doc["in_flight"] == 0 and doc["oldest_age_seconds"] >= 1.0
    row = next(t for t in doc["triggers"] if t["trigger"] == "t_basic")
    assert row["queued"] == 40 and row["table"] == "public.basic" and row["lambda_name"] == recorder.name
    alert = _cli("outbox", "status", "--dsn", db, "--json", "--alert-depth", "10")
    assert alert.returncode == 12
    alert_doc = json.loads(alert.stdout)  # one document: the error, with the status as details
    assert alert_doc["error"] == "outbox" and alert_doc["details"]["alerts"] == ["depth 40 > 10"]
    assert alert_doc["details"]["depth"] == 40
    assert _cli("outbox", "status", "--dsn", db, "--alert-depth", "1000", "--alert-age", "300").returncode == 0
    res = _cli("drain", "--once", "--json", env={"DATABASE_URL": db})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["delivered"] == 40
    assert json.loads(_cli("outbox", "status", "--dsn", db, "--json").stdout)["depth"] == 0


def test_drain_against_a_database_without_outbox_is_a_clear_error(pg_cluster):
    dsn = pg_cluster.create_database("t_outbox_none")
    res = _cli("drain", "--dsn", dsn)
    assert res.returncode == 12 and "no outbox in schema 'sqlambda'" in res.stderr and "Traceback" not in res.stderr


# -- install / uninstall ----------------------------------------------------------------------------------
def test_queue_chunks_are_compressed_with_lz4_where_the_server_has_it(env):
    with psycopg.connect(env["dsn"]) as conn:
        has_lz4 = conn.execute("SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'").fetchone()[0]
        got = dict(conn.execute("SELECT attname, attcompression::text || attstorage::text FROM pg_attribute "
                                "WHERE attrelid = 'sqlambda.outbox'::regclass AND attname IN ('new_rows', 'old_rows')").fetchall())
    assert got == ({"new_rows": "lx", "old_rows": "lx"} if has_lz4 else {"new_rows": "e", "old_rows": "e"})


def test_install_twice_changes_nothing(env):
    result = api.install(env["loaded"], env["dsn"])
    assert result.to_dict()["applied"] == []


def test_uninstall_refuses_while_events_are_queued_and_never_touches_user_tables(pg_cluster, local_stack, recorder):
    dsn, loaded = orders_with_trigger(pg_cluster, "t_outbox_uninstall", local_stack.endpoint_url,
                                      {"name": "u_out", "lambda": recorder.name, "mode": "sync"})
    sql(dsn, "INSERT INTO orders VALUES (1, 'a'), (2, 'b')")
    with pytest.raises(InstallError, match="undelivered"):
        api.uninstall(dsn, spec=loaded)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT sum(n - done) FROM sqlambda.outbox").fetchone()[0] == 2  # nothing lost
        # the trigger is already gone (uninstall runs in reverse order): nothing new gets queued
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'u_out%'").fetchone()[0] == 0
    assert outbox.drain(dsn).delivered == 2
    api.uninstall(dsn, spec=loaded)
    api.uninstall(dsn, spec=loaded)  # twice: nothing left, no error
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 2  # the user's table survives
        assert conn.execute("SELECT to_regclass('sqlambda.outbox')").fetchone()[0] is None


def test_a_queue_layout_change_waits_for_the_queue_to_drain_and_loses_nothing(pg_cluster, local_stack, recorder):
    """A new sqlambda whose queue tables differ: install drops and creates them, but only once empty."""
    dsn, loaded = orders_with_trigger(pg_cluster, "t_outbox_layout", local_stack.endpoint_url,
                                      {"name": "l_out", "lambda": recorder.name, "mode": "sync"})
    sql(dsn, "INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 3) g")
    # what an older install looks like to the planner: the tables' checksums differ from this render
    sql(dsn, "UPDATE sqlambda.installed SET checksum = 'older' WHERE key IN ('table sqlambda.outbox', 'table sqlambda.outbox_route')")
    p = api.plan(loaded, dsn)
    assert {s.key: s.action for s in p.changes} == {
        "table sqlambda.outbox": "recreate", "table sqlambda.outbox_route": "recreate",
        # the route row and the queue's policy go with their tables, so they are written again
        "outbox route l_out": "replace", "policy enqueue_l_out on sqlambda.outbox": "recreate"}
    with pytest.raises(InstallError) as exc:
        api.install(loaded, dsn)
    assert "3 undelivered event(s)" in exc.value.message and "55006" in exc.value.message
    assert queue_counts(dsn) == (3, 0)  # the step rolled back: every committed event is still queued
    assert outbox.drain(dsn).delivered == 3
    result = api.install(loaded, dsn)
    assert {a.key: a.action for a in result.applied} == {s.key: s.action for s in p.changes}
    sql(dsn, "INSERT INTO orders VALUES (4, 'after')")
    assert queue_counts(dsn) == (1, 0) and outbox.drain(dsn).delivered == 1  # the new queue and route work
    recs = [r for r in recorder.wait_records("l_out", 4, timeout=20) if r["new"]["id"] in (1, 2, 3, 4)]
    assert sorted(r["new"]["id"] for r in recs) == [1, 2, 3, 4]
    assert api.plan(loaded, dsn).is_noop


def test_uninstall_after_the_user_dropped_the_table(pg_cluster, local_stack, recorder):
    dsn, loaded = orders_with_trigger(pg_cluster, "t_outbox_dropped", local_stack.endpoint_url,
                                      {"name": "u_now", "lambda": recorder.name, "delivery": "immediate"}, "id int PRIMARY KEY")
    sql(dsn, "DROP TABLE orders")
    api.uninstall(dsn, spec=loaded)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regprocedure('sqlambda.trg_u_now_insert()')").fetchone()[0] is None


def test_queue_survives_an_immediate_shutdown(local_stack, recorder):
    """kill -9 of the whole server (pg_ctl -m immediate): committed events are WAL-logged, so they survive."""
    from sqlambda.targets.postgres.cluster import Cluster

    cluster = Cluster(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    cluster.start()
    try:
        dsn, loaded = orders_with_trigger(cluster, "crash", local_stack.endpoint_url,
                                          {"name": "c_out", "lambda": recorder.name, "mode": "sync"})
        sql(dsn, "INSERT INTO orders SELECT g, 'c' FROM generate_series(1, 500) g")
        conn = psycopg.connect(dsn)  # an uncommitted one must vanish
        conn.execute("INSERT INTO orders VALUES (9999, 'uncommitted')")
        cluster.stop("immediate")
        try:
            conn.close()
        except psycopg.Error:
            pass
        cluster.start()
        assert queue_counts(dsn) == (500, 0)
        assert outbox.drain(dsn).delivered == 500
        recs = recorder.wait_records("c_out", 500)
        assert sorted(r["new"]["id"] for r in recs) == list(range(1, 501))
    finally:
        cluster.destroy()


def test_a_following_drainer_survives_a_postgresql_restart(local_stack, recorder):
    """drain --follow across a server restart: it reconnects (workers and LISTEN) and keeps delivering."""
    from sqlambda.targets.postgres.cluster import Cluster

    cluster = Cluster(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    cluster.start()
    stop = threading.Event()
    result: list = []
    errors: list = []

    def follow(dsn: str) -> None:
        try:
            result.append(outbox.drain(dsn, follow=True, stop=stop))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    try:
        dsn, loaded = orders_with_trigger(cluster, "follow_restart", local_stack.endpoint_url,
                                          {"name": "f_out", "lambda": recorder.name, "mode": "sync"})
        t = threading.Thread(target=follow, args=(dsn,))
        t.start()
        sql(dsn, "INSERT INTO orders SELECT g, 'before' FROM generate_series(1, 10) g")
        assert len(recorder.wait_records("f_out", 10, timeout=20)) == 10
        cluster.stop("immediate")
        time.sleep(1.5)  # the drainer sees its connections fail while the server is down
        cluster.start()
        sql(dsn, "INSERT INTO orders SELECT g, 'after' FROM generate_series(11, 20) g")
        recs = recorder.wait_records("f_out", 20, timeout=30)
        assert sorted(r["new"]["id"] for r in recs) == list(range(1, 21))
        assert not errors and t.is_alive()
    finally:
        stop.set()
        cluster.destroy()
    t.join(20)
    assert not errors, errors
    assert result and result[0].delivered == 20


def test_every_batch_delivered_matches_the_shipped_json_schema(db, recorder):
    """The one envelope definition, checked on what really arrived: both trigger kinds, all three operations."""
    import jsonschema

    from sqlambda.delivery import envelope

    sql(db, "INSERT INTO basic SELECT g, 'n', g * 1.5, jsonb_build_object('k', g) FROM generate_series(1, 30) g",
        "UPDATE basic SET note = 'u' WHERE id <= 10", "DELETE FROM basic WHERE id > 25",
        "INSERT INTO now_sync SELECT g, 'x' FROM generate_series(1, 12) g", "UPDATE now_sync SET note = 'y'",
        "DELETE FROM now_sync WHERE id = 1")
    assert drain_all(db).delivered == 45
    batches = recorder.batches()
    assert {b["trigger"] for b in batches} == {"t_basic", "t_now"}
    assert {b["operation"] for b in batches} == {"insert", "update", "delete"}
    schema = envelope.json_schema()
    for b in batches:
        jsonschema.validate(b, schema)
