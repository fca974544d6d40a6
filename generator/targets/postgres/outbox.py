"""Rendering of PostgreSQL triggers and the outbox: placeholder until the trigger work lands it.

Contract: ``render_triggers(loaded, ctx) -> list[Artifact]`` where ``ctx`` is the render context
dict ``render.py`` builds (schema names, header, spec); returns [] when the spec has no triggers.
"""


def render_triggers(loaded, ctx):
    return []
