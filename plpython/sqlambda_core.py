"""sqlambda_core: the runtime every sqlambda PL/Python function shares, inside PostgreSQL.

Owns: resolving the settings (the spec defaults baked into the render, then a DBA's
``ALTER DATABASE ... SET sqlambda.*`` read from the catalog; a session may only lower timeouts and
attempts), the boto3 Lambda client and session cached per backend in ``GD`` (for the endpoint and
region rules and the credential chain), one Lambda ``Invoke`` sent through ``sqlambda_http``'s
kept-alive connection with our own retry loop, the payload limits, and the mapping of every failure to a SQLSTATE, a message
``lambda <fn> failed: <errorType>: <errorMessage>``, a DETAIL and a HINT.

Must not: ``import plpy`` (``plpy`` and ``GD`` are passed in, so this module is importable and
unit-testable outside PostgreSQL), build SQL from strings, or store credentials anywhere (the
server process's default AWS credential chain is used).

SQLSTATEs (stable; documented in the README):

=======  =================================================================================
LA001    the Lambda function raised (X-Amz-Function-Error: Unhandled / Handled)
LA002    throttled (429 / TooManyRequestsException) after every attempt
LA003    timed out waiting for the response (read timeout; never retried: it may have run)
LA004    endpoint unreachable (connection refused / reset / connect timeout) after every attempt
LA005    credentials missing or rejected, access denied
LA006    any other Lambda service error (5xx after every attempt, unexpected 4xx)
LA007    the result does not fit the declared return (path missing, wrong JSON type)
LA008    the server's Python cannot import boto3 (nothing was sent)
42883    the Lambda function (or version/alias) does not exist
22P02    the arguments are not valid JSON
22023    a parameter value is invalid (invocation_type, log_type, region, qualifier...)
54000    the payload exceeds the Lambda limit (sync 6 MB, async 1 MB); nothing was sent
=======  =================================================================================
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from threading import get_ident as _thread_id
from urllib.parse import urlsplit

import sqlambda_http

#: Lambda's payload quotas (RequestResponse 6 MB; Event 1 MB since 2025, 256 KB before): the one
#: definition, which the spec loader, the Oracle renderer and the local stack load from here
SYNC_LIMIT = 6 * 1024 * 1024
ASYNC_LIMIT = 1024 * 1024
#: how much of a payload goes into an error's DETAIL
DETAIL_LIMIT = 1000
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")

#: the spec's ``aws`` section; the rendered function body replaces it through configure()
DEFAULTS = {
    "region": "us-east-1",
    "endpoint_url": None,
    "connect_timeout_ms": 2000,
    "request_timeout_ms": 30000,
    "max_attempts": 3,
}

#: every setting; each one's value comes from the spec (rendered into the function body), then
#: from ``ALTER DATABASE <db> SET sqlambda.<name>`` / ``ALTER ROLE ALL SET`` (read back from the
#: catalog, never through the session), so only a DBA decides where a signed request goes
GUCS = ("endpoint_url", "region", "connect_timeout_ms", "request_timeout_ms", "max_attempts")
#: the settings a session may LOWER (a caller may want to fail fast), never raise
LOWERABLE = ("connect_timeout_ms", "request_timeout_ms", "max_attempts")
INTEGER_SETTINGS = LOWERABLE
#: the RDS/Aurora ``aws_lambda`` extension's documented settings, honoured by ``aws_lambda.invoke()``
#: under the same rules (a DBA sets them, a session may only lower the timeouts), and its
#: documented defaults, which ``aws_lambda.invoke()`` starts from instead of the spec's timeouts
RDS_SETTINGS = {"aws_lambda.connect_timeout_ms": "connect_timeout_ms", "aws_lambda.request_timeout_ms": "request_timeout_ms",
                "aws_lambda.endpoint_override": "endpoint_url"}
RDS_DEFAULTS = {"connect_timeout_ms": 1000, "request_timeout_ms": 3000}

# The DBA's values are read from pg_db_role_setting (rows with setrole = 0: ALTER DATABASE and
# ALTER ROLE ALL), which a session cannot change: SET, set_config(), PGOPTIONS, conninfo options
# and ALTER ROLE <me> SET only ever reach current_setting(). Since PostgreSQL 15 only a superuser
# (or a role the DBA granted SET on the parameter) can ALTER DATABASE ... SET a placeholder such as
# sqlambda.*. postgresql.conf and ALTER SYSTEM are no DBA channel here: pg_settings never lists a
# custom placeholder such as sqlambda.endpoint_url (sqlambda defines no C-level GUC), so a file's
# value reaches a call only through current_setting(), where it cannot be told from a session's
# SET: it is treated as one (it may lower a timeout; an endpoint or region there is ignored, with a
# WARNING). Every name is
# schema-qualified and every operator spelled OPERATOR(pg_catalog.=), so nothing a caller puts on
# its search_path is resolved here.
#: what every call reads: the admin values of ALTER ROLE ALL SET / ALTER DATABASE SET from the
#: catalog (indexed lookups) and the session's own values (which may only lower timeouts/attempts).
#: (It once also read pg_settings, which builds all ~350 GUCs per call, for nothing: see above.)
_ADMIN_AND_SESSION_SQL = (
    "(SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s "
    "WHERE s.setrole OPERATOR(pg_catalog.=) 0 AND s.setdatabase OPERATOR(pg_catalog.=) 0) AS cluster, "
    "(SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d "
    "ON d.oid OPERATOR(pg_catalog.=) s.setdatabase WHERE s.setrole OPERATOR(pg_catalog.=) 0 "
    "AND d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) AS database, "
    + ", ".join("pg_catalog.current_setting('sqlambda.%s', true) AS %s" % (g, g) for g in GUCS) + ", "
    + ", ".join("pg_catalog.current_setting('%s', true) AS \"%s\"" % (n, n) for n in RDS_SETTINGS)
)
_SETTINGS_SQL = "SELECT " + _ADMIN_AND_SESSION_SQL
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$")

# Error codes the Lambda service uses for throttling (HTTP 429), plus the generic AWS ones.
THROTTLE_CODES = frozenset((
    "TooManyRequestsException", "ThrottlingException", "Throttling", "ThrottledException",
    "RequestThrottledException", "RequestLimitExceeded", "SlowDown", "EC2ThrottledException",
))
CREDENTIAL_CODES = frozenset((
    "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
    "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "MissingAuthenticationToken", "IncompleteSignature", "KMSAccessDeniedException",
))
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0

HINT_ENDPOINT = (
    "check that the PostgreSQL server can reach the Lambda endpoint: sqlambda.endpoint_url is {endpoint}, "
    "sqlambda.region is {region} (they come from the spec's aws section, or from a DBA's "
    "ALTER DATABASE ... SET sqlambda.endpoint_url = '...'; a session's SET is ignored)"
)
HINT_CREDENTIALS = (
    "the PostgreSQL server process resolves AWS credentials through the default chain (environment of the "
    "postmaster, ~postgres/.aws/credentials, instance role); check them and the lambda:InvokeFunction permission"
)

HINT_BOTO3 = (
    "the PostgreSQL server's own Python needs boto3: install it for that Python (Debian/Ubuntu: "
    "apt-get install python3-boto3), restart PostgreSQL, then check with `sqlambda doctor`"
)


class LambdaFailure(Exception):
    """A failed invocation, already classified; ``raise_lambda_error`` turns it into a SQL error."""

    def __init__(self, sqlstate, message, detail=None, hint=None, retryable=False, kind="error"):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.retryable = retryable
        self.kind = kind


def configure(defaults):
    """Install the spec's ``aws`` defaults (called once when the rendered body loads this module)."""
    DEFAULTS.update({k: v for k, v in defaults.items() if k in DEFAULTS})


def endpoint_problem(url):
    """Why ``url`` cannot be a Lambda endpoint (None when it can).

    Only ``http(s)://host[:port]``: no user info, path, query or fragment (a path prefix would let
    whoever sets it choose more than the host), and no wildcard (``*`` would make Oracle's
    SocketPermission grant every host). Shared by the spec loader, the runtime and the drainer.
    """
    if not isinstance(url, str) or not url:
        return "it is empty"
    if any(ord(c) < 33 or c in "'\"\\" for c in url):
        return "it contains a space, a quote or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if parts.username is not None or parts.password is not None:
        return "it must not carry a user name or password"
    host = parts.hostname or ""
    if "*" in url:
        return "wildcards are not allowed; name one host"
    if not host or not _HOST_RE.match(host if ":" not in host else "[" + host + "]"):
        return "%r is not a host name or IP address" % host
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "only scheme, host and port are allowed (no path, query or fragment)"
    if port == 0:
        return "port 0 is not a port"
    return None


def _admin_value(name, value, where, setting=None):
    """A DBA's setting, validated; an invalid one fails every call until the DBA fixes it."""
    setting = setting or "sqlambda." + name
    hint = "fix it: %s (or RESET it to use the spec's value)" % where
    if name in INTEGER_SETTINGS:
        try:
            number = int(value)
        except ValueError:
            raise LambdaFailure("22023", "%s = %r (%s) is not an integer" % (setting, value, where), hint=hint) from None
        if number < 1:
            raise LambdaFailure("22023", "%s = %d (%s) must be at least 1" % (setting, number, where), hint=hint)
        return number
    if name == "endpoint_url":
        if value == "":
            return None  # empty: AWS's regional endpoint
        problem = endpoint_problem(value)
        if problem:
            raise LambdaFailure("22023", "%s = %r (%s) is not a Lambda endpoint: %s" % (setting, value, where, problem), hint=hint)
        return value
    if not _REGION_RE.match(value):
        raise LambdaFailure("22023", "%s = %r (%s) is not an AWS region" % (setting, value, where), hint=hint)
    return value


def _names(rds):
    """(setting name, internal name) pairs in precedence order: sqlambda.*, then aws_lambda.* (more
    specific to aws_lambda.invoke(), so it wins there)."""
    out = [("sqlambda." + g, g) for g in GUCS]
    if rds:
        out += list(RDS_SETTINGS.items())
    return out


def _config_items(config, rds=False):
    """(internal name, value, setting name) of the entries of a settings array that are ours."""
    values = {}
    for item in config or ():
        name, sep, value = item.partition("=")
        if sep:
            values[name] = value
    for setting, name in _names(rds):
        if setting in values:
            yield name, values[setting], setting


def resolve_settings(row, rds=False):
    """The effective settings from one row of ``_SETTINGS_SQL`` (or a dict like it).

    Returns ``(cfg, sources, ignored)``: ``cfg`` the values a call uses; ``sources`` where each
    came from (``spec``, ``aws_lambda default``, ``ALTER ROLE ALL SET``,
    ``ALTER DATABASE SET``, ``session (lowered)``); ``ignored`` the session values that were not
    applied, as ``{setting name: value}``. Precedence: the spec (``rds``: with the aws_lambda
    extension's documented timeouts), then the cluster-wide and the database's
    admin values; then, for timeouts and attempts only, the session's value when it is LOWER.
    ``rds``: also the aws_lambda.* settings, for ``aws_lambda.invoke()``.
    """
    cfg = dict(DEFAULTS)
    sources = {name: "spec" for name in GUCS}
    if rds:
        cfg.update(RDS_DEFAULTS)
        sources.update({name: "aws_lambda default" for name in RDS_DEFAULTS})
    for level, where in (("cluster", "ALTER ROLE ALL SET"), ("database", "ALTER DATABASE SET")):
        for name, value, setting in _config_items(row.get(level), rds):
            cfg[name] = _admin_value(name, value, where, setting)
            sources[name] = where
    ignored = {}
    for setting, name in _names(rds):
        value = row.get(name if setting.startswith("sqlambda.") else setting)
        if value is None or value == "":
            continue
        if name in LOWERABLE:
            try:
                number = int(value)
            except ValueError:
                raise LambdaFailure("22023", "%s must be an integer, not %r" % (setting, value)) from None
            if number < 1:
                raise LambdaFailure("22023", "%s must be at least 1, not %d" % (setting, number))
            if number < cfg[name]:
                cfg[name] = number
                sources[name] = "session (lowered)"
            elif number > cfg[name]:
                ignored[setting] = value
        elif value != (cfg[name] or ""):
            ignored[setting] = value
    return cfg, sources, ignored


def _warn_ignored(plpy, GD, ignored):
    """One WARNING per backend and value: a session tried to change what only a DBA may."""
    seen = GD.setdefault("sqlambda.ignored_warned", set())
    for name, value in sorted(ignored.items()):
        if (name, value) in seen or not hasattr(plpy, "warning"):
            continue
        seen.add((name, value))
        what = "raise" if name.endswith(LOWERABLE) else "change"
        plpy.warning("%s = %r set for this session is ignored: a session may not %s it" % (name, value, what),
                     hint="the endpoint, region and the upper bounds of timeouts and attempts come from the spec "
                          "or a DBA's ALTER DATABASE ... SET %s; a session may only lower timeouts and "
                          "attempts" % name)


def trim(text, limit=DETAIL_LIMIT):
    """A payload shortened for an error DETAIL (the whole payload may be megabytes)."""
    if text is None:
        return None
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if len(text) <= limit:
        return text
    return text[:limit] + "... (%d characters in all)" % len(text)


# -- settings ---------------------------------------------------------------------------------
def settings(plpy, GD, rds=False):
    """The settings a call uses now (see ``resolve_settings``), read with one cached plan.

    Read at the start of every call, before anything the caller controls can run inside it, so a
    DBA's ALTER DATABASE takes effect on the next call and no user code (a cast inside a trigger's
    row images) can change what an already started call uses.
    """
    cfg, _sources, ignored = resolve_settings(_settings_row(plpy, GD), rds)
    if ignored:
        _warn_ignored(plpy, GD, ignored)
    return cfg


def _settings_row(plpy, GD):
    """One row of ``_SETTINGS_SQL``, read with one plan cached per backend."""
    plan = GD.get("sqlambda.settings_plan")
    if plan is None:
        plan = GD["sqlambda.settings_plan"] = plpy.prepare(_SETTINGS_SQL)
    return plpy.execute(plan)[0]


def describe_settings(plpy, GD):
    """Rows (name, value, source, note) for ``sqlambda doctor``: effective values and where each came from."""
    cfg, sources, ignored = resolve_settings(_settings_row(plpy, GD))
    rows = []
    for name in GUCS:
        seen = ignored.get("sqlambda." + name)
        note = ("this session's %r is ignored" % seen) if seen is not None else None
        value, spec = cfg[name], DEFAULTS[name]
        rows.append({"name": name, "value": "" if value is None else str(value), "source": sources[name],
                     "spec_value": "" if spec is None else str(spec), "note": note})
    return cfg, rows


def settings_table(plpy, GD):
    """``<schema>.settings()``: the effective settings of this session, one row each, and their source."""
    return describe_settings(plpy, GD)[1]


# -- client -------------------------------------------------------------------------------------
def client(GD, cfg, region=None):
    """The boto3 Lambda client for these settings, created once per backend and reused.

    Keyed by everything that shapes the client, so a changed GUC gets its own client instead of
    silently reusing a stale one. botocore's own retries are off: ``invoke_raw`` retries itself
    so that only throttling, 5xx and connection errors retry, and never a function error or a
    read timeout (the function may already have run).
    """
    region = region or cfg["region"]
    key = (region, cfg["endpoint_url"], cfg["connect_timeout_ms"], cfg["request_timeout_ms"], cfg["max_attempts"])
    cache = GD.get("sqlambda.clients")
    if cache is None:
        cache = GD["sqlambda.clients"] = {}
    c = cache.get(key)
    if c is None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise LambdaFailure("LA008", "boto3 cannot be imported inside PostgreSQL: %s" % exc, hint=HINT_BOTO3,
                                kind="environment") from None

        session = GD.get("sqlambda.session")
        if session is None:
            # one session per backend: credentials are resolved once and refreshed by botocore
            session = GD["sqlambda.session"] = boto3.session.Session()
        config = Config(
            connect_timeout=cfg["connect_timeout_ms"] / 1000.0,
            read_timeout=cfg["request_timeout_ms"] / 1000.0,
            retries={"max_attempts": 0},
            region_name=region,
        )
        try:
            c = session.client("lambda", region_name=region, endpoint_url=cfg["endpoint_url"] or None, config=config)
        except ValueError as exc:  # e.g. an invalid endpoint URL or region
            raise LambdaFailure("22023", "cannot create the Lambda client: %s" % exc,
                                hint=HINT_ENDPOINT.format(endpoint=cfg["endpoint_url"], region=region)) from None
        cache[key] = c
    return c


def _sender(GD, c, slot=0):
    """The kept-alive connection to this client's endpoint, verifying TLS against what botocore would
    use: the ``ca_bundle`` setting / AWS_CA_BUNDLE, else its own.

    One per endpoint, thread and slot: a backend has one thread, but the drainer's workers share one
    GD (``sqlambda.delivery.sink``), and an HTTP connection carries one request at a time; a
    ``Window`` keeps one per request it has in flight (slots 1..N)."""
    key = (c.meta.endpoint_url, _thread_id(), slot)
    cache = GD.get("sqlambda.senders")
    if cache is None:
        cache = GD["sqlambda.senders"] = {}
    send = cache.get(key)
    if send is None:
        from botocore.httpsession import get_cert_path

        ca = GD["sqlambda.session"]._session.get_config_variable("ca_bundle") or get_cert_path(True)
        send = cache[key] = sqlambda_http.Sender(key[0], ca if isinstance(ca, str) else None)
    return send


def _credentials(GD):
    """The backend's credentials from botocore's default chain, refreshed by botocore when they expire."""
    from botocore.exceptions import NoCredentialsError

    creds = GD["sqlambda.session"].get_credentials()
    if creds is None:
        raise NoCredentialsError()
    return creds.get_frozen_credentials()


# -- payload ------------------------------------------------------------------------------------
def encode_payload(function_name, payload, invocation_type):
    """The request body as bytes, after checking it is JSON and within the limit for its type."""
    if payload is None:
        data = b""
    elif isinstance(payload, (bytes, bytearray)):
        data = bytes(payload)
    else:
        data = payload.encode("utf-8")
    limit = ASYNC_LIMIT if invocation_type == "Event" else SYNC_LIMIT
    if len(data) > limit:
        raise LambdaFailure(
            "54000",
            "lambda %s: payload is %d bytes, over the %s limit of %d bytes; nothing was sent"
            % (function_name, len(data), "async (Event)" if invocation_type == "Event" else "synchronous", limit),
            hint="send a reference (e.g. an S3 key) instead of the data, or split it into smaller calls",
        )
    return data


def check_json(function_name, text):
    """Raise 22P02 unless ``text`` parses as JSON; Lambda would reject it after a round trip."""
    if text is None:
        return
    try:
        json.loads(text)
    except ValueError as exc:
        raise LambdaFailure(
            "22P02",
            "lambda %s: arguments are not valid JSON: %s" % (function_name, exc),
            detail=trim(text),
            hint="pass a JSON document, e.g. '{\"name\": \"bob\"}'",
        ) from None


def client_context_b64(context):
    """Lambda's ClientContext header: base64 of the JSON text (at most 3583 bytes)."""
    if context is None:
        return None
    text = context if isinstance(context, str) else json.dumps(context, separators=(",", ":"))
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    if len(encoded) > 3583:
        raise LambdaFailure("54000", "client context is %d bytes once base64-encoded, over Lambda's 3583" % len(encoded))
    return encoded


# -- errors -------------------------------------------------------------------------------------
def function_error(function_name, kind, body):
    """LambdaFailure for a response carrying X-Amz-Function-Error, naming errorType and errorMessage."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else (body or "")
    error_type, error_message = kind or "Unhandled", text.strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        error_type = doc.get("errorType") or error_type
        error_message = doc.get("errorMessage") if doc.get("errorMessage") is not None else ""
    elif isinstance(doc, str):
        error_message = doc
    return LambdaFailure(
        "LA001",
        "lambda %s failed: %s: %s" % (function_name, error_type, error_message),
        detail=trim(text),
        kind="function",
    )


def classify(function_name, exc, cfg, region):
    """Map a botocore exception to a LambdaFailure (``retryable`` says whether to try again)."""
    from botocore import exceptions as bx

    where = HINT_ENDPOINT.format(endpoint=cfg.get("endpoint_url") or "(AWS default)", region=region)
    if isinstance(exc, bx.ReadTimeoutError):
        return LambdaFailure(
            "LA003",
            "lambda %s failed: Timeout: no response within %d ms (sqlambda.request_timeout_ms)"
            % (function_name, cfg["request_timeout_ms"]),
            detail=str(exc),
            hint="the function may still have run; raise sqlambda.request_timeout_ms or make the function faster",
            kind="timeout",
        )
    if getattr(exc, "answer_started", False):
        # the connection broke in the middle of Lambda's answer: the function ran, so it is not sent
        # again here (a drainer redelivers later, with the same idempotency key)
        return LambdaFailure(
            "LA004",
            "lambda %s failed: EndpointUnreachable: the answer was cut off: %s" % (function_name, exc),
            hint="the function has run (or is running); it was not called again", kind="endpoint",
        )
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ConnectionError, bx.HTTPClientError)):
        return LambdaFailure(
            "LA004",
            "lambda %s failed: EndpointUnreachable: %s" % (function_name, exc),
            hint=where, retryable=True, kind="endpoint",
        )
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
        return LambdaFailure(
            "LA005", "lambda %s failed: NoCredentials: %s" % (function_name, exc), hint=HINT_CREDENTIALS, kind="credentials",
        )
    if isinstance(exc, bx.ParamValidationError):
        return LambdaFailure("22023", "lambda %s failed: InvalidParameter: %s" % (function_name, exc), kind="parameter")
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or "Unknown"
        msg = err.get("Message") or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        text = "lambda %s failed: %s: %s" % (function_name, code, msg)
        if code in THROTTLE_CODES or status == 429:
            return LambdaFailure("LA002", text, hint="the function's concurrency or the account's rate is exhausted; "
                                 "raise sqlambda.max_attempts, reserve concurrency, or call it less often",
                                 retryable=True, kind="throttled")
        if code == "ResourceNotFoundException" or status == 404:
            return LambdaFailure("42883", text, hint="check the function name, qualifier and sqlambda.region (%s)" % region,
                                 kind="not_found")
        if code in ("RequestTooLargeException",) or status == 413:
            return LambdaFailure("54000", text, kind="too_large")
        if code in CREDENTIAL_CODES or status in (401, 403):
            return LambdaFailure("LA005", text, hint=HINT_CREDENTIALS, kind="credentials")
        if code in ("InvalidRequestContentException", "InvalidParameterValueException"):
            return LambdaFailure("22023", text, kind="parameter")
        if status >= 500:
            return LambdaFailure("LA006", text, retryable=True, kind="service")
        return LambdaFailure("LA006", text, kind="service")
    if isinstance(exc, bx.BotoCoreError):
        return LambdaFailure("LA006", "lambda %s failed: %s: %s" % (function_name, type(exc).__name__, exc), hint=where)
    return None


def backoff_delay(attempt):
    """Full-jitter exponential backoff (AWS's recommendation) for retry number ``attempt`` (1-based)."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** attempt)))


def _sleep(plpy, seconds):
    # pg_sleep keeps the backend responsive to query cancel and statement_timeout during backoff
    if plpy is not None and hasattr(plpy, "execute"):
        plpy.execute("SELECT pg_catalog.pg_sleep(%f)" % seconds)
    else:
        time.sleep(seconds)


# -- invoke -------------------------------------------------------------------------------------
def invoke_raw(plpy, GD, function_name, payload, invocation_type="RequestResponse", log_type="None",
               qualifier=None, client_context=None, region=None, raise_function_error=True, cfg=None):
    """One Lambda invocation with retries; returns a dict or raises LambdaFailure (never plpy errors).

    The result: ``status_code`` (int), ``payload`` (text, '' for Event/DryRun), ``executed_version``,
    ``log_result`` (decoded text or None), ``log_result_b64`` (as Lambda sent it), ``function_error``
    (None, 'Unhandled' or 'Handled'; only seen when ``raise_function_error`` is False), ``request_id``,
    ``attempts``.
    """
    call = _Call(plpy, GD, function_name, payload, invocation_type, log_type, qualifier, client_context, region, cfg)
    return call.result(call.complete(plpy, GD, call.sender, 0, None), raise_function_error)


class _Call:
    """One Invoke, validated and built once (payload, client, URL, unsigned headers); signed afresh
    for every attempt. ``complete`` runs the attempts: send, classify a failure, back off, retry."""

    __slots__ = ("function_name", "invocation_type", "data", "cfg", "region", "client", "sender", "url", "headers",
                 "attempts")

    def __init__(self, plpy, GD, function_name, payload, invocation_type, log_type, qualifier, client_context,
                 region, cfg):
        if not function_name:
            raise LambdaFailure("22023", "lambda function name must not be empty")
        if invocation_type not in INVOCATION_TYPES:
            raise LambdaFailure("22023", "invocation_type must be one of %s, not %r" % (", ".join(INVOCATION_TYPES), invocation_type))
        if log_type is None:
            log_type = "None"
        if log_type not in LOG_TYPES:
            raise LambdaFailure("22023", "log_type must be one of %s, not %r" % (", ".join(LOG_TYPES), log_type))
        self.function_name, self.invocation_type = function_name, invocation_type
        self.data = encode_payload(function_name, payload, invocation_type)
        self.cfg = cfg = settings(plpy, GD) if cfg is None else cfg
        if region and not _REGION_RE.match(region):
            # botocore builds the host from the region: only a real region name may reach it
            raise LambdaFailure("22023", "region %r is not an AWS region name" % region)
        self.region = region = region or cfg["region"]
        self.client = c = client(GD, cfg, region)
        for name, value, most in (("FunctionName", function_name, 170), ("Qualifier", qualifier, 128)):
            if value and len(value) > most:  # botocore's parameter validation, which this path replaces
                raise LambdaFailure("22023", "lambda %s failed: InvalidParameter: Invalid length for parameter %s, "
                                    "value: %d, valid max length: %d" % (function_name[:170], name, len(value), most),
                                    kind="parameter")
        self.sender = _sender(GD, c)
        self.url, self.headers = sqlambda_http.invoke_request(self.sender.endpoint_url, function_name, self.data,
                                                              invocation_type, log_type, qualifier or None,
                                                              client_context_b64(client_context))

    def start(self, GD, sender):
        """Sign and write one attempt on ``sender`` (an exception: it failed before it was written)."""
        creds = _credentials(GD)
        signed = sqlambda_http.sign("POST", self.url, dict(self.headers), self.data, creds.access_key, creds.secret_key,
                                    creds.token, self.client.meta.region_name, "lambda")
        sender.start(self.url, signed, self.data, self.cfg["connect_timeout_ms"] / 1000.0,
                     self.cfg["request_timeout_ms"] / 1000.0)

    def complete(self, plpy, GD, sender, attempt, failed):
        """The answer (``client.invoke()``'s dict) after ``attempt`` attempts were made, the last of
        them failing with ``failed`` (or, with ``failed`` None and ``attempt`` 1, written on ``sender``
        and not yet read): retries by classification on this call's own sender."""
        attempts = max(1, int(self.cfg["max_attempts"]))
        while True:
            if failed is None and attempt:
                try:
                    return sqlambda_http.response(*sender.finish())
                except Exception as exc:  # noqa: BLE001 - classified below; unknown ones propagate
                    failed = exc
                finally:
                    # a request the sender wrote again on a new connection (the old one had closed)
                    # counts as an attempt, so max_attempts bounds what was really sent
                    attempt += sender.resends
                    sender.resends = 0
                    self.attempts = attempt
            if failed is not None:
                failure = classify(self.function_name, failed, self.cfg, self.region)
                if failure is None:
                    raise failed
                if not (failure.retryable and attempt < attempts):
                    if failure.retryable and attempts > 1:
                        failure.message += " (after %d attempts)" % attempt
                    raise failure from None
                _sleep(plpy, backoff_delay(attempt))
            attempt, failed, sender = attempt + 1, None, self.sender
            try:
                self.start(GD, sender)
            except Exception as exc:  # noqa: BLE001 - classified above
                failed = exc

    def result(self, resp, raise_function_error):
        body = resp["Payload"]
        ferr = resp.get("FunctionError")
        if ferr and raise_function_error:
            raise function_error(self.function_name, ferr, body)
        log_b64 = resp.get("LogResult")
        log_text = None
        if log_b64:
            try:
                log_text = base64.b64decode(log_b64).decode("utf-8", "replace")
            except (ValueError, TypeError):
                log_text = log_b64
        return {
            "status_code": resp.get("StatusCode"),
            "payload": body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body,
            "executed_version": resp.get("ExecutedVersion"),
            "log_result": log_text,
            "log_result_b64": log_b64,
            "function_error": ferr,
            "request_id": resp.get("ResponseMetadata", {}).get("RequestId"),
            "attempts": self.attempts,
        }


class Window:
    """Up to ``size`` invocations of one function in flight at once, on ``size`` kept connections,
    without threads (a PostgreSQL backend must not run any): ``submit`` writes a request and returns;
    when all connections are busy it first completes the OLDEST call. ``close`` completes the rest.

    A failed attempt is retried (by classification, with backoff) on the backend's plain-call
    connection (``_Call.sender``, slot 0) while the others stay in flight; a call that finally fails raises its LambdaFailure, after the
    window dropped the connections of the calls still in flight (their answers are never read, so a
    sync Lambda may still run them: the caller's statement fails anyway). ``size`` 1 is strictly
    one call after the other, each sent only after the previous one succeeded."""

    def __init__(self, plpy, GD, function_name, invocation_type, qualifier, cfg, size):
        self.plpy, self.GD, self.cfg = plpy, GD, cfg
        self.function_name, self.invocation_type, self.qualifier = function_name, invocation_type, qualifier
        self.size = max(1, int(size))
        self.flight = []  # (call, sender, failed-before-written exception or None), oldest first
        self.free = None
        self.done = 0

    def submit(self, payload):
        call = _Call(self.plpy, self.GD, self.function_name, payload, self.invocation_type, "None", self.qualifier,
                     None, None, self.cfg)
        if self.free is None:
            self.free = self._lease(call.client)
        if not self.free:
            self._complete_oldest()
        sender = self.free.pop()
        failed = None
        try:
            call.start(self.GD, sender)
        except Exception as exc:  # noqa: BLE001 - completed (classified, retried) in order
            failed = exc
        self.flight.append((call, sender, failed))

    def _complete_oldest(self):
        call, sender, failed = self.flight.pop(0)
        try:
            call.result(call.complete(self.plpy, self.GD, sender, 1, failed), True)
        except BaseException:
            self.free.append(sender)
            self.abort()  # releases every connection of this window, this one too
            raise
        self.free.append(sender)
        self.done += 1

    def _lease(self, c):
        """``size`` connections no other window holds: a row image's own code may fire another
        immediate trigger while this window has calls in flight, and that window must not write on
        (and so lose) one of these connections."""
        out, slot = [], 1
        while len(out) < self.size:
            sender = _sender(self.GD, c, slot)
            if not sender.leased:
                sender.leased = True
                out.append(sender)
            slot += 1
        return out

    def close(self):
        """Complete every call still in flight, oldest first; the number completed in all."""
        while self.flight:
            self._complete_oldest()
        self._release()
        return self.done

    def abort(self):
        """Drop the connections of the calls in flight (their answers are never read)."""
        for _call, sender, _failed in self.flight:
            sender.close()
            sender.pending = None
            self.free.append(sender)
        self.flight = []
        self._release()

    def _release(self):
        for sender in self.free or ():
            sender.leased = False


def invoke(plpy, GD, function_name, payload, invocation_type="RequestResponse", log_type="None",
           qualifier=None, client_context=None, region=None, raise_function_error=True):
    """``invoke_raw`` for SQL callers: every LambdaFailure becomes a SQL error with its SQLSTATE."""
    try:
        return invoke_raw(plpy, GD, function_name, payload, invocation_type, log_type, qualifier,
                          client_context, region, raise_function_error)
    except LambdaFailure as failure:
        raise_lambda_error(plpy, failure)


_ERROR_CLASSES = {}


def _error_class(plpy, head):
    """A subclass of plpy.Error whose *name* is the head of the message.

    PL/Python reports an uncaught exception as ``<type name>: <value>`` (``plpy.Error: ...`` for
    plpy.error), so the message would not start with ``lambda <fn> failed``. A subclass named
    after that head, placed in ``builtins`` (whose module name PL/Python omits), yields exactly
    ``lambda <fn> failed: <errorType>: <errorMessage>``; being a plpy.Error, its ``sqlstate``,
    ``detail`` and ``hint`` attributes are honoured like plpy.error's keyword arguments.
    """
    key = (id(plpy.Error), head)
    cls = _ERROR_CLASSES.get(key)
    if cls is None:
        cls = _ERROR_CLASSES[key] = type(head, (plpy.Error,), {"__module__": "builtins"})
    return cls


def raise_lambda_error(plpy, failure):
    """Raise ``failure`` as a PostgreSQL error (SQLSTATE, message, DETAIL, HINT). Never returns."""
    head, sep, tail = failure.message.partition(": ")
    if not sep:
        head, tail = "sqlambda", failure.message
    exc = _error_class(plpy, head)(tail)
    exc.sqlstate = failure.sqlstate
    exc.detail = failure.detail
    exc.hint = failure.hint
    raise exc
