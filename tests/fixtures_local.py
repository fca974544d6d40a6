"""Local AWS stack fixtures of this project's own tests, on top of sqlambda's pytest plugin
(``sqlambda.devkit.pytest_plugin``, loaded through its ``pytest11`` entry point): the session's
stack under its historical name, the echo function, fault cleanup, recording Lambdas."""

from __future__ import annotations

import os
import tempfile

import pytest
from recorder import SOURCE, Recorder


@pytest.fixture(scope="session")
def local_stack(sqlambda_local):
    """The plugin's running `sqlambda local` (AWS credentials for it set in os.environ)."""
    return sqlambda_local


@pytest.fixture(scope="session")
def echo_function(local_stack) -> str:
    local_stack.deploy("echo")
    return "echo"


@pytest.fixture
def faults(sqlambda_faults):
    """The stack's FaultClient; every injected fault is cleared after the test."""
    return sqlambda_faults


def deploy_recorder(stack, name: str) -> Recorder:
    """A recording Lambda (tests/recorder.py) deployed under ``name``: each batch it gets becomes a file."""
    folder = tempfile.mkdtemp(prefix=f"sqlambda-{name}-")
    os.chmod(folder, 0o777)
    rec = Recorder(name, folder)
    stack.deploy_source(name, SOURCE, environment=rec.env(), timeout=30)
    return rec


@pytest.fixture(scope="session")
def recorder(local_stack) -> Recorder:
    return deploy_recorder(local_stack, "tg_rec")


@pytest.fixture(scope="session")
def flaky(local_stack) -> Recorder:
    return deploy_recorder(local_stack, "tg_flaky")
