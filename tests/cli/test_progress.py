"""Progress on long work, as plain lines when piped: drain (rows/s, queue depth), install
([n/total] per step), lambdas deploy (one line per function)."""

from __future__ import annotations

import re

import pytest
from cli_helpers import run
from pg_helpers import q

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

SPEC = """\
project: progress
triggers:
  - name: items_out
    table: public.items
    events: [insert]
    lambda: echo
    delivery: outbox
    batch: {max_rows: 50}
"""


def test_drain_reports_rate_and_depth_while_it_runs(pg_cluster, local_stack, echo_function, faults, tmp_path):
    dsn = pg_cluster.create_database("progress_drain")
    q(dsn, "CREATE TABLE items (id int PRIMARY KEY)")
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    assert run("install", str(spec), "--dsn", dsn).returncode == 0
    q(dsn, "INSERT INTO items SELECT g FROM generate_series(1, 600) g")
    faults.latency("echo", 200)  # 12 batches of 50, each 200 ms: a drain of a few seconds
    res = run("drain", "--dsn", dsn, "--endpoint-url", local_stack.endpoint_url, "--progress-every", "0.5",
              env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    assert res.returncode == 0, res.stderr
    lines = re.findall(r"^drain: delivered (\d+) rows \((\d+) rows/s over the last [\d.]+s\), queue depth (\d+)$",
                       res.stderr, re.M)
    assert len(lines) >= 3, res.stderr
    delivered = [int(d) for d, _, _ in lines]
    depths = [int(x) for _, _, x in lines]
    assert delivered == sorted(delivered) and delivered[-1] > delivered[0]
    assert depths == sorted(depths, reverse=True) and depths[-1] < 600
    assert any(int(r) > 0 for _, r, _ in lines)
    assert "delivered 600 event(s)" in res.stdout


def test_install_numbers_its_steps(pg_cluster):
    dsn = pg_cluster.create_database("progress_install")
    res = run("install", "--dsn", dsn)
    steps = re.findall(r"^  \[(\d+)/(\d+)\] (\w+) ", res.stdout, re.M)
    assert res.returncode == 0 and steps, res.stdout
    total = int(steps[0][1])
    assert [int(n) for n, _, _ in steps] == list(range(1, total + 1)) and all(int(t) == total for _, t, _ in steps)


def test_lambdas_deploy_reports_each_function(local_stack):
    res = run("lambdas", "deploy", "echo", "kinesis_reader", "--endpoint-url", local_stack.endpoint_url,
              env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    assert res.returncode == 0, res.stderr
    assert re.search(r"^\[1/2\] (created|updated|unchanged) echo in [\d.]+s$", res.stderr, re.M), res.stderr
    assert re.search(r"^\[2/2\] (created|updated|unchanged) kinesis_reader in [\d.]+s$", res.stderr, re.M), res.stderr
