"""The spec: YAML in, validated :class:`Spec` out (see ``model`` for its shape, ``loader`` for errors)."""

from sqlambda.spec.model import Function, Spec, Trigger  # noqa: F401
