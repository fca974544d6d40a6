"""Shared CLI plumbing: error-to-exit-code mapping, ``--json`` output and the DSN option.

No command logic lives here; only what every command module needs to stay thin.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any, Callable

import click
from rich.console import Console
from rich.text import Text

from sqlambda.errors import SqlambdaError


def make_console(stderr: bool = False) -> Console:
    """A console that prints text as given: nothing printed by sqlambda is interpreted as rich markup,
    emoji codes or highlighting, because most of it comes from users and remote services (a spec path,
    a Lambda's errorMessage, a hint naming ``'sqlambda[oracle]'``). Styles are applied only through
    :func:`styled` and ``style=``. On a terminal it wraps to the terminal's width; piped or redirected,
    it never wraps or cuts (a script reading the output gets whole names and whole lines)."""
    con = Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    if not con.is_terminal:
        con = Console(stderr=stderr, markup=False, emoji=False, highlight=False, width=1_000_000, soft_wrap=True)
    return con


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and ``(text, style)`` pairs; the strings are never parsed as markup."""
    return Text.assemble(*parts)


def mark(ok: bool) -> Text:
    return Text("✓", style="green") if ok else Text("✗", style="red")


console = make_console()
err_console = make_console(stderr=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so every ``finally`` (stopping the
    demo's PostgreSQL and stack, releasing a lock, closing a connection) runs before exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, _frame: Any) -> None:
    # Only the first signal interrupts; later ones (a second Ctrl-C, `timeout` repeating itself)
    # must not cut the cleanup short. A do-nothing handler, not SIG_IGN: ignored signals would be
    # inherited by the processes the cleanup starts (pg_ctl), handlers are not.
    for sig in _SIGNALS:
        signal.signal(sig, lambda *_: None)
    raise Terminated(signum)


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_cli(cli: click.Group, argv: list[str] | None) -> int:
    """Run the click group; user errors become a message and a fixed exit code. SIGINT, SIGTERM and
    SIGHUP end a command the same way (cleanup runs), with exit code 130, 143 or 129."""
    if threading.current_thread() is not threading.main_thread():
        return _run(cli, argv)
    saved = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}
    try:
        return _run(cli, argv)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _run(cli: click.Group, argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="sqlambda", standalone_mode=False)
    except SqlambdaError as exc:
        if _json_requested(argv):
            click.echo(json.dumps(exc.to_dict(), indent=2))
        else:
            err_console.print(styled(("error:", "bold red"), " ", exc.message), soft_wrap=True)
            if exc.hint:
                err_console.print(styled(("hint:", "yellow"), " ", exc.hint), soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt (so Terminated) into Abort
        cause = exc.__cause__ or exc.__context__  # click.confirm raises Abort "from None"
        if isinstance(cause, Terminated):
            err_console.print(f"stopped by {signal.Signals(cause.signum).name}; cleaned up")
            return 128 + cause.signum
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return 128 + exc.signum if isinstance(exc, Terminated) else 130
    except Exception as exc:  # noqa: BLE001 - a bug must still not greet a user with a traceback
        if os.environ.get("SQLAMBDA_DEBUG"):
            raise
        err_console.print(styled(("internal error:", "bold red"), f" {type(exc).__name__}: {exc}"), soft_wrap=True)
        err_console.print(styled(("hint:", "yellow"), " this is a bug in sqlambda; SQLAMBDA_DEBUG=1 shows the traceback "
                                 "to include in a report"), soft_wrap=True)
        return 1
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
