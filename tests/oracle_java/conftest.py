"""The Oracle Java client tests: ``java_build`` comes from tests/fixtures_java.py; helpers live in
``ojava.py``; the ``imds`` fixture (a fake EC2 metadata server) in ``imds_fake.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imds_fake import imds  # noqa: E402,F401 - a fixture for every test here
