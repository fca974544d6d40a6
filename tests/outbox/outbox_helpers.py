"""Helpers for the trigger and outbox tests (a module of its own name, not conftest): a loaded spec from a dict, and queue counts. The recording
Lambdas (``recorder``, ``flaky``) are session fixtures in tests/fixtures_local.py."""

from __future__ import annotations

import types

import psycopg


def make_loaded(spec_dict: dict, name: str = "tests/outbox") -> types.SimpleNamespace:
    """A loaded-spec object (``.spec``, ``.path``, ``.checksum``) as the installer takes it."""
    import hashlib
    import json

    from sqlambda.spec.model import Spec

    spec = Spec.model_validate(spec_dict)
    checksum = hashlib.sha256(json.dumps(spec_dict, sort_keys=True).encode()).hexdigest()
    return types.SimpleNamespace(spec=spec, path=name, checksum=checksum)


def queue_counts(dsn: str, schema: str = "sqlambda") -> tuple[int, int]:
    """(queued, dead) events: a queue row holds a chunk of n events of which `done` are settled."""
    with psycopg.connect(dsn) as conn:
        q = conn.execute(f'SELECT coalesce(sum(n - done), 0) FROM "{schema}".outbox').fetchone()[0]
        d = conn.execute(f'SELECT coalesce(sum(n - done), 0) FROM "{schema}".outbox_dead').fetchone()[0]
    return int(q), int(d)
