"""The `sqlambda` command line: a thin layer that parses options and calls the library API.

Each command group lives in its own module here and only translates options into calls of the
library (``sqlambda.api``, ``sqlambda.local``, ...). Errors derived from
:class:`sqlambda.errors.SqlambdaError` are printed without a traceback and mapped to their fixed
exit codes (see README, "Exit codes").
"""

from __future__ import annotations

import sys

import click

from sqlambda import __version__
from sqlambda.cli import common


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sqlambda")
def cli() -> None:
    """Let SQL call AWS Lambda: render, plan, install and verify database bridges."""


def _register() -> None:
    # Explicit list: a command group exists because it is named here, not by discovery.
    from sqlambda.cli import demo_cmd, extension_cmd, install_cmd, lambdas_cmd, local_cmd, modernize_cmd, outbox_cmd, spec_cmd

    for module in (spec_cmd, local_cmd, lambdas_cmd, install_cmd, extension_cmd, outbox_cmd, modernize_cmd, demo_cmd):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    code = common.run_cli(cli, argv)
    sys.exit(code)
