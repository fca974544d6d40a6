"""Fixtures of the MySQL / MariaDB tests: one private MariaDB (Debian's mariadb-server, started by
``sqlambda.targets.mysql.cluster``) whose environment points the plugin at the session's local AWS
stack, with the test spec installed by the real installer (which builds the C plugin)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "compat"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "oracle_java"))  # the fake IMDS server

from imds_fake import imds  # noqa: E402,F401 - the fake EC2 metadata server fixture
from mysql_helpers import BOOM, SPEC, Server, server_env  # noqa: E402

from sqlambda import api  # noqa: E402
from sqlambda.targets.mysql.cluster import MariaDB  # noqa: E402


@pytest.fixture(scope="session")
def mariadb(local_stack, tmp_path_factory):
    os.environ["SQLAMBDA_MYSQL_BUILD_DIR"] = str(tmp_path_factory.mktemp("mysql-build"))
    local_stack.deploy("echo")
    local_stack.deploy_source("my_boom", BOOM, timeout=5)
    db = MariaDB(env=server_env(local_stack))
    try:
        db.start()
        spec = tmp_path_factory.mktemp("mysql-spec") / "mytest.yaml"
        spec.write_text(SPEC, encoding="utf-8")
        server = Server(db, spec)
        server.run("CREATE ROLE lambda_caller", "CREATE ROLE app_reader", "CREATE DATABASE shop",
                   "CREATE TABLE shop.orders (id INT PRIMARY KEY, status VARCHAR(40))",
                   "CREATE USER 'alice'@'%' IDENTIFIED BY 'pw'", "GRANT app_reader TO 'alice'@'%'",
                   "SET DEFAULT ROLE app_reader FOR 'alice'@'%'",
                   "CREATE USER 'mallory'@'%' IDENTIFIED BY 'pw'", "GRANT ALL ON shop.* TO 'mallory'@'%'",
                   "CREATE USER 'carol'@'%' IDENTIFIED BY 'pw'", "GRANT lambda_caller TO 'carol'@'%'",
                   "SET DEFAULT ROLE lambda_caller FOR 'carol'@'%'")
        yield server
    finally:
        db.destroy()


@pytest.fixture(scope="session")
def installed(mariadb, local_stack):
    from fixtures_local import deploy_recorder

    rec = deploy_recorder(local_stack, "my_rec")
    api.install(str(mariadb.spec), mariadb.dsn, target="mysql")
    mariadb.recorder = rec
    return mariadb
