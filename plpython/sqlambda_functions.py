"""sqlambda_functions: the entry points of sqlambda's SQL functions, inside PostgreSQL.

Owns: what each SQL function does with its arguments and what it returns —
``awslambda_fn`` / ``awslambda_fn_async`` (the awslabs-compatible generic functions),
``sqlambda.invoke()``, ``sqlambda.settings()``, the RDS-compatible ``aws_lambda.invoke()``, and the typed per-function
wrappers (arguments -> JSON payload without losing precision, ``returns.path`` -> SQL value).

Must not: ``import plpy`` (it is passed in), talk to Lambda other than through
``sqlambda_core.invoke``, or know about templates. Failures raise through
``sqlambda_core.raise_lambda_error`` so every error has a SQLSTATE.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import uuid
from decimal import Decimal

import sqlambda_core as core
from sqlambda_core import LambdaFailure

# -- the awslabs-compatible generic functions -----------------------------------------------------


def awslambda_fn(plpy, GD, fn_name, fn_args):
    """Synchronous call; returns the Lambda's response payload as text (awslabs semantics)."""
    try:
        core.check_json(fn_name, fn_args)
        out = core.invoke_raw(plpy, GD, fn_name, fn_args, "RequestResponse")
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)
    return out["payload"]


def awslambda_fn_async(plpy, GD, fn_name, fn_args):
    """Asynchronous (Event) call; returns the response payload like the awslabs original did.

    The original PL/Python, Java and MySQL versions all returned ``response['Payload']`` of the
    Event invocation, which Lambda leaves empty: so this returns '' once Lambda accepted the
    event (HTTP 202) and raises otherwise. ``sqlambda.invoke(..., 'Event')`` gives the status.
    """
    try:
        core.check_json(fn_name, fn_args)
        out = core.invoke_raw(plpy, GD, fn_name, fn_args, "Event")
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)
    return out["payload"]


# -- sqlambda.settings() ------------------------------------------------------------------------


def settings_table(plpy, GD):
    """``<schema>.settings()``: the effective settings, where each came from, the spec's values."""
    try:
        return core.settings_table(plpy, GD)
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)


# -- sqlambda.invoke() --------------------------------------------------------------------------


def _json_or_string(text):
    """Response payload as jsonb text: JSON stays JSON, anything else becomes a JSON string."""
    if text is None or text == "":
        return None
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(text)


def invoke(plpy, GD, function_name, payload, invocation_type, log_type, qualifier, client_context, region):
    """``sqlambda.invoke()``: every Invoke option, result as (status_code, payload, executed_version, log_result)."""
    try:
        out = core.invoke_raw(plpy, GD, function_name, payload, invocation_type or "RequestResponse",
                              log_type or "None", qualifier, client_context, region)
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)
    return {
        "status_code": out["status_code"],
        "payload": _json_or_string(out["payload"]),
        "executed_version": out["executed_version"],
        "log_result": out["log_result"],
    }


# -- RDS / Aurora aws_lambda compatibility --------------------------------------------------------

_ARN_REGION = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):")
#: the qualifier a function name carries (name:qualifier, partial or full ARN with :qualifier)
_NAME_QUALIFIER = re.compile(r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
                             r"[A-Za-z0-9_.-]+:(\$LATEST|[A-Za-z0-9_-]+)$")
_COMPOSITE_TEXT = re.compile(r"^\((\"(?:[^\"]|\"\")*\"|[^,()]*),(\"(?:[^\"]|\"\")*\"|[^,()]*)\)$")


def _unquote_field(text):
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text or None


def rds_split_name(function_name):
    """(name, region) from the text overload's argument.

    psql's ``\\gset`` of ``aws_commons.create_lambda_function_arn(...)`` yields the composite's text
    form ``(my-function,us-east-1)``; passed as ``:'aws_lambda_arn_1'`` (an untyped literal) it
    resolves to the *text* overload, so AWS's documented examples only work if that form is read
    back here. A Lambda function name can never contain parentheses, so this is unambiguous.
    """
    m = _COMPOSITE_TEXT.match(function_name or "")
    if m:
        return _unquote_field(m.group(1)), _unquote_field(m.group(2))
    return function_name, None


def rds_invoke(plpy, GD, function_name, payload, region, invocation_type, log_type, context, qualifier,
               shape="by_name"):
    """``aws_lambda.invoke()`` (every overload): same parameters and result columns as on RDS.

    ``function_name`` is text or the ``aws_commons._lambda_function_arn_1`` composite (a dict here).
    ``log_result`` is returned base64-encoded, as the Lambda API returns it. Settings are the
    aws_lambda extension's (``aws_lambda.connect_timeout_ms``, ``request_timeout_ms``,
    ``endpoint_override`` and their documented defaults), under sqlambda's rules.
    """
    if isinstance(function_name, dict):
        name, arn_region = function_name.get("function_name"), function_name.get("region")
    else:
        name, arn_region = rds_split_name(function_name)
        if shape == "by_name6" and invocation_type not in core.INVOCATION_TYPES and log_type in core.INVOCATION_TYPES:
            # the six-argument text overload caught a call shaped like the documented text overload
            # (name, payload, region, invocation_type, log_type, context): read it that way
            region, invocation_type, log_type, context, qualifier = invocation_type, log_type, context, qualifier, None
        elif shape == "by_name" and name != function_name and region in core.INVOCATION_TYPES:
            # The caller meant the by-ARN overload, whose third argument is invocation_type, but
            # PostgreSQL resolved the untyped '(name,region)' literal to the text overload: shift
            # the arguments back (a region is never called RequestResponse, Event or DryRun).
            # (with three arguments the log_type slot still holds the default 'RequestResponse'; with
            # five, the log_type slot holds the client context)
            shifted_context = log_type if log_type not in core.LOG_TYPES else None
            region, invocation_type, log_type = None, region, invocation_type if invocation_type in core.LOG_TYPES else "None"
            context = context if context is not None else shifted_context
    try:
        name, region, qualifier = rds_resolve(name, region, arn_region, qualifier)
        cfg = core.settings(plpy, GD, rds=True)
        out = core.invoke_raw(plpy, GD, name, payload, invocation_type or "RequestResponse", log_type or "None",
                              qualifier, context, region, cfg=cfg)
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)
    return {
        "status_code": out["status_code"],
        "payload": _json_or_string(out["payload"]),
        "executed_version": out["executed_version"],
        "log_result": out["log_result_b64"],
    }


def rds_resolve(name, region, arn_region, qualifier):
    """(name, region, qualifier) of an ``aws_lambda.invoke()`` call, or LambdaFailure when they conflict,
    as AWS documents: a region that is not the ARN's, a composite whose region is not its ARN's, a
    qualifier that is not the one the name carries. Lambda's own wording for the qualifier case."""
    m = _ARN_REGION.match(name or "")
    for given, where in ((region, "the region argument"), (arn_region, "the region of the aws_commons._lambda_function_arn_1 value")):
        if m and given and m.group(1) != given:
            raise LambdaFailure("22023", "%s %r conflicts with the region %r of the function ARN %s" % (where, given, m.group(1), name))
    if region and arn_region and region != arn_region:
        raise LambdaFailure("22023", "the region argument %r conflicts with the region %r of the function reference" % (region, arn_region))
    derived = _NAME_QUALIFIER.match(name or "")
    if derived and qualifier and derived.group(1) != qualifier:
        raise LambdaFailure("22023", "The derived qualifier from the function name does not match the specified qualifier. "
                            "(%s, qualifier %r)" % (name, qualifier))
    return name, region or arn_region or (m.group(1) if m else None), qualifier


# -- typed wrappers: arguments -> JSON ---------------------------------------------------------------

_TZ_HOURS = re.compile(r"([+-]\d\d)$")


class RawJSON(str):
    """Text that already is JSON (a json/jsonb argument): embedded as is, not re-encoded."""


def to_json(value):
    """Exact JSON text: Decimal stays a number digit for digit, RawJSON is embedded, no NaN."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, RawJSON):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("%s is not a JSON number" % value)
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("%r is not a JSON number" % value)
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + to_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    raise TypeError("cannot encode %s as JSON" % type(value).__name__)


def arg_to_json_value(value, sql_type):
    """One SQL argument, as PL/Python hands it over, converted for ``to_json``.

    The wrapper runs with ``DateStyle = ISO`` so dates and timestamps arrive as
    ``2024-05-01 10:00:00+02``; JSON gets ISO 8601 (``2024-05-01T10:00:00+02:00``).
    """
    if value is None:
        return None
    if sql_type in ("jsonb", "json"):
        return RawJSON(value)
    if sql_type in ("timestamp", "timestamptz"):
        text = value.replace(" ", "T", 1)
        return _TZ_HOURS.sub(r"\1:00", text) if sql_type == "timestamptz" else text
    if sql_type == "numeric":
        return value if isinstance(value, Decimal) else Decimal(str(value))
    return value


def build_payload(arg_names, arg_types, values):
    """The JSON object text {name: value} sent to the Lambda, keys in declaration order."""
    parts = []
    for name, sql_type, value in zip(arg_names, arg_types, values):
        try:
            encoded = to_json(arg_to_json_value(value, sql_type))
        except (ValueError, TypeError) as exc:
            raise LambdaFailure("22023", "argument %s (%s) cannot be sent as JSON: %s" % (name, sql_type, exc)) from None
        parts.append(json.dumps(name) + ":" + encoded)
    return "{" + ",".join(parts) + "}"


# -- typed wrappers: result -> SQL value --------------------------------------------------------------

_PATH_TOKEN = re.compile(r"([A-Za-z0-9_]+)|\[(\d+)\]")
_MISSING = object()
INT_RANGES = {
    "smallint": (-(2 ** 15), 2 ** 15 - 1),
    "integer": (-(2 ** 31), 2 ** 31 - 1),
    "bigint": (-(2 ** 63), 2 ** 63 - 1),
}


def parse_path(path):
    """``items[0].id`` -> ['items', 0, 'id']."""
    out = []
    for part in path.split("."):
        for key, index in _PATH_TOKEN.findall(part):
            out.append(int(index) if index else key)
    return out


def extract(doc, path):
    """The value at ``path`` in ``doc``, or _MISSING."""
    cur = doc
    for step in parse_path(path):
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return _MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return _MISSING
            cur = cur[step]
    return cur


def _describe(value):
    return to_json(value) if not isinstance(value, float) else repr(value)


def convert_result(value, sql_type):
    """A JSON value -> the Python value PL/Python turns into ``sql_type``; ValueError if it does not fit."""
    if value is None:
        return None
    if sql_type in ("jsonb", "json"):
        return to_json(value)
    if sql_type in ("text", "varchar"):
        return value if isinstance(value, str) else to_json(value)
    if isinstance(value, bool):
        if sql_type == "boolean":
            return value
        raise ValueError("a JSON boolean is not a %s" % sql_type)
    if sql_type == "boolean":
        raise ValueError("expected a JSON boolean")
    if sql_type in INT_RANGES:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("not an integer") from None
        elif isinstance(value, Decimal):
            if value != value.to_integral_value():
                raise ValueError("not an integer")
            value = int(value)
        elif isinstance(value, float):
            if not value.is_integer():
                raise ValueError("not an integer")
            value = int(value)
        elif not isinstance(value, int):
            raise ValueError("expected a JSON number")
        lo, hi = INT_RANGES[sql_type]
        if not lo <= value <= hi:
            raise ValueError("out of range for %s" % sql_type)
        return value
    if sql_type == "numeric":
        if isinstance(value, (int, Decimal)):
            return Decimal(value)
        if isinstance(value, str):
            try:
                return Decimal(value.strip())
            except ArithmeticError:
                raise ValueError("not a number") from None
        raise ValueError("expected a JSON number")
    if sql_type in ("double precision", "real"):
        if isinstance(value, (int, float, Decimal)):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise ValueError("expected a JSON number")
    if not isinstance(value, str):
        raise ValueError("expected a JSON string")
    if sql_type == "uuid":
        return str(uuid.UUID(value))
    if sql_type == "date":
        datetime.date.fromisoformat(value)
        return value
    if sql_type in ("timestamp", "timestamptz"):
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        return value
    raise ValueError("unsupported return type %s" % sql_type)


def _json_result(fn, payload_text):
    """The Lambda's response payload parsed (numbers as Decimal, digit for digit), or LA007."""
    try:
        return json.loads(payload_text, parse_float=Decimal)
    except (TypeError, ValueError):
        raise LambdaFailure("LA007", "lambda %s returned a result that is not JSON" % fn["lambda"],
                            detail=core.trim(payload_text)) from None


def result_value(fn, payload_text):
    """Apply ``returns`` (type, path) of the wrapper definition ``fn`` to the response payload."""
    rtype = fn["returns"]["type"]
    path = fn["returns"].get("path")
    if not path and rtype in ("jsonb", "json"):
        return payload_text if payload_text not in (None, "") else None
    doc = _json_result(fn, payload_text)
    value = extract(doc, path) if path else doc
    if value is _MISSING:
        raise LambdaFailure(
            "LA007", "%s: the result of lambda %s has no %s" % (fn["name"], fn["lambda"], path),
            detail=core.trim(payload_text),
            hint="fix returns.path in the spec or the function's result",
        )
    try:
        return convert_result(value, rtype)
    except (ValueError, ArithmeticError) as exc:
        raise LambdaFailure(
            "LA007",
            "%s: %s = %s in the result of lambda %s does not fit %s: %s"
            % (fn["name"], path or "the result", core.trim(_describe(value), 200), fn["lambda"], rtype, exc),
            detail=core.trim(payload_text),
        ) from None


def result_rows(fn, payload_text):
    """A set-returning wrapper: each element of the array at ``returns.path`` becomes one row, its
    columns taken at their paths and converted like scalar results (missing -> NULL). A JSON null or
    a missing path means no rows; anything else that is not an array is an error."""
    ret = fn["returns"]
    items = extract(_json_result(fn, payload_text), ret["path"]) if ret.get("path") else _json_result(fn, payload_text)
    if items is _MISSING or items is None:
        return []
    if not isinstance(items, list):
        raise LambdaFailure(
            "LA007", "%s: %s in the result of lambda %s is not an array" % (fn["name"], ret.get("path") or "the result", fn["lambda"]),
            detail=core.trim(payload_text), hint="fix returns.path in the spec or the function's result")
    rows = []
    for index, item in enumerate(items):
        row = []
        for column, sql_type, path in ret["columns"]:
            value = extract(item, path)
            try:
                row.append(None if value is _MISSING else convert_result(value, sql_type))
            except (ValueError, ArithmeticError) as exc:
                raise LambdaFailure(
                    "LA007", "%s: row %d, column %s: %s = %s in the result of lambda %s does not fit %s: %s"
                    % (fn["name"], index, column, path, core.trim(_describe(value), 200), fn["lambda"], sql_type, exc),
                    detail=core.trim(payload_text)) from None
        rows.append(row)
    return rows


def call_function(plpy, GD, fn, values):
    """A typed wrapper: ``fn`` is the spec function (rendered as a dict), ``values`` its arguments in order."""
    try:
        payload = build_payload(fn["arg_names"], fn["arg_types"], values)
        if fn["mode"] == "async":
            out = core.invoke_raw(plpy, GD, fn["lambda"], payload, "Event", qualifier=fn.get("qualifier"))
            return json.dumps({"status_code": out["status_code"], "request_id": out.get("request_id")})
        out = core.invoke_raw(plpy, GD, fn["lambda"], payload, "RequestResponse", qualifier=fn.get("qualifier"))
        if fn["returns"]["type"] == "table":
            rows = result_rows(fn, out["payload"])
            # RETURNS TABLE with one column is a set of scalars to PL/Python, not of one-item rows
            return [r[0] for r in rows] if len(fn["returns"]["columns"]) == 1 else rows
        return result_value(fn, out["payload"])
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)


# -- modernize: a router's Lambda -------------------------------------------------------------------


def call_payload(plpy, GD, fn, payload):
    """``<name>__lambda(payload jsonb)``: the router built the payload (jsonb text); the value at
    ``fn['path']`` (all of the result without one) comes back as JSON text, NULL for JSON null, and
    the router casts it to the original's result type. Errors carry the Lambda's errorType/message."""
    try:
        out = core.invoke_raw(plpy, GD, fn["lambda"], payload, "RequestResponse", qualifier=fn.get("qualifier"))
        text = out["payload"]
        doc = _json_result(fn, text)
        value = extract(doc, fn["path"]) if fn.get("path") else doc
        if value is _MISSING:
            raise LambdaFailure("LA007", "%s: the result of lambda %s has no %s" % (fn["name"], fn["lambda"], fn["path"]),
                                detail=core.trim(text), hint="fix modernize[].path in the spec or the function's result")
        return None if value is None else to_json(value)
    except LambdaFailure as failure:
        core.raise_lambda_error(plpy, failure)
