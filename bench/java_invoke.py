"""Benchmark: Lambda invokes per second from the Oracle Java client vs boto3, same local stack.

Owns: one side-by-side measurement in one run. Both clients call the same ``echo`` function on
the same ``sqlambda local`` endpoint, sequentially, after a warm-up (Java: JIT and keep-alive
connection warm; boto3: client and connection pool warm). It prints both rates and their ratio
(target: Java/boto3 >= 1.0). Must not: assert on time; it reports numbers only.

Run:  python bench/java_invoke.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from sqlambda import resources
from sqlambda.deploy import deploy_lambdas
from sqlambda.local import LocalStack

ROOT = resources.repo_root()
PAYLOAD = {"bench": True}


def compile_java(out: Path) -> None:
    sources = [str(resources.folder("oracle_java") / n)
               for n in (resources.folder("oracle_java") / "LOAD_ORDER").read_text().split()]
    sources += [str(p) for p in sorted((ROOT / "tests" / "oracle_java").glob("*.java"))]
    subprocess.run(["javac", "--release", "8", "-encoding", "UTF-8", "-d", str(out), *sources], check=True)


def java_rate(classes: Path, endpoint: str, calls: int) -> float:
    props = {"sqlambda.endpointUrl": endpoint, "sqlambda.region": "us-east-1",
             "aws.accessKeyId": "test", "aws.secretAccessKey": "test", "sqlambda.imdsDisabled": "true"}
    cmd = ["java", "-cp", str(classes), *[f"-D{k}={v}" for k, v in props.items()],
           "InvokeProbe", "bench", "echo", str(calls)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result.get("ok"):
        raise SystemExit(f"Java bench failed: {result}")
    return result["calls"] / result["seconds"]


def boto3_rate(endpoint: str, calls: int) -> float:
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    body = json.dumps(PAYLOAD)
    for _ in range(20):  # same warm-up as the Java side
        client.invoke(FunctionName="echo", Payload=body)["Payload"].read()
    t0 = time.perf_counter()
    for _ in range(calls):
        client.invoke(FunctionName="echo", Payload=body)["Payload"].read()
    return calls / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="sequential invokes per client")
    args = parser.parse_args(argv)
    if shutil.which("javac") is None or shutil.which("java") is None:
        print("skipped: no JDK (javac/java) on PATH", file=sys.stderr)
        return 0

    stack = LocalStack().start()
    try:
        deploy_lambdas(["echo"], endpoint_url=stack.endpoint_url)
        with tempfile.TemporaryDirectory() as tmp:
            classes = Path(tmp)
            compile_java(classes)
            # Alternate the two so drift in the machine's load hits both sides alike.
            java, boto = [], []
            for _ in range(2):
                java.append(java_rate(classes, stack.endpoint_url, args.calls))
                boto.append(boto3_rate(stack.endpoint_url, args.calls))
        java_best, boto_best = max(java), max(boto)
        print(f"java  (LambdaInvoke, keep-alive): {java_best:8.1f} calls/s   runs: {', '.join(f'{r:.1f}' for r in java)}")
        print(f"boto3 (lambda.invoke)           : {boto_best:8.1f} calls/s   runs: {', '.join(f'{r:.1f}' for r in boto)}")
        print(f"ratio java/boto3                : {java_best / boto_best:8.2f}   (target >= 1.0)")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
