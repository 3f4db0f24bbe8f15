"""Checking a custom resource against its CustomResourceDefinition's OpenAPI schema, offline.

The API server validates a custom resource against the ``openAPIV3Schema`` of its CRD version
and, under kubectl's default strict field validation, refuses fields the schema does not know.
``crd_errors`` does the same here, before anything reaches a cluster: the schema becomes a JSON
Schema in which every object that lists its properties admits no others (unless the schema says
``x-kubernetes-preserve-unknown-fields``), and the CEL rules on the resource's name (RFC 1035
label, at most 63 characters), the ones that matter when creating a resource, become a pattern
and a length. Other CEL rules (``x-kubernetes-validations``: immutability on update, cross-field
rules) are not evaluated.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_NAME_MATCHES = re.compile(r"^self\.metadata\.name\.matches\('(.+)'\)$")
_NAME_SIZE = re.compile(r"^size\(self\.metadata\.name\) <= (\d+)$")


def crd_errors(resource: dict, crd: dict) -> list[str]:
    """Every way ``resource`` breaks ``crd``'s schema for its apiVersion, one line each, with the
    path of the offending field; an empty list when it is valid."""
    import jsonschema

    group, _, version = resource.get("apiVersion", "").partition("/")
    names = crd["spec"]["names"]
    if group != crd["spec"]["group"] or resource.get("kind") != names["kind"]:
        return [f"apiVersion/kind {resource.get('apiVersion')}/{resource.get('kind')} is not "
                f"{crd['spec']['group']}/{names['kind']}"]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served", True)}
    if version not in served:
        return [f"version {version!r} of {names['kind']} is not served by this CRD (served: {sorted(served)})"]
    schema = strict_schema(served[version]["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors]


def strict_schema(openapi: dict) -> dict:
    """The CRD's OpenAPI v3 schema as a JSON Schema that refuses unknown fields."""
    schema = copy.deepcopy(openapi)
    _close(schema)
    name_rules: dict[str, Any] = {}
    for rule in schema.pop("x-kubernetes-validations", []):
        if match := _NAME_MATCHES.match(rule.get("rule", "")):
            name_rules["pattern"] = match.group(1)
        elif match := _NAME_SIZE.match(rule.get("rule", "")):
            name_rules["maxLength"] = int(match.group(1))
    # metadata is an opaque object in a CRD's schema; a resource needs a name
    metadata = schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
    metadata["required"] = ["name"]
    metadata.setdefault("properties", {})["name"] = {"type": "string", "minLength": 1, **name_rules}
    schema.setdefault("required", [])
    for key in ("apiVersion", "kind", "metadata", "spec"):
        if key not in schema["required"] and key in schema["properties"]:
            schema["required"].append(key)
    return schema


def _close(schema: dict) -> None:
    """Close every object schema below ``schema`` that lists its properties."""
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        schema["additionalProperties"] = False
    children = list(schema.get("properties", {}).values())
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        children += schema.get(key, [])
    for child in children:
        _close(child)
