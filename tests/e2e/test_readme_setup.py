"""The README's scenario "Common setup", run as written on a private cluster and a detached stack.

Only the line that names the user's database is replaced (by this test's throwaway one). The block
must run from nothing: before, it used roles and a Kinesis stream it never created. The ``aws``
line runs through the AWS CLI when one is installed, else as the same call through boto3.
Afterwards the scenarios' objects are there and scenario 3 reads the stream the block created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg
import pytest
from cli_helpers import README, readme_bash_block

from sqlambda.targets.postgres.cluster import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.local_stack, pytest.mark.slow]

BOTO3_CREATE_STREAM = (f"{sys.executable} -c \"import boto3; boto3.client('kinesis').create_stream("
                       "StreamName='sensor-readings', ShardCount=1)\"")


def block() -> str:
    return readme_bash_block('### Common setup')


def test_common_setup_runs_from_nothing(tmp_path):
    script = block()
    db_line = next(ln for ln in script.splitlines() if ln.startswith("DB=mydb"))
    aws_line = next(ln for ln in script.splitlines() if ln.startswith("aws kinesis create-stream"))
    if shutil.which("aws") is None:
        script = script.replace(aws_line, BOTO3_CREATE_STREAM)
    cluster = Cluster(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    cluster.start()
    try:
        dsn = cluster.create_database("readme_setup")
        script = script.replace(db_line, f'DB=readme_setup; DSN="{dsn}"')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG")) and k != "DATABASE_URL"}
        env.update(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], XDG_RUNTIME_DIR=str(tmp_path))
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", script + "\nsqlambda local status\n"], cwd=README.parent,
                             env=env, capture_output=True, text=True, timeout=300)
        try:
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
            assert '"lambda:InvokeFunction"' in res.stdout  # the iam-policy line ran last
            with psycopg.connect(dsn, autocommit=True) as conn:
                # scenario 3 works on what the block made: the stream exists, the roles got their grants
                assert conn.execute("SELECT count(*) FROM kinesis_read('sensor-readings')").fetchone()[0] == 0
                conn.execute("CALL process_sensor_readings('sensor-readings')")
                assert conn.execute("SELECT has_function_privilege('app_reader', 'kinesis_read(text,text,integer)', 'EXECUTE')").fetchone()[0]
        finally:
            subprocess.run([os.path.join(os.path.dirname(sys.executable), "sqlambda"), "local", "stop"], env=env,
                           capture_output=True, timeout=60)
    finally:
        cluster.destroy()
