"""The demo's modernization scenario: ``public.price_quote()`` moves into ``lambdas/price_quote``.

Owns the scenario's steps, each through the library API exactly as a team would run them: the
original from ``sql/postgres/samples/price_quote.sql``, the spec ``generator/examples/modernize.yaml``
installed in each stage in turn (record, shadow, cutover, rollback), ``modernize scaffold`` into a
temporary folder, the Lambda deployed first with the seeded disagreement (``BULK_AT=50``: the bulk
discount from 50 units instead of 100) and then fixed, the drainer's comparisons and
``modernize status``. It returns what it saw; the demo judges and prints it.

Must not: hold SQL beyond the callers' SELECTs (the original is the sample file), or talk to AWS
other than through the deploy helpers with the stack's endpoint.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Callable

from sqlambda import api, resources

#: quotes the callers ask for: (sku, qty, tier); two of them 50 <= qty < 100, where the first port disagrees
QUOTES = [("A-100", 3, "retail"), ("A-100", 120, "gold"), ("B-200", 60, "silver"), ("C-300", 1, "gold"),
          ("B-200", 100, "retail"), ("C-300", 75, "retail"), ("A-100", 10, "silver"), ("B-200", 7, "retail")]
SIGNATURE = "public.price_quote(text, integer, text)"


@dataclass(frozen=True)
class ModernizeDemo:
    recorded: int
    scaffolded: tuple[str, ...]
    first_compared: int
    first_mismatches: tuple[str, ...]
    fixed_compared: int
    fixed_matched: int
    cutover_same: bool
    cutover_answers: int
    restored: bool


def _spec(stage: str) -> Any:
    loaded = api.load(resources.examples() / "modernize.yaml")
    entries = [m.model_copy(update={"stage": stage}) for m in loaded.spec.modernize]
    return types.SimpleNamespace(spec=loaded.spec.model_copy(update={"modernize": entries}), path=loaded.path,
                                 checksum=loaded.checksum)


def _quotes(dsn: str) -> list:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return [conn.execute("SELECT public.price_quote(%s, %s, %s)", q).fetchone()[0] for q in QUOTES]


def _definition(dsn: str) -> tuple:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT oid, pg_catalog.pg_get_functiondef(oid), proacl::text FROM pg_catalog.pg_proc "
                            "WHERE oid = pg_catalog.to_regprocedure(%s)", (SIGNATURE,)).fetchone()


def run(dsn: str, endpoint_url: str, out: str, say: Callable[[str], None]) -> ModernizeDemo:
    """The whole scenario; ``out`` receives the scaffolded folder."""
    import psycopg

    from sqlambda.devkit.deploy import deploy_folder

    folder = resources.folder("lambdas") / "price_quote"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((resources.folder("sql") / "postgres" / "samples" / "price_quote.sql").read_text(encoding="utf-8"))
    before, direct = _definition(dsn), _quotes(dsn)

    api.install(_spec("record"), dsn)
    recorded = _quotes(dsn) == direct and len(direct)
    scaffolded = tuple(p.name for p in api.modernize_scaffold(dsn, "price_quote", out))
    say(f"  record: {len(direct)} quotes answered by the original and recorded; scaffold wrote "
        f"{', '.join(scaffolded)} to {out}/price_quote")

    deploy_folder(folder, "price_quote", endpoint_url=endpoint_url, environment={"BULK_AT": "50"})
    api.install(_spec("shadow"), dsn)
    _quotes(dsn)
    api.drain(dsn, endpoint_url=endpoint_url)
    (first,) = api.modernize_status(dsn, recent=10)
    mismatches = tuple(f"{m.args}: {m.diff}" for m in first.mismatches)
    say(f"  shadow, first port: {first.matched}/{first.compared} answers match; status shows:")
    for line in mismatches:
        say(f"    {line}")

    deploy_folder(folder, "price_quote", endpoint_url=endpoint_url)  # the fix: BULK_AT back to 100 (lambda.json)
    _quotes(dsn)
    api.drain(dsn, endpoint_url=endpoint_url)
    (fixed,) = api.modernize_status(dsn, recent=0)
    fixed_compared, fixed_matched = fixed.compared - first.compared, fixed.matched - first.matched
    say(f"  shadow, fixed port: {fixed_matched}/{fixed_compared} answers match")

    api.install(_spec("cutover"), dsn)
    same = _quotes(dsn) == direct
    (cut,) = api.modernize_status(dsn, recent=0)
    say(f"  cutover: the Lambda answered {cut.lambda_answers} quotes, {'all equal to' if same else 'NOT equal to'} the original's")

    api.install(_spec("rollback"), dsn)
    restored = _definition(dsn) == before and _quotes(dsn) == direct
    say(f"  rollback: price_quote is the original again ({'same OID, definition and grants' if restored else 'CHANGED'})")
    return ModernizeDemo(recorded=int(recorded), scaffolded=scaffolded, first_compared=first.compared,
                         first_mismatches=mismatches, fixed_compared=fixed_compared, fixed_matched=fixed_matched,
                         cutover_same=same, cutover_answers=cut.lambda_answers, restored=restored)
