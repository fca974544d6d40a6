"""An outage is lag, not loss and not dead letters (issue 13, property 4), on the real cluster and stack.

Transient failures (connection dropped, 5xx, throttling) retry with capped exponential backoff until
an event reaches its maximum age; dead letters are for poison events (the Lambda's own error
``max_attempts`` times, a function that does not exist, an event past its age). Progress is
committed per delivered batch, so killing a drainer redelivers at most the batches it had in flight:
the chaos test kills ``sqlambda drain`` with SIGKILL three times and restarts PostgreSQL with
``-m immediate`` once during a 100,000-row run, and counts what the Lambda received.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from fixtures_local import deploy_recorder
from pg_helpers import loaded_spec, q

from sqlambda import api
from sqlambda.targets.postgres import drain as outbox
from sqlambda.targets.postgres.cluster import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

SQLAMBDA = os.path.join(os.path.dirname(sys.executable), "sqlambda")


def counts(dsn: str) -> tuple[int, int]:
    return (int(q(dsn, "SELECT coalesce(sum(n - done), 0) FROM sqlambda.outbox")[0][0]),
            int(q(dsn, "SELECT coalesce(sum(n - done), 0) FROM sqlambda.outbox_dead")[0][0]))


def install(cluster, name: str, endpoint: str, triggers: list[dict]) -> str:
    dsn = cluster.create_database(name)
    for t in triggers:
        q(dsn, f"CREATE TABLE {t['table']} (id int PRIMARY KEY, note text)")
    api.install(loaded_spec({"project": name, "aws": {"endpoint_url": endpoint}, "triggers": triggers}), dsn)
    return dsn


def test_an_outage_with_default_retry_settings_ends_in_delivery_not_dead_letters(pg_cluster, local_stack, faults):
    """The reported case: 24 s of endpoint outage used to move every event to outbox_dead."""
    rec = deploy_recorder(local_stack, "outage_rec")
    dsn = install(pg_cluster, "sec_outage", local_stack.endpoint_url,
                  [{"name": "o_out", "table": "o_orders", "lambda": rec.name, "mode": "sync"}])  # default retry
    q(dsn, "INSERT INTO o_orders SELECT g, 'o' FROM generate_series(1, 300) g")
    # the outage: every request dropped, throttled or answered 503, in turn, for 40 seconds: long
    # enough for more failed attempts than the old fixed limit (8), after which everything was dead
    for kind in ("drop", "throttle", "server_error"):
        getattr(faults, kind)(rec.name, count=None)
    stop = threading.Event()
    result: list = []
    t = threading.Thread(target=lambda: result.append(outbox.drain(dsn, follow=True, stop=stop)))
    t.start()
    try:
        time.sleep(40)
        assert counts(dsn) == (300, 0), "an outage must not dead-letter anything"
        attempts = q(dsn, "SELECT max(attempts) FROM sqlambda.outbox")[0][0]
        assert attempts >= 8  # the old fixed limit (retry.max_attempts, 8) was passed without burying
        faults.clear(rec.name)
        deadline = time.monotonic() + 75  # the backoff is capped at retry.max_delay_ms (60 s)
        while counts(dsn) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        t.join(30)
    assert counts(dsn) == (0, 0)
    keys = Counter(r["idempotency_key"] for r in rec.records("o_out"))
    assert len(keys) == 300
    assert sorted(r["new"]["id"] for r in rec.records("o_out")) == list(range(1, 301))
    assert result and result[0].dead == 0


def test_poison_events_and_events_past_their_age_go_dead_with_the_reason(pg_cluster, local_stack, faults, flaky):
    rec = deploy_recorder(local_stack, "age_rec")
    fast = {"base_delay_ms": 1, "max_delay_ms": 5}
    dsn = install(pg_cluster, "sec_poison", local_stack.endpoint_url, [
        {"name": "p_missing", "table": "p_missing", "lambda": "not_deployed_anywhere", "mode": "sync", "retry": fast},
        {"name": "p_error", "table": "p_error", "lambda": flaky.name, "mode": "sync", "retry": {**fast, "max_attempts": 3}},
        {"name": "p_old", "table": "p_old", "lambda": rec.name, "mode": "sync", "retry": {**fast, "max_age_s": 60}},
    ])
    flaky.fail(True)
    try:
        q(dsn, "INSERT INTO p_missing VALUES (1, 'x'); INSERT INTO p_error VALUES (1, 'x'); INSERT INTO p_old VALUES (1, 'x')")
        q(dsn, "UPDATE sqlambda.outbox SET created_at = now() - interval '2 minutes' WHERE trigger_name = 'p_old'")
        faults.server_error(rec.name, count=None)
        for _ in range(40):
            outbox.drain(dsn)
            if counts(dsn) == (0, 3):
                break
            time.sleep(0.02)
    finally:
        flaky.fail(False)
        faults.clear(rec.name)
    dead = dict(q(dsn, "SELECT trigger_name, last_error || ' / attempts ' || attempts FROM sqlambda.outbox_dead"))
    assert "[42883]" in dead["p_missing"] and dead["p_missing"].endswith("attempts 1")  # a 404 is poison at once
    assert "RuntimeError" in dead["p_error"] and "retry.max_attempts" in dead["p_error"] and dead["p_error"].endswith("attempts 3")
    assert "older than retry.max_age_s = 60 s" in dead["p_old"]


def test_drain_once_exit_codes_and_follow_logs_one_line_per_batch(pg_cluster, local_stack, faults, recorder):
    dsn = install(pg_cluster, "sec_drain_cli", local_stack.endpoint_url, [
        {"name": "c_ok", "table": "c_ok", "lambda": recorder.name, "mode": "sync", "batch": {"max_rows": 10}},
        {"name": "c_bad", "table": "c_bad", "lambda": "not_deployed_anywhere", "mode": "sync"},
    ])
    env = {**os.environ}

    def drain(*args):
        return subprocess.run([SQLAMBDA, "drain", "--dsn", dsn, *args], capture_output=True, text=True, env=env, timeout=120)

    q(dsn, "INSERT INTO c_ok SELECT g, 'x' FROM generate_series(1, 25) g")
    res = drain("--once")
    assert res.returncode == 0, res.stderr
    q(dsn, "INSERT INTO c_bad VALUES (1, 'x')")
    res = drain("--once")
    assert res.returncode == 12 and "dead-lettered 1 event" in res.stderr and "Traceback" not in res.stderr
    q(dsn, "INSERT INTO c_ok VALUES (100, 'x')")
    faults.server_error(recorder.name, count=None)
    try:
        res = drain("--once")
    finally:
        faults.clear(recorder.name)
    assert res.returncode == 12 and "delivered nothing" in res.stderr
    # --follow: one INFO line per batch with rows, target, latency and attempt
    q(dsn, "INSERT INTO c_ok SELECT g, 'y' FROM generate_series(200, 229) g")
    proc = subprocess.Popen([SQLAMBDA, "drain", "--dsn", dsn, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while counts(dsn)[0] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [ln for ln in err.splitlines() if " INFO drain: batch " in ln]
    assert sum(int(ln.split("rows=")[1].split()[0]) for ln in lines) == 31, err
    for ln in lines:
        assert "trigger=c_ok" in ln and f"lambda={recorder.name}" in ln and "latency_ms=" in ln and "attempt=" in ln
    assert any("attempt=2" in ln for ln in lines)  # the event that failed in the previous run


def test_chaos_kill_9_three_times_and_an_immediate_restart_lose_nothing(local_stack, faults):
    """100,000 rows; the drainer killed with SIGKILL three times, PostgreSQL stopped with -m immediate once.

    Nothing is lost, and duplicates stay below 1% of the rows: each kill redelivers at most the
    batches in flight (workers x max_rows), since progress is committed per delivered batch.
    """
    rows, max_rows, workers = 100_000, 100, 2
    rec = deploy_recorder(local_stack, "chaos_rec")
    cluster = Cluster(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    cluster.start()
    procs: list[subprocess.Popen] = []
    logs: list[str] = []
    rnd = random.Random(13)

    def start_drainer() -> subprocess.Popen:
        p = subprocess.Popen([SQLAMBDA, "drain", "--dsn", dsn, "--follow", "--workers", str(workers), "--log-level", "error"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ})
        procs.append(p)
        threading.Thread(target=lambda: logs.append(p.stderr.read()), daemon=True).start()
        return p

    try:
        dsn = install(cluster, "chaos", local_stack.endpoint_url, [
            {"name": "k_out", "table": "k_orders", "lambda": rec.name, "mode": "sync", "batch": {"max_rows": max_rows},
             "retry": {"base_delay_ms": 20, "max_delay_ms": 500}}])
        q(dsn, f"INSERT INTO k_orders SELECT g, 'k' FROM generate_series(1, {rows}) g")
        faults.latency(rec.name, 4, count=None)  # a Lambda that takes a few ms, so the kills land mid-run
        drainer = start_drainer()
        depth_at_kill = []
        for i in range(3):
            time.sleep(rnd.uniform(0.8, 1.5))
            depth_at_kill.append(counts(dsn)[0])
            os.kill(drainer.pid, signal.SIGKILL)
            drainer.wait(10)
            if i == 1:
                cluster.stop("immediate")
                cluster.start()
            drainer = start_drainer()
        if counts(dsn)[0]:
            cluster.stop("immediate")  # and once more under a running drainer, which must reconnect
            cluster.start()
        deadline = time.monotonic() + 240
        while counts(dsn) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert counts(dsn) == (0, 0), ([p.poll() for p in procs], logs)
    finally:
        faults.clear(rec.name)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        cluster.destroy()
    assert all(d > 0 for d in depth_at_kill), f"a kill landed after the queue was empty: {depth_at_kill}"
    recs = rec.records("k_out")
    keys = Counter(r["idempotency_key"] for r in recs)
    assert len(keys) == rows, f"lost {rows - len(keys)} events"
    assert {r["new"]["id"] for r in recs} == set(range(1, rows + 1))
    duplicates = len(recs) - rows
    assert duplicates <= 3 * workers * max_rows and duplicates < rows // 100, duplicates
