"""Lambda entry point: rows to Firehose as newline-delimited JSON for Redshift (``handler.handler``).

Owns only the wiring: one Firehose client per warm container, configuration from the
environment. Everything else is in ``firehose_core`` so it can be tested without Lambda.
"""

import functools
import os

import boto3
from firehose_core import Config, forward


@functools.lru_cache(maxsize=None)
def _firehose():
    # Created on first use and reused while the container is warm; boto3 reads AWS_ENDPOINT_URL.
    return boto3.client("firehose")


def handler(event, context):
    return forward(event, _firehose(), Config.from_env(os.environ))
