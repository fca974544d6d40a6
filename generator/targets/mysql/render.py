"""Spec -> artifacts for MySQL / MariaDB (pure: templates from ``sql/mysql/`` only).

Owns: the database's objects, in install order: the definer account, the plugin's two loadable
functions, the generic stored functions under the original's names (``awslambda_fn``,
``awslambda_fn_async``) and Aurora MySQL's (``lambda_sync``, ``lambda_async``), typed wrappers
(JSON_OBJECT payloads, the spec's return type), EXECUTE grants, and the outbox (tables, routes,
one row trigger per table and event). Must not touch a database, build the plugin (``plugin``) or
know a key: the key is the installer's, and never appears in an artifact, a script or the registry.

What MySQL cannot express is refused here with the reason, never rendered half-way: immediate
(per-row) delivery (a Lambda call per row inside the writer's transaction: use the outbox),
send_after_commit and modernize (not built for this target yet), triggers without an explicit
column list (a trigger reads NEW/OLD by name).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlambda.artifacts import Artifact, check_unique
from sqlambda.errors import RenderError
from sqlambda.spec.loader import spec_of
from sqlambda.spec.model import Function, Spec, Trigger
from sqlambda.targets.mysql import plugin
from sqlambda.templates import backtick, mysql_literal, split_statements
from sqlambda.templates import render as render_template

TARGET = "mysql"

#: spec type -> MySQL parameter / return type
TYPES = {
    "text": "LONGTEXT", "varchar": "VARCHAR(4000)", "integer": "INT", "bigint": "BIGINT", "smallint": "SMALLINT",
    "numeric": "DECIMAL(65,30)", "double precision": "DOUBLE", "real": "FLOAT", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp": "DATETIME(6)", "timestamptz": "DATETIME(6)", "jsonb": "JSON", "json": "JSON",
    "uuid": "CHAR(36)",
}
#: how a scalar result is read from the Lambda's JSON at a path
_CASTS = {
    "integer": "SIGNED", "bigint": "SIGNED", "smallint": "SIGNED", "numeric": "DECIMAL(65,30)", "double precision": "DOUBLE",
    "real": "DOUBLE", "date": "DATE", "timestamp": "DATETIME(6)", "timestamptz": "DATETIME(6)",
}

#: (name, mode, what an async call returns): the original prototype's names, then Aurora MySQL's
GENERIC = (
    ("awslambda_fn", "sync", ""),
    ("awslambda_fn_async", "async", "{}"),
    ("lambda_sync", "sync", ""),
    ("lambda_async", "async", ""),
)
RESERVED = {g[0] for g in GENERIC} | {"sqlambda_invoke", "sqlambda_config"}


@dataclass(frozen=True)
class Rendered:
    artifacts: list[Artifact]
    spec_name: str
    spec_checksum: str
    database: str


def _statements(template: str, **ctx: Any) -> tuple[str, ...]:
    return split_statements(render_template(TARGET, template, **ctx))


def grantee(role: str) -> str:
    """A spec grantee as MySQL writes it: a role name quoted, or an account 'user'@'host' as given."""
    return role if role.startswith("'") else mysql_literal(role)


def definer(spec: Spec) -> str:
    """The definer account of this spec's database: one per database, so uninstalling one database
    never takes the account another still runs as (MySQL user names: at most 32 characters)."""
    if spec.mysql.definer:
        return spec.mysql.definer
    name = f"sqlambda_{spec.mysql.database}"
    if len(name) > 32:
        name = name[:23] + "_" + hashlib.sha256(spec.mysql.database.encode()).hexdigest()[:8]
    return f"{mysql_literal(name)}@'localhost'"


def registry_statements(database: str) -> tuple[str, ...]:
    return _statements("registry.sql.j2", db=backtick(database))


def render(loaded: Any) -> Rendered:
    spec, spec_name, spec_checksum = spec_of(loaded)
    _check(spec)
    db = backtick(spec.mysql.database)
    base = {"db": db, "definer": definer(spec)}
    probe = (("database", spec.mysql.database),)
    arts: list[Artifact] = [
        Artifact(key="account sqlambda definer", kind="account", order=10,
                 statements=_statements("definer.sql.j2", **base), drop=_statements("definer_drop.sql.j2", **base),
                 probe=(*probe, ("account", base["definer"])), summary=f"locked definer account {base['definer']}"),
        Artifact(key="plugin sqlambda_udf", kind="plugin", order=12, replace="recreate",
                 statements=_statements("plugin.sql.j2", soname=plugin.soname()), drop=_statements("plugin_drop.sql.j2"),
                 probe=(*probe, ("soname", plugin.soname())), summary=f"loadable functions from {plugin.soname()}"),
    ]
    for name, mode, async_result in GENERIC:
        comment = f"sqlambda: {'synchronous' if mode == 'sync' else 'asynchronous'} Lambda call, {name}(function, json)"
        arts.append(_function(spec, name, 20, _statements("generic.sql.j2", name=name, mode=mode,
                                                           async_result=async_result, comment=comment, **base),
                              f"generic {mode} invoke"))
        arts += [_grant(spec, name, role, 25) for role in spec.mysql.generic_roles]
    for f in spec.functions:
        arts.append(_wrapper(spec, f, base))
        arts += [_grant(spec, f.name, role, 35) for role in f.roles]
    arts += _outbox(spec, base)
    return Rendered(check_unique(arts), spec_name, spec_checksum, spec.mysql.database)


def _check(spec: Spec) -> None:
    clash = [f.name for f in spec.functions if f.name.lower() in RESERVED]
    if clash:
        raise RenderError(f"these spec functions clash with sqlambda's own MySQL functions: {', '.join(clash)} "
                          f"(reserved: {', '.join(sorted(RESERVED))})")
    if spec.send_after_commit:
        raise RenderError("send_after_commit is PostgreSQL and Oracle only for now; on MySQL write to a table "
                          "with an outbox trigger instead")
    if spec.modernize:
        raise RenderError("modernize is PostgreSQL only for now (MySQL has no way to take over a function's name "
                          "transparently for its callers)")
    for t in spec.triggers:
        if t.delivery != "outbox":
            raise RenderError(f"trigger {t.name!r}: MySQL triggers are row-level only, so delivery: immediate would "
                              "call Lambda once per row inside the writer's transaction; use delivery: outbox")
        if not t.columns:
            raise RenderError(f"trigger {t.name!r}: the MySQL target needs an explicit 'columns' list, because a "
                              "trigger reads NEW/OLD values by name (add e.g. columns: [id, status])")


def _function(spec: Spec, name: str, order: int, statements: tuple[str, ...], summary: str) -> Artifact:
    db = backtick(spec.mysql.database)
    return Artifact(key=f"function {spec.mysql.database}.{name}", kind="function", order=order, replace="recreate",
                    statements=(render_template(TARGET, "drop_function.sql.j2", db=db, name=name).strip(), *statements),
                    drop=_statements("drop_function.sql.j2", db=db, name=name),
                    probe=(("database", spec.mysql.database), ("routine", name)), summary=summary,
                    requires=("plugin sqlambda_udf", "account sqlambda definer"))


def _grant(spec: Spec, name: str, role: str, order: int) -> Artifact:
    ctx = {"db": backtick(spec.mysql.database), "name": name, "grantee": grantee(role)}
    return Artifact(key=f"grant execute on {spec.mysql.database}.{name} to {role}", kind="grant", order=order,
                    statements=_statements("grant.sql.j2", **ctx), drop=_statements("revoke.sql.j2", **ctx),
                    probe=(("database", spec.mysql.database), ("routine", name), ("grantee", role)),
                    summary=f"EXECUTE on {name} to {role}", requires=(f"function {spec.mysql.database}.{name}",))


def _json_value(name: str, type_: str) -> str:
    """The argument as a JSON value inside JSON_OBJECT (booleans as true/false, JSON as JSON)."""
    p = f"p_{name}"
    if type_ == "boolean":
        return f"IF({p} IS NULL, NULL, JSON_EXTRACT(IF({p}, 'true', 'false'), '$'))"
    if type_ in ("json", "jsonb"):
        return f"JSON_EXTRACT({p}, '$')"
    if type_ in ("integer", "bigint", "smallint", "numeric", "double precision", "real"):
        return f"({p} + 0)"  # MariaDB's JSON_OBJECT quotes a routine's numeric parameter as a string
    return p


def _json_path(path: str) -> str:
    out = "$"
    for part in path.replace("]", "").split("."):
        name, *idx = part.split("[")
        out += f'."{name}"' + "".join(f"[{i}]" for i in idx)
    return out


def _wrapper(spec: Spec, f: Function, base: dict) -> Artifact:
    params = [f"p_{n} {TYPES[a.type]}" for n, a in f.args.items()]
    pairs = ", ".join(f"{mysql_literal(f.payload_key(n))}, {_json_value(n, a.type)}" for n, a in f.args.items())
    payload = f"JSON_OBJECT({pairs})"
    lambda_name = f.lambda_ + (f":{f.qualifier}" if f.qualifier else "")
    rtype, path, result = "JSON", f.returns.path, "v_result"
    if f.mode == "async":
        rtype = "JSON"
    elif f.returns.type == "table":
        rtype = "JSON"  # no table functions in MySQL: the array at path, for JSON_TABLE(...)
        result = f"JSON_EXTRACT(v_result, {mysql_literal(_json_path(path))})" if path else "v_result"
    elif f.returns.type not in ("jsonb",):
        rtype = TYPES[f.returns.type]
        value = f"JSON_UNQUOTE(JSON_EXTRACT(v_result, {mysql_literal(_json_path(path))}))"
        if f.returns.type == "boolean":
            result = f"CASE {value} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE ELSE NULL END"
        elif f.returns.type in _CASTS:
            result = f"CAST({value} AS {_CASTS[f.returns.type]})"
        else:
            result = value
    elif path:
        result = f"JSON_EXTRACT(v_result, {mysql_literal(_json_path(path))})"
    if rtype in ("LONGTEXT", "VARCHAR(4000)", "CHAR(36)"):
        rtype += " CHARSET utf8mb4"
    comment = f.description or f"sqlambda wrapper over Lambda {lambda_name}"
    statements = _statements("wrapper.sql.j2", name=f.name, params=params, returns=rtype, lambda_name=lambda_name,
                             payload=payload, mode_code=1 if f.mode == "async" else 0, async_=f.mode == "async",
                             path=bool(path) or f.returns.type == "table", result_expr=result, comment=comment[:1024],
                             **{"async": f.mode == "async"}, **base)
    return _function(spec, f.name, 30, statements, f"wrapper over {lambda_name} ({f.mode})")


def table_parts(t: Trigger, default_db: str) -> tuple[str, str, str]:
    """(database, table, 'database.table') of a trigger's table; an unqualified table is in the spec's database."""
    db, _, table = t.table.rpartition(".")
    db = db or default_db
    return db, table, f"{db}.{table}"


def trigger_name(trigger: str, event: str) -> str:
    """The SQL name of one spec trigger's row trigger for one event (at most 64 characters; a long
    name keeps a hash of the whole, so two events or two triggers never share one)."""
    name = f"sqlambda_{trigger}_{event}"
    if len(name) > 64:
        name = f"{name[:52]}_{hashlib.sha256(name.encode()).hexdigest()[:11]}"
    return name


def _image(columns: list[str], row: str) -> str:
    return "JSON_OBJECT(" + ", ".join(f"{mysql_literal(c)}, {row}.{backtick(c)}" for c in columns) + ")"


def _outbox(spec: Spec, base: dict) -> list[Artifact]:
    if not spec.triggers:
        return []
    db = base["db"]
    arts = [Artifact(key="outbox tables", kind="table", order=40, replace="refuse",
                     statements=_statements("outbox_tables.sql.j2", db=db),
                     drop=_statements("outbox_tables_drop.sql.j2", db=db),
                     probe=(("database", spec.mysql.database), ("table", "sqlambda_outbox")),
                     summary="outbox, dead letters and routes")]
    for t in spec.triggers:
        tdb, table, label = table_parts(t, spec.mysql.database)
        routes = spec.routes(t)
        for r in routes:
            arts.append(Artifact(
                key=f"outbox route {r.name}", kind="route", order=45,
                statements=_statements("route.sql.j2", db=db, r=r, table=label, region=spec.aws.region,
                                       endpoint_url=spec.aws.endpoint_url),
                drop=_statements("route_drop.sql.j2", db=db, route=r.name), requires=("outbox tables",),
                summary=f"route {r.name} -> {r.sink} {r.lambda_name}"))
        for event in t.events:
            sql_name = trigger_name(t.name, event)
            name = f"{backtick(tdb)}.{backtick(sql_name)}"
            ctx = {"trigger_name": name, "event": event, "table": f"{backtick(tdb)}.{backtick(table)}",
                   "table_label": label, "db": db, "routes": [r.name for r in routes],
                   "new_image": _image(t.columns, "NEW") if event != "delete" else "NULL",
                   "old_image": _image(t.columns, "OLD") if event != "insert" else "NULL"}
            arts.append(Artifact(
                key=f"trigger {tdb}.{sql_name}", kind="trigger", order=50, replace="recreate",
                statements=(*_statements("trigger_drop.sql.j2", **ctx), *_statements("trigger.sql.j2", **ctx)),
                drop=_statements("trigger_drop.sql.j2", **ctx), requires=("outbox tables",),
                probe=(("database", tdb), ("trigger", sql_name)),
                summary=f"{event} on {label} -> outbox ({', '.join(r.name for r in routes)})"))
    return arts
