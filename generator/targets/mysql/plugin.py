"""The MySQL / MariaDB plugin: building ``mysql_udf/sqlambda_udf.c`` and placing the result.

Owns: finding the compiler and the server's headers (``mariadb_config`` / ``mysql_config``), the
build (the same flags as ``mysql_udf/Makefile``), the per-installation key compiled into it, the
file name (``sqlambda_udf_<hash of the source>.so``: a new version never collides with the copy
mysqld already holds mapped, since the plugin is linked ``-z nodelete``; one server has one key,
kept in the database, so a rebuild of one version is the same file), and
copying it into ``plugin_dir`` when this process can write there. Must not talk to a database
(the target asks the server for ``plugin_dir`` and passes it in) or ship a binary: only the C
source is packaged, every installation builds its own.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlambda import __version__
from sqlambda.errors import EnvironmentProblem, UsageError
from sqlambda.resources import folder

SOURCE = "sqlambda_udf.c"
#: the key file written beside a built plugin (mode 0600): a plugin taken with --plugin-file needs it
KEY_SUFFIX = ".key"
_KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Plugin:
    """One built plugin file and the key compiled into it."""

    path: Path
    key: str

    @property
    def soname(self) -> str:
        return self.path.name


def source_files() -> dict[str, str]:
    """The C source and its Makefile, as shipped (``sqlambda extension files --target mysql``)."""
    base = folder("mysql_udf")
    return {name: (base / name).read_text(encoding="utf-8") for name in (SOURCE, "Makefile")}


def source_digest() -> str:
    return hashlib.sha256((folder("mysql_udf") / SOURCE).read_bytes()).hexdigest()[:12]


def soname() -> str:
    """The plugin's file name for this version of the source (what CREATE FUNCTION ... SONAME names)."""
    return f"sqlambda_udf_{source_digest()}.so"


def new_key() -> str:
    return secrets.token_hex(32)


def _config_tool() -> str:
    for tool in ("mariadb_config", "mysql_config"):
        found = shutil.which(tool)
        if found:
            return found
    raise EnvironmentProblem(
        "neither mariadb_config nor mysql_config was found: the plugin builds against the server's headers",
        hint="apt install libmariadb-dev (MariaDB) or libmysqlclient-dev (MySQL), plus gcc libcurl4-openssl-dev libssl-dev",
    )


def build(out_dir: Path, key: str | None = None) -> Plugin:
    """Compile the plugin into ``out_dir`` with ``key`` (a new one when None); the file and its key.

    The key file is written beside it with mode 0600: the plugin and its key travel together.
    """
    key = key or new_key()
    if not _KEY.match(key):
        raise UsageError("a plugin key is 64 lowercase hex digits")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise EnvironmentProblem("no C compiler (cc) on PATH", hint="apt install gcc")
    source = folder("mysql_udf") / SOURCE
    digest = source_digest()
    out_dir = out_dir / hashlib.sha256(key.encode()).hexdigest()[:8]  # builds with other keys beside it
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / soname()
    include = subprocess.run([_config_tool(), "--include"], capture_output=True, text=True, check=False).stdout.split()
    cmd = [cc, "-O2", "-g", "-Wall", "-Wextra", "-std=gnu11", "-fPIC", "-shared", "-Wl,-z,nodelete",
           "-Wl,-z,relro,-z,now", *include, f'-DSQLAMBDA_KEY="{key}"', f'-DSQLAMBDA_BUILD="{__version__}-{digest}"',
           "-o", str(path), str(source), "-lcurl", "-lcrypto", "-lpthread"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        missing = re.search(r"fatal error: ([\w/.]+\.h): No such file", done.stderr)
        hint = (f"missing header {missing.group(1)}: apt install libcurl4-openssl-dev libssl-dev libmariadb-dev"
                if missing else "see the compiler's message above")
        raise EnvironmentProblem(f"building the MySQL plugin failed:\n{done.stderr.strip()[-2000:]}", hint=hint)
    path.chmod(0o644)
    key_file = path.with_name(path.name + KEY_SUFFIX)
    key_file.write_text(key + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    return Plugin(path, key)


def take(path: Path) -> Plugin:
    """A plugin built earlier (``--plugin-file``), with the key file written beside it."""
    key_file = path.with_name(path.name + KEY_SUFFIX)
    if not path.is_file():
        raise UsageError(f"no plugin file at {path}")
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise UsageError(f"{key_file} is missing: a plugin is used with the key it was built with",
                         hint="build it with `sqlambda extension build --target mysql`, which writes both") from None
    if not _KEY.match(key):
        raise UsageError(f"{key_file} does not hold a plugin key")
    return Plugin(path, key)


def place(plugin: Plugin, plugin_dir: str) -> Path | None:
    """Copy the plugin into the server's ``plugin_dir`` when this process can write there (same host,
    sufficient rights); None when it cannot, and the caller tells the DBA what to copy where."""
    target_dir = Path(plugin_dir)
    target = target_dir / plugin.soname
    if target.is_file() and target.read_bytes() == plugin.path.read_bytes():
        return target
    if not (target_dir.is_dir() and os.access(target_dir, os.W_OK)):
        return None
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(plugin.path, tmp)
    tmp.chmod(0o644)
    os.replace(tmp, target)
    return target
