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
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlambda import __version__
from sqlambda.artifacts import Artifact
from sqlambda.errors import ConnectionFailed, EnvironmentProblem, InstallError, UsageError
from sqlambda.plan import InstalledRow, Step
from sqlambda.targets.base import ModernizeBackend, OutboxBackend, Target
from sqlambda.targets.oracle import render as oracle_render
from sqlambda.targets.oracle.script import CreatedObject, created_object, install_script, is_block, uninstall_script

#: DBMS_LOCK name of the install lock (one per database)
LOCK_NAME = "SQLAMBDA_INSTALL"
#: ORA- codes that mean "already gone": tolerated while dropping
GONE = {942, 1418, 1432, 1434, 1917, 1919, 1927, 1951, 1952, 4043, 4080, 27475, 29501}
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
    statement_terminator = ";"
    block_terminator = "/"

    # -- rendering ---------------------------------------------------------------------------

    def render(self, loaded: Any) -> list[Artifact]:
        return oracle_render.render(loaded).artifacts

    def is_block(self, statement: str) -> bool:
        return is_block(statement)

    def script_files(self, artifacts: list[Artifact], loaded: Any, spec_name: str, spec_checksum: str) -> dict[str, str]:
        """``render -o``: install.sql and uninstall.sql for SQL*Plus (see ``script``)."""
        return {"install.sql": install_script(artifacts, spec_name, spec_checksum),
                "uninstall.sql": uninstall_script(artifacts, spec_name, spec_checksum)}

    # -- connection and lock ------------------------------------------------------------------

    def connect(self, dsn: str) -> Any:
        """``user/password@host:port/service`` (or ``@tns_alias``), python-oracledb thin mode."""
        try:
            import oracledb
        except ImportError:  # oracledb is an extra (tests/cli/test_output.py hides it)
            raise EnvironmentProblem("python-oracledb is not installed", hint="pip install 'sqlambda[oracle]'") from None
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

    def lock(self, conn: Any, schema: str | None, wait_seconds: float) -> None:
        """Take the install lock (one per database, like PostgreSQL's advisory lock) or raise InstallError.

        ``release_on_commit => FALSE``: the lock must survive the commit every DDL statement makes.
        """
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
                name=LOCK_NAME, timeout=max(0, int(wait_seconds)), result=result, handle=handle,
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
            reason = {1: "another sqlambda install is running", 2: "deadlock"}.get(code, f"DBMS_LOCK.REQUEST returned {code}")
            raise InstallError(f"could not take the install lock ({reason})",
                               hint="wait for the other install to finish and run again")
        conn._sqlambda_lock_handle = handle.getvalue()  # noqa: SLF001 - remembered per connection

    def unlock(self, conn: Any) -> None:
        handle = getattr(conn, "_sqlambda_lock_handle", None)
        if handle:
            conn.cursor().execute("DECLARE r INTEGER; BEGIN r := DBMS_LOCK.RELEASE(:h); END;", h=handle)
            conn._sqlambda_lock_handle = None

    # -- registry -----------------------------------------------------------------------------

    def registry_schema(self, loaded: Any) -> str | None:
        """The spec's ``oracle.schema`` (upper case), or None: the connecting user's schema."""
        schema = loaded.spec.oracle.schema_ if loaded is not None else None
        return schema.upper() if schema else None

    def registry_exists(self, conn: Any, schema: str | None) -> bool:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM ALL_TABLES WHERE owner = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND table_name = :name",
            owner=schema, name=oracle_render.REGISTRY,
        )
        return bool(cur.fetchone()[0])

    def find_registries(self, conn: Any) -> list[str]:
        """Schemas (visible to this user) holding a sqlambda registry."""
        cur = conn.cursor()
        cur.execute("SELECT owner FROM ALL_TABLES WHERE table_name = :t ORDER BY owner", t=oracle_render.REGISTRY)
        return [r[0] for r in cur.fetchall()]

    def drop_registry(self, conn: Any, schema: str | None) -> None:
        """The last step of uninstall: drop both registry tables (tolerating their absence)."""
        for name in (oracle_render.REGISTRY_LOG, oracle_render.REGISTRY):
            obj = oracle_render.Names(schema).obj(name)
            self.run_statement(conn, f"DROP TABLE {obj} PURGE", f"registry {name}", adopt_existing=False)


    def _registry_names(self, schema: str | None) -> tuple[str, str]:
        n = oracle_render.Names(schema)
        return n.obj(oracle_render.REGISTRY), n.obj(oracle_render.REGISTRY_LOG)

    def ensure_registry(self, conn: Any, schema: str | None, loaded: Any = None) -> None:
        """Create the registry tables that are missing (Oracle before 23ai has no IF NOT EXISTS)."""
        statements = oracle_render.registry_statements(schema)
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

    def registry_details(self, conn: Any, schema: str | None) -> list[dict]:
        installed, _ = self._registry_names(schema)
        return self._dict_rows(conn, f"SELECT artifact_key, kind, checksum, tool_version, spec_name, spec_checksum, "
                                     f"installed_by, installed_at FROM {installed} ORDER BY install_order, artifact_key",
                               ("key", "kind", "checksum", "tool_version", "spec_name", "spec_checksum",
                                "installed_by", "installed_at"))

    def install_history(self, conn: Any, schema: str | None, limit: int) -> list[dict]:
        _, log = self._registry_names(schema)
        return self._dict_rows(conn, f"SELECT id, logged_at, db_user, action, artifact_key, checksum, detail FROM {log} "
                                     "ORDER BY id DESC FETCH FIRST :n ROWS ONLY",
                               ("id", "at", "who", "action", "key", "checksum", "detail"), n=int(limit))

    @staticmethod
    def _dict_rows(conn: Any, query: str, names: tuple[str, ...], **binds: Any) -> list[dict]:
        """Rows as dicts; a registry table that does not exist (ORA-00942) is no rows."""
        cur = conn.cursor()
        try:
            cur.execute(query, **binds)
        except Exception as exc:
            if ora_code(exc) == 942:
                return []
            raise InstallError(f"cannot read the registry: {exc}") from None
        return [dict(zip(names, map(_text, row))) for row in cur.fetchall()]

    def record_step(self, conn: Any, schema: str | None, step: Step, spec_name: str, spec_checksum: str,
                    notes: list[str]) -> None:
        """The registry row (written and committed once every statement of the step succeeded)."""
        self._record(conn, schema, step, spec_name, spec_checksum, "; ".join(notes) or None)

    def record_failure(self, conn: Any, schema: str | None, step: Step, message: str) -> None:
        """The objects created before the failure stay (DDL committed); the failure is logged."""
        try:
            self._log(conn.cursor(), schema, "failed", step.key, step.kind, step.checksum, message)
            conn.commit()
        except Exception:  # noqa: BLE001 - the original error matters more than the log row
            pass

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
            # "created with compilation errors" is looked at below, for the object the statement
            # creates; from a block (which creates nothing itself: modernize's dynamic DDL) it is a failure
            if code != COMPILED_WITH_ERRORS or obj is None:
                raise InstallError(f"{key}: {str(exc).strip()}") from None
        if obj is not None and obj.compiled:
            self._check_object(conn, obj, key)
        return None

    def prechecks(self, conn: Any, artifacts: list[Artifact]) -> None:
        """The database's release against the one the spec was rendered for (``oracle.version``) before
        the first statement; everything else is checked as each statement runs (missing privileges,
        roles and Java grants get their own messages)."""
        wanted = next((a.probe_dict.get("oracle_version") for a in artifacts if a.probe_dict.get("oracle_version")), None)
        if wanted is None:
            return
        release = self.database_release(conn)
        have = oracle_render.version_of_release(release)
        if have is None:
            raise InstallError(f"this database is Oracle {release}: sqlambda needs Oracle Database 19c or newer")
        if oracle_render.VERSIONS.index(have) < oracle_render.VERSIONS.index(wanted):
            raise InstallError(f"the spec renders for Oracle {wanted} (oracle.version) but this database is {have} ({release})",
                               hint=f"set oracle.version: {have} in the spec (sqlambda then renders what {have} supports)")

    def database_release(self, conn: Any) -> str:
        """``19.21.0.0.0``: VERSION_FULL (19c and later), else VERSION of PRODUCT_COMPONENT_VERSION."""
        cur = conn.cursor()
        try:
            cur.execute("SELECT version_full FROM product_component_version WHERE product LIKE 'Oracle Database%'")
        except Exception:  # noqa: BLE001 - before 18c the column does not exist
            cur.execute("SELECT version FROM product_component_version WHERE product LIKE 'Oracle Database%'")
        row = cur.fetchone()
        return str(row[0]) if row else "unknown"

    def transaction(self, conn: Any) -> AbstractContextManager:
        """Oracle DDL commits, so the pipeline never wraps a step (``transactional_ddl`` is False)."""
        return nullcontext()

    def before_step(self, conn: Any, step: Step, schema: str | None) -> list[str]:
        return []  # a drop of something already gone is noted as its statement runs

    def execute_statement(self, conn: Any, step: Step, statement: str) -> str | None:
        """Run one statement and check the object it compiled; a create step adopts an existing table."""
        return self.run_statement(conn, statement, step.key, adopt_existing=step.action in ("create", "recreate"))

    def _granted(self, conn: Any, schema: str | None, name: str, grantee: str) -> bool:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM ALL_TAB_PRIVS WHERE table_schema = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) "
            "AND table_name = :name AND grantee = :grantee AND privilege = 'EXECUTE'",
            owner=schema, name=name, grantee=grantee,
        )
        row = cur.fetchone()
        return bool(row and row[0])

    def _synonym_exists(self, conn: Any, owner: str, name: str) -> bool:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM ALL_SYNONYMS WHERE owner = :owner AND synonym_name = :name", owner=owner, name=name)
        row = cur.fetchone()
        return bool(row and row[0])

    # -- invoke and doctor --------------------------------------------------------------------

    def wrapper_arguments(self, conn: Any, schema: str | None, name: str) -> list[str] | None:
        from sqlambda.targets.oracle import calls

        return calls.wrapper_arguments(self, conn, schema, name)

    def call_wrapper(self, conn: Any, schema: str | None, name: str, args: dict) -> Any:
        from sqlambda.targets.oracle import calls

        return calls.call_wrapper(self, conn, schema, name, args)

    def call_generic(self, conn: Any, schema: str | None, lambda_name: str, json_text: str) -> Any:
        from sqlambda.targets.oracle import calls

        return calls.call_generic(conn, schema, lambda_name, json_text)

    def probe_lambda(self, conn: Any, schema: str | None, lambda_name: str, qualifier: str | None) -> None:
        raise UsageError("verify --probe is not available for Oracle: its Java client has no DryRun call",
                         hint="check one function with `sqlambda invoke --target oracle NAME '{...}'`")

    def doctor(self, conn: Any, endpoint_url: str | None, loaded: Any) -> list[dict]:
        """Checks run in the database: Java present, DBMS_LOCK usable, socket permissions, objects valid.
        ``endpoint_url`` is not contacted from here: only the database's JVM could test that route."""
        from sqlambda.targets.oracle.doctor import doctor

        return doctor(self, conn, endpoint_url, loaded)

    def outbox(self) -> OutboxBackend:
        from sqlambda.targets.oracle.drain import OracleOutbox

        return OracleOutbox(self)

    def modernize(self) -> ModernizeBackend:
        from sqlambda.targets.oracle.modernize import OracleModernize

        return OracleModernize(self)

    def extension_files(self) -> dict[str, str]:
        raise UsageError("the oracle target ships no database extensions (its objects are installed by `sqlambda install`)")

    def install_extensions(self, locator: str | None, *, remove: bool = False, dry_run: bool = False) -> list[Any]:
        return self.extension_files()  # raises: nothing to install

    # -- verify -------------------------------------------------------------------------------

    def damaged(self, conn: Any, artifacts: list[Artifact], schema: str | None) -> dict[str, str]:
        """Registered artifacts whose grant is missing, or whose compiled objects are missing or invalid."""
        out: dict[str, str] = {}
        for a in artifacts:
            problems = []
            probe = a.probe_dict
            if a.kind == "grant" and not self._granted(conn, schema, probe["grant"], probe["grantee"]):
                problems.append("the grant is missing")
            if a.kind == "synonym" and not self._synonym_exists(conn, probe["owner"], probe["synonym"]):
                problems.append("the synonym is missing")
            for st in a.statements:
                obj = created_object(st)
                if obj is None or not (obj.compiled or obj.type == "TABLE"):
                    continue
                status, _errors = self.object_errors(conn, obj)
                if status is None:
                    problems.append(f"{obj.type} {obj.name} is missing")
                elif status != "VALID":
                    problems.append(f"{obj.type} {obj.name} is {status}")
            if problems:
                out[a.key] = "; ".join(problems)
        return out


def _clob_type() -> Any:
    import oracledb

    return oracledb.DB_TYPE_CLOB


