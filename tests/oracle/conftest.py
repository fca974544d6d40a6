"""Fixtures of the Oracle tests (the specs they render live in ``oracle_specs``)."""

from __future__ import annotations

import pytest
from oracle_specs import make_spec

from sqlambda.spec.model import Spec


@pytest.fixture
def full_spec() -> Spec:
    return make_spec()
