"""The original awslabs samples and blog, run verbatim on sqlambda and its example Lambdas.

A user deploys our example Lambdas under the original names and keeps their SQL: the original
``processSensorReadings`` (samples/pg_processSensorReadings.sql, byte for byte), the blog's
``CAST(awslambda_fn('lambdaReadKinesisStream', ...) AS JSON)``, the original ``lambdaTest`` and the
CloudWatch payload of the blog and of the original Oracle trigger. The original Lambdas themselves
(print statements made Python 3) must keep working against our ``awslambda_fn`` too.

Before this issue: processSensorReadings failed on its first call (SequenceNumber ""), looped
forever when resuming (Data NULL), the blog's msg->'Data'->'time' was NULL, Timeout was taken as
milliseconds, the naive CloudWatch timestamp was refused with a 200 {"published": 0}, and a Lambda
could not be deployed under another name or with environment variables.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from cli_helpers import run
from compat_helpers import original, py3
from pg_helpers import q

from sqlambda import api

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack, pytest.mark.slow]

STREAM = "MySensorReadings"  # the original's names, kept
CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def db(pg_cluster, local_stack):
    dsn = pg_cluster.create_database("compat_original")
    api.install(None, dsn)
    q(dsn, f"ALTER DATABASE compat_original SET sqlambda.endpoint_url = '{local_stack.endpoint_url}'")
    return dsn


@pytest.fixture(scope="module")
def stream(local_stack):
    kinesis = local_stack.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    return kinesis


def _put(kinesis, readings):
    # what the original README puts: aws kinesis put-record --data '{"time":"...","temp":"99"}'
    return [kinesis.put_record(StreamName=STREAM, PartitionKey="Sensor1",
                               Data=json.dumps({"time": t, "temp": v}).encode())["SequenceNumber"] for t, v in readings]


def _deploy_ours(local_stack, *args):
    res = run("lambdas", "deploy", *args, "--endpoint-url", local_stack.endpoint_url, env=CREDS)
    assert res.returncode == 0, res.stderr
    return res


def _process(dsn, arg):
    """``select processSensorReadings(ARG) as lastsequencenumber;`` with its NOTICEs."""
    notices: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute(original("pg_processSensorReadings.sql"))
        last = conn.execute("select processSensorReadings(%s) as lastsequencenumber;", (arg,)).fetchone()[0]
    return last, notices


def test_process_sensor_readings_verbatim_on_our_kinesis_reader(db, local_stack, stream):
    _deploy_ours(local_stack, "kinesis_reader", "--function-name", "lambdaReadKinesisStream")
    seqs = _put(stream, [("2016-02-16 12:00:00", "99"), ("2016-02-16 12:30:00", "100"), ("2016-02-16 13:00:00", "98")])
    last, notices = _process(db, "")
    # the original's own behaviour: JSON-quoted values in the notices, the last sequence number quoted
    assert notices == ['Time "2016-02-16 12:00:00", Temperature "99"', 'Time "2016-02-16 12:30:00", Temperature "100"',
                       'Time "2016-02-16 13:00:00", Temperature "98"']
    assert last == f'"{seqs[-1]}"'
    # resuming with a sequence number (as the README does, unquoted): only what came after
    more = _put(stream, [("2016-02-16 13:30:00", "97"), ("2016-02-16 14:00:00", "96")])
    last, notices = _process(db, seqs[-1])
    assert notices == ['Time "2016-02-16 13:30:00", Temperature "97"', 'Time "2016-02-16 14:00:00", Temperature "96"']
    assert last == f'"{more[-1]}"'
    # nothing new: the loop ends at once (after the 3 s the original waits) and returns its input
    started = time.monotonic()
    assert _process(db, more[-1]) == (more[-1], [])
    assert time.monotonic() - started < 30


def test_blog_cast_to_json_and_single_reads(db, local_stack, stream):
    _deploy_ours(local_stack, "kinesis_reader", "--function-name", "lambdaReadKinesisStream")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""CREATE TEMP TABLE message AS SELECT CAST(awslambda_fn('lambdaReadKinesisStream', '{"StreamName": "MySensorReadings"}') as JSON) AS msg ;""")
        row = conn.execute("""SELECT msg->'Data'->'time' AS time, msg->'Data'->'temp' AS temp FROM message ;""").fetchone()
        assert row == ("2016-02-16 12:00:00", "99")  # psycopg decodes the json values
        first = json.loads(conn.execute("""SELECT awslambda_fn('lambdaReadKinesisStream','{"StreamName": "MySensorReadings"}') AS kinesistest ;""").fetchone()[0])
        assert set(first) == {"Data", "SequenceNumber", "NextShardIterator"}
        after = conn.execute("""SELECT awslambda_fn('lambdaReadKinesisStream','{"StreamName": "MySensorReadings", "SequenceNumber": "%s"}') AS kinesistest ;""" % first["SequenceNumber"]).fetchone()[0]
        assert json.loads(after)["Data"] == {"time": "2016-02-16 12:30:00", "temp": "100"}
        # Timeout in seconds, and as a string, as the original took it
        begin = time.monotonic()
        empty = json.loads(conn.execute(
            "SELECT awslambda_fn('lambdaReadKinesisStream', %s)",
            (json.dumps({"StreamName": STREAM, "Timeout": "0.5", "SequenceNumber": _last_seq(local_stack)}),)).fetchone()[0])
        assert empty["Data"] == "" and empty["SequenceNumber"] == "" and empty["NextShardIterator"]
        assert time.monotonic() - begin < 10


def _last_seq(local_stack) -> str:
    kinesis = local_stack.client("kinesis")
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
    return records[-1]["SequenceNumber"]


def test_the_original_lambdas_work_against_our_awslambda_fn(db, local_stack, stream):
    from sqlambda.devkit.deploy import deploy_source

    deploy_source("lambdaTest", original("lambdaTest.py"), endpoint_url=local_stack.endpoint_url,
                  handler="lambdaTest.lambda_handler")
    deploy_source("origReadKinesisStream", py3(original("lambdaReadKinesisStream.py")), timeout=10,
                  endpoint_url=local_stack.endpoint_url, handler="lambdaReadKinesisStream.lambda_handler")
    deploy_source("origTempReadingTrigger", py3(original("lambdaTempReadingTrigger-Cloudwatch.py")),
                  endpoint_url=local_stack.endpoint_url, handler="lambdaTempReadingTrigger-Cloudwatch.lambda_handler")
    with psycopg.connect(db, autocommit=True) as conn:
        out = conn.execute("SELECT awslambda_fn('lambdaTest','{\"name\":\"bob\"}') AS lambdatest").fetchone()[0]
        assert json.loads(out) == {"Status": "OK", "name": "bob"}
        msg = json.loads(conn.execute(
            """SELECT awslambda_fn('origReadKinesisStream', '{"StreamName": "MySensorReadings"}')""").fetchone()[0])
        assert msg["Data"] == {"time": "2016-02-16 12:00:00", "temp": "99"}
        out = conn.execute("""SELECT awslambda_fn('origTempReadingTrigger', '{"reading_time": "2016-02-15 12:00:00", "reading_value": "60"}')""").fetchone()[0]
        assert json.loads(out) == {"Status": "OK"}
        # an original Lambda's error reaches SQL as errorType: errorMessage
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT awslambda_fn('origReadKinesisStream', '{}')")
        assert err.value.sqlstate == "LA001" and "KeyError" in err.value.diag.message_primary


def test_the_blog_cloudwatch_payload_on_our_cloudwatch_metrics(db, local_stack):
    _deploy_ours(local_stack, "cloudwatch_metrics", "--function-name", "lambdaTempReadingTrigger",
                 "--env", "METRIC_NAMESPACE=Temperature Monitoring Database App", "--env", "METRIC_NAME=Temperature Reading",
                 "--env", "METRIC_DIMENSIONS={}", "--timeout", "10")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    naive = (now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    with psycopg.connect(db, autocommit=True) as conn:
        # the README's test input, with a reading of today (CloudWatch keeps two weeks): a naive time is UTC
        out = json.loads(conn.execute("SELECT awslambda_fn('lambdaTempReadingTrigger', %s)",
                                      (json.dumps({"reading_time": naive, "reading_value": "60"}),)).fetchone()[0])
        assert out["Status"] == "OK" and out["published"] == 1
        # the blog's own 2016 reading cannot be published any more: the caller is told, never a silent 200
        with pytest.raises(psycopg.Error) as err:
            conn.execute("""SELECT awslambda_fn('lambdaTempReadingTrigger', '{"reading_time": "2016-02-15 12:00:00", "reading_value": "60"}')""")
        assert err.value.sqlstate == "LA001" and "NothingPublished" in err.value.diag.message_primary
        assert "14 days" in err.value.diag.message_primary
        # the original Oracle trigger's payload shape, sent asynchronously: it arrives
        t = (now - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
        fn_args = '{"reading_time":"' + t + '", "reading_value":"' + "65" + '"}'
        conn.execute("SELECT awslambda_fn_async(%s, %s)", ("lambdaTempReadingTrigger", fn_args))
    cw = local_stack.client("cloudwatch")
    deadline, values = time.monotonic() + 20, []
    while time.monotonic() < deadline and len(values) < 2:
        stats = cw.get_metric_statistics(Namespace="Temperature Monitoring Database App", MetricName="Temperature Reading",
                                         StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
                                         Period=60, Statistics=["Maximum"])
        values = sorted((p["Timestamp"], p["Maximum"]) for p in stats["Datapoints"])
        time.sleep(0.3)
    assert [v for _, v in values] == [60.0, 65.0]
    assert values[0][0] == now - timedelta(minutes=5)  # the naive time was read as UTC, not shifted


def test_the_old_ambiguous_name_option_says_what_to_use(local_stack):
    res = run("lambdas", "deploy", "kinesis_reader", "--name", "lambdaReadKinesisStream", "--endpoint-url",
              local_stack.endpoint_url, env=CREDS)
    assert res.returncode == 2 and "--function-name lambdaReadKinesisStream" in res.stderr and "--alias" in res.stderr
