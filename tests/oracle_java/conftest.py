"""The Oracle Java client tests: ``java_build`` comes from tests/fixtures_java.py; helpers live in ``ojava.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
