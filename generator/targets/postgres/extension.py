"""The RDS/Aurora API as real PostgreSQL extensions: ``aws_commons`` and ``aws_lambda``.

Owns: the control files and versioned SQL scripts (rendered from the same templates as a spec's
``rds_compat: true``, so both flavours run the same code), their version names, the update scripts
from every older version found in the server's extension directory, and writing or removing those
files there (``sqlambda extension install``, run by a DBA with write access to that directory).
Then ``CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE`` works as on RDS, ``pg_dump`` carries the
extensions as extensions and ``ALTER EXTENSION aws_lambda UPDATE`` upgrades to what a newer sqlambda
installed.

The extension's functions take no spec: endpoint and region come from a DBA's settings
(``aws_lambda.endpoint_override``, ``sqlambda.endpoint_url``, ``sqlambda.region``) or, for the
region, the server's AWS environment; timeouts from ``aws_lambda.*_timeout_ms`` with AWS's
documented defaults. Must not connect to a database.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sqlambda import __version__, templates
from sqlambda.errors import EnvironmentProblem
from sqlambda.targets.postgres.render import TARGET, make_bundle, rds_invoke_overloads

#: extension -> (the RDS API version it matches, its comment, what it requires)
EXTENSIONS = {
    "aws_commons": ("1.2", "sqlambda: the aws_commons helpers of the RDS/Aurora aws_lambda API", ()),
    "aws_lambda": ("1.0", "sqlambda: the RDS/Aurora aws_lambda API (invoke AWS Lambda from SQL)", ("aws_commons", "plpython3u")),
}
MARKER = "written by sqlambda"  # the first line of every file, after "-- " (SQL) or "# " (control)
#: the defaults the extension's functions start from (no spec): the region from the server's AWS
#: environment unless a DBA sets sqlambda.region; timeouts from resolve_settings(rds=True)
EXTENSION_DEFAULTS = {"region": None, "endpoint_url": None, "connect_timeout_ms": 1000, "request_timeout_ms": 3000,
                      "max_attempts": 3}


def version_of(name: str, package_version: str = __version__) -> str:
    """``<RDS API version>-<sqlambda version>``, e.g. ``1.0-0.1.0``: the API a caller gets, and the
    sqlambda release whose code implements it (what ALTER EXTENSION ... UPDATE moves between)."""
    return f"{EXTENSIONS[name][0]}-{package_version}"


def _statements(template: str, **variables) -> list[str]:
    return list(templates.split_statements(templates.render(TARGET, template, action="create", extension=True,
                                                            owner="", **variables)))


def script(name: str) -> str:
    """The SQL of one extension (its install script; also the body of its update scripts: every
    statement replaces what an older version made)."""
    if name == "aws_commons":
        body = _statements("rds_type.sql.j2") + _statements("rds_arn_function.sql.j2")
    else:
        bundle = make_bundle(["sqlambda_functions"], EXTENSION_DEFAULTS)
        body = []
        for json_type, shape, types in rds_invoke_overloads():
            body += _statements("rds_invoke.sql.j2", shape=shape, json_type=json_type, bundle=bundle,
                                signature=f"aws_lambda.invoke({', '.join(types)})")
    head = (f"-- {MARKER} {__version__}: do not edit\n"
            f'\\echo Use "CREATE EXTENSION {name}" to load this file. \\quit\n')
    return head + "".join(st.rstrip().rstrip(";") + ";\n\n" for st in body)


def control(name: str, package_version: str = __version__) -> str:
    api, comment, requires = EXTENSIONS[name]
    lines = [f"# {MARKER} {package_version}", f"comment = '{comment}'",
             f"default_version = '{version_of(name, package_version)}'", "relocatable = false", f"schema = {name}",
             "superuser = true", "trusted = false"]
    if requires:
        lines.append(f"requires = '{', '.join(requires)}'")
    return "\n".join(lines) + "\n"


def files(package_version: str = __version__) -> dict[str, str]:
    """file name -> content: the control file and install script of each extension."""
    out = {}
    for name in EXTENSIONS:
        out[f"{name}.control"] = control(name, package_version)
        out[f"{name}--{version_of(name, package_version)}.sql"] = script(name)
    return out


def extension_dir(pg_config: str | None = None) -> Path:
    """``$(pg_config --sharedir)/extension`` of the server (Debian: /usr/share/postgresql/<major>)."""
    from sqlambda.targets.postgres.cluster import pg_bindir

    exe = pg_config or str(pg_bindir() / "pg_config")
    if not Path(exe).exists():
        exe = "pg_config"
    try:
        out = subprocess.run([exe, "--sharedir"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EnvironmentProblem(f"cannot ask pg_config for the server's share directory: {exc}",
                                 hint="pass --pg-config /usr/lib/postgresql/<major>/bin/pg_config") from None
    return Path(out) / "extension"


_SCRIPT = re.compile(r"^(?P<name>aws_commons|aws_lambda)--(?P<version>[^-][^/]*?)\.sql$")


def install(directory: Path, package_version: str = __version__, dry_run: bool = False) -> list[Path]:
    """Write the files into ``directory``, plus an update script from every older version whose install
    script is there (so ALTER EXTENSION ... UPDATE finds a path); the paths written."""
    wanted = files(package_version)
    for path in sorted(directory.glob("aws_*--*.sql")):
        m = _SCRIPT.match(path.name)
        if not m or "--" in m["version"]:
            continue
        current = version_of(m["name"], package_version)
        if m["version"] != current and _ours(path):
            wanted[f"{m['name']}--{m['version']}--{current}.sql"] = script(m["name"])
    foreign = [n for n in wanted if (directory / n).exists() and not _ours(directory / n)]
    if foreign:
        raise EnvironmentProblem(f"{directory} holds {', '.join(foreign)} not written by sqlambda (another aws_lambda?)",
                                 hint="remove them first if they are to be replaced")
    written = []
    for name, text in wanted.items():
        path = directory / name
        if not dry_run:
            try:
                path.write_text(text)
                path.chmod(0o644)
            except OSError as exc:
                raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}",
                                         hint="the server's extension directory belongs to root: run it with sudo") from None
        written.append(path)
    return written


def uninstall(directory: Path, dry_run: bool = False) -> list[Path]:
    """Remove every aws_commons / aws_lambda file sqlambda wrote there (never another vendor's)."""
    gone = []
    for path in sorted(list(directory.glob("aws_commons*")) + list(directory.glob("aws_lambda*"))):
        if _ours(path):
            if not dry_run:
                try:
                    path.unlink()
                except OSError as exc:
                    raise EnvironmentProblem(f"cannot remove {path}: {exc.strerror}", hint="run it with sudo") from None
            gone.append(path)
    return gone


def _ours(path: Path) -> bool:
    try:
        with open(path) as fh:
            return fh.readline().lstrip("-# ").startswith(MARKER)
    except OSError:
        return False
