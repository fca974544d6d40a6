"""`sqlambda demo`: the README's first command, end to end on this machine with nothing but PostgreSQL.

Owns the demo's story: start a throwaway PostgreSQL cluster and the local AWS stack, deploy the
example ``echo`` Lambda, install the demo spec (``examples/demo.yaml``) with the real installer,
run SQL calls (generic sync and async, ``invoke()``, typed wrappers, an error caught and shown)
and print each call with its result; then the three scenarios of ``examples/scenarios.yaml`` in a
second database (readings to CloudWatch through a batching trigger, order changes to Firehose
through the outbox and ``drain``, a Kinesis stream read from SQL with resume), each checked
against what arrived on the AWS side and summed up in one table; then clean up. It is a list of
:class:`Step` objects run in order.

Must not: hold SQL that belongs to the bridge (it only *calls* what the installer installed),
print outside the given console, or leave processes behind unless asked to (``keep``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sqlambda import api, resources
from sqlambda.devkit import scenarios
from sqlambda.errors import InvokeError, SqlambdaError

#: database, roles and credentials of the throwaway setup (test credentials of the local stack)
DEMO_DB = "sqlambda_demo"
PRICING_DB = "sqlambda_pricing"
STREAMS_DB = "sqlambda_streams"
SCENARIO_DB = "sqlambda_scenarios"
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


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's figures: what went in on the SQL side, what was seen on the AWS side."""

    scenario: str
    sent: str
    seen: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "sent": self.sent, "seen": self.seen, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class DemoOutcome:
    """What ``run`` returns: every call and every scenario, judged."""

    calls: tuple[CallResult, ...]
    scenarios: tuple[ScenarioResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.calls) and all(r.ok for r in self.scenarios)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "calls": [r.to_dict() for r in self.calls],
                "scenarios": [r.to_dict() for r in self.scenarios]}


@dataclass
class DemoContext:
    """What steps share: the console, the running services and the results so far."""

    console: Console
    spec: Any
    cluster: Any = None
    stack: Any = None
    dsn: str = ""
    results: list[CallResult] = field(default_factory=list)
    scenario_dsn: str = ""
    scenarios: list[ScenarioResult] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoContext], None]


def _start_cluster(ctx: DemoContext) -> None:
    from sqlambda.targets.postgres.cluster import Cluster

    # PL/Python sees the postmaster's environment: the local stack's test credentials go there
    ctx.cluster = Cluster(extra_env=dict(DEMO_ENV))
    ctx.cleanups.append(ctx.cluster.destroy)
    ctx.cluster.start()
    ctx.dsn = ctx.cluster.create_database(DEMO_DB)
    ctx.console.print(f"  PostgreSQL on {ctx.cluster.host}:{ctx.cluster.port}, database {DEMO_DB}", highlight=False, markup=False)


def _start_stack(ctx: DemoContext) -> None:
    from sqlambda.local import LocalStack

    ctx.stack = LocalStack()
    ctx.cleanups.append(ctx.stack.stop)
    ctx.stack.start()
    # boto3 in this process (deploys, stream setup) needs credentials the stack accepts; real
    # ones already in the environment are kept (the stack accepts any).
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    ctx.console.print(f"  local AWS stack at {ctx.stack.endpoint_url}", highlight=False, markup=False)


def _deploy(ctx: DemoContext) -> None:
    from sqlambda.devkit.deploy import deploy_lambdas

    deploy_lambdas(["echo"], endpoint_url=ctx.stack.endpoint_url)
    ctx.console.print("  deployed lambdas/echo as 'echo'", highlight=False, markup=False)


def _install(ctx: DemoContext) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(ctx.dsn, autocommit=True) as conn:
        for role in DEMO_ROLES:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    _set_endpoint(ctx.dsn, DEMO_DB, ctx.stack.endpoint_url)
    result = api.install(ctx.spec, ctx.dsn)
    ctx.console.print(f"  installed {len(result.applied)} objects from {result.spec_name}", highlight=False, markup=False)
    report = api.verify(ctx.spec, ctx.dsn)
    ctx.console.print(f"  verify: {report.checked} objects match", highlight=False, markup=False)


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


def _mark(ok: bool) -> Text:
    return Text("✓", style="green") if ok else Text("✗", style="red")


def _calls(ctx: DemoContext) -> None:
    table = Table(title="SQL calls through the bridge", title_justify="left", show_lines=True)
    for col in ("", "what", "SQL", "result"):
        table.add_column(col, overflow="fold")
    for call in CALLS:
        r = run_call(ctx.dsn, call)
        ctx.results.append(r)
        sql_text = (f"SET ROLE {call.role}; " if call.role else "") + call.sql
        table.add_row(_mark(r.ok), Text(call.label), Text(sql_text), Text(r.shown))
    ctx.console.print(table)


def _set_endpoint(dsn: str, database: str, endpoint_url: str) -> None:
    import psycopg
    from psycopg import sql

    # settings are GUCs: point this database at the local stack (new sessions pick it up)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET sqlambda.endpoint_url = {}").format(
            sql.Identifier(database), sql.Literal(endpoint_url)))


def _prepare_scenarios(ctx: DemoContext) -> None:
    made = scenarios.prepare_aws(ctx.stack.endpoint_url)
    ctx.console.print(f"  deployed {', '.join(made['lambdas'])}; bucket {made['bucket']}, delivery stream "
                      f"{made['delivery_stream'].rsplit('/', 1)[-1]}, Kinesis stream {made['kinesis_stream']}", highlight=False, markup=False)
    ctx.scenario_dsn = ctx.cluster.create_database(SCENARIO_DB)
    _set_endpoint(ctx.scenario_dsn, SCENARIO_DB, ctx.stack.endpoint_url)
    scenarios.create_sample_objects(ctx.scenario_dsn)
    result = api.install(scenario_spec(), ctx.scenario_dsn)
    ctx.console.print(f"  database {SCENARIO_DB}: sample tables, then {len(result.applied)} objects from "
                      f"{result.spec_name}", highlight=False, markup=False)


def _readings(n: int) -> list[tuple[datetime, float]]:
    """n readings one minute apart, ending a minute ago (CloudWatch takes data up to two weeks old)."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
    return [(end - timedelta(minutes=n - 1 - i), round(18.0 + (i * 7 % 23) * 0.25, 2)) for i in range(n)]


def _cloudwatch(ctx: DemoContext) -> None:
    import psycopg

    readings = _readings(60)
    with psycopg.connect(ctx.scenario_dsn, autocommit=True) as conn:
        # one statement: the trigger sends the 60 rows in one batch (max_rows 500), synchronously
        conn.execute("INSERT INTO temperature_readings (reading_time, reading_value) "
                     "SELECT * FROM unnest(%s::timestamptz[], %s::float8[])",
                     ([t for t, _ in readings], [v for _, v in readings]))
    seen = scenarios.metric_values(ctx.stack.endpoint_url, readings[0][0], readings[-1][0] + timedelta(minutes=1))
    matching = sum(1 for t, v in readings if seen.get(t) == v)
    ctx.scenarios.append(ScenarioResult(
        "CloudWatch metrics", f"{len(readings)} readings inserted (1 statement)",
        f"{len(seen)} datapoints, {matching} equal to their reading", matching == len(readings) == len(seen)))
    ctx.console.print(f"  {len(readings)} readings -> {len(seen)} datapoints of "
                      f"{scenarios.Names().namespace}/{scenarios.Names().metric}", highlight=False, markup=False)


def _firehose(ctx: DemoContext) -> None:
    import psycopg

    from sqlambda.targets.postgres import drain as outbox

    with psycopg.connect(ctx.scenario_dsn) as conn:
        conn.execute("INSERT INTO orders (id, customer_id, status, total) "
                     "SELECT g, 100 + g % 7, 'new', (g * 12.5)::numeric(12,2) FROM generate_series(1, 25) g")
        conn.commit()
        conn.execute("UPDATE orders SET status = 'shipped', updated_at = now() WHERE id <= 5")
        conn.execute("DELETE FROM orders WHERE id IN (24, 25)")
        conn.commit()
        conn.execute("INSERT INTO orders (id, customer_id, status, total) VALUES (99, 1, 'never', 1)")
        conn.rollback()  # a rolled-back transaction queues nothing, so nothing is sent
    queued = outbox.status(ctx.scenario_dsn).depth
    stats = outbox.drain(ctx.scenario_dsn, endpoint_url=ctx.stack.endpoint_url)
    rows = scenarios.warehouse_rows(ctx.stack.endpoint_url)
    ops = {op: sum(1 for r in rows if r.get("_op") == op) for op in ("insert", "update", "delete")}
    ids = {op: sorted(r["id"] for r in rows if r.get("_op") == op) for op in ops}
    shipped = all(r["status"] == "shipped" for r in rows if r.get("_op") == "update")
    # line order across staged objects is not kept (delivery is at least once, per batch), so each
    # operation is checked on its own: exactly these rows, each once, the rolled-back one never
    ok = (ids == {"insert": list(range(1, 26)), "update": list(range(1, 6)), "delete": [24, 25]}
          and shipped and all(Decimal(str(r["total"])) == Decimal(r["id"]) * Decimal("12.5")
                              for r in rows if r.get("_op") != "update"))
    ctx.scenarios.append(ScenarioResult(
        "Firehose to Redshift", f"{queued} changes committed (25 insert, 5 update, 2 delete; 1 rolled back)",
        f"{len(rows)} JSON lines in s3://{scenarios.Names().bucket}/{scenarios.Names().prefix} "
        f"({ops['insert']} insert, {ops['update']} update, {ops['delete']} delete)", ok,
        f"drain: {stats.to_dict()}"))
    ctx.console.print(f"  {queued} queued -> drained -> {len(rows)} lines staged for Redshift COPY", highlight=False, markup=False)


def _kinesis(ctx: DemoContext) -> None:
    import psycopg

    stream = scenarios.Names().kinesis_stream
    now = datetime.now(timezone.utc)
    first = [{"sensor": f"s{i % 3}", "reading_time": (now + timedelta(seconds=i)).isoformat(), "reading_value": 20 + i / 10}
             for i in range(150)]
    more = [{"sensor": "s9", "reading_time": (now + timedelta(minutes=5, seconds=i)).isoformat(), "reading_value": 30 + i}
            for i in range(20)]
    put = scenarios.put_records(ctx.stack.endpoint_url, first)
    with psycopg.connect(ctx.scenario_dsn, autocommit=True) as conn:
        conn.execute("CALL process_sensor_readings(%s, 1)", (stream,))  # one batch of 100, checkpointed
        conn.execute("CALL process_sensor_readings(%s)", (stream,))     # resumes: the other 50
        put += scenarios.put_records(ctx.stack.endpoint_url, more)
        conn.execute("CALL process_sensor_readings(%s)", (stream,))     # resumes: the 20 new ones
        got = [r[0] for r in conn.execute(
            "SELECT sequence_number FROM kinesis_readings WHERE stream = %s "
            "ORDER BY sequence_number::numeric", (stream,))]
    ok = got == put
    ctx.scenarios.append(ScenarioResult(
        "Kinesis reads", f"{len(put)} records put on {stream} (150, then 20 more)",
        f"{len(got)} rows read from SQL in 3 resumed runs, {'in order, none skipped or repeated' if ok else 'MISMATCH'}",
        ok))
    ctx.console.print(f"  {len(put)} records put -> {len(got)} read by process_sensor_readings()", highlight=False, markup=False)


def _modernize(ctx: DemoContext) -> None:
    from sqlambda.devkit import modernize_demo

    dsn = ctx.cluster.create_database(PRICING_DB)
    _set_endpoint(dsn, PRICING_DB, ctx.stack.endpoint_url)
    out = tempfile.mkdtemp(prefix="sqlambda-scaffold-")
    ctx.cleanups.append(lambda: shutil.rmtree(out, ignore_errors=True))
    r = modernize_demo.run(dsn, ctx.stack.endpoint_url, out,
                           lambda line: ctx.console.print(line, highlight=False, markup=False))
    n = len(modernize_demo.QUOTES)
    # the seeded disagreement: exactly the quotes with 50 <= qty < 100 differ in the first port
    seeded = sum(1 for _, qty, _ in modernize_demo.QUOTES if 50 <= qty < 100)
    ok = (r.recorded == n and len(r.scaffolded) == 5 and r.first_compared == n and len(r.first_mismatches) == seeded
          and r.fixed_compared == r.fixed_matched == n and r.cutover_same and r.cutover_answers == n and r.restored)
    ctx.scenarios.append(ScenarioResult(
        "Modernize price_quote()", f"{n} quotes per stage: record, shadow (first port, then fixed), cutover, rollback",
        f"{len(r.first_mismatches)} seeded mismatch(es) found, then {r.fixed_matched}/{r.fixed_compared} match; "
        f"cutover answers {'equal' if r.cutover_same else 'DIFFERENT'}; rollback {'exact' if r.restored else 'NOT exact'}",
        ok))


def _streams(ctx: DemoContext) -> None:
    from sqlambda.devkit import streams_demo

    dsn = ctx.cluster.create_database(STREAMS_DB)
    _set_endpoint(dsn, STREAMS_DB, ctx.stack.endpoint_url)
    r = streams_demo.run(dsn, ctx.stack.endpoint_url, lambda line: ctx.console.print(line, highlight=False, markup=False))
    ok = (r.views_expected > 0 and r.views_equal == r.views_expected and r.invocations > 0
          and r.shipments_received == r.shipments_sent and r.groups_in_order == r.groups > 0
          and r.archived == ('{"audit": "month closed"}',))
    ctx.scenarios.append(ScenarioResult(
        "Event sinks without DMS", f"{r.changes} changes of 3 tables to one Kinesis stream; {r.shipments_sent} shipment "
        "changes to SQS FIFO; 2 send_after_commit (1 rolled back)",
        f"{r.views_equal}/{r.views_expected} order views in S3 equal to SQL's join (consumer Lambda through the event "
        f"source mapping); {r.shipments_received} FIFO messages, {r.groups_in_order}/{r.groups} groups in order; "
        f"{len(r.archived)} archived line", ok))


def _summary(ctx: DemoContext) -> None:
    table = Table(title="Scenarios: what went in, what arrived", title_justify="left", show_lines=True)
    for col in ("", "scenario", "SQL side", "AWS side"):
        table.add_column(col, overflow="fold")
    for r in ctx.scenarios:
        table.add_row(_mark(r.ok), Text(r.scenario), Text(r.sent), Text(r.seen))
    ctx.console.print(table)


STEPS: list[Step] = [
    Step("start a throwaway PostgreSQL 15 cluster", _start_cluster),
    Step("start the local AWS stack", _start_stack),
    Step("deploy the example Lambda", _deploy),
    Step("install the demo spec", _install),
    Step("call Lambda from SQL", _calls),
    Step("deploy the scenario Lambdas, create their bucket and streams, install the scenarios spec", _prepare_scenarios),
    Step("scenario: temperature readings to CloudWatch (immediate batching trigger)", _cloudwatch),
    Step("scenario: order changes to Firehose for Redshift (outbox + drain)", _firehose),
    Step("scenario: read a Kinesis stream from SQL, resuming", _kinesis),
    Step("scenario: move a PL/pgSQL function into a Lambda (modernize: record, scaffold, shadow, cutover, rollback)",
         _modernize),
    Step("scenario: three tables as an event source: Kinesis to a consumer Lambda's S3 view, SQS FIFO (event sinks)",
         _streams),
    Step("what happened", _summary),
]


def default_spec() -> Any:
    return api.load(resources.examples() / "demo.yaml")


def scenario_spec() -> Any:
    return api.load(resources.examples() / "scenarios.yaml")


def run(console: Console, *, spec: Any = None, keep: bool = False, steps: list[Step] | None = None) -> DemoOutcome:
    """Run every step; returns the calls and scenarios, judged. Raises SqlambdaError when a step fails
    (InvokeError when everything ran but a call or a scenario did not behave as expected).

    ``keep`` leaves the cluster and the stack running until Ctrl-C, printing how to reach them.
    """
    ctx = DemoContext(console=console, spec=api.load(spec) if spec is not None else default_spec())
    started = time.monotonic()
    try:
        for i, step in enumerate(steps or STEPS, 1):
            console.print(f"[{i}/{len(steps or STEPS)}] {step.title}", style="bold", markup=False, highlight=False)
            try:
                step.run(ctx)
            except SqlambdaError:
                raise
            except Exception as exc:  # noqa: BLE001 - a demo step failing is reported, not a traceback
                raise SqlambdaError(f"demo step '{step.title}' failed: {type(exc).__name__}: {exc}") from exc
        failed = [r for r in ctx.results if not r.ok]
        bad = [r for r in ctx.scenarios if not r.ok]
        console.print(f"{len(ctx.results) - len(failed)}/{len(ctx.results)} calls and "
                      f"{len(ctx.scenarios) - len(bad)}/{len(ctx.scenarios)} scenarios as expected "
                      f"in {time.monotonic() - started:.1f}s", highlight=False, markup=False)
        if keep:
            console.print(Text.assemble("kept running: DSN ", (ctx.dsn, "bold"), "  endpoint ", (ctx.stack.endpoint_url, "bold")))
            console.print("try: psql \"" + ctx.dsn + "\" -c \"SELECT awslambda_fn('echo', '{}')\"", markup=False, highlight=False)
            console.print("press Ctrl-C to stop and clean up", markup=False)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        if failed or bad:
            raise InvokeError(f"{len(failed) + len(bad)} demo call(s) or scenario(s) did not behave as expected: "
                              + "; ".join([f"{r.call.label}: {r.shown}" for r in failed]
                                          + [f"{r.scenario}: {r.seen} {r.detail}".strip() for r in bad]))
        return DemoOutcome(tuple(ctx.results), tuple(ctx.scenarios))
    finally:
        for cleanup in reversed(ctx.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - clean up as much as possible
                pass
