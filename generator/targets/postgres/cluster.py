"""A throwaway PostgreSQL cluster for the demo, the tests and the benchmarks.

Owns: finding Debian's PostgreSQL binaries, ``initdb`` into a private directory as the
``postgres`` OS user (when running as root), starting it on 127.0.0.1 on a free port, restarting
it (including ``-m immediate`` crash stops for durability tests) and removing it. It must not
install packages (``.ci/dev`` does that) nor know anything about sqlambda's own objects.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlambda.errors import EnvironmentProblem

PG_MAJOR = os.environ.get("SQLAMBDA_PG_MAJOR", "15")


def pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl for the configured major version."""
    candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise EnvironmentProblem(
        f"PostgreSQL {PG_MAJOR} server binaries not found",
        hint=f"run .ci/dev (it installs postgresql-{PG_MAJOR} and postgresql-plpython3-{PG_MAJOR})",
    )


def _runuser() -> str:
    """runuser lives in /usr/sbin, which a plain user's PATH (or env -i) may not hold."""
    for c in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser"):
        if c and os.access(c, os.X_OK):
            return c
    raise EnvironmentProblem("running as root, but runuser (util-linux) was not found to start PostgreSQL as 'postgres'",
                             hint="install util-linux, or run as a user other than root")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """One private cluster. Use as a context manager, or call start()/destroy()."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    base: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the folder is made on first use, not here: a caller registers destroy() right after
        # construction, and a signal between a folder made here and that registration leaked it
        self._owned_base = self.base is None
        self._bindir = pg_bindir()
        self._as_postgres = os.geteuid() == 0

    def _folder(self) -> Path:
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix="sqlambda-pg-"))
        return self.base

    @property
    def datadir(self) -> Path:
        return self._folder() / "data"

    @property
    def logfile(self) -> Path:
        return self._folder() / "postgres.log"

    # -- properties ---------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str, user: str = "postgres") -> str:
        return f"host={self.host} port={self.port} dbname={dbname} user={user}"

    # -- lifecycle ----------------------------------------------------------------------------
    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        """Run a server program (as ``postgres`` through runuser when root) in a process group of its
        own, and end the whole group if this process is interrupted (a signal's exception): killing
        only runuser, as ``subprocess.run`` does, left initdb running as its orphan, still writing
        into the folder that ``destroy()`` was removing (the folder outlived a SIGTERM'd demo)."""
        cmd = [str(self._bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = [_runuser(), "-u", "postgres", "--", *cmd]
        env = {**os.environ, **self.extra_env}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        try:
            out, err = proc.communicate()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        if res.returncode != 0:
            log = self.logfile.read_text()[-3000:] if self.logfile.exists() else ""
            raise EnvironmentProblem(f"{args[0]} failed ({res.returncode}): {res.stderr.strip()}\n{log}")
        return res

    def init(self) -> "Cluster":
        self._folder()
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            os.chmod(self.base, 0o755)
        self._run(["initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        conf = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "fsync": "on",  # durability tests kill -9 / -m immediate; keep it honest
            "max_connections": "100",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            **self.settings,
        }
        with open(self.datadir / "postgresql.auto.conf", "a") as fh:
            for k, v in conf.items():
                fh.write(f"{k} = {v}\n")
        return self

    def start(self) -> "Cluster":
        if not self.datadir.exists():
            self.init()
        self._run(["pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60", "start"])
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop"])

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop (immediate) and remove the cluster; also when ``pg_ctl stop`` fails, e.g. because the
        start it follows was interrupted: the postmaster named in postmaster.pid gets SIGQUIT."""
        if self.base is None:
            return  # never started: nothing made, nothing running
        try:
            self.stop("immediate")
        except EnvironmentProblem:
            self._quit_postmaster()
        finally:
            if self._owned_base and self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)

    def _quit_postmaster(self, timeout: float = 30) -> None:
        import time

        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.destroy()
