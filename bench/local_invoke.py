"""Benchmark: warm Invoke latency of `echo` on `sqlambda local` vs a stub that answers at once.

Both are measured in one run with the same boto3 client settings, so the ratio says what the
stack adds over the floor of any endpoint called through boto3. Also prints the stack's total RSS
(server + workers) with three functions warm. Targets: echo p50 <= 3x stub p50; RSS < 400 MB.

    python bench/local_invoke.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config

from sqlambda.devkit.deploy import deploy_lambdas, deploy_source
from sqlambda.local import LocalStack


class _Stub(BaseHTTPRequestHandler):
    """The Invoke API reduced to its answer: 200 and a JSON body, nothing executed."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) or b"{}"
        out = json.dumps({**json.loads(body), "Status": "OK"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Amz-Executed-Version", "$LATEST")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def _client(url: str):
    return boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))


def _latencies(client, calls: int) -> list[float]:
    payload = json.dumps({"id": 1, "name": "reading"}).encode()
    for _ in range(50):  # warm-up: connection, worker, code paths
        client.invoke(FunctionName="echo", Payload=payload)["Payload"].read()
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        client.invoke(FunctionName="echo", Payload=payload)["Payload"].read()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    with LocalStack() as stack:
        deploy_lambdas(["echo"], endpoint_url=stack.endpoint_url)
        for name in ("warm2", "warm3"):
            deploy_source(name, "def handler(e, c):\n    return e\n", endpoint_url=stack.endpoint_url)
        stack_client = _client(stack.endpoint_url)
        stub_client = _client(f"http://127.0.0.1:{stub.server_address[1]}")
        # interleave rounds so machine noise hits both sides alike
        real, floor = [], []
        rounds = 5
        for _ in range(rounds):
            floor += _latencies(stub_client, args.calls // rounds)
            real += _latencies(stack_client, args.calls // rounds)
        for name in ("warm2", "warm3"):
            stack_client.invoke(FunctionName=name, Payload=b"{}")
        rss = stack.rss_bytes()
        workers = len(stack.pids()) - 1
    stub.shutdown()

    p50, p99 = _pct(real, 50), _pct(real, 99)
    s50, s99 = _pct(floor, 50), _pct(floor, 99)
    print(f"calls per side            : {len(real)}")
    print(f"sqlambda local echo  p50  : {p50:7.3f} ms   p99 {p99:7.3f} ms   mean {statistics.mean(real):7.3f} ms")
    print(f"stub (answers at once) p50: {s50:7.3f} ms   p99 {s99:7.3f} ms   mean {statistics.mean(floor):7.3f} ms")
    print(f"ratio p50 echo/stub       : {p50 / s50:5.2f}x   (target <= 3.0x)  {'OK' if p50 / s50 <= 3 else 'MISSED'}")
    print(f"stack RSS, 3 functions warm ({workers} workers): {rss / 2**20:6.1f} MB   (target < 400 MB)  {'OK' if rss < 400 * 2**20 else 'MISSED'}")


if __name__ == "__main__":
    main()
