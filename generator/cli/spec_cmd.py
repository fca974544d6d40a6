"""CLI: ``validate``, ``schema`` and ``iam-policy`` — everything that needs only the spec file."""

from __future__ import annotations

import json

import click

from sqlambda.cli.common import console, emit, json_option


def register(cli: click.Group) -> None:
    @cli.command("validate")
    @click.argument("spec", type=click.Path(dir_okay=False))
    @json_option
    def validate(spec: str, as_json: bool) -> None:
        """Check SPEC; print every problem with file:line:col (exit 3 when invalid)."""
        from sqlambda.spec.loader import load_spec_file

        loaded = load_spec_file(spec)
        s = loaded.spec
        out = {"ok": True, "file": spec, "sha256": loaded.checksum, "functions": len(s.functions), "triggers": len(s.triggers)}
        emit(out, as_json, lambda: console.print(f"ok: {spec}: {len(s.functions)} functions, {len(s.triggers)} triggers"))

    @cli.command("schema")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file instead of stdout.")
    def schema(output: str | None) -> None:
        """Print the spec's JSON Schema (for editors: yaml-language-server, IDEs)."""
        from sqlambda.spec.schema import json_schema

        text = json.dumps(json_schema(), indent=2) + "\n"
        if output:
            with open(output, "w") as fh:
                fh.write(text)
        else:
            click.echo(text, nl=False)

    @cli.command("iam-policy")
    @click.argument("spec", type=click.Path(dir_okay=False))
    @click.option("--account-id", default=None, help="Account for ARNs built from plain names (default: aws.account_id).")
    @click.option("--region", default=None, help="Region for ARNs built from plain names (default: aws.region).")
    def iam_policy(spec: str, account_id: str | None, region: str | None) -> None:
        """Print the least-privilege IAM policy: lambda:InvokeFunction on exactly the ARNs SPEC calls."""
        from sqlambda.iam import iam_policy as build
        from sqlambda.spec.loader import load_spec

        click.echo(json.dumps(build(load_spec(spec), region=region, account_id=account_id), indent=2))
