"""Unit-test helpers for the plpython/ modules: they run here in plain Python, outside PostgreSQL.

``FakePlpy`` stands in for the ``plpy`` module only where pure logic needs it (``plpy.Error``,
``prepare``/``execute`` returning GUC rows); everything that talks to Lambda is tested against the
real local stack in tests/postgres/.
"""

import sys

import pytest

from sqlambda import resources

sys.path.insert(0, str(resources.folder("plpython")))


class FakePlpy:
    class Error(Exception):
        pass

    def __init__(self, gucs=None):
        self.gucs = dict(gucs or {})
        self.executed = []

    def prepare(self, sql, types=None):
        return ("plan", sql)

    def execute(self, plan_or_sql, *args):
        self.executed.append(plan_or_sql)
        if isinstance(plan_or_sql, tuple):
            return [{k: self.gucs.get(k) for k in ("endpoint_url", "region", "connect_timeout_ms", "request_timeout_ms", "max_attempts")}]
        return []


@pytest.fixture
def plpy():
    return FakePlpy()
