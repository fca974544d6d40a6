"""The spec's JSON Schema for editors (``sqlambda schema``), generated from the pydantic model."""

from __future__ import annotations

from sqlambda.spec.model import Spec

SCHEMA_ID = "https://sqlambda.dev/schema/spec-v1.json"


def json_schema() -> dict:
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "sqlambda spec", **{k: v for k, v in schema.items() if k != "title"}}
