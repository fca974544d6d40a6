"""`sqlambda demo`: the README's first command, end to end on this machine with nothing but PostgreSQL.

Owns the demo's story: start a throwaway PostgreSQL cluster and the local AWS stack, deploy the
example ``echo`` Lambda, install the demo spec (``examples/demo.yaml``) with the real installer,
run SQL calls (generic sync and async, ``invoke()``, typed wrappers, an error caught and shown)
and print each call with its result, then clean up. It is a list of :class:`Step` objects run in
order, so later scenarios (CloudWatch, Firehose, Kinesis, the outbox) are added as steps.

Must not: hold SQL that belongs to the bridge (it only *calls* what the installer installed),
print outside the given console, or leave processes behind unless asked to (``keep``).
"""

from __future__ import annotations

import os

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from sqlambda import commands, resources
from sqlambda.errors import InvokeError, SqlambdaError

#: database, roles and credentials of the throwaway setup (test credentials of the local stack)
DEMO_DB = "sqlambda_demo"
DEMO_ROLES = ("app_reader", "app_admin")
DEMO_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class Call:
    """One SQL call the demo makes. ``expect`` is a substring the result (or, with ``error``, the
    error message) must contain, so the demo fails loudly when the bridge misbehaves."""

    label: str
    sql: str
    expect: str
    error: bool = False
    role: str | None = None


@dataclass(frozen=True)
class CallResult:
    call: Call
    ok: bool
    shown: str

    def to_dict(self) -> dict:
        return {"label": self.call.label, "sql": self.call.sql, "ok": self.ok, "result": self.shown}


#: the calls of the main scenario, in the order the README explains them
CALLS: tuple[Call, ...] = (
    Call("generic, synchronous", "SELECT awslambda_fn('echo', '{\"order_id\": 42}')", '"Status": "OK"'),
    Call("generic, asynchronous (Event)", "SELECT awslambda_fn_async('echo', '{\"order_id\": 43}')", ""),
    Call("invoke(): every Invoke option, one row",
         "SELECT status_code, payload, executed_version FROM sqlambda.invoke('echo', '{\"hello\": \"world\"}'::jsonb)",
         "200"),
    Call("invoke() as a DryRun", "SELECT status_code FROM sqlambda.invoke('echo', '{}'::jsonb, 'DryRun')", "204"),
    Call("typed wrapper -> text", "SELECT order_status(42, 'gift wrap')", "OK", role="app_reader"),
    Call("typed wrapper -> jsonb", "SELECT order_echo(7)", '"order_id": 7', role="app_reader"),
    Call("async wrapper", "SELECT order_notify('shipped')", "202", role="app_reader"),
    Call("an error, caught: unknown function", "SELECT awslambda_fn('no_such_function', '{}')",
         "42883", error=True),
    Call("an error, caught: malformed JSON", "SELECT awslambda_fn('echo', '{oops')", "22P02", error=True),
    Call("least privilege: app_reader may not call the generic function",
         "SELECT awslambda_fn('echo', '{}')", "42501", error=True, role="app_reader"),
)


@dataclass
class DemoContext:
    """What steps share: the console, the running services and the results so far."""

    console: Console
    spec: Any
    cluster: Any = None
    stack: Any = None
    dsn: str = ""
    results: list[CallResult] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoContext], None]


def _start_cluster(ctx: DemoContext) -> None:
    from sqlambda.pgcluster import Cluster

    # PL/Python sees the postmaster's environment: the local stack's test credentials go there
    ctx.cluster = Cluster(extra_env=dict(DEMO_ENV))
    ctx.cleanups.append(ctx.cluster.destroy)
    ctx.cluster.start()
    ctx.dsn = ctx.cluster.create_database(DEMO_DB)
    ctx.console.print(f"  PostgreSQL on {ctx.cluster.host}:{ctx.cluster.port}, database {DEMO_DB}", highlight=False)


def _start_stack(ctx: DemoContext) -> None:
    from sqlambda.local import LocalStack

    ctx.stack = LocalStack()
    ctx.cleanups.append(ctx.stack.stop)
    ctx.stack.start()
    # boto3 in this process (deploys, stream setup) needs credentials the stack accepts; real
    # ones already in the environment are kept (the stack accepts any).
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    ctx.console.print(f"  local AWS stack at {ctx.stack.endpoint_url}", highlight=False)


def _deploy(ctx: DemoContext) -> None:
    from sqlambda.deploy import deploy_lambdas

    deploy_lambdas(["echo"], endpoint_url=ctx.stack.endpoint_url)
    ctx.console.print("  deployed lambdas/echo as 'echo'", highlight=False)


def _install(ctx: DemoContext) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for role in DEMO_ROLES:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        # settings are GUCs: point this database at the local stack (new sessions pick it up)
        conn.execute(sql.SQL("ALTER DATABASE {} SET sqlambda.endpoint_url = {}").format(
            sql.Identifier(DEMO_DB), sql.Literal(ctx.stack.endpoint_url)))
    result = commands.install(ctx.spec, ctx.dsn)
    ctx.console.print(f"  installed {len(result.applied)} objects from {result.spec_name}", highlight=False)
    report = commands.verify(ctx.spec, ctx.dsn)
    ctx.console.print(f"  verify: {report.checked} objects match", highlight=False)


def run_call(dsn: str, call: Call) -> CallResult:
    """Run one call in its own session (as ``call.role`` when given) and judge it."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if call.role:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(call.role)))
            cur = conn.execute(call.sql)
            row = cur.fetchone()
            cols = [d.name for d in cur.description]
            values = [json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in row]
            shown = str(values[0]) if len(values) == 1 else ", ".join(f"{c}={v}" for c, v in zip(cols, values))
        return CallResult(call, (not call.error) and call.expect in shown, shown)
    except psycopg.Error as exc:
        shown = f"ERROR [{exc.sqlstate}] {exc.diag.message_primary}"
        return CallResult(call, call.error and call.expect in shown, shown)


def _calls(ctx: DemoContext) -> None:
    table = Table(title="SQL calls through the bridge", title_justify="left", show_lines=True)
    for col in ("", "what", "SQL", "result"):
        table.add_column(col, overflow="fold")
    for call in CALLS:
        r = run_call(ctx.dsn, call)
        ctx.results.append(r)
        sql_text = (f"SET ROLE {call.role}; " if call.role else "") + call.sql
        table.add_row("[green]✓[/]" if r.ok else "[red]✗[/]", call.label, sql_text, r.shown)
    ctx.console.print(table)


STEPS: list[Step] = [
    Step("start a throwaway PostgreSQL 15 cluster", _start_cluster),
    Step("start the local AWS stack", _start_stack),
    Step("deploy the example Lambda", _deploy),
    Step("install the demo spec", _install),
    Step("call Lambda from SQL", _calls),
]


def default_spec() -> Any:
    return commands.load(resources.examples() / "demo.yaml")


def run(console: Console, *, spec: Any = None, keep: bool = False, steps: list[Step] | None = None) -> list[CallResult]:
    """Run every step; returns the call results. Raises SqlambdaError when a step fails.

    ``keep`` leaves the cluster and the stack running until Ctrl-C, printing how to reach them.
    """
    ctx = DemoContext(console=console, spec=commands.load(spec) if spec is not None else default_spec())
    started = time.monotonic()
    try:
        for i, step in enumerate(steps or STEPS, 1):
            console.print(f"[bold][{i}/{len(steps or STEPS)}] {step.title}[/]")
            try:
                step.run(ctx)
            except SqlambdaError:
                raise
            except Exception as exc:  # noqa: BLE001 - a demo step failing is reported, not a traceback
                raise SqlambdaError(f"demo step '{step.title}' failed: {type(exc).__name__}: {exc}") from exc
        failed = [r for r in ctx.results if not r.ok]
        console.print(f"{len(ctx.results) - len(failed)}/{len(ctx.results)} calls as expected "
                      f"in {time.monotonic() - started:.1f}s", highlight=False)
        if keep:
            console.print(f"kept running: DSN [bold]{ctx.dsn}[/]  endpoint [bold]{ctx.stack.endpoint_url}[/]", highlight=False)
            console.print("try: psql \"" + ctx.dsn + "\" -c \"SELECT awslambda_fn('echo', '{}')\"", markup=False, highlight=False)
            console.print("press Ctrl-C to stop and clean up")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        if failed:
            raise InvokeError(f"{len(failed)} demo call{'s' if len(failed) > 1 else ''} did not behave as expected: "
                                + "; ".join(f"{r.call.label}: {r.shown}" for r in failed))
        return ctx.results
    finally:
        for cleanup in reversed(ctx.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - clean up as much as possible
                pass
