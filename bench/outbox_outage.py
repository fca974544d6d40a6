"""A long endpoint outage against the outbox, with the DEFAULT retry settings: lag, not loss.

Not a speed benchmark: it proves at full length what tests/security/test_outbox_outage.py proves
in 40 seconds. A throwaway PostgreSQL and the local stack; ROWS rows queued; every request to the
Lambda dropped, throttled or answered 503 in turn for --outage seconds while ``drain --follow``
runs; then the faults are lifted and the run waits until the queue is empty. Prints events
delivered, duplicates, dead letters, the highest attempt count reached and how long recovery took.

    python bench/outbox_outage.py --outage 600      # the 10-minute outage of issue 13
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import types
from collections import Counter

import psycopg

from sqlambda import api, resources
from sqlambda.local import LocalStack
from sqlambda.spec.model import Spec
from sqlambda.targets.postgres import drain as outbox
from sqlambda.targets.postgres.cluster import Cluster

sys.path.insert(0, str(resources.repo_root() / "tests"))
from fixtures_local import deploy_recorder  # noqa: E402 - the recording Lambda of the tests


def counts(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT (SELECT coalesce(sum(n - done), 0) FROM sqlambda.outbox), "
                         "(SELECT coalesce(sum(n - done), 0) FROM sqlambda.outbox_dead), "
                         "(SELECT coalesce(max(attempts), 0) FROM sqlambda.outbox)").fetchone()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outage", type=float, default=600, help="seconds of outage (default 600)")
    ap.add_argument("--rows", type=int, default=1000)
    args = ap.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    with LocalStack() as stack, Cluster(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}) as cluster:
        rec = deploy_recorder(stack, "outage_bench")
        dsn = cluster.create_database("outage")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        spec = Spec.model_validate({"project": "outage", "aws": {"endpoint_url": stack.endpoint_url},
                                    "triggers": [{"name": "o_out", "table": "orders", "lambda": rec.name, "mode": "sync"}]})
        api.install(types.SimpleNamespace(spec=spec, path="outage", checksum="0" * 64), dsn)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"INSERT INTO orders SELECT g, 'o' FROM generate_series(1, {args.rows}) g")
        for kind in ("drop", "throttle", "server_error"):
            getattr(stack.faults, kind)(rec.name, count=None)
        stop = threading.Event()
        result: list = []
        t = threading.Thread(target=lambda: result.append(outbox.drain(dsn, follow=True, stop=stop)))
        t.start()
        started = time.monotonic()
        while time.monotonic() - started < args.outage:
            time.sleep(min(30.0, args.outage - (time.monotonic() - started)))
            q, d, a = counts(dsn)
            print(f"  outage {time.monotonic() - started:6.0f} s: queued {q}, dead {d}, attempts {a}", flush=True)
        _, _, attempts = counts(dsn)
        stack.faults.clear(rec.name)
        lifted = time.monotonic()
        while counts(dsn)[:2] != (0, 0) and time.monotonic() - lifted < 180:
            time.sleep(0.5)
        recovery = time.monotonic() - lifted
        stop.set()
        t.join(30)
        queued, dead, _ = counts(dsn)
        keys = Counter(r["idempotency_key"] for r in rec.records("o_out"))
        print(f"outage {args.outage:.0f} s, {args.rows} events, default retry settings")
        print(f"  delivered {len(keys)} distinct events ({sum(keys.values()) - len(keys)} duplicates), "
              f"still queued {queued}, dead letters {dead}")
        print(f"  highest attempt count during the outage: {attempts}; queue empty {recovery:.1f} s after the outage ended")
        if len(keys) != args.rows or dead:
            raise SystemExit("FAILED: events were lost or dead-lettered")


if __name__ == "__main__":
    main()
