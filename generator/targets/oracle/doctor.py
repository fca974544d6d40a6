"""``sqlambda doctor --target oracle``: checks run in the database.

Owns: the database version, whether the Oracle JVM answers, EXECUTE on DBMS_LOCK, the socket
permissions the spec needs (endpoint, and IMDS with ``credentials: imds``) and whether sqlambda's
objects are valid. Must not change anything; the endpoint is not contacted from here (only the
database's JVM could test that route).
"""

from __future__ import annotations

from typing import Any

from sqlambda.targets.oracle import render as oracle_render


def doctor(target: Any, conn: Any, endpoint_url: str | None, loaded: Any = None) -> list[dict]:
    """Checks run in the database: Java present, DBMS_LOCK usable, socket permissions, objects valid."""
    checks: list[dict] = []
    cur = conn.cursor()

    def check(name: str, sql: str, ok_detail: str, hint: str, **binds: Any) -> Any:
        try:
            cur.execute(sql, **binds)
            row = cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - each failure is one failed check
            checks.append({"name": name, "ok": False, "detail": str(exc).splitlines()[0], "hint": hint})
            return None
        checks.append({"name": name, "ok": True, "detail": ok_detail.format(*(row or ())), "hint": None})
        return row

    check("database version", "SELECT banner_full FROM v$version WHERE ROWNUM = 1", "{0}",
          "V$VERSION is not readable; not needed for install")
    if checks[-1]["ok"] is False:  # not important enough to fail the doctor
        checks[-1]["ok"] = True
    check("Oracle JVM installed", "SELECT DBMS_JAVA.LONGNAME('sqlambda') FROM dual", "DBMS_JAVA answers",
          "the database has no Java (JAVAVM): a DBA installs it with $ORACLE_HOME/javavm/install/initjvm.sql")
    check("EXECUTE on DBMS_LOCK", "SELECT COUNT(*) FROM ALL_PROCEDURES WHERE owner = 'SYS' AND object_name = 'DBMS_LOCK'",
          "visible to this user ({0} entry points)", "ask a DBA: GRANT EXECUTE ON SYS.DBMS_LOCK TO <installing user>")
    if checks[-1]["ok"] and checks[-1]["detail"].startswith("visible to this user (0"):
        checks[-1].update(ok=False, hint="ask a DBA: GRANT EXECUTE ON SYS.DBMS_LOCK TO <installing user>")
    spec = getattr(loaded, "spec", None) if loaded is not None else None
    if spec is not None:
        wanted = [oracle_render.endpoint_host_port(spec)]
        if spec.oracle.credentials == "imds":
            wanted.append(oracle_render.IMDS_HOST_PORT)
        for hp in wanted:
            row = check(f"SocketPermission {hp}",
                        "SELECT COUNT(*) FROM USER_JAVA_POLICY WHERE type_name = 'java.net.SocketPermission' "
                        "AND name = :n AND kind = 'GRANT' AND enabled = 'ENABLED'",
                        "granted ({0})", "", n=hp)
            if row is not None and row[0] == 0:
                checks[-1].update(ok=False, detail="not granted to this user",
                                  hint=f"a DBA runs: EXEC DBMS_JAVA.GRANT_PERMISSION(USER, 'SYS:java.net.SocketPermission', '{hp}', 'connect,resolve')")
    row = check("sqlambda objects valid",
                "SELECT COUNT(*) FROM USER_OBJECTS WHERE status <> 'VALID' AND (object_name LIKE 'SQLAMBDA%' "
                "OR object_name LIKE 'AWSLAMBDA_FN%' OR object_name LIKE 'sqlambda/%')",
                "{0} invalid", "")
    if row is not None and row[0]:
        checks[-1].update(ok=False, detail=f"{row[0]} invalid object(s)",
                          hint="run `sqlambda verify --target oracle` to list them, then `sqlambda install` to repair")
    return checks
