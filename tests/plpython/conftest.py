"""Unit-test helpers for the plpython/ modules: they run here in plain Python, outside PostgreSQL.

``FakePlpy`` stands in for the ``plpy`` module only where pure logic needs it (``plpy.Error``,
``prepare``/``execute`` returning the settings row: the DBA's ``ALTER DATABASE`` / ``ALTER ROLE ALL``
values as pg_db_role_setting holds them, and the session's ``current_setting()`` values, which
start as the database's like in a real session); everything that talks to Lambda is tested against
the real local stack in tests/postgres/.
"""

import sys

import pytest

from sqlambda import resources

sys.path.insert(0, str(resources.folder("plpython")))

from fake_plpy import FakePlpy  # noqa: E402


@pytest.fixture
def plpy():
    return FakePlpy()
