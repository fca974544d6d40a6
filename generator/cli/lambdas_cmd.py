"""CLI commands: placeholder until its owner lands them (see the module's issue)."""

import click


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
