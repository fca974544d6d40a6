"""Benchmark: Lambda calls per second from inside PostgreSQL, measured side by side in one run.

Starts its own throwaway PostgreSQL cluster and the local AWS stack, deploys ``lambdas/echo``,
installs the sqlambda core rendered from a spec pointing at the stack, then measures, against the
same endpoint and the same function:

1. ``awslambda_fn`` in one session (a server-side loop over generate_series);
2. the same in 4 sessions at once (aggregate calls/s);
3. a PL/Python function that creates a boto3 client on every call, as the original awslabs
   sample did (``boto3.client('lambda', ...)`` inside the body);
4. boto3 ``invoke`` from a plain Python process (one client, a loop).

The variants run interleaved, round after round, and the median of each is reported. It prints
calls/s and the ratios the issue targets (in-database >= 0.9x direct boto3, in-database >= 8x
client-per-call). Numbers are machine-dependent; only the ratios measured in one run mean
something. Run: ``python bench/pg_invoke.py [--calls 150] [--naive-calls 50] [--rounds 5] [--json]``.

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


def _sql_rate(conn, query: str, params: tuple, calls: int) -> float:
    """Calls/s of one server-side loop of ``calls`` calls on an open, warmed-up session."""
    t0 = time.perf_counter()
    (count,) = conn.execute(query, (calls, *params)).fetchone()
    elapsed = time.perf_counter() - t0
    assert count == calls, f"expected {calls} results, got {count}"
    return calls / elapsed


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


def _boto3_rate(client, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        client.invoke(FunctionName="echo", Payload=PAYLOAD)["Payload"].read()
    return calls / (time.perf_counter() - t0)


def run(calls: int, naive_calls: int, sessions: int, rounds: int) -> dict:
    """Measure every variant in each of ``rounds`` rounds, interleaved, and keep the median rate.

    Interleaving matters on a shared 2-core machine: load that comes and goes then hits every
    variant alike instead of whichever happened to run during it.
    """
    import boto3

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
        fast_q = "SELECT count(awslambda_fn('echo', x.p)) FROM generate_series(1, %s) g, (SELECT %s::text AS p) x"
        naive_q = ("SELECT count(bench_client_per_call('echo', x.p, x.e)) FROM generate_series(1, %s) g, "
                   "(SELECT %s::text AS p, %s::text AS e) x")
        conns = [psycopg.connect(dsn, autocommit=True) for _ in range(sessions)]
        one, naive_conn = conns[0], psycopg.connect(dsn, autocommit=True)
        conns.append(naive_conn)
        client = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint)
        # warm up everything once: module load, clients, pooled connections, the echo worker
        for c in conns[:sessions]:
            _sql_rate(c, fast_q, (PAYLOAD,), 5)
        _sql_rate(naive_conn, naive_q, (PAYLOAD, endpoint), 3)
        _boto3_rate(client, 5)

        rates: dict[str, list[float]] = {"direct": [], "in_db_1": [], "in_db_n": [], "naive": []}
        for _ in range(rounds):
            rates["direct"].append(_boto3_rate(client, calls))
            rates["in_db_1"].append(_sql_rate(one, fast_q, (PAYLOAD,), calls))
            rates["naive"].append(_sql_rate(naive_conn, naive_q, (PAYLOAD, endpoint), naive_calls))
            rates["in_db_n"].append(_parallel_rate(conns[:sessions], fast_q, (PAYLOAD,), calls))
        med = {k: statistics.median(v) for k, v in rates.items()}
        return {
            "calls_per_round": calls,
            "naive_calls_per_round": naive_calls,
            "rounds": rounds,
            "sessions": sessions,
            "direct_boto3_per_s": med["direct"],
            "in_db_1_session_per_s": med["in_db_1"],
            f"in_db_{sessions}_sessions_per_s": med["in_db_n"],
            "client_per_call_per_s": med["naive"],
            "ratio_in_db_vs_direct": med["in_db_1"] / med["direct"],
            "ratio_in_db_vs_client_per_call": med["in_db_1"] / med["naive"],
            f"ratio_{sessions}_sessions_vs_1": med["in_db_n"] / med["in_db_1"],
            "per_round": rates,
        }
    finally:
        for c in conns:
            c.close()
        cluster.destroy()
        stack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=150, help="calls per variant per round")
    ap.add_argument("--naive-calls", type=int, default=50, help="client-per-call calls per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.calls, args.naive_calls, args.sessions, args.rounds)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    s = r["sessions"]
    print(f"median of {r['rounds']} interleaved rounds")
    print(f"direct boto3 (plain Python, 1 client)    {r['direct_boto3_per_s']:8.1f} calls/s")
    print(f"awslambda_fn, 1 session                  {r['in_db_1_session_per_s']:8.1f} calls/s")
    print(f"awslambda_fn, {s} sessions (aggregate)     {r[f'in_db_{s}_sessions_per_s']:8.1f} calls/s")
    print(f"client created per call (awslabs style)  {r['client_per_call_per_s']:8.1f} calls/s")
    print(f"in-database / direct boto3               {r['ratio_in_db_vs_direct']:8.2f}x   (target >= 0.9x)")
    print(f"in-database / client-per-call            {r['ratio_in_db_vs_client_per_call']:8.2f}x   (target >= 8x)")
    print(f"{s} sessions / 1 session                   {r[f'ratio_{s}_sessions_vs_1']:8.2f}x")


if __name__ == "__main__":
    main()
