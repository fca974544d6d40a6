"""What a target (a kind of database) must provide, and the facts it declares.

The rest of the package talks to databases only through a :class:`Target`: render a spec into
artifacts, connect, lock, read and write the registry, run statements, read an object's status.
A new database is a new ``generator/targets/<name>.py`` plus ``sql/<name>/`` and one line in
``sqlambda.targets.TARGETS``; nothing else branches on the target's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from sqlambda.artifacts import Artifact
from sqlambda.plan import InstalledRow


class Target(ABC):
    #: registry name of the target (``--target``)
    name: ClassVar[str]
    #: True when DDL runs inside a transaction (PostgreSQL), so DDL and its registry row commit together
    transactional_ddl: ClassVar[bool]
    #: how a hand-run script separates statements ("" = ';' ends each; "/" = SQL*Plus block terminator)
    script_separator: ClassVar[str]
    #: the file extension of rendered scripts
    script_suffix: ClassVar[str] = ".sql"

    @abstractmethod
    def render(self, loaded: Any) -> list[Artifact]:
        """Pure: a loaded spec (or ``None`` for the core only) -> artifacts. No I/O but templates."""

    @abstractmethod
    def connect(self, dsn: str) -> Any:
        """Open a connection; raise ConnectionFailed with a hint on failure."""

    @abstractmethod
    def lock(self, conn: Any) -> None:
        """Take the install lock (advisory lock / DBMS_LOCK) or raise InstallError."""

    @abstractmethod
    def unlock(self, conn: Any) -> None: ...

    @abstractmethod
    def read_registry(self, conn: Any, schema: str) -> list[InstalledRow]:
        """Installed artifacts; an empty list when the registry does not exist yet."""
