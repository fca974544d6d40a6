"""``render -o`` for MySQL / MariaDB: install.sql and uninstall.sql for the ``mysql`` / ``mariadb`` client.

Owns: the order, the DELIMITER switches around stored-program bodies (through the target's
declared terminators), and what a hand-run script cannot do by itself: the plugin key. The
installer keeps the key out of every script; a DBA running the script by hand sets it first
(``SET @sqlambda_key = '<64 hex digits of the built plugin's .key file>'``), and the script stores
it. Must not render objects (``render`` does) or talk to a database.
"""

from __future__ import annotations

from typing import Any

from sqlambda.artifacts import Artifact
from sqlambda.spec.loader import spec_of
from sqlambda.targets.base import Target, terminated
from sqlambda.targets.mysql import render as mysql_render
from sqlambda.templates import backtick, header


def _statement(target: Target, statement: str) -> str:
    text = terminated(target, statement)
    if target.is_block(statement):
        return f"DELIMITER {target.block_terminator}\n{text}\nDELIMITER ;\n"
    return text + "\n"


def install_script(target: Target, artifacts: list[Artifact], loaded: Any, spec_name: str, spec_checksum: str) -> str:
    spec, _, _ = spec_of(loaded)
    db = backtick(spec.mysql.database)
    parts = [header(spec_name, spec_checksum),
             "-- Run as an administrator: mysql -u root < install.sql\n"
             "-- First build the plugin (sqlambda extension install --target mysql --plugin-dir <@@plugin_dir>) and\n"
             "-- set its key, from the .key file written beside it:  SET @sqlambda_key = '<64 hex digits>';\n\n"]
    parts += [_statement(target, st) for st in mysql_render.registry_statements(spec.mysql.database)]
    parts.append(f"INSERT IGNORE INTO {db}.`sqlambda_key` (id, k) SELECT 1, @sqlambda_key FROM DUAL "
                 f"WHERE @sqlambda_key REGEXP '^[0-9a-f]{{64}}$';\n\n")
    for i, a in enumerate(artifacts, 1):
        parts.append(f"-- [{i}/{len(artifacts)}] {a.summary or a.key}\n")
        parts += [_statement(target, st) for st in a.statements]
        parts.append("\n")
    return "".join(parts)


def uninstall_script(target: Target, artifacts: list[Artifact], loaded: Any, spec_name: str, spec_checksum: str) -> str:
    parts = [header(spec_name, spec_checksum)]
    ordered = sorted(artifacts, key=lambda a: (a.order, a.key), reverse=True)
    for i, a in enumerate(ordered, 1):
        parts.append(f"-- [{i}/{len(ordered)}] drop {a.key}\n")
        if a.kind == "plugin":
            # one plugin serves every sqlambda database of the server: only the last one removes it
            parts.append("-- Only when no other sqlambda database remains on this server:\n")
            parts += ["-- " + _statement(target, st) for st in a.drop]
            continue
        parts += [_statement(target, st) for st in a.drop]
    return "".join(parts)
