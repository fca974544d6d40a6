"""Benchmark: Lambda calls through MariaDB's ``awslambda_fn`` (the C plugin) vs direct boto3, side by side.

Starts its own throwaway MariaDB (Debian's mariadb-server) and the local AWS stack, installs a
minimal spec with the real installer (which builds the plugin), deploys the example ``echo`` Lambda,
then in ``--repeat`` interleaved rounds makes ``--calls`` calls each way with ``--sessions``
concurrent sessions / threads:
- ``sql``: ``SELECT sqlambda.awslambda_fn('echo', ...)`` over PyMySQL, one connection per session;
- ``boto3``: ``lambda.invoke`` of the same payload, one shared client, the same number of threads.
It prints calls/s of both, their ratio, and the CPU per call of mariadbd (the whole server: the
SQL round trip, the stored function, the plugin's signing and HTTP call), which is what the plugin
adds to a database server (target: at most 100 µs). The local stack's CPU (it runs the Lambda) is
the same for both and reported apart. Only the ratios of one run mean anything on a noisy machine.

Run: ``python bench/mysql_calls.py [--calls 2000] [--sessions 8] [--repeat 3] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import boto3
import pymysql
from botocore.config import Config

from sqlambda import api
from sqlambda.devkit.deploy import deploy_lambdas
from sqlambda.local import LocalStack
from sqlambda.targets.mysql.cluster import MariaDB


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(n: int, sessions: int, call) -> float:
    """Wall seconds for ``n`` calls spread over ``sessions`` threads (``call(session_state, i)``)."""
    per = [n // sessions + (1 if i < n % sessions else 0) for i in range(sessions)]
    errors: list[BaseException] = []

    def worker(count: int) -> None:
        try:
            state = {}
            for i in range(count):
                call(state, i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in per]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    build_dir = tempfile.mkdtemp(prefix="sqlambda-bench-build-")
    os.environ.setdefault("SQLAMBDA_MYSQL_BUILD_DIR", build_dir)
    stack = LocalStack(region="us-east-1").start()
    os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
    db = MariaDB(env={"AWS_ENDPOINT_URL": stack.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                      "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"})
    try:
        deploy_lambdas(["echo"], endpoint_url=stack.endpoint_url)
        db.start()
        spec = Path(tempfile.mkdtemp()) / "bench.yaml"
        spec.write_text("project: bench\n", encoding="utf-8")
        api.install(str(spec), db.dsn, target="mysql")
        client = boto3.client("lambda", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                              config=Config(max_pool_connections=args.sessions * 2, retries={"max_attempts": 1}))
        payload = json.dumps({"order_id": 42, "note": "x" * 200})

        def sql_call(state: dict, i: int) -> None:
            if "conn" not in state:
                state["conn"] = pymysql.connect(host=db.host, port=db.port, user="root", autocommit=True)
            with state["conn"].cursor() as cur:
                cur.execute("SELECT sqlambda.awslambda_fn('echo', %s)", (payload,))
                assert json.loads(cur.fetchone()[0])["Status"] == "OK"

        def boto_call(state: dict, i: int) -> None:
            out = client.invoke(FunctionName="echo", Payload=payload)
            assert json.loads(out["Payload"].read())["Status"] == "OK"

        _run(args.sessions * 10, args.sessions, sql_call)  # warm both paths (workers, connections)
        _run(args.sessions * 10, args.sessions, boto_call)
        rows = []
        stack_pid = stack.pid if hasattr(stack, "pid") else None
        for r in range(args.repeat):
            for name, fn in (("sql", sql_call), ("boto3", boto_call)):
                cpu0 = _cpu_s(db.pid)
                st0 = _cpu_s(stack_pid) if stack_pid else 0.0
                wall = _run(args.calls, args.sessions, fn)
                rows.append({"round": r, "path": name, "calls_per_s": args.calls / wall,
                             "mariadbd_us_per_call": (_cpu_s(db.pid) - cpu0) / args.calls * 1e6,
                             "stack_us_per_call": ((_cpu_s(stack_pid) - st0) / args.calls * 1e6) if stack_pid else None})
        sql = [r for r in rows if r["path"] == "sql"]
        boto = [r for r in rows if r["path"] == "boto3"]
        summary = {
            "calls": args.calls, "sessions": args.sessions, "repeat": args.repeat,
            "sql_calls_per_s": statistics.median(r["calls_per_s"] for r in sql),
            "boto3_calls_per_s": statistics.median(r["calls_per_s"] for r in boto),
            "mariadbd_us_per_call": statistics.median(r["mariadbd_us_per_call"] for r in sql),
            "mariadbd_us_per_call_idle_during_boto3": statistics.median(r["mariadbd_us_per_call"] for r in boto),
        }
        summary["sql_vs_boto3"] = summary["sql_calls_per_s"] / summary["boto3_calls_per_s"]
        if args.json:
            print(json.dumps({"rounds": rows, "summary": summary}, indent=2))
        else:
            for r in rows:
                print(f"round {r['round']} {r['path']:>5}: {r['calls_per_s']:8.0f} calls/s   "
                      f"mariadbd {r['mariadbd_us_per_call']:7.1f} µs CPU/call")
            print(f"median: SQL {summary['sql_calls_per_s']:.0f} calls/s, boto3 {summary['boto3_calls_per_s']:.0f} calls/s, "
                  f"ratio {summary['sql_vs_boto3']:.2f}; mariadbd {summary['mariadbd_us_per_call']:.1f} µs CPU per call "
                  f"(target <= 100)")
    finally:
        db.destroy()
        stack.stop()
        shutil.rmtree(build_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
