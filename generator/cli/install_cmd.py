"""CLI: render, plan, install, verify, uninstall, invoke and doctor (the installer commands).

Only parses options, calls :mod:`sqlambda.api` and prints the result: rich tables for people,
``--json`` for scripts. Every command takes ``--target`` (default postgres) and, when it needs a
database, ``--dsn`` (else ``DATABASE_URL``, else libpq's PG* variables). Exit codes come from
:mod:`sqlambda.errors` (see README, "Exit codes").
"""

from __future__ import annotations

import click
from rich.table import Table

from sqlambda import api
from sqlambda.cli.common import console, dsn_option, emit, json_option, mark, styled
from sqlambda.errors import UsageError
from sqlambda.targets import TARGETS

target_option = click.option("--target", default="postgres", show_default=True,
                             type=click.Choice(sorted(TARGETS)), help="Database kind.")
spec_argument = click.argument("spec", required=False, type=click.Path(dir_okay=False))

_STYLE = {"create": "green", "replace": "yellow", "recreate": "yellow", "drop": "red", "unchanged": "dim"}


def _plan_table(plan, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("action", "kind", "object", "summary"):
        table.add_column(col)
    for s in plan.steps:
        style = _STYLE.get(s.action, "")
        table.add_row(styled((s.action, style)), s.kind, s.key, s.summary)
    return table


def _counts(plan) -> str:
    return ", ".join(f"{n} {a}" for a, n in plan.counts().items() if n) or "nothing"


@click.command("render")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@target_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@json_option
def render_cmd(spec, target, out_dir, as_json):
    """Write reviewable SQL files for SPEC (no spec: the core only). Offline."""
    paths = api.render_to_dir(spec, target, out_dir)
    emit({"files": [str(p) for p in paths]}, as_json,
         lambda: [console.print(f"wrote {p}") for p in paths])


@click.command("plan")
@spec_argument
@target_option
@dsn_option
@json_option
def plan_cmd(spec, target, dsn, as_json):
    """Show what install would create, replace or drop. Changes nothing."""
    p = api.plan(spec, dsn, target)

    def human():
        console.print(_plan_table(p, f"plan ({p.target})"))
        console.print(f"plan: {_counts(p)}" + (" — nothing to do" if p.is_noop else ""))

    emit(p.to_dict(), as_json, human)


@click.command("install")
@spec_argument
@target_option
@dsn_option
@click.option("--dry-run", is_flag=True, help="Show the plan and the SQL it would run; change nothing.")
@click.option("--repair", is_flag=True, help="Also re-apply objects dropped or edited by hand (what verify flags).")
@click.option("--lock-timeout", default=0.0, show_default=True, type=float,
              help="Seconds to wait for another install to finish (0: fail at once).")
@json_option
def install_cmd(spec, target, dsn, dry_run, repair, lock_timeout, as_json):
    """Install SPEC (no spec: the core functions only). Idempotent."""
    progress = None if as_json else _Progress(console)
    result = api.install(spec, dsn, target, dry_run=dry_run, repair=repair, lock_wait=lock_timeout,
                         progress=progress)
    if result.damaged and not dry_run and not as_json and _interactive() and click.confirm(
            f"{len(result.damaged)} installed object(s) were dropped or edited by hand (verify flags them):\n"
            + "\n".join(f"  {k}: {why}" for k, why in result.damaged) + "\nRe-create them now?", default=False):
        result = api.install(spec, dsn, target, repair=True, lock_wait=lock_timeout, progress=progress)

    def human():
        p = result.plan
        if dry_run:
            console.print(_plan_table(p, f"install --dry-run ({p.target})"))
            for s in p.changes:
                console.print(f"-- {s.action} {s.key}", style="bold")
                for st in s.statements:
                    console.print(st + ";")
            console.print(f"dry run: {_counts(p)}; nothing was changed")
        elif p.is_noop:
            console.print(f"up to date: {_counts(p)}; nothing to do")
        else:
            gone = [a for a in result.applied if a.notes]
            for a in gone:
                console.print(f"  note: {a.key}: {', '.join(a.notes)}")
            console.print(styled(("installed", "green"), f": {_counts(p)} (registry in schema {result.schema})"))
        if result.damaged:
            console.print(styled(("note:", "yellow"), f" {len(result.damaged)} installed object(s) were dropped or edited "
                                 "by hand and left as they are (verify flags them):"))
            for key, why in result.damaged:
                console.print(f"  {key}: {why}")
            console.print(f"  to re-create them: {api.repair_command(p.target, api.load(spec), repair=True)}")

    emit(result.to_dict(), as_json, human)


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty() and console.is_terminal


class _Progress:
    """One line per step, ``[n/total] action object``: plain lines when piped (a log or a script reads
    them), styled by action on a terminal."""

    def __init__(self, con) -> None:
        self.console = con

    def __call__(self, step, n: int, total: int) -> None:
        self.console.print(f"  [{n}/{total}] {step.action} {step.key}", style=_STYLE.get(step.action))


@click.command("verify")
@spec_argument
@target_option
@dsn_option
@click.option("--probe", is_flag=True, help="Also DryRun-invoke each spec function's Lambda through the database.")
@json_option
def verify_cmd(spec, target, dsn, probe, as_json):
    """Check that installed objects exist, match the spec and were not edited by hand."""
    report = api.verify(spec, dsn, target, probe=probe, strict=False)
    if not as_json:
        for line in report.problems:
            console.print(styled(mark(False), " ", line))
        for p in report.probes:
            console.print(styled(mark(p.ok), f" probe {p.function} -> {p.lambda_}: {p.detail}"))
    report.check()
    emit(report.to_dict(), as_json,
         lambda: console.print(styled(("verify ok", "green"), f": {report.checked} objects match ({report.spec_name})")))


@click.command("uninstall")
@target_option
@dsn_option
@click.option("--spec", "spec", default=None, type=click.Path(dir_okay=False),
              help="Only needed when the database holds several registries.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lock-timeout", default=0.0, show_default=True, type=float)
@json_option
def uninstall_cmd(target, dsn, spec, yes, lock_timeout, as_json):
    """Remove everything sqlambda installed (user tables stay)."""
    if not yes:
        if as_json:
            raise UsageError("uninstall with --json needs --yes")
        click.confirm("Remove every object sqlambda installed in this database?", abort=True)
    result = api.uninstall(dsn, target, spec=spec, lock_wait=lock_timeout)
    emit(result.to_dict(), as_json, lambda: console.print(result.message))


@click.command("invoke")
@click.argument("name")
@click.argument("json_args", metavar="JSON")
@target_option
@dsn_option
@json_option
def invoke_cmd(name, json_args, target, dsn, as_json):
    """Call NAME through the database: a spec function's wrapper, else awslambda_fn(NAME, JSON)."""
    result = api.invoke(dsn, name, json_args, target)
    emit(result.to_dict(), as_json, lambda: console.print_json(data=result.result) if not isinstance(result.result, str)
         else console.print(result.result))


@click.command("doctor")
@target_option
@dsn_option
@click.option("--endpoint-url", default=None, help="Check this Lambda endpoint instead of the database's setting.")
@click.option("--spec", "spec", default=None, type=click.Path(dir_okay=False), help="Use the spec's aws defaults.")
@json_option
def doctor_cmd(target, dsn, endpoint_url, spec, as_json):
    """Check the server: plpython3u, boto3 inside it, endpoint reachable from it, credentials."""
    report = api.doctor(dsn, endpoint_url, target, spec=spec, strict=False)
    if not as_json:
        table = Table(title=f"doctor ({report.target})", title_justify="left")
        for col in ("", "check", "detail", "fix"):
            table.add_column(col)
        for c in report.checks:
            table.add_row(mark(c.ok), c.name, c.detail, c.hint or "")
        console.print(table)
    report.check()
    emit(report.to_dict(), as_json, lambda: console.print("doctor: all checks passed", style="green"))


@click.command("status")
@spec_argument
@target_option
@dsn_option
@json_option
def status_cmd(spec, target, dsn, as_json):
    """What is installed, from which spec and sqlambda version, and what install or a repair would change.

    Without SPEC, compares with the spec file the registry names, when it is still there."""
    st = api.status(dsn, target, spec=spec)

    def human():
        if not st.is_installed:
            console.print(f"{st.note} ({st.target}{', schema ' + st.schema if st.schema else ''})")
            return
        for sp in st.specs():
            console.print(styled(("installed", "green"), f": {sp['objects']} object(s) from {sp['spec']} "
                                 f"(sha256 {sp['spec_checksum'][:12]}…) by sqlambda {sp['tool_version']}"
                                 f"{', schema ' + st.schema if st.schema else ''}"))
        if st.last_change:
            lc = st.last_change
            console.print(f"last change: {api.as_iso(lc['at'])} {lc['action']} {lc['key'] or ''} by {lc['who']}".rstrip())
        if st.note:
            console.print(styled(("note:", "yellow"), " ", st.note))
        if st.compared_with is not None:
            if st.up_to_date:
                console.print(styled(("up to date", "green"), f" with {st.compared_with}"))
            else:
                console.print(styled(("not up to date", "yellow"), f" with {st.compared_with}: "
                                     + ", ".join(f"{n} {a}" for a, n in st.pending.items() if n and a != "unchanged")))
                for line in st.problems:
                    console.print(styled(mark(False), " ", line))
                console.print(styled(("hint:", "yellow"), " ", st.hint or ""))

    emit(st.to_dict(), as_json, human)


@click.command("history")
@target_option
@dsn_option
@click.option("--spec", "spec", default=None, type=click.Path(dir_okay=False),
              help="Only needed when the database holds several registries.")
@click.option("-n", "--limit", default=50, show_default=True, type=click.IntRange(1, 100000), help="Newest entries to show.")
@json_option
def history_cmd(target, dsn, spec, limit, as_json):
    """The install log, newest first: every create, replace, repair, drop and failure, when and by whom."""
    entries = api.history(dsn, target, spec=spec, limit=limit)

    def human():
        if not entries:
            console.print("no install history here (sqlambda is not installed)")
            return
        table = Table("id", "at", "who", "action", "object", "detail")
        for e in entries:
            detail = e.detail if isinstance(e.detail, str) or e.detail is None else \
                ", ".join(f"{k}={v}" for k, v in e.detail.items())
            table.add_row(str(e.id), str(api.as_iso(e.at)), e.who or "", styled((e.action, _STYLE.get(e.action, ""))),
                          e.key or "", detail or "")
        console.print(table)

    emit([e.to_dict() for e in entries], as_json, human)


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
    for command in (render_cmd, plan_cmd, install_cmd, verify_cmd, uninstall_cmd, invoke_cmd, doctor_cmd,
                    status_cmd, history_cmd):
        cli.add_command(command)
