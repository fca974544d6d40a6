"""A throwaway MariaDB (or MySQL) server for the tests, the demo and the benchmarks.

Owns: finding the server binaries (Debian's ``mariadb-server``), ``mariadb-install-db`` into a
private folder (as the ``mysql`` OS user when running as root), starting ``mariadbd`` on 127.0.0.1
on a free port with its own ``plugin_dir`` (so the installer can place the plugin there itself),
the server's environment (where the plugin reads endpoint, region and credentials: the DBA's
configuration), ``kill -9`` and restart for durability tests, and removal. Must not install
packages (``.ci/dev`` does) nor know sqlambda's objects. The folder is made on first use, like
the PostgreSQL cluster's, so a signal between construction and ``destroy()`` leaks nothing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlambda.errors import EnvironmentProblem


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _binary(*names: str) -> str:
    for n in names:
        for c in (shutil.which(n), f"/usr/sbin/{n}", f"/usr/bin/{n}"):
            if c and os.access(c, os.X_OK):
                return c
    raise EnvironmentProblem(f"{names[0]} not found", hint="run .ci/dev (it installs mariadb-server)")


@dataclass
class MariaDB:
    """One private server. Use as a context manager, or call start()/destroy()."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    base: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._owned_base = self.base is None
        self._server = _binary("mariadbd", "mysqld")
        self._install_db = _binary("mariadb-install-db", "mysql_install_db")
        self._as_mysql = os.geteuid() == 0
        self._proc: subprocess.Popen | None = None
        self._initialized = False

    def _folder(self) -> Path:
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix="sqlambda-my-"))
        return self.base

    @property
    def datadir(self) -> Path:
        return self._folder() / "data"

    @property
    def plugin_dir(self) -> Path:
        return self._folder() / "plugin"

    @property
    def logfile(self) -> Path:
        return self._folder() / "server.log"

    @property
    def dsn(self) -> str:
        return f"mysql://root@{self.host}:{self.port}/"

    def _chown(self, path: Path) -> None:
        if self._as_mysql:
            pw = pwd.getpwnam("mysql")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        base = self._folder()
        base.chmod(0o755)
        self._chown(base)  # the server writes its log, socket and pid file here
        for d in (self.datadir, self.plugin_dir):
            d.mkdir(exist_ok=True)
            self._chown(d)
        cmd = [self._install_db, "--no-defaults", f"--datadir={self.datadir}", "--auth-root-authentication-method=normal",
               "--skip-test-db", "--skip-name-resolve"]
        if self._as_mysql:
            cmd.append("--user=mysql")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EnvironmentProblem(f"mariadb-install-db failed: {done.stderr.strip()[-1500:]}")
        self._initialized = True

    def start(self, wait_s: float = 60) -> None:
        if not self._initialized:
            self.init()
        cmd = [self._server, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
               f"--bind-address={self.host}", f"--socket={self._folder() / 'mysqld.sock'}",
               f"--pid-file={self._folder() / 'mysqld.pid'}", f"--log-error={self.logfile}",
               f"--plugin-dir={self.plugin_dir}", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
               "--innodb-log-file-size=48M", "--max-connections=200", "--max-allowed-packet=64M", "--character-set-server=utf8mb4",
               "--collation-server=utf8mb4_unicode_ci", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=1"]
        cmd += [f"--{k}={v}" for k, v in self.settings.items()]
        if self._as_mysql:
            cmd.append("--user=mysql")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **self.env}
        self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EnvironmentProblem(f"mariadbd exited at start:\n{self._log_tail()}")
            if self._ping():
                return
            time.sleep(0.1)
        raise EnvironmentProblem(f"mariadbd did not accept connections within {wait_s:.0f} s:\n{self._log_tail()}")

    def _ping(self) -> bool:
        import pymysql

        try:
            pymysql.connect(host=self.host, port=self.port, user="root", connect_timeout=1).close()
            return True
        except pymysql.err.Error:
            return False

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def kill(self) -> None:
        """``kill -9`` the server (a crash: InnoDB recovers on the next start)."""
        if self._proc and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait(30)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, env: dict[str, str] | None = None) -> None:
        self.stop()
        if env is not None:
            self.env = env
        self.start()

    def destroy(self) -> None:
        self.stop()
        if self._owned_base and self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "MariaDB":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
