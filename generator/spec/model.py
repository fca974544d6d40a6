"""The validated model of a sqlambda spec (the YAML a DBA writes).

This module owns the *shape* of the spec and the rules that need no file positions: identifier
syntax, allowed types, cross-references between functions and triggers. It must not read files,
render SQL or talk to a database. ``sqlambda.spec.loader`` turns YAML into these models and maps
every validation error back to ``file:line:col``.

Example::

    project: shop
    aws: {region: us-east-1}
    postgres: {schema: sqlambda, generic_schema: public, generic_roles: [app_admin]}
    functions:
      - name: order_status
        lambda: echo
        mode: sync
        args: {order_id: bigint, note: text}
        returns: {type: text, path: Status}
        roles: [app_reader]
    triggers:
      - name: orders_out
        table: public.orders
        events: [insert, update]
        function: order_status
        delivery: outbox
        batch: {max_rows: 500, max_bytes: 262144}
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationInfo, field_validator, model_validator

from sqlambda.resources import plpython_module

# An unquoted SQL identifier we accept from a spec: letters, digits, underscore, starting with a
# letter or underscore, at most 63 bytes (PostgreSQL's NAMEDATALEN-1; Oracle 12.2+ allows 128 but
# we keep one rule so a spec is portable). Anything else is rejected rather than quoted, so a
# spec can never smuggle SQL through a name.
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
Ident = Annotated[str, Field(pattern=IDENT_RE.pattern, description="SQL identifier: [A-Za-z_][A-Za-z0-9_]*, max 63 chars")]
QualifiedName = Annotated[
    str,
    Field(
        pattern=r"^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="table name, optionally schema-qualified: schema.table",
    ),
]
# Lambda function name or ARN (optionally with :qualifier), per the Invoke API's FunctionName.
LAMBDA_RE = r"^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[a-zA-Z0-9-_]{1,64}(:(\$LATEST|[a-zA-Z0-9-_]+))?$"
LambdaRef = Annotated[str, Field(pattern=LAMBDA_RE, description="Lambda function name or ARN")]
Qualifier = Annotated[str, Field(pattern=r"^(\$LATEST|[a-zA-Z0-9-_]{1,128})$", description="version or alias")]

#: Logical argument / return types, with their PostgreSQL and Oracle spellings. The names are
#: PostgreSQL's because most users write PostgreSQL; targets map them.
ArgType = Literal[
    "text", "varchar", "integer", "bigint", "smallint", "numeric", "double precision", "real",
    "boolean", "date", "timestamp", "timestamptz", "jsonb", "json", "uuid",
]
ScalarReturn = Literal[
    "text", "varchar", "integer", "bigint", "smallint", "numeric", "double precision", "real",
    "boolean", "date", "timestamp", "timestamptz", "uuid",
]

_core = plpython_module("sqlambda_core")
_SYNC_LIMIT = _core.SYNC_LIMIT  # Lambda's payload quotas, defined once in plpython/sqlambda_core.py
_ASYNC_LIMIT = _core.ASYNC_LIMIT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: control characters: a line break in a spec string that reaches a script would start a new line of
#: it (SQL*Plus ends a unit at a line holding "/"); other controls are invisible in review
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
#: the same, but free text (descriptions, default values) may hold tabs and line breaks: they are
#: escaped when rendered, so they round-trip; NUL and the other controls never can
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u0085\u2028\u2029]")


def _no_control(value, pattern=_CONTROL, what="control characters"):
    if isinstance(value, str):
        m = pattern.search(value)
        if m:
            raise ValueError(f"must not contain {what} (found U+{ord(m.group()):04X})")
    return value


class AwsSettings(_Strict):
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$", description="AWS region")
    endpoint_url: Optional[str] = Field(None, description="override endpoint (local stack, VPC endpoint): http(s)://host[:port]")
    account_id: str = Field("123456789012", pattern=r"^\d{12}$", description="account used to build ARNs for plain function names")
    connect_timeout_ms: StrictInt = Field(2000, ge=100, le=60000)
    request_timeout_ms: StrictInt = Field(30000, ge=100, le=900000)
    max_attempts: StrictInt = Field(3, ge=1, le=10)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v):
        # the rule the runtime applies to a DBA's ALTER DATABASE value too: written once, in plpython/
        problem = None if v is None else _core.endpoint_problem(v)
        if problem:
            raise ValueError(f"not an endpoint ({problem}); expected http(s)://host[:port]")
        return v


class PostgresSettings(_Strict):
    schema_: Ident = Field("sqlambda", alias="schema", description="schema for registry, invoke(), queue tables")
    generic_schema: Ident = Field("public", description="schema of awslambda_fn / awslambda_fn_async (on the default search_path)")
    generic_roles: list[Ident] = Field(default_factory=list, description="roles allowed to call the generic functions")
    rds_compat: StrictBool = Field(False, description="also install aws_commons / aws_lambda like the RDS extension")
    owner: Ident = Field("sqlambda_owner", description="the NOLOGIN, non-superuser role that owns every object "
                         "sqlambda installs (created when missing)")


class OracleSettings(_Strict):
    schema_: Optional[Ident] = Field(None, alias="schema", description="owning schema (default: the connecting user)")
    generic_roles: list[Ident] = Field(default_factory=list, description="roles granted EXECUTE on the generic "
                                       "functions; PUBLIC only when written here (the original granted it to everyone)")
    credentials: Literal["default", "environment", "imds", "provider"] = Field(
        "default", description="where the Java class resolves AWS credentials: default (the server's environment, "
                               "then EC2 instance metadata, like the AWS SDKs), environment, imds, or provider; "
                               "the installer grants exactly the Java permissions the source needs")
    scheduler_drain: StrictBool = Field(False, description="create a DBMS_SCHEDULER job that drains the outbox")
    version: Literal["19c", "21c", "23ai"] = Field(
        "19c", description="the oldest Oracle release the rendered SQL must run on; install refuses an older database")
    synonyms: Union[Literal["none", "public"], list[Ident]] = Field(
        "none", description="synonyms for the generic functions and awslambda_proc: none; public (PUBLIC SYNONYMs, "
                            "as the original integration made); or a list of schemas that each get private synonyms")
    credentials_provider: Optional[str] = Field(
        None,
        pattern=r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$",
        description="with credentials: provider, the Java class (implements sqlambda.AwsCredentials.Provider) to use",
    )

    @model_validator(mode="after")
    def _provider_class(self) -> "OracleSettings":
        if self.credentials == "provider" and not self.credentials_provider:
            raise ValueError("credentials: provider needs 'credentials_provider', the Java class that supplies credentials")
        return self


#: a MySQL / MariaDB account ('user'@'host') or role name
MysqlGrantee = Annotated[str, Field(pattern=r"^([A-Za-z_][A-Za-z0-9_$]{0,79}|'[^'\\\x00-\x1f]{1,80}'@'[^'\\\x00-\x1f]{1,255}')$")]


class MysqlSettings(_Strict):
    database: Ident = Field("sqlambda", description="database (schema) holding the registry, the stored functions "
                            "(awslambda_fn, lambda_sync ...), the typed wrappers and the outbox")
    generic_roles: list[MysqlGrantee] = Field(
        default_factory=list, description="roles, or accounts written 'user'@'host', granted EXECUTE on the generic "
                                          "functions (nobody else can call Lambda through them)")
    definer: Optional[MysqlGrantee] = Field(None, description="the locked account that owns the SQL SECURITY DEFINER "
                                            "functions (default 'sqlambda_<database>'@'localhost', one per database; "
                                            "created when missing; it can read the plugin key and run these functions only)")


JsonPath = Annotated[str, Field(
    pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+|\[\d+\])*$",
    description="dotted path into the JSON result, e.g. Status or items[0].id",
)]


def _type_shorthand(v):
    # `name: text` is shorthand for `name: {type: text}`
    return {"type": v} if isinstance(v, str) else v


class Arg(_Strict):
    """One argument of a typed wrapper: its SQL type, the payload key it fills, an optional default."""

    type: ArgType
    key: Optional[str] = Field(None, min_length=1, max_length=256,
                               description="key in the JSON payload (default: the argument's name)")
    default: Union[None, bool, int, float, str] = Field(
        None, description="makes the argument optional in SQL (DEFAULT); null for DEFAULT NULL")

    @field_validator("key")
    @classmethod
    def _key_control(cls, v):
        return _no_control(v)

    @field_validator("default")
    @classmethod
    def _default_control(cls, v):
        return _no_control(v, _TEXT_CONTROL, "NUL or control characters other than tab and line breaks")

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


class Column(_Strict):
    """One column of a set-returning wrapper: its type and where its value sits in each element."""

    type: Literal["jsonb"] | ScalarReturn
    path: Optional[JsonPath] = Field(None, description="path inside each element (default: the column's name)")


class Returns(_Strict):
    type: Literal["jsonb", "table"] | ScalarReturn = "jsonb"
    path: Optional[JsonPath] = None
    columns: Optional[dict[Ident, Column]] = Field(
        None, description="with type: table, the columns of each row (one row per element of the array at path)")

    @field_validator("columns", mode="before")
    @classmethod
    def _column_shorthand(cls, v):
        return {k: _type_shorthand(c) for k, c in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _path_for_scalars(self) -> "Returns":
        if self.type == "table":
            if not self.columns:
                raise ValueError("type: table needs 'columns' (column name -> type, or {type, path})")
        elif self.columns is not None:
            raise ValueError("'columns' goes with type: table only")
        elif self.type != "jsonb" and self.path is None:
            raise ValueError("a scalar return type needs a 'path' into the Lambda's JSON result")
        return self


class Function(_Strict):
    name: Ident = Field(description="SQL name of the typed wrapper")
    lambda_: LambdaRef = Field(alias="lambda", description="Lambda function name or ARN")
    qualifier: Optional[Qualifier] = None
    mode: Literal["sync", "async"] = "sync"
    args: dict[Ident, Arg] = Field(
        default_factory=dict,
        description="argument name -> SQL type (or {type, key, default}); the names are the JSON payload's keys unless 'key' says otherwise")
    returns: Returns = Field(default_factory=Returns)
    roles: list[Ident] = Field(default_factory=list, description="roles granted EXECUTE")
    description: Optional[str] = None

    @field_validator("description")
    @classmethod
    def _description_control(cls, v):
        return _no_control(v, _TEXT_CONTROL, "NUL or control characters other than tab and line breaks")

    @field_validator("returns", mode="before")
    @classmethod
    def _returns_shorthand(cls, v):
        # `returns: jsonb` is shorthand for `returns: {type: jsonb}`
        return _type_shorthand(v)

    @field_validator("args", mode="before")
    @classmethod
    def _args_shorthand(cls, v):
        return {k: _type_shorthand(a) for k, a in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _async_returns(self) -> "Function":
        if self.mode == "async" and self.returns.type != "jsonb":
            raise ValueError("an async function returns the invocation status (jsonb); drop 'returns'")
        return self

    def argument_problems(self) -> list[tuple[tuple, str]]:
        """Problems between this function's arguments and columns, each at its own location."""
        out: list[tuple[tuple, str]] = []
        seen_key: dict[str, str] = {}
        seen_default = None
        for name, arg in self.args.items():
            key = self.payload_key(name)
            if key in seen_key:
                out.append((("args", name), f"fills payload key {key!r}, like argument {seen_key[key]!r}"))
            seen_key.setdefault(key, name)
            if arg.has_default:
                seen_default = name
            elif seen_default:
                out.append((("args", name), f"has no default but comes after {seen_default!r}, which has one; "
                                            "arguments with defaults go last"))
        args = {a.lower() for a in self.args}
        for column in self.returns.columns or {}:
            if column.lower() in args:
                out.append((("returns", "columns", column), "has the name of an argument; rename one of them"))
        return out

    def payload_key(self, arg: str) -> str:
        return self.args[arg].key or arg

    @property
    def arg_types(self) -> dict[str, str]:
        return {n: a.type for n, a in self.args.items()}

    @property
    def payload_limit(self) -> int:
        return _SYNC_LIMIT if self.mode == "sync" else _ASYNC_LIMIT


class Batch(_Strict):
    max_rows: StrictInt = Field(500, ge=1, le=100_000)
    max_bytes: StrictInt = Field(256 * 1024, ge=1024, le=_SYNC_LIMIT)
    concurrency: StrictInt = Field(
        16, ge=1, le=64,
        description="delivery: immediate: batches of one statement in flight at once, on as many kept "
                    "connections (1: each sent only after the previous one succeeded, in statement order)")


class Retry(_Strict):
    """How the outbox drainer retries. An outage is lag, not loss: transient failures (endpoint down,
    timeouts, throttling, 5xx, credentials) retry with capped exponential backoff until an event is
    ``max_age_s`` old; dead letters are for poison events (the Lambda's own error ``max_attempts``
    times, a 4xx that can never succeed, an event past its maximum age)."""

    max_attempts: StrictInt = Field(8, ge=1, le=100, description="Lambda function errors before an event goes to dead-letter")
    base_delay_ms: StrictInt = Field(200, ge=1)
    max_delay_ms: StrictInt = Field(60_000, ge=1)
    max_age_s: StrictInt = Field(86_400, ge=60, le=14 * 86_400,
                           description="transient failures retry until an event is this old (default: a day)")


#: what a sink's ``target`` names, per kind (a name, or the resource's ARN / the queue's URL)
SINK_KINDS = ("kinesis", "firehose", "sqs", "eventbridge")
_SINK_TARGET = {
    "kinesis": r"^(arn:aws[a-zA-Z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/)?[a-zA-Z0-9_.-]{1,128}$",
    "firehose": r"^(arn:aws[a-zA-Z-]*:firehose:[a-z0-9-]+:\d{12}:deliverystream/)?[a-zA-Z0-9_.-]{1,64}$",
    "sqs": r"^(https?://[A-Za-z0-9.:_-]+/\d{12}/)?[a-zA-Z0-9_-]{1,80}(\.fifo)?$",
    "eventbridge": r"^(arn:aws[a-zA-Z-]*:events:[a-z0-9-]+:\d{12}:event-bus/)?[A-Za-z0-9._/-]{1,256}$",
}


class Sink(_Strict):
    """Where change events (and ``send_after_commit`` records) go besides a Lambda: one stream, delivery
    stream, queue or event bus, shared by any number of triggers."""

    name: Ident
    kind: Literal["kinesis", "firehose", "sqs", "eventbridge"]
    target: str = Field(description="kinesis: stream name or ARN; firehose: delivery stream name or ARN; "
                                    "sqs: queue name or URL (a FIFO queue's ends in .fifo); eventbridge: bus name or ARN")
    source: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9._/-]{1,256}$",
                                  description="eventbridge: the events' Source (default sqlambda.<project>)")
    roles: list[Ident] = Field(default_factory=list, description="roles that may send_after_commit to this sink")

    @model_validator(mode="after")
    def _target(self) -> "Sink":
        if not re.match(_SINK_TARGET[self.kind], self.target):
            raise ValueError(f"target {self.target!r} is not a {self.kind} {'queue name or URL' if self.kind == 'sqs' else 'name or ARN'}")
        if self.source is not None and (self.kind != "eventbridge" or self.source.lower().startswith("aws.")):
            raise ValueError("'source' is an EventBridge sink's Source, which must not start with 'aws.' (AWS's own)")
        return self

    @property
    def fifo(self) -> bool:
        return self.kind == "sqs" and self.target.endswith(".fifo")


class Trigger(_Strict):
    name: Ident
    table: QualifiedName
    events: list[Literal["insert", "update", "delete"]] = Field(default_factory=lambda: ["insert", "update", "delete"], min_length=1)
    columns: Optional[list[Ident]] = Field(None, description="columns to send (default: all)")
    function: Optional[Ident] = Field(None, description="a spec function to call")
    lambda_: Optional[LambdaRef] = Field(None, alias="lambda", description="or a Lambda directly")
    sink: Optional[Ident] = Field(None, description="a spec sink to stream the events to (instead of, or as well as, a Lambda)")
    key: Optional[list[Ident]] = Field(None, min_length=1, description="sink: the columns whose values key a row's "
                                       "events (Kinesis partition key, SQS FIFO message group); default: the table's primary key")
    mode: Literal["sync", "async"] = Field("async", description="for delivery: immediate, how the Lambda is called")
    delivery: Literal["immediate", "outbox"] = "outbox"
    batch: Batch = Field(default_factory=Batch)
    retry: Retry = Field(default_factory=Retry)

    @model_validator(mode="after")
    def _one_target(self) -> "Trigger":
        if self.function is not None and self.lambda_ is not None:
            raise ValueError("a trigger names one of 'function' or 'lambda', not both")
        if self.function is None and self.lambda_ is None and self.sink is None:
            raise ValueError("a trigger names where its events go: 'function', 'lambda' or 'sink' (or a sink and one of the others)")
        if self.sink is not None and self.delivery != "outbox":
            raise ValueError("a trigger with a 'sink' needs delivery: outbox (records are sent after commit, by sqlambda drain)")
        if self.key is not None and self.sink is None:
            raise ValueError("'key' orders a sink's records; this trigger has no 'sink'")
        if self.key is not None and self.columns is not None and set(self.key) - set(self.columns):
            raise ValueError(f"'key' columns {sorted(set(self.key) - set(self.columns))} are not in 'columns': "
                             "the records would not carry them")
        if len(set(self.events)) != len(self.events):
            raise ValueError("events must not repeat")
        return self


#: ``schema.name(type, type)`` as ``to_regprocedure`` reads it (no argument names, no typmods)
SIGNATURE_RE = (r"^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}"
                r"\(\s*([A-Za-z_][A-Za-z0-9_ .]*(\[\])*(\s*,\s*[A-Za-z_][A-Za-z0-9_ .]*(\[\])*)*)?\s*\)$")
STAGES = ("record", "shadow", "canary", "cutover", "rollback")


class Recording(_Strict):
    """What the router keeps of real calls (a ring: the most recent ``max_calls`` sampled calls)."""

    sample: float = Field(1.0, ge=0.0, le=1.0, description="fraction of calls whose arguments and result are kept")
    max_calls: StrictInt = Field(1000, ge=1, le=1_000_000, description="calls kept per function (oldest overwritten)")
    max_bytes: StrictInt = Field(65_536, ge=256, le=1_048_576,
                                 description="a call whose arguments and result exceed this is counted, not kept")


class Compare(_Strict):
    """How the drainer compares the original's result with the Lambda's (shadow and canary)."""

    ignore_keys: list[str] = Field(default_factory=list, description="object keys left out of the comparison, at any depth")
    tolerance: float = Field(0.0, ge=0.0, description="numbers match when they differ by at most this much")
    unordered: StrictBool = Field(False, description="arrays match whatever the order of their elements")

    @field_validator("ignore_keys")
    @classmethod
    def _keys_control(cls, v):
        return [_no_control(k) for k in v]


class Modernize(_Strict):
    """One stored function moving into a Lambda: a router takes over its name (see README, Modernization)."""

    function: str = Field(description="the existing function: schema.name(argument types)")
    name: Optional[Ident] = Field(None, description="short name for status and sqlambda's helper objects "
                                                    "(default: the function's name)")
    lambda_: LambdaRef = Field(alias="lambda", description="the Lambda that replaces it")
    qualifier: Optional[Qualifier] = None
    stage: Literal["record", "shadow", "canary", "cutover", "rollback"] = "record"
    payload: dict[Ident, str] = Field(default_factory=dict,
                                      description="argument name -> payload key (default: the argument's name)")
    path: Optional[JsonPath] = Field(None, description="where the result sits in the Lambda's JSON (default: all of it)")
    side_effects: Literal["writes", "none"] = Field(
        "writes", description="'none' declares the function free of side effects: only then may it be shadowed "
                              "or put on canary (the Lambda would otherwise write a second time)")
    record: Recording = Field(default_factory=Recording)
    canary: float = Field(0.05, ge=0.0, le=1.0, description="with stage: canary, the fraction of calls the Lambda answers")
    compare: Compare = Field(default_factory=Compare)

    @field_validator("function")
    @classmethod
    def _signature(cls, v):
        if not re.match(SIGNATURE_RE, v):
            raise ValueError(f"{v!r} is not a function signature; expected schema.name(argument types), "
                             "e.g. public.price_quote(text, integer, text)")
        return v

    @field_validator("payload")
    @classmethod
    def _payload_control(cls, v):
        return {k: _no_control(key) for k, key in v.items()}

    @model_validator(mode="after")
    def _writes(self) -> "Modernize":
        if self.stage in ("shadow", "canary") and self.side_effects != "none":
            raise ValueError(
                f"stage {self.stage} runs the Lambda beside the original, so a function that writes data would "
                "write twice; only record, cutover and rollback apply unless the entry says side_effects: none")
        return self

    @property
    def schema_name(self) -> tuple[str, str]:
        head = self.function.split("(", 1)[0].strip()
        schema, _, fname = head.rpartition(".")
        return (schema or "public"), fname

    @property
    def qualified(self) -> str:
        """PostgreSQL: the signature with its schema (unqualified means public, not the installing
        session's search_path)."""
        head, _, rest = self.function.partition("(")
        return self.function.strip() if "." in head else f"public.{head.strip()}({rest}"

    @property
    def short(self) -> str:
        return self.name or self.schema_name[1]

    @property
    def arg_types(self) -> list[str]:
        inner = self.function.split("(", 1)[1].rsplit(")", 1)[0]
        return [" ".join(t.split()) for t in inner.split(",")] if inner.strip() else []


class Spec(_Strict):
    version: Literal[1] = 1
    project: Ident
    aws: AwsSettings = Field(default_factory=AwsSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    oracle: OracleSettings = Field(default_factory=OracleSettings)
    mysql: MysqlSettings = Field(default_factory=MysqlSettings)
    functions: list[Function] = Field(default_factory=list)
    sinks: list[Sink] = Field(default_factory=list)
    send_after_commit: StrictBool = Field(False, description="install send_after_commit(target, payload, key): "
                                          "a call of a spec function, or a record to a spec sink, sent after commit")
    triggers: list[Trigger] = Field(default_factory=list)
    modernize: list[Modernize] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> "Spec":
        # The loader checks these itself so it can point at the exact line of each problem.
        if info.context and info.context.get("defer_cross_references"):
            return self
        problems = cross_reference_problems(self)
        if problems:
            raise ValueError("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        return self

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name.lower() == name.lower():
                return f
        raise KeyError(name)

    def sink(self, name: str) -> Sink:
        for s in self.sinks:
            if s.name.lower() == name.lower():
                return s
        raise KeyError(name)

    def route(self, trigger: Trigger) -> "Route":
        """The trigger's Lambda delivery (its first route); see :meth:`routes`."""
        return self.routes(trigger)[0]

    def routes(self, trigger: Trigger) -> list["Route"]:
        """Where a trigger's events go, decided here once for every target: one route per destination.

        A trigger naming a spec function calls that function's Lambda and qualifier, with the
        trigger's ``mode`` when the spec sets one, else the function's; a trigger naming a Lambda
        calls it with the trigger's mode (default async). A trigger naming a sink streams its events
        there too. Each route has its own queue position, retries and dead letters: its ``name`` is
        the trigger's, or ``trigger@sink`` for the sink of a trigger that also calls a Lambda.
        Batches and retries are the trigger's.
        """
        out = []
        if trigger.function is not None or trigger.lambda_ is not None:
            if trigger.function is not None:
                fn = self.function(trigger.function)
                mode = trigger.mode if "mode" in trigger.model_fields_set else fn.mode
                lambda_name, qualifier = fn.lambda_, fn.qualifier
            else:
                lambda_name, qualifier, mode = trigger.lambda_, None, trigger.mode
            out.append(Route(name=trigger.name, sink="lambda", lambda_name=lambda_name, qualifier=qualifier, mode=mode,
                             batch=trigger.batch, retry=trigger.retry))
        if trigger.sink is not None:
            sink = self.sink(trigger.sink)
            out.append(Route(name=f"{trigger.name}@{sink.name}" if out else trigger.name, sink=sink.kind,
                             lambda_name=sink.target, qualifier=None, mode="sync", batch=trigger.batch,
                             retry=trigger.retry, key=trigger.key, source=self.sink_source(sink)))
        return out

    def sink_source(self, sink: Sink) -> Optional[str]:
        """EventBridge's Source for a sink's events (None for the other kinds)."""
        return (sink.source or f"sqlambda.{self.project}") if sink.kind == "eventbridge" else None

    def send_targets(self) -> list["Route"]:
        """What ``send_after_commit(target, payload)`` may name: every spec function (its Lambda,
        mode and qualifier; callers need one of its roles) and every sink (callers need one of the
        sink's roles). Route name ``send:<name>``; default batch and retry settings."""
        out = []
        for fn in self.functions:
            out.append(Route(name=f"send:{fn.name}", sink="lambda", lambda_name=fn.lambda_, qualifier=fn.qualifier,
                             mode=fn.mode, batch=Batch(), retry=Retry(), roles=tuple(fn.roles)))
        for s in self.sinks:
            out.append(Route(name=f"send:{s.name}", sink=s.kind, lambda_name=s.target, qualifier=None, mode="sync",
                             batch=Batch(), retry=Retry(), roles=tuple(s.roles), source=self.sink_source(s)))
        return out


class Route(_Strict):
    """One destination of a trigger (or of ``send_after_commit``), as :meth:`Spec.routes` decides it
    (the one place every target reads it from). For a sink, ``lambda_name`` holds the sink's target."""

    name: str
    sink: Literal["lambda", "kinesis", "firehose", "sqs", "eventbridge"]
    lambda_name: str
    qualifier: Optional[str]
    mode: Literal["sync", "async"]
    batch: Batch
    retry: Retry
    #: sinks: the key columns (None: the table's primary key, read by the drainer)
    key: Optional[list[str]] = None
    #: eventbridge: the events' Source
    source: Optional[str] = None
    #: send targets: the roles that may send
    roles: tuple[str, ...] = ()


def cross_reference_problems(spec: Spec) -> list[tuple[tuple, str]]:
    """Problems between entries (duplicate names, unknown references), each with its location."""
    out: list[tuple[tuple, str]] = []
    seen: dict[str, int] = {}
    for i, f in enumerate(spec.functions):
        if isinstance(f, Function):  # the loader's raw view of an invalid spec has names only
            out += [(("functions", i) + loc, msg) for loc, msg in f.argument_problems()]
        if f.name.lower() in seen:
            out.append((("functions", i, "name"), f"function name {f.name!r} is already used by functions[{seen[f.name.lower()]}]"))
        else:
            seen[f.name.lower()] = i
    sseen: dict[str, int] = {}
    for i, s in enumerate(spec.sinks):
        if s.name.lower() in sseen:
            out.append((("sinks", i, "name"), f"sink name {s.name!r} is already used by sinks[{sseen[s.name.lower()]}]"))
        elif s.name.lower() in seen:
            # send_after_commit names a function or a sink by one name
            out.append((("sinks", i, "name"), f"sink name {s.name!r} is already used by functions[{seen[s.name.lower()]}] "
                        "(send_after_commit names either by its name)"))
        else:
            sseen[s.name.lower()] = i
    tseen: dict[str, int] = {}
    ordered_tables: dict[tuple[str, str], int] = {}
    for i, t in enumerate(spec.triggers):
        if t.name.lower() in tseen:
            out.append((("triggers", i, "name"), f"trigger name {t.name!r} is already used by triggers[{tseen[t.name.lower()]}]"))
        else:
            tseen[t.name.lower()] = i
        if t.function is not None and t.function.lower() not in seen:
            known = ", ".join(f.name for f in spec.functions if IDENT_RE.match(f.name)) or "none defined"
            out.append((("triggers", i, "function"), f"unknown function {t.function!r}; expected one of the spec's functions ({known})"))
        if getattr(t, "sink", None) is not None and t.sink.lower() not in sseen:
            known = ", ".join(s.name for s in spec.sinks if IDENT_RE.match(s.name)) or "none defined"
            out.append((("triggers", i, "sink"), f"unknown sink {t.sink!r}; expected one of the spec's sinks ({known})"))
        elif getattr(t, "sink", None) is not None and isinstance(t, Trigger):
            # one row's changes keep their order only within one route: two triggers of one table
            # streaming to one ordered sink would be two routes drained independently
            sink = spec.sinks[sseen[t.sink.lower()]]
            if sink.kind == "kinesis" or sink.fifo:
                table = t.table if "." in t.table else "public." + t.table
                other = ordered_tables.setdefault((table.lower(), sink.name.lower()), i)
                if other != i:
                    out.append((("triggers", i, "sink"), f"triggers[{other}] already streams {table} to the ordered sink "
                                f"{sink.name!r}: merge their events into one trigger, so each row's changes stay in order"))
    mseen: dict[str, int] = {}
    for i, m in enumerate(spec.modernize):
        short = m.short.lower()
        loc = ("modernize", i, "name" if m.name else "function")
        if short in mseen:
            out.append((loc, f"modernize name {m.short!r} is already used by modernize[{mseen[short]}]; give one a 'name'"))
        else:
            mseen[short] = i
    return out
