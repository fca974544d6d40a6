"""Lambda entry point: read a batch from a Kinesis shard (``handler.handler``).

Owns only the wiring: one Kinesis client per warm container. The request is the event itself;
everything else is in ``kinesis_core`` so it can be tested without Lambda.
"""

import functools

import boto3
from kinesis_core import read


@functools.lru_cache(maxsize=None)
def _kinesis():
    # Created on first use and reused while the container is warm; boto3 reads AWS_ENDPOINT_URL.
    return boto3.client("kinesis")


def handler(event, context):
    return read(event, _kinesis())
