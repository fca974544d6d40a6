"""Rendering of PostgreSQL change triggers (immediate and outbox) and the outbox tables.

Owns: turning the spec's ``triggers`` into artifacts: per spec trigger and event one
statement-level AFTER trigger with its transition table(s) and the function behind it (PL/Python
``sqlambda_triggers.fire`` for ``delivery: immediate``, a PL/pgSQL enqueue for ``delivery: outbox``),
one route row per outbox trigger (what ``sqlambda drain`` reads), and, when any trigger uses the
outbox, the queue, dead-letter and route tables and the drainers' claim function. A trigger has one
route per destination (a Lambda, a sink, or both: ``Spec.routes``); its enqueue writes each chunk
once per route, so each destination keeps its own position, retries and dead letters. With
``send_after_commit: true``, also that function, a route ``send:<name>`` per spec function and sink,
and a policy per target admitting the members of the target's roles.

Install order: tables (25) after the schema, the claim function (26), the queue's row-level security
policy per outbox trigger (27), route rows (70), trigger functions (75), triggers (80),
so uninstall removes the triggers first (nothing new is queued) and the queue tables last, and only
when empty: their drop statements refuse with a clear error while events are queued or dead, because
losing committed events silently is not allowed. The triggered tables are the user's and are never
dropped.

Must not: touch a database or hold SQL text (templates in ``sql/postgres/triggers/`` and
``sql/postgres/outbox/``). Contract: ``render_triggers(loaded, ctx) -> list[Artifact]`` where ``ctx``
is the context ``render.build_context`` builds; [] when the spec has no triggers.
"""

from __future__ import annotations

from typing import Any

from sqlambda.artifacts import Artifact
from sqlambda.errors import RenderError
from sqlambda.spec.model import Route, Spec, Trigger

FILE_TRIGGERS = "30_triggers.sql"
ORDER_TABLES = 25
ORDER_CLAIM = 26
ORDER_POLICY = 27
ORDER_ROUTE = 70
ORDER_FUNCTION = 75
ORDER_TRIGGER = 80
#: PostgreSQL truncates longer identifiers silently, which could make two names collide
MAX_IDENT = 63
#: events per outbox queue row (a chunk of one statement's changes): few enough that the drainer
#: re-reads little when it resumes a chunk, many enough that the trigger writes few rows
CHUNK_ROWS = 1000


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel outbox triggers notify and ``sqlambda drain --follow`` listens on."""
    return f"{schema}.outbox"


def split_table(table: str) -> tuple[str, str]:
    """``schema.table`` -> (schema, table); an unqualified name means ``public`` (not the search_path,
    which differs per session and would make the install depend on who runs it)."""
    schema, _, name = table.rpartition(".")
    return (schema or "public"), name


def _check_name(name: str, where: str) -> str:
    if len(name.encode()) > MAX_IDENT:
        raise RenderError(
            f"{where}: the derived name {name!r} is longer than {MAX_IDENT} bytes "
            f"(PostgreSQL would truncate it); shorten the trigger name"
        )
    return name


def _tables(ctx: dict) -> list[Artifact]:
    schema = ctx["schema"]
    make = ctx["artifact"]
    out = [make(
        f"sequence {schema}.outbox_id", "sequence", "outbox/id_sequence.sql.j2", order=ORDER_TABLES - 1,
        file=FILE_TRIGGERS, summary="outbox queue ids (uncached: one row's changes in commit order; kept when the queue is recreated)",
        probe=(("regclass", f'"{schema}"."outbox_id"'),), schema=schema,
    )]
    for table, template, summary in (
        ("outbox", "outbox/queue.sql.j2", "outbox queue (change events waiting for `sqlambda drain`)"),
        ("outbox_dead", "outbox/dead.sql.j2", "outbox dead letters"),
        ("outbox_route", "outbox/routes.sql.j2", "outbox routes (where each trigger's events go)"),
    ):
        out.append(make(
            f"table {schema}.{table}", "table", template, order=ORDER_TABLES, file=FILE_TRIGGERS,
            # recreated when their layout changes: the drop statements lock the table and refuse while
            # it holds events, so a change goes through only once it is drained (nothing is lost)
            summary=summary, probe=(("regclass", f'"{schema}"."{table}"'),), replace="recreate", schema=schema,
            chunk_rows=CHUNK_ROWS,
        ))
    sig = f'"{schema}".outbox_claim(integer,timestamptz)'
    out.append(make(
        f"function {schema}.outbox_claim(integer,timestamptz)", "function", "outbox/claim_function.sql.j2",
        order=ORDER_CLAIM, file=FILE_TRIGGERS, summary="lock the oldest ready outbox chunks for a drainer",
        probe=(("regprocedure", sig),), schema=schema,
        # its result columns: a change is a drop and create (CREATE OR REPLACE cannot change them)
        interface="(integer, timestamptz) RETURNS TABLE(id, base, trigger, op, txid, ts, attempts, age, function_errors, n, done)",
    ))
    return out


def _policy(ctx: dict, where: str, t: Trigger, tschema: str, tname: str, routes: list[str]) -> Artifact:
    """The queue's row-level security policy admitting this trigger's events (see policy.sql.j2)."""
    schema = ctx["schema"]
    policy = _check_name(f"enqueue_{t.name}", f"{where}.name")
    return ctx["artifact"](
        f"policy {policy} on {schema}.outbox", "policy", "outbox/policy.sql.j2", order=ORDER_POLICY,
        file=FILE_TRIGGERS, summary=f"writers of {tschema}.{tname} may queue {', '.join(t.events)} events of {t.name}",
        probe=(("policy", f'{policy} ON "{schema}"."outbox"'),), replace="recreate",
        schema=schema, policy=policy, routes=routes, events=list(t.events), table_schema=tschema, table_name=tname,
        roles=None, requires=(f"table {schema}.outbox",),
    )


def _route(ctx: dict, r: Route, table: str, summary: str) -> Artifact:
    """One row of ``<schema>.outbox_route``: where the events queued under ``r.name`` go."""
    schema = ctx["schema"]
    aws = ctx["spec"].aws
    return ctx["artifact"](
        f"outbox route {r.name}", "route", "outbox/route.sql.j2", order=ORDER_ROUTE, file=FILE_TRIGGERS,
        summary=summary, schema=schema, trigger=r.name, table=table, sink=r.sink, lambda_name=r.lambda_name,
        qualifier=r.qualifier, mode=r.mode, max_rows=r.batch.max_rows, max_bytes=r.batch.max_bytes,
        max_attempts=r.retry.max_attempts, base_delay_ms=r.retry.base_delay_ms,
        max_delay_ms=max(r.retry.max_delay_ms, r.retry.base_delay_ms), max_age_s=r.retry.max_age_s, region=aws.region,
        endpoint_url=aws.endpoint_url, key_columns=r.key, source=r.source, requires=(f"table {schema}.outbox_route",),
    )


def _describe(r: Route) -> str:
    return f"{r.lambda_name} ({r.mode})" if r.sink == "lambda" else f"{r.sink} {r.lambda_name}"


def _trigger(ctx: dict, i: int, t: Trigger) -> list[Artifact]:
    spec: Spec = ctx["spec"]
    schema = ctx["schema"]
    make = ctx["artifact"]
    where = f"triggers[{i}]"
    tschema, tname = split_table(t.table)
    table = f"{tschema}.{tname}"
    routes = spec.routes(t)
    route = routes[0]
    out: list[Artifact] = []
    common = dict(schema=schema, trigger=t.name, table=table, columns=list(t.columns) if t.columns else None)
    goes_to = " and ".join(_describe(r) for r in routes)
    if t.delivery == "outbox":
        out.append(_policy(ctx, where, t, tschema, tname, [r.name for r in routes]))
        out += [_route(ctx, r, table, f"route {r.name} -> {_describe(r)}") for r in routes]
    for event in t.events:
        trigger_name = _check_name(f"{t.name}_{event}", f"{where}.name")
        function_name = _check_name(f"trg_{t.name}_{event}", f"{where}.name")
        fsig = f'"{schema}"."{function_name}"()'
        if t.delivery == "outbox":
            fn = make(
                f"function {schema}.{function_name}()", "function", "outbox/enqueue_function.sql.j2",
                order=ORDER_FUNCTION, file=FILE_TRIGGERS, summary=f"queue {event}s on {table} for {t.name}",
                probe=(("regprocedure", fsig),), function_name=function_name, event=event, routes=[r.name for r in routes],
                channel=channel(schema), chunk_rows=CHUNK_ROWS,
                comment=f"sqlambda outbox trigger {t.name}: queues {event}s on {table} for {goes_to}. Generated by sqlambda.",
                **common,
            )
        else:
            fn = make(
                f"function {schema}.{function_name}()", "function", "triggers/immediate_function.sql.j2",
                order=ORDER_FUNCTION, file=FILE_TRIGGERS,
                summary=f"send {event}s on {table} to {route.lambda_name} ({route.mode}, batches of {t.batch.max_rows})",
                probe=(("regprocedure", fsig),), function_name=function_name, event=event,
                lambda_name=route.lambda_name, qualifier=route.qualifier, mode=route.mode,
                max_rows=t.batch.max_rows, max_bytes=t.batch.max_bytes, concurrency=t.batch.concurrency,
                bundle=ctx["bundle"](["sqlambda_triggers"]),
                comment=f"sqlambda immediate trigger {t.name}: sends {event}s on {table} to {route.lambda_name}. Generated by sqlambda.",
                **common,
            )
        out.append(fn)
        out.append(make(
            f"trigger {trigger_name} on {table}", "trigger", "triggers/trigger.sql.j2", order=ORDER_TRIGGER,
            file=FILE_TRIGGERS, summary=f"AFTER {event.upper()} ON {table} FOR EACH STATEMENT ({t.delivery})",
            probe=(("trigger", f'{trigger_name} ON "{tschema}"."{tname}"'),), replace="recreate",
            trigger_name=trigger_name, event=event, table_schema=tschema, table_name=tname, function=fsig,
            comment=f"sqlambda trigger {t.name} ({t.delivery}). Generated by sqlambda; remove with sqlambda uninstall.",
        ))
    return out


def _send(ctx: dict) -> list[Artifact]:
    """``send_after_commit``: its routes (every spec function and sink), the policies admitting the
    members of each target's roles, and the function (see outbox/send_function.sql.j2)."""
    spec: Spec = ctx["spec"]
    schema = ctx["schema"]
    out: list[Artifact] = []
    targets = spec.send_targets()
    if not targets:
        raise RenderError("send_after_commit: true needs a target: a spec function or sink to send to")
    for r in targets:
        name = r.name.split(":", 1)[1]
        out.append(_route(ctx, r, "", f"send_after_commit({name!r}, ...) -> {_describe(r)}"))
        policy = _check_name(f"send_{name}", f"send target {name}")
        out.append(ctx["artifact"](
            f"policy {policy} on {schema}.outbox", "policy", "outbox/policy.sql.j2", order=ORDER_POLICY,
            file=FILE_TRIGGERS, summary=f"members of {', '.join(r.roles) or 'no role'} may send_after_commit to {name}",
            probe=(("policy", f'{policy} ON "{schema}"."outbox"'),), replace="recreate",
            schema=schema, policy=policy, routes=[r.name], events=["call"], table_schema=None, table_name=None,
            roles=list(r.roles), requires=(f"table {schema}.outbox",),
        ))
    roles = sorted({role for r in targets for role in r.roles})
    sig = f'"{schema}".send_after_commit(text,jsonb,text)'
    out.append(ctx["artifact"](
        f"function {schema}.send_after_commit(text,jsonb,text)", "function", "outbox/send_function.sql.j2",
        order=ORDER_FUNCTION, file=FILE_TRIGGERS,
        summary=f"send_after_commit(target, payload, key): queue a call or record, sent after commit ({len(targets)} targets)",
        probe=(("regprocedure", sig),), schema=schema, channel=channel(schema), roles=roles,
        targets=[dict(name=r.name.split(":", 1)[1], route=r.name, roles=list(r.roles)) for r in targets],
        interface="(text, jsonb, text) RETURNS void",
    ))
    return out


def render_triggers(loaded: Any, ctx: dict) -> list[Artifact]:
    """Pure: the spec's triggers (ctx['spec']) -> artifacts; [] without triggers."""
    spec: Spec = ctx["spec"]
    if not spec.triggers and not spec.send_after_commit:
        return []
    out: list[Artifact] = []
    if any(t.delivery == "outbox" for t in spec.triggers) or spec.send_after_commit:
        out += _tables(ctx)
    for i, t in enumerate(spec.triggers):
        out += _trigger(ctx, i, t)
    if spec.send_after_commit:
        out += _send(ctx)
    return out
