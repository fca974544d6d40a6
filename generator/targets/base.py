"""The declared protocol of a target (a kind of database), and the facts it declares.

A target is one bundle: ``generator/targets/<name>/`` (this protocol's implementation, its
rendering, registry, executor hooks, calls, doctor, outbox backend, cluster helper) plus the
templates in ``sql/<name>/``, registered by one line in :data:`sqlambda.targets.TARGETS`. The
pipeline (:mod:`sqlambda.pipeline`) runs every algorithm (plan, install, verify, uninstall, the
script writer) once for all targets and calls these hooks without guessing: every hook is
abstract, so a target that lacks one cannot even be instantiated, and nothing calls a hook inside
``try/except (TypeError, AttributeError, NotImplementedError)``. A target that cannot do something
says so in its hook, with a :class:`~sqlambda.errors.SqlambdaError` for the user.

The facts are class attributes the pipeline reads (the way alembic's dialect impls declare
``transactional_ddl``):
- ``transactional_ddl``: True when DDL runs inside a transaction (PostgreSQL). The pipeline then
  runs a step's statements and its registry row in ONE transaction; otherwise (Oracle, whose DDL
  commits) it runs the statements, records the step once they all succeeded, and records a failure.
- ``statement_terminator`` / ``block_terminator``: how a hand-run script ends a statement, and the
  line that ends a block (a PL/SQL unit in SQL*Plus); :func:`terminated` applies them for every
  target's scripts.

Must not: hold SQL or algorithms shared by targets (those live in the pipeline), or import a
database driver at module level (only the targets' own modules import psycopg / oracledb).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any, Callable, ClassVar, Protocol

from sqlambda.artifacts import Artifact
from sqlambda.plan import InstalledRow, Step


class OutboxBackend(Protocol):
    """A target's outbox: how ``sqlambda drain`` and ``sqlambda outbox status | retry-dead`` reach it."""

    def drain(self, dsn: str, *, schema: str | None, follow: bool, workers: int, endpoint_url: str | None,
              request_timeout_ms: int, stop: Any, on_batch: Callable[[str, int], None] | None = None,
              claim_limit: int | None = None) -> Any:
        """Deliver queued events; returns the run's DrainStats."""

    def status(self, dsn: str, schema: str | None) -> Any:
        """Depth, oldest age and their breakdown per trigger (an OutboxStatus)."""

    def retry_dead(self, dsn: str, schema: str | None, *, trigger: str | None, ids: list[int] | None) -> int:
        """Move dead letters back into the queue; returns how many events."""


class ModernizeBackend(Protocol):
    """A target's modernization state: how ``sqlambda modernize status | scaffold`` read it."""

    def status(self, dsn: str, schema: str | None, recent: int) -> list[Any]:
        """One :class:`~sqlambda.modernize.ModernizeStatus` per function taken over."""

    def samples(self, dsn: str, schema: str | None, name: str) -> dict:
        """{name, function, definition, options, calls: [(kind, args, result, error) as JSON texts]}."""


class Target(ABC):
    #: registry name of the target (``--target``)
    name: ClassVar[str]
    #: True when DDL runs inside a transaction: a step's DDL and its registry row commit together
    transactional_ddl: ClassVar[bool]
    #: what ends a plain statement in a hand-run script
    statement_terminator: ClassVar[str] = ";"
    #: the line that ends a block statement in a hand-run script (None: blocks end like statements)
    block_terminator: ClassVar[str | None] = None

    # -- rendering (pure) ---------------------------------------------------------------------

    @abstractmethod
    def render(self, loaded: Any) -> list[Artifact]:
        """A loaded spec (or ``None`` for the core only) -> artifacts. No I/O but templates."""

    @abstractmethod
    def script_files(self, artifacts: list[Artifact], loaded: Any, spec_name: str, spec_checksum: str) -> dict[str, str]:
        """``render -o``: {file name: text} of the reviewable install and uninstall scripts."""

    @abstractmethod
    def is_block(self, statement: str) -> bool:
        """True for a statement a script must end with ``block_terminator``."""

    @abstractmethod
    def registry_schema(self, loaded: Any) -> str | None:
        """Where the registry lives for this spec (None: the target's default, e.g. the current schema)."""

    # -- connection and lock ------------------------------------------------------------------

    @abstractmethod
    def connect(self, dsn: str) -> Any:
        """Open a connection; raise ConnectionFailed with a hint on failure."""

    @abstractmethod
    def lock(self, conn: Any, schema: str | None, wait_seconds: float) -> None:
        """Take the install lock (waiting up to ``wait_seconds``) or raise InstallError naming the holder."""

    @abstractmethod
    def unlock(self, conn: Any) -> None:
        """Release the install lock."""

    # -- registry -----------------------------------------------------------------------------

    @abstractmethod
    def registry_exists(self, conn: Any, schema: str | None) -> bool: ...

    @abstractmethod
    def find_registries(self, conn: Any) -> list[str]:
        """Schemas holding a registry, so commands without a spec (uninstall, invoke) can find it."""

    @abstractmethod
    def read_registry(self, conn: Any, schema: str | None) -> list[InstalledRow]:
        """Installed artifacts; an empty list when the registry does not exist yet."""

    @abstractmethod
    def registry_details(self, conn: Any, schema: str | None) -> list[dict]:
        """Every installed artifact with its provenance, in install order: ``key``, ``kind``,
        ``checksum``, ``tool_version``, ``spec_name``, ``spec_checksum``, ``installed_by``,
        ``installed_at`` (a datetime); [] when there is no registry (``sqlambda status``)."""

    @abstractmethod
    def install_history(self, conn: Any, schema: str | None, limit: int) -> list[dict]:
        """The install log, newest first, at most ``limit`` entries: ``id``, ``at`` (a datetime),
        ``who``, ``action``, ``key``, ``checksum``, ``detail``; [] without a registry (``sqlambda history``)."""

    @abstractmethod
    def ensure_registry(self, conn: Any, schema: str | None, loaded: Any) -> bool:
        """Create (or bring up to date) the registry before the first row is written; True when created."""

    @abstractmethod
    def drop_registry(self, conn: Any, schema: str | None) -> None:
        """Remove the registry itself (the last step of uninstall)."""

    # -- executing one plan step (the pipeline drives these) ----------------------------------

    @abstractmethod
    def prechecks(self, conn: Any, artifacts: list[Artifact]) -> None:
        """Fail with a clear error before any DDL when the database cannot take these artifacts."""

    @abstractmethod
    def transaction(self, conn: Any) -> AbstractContextManager:
        """A transaction on ``conn`` (used for each step when ``transactional_ddl``)."""

    @abstractmethod
    def before_step(self, conn: Any, step: Step, schema: str | None) -> list[str]:
        """Notes known before a step runs (e.g. a dropped object that was already gone)."""

    @abstractmethod
    def execute_statement(self, conn: Any, step: Step, statement: str) -> str | None:
        """Run one statement of a step; a note when an error was tolerated; InstallError otherwise."""

    @abstractmethod
    def record_step(self, conn: Any, schema: str | None, step: Step, spec_name: str, spec_checksum: str,
                    notes: list[str]) -> None:
        """Write the step's registry row (or remove it for a drop) and its log row."""

    @abstractmethod
    def record_failure(self, conn: Any, schema: str | None, step: Step, message: str) -> None:
        """Log a step that failed after some of its DDL committed (never called with transactional DDL)."""

    # -- catalog status (verify, install --repair) --------------------------------------------

    @abstractmethod
    def damaged(self, conn: Any, artifacts: list[Artifact], schema: str | None) -> dict[str, str]:
        """Registered artifacts missing from the catalog, invalid or changed by hand: key -> why."""

    # -- calling Lambda through the database ----------------------------------------------------

    @abstractmethod
    def wrapper_arguments(self, conn: Any, schema: str | None, name: str) -> list[str] | None:
        """The argument names of the installed wrapper ``name``, or None when no wrapper has that name."""

    @abstractmethod
    def call_wrapper(self, conn: Any, schema: str | None, name: str, args: dict) -> Any:
        """Call wrapper ``name`` with named arguments (JSON values); InvokeError on failure."""

    @abstractmethod
    def call_generic(self, conn: Any, schema: str | None, lambda_name: str, json_text: str) -> Any:
        """``awslambda_fn(lambda_name, json_text)``; the result as JSON when it is JSON."""

    @abstractmethod
    def probe_lambda(self, conn: Any, schema: str | None, lambda_name: str, qualifier: str | None) -> None:
        """``verify --probe``: a DryRun of one Lambda through the database; InvokeError on failure."""

    # -- doctor and the outbox -----------------------------------------------------------------

    @abstractmethod
    def doctor(self, conn: Any, endpoint_url: str | None, loaded: Any) -> list[dict]:
        """Environment checks [{name, ok, detail, hint}] run by and inside the database server."""

    @abstractmethod
    def outbox(self) -> OutboxBackend:
        """The drain / status / retry-dead backend of this target's outbox."""

    @abstractmethod
    def modernize(self) -> ModernizeBackend:
        """The status / samples backend of this target's modernize entries."""

    # -- server-side packages ------------------------------------------------------------------

    @abstractmethod
    def extension_files(self) -> dict[str, str]:
        """File name -> content of the database extensions this target ships (``sqlambda extension
        files``); a target without any raises UsageError."""

    @abstractmethod
    def install_extensions(self, locator: str | None, *, remove: bool = False, dry_run: bool = False) -> list[Any]:
        """Write (``remove``: delete) those files where the server finds extensions (``locator``: how
        to find that place, e.g. a pg_config path); the paths touched."""


def terminated(target: Target, statement: str) -> str:
    """A statement as a hand-run script holds it: ended by the target's ``block_terminator`` line when
    it is a block (a PL/SQL unit for SQL*Plus), else by its ``statement_terminator``. Every target's
    script writer goes through this, so the facts it declares are what its scripts use."""
    if target.block_terminator and target.is_block(statement):
        return f"{statement}\n{target.block_terminator}"
    return f"{statement}{target.statement_terminator}"
