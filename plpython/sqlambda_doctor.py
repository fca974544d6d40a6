"""sqlambda_doctor: checks `sqlambda doctor` runs INSIDE the PostgreSQL server, where Lambda calls happen.

Owns: reporting the server's Python and boto3 versions, the settings the runtime would use, whether
the endpoint's host and port accept a TCP connection from the server, whether the server process
resolves AWS credentials (only the provider's name is reported, never a key), and whether the Lambda
API answers with them. Everything is measured through ``sqlambda_core`` (its settings and client),
so the doctor sees exactly what ``awslambda_fn`` would see.

Must not: ``import plpy`` (it is passed in), raise (every problem becomes a failed check with a
hint), or change anything in the database. The installer creates the function that runs this in
``pg_temp`` inside a transaction it rolls back, so nothing is left behind.
"""

from __future__ import annotations

import json
import socket
import sys
from urllib.parse import urlsplit

import sqlambda_core as core


def _check(name, ok, detail, hint=None):
    return {"name": name, "ok": bool(ok), "detail": detail, "hint": None if ok else hint}


def endpoint_of(cfg):
    """(url, host, port) the Lambda client will talk to."""
    url = cfg.get("endpoint_url") or "https://lambda.%s.amazonaws.com" % cfg["region"]
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return url, parts.hostname, port


def doctor(plpy, GD, endpoint_url=None):
    """All checks as a JSON array of {name, ok, detail, hint}.

    ``endpoint_url`` (``sqlambda doctor --endpoint-url``) checks that endpoint instead of the
    effective one; it changes nothing a call would use.
    """
    checks = []
    try:
        import boto3
        import botocore

        checks.append(_check("boto3 in server", True, "boto3 %s, botocore %s, Python %s"
                             % (boto3.__version__, botocore.__version__, sys.version.split()[0])))
    except ImportError as exc:
        checks.append(_check("boto3 in server", False, "cannot import boto3 inside PostgreSQL: %s" % exc,
                             core.HINT_BOTO3))
        return json.dumps(checks)

    try:
        cfg, rows = core.describe_settings(plpy, GD)
    except core.LambdaFailure as failure:
        checks.append(_check("settings", False, failure.message, failure.hint or "fix the sqlambda.* setting named above"))
        return json.dumps(checks)
    # each effective value and where it came from: the spec, a DBA's ALTER DATABASE / ALTER ROLE ALL
    # SET, or (timeouts and attempts only) this session lowering it
    shown = []
    for r in rows:
        value = r["value"] or ("(AWS default for the region)" if r["name"] == "endpoint_url" else "")
        shown.append("%s = %s [%s]%s" % (r["name"], value, r["source"], ("; " + r["note"]) if r["note"] else ""))
    checks.append(_check("settings", True, "; ".join(shown)))
    if endpoint_url:
        problem = core.endpoint_problem(endpoint_url)
        if problem:
            checks.append(_check("endpoint reachable", False, "--endpoint-url %s: %s" % (endpoint_url, problem),
                                 "pass http(s)://host[:port]"))
            return json.dumps(checks)
        cfg = dict(cfg, endpoint_url=endpoint_url)
    url, host, port = endpoint_of(cfg)

    hint_endpoint = core.HINT_ENDPOINT.format(endpoint=url, region=cfg["region"])
    try:
        with socket.create_connection((host, port), timeout=cfg["connect_timeout_ms"] / 1000.0):
            pass
        reachable = True
        checks.append(_check("endpoint reachable", True, "TCP %s:%d accepts connections from the server" % (host, port)))
    except OSError as exc:
        reachable = False
        checks.append(_check("endpoint reachable", False, "TCP %s:%d from the server: %s" % (host, port, exc), hint_endpoint))

    session = boto3.session.Session()
    creds = session.get_credentials()
    if creds is None:
        checks.append(_check("credentials resolve", False, "no AWS credentials found by the server process", core.HINT_CREDENTIALS))
        return json.dumps(checks)
    checks.append(_check("credentials resolve", True, "found by the server process (provider: %s)" % getattr(creds, "method", "unknown")))

    if not reachable:
        return json.dumps(checks)
    try:
        core.client(GD, cfg).list_functions(MaxItems=1)
        checks.append(_check("lambda api", True, "ListFunctions answered at %s" % url))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a check
        failure = core.classify("(doctor)", exc, cfg, cfg["region"])
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        if code in ("AccessDeniedException", "AccessDenied"):
            # credentials were accepted; only listing is not allowed, which invoking does not need
            checks.append(_check("lambda api", True, "credentials accepted (ListFunctions not allowed, which invoke does not need)"))
        else:
            message = failure.message if failure is not None else "%s: %s" % (type(exc).__name__, exc)
            hint = (failure.hint if failure is not None and failure.hint else hint_endpoint)
            checks.append(_check("lambda api", False, message, hint))
    return json.dumps(checks)
