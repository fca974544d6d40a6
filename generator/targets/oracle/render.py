"""Rendering for Oracle: a loaded spec -> artifacts (pure: templates and files, no database, no network).

Owns the Oracle spelling of everything the spec says: object names (upper-case, quoted, optionally
schema-qualified), the mapping of logical types to PL/SQL, JSON paths, the endpoint's
``host:port`` for the Java socket permission, and which template renders which object. Templates
live in ``sql/oracle/``; the Java sources come unchanged from ``oracle_java/`` in ``LOAD_ORDER``.
Must not connect to a database, decide plans, or build SQL by concatenating user input: every name
from the spec is validated by the spec model and quoted here, every value goes through ``literal``.

Objects, in install order:
  5  Java permissions (endpoint host:port; the environment variables and IMDS the credential source reads)
 10  Java sources (``CREATE OR REPLACE AND COMPILE JAVA SOURCE``), one per file of LOAD_ORDER
 20  SQLAMBDA_JAVA (call specs of sqlambda.LambdaInvoke), 25 SQLAMBDA_RT (configures the session)
 30  awslambda_fn, awslambda_fn_async and their CLOB variants, 35 their grants to generic_roles
 40  typed wrappers, 45 their grants to each function's roles
 60  outbox queue + dead-letter tables, 65 SQLAMBDA_OUTBOX_PKG (drain), 70 triggers, 80 scheduler job
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from sqlambda import resources
from sqlambda.artifacts import Artifact, check_unique
from sqlambda.delivery import envelope
from sqlambda.errors import RenderError
from sqlambda.spec.loader import spec_of
from sqlambda.spec.model import Function, Retry, Spec, Trigger
from sqlambda.templates import oracle_literal, split_statements
from sqlambda.templates import render as render_template

TARGET = "oracle"
IMDS_HOST_PORT = "169.254.169.254:80"
SYNC_LIMIT = resources.plpython_module("sqlambda_core").SYNC_LIMIT
ASYNC_LIMIT = resources.plpython_module("sqlambda_core").ASYNC_LIMIT
SCHEDULER_INTERVAL_SECONDS = 10
#: an outbox trigger writes its buffer to the queue once it holds this many events or characters:
#: a statement's memory is bounded by one buffer, whatever its size
OUTBOX_FLUSH_ROWS = 1000
OUTBOX_FLUSH_CHARS = 4_000_000
#: the most a trigger's source may be (19c PL/SQL Language Reference, "Trigger size": 32K)
TRIGGER_LIMIT = 32_767

# Fixed object names. Upper case because Oracle folds unquoted names to upper case: quoting the
# upper-case spelling lets SQL call `awslambda_fn(...)` without quotes.
JAVA_PKG = "SQLAMBDA_JAVA"
RT_PKG = "SQLAMBDA_RT"
QUEUE = "SQLAMBDA_OUTBOX"
DEAD = "SQLAMBDA_OUTBOX_DEAD"
OUTBOX_PKG = "SQLAMBDA_OUTBOX_PKG"
DRAIN_JOB = "SQLAMBDA_DRAIN"
REGISTRY = "SQLAMBDA_INSTALLED"
MODERNIZE = "SQLAMBDA_MODERNIZE"
MODERNIZE_CALLS = "SQLAMBDA_MODERNIZE_CALL"
MODERNIZE_PKG = "SQLAMBDA_MODERNIZE_PKG"
SEND = "SEND_AFTER_COMMIT"
#: send_after_commit's door procedure of one target: this prefix + the function's name
SEND_DOOR = "SQLAMBDA_SEND$"
REGISTRY_LOG = "SQLAMBDA_INSTALL_LOG"
GENERIC = ("AWSLAMBDA_FN", "AWSLAMBDA_FN_ASYNC", "AWSLAMBDA_PROC", "AWSLAMBDA_FN_CLOB", "AWSLAMBDA_FN_ASYNC_CLOB")
RESERVED = {JAVA_PKG, RT_PKG, QUEUE, DEAD, OUTBOX_PKG, DRAIN_JOB, REGISTRY, REGISTRY_LOG, MODERNIZE, MODERNIZE_CALLS,
            MODERNIZE_PKG, SEND, *GENERIC}


@dataclass(frozen=True)
class OracleType:
    """How one logical spec type travels through a wrapper."""

    param: str  # PL/SQL formal parameter type (unconstrained: PL/SQL forbids sizes on parameters)
    returns: str  # the wrapper's RETURN type
    json_returning: str  # JSON_VALUE ... RETURNING <this>
    value: str = "{ref}"  # the JSON_OBJECT value expression for an argument
    check: str | None = None  # a condition that makes an argument invalid
    check_message: str = ""


_INT_CHECK = "{ref} <> TRUNC({ref})"
#: Logical spec types -> Oracle. Booleans are NUMBER 1/0: PL/SQL BOOLEAN is not SQL-callable before 23ai.
TYPES: dict[str, OracleType] = {
    "text": OracleType("VARCHAR2", "VARCHAR2", "VARCHAR2(4000)"),
    "varchar": OracleType("VARCHAR2", "VARCHAR2", "VARCHAR2(4000)"),
    "uuid": OracleType("VARCHAR2", "VARCHAR2", "VARCHAR2(36)"),
    "smallint": OracleType("NUMBER", "NUMBER", "NUMBER(5)", check=_INT_CHECK, check_message="must be a whole number"),
    "integer": OracleType("NUMBER", "NUMBER", "NUMBER(10)", check=_INT_CHECK, check_message="must be a whole number"),
    "bigint": OracleType("NUMBER", "NUMBER", "NUMBER(19)", check=_INT_CHECK, check_message="must be a whole number"),
    "numeric": OracleType("NUMBER", "NUMBER", "NUMBER"),
    "double precision": OracleType("BINARY_DOUBLE", "BINARY_DOUBLE", "BINARY_DOUBLE"),
    "real": OracleType("BINARY_FLOAT", "BINARY_FLOAT", "BINARY_FLOAT"),
    "boolean": OracleType(
        "NUMBER", "NUMBER", "VARCHAR2(5)",
        value="CASE {ref} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END FORMAT JSON",
        check="{ref} NOT IN (0, 1)", check_message="is a boolean: pass 1, 0 or NULL",
    ),
    "date": OracleType("DATE", "DATE", "DATE"),
    "timestamp": OracleType("TIMESTAMP", "TIMESTAMP", "TIMESTAMP"),
    "timestamptz": OracleType("TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"),
    "jsonb": OracleType("CLOB", "CLOB", "CLOB", value="{ref} FORMAT JSON"),
    "json": OracleType("CLOB", "CLOB", "CLOB", value="{ref} FORMAT JSON"),
}


#: the releases the target renders for (oracle.version), oldest first
VERSIONS = ("19c", "21c", "23ai")


def types_for(version: str) -> dict[str, OracleType]:
    """TYPES as ``version`` can run them: JSON_VALUE ... RETURNING BINARY_DOUBLE / BINARY_FLOAT exist
    only from 23ai (19c's and 21c's JSON_VALUE return types end at NUMBER), so before 23ai the value is
    read as NUMBER and converted when it is returned as the wrapper's BINARY_* type."""
    if VERSIONS.index(version) >= VERSIONS.index("23ai"):
        return TYPES
    return {name: (t if t.json_returning not in ("BINARY_DOUBLE", "BINARY_FLOAT") else
                   OracleType(t.param, t.returns, "NUMBER", t.value, t.check, t.check_message))
            for name, t in TYPES.items()}


def version_of_release(text: str) -> str | None:
    """``19.21.0.0.0`` (PRODUCT_COMPONENT_VERSION) -> ``19c``; None for a release before 19c."""
    major = int(re.match(r"\s*(\d+)", text or "0").group(1))
    if major >= 23:
        return "23ai"
    return {19: "19c", 20: "19c", 21: "21c", 22: "21c"}.get(major)


# -- names -----------------------------------------------------------------------------------

def oracle_ident(name: str) -> str:
    """A spec identifier as Oracle stores an unquoted one (upper case), quoted."""
    return '"' + name.upper().replace('"', '""') + '"'


class Names:
    """Quoted, optionally schema-qualified object names for one spec."""

    def __init__(self, schema: str | None) -> None:
        self.schema = schema.upper() if schema else None

    def obj(self, name: str, *, upper: bool = True) -> str:
        bare = oracle_ident(name) if upper else '"' + name.replace('"', '""') + '"'
        return f"{oracle_ident(self.schema)}.{bare}" if self.schema else bare

    def label(self, name: str) -> str:
        """The name as Oracle's dictionary shows it, for registry keys and messages."""
        return f"{self.schema}.{name.upper()}" if self.schema else name.upper()

    @property
    def owner_sql(self) -> str:
        """A SQL expression for the owning schema (the session's schema when the spec names none)."""
        return f"'{self.schema}'" if self.schema else "SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')"

    def table(self, qualified: str) -> str:
        """A trigger's table. ``public.`` (PostgreSQL's default schema, not an Oracle schema) is dropped."""
        if "." in qualified:
            owner, table = qualified.split(".", 1)
            if owner.lower() == "public":
                return oracle_ident(table)
            return f"{oracle_ident(owner)}.{oracle_ident(table)}"
        return oracle_ident(qualified)


# -- helpers ---------------------------------------------------------------------------------

def endpoint_host_port(spec: Spec) -> str:
    """``host:port`` the Java client connects to: the spec's endpoint_url, else Lambda's regional endpoint
    (the same default oracle_java/LambdaInvoke.java uses)."""
    if spec.aws.endpoint_url:
        parts = urlsplit(spec.aws.endpoint_url)
        if not parts.hostname:
            raise RenderError(f"aws.endpoint_url {spec.aws.endpoint_url!r} has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise RenderError(f"aws.endpoint_url {spec.aws.endpoint_url!r}: {exc}") from None
        host = parts.hostname
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"lambda.{spec.aws.region}.amazonaws.com:443"


def json_path(path: str | None) -> str:
    """Spec path ``items[0].id`` -> Oracle SQL/JSON path ``$."items"[0]."id"`` (quoted steps: any key works)."""
    if not path:
        return "$"
    out = "$"
    for m in re.finditer(r"([A-Za-z0-9_]+)|\[(\d+)\]", path):
        out += f'."{m.group(1)}"' if m.group(1) else f"[{m.group(2)}]"
    return out


def lambda_name(fn_or_lambda: str, qualifier: str | None) -> str:
    return f"{fn_or_lambda}:{qualifier}" if qualifier else fn_or_lambda


def envelope_bytes(table_name: str, trigger: str) -> int:
    """Bytes of a batch's envelope without its records, for the byte limit (longest operation name)."""
    source, fields, _ = envelope.fields()
    values = {"source": source, "trigger": trigger, "table": table_name, "operation": "delete", "records": []}
    env = {f: values[f] for f in fields}
    return len(json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode()) + 16


def java_sources() -> list[tuple[str, str]]:
    """(class name, source text) in LOAD_ORDER; checked for lines SQL*Plus would interpret."""
    folder = resources.folder("oracle_java")
    order_file = folder / "LOAD_ORDER"
    if not order_file.is_file():
        raise RenderError(f"{order_file} is missing: the Java sources cannot be loaded in order")
    out = []
    for line in order_file.read_text().splitlines():
        fname = line.strip()
        if not fname or fname.startswith("#"):
            continue
        path = folder / fname
        if not path.is_file():
            raise RenderError(f"oracle_java/LOAD_ORDER names {fname}, which does not exist")
        text = path.read_text(encoding="utf-8").rstrip("\n")
        for n, src_line in enumerate(text.splitlines(), 1):
            # SQL*Plus ends a block at a line holding only '/' or '.', and runs lines starting with
            # '#' (SQLPREFIX) as its own commands even inside a block.
            if src_line.strip() in ("/", ".") or src_line.startswith("#"):
                raise RenderError(f"oracle_java/{fname}:{n}: a line SQL*Plus would interpret ({src_line.strip()!r})")
        out.append((fname.removesuffix(".java"), text))
    return out


def _statements(template: str, **ctx: Any) -> tuple[str, ...]:
    return split_statements(render_template(TARGET, template, **ctx))


# -- the render ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rendered:
    """What ``render`` returns besides artifacts: facts the script writer and installer need."""

    artifacts: list[Artifact]
    spec_name: str
    spec_checksum: str
    schema: str | None


def render(loaded: Any) -> Rendered:
    spec, spec_name, spec_checksum = spec_of(loaded)
    names = Names(spec.oracle.schema_)
    _check_names(spec)
    arts: list[Artifact] = []
    arts += _permissions(spec, names)
    arts += _java(names)
    arts += _runtime(spec, names)
    arts += _generic(spec, names)
    for f in spec.functions:
        arts += _wrapper(f, names, types_for(spec.oracle.version))
    arts += _triggers(spec, names)
    arts += _modernize(spec, names)
    # every artifact says which release it was rendered for: install checks the database against it
    arts = [replace(a, probe=(*a.probe, ("oracle_version", spec.oracle.version))) for a in arts]
    return Rendered(check_unique(arts), spec_name, spec_checksum, names.schema)


def registry_statements(schema: str | None) -> tuple[str, ...]:
    """The registry DDL (two tables) the installer runs, each only when its table is missing."""
    n = Names(schema)
    return _statements("registry.sql.j2", installed=n.obj(REGISTRY), log=n.obj(REGISTRY_LOG),
                       installed_pk=oracle_ident(REGISTRY + "_PK"), log_pk=oracle_ident(REGISTRY_LOG + "_PK"))


def _check_names(spec: Spec) -> None:
    problems = [f"function {f.name!r}" for f in spec.functions if f.name.upper() in RESERVED]
    problems += [f"trigger {t.name!r}" for t in spec.triggers if t.name.upper() in RESERVED]
    if problems:
        raise RenderError(
            "these spec names clash with objects sqlambda creates on Oracle: " + ", ".join(problems)
            + f" (reserved: {', '.join(sorted(RESERVED))})"
        )
    for t in spec.triggers:
        if t.sink is not None:
            # Oracle's outbox is drained inside the database (SQLAMBDA_OUTBOX through the Java
            # runtime), which calls Lambda only; the record sinks live in sqlambda drain
            raise RenderError(
                f"trigger {t.name!r}: sinks (here {t.sink!r}) are PostgreSQL-only for now: Oracle's outbox is "
                f"drained inside the database and calls Lambda only; stream to a Lambda that forwards, or "
                f"remove 'sink' for the Oracle render")
        if not t.columns:
            raise RenderError(
                f"trigger {t.name!r}: the Oracle target needs an explicit 'columns' list, because a PL/SQL "
                "trigger can only read :NEW/:OLD values by name (add e.g. columns: [id, status])"
            )


#: environment variables the Java client reads, per need (CredentialChain.java, LambdaInvoke.java)
ENV_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ENV_IMDS = ("AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT")
ENV_ENDPOINT = ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL")


def java_permissions(spec: Spec) -> list[tuple[str, str, str]]:
    """(type, name, action) of every Java permission the schema needs for this spec, and nothing more:
    the endpoint's socket; the environment variables the credential source reads (and the endpoint
    ones when the spec names no endpoint, so the server's AWS_ENDPOINT_URL applies); IMDS's socket
    for the default and imds sources. Oracle's JVM denies everything else."""
    source = spec.oracle.credentials
    out = [("java.net.SocketPermission", endpoint_host_port(spec), "connect,resolve")]
    getenv = list(ENV_ENDPOINT) if not spec.aws.endpoint_url else []
    if source in ("default", "environment"):
        getenv += ENV_CREDENTIALS
    if source in ("default", "imds"):
        getenv += ENV_IMDS
        if IMDS_HOST_PORT != out[0][1]:
            out.append(("java.net.SocketPermission", IMDS_HOST_PORT, "connect,resolve"))
    out += [("java.lang.RuntimePermission", f"getenv.{name}", "") for name in getenv]
    return out


def _permissions(spec: Spec, names: Names) -> list[Artifact]:
    arts = []
    for type_name, perm_name, action in java_permissions(spec):
        ctx = dict(grantee_sql=names.owner_sql, type_name=type_name, perm_name=perm_name, action=action)
        short = type_name.rsplit(".", 1)[-1]
        arts.append(Artifact(
            key=f"java permission {short} {perm_name}",
            kind="java_permission",
            statements=_statements("java_permission.sql.j2", **ctx),
            drop=_statements("java_permission_revoke.sql.j2", **ctx),
            order=5,
            probe=(("permission", type_name), ("name", perm_name)),
            summary=f"Java {short} {action + ' on ' if action else ''}{perm_name}",
        ))
    return arts


def _java(names: Names) -> list[Artifact]:
    arts = []
    for i, (cls, text) in enumerate(java_sources()):
        java_name = f"sqlambda/{cls}"
        obj = names.obj(java_name, upper=False)
        arts.append(Artifact(
            key=f"java source {java_name}",
            kind="java_source",
            statements=_statements("java_source.sql.j2", name=obj, source=text),
            drop=_statements("drop.sql.j2", kind="JAVA SOURCE", object=obj, purge=False),
            order=10 + i,  # LOAD_ORDER: each class compiles with only the ones before it present
            probe=(("type", "JAVA SOURCE"), ("name", java_name)),
            summary=f"Java source {java_name}",
        ))
    return arts


def _package(key_name: str, names: Names, order: int, statements: tuple[str, ...], summary: str) -> Artifact:
    obj = names.obj(key_name)
    return Artifact(
        key=f"package {names.label(key_name)}",
        kind="package",
        statements=statements,
        drop=_statements("drop.sql.j2", kind="PACKAGE", object=obj, purge=False),
        order=order,
        probe=(("type", "PACKAGE"), ("name", key_name)),
        summary=summary,
    )


def _runtime(spec: Spec, names: Names) -> list[Artifact]:
    java, rt = names.obj(JAVA_PKG), names.obj(RT_PKG)
    provider = spec.oracle.credentials_provider if spec.oracle.credentials == "provider" else None
    rt_ctx = dict(
        rt=rt, java=java, region=spec.aws.region, credentials_source=spec.oracle.credentials,
        endpoint_sql=oracle_literal(spec.aws.endpoint_url) if spec.aws.endpoint_url else "NULL",
        connect_timeout_ms=spec.aws.connect_timeout_ms, request_timeout_ms=spec.aws.request_timeout_ms,
        max_attempts=spec.aws.max_attempts, provider_class=provider,
        sync_limit=SYNC_LIMIT, async_limit=ASYNC_LIMIT,
    )
    return [
        _package(JAVA_PKG, names, 20, _statements("java_callspecs.sql.j2", pkg=java, rt=rt),
                 "call specs of sqlambda.LambdaInvoke"),
        _package(RT_PKG, names, 25, _statements("runtime.sql.j2", **rt_ctx),
                 f"runtime: configures the Java client for {spec.aws.region}"),
    ]


def _function_artifact(name: str, names: Names, order: int, statements: tuple[str, ...], summary: str,
                       kind: str = "FUNCTION") -> Artifact:
    obj = names.obj(name)
    return Artifact(
        key=f"{kind.lower()} {names.label(name)}",
        kind=kind.lower(),
        statements=statements,
        drop=_statements("drop.sql.j2", kind=kind, object=obj, purge=False),
        order=order,
        probe=(("type", kind), ("name", name.upper())),
        summary=summary,
    )


def grantee_sql(role: str) -> str:
    """A grantee: the role quoted as Oracle stores it, or PUBLIC when the spec names it in words."""
    return "PUBLIC" if role.upper() == "PUBLIC" else oracle_ident(role)


def _grant(name: str, role: str, names: Names, order: int) -> Artifact:
    obj, grantee = names.obj(name), grantee_sql(role)
    return Artifact(
        key=f"grant execute on {names.label(name)} to {role.upper()}",
        kind="grant",
        statements=_statements("grant.sql.j2", object=obj, grantee=grantee),
        drop=_statements("revoke.sql.j2", object=obj, grantee=grantee),
        order=order,
        probe=(("grant", name.upper()), ("grantee", role.upper())),
        summary=f"EXECUTE on {name.upper()} to {role.upper()}",
    )


#: the generic functions (GENERIC), as the original awslabs integration named and shaped them:
#: name, mode, argument type, return type, runtime function
GENERIC_SHAPES = (
    ("AWSLAMBDA_FN", "sync", "VARCHAR2", "VARCHAR2", "invoke_sync_original"),
    ("AWSLAMBDA_FN_ASYNC", "async", "VARCHAR2", "VARCHAR2", "invoke_async"),
    ("AWSLAMBDA_PROC", "proc", "VARCHAR2", None, "invoke_async"),
    ("AWSLAMBDA_FN_CLOB", "sync", "CLOB", "CLOB", "invoke_sync_clob_original"),
    ("AWSLAMBDA_FN_ASYNC_CLOB", "async", "CLOB", "VARCHAR2", "invoke_async_clob"),
)


def _generic(spec: Spec, names: Names) -> list[Artifact]:
    rt = names.obj(RT_PKG)
    arts = []
    for name, mode, arg_type, ret, call in GENERIC_SHAPES:
        st = _statements("generic.sql.j2", fn=names.obj(name), arg_type=arg_type, return_type=ret,
                         mode=mode, rt=rt, call=call)
        kind = "PROCEDURE" if mode == "proc" else "FUNCTION"
        arts.append(_function_artifact(name, names, 30, st, f"generic {mode} invoke ({arg_type})", kind=kind))
        arts += [_grant(name, r, names, 35) for r in spec.oracle.generic_roles]
        arts += _synonyms(spec, name, names)
    return arts


def _synonyms(spec: Spec, name: str, names: Names) -> list[Artifact]:
    """oracle.synonyms: a PUBLIC SYNONYM (as the original made), or private ones in listed schemas."""
    where = spec.oracle.synonyms
    if where == "none":
        return []
    target = names.obj(name)
    out = []
    for schema in (["PUBLIC"] if where == "public" else [w.upper() for w in where]):
        if schema == "PUBLIC":
            create = f"CREATE OR REPLACE PUBLIC SYNONYM {oracle_ident(name)} FOR {target}"
            drop = f"DROP PUBLIC SYNONYM {oracle_ident(name)}"
        else:
            create = f"CREATE OR REPLACE SYNONYM {oracle_ident(schema)}.{oracle_ident(name)} FOR {target}"
            drop = f"DROP SYNONYM {oracle_ident(schema)}.{oracle_ident(name)}"
        out.append(Artifact(key=f"synonym {schema}.{name.upper()}", kind="synonym", statements=(create,),
                            drop=(drop,), order=36, probe=(("synonym", name.upper()), ("owner", schema)),
                            summary=f"{'PUBLIC' if schema == 'PUBLIC' else 'private'} synonym {schema}.{name.upper()} "
                                    f"for {names.label(name)}"))
    return out


def _oracle_default(arg) -> str:
    """An argument's DEFAULT: NULL, or a literal (booleans travel as 1/0, like the arguments)."""
    v = arg.default
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    return oracle_literal(v)


def _wrapper(f: Function, names: Names, types: dict[str, "OracleType"]) -> list[Artifact]:
    fn_name = f.name.upper()
    args = []
    for arg, spec_arg in f.args.items():
        t = types[spec_arg.type]
        ref = f"{oracle_ident(fn_name)}.{oracle_ident(arg)}"
        args.append(dict(
            key=f.payload_key(arg), param=oracle_ident(arg), param_type=t.param, value=t.value.format(ref=ref), ref=ref,
            default=_oracle_default(spec_arg) if spec_arg.has_default else None,
            check=t.check.format(ref=ref) if t.check else None,
            check_message=f"sqlambda: {f.name}: argument {arg} {t.check_message}",
        ))
    columns = []
    if f.mode == "async":
        return_type, result_var, extract = "CLOB", "CLOB", "async"
    elif f.returns.type == "table":
        # a cursor over JSON_TABLE: one row per element of the array at returns.path
        return_type, result_var, extract = "SYS_REFCURSOR", "SYS_REFCURSOR", "table"
        columns = [dict(name=oracle_ident(c), type=("CLOB FORMAT JSON" if col.type in ("jsonb", "json")
                                                    else types[col.type].json_returning),
                        path=json_path(col.path or c)) for c, col in f.returns.columns.items()]
    elif f.returns.type == "jsonb":
        extract = "query" if f.returns.path else "whole"
        return_type, result_var = "CLOB", ("CLOB" if f.returns.path else None)
    else:
        t = types[f.returns.type]
        return_type, result_var = t.returns, t.json_returning
        extract = "boolean" if f.returns.type == "boolean" else "value"
    ctx = dict(
        fn=names.obj(fn_name), args=args, return_type=return_type, result_var_type=result_var,
        mode=f.mode, rt=names.obj(RT_PKG), lambda_name=lambda_name(f.lambda_, f.qualifier),
        extract=extract, json_path=json_path(f.returns.path), columns=columns,
        rows_path=json_path(f.returns.path) + "[*]",
        json_returning=types[f.returns.type].json_returning if f.returns.type not in ("jsonb", "table") else "CLOB",
        boolean_message=f"sqlambda: {f.name}: expected a JSON boolean at {f.returns.path}, got ",
    )
    summary = f"{f.mode} wrapper for Lambda {ctx['lambda_name']}"
    arts = [_function_artifact(fn_name, names, 40, _statements("wrapper.sql.j2", **ctx), summary)]
    arts += [_grant(fn_name, r, names, 45) for r in f.roles]
    return arts


def _trigger_target(spec: Spec, t: Trigger) -> str:
    route = spec.route(t)
    return lambda_name(route.lambda_name, route.qualifier)


def _triggers(spec: Spec, names: Names) -> list[Artifact]:
    if not spec.triggers and not spec.send_after_commit:
        return []
    arts: list[Artifact] = []
    queue, dead, pkg = names.obj(QUEUE), names.obj(DEAD), names.obj(OUTBOX_PKG)
    rt = names.obj(RT_PKG)
    outbox = [t for t in spec.triggers if t.delivery == "outbox"]
    sends = spec.functions if spec.send_after_commit else []
    if outbox or sends:
        arts.append(Artifact(
            key=f"table {names.label(QUEUE)}", kind="table",
            statements=_statements("outbox_tables.sql.j2", queue=queue, queue_pk=oracle_ident(QUEUE + "_PK"),
                                   queue_idx=names.obj(QUEUE + "_DUE")),
            drop=_statements("drop_guarded_table.sql.j2", table=queue),
            order=60, replace="refuse", probe=(("type", "TABLE"), ("name", QUEUE)),
            summary="outbox queue (one row per event)",
        ))
        arts.append(Artifact(
            key=f"table {names.label(DEAD)}", kind="table",
            statements=_statements("outbox_dead.sql.j2", dead=dead, dead_pk=oracle_ident(DEAD + "_PK")),
            drop=_statements("drop_guarded_table.sql.j2", table=dead),
            order=61, replace="refuse", probe=(("type", "TABLE"), ("name", DEAD)),
            summary="outbox dead-letter table",
        ))
        drain_triggers = [
            dict(name=t.name, table_name=t.table, lambda_name=_trigger_target(spec, t), mode=spec.route(t).mode,
                 max_rows=t.batch.max_rows, max_bytes=t.batch.max_bytes,
                 envelope_bytes=envelope_bytes(t.table, t.name), max_attempts=t.retry.max_attempts,
                 base_delay_ms=t.retry.base_delay_ms, max_delay_ms=t.retry.max_delay_ms, raw=False)
            for t in outbox
        ]
        # send_after_commit rows: the payload as it is, one call a row, in the function's mode
        drain_triggers += [
            dict(name=f"send:{f.name}", table_name="send_after_commit", lambda_name=lambda_name(f.lambda_, f.qualifier),
                 mode=f.mode, max_rows=1, max_bytes=ASYNC_LIMIT if f.mode == "async" else SYNC_LIMIT, envelope_bytes=0,
                 max_attempts=Retry().max_attempts, base_delay_ms=Retry().base_delay_ms, max_delay_ms=Retry().max_delay_ms,
                 raw=True)
            for f in sends
        ]
        arts.append(_package(OUTBOX_PKG, names, 65, _statements(
            "outbox_package.sql.j2", pkg=pkg, queue=queue, dead=dead, rt=rt, triggers=drain_triggers,
            **envelope.oracle_context()),
            "outbox drainer (FOR UPDATE SKIP LOCKED, retries, dead-letter)"))
        if spec.oracle.scheduler_drain:
            job_ctx = dict(owner_sql=names.owner_sql, job_bare=DRAIN_JOB,
                           job_name=f"{names.schema}.{DRAIN_JOB}" if names.schema else DRAIN_JOB,
                           pkg=pkg, interval_seconds=SCHEDULER_INTERVAL_SECONDS)
            arts.append(Artifact(
                key=f"scheduler job {names.label(DRAIN_JOB)}", kind="scheduler_job",
                statements=_statements("scheduler_job.sql.j2", **job_ctx),
                drop=_statements("scheduler_job_drop.sql.j2", **job_ctx),
                order=80, replace="statements", probe=(("type", "JOB"), ("name", DRAIN_JOB)),
                summary=f"DBMS_SCHEDULER job draining the outbox every {SCHEDULER_INTERVAL_SECONDS}s",
            ))
    arts += _send_after_commit(spec, names, sends)
    for t in spec.triggers:
        if "concurrency" in t.batch.model_fields_set and t.batch.concurrency > 1:
            # PL/SQL has no way to keep several UTL_HTTP/Java calls open at once from one session
            raise RenderError(
                f"triggers.{t.name}.batch.concurrency: {t.batch.concurrency} batches in flight at once is a "
                f"PostgreSQL feature; an Oracle trigger sends its batches one after another (remove the key "
                f"or set it to 1)")
        trig = names.obj(t.name)
        cols = [dict(key=c, col=oracle_ident(c)) for c in t.columns or []]
        ctx = dict(
            trigger=trig, name=t.name, table=names.table(t.table), table_name=t.table,
            events_sql=" OR ".join(e.upper() for e in t.events), columns=cols, rt=rt,
            lambda_name=_trigger_target(spec, t), mode=spec.route(t).mode, queue=queue, **envelope.oracle_context(),
            max_rows=t.batch.max_rows, max_bytes=t.batch.max_bytes,
            envelope_bytes=envelope_bytes(t.table, t.name),
            flush_rows=OUTBOX_FLUSH_ROWS, flush_chars=OUTBOX_FLUSH_CHARS,
        )
        template = "trigger_outbox.sql.j2" if t.delivery == "outbox" else "trigger_immediate.sql.j2"
        statements = _statements(template, **ctx)
        size = max(len(st.encode("utf-8")) for st in statements)
        if size > TRIGGER_LIMIT:
            raise RenderError(
                f"triggers.{t.name}: the rendered trigger is {size:,} bytes, over Oracle's limit of 32K for a "
                f"trigger's source ({TRIGGER_LIMIT:,} bytes); list fewer columns in triggers.{t.name}.columns "
                f"(it lists {len(t.columns or [])}), or split them over two triggers on {t.table}")
        arts.append(Artifact(
            key=f"trigger {names.label(t.name)}", kind="trigger",
            statements=statements,
            drop=_statements("drop.sql.j2", kind="TRIGGER", object=trig, purge=False),
            order=70, replace="statements", probe=(("type", "TRIGGER"), ("name", t.name.upper())),
            summary=f"{t.delivery} compound trigger on {t.table} ({', '.join(t.events)})",
        ))
    return arts


def _send_after_commit(spec: Spec, names: Names, sends: list) -> list[Artifact]:
    """send_after_commit on Oracle: one door procedure per spec function (granted to its roles) and
    the dispatcher (granted to every role of a door). Sinks are PostgreSQL-only, so only functions."""
    if not sends:
        return []
    queue = names.obj(QUEUE)
    arts: list[Artifact] = []
    targets = []
    for f in sends:
        door = SEND_DOOR + f.name.upper()
        targets.append(dict(name=f.name, door=oracle_ident(door)))
        arts.append(_function_artifact(door, names, 66, _statements(
            "send_target.sql.j2", proc=names.obj(door), queue=queue, route=f"send:{f.name}", target_name=f.name),
            f"send_after_commit door to {f.name}", kind="PROCEDURE"))
        arts += [_grant(door, r, names, 67) for r in f.roles]
    arts.append(_function_artifact(SEND, names, 68, _statements("send_after_commit.sql.j2", proc=names.obj(SEND),
                                                                targets=targets),
                                   f"send_after_commit(target, payload): {len(targets)} targets, sent after commit",
                                   kind="PROCEDURE"))
    arts += [_grant(SEND, r, names, 69) for r in sorted({r for f in sends for r in f.roles})]
    return arts


# -- modernize ---------------------------------------------------------------------------------

#: PostgreSQL spellings of argument types, as Oracle's USER_ARGUMENTS.DATA_TYPE shows the matching
#: Oracle type, so one spec names a function on both targets
PG_TO_ORACLE_ARG = {
    "text": "VARCHAR2", "varchar": "VARCHAR2", "character varying": "VARCHAR2", "integer": "NUMBER", "int": "NUMBER",
    "bigint": "NUMBER", "smallint": "NUMBER", "numeric": "NUMBER", "double precision": "BINARY_DOUBLE",
    "real": "BINARY_FLOAT", "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE",
}
#: what a router may be put in on Oracle: shadow compares in the drainer, which is PostgreSQL's
ORACLE_STAGES = ("record", "canary", "cutover", "rollback")


def modernize_target(m: Any, names: Names, where: str) -> tuple[str, list[str]]:
    """(function name as Oracle stores it, argument types) of a modernize entry's ``function``."""
    head, _, rest = m.function.partition("(")
    owner, _, fname = head.strip().rpartition(".")
    if owner and owner.lower() != "public" and owner.upper() != names.schema:
        raise RenderError(f"{where}.function: {m.function!r} is in schema {owner.upper()}, but sqlambda installs into "
                          f"{names.schema or 'the connecting user'}; modernize takes over functions of that schema only")
    types = [" ".join(t.split()).lower() for t in rest.rsplit(")", 1)[0].split(",") if t.strip()]
    return fname.upper(), [PG_TO_ORACLE_ARG.get(t, t.upper()) for t in types]


def q_literal(text: str) -> str:
    """A multi-line PL/SQL literal, ``q'~...~'``: the router's text as it reads (an ordinary literal
    would put it on one line of thousands of characters, past what SQL*Plus reads)."""
    for delim in ("~", "!", "^", "|", "#"):
        if f"{delim}'" not in text:
            return f"q'{delim}{text}{delim}'"
    raise RenderError("the router text holds every q-quote delimiter; this is a bug in sqlambda")


def _modernize(spec: Spec, names: Names) -> list[Artifact]:
    if not spec.modernize:
        return []
    registry, calls, pkg = names.obj(MODERNIZE), names.obj(MODERNIZE_CALLS), names.obj(MODERNIZE_PKG)
    arts = [
        Artifact(
            key=f"table {names.label(MODERNIZE)}", kind="table",
            statements=_statements("modernize_tables.sql.j2", registry=registry, calls=calls,
                                   registry_pk=oracle_ident(MODERNIZE + "_PK"), calls_pk=oracle_ident(MODERNIZE_CALLS + "_PK"),
                                   pkg=pkg),
            drop=_statements("modernize_drop_tables.sql.j2", registry=registry, calls=calls),
            order=62, replace="refuse", probe=(("type", "TABLE"), ("name", MODERNIZE)),
            summary="modernize registry (the originals' source) and sampled calls",
        ),
        _package(MODERNIZE_PKG, names, 63, _statements("modernize_package.sql.j2", pkg=pkg, registry=registry, calls=calls,
                                                       rt=names.obj(RT_PKG)),
                 "modernize: take functions over with routers, give them back"),
    ]
    for i, m in enumerate(spec.modernize):
        where = f"modernize[{i}]"
        if m.stage not in ORACLE_STAGES:
            raise RenderError(f"{where}.stage: {m.stage} is not available on Oracle (the shadow comparisons run in "
                              f"the PostgreSQL drainer); use {', '.join(ORACLE_STAGES)}")
        fname, types = modernize_target(m, names, where)
        name = m.short.upper()
        router = "\n".join(_statements("modernize_router.sql.j2", fn=names.obj(fname), orig=names.obj(fname + "$ORIG"),
                                       pkg=pkg, name=name, stage=m.stage, fraction=repr(float(m.canary)),
                                       sample=repr(float(m.record.sample)), max_calls=m.record.max_calls,
                                       path="$.v" + json_path(m.path)[1:]))
        arts.append(Artifact(
            key=f"modernize {name}", kind="modernize",
            statements=_statements("modernize_entry.sql.j2", pkg=pkg, name=name, signature=m.function, function=fname,
                                   arg_types=",".join(types), stage=m.stage, lambda_name=lambda_name(m.lambda_, m.qualifier),
                                   payload=json.dumps({k.upper(): v for k, v in m.payload.items()}),
                                   router=q_literal(router)),
            drop=_statements("modernize_release.sql.j2", pkg=pkg, name=name),
            order=90, replace="statements", probe=(("type", "FUNCTION"), ("name", fname)),
            summary=f"{m.function} -> {m.lambda_}: stage {m.stage}",
        ))
    return arts
