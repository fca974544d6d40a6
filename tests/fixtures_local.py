"""Local AWS stack fixtures: one real stack per test session, the echo function, fault cleanup."""

from __future__ import annotations

import os

import pytest

from sqlambda.deploy import deploy_lambdas
from sqlambda.local import LocalStack


@pytest.fixture(scope="session")
def local_stack():
    """A started `sqlambda local` on a free port; AWS credentials for it set in os.environ."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    stack = LocalStack().start()
    try:
        yield stack
    finally:
        stack.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def echo_function(local_stack) -> str:
    deploy_lambdas(["echo"], endpoint_url=local_stack.endpoint_url)
    return "echo"


@pytest.fixture
def faults(local_stack):
    """The stack's FaultClient; every injected fault is cleared after the test."""
    local_stack.faults.clear()
    yield local_stack.faults
    local_stack.faults.clear()
