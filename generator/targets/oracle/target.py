"""OracleTarget: the Oracle facts and the database side of installing (python-oracledb, thin mode).

Owns: connecting, the install lock (DBMS_LOCK), the registry tables, running each step's statements
and checking every compiled object's status and errors after its statement, recording steps, and
reading catalog status for ``verify``. Must not render templates beyond the registry DDL, decide
plans (``sqlambda.plan`` does) or know about the CLI.

Oracle DDL commits implicitly, so unlike PostgreSQL an object and its registry row cannot commit
together (``transactional_ddl = False``). Consequences, and how they are handled:
- the registry row is written (and committed) right after a step's statements all succeeded and
  every compiled object is VALID; a step that fails part-way leaves its objects without a row;
- the next ``install`` therefore plans that step again, and every step is safe to run twice: units
  are ``CREATE OR REPLACE``, grants repeat harmlessly, permission and job blocks check first, and a
  queue table that already exists (ORA-00955) is adopted rather than recreated;
- drops tolerate objects that are already gone, so ``uninstall`` after a manual drop completes.

Lock: DBMS_LOCK (needs ``GRANT EXECUTE ON SYS.DBMS_LOCK``), because it is the only lock that
survives the implicit commits of DDL: a ``SELECT ... FOR UPDATE`` on a registry row would be
released by the first CREATE.

Object status: after each CREATE of a compiled unit (PL/SQL, Java source) the installer reads
ALL_OBJECTS.STATUS and ALL_ERRORS for that object (the ALL_ views filtered by owner behave as the
USER_ views for the owning schema, and still work when a DBA installs into another schema), and
raises InstallError listing every error with line, position and text.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable

from sqlambda import __version__
from sqlambda.artifacts import Artifact
from sqlambda.errors import ConnectionFailed, InstallError
from sqlambda.plan import InstalledRow, Plan, Step
from sqlambda.targets.base import Target
from sqlambda.targets.oracle import render as oracle_render
from sqlambda.targets.oracle.script import CreatedObject, created_object, write_scripts
from sqlambda.templates import render as render_template
from sqlambda.templates import split_statements

LOCK_TIMEOUT_SECONDS = 30
#: ORA- codes that mean "already gone": tolerated while dropping
GONE = {942, 1418, 1434, 1917, 1919, 1927, 1951, 1952, 4043, 4080, 27475, 29501}
#: ORA- codes that mean "already there": tolerated for CREATE TABLE / INDEX of a step being (re)created
ALREADY_THERE = {955, 1408}
#: ORA-24344: success with compilation error (OCI reports it; the status check below handles it)
COMPILED_WITH_ERRORS = 24344

_DSN = re.compile(r"^(?P<user>[^/@]+)/(?P<password>[^@]*)@(?P<dsn>.+)$")


def ora_code(exc: BaseException) -> int | None:
    """The ORA- number of a python-oracledb error (``exc.args[0].code``), else parsed from the text."""
    err = exc.args[0] if exc.args else None
    code = getattr(err, "code", None)
    if isinstance(code, int) and code:
        return code
    m = re.search(r"ORA-(\d{5})", str(exc))
    return int(m.group(1)) if m else None


def _text(value: Any) -> Any:
    """CLOB columns come back as LOB objects unless fetched as strings."""
    return value.read() if hasattr(value, "read") else value


class OracleTarget(Target):
    name = "oracle"
    transactional_ddl = False
    script_separator = "/"

    # -- rendering ---------------------------------------------------------------------------

    def render(self, loaded: Any) -> list[Artifact]:
        return oracle_render.render(loaded).artifacts

    def write_scripts(self, artifacts: list[Artifact], out_dir, spec_name: str, spec_checksum: str):
        """``render -o``: install.sql and uninstall.sql for SQL*Plus (see ``script``)."""
        from pathlib import Path

        return write_scripts(artifacts, Path(out_dir), spec_name, spec_checksum)

    # -- connection and lock ------------------------------------------------------------------

    def connect(self, dsn: str) -> Any:
        """``user/password@host:port/service`` (or ``@tns_alias``), python-oracledb thin mode."""
        try:
            import oracledb
        except ImportError:  # pragma: no cover - oracledb is an extra
            raise ConnectionFailed("python-oracledb is not installed", hint="pip install 'sqlambda[oracle]'") from None
        m = _DSN.match(dsn or "")
        if not m:
            raise ConnectionFailed(
                "an Oracle DSN looks like user/password@host:port/service",
                hint="e.g. --dsn 'app/secret@db.example.com:1521/FREEPDB1'",
            )
        try:
            return oracledb.connect(user=m["user"], password=m["password"], dsn=m["dsn"])
        except oracledb.Error as exc:
            code = ora_code(exc)
            hint = {
                1017: "wrong user name or password",
                12514: "the listener does not know that service name: check the part after the last '/'",
                12541: "nothing listens at that host:port",
                28000: "the account is locked",
            }.get(code or 0, "check host, port and service name, and that the listener is up")
            # Never echo the DSN: it holds the password.
            raise ConnectionFailed(f"cannot connect to Oracle at {m['dsn']}: {str(exc).splitlines()[0]}", hint=hint) from None

    def _lock_name(self, schema: str | None) -> str:
        return f"SQLAMBDA_INSTALL_{(schema or 'CURRENT').upper()}"

    def lock(self, conn: Any, schema: str | None = None) -> None:
        cur = conn.cursor()
        handle = cur.var(str)
        result = cur.var(int)
        try:
            cur.execute(
                """
                DECLARE
                  v_handle VARCHAR2(128);
                BEGIN
                  DBMS_LOCK.ALLOCATE_UNIQUE(:name, v_handle);
                  :result := DBMS_LOCK.REQUEST(v_handle, DBMS_LOCK.X_MODE, :timeout, FALSE);
                  :handle := v_handle;
                END;""",
                name=self._lock_name(schema), timeout=LOCK_TIMEOUT_SECONDS, result=result, handle=handle,
            )
        except Exception as exc:
            if "DBMS_LOCK" in str(exc) or ora_code(exc) in (6550, 201):
                raise InstallError(
                    "the install lock needs EXECUTE on SYS.DBMS_LOCK",
                    hint="ask a DBA: GRANT EXECUTE ON SYS.DBMS_LOCK TO <installing user>",
                ) from None
            raise InstallError(f"could not take the install lock: {exc}") from None
        code = result.getvalue()
        if code not in (0, 4):  # 4: this session holds it already
            reason = {1: "timed out: another sqlambda install is running", 2: "deadlock"}.get(code, f"DBMS_LOCK.REQUEST returned {code}")
            raise InstallError(f"could not take the install lock ({reason})")
        conn._sqlambda_lock_handle = handle.getvalue()  # noqa: SLF001 - remembered per connection

    def unlock(self, conn: Any) -> None:
        handle = getattr(conn, "_sqlambda_lock_handle", None)
        if handle:
            conn.cursor().execute("DECLARE r INTEGER; BEGIN r := DBMS_LOCK.RELEASE(:h); END;", h=handle)
            conn._sqlambda_lock_handle = None

    # -- registry -----------------------------------------------------------------------------

    def _registry_names(self, schema: str | None) -> tuple[str, str]:
        n = oracle_render.Names(schema)
        return n.obj(oracle_render.REGISTRY), n.obj(oracle_render.REGISTRY_LOG)

    def ensure_registry(self, conn: Any, schema: str | None) -> None:
        """Create the registry tables that are missing (Oracle before 23ai has no IF NOT EXISTS)."""
        installed, log = self._registry_names(schema)
        statements = split_statements(render_template(
            "oracle", "registry.sql.j2", installed=installed, log=log,
            installed_pk=oracle_render.oracle_ident(oracle_render.REGISTRY + "_PK"),
            log_pk=oracle_render.oracle_ident(oracle_render.REGISTRY_LOG + "_PK"),
        ))
        cur = conn.cursor()
        for st in statements:
            obj = created_object(st)
            cur.execute(
                "SELECT COUNT(*) FROM ALL_TABLES WHERE owner = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND table_name = :name",
                owner=obj.owner, name=obj.name,
            )
            if cur.fetchone()[0] == 0:
                try:
                    cur.execute(st)
                except Exception as exc:
                    raise InstallError(f"cannot create the registry table {obj.name}: {exc}",
                                       hint="the installing user needs CREATE TABLE and quota on its tablespace") from None

    def read_registry(self, conn: Any, schema: str | None) -> list[InstalledRow]:
        installed, _ = self._registry_names(schema)
        cur = conn.cursor()
        try:
            cur.execute(f"SELECT artifact_key, kind, checksum, drop_statements, install_order FROM {installed}")
        except Exception as exc:
            if ora_code(exc) == 942:
                return []
            raise InstallError(f"cannot read the registry: {exc}") from None
        rows = []
        for key, kind, checksum, drops, order in cur.fetchall():
            rows.append(InstalledRow(key, kind, checksum, tuple(json.loads(_text(drops))), int(order)))
        return rows

    def _record(self, conn: Any, schema: str | None, step: Step, spec_name: str, spec_checksum: str,
                detail: str | None = None) -> None:
        installed, log = self._registry_names(schema)
        cur = conn.cursor()
        cur.execute(f"DELETE FROM {installed} WHERE artifact_key = :k", k=step.key)
        if step.action != "drop" and step.artifact is not None:
            a = step.artifact
            cur.setinputsizes(drops=_clob_type())
            cur.execute(
                f"INSERT INTO {installed} (artifact_key, kind, checksum, drop_statements, install_order, "
                f"tool_version, spec_name, spec_checksum) VALUES (:k, :kind, :checksum, :drops, :ord, :ver, :sn, :sc)",
                k=a.key, kind=a.kind, checksum=a.checksum, drops=json.dumps(list(a.drop)), ord=a.order,
                ver=__version__, sn=spec_name[:1000], sc=spec_checksum,
            )
        self._log(cur, schema, step.action, step.key, step.kind, step.checksum, detail)
        conn.commit()

    def _log(self, cur: Any, schema: str | None, action: str, key: str, kind: str | None,
             checksum: str | None, detail: str | None) -> None:
        _, log = self._registry_names(schema)
        cur.execute(
            f"INSERT INTO {log} (action, artifact_key, kind, checksum, tool_version, detail) "
            f"VALUES (:a, :k, :kind, :c, :v, :d)",
            a=action, k=key, kind=kind, c=checksum, v=__version__, d=(detail or None) and detail[:4000],
        )

    # -- execution ----------------------------------------------------------------------------

    def object_errors(self, conn: Any, obj: CreatedObject) -> tuple[str | None, list[tuple[int, int, str]]]:
        """(status, [(line, position, text)]) of one object; status None when it does not exist."""
        cur = conn.cursor()
        owner_sql = "NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))"
        cur.execute(
            f"SELECT status FROM ALL_OBJECTS WHERE owner = {owner_sql} AND object_name = :name AND object_type = :type",
            owner=obj.owner, name=obj.name, type=obj.type,
        )
        row = cur.fetchone()
        status = row[0] if row else None
        cur.execute(
            f"SELECT line, position, text FROM ALL_ERRORS WHERE owner = {owner_sql} AND name = :name "
            f"AND type = :type AND attribute = 'ERROR' ORDER BY sequence",
            owner=obj.owner, name=obj.name, type=obj.type,
        )
        errors = [(int(line), int(pos), str(_text(text)).strip()) for line, pos, text in cur.fetchall()]
        return status, errors

    def _check_object(self, conn: Any, obj: CreatedObject, key: str) -> None:
        status, errors = self.object_errors(conn, obj)
        if status == "VALID" and not errors:
            return
        if status is None and not errors:
            raise InstallError(f"{key}: {obj.type} {obj.name} was not created")
        listing = "\n".join(f"  line {ln}, position {pos}: {text}" for ln, pos, text in errors) or "  (no errors listed)"
        raise InstallError(
            f"{key}: {obj.type} {obj.name} is {status or 'missing'} after CREATE; compilation errors:\n{listing}",
            hint="Oracle kept the invalid object; fix the cause and run install again (it resumes)",
        )

    def run_statement(self, conn: Any, statement: str, key: str, *, adopt_existing: bool) -> str | None:
        """Run one statement, then check the object it compiled. Returns a note when it tolerated an error."""
        cur = conn.cursor()
        obj = created_object(statement)
        try:
            cur.execute(statement)
        except Exception as exc:
            code = ora_code(exc)
            dropping = re.match(r"^\s*(DROP|REVOKE)\b", statement, re.IGNORECASE)
            if dropping and code in GONE:
                return f"already gone (ORA-{code:05d})"
            if adopt_existing and obj is not None and obj.type in ("TABLE", "INDEX") and code in ALREADY_THERE:
                return f"adopted existing {obj.type.lower()} {obj.name}"
            if code in (1917, 1919, 1918):
                raise InstallError(f"{key}: {str(exc).splitlines()[0]}",
                                   hint="create the role (or user) first: sqlambda never creates Oracle roles") from None
            if code == 1031:
                raise InstallError(f"{key}: insufficient privileges: {str(exc).splitlines()[0]}",
                                   hint="see README, Oracle: the installing user needs CREATE PROCEDURE, CREATE TRIGGER, "
                                        "CREATE TABLE, CREATE JOB (scheduler_drain) and a DBA's Java grants") from None
            if code != COMPILED_WITH_ERRORS:
                raise InstallError(f"{key}: {str(exc).strip()}") from None
        if obj is not None and obj.compiled:
            self._check_object(conn, obj, key)
        return None

    def apply_step(self, conn: Any, step: Step, schema: str | None, spec_name: str, spec_checksum: str) -> list[str]:
        """Run one plan step and record it. Returns notes about tolerated errors."""
        if not step.changes:
            return []
        notes = []
        try:
            for st in step.statements:
                note = self.run_statement(conn, st, step.key, adopt_existing=step.action in ("create", "recreate"))
                if note:
                    notes.append(note)
        except InstallError as exc:
            # The objects created so far stay (DDL committed); log the failure for the record.
            try:
                self._log(conn.cursor(), schema, "failed", step.key, step.kind, step.checksum, exc.message)
                conn.commit()
            except Exception:  # noqa: BLE001 - the original error matters more than the log row
                pass
            raise
        self._record(conn, schema, step, spec_name, spec_checksum, "; ".join(notes) or None)
        return notes

    def apply_plan(self, conn: Any, plan: Plan, schema: str | None, spec_name: str, spec_checksum: str,
                   progress: Callable[[Step], None] | None = None) -> None:
        """Execute a plan under the install lock, step by step (each recorded when it succeeded)."""
        self.ensure_registry(conn, schema)
        self.lock(conn, schema)
        try:
            for step in plan.steps:
                if progress:
                    progress(step)
                self.apply_step(conn, step, schema, spec_name, spec_checksum)
        finally:
            self.unlock(conn)

    # -- verify -------------------------------------------------------------------------------

    def verify(self, conn: Any, artifacts: Iterable[Artifact], schema: str | None) -> list[str]:
        """Problems found: missing or invalid compiled objects, registry rows that disagree."""
        installed = {r.key: r for r in self.read_registry(conn, schema)}
        problems = []
        for a in artifacts:
            row = installed.get(a.key)
            if row is None:
                problems.append(f"{a.key}: not installed")
                continue
            if row.checksum != a.checksum:
                problems.append(f"{a.key}: installed version differs from the spec (run install)")
            for st in a.statements:
                obj = created_object(st)
                if obj is None or not (obj.compiled or obj.type == "TABLE"):
                    continue
                status, errors = self.object_errors(conn, obj)
                if status is None:
                    problems.append(f"{a.key}: {obj.type} {obj.name} is missing")
                elif status != "VALID":
                    problems.append(f"{a.key}: {obj.type} {obj.name} is {status}")
        return problems


def _clob_type() -> Any:
    import oracledb

    return oracledb.DB_TYPE_CLOB
