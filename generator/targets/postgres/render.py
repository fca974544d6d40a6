"""Rendering of the PostgreSQL core and functions: placeholder until the runtime work lands it."""
