"""CLI: ``sqlambda modernize status | scaffold``.

Only parses options, calls :mod:`sqlambda.api` and prints (rich for people, ``--json`` for scripts
and for the evidence a team attaches to a cutover request).
"""

from __future__ import annotations

import click
from rich.table import Table

from sqlambda import api
from sqlambda.cli.common import console, dsn_option, emit, json_option, styled
from sqlambda.targets import TARGETS

schema_option = click.option("--schema", default=None, help="sqlambda's schema (the spec's postgres.schema, default sqlambda).")
target_option = click.option("--target", default="postgres", show_default=True, type=click.Choice(sorted(TARGETS)),
                             help="Database kind.")


def register(cli: click.Group) -> None:
    cli.add_command(modernize_group)


@click.group("modernize")
def modernize_group() -> None:
    """Functions moving into Lambdas: what each stage has shown, and the scaffold of the Lambda."""


def _us(v: float | None) -> str:
    return "-" if v is None else (f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs")


@modernize_group.command("status")
@target_option
@dsn_option
@schema_option
@click.option("--recent", type=click.IntRange(0, 1000), default=5, show_default=True, help="Mismatches shown per function, newest first.")
@json_option
def status_cmd(target: str, dsn: str, schema: str | None, recent: int, as_json: bool) -> None:
    """Per function: stage, calls, shadow comparisons and match rate, mismatches with diffs, Lambda
    errors, p50/p99 of the original and the Lambda, canary fallbacks."""
    rows = api.modernize_status(dsn, target, schema=schema, recent=recent)

    def human() -> None:
        if not rows:
            console.print("no function is taken over (add a modernize: entry to the spec and install it)")
            return
        table = Table("function", "stage", "calls", "compared", "match rate", "Lambda errors", "original p50/p99",
                      "Lambda p50/p99", "answered by Lambda", "fallbacks", "queued")
        for r in rows:
            rate = "-" if r.match_rate is None else f"{r.match_rate:.1%}"
            table.add_row(f"{r.name}\n{r.function} -> {r.lambda_name}", r.stage, str(r.calls), str(r.compared), rate,
                          str(r.lambda_errors), f"{_us(r.original_p50_us)} / {_us(r.original_p99_us)}",
                          f"{_us(r.lambda_p50_us)} / {_us(r.lambda_p99_us)} ({r.lambda_measured_by})",
                          str(r.lambda_answers), str(r.fallbacks), str(r.shadow_queued))
        console.print(table)
        for r in rows:
            for m in r.mismatches:
                console.print(styled((f"{r.name} mismatch", "yellow"), f" at {m.compared_at}: args {m.args}"))
                console.print(f"  original {m.original!r}, Lambda " + (m.lambda_error or repr(m.lambda_result)))
                for line in (m.diff or "").splitlines():
                    console.print(f"    {line}", highlight=False, markup=False)

    emit([r.to_dict() for r in rows], as_json, human)


@modernize_group.command("scaffold")
@click.argument("name")
@target_option
@dsn_option
@schema_option
@click.option("--out", "out_dir", default="lambdas", show_default=True, help="Folder to create NAME/ in.")
@click.option("--calls-only", is_flag=True, help="Only refresh recorded_calls.json (the team's code stays).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@json_option
def scaffold_cmd(name: str, target: str, dsn: str, schema: str | None, out_dir: str, calls_only: bool, force: bool,
                 as_json: bool) -> None:
    """Write OUT/NAME/: a Lambda (thin handler over a pure core to fill in) and a test replaying every
    call recorded of the function NAME against the core."""
    written = api.modernize_scaffold(dsn, name, out_dir, target, schema=schema, calls_only=calls_only, force=force)

    def human() -> None:
        for p in written:
            console.print(f"wrote {p}")
        console.print(f"next: fill in {written[0].parent}/{name}_core.py until `python -m pytest {written[0].parent}` passes")

    emit([str(p) for p in written], as_json, human)
