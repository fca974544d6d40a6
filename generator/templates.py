"""The Jinja environment every target renders with, and the header every generated file carries.

Owns: loading templates from ``sql/<target>/`` with ``StrictUndefined`` (a missing value is a
:class:`~sqlambda.errors.RenderError`, never an empty string), the filters templates may use
(identifier quoting, SQL string literals, Python string literals for embedding PL/Python module
sources) and the file header. Must not decide *what* to render: targets do.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import jinja2

from sqlambda import __version__, resources
from sqlambda.errors import RenderError


def quote_ident(name: str) -> str:
    """Quote an identifier the SQL-standard way (both PostgreSQL and Oracle): "na""me"."""
    return '"' + name.replace('"', '""') + '"'


#: characters that must never appear raw inside a rendered literal: line breaks would let a value
#: start a new line of a script (SQL*Plus ends a PL/SQL unit at a line holding only "/"; our own
#: statement splitter cuts at a line holding "-- ;;"), and other controls are invisible in review
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def sql_literal(value: str) -> str:
    """A standard SQL string literal ('it''s'); no backslash escapes (standard_conforming_strings).

    Only for values without control characters (use the target's ``literal`` filter otherwise).
    """
    if _CONTROL.search(value):
        raise RenderError(f"a plain SQL string literal cannot hold control characters: {value[:60]!r}")
    return "'" + value.replace("'", "''") + "'"


def pg_literal(value: str) -> str:
    """A PostgreSQL literal that stays on one line whatever it holds: control characters become
    escapes inside an ``E'...'`` string, so the value round-trips and never breaks a script line."""
    if "\x00" in value:
        raise RenderError("a PostgreSQL string cannot contain NUL")
    if not _CONTROL.search(value):
        return sql_literal(value)
    body = value.replace("\\", "\\\\").replace("'", "''")
    body = _CONTROL.sub(lambda m: "\\u%04x" % ord(m.group()), body)
    return "E'" + body + "'"


def oracle_literal(value: str) -> str:
    """An Oracle literal that stays on one line: control characters are concatenated as CHR(n)
    (UNISTR for the Unicode line separators), so the value round-trips and never ends a SQL*Plus unit."""
    if not _CONTROL.search(value):
        return sql_literal(value)
    parts: list[str] = []
    last = 0
    for m in _CONTROL.finditer(value):
        if m.start() > last:
            parts.append(sql_literal(value[last:m.start()]))
        code = ord(m.group())
        parts.append(f"CHR({code})" if code < 128 else f"UNISTR('\\{code:04X}')")
        last = m.end()
    if last < len(value):
        parts.append(sql_literal(value[last:]))
    return "(" + " || ".join(parts) + ")"


def backtick(name: str) -> str:
    """A MySQL / MariaDB identifier: `na``me`."""
    if "\x00" in name:
        raise RenderError("a MySQL identifier cannot contain NUL")
    return "`" + name.replace("`", "``") + "`"


def mysql_literal(value: str) -> str:
    """A MySQL / MariaDB string literal that means the same under every sql_mode: plain quotes
    ('it''s') when the value holds no backslash and no control character, else a hex literal with
    the utf8mb4 introducer (a backslash is an escape unless NO_BACKSLASH_ESCAPES is set)."""
    if "\\" not in value and not _CONTROL.search(value):
        return "'" + value.replace("'", "''") + "'"
    return "_utf8mb4 X'" + value.encode("utf-8").hex().upper() + "'"


def dollar_quote(body: str, tag: str = "sqlambda") -> str:
    """PostgreSQL dollar quoting with a tag that provably does not occur in ``body``."""
    t = tag
    n = 0
    while f"${t}$" in body:
        n += 1
        t = f"{tag}{n}"
    return f"${t}${body}${t}$"


@lru_cache(maxsize=None)
def environment(target: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.folder("sql") / target)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ident"] = quote_ident
    env.filters["literal"] = oracle_literal if target == "oracle" else pg_literal
    env.filters["dollar"] = dollar_quote
    env.filters["backtick"] = backtick
    env.filters["my_literal"] = mysql_literal
    env.filters["pyrepr"] = repr
    env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True)
    return env


def render(target: str, template: str, **context) -> str:
    """Render ``sql/<target>/<template>``; any undefined value is a RenderError naming the template."""
    try:
        return environment(target).get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {target}/{template}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {target}/{exc.name} not found") from exc


def header(spec_name: str, spec_checksum: str, comment: str = "--") -> str:
    """The first lines of every generated file: where it came from, and not to edit it."""
    return (
        f"{comment} Generated by sqlambda {__version__} from {spec_name} (sha256 {spec_checksum}).\n"
        f"{comment} Do not edit: change the spec and run `sqlambda render` again.\n"
    )


def split_statements(text: str) -> tuple[str, ...]:
    """Split a rendered template into statements on lines that hold only ``-- ;;``.

    Templates mark statement boundaries explicitly instead of relying on parsing SQL, because
    function bodies (PL/Python, PL/SQL, Java) contain semicolons.
    """
    parts = [p.strip() for p in text.split("\n-- ;;\n")]
    for p in parts:
        for line in p.splitlines():
            if line.startswith("-- ;;"):
                # a boundary that lost its own line (a whitespace-eating {#- ... #} after it, say):
                # the statement after it would silently become a comment and never run
                raise RenderError(f"a statement boundary is not on a line of its own: {line[:80]!r}")
    return tuple(p for p in parts if p and not all(l.strip().startswith("--") or not l.strip() for l in p.splitlines()))
