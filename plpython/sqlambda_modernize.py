"""sqlambda_modernize: what a modernize router in stage record calls after each call, inside PostgreSQL.

Owns: keeping the errors of the original. An error aborts the statement that called the function,
and with it anything that statement wrote, so the sample of a failed call cannot be written while
it fails (PostgreSQL has no autonomous transactions). It is stashed here, in the backend's memory
(``GD``, which no rollback touches; at most ``STASH_MAX`` per function), and written by the next
call of the same session that succeeds. The counters are sequences, which rollbacks do not undo,
so every error is counted at once. Everything else goes straight to ``<name>__keep`` (PL/pgSQL):
counting, sampling, the ring of kept calls.

Must not: ``import plpy`` (it is passed in), raise for anything but a database error of the keep
function itself (a capture must never be a new way for a call to fail: ``__keep`` does nothing in
a read-only transaction), or keep more than ``STASH_MAX`` stashed errors per function and session.
"""

from __future__ import annotations

#: errors kept in memory per function and session until a successful call writes them
STASH_MAX = 100
_TYPES = ["text", "jsonb", "jsonb", "jsonb", "bigint", "boolean"]


def log(plpy, GD, fn, kind, args, result, error, us):
    """``fn``: {'name', 'keep': the quoted keep function}. ``kind``: original | error."""
    key = "sqlambda.modernize:" + fn["keep"]
    state = GD.get(key)
    if state is None:
        plan = plpy.prepare("SELECT %s($1, $2, $3, $4, $5, $6)" % fn["keep"], _TYPES)
        state = GD[key] = {"plan": plan, "stash": []}
    plan = state["plan"]
    if kind == "error":
        if len(state["stash"]) < STASH_MAX:
            state["stash"].append((args, error, us))
        plpy.execute(plan, ["error", args, None, error, us, True])  # counted now, kept later
        return None
    stash = state["stash"]
    while stash:
        e_args, e_error, e_us = stash[0]
        plpy.execute(plan, ["error", e_args, None, e_error, e_us, False])
        stash.pop(0)
    plpy.execute(plan, [kind, args, result, error, us, True])
    return None
