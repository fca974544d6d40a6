"""The installer's statement-by-statement logic: status checks, tolerated errors, registry rows.

FAKE DATABASE, on purpose and only here: Oracle cannot run on these machines, and what is tested is
OracleTarget's own decision logic (what it does with the answers of USER_OBJECTS/USER_ERRORS-style
queries and with ORA- error codes), not Oracle. `FakeOracle` is a minimal DB-API connection that
records statements and answers the catalog queries from a script. The same paths run against a
real Oracle in test_live.py when ORACLE_TEST_DSN is set.
"""

from __future__ import annotations

import json
import re

import pytest

from sqlambda.artifacts import Artifact
from sqlambda.errors import InstallError
from sqlambda.pipeline import ApplyExecutor, verify_problems
from sqlambda.plan import InstalledRow, make_plan
from sqlambda.targets.oracle import render as R
from sqlambda.targets.oracle.target import OracleTarget, ora_code


class FakeOraError(Exception):
    """Shaped like oracledb.DatabaseError: args[0] has .code and .message."""

    def __init__(self, code: int, message: str) -> None:
        err = type("_Err", (), {"code": code, "message": message})()
        super().__init__(err)
        self._text = f"ORA-{code:05d}: {message}"

    def __str__(self) -> str:
        return self._text


class FakeCursor:
    def __init__(self, db: "FakeOracle") -> None:
        self.db = db
        self._rows: list[tuple] = []

    def setinputsizes(self, **kw):
        pass

    def execute(self, sql: str, **binds):
        self.db.log.append((sql, binds))
        for needle, exc in self.db.fail_on:
            if needle in sql:
                raise exc
        if "FROM ALL_OBJECTS" in sql:
            st = self.db.status.get((binds["type"], binds["name"]))
            self._rows = [(st,)] if st else []
        elif "FROM ALL_ERRORS" in sql:
            self._rows = list(self.db.errors.get((binds["type"], binds["name"]), []))
        elif "FROM ALL_TAB_PRIVS" in sql:
            self._rows = [(1 if (binds["name"], binds["grantee"]) in self.db.grants else 0,)]
        elif "FROM ALL_TABLES" in sql:
            self._rows = [(1 if binds["name"] in self.db.tables else 0,)]
        elif sql.startswith("SELECT artifact_key"):
            self._rows = list(self.db.registry_rows)
        else:
            self._rows = []

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return list(self._rows)


class FakeOracle:
    def __init__(self) -> None:
        self.log: list[tuple[str, dict]] = []
        self.status: dict[tuple[str, str], str] = {}
        self.errors: dict[tuple[str, str], list[tuple]] = {}
        self.fail_on: list[tuple[str, Exception]] = []
        self.tables: set[str] = set()
        self.registry_rows: list[tuple] = []
        self.grants: set[tuple[str, str]] = set()
        self.commits = 0

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def commit(self) -> None:
        self.commits += 1

    def executed(self, prefix: str) -> list[tuple[str, dict]]:
        return [(s, b) for s, b in self.log if s.startswith(prefix)]


FN = 'CREATE OR REPLACE FUNCTION "APP"."F" RETURN NUMBER AUTHID DEFINER AS BEGIN RETURN 1; END;'


def _artifact(statements=(FN,), key="function APP.F", kind="function", drop=('DROP FUNCTION "APP"."F"',)):
    return Artifact(key=key, kind=kind, statements=tuple(statements), drop=tuple(drop), order=40)


def test_invalid_object_with_errors_raises_install_error_listing_them():
    db = FakeOracle()
    db.status[("FUNCTION", "F")] = "INVALID"
    db.errors[("FUNCTION", "F")] = [
        (3, 5, "PLS-00201: identifier 'SQLAMBDA_RT' must be declared"),
        (3, 5, "PL/SQL: Statement ignored"),
    ]
    with pytest.raises(InstallError) as info:
        OracleTarget().run_statement(db, FN, "function APP.F", adopt_existing=False)
    msg = info.value.message
    assert "FUNCTION F is INVALID" in msg
    assert "line 3, position 5: PLS-00201: identifier 'SQLAMBDA_RT' must be declared" in msg
    assert "line 3, position 5: PL/SQL: Statement ignored" in msg
    # it asked the catalog about exactly that object
    q = [b for s, b in db.log if "FROM ALL_ERRORS" in s][0]
    assert q == {"owner": "APP", "name": "F", "type": "FUNCTION"}


def test_compiled_with_errors_warning_still_goes_through_the_status_check():
    db = FakeOracle()
    db.fail_on.append((FN, FakeOraError(24344, "success with compilation error")))
    db.status[("FUNCTION", "F")] = "INVALID"
    db.errors[("FUNCTION", "F")] = [(1, 1, "PLS-00103: Encountered the symbol")]
    with pytest.raises(InstallError, match="PLS-00103"):
        OracleTarget().run_statement(db, FN, "function APP.F", adopt_existing=False)


def test_valid_object_passes_and_a_missing_one_fails():
    db = FakeOracle()
    db.status[("FUNCTION", "F")] = "VALID"
    assert OracleTarget().run_statement(db, FN, "k", adopt_existing=False) is None
    db.status.clear()
    with pytest.raises(InstallError, match="was not created"):
        OracleTarget().run_statement(db, FN, "k", adopt_existing=False)


def test_java_source_is_checked_as_java_source():
    db = FakeOracle()
    st = 'CREATE OR REPLACE AND COMPILE JAVA SOURCE NAMED "sqlambda/Json" AS\npackage sqlambda;'
    db.status[("JAVA SOURCE", "sqlambda/Json")] = "INVALID"
    db.errors[("JAVA SOURCE", "sqlambda/Json")] = [(12, 0, "ORA-29535: source requires recompilation")]
    with pytest.raises(InstallError, match=r"(?s)JAVA SOURCE sqlambda/Json is INVALID.*line 12, position 0: ORA-29535"):
        OracleTarget().run_statement(db, st, "java source sqlambda/Json", adopt_existing=False)


def test_plain_sql_is_not_status_checked():
    db = FakeOracle()
    OracleTarget().run_statement(db, 'GRANT EXECUTE ON "APP"."F" TO "R"', "g", adopt_existing=False)
    assert not [s for s, _ in db.log if "ALL_OBJECTS" in s]


@pytest.mark.parametrize("code", [4043, 942, 4080, 1927])
def test_drop_of_something_already_gone_is_tolerated(code):
    db = FakeOracle()
    db.fail_on.append(("DROP", FakeOraError(code, "does not exist")))
    note = OracleTarget().run_statement(db, 'DROP FUNCTION "APP"."F"', "k", adopt_existing=False)
    assert note == f"already gone (ORA-{code:05d})"


def test_other_errors_are_install_errors_and_gone_only_counts_for_drops():
    db = FakeOracle()
    db.fail_on.append(("CREATE", FakeOraError(942, "table or view does not exist")))
    with pytest.raises(InstallError, match="ORA-00942"):
        OracleTarget().run_statement(db, FN, "k", adopt_existing=True)


def test_existing_table_is_adopted_only_when_creating():
    st = 'CREATE TABLE "APP"."SQLAMBDA_OUTBOX" (id NUMBER)'
    db = FakeOracle()
    db.fail_on.append(("CREATE TABLE", FakeOraError(955, "name is already used by an existing object")))
    assert OracleTarget().run_statement(db, st, "k", adopt_existing=True) == "adopted existing table SQLAMBDA_OUTBOX"
    with pytest.raises(InstallError, match="ORA-00955"):
        OracleTarget().run_statement(db, st, "k", adopt_existing=False)


def test_missing_role_gets_a_hint():
    db = FakeOracle()
    db.fail_on.append(("GRANT", FakeOraError(1917, "user or role 'R' does not exist")))
    with pytest.raises(InstallError) as info:
        OracleTarget().run_statement(db, 'GRANT EXECUTE ON "F" TO "R"', "g", adopt_existing=False)
    assert "never creates Oracle roles" in info.value.hint


def test_apply_step_records_the_registry_row_after_success():
    db = FakeOracle()
    db.status[("FUNCTION", "F")] = "VALID"
    a = _artifact()
    (step,) = make_plan("oracle", [a], []).steps
    ApplyExecutor(OracleTarget(), db, "APP", "spec.yaml", "s" * 64).step(step)
    (ins, binds), = db.executed('INSERT INTO "APP"."SQLAMBDA_INSTALLED"')
    assert binds["k"] == "function APP.F" and binds["checksum"] == a.checksum
    assert json.loads(binds["drops"]) == ['DROP FUNCTION "APP"."F"']
    (_, log), = db.executed('INSERT INTO "APP"."SQLAMBDA_INSTALL_LOG"')
    assert log["a"] == "create"
    assert db.commits == 1


def test_failed_step_writes_no_registry_row_so_install_resumes_it():
    db = FakeOracle()
    db.status[("FUNCTION", "F")] = "INVALID"
    db.errors[("FUNCTION", "F")] = [(1, 1, "PLS-00201: boom")]
    (step,) = make_plan("oracle", [_artifact()], []).steps
    with pytest.raises(InstallError):
        ApplyExecutor(OracleTarget(), db, "APP", "spec.yaml", "s" * 64).step(step)
    assert not db.executed('INSERT INTO "APP"."SQLAMBDA_INSTALLED"')
    (_, log), = db.executed('INSERT INTO "APP"."SQLAMBDA_INSTALL_LOG"')
    assert log["a"] == "failed" and "PLS-00201" in log["d"]
    # the next plan against the unchanged registry plans the same step again
    (again,) = make_plan("oracle", [_artifact()], []).steps
    assert again.action == "create"


def test_drop_step_deletes_the_registry_row():
    db = FakeOracle()
    row = InstalledRow("function APP.F", "function", "x" * 64, ('DROP FUNCTION "APP"."F"',), 40)
    (step,) = make_plan("oracle", [], [row]).steps
    ApplyExecutor(OracleTarget(), db, "APP", "spec.yaml", "s" * 64).step(step)
    assert db.executed('DROP FUNCTION "APP"."F"')
    assert db.executed('DELETE FROM "APP"."SQLAMBDA_INSTALLED"')
    assert not db.executed('INSERT INTO "APP"."SQLAMBDA_INSTALLED"')


def test_ensure_registry_creates_only_missing_tables():
    db = FakeOracle()
    db.tables.add("SQLAMBDA_INSTALLED")
    OracleTarget().ensure_registry(db, "APP", None)
    created = db.executed("CREATE TABLE")
    assert len(created) == 1 and created[0][0].startswith('CREATE TABLE "APP"."SQLAMBDA_INSTALL_LOG"')


def test_read_registry_parses_rows_and_treats_a_missing_table_as_empty():
    db = FakeOracle()
    db.registry_rows = [("function APP.F", "function", "c" * 64, '["DROP FUNCTION \\"APP\\".\\"F\\""]', 40)]
    (row,) = OracleTarget().read_registry(db, "APP")
    assert row == InstalledRow("function APP.F", "function", "c" * 64, ('DROP FUNCTION "APP"."F"',), 40)
    db.fail_on.append(("SELECT artifact_key", FakeOraError(942, "table or view does not exist")))
    assert OracleTarget().read_registry(db, "APP") == []


def test_ora_code():
    assert ora_code(FakeOraError(4043, "x")) == 4043
    assert ora_code(Exception("ORA-01031: insufficient privileges")) == 1031
    assert ora_code(Exception("nothing")) is None


def test_connect_rejects_a_malformed_dsn_without_echoing_it():
    from sqlambda.errors import ConnectionFailed

    with pytest.raises(ConnectionFailed) as info:
        OracleTarget().connect("no-at-sign-secret")
    assert "secret" not in info.value.message and "user/password@host:port/service" in info.value.message


def test_verify_reports_missing_invalid_changed_and_ungranted():
    from sqlambda.spec.model import Spec
    from sqlambda.targets.oracle import render as R

    spec = Spec.model_validate({"project": "p", "oracle": {"schema": "app"},
                                "functions": [{"name": "f", "lambda": "echo", "roles": ["r"]}]})
    arts = [a for a in R.render(spec).artifacts if a.key in ("function APP.F", "grant execute on APP.F to R")]
    fn, grant = sorted(arts, key=lambda a: a.order)
    db = FakeOracle()
    db.registry_rows = [(fn.key, fn.kind, fn.checksum, "[]", fn.order), (grant.key, grant.kind, "0" * 64, "[]", grant.order)]
    db.status[("FUNCTION", "F")] = "INVALID"
    problems = verify_problems(OracleTarget(), db, arts, "APP")
    assert problems == [
        "function APP.F: FUNCTION F is INVALID",
        "grant execute on APP.F to R: installed version differs from the spec (run install)",
        "grant execute on APP.F to R: the grant is missing",
    ]
    db.status[("FUNCTION", "F")] = "VALID"
    db.grants.add(("F", "R"))
    db.registry_rows[1] = (grant.key, grant.kind, grant.checksum, "[]", grant.order)
    assert verify_problems(OracleTarget(), db, arts, "APP") == []
    db.registry_rows = []
    assert verify_problems(OracleTarget(), db, arts, "APP") == ["function APP.F: not installed (run install)",
                                                               "grant execute on APP.F to R: not installed (run install)"]


class _Release:
    """A connection that answers only the release query (what prechecks reads)."""

    def __init__(self, release):
        self.release = release

    def cursor(self):
        outer = self

        class _Cur:
            def execute(self, sql, **binds):
                assert "product_component_version" in sql

            def fetchone(self):
                return (outer.release,)

        return _Cur()


@pytest.mark.parametrize("release,spec_version,refused", [
    ("19.21.0.0.0", "19c", None), ("23.4.0.24.05", "19c", None), ("21.3.0.0.0", "21c", None),
    ("19.21.0.0.0", "23ai", "renders for Oracle 23ai"), ("21.3.0.0.0", "23ai", "renders for Oracle 23ai"),
    ("12.2.0.1.0", "19c", "needs Oracle Database 19c or newer"),
])
def test_install_checks_the_database_release_against_oracle_version(release, spec_version, refused):
    from oracle_specs import make_spec

    spec = make_spec(oracle={"version": spec_version})
    arts = R.render(spec).artifacts
    if refused is None:
        OracleTarget().prechecks(_Release(release), arts)
    else:
        with pytest.raises(InstallError, match=refused):
            OracleTarget().prechecks(_Release(release), arts)


def test_no_binary_returning_before_23ai():
    from oracle_specs import COVERAGE

    from sqlambda.spec.model import Spec

    for version, present in (("19c", False), ("21c", False), ("23ai", True)):
        spec = Spec.model_validate({**COVERAGE, "oracle": {**COVERAGE["oracle"], "version": version}})
        text = "\n".join(st for a in R.render(spec).artifacts for st in a.statements)
        assert bool(re.search(r"RETURNING BINARY_(DOUBLE|FLOAT)|BINARY_DOUBLE PATH", text)) is present, version
