"""The plugin's credentials from EC2 instance metadata (IMDSv2, refreshed before expiry), and the
hand-run scripts of ``render -o`` through the real ``mariadb`` client.

IMDS is the Java client's fake metadata server (tests/oracle_java/imds_fake.py): a PUT for a session
token, then GETs that must carry it (IMDSv1 requests are refused, as on an instance that requires
v2), the role name and its credentials with an Expiration.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import pytest
from imds_fake import _creds_doc  # tests/oracle_java, on the path by conftest.py (with its imds fixture)
from mysql_helpers import SERVER_ENV, Server

from sqlambda import api
from sqlambda.targets.mysql.cluster import MariaDB

pytestmark = [pytest.mark.local_stack, pytest.mark.slow]


def test_imdsv2_credentials_are_used_and_refreshed_before_expiry(local_stack, mariadb, imds, tmp_path):
    # served in order (the last repeats): two sets already inside the plugin's five-minute refresh
    # window, then one valid for hours
    near, far = dt.timedelta(seconds=299), dt.timedelta(hours=6)
    imds.credentials = [_creds_doc("0001", near), _creds_doc("0002", near), _creds_doc("0003", far)]
    db = MariaDB(env={"AWS_ENDPOINT_URL": local_stack.endpoint_url, "AWS_REGION": "us-east-1",
                      "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url, **SERVER_ENV})
    try:
        db.start()
        spec = tmp_path / "imds.yaml"
        spec.write_text("project: imds\n", encoding="utf-8")
        api.install(str(spec), db.dsn, target="mysql")
        server = Server(db, spec)
        cfg = json.loads(server.one("SELECT sqlambda_config()"))
        assert cfg["credentials"] == "imds"
        assert json.loads(server.one("SELECT sqlambda.awslambda_fn('echo', '{\"n\": 1}')"))["n"] == 1
        assert imds.served == 1 and imds.unauthorized == 0
        # that set expires within five minutes: the next call refreshes first
        assert json.loads(server.one("SELECT sqlambda.awslambda_fn('echo', '{\"n\": 2}')"))["n"] == 2
        assert imds.served == 2
        server.one("SELECT sqlambda.awslambda_fn('echo', '{}')")
        assert imds.served == 3
        # a set valid for hours is kept: no request to IMDS per call
        for _ in range(5):
            server.one("SELECT sqlambda.awslambda_fn('echo', '{}')")
        assert imds.served == 3 and imds.unauthorized == 0
    finally:
        db.destroy()


def test_no_credentials_anywhere_is_a_clear_error(local_stack, tmp_path):
    db = MariaDB(env={"AWS_ENDPOINT_URL": local_stack.endpoint_url, "AWS_EC2_METADATA_DISABLED": "true", **SERVER_ENV})
    try:
        db.start()
        spec = tmp_path / "none.yaml"
        spec.write_text("project: none\n", encoding="utf-8")
        api.install(str(spec), db.dsn, target="mysql")
        server = Server(db, spec)
        import pymysql

        with pytest.raises(pymysql.err.MySQLError) as info:
            server.one("SELECT sqlambda.awslambda_fn('echo', '{}')")
        assert "no AWS credentials" in str(info.value) and "AWS_EC2_METADATA_DISABLED" in str(info.value)
    finally:
        db.destroy()


@pytest.mark.skipif(shutil.which("mariadb") is None and shutil.which("mysql") is None, reason="no mariadb client")
def test_render_o_scripts_run_in_the_mariadb_client(installed, tmp_path):
    """install.sql (DELIMITER blocks, the key set by hand) and uninstall.sql as a DBA runs them."""

    spec = tmp_path / "scripted.yaml"
    spec.write_text("project: scripted\nmysql: {database: scripted}\nfunctions:\n  - name: hello\n    lambda: echo\n"
                    "    args: {who: text}\n    returns: {type: text, path: who}\n", encoding="utf-8")
    files = api.render_to_dir(str(spec), "mysql", tmp_path / "out")
    assert sorted(p.name for p in files) == ["install.sql", "uninstall.sql"]
    client = shutil.which("mariadb") or shutil.which("mysql")
    key = installed.one("SELECT k FROM sqlambda.sqlambda_key")
    base = [client, "-h", installed.db.host, "-P", str(installed.db.port), "-u", "root", "--batch"]
    text = f"SET @sqlambda_key = '{key}';\n" + (tmp_path / "out" / "install.sql").read_text()
    done = subprocess.run(base, input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert installed.one("SELECT scripted.hello('script')") == "script"
    done = subprocess.run(base, input=(tmp_path / "out" / "uninstall.sql").read_text(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert installed.one("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'scripted'") == 0
    # the installed spec's functions survived the other database's uninstall script
    assert json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', '{}')"))["Status"] == "OK"


def test_uninstalling_one_database_keeps_the_plugin_and_account_another_uses(installed, tmp_path):
    spec = tmp_path / "second.yaml"
    spec.write_text("project: second\nmysql: {database: second}\n", encoding="utf-8")
    api.install(str(spec), installed.dsn, target="mysql")
    assert json.loads(installed.one("SELECT second.awslambda_fn('echo', '{}')"))["Status"] == "OK"
    result = api.uninstall(installed.dsn, target="mysql", spec=str(spec))
    notes = [n for e in result.removed for n in e.notes]
    assert any("kept: the plugin still serves" in n for n in notes), notes
    assert installed.one("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'second'") == 0
    assert json.loads(installed.one("SELECT sqlambda.awslambda_fn('echo', '{}')", user="carol", password="pw"))["Status"] == "OK"
