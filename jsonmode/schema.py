"""Schema input: Pydantic models or raw JSON Schema -> one plain JSON Schema dict.

References are resolved lazily by the compiler (so recursion can be unrolled to a
bounded depth); this module only turns inputs into dicts and looks pointers up.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from .errors import SchemaError, SchemaIssue

JsonSchema = dict[str, Any] | bool


def is_model_class(obj: Any) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a core dependency
        return False
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def to_json_schema(spec: Any) -> JsonSchema:
    """A Pydantic model class, a pydantic ``TypeAdapter``-able type, a dict, a JSON string or a bool."""
    if isinstance(spec, bool):
        return spec
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, str):
        try:
            out = json.loads(spec)
        except json.JSONDecodeError as e:
            raise SchemaError(f"schema string is not valid JSON: {e}") from e
        if not isinstance(out, dict | bool):
            raise SchemaError("a JSON Schema must be an object or a boolean")
        return out
    if is_model_class(spec):
        return spec.model_json_schema()
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(spec).json_schema()
    except Exception as e:  # noqa: BLE001 - report any failure as a schema problem
        raise SchemaError(f"cannot build a JSON Schema from {spec!r}: {e}") from e


def resolve_ref(root: JsonSchema, ref: str, pointer: str) -> tuple[JsonSchema, str]:
    """Local ``$ref`` lookup: ``#``, ``#/json/pointer``, or ``#anchor`` / ``$id`` names."""
    if not ref.startswith("#"):
        # allow refs that name a $defs entry by $id (e.g. "Foo" or "#Foo")
        found = _find_id(root, ref)
        if found is not None:
            return found
        raise SchemaError(
            "remote or relative $ref is not supported",
            [SchemaIssue(pointer + "/$ref", "$ref", f"cannot resolve {ref!r}: only local references (#...)")],
        )
    frag = ref[1:]
    if not frag:
        return root, ""
    if not frag.startswith("/"):
        found = _find_anchor(root, frag)
        if found is None:
            raise SchemaError("unresolvable $ref", [SchemaIssue(pointer + "/$ref", "$ref", f"no anchor {ref!r}")])
        return found
    node: Any = root
    parts = frag[1:].split("/")
    for raw in parts:
        key = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise SchemaError("unresolvable $ref", [SchemaIssue(pointer + "/$ref", "$ref", f"{ref!r} not found")])
    if not isinstance(node, dict | bool):
        raise SchemaError("unresolvable $ref", [SchemaIssue(pointer + "/$ref", "$ref", f"{ref!r} is not a schema")])
    return node, frag


def _walk_dicts(node: Any, path: str):
    if isinstance(node, dict):
        yield node, path
        for k, v in node.items():
            if k in ("enum", "const", "examples", "default"):
                continue
            yield from _walk_dicts(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_dicts(v, f"{path}/{i}")


def _find_anchor(root: JsonSchema, name: str) -> tuple[JsonSchema, str] | None:
    """A location-independent identifier: 2019+ ``$anchor``, draft 6/7 ``$id: "#name"``, draft 4 ``id``."""
    for d, path in _walk_dicts(root, ""):
        if d.get("$anchor") == name or d.get("$id") in (name, "#" + name) or d.get("id") == "#" + name:
            return d, path
    return None


def _find_id(root: JsonSchema, ref: str) -> tuple[JsonSchema, str] | None:
    for d, path in _walk_dicts(root, ""):
        if d is not root and d.get("$id") == ref:
            return d, path
    return None
