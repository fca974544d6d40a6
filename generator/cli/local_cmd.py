"""CLI: ``sqlambda local start`` — run the local AWS stack in the foreground."""

import click


def register(cli: click.Group) -> None:
    @cli.group("local")
    def local() -> None:
        """The Docker-free local AWS stack (moto + real Lambda execution)."""

    @local.command("start")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --allow-remote).")
    @click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port.")
    @click.option("--state-dir", default=None, type=click.Path(file_okay=False), help="Where code and logs go (default: a temp dir removed at exit).")
    @click.option("--allow-remote", is_flag=True,
                  help="Allow a non-loopback --host: whoever reaches the port can run code here. Prints a "
                       "warning and an admin token.")
    def start(host: str, port: int, state_dir: str | None, allow_remote: bool) -> None:
        """Run until interrupted. The first stdout line is the endpoint URL."""
        from sqlambda.local.server import serve

        serve(host, port, state_dir, allow_remote=allow_remote)
