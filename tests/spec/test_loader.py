"""The spec loader: every example loads; every problem is reported, all at once, at file:line:col."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sqlambda import resources
from sqlambda.errors import SpecError
from sqlambda.iam import iam_policy, lambda_arns
from sqlambda.spec.loader import load_spec_file, load_spec_text
from sqlambda.spec.schema import json_schema

BAD = Path(__file__).parent / "bad"
EXAMPLES = sorted(resources.examples().glob("*.yaml"))


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_spec_text(text, "s.yaml")
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path):
    loaded = load_spec_file(path)
    assert loaded.spec.project
    assert len(loaded.checksum) == 64


def test_all_problems_reported_with_positions():
    with pytest.raises(SpecError) as exc:
        load_spec_file(BAD / "many_problems.yaml")
    got = [(p.line, p.col, p.path) for p in exc.value.problems]
    assert got == [
        (4, 3, "aws.regoin"),
        (8, 27, "functions[0].args.b.type"),
        (9, 11, "functions[1].name"),
        (11, 14, "functions[1].returns"),
        (12, 11, "functions[2].name"),
        (15, 5, "functions[2].mode"),
        (19, 14, "triggers[0].events[0]"),
        (20, 15, "triggers[0].function"),
    ]
    text = "\n".join(map(str, exc.value.problems))
    assert "did you mean 'region'" in text
    assert "duplicate key 'mode' (first defined at line 14, column 5)" in text
    assert "unknown function 'missing_fn'" in text
    assert str(exc.value.problems[0]).startswith(f"{BAD / 'many_problems.yaml'}:4:3: aws.regoin: ")


@pytest.mark.parametrize("name", [
    'x"; drop table y; --', "a b", "1abc", "", "é_accent", "a" * 64, "ｆｕｌｌwidth", "semi;colon",
])
def test_identifier_injection_rejected(name):
    problems = _problems(f"project: p\nfunctions:\n  - name: {json.dumps(name)}\n    lambda: echo\n")
    assert len(problems) == 1
    assert problems[0].startswith("s.yaml:3:11: functions[0].name: expected a SQL identifier")


def test_injection_in_args_roles_tables_rejected():
    text = ("project: p\nfunctions:\n  - name: f\n    lambda: echo\n    args: {\"a; drop\": text}\n    roles: [\"r--\"]\n"
            "triggers:\n  - name: t\n    table: \"public.x; drop table y\"\n    lambda: echo\n")
    paths = [p.split(": ")[1] for p in _problems(text)]
    assert paths == ["functions[0].args.a; drop", "functions[0].roles[0]", "triggers[0].table"]


def test_yaml11_booleans_stay_strings_and_keys_count():
    problems = _problems("project: p\non: 1\n")
    assert problems == ["s.yaml:2:1: on: unknown key 'on'; allowed here: version, project, aws, postgres, oracle, mysql, functions, sinks, send_after_commit, triggers, modernize"]


@pytest.mark.parametrize("word", ["yes", "on", "y", "Y", "1", '"true"', "True1", "no", "off", "0", '""'])
@pytest.mark.parametrize("where", ["postgres:\n  rds_compat", "oracle:\n  scheduler_drain"])
def test_a_boolean_is_exactly_true_or_false(word, where):
    # before: yes, on, y, 1 and "true" were all taken as true (and no/off/0 as false)
    problems = _problems(f"project: p\n{where}: {word}\n")
    key = where.replace(":\n  ", ".")
    assert len(problems) == 1 and problems[0].startswith("s.yaml:3:") and f"{key}: expected true or false" in problems[0]


def test_true_and_false_are_booleans():
    for word, value in (("true", True), ("false", False), ("True", True)):
        spec = load_spec_text(f"project: p\npostgres:\n  rds_compat: {word}\n", "s.yaml")
        assert getattr(spec, "spec", spec).postgres.rds_compat is value


@pytest.mark.parametrize("value", ['"3"', "3.0", "3.5", "true"])
def test_a_count_is_a_whole_number(value):
    problems = _problems(f"project: p\naws:\n  max_attempts: {value}\n")
    assert len(problems) == 1 and "aws.max_attempts: expected a whole number" in problems[0]


def test_merge_keys_rejected():
    problems = _problems("base: &b {region: us-east-1}\nproject: p\naws:\n  <<: *b\n")
    assert any("merge keys" in p for p in problems)


def test_missing_project_and_wrong_types():
    problems = _problems("aws: {max_attempts: many}\nfunctions: {}\n")
    assert "s.yaml:1:1: project: missing required key 'project'" in problems
    assert any(p.startswith("s.yaml:1:21: aws.max_attempts: expected a whole number") for p in problems)
    assert any(p.startswith("s.yaml:2:12: functions: expected a list") for p in problems)


def test_syntax_error_and_empty_and_non_mapping():
    with pytest.raises(SpecError) as exc:
        load_spec_file(BAD / "syntax.yaml")
    assert exc.value.problems[0].line == 4 and "YAML syntax error" in exc.value.problems[0].message
    assert _problems("") == ["s.yaml:1:1: the spec is empty; expected a mapping with at least 'project'"]
    with pytest.raises(SpecError) as exc:
        load_spec_file(BAD / "not_mapping.yaml")
    assert "top level must be a mapping" in str(exc.value.problems[0])


def test_async_function_cannot_return_scalar():
    problems = _problems("project: p\nfunctions:\n  - name: f\n    lambda: echo\n    mode: async\n    returns: {type: text, path: a}\n")
    assert len(problems) == 1 and "async function returns the invocation status" in problems[0]


def test_iam_policy_names_exact_arns():
    spec = load_spec_file(resources.examples() / "shop.yaml").spec
    assert lambda_arns(spec) == [
        "arn:aws:lambda:eu-west-1:210987654321:function:audit-sink",
        "arn:aws:lambda:eu-west-1:210987654321:function:customer-profile",
        "arn:aws:lambda:eu-west-1:210987654321:function:echo",
        "arn:aws:lambda:eu-west-1:210987654321:function:pricing:live",
    ]
    policy = iam_policy(spec, account_id="111122223333", region="us-west-2")
    (stmt,) = policy["Statement"]
    assert stmt["Action"] == "lambda:InvokeFunction"
    assert "arn:aws:lambda:us-west-2:111122223333:function:pricing:live" in stmt["Resource"]
    assert not any(r.endswith("*") for r in stmt["Resource"])


def test_iam_policy_includes_trigger_lambdas():
    spec = load_spec_file(resources.examples() / "triggers.yaml").spec
    assert lambda_arns(spec) == ["arn:aws:lambda:us-east-1:123456789012:function:echo"]


def test_json_schema_forbids_unknown_keys():
    schema = json_schema()
    assert schema["$id"].endswith("spec-v1.json")
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Function"]["additionalProperties"] is False
    assert "lambda" in schema["$defs"]["Function"]["properties"]


def test_cli_validate_exit_codes_and_json():
    run = lambda *a: subprocess.run([sys.executable, "-m", "sqlambda.cli", *a], capture_output=True, text=True)
    ok = run("validate", str(resources.examples() / "shop.yaml"), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["functions"] == 4
    bad = run("validate", str(BAD / "many_problems.yaml"))
    assert bad.returncode == 3
    assert "Traceback" not in bad.stderr
    lines = [l for l in bad.stderr.splitlines() if "many_problems.yaml:" in l]
    assert len(lines) == 8  # one line per problem, never wrapped
    badj = run("validate", str(BAD / "many_problems.yaml"), "--json")
    assert badj.returncode == 3 and len(json.loads(badj.stdout)["problems"]) == 8


# -- argument payload keys, defaults, set-returning wrappers ------------------------------------------

def test_long_form_args_and_table_returns_load():
    loaded = load_spec_text(
        "project: p\nfunctions:\n  - name: f\n    lambda: echo\n"
        "    args:\n      stream: {type: text, key: StreamName}\n      after: {type: text, default: null}\n"
        "    returns:\n      type: table\n      path: Records\n      columns:\n        seq: {type: text, path: SequenceNumber}\n"
        "        note: text\n", "s.yaml")
    f = loaded.functions[0]
    assert [f.payload_key(a) for a in f.args] == ["StreamName", "after"]
    assert f.args["after"].has_default and not f.args["stream"].has_default
    assert f.returns.columns["note"].type == "text" and f.returns.columns["note"].path is None


@pytest.mark.parametrize("body,where,message", [
    ("    args:\n      a: {type: text, default: x}\n      b: integer\n", "s.yaml:7:10: functions[0].args.b: has no default", "arguments with defaults go last"),
    ("    args:\n      a: {type: text, key: K}\n      b: {type: text, key: K}\n", "s.yaml:7:10: functions[0].args.b", "fills payload key 'K', like argument 'a'"),
    ("    returns: {type: table}\n", "s.yaml:5:14: functions[0].returns", "needs 'columns'"),
    ("    returns: {type: text, path: x, columns: {a: text}}\n", "s.yaml:5:14: functions[0].returns", "type: table only"),
    ("    args: {a: text}\n    returns: {type: table, columns: {a: text}}\n", "s.yaml:6:41: functions[0].returns.columns.a", "name of an argument"),
    ("    mode: async\n    returns: {type: table, columns: {a: text}}\n", "s.yaml:3:5: functions[0]", "async"),
    ("    args:\n      a: {type: text, key: ''}\n", "s.yaml:6:28: functions[0].args.a.key", "at least 1 character"),
])
def test_args_and_table_returns_errors_point_at_the_spec(body, where, message):
    problems = _problems("project: p\nfunctions:\n  - name: f\n    lambda: echo\n" + body)
    assert len(problems) == 1, problems
    assert problems[0].startswith(where) and message in problems[0], problems


def test_argument_problems_also_stop_model_validation_outside_the_loader():
    from pydantic import ValidationError

    from sqlambda.spec.model import Spec

    with pytest.raises(ValidationError, match="arguments with defaults go last"):
        Spec.model_validate({"project": "p", "functions": [{"name": "f", "lambda": "echo", "args": {
            "a": {"type": "text", "default": None}, "b": "text"}}]})


def test_iam_policy_includes_modernize_lambdas():
    spec = load_spec_file(resources.examples() / "modernize.yaml").spec
    assert lambda_arns(spec) == ["arn:aws:lambda:us-east-1:123456789012:function:price_quote"]


def test_modernize_entries_are_checked_with_positions():
    problems = _problems(
        "project: p\n"
        "modernize:\n"
        "  - function: public.f(text)\n"
        "    lambda: f\n"
        "    stage: shadow\n"
        "  - function: not a signature\n"
        "    lambda: g\n"
        "  - function: other.f(integer)\n"
        "    lambda: h\n"
        "    stage: canary\n"
        "    side_effects: none\n"
        "    canary: 1.5\n"
        "  - function: public.f(integer)\n"
        "    lambda: i\n")
    # a function that may write cannot be shadowed; a bad signature; a fraction over 1; two entries named f
    assert any(p.startswith("s.yaml:3:5:") and "would write twice" in p for p in problems), problems
    assert any(p.startswith("s.yaml:6:15:") and "function" in p for p in problems), problems
    assert any(p.startswith("s.yaml:12:13:") and "canary" in p for p in problems), problems
    assert any(p.startswith("s.yaml:13:15:") and "already used by modernize[0]" in p for p in problems), problems


def test_iam_policy_grants_each_sink_its_one_write_action_on_exactly_its_arn():
    spec = load_spec_file(resources.examples() / "streams.yaml").spec
    policy = iam_policy(spec, account_id="111122223333", region="eu-west-1")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["SqlambdaKinesis"]["Action"] == ["kinesis:PutRecords"]
    assert by_sid["SqlambdaKinesis"]["Resource"] == ["arn:aws:kinesis:eu-west-1:111122223333:stream/order-changes"]
    assert by_sid["SqlambdaSqs"]["Resource"] == ["arn:aws:sqs:eu-west-1:111122223333:shipments.fifo"]
    assert by_sid["SqlambdaSqs"]["Action"] == ["sqs:GetQueueUrl", "sqs:SendMessage"]
    assert by_sid["SqlambdaFirehose"]["Resource"] == ["arn:aws:firehose:eu-west-1:111122223333:deliverystream/audit-archive"]
    assert by_sid["SqlambdaEvents"]["Resource"] == ["arn:aws:events:eu-west-1:111122223333:event-bus/default"]
    assert by_sid["SqlambdaInvoke"]["Resource"] == ["arn:aws:lambda:eu-west-1:111122223333:function:echo"]
    # a sink nothing sends to (no trigger, no send_after_commit) gets no permission; a queue URL
    # names its own account
    text = ("project: p\nsinks:\n  - {name: q, kind: sqs, target: 'https://sqs.eu-west-1.amazonaws.com/444455556666/jobs'}\n"
            "  - {name: unused, kind: kinesis, target: idle}\ntriggers:\n  - {name: t, table: x, sink: q}\n")
    spec = load_spec_text(text, "s.yaml")
    assert iam_policy(spec, account_id="111122223333", region="eu-west-1")["Statement"] == [
        {"Sid": "SqlambdaSqs", "Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
         "Resource": ["arn:aws:sqs:eu-west-1:444455556666:jobs"]}]


def test_sink_mistakes_are_reported_at_their_line_and_column():
    text = ("project: p\n"
            "functions:\n  - {name: f, lambda: echo}\n"
            "sinks:\n"
            "  - {name: s, kind: kinesis, target: 'no spaces allowed'}\n"
            "  - {name: f, kind: sqs, target: q}\n"
            "  - {name: k, kind: pulsar, target: x}\n"
            "triggers:\n"
            "  - {name: t1, table: a, sink: nope}\n"
            "  - {name: t2, table: b, sink: s, delivery: immediate}\n"
            "  - {name: t3, table: c, lambda: echo, key: [id]}\n"
            "  - {name: t4, table: d}\n")
    problems = _problems(text)
    text_of = "\n".join(problems)
    assert "s.yaml:5:5: sinks[0]: target 'no spaces allowed' is not a kinesis name or ARN" in text_of
    assert "s.yaml:7:" in text_of and "sinks[2].kind" in text_of
    assert "sinks[1].name: sink name 'f' is already used by functions[0]" in text_of
    assert "s.yaml:9:" in text_of and "unknown sink 'nope'" in text_of
    assert "needs delivery: outbox" in text_of and "this trigger has no 'sink'" in text_of
    assert "a trigger names where its events go" in text_of


def test_one_rows_order_cannot_be_split_over_two_routes_and_keys_must_be_sent():
    text = ("project: p\nsinks:\n  - {name: s, kind: kinesis, target: st}\n  - {name: h, kind: firehose, target: fh}\n"
            "triggers:\n  - {name: a, table: orders, sink: s, events: [insert]}\n"
            "  - {name: b2, table: public.orders, sink: s, events: [update, delete]}\n"
            "  - {name: c, table: orders, sink: h}\n  - {name: d, table: orders, sink: h, events: [delete]}\n")
    problems = "\n".join(_problems(text))
    assert "s.yaml:7:44: triggers[1].sink: triggers[0] already streams public.orders to the ordered sink 's'" in problems
    assert "triggers[3]" not in problems  # Firehose keeps no order: two routes are fine
    text = ("project: p\nsinks:\n  - {name: s, kind: kinesis, target: st}\n"
            "  - {name: b, kind: eventbridge, target: default, source: aws.events}\n"
            "triggers:\n  - {name: e, table: x, sink: s, columns: [note], key: [id]}\n")
    problems = "\n".join(_problems(text))
    assert "'key' columns ['id'] are not in 'columns'" in problems
    assert "must not start with 'aws.'" in problems
