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
        out = {"ok": True, "file": spec, "sha256": loaded.checksum, "functions": len(s.functions), "triggers": len(s.triggers),
               "modernize": len(s.modernize)}
        emit(out, as_json, lambda: console.print(f"ok: {spec}: {len(s.functions)} functions, {len(s.triggers)} triggers"
                                                 + (f", {len(s.modernize)} modernize entries" if s.modernize else "")))

    @cli.command("init")
    @click.argument("folder", default=".", type=click.Path(file_okay=False))
    @click.option("--project", default="myapp", show_default=True, help="The spec's project name (a SQL identifier).")
    @click.option("--examples", is_flag=True, help="Also copy the example specs, sample SQL and example Lambdas into "
                                                    "FOLDER/sqlambda-examples (laid out like a checkout).")
    @click.option("--force", is_flag=True, help="Overwrite files that exist.")
    @json_option
    def init(folder: str, project: str, examples: bool, force: bool, as_json: bool) -> None:
        """Write a commented starter spec, FOLDER/sqlambda.yaml (and with --examples, the examples to read)."""
        from sqlambda.devkit.starter import EXAMPLES_DIR, SPEC_NAME
        from sqlambda.devkit.starter import init as write

        files = write(folder, project=project, examples=examples, force=force)

        def human() -> None:
            where = "" if folder in (".", "./") else folder.rstrip("/") + "/"
            spec = where + SPEC_NAME
            console.print(f"wrote {spec}" + (f" and {len(files) - 1} example files under {where}{EXAMPLES_DIR}/ "
                                             "(laid out like a checkout: run the README's commands from there)"
                                             if examples else ""))
            console.print(f"next: edit it, then `sqlambda validate {spec}`, `sqlambda plan {spec} --dsn ...`, "
                          f"`sqlambda install {spec} --dsn ...`")

        emit({"files": [str(p) for p in files]}, as_json, human)

    @cli.command("schema")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file instead of stdout.")
    @json_option
    def schema(output: str | None, as_json: bool) -> None:
        """Print the spec's JSON Schema (for editors: yaml-language-server, IDEs). It is JSON either way;
        --json also makes errors one JSON document."""
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
    @json_option
    def iam_policy(spec: str, account_id: str | None, region: str | None, as_json: bool) -> None:
        """Print the least-privilege IAM policy: lambda:InvokeFunction on exactly the ARNs SPEC calls.
        It is JSON either way; --json also makes errors one JSON document."""
        from sqlambda.iam import iam_policy as build
        from sqlambda.spec.loader import load_spec

        click.echo(json.dumps(build(load_spec(spec), region=region, account_id=account_id), indent=2))
