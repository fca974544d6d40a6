"""CLI: ``sqlambda lambdas deploy`` — package lambdas/<name> folders and create or update them."""

import click
from rich.table import Table

from sqlambda.cli.common import console, emit, err_console, json_option


def register(cli: click.Group) -> None:
    @cli.group("lambdas")
    def lambdas() -> None:
        """The example Lambdas shipped under lambdas/."""

    @lambdas.command("deploy")
    @click.argument("names", nargs=-1)
    @click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None, help="Default: $AWS_ENDPOINT_URL, else real AWS.")
    @click.option("--role-arn", default=None, help="Execution role (default: find or create a role by name).")
    @click.option("--name", "alias", default=None, help="Publish a version and point this alias at it.")
    @click.option("--region", default=None)
    @json_option
    def deploy(names, endpoint_url, role_arn, alias, region, as_json) -> None:
        """Deploy NAMES (default: every folder under lambdas/)."""
        from sqlambda.devkit.deploy import deploy_lambdas

        def deployed(row: dict, n: int, total: int) -> None:
            err_console.print(f"[{n}/{total}] {row['action']} {row['name']} in {row['seconds']:.1f}s")

        rows = deploy_lambdas(list(names), endpoint_url=endpoint_url, role_arn=role_arn, alias=alias, region=region,
                              on_deployed=None if as_json else deployed)

        def human() -> None:
            t = Table("function", "action", "code sha256", "arn")
            for r in rows:
                t.add_row(r["name"], r["action"], r["code_sha256"][:16] + "…", r["arn"] + (f"  ({r['alias']})" if "alias" in r else ""))
            console.print(t)

        emit(rows, as_json, human)
