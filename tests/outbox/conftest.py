"""Fixtures for the trigger and outbox tests: a recording Lambda on the real local stack, and a spec
installed with the real installer into the module's database."""

from __future__ import annotations

import os
import sys
import tempfile
import types
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recorder import SOURCE, Recorder  # noqa: E402


def make_loaded(spec_dict: dict, name: str = "tests/outbox") -> types.SimpleNamespace:
    """A loaded-spec object (``.spec``, ``.path``, ``.checksum``) as the installer takes it."""
    import hashlib
    import json

    from sqlambda.spec.model import Spec

    spec = Spec.model_validate(spec_dict)
    checksum = hashlib.sha256(json.dumps(spec_dict, sort_keys=True).encode()).hexdigest()
    return types.SimpleNamespace(spec=spec, path=name, checksum=checksum)


def deploy_recorder(stack, name: str) -> Recorder:
    from sqlambda.deploy import deploy_source

    folder = tempfile.mkdtemp(prefix=f"sqlambda-{name}-")
    os.chmod(folder, 0o777)
    rec = Recorder(name, folder)
    deploy_source(name, SOURCE, endpoint_url=stack.endpoint_url, environment=rec.env(), timeout=30)
    return rec


@pytest.fixture(scope="session")
def recorder(local_stack) -> Recorder:
    return deploy_recorder(local_stack, "tg_rec")


@pytest.fixture(scope="session")
def flaky(local_stack) -> Recorder:
    return deploy_recorder(local_stack, "tg_flaky")


def queue_counts(dsn: str, schema: str = "sqlambda") -> tuple[int, int]:
    """(queued, dead) events: a queue row holds a chunk of n events of which `done` are settled."""
    with psycopg.connect(dsn) as conn:
        q = conn.execute(f'SELECT coalesce(sum(n - done), 0) FROM "{schema}".outbox').fetchone()[0]
        d = conn.execute(f'SELECT coalesce(sum(n - done), 0) FROM "{schema}".outbox_dead').fetchone()[0]
    return int(q), int(d)
