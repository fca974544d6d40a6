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
    progress = None if as_json else (lambda step: console.print(f"  {step.action} {step.key}", style=_STYLE.get(step.action)))
    result = api.install(spec, dsn, target, dry_run=dry_run, repair=repair, lock_wait=lock_timeout,
                              progress=progress)

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

    emit(result.to_dict(), as_json, human)


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


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
    for command in (render_cmd, plan_cmd, install_cmd, verify_cmd, uninstall_cmd, invoke_cmd, doctor_cmd):
        cli.add_command(command)
