"""``sqlambda doctor --target mysql``: what the server itself reports, each failure with its fix.

Owns: the checks (server version, the plugin loaded from this version's file, its configuration as
mysqld's environment gave it: endpoint, region, credential source, the key in place, the definer
account locked, EXECUTE granted to nobody beyond the spec's grantees). Must not change anything.
"""

from __future__ import annotations

import json
from typing import Any

from sqlambda.spec.loader import spec_of
from sqlambda.targets.mysql import plugin
from sqlambda.templates import backtick


def _check(name: str, ok: bool, detail: str, hint: str = "") -> dict:
    return {"name": name, "ok": bool(ok), "detail": detail, "hint": "" if ok else hint}


def checks(target: Any, conn: Any, endpoint_url: str | None, loaded: Any) -> list[dict]:
    from sqlambda.targets.mysql.target import read_key, server_version

    spec, _, _ = spec_of(loaded)
    db = spec.mysql.database
    cur = conn.cursor()
    out: list[dict] = []
    flavor, version = server_version(conn)
    new_enough = version >= ((10, 6) if flavor == "MariaDB" else (8, 0))
    out.append(_check("server", new_enough, f"{flavor} {version[0]}.{version[1]}", "sqlambda needs MariaDB 10.6+ or MySQL 8.0+"))
    cur.execute("SELECT name, dl FROM mysql.func WHERE name IN ('sqlambda_invoke', 'sqlambda_config')")
    loaded_from = dict(cur.fetchall())
    want = plugin.soname()
    out.append(_check("plugin", set(loaded_from.values()) == {want} and len(loaded_from) == 2,
                      f"loadable functions from {sorted(set(loaded_from.values())) or 'nothing'} (this version: {want})",
                      "run sqlambda install --target mysql (it builds and registers the plugin)"))
    if "sqlambda_config" in loaded_from:
        cur.execute("SELECT sqlambda_config()")
        raw = cur.fetchone()[0]
        cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        endpoint = cfg.get("endpoint") or f"https://lambda.{cfg.get('region')}.amazonaws.com"
        out.append(_check("configuration", not cfg.get("init_error"),
                          f"endpoint {endpoint}, region {cfg.get('region')}, credentials from {cfg.get('credentials')}, "
                          f"timeouts {cfg.get('connect_timeout_ms')}/{cfg.get('read_timeout_ms')} ms, "
                          f"{cfg.get('max_attempts')} attempts, libcurl {cfg.get('libcurl')}",
                          f"fix mysqld's environment: {cfg.get('init_error')}"))
        if endpoint_url:
            out.append(_check("endpoint", cfg.get("endpoint") == endpoint_url.rstrip("/"),
                              f"mysqld sends to {endpoint}; expected {endpoint_url}",
                              "set AWS_ENDPOINT_URL in mysqld's environment (systemctl edit mariadb) and restart it"))
        out.append(_check("sql errors", cfg.get("sql_errors") is True, "Lambda errors reach the caller as SQL errors"
                          if cfg.get("sql_errors") else "mysqld does not export my_printf_error: errors return NULL",
                          "this server build hides its symbols; failed calls return NULL instead of an error"))
    out.append(_check("key", read_key(conn, db) is not None, f"plugin key in {db}.sqlambda_key",
                      "run sqlambda install --target mysql"))
    cur.execute("SELECT grantee FROM information_schema.routine_privileges WHERE routine_schema = %s"
                if flavor == "MySQL" else
                "SELECT CONCAT(user, '@', host) FROM mysql.procs_priv WHERE db = %s AND routine_type = 'FUNCTION' "
                "AND (user = '' OR host = '%%' AND user = '')", (db,))
    anyone = [r[0] for r in cur.fetchall() if r[0] in ("@%", "''@'%'")]
    out.append(_check("least privilege", not anyone, "no EXECUTE for anonymous accounts" if not anyone else
                      f"granted to {anyone}", f"REVOKE EXECUTE ON FUNCTION {backtick(db)}.* FROM ''@'%'"))
    return out
