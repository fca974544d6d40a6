"""The library API: one plain function per command (render, plan, install, verify, uninstall, invoke,
doctor, drain, outbox status, retry-dead), usable without the CLI.

Owns: loading the spec (or none: the core only), opening one session (connection and, for commands
that change things, the install lock) per command, stringing the stages of
:mod:`sqlambda.pipeline` together, the argument checks ``invoke`` makes for every target, and the
results as frozen dataclasses (each with ``to_dict()`` for ``--json``). Every database specific goes
through a hook of :class:`~sqlambda.targets.base.Target`, so one function serves every target.

Must not: print, parse command-line options, or hold SQL. Failures are ``sqlambda.errors``
exceptions with clear messages; the spec is loaded and rendered BEFORE connecting, so a bad spec
(an injection attempt in a name, a reserved argument) never reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlambda import pipeline
from sqlambda.errors import ConnectionFailed, DoctorFailed, InstallError, SqlambdaError, UsageError, VerifyFailed
from sqlambda.plan import Plan, Step, make_plan
from sqlambda.targets import get_target
from sqlambda.targets.base import Target

NO_SPEC_NAME = "(no spec)"


# -- spec loading ---------------------------------------------------------------------------------
def load(spec: Any) -> Any:
    """A loaded spec (``.spec``, ``.path``, ``.checksum``) from a path; None stays None (core only).

    An already-loaded object passes through, so the demo and tests can hand one in.
    """
    if spec is None:
        return None
    if hasattr(spec, "spec") and hasattr(spec, "checksum"):
        return spec
    from sqlambda.spec.loader import load_spec_file

    return load_spec_file(Path(spec))


def spec_identity(loaded: Any) -> tuple[str, str]:
    """(name, checksum) recorded in the registry and file headers; the empty file's sha256 for no spec."""
    if loaded is None:
        import hashlib

        return NO_SPEC_NAME, hashlib.sha256(b"").hexdigest()
    return str(loaded.path), loaded.checksum


class _Session:
    """One connection (and optionally the install lock) for the length of a command."""

    def __init__(self, target: Target, dsn: str, *, lock: bool = False, schema: str | None = None,
                 lock_wait: float = 0.0) -> None:
        self.target, self.dsn, self.want_lock, self.schema, self.lock_wait = target, dsn, lock, schema, lock_wait
        self.conn = None
        self.locked = False

    def __enter__(self) -> Any:
        self.conn = self.target.connect(self.dsn)
        if self.want_lock:
            try:
                self.target.lock(self.conn, self.schema, self.lock_wait)
            except BaseException:
                self.conn.close()
                raise
            self.locked = True
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.locked:
                try:
                    self.target.unlock(self.conn)
                except Exception:  # noqa: BLE001 - closing the session releases it anyway
                    pass
        finally:
            self.conn.close()


def _schema_for_spec_or_registry(target: Target, conn: Any, loaded: Any) -> str | None:
    """The registry schema: the spec's, else the single registry found in the database, else the default."""
    if loaded is not None:
        return target.registry_schema(loaded)
    found = target.find_registries(conn)
    if len(found) > 1:
        raise UsageError(f"this database holds several sqlambda registries ({', '.join(found)})",
                         hint="pass the spec so its postgres.schema says which one")
    return found[0] if found else target.registry_schema(None)


# -- render -----------------------------------------------------------------------------------------
def render_to_dir(spec: Any, target: str, out_dir: str | Path) -> list[Path]:
    """Offline: write the reviewable scripts of ``spec`` (None = core only) into ``out_dir``."""
    t = get_target(target)
    loaded = load(spec)
    artifacts = t.render(loaded)
    name, checksum = spec_identity(loaded)
    files = t.script_files(artifacts, loaded, name, checksum)
    try:
        return pipeline.write_files(files, Path(out_dir))
    except OSError as exc:
        raise UsageError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None


# -- plan / install -----------------------------------------------------------------------------------
#: one executed step (what it did, its notes): the pipeline's record of it
AppliedStep = pipeline.Executed


@dataclass(frozen=True)
class InstallResult:
    target: str
    spec_name: str
    spec_checksum: str
    schema: str | None
    plan: Plan
    dry_run: bool
    applied: tuple[AppliedStep, ...] = ()
    registry_created: bool = False
    #: (key, what is wrong) of installed objects dropped or edited by hand that this run left as
    #: they are (``repair`` re-creates them): what ``verify`` would flag
    damaged: tuple[tuple[str, str], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    def to_dict(self) -> dict:
        return {"target": self.target, "spec": self.spec_name, "spec_checksum": self.spec_checksum,
                "schema": self.schema, "dry_run": self.dry_run, "registry_created": self.registry_created,
                "plan": self.plan.to_dict(), "applied": [a.to_dict() for a in self.applied],
                "damaged": [{"key": k, "problem": why} for k, why in self.damaged]}


def plan(spec: Any, dsn: str, target: str = "postgres") -> Plan:
    """What ``install`` would do: the same path as ``install --dry-run`` (no lock, no DDL)."""
    return install(spec, dsn, target, dry_run=True).plan


def install(spec: Any, dsn: str, target: str = "postgres", *, dry_run: bool = False, lock_wait: float = 0.0,
            repair: bool = False, progress: Callable[[Step, int, int], None] | None = None) -> InstallResult:
    """Bring the database to the spec: plan under the install lock, then one transaction per step.

    Re-running with no change runs no DDL and writes nothing (not even a log row): the registry is
    only touched by steps that change something. ``repair`` also re-applies objects that were
    dropped or edited by hand since they were installed (what ``verify`` reports as missing/changed);
    without it, such objects are left alone and listed in ``damaged``. ``progress(step, n, total)``
    is called before each step runs.
    """
    t = get_target(target)
    loaded = load(spec)
    artifacts = t.render(loaded)
    name, checksum = spec_identity(loaded)
    schema = t.registry_schema(loaded)
    with _Session(t, dsn, lock=not dry_run, schema=schema, lock_wait=lock_wait) as conn:
        p = make_plan(t.name, artifacts, t.read_registry(conn, schema))
        damaged: tuple[tuple[str, str], ...] = ()
        if repair:
            p = pipeline.with_repairs(t, conn, p, schema)
        else:
            # what verify would flag and only a repair fixes: reported, so install and verify agree
            found = t.damaged(conn, [s.artifact for s in p.steps if s.action == "unchanged" and s.artifact], schema)
            damaged = tuple(sorted(found.items()))
        if dry_run:
            pipeline.DisplayExecutor().run(p)
            return InstallResult(t.name, name, checksum, schema, p, True, damaged=damaged)
        if p.is_noop:
            return InstallResult(t.name, name, checksum, schema, p, False, damaged=damaged)
        t.prechecks(conn, [s.artifact for s in p.changes if s.artifact is not None])
        created = bool(t.ensure_registry(conn, schema, loaded))
        applied = pipeline.ApplyExecutor(t, conn, schema, name, checksum, progress).run(p)
        return InstallResult(t.name, name, checksum, schema, p, False, applied, created, damaged)


# -- verify ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeResult:
    function: str
    lambda_: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return {"function": self.function, "lambda": self.lambda_, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class VerifyReport:
    target: str
    spec_name: str
    checked: int
    problems: tuple[str, ...]
    probes: tuple[ProbeResult, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and all(p.ok for p in self.probes)

    def to_dict(self) -> dict:
        return {"target": self.target, "spec": self.spec_name, "ok": self.ok, "checked": self.checked,
                "problems": list(self.problems), "probes": [p.to_dict() for p in self.probes]}

    #: what repairs the problems found: ``install`` for pending changes, ``install --repair`` for
    #: objects dropped or edited by hand (it applies the pending changes too)
    repair_command: str = "sqlambda install"

    def check(self) -> "VerifyReport":
        """Raise VerifyFailed (carrying this report for ``--json``) unless everything is fine."""
        if self.ok:
            return self
        lines = list(self.problems) + [f"probe {p.function} -> {p.lambda_}: {p.detail}" for p in self.probes if not p.ok]
        hint = f"run `{self.repair_command}`" + (
            " to re-create what was dropped or edited by hand and apply what is pending" if "--repair" in self.repair_command
            else " to apply what is pending") + " (`sqlambda plan` shows it first)"
        if not self.problems:
            hint = "the objects are installed; a probe failed: see `sqlambda doctor` for the endpoint and credentials"
        raise VerifyFailed(f"verify found {len(lines)} problem{'s' if len(lines) != 1 else ''}:\n" +
                           "\n".join("  " + x for x in lines), hint=hint, details=self.to_dict())


def verify(spec: Any, dsn: str, target: str = "postgres", *, probe: bool = False, strict: bool = True) -> VerifyReport:
    """Objects of the spec exist, match their checksums and were not edited by hand.

    ``probe`` also calls each spec function's Lambda through the database with a DryRun (checks
    the name, the endpoint and the credentials without running it). ``strict`` raises VerifyFailed
    on any problem; otherwise the report says ``ok = False``.
    """
    t = get_target(target)
    loaded = load(spec)
    artifacts = t.render(loaded)
    name, _ = spec_identity(loaded)
    with _Session(t, dsn) as conn:
        schema = t.registry_schema(loaded)
        problems, damaged = pipeline.verify_problems(t, conn, artifacts, schema, with_damaged=True)
        probes: list[ProbeResult] = []
        if probe and loaded is not None:
            for fn in loaded.spec.functions:
                try:
                    t.probe_lambda(conn, schema, fn.lambda_, fn.qualifier)
                    probes.append(ProbeResult(fn.name, fn.lambda_, True, "DryRun accepted"))
                except SqlambdaError as exc:
                    probes.append(ProbeResult(fn.name, fn.lambda_, False, exc.message))
    report = VerifyReport(t.name, name, len(artifacts), tuple(problems), tuple(probes),
                          repair_command(t.name, loaded, repair=bool(damaged)))
    return report.check() if strict else report


def repair_command(target: str, loaded: Any, *, repair: bool) -> str:
    """The install command line that brings the database back to ``loaded`` (for hints)."""
    parts = ["sqlambda install"] + (["--repair"] if repair else [])
    if loaded is not None:
        parts.append(str(loaded.path))
    if target != "postgres":
        parts.append(f"--target {target}")
    return " ".join(parts)


# -- status / history ------------------------------------------------------------------------------------
def as_iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@dataclass(frozen=True)
class StatusReport:
    """What is installed, from which spec and tool version, and (compared with a spec) what is pending."""

    target: str
    schema: str | None
    installed: tuple[dict, ...]
    #: the spec the comparison used (given, or the one the registry names when that file exists)
    compared_with: str | None = None
    #: plan counts against ``compared_with`` (create / replace / drop / unchanged)
    pending: dict = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    note: str | None = None
    hint: str | None = None
    last_change: dict | None = None

    @property
    def is_installed(self) -> bool:
        return bool(self.installed)

    @property
    def up_to_date(self) -> bool | None:
        if self.compared_with is None:
            return None
        return not self.problems

    def specs(self) -> list[dict]:
        """The spec files (and tool versions) the installed objects came from, with counts."""
        seen: dict[tuple, int] = {}
        for row in self.installed:
            k = (row["spec_name"], row["spec_checksum"], row["tool_version"])
            seen[k] = seen.get(k, 0) + 1
        return [{"spec": k[0], "spec_checksum": k[1], "tool_version": k[2], "objects": n} for k, n in seen.items()]

    def to_dict(self) -> dict:
        return {"target": self.target, "schema": self.schema, "installed": self.is_installed,
                "objects": [{k: as_iso(v) for k, v in row.items()} for row in self.installed], "specs": self.specs(),
                "compared_with": self.compared_with, "up_to_date": self.up_to_date, "pending": self.pending,
                "problems": list(self.problems), "note": self.note, "hint": self.hint,
                "last_change": {k: as_iso(v) for k, v in self.last_change.items()} if self.last_change else None}


def status(dsn: str, target: str = "postgres", *, spec: Any = None) -> StatusReport:
    """Like ``sqitch status`` / ``flyway info``: the registry's objects with their spec and tool
    version, the last change, and, compared with ``spec`` (or the spec file the registry names, when
    it still exists), what ``install`` would change and what ``verify`` would flag."""
    t = get_target(target)
    loaded = load(spec)
    with _Session(t, dsn) as conn:
        schema = _schema_for_spec_or_registry(t, conn, loaded)
        rows = tuple(t.registry_details(conn, schema))
        last = t.install_history(conn, schema, 1)
        if not rows:
            return StatusReport(t.name, schema, (), note="sqlambda is not installed here",
                                hint=f"{repair_command(t.name, loaded, repair=False)} --dsn ...")
        note = None
        if loaded is None:
            named = sorted({r["spec_name"] for r in rows if r["spec_name"] and r["spec_name"] != NO_SPEC_NAME})
            existing = [n for n in named if Path(n).is_file()]
            if len(named) == 1 and existing:
                loaded = load(existing[0])
                if loaded.checksum not in {r["spec_checksum"] for r in rows}:
                    note = f"{existing[0]} changed since it was installed"
            elif named:
                note = (f"installed from {', '.join(named)}, not found from here: pass the spec to compare"
                        if not existing else "installed from several specs: pass the one to compare")
        if loaded is None and note is not None:
            return StatusReport(t.name, schema, rows, note=note, last_change=last[0] if last else None)
        artifacts = t.render(loaded)
        p = make_plan(t.name, artifacts, t.read_registry(conn, schema))
        problems, damaged = pipeline.verify_problems(t, conn, artifacts, schema, with_damaged=True)
        stale = [s.key for s in p.steps if s.action == "drop"]
        problems = list(problems) + [f"{k}: installed but no longer in the spec (install drops it)" for k in stale]
        hint = f"run `{repair_command(t.name, loaded, repair=bool(damaged))}`" if problems else None
    compared = str(loaded.path) if loaded is not None else "(core only)"
    return StatusReport(t.name, schema, rows, compared, p.counts(), tuple(problems), note, hint,
                        last[0] if last else None)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: Any
    who: str
    action: str
    key: str | None
    checksum: str | None
    detail: Any

    def to_dict(self) -> dict:
        return {"id": self.id, "at": as_iso(self.at), "who": self.who, "action": self.action, "key": self.key,
                "checksum": self.checksum, "detail": self.detail}


def history(dsn: str, target: str = "postgres", *, spec: Any = None, limit: int = 100) -> tuple[HistoryEntry, ...]:
    """The install log, newest first (``sqitch log``): every create, replace, repair, drop and failure."""
    t = get_target(target)
    loaded = load(spec)
    with _Session(t, dsn) as conn:
        schema = _schema_for_spec_or_registry(t, conn, loaded)
        return tuple(HistoryEntry(r["id"], r["at"], r["who"], r["action"], r["key"], r["checksum"], r["detail"])
                     for r in t.install_history(conn, schema, limit))


# -- server extensions ----------------------------------------------------------------------------------
def extension_files(target: str = "postgres", out_dir: str | Path | None = None) -> dict[str, str] | list[Path]:
    """The database extensions a target ships (PostgreSQL: aws_commons and aws_lambda, the RDS API) as
    file name -> content, or written into ``out_dir`` (for packagers); offline."""
    files = get_target(target).extension_files()
    if out_dir is None:
        return files
    try:
        return pipeline.write_files(files, Path(out_dir))
    except OSError as exc:
        raise UsageError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None


def install_extensions(target: str = "postgres", *, locator: str | None = None, remove: bool = False,
                       dry_run: bool = False) -> list[Path]:
    """Write those files where the server finds extensions (``remove``: delete the ones sqlambda wrote)."""
    return get_target(target).install_extensions(locator, remove=remove, dry_run=dry_run)


# -- uninstall ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UninstallResult:
    target: str
    schema: str | None
    removed: tuple[AppliedStep, ...]
    was_installed: bool

    @property
    def already_gone(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.removed if "already gone" in s.notes)

    @property
    def message(self) -> str:
        if not self.was_installed:
            return "nothing to uninstall: no sqlambda registry in this database"
        gone = self.already_gone
        extra = f" ({len(gone)} already gone: {', '.join(gone)})" if gone else ""
        return f"removed {len(self.removed)} object{'s' if len(self.removed) != 1 else ''} and the registry{extra}"

    def to_dict(self) -> dict:
        return {"target": self.target, "schema": self.schema, "was_installed": self.was_installed,
                "removed": [s.to_dict() for s in self.removed], "already_gone": list(self.already_gone),
                "message": self.message}


def uninstall(dsn: str, target: str = "postgres", *, spec: Any = None, lock_wait: float = 0.0) -> UninstallResult:
    """Remove exactly what the registry says was installed, in reverse order, then the registry.

    User tables are never in the registry, so they stay; objects dropped by hand are reported as
    already gone; a second run finds no registry and says so (exit 0).
    """
    t = get_target(target)
    loaded = load(spec)
    with _Session(t, dsn) as probe_conn:
        schema = _schema_for_spec_or_registry(t, probe_conn, loaded)
    with _Session(t, dsn, lock=True, schema=schema, lock_wait=lock_wait) as conn:
        installed = t.read_registry(conn, schema)
        if not installed and not t.registry_exists(conn, schema):
            return UninstallResult(t.name, schema, (), False)
        p = make_plan(t.name, [], installed, remove_all=True)
        removed = pipeline.ApplyExecutor(t, conn, schema, *spec_identity(loaded)).run(p)
        t.drop_registry(conn, schema)
        return UninstallResult(t.name, schema, removed, True)


# -- invoke ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvokeResult:
    name: str
    result: Any

    def to_dict(self) -> dict:
        return {"name": self.name, "result": self.result}


def invoke(dsn: str, name: str, json_text: str, target: str = "postgres", *, spec: Any = None) -> InvokeResult:
    """Call through the database: a spec function's typed wrapper by name, otherwise ``awslambda_fn``.

    The JSON is checked before anything is called (and before connecting): a wrapper takes a
    JSON object of its argument names; any other name is a Lambda called with the JSON as is.
    """
    import json

    try:
        doc = json.loads(json_text)
    except ValueError as exc:
        raise UsageError(f"the arguments are not valid JSON: {exc}", hint='e.g. \'{"order_id": 42}\'') from None
    t = get_target(target)
    loaded = load(spec)
    with _Session(t, dsn) as conn:
        schema = _schema_for_spec_or_registry(t, conn, loaded)
        if not t.read_registry(conn, schema):
            raise InstallError(f"sqlambda is not installed here (no registry{' in schema ' + schema if schema else ''})",
                               hint=f"run `sqlambda install --target {t.name} --dsn ...` first")
        names = t.wrapper_arguments(conn, schema, name)
        if names is None:
            return InvokeResult(name, t.call_generic(conn, schema, name, json_text))
        if not isinstance(doc, dict):
            raise UsageError(f"{name} takes named arguments: pass a JSON object, not {type(doc).__name__}")
        known = {n.lower(): n for n in names}
        unknown = sorted(k for k in doc if k.lower() not in known)
        if unknown:
            raise UsageError(f"{name} has no argument {', '.join(unknown)}; its arguments are: {', '.join(names) or '(none)'}")
        args = {known[k.lower()]: v for k, v in doc.items()}
        return InvokeResult(name, t.call_wrapper(conn, schema, name, args))


# -- doctor ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "hint": self.hint}


@dataclass(frozen=True)
class DoctorReport:
    target: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict:
        return {"target": self.target, "ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def check(self) -> "DoctorReport":
        if self.ok:
            return self
        failed = [c for c in self.checks if not c.ok]
        if failed[0].name == "database connection":
            # the same exit code as every other command that cannot connect (5), the report as details
            raise ConnectionFailed(failed[0].detail, hint=failed[0].hint, details=self.to_dict())
        raise DoctorFailed("doctor: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
                           hint=failed[0].hint, details=self.to_dict())


def doctor(dsn: str, endpoint_url: str | None = None, target: str = "postgres", *, spec: Any = None,
           strict: bool = True) -> DoctorReport:
    """Is this database ready for sqlambda? Checks run by and inside the server, each with a fix hint.

    A connection failure is itself a failed check (the report is still returned or raised whole).
    """
    t = get_target(target)
    loaded = load(spec)
    checks: list[Check] = []
    try:
        with _Session(t, dsn) as conn:
            checks.append(Check("database connection", True, "connected"))
            raw = t.doctor(conn, endpoint_url, loaded)
            checks += [Check(c["name"], bool(c["ok"]), c.get("detail") or "", c.get("hint")) for c in raw]
    except ConnectionFailed as exc:
        checks.append(Check("database connection", False, exc.message, exc.hint))
    report = DoctorReport(t.name, tuple(checks))
    return report.check() if strict else report


# -- the outbox -------------------------------------------------------------------------------------
def drain(dsn: str, target: str = "postgres", *, schema: str | None = None, follow: bool = False, workers: int = 1,
          endpoint_url: str | None = None, request_timeout_ms: int = 30000, stop: Any = None,
          on_batch: Callable[[str, int], None] | None = None, claim_limit: int | None = None) -> Any:
    """Deliver queued change events (``follow``: keep going until ``stop`` is set); the run's DrainStats."""
    return get_target(target).outbox().drain(
        dsn, schema=schema, follow=follow, workers=workers, endpoint_url=endpoint_url,
        request_timeout_ms=request_timeout_ms, stop=stop, on_batch=on_batch, claim_limit=claim_limit)


def outbox_status(dsn: str, target: str = "postgres", *, schema: str | None = None) -> Any:
    """Depth and age of the oldest queued event, in total and per trigger (an OutboxStatus)."""
    return get_target(target).outbox().status(dsn, schema)


def retry_dead(dsn: str, target: str = "postgres", *, schema: str | None = None, trigger: str | None = None,
               ids: list[int] | None = None) -> int:
    """Move dead letters (all, one trigger's, or given chunk ids) back into the queue; how many events."""
    return get_target(target).outbox().retry_dead(dsn, schema, trigger=trigger, ids=ids)


# -- modernization ----------------------------------------------------------------------------------
def modernize_status(dsn: str, target: str = "postgres", *, schema: str | None = None, recent: int = 5) -> list[Any]:
    """Per modernized function: stage, calls, comparisons, mismatches (``recent`` newest), latencies."""
    return get_target(target).modernize().status(dsn, schema, recent)


def modernize_scaffold(dsn: str, name: str, out_dir: str | Path, target: str = "postgres", *, schema: str | None = None,
                       calls_only: bool = False, force: bool = False) -> list[Path]:
    """Write ``<out_dir>/<name>/``: a Lambda folder and a replay test of the calls recorded of ``name``."""
    from sqlambda.scaffold import scaffold

    return scaffold(get_target(target).modernize().samples(dsn, schema, name), out_dir, calls_only=calls_only, force=force)
