"""Shared pytest fixtures: a real throwaway PostgreSQL cluster and the real local AWS stack.

Fixture modules live beside this file (``fixtures_pg.py``, ``fixtures_local.py``) and are loaded
as pytest plugins so each owner can evolve its own without touching the others.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_plugins = ["fixtures_pg", "fixtures_local", "fixtures_java", "pytester"]


def pytest_configure(config):
    # the project's fixtures build on sqlambda's own pytest plugin, loaded through its entry point
    if not config.pluginmanager.has_plugin("sqlambda"):
        raise pytest.UsageError("sqlambda's pytest plugin is not loaded: install the package (.ci/dev setup, or "
                                "pip install -e .[test]) and do not set PYTEST_DISABLE_PLUGIN_AUTOLOAD")
