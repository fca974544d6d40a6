"""Fixtures for the example Lambdas' unit tests: moto's mock_aws with throwaway credentials.

Importing ``lambda_helpers`` puts the Lambda folders on sys.path before the test modules import
their cores.
"""

import lambda_helpers  # noqa: F401  (side effect: the Lambda folders on sys.path)
import pytest


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
