"""CLI: ``sqlambda lambdas deploy`` — package lambdas/<name> folders and create or update them."""

import click
from rich.table import Table

from sqlambda.cli.common import console, emit, err_console, json_option


def register(cli: click.Group) -> None:
    @cli.group("lambdas")
    def lambdas() -> None:
        """The example Lambdas shipped under lambdas/, and folders of your own."""

    @lambdas.command("deploy")
    @click.argument("names", nargs=-1)
    @click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None, help="Default: $AWS_ENDPOINT_URL, else real AWS.")
    @click.option("--role-arn", default=None, help="Execution role (default: find or create a role by name).")
    @click.option("--function-name", default=None,
                  help="Deploy the one folder under this function name (e.g. the original sample's lambdaReadKinesisStream).")
    @click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
                  help="An environment variable of the function (repeatable), over the folder's lambda.json.")
    @click.option("--timeout", type=click.IntRange(1, 900), default=None, help="Seconds (default: lambda.json's).")
    @click.option("--memory", type=click.IntRange(128, 10240), default=None, help="MB (default: lambda.json's).")
    @click.option("--alias", "alias", default=None, help="Also publish a version and point this alias at it.")
    @click.option("--name", "old_name", default=None, hidden=True)
    @click.option("--region", default=None)
    @json_option
    def deploy(names, endpoint_url, role_arn, function_name, env, timeout, memory, alias, old_name, region, as_json) -> None:
        """Deploy NAMES: examples under lambdas/, or folders of your own with a handler.py (default: every example)."""
        from sqlambda.devkit.deploy import deploy_lambdas
        from sqlambda.errors import UsageError

        if old_name is not None:
            raise UsageError("--name was ambiguous and is gone",
                             hint=f"--alias {old_name} publishes a version under that alias; --function-name {old_name} "
                                  "deploys the function under that name")
        environment = {}
        for item in env:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"--env {item!r}: expected KEY=VALUE")
            environment[key] = value

        def deployed(row: dict, n: int, total: int) -> None:
            err_console.print(f"[{n}/{total}] {row['action']} {row['name']} in {row['seconds']:.1f}s")

        rows = deploy_lambdas(list(names), endpoint_url=endpoint_url, role_arn=role_arn, alias=alias, region=region,
                              environment=environment or None, timeout=timeout, memory=memory, function_name=function_name,
                              on_deployed=None if as_json else deployed)

        def human() -> None:
            t = Table("function", "action", "code sha256", "arn")
            for r in rows:
                t.add_row(r["name"], r["action"], r["code_sha256"][:16] + "…", r["arn"] + (f"  ({r['alias']})" if "alias" in r else ""))
            console.print(t)

        emit(rows, as_json, human)
