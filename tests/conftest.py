"""Shared pytest fixtures: a real throwaway PostgreSQL cluster and the real local AWS stack.

Fixture modules live beside this file (``fixtures_pg.py``, ``fixtures_local.py``) and are loaded
as pytest plugins so each owner can evolve its own without touching the others.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_plugins = ["fixtures_pg", "fixtures_local"]
