"""The MySQL outbox: row triggers queue changes in the writer's transaction, ``sqlambda drain
--target mysql`` delivers them after commit, with the same envelope and guarantees as PostgreSQL's.

Attacked: a rolled-back transaction (nothing sent), ``kill -9`` of the drainer mid-batch and of
mysqld right after commits (nothing committed lost), a Lambda outage (lag, not dead letters), a
poison event (dead letter, retried by hand), and ordering on a Kinesis sink.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqlambda import api

SQLAMBDA = str(Path(sys.executable).with_name("sqlambda"))
pytestmark = [pytest.mark.local_stack, pytest.mark.slow]


@pytest.fixture
def outbox(installed):
    installed.recorder.clear()
    installed.run("DELETE FROM shop.orders", "DELETE FROM sqlambda.sqlambda_outbox", "DELETE FROM sqlambda.sqlambda_outbox_dead")
    yield installed
    installed.recorder.fail(False)


def _drain(server, **kw):
    return api.drain(server.dsn, target="mysql", schema="sqlambda", **kw)


def _ids(records) -> list:
    return [(r["new"] or r["old"])["id"] for r in records]


def test_changes_arrive_as_change_events_after_commit_only(outbox):
    with outbox.connect() as c, c.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO shop.orders VALUES (1, 'new'), (2, 'new')")
        cur.execute("ROLLBACK")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO shop.orders VALUES (3, 'new'), (4, 'new')")
        cur.execute("UPDATE shop.orders SET status = 'paid' WHERE id = 3")
        cur.execute("DELETE FROM shop.orders WHERE id = 4")
        cur.execute("COMMIT")
    stats = _drain(outbox)
    assert stats.delivered == 4 and stats.dead == 0
    batches = outbox.recorder.batches("orders_out")
    # the recorder's files carry no order: one batch per (operation) run of the queue
    by_op = {b["operation"]: b["records"] for b in batches}
    assert sorted((b["table"], b["operation"], len(b["records"])) for b in batches) == [
        ("shop.orders", "delete", 1), ("shop.orders", "insert", 2), ("shop.orders", "update", 1)]
    assert by_op["insert"][0]["new"] == {"id": 3, "status": "new"} and by_op["insert"][0]["old"] is None
    assert by_op["update"][0]["new"] == {"id": 3, "status": "paid"} and by_op["update"][0]["old"] == {"id": 3, "status": "new"}
    assert by_op["delete"][0]["new"] is None and by_op["delete"][0]["old"] == {"id": 4, "status": "new"}
    records = [r for b in batches for r in b["records"]]
    assert len({r["idempotency_key"] for r in records}) == 4
    assert len({r["txid"] for r in records}) == 1 and records[0]["txid"]  # one transaction, its InnoDB id
    assert all(b["source"] == "sqlambda" and b["trigger"] == "orders_out" for b in batches)
    assert outbox.one("SELECT COUNT(*) FROM sqlambda.sqlambda_outbox") == 0


def test_the_envelope_validates_against_the_shipped_schema(outbox):
    import jsonschema

    from sqlambda.delivery.envelope import json_schema

    outbox.run("INSERT INTO shop.orders VALUES (10, 'x')")
    _drain(outbox)
    for batch in outbox.recorder.batches("orders_out"):
        jsonschema.validate(batch, json_schema())


def test_an_outage_is_lag_not_dead_letters_and_status_shows_it(outbox, faults):
    outbox.run("INSERT INTO shop.orders VALUES (20, 'a'), (21, 'b')")
    faults.server_error("my_rec", count=None, status=503)
    stats = _drain(outbox)
    assert stats.delivered == 0 and stats.dead == 0 and stats.failed_events >= 2
    st = api.outbox_status(outbox.dsn, target="mysql", schema="sqlambda")
    assert st.depth == 2 and st.dead == 0 and st.oldest_age_seconds is not None
    assert st.triggers[0].queued == 2 and st.triggers[0].dead == 0
    assert outbox.one("SELECT MIN(attempts) FROM sqlambda.sqlambda_outbox") == 0  # an outage does not count
    faults.clear("my_rec")
    deadline = time.monotonic() + 20
    while outbox.one("SELECT COUNT(*) FROM sqlambda.sqlambda_outbox") and time.monotonic() < deadline:
        _drain(outbox)
        time.sleep(0.1)
    assert sorted(_ids(outbox.recorder.records("orders_out"))) == [20, 21]


def test_a_poison_event_goes_to_dead_letters_and_comes_back_by_hand(outbox):
    outbox.run("UPDATE sqlambda.sqlambda_outbox_route SET max_attempts = 2 WHERE route = 'orders_out'")
    try:
        outbox.recorder.fail(True)  # the Lambda raises: a function error, counted
        outbox.run("INSERT INTO shop.orders VALUES (30, 'poison')")
        deadline = time.monotonic() + 20
        while not outbox.one("SELECT COUNT(*) FROM sqlambda.sqlambda_outbox_dead") and time.monotonic() < deadline:
            _drain(outbox)
            time.sleep(0.1)
        err = outbox.one("SELECT error FROM sqlambda.sqlambda_outbox_dead")
        assert "asked to fail" in err
        outbox.recorder.fail(False)
        assert api.retry_dead(outbox.dsn, target="mysql", schema="sqlambda", trigger="orders_out") == 1
        _drain(outbox)
        assert _ids(outbox.recorder.records("orders_out")) == [30]
    finally:
        outbox.run("UPDATE sqlambda.sqlambda_outbox_route SET max_attempts = 8 WHERE route = 'orders_out'")


def test_kill_9_of_the_drainer_mid_batch_loses_nothing(outbox, faults, tmp_path):
    """A drainer killed while its batch is at the Lambda: the claim's transaction dies with it, so
    every event is still queued and the next drain delivers them (at least once)."""
    outbox.run("INSERT INTO shop.orders VALUES " + ", ".join(f"({i}, 's')" for i in range(100, 160)))
    faults.latency("my_rec", 3000, count=None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([SQLAMBDA, "drain", "--target", "mysql", "--dsn", outbox.dsn,
                             "--schema", "sqlambda", "--follow"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while faults.stats("my_rec").get("in_flight", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert faults.stats("my_rec")["in_flight"] >= 1  # its batch is at the Lambda right now
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    faults.clear("my_rec")
    time.sleep(3.5)  # the killed request finishes at the Lambda (a duplicate, as at-least-once allows)
    assert outbox.one("SELECT COUNT(*) FROM sqlambda.sqlambda_outbox") == 60
    _drain(outbox)
    assert set(_ids(outbox.recorder.records("orders_out"))) == set(range(100, 160))
    assert outbox.one("SELECT COUNT(*) FROM sqlambda.sqlambda_outbox") == 0


def test_kill_9_of_mysqld_after_commits_loses_nothing(outbox, local_stack):
    from mysql_helpers import server_env

    outbox.run(*[f"INSERT INTO shop.orders VALUES ({i}, 'c')" for i in range(200, 230)])  # 30 commits
    outbox.db.kill()
    outbox.db.start()
    assert outbox.one("SELECT COUNT(*) FROM sqlambda.sqlambda_outbox") == 30
    outbox.db.env = server_env(local_stack)
    _drain(outbox)
    assert sorted(_ids(outbox.recorder.records("orders_out"))) == list(range(200, 230))


def test_drain_cli_status_json(outbox):
    outbox.run("INSERT INTO shop.orders VALUES (300, 'x')")
    out = subprocess.run([SQLAMBDA, "outbox", "status", "--target", "mysql", "--dsn", outbox.dsn,
                          "--schema", "sqlambda", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["depth"] == 1 and doc["triggers"][0]["trigger"] == "orders_out"
    assert "Traceback" not in out.stderr


def test_writers_are_not_blocked_while_a_batch_is_at_the_lambda(outbox, faults):
    """A claim locks the rows it took, not the queue's end: a writer's trigger appends while the
    drainer waits for a slow Lambda (its lock wait limit is 1 s; the Lambda takes 3)."""
    import threading

    outbox.run("INSERT INTO shop.orders VALUES (400, 'first')")
    faults.latency("my_rec", 3000, count=None)
    done = threading.Thread(target=_drain, args=(outbox,))
    done.start()
    try:
        deadline = time.monotonic() + 20
        while faults.stats("my_rec").get("in_flight", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert faults.stats("my_rec")["in_flight"] >= 1
        with outbox.connect() as c, c.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            cur.execute("INSERT INTO shop.orders VALUES (401, 'while draining')")  # raises 1205 if blocked
    finally:
        done.join(60)
        faults.clear("my_rec")
    _drain(outbox)
    assert sorted(set(_ids(outbox.recorder.records("orders_out")))) == [400, 401]  # both delivered
