"""Benchmark: Lambda invokes per second from the Oracle Java client vs boto3, same local stack.

Owns: one side-by-side measurement in one run. Both clients call the same ``echo`` function on
the same ``sqlambda local`` endpoint, sequentially, each after a warm-up (Java: JIT and the
keep-alive connection; boto3: client and connection pool). The Java side is one long-lived JVM
(``InvokeProbe bench_loop``), driven in rounds that alternate with boto3 rounds, so load from
anything else on the machine hits both sides alike. It prints both rates and their ratio
(target: Java/boto3 >= 1.0). Must not: assert on time; it reports numbers only.

Run:  python bench/java_invoke.py [--rounds 10] [--calls 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from sqlambda import resources
from sqlambda.devkit.deploy import deploy_lambdas
from sqlambda.local import LocalStack

ROOT = resources.repo_root()
PAYLOAD = json.dumps({"bench": True})


def compile_java(out: Path) -> None:
    folder = resources.folder("oracle_java")
    sources = [str(folder / n) for n in (folder / "LOAD_ORDER").read_text().split()]
    sources += [str(p) for p in sorted((ROOT / "tests" / "oracle_java").glob("*.java"))]
    subprocess.run(["javac", "--release", "8", "-encoding", "UTF-8", "-d", str(out), *sources], check=True)


def start_java(classes: Path, endpoint: str) -> subprocess.Popen:
    # configure_* values as the runtime package passes them; credentials from the environment
    props = {"probe.endpointUrl": endpoint, "probe.region": "us-east-1"}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}
    cmd = ["java", "-cp", str(classes), *[f"-D{k}={v}" for k, v in props.items()],
           "InvokeProbe", "bench_loop", "echo"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise SystemExit(f"Java bench did not start: {line}")
    return proc


def java_round(proc: subprocess.Popen, calls: int) -> float:
    proc.stdin.write(f"{calls}\n")
    proc.stdin.flush()
    line = proc.stdout.readline().strip()
    try:
        return float(line)
    except ValueError:
        raise SystemExit(f"Java bench failed: {line}") from None


def boto3_round(client, calls: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for ``calls`` sequential invokes."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        client.invoke(FunctionName="echo", Payload=PAYLOAD)["Payload"].read()
    return time.perf_counter() - t0, time.process_time() - c0


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process so far (/proc/<pid>/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per client")
    parser.add_argument("--calls", type=int, default=100, help="sequential invokes per round")
    args = parser.parse_args(argv)
    if shutil.which("javac") is None or shutil.which("java") is None:
        print("skipped: no JDK (javac/java) on PATH", file=sys.stderr)
        return 0

    # The local stack's credentials, for deploy_lambdas' default chain (as tests/fixtures_local.py does).
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    stack = LocalStack().start()
    java = None
    try:
        deploy_lambdas(["echo"], endpoint_url=stack.endpoint_url)
        client = boto3.client("lambda", endpoint_url=stack.endpoint_url, region_name="us-east-1")
        for _ in range(200):  # the same warm-up as the Java side
            client.invoke(FunctionName="echo", Payload=PAYLOAD)["Payload"].read()
        with tempfile.TemporaryDirectory() as tmp:
            compile_java(Path(tmp))
            java = start_java(Path(tmp), stack.endpoint_url)
            java_s = boto_s = java_cpu = boto_cpu = 0.0
            for _ in range(args.rounds):
                c0 = cpu_seconds(java.pid)
                java_s += java_round(java, args.calls)
                java_cpu += cpu_seconds(java.pid) - c0
                wall, cpu = boto3_round(client, args.calls)
                boto_s += wall
                boto_cpu += cpu
        total = args.rounds * args.calls
        java_rate, boto_rate = total / java_s, total / boto_s
        print(f"calls per client: {total} in {args.rounds} alternating rounds of {args.calls}")
        print(f"java  (sqlambda.LambdaInvoke, keep-alive): {java_rate:8.1f} calls/s, "
              f"{java_cpu / total * 1e6:7.0f} us client CPU per call")
        print(f"boto3 (lambda.invoke)                    : {boto_rate:8.1f} calls/s, "
              f"{boto_cpu / total * 1e6:7.0f} us client CPU per call")
        print(f"ratio java/boto3                         : {java_rate / boto_rate:8.2f}   (target >= 1.0)")
    finally:
        if java is not None:
            java.stdin.close()
            java.wait(timeout=30)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
