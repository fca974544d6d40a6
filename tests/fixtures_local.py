"""Local AWS stack fixtures: one real stack per test session, the echo function, fault cleanup."""

from __future__ import annotations

import os
import tempfile

import pytest
from recorder import SOURCE, Recorder

from sqlambda.devkit.deploy import deploy_lambdas
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


def deploy_recorder(stack, name: str) -> Recorder:
    """A recording Lambda (tests/recorder.py) deployed under ``name``: each batch it gets becomes a file."""
    from sqlambda.devkit.deploy import deploy_source

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
