"""cloudwatch_metrics core against moto's CloudWatch: chunking at the API limits, bad records
reported by index, strict timestamps, change-event batches and configuration from the environment."""

from datetime import datetime, timedelta, timezone

import boto3
import botocore.config
import botocore.session
import metrics_core as mc
import pytest
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def readings(n, start=0):
    return [{"reading_time": (NOW - timedelta(seconds=i)).isoformat(), "reading_value": 20 + i % 7 + i / 1000}
            for i in range(start, start + n)]


def client_with_log(**config):
    """A real CloudWatch client (moto behind it) that also records every PutMetricData call."""
    cw = boto3.client("cloudwatch", config=botocore.config.Config(**config))
    calls, bodies = [], []
    cw.meta.events.register("before-parameter-build.cloudwatch.PutMetricData", lambda params, **kw: calls.append(dict(params)))
    cw.meta.events.register("before-send.cloudwatch.PutMetricData", lambda request, **kw: bodies.append(request.body))
    return cw, calls, bodies


def stats(cw, cfg, dims=()):
    out = cw.get_metric_statistics(
        Namespace=cfg.namespace, MetricName=cfg.metric_name, Dimensions=[{"Name": n, "Value": v} for n, v in dims],
        StartTime=NOW - timedelta(days=1), EndTime=NOW + timedelta(minutes=5), Period=86400 * 2,
        Statistics=["SampleCount", "Sum"])["Datapoints"]
    return (int(sum(d["SampleCount"] for d in out)), sum(d["Sum"] for d in out))


def query_body_size(namespace, data):
    """Size of the body in the query protocol, the most verbose one boto3 may use for this call."""
    model = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData")
    body = create_serializer("query").serialize_to_request({"Namespace": namespace, "MetricData": data}, model)["body"]
    return len(percent_encode_sequence(body).encode())


@pytest.mark.parametrize("n, sizes", [(1000, [1000]), (1001, [1000, 1]), (2500, [1000, 1000, 500])])
def test_requests_hold_at_most_1000_metrics(aws, n, sizes):
    cw, calls, _ = client_with_log()
    cfg = mc.Config(dimensions=(("Sensor", "lab-1"),))
    batch = readings(n)
    result = mc.publish({"records": batch}, cw, cfg, now=NOW)
    assert [len(c["MetricData"]) for c in calls] == sizes
    assert (result["received"], result["published"], result["rejected"], result["requests"]) == (n, n, 0, len(sizes))
    count, total = stats(cw, cfg, cfg.dimensions)
    assert count == n
    assert total == pytest.approx(sum(r["reading_value"] for r in batch))


def test_requests_stay_under_one_megabyte(aws):
    # 30 dimensions of 1,024-character values make each metric ~40 KB, so bytes cut before count.
    dims = tuple((f"d{i:02}", chr(ord("a") + i % 26) * 1024) for i in range(30))
    cfg = mc.Config(dimensions=dims)
    cw, calls, bodies = client_with_log(disable_request_compression=True)
    n = 60
    result = mc.publish({"records": readings(n)}, cw, cfg, now=NOW)
    assert result["published"] == n and result["requests"] == len(calls) > 1
    for call in calls:
        assert query_body_size(cfg.namespace, call["MetricData"]) <= mc.MAX_REQUEST_BYTES
    assert all(len(b) <= mc.MAX_REQUEST_BYTES for b in bodies)
    # ...and the cut is tight: one more metric would have gone over the limit.
    for call, nxt in zip(calls, calls[1:]):
        assert query_body_size(cfg.namespace, call["MetricData"] + nxt["MetricData"][:1]) > mc.MAX_REQUEST_BYTES * 0.95
    assert sum(len(c["MetricData"]) for c in calls) == n
    assert stats(cw, cfg, dims)[0] == n


def test_estimate_is_an_upper_bound_of_the_real_body():
    datum = {"MetricName": "Temp ü/%", "Timestamp": NOW, "Value": -1.2345678901234567e-300, "Unit": "Count/Second",
             "StorageResolution": 60, "Dimensions": [{"Name": "Room & Co", "Value": "ä" * 500}]}
    chunk = [datum] * 100
    real = query_body_size("ns", chunk)
    overhead = query_body_size("ns", [])
    assert real - overhead > 100 * 3000  # the test means something: the dimension dominates
    assert sum(mc.datum_bytes(d) for d in chunk) >= real - overhead


def test_bad_records_are_reported_and_the_rest_published(aws):
    cw, calls, _ = client_with_log()
    cfg = mc.Config()
    good = readings(3)
    records = [
        good[0],
        {"reading_time": NOW.strftime("%Y-%m-%d %H:%M:%S"), "reading_value": "60"},  # 1 naive: UTC, fine
        {"reading_time": "yesterday", "reading_value": 1},                      # 2 garbage
        {"reading_time": NOW.isoformat(), "reading_value": True},               # 3 boolean
        {"reading_time": NOW.isoformat(), "reading_value": "NaN"},              # 4 not a decimal
        {"reading_time": NOW.isoformat(), "reading_value": "1e400"},            # 5 infinite
        {"reading_value": 3},                                                   # 6 missing time
        "not an object",                                                        # 7
        good[1],
        {"reading_time": (NOW - timedelta(days=15)).isoformat(), "reading_value": 1},   # 9 too old
        {"reading_time": (NOW + timedelta(hours=3)).isoformat(), "reading_value": 1},   # 10 too far ahead
        {"reading_time": NOW.isoformat(), "reading_value": 2.0**361},           # 11 out of range
        {"reading_time": NOW.isoformat(), "reading_value": "21.5"},             # 12 decimal string: fine
        good[2],
        {"reading_time": NOW.isoformat(), "reading_value": 1e-120},             # 14 too small
        {"reading_time": NOW.isoformat(), "reading_value": 0},                  # 15 zero: fine
    ]
    result = mc.publish({"records": records}, cw, cfg, now=NOW)
    reasons = {e["index"]: e["reason"] for e in result["errors"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 9, 10, 11, 14]
    assert "not ISO 8601" in reasons[2]
    assert "number" in reasons[3]
    assert "not a decimal" in reasons[4]
    assert "finite" in reasons[5]
    assert "missing reading_time" in reasons[6]
    assert "not JSON" in reasons[7]
    assert "14 days" in reasons[9]
    assert "2 hours" in reasons[10]
    assert "range" in reasons[11] and "range" in reasons[14]
    assert (result["received"], result["published"], result["rejected"]) == (16, 6, 10)
    assert result["Status"] == "PARTIAL"
    assert len(calls) == 1 and len(calls[0]["MetricData"]) == 6
    count, total = stats(cw, cfg)
    assert count == 6
    assert total == pytest.approx(sum(r["reading_value"] for r in good) + 21.5 + 60)


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("2024-05-01 12:00:00.123456+02", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)),  # PostgreSQL
    ("2024-05-01T12:00:00,5-0130", datetime(2024, 5, 1, 13, 30, 0, 500000, tzinfo=timezone.utc)),
    ("2024-05-01T12:00Z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    # no zone: UTC, as the original sample (and its Oracle trigger, TO_CHAR of SYS_EXTRACT_UTC) meant it
    ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    ("2016-02-15 12:00:00", datetime(2016, 2, 15, 12, tzinfo=timezone.utc)),
    ("2016-02-15 12:00:00 UTC", datetime(2016, 2, 15, 12, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00.123456789Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)),
    (1714564800, datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    (1714564800.25, datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)),
])
def test_timestamps_accepted(text, expected):
    got = mc.parse_timestamp(text)
    assert got == expected and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "2024-05-01", "2024-05-01T12Z", "1714564800", "yesterday", "", True, None, [],
    "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01T12:00:00+24:00",
    "2024-05-01T12:00:00Z trailing", "20240501T120000Z", float("nan"), 1e30,
])
def test_timestamps_refused(text):
    with pytest.raises(mc.BadReading):
        mc.parse_timestamp(text)


def test_change_event_batch_uses_new_row_and_skips_deletes(aws):
    cw, calls, _ = client_with_log()
    cfg = mc.Config()
    t = NOW.isoformat()
    event = {"table": "public.readings", "operation": "insert", "trigger": "readings_out", "records": [
        {"idempotency_key": "k1", "new": {"id": 1, "reading_time": t, "reading_value": 10}, "old": None},
        {"idempotency_key": "k2", "op": "update", "new": {"reading_time": t, "reading_value": 20},
         "old": {"reading_time": t, "reading_value": 5}},
        {"idempotency_key": "k3", "op": "delete", "new": None, "old": {"reading_time": t, "reading_value": 99}},
        {"idempotency_key": "k4", "new": None, "old": None},
        {"idempotency_key": "k5", "new": {"reading_time": "2024-01-01 00:00:00", "reading_value": 1}},
    ]}
    result = mc.publish(event, cw, cfg, now=NOW)
    assert (result["published"], result["skipped"], result["rejected"]) == (2, 1, 2)
    assert result["skips"] == [{"index": 2, "reason": "delete event: no new reading"}]
    assert [e["index"] for e in result["errors"]] == [3, 4]
    assert sorted(d["Value"] for d in calls[0]["MetricData"]) == [10, 20]
    assert stats(cw, cfg) == (2, 30)


def test_single_reading_and_env_configuration(aws):
    env = {"METRIC_NAMESPACE": "Plant/Boilers", "METRIC_NAME": "WaterTemp",
           "METRIC_DIMENSIONS": '{"Site": "north", "Boiler": "b2"}', "METRIC_UNIT": "Count",
           "METRIC_STORAGE_RESOLUTION": "1"}
    cfg = mc.Config.from_env(env)
    cw, calls, _ = client_with_log()
    result = mc.publish({"reading_time": NOW.isoformat(), "reading_value": 71.5}, cw, cfg, now=NOW)
    assert (result["received"], result["published"]) == (1, 1)
    [datum] = calls[0]["MetricData"]
    assert calls[0]["Namespace"] == "Plant/Boilers"
    assert (datum["MetricName"], datum["Unit"], datum["StorageResolution"]) == ("WaterTemp", "Count", 1)
    metrics = cw.list_metrics(Namespace="Plant/Boilers")["Metrics"]
    assert [(m["MetricName"], sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics] == [
        ("WaterTemp", [("Boiler", "b2"), ("Site", "north")])]
    assert stats(cw, cfg, cfg.dimensions) == (1, 71.5)


def test_defaults_when_env_is_empty():
    assert mc.Config.from_env({}) == mc.Config()


@pytest.mark.parametrize("env, word", [
    ({"METRIC_DIMENSIONS": "Site=north"}, "METRIC_DIMENSIONS"),
    ({"METRIC_DIMENSIONS": '["a"]'}, "METRIC_DIMENSIONS"),
    ({"METRIC_DIMENSIONS": '{"Site": 3}'}, "METRIC_DIMENSIONS"),
    ({"METRIC_DIMENSIONS": "{" + ",".join(f'"d{i}": "v"' for i in range(31)) + "}"}, "30"),
    ({"METRIC_NAMESPACE": "AWS/EC2"}, "METRIC_NAMESPACE"),
    ({"METRIC_UNIT": "Celsius"}, "METRIC_UNIT"),
    ({"METRIC_STORAGE_RESOLUTION": "5"}, "METRIC_STORAGE_RESOLUTION"),
])
def test_bad_configuration_is_named(env, word):
    with pytest.raises(mc.ConfigError, match=word):
        mc.Config.from_env(env)


@pytest.mark.parametrize("event", [42, "not json", {"records": "x"}])
def test_unreadable_event_raises_invalid_event(event):
    with pytest.raises(mc.InvalidEvent):
        mc.publish(event, None, mc.Config(), now=NOW)


def test_failed_request_raises_publish_failed(monkeypatch):
    # A real client aimed at a closed port: the call fails for real and must not be swallowed.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cw = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                      config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2))
    with pytest.raises(mc.PublishFailed, match="request 1 of 1 failed after 0 metrics"):
        mc.publish({"records": readings(2)}, cw, mc.Config(), now=NOW)


def test_every_record_rejected_is_a_function_error_never_a_silent_200(aws):
    cw, calls, _ = client_with_log()
    with pytest.raises(mc.NothingPublished, match="none of the 2 reading"):
        mc.publish({"records": [{"reading_time": "yesterday", "reading_value": 1}, {"reading_value": 2}]}, cw, mc.Config(),
                   now=NOW)
    assert calls == []
    # only deletes: nothing to publish and nothing wrong
    out = mc.publish({"op": "delete", "records": [{"old": {"reading_time": NOW.isoformat(), "reading_value": 1}}]}, cw,
                     mc.Config(), now=NOW)
    assert out["Status"] == "OK" and out["published"] == 0 and out["skipped"] == 1

