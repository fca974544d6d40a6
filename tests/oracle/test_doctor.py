"""``sqlambda doctor --target oracle``: every check a call depends on, and the fix for each failure.

FAKE DATABASE, on purpose: Oracle cannot run here. ``Scripted`` answers each catalog query the
doctor sends from a table of answers, so what is tested is the doctor's own logic (which check,
what it concludes, which hint); the live side is tests/oracle/test_live.py with ORACLE_TEST_DSN.
"""

from __future__ import annotations

import pytest

from sqlambda.plan import InstalledRow
from sqlambda.spec.model import Spec
from sqlambda.targets.oracle.doctor import doctor
from sqlambda.targets.oracle.target import OracleTarget


class Scripted:
    """A DB-API connection whose cursor answers by the first matching substring of the SQL."""

    def __init__(self, answers: dict[str, object]):
        self.answers, self.seen = answers, []

    def cursor(self):
        outer = self

        class _Cur:
            def execute(self, sql, **binds):
                outer.seen.append((sql, binds))
                for needle, answer in outer.answers.items():
                    if needle in sql and (not callable(answer) or answer(binds) is not None):
                        value = answer(binds) if callable(answer) else answer
                        if isinstance(value, Exception):
                            raise value
                        self.row = value
                        return
                self.row = None

            def fetchone(self):
                return self.row

            def fetchall(self):
                return [self.row] if self.row else []

        return _Cur()


class Target(OracleTarget):
    def __init__(self, installed: bool):
        self.installed = installed

    def read_registry(self, conn, schema):
        return [InstalledRow("package SQLAMBDA_RT", "package", "x", ())] if self.installed else []


def _spec(**oracle):
    return type("L", (), {"spec": Spec.model_validate({"project": "p", "aws": {"endpoint_url": "https://vpce.example.com"},
                                                        "oracle": {"schema": "app", **oracle}})})()


def _healthy(**over):
    answers = {
        "product_component_version": ("19.21.0.0.0",),
        "DBMS_JAVA.LONGNAME": ("sqlambda",),
        "object_name = 'DBMS_LOCK'": (3,),
        "max_string_size": ("STANDARD",),
        "FROM USER_JAVA_POLICY": (1,),
        "credentials_check": ("ok: environment",),
        "endpoint_check": ("ok: TLS handshake with vpce.example.com:443 succeeded",),
        "FROM USER_OBJECTS": (0,),
    }
    answers.update(over)
    return Scripted(answers)


def _by_name(checks):
    return {c["name"]: c for c in checks}


def test_a_healthy_installed_schema_passes_every_check():
    checks = doctor(Target(True), _healthy(), None, _spec())
    assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
    names = _by_name(checks)
    # every permission the default credential source needs was asked about, no more
    assert {n for n in names if n.startswith("Java ")} == {
        "Java SocketPermission vpce.example.com:443", "Java SocketPermission 169.254.169.254:80",
        "Java RuntimePermission getenv.AWS_ACCESS_KEY_ID", "Java RuntimePermission getenv.AWS_SECRET_ACCESS_KEY",
        "Java RuntimePermission getenv.AWS_SESSION_TOKEN", "Java RuntimePermission getenv.AWS_EC2_METADATA_DISABLED",
        "Java RuntimePermission getenv.AWS_EC2_METADATA_SERVICE_ENDPOINT"}
    assert "4,000 bytes" in names["MAX_STRING_SIZE"]["detail"]
    assert names["credentials from the database session"]["detail"] == "environment"


def test_a_permission_through_a_role_counts_and_a_missing_one_names_the_grant():
    def direct(binds):
        return (0,) if binds["n"] in ("getenv.AWS_SESSION_TOKEN", "getenv.AWS_ACCESS_KEY_ID") else (1,)

    def roles(binds):
        return ("SQLAMBDA_JAVA_ROLE",) if binds["n"] == "getenv.AWS_SESSION_TOKEN" else (None,)

    conn = _healthy(**{"FROM USER_JAVA_POLICY": direct, "FROM DBA_JAVA_POLICY": roles})
    names = _by_name(doctor(Target(True), conn, None, _spec(credentials="environment")))
    assert names["Java RuntimePermission getenv.AWS_SESSION_TOKEN"]["ok"]
    assert "through SQLAMBDA_JAVA_ROLE" in names["Java RuntimePermission getenv.AWS_SESSION_TOKEN"]["detail"]
    missing = names["Java RuntimePermission getenv.AWS_ACCESS_KEY_ID"]
    assert not missing["ok"] and missing["hint"] == ("a DBA runs: EXEC DBMS_JAVA.GRANT_PERMISSION('APP', "
                                                     "'SYS:java.lang.RuntimePermission', 'getenv.AWS_ACCESS_KEY_ID', '')")


@pytest.mark.parametrize("release,version,word", [("12.2.0.1.0", "19c", "19c or newer"), ("19.3.0.0.0", "23ai", "oracle.version")])
def test_the_release_is_checked_against_the_spec(release, version, word):
    names = _by_name(doctor(Target(False), _healthy(product_component_version=(release,)), None, _spec(version=version)))
    assert not names["database release"]["ok"] and word in names["database release"]["hint"]


def test_credentials_and_tls_failures_from_the_session_are_reported():
    conn = _healthy(credentials_check=("error: no AWS credentials in the database server's environment",),
                    endpoint_check=("error: TLS to vpce.example.com:443 failed (SSLHandshakeException): the endpoint's "
                                    "CA is not in the database JVM's trust store",))
    names = _by_name(doctor(Target(True), conn, None, _spec()))
    creds, tls = names["credentials from the database session"], names["endpoint reachable from the database"]
    assert not creds["ok"] and "environment" in creds["detail"] and creds["hint"]
    assert not tls["ok"] and "trust store" in tls["detail"] and "root CA" in tls["hint"]


def test_before_install_the_session_checks_are_not_run():
    conn = _healthy()
    doctor(Target(False), conn, None, _spec())
    assert not any("credentials_check" in sql or "endpoint_check" in sql for sql, _ in conn.seen)
