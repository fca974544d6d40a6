"""Benchmark: Lambda calls from inside PostgreSQL: calls/s AND the database backend's CPU per call,
measured side by side in one run.

Starts its own throwaway PostgreSQL cluster and the local AWS stack, deploys ``lambdas/echo``,
installs the sqlambda core rendered from a spec pointing at the stack, then measures, against the
same endpoint and the same function:

1. ``awslambda_fn`` (sync) and ``awslambda_fn_async`` (Event) in one session (a server-side loop
   over generate_series); CPU per call is the backend's own, from ``/proc/<pid>/schedstat``
   (nanoseconds on CPU, not 10 ms ticks), so the wait for Lambda is excluded;
2. ``awslambda_fn`` in 4 sessions at once (aggregate calls/s);
3. a PL/Python function that creates a boto3 client on every call, as the original awslabs
   sample did (``boto3.client('lambda', ...)`` inside the body);
4. boto3 ``invoke`` from a plain Python process (one client, a loop), CPU from ``thread_time``;
5. the lean floor: botocore's ``SigV4Auth`` signing a prepared request sent over one kept-alive
   ``http.client`` connection, from plain Python (what an Invoke cannot cost less than in Python).

Then the memory of one backend (VmRSS) after 1,000 and after 10,000 calls: no growth.

The variants run interleaved, round after round, and the median of each is reported. Targets
(issue 18): backend CPU per sync call <= 150 us; in-database calls/s >= 1.5x direct boto3.
Numbers are machine-dependent; only the ratios measured in one run mean something. Run:
``python bench/pg_invoke.py [--calls 300] [--naive-calls 40] [--rounds 5] [--memory-calls 10000] [--json]``.

The client-per-call function is deliberately inline SQL: it reproduces the awslabs original for
comparison and is never installed by sqlambda.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import types

import psycopg

NAIVE_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_client_per_call(fn_name text, fn_args text, endpoint text)
RETURNS text LANGUAGE plpython3u AS $$
import boto3
client = boto3.client('lambda', region_name='us-east-1', endpoint_url=endpoint)
response = client.invoke(FunctionName=fn_name, InvocationType='RequestResponse', Payload=fn_args)
r = response['Payload'].read()
if 'FunctionError' in response:
    raise Exception(r)
return r.decode()
$$
"""

PAYLOAD = json.dumps({"name": "bench", "n": 1})


def _cpu_ns(pid: int) -> int:
    """Nanoseconds process ``pid`` has spent on a CPU (the first field of /proc/<pid>/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))


def _sql_rate(conn, query: str, params: tuple, calls: int) -> tuple[float, float]:
    """(calls/s, backend CPU us per call) of one server-side loop of ``calls`` calls on a warm session."""
    pid = conn.info.backend_pid
    c0, t0 = _cpu_ns(pid), time.perf_counter()
    (count,) = conn.execute(query, (calls, *params)).fetchone()
    elapsed, cpu = time.perf_counter() - t0, _cpu_ns(pid) - c0
    assert count == calls, f"expected {calls} results, got {count}"
    return calls / elapsed, cpu / 1000 / calls


def _parallel_rate(conns, query: str, params: tuple, calls: int) -> float:
    """Aggregate calls/s of every session in ``conns`` running ``calls`` calls at the same time."""
    barrier = threading.Barrier(len(conns) + 1)
    errors: list[BaseException] = []

    def work(c):
        try:
            barrier.wait()
            c.execute(query, (calls, *params)).fetchall()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return len(conns) * calls / elapsed


def _timed(loop, calls: int) -> tuple[float, float]:
    """(calls/s, this thread's CPU us per call) of ``loop(calls)`` run in this process."""
    c0, t0 = time.thread_time_ns(), time.perf_counter()
    loop(calls)
    return calls / (time.perf_counter() - t0), (time.thread_time_ns() - c0) / 1000 / calls


def _boto3_loop(client, invocation_type: str):
    def loop(calls: int) -> None:
        for _ in range(calls):
            r = client.invoke(FunctionName="echo", Payload=PAYLOAD, InvocationType=invocation_type)
            r["Payload"].read()
            assert r["StatusCode"] in (200, 202) and "FunctionError" not in r
    return loop


def _floor_loop(endpoint: str, invocation_type: str):
    """botocore's SigV4Auth over one kept-alive http.client connection: the least a Python Invoke costs."""
    import http.client
    import socket
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials("test", "test")
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    url = endpoint + "/2015-03-31/functions/echo/invocations"
    body = PAYLOAD.encode()

    def loop(calls: int) -> None:
        for _ in range(calls):
            req = AWSRequest("POST", url, data=body, headers={"X-Amz-Invocation-Type": invocation_type})
            SigV4Auth(creds, "lambda", "us-east-1").add_auth(req)
            conn.request("POST", "/2015-03-31/functions/echo/invocations", body=body, headers=dict(req.headers.items()))
            resp = conn.getresponse()
            resp.read()
            assert resp.status in (200, 202), resp.status
    return loop


def _memory(dsn: str, query: str, calls: int) -> dict:
    """VmRSS of one fresh backend after 100 calls (warm), after 1,000 and after ``calls`` calls."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        pid, out, done = conn.info.backend_pid, {}, 0
        for mark in (100, 1000, calls):
            n = mark - done
            while n:
                step = min(n, 2000)
                conn.execute(query, (step, PAYLOAD)).fetchone()
                n -= step
            done = mark
            out[mark] = _rss_kib(pid)
        return out


def run(calls: int, naive_calls: int, sessions: int, rounds: int, memory_calls: int) -> dict:
    """Measure every variant in each of ``rounds`` rounds, interleaved, and keep the median.

    Interleaving matters on a shared 2-core machine: load that comes and goes then hits every
    variant alike instead of whichever happened to run during it.
    """
    import boto3
    from botocore.config import Config

    from sqlambda.devkit.deploy import deploy_lambdas
    from sqlambda.local import LocalStack
    from sqlambda.spec.model import Spec
    from sqlambda.targets.postgres.cluster import Cluster
    from sqlambda.targets.postgres.render import render_postgres

    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)  # the local stack's credentials, for deploying from this process
    stack = LocalStack()
    stack.start()
    cluster = Cluster(extra_env=env)
    conns: list = []
    try:
        cluster.start()
        endpoint = stack.endpoint_url
        deploy_lambdas(["echo"], endpoint_url=endpoint)
        dsn = cluster.create_database("bench")
        spec = Spec.model_validate({"project": "bench", "aws": {"endpoint_url": endpoint}})
        loaded = types.SimpleNamespace(spec=spec, path="bench", checksum="0" * 64)
        with psycopg.connect(dsn) as conn:
            for artifact in render_postgres(loaded):
                for statement in artifact.statements:
                    conn.execute(statement)
            conn.execute(NAIVE_FUNCTION)

        # the call count comes first (generate_series), then the values the calls use
        sync_q = "SELECT count(awslambda_fn('echo', x.p)) FROM generate_series(1, %s) g, (SELECT %s::text AS p) x"
        async_q = ("SELECT count(awslambda_fn_async('echo', x.p)) FROM generate_series(1, %s) g, "
                   "(SELECT %s::text AS p) x")
        naive_q = ("SELECT count(bench_client_per_call('echo', x.p, x.e)) FROM generate_series(1, %s) g, "
                   "(SELECT %s::text AS p, %s::text AS e) x")
        conns = [psycopg.connect(dsn, autocommit=True) for _ in range(sessions)]
        one, naive_conn = conns[0], psycopg.connect(dsn, autocommit=True)
        conns.append(naive_conn)
        client = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint,
                              config=Config(retries={"total_max_attempts": 1}))
        loops = {"direct_sync": _boto3_loop(client, "RequestResponse"), "direct_async": _boto3_loop(client, "Event"),
                 "floor_sync": _floor_loop(endpoint, "RequestResponse"), "floor_async": _floor_loop(endpoint, "Event")}
        # warm up everything once: module load, clients, kept connections, the echo worker
        for c in conns[:sessions]:
            _sql_rate(c, sync_q, (PAYLOAD,), 5)
        _sql_rate(one, async_q, (PAYLOAD,), 5)
        _sql_rate(naive_conn, naive_q, (PAYLOAD, endpoint), 3)
        for loop in loops.values():
            loop(5)

        rate: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}

        def keep(name: str, result: tuple[float, float]) -> None:
            rate.setdefault(name, []).append(result[0])
            cpu.setdefault(name, []).append(result[1])

        for _ in range(rounds):
            keep("in_db_sync", _sql_rate(one, sync_q, (PAYLOAD,), calls))
            keep("direct_sync", _timed(loops["direct_sync"], calls))
            keep("floor_sync", _timed(loops["floor_sync"], calls))
            keep("in_db_async", _sql_rate(one, async_q, (PAYLOAD,), calls))
            keep("direct_async", _timed(loops["direct_async"], calls))
            keep("floor_async", _timed(loops["floor_async"], calls))
            keep("naive", _sql_rate(naive_conn, naive_q, (PAYLOAD, endpoint), naive_calls))
            rate.setdefault("in_db_n", []).append(_parallel_rate(conns[:sessions], sync_q, (PAYLOAD,), calls))
        med_rate = {k: statistics.median(v) for k, v in rate.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        memory = _memory(dsn, sync_q, memory_calls) if memory_calls else {}
        return {
            "calls_per_round": calls, "naive_calls_per_round": naive_calls, "rounds": rounds, "sessions": sessions,
            "calls_per_s": med_rate, "cpu_us_per_call": med_cpu,
            "ratio_in_db_vs_direct_sync": med_rate["in_db_sync"] / med_rate["direct_sync"],
            "ratio_in_db_vs_direct_async": med_rate["in_db_async"] / med_rate["direct_async"],
            "ratio_in_db_vs_client_per_call": med_rate["in_db_sync"] / med_rate["naive"],
            f"ratio_{sessions}_sessions_vs_1": med_rate["in_db_n"] / med_rate["in_db_sync"],
            "backend_rss_kib_after_calls": memory,
            "per_round": {"calls_per_s": rate, "cpu_us_per_call": cpu},
        }
    finally:
        for c in conns:
            c.close()
        cluster.destroy()
        stack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per variant per round")
    ap.add_argument("--naive-calls", type=int, default=40, help="client-per-call calls per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--memory-calls", type=int, default=10000, help="calls before the last memory reading (0: skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.calls, args.naive_calls, args.sessions, args.rounds, args.memory_calls)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    s, rate, cpu = r["sessions"], r["calls_per_s"], r["cpu_us_per_call"]
    print(f"median of {r['rounds']} interleaved rounds of {r['calls_per_round']} calls; CPU = the calling process's own")
    print(f"{'':44}{'calls/s':>10}{'CPU us/call':>13}")
    rows = [("awslambda_fn (sync), in the backend", "in_db_sync"), ("boto3 invoke (sync), plain Python", "direct_sync"),
            ("lean floor: SigV4Auth + http.client (sync)", "floor_sync"),
            ("awslambda_fn_async (Event), in the backend", "in_db_async"),
            ("boto3 invoke (Event), plain Python", "direct_async"), ("lean floor (Event)", "floor_async"),
            ("client created per call (awslabs style)", "naive")]
    for label, key in rows:
        print(f"{label:44}{rate[key]:10.1f}{cpu[key]:13.0f}")
    print(f"awslambda_fn, {s} sessions (aggregate)       {rate['in_db_n']:10.1f}")
    print(f"in-database / direct boto3, sync             {r['ratio_in_db_vs_direct_sync']:8.2f}x calls/s (target >= 1.5x)")
    print(f"in-database / direct boto3, Event            {r['ratio_in_db_vs_direct_async']:8.2f}x calls/s")
    print(f"backend CPU per sync call                    {cpu['in_db_sync']:8.0f} us (target <= 150 us);"
          f" boto3 {cpu['direct_sync'] / cpu['in_db_sync']:.2f}x of it, lean floor {cpu['floor_sync'] / cpu['in_db_sync']:.2f}x")
    print(f"in-database / client-per-call                {r['ratio_in_db_vs_client_per_call']:8.2f}x calls/s")
    print(f"{s} sessions / 1 session                       {r[f'ratio_{s}_sessions_vs_1']:8.2f}x")
    if r["backend_rss_kib_after_calls"]:
        print("backend VmRSS after calls                    " +
              ", ".join(f"{n:,}: {kib / 1024:.1f} MiB" for n, kib in r["backend_rss_kib_after_calls"].items()))


if __name__ == "__main__":
    main()
