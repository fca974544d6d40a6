"""PostgresTarget: the PostgreSQL facts and the database side of installing (psycopg 3).

Owns: connecting (a DSN, ``DATABASE_URL`` or libpq's PG* variables), the install lock (a
session-level advisory lock on a fixed key, per database), the registry (``installed`` and the
append-only ``install_log`` in the spec's ``postgres.schema``; DDL in ``sql/postgres/registry.sql.j2``),
running one plan step, reading catalog status for ``verify``, calling functions for ``invoke`` and
running the in-server checks of ``doctor``. Must not decide plans (``sqlambda.plan`` does), render
anything but the registry and doctor templates, or know about the CLI.

Transactions: PostgreSQL DDL is transactional, so each step's statements, its registry row and its
log row commit together in ONE transaction; a failing statement rolls all three back. Steps that
ran before stay installed and recorded, so a later ``install`` resumes.

Hand edits: right after a step's DDL ran, the step records a *fingerprint* of each object it owns
(sha256 of ``pg_get_functiondef`` for functions, ``pg_get_triggerdef`` for triggers) in its
registry row, inside the same transaction. ``verify`` recomputes them, so a function replaced by
hand (``CREATE OR REPLACE``) or altered (``ALTER FUNCTION ... SECURITY INVOKER``) is reported as
changed. Taking the fingerprint from the catalog instead of predicting it from the template keeps it
exact whatever PostgreSQL normalises.

Probe facts an artifact may carry (``Artifact.probe``), each checked in the catalog:
``extension`` name, ``schema`` name, ``regprocedure`` / ``regtype`` / ``regclass`` text accepted by
``to_regprocedure`` & co, ``role`` name, ``trigger`` as ``"<trigger name> ON <schema.table>"``.
For ``kind == "grant"`` artifacts the privilege itself is checked (EXECUTE on the function, USAGE
on the schema) instead of fingerprints.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from sqlambda import __version__, templates
from sqlambda.artifacts import Artifact
from sqlambda.errors import EnvironmentProblem, InstallError
from sqlambda.plan import InstalledRow, Step
from sqlambda.targets.base import ModernizeBackend, OutboxBackend, Target, terminated
from sqlambda.targets.postgres import calls
from sqlambda.targets.postgres.calls import pg_error as _pg_error
from sqlambda.targets.postgres.connection import connect

DEFAULT_SCHEMA = "sqlambda"
#: postgres.owner when the spec does not say (or there is no spec)
DEFAULT_OWNER = "sqlambda_owner"
#: advisory lock key: the first 8 bytes of sha256("sqlambda") as a signed bigint (fixed forever)
LOCK_KEY = int.from_bytes(hashlib.sha256(b"sqlambda").digest()[:8], "big", signed=True)
#: how the registry table announces itself, so uninstall/invoke find it without the spec
REGISTRY_COMMENT = "sqlambda registry"
#: probe kinds that identify objects a step owns (fingerprinted), by catalog function
_FINGERPRINT_SQL = {
    "regprocedure": "SELECT pg_catalog.pg_get_functiondef(pg_catalog.to_regprocedure(%s))",
    "trigger": "SELECT pg_catalog.pg_get_triggerdef(t.oid) FROM pg_catalog.pg_trigger t "
               "WHERE t.tgname = %s AND t.tgrelid = pg_catalog.to_regclass(%s)",
    # a policy's command, roles and check expression: a hand edit (ALTER POLICY ... WITH CHECK (true))
    # would let anyone queue anything
    "policy": "SELECT p.polcmd::text || ' ' || p.polpermissive::text || ' ' || p.polroles::text || ' ' || "
              "coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') || ' ' || "
              "coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') FROM pg_catalog.pg_policy p "
              "WHERE p.polname = %s AND p.polrelid = pg_catalog.to_regclass(%s)",
}
#: probe kinds written "<name> ON <schema.table>"
_ON_TABLE = ("trigger", "policy")
_EXISTS_SQL = {
    "extension": "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = %s)",
    "schema": "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s)",
    "role": "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s)",
    "owner_role": "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s)",
    "regprocedure": "SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL",
    "regtype": "SELECT pg_catalog.to_regtype(%s) IS NOT NULL",
    "regclass": "SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
}


def _split_trigger(value: str) -> tuple[str, str]:
    name, sep, table = value.partition(" ON ")
    if not sep:
        raise InstallError(f"bad trigger probe {value!r}: expected '<trigger> ON <schema.table>'")
    return name.strip(), table.strip()


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RegistryEntry:
    """One row of ``installed``, with everything verify and uninstall need."""

    key: str
    kind: str
    checksum: str
    drop: tuple[str, ...]
    order: int
    probe: dict
    fingerprint: dict
    spec_name: str
    installed_by: str
    installed_at: datetime
    interface: str | None = None

    def row(self) -> InstalledRow:
        return InstalledRow(self.key, self.kind, self.checksum, self.drop, self.order, self.interface)


#: the hint of a failed step: PostgreSQL rolled all of it back
_STEP_ROLLED_BACK = ("nothing of this step was applied (its DDL and registry row rolled back together); steps "
                     "before it stay installed, so fix the cause and run install again")


class PostgresTarget(Target):
    name = "postgres"
    transactional_ddl = True
    statement_terminator = ";"
    block_terminator = None

    # -- rendering ---------------------------------------------------------------------------

    def render(self, loaded: Any) -> list[Artifact]:
        from sqlambda.targets.postgres.render import render_postgres

        return render_postgres(loaded)

    def registry_schema(self, loaded: Any) -> str:
        return loaded.spec.postgres.schema_ if loaded is not None else DEFAULT_SCHEMA

    def is_block(self, statement: str) -> bool:
        return False  # every PostgreSQL statement, DO blocks included, ends with ';' in a psql script

    def script_files(self, artifacts: list[Artifact], loaded: Any, spec_name: str, spec_checksum: str) -> dict[str, str]:
        """``render -o``: one reviewable file per artifact ``file`` plus ``uninstall.sql``, each with a header.

        The files run with ``psql -f`` in name order; a hand-run install does not write the
        registry (a later ``sqlambda install`` replaces each object and records it).
        """
        from sqlambda.targets.postgres.render import render_files

        files = dict(render_files(loaded, artifacts))
        drops = ["-- " + a.key + "\n" + "\n".join(terminated(self, s) for s in a.drop)
                 for a in sorted(artifacts, key=lambda a: (a.order, a.key), reverse=True) if a.drop]
        files["uninstall.sql"] = templates.header(spec_name, spec_checksum) + "\n" + "\n\n".join(drops) + "\n"
        return files

    # -- connection and lock ------------------------------------------------------------------

    def connect(self, dsn: str) -> Any:
        """Autocommit connection (each step opens its own transaction). "" = libpq's PG* variables."""
        return connect(dsn)

    def lock(self, conn: Any, schema: str | None, wait_seconds: float) -> None:
        """Take the per-database install lock, or fail naming the session that holds it.

        Session-level (not transaction-level) so it spans the one-transaction-per-step install.
        ``wait_seconds`` > 0 polls instead of failing at once.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            if conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        unsigned = LOCK_KEY & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(
            "SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s::oid AND objid = %s::oid AND objsubid = 1 AND database = "
            "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            (str(unsigned >> 32), str(unsigned & 0xFFFFFFFF)),
        ).fetchone()
        holder = f"pid {row[0]}" if row else "pid unknown"
        raise InstallError(
            f"another install is running ({holder})",
            hint="wait for it to finish and run again; SELECT * FROM pg_stat_activity WHERE pid = ... shows it",
        )

    def unlock(self, conn: Any) -> None:
        if not conn.closed:
            conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", (LOCK_KEY,))

    # -- registry -----------------------------------------------------------------------------

    def registry_exists(self, conn: Any, schema: str) -> bool:
        row = conn.execute(
            "SELECT pg_catalog.to_regclass(format('%%I.installed', %s::text)) IS NOT NULL "
            "AND pg_catalog.to_regclass(format('%%I.install_log', %s::text)) IS NOT NULL",
            (schema, schema),
        ).fetchone()
        return bool(row[0])

    def find_registries(self, conn: Any) -> list[str]:
        """Schemas holding a sqlambda registry (found by the table comment), so no spec is needed."""
        rows = conn.execute(
            "SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'installed' AND c.relkind = 'r' "
            "AND pg_catalog.obj_description(c.oid, 'pg_class') LIKE %s ORDER BY 1",
            (REGISTRY_COMMENT + "%",),
        ).fetchall()
        return [r[0] for r in rows]

    def _registry_statements(self, schema: str, action: str, owner: str | None) -> tuple[str, ...]:
        return templates.split_statements(templates.render(self.name, "registry.sql.j2", action=action, schema=schema,
                                                           owner=owner))

    @staticmethod
    def owner_role(loaded: Any) -> str:
        return loaded.spec.postgres.owner if loaded is not None else DEFAULT_OWNER

    def ensure_registry(self, conn: Any, schema: str, loaded: Any = None) -> bool:
        """Bootstrap: create the registry before the first row is written. True when it was created.

        Checked first, so an install with nothing to do runs no DDL at all. A registry from an older
        sqlambda (no ``interface`` column, or owned by a superuser) is brought up to date by the
        same (idempotent) statements.
        """
        owner = self.owner_role(loaded)
        if self.registry_exists(conn, schema):
            current = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = "
                "pg_catalog.to_regclass(format('%%I.installed', %s::text)) AND attname = 'interface' AND NOT attisdropped) "
                "AND (SELECT r.rolname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner "
                "WHERE c.oid = pg_catalog.to_regclass(format('%%I.installed', %s::text))) = %s",
                (schema, schema, owner)).fetchone()[0]
            if not current:
                with conn.transaction():
                    for st in self._registry_statements(schema, "create", owner):
                        conn.execute(st)
            return False
        import psycopg

        try:
            with conn.transaction():
                for st in self._registry_statements(schema, "create", owner):
                    conn.execute(st)
                self._log(conn, schema, "bootstrap", None, None, {"tool_version": __version__})
        except psycopg.Error as exc:
            message, sqlstate, _, _ = _pg_error(exc)
            raise InstallError(f"cannot create the sqlambda registry in schema {schema}: {message} [{sqlstate}]",
                               hint="the installing role needs CREATE on the database (a superuser is simplest)") from None
        return True

    def drop_registry(self, conn: Any, schema: str) -> None:
        """Remove the registry (last step of uninstall), its schema when nothing else lives there, and
        the owner role (the registry's owner, when it is sqlambda's) once it owns nothing more."""
        row = conn.execute(
            "SELECT r.rolname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner "
            "WHERE c.oid = pg_catalog.to_regclass(format('%%I.installed', %s::text)) AND NOT r.rolsuper",
            (schema,)).fetchone()
        with conn.transaction():
            for st in self._registry_statements(schema, "drop", row[0] if row else None):
                conn.execute(st)

    def registry_entries(self, conn: Any, schema: str) -> list[RegistryEntry]:
        if not self.registry_exists(conn, schema):
            return []
        from psycopg import sql

        rows = conn.execute(sql.SQL(
            # through to_jsonb: a registry from before the interface column reads as NULL, not an error
            "SELECT key, kind, checksum, drop_sql, ord, probe, fingerprint, spec_name, installed_by, installed_at, "
            "pg_catalog.to_jsonb(i) ->> 'interface' FROM {}.installed i ORDER BY ord, key").format(sql.Identifier(schema))).fetchall()
        return [RegistryEntry(r[0], r[1], r[2], tuple(r[3]), r[4], dict(r[5]), dict(r[6]), r[7], r[8], r[9], r[10]) for r in rows]

    def read_registry(self, conn: Any, schema: str) -> list[InstalledRow]:
        return [e.row() for e in self.registry_entries(conn, schema)]

    def registry_details(self, conn: Any, schema: str) -> list[dict]:
        if not self.registry_exists(conn, schema):
            return []
        from psycopg import sql
        from psycopg.rows import dict_row

        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql.SQL(
                "SELECT key, kind, checksum, tool_version, spec_name, spec_checksum, installed_by, installed_at "
                "FROM {}.installed ORDER BY ord, key").format(sql.Identifier(schema))).fetchall()

    def install_history(self, conn: Any, schema: str, limit: int) -> list[dict]:
        if not self.registry_exists(conn, schema):
            return []
        from psycopg import sql
        from psycopg.rows import dict_row

        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql.SQL("SELECT id, at, who, action, key, checksum, detail FROM {}.install_log "
                                       "ORDER BY id DESC LIMIT %s").format(sql.Identifier(schema)), (limit,)).fetchall()

    def log_count(self, conn: Any, schema: str) -> int:
        from psycopg import sql

        if not self.registry_exists(conn, schema):
            return 0
        return conn.execute(sql.SQL("SELECT count(*) FROM {}.install_log").format(sql.Identifier(schema))).fetchone()[0]

    def _log(self, conn: Any, schema: str, action: str, key: str | None, checksum: str | None, detail: dict) -> None:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        conn.execute(sql.SQL("INSERT INTO {}.install_log (action, key, checksum, detail) VALUES (%s, %s, %s, %s)")
                     .format(sql.Identifier(schema)), (action, key, checksum, Jsonb(detail)))

    # -- pre-checks ---------------------------------------------------------------------------

    def prechecks(self, conn: Any, artifacts: Iterable[Artifact]) -> None:
        """Fail before any DDL when the server cannot take these artifacts."""
        artifacts = list(artifacts)
        if not artifacts:
            return
        if not conn.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'plpython3u')").fetchone()[0]:
            raise EnvironmentProblem(
                "PL/Python (plpython3u) is not available on this PostgreSQL server",
                hint="install it on the server (Debian/Ubuntu: apt-get install postgresql-plpython3-<major>), then run install again",
            )
        if not conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()[0]:
            raise InstallError(
                "installing sqlambda needs a superuser: plpython3u is an untrusted language",
                hint="connect as a superuser (e.g. postgres) to install; callers need only the grants the spec names",
            )
        _check_server_python(conn)
        if any(a.key.startswith(("function aws_lambda.", "function aws_commons.")) for a in artifacts):
            found = [r[0] for r in conn.execute("SELECT extname FROM pg_catalog.pg_extension WHERE extname IN "
                                               "('aws_lambda', 'aws_commons') ORDER BY 1").fetchall()]
            if found:
                raise InstallError(
                    f"this database has the {' and '.join(found)} extension{'s' if len(found) > 1 else ''}, which "
                    "already provide what the spec's postgres.rds_compat would install",
                    hint="keep the extension and set rds_compat: false in the spec, or DROP EXTENSION aws_lambda, "
                         "aws_commons first (README: RDS/Aurora aws_lambda, extension or spec)")
        # role -> the spec entries that name it (probe 'where'), so the message points into the spec
        roles: dict[str, set[str]] = {}
        for a in artifacts:
            p = a.probe_dict
            if "role" in p:
                roles.setdefault(p["role"], set()).update([p["where"]] if p.get("where") else [])
        missing = [r for r in sorted(roles) if not conn.execute(_EXISTS_SQL["role"], (r,)).fetchone()[0]]
        if missing:
            creates = "; ".join(f'CREATE ROLE "{r}" NOLOGIN' for r in missing)
            named = ", ".join(r + (f" ({', '.join(sorted(roles[r]))})" if roles[r] else "") for r in missing)
            raise InstallError(
                f"role{'s' if len(missing) > 1 else ''} named in the spec do{'' if len(missing) > 1 else 'es'} "
                f"not exist: {named}",
                hint=f"sqlambda never creates roles; create them first ({creates}) or remove them from the spec",
            )

    # -- catalog status -----------------------------------------------------------------------

    def _exists(self, conn: Any, kind: str, value: str) -> bool | None:
        if kind in _ON_TABLE:
            name, table = _split_trigger(value)
            query = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgname = %s AND tgrelid = pg_catalog.to_regclass(%s))"
                     if kind == "trigger" else
                     "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_policy WHERE polname = %s AND polrelid = pg_catalog.to_regclass(%s))")
            return bool(conn.execute(query, (name, table)).fetchone()[0])
        sql_text = _EXISTS_SQL.get(kind)
        if sql_text is None:
            return None
        return bool(conn.execute(sql_text, (value,)).fetchone()[0])

    def fingerprints(self, conn: Any, kind: str, probe: dict) -> dict:
        """Catalog fingerprints of the objects an artifact owns (grants own none)."""
        if kind == "grant":
            return {}
        out = {}
        for pkind, value in probe.items():
            query = _FINGERPRINT_SQL.get(pkind)
            if query is None:
                continue
            params = _split_trigger(value) if pkind in _ON_TABLE else (value,)
            row = conn.execute(query, params).fetchone()
            out[f"{pkind}:{value}"] = _sha(row[0] if row else None)
        return out

    def status(self, conn: Any, kind: str, probe: dict, fingerprint: dict | None) -> tuple[str, str]:
        """("ok" | "missing" | "changed", detail) of one object from its probe facts."""
        for pkind, value in probe.items():
            exists = self._exists(conn, pkind, value)
            if exists is False:
                return "missing", f"{pkind} {value} does not exist"
        if kind == "grant" and probe.get("role"):
            role = probe["role"]
            if "regprocedure" in probe:
                ok = conn.execute("SELECT pg_catalog.has_function_privilege(%s, pg_catalog.to_regprocedure(%s), 'EXECUTE')",
                                  (role, probe["regprocedure"])).fetchone()[0]
                if not ok:
                    return "missing", f"{role} has no EXECUTE on {probe['regprocedure']}"
            elif "schema" in probe:
                ok = conn.execute("SELECT pg_catalog.has_schema_privilege(%s, %s, 'USAGE')", (role, probe["schema"])).fetchone()[0]
                if not ok:
                    return "missing", f"{role} has no USAGE on schema {probe['schema']}"
        if fingerprint:
            now = self.fingerprints(conn, kind, probe)
            for name, expected in fingerprint.items():
                if now.get(name) != expected:
                    return "changed", f"{name.split(':', 1)[1]} was changed outside sqlambda (its definition differs from what was installed)"
        return "ok", ""

    # -- executing one step (the pipeline drives these, in one transaction per step) -----------

    def transaction(self, conn: Any) -> AbstractContextManager:
        return _transaction(conn)

    def before_step(self, conn: Any, step: Step, schema: str) -> list[str]:
        """A drop whose object was removed by hand is noted "already gone" (it still succeeds)."""
        if step.action != "drop":
            return []
        entry = next((e for e in self.registry_entries(conn, schema) if e.key == step.key), None)
        probe = {k: v for k, v in (entry.probe if entry is not None else {}).items() if k != "role"}
        if probe and self.status(conn, step.kind, probe, None)[0] == "missing":
            return ["already gone"]
        return []

    def execute_statement(self, conn: Any, step: Step, statement: str) -> str | None:
        """Run one statement; a PostgreSQL error becomes an InstallError naming the step and statement."""
        import psycopg

        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            message, sqlstate, detail, hint = _pg_error(exc)
            where = f"\n  statement: {statement.strip().splitlines()[0][:200]}"
            if sqlstate == "2BP01" and step.action == "recreate":
                # PostgreSQL's own hint (DROP ... CASCADE) would silently drop the user's views
                where += f"\n  {detail}" if detail else ""
                hint = (f"{step.key} must be dropped and created again ({step.summary}), and the objects "
                        "above depend on it: drop them, run install, then create them again (nothing of this "
                        "step was applied)")
            raise InstallError(
                f"{step.action} {step.key} failed: {message} [SQLSTATE {sqlstate}]{where}",
                hint=hint or _STEP_ROLLED_BACK,
                details={"sqlstate": sqlstate, "detail": detail, "step": step.key, "action": step.action},
            ) from None
        return None

    def record_step(self, conn: Any, schema: str, step: Step, spec_name: str, spec_checksum: str,
                    notes: list[str]) -> None:
        """The step's registry row (with the catalog fingerprints taken right after its DDL) and log
        row, in the step's transaction."""
        import psycopg
        from psycopg import sql
        from psycopg.types.json import Jsonb

        reg = sql.Identifier(schema)
        try:
            if step.action == "drop":
                conn.execute(sql.SQL("DELETE FROM {}.installed WHERE key = %s").format(reg), (step.key,))
            else:
                a = step.artifact
                probe = a.probe_dict
                conn.execute(sql.SQL(
                    "INSERT INTO {}.installed (key, kind, checksum, drop_sql, ord, probe, fingerprint, tool_version, "
                    "spec_name, spec_checksum, interface) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, checksum = EXCLUDED.checksum, "
                    "drop_sql = EXCLUDED.drop_sql, ord = EXCLUDED.ord, probe = EXCLUDED.probe, "
                    "fingerprint = EXCLUDED.fingerprint, tool_version = EXCLUDED.tool_version, "
                    "spec_name = EXCLUDED.spec_name, spec_checksum = EXCLUDED.spec_checksum, "
                    "interface = EXCLUDED.interface, installed_by = session_user, installed_at = now()").format(reg),
                    (a.key, a.kind, a.checksum, list(a.drop), a.order, Jsonb(probe),
                     Jsonb(self.fingerprints(conn, a.kind, probe)), __version__, spec_name, spec_checksum,
                     a.interface or None))
            self._log(conn, schema, step.action, step.key, step.checksum,
                      {"spec": spec_name, "spec_checksum": spec_checksum, "previous_checksum": step.previous_checksum,
                       **({"notes": notes} if notes else {})})
        except psycopg.Error as exc:
            message, sqlstate, detail, hint = _pg_error(exc)
            raise InstallError(f"{step.action} {step.key} failed: {message} [SQLSTATE {sqlstate}]",
                               hint=hint or _STEP_ROLLED_BACK,
                               details={"sqlstate": sqlstate, "detail": detail, "step": step.key, "action": step.action}) from None

    def record_failure(self, conn: Any, schema: str, step: Step, message: str) -> None:
        """Never needed: with transactional DDL a failed step rolls back entirely, registry included."""

    def damaged(self, conn: Any, artifacts: Iterable[Artifact], schema: str) -> dict[str, str]:
        """Registered artifacts whose object is missing from the catalog or was changed by hand: key -> why."""
        entries = {e.key: e for e in self.registry_entries(conn, schema)}
        out = {}
        for a in artifacts:
            entry = entries.get(a.key)
            if entry is None:
                continue
            state, detail = self.status(conn, a.kind, entry.probe or a.probe_dict, entry.fingerprint)
            if state != "ok":
                out[a.key] = f"{state}: {detail}"
        return out

    # -- calling through the database, doctor, outbox -------------------------------------------

    def wrapper_arguments(self, conn: Any, schema: str, name: str) -> list[str] | None:
        return calls.wrapper_arguments(self, conn, schema, name)

    def call_wrapper(self, conn: Any, schema: str, name: str, args: dict) -> Any:
        return calls.call_wrapper(self, conn, schema, name, args)

    def call_generic(self, conn: Any, schema: str, lambda_name: str, json_text: str) -> Any:
        return calls.call_generic(self, conn, schema, lambda_name, json_text)

    def probe_lambda(self, conn: Any, schema: str, lambda_name: str, qualifier: str | None) -> None:
        calls.probe_lambda(conn, schema, lambda_name, qualifier)

    def doctor(self, conn: Any, endpoint_url: str | None, loaded: Any) -> list[dict]:
        from sqlambda.targets.postgres.doctor import doctor

        return doctor(self, conn, endpoint_url, loaded)

    def outbox(self) -> OutboxBackend:
        from sqlambda.targets.postgres.drain import PostgresOutbox

        return PostgresOutbox()

    def modernize(self) -> ModernizeBackend:
        return _PostgresModernize()

    def extension_files(self) -> dict[str, str]:
        """aws_commons and aws_lambda as real extensions (the RDS API): see targets/postgres/extension.py."""
        from sqlambda.targets.postgres import extension

        return extension.files()

    def install_extensions(self, locator: str | None, *, remove: bool = False, dry_run: bool = False) -> list[Any]:
        from sqlambda.targets.postgres import extension

        directory = extension.extension_dir(locator)
        return extension.uninstall(directory, dry_run) if remove else extension.install(directory, dry_run=dry_run)


@contextmanager
def _transaction(conn: Any) -> Iterator[None]:
    """``conn.transaction()``, with a failing COMMIT reported like a failing statement."""
    import psycopg

    try:
        with conn.transaction():
            yield
    except psycopg.Error as exc:
        message, sqlstate, detail, hint = _pg_error(exc)
        raise InstallError(f"the step failed at COMMIT: {message} [SQLSTATE {sqlstate}]", hint=hint or _STEP_ROLLED_BACK,
                           details={"sqlstate": sqlstate, "detail": detail}) from None


def _check_server_python(conn: Any) -> None:
    """What doctor's "boto3 in server" check tests, before install creates anything: functions that
    install fine and then fail on every call are worse than an install that refuses with the fix."""
    import psycopg

    from sqlambda.resources import plpython_module

    try:
        with conn.transaction(force_rollback=True):
            conn.execute("CREATE EXTENSION IF NOT EXISTS plpython3u")
            conn.execute("DO $sqlambda$\nimport boto3, botocore.config\n$sqlambda$ LANGUAGE plpython3u")
    except psycopg.Error as exc:
        first = (exc.diag.message_primary or str(exc)).strip()
        raise EnvironmentProblem(f"the PostgreSQL server's Python cannot import boto3 ({first}); "
                                 "every Lambda call would fail", hint=plpython_module("sqlambda_core").HINT_BOTO3) from None


class _PostgresModernize:
    """``Target.modernize()``: the reads live in :mod:`sqlambda.targets.postgres.modernize_db`."""

    def status(self, dsn: str, schema: str | None, recent: int) -> list[Any]:
        from sqlambda.targets.postgres import modernize_db

        return modernize_db.status(dsn, schema or DEFAULT_SCHEMA, recent)

    def samples(self, dsn: str, schema: str | None, name: str) -> dict:
        from sqlambda.targets.postgres import modernize_db

        return modernize_db.samples(dsn, schema or DEFAULT_SCHEMA, name)
