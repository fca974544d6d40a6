"""What the modernization tests share: the original PL/pgSQL function with real business rules, the
Lambda that re-implements them (with a switchable disagreement), and snapshots of a function's
catalog state (definition, ACL, owner, comment, OID) to prove a restore is exact."""

from __future__ import annotations

import psycopg

from sqlambda import resources

#: the original: the demo's sample file (skus A-100, B-200, C-300)
ORIGINAL = (resources.folder("sql") / "postgres" / "samples" / "price_quote.sql").read_text(encoding="utf-8")

#: the shipped Lambda's core (lambdas/price_quote), with a handler that can also fail on purpose:
#: BULK_AT moves the bulk threshold (the seeded disagreement), FAIL_SKU makes one sku a Lambda error
CORE_SOURCE = (resources.folder("lambdas") / "price_quote" / "price_quote_core.py").read_text(encoding="utf-8")
LAMBDA = CORE_SOURCE + """

def handler(event, context):
    if event["sku"] == os.environ.get("FAIL_SKU"):
        raise RuntimeError("pricing backend unavailable for " + event["sku"])
    return quote(event)
"""

SIGNATURE = "public.price_quote(text, integer, text)"


def snapshot(dsn: str, signature: str = SIGNATURE) -> dict:
    """Everything that must come back exactly: definition, ACL, owner, comment, OID, flags."""
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT p.oid, pg_catalog.pg_get_functiondef(p.oid), p.proacl::text, p.proowner::regrole::text, "
            "pg_catalog.obj_description(p.oid, 'pg_proc'), p.provolatile, p.prosecdef, p.proconfig, p.proparallel "
            "FROM pg_catalog.pg_proc p WHERE p.oid = pg_catalog.to_regprocedure(%s)", (signature,)).fetchone()
    assert row is not None, f"{signature} does not exist"
    keys = ("oid", "definition", "acl", "owner", "comment", "volatility", "secdef", "config", "parallel")
    return dict(zip(keys, row))


def outcome(conn, query: str, params=()):
    """('ok', value) or ('error', sqlstate, message, detail, hint): what a caller sees."""
    try:
        with conn.transaction():
            return ("ok", conn.execute(query, params).fetchone()[0])
    except psycopg.Error as exc:
        d = exc.diag
        return ("error", d.sqlstate, d.message_primary, d.message_detail, d.message_hint)
