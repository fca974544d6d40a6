"""The three end-to-end scenarios: CloudWatch metrics, Firehose to a warehouse, Kinesis reads from SQL.

Owns what the scenarios need around the bridge and what they observe afterwards: deploying the
example Lambdas, creating the AWS resources they write to or read from (S3 staging bucket, Firehose
delivery stream, Kinesis stream), running the sample SQL files (``sql/postgres/samples/``), and
reading back, on the AWS side, what arrived (metric values, warehouse rows, stream records). The
names all come from :class:`Names`, whose defaults match ``generator/examples/scenarios.yaml`` and
the Lambdas' ``lambda.json``. ``sqlambda demo`` and ``tests/e2e`` both use it, so the demo shows
exactly what the tests prove.

Must not: hold bridge SQL (the spec is installed with ``api.install``; the scenario SQL a user
would write lives in the sample files), or talk to AWS other than through boto3 with the given
endpoint (so everything here runs unchanged against real AWS).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import ModuleType
from typing import Any, Iterable

from sqlambda import resources
from sqlambda.devkit.deploy import _client as client
from sqlambda.devkit.deploy import _manifest, deploy_lambdas
from sqlambda.errors import UsageError

#: the Lambdas the scenarios call, in scenario order
LAMBDAS = ("cloudwatch_metrics", "firehose_to_redshift", "kinesis_reader")
#: sample SQL files, in the order they run (tables first: the spec's triggers attach to them)
SAMPLE_FILES = ("scenario_tables.sql", "process_sensor_readings.sql")

_FIREHOSE_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _lambda_env(name: str) -> dict:
    return _manifest(resources.folder("lambdas") / name)["environment"]


@dataclass(frozen=True)
class Names:
    """Where each scenario's data goes. Defaults: the example spec and the Lambdas' lambda.json."""

    namespace: str = _lambda_env("cloudwatch_metrics")["METRIC_NAMESPACE"]
    metric: str = _lambda_env("cloudwatch_metrics")["METRIC_NAME"]
    dimensions: tuple[tuple[str, str], ...] = tuple(json.loads(_lambda_env("cloudwatch_metrics")["METRIC_DIMENSIONS"]).items())
    delivery_stream: str = _lambda_env("firehose_to_redshift")["DELIVERY_STREAM_NAME"]
    bucket: str = "sqlambda-warehouse"
    prefix: str = "orders/"
    firehose_role: str = "sqlambda-firehose-delivery"
    kinesis_stream: str = "sensor-readings"


def lambda_environment(names: Names) -> dict[str, dict[str, str]]:
    """Per Lambda, the environment that points it at these names (over its lambda.json defaults)."""
    return {
        "cloudwatch_metrics": {"METRIC_NAMESPACE": names.namespace, "METRIC_NAME": names.metric,
                               "METRIC_DIMENSIONS": json.dumps(dict(names.dimensions))},
        "firehose_to_redshift": {"DELIVERY_STREAM_NAME": names.delivery_stream},
        "kinesis_reader": {},
    }


@lru_cache(maxsize=None)
def setup_stream_module() -> ModuleType:
    """``lambdas/firehose_to_redshift/setup_stream.py``, the one place the delivery stream is described."""
    path = resources.folder("lambdas") / "firehose_to_redshift" / "setup_stream.py"
    spec = importlib.util.spec_from_file_location("sqlambda_setup_stream", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_sql(name: str) -> str:
    if name not in SAMPLE_FILES:
        raise UsageError(f"no sample SQL file {name!r} (have: {', '.join(SAMPLE_FILES)})")
    return (resources.folder("sql") / "postgres" / "samples" / name).read_text(encoding="utf-8")


def create_sample_objects(dsn: str) -> None:
    """Run the sample files (tables, the checkpoint table, the processing procedure)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in SAMPLE_FILES:
            conn.execute(sample_sql(name))


# -- AWS side: setup --------------------------------------------------------------------------------

def _firehose_role(iam: Any, name: str) -> str:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=_FIREHOSE_TRUST,
                               Description="Firehose writes the sqlambda scenario's staging objects")["Role"]["Arn"]


def prepare_aws(endpoint_url: str | None, names: Names = Names(), region: str | None = None,
                deploy: bool = True) -> dict:
    """Deploy the scenario Lambdas, create the bucket, delivery stream and Kinesis stream (idempotent).

    The delivery stream is the S3-staging kind: on real AWS, create the Redshift kind with
    ``setup_stream.py --kind redshift`` instead (README, "Firehose to Redshift").
    """
    deployed = []
    if deploy:
        for name, env in lambda_environment(names).items():
            deployed += deploy_lambdas([name], endpoint_url=endpoint_url, region=region, environment=env)
    s3 = client("s3", endpoint_url, region)
    try:
        s3.create_bucket(Bucket=names.bucket)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    role_arn = _firehose_role(client("iam", endpoint_url, region), names.firehose_role)
    stream_arn = setup_stream_module().create_delivery_stream(
        client("firehose", endpoint_url, region), "s3", exist_ok=True, stream_name=names.delivery_stream,
        role_arn=role_arn, bucket=names.bucket, prefix=names.prefix, buffer_seconds=60, buffer_mb=1)
    kinesis = client("kinesis", endpoint_url, region)
    try:
        kinesis.create_stream(StreamName=names.kinesis_stream, ShardCount=1)
    except kinesis.exceptions.ResourceInUseException:
        pass
    kinesis.get_waiter("stream_exists").wait(StreamName=names.kinesis_stream, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return {"lambdas": [row.get("name") for row in deployed],
            "delivery_stream": stream_arn, "bucket": names.bucket, "kinesis_stream": names.kinesis_stream}


# -- AWS side: what arrived -------------------------------------------------------------------------

def metric_values(endpoint_url: str | None, start: datetime, end: datetime, names: Names = Names(),
                  region: str | None = None, stat: str = "Average") -> dict[datetime, float]:
    """``stat`` of the scenario's metric per minute in [start, end), from GetMetricData (paginated)."""
    cw = client("cloudwatch", endpoint_url, region)
    query = {"Id": "m", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": names.namespace, "MetricName": names.metric,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in names.dimensions]},
        "Period": 60, "Stat": stat}}
    out: dict[datetime, float] = {}
    for page in cw.get_paginator("get_metric_data").paginate(
            MetricDataQueries=[query], StartTime=start, EndTime=end, ScanBy="TimestampAscending"):
        for result in page["MetricDataResults"]:
            out.update(zip(result["Timestamps"], result["Values"]))
    return out


def warehouse_rows(endpoint_url: str | None, names: Names = Names(), region: str | None = None) -> list[dict]:
    """Every JSON line staged under the bucket's prefix, objects in key order (Firehose names them by time)."""
    s3 = client("s3", endpoint_url, region)
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=names.bucket, Prefix=names.prefix):
        for obj in sorted(page.get("Contents", []), key=lambda o: o["Key"]):
            body = s3.get_object(Bucket=names.bucket, Key=obj["Key"])["Body"].read().decode("utf-8")
            rows.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return rows


def put_records(endpoint_url: str | None, records: Iterable[dict], names: Names = Names(),
                region: str | None = None, partition_key: str = "demo") -> list[str]:
    """Put JSON records on the scenario's stream one by one (order kept); their sequence numbers."""
    kinesis = client("kinesis", endpoint_url, region)
    return [kinesis.put_record(StreamName=names.kinesis_stream, PartitionKey=partition_key,
                               Data=json.dumps(r).encode())["SequenceNumber"] for r in records]
