"""Fixtures for the example Lambdas' unit tests: their folders on sys.path and moto's mock_aws.

Each Lambda folder is zipped on its own, so its modules import each other by plain name
(``from metrics_core import ...``); the core modules have distinct names, so all three folders can
share one test interpreter. ``handler.py`` exists in every folder and is loaded under a unique
name by ``load_handler``.
"""

import importlib.util
import sys

import pytest

from sqlambda.resources import folder

LAMBDAS = folder("lambdas")
NAMES = ("cloudwatch_metrics", "firehose_to_redshift", "kinesis_reader")
for _name in NAMES:
    if str(LAMBDAS / _name) not in sys.path:
        sys.path.insert(0, str(LAMBDAS / _name))


def load_handler(name: str):
    """The ``handler`` module of one Lambda folder, imported under the name ``<folder>_handler``."""
    spec = importlib.util.spec_from_file_location(f"{name}_handler", LAMBDAS / name / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws(monkeypatch):
    """moto's in-process AWS with throwaway credentials; a real endpoint setting must not leak in."""
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_CLOUDWATCH",
                "AWS_ENDPOINT_URL_FIREHOSE", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield
