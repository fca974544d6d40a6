"""`sqlambda status` and `sqlambda history`, and `verify` and `install` agreeing on what repairs drift.

Like sqitch status/log and flyway info: what is installed, from which spec and sqlambda version,
compared with the spec; the install log newest first. When verify finds objects dropped or edited
by hand, its hint names `install --repair SPEC`, `install` reports them (and on a terminal offers
to repair them), and after the repair verify and status are clean again.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time

import pytest
from cli_helpers import SQLAMBDA, no_traceback, run
from pg_helpers import q

pytestmark = pytest.mark.postgres

SPEC = "generator/examples/shop.yaml"
ROLES = ("shop_admin", "shop_reader", "shop_writer")


@pytest.fixture
def db(pg_cluster, request):
    dsn = pg_cluster.create_database("st_" + request.node.name[-40:].lower())
    for role in ROLES:
        if not q(dsn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
            q(dsn, f"CREATE ROLE {role} NOLOGIN")
    return dsn


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_status_before_and_after_install(db):
    before = run("status", "--dsn", db, "--json")
    assert before.returncode == 0 and json.loads(before.stdout)["installed"] is False
    assert run("install", SPEC, "--dsn", db).returncode == 0
    doc = json.loads(run("status", "--dsn", db, "--json").stdout)
    # without a spec argument it compares with the spec file the registry names
    assert doc["installed"] and doc["compared_with"] == SPEC and doc["up_to_date"] is True
    (spec,) = doc["specs"]
    assert spec["spec"] == SPEC and spec["tool_version"] and spec["objects"] == len(doc["objects"]) > 10
    assert doc["last_change"]["action"] == "create"
    human = run("status", "--dsn", db)
    assert "up to date with generator/examples/shop.yaml" in human.stdout and f"{spec['objects']} object(s)" in human.stdout


def test_status_shows_pending_changes_of_an_edited_spec(db, tmp_path):
    edited = tmp_path / "shop.yaml"
    edited.write_text(open(SPEC).read().replace("request_timeout_ms: 10000", "request_timeout_ms: 12000"))
    assert run("install", SPEC, "--dsn", db).returncode == 0
    doc = json.loads(run("status", str(edited), "--dsn", db, "--json").stdout)
    assert doc["up_to_date"] is False and doc["pending"]["replace"] > 0
    assert any("installed version differs" in p for p in doc["problems"])
    assert doc["hint"] == f"run `sqlambda install {edited}`"


def test_verify_and_install_agree_on_the_repair(db):
    assert run("install", SPEC, "--dsn", db).returncode == 0
    q(db, "DROP FUNCTION public.order_status(bigint, text)")
    ver = run("verify", SPEC, "--dsn", db, "--json")
    assert ver.returncode == 7
    assert f"sqlambda install --repair {SPEC}" in json.loads(ver.stdout)["hint"]
    st = json.loads(run("status", "--dsn", db, "--json").stdout)
    assert st["up_to_date"] is False and st["hint"] == f"run `sqlambda install --repair {SPEC}`"

    plain = run("install", SPEC, "--dsn", db)  # not a terminal: reports, changes nothing, exit 0
    assert plain.returncode == 0
    no_traceback(plain)
    assert "dropped or edited by hand" in plain.stdout and f"sqlambda install --repair {SPEC}" in plain.stdout
    assert "public.order_status(bigint,text)" in plain.stdout
    doc = json.loads(run("install", SPEC, "--dsn", db, "--json").stdout)
    assert [d["key"] for d in doc["damaged"]][0].startswith("function public.order_status")
    assert run("verify", SPEC, "--dsn", db).returncode == 7

    fixed = run("install", "--repair", SPEC, "--dsn", db)
    assert fixed.returncode == 0 and run("verify", SPEC, "--dsn", db).returncode == 0
    assert json.loads(run("status", "--dsn", db, "--json").stdout)["up_to_date"] is True


def _on_a_terminal(args: list[str], answer: str, timeout: float = 120) -> tuple[int, str]:
    """Run ``sqlambda ARGS`` with a pseudo-terminal as stdin/stdout, answering the first prompt."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    proc = subprocess.Popen([SQLAMBDA, *args], stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(leader)
    return proc.returncode, out.decode(errors="replace")


def test_install_on_a_terminal_offers_the_repair(db):
    assert run("install", SPEC, "--dsn", db).returncode == 0
    q(db, "DROP FUNCTION public.order_status(bigint, text)")
    code, out = _on_a_terminal(["install", SPEC, "--dsn", db], "n")
    assert code == 0 and "Re-create them now?" in out
    assert run("verify", SPEC, "--dsn", db).returncode == 7  # declined: left as it was
    code, out = _on_a_terminal(["install", SPEC, "--dsn", db], "y")
    assert code == 0 and "3 replace" in out  # the repair re-applied the three objects
    assert run("verify", SPEC, "--dsn", db).returncode == 0


def test_history_lists_every_change_newest_first(db):
    assert run("install", SPEC, "--dsn", db).returncode == 0
    q(db, "DROP FUNCTION public.order_status(bigint, text)")
    assert run("install", "--repair", SPEC, "--dsn", db).returncode == 0
    doc = json.loads(run("history", "--dsn", db, "--json", "-n", "500").stdout)
    ids = [e["id"] for e in doc]
    assert ids == sorted(ids, reverse=True)
    actions = [e["action"] for e in doc]
    assert actions[-1] == "bootstrap" and "create" in actions
    repaired = [e for e in doc if e["key"] == "function public.order_status(bigint,text)"]
    assert len(repaired) == 2 and all(e["who"] == "postgres" for e in repaired)
    assert len(json.loads(run("history", "--dsn", db, "--json", "-n", "3").stdout)) == 3
    human = run("history", "--dsn", db, "-n", "5")
    assert human.returncode == 0 and "public.order_status" in human.stdout


def test_history_and_status_without_an_install(db):
    assert json.loads(run("history", "--dsn", db, "--json").stdout) == []
    bad = run("status", "--dsn", "host=127.0.0.1 port=1 dbname=x connect_timeout=2")
    assert bad.returncode == 5
