"""The moto-backed services of the local stack, through plain boto3, where sqlambda changes their path."""

from __future__ import annotations

import datetime as dt
import gzip
import uuid

import boto3
import pytest

pytestmark = pytest.mark.local_stack


def test_compressed_put_metric_data_is_stored(local_stack):
    # botocore gzips PutMetricData bodies over 10 KB; moto's server used to answer those with 500
    cw = boto3.client("cloudwatch", endpoint_url=local_stack.endpoint_url)
    ns = f"Test/{uuid.uuid4().hex[:8]}"
    end = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    data = [{"MetricName": "T", "Timestamp": end - dt.timedelta(minutes=i + 1), "Value": float(i)} for i in range(1000)]
    cw.put_metric_data(Namespace=ns, MetricData=data)
    out = cw.get_metric_data(StartTime=end - dt.timedelta(minutes=1001), EndTime=end, MetricDataQueries=[
        {"Id": "m", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "T"}, "Period": 60, "Stat": "Sum"}}])
    got = dict(zip(out["MetricDataResults"][0]["Timestamps"], out["MetricDataResults"][0]["Values"]))
    assert got == {d["Timestamp"]: d["Value"] for d in data}


def test_s3_object_with_content_encoding_gzip_is_stored_as_sent(local_stack):
    # for S3 the header describes the object: its bytes must not be inflated on the way in
    s3 = boto3.client("s3", endpoint_url=local_stack.endpoint_url)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    blob = gzip.compress(b"hello " * 1000)
    s3.put_object(Bucket=bucket, Key="x.gz", Body=blob, ContentEncoding="gzip")
    obj = s3.get_object(Bucket=bucket, Key="x.gz")
    assert obj["ContentEncoding"] == "gzip" and obj["Body"].read() == blob
