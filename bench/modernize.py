"""Benchmark: what a modernize router costs a caller, side by side with calling the original directly.

Starts its own throwaway PostgreSQL cluster (no Lambda is called in these stages: the local stack is
not needed), creates two identical PL/pgSQL functions that each burn 1 ms of CPU (the issue's
"function that takes 1 ms"), takes one of them over with a modernize entry, and times
``SELECT count(f(g)) FROM generate_series(1, N) g`` for the direct one and the routed one in
interleaved rounds, in stage record (every call sampled: ``record.sample: 1.0``, the default and
the worst case) and in stage shadow (every call also queued for the drainer). Reports per stage
the median ratio routed/direct of the elapsed time (target: <= 1.2x), the added time per call and
the backend's CPU per call of both (``/proc/<pid>/schedstat``). A cheap function (``--work-us 0``)
shows the router's own floor. Only ratios from one run mean anything. Run:
``python bench/modernize.py [--calls 2000] [--rounds 5] [--work-us 1000] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import types

import psycopg
from pg_invoke import _cpu_ns  # bench/ is the script's folder, so on sys.path

FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.bench_{name}(n integer, label text) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
  stop timestamptz := clock_timestamp() + make_interval(secs => {work_us} / 1e6);
  acc numeric := 0;
BEGIN
  WHILE clock_timestamp() < stop LOOP
    acc := acc + 1;
  END LOOP;
  RETURN n * 1.5 + length(label);
END $$;
"""
QUERY = "SELECT count(public.bench_{name}(g, 'label ' || g)) FROM generate_series(1, %s) g"


def _timed(conn: psycopg.Connection, name: str, calls: int) -> tuple[float, float]:
    """(seconds, backend CPU us per call) of ``calls`` calls in one statement."""
    pid = conn.info.backend_pid
    c0, t0 = _cpu_ns(pid), time.perf_counter()
    (count,) = conn.execute(QUERY.format(name=name), (calls,)).fetchone()
    elapsed, cpu = time.perf_counter() - t0, _cpu_ns(pid) - c0
    assert count == calls
    return elapsed, cpu / 1000 / calls


def run(calls: int, rounds: int, work_us: int) -> dict:
    from sqlambda import api
    from sqlambda.spec.model import Spec
    from sqlambda.targets.postgres.cluster import Cluster

    cluster = Cluster()
    try:
        cluster.start()
        dsn = cluster.create_database("bench")
        with psycopg.connect(dsn, autocommit=True) as c:
            for name in ("direct", "routed"):
                c.execute(FUNCTIONS.format(name=name, work_us=work_us))
        out: dict = {"calls_per_round": calls, "rounds": rounds, "work_us": work_us, "stages": {}}
        for stage in ("record", "shadow"):
            entry = {"function": "public.bench_routed(integer, text)", "lambda": "bench-routed", "stage": stage,
                     "side_effects": "none", "record": {"sample": 1.0, "max_calls": 1000}}
            spec = Spec.model_validate({"project": "bench", "aws": {"endpoint_url": "http://127.0.0.1:9"},
                                        "modernize": [entry]})
            api.install(types.SimpleNamespace(spec=spec, path="bench", checksum="0" * 64), dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                for name in ("direct", "routed"):
                    _timed(conn, name, min(calls, 200))  # warm: plans, PL/Python modules
                ratios, direct_t, routed_t, direct_cpu, routed_cpu = [], [], [], [], []
                for _ in range(rounds):
                    d, dc = _timed(conn, "direct", calls)
                    r, rc = _timed(conn, "routed", calls)
                    ratios.append(r / d)
                    direct_t.append(d)
                    routed_t.append(r)
                    direct_cpu.append(dc)
                    routed_cpu.append(rc)
                conn.execute("TRUNCATE sqlambda.modernize_shadow")
            out["stages"][stage] = {
                "ratio_routed_vs_direct": statistics.median(ratios),
                "added_us_per_call": statistics.median((r - d) / calls * 1e6 for r, d in zip(routed_t, direct_t)),
                "direct_us_per_call": statistics.median(direct_t) / calls * 1e6,
                "backend_cpu_us_per_call": {"direct": statistics.median(direct_cpu), "routed": statistics.median(routed_cpu)},
                "per_round_ratios": ratios,
            }
        return out
    finally:
        cluster.destroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work-us", type=int, default=1000, help="CPU each call of the function burns")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.calls, args.rounds, args.work_us)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"median of {r['rounds']} interleaved rounds of {r['calls_per_round']} calls; the function burns {r['work_us']} us")
    for stage, s in r["stages"].items():
        cpu = s["backend_cpu_us_per_call"]
        print(f"stage {stage:7} routed/direct {s['ratio_routed_vs_direct']:.3f}x (target <= 1.2x for a 1 ms function); "
              f"+{s['added_us_per_call']:.0f} us per call over {s['direct_us_per_call']:.0f} us; "
              f"backend CPU per call {cpu['direct']:.0f} us direct, {cpu['routed']:.0f} us routed")


if __name__ == "__main__":
    main()
