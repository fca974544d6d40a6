"""firehose_to_redshift core and setup_stream against moto's Firehose (S3 destination): batches cut
by count and bytes, newline-delimited flat JSON, change events, retry of only the failed records,
giving up after N attempts, and the delivery stream configuration."""

import json

import boto3
import firehose_core as fc
import pytest
import setup_stream

BUCKET = "staging"
ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"


@pytest.fixture
def stream(aws):
    """A real (moto) delivery stream to S3, made by setup_stream like the demo does."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    setup_stream.create_delivery_stream(boto3.client("firehose"), "s3", stream_name="rows", role_arn=ROLE,
                                        bucket=BUCKET, prefix="rows/")
    return "rows"


def delivered_lines():
    """Every line Firehose wrote to the staging bucket, parsed. Lines keep their order inside an
    object (one PutRecordBatch call); objects are ordered by time and key, which is only certain
    for calls more than a second apart, so tests about several calls compare sorted ids."""
    s3 = boto3.client("s3")
    keys = sorted((o["LastModified"], o["Key"]) for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    lines = []
    for _, key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        assert body.endswith("\n")
        lines += [json.loads(line) for line in body.splitlines()]
    return lines


def client_with_log():
    fh = boto3.client("firehose")
    calls = []
    fh.meta.events.register("before-parameter-build.firehose.PutRecordBatch",
                            lambda params, **kw: calls.append([r["Data"] for r in params["Records"]]))
    return fh, calls


class FlakyFirehose:
    """The one hand-written piece: wraps a real moto client and makes Firehose report chosen records
    as failed (ServiceUnavailable) for the first `times` calls they appear in. Everything else
    goes to moto, and every call's records are recorded."""

    def __init__(self, real, should_fail, times=1):
        self.real, self.should_fail, self.times = real, should_fail, times
        self.calls: list[list[bytes]] = []
        self.seen: dict[bytes, int] = {}

    def put_record_batch(self, DeliveryStreamName, Records):
        self.calls.append([r["Data"] for r in Records])
        fail = []
        for r in Records:
            self.seen[r["Data"]] = self.seen.get(r["Data"], 0) + 1
            fail.append(self.should_fail(json.loads(r["Data"])) and self.seen[r["Data"]] <= self.times)
        passed = [r for r, f in zip(Records, fail) if not f]
        real = iter(self.real.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=passed)["RequestResponses"]
                    if passed else [])
        responses = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."} if f else next(real)
                     for f in fail]
        return {"FailedPutCount": sum(fail), "Encrypted": False, "RequestResponses": responses}


def rows(n, pad=0):
    return [{"id": i, "name": f"row {i}", "pad": "x" * pad} for i in range(n)]


def test_rows_become_newline_delimited_json(stream):
    fh, calls = client_with_log()
    event = {"records": [{"id": 1, "name": "Zoë", "tags": ["a", "b"], "meta": {"k": 1}, "amount": 1.5, "gone": None}]}
    result = fc.forward(event, fh, fc.Config(stream))
    assert (result["received"], result["delivered"], result["rejected"], result["failed"]) == (1, 1, 0, 0)
    assert calls == [['{"id":1,"name":"Zoë","tags":"[\\"a\\",\\"b\\"]","meta":"{\\"k\\":1}","amount":1.5,"gone":null}\n'
                      .encode()]]
    assert delivered_lines() == [{"id": 1, "name": "Zoë", "tags": '["a","b"]', "meta": '{"k":1}', "amount": 1.5,
                                  "gone": None}]


@pytest.mark.parametrize("n, sizes", [(500, [500]), (501, [500, 1]), (1201, [500, 500, 201])])
def test_batches_cut_at_500_records(stream, n, sizes):
    fh, calls = client_with_log()
    result = fc.forward({"records": rows(n)}, fh, fc.Config(stream))
    assert [len(c) for c in calls] == sizes
    assert (result["delivered"], result["batches"], result["calls"]) == (n, len(sizes), len(sizes))
    assert [json.loads(d)["id"] for c in calls for d in c] == list(range(n))  # sent in order
    assert sorted(line["id"] for line in delivered_lines()) == list(range(n))  # each exactly once


def test_batches_cut_at_4_mib(stream):
    fh, calls = client_with_log()
    pad = 900 * 1024  # four of these fit in 4 MiB, five do not
    result = fc.forward({"records": rows(10, pad=pad)}, fh, fc.Config(stream))
    assert [len(c) for c in calls] == [4, 4, 2]
    assert all(sum(map(len, c)) <= fc.MAX_BATCH_BYTES for c in calls)
    assert result["delivered"] == 10
    assert [json.loads(d)["id"] for c in calls for d in c] == list(range(10))
    assert sorted(line["id"] for line in delivered_lines()) == list(range(10))


def test_batch_limits_are_exact():
    one = [(i, b"x" * (fc.MAX_BATCH_BYTES // 4)) for i in range(4)]
    assert [len(b) for b in fc.batches(one)] == [4]  # exactly 4 MiB: one call
    over = one[:3] + [(3, b"x" * (fc.MAX_BATCH_BYTES // 4 + 1))]
    assert [len(b) for b in fc.batches(over)] == [3, 1]  # one byte more: two calls
    small = [(i, b"{}\n") for i in range(1000)]
    assert [len(b) for b in fc.batches(small)] == [500, 500]


def test_oversized_and_bad_rows_are_reported(stream):
    fh, calls = client_with_log()
    limit_row = {"p": "y" * (fc.MAX_RECORD_BYTES - len('{"p":""}\n'))}  # exactly 1,000 KiB as a line
    event = {"records": [{"id": 0}, {"p": "y" * fc.MAX_RECORD_BYTES}, "text", {"v": float("nan")}, limit_row,
                         {"new": None, "old": None, "op": "update"}, {"id": 6}]}
    result = fc.forward(event, fh, fc.Config(stream))
    reasons = {e["index"]: e["reason"] for e in result["errors"]}
    assert sorted(reasons) == [1, 2, 3, 5]
    assert "1024000" in reasons[1]
    assert "must be an object" in reasons[2]
    assert "NaN" in reasons[3]
    assert "no new row image" in reasons[5]
    assert (result["delivered"], result["rejected"]) == (3, 4)
    assert len(calls[0][1]) == fc.MAX_RECORD_BYTES
    assert [line.get("id") for line in delivered_lines()] == [0, None, 6]


def test_change_events_carry_op_and_idempotency_key(stream):
    fh, _ = client_with_log()
    event = {"table": "public.orders", "operation": "update", "trigger": "orders_out", "records": [
        {"idempotency_key": "k1", "new": {"id": 1, "status": "paid"}, "old": {"id": 1, "status": "new"}},
        {"idempotency_key": "k2", "op": "delete", "new": None, "old": {"id": 2, "status": "void"}},
        {"new": {"id": 3, "status": "new"}, "old": None, "op": "INSERT"},
        {"new": None, "old": {"id": 4, "status": "x"}, "op": "d"},  # Debezium's spelling
    ]}
    assert fc.forward(event, fh, fc.Config(stream))["delivered"] == 4
    assert delivered_lines() == [
        {"id": 1, "status": "paid", "_op": "update", "_idempotency_key": "k1"},
        {"id": 2, "status": "void", "_op": "delete", "_idempotency_key": "k2"},
        {"id": 3, "status": "new", "_op": "insert"},
        {"id": 4, "status": "x", "_op": "delete"},
    ]


def test_operation_inferred_from_images_when_not_given(stream):
    fh, _ = client_with_log()
    event = {"records": [{"new": {"id": 1}, "old": None}, {"new": {"id": 2}, "old": {"id": 2}},
                         {"new": None, "old": {"id": 3}}]}
    fc.forward(event, fh, fc.Config(stream))
    assert [line["_op"] for line in delivered_lines()] == ["insert", "update", "delete"]


def test_only_failed_records_are_resent(stream):
    flaky = FlakyFirehose(boto3.client("firehose"), lambda row: row["id"] % 3 == 0)
    sleeps = []
    result = fc.forward({"records": rows(10)}, flaky, fc.Config(stream), sleep=sleeps.append, rand=lambda: 1.0)
    assert [len(c) for c in flaky.calls] == [10, 4]
    assert sorted(json.loads(d)["id"] for d in flaky.calls[1]) == [0, 3, 6, 9]
    assert (result["delivered"], result["failed"], result["calls"]) == (10, 0, 2)
    assert sleeps == [0.1]  # one backoff, base 100 ms (rand pinned to its maximum)
    assert sorted(line["id"] for line in delivered_lines()) == list(range(10))  # each row exactly once


def test_gives_up_after_max_attempts_and_reports(stream):
    flaky = FlakyFirehose(boto3.client("firehose"), lambda row: row["id"] in (2, 5), times=99)
    sleeps = []
    cfg = fc.Config(stream, max_attempts=3, backoff_base_ms=100, backoff_max_ms=150)
    with pytest.raises(fc.UndeliveredRecords) as info:
        fc.forward({"records": rows(6)}, flaky, cfg, sleep=sleeps.append, rand=lambda: 1.0)
    report = json.loads(str(info.value))
    assert [len(c) for c in flaky.calls] == [6, 2, 2]
    assert sleeps == [0.1, 0.15]  # doubled, then capped at BACKOFF_MAX_MS
    assert (report["delivered"], report["failed"], report["calls"]) == (4, 2, 3)
    assert [(f["index"], f["error_code"]) for f in report["failures"]] == [(2, "ServiceUnavailableException"),
                                                                           (5, "ServiceUnavailableException")]
    assert sorted(line["id"] for line in delivered_lines()) == [0, 1, 3, 4]


def test_report_mode_returns_failures(stream):
    flaky = FlakyFirehose(boto3.client("firehose"), lambda row: row["id"] == 1, times=99)
    result = fc.forward({"records": rows(3)}, flaky, fc.Config(stream, max_attempts=2, on_failure="report"),
                        sleep=lambda s: None)
    assert (result["delivered"], result["failed"]) == (2, 1)
    assert result["failures"][0]["index"] == 1


def test_missing_stream_fails_at_once(aws):
    fh, calls = client_with_log()
    with pytest.raises(fc.DeliveryFailed, match="ResourceNotFoundException"):
        fc.forward({"records": rows(2)}, fh, fc.Config("no-such-stream"), sleep=lambda s: pytest.fail("retried"))
    assert len(calls) == 1


def test_config_from_env():
    cfg = fc.Config.from_env({"DELIVERY_STREAM_NAME": "s", "MAX_ATTEMPTS": "6", "ON_FAILURE": "report"})
    assert (cfg.stream_name, cfg.max_attempts, cfg.on_failure, cfg.backoff_base_ms) == ("s", 6, "report", 100)
    for env, word in (({}, "DELIVERY_STREAM_NAME"), ({"DELIVERY_STREAM_NAME": "s", "MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS"),
                      ({"DELIVERY_STREAM_NAME": "s", "BACKOFF_BASE_MS": "x"}, "BACKOFF_BASE_MS"),
                      ({"DELIVERY_STREAM_NAME": "s", "ON_FAILURE": "ignore"}, "ON_FAILURE")):
        with pytest.raises(fc.ConfigError, match=word):
            fc.Config.from_env(env)


def test_redshift_stream_config():
    cfg = setup_stream.delivery_stream_config(
        "redshift", stream_name="rows", role_arn=ROLE, bucket="staging",
        jdbc_url="jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev", table="public.readings",
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:loader")
    rs = cfg["RedshiftDestinationConfiguration"]
    assert rs["CopyCommand"] == {"DataTableName": "public.readings", "CopyOptions": "FORMAT AS JSON 'auto'"}
    assert rs["S3Configuration"]["BucketARN"] == "arn:aws:s3:::staging"
    assert rs["S3Configuration"]["CompressionFormat"] == "UNCOMPRESSED"
    assert rs["SecretsManagerConfiguration"]["Enabled"] is True and "Password" not in rs
    assert "ExtendedS3DestinationConfiguration" not in cfg
    local = setup_stream.delivery_stream_config("s3", stream_name="rows", role_arn=ROLE, bucket="staging")
    assert local["ExtendedS3DestinationConfiguration"]["BucketARN"] == "arn:aws:s3:::staging"
    assert "RedshiftDestinationConfiguration" not in local


@pytest.mark.parametrize("kind, kwargs, word", [
    ("redshift", {}, "jdbc_url, table, secret_arn"),
    ("redshift", {"jdbc_url": "postgres://x", "table": "t", "secret_arn": "s"}, "jdbc:redshift://"),
    ("s3", {"bucket": ""}, "bucket"),
    ("kafka", {}, "kind"),
])
def test_stream_config_refuses_incomplete_input(kind, kwargs, word):
    args = {"stream_name": "rows", "role_arn": ROLE, "bucket": "staging", **kwargs}
    with pytest.raises(ValueError, match=word):
        setup_stream.delivery_stream_config(kind, **args)


def test_create_redshift_stream_is_accepted_by_the_api(aws):
    # moto validates the request against the same service model AWS publishes.
    fh = boto3.client("firehose")
    arn = setup_stream.create_delivery_stream(
        fh, "redshift", stream_name="to-redshift", role_arn=ROLE, bucket="staging",
        jdbc_url="jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev", table="readings",
        username="loader", password="secret")
    desc = fh.describe_delivery_stream(DeliveryStreamName="to-redshift")["DeliveryStreamDescription"]
    assert desc["DeliveryStreamARN"] == arn
    [dest] = desc["Destinations"]
    assert dest["RedshiftDestinationDescription"]["CopyCommand"]["CopyOptions"] == "FORMAT AS JSON 'auto'"
    with pytest.raises(fh.exceptions.ResourceInUseException):
        setup_stream.create_delivery_stream(fh, "s3", stream_name="to-redshift", role_arn=ROLE, bucket="b")
    assert setup_stream.create_delivery_stream(fh, "s3", stream_name="to-redshift", role_arn=ROLE, bucket="b",
                                               exist_ok=True) == arn


def test_command_line_creates_local_stream(aws, capsys):
    code = setup_stream.main(["--kind", "s3", "--name", "cli-rows", "--bucket", "cli-bucket", "--role-arn", ROLE,
                              "--create-bucket"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["DeliveryStreamName"] == "cli-rows"
    fh = boto3.client("firehose")
    assert fc.forward({"id": 1}, fh, fc.Config("cli-rows"))["delivered"] == 1
    assert boto3.client("s3").list_objects_v2(Bucket="cli-bucket")["KeyCount"] == 1
    assert setup_stream.main(["--kind", "redshift", "--name", "x", "--bucket", "b", "--role-arn", ROLE]) == 2
    assert "jdbc_url" in capsys.readouterr().err
