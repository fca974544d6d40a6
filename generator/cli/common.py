"""Shared CLI plumbing: error-to-exit-code mapping, ``--json`` output and the DSN option.

No command logic lives here; only what every command module needs to stay thin.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import click
from rich.console import Console

from sqlambda.errors import SqlambdaError

console = Console()
err_console = Console(stderr=True)


def run_cli(cli: click.Group, argv: list[str] | None) -> int:
    """Run the click group; user errors become a message and a fixed exit code."""
    try:
        cli.main(args=argv, prog_name="sqlambda", standalone_mode=False)
    except SqlambdaError as exc:
        if _json_requested(argv):
            click.echo(json.dumps(exc.to_dict(), indent=2))
        else:
            err_console.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False, soft_wrap=True)
            if exc.hint:
                err_console.print(f"[yellow]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def _json_requested(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return "--json" in args


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON for scripts, or call ``human`` to print it for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human()


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


def dsn_option(f):
    """``--dsn``; falls back to DATABASE_URL, then to libpq's PG* variables (empty DSN)."""
    return click.option(
        "--dsn",
        default=lambda: os.environ.get("DATABASE_URL", ""),
        show_default="$DATABASE_URL or libpq PG* variables",
        help="Database connection string.",
    )(f)
