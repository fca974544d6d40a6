"""MysqlTarget: the MySQL / MariaDB facts and the database side of installing (PyMySQL).

Owns: connecting (``mysql://user:password@host:port/``), the install lock (GET_LOCK), the registry
tables in the spec's database, the plugin (built here from ``mysql_udf/`` with the server's one key,
placed into ``@@plugin_dir`` when this host can write there, else the DBA is told exactly what to
copy where), running each step's statements, recording steps, catalog status for ``verify``,
calls through the installed functions, and ``doctor``. Must not render templates beyond the
registry DDL or decide plans.

DDL commits implicitly in MySQL (``transactional_ddl = False``), as on Oracle: a step's statements
run, then its registry row is written; every step is safe to run twice (functions and triggers
are dropped and created, tables are CREATE ... IF NOT EXISTS, drops tolerate what is gone).

The key: loadable functions have no privilege of their own in MySQL, so the plugin refuses any
call without the key compiled into it, and only sqlambda's definer account (and the installer) can
read the key from ``<database>.sqlambda_key``. One server has one plugin and one key: an install
into a second database reuses the key of the first.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlambda import __version__
from sqlambda.artifacts import Artifact
from sqlambda.errors import ConnectionFailed, EnvironmentProblem, InstallError, InvokeError, UsageError
from sqlambda.plan import InstalledRow, Step
from sqlambda.spec.loader import spec_of
from sqlambda.targets.base import ModernizeBackend, OutboxBackend, Target
from sqlambda.targets.mysql import plugin
from sqlambda.targets.mysql import render as mysql_render
from sqlambda.templates import backtick

LOCK_NAME = "sqlambda_install"
#: error codes that mean "already gone", tolerated while dropping: no such routine, trigger, grant,
#: table, user, function
GONE = {1305, 1360, 1141, 1147, 1403, 1051, 1396, 1146, 1049}
#: ER_CANT_OPEN_LIBRARY: the plugin file is not in plugin_dir (yet)
CANT_OPEN_LIBRARY = 1126
#: where built plugins are kept between runs (a DBA copies one by hand when the installer cannot)
BUILD_DIR = Path(os.environ.get("SQLAMBDA_MYSQL_BUILD_DIR", Path.home() / ".cache" / "sqlambda" / "mysql"))


def _code(exc: BaseException) -> int | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


def parse_dsn(dsn: str) -> dict:
    """``mysql://user:password@host:port/database`` (or ``mariadb://``) -> PyMySQL's arguments."""
    u = urlsplit(dsn or "")
    if u.scheme not in ("mysql", "mariadb") or not u.hostname:
        raise ConnectionFailed("a MySQL DSN looks like mysql://user:password@host:port/",
                               hint="e.g. --dsn 'mysql://admin:secret@db.example.com:3306/'")
    return {"host": u.hostname, "port": u.port or 3306, "user": unquote(u.username or "root"),
            "password": unquote(u.password or ""), "database": u.path.lstrip("/") or None}


def connect(dsn: str, *, autocommit: bool = True) -> Any:
    try:
        import pymysql
    except ImportError:
        raise EnvironmentProblem("PyMySQL is not installed", hint="pip install 'sqlambda[mysql]'") from None
    args = parse_dsn(dsn)
    try:
        return pymysql.connect(**args, autocommit=autocommit, charset="utf8mb4", connect_timeout=10)
    except pymysql.err.Error as exc:
        hint = {1045: "wrong user name or password", 2003: "nothing listens at that host:port",
                1049: "that database does not exist (leave the path empty)"}.get(_code(exc) or 0,
                                                                                 "check host, port, user and password")
        # never echo the DSN: it holds the password
        raise ConnectionFailed(f"cannot connect to MySQL at {args['host']}:{args['port']}: {exc.args[-1]}",
                               hint=hint) from None


def server_version(conn: Any) -> tuple[str, tuple[int, int]]:
    """('MariaDB' | 'MySQL', (major, minor))."""
    cur = conn.cursor()
    cur.execute("SELECT VERSION()")
    text = cur.fetchone()[0]
    m = re.match(r"(\d+)\.(\d+)", text)
    return ("MariaDB" if "mariadb" in text.lower() else "MySQL"), (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def key_accepted(conn: Any, key: str) -> bool:
    """Whether the plugin mysqld has loaded was built with ``key`` (mode 3 sends nothing)."""
    try:
        conn.cursor().execute("SELECT sqlambda_invoke(%s, '', '', 3)", (key,))
        return True
    except Exception:  # noqa: BLE001 - wrong key, or no plugin loaded
        return False


def stored_key(conn: Any, database: str) -> str | None:
    """The key in ``database``'s key table, if it has one."""
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'sqlambda_key'",
                (database,))
    if not cur.fetchone()[0]:
        return None
    cur.execute(f"SELECT k FROM {backtick(database)}.`sqlambda_key` WHERE id = 1")
    row = cur.fetchone()
    return row[0] if row else None


def read_key(conn: Any, database: str) -> str | None:
    """The server's plugin key: this database's, else another sqlambda database's that the loaded
    plugin itself accepts. A table named ``sqlambda_key`` is trusted for no other reason: any login
    with CREATE on its own database could make one and have the next plugin built with its key."""
    cur = conn.cursor()
    cur.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'sqlambda_key' "
                "ORDER BY table_schema = %s DESC, table_schema", (database,))
    for (schema,) in cur.fetchall():
        key = stored_key(conn, schema)
        if key and (schema == database or key_accepted(conn, key)):
            return key
    return None


class MysqlTarget(Target):
    name = "mysql"
    transactional_ddl = False
    statement_terminator = ";"
    block_terminator = "//"

    # -- rendering ---------------------------------------------------------------------------

    def render(self, loaded: Any) -> list[Artifact]:
        return mysql_render.render(loaded).artifacts

    def is_block(self, statement: str) -> bool:
        return bool(re.match(r"^\s*CREATE\s+(DEFINER\s*=\s*\S+\s+)?(FUNCTION|PROCEDURE|TRIGGER)\b", statement, re.I)) \
            and "SONAME" not in statement

    def script_files(self, artifacts: list[Artifact], loaded: Any, spec_name: str, spec_checksum: str) -> dict[str, str]:
        from sqlambda.targets.mysql.script import install_script, uninstall_script

        return {"install.sql": install_script(self, artifacts, loaded, spec_name, spec_checksum),
                "uninstall.sql": uninstall_script(self, artifacts, loaded, spec_name, spec_checksum)}

    def registry_schema(self, loaded: Any) -> str | None:
        spec, _, _ = spec_of(loaded)
        return spec.mysql.database

    # -- connection and lock ------------------------------------------------------------------

    def connect(self, dsn: str) -> Any:
        return connect(dsn)

    def lock(self, conn: Any, schema: str | None, wait_seconds: float) -> None:
        cur = conn.cursor()
        cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, max(0, int(wait_seconds))))
        if cur.fetchone()[0] != 1:
            raise InstallError("could not take the install lock (another sqlambda install is running)",
                               hint="wait for the other install to finish and run again")

    def unlock(self, conn: Any) -> None:
        try:
            conn.cursor().execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
        except Exception:  # noqa: BLE001 - a closed connection released it already
            pass

    # -- registry -----------------------------------------------------------------------------

    @staticmethod
    def _db(schema: str | None) -> str:
        return schema or "sqlambda"

    def registry_exists(self, conn: Any, schema: str | None) -> bool:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = "
                    "'sqlambda_installed'", (self._db(schema),))
        return cur.fetchone()[0] > 0

    def find_registries(self, conn: Any) -> list[str]:
        cur = conn.cursor()
        cur.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'sqlambda_installed' "
                    "ORDER BY table_schema")
        return [r[0] for r in cur.fetchall()]

    def read_registry(self, conn: Any, schema: str | None) -> list[InstalledRow]:
        if not self.registry_exists(conn, schema):
            return []
        cur = conn.cursor()
        cur.execute(f"SELECT artifact_key, kind, checksum, drop_sql, seq, interface FROM "
                    f"{backtick(self._db(schema))}.sqlambda_installed ORDER BY seq")
        return [InstalledRow(k, kind, c, tuple(json.loads(d)), int(o), i) for k, kind, c, d, o, i in cur.fetchall()]

    def registry_details(self, conn: Any, schema: str | None) -> list[dict]:
        if not self.registry_exists(conn, schema):
            return []
        cur = conn.cursor()
        names = ("key", "kind", "checksum", "tool_version", "spec_name", "spec_checksum", "installed_by", "installed_at")
        cur.execute(f"SELECT artifact_key, kind, checksum, tool_version, spec_name, spec_checksum, installed_by, "
                    f"installed_at FROM {backtick(self._db(schema))}.sqlambda_installed ORDER BY seq")
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def install_history(self, conn: Any, schema: str | None, limit: int) -> list[dict]:
        if not self.registry_exists(conn, schema):
            return []
        cur = conn.cursor()
        cur.execute(f"SELECT id, at, who, action, artifact_key, checksum, detail FROM "
                    f"{backtick(self._db(schema))}.sqlambda_install_log ORDER BY id DESC LIMIT %s", (int(limit),))
        return [dict(zip(("id", "at", "who", "action", "key", "checksum", "detail"), r)) for r in cur.fetchall()]

    def ensure_registry(self, conn: Any, schema: str | None, loaded: Any = None) -> bool:
        created = not self.registry_exists(conn, schema)
        cur = conn.cursor()
        for st in mysql_render.registry_statements(self._db(schema)):
            cur.execute(st)
        return created

    def drop_registry(self, conn: Any, schema: str | None) -> None:
        db = backtick(self._db(schema))
        cur = conn.cursor()
        for table in ("sqlambda_key", "sqlambda_install_log", "sqlambda_installed"):
            cur.execute(f"DROP TABLE IF EXISTS {db}.`{table}`")
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (self._db(schema),))
        if cur.fetchone()[0] == 0:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")

    # -- executing steps ----------------------------------------------------------------------

    def prechecks(self, conn: Any, artifacts: list[Artifact]) -> None:
        """The server is new enough; the plugin is built with the server's key and placed (or the DBA
        is told where it must go before the plugin step can succeed)."""
        flavor, version = server_version(conn)
        if (flavor == "MariaDB" and version < (10, 6)) or (flavor == "MySQL" and version < (8, 0)):
            raise InstallError(f"sqlambda needs MariaDB 10.6+ or MySQL 8.0+ (SKIP LOCKED, JSON functions); "
                               f"this server is {flavor} {version[0]}.{version[1]}")
        plugin_art = next((a for a in artifacts if a.kind == "plugin"), None)
        if plugin_art is None:
            return
        database = plugin_art.probe_dict["database"]
        self.ensure_registry(conn, database)
        key = read_key(conn, database) or plugin.new_key()
        cur = conn.cursor()
        cur.execute(f"INSERT IGNORE INTO {backtick(database)}.`sqlambda_key` (id, k) VALUES (1, %s)", (key,))
        self._plugin_file(conn, key)

    def _plugin_file(self, conn: Any, key: str) -> None:
        cur = conn.cursor()
        cur.execute("SELECT dl FROM mysql.func WHERE name = 'sqlambda_invoke'")
        row = cur.fetchone()
        if row and row[0] == plugin.soname():
            return  # this version is loaded already
        taken = os.environ.get("SQLAMBDA_MYSQL_PLUGIN_FILE")
        built = plugin.take(Path(taken)) if taken else plugin.build(BUILD_DIR, key)
        if built.key != key:
            raise InstallError(f"{built.path} was built with another key than this server's",
                               hint="build it again with `sqlambda extension install --target mysql`")
        cur.execute("SELECT @@plugin_dir")
        plugin_dir = cur.fetchone()[0]
        placed = plugin.place(built, plugin_dir)
        self._pending_plugin = None if placed else (built.path, plugin_dir)

    def transaction(self, conn: Any) -> AbstractContextManager:
        return nullcontext()

    def before_step(self, conn: Any, step: Step, schema: str | None) -> list[str]:
        return []

    def _plugin_users(self, conn: Any) -> list[str]:
        """The sqlambda databases whose registry holds the plugin (one plugin serves the whole server)."""
        cur = conn.cursor()
        users = []
        for db in self.find_registries(conn):
            cur.execute(f"SELECT COUNT(*) FROM {backtick(db)}.sqlambda_installed WHERE artifact_key = 'plugin sqlambda_udf'")
            if not cur.fetchone()[0]:
                continue
            # a registry counts only with the server's key beside it (a look-alike table does not)
            key = stored_key(conn, db)
            if key and key_accepted(conn, key):
                users.append(db)
        return users

    def execute_statement(self, conn: Any, step: Step, statement: str) -> str | None:
        if step.action == "drop" and step.kind == "plugin":
            users = self._plugin_users(conn)
            if len(users) > 1:  # this database's row is still there until the step is recorded
                return f"kept: the plugin still serves {', '.join(users)}"
        try:
            conn.cursor().execute(statement)
        except Exception as exc:  # noqa: BLE001 - PyMySQL's errors carry (code, message)
            code = _code(exc)
            if code in GONE and re.match(r"^\s*(DROP|REVOKE|DELETE)\b", statement, re.I):
                return f"already gone: {exc.args[-1]}"
            if code == CANT_OPEN_LIBRARY:
                pending = getattr(self, "_pending_plugin", None)
                where = (f"copy {pending[0]} to {pending[1]}/ (readable by mysqld: chmod 0644), then run install again"
                         if pending else "build it with `sqlambda extension install --target mysql --plugin-dir DIR`")
                raise InstallError(f"mysqld cannot load the plugin {plugin.soname()}: {exc.args[-1]}", hint=where) from None
            raise InstallError(f"{step.key}: {exc.args[-1] if exc.args else exc}",
                               details={"statement": statement[:2000]}) from None
        return None

    def record_step(self, conn: Any, schema: str | None, step: Step, spec_name: str, spec_checksum: str,
                    notes: list[str]) -> None:
        db = backtick(self._db(schema))
        cur = conn.cursor()
        cur.execute(f"DELETE FROM {db}.sqlambda_installed WHERE artifact_key = %s", (step.key,))
        if step.action != "drop" and step.artifact is not None:
            a = step.artifact
            cur.execute(f"INSERT INTO {db}.sqlambda_installed (artifact_key, kind, checksum, interface, drop_sql, "
                        f"tool_version, spec_name, spec_checksum, installed_by, installed_at, seq) VALUES "
                        f"(%s, %s, %s, %s, %s, %s, %s, %s, CURRENT_USER(), UTC_TIMESTAMP(6), %s)",
                        (a.key, a.kind, a.checksum, a.interface, json.dumps(list(a.drop)), __version__, spec_name[:1000],
                         spec_checksum, a.order))
        self._log(cur, schema, step.action, step.key, step.kind, step.checksum, "; ".join(notes) or None)

    def record_failure(self, conn: Any, schema: str | None, step: Step, message: str) -> None:
        if self.registry_exists(conn, schema):
            self._log(conn.cursor(), schema, "failed", step.key, step.kind, step.checksum, message)

    def _log(self, cur: Any, schema: str | None, action: str, key: str, kind: str | None, checksum: str | None,
             detail: str | None) -> None:
        cur.execute(f"INSERT INTO {backtick(self._db(schema))}.sqlambda_install_log (at, who, action, artifact_key, "
                    f"kind, checksum, detail) VALUES (UTC_TIMESTAMP(6), CURRENT_USER(), %s, %s, %s, %s, %s)",
                    (action, key, kind, checksum, detail and detail[:4000]))

    # -- catalog status -----------------------------------------------------------------------

    def damaged(self, conn: Any, artifacts: list[Artifact], schema: str | None) -> dict[str, str]:
        cur = conn.cursor()
        out: dict[str, str] = {}
        for a in artifacts:
            p = a.probe_dict
            if a.kind == "function":
                cur.execute("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = %s AND "
                            "routine_name = %s AND routine_type = 'FUNCTION'", (p["database"], p["routine"]))
                if cur.fetchone()[0] == 0:
                    out[a.key] = "function missing"
            elif a.kind == "trigger":
                cur.execute("SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = %s AND "
                            "trigger_name = %s", (p["database"], p["trigger"]))
                if cur.fetchone()[0] == 0:
                    out[a.key] = "trigger missing"
            elif a.kind == "plugin":
                cur.execute("SELECT COUNT(*) FROM mysql.func WHERE name IN ('sqlambda_invoke', 'sqlambda_config') "
                            "AND dl = %s", (p["soname"],))
                if cur.fetchone()[0] != 2:
                    out[a.key] = "loadable functions missing or from another plugin file"
            elif a.kind == "table":
                cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                            (p["database"], p["table"]))
                if cur.fetchone()[0] == 0:
                    out[a.key] = "table missing"
        return out

    # -- calls ----------------------------------------------------------------------------------

    def wrapper_arguments(self, conn: Any, schema: str | None, name: str) -> list[str] | None:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = %s AND routine_name = %s",
                    (self._db(schema), name))
        if cur.fetchone()[0] == 0:
            return None
        cur.execute("SELECT parameter_name FROM information_schema.parameters WHERE specific_schema = %s AND "
                    "specific_name = %s AND ordinal_position > 0 ORDER BY ordinal_position", (self._db(schema), name))
        return [r[0].removeprefix("p_") for r in cur.fetchall()]

    def _select(self, conn: Any, sql: str, params: tuple) -> Any:
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
        except Exception as exc:  # noqa: BLE001
            raise InvokeError(str(exc.args[-1] if exc.args else exc)) from None
        value = cur.fetchone()[0]
        if isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def call_wrapper(self, conn: Any, schema: str | None, name: str, args: dict) -> Any:
        names = self.wrapper_arguments(conn, schema, name)
        if names is None:
            raise InvokeError(f"no wrapper named {name!r} in {self._db(schema)}")
        missing = [n for n in names if n not in args]
        if missing or set(args) - set(names):
            raise UsageError(f"{name} takes {', '.join(names) or 'no arguments'} (MySQL functions have no defaults)")
        values = tuple(json.dumps(args[n]) if isinstance(args[n], (dict, list)) else args[n] for n in names)
        marks = ", ".join(["%s"] * len(names))
        return self._select(conn, f"SELECT {backtick(self._db(schema))}.{backtick(name)}({marks})", values)

    def call_generic(self, conn: Any, schema: str | None, lambda_name: str, json_text: str) -> Any:
        return self._select(conn, f"SELECT {backtick(self._db(schema))}.awslambda_fn(%s, %s)", (lambda_name, json_text))

    def probe_lambda(self, conn: Any, schema: str | None, lambda_name: str, qualifier: str | None) -> None:
        if read_key(conn, self._db(schema)) is None:
            raise InvokeError("sqlambda is not installed here (no plugin key)")
        name = lambda_name + (f":{qualifier}" if qualifier else "")
        # the key is read inside the statement, never sent as a literal (statement history, logs)
        self._select(conn, f"SELECT sqlambda_invoke((SELECT k FROM {backtick(self._db(schema))}.sqlambda_key WHERE id = 1), "
                           f"%s, '{{}}', 2)", (name,))

    # -- doctor, outbox, extensions -------------------------------------------------------------

    def doctor(self, conn: Any, endpoint_url: str | None, loaded: Any) -> list[dict]:
        from sqlambda.targets.mysql.doctor import checks

        return checks(self, conn, endpoint_url, loaded)

    def outbox(self) -> OutboxBackend:
        from sqlambda.targets.mysql.drain import MysqlOutbox

        return MysqlOutbox()

    def modernize(self) -> ModernizeBackend:
        raise UsageError("modernize is PostgreSQL only for now")

    def extension_files(self) -> dict[str, str]:
        return plugin.source_files()

    def install_extensions(self, locator: str | None, *, remove: bool = False, dry_run: bool = False) -> list[Any]:
        """Build the plugin (key from SQLAMBDA_MYSQL_KEY, else a new one) and copy it into ``locator``,
        the server's plugin_dir; without a locator, only build into the build folder."""
        key = os.environ.get("SQLAMBDA_MYSQL_KEY") or None
        if remove:
            if not locator:
                raise UsageError("--plugin-dir names the folder to remove the plugin from")
            target = Path(locator) / plugin.soname()
            if not dry_run and target.exists():
                target.unlink()
            return [target]
        if dry_run:
            return [Path(locator or BUILD_DIR) / plugin.soname()]
        built = plugin.build(BUILD_DIR, key)
        paths: list[Any] = [built.path, built.path.with_name(built.path.name + plugin.KEY_SUFFIX)]
        if locator:
            placed = plugin.place(built, locator)
            if placed is None:
                raise InstallError(f"cannot write to {locator}", hint=f"copy {built.path} there as root (chmod 0644)")
            paths.append(placed)
        return paths
