"""sqlambda_core outside PostgreSQL: settings, limits, error mapping and the retry loop."""

import base64
import json
import socket

import pytest
import sqlambda_core as core
from botocore import exceptions as bx
from fake_plpy import FakePlpy


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def effective(row):
    return core.resolve_settings(row)[0]


def test_settings_fall_back_to_the_spec_and_validate_numbers():
    cfg = effective({"endpoint_url": "", "region": None, "max_attempts": "2"})
    assert cfg["region"] == core.DEFAULTS["region"] and cfg["endpoint_url"] == core.DEFAULTS["endpoint_url"]
    assert cfg["max_attempts"] == 2  # a session lowering it
    with pytest.raises(core.LambdaFailure) as e:
        effective({"request_timeout_ms": "soon"})
    assert e.value.sqlstate == "22023" and "request_timeout_ms" in e.value.message
    with pytest.raises(core.LambdaFailure):
        effective({"max_attempts": "0"})


def test_the_dba_sets_everything_through_the_catalog_and_the_session_nothing_but_lower_bounds():
    dba = {"endpoint_url": "http://lambda.internal:8443", "region": "eu-west-1", "request_timeout_ms": "5000",
           "max_attempts": "4", "connect_timeout_ms": "900"}
    session = {"endpoint_url": "http://127.0.0.1:9", "region": "us-west-2", "request_timeout_ms": "60000",
               "max_attempts": "2", "connect_timeout_ms": "100"}
    plpy = FakePlpy(database=dba, session=session)
    cfg, sources, ignored = core.resolve_settings(plpy.execute(("plan", ""))[0])
    assert cfg == {"endpoint_url": "http://lambda.internal:8443", "region": "eu-west-1", "request_timeout_ms": 5000,
                   "max_attempts": 2, "connect_timeout_ms": 100}
    assert sources == {"endpoint_url": "ALTER DATABASE SET", "region": "ALTER DATABASE SET",
                       "request_timeout_ms": "ALTER DATABASE SET", "max_attempts": "session (lowered)",
                       "connect_timeout_ms": "session (lowered)"}
    assert ignored == {"sqlambda.endpoint_url": "http://127.0.0.1:9", "sqlambda.region": "us-west-2",
                       "sqlambda.request_timeout_ms": "60000"}


def test_database_settings_override_cluster_wide_ones():
    plpy = FakePlpy(cluster={"region": "ap-south-1", "max_attempts": "5"}, database={"region": "eu-central-1"})
    cfg, sources, _ = core.resolve_settings(plpy.execute(("plan", ""))[0])
    assert (cfg["region"], sources["region"]) == ("eu-central-1", "ALTER DATABASE SET")
    assert (cfg["max_attempts"], sources["max_attempts"]) == (5, "ALTER ROLE ALL SET")


@pytest.mark.parametrize("name,value", [
    ("endpoint_url", "https://*"), ("endpoint_url", "http://user:pw@host"), ("endpoint_url", "http://host/prefix"),
    ("endpoint_url", "ftp://host"), ("endpoint_url", "http://host?x=1"), ("endpoint_url", "http://a b"),
    ("region", "evil.com#"), ("region", "us-east-1.attacker"), ("max_attempts", "many"), ("request_timeout_ms", "-1"),
])
def test_a_bad_dba_value_fails_every_call_naming_where_it_was_set(name, value):
    with pytest.raises(core.LambdaFailure) as e:
        effective({"database": [f"sqlambda.{name}={value}"]})
    assert e.value.sqlstate == "22023" and "ALTER DATABASE SET" in e.value.message and name in e.value.message


def test_settings_read_everything_with_one_cached_plan_and_warn_once_about_ignored_values():
    plpy = FakePlpy(database={"region": "eu-west-1", "endpoint_url": "http://x:1"}, session={"endpoint_url": "http://evil:1"})
    GD = {}
    cfg = core.settings(plpy, GD)
    core.settings(plpy, GD)
    assert cfg["region"] == "eu-west-1" and cfg["endpoint_url"] == "http://x:1"
    assert "sqlambda.settings_plan" in GD and len(plpy.executed) == 2
    assert len(plpy.warnings) == 1 and "ignored" in plpy.warnings[0][0] and "http://evil:1" in plpy.warnings[0][0]


def test_the_per_call_settings_query_never_builds_pg_settings():
    # pg_settings materializes every GUC of the server (most of a call's backend CPU when it was read
    # per call), and never lists a placeholder such as sqlambda.endpoint_url anyway
    assert "pg_settings" not in core._SETTINGS_SQL and "pg_show_all_settings" not in core._SETTINGS_SQL


def test_the_settings_query_resolves_nothing_through_the_search_path():
    # every function and operator spelled out: a caller's search_path (a superuser's too) must never
    # pick what runs while the settings are read
    sql = core._SETTINGS_SQL
    import re
    assert not re.search(r"(?<![.\w])(current_setting|current_database)\(", sql)
    assert " = " not in sql and "OPERATOR(pg_catalog.=)" in sql
    assert all(t.startswith("pg_catalog.") for t in re.findall(r"FROM ([\w.]+)", sql) + re.findall(r"JOIN ([\w.]+)", sql))


def test_configure_replaces_spec_defaults():
    saved = dict(core.DEFAULTS)
    try:
        core.configure({"region": "ap-south-1", "max_attempts": 7, "unknown": 1})
        assert effective({})["region"] == "ap-south-1"
        assert "unknown" not in core.DEFAULTS
    finally:
        core.DEFAULTS.clear()
        core.DEFAULTS.update(saved)


@pytest.mark.parametrize("url,ok", [
    ("http://127.0.0.1:4566", True), ("https://lambda.us-east-1.amazonaws.com", True), ("http://[::1]:80", True),
    ("https://vpce-1a2b.lambda.eu-west-1.vpce.amazonaws.com/", True),
    ("https://*", False), ("https://*.amazonaws.com", False), ("http://h/p", False), ("http://u@h", False),
    ("javascript:alert(1)", False), ("http://h:0", False), ("http://h:99999", False), ("", False), ("http://h\n", False),
])
def test_endpoint_rule(url, ok):
    assert (core.endpoint_problem(url) is None) is ok


def test_client_is_cached_per_settings():
    GD = {}
    cfg = effective({"database": ["sqlambda.endpoint_url=http://127.0.0.1:9"]})
    a = core.client(GD, cfg)
    assert core.client(GD, cfg) is a
    assert core.client(GD, dict(cfg, request_timeout_ms=1234)) is not a
    assert core.client(GD, cfg, region="eu-central-1") is not a
    assert a.meta.config.retries["total_max_attempts"] == 1  # botocore must not retry on its own


@pytest.mark.parametrize("itype,limit", [("RequestResponse", core.SYNC_LIMIT), ("Event", core.ASYNC_LIMIT), ("DryRun", core.SYNC_LIMIT)])
def test_payload_limits(itype, limit):
    assert len(core.encode_payload("f", "x" * limit, itype)) == limit
    with pytest.raises(core.LambdaFailure) as e:
        core.encode_payload("f", "x" * (limit + 1), itype)
    assert e.value.sqlstate == "54000" and "nothing was sent" in e.value.message


def test_multibyte_payload_is_measured_in_bytes():
    with pytest.raises(core.LambdaFailure):
        core.encode_payload("f", "é" * (core.ASYNC_LIMIT // 2 + 1), "Event")


def test_bad_json_is_22P02_with_the_text_in_detail():
    with pytest.raises(core.LambdaFailure) as e:
        core.check_json("f", "{nope")
    assert e.value.sqlstate == "22P02" and e.value.detail == "{nope"
    core.check_json("f", '{"ok": [1, 2.5, null]}')


def test_function_error_message_names_type_and_message():
    body = json.dumps({"errorType": "ValueError", "errorMessage": "bad order 7", "stackTrace": ["x"] * 500})
    f = core.function_error("orders", "Unhandled", body.encode())
    assert f.sqlstate == "LA001"
    assert f.message == "lambda orders failed: ValueError: bad order 7"
    assert f.detail.startswith('{"errorType"') and len(f.detail) < len(body)


def test_function_error_without_json_body():
    f = core.function_error("orders", "Unhandled", b"Process exited before completing request")
    assert f.message == "lambda orders failed: Unhandled: Process exited before completing request"


def _client_error(code, status, message="m"):
    return bx.ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Invoke")


@pytest.mark.parametrize("exc,sqlstate,retryable", [
    (_client_error("TooManyRequestsException", 429), "LA002", True),
    (_client_error("ServiceException", 500), "LA006", True),
    (_client_error("ResourceNotReadyException", 502), "LA006", True),
    (_client_error("ResourceNotFoundException", 404, "Function not found: arn:..."), "42883", False),
    (_client_error("RequestTooLargeException", 413), "54000", False),
    (_client_error("UnrecognizedClientException", 403), "LA005", False),
    (_client_error("InvalidRequestContentException", 400), "22023", False),
    (bx.EndpointConnectionError(endpoint_url="http://x"), "LA004", True),
    (bx.ConnectionClosedError(endpoint_url="http://x"), "LA004", True),
    (bx.ConnectTimeoutError(endpoint_url="http://x"), "LA004", True),
    (bx.ReadTimeoutError(endpoint_url="http://x"), "LA003", False),
    (bx.NoCredentialsError(), "LA005", False),
])
def test_classification(exc, sqlstate, retryable):
    f = core.classify("fn", exc, effective({}), "us-east-1")
    assert (f.sqlstate, f.retryable) == (sqlstate, retryable)
    assert f.message.startswith("lambda fn failed: ")
    if sqlstate in ("LA004",):
        assert "sqlambda.endpoint_url" in f.hint
    if sqlstate == "LA005":
        assert "credentials" in f.hint


def test_unknown_exception_is_not_swallowed():
    assert core.classify("fn", KeyError("x"), effective({}), "us-east-1") is None


def test_missing_credentials_fail_with_the_credentials_hint(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    plpy = FakePlpy(database={"endpoint_url": f"http://127.0.0.1:{_closed_port()}"})
    with pytest.raises(core.LambdaFailure) as e:
        core.invoke_raw(plpy, {}, "echo", "{}")
    assert e.value.sqlstate == "LA005" and "default chain" in e.value.hint


def test_endpoint_down_retries_then_fails_with_hint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    port = _closed_port()
    plpy = FakePlpy(database={"endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": "3", "connect_timeout_ms": "500"})
    with pytest.raises(core.LambdaFailure) as e:
        core.invoke_raw(plpy, {}, "echo", "{}")
    assert e.value.sqlstate == "LA004"
    assert "(after 3 attempts)" in e.value.message
    assert f"127.0.0.1:{port}" in e.value.hint
    # two backoff sleeps went through pg_sleep so a query cancel can interrupt them
    assert sum(1 for q in plpy.executed if isinstance(q, str) and "pg_sleep" in q) == 2


def test_bad_parameters_fail_before_anything_is_sent():
    plpy = FakePlpy()
    for kwargs in ({"invocation_type": "Later"}, {"log_type": "Full"}):
        with pytest.raises(core.LambdaFailure) as e:
            core.invoke_raw(plpy, {}, "echo", "{}", **kwargs)
        assert e.value.sqlstate == "22023"
    assert plpy.executed == []


def test_client_context_is_base64_json():
    assert json.loads(base64.b64decode(core.client_context_b64({"custom": {"a": 1}}))) == {"custom": {"a": 1}}
    assert core.client_context_b64(None) is None
    with pytest.raises(core.LambdaFailure):
        core.client_context_b64({"x": "y" * 4000})


def test_raise_lambda_error_keeps_the_message_whole_and_sets_sqlstate():
    plpy = FakePlpy()
    f = core.LambdaFailure("LA001", "lambda echo failed: ValueError: boom", detail="{...}", hint="h")
    with pytest.raises(plpy.Error) as e:
        core.raise_lambda_error(plpy, f)
    # PL/Python prints "<type name>: <value>" and omits the module for builtins
    assert f"{type(e.value).__name__}: {e.value}" == "lambda echo failed: ValueError: boom"
    assert type(e.value).__module__ == "builtins"
    assert (e.value.sqlstate, e.value.detail, e.value.hint) == ("LA001", "{...}", "h")


def test_backoff_is_bounded():
    for attempt in range(1, 20):
        assert 0 <= core.backoff_delay(attempt) <= core.BACKOFF_CAP_S
