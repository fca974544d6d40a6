"""Rendering of modernization (``modernize:`` entries) for PostgreSQL, and the status/scaffold reads.

Owns: turning the spec's ``modernize`` entries into artifacts: the four tables and the
``modernize_apply`` / ``modernize_release`` functions (once, when any entry exists), and per entry
its counters, its two helpers and the apply call that takes the function over or changes its stage
(``sql/postgres/modernize/``). The router itself is built inside the database by
``modernize_apply`` from the catalog, so it always matches the installed original, whatever the
spec says about it. Install order: tables (28), apply/release (31), entries (85, after triggers),
so uninstall gives every original back before anything it used is dropped.

Must not: touch a database (reading status lives in :mod:`sqlambda.targets.postgres.modernize_db`)
or hold SQL text.
"""

from __future__ import annotations

from sqlambda.artifacts import Artifact
from sqlambda.errors import RenderError
from sqlambda.spec.model import Modernize, Spec

FILE_MODERNIZE = "40_modernize.sql"
ORDER_TABLES = 28
ORDER_FUNCTIONS = 31
ORDER_ENTRY = 85
#: the longest suffix sqlambda adds to an entry's name (its sequence ``<name>__fallbacks``)
_LONGEST_SUFFIX = len("__fallbacks")
MAX_IDENT = 63


def definition(m: Modernize) -> dict:
    """What the entry's ``__lambda`` helper and the drainer need (stored in ``modernize.options``)."""
    return {"name": m.short, "lambda": m.lambda_, "qualifier": m.qualifier, "path": m.path}


def options(m: Modernize, spec: Spec) -> dict:
    return {
        **definition(m),
        "canary": m.canary,
        "payload": dict(m.payload),
        "compare": m.compare.model_dump(),
        "region": spec.aws.region,
        "endpoint_url": spec.aws.endpoint_url,
        "side_effects": m.side_effects,
    }


def original_schema_of(schema: str) -> str:
    """Where originals wait while a router has their name: ``<schema>_original``."""
    name = f"{schema}_original"
    if len(name.encode()) > MAX_IDENT:
        raise RenderError(f"postgres.schema: {schema!r} is too long to derive {name!r} (at most {MAX_IDENT} bytes)")
    return name


def render_modernize(ctx: dict) -> list[Artifact]:
    """Pure: the spec's modernize entries (ctx['spec']) -> artifacts; [] without any."""
    spec: Spec = ctx["spec"]
    if not spec.modernize:
        return []
    schema, make = ctx["schema"], ctx["artifact"]
    original_schema = original_schema_of(schema)
    out = [
        make(f"table {schema}.modernize", "table", "modernize/tables.sql.j2", order=ORDER_TABLES, file=FILE_MODERNIZE,
             summary="modernize registry, sampled calls, shadow queue and comparisons",
             probe=(("regclass", f'"{schema}"."modernize"'),), replace="refuse", schema=schema, original_schema=original_schema),
        make(f"function {schema}.modernize_apply(text,text,text,jsonb)", "function", "modernize/apply_function.sql.j2",
             order=ORDER_FUNCTIONS, file=FILE_MODERNIZE, summary="take a function over with a router, or give it back",
             probe=(("regprocedure", f'"{schema}".modernize_apply(text,text,text,jsonb)'),), schema=schema,
             original_schema=original_schema,
             requires=(f"table {schema}.modernize",)),
    ]
    bundle = ctx["bundle"](["sqlambda_functions"])
    for i, m in enumerate(spec.modernize):
        name = m.short
        if len(name.encode()) + _LONGEST_SUFFIX > MAX_IDENT:
            raise RenderError(f"modernize[{i}]: the name {name!r} leaves no room for sqlambda's suffixes "
                              f"(at most {MAX_IDENT - _LONGEST_SUFFIX} bytes); give the entry a shorter 'name'")
        out.append(make(
            f"modernize {name}", "modernize", "modernize/entry.sql.j2", order=ORDER_ENTRY, file=FILE_MODERNIZE,
            summary=f"{m.qualified} -> {m.lambda_}: stage {m.stage}",
            probe=(("regprocedure", m.qualified),), replace="statements", schema=schema, name=name,
            signature=m.qualified, stage=m.stage, options=options(m, spec), definition=definition(m), bundle=bundle, log_bundle=ctx["bundle"](["sqlambda_modernize"]),
            sample=float(m.record.sample), max_calls=m.record.max_calls, max_bytes=m.record.max_bytes,
            requires=(f"function {schema}.modernize_apply(text,text,text,jsonb)",),
        ))
    return out
