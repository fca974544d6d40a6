"""Create the Firehose delivery stream the ``firehose_to_redshift`` Lambda writes to.

Owns the stream's configuration: ``kind="redshift"`` describes the real destination (Firehose
stages the newline-delimited JSON in S3, then runs ``COPY <table> FROM <staged objects> ...
FORMAT AS JSON 'auto'`` on the cluster); ``kind="s3"`` is the same S3 staging alone, as an
``ExtendedS3DestinationConfiguration``, for the local stack (which has no Redshift) and for anyone
who loads the files themselves. ``delivery_stream_config`` is pure (no AWS calls);
``create_delivery_stream`` makes the one call and waits for ACTIVE. Must not create IAM roles,
buckets (except the explicit ``--create-bucket`` convenience of the command line) or tables.

Command line (boto3 honours AWS_ENDPOINT_URL, so the same command targets the local stack)::

    python setup_stream.py --kind s3 --name readings --bucket my-bucket --role-arn arn:aws:iam::123456789012:role/fh
    python setup_stream.py --kind redshift --name readings --bucket my-bucket --role-arn ... \\
        --jdbc-url jdbc:redshift://cluster.abc.us-east-1.redshift.amazonaws.com:5439/dev \\
        --table public.readings --secret-arn arn:aws:secretsmanager:...:secret:redshift-loader
"""

from __future__ import annotations

import argparse
import json
import sys
import time

KINDS = ("redshift", "s3")
DEFAULT_COPY_OPTIONS = "FORMAT AS JSON 'auto'"


def _bucket_arn(bucket: str) -> str:
    return bucket if bucket.startswith("arn:") else f"arn:aws:s3:::{bucket}"


def delivery_stream_config(kind: str = "redshift", *, stream_name: str, role_arn: str, bucket: str,
                           prefix: str = "sqlambda/", error_prefix: str = "sqlambda-errors/",
                           buffer_seconds: int = 60, buffer_mb: int = 5,
                           jdbc_url: str | None = None, table: str | None = None, columns: str | None = None,
                           secret_arn: str | None = None, username: str | None = None, password: str | None = None,
                           copy_options: str = DEFAULT_COPY_OPTIONS) -> dict:
    """The keyword arguments of ``firehose.create_delivery_stream`` for this kind of destination.

    ``bucket`` is a bucket name or ARN. For Redshift, give the cluster's JDBC URL, the target
    table and either ``secret_arn`` (a Secrets Manager secret holding the database user; preferred,
    no password in the stream's configuration) or ``username`` + ``password``. The staged objects
    are uncompressed because Redshift's COPY reads them as they are unless told GZIP.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    missing = [n for n, v in (("stream_name", stream_name), ("role_arn", role_arn), ("bucket", bucket)) if not v]
    if kind == "redshift":
        missing += [n for n, v in (("jdbc_url", jdbc_url), ("table", table)) if not v]
        if not secret_arn and not (username and password):
            missing.append("secret_arn (or username and password)")
    if missing:
        raise ValueError(f"a {kind} delivery stream needs {', '.join(missing)}")
    if kind == "redshift" and not jdbc_url.startswith("jdbc:redshift://"):
        raise ValueError(f"jdbc_url must look like jdbc:redshift://host:5439/database, not {jdbc_url!r}")
    staging = {
        "RoleARN": role_arn,
        "BucketARN": _bucket_arn(bucket),
        "Prefix": prefix,
        "ErrorOutputPrefix": error_prefix,
        "BufferingHints": {"IntervalInSeconds": buffer_seconds, "SizeInMBs": buffer_mb},
        "CompressionFormat": "UNCOMPRESSED",
    }
    config: dict = {"DeliveryStreamName": stream_name, "DeliveryStreamType": "DirectPut"}
    if kind == "s3":
        config["ExtendedS3DestinationConfiguration"] = staging
        return config
    copy = {"DataTableName": table, "CopyOptions": copy_options}
    if columns:
        copy["DataTableColumns"] = columns
    redshift = {"RoleARN": role_arn, "ClusterJDBCURL": jdbc_url, "CopyCommand": copy, "S3Configuration": staging,
                "RetryOptions": {"DurationInSeconds": 3600}}
    if secret_arn:
        redshift["SecretsManagerConfiguration"] = {"Enabled": True, "SecretARN": secret_arn, "RoleARN": role_arn}
    else:
        redshift.update(Username=username, Password=password)
    config["RedshiftDestinationConfiguration"] = redshift
    return config


def create_delivery_stream(client, kind: str = "redshift", *, wait_seconds: float = 120, exist_ok: bool = False,
                           sleep=time.sleep, **options) -> str:
    """Create the stream (``options`` as for ``delivery_stream_config``), wait until it is ACTIVE
    and return its ARN. With ``exist_ok`` an existing stream of that name is returned as it is."""
    config = delivery_stream_config(kind, **options)
    name = config["DeliveryStreamName"]
    try:
        client.create_delivery_stream(**config)
    except client.exceptions.ResourceInUseException:
        if not exist_ok:
            raise
    deadline = time.monotonic() + wait_seconds
    while True:
        desc = client.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        status = desc["DeliveryStreamStatus"]
        if status == "ACTIVE":
            return desc["DeliveryStreamARN"]
        if status.endswith("FAILED") or time.monotonic() > deadline:
            raise RuntimeError(f"delivery stream {name!r} is {status}: {desc.get('FailureDescription') or 'not ACTIVE in time'}")
        sleep(2)


def main(argv: list[str] | None = None) -> int:
    import boto3  # only the command line needs boto3 here; the functions above take a client

    p = argparse.ArgumentParser(prog="setup_stream.py", description="Create the Firehose stream for firehose_to_redshift.")
    p.add_argument("--kind", choices=KINDS, default="redshift")
    p.add_argument("--name", required=True, help="delivery stream name")
    p.add_argument("--role-arn", required=True, help="IAM role Firehose assumes to write S3 (and COPY into Redshift)")
    p.add_argument("--bucket", required=True, help="staging bucket name or ARN")
    p.add_argument("--prefix", default="sqlambda/")
    p.add_argument("--jdbc-url")
    p.add_argument("--table")
    p.add_argument("--columns", help="comma-separated column list for COPY (default: all, matched by name)")
    p.add_argument("--secret-arn")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--copy-options", default=DEFAULT_COPY_OPTIONS)
    p.add_argument("--create-bucket", action="store_true", help="create the staging bucket first (local stack)")
    p.add_argument("--exist-ok", action="store_true")
    a = p.parse_args(argv)
    try:
        if a.create_bucket:
            s3 = boto3.client("s3")
            name = a.bucket.rsplit(":", 1)[-1]
            try:
                s3.create_bucket(Bucket=name)
            except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                pass
        arn = create_delivery_stream(
            boto3.client("firehose"), a.kind, exist_ok=a.exist_ok, stream_name=a.name, role_arn=a.role_arn,
            bucket=a.bucket, prefix=a.prefix, jdbc_url=a.jdbc_url, table=a.table, columns=a.columns,
            secret_arn=a.secret_arn, username=a.username, password=a.password, copy_options=a.copy_options)
    except Exception as exc:  # a command line for people: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"DeliveryStreamName": a.name, "DeliveryStreamARN": arn}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
