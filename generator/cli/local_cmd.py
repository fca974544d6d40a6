"""CLI: ``sqlambda local start | stop | status`` — the local AWS stack, in the foreground or detached."""

import click

from sqlambda.cli.common import console, emit, json_option

pid_file_option = click.option("--pid-file", default=None, type=click.Path(dir_okay=False),
                               help="Where a detached stack is recorded (default: $XDG_RUNTIME_DIR/sqlambda-local.pid, "
                                    "else ~/.cache/sqlambda/local.pid).")


def register(cli: click.Group) -> None:
    @cli.group("local")
    def local() -> None:
        """The Docker-free local AWS stack (moto + real Lambda execution)."""

    @local.command("start")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --allow-remote).")
    @click.option("--port", default=None, type=int, help="0 picks a free port (the default; 4566 with --localstack).")
    @click.option("--localstack", is_flag=True,
                  help="LocalStack's conventions for test suites written for it: port 4566, account 000000000000, "
                       "roles created on first use.")
    @click.option("--state-dir", default=None, type=click.Path(file_okay=False), help="Where code and logs go (default: a temp dir removed at exit).")
    @click.option("--allow-remote", is_flag=True,
                  help="Allow a non-loopback --host: whoever reaches the port can run code here. Prints a "
                       "warning and an admin token.")
    @click.option("--detach", is_flag=True, help="Start in the background, print the endpoint URL and return; "
                                                  "`sqlambda local stop` stops it.")
    @pid_file_option
    @json_option
    def start(host: str, port: int | None, localstack: bool, state_dir: str | None, allow_remote: bool, detach: bool,
              pid_file: str | None, as_json: bool) -> None:
        """Run until SIGINT/SIGTERM/SIGHUP (or, with --detach, until `local stop`). The first stdout line is
        the endpoint URL (--json: a JSON document with endpoint_url, pid and admin_token)."""
        from sqlambda.local import require_extra

        require_extra()
        if detach:
            from sqlambda.local.daemon import start_detached

            info = start_detached(host=host, port=port, state_dir=state_dir, allow_remote=allow_remote,
                                  pid_file=pid_file, localstack=localstack)
            emit(info, as_json, lambda: click.echo(info["endpoint_url"] + (f"\nadmin-token: {info['admin_token']}"
                                                                           if info["admin_token"] else "")))
            return
        from sqlambda.local.server import serve

        serve(host, port, state_dir, allow_remote=allow_remote, as_json=as_json, localstack=localstack)

    @local.command("stop")
    @pid_file_option
    @json_option
    def stop(pid_file: str | None, as_json: bool) -> None:
        """Stop the stack `local start --detach` started (SIGTERM; its workers and temp state go with it)."""
        from sqlambda.local.daemon import stop as stop_detached

        out = stop_detached(pid_file)
        emit(out, as_json, lambda: console.print(f"stopped the local stack (pid {out['pid']})" if out["stopped"]
                                                 else f"nothing to stop: {out['reason']} ({out['pid_file']})"))

    @local.command("status")
    @pid_file_option
    @json_option
    def status(pid_file: str | None, as_json: bool) -> None:
        """Whether the detached stack runs, and its endpoint URL (exit 9 when it does not)."""
        from sqlambda.errors import LocalStackError
        from sqlambda.local.daemon import status as read_status

        st = read_status(pid_file)
        if not st["running"]:
            raise LocalStackError(f"no local stack is running ({st['pid_file']})",
                                  hint="sqlambda local start --detach", details=st)
        emit(st, as_json, lambda: console.print(f"running: {st['endpoint_url']} (pid {st['pid']}, log {st['log']})"))
