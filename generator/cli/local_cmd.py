"""CLI: ``sqlambda local start`` — run the local AWS stack in the foreground."""

import click


def register(cli: click.Group) -> None:
    @cli.group("local")
    def local() -> None:
        """The Docker-free local AWS stack (moto + real Lambda execution)."""

    @local.command("start")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port.")
    @click.option("--state-dir", default=None, type=click.Path(file_okay=False), help="Where code and logs go (default: a temp dir removed at exit).")
    def start(host: str, port: int, state_dir: str | None) -> None:
        """Run until interrupted. The first stdout line is the endpoint URL."""
        from sqlambda.local.server import serve

        serve(host, port, state_dir)
