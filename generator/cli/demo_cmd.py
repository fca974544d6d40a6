"""CLI: `sqlambda demo`, the README's first command. Parses options and calls :mod:`sqlambda.devkit.demo`."""

from __future__ import annotations

import json

import click

from sqlambda.cli.common import console, json_option, make_console
from sqlambda.devkit import demo


@click.command("demo")
@click.option("--spec", "spec", default=None, type=click.Path(dir_okay=False),
              help="Install this spec instead of the embedded demo spec.")
@click.option("--keep", is_flag=True, help="Leave the cluster and the local stack running (until Ctrl-C) and print how to reach them.")
@json_option
def demo_cmd(spec, keep, as_json):
    """Start PostgreSQL and a local AWS stack, install a spec, call Lambda from SQL, run the three scenarios, clean up."""
    if as_json:
        outcome = demo.run(make_console(stderr=True), spec=spec, keep=keep)
        click.echo(json.dumps(outcome.to_dict(), indent=2))
    else:
        demo.run(console, spec=spec, keep=keep)


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
    cli.add_command(demo_cmd)
