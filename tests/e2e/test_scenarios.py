"""The three scenarios end to end, through the database, against the real local stack.

The example spec (generator/examples/scenarios.yaml) is installed with the real installer on the
session's PostgreSQL cluster; the example Lambdas run in awslambdaric workers and write to moto's
CloudWatch, Firehose -> S3 and Kinesis. Each test checks, on the AWS side, that what arrived is
exactly what SQL sent. The scenario names are made unique to this module (namespace, bucket,
streams) because the local stack is shared with the other test modules.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from sqlambda import api, resources
from sqlambda.devkit import scenarios
from sqlambda.targets.postgres import drain as outbox

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack]

NAMES = scenarios.Names(namespace="Sqlambda/E2E", bucket="sqlambda-e2e", prefix="e2e/", delivery_stream="e2e-rows",
                        kinesis_stream="e2e-readings")


@pytest.fixture(scope="module")
def db(pg_cluster, pg_dsn, local_stack) -> str:
    scenarios.prepare_aws(local_stack.endpoint_url, NAMES)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for role in ("app_reader", "app_admin"):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        dbname = conn.info.dbname
        conn.execute(sql.SQL("ALTER DATABASE {} SET sqlambda.endpoint_url = {}").format(
            sql.Identifier(dbname), sql.Literal(local_stack.endpoint_url)))
    scenarios.create_sample_objects(pg_dsn)
    api.install(resources.examples() / "scenarios.yaml", pg_dsn)
    return pg_dsn


def _requests(faults, function: str) -> int:
    return faults.stats(function)["requests"]


# -- CloudWatch ------------------------------------------------------------------------------------

def test_readings_become_metrics_with_the_same_values_in_batches(db, local_stack, faults):
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=2)
    # 700 readings one minute apart, values that are exact in binary and all different
    readings = [(end - timedelta(minutes=699 - i), 10.0 + i * 0.25) for i in range(700)]
    before = _requests(faults, "cloudwatch_metrics")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO temperature_readings (reading_time, reading_value) "
                     "SELECT * FROM unnest(%s::timestamptz[], %s::float8[])",
                     ([t for t, _ in readings], [v for _, v in readings]))
    # one statement, max_rows 500: exactly two synchronous calls, not 700
    assert _requests(faults, "cloudwatch_metrics") - before == 2
    seen = scenarios.metric_values(local_stack.endpoint_url, readings[0][0], end + timedelta(minutes=1), NAMES)
    assert seen == dict(readings)
    counts = scenarios.metric_values(local_stack.endpoint_url, readings[0][0], end + timedelta(minutes=1), NAMES,
                                     stat="SampleCount")
    assert set(counts.values()) == {1.0}  # each reading sent once


def test_a_failing_metrics_call_aborts_the_insert(db, faults):
    # a synchronous immediate trigger: when the Lambda cannot be reached, the statement fails and
    # nothing is committed, so no reading exists in the table without its metric
    faults.server_error("cloudwatch_metrics", count=None, status=503)
    with psycopg.connect(db, autocommit=True) as conn:
        n = conn.execute("SELECT count(*) FROM temperature_readings").fetchone()[0]
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("INSERT INTO temperature_readings (reading_time, reading_value) VALUES (now(), 1)")
        assert "cloudwatch_metrics" in str(exc.value)
        assert conn.execute("SELECT count(*) FROM temperature_readings").fetchone()[0] == n


# -- Firehose --------------------------------------------------------------------------------------

def _table_rows(conn, where: str = "true") -> dict[int, dict]:
    # the row images exactly as PostgreSQL encodes them to JSON, which is what the trigger sends
    return {r["id"]: r for (r,) in conn.execute(f"SELECT to_jsonb(o) FROM orders o WHERE {where}")}


def test_committed_changes_arrive_in_s3_as_exactly_those_rows(db, local_stack):
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO orders (id, customer_id, status, total) "
                     "SELECT g, 1000 + g % 13, 'new', (g * 3.75)::numeric(12,2) FROM generate_series(1, 1200) g")
        conn.commit()
        inserted = _table_rows(conn)
        conn.execute("UPDATE orders SET status = 'shipped', total = total + 0.01, updated_at = now() WHERE id % 100 = 0")
        conn.commit()
        updated = _table_rows(conn, "id % 100 = 0")
        deleted = _table_rows(conn, "id BETWEEN 1101 AND 1105")
        conn.execute("DELETE FROM orders WHERE id BETWEEN 1101 AND 1105")
        conn.commit()
        conn.execute("INSERT INTO orders (id, customer_id, status, total) VALUES (5000, 1, 'rolled back', 1)")
        conn.rollback()
    assert scenarios.warehouse_rows(local_stack.endpoint_url, NAMES) == []  # nothing sent inside transactions
    stats = outbox.drain(db, endpoint_url=local_stack.endpoint_url)
    assert stats.to_dict()["dead"] == 0, stats.to_dict()
    lines = scenarios.warehouse_rows(local_stack.endpoint_url, NAMES)
    assert len(lines) == 1200 + 12 + 5

    def images(op):
        out = {}
        for line in (x for x in lines if x["_op"] == op):
            row = {k: v for k, v in line.items() if not k.startswith("_")}
            assert row["id"] not in out, f"{op} of id {row['id']} delivered twice"
            out[row["id"]] = row
        return out

    assert images("insert") == inserted
    assert images("update") == updated
    assert images("delete") == deleted
    keys = [line["_idempotency_key"] for line in lines]
    assert len(set(keys)) == len(keys) and all(keys)
    assert outbox.status(db).depth == 0


def test_rows_stay_queued_while_firehose_lambda_fails_and_arrive_after(db, local_stack, faults):
    before = len(scenarios.warehouse_rows(local_stack.endpoint_url, NAMES))
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO orders (id, customer_id, status, total) VALUES (7001, 1, 'late', 9.99), (7002, 2, 'late', 1.5)")
        conn.commit()
        expected = _table_rows(conn, "id IN (7001, 7002)")
    faults.server_error("firehose_to_redshift", count=None, status=503)
    outbox.drain(db, endpoint_url=local_stack.endpoint_url)
    assert len(scenarios.warehouse_rows(local_stack.endpoint_url, NAMES)) == before
    assert outbox.status(db).depth == 2
    faults.clear()
    with psycopg.connect(db, autocommit=True) as conn:  # skip the backoff the failure scheduled
        conn.execute("UPDATE sqlambda.outbox SET next_attempt_at = now()")
    outbox.drain(db, endpoint_url=local_stack.endpoint_url)
    late = [x for x in scenarios.warehouse_rows(local_stack.endpoint_url, NAMES) if x["id"] in (7001, 7002)]
    assert len(late) == 2
    assert {x["id"]: {k: v for k, v in x.items() if not k.startswith("_")} for x in late} == expected


# -- Kinesis ---------------------------------------------------------------------------------------

def _put(local_stack, n: int, start: int) -> tuple[list[str], list[dict]]:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    records = [{"sensor": f"s{i % 4}", "reading_time": (t0 + timedelta(seconds=i)).isoformat(), "reading_value": i / 8}
               for i in range(start, start + n)]
    return scenarios.put_records(local_stack.endpoint_url, records, NAMES), records


def _stored(conn) -> list[tuple[str, dict]]:
    return [(s, d) for s, d in conn.execute(
        "SELECT sequence_number, data FROM kinesis_readings WHERE stream = %s ORDER BY sequence_number::numeric",
        (NAMES.kinesis_stream,))]


def test_kinesis_records_are_read_from_sql_in_order_resuming_without_gaps_or_repeats(db, local_stack, faults):
    stream = NAMES.kinesis_stream
    seqs, records = _put(local_stack, 250, 0)
    with psycopg.connect(db, autocommit=True) as conn:
        # the typed set-returning function itself
        rows = conn.execute("SELECT sequence_number, partition_key, arrived_at, data FROM kinesis_read(%s, %s)",
                            (stream, seqs[9])).fetchall()
        assert [r[0] for r in rows] == seqs[10:110]  # AFTER the given sequence number, Limit 100
        assert [r[3] for r in rows] == records[10:110]
        assert all(r[1] == "demo" and isinstance(r[2], datetime) for r in rows)
        assert conn.execute("SELECT count(*) FROM kinesis_read(%s, %s)", (stream, seqs[-1])).fetchone()[0] == 0

        conn.execute("CALL process_sensor_readings(%s, 1)", (stream,))
        assert [s for s, _ in _stored(conn)] == seqs[:100]
        assert conn.execute("SELECT sequence_number FROM kinesis_checkpoint WHERE stream = %s",
                            (stream,)).fetchone()[0] == seqs[99]

        # a run that fails half way keeps the batches it committed and loses nothing
        conn.execute("SET sqlambda.max_attempts = 1")
        faults.server_error("kinesis_reader", count=None, status=503)
        with pytest.raises(psycopg.Error):
            conn.execute("CALL process_sensor_readings(%s)", (stream,))
        faults.clear()
        conn.execute("RESET sqlambda.max_attempts")
        assert [s for s, _ in _stored(conn)] == seqs[:100]

        conn.execute("CALL process_sensor_readings(%s)", (stream,))
        more_seqs, more = _put(local_stack, 30, 250)
        conn.execute("CALL process_sensor_readings(%s)", (stream,))
        stored = _stored(conn)
    assert [s for s, _ in stored] == seqs + more_seqs  # in order, none skipped, none repeated
    assert [d for _, d in stored] == records + more


def test_kinesis_read_is_granted_to_its_role_only(db):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SET ROLE app_reader")
        assert conn.execute("SELECT count(*) FROM kinesis_read(%s)", (NAMES.kinesis_stream,)).fetchone()[0] >= 0
        conn.execute("RESET ROLE")
        conn.execute("CREATE ROLE e2e_nobody NOLOGIN")
        conn.execute("SET ROLE e2e_nobody")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM kinesis_read(%s)", (NAMES.kinesis_stream,))


def test_a_missing_stream_is_a_sql_error_with_the_lambda_error(db):
    with psycopg.connect(db, autocommit=True) as conn, pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT * FROM kinesis_read('no-such-stream')")
    assert "kinesis_reader" in str(exc.value) and "no-such-stream" in str(exc.value)
