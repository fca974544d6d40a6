"""``sqlambda doctor --target oracle``: what the calls will need, checked in and by the database.

Owns: the release (19c or newer, and not older than the spec's ``oracle.version``), the Oracle JVM,
EXECUTE on DBMS_LOCK, MAX_STRING_SIZE (VARCHAR2 results in SQL stop at 4,000 bytes unless
EXTENDED), every Java permission the spec needs (``render.java_permissions``: granted directly or
through a role or PUBLIC), and, once sqlambda is installed, from this very session through the
runtime package: where the credentials come from (never a key) and whether the endpoint answers,
with the TLS handshake against the JVM's trust store for https (is the endpoint's CA trusted?);
then whether sqlambda's objects are valid. Must not change anything.
"""

from __future__ import annotations

from typing import Any

from sqlambda.spec.model import Spec
from sqlambda.targets.oracle import render as oracle_render


def doctor(target: Any, conn: Any, endpoint_url: str | None, loaded: Any = None) -> list[dict]:
    """Checks [{name, ok, detail, hint}], each failure with the fix."""
    checks: list[dict] = []
    cur = conn.cursor()
    spec = getattr(loaded, "spec", None) if loaded is not None else None
    spec = spec or Spec(project="sqlambda")
    names = oracle_render.Names(spec.oracle.schema_)

    def add(name: str, ok: bool, detail: str, hint: str | None = None) -> None:
        checks.append({"name": name, "ok": bool(ok), "detail": detail, "hint": None if ok else hint})

    def one(sql: str, **binds: Any) -> tuple[Any, str | None]:
        try:
            cur.execute(sql, **binds)
            return cur.fetchone(), None
        except Exception as exc:  # noqa: BLE001 - each failure is one check's answer
            return None, str(exc).splitlines()[0]

    release = target.database_release(conn)
    have = oracle_render.version_of_release(release)
    wanted = spec.oracle.version
    if have is None:
        add("database release", False, f"Oracle {release}", "sqlambda needs Oracle Database 19c or newer")
    elif oracle_render.VERSIONS.index(have) < oracle_render.VERSIONS.index(wanted):
        add("database release", False, f"{have} ({release}); the spec renders for {wanted}",
            f"set oracle.version: {have} in the spec")
    else:
        add("database release", True, f"{have} ({release}); the spec renders for {wanted}")

    row, err = one("SELECT DBMS_JAVA.LONGNAME('sqlambda') FROM dual")
    add("Oracle JVM installed", err is None, "DBMS_JAVA answers" if err is None else err,
        "the database has no Java (JAVAVM): a DBA installs it with $ORACLE_HOME/javavm/install/initjvm.sql")

    row, err = one("SELECT COUNT(*) FROM ALL_PROCEDURES WHERE owner = 'SYS' AND object_name = 'DBMS_LOCK'")
    add("EXECUTE on DBMS_LOCK", err is None and row and row[0] > 0,
        err or f"visible to this user ({row[0]} entry points)", "a DBA runs: GRANT EXECUTE ON SYS.DBMS_LOCK TO <installing user>")

    row, err = one("SELECT value FROM v$parameter WHERE name = 'max_string_size'")
    if err is not None:
        add("MAX_STRING_SIZE", True, f"not readable here ({err}); if STANDARD, VARCHAR2 results in SQL stop at 4,000 bytes")
    else:
        size = str(row[0]).upper() if row else "STANDARD"
        add("MAX_STRING_SIZE", True, size + (": VARCHAR2 results up to 32,767 bytes" if size == "EXTENDED" else
                                             ": VARCHAR2 results in SQL stop at 4,000 bytes; larger ones need the "
                                             "_CLOB functions (AWSLAMBDA_FN_CLOB)"))

    for type_name, perm_name, action in oracle_render.java_permissions(spec):
        short = type_name.rsplit(".", 1)[-1]
        label = f"Java {short} {perm_name}"
        grant = (f"a DBA runs: EXEC DBMS_JAVA.GRANT_PERMISSION('{names.schema or '<owner>'}', 'SYS:{type_name}', "
                 f"'{perm_name}', '{action}')")
        row, err = one("SELECT COUNT(*) FROM USER_JAVA_POLICY WHERE type_name = :t AND name = :n "
                       "AND NVL(action, ' ') = NVL(:a, ' ') AND kind = 'GRANT' AND enabled = 'ENABLED'",
                       t=type_name, n=perm_name, a=action)
        if err is None and row and row[0]:
            add(label, True, "granted to this user")
            continue
        row, role_err = one("SELECT MIN(grantee) FROM DBA_JAVA_POLICY WHERE grantee IN (SELECT role FROM SESSION_ROLES "
                            "UNION ALL SELECT 'PUBLIC' FROM DUAL) AND type_name = :t AND name = :n "
                            "AND NVL(action, ' ') = NVL(:a, ' ') AND kind = 'GRANT' AND enabled = 'ENABLED'",
                            t=type_name, n=perm_name, a=action)
        if role_err is None and row and row[0]:
            add(label, True, f"granted through {row[0]}")
        else:
            add(label, False, "not granted" + (" (roles could not be read: " + role_err + ")" if role_err else ""), grant)

    installed = bool(target.read_registry(conn, names.schema))
    if installed:
        rt = names.obj(oracle_render.RT_PKG)
        for name, fn, hint in (
                ("credentials from the database session", "credentials_check",
                 "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the database server's environment, attach an "
                 "instance role (imds), or change oracle.credentials; README: Oracle credentials"),
                ("endpoint reachable from the database", "endpoint_check",
                 "check the endpoint, the network from the database host, and for TLS the Amazon root CA in the "
                 "JVM's trust store (oracle_java/README.md)")):
            row, err = one(f"SELECT {rt}.{fn} FROM dual")
            text = err or (str(row[0]) if row and row[0] else "no answer")
            add(name, text.startswith("ok: "), text.removeprefix("ok: ").removeprefix("error: "), hint)
    else:
        add("credentials from the database session", True, "not checked: sqlambda is not installed here yet")

    row, err = one("SELECT COUNT(*) FROM USER_OBJECTS WHERE status <> 'VALID' AND (object_name LIKE 'SQLAMBDA%' "
                   "OR object_name LIKE 'AWSLAMBDA%' OR object_name LIKE 'sqlambda/%')")
    bad = row[0] if row else 0
    add("sqlambda objects valid", err is None and not bad, err or f"{bad} invalid",
        "run `sqlambda verify --target oracle` to list them, then `sqlambda install` to repair")
    return checks
