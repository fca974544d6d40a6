"""Benchmark: outbox events drained to Kinesis, with and without injected latency, side by side.

Starts its own throwaway PostgreSQL cluster and the local AWS stack, creates a Kinesis stream of
``--shards`` shards, installs a spec whose three tables stream every change into it (the real
installer; keys: each table's primary key), queues ``--rows`` inserts across the three tables, and
drains them with ``--workers`` workers, in ``--repeat`` interleaved rounds: once with the stack
answering at loopback speed, once with ``--latency-ms`` (default 20) injected into every
PutRecords request by the stack (a far region, a loaded network). For each it prints rows/s and the
CPU per row (the drainer process; the PostgreSQL cluster's processes; the local stack is reported
apart, it is not part of what a deployment runs). An ordered sink has one drainer per route at a
time (see the README's ordering guarantee), so three tables are three routes drained in parallel.

Only the ratios of one run mean anything (this machine's speed drifts). Run:
``python bench/sinks.py [--rows 30000] [--latency-ms 20] [--workers 3] [--repeat 3] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import types

import boto3
import psycopg
from triggers import _cluster_cpu_ns  # bench/ is the script's folder, so on sys.path


def _process_cpu_s(pid: int) -> float:
    """CPU seconds of every thread of process ``pid`` (utime + stime of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _queue(dsn: str, rows: int, round_: int) -> None:
    base = round_ * rows
    third = rows // 3
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO t_a SELECT g, 'x' FROM generate_series(%s::bigint, %s::bigint) g", (base + 1, base + third))
        conn.execute("INSERT INTO t_b SELECT g, 'y' FROM generate_series(%s::bigint, %s::bigint) g", (base + 1, base + third))
        conn.execute("INSERT INTO t_c SELECT g, 'z' FROM generate_series(%s::bigint, %s::bigint) g", (base + 1, base + rows - 2 * third))


def run(rows: int, latency_ms: int, workers: int, shards: int, repeat: int) -> dict:
    from sqlambda import api
    from sqlambda.local import LocalStack
    from sqlambda.local.faults import FaultClient
    from sqlambda.spec.model import Spec
    from sqlambda.targets.postgres import drain as outbox
    from sqlambda.targets.postgres.cluster import Cluster

    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    stack = LocalStack()
    stack.start()
    cluster = Cluster(extra_env=env)
    try:
        cluster.start()
        endpoint = stack.endpoint_url
        boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1").create_stream(
            StreamName="bench-changes", ShardCount=shards)
        dsn = cluster.create_database("bench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for t in ("t_a", "t_b", "t_c"):
                conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, note text)")
        spec = Spec.model_validate({
            "project": "bench", "aws": {"endpoint_url": endpoint},
            "sinks": [{"name": "changes", "kind": "kinesis", "target": "bench-changes"}],
            "triggers": [{"name": f"cdc_{t}", "table": f"t_{t}", "sink": "changes", "events": ["insert"],
                          "batch": {"max_rows": 500}} for t in "abc"],
        })
        api.install(types.SimpleNamespace(spec=spec, path="bench", checksum="0" * 64), dsn)
        faults = FaultClient(endpoint)
        stack_pid = stack.proc.pid
        out: dict[str, list[dict]] = {"loopback": [], "latency": []}
        n = 0
        for _ in range(repeat):
            for mode in ("loopback", "latency"):
                faults.clear()
                if mode == "latency":
                    faults.latency_service("Kinesis.PutRecords", latency_ms)
                _queue(dsn, rows, n)
                n += 1
                c0, p0, s0, t0 = _cluster_cpu_ns(cluster.datadir), time.process_time(), _process_cpu_s(stack_pid), time.perf_counter()
                stats = outbox.drain(dsn, workers=workers)
                wall = time.perf_counter() - t0
                drainer = time.process_time() - p0
                stack_cpu = _process_cpu_s(stack_pid) - s0
                time.sleep(1.0)  # the drain's backends exit after it returns: their CPU is then in the postmaster's cutime
                pg = (_cluster_cpu_ns(cluster.datadir) - c0) / 1e9
                assert stats.delivered == rows and stats.dead == 0, stats.to_dict()
                out[mode].append({"rows_per_s": rows / wall, "drainer_us_per_row": drainer / rows * 1e6,
                                  "postgres_us_per_row": pg / rows * 1e6, "stack_us_per_row": stack_cpu / rows * 1e6,
                                  "requests": stats.batches})
        faults.clear()

        def med(mode: str, key: str) -> float:
            return statistics.median(r[key] for r in out[mode])

        return {
            "rows": rows, "latency_ms": latency_ms, "workers": workers, "shards": shards, "repeat": repeat,
            "loopback_rows_per_s": med("loopback", "rows_per_s"),
            "latency_rows_per_s": med("latency", "rows_per_s"),
            "ratio_latency_vs_loopback": med("latency", "rows_per_s") / med("loopback", "rows_per_s"),
            "cpu_us_per_row": {m: {k: med(m, k) for k in ("drainer_us_per_row", "postgres_us_per_row", "stack_us_per_row")}
                               for m in out},
            "rounds": out,
        }
    finally:
        cluster.destroy()
        stack.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--latency-ms", type=int, default=20)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    r = run(a.rows, a.latency_ms, a.workers, a.shards, a.repeat)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{r['rows']:,} outbox events (three tables) drained to Kinesis ({r['shards']} shards), {r['workers']} workers, "
          f"median of {r['repeat']} interleaved rounds")
    print(f"  loopback:            {r['loopback_rows_per_s']:>10,.0f} rows/s")
    print(f"  {r['latency_ms']} ms per PutRecords: {r['latency_rows_per_s']:>10,.0f} rows/s "
          f"({r['ratio_latency_vs_loopback']:.2f}x loopback)")
    for mode, cpu in r["cpu_us_per_row"].items():
        print(f"  CPU per row, {mode:<9} drainer {cpu['drainer_us_per_row']:.1f} us, PostgreSQL "
              f"{cpu['postgres_us_per_row']:.1f} us (local stack, not deployed: {cpu['stack_us_per_row']:.1f} us)")


if __name__ == "__main__":
    main()
