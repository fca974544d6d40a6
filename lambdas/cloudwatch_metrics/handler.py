"""Lambda entry point: temperature readings to CloudWatch (``handler.handler``).

Owns only the wiring: one CloudWatch client per warm container, configuration from the
environment. Everything else is in ``metrics_core`` so it can be tested without Lambda.
"""

import functools
import os

import boto3
from metrics_core import Config, publish


@functools.lru_cache(maxsize=None)
def _cloudwatch():
    # Created on first use, then reused by every invocation of this warm container; boto3 reads
    # AWS_ENDPOINT_URL itself, which is how the local stack points it at moto.
    return boto3.client("cloudwatch")


def handler(event, context):
    return publish(event, _cloudwatch(), Config.from_env(os.environ))
