"""jsonmode.validate: model text -> typed value, every failure a typed error carrying the text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel, Field, field_validator

from jsonmode import OutputError, TruncatedOutputError, ValidationError, parse_output
from jsonmode.catalog import Invoice, Sentiment
from jsonmode.validate import validate_value

INVOICE_SCHEMA = Invoice.model_json_schema()
GOOD_INVOICE = (
    '{"invoice_number": "A-1", "issue_date": "2024-02-29", "vendor": "ACME", "currency": "EUR", '
    '"items": [{"description": "bolt", "quantity": 3, "unit_price": 0.5}], "total": 1.5}'
)


def test_pydantic_model_returned_typed() -> None:
    value = parse_output(GOOD_INVOICE, Invoice, INVOICE_SCHEMA)
    assert isinstance(value, Invoice)
    assert value.issue_date == dt.date(2024, 2, 29) and value.items[0].quantity == 3
    s = parse_output('{"label": "positive", "confidence": "high"}', Sentiment, Sentiment.model_json_schema())
    assert isinstance(s, Sentiment) and s.label == "positive"


def test_raw_schema_returns_plain_value() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert parse_output('{"a": 1}', schema, schema) == {"a": 1}
    assert parse_output("[1, 2]", {"type": "array"}, {"type": "array"}) == [1, 2]
    assert parse_output("null", True, True) is None


def test_truncated_output_carries_partial_text() -> None:
    partial = '{"invoice_number": "A-1", "issue_da'
    with pytest.raises(TruncatedOutputError) as ei:
        parse_output(partial, Invoice, INVOICE_SCHEMA, complete=False)
    err = ei.value
    assert err.text == partial
    assert isinstance(err, OutputError) and not isinstance(err, ValidationError)
    assert partial in str(err)
    # complete=False wins even when the text happens to parse
    with pytest.raises(TruncatedOutputError):
        parse_output(GOOD_INVOICE, Invoice, INVOICE_SCHEMA, complete=False)


@pytest.mark.parametrize("text", ['{"a": 1', "", "nul", '{"a": 1}}', "{'a': 1}", '{"a": NaN}x'])
def test_malformed_json_is_validation_error_with_raw_text(text: str) -> None:
    with pytest.raises(ValidationError) as ei:
        parse_output(text, {"type": "object"}, {"type": "object"})
    err = ei.value
    assert err.text == text
    assert "not valid JSON" in str(err)
    assert err.detail  # json's own message


@pytest.mark.parametrize(
    "text, path",
    [
        (GOOD_INVOICE.replace('"quantity": 3', '"quantity": 0'), "/items/0/quantity"),
        (GOOD_INVOICE.replace('"currency": "EUR"', '"currency": "XXX"'), "/currency"),
        (GOOD_INVOICE.replace('"2024-02-29"', '"2023-02-29"'), "/issue_date"),
        (GOOD_INVOICE.replace('"vendor": "ACME", ', ""), "/"),
    ],
)
def test_schema_mismatch_names_the_path(text: str, path: str) -> None:
    with pytest.raises(ValidationError) as ei:
        parse_output(text, Invoice, INVOICE_SCHEMA)
    err = ei.value
    assert err.text == text
    assert "does not match the JSON Schema" in str(err)
    assert err.detail.startswith(f"at {path}:"), err.detail


class Strict(BaseModel):
    word: str = Field(max_length=10)

    @field_validator("word")
    @classmethod
    def no_digits(cls, v: str) -> str:
        if any(ch.isdigit() for ch in v):
            raise ValueError("digits are not allowed")
        return v


def test_pydantic_only_failure_is_validation_error() -> None:
    """Valid under the JSON Schema, refused by a Pydantic validator."""
    text = '{"word": "abc1"}'
    with pytest.raises(ValidationError) as ei:
        parse_output(text, Strict, Strict.model_json_schema())
    assert ei.value.text == text and "does not validate as Strict" in str(ei.value)
    assert "digits are not allowed" in ei.value.detail


def test_formats_are_checked() -> None:
    schema = {"type": "string", "format": "date"}
    validate_value("2024-01-31", schema)
    with pytest.raises(Exception):  # noqa: B017 - jsonschema's error
        validate_value("2024-01-32", schema)
    with pytest.raises(ValidationError):
        parse_output('"2024-01-32"', schema, schema)


def test_long_output_is_cut_in_message_but_kept_whole() -> None:
    text = '"' + "x" * 5000
    with pytest.raises(ValidationError) as ei:
        parse_output(text, {"type": "string"}, {"type": "string"})
    assert ei.value.text == text and len(str(ei.value)) < 3000


def test_errors_are_jsonmode_errors() -> None:
    from jsonmode import JsonModeError

    for exc in (TruncatedOutputError("m", "t"), ValidationError("m", "t", "d")):
        assert isinstance(exc, JsonModeError) and isinstance(exc, OutputError)
    e: Any = ValidationError("bad", "TEXT", "why")
    assert str(e).startswith("bad: why") and e.detail == "why" and e.text == "TEXT"
