"""Output -> typed value: ``json.loads`` -> JSON Schema -> Pydantic, each failure a typed error."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import TruncatedOutputError, ValidationError
from .schema import is_model_class

if TYPE_CHECKING:
    import jsonschema

# jsonschema is imported where it is used: with its format extras it loads an RFC 3987 grammar
# (about 1 s and 10^5 objects the cyclic GC then walks), which masks and decoding never need.


@lru_cache(maxsize=256)
def _validator_for(schema_json: str) -> jsonschema.protocols.Validator:
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate_value(value: Any, schema: dict[str, Any] | bool) -> None:
    """Raise jsonschema's error when ``value`` is not an instance of ``schema``."""
    import jsonschema

    v = _validator_for(json.dumps(schema, sort_keys=True))
    err = jsonschema.exceptions.best_match(v.iter_errors(value))
    if err is not None:
        raise err


def parse_output(text: str, spec: Any, schema: dict[str, Any] | bool, *, complete: bool = True) -> Any:
    """Turn the model's text into a value of ``spec`` (a Pydantic model class or a raw schema).

    ``complete`` is False when generation stopped on the token budget: the partial
    text travels in :class:`TruncatedOutputError` so no work is lost.
    """
    import jsonschema

    if not complete:
        raise TruncatedOutputError("the token budget ran out before the JSON value was complete", text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationError("output is not valid JSON", text, str(e)) from e
    try:
        validate_value(value, schema)
    except jsonschema.ValidationError as e:
        path = "/" + "/".join(str(p) for p in e.absolute_path)
        raise ValidationError("output does not match the JSON Schema", text, f"at {path}: {e.message}") from e
    if is_model_class(spec):
        import pydantic

        try:
            return spec.model_validate(value)
        except pydantic.ValidationError as e:
            raise ValidationError(f"output does not validate as {spec.__name__}", text, str(e)) from e
    return value
