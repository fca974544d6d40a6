"""CLI: ``sqlambda extension files | install | uninstall`` — the RDS API as real PostgreSQL extensions.

Only parses options, calls :mod:`sqlambda.api` and prints what was written or removed.
"""

from __future__ import annotations

import click

from sqlambda import api
from sqlambda.cli.common import console, emit, json_option
from sqlambda.targets import TARGETS

target_option = click.option("--target", default="postgres", show_default=True, type=click.Choice(sorted(TARGETS)),
                             help="Database kind.")
pg_config_option = click.option("--pg-config", default=None, type=click.Path(dir_okay=False),
                                help="The server's pg_config (default: the one of PostgreSQL $SQLAMBDA_PG_MAJOR, else on PATH).")
plugin_dir_option = click.option("--plugin-dir", default=None, type=click.Path(file_okay=False),
                                 help="--target mysql: the server's @@plugin_dir to copy the built plugin into "
                                      "(default: only build it, into ~/.cache/sqlambda/mysql).")


def register(cli: click.Group) -> None:
    """Attach the ``extension`` group to the top-level group."""
    cli.add_command(extension_group)


@click.group("extension")
def extension_group() -> None:
    """aws_commons and aws_lambda as PostgreSQL extensions, so `CREATE EXTENSION aws_lambda CASCADE` works."""


@extension_group.command("install")
@target_option
@pg_config_option
@plugin_dir_option
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
@json_option
def install_cmd(target: str, pg_config: str | None, plugin_dir: str | None, dry_run: bool, as_json: bool) -> None:
    """Write the control files and scripts into the server's extension directory (needs write access to
    it, e.g. sudo), with update scripts from every older version there. Then, in a database:
    CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE; (or ALTER EXTENSION aws_lambda UPDATE)."""
    paths = api.install_extensions(target, locator=plugin_dir or pg_config, dry_run=dry_run)
    emit({"files": [str(p) for p in paths], "dry_run": dry_run}, as_json,
         lambda: [console.print(f"{'would write' if dry_run else 'wrote'} {p}") for p in paths])


@extension_group.command("uninstall")
@target_option
@pg_config_option
@plugin_dir_option
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
def uninstall_cmd(target: str, pg_config: str | None, plugin_dir: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove the files `extension install` wrote (DROP EXTENSION in the databases first)."""
    paths = api.install_extensions(target, locator=plugin_dir or pg_config, remove=True, dry_run=dry_run)
    emit({"files": [str(p) for p in paths], "dry_run": dry_run}, as_json,
         lambda: [console.print(f"{'would remove' if dry_run else 'removed'} {p}") for p in paths]
         or console.print("nothing to remove"))


@extension_group.command("files")
@target_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@json_option
def files_cmd(target: str, out_dir: str, as_json: bool) -> None:
    """Write the extension files into a directory of your choice (for packaging); offline."""
    paths = api.extension_files(target, out_dir)
    emit({"files": [str(p) for p in paths]}, as_json, lambda: [console.print(f"wrote {p}") for p in paths])
