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

    # -- installer hooks used by ``sqlambda.commands`` ---------------------------------------------
    # Not abstract, so a target can land them one by one; ``commands`` turns NotImplementedError
    # into a clear "not supported for this target" error.

    def registry_schema(self, loaded: Any) -> str | None:
        """Where the registry lives for this spec (None: the target's default, e.g. the current schema)."""
        return None

    def write_scripts(self, artifacts: list[Artifact], out_dir: Any, spec_name: str, spec_checksum: str) -> list:
        """``render -o``: write reviewable scripts (each starting with the header) and an uninstall script."""
        raise NotImplementedError

    def ensure_registry(self, conn: Any, schema: str | None) -> Any:
        """Create the registry if missing (bootstrap, before the first registry row)."""
        raise NotImplementedError

    def prechecks(self, conn: Any, artifacts: list[Artifact]) -> None:
        """Fail with a clear error before any DDL when the database cannot take these artifacts."""
        return None

    def apply_step(self, conn: Any, step: Any, schema: str | None, spec_name: str, spec_checksum: str) -> list[str]:
        """Run one plan step and record it in the registry; returns notes (e.g. 'already gone')."""
        raise NotImplementedError

    def verify(self, conn: Any, artifacts: Any, schema: str | None) -> list[str]:
        """Problems found comparing artifacts, registry and catalog, one line each ([] = all good)."""
        raise NotImplementedError

    def damaged(self, conn: Any, artifacts: list[Artifact], schema: str | None) -> dict[str, str]:
        """Registered artifacts missing from the catalog or changed by hand: key -> why (``install --repair``)."""
        raise NotImplementedError

    def drop_registry(self, conn: Any, schema: str | None) -> None:
        """Remove the registry itself (the last step of uninstall)."""
        raise NotImplementedError

    def find_registries(self, conn: Any) -> list[str]:
        """Schemas holding a registry, so commands without a spec (uninstall, invoke) can find it."""
        raise NotImplementedError

    def invoke(self, conn: Any, schema: str | None, name: str, json_text: str) -> Any:
        """Call a spec function's wrapper by name, else the generic function, through the database."""
        raise NotImplementedError

    def doctor(self, conn: Any, endpoint_url: str | None, loaded: Any = None) -> list[dict]:
        """Environment checks [{name, ok, detail, hint}] run by and inside the database server."""
        raise NotImplementedError
