"""The explicit table of targets: one line per database, nothing discovered.

Adding a database adds a ``targets/<name>/`` package (a :class:`~sqlambda.targets.base.Target`),
its templates in ``sql/<name>/``, one line here and one packaging entry in pyproject.toml; no other
module names a target. The class is imported when the target is used, so a database driver that
is not installed (python-oracledb is an extra) costs nothing until then.
"""

from __future__ import annotations

import importlib

from sqlambda.errors import UsageError
from sqlambda.targets.base import Target

#: --target name -> "module:Class" of its Target
TARGETS: dict[str, str] = {
    "postgres": "sqlambda.targets.postgres:PostgresTarget",
    "oracle": "sqlambda.targets.oracle:OracleTarget",
    "mysql": "sqlambda.targets.mysql:MysqlTarget",
}


def get_target(name: str) -> Target:
    try:
        module, cls = TARGETS[name].split(":")
    except KeyError:
        raise UsageError(f"unknown target {name!r}; choose one of: {', '.join(sorted(TARGETS))}") from None
    return getattr(importlib.import_module(module), cls)()
