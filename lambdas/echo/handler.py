"""echo: returns its input with "Status": "OK" added (used by the demo, tests and benchmarks)."""

from core import echo


def handler(event, context):
    return echo(event)
