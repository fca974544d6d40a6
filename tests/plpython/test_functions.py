"""sqlambda_functions outside PostgreSQL: payload building, result extraction, RDS name parsing."""

import json
from decimal import Decimal

import pytest
import sqlambda_core as core
import sqlambda_functions as fx


def test_payload_keeps_numeric_digits_and_types():
    text = fx.build_payload(
        ["id", "amount", "ratio", "ok", "note", "meta", "missing", "day", "at", "at_local"],
        ["bigint", "numeric", "double precision", "boolean", "text", "jsonb", "text", "date", "timestamptz", "timestamp"],
        [9007199254740993, Decimal("12345678901234567890.123456789"), 0.1, True, 'say "hi" é',
         '{"a": [1, 2.50]}', None, "2024-05-01", "2024-05-01 10:00:00.5+02", "2024-05-01 10:00:00"],
    )
    # digits survive exactly (a float would round both of these)
    assert '"id":9007199254740993' in text
    assert '"amount":12345678901234567890.123456789' in text
    doc = json.loads(text, parse_float=Decimal)
    assert doc["ratio"] == Decimal("0.1") and doc["ok"] is True and doc["note"] == 'say "hi" é'
    assert doc["meta"] == {"a": [1, Decimal("2.50")]}
    assert doc["missing"] is None
    assert doc["day"] == "2024-05-01"
    assert doc["at"] == "2024-05-01T10:00:00.5+02:00"
    assert doc["at_local"] == "2024-05-01T10:00:00"
    assert list(doc) == ["id", "amount", "ratio", "ok", "note", "meta", "missing", "day", "at", "at_local"]


def test_timestamptz_with_minutes_offset_is_left_alone():
    assert fx.arg_to_json_value("2024-05-01 10:00:00+05:30", "timestamptz") == "2024-05-01T10:00:00+05:30"


@pytest.mark.parametrize("value,sql_type", [(Decimal("NaN"), "numeric"), (float("inf"), "double precision")])
def test_non_finite_numbers_are_refused(value, sql_type):
    with pytest.raises(core.LambdaFailure) as e:
        fx.build_payload(["x"], [sql_type], [value])
    assert e.value.sqlstate == "22023" and "argument x" in e.value.message


@pytest.mark.parametrize("path,expected", [
    ("Status", "OK"), ("items[1].id", 7), ("deep.a.b", [1]), ("items[0]", {"id": 3}),
])
def test_extract(path, expected):
    doc = {"Status": "OK", "items": [{"id": 3}, {"id": 7}], "deep": {"a": {"b": [1]}}}
    assert fx.extract(doc, path) == expected


@pytest.mark.parametrize("path", ["Nope", "items[5].id", "Status.x", "deep[0]"])
def test_extract_missing(path):
    doc = {"Status": "OK", "items": [{"id": 3}], "deep": {"a": 1}}
    assert fx.extract(doc, path) is fx._MISSING


def _fn(rtype, path):
    return {"name": "w", "lambda": "echo", "returns": {"type": rtype, "path": path}}


@pytest.mark.parametrize("rtype,value,expected", [
    ("text", "OK", "OK"), ("text", 42, "42"), ("varchar", {"a": 1}, '{"a":1}'),
    ("integer", 42, 42), ("bigint", "9007199254740993", 9007199254740993), ("smallint", 5.0, 5),
    ("numeric", "1.10", Decimal("1.10")),
    ("double precision", 0.5, 0.5), ("real", 2, 2.0),
    ("boolean", False, False), ("jsonb", {"a": [1, 2.5]}, '{"a":[1,2.5]}'),
    ("date", "2024-02-29", "2024-02-29"), ("timestamptz", "2024-02-29T10:00:00Z", "2024-02-29T10:00:00Z"),
    ("timestamp", "2024-02-29T10:00:00", "2024-02-29T10:00:00"),
    ("uuid", "12345678-1234-5678-1234-567812345678", "12345678-1234-5678-1234-567812345678"),
    ("integer", None, None),
])
def test_result_conversion(rtype, value, expected):
    assert fx.result_value(_fn(rtype, "v"), json.dumps({"v": value})) == expected


def test_numeric_result_keeps_every_digit():
    # beyond float precision: parsed as Decimal, never through float
    assert fx.result_value(_fn("numeric", "v"), '{"v": 12345678901234567890.5}') == Decimal("12345678901234567890.5")


@pytest.mark.parametrize("rtype,value", [
    ("integer", "abc"), ("integer", 2 ** 31), ("smallint", 40000), ("integer", 1.5), ("integer", True),
    ("boolean", "yes"), ("date", "tomorrow"), ("uuid", "nope"), ("numeric", [1]), ("timestamptz", 5),
])
def test_result_that_does_not_fit(rtype, value):
    with pytest.raises(core.LambdaFailure) as e:
        fx.result_value(_fn(rtype, "v"), json.dumps({"v": value}))
    assert e.value.sqlstate == "LA007" and f"does not fit {rtype}" in e.value.message


def test_missing_path_is_a_clear_error_with_the_payload():
    with pytest.raises(core.LambdaFailure) as e:
        fx.result_value(_fn("text", "Status"), '{"status": "ok"}')
    assert e.value.sqlstate == "LA007"
    assert e.value.message == "w: the result of lambda echo has no Status"
    assert e.value.detail == '{"status": "ok"}'


def test_jsonb_without_path_returns_the_payload_untouched():
    raw = '{"n": 1.000000000000000000001}'
    assert fx.result_value(_fn("jsonb", None), raw) == raw


def test_jsonb_path_keeps_digits():
    assert fx.result_value(_fn("jsonb", "a"), '{"a": {"n": 1.000000000000000000001}}') == '{"n":1.000000000000000000001}'


@pytest.mark.parametrize("text,expected", [
    ("(my-function,us-east-1)", ("my-function", "us-east-1")),
    ("(my-function,)", ("my-function", None)),
    ('("arn:aws:lambda:us-east-1:123456789012:function:f",us-east-1)', ("arn:aws:lambda:us-east-1:123456789012:function:f", "us-east-1")),
    ("my-function", ("my-function", None)),
    ("arn:aws:lambda:eu-west-1:123456789012:function:f:prod", ("arn:aws:lambda:eu-west-1:123456789012:function:f:prod", None)),
])
def test_rds_text_form_of_the_arn_composite(text, expected):
    assert fx.rds_split_name(text) == expected


def test_json_or_string():
    assert fx._json_or_string("") is None
    assert fx._json_or_string('{"a":1}') == '{"a":1}'
    assert fx._json_or_string("plain") == '"plain"'


class _Recorder:
    """Captures the arguments rds_invoke hands to sqlambda_core.invoke_raw."""

    def __init__(self):
        self.calls = []

    def __call__(self, plpy, GD, name, payload, invocation_type, log_type, qualifier, context, region, cfg=None):
        self.calls.append({"name": name, "invocation_type": invocation_type, "log_type": log_type, "region": region,
                           "context": context, "qualifier": qualifier, "cfg": cfg})
        return {"status_code": 200, "payload": "{}", "executed_version": "$LATEST", "log_result_b64": None}


@pytest.fixture(autouse=True)
def _rds_settings(monkeypatch):
    """aws_lambda.invoke reads the aws_lambda.* settings: the catalog query is replaced by its defaults."""
    monkeypatch.setattr(core, "settings", lambda plpy, GD, rds=False: core.resolve_settings({}, rds)[0])


@pytest.mark.parametrize("args,expected", [
    # aws_lambda.invoke(:'aws_lambda_arn_1', payload, 'RequestResponse', 'Tail') resolved to the text overload
    (("(echo,us-west-2)", "{}", "RequestResponse", "Tail", "None", None, None), ("echo", "RequestResponse", "Tail", "us-west-2")),
    (("(echo,us-west-2)", "{}", "Event", "RequestResponse", "None", None, None), ("echo", "Event", "None", "us-west-2")),
    (("(echo,)", "{}", "RequestResponse", "None", '{"custom": {"k": "v"}}', None, None), ("echo", "RequestResponse", "None", None)),
    # a real region stays a region
    (("echo", "{}", "eu-west-1", "Event", "None", None, None), ("echo", "Event", "None", "eu-west-1")),
    (("arn:aws:lambda:eu-west-1:123456789012:function:echo", "{}", None, "RequestResponse", "None", None, None),
     ("arn:aws:lambda:eu-west-1:123456789012:function:echo", "RequestResponse", "None", "eu-west-1")),
])
def test_rds_invoke_argument_resolution(monkeypatch, args, expected):
    rec = _Recorder()
    monkeypatch.setattr(core, "invoke_raw", rec)
    fx.rds_invoke(None, {}, *args)
    c = rec.calls[0]
    assert (c["name"], c["invocation_type"], c["log_type"], c["region"]) == expected


def test_rds_invoke_region_conflict(monkeypatch):
    from fake_plpy import FakePlpy

    plpy = FakePlpy()
    monkeypatch.setattr(core, "invoke_raw", _Recorder())
    with pytest.raises(plpy.Error) as e:
        fx.rds_invoke(plpy, {}, "arn:aws:lambda:eu-west-1:123456789012:function:echo", "{}", "us-east-1", None, None, None, None)
    assert e.value.sqlstate == "22023" and "conflicts" in str(e.value)


@pytest.mark.parametrize("args,expected", [
    # the documented six-argument call with a psql variable: by_name6 reads it as the by-ARN overload
    (("(echo,us-west-2)", "{}", None, "RequestResponse", "None", None, "custom_version"),
     ("echo", "RequestResponse", "None", "us-west-2", "custom_version")),
    # a text-overload call that by_name6 caught (region in third place): read as the text overload
    (("echo", "{}", None, "eu-west-1", "Event", "None", None), ("echo", "Event", "None", "eu-west-1", None)),
    (("echo", "{}", None, None, "RequestResponse", "Tail", None), ("echo", "RequestResponse", "Tail", None, None)),
])
def test_rds_invoke_six_argument_overload(monkeypatch, args, expected):
    rec = _Recorder()
    monkeypatch.setattr(core, "invoke_raw", rec)
    fx.rds_invoke(None, {}, *args, shape="by_name6")
    c = rec.calls[0]
    assert (c["name"], c["invocation_type"], c["log_type"], c["region"], c["qualifier"]) == expected
    assert c["cfg"]["request_timeout_ms"] == 3000 and c["cfg"]["connect_timeout_ms"] == 1000  # the documented defaults


@pytest.mark.parametrize("name,region,qualifier,word", [
    ({"function_name": "arn:aws:lambda:eu-west-1:123456789012:function:echo", "region": "us-east-1"}, None, None, "conflicts"),
    ("arn:aws:lambda:eu-west-1:123456789012:function:echo:v1", None, "v2", "derived qualifier"),
    ("echo:live", None, "v3", "derived qualifier"),
    ("123456789012:function:echo:live", None, "prod", "derived qualifier"),
    ({"function_name": "echo", "region": "us-east-1"}, "eu-west-1", None, "conflicts"),
])
def test_rds_invoke_documented_conflicts_raise(monkeypatch, name, region, qualifier, word):
    from fake_plpy import FakePlpy

    plpy = FakePlpy()
    monkeypatch.setattr(core, "invoke_raw", _Recorder())
    with pytest.raises(plpy.Error) as e:
        fx.rds_invoke(plpy, {}, name, "{}", region, None, None, None, qualifier)
    assert e.value.sqlstate == "22023" and word in str(e.value)


def test_rds_invoke_matching_qualifier_and_region_pass(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(core, "invoke_raw", rec)
    fx.rds_invoke(None, {}, "arn:aws:lambda:eu-west-1:123456789012:function:echo:v1", "{}", "eu-west-1", None, None, None, "v1")
    assert (rec.calls[0]["region"], rec.calls[0]["qualifier"]) == ("eu-west-1", "v1")


def test_rds_invoke_shifted_client_context(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(core, "invoke_raw", rec)
    fx.rds_invoke(None, {}, "(echo,)", "{}", "RequestResponse", "None", '{"custom": {"k": "v"}}', None, None)
    assert rec.calls[0]["context"] == '{"custom": {"k": "v"}}'


def _table_fn(path="items"):
    return {"name": "w", "lambda": "echo", "returns": {"type": "table", "path": path, "columns": [
        ["id", "bigint", "id"], ["at", "timestamptz", "meta.at"], ["doc", "jsonb", "doc"], ["note", "text", "note"]]}}


def test_table_rows_typed_in_order_missing_is_null():
    payload = json.dumps({"items": [{"id": 2, "meta": {"at": "2024-02-29T10:00:00Z"}, "doc": {"a": [1, 2.5]}},
                                    {"id": "1", "note": 7}]})
    assert fx.result_rows(_table_fn(), payload) == [
        [2, "2024-02-29T10:00:00Z", '{"a":[1,2.5]}', None], [1, None, None, "7"]]


@pytest.mark.parametrize("payload", ['{"items": []}', '{"items": null}', '{"other": 1}'])
def test_table_no_rows(payload):
    assert fx.result_rows(_table_fn(), payload) == []


def test_table_path_not_an_array_and_bad_cell_are_clear_errors():
    with pytest.raises(core.LambdaFailure) as exc:
        fx.result_rows(_table_fn(), '{"items": {"id": 1}}')
    assert exc.value.sqlstate == "LA007" and "items in the result of lambda echo is not an array" in exc.value.message
    with pytest.raises(core.LambdaFailure) as exc:
        fx.result_rows(_table_fn(), '{"items": [{"id": 1}, {"id": "x"}]}')
    assert exc.value.sqlstate == "LA007" and "row 1, column id: id = \"x\"" in exc.value.message


def test_table_without_path_reads_the_result_itself():
    assert fx.result_rows(_table_fn(path=None), '[{"id": 5}]') == [[5, None, None, None]]
