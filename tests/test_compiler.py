"""jsonmode.compiler: JSON Schema -> byte language of the JSON texts it admits.

Every accepted text is cross-checked with ``jsonschema`` (the automaton must never accept what
``jsonschema`` rejects); members sampled at random from each automaton are validated the same way.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import pytest
from automata_helpers import sample_texts

from jsonmode import (
    AutomatonTooLarge,
    CompileOptions,
    RecursionLimitError,
    SchemaError,
    UnsatisfiableSchemaError,
    Vocabulary,
    compile_automaton,
)
from jsonmode.compiler import merge_schemas, schema_to_node
from jsonmode.fsm import DFA, LazyDFA, compile_dfa, position_count

# Eager automata of schemas with free values ({} / true) are large (any_depth levels of any JSON):
# matching uses the lazily built automaton; sampling, which needs the whole automaton, uses this depth.
SAMPLE_ANY_DEPTH = 2


@functools.cache
def _lazy(schema_json: str, opts_json: str) -> LazyDFA:
    return LazyDFA(schema_to_node(json.loads(schema_json), CompileOptions(**json.loads(opts_json))))


def dfa(schema: Any, **opts: Any) -> LazyDFA:
    """The schema's language, built as far as the texts it is asked about need."""
    return _lazy(json.dumps(schema), json.dumps(opts, sort_keys=True))


@functools.cache
def _eager(schema_json: str, opts_json: str) -> DFA:
    opts = {"any_depth": SAMPLE_ANY_DEPTH, **json.loads(opts_json)}
    return compile_dfa(schema_to_node(json.loads(schema_json), CompileOptions(**opts)))


def eager_dfa(schema: Any, **opts: Any) -> DFA:
    return _eager(json.dumps(schema), json.dumps(opts, sort_keys=True))


def accepts(schema: Any, text: str, **opts: Any) -> bool:
    return dfa(schema, **opts).matches(text.encode())


def validator(schema: Any) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def js_valid(schema: Any, text: str) -> bool:
    return validator(schema).is_valid(json.loads(text))


def test_pattern_keys_are_canonical_like_every_key() -> None:
    """Keys are written as json.dumps writes them, pattern keys too (one pattern or several):
    an escape json.dumps would not use is refused, the canonical spelling accepted."""
    for pats in ({"^x-": {"type": "integer"}}, {"^x-": {"type": "integer"}, "^y": {"type": "integer"}}):
        schema = {"type": "object", "patternProperties": pats, "additionalProperties": False}
        assert accepts(schema, '{"x-a/b": 1, "x-\\u0001": 2, "x-\\n": 3}')
        assert not accepts(schema, '{"x-\\/": 1}') and not accepts(schema, '{"x-\\u0061": 1}')
        assert js_valid(schema, '{"x-\\/": 1}')  # valid JSON Schema-wise: a spelling we never write


@dataclass
class Case:
    id: str
    schema: Any
    accept: list[str]
    reject: list[str]
    opts: dict[str, Any] = field(default_factory=dict)


OBJ_AB = {
    "type": "object",
    "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
    "required": ["a"],
    "additionalProperties": False,
}

RECURSIVE_NODE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}},
            "required": ["v"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}


def _chain(k: int) -> str:
    t = '{"v": 1}'
    for _ in range(k - 1):
        t = '{"v": 1, "next": ' + t + "}"
    return t


CASES = [
    # ------------------------------------------------------------------ types
    Case("null", {"type": "null"}, ["null"], ["nul", "None", " null", "null ", '"null"']),
    Case("boolean", {"type": "boolean"}, ["true", "false"], ["True", "1", "tru", '"true"']),
    Case(
        "integer",
        {"type": "integer"},
        ["0", "-12", "7", "9223372036854775807", "-9223372036854775808"],
        ["01", "-0", "1.0", "1e3", "+1", "- 1", "", "9223372036854775808"],
    ),
    Case(
        "number",
        {"type": "number"},
        ["0", "1.5", "-2.5e-3", "1E+10", "12", "0.000001", "1e-05"],
        [".5", "1.", "NaN", "Infinity", "01", "-", "1e", "0x10", "-0.0"],
    ),
    Case(
        "string",
        {"type": "string"},
        ['""', '"a b"', '"\\u00e9"', '"\\u00E9"', '"é"', '"\\n\\t\\"\\\\\\/"', '"\\ud83d\\ude42"', '"🙂"'],
        ['"\n"', '"\\x41"', "'a'", '"a', '"\\ud83d"', '"\\u12"', '"\x01"'],
    ),
    Case("type-list", {"type": ["string", "null"]}, ['"x"', "null"], ["1", "true", "[]"]),
    Case("true-schema", True, ["null", "1", '"x"', '{"a": [1, {"b": null}]}', "[]"], ["", "nul", "{a}"]),
    Case("empty-schema", {}, ["[1, 2]", '{"k": "v"}'], ["[1,2]", "{,}"]),
    Case("nullable-is-openapi-only", {"type": "integer", "nullable": True}, ["1"], ["null"]),
    # ------------------------------------------------------------------ enum / const
    Case(
        "enum-mixed",
        {"enum": ["red", 1, None, True, {"a": [1, 2]}, "ünï"]},
        ['"red"', "1", "1.0", "null", "true", '{"a": [1, 2]}', '"ünï"'],
        ['"blue"', "2", '{"a": [1,2]}', "false", '"RED"', "1.5"],
    ),
    Case("enum-float-int", {"enum": [2.0, 3.5]}, ["2.0", "2", "3.5"], ["3", "2.5"]),
    Case("const", {"const": "x"}, ['"x"'], ['"y"', "null"]),
    Case("const-object", {"const": {"k": [True, None]}}, ['{"k": [true, null]}'], ['{"k": [true]}']),
    Case("enum-with-type", {"type": "string", "enum": ["a", 1, "b"]}, ['"a"', '"b"'], ["1", '"c"']),
    Case("enum-with-bound", {"enum": [1, 5, 9], "minimum": 4}, ["5", "9"], ["1"]),
    Case("const-and-enum", {"const": "a", "enum": ["a", "b"]}, ['"a"'], ['"b"']),
    # ------------------------------------------------------------------ objects
    Case(
        "object-schema-order",
        OBJ_AB,
        ['{"a": "x"}', '{"b": 1, "a": "x"}', '{"b": -3, "a": ""}'],
        ['{"a": "x", "b": 1}', "{}", '{"b": 1}', '{"a": "x", "c": 1}', '{"a":"x"}', '{"a": 1}', '{ "a": "x"}'],
    ),
    Case(
        "object-nested",
        {
            "type": "object",
            "properties": {
                "p": {
                    "type": "object",
                    "properties": {"q": {"type": "boolean"}, "r": {"type": "null"}},
                    "required": ["q"],
                    "additionalProperties": False,
                }
            },
            "required": ["p"],
            "additionalProperties": False,
        },
        ['{"p": {"q": true}}', '{"p": {"q": false, "r": null}}'],
        ['{"p": {}}', '{"p": {"q": 1}}', '{"p": {"r": null, "q": true}}', "{}", '{"p": {"q": true}, "x": 1}'],
    ),
    Case(
        "object-all-optional",
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
         "additionalProperties": False},
        ["{}", '{"a": 1}', '{"b": 1}', '{"c": 1}', '{"a": 1, "c": 3}', '{"a": 1, "b": 2, "c": 3}'],
        ['{"c": 1, "a": 1}', '{"a": 1, }', '{, "a": 1}', '{"a": 1 "b": 2}'],
    ),
    Case(
        "required-not-declared",
        {"type": "object", "required": ["z"], "additionalProperties": {"type": "integer"}},
        ['{"z": 1}', '{"z": 1, "y": 2}'],
        ["{}", '{"z": "s"}', '{"y": 2, "z": 1}'],
    ),
    Case(
        "additionalProperties-true",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": True},
        ['{"a": 1, "zz": [1, {"x": null}]}', '{"zz": "s"}', '{"a": 1, "b": 2, "c": "3"}', "{}"],
        ['{"zz": 1, "a": 1}', '{"a": "s"}', '{"a": 1, "a": 2}'],
    ),
    Case(
        "additionalProperties-schema",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
        ['{"a": 1, "b": "x"}', '{"b": "x", "c": "y"}', '{"é": "x"}', '{"\\n\\u0001": "x"}'],
        ['{"b": 1}', '{"a": "x"}', '{"a": 1, "b": null}', '{"\\u00e9": "x"}', '{"\\u0061": "x"}'],
    ),
    Case(
        "additionalProperties-false",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
        ["{}", '{"a": 1}'],
        ['{"a": 1, "b": 2}', '{"b": 2}'],
    ),
    Case(
        "additionalProperties-default-off",
        {"type": "object", "properties": {"a": {"type": "integer"}}},
        ['{"a": 1}', "{}"],
        ['{"a": 1, "b": 2}'],
        {"additional_properties": False},
    ),
    Case(
        "additionalProperties-default-on",
        {"type": "object", "properties": {"a": {"type": "integer"}}},
        ['{"a": 1}', '{"a": 1, "b": 2}', '{"b": [true]}'],
        ['{"a": true}'],
    ),
    Case(
        "patternProperties",
        {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False},
        ["{}", '{"x-a": 1, "x-b": 2}', '{"x-": 0}'],
        ['{"y": 1}', '{"x-a": "s"}', '{"ax-": 1}'],
    ),
    Case(
        "patternProperties-and-declared",
        {
            "type": "object",
            "properties": {"x-id": {"type": "integer", "minimum": 0}},
            "patternProperties": {"^x-": {"type": "integer", "maximum": 10}},
            "additionalProperties": {"type": "boolean"},
        },
        ['{"x-id": 5}', '{"x-id": 0, "x-n": 10, "other": true}', '{"other": false}'],
        ['{"x-id": 11}', '{"x-id": -1}', '{"x-n": 11}', '{"other": 1}'],
    ),
    Case(
        "min-max-properties",
        {"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {"type": "integer"}},
        ['{"a": 1}', '{"a": 1, "b": 2}'],
        ["{}", '{"a": 1, "b": 2, "c": 3}'],
    ),
    Case(
        "min-properties-with-optional",
        {"type": "object", "properties": {"a": {"type": "null"}, "b": {"type": "null"}}, "minProperties": 1,
         "additionalProperties": False},
        ['{"a": null}', '{"b": null}', '{"a": null, "b": null}'],
        ["{}"],
    ),
    # ------------------------------------------------------------------ arrays
    Case(
        "array-items-bounds",
        {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
        ["[1]", "[1, 2, 3]", "[-1, 0]"],
        ["[]", "[1, 2, 3, 4]", "[1,2]", '["a"]', "[1, ]", "[ 1]", "[1 , 2]"],
    ),
    Case("array-any", {"type": "array"}, ["[]", '[1, "a", null, [true], {"k": 1}]'], ["[", "[,]", "[1,]"]),
    Case("array-min-only", {"type": "array", "items": {"type": "null"}, "minItems": 2},
         ["[null, null]", "[null, null, null, null]"], ["[null]", "[]"]),
    Case(
        "prefixItems-closed",
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
        ["[]", '["a"]', '["a", 1]'],
        ['["a", 1, 2]', "[1]", '[1, "a"]'],
    ),
    Case(
        "prefixItems-open",
        {"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "boolean"}, "minItems": 2},
        ['["a", true]', '["a", true, false]'],
        ['["a"]', '["a", 1]', "[true, true]"],
    ),
    Case(
        "prefixItems-default-items",
        {"type": "array", "prefixItems": [{"const": 1}], "maxItems": 2},
        ["[]", "[1]", '[1, "anything"]'],
        ["[2]", "[1, 2, 3]"],
    ),
    Case(
        "draft4-tuple-items",
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "array", "items": [{"type": "string"}],
         "additionalItems": False},
        ["[]", '["a"]'],
        ['["a", 1]', "[1]"],
    ),
    Case("array-max-zero", {"type": "array", "maxItems": 0}, ["[]"], ["[1]"]),
    # ------------------------------------------------------------------ combinators
    Case(
        "anyOf",
        {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]},
        ["1", '"ab"', '""'],
        ['"abc"', "null", "1.5"],
    ),
    Case(
        "anyOf-with-base",
        {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "integer"}},
         "anyOf": [{"required": ["a"]}, {"maxProperties": 0}]},
        ['{"a": 1}', "{}"],
        ['{"b": 1}'],
    ),
    Case(
        "oneOf-disjoint",
        {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {"type": "integer"}}]},
        ['"s"', "null", "[1, 2]"],
        ["1", '["s"]'],
    ),
    Case(
        "allOf-objects",
        {"allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]},
        ]},
        ['{"a": 1, "b": "x"}'],
        ['{"a": 1}', '{"b": "x"}', '{"b": "x", "a": 1}', '{"a": "1", "b": "x"}'],
    ),
    Case("allOf-numbers", {"allOf": [{"type": "integer", "minimum": 0}, {"maximum": 5}]}, ["0", "5", "3"],
         ["6", "-1", "2.5"]),
    Case("allOf-types", {"allOf": [{"type": ["number", "string"]}, {"type": ["integer", "null"]}]}, ["1", "-7"],
         ['"a"', "null", "1.5"]),
    Case(
        "allOf-unmergeable-items",
        {"allOf": [{"type": "array", "items": {"type": "integer", "minimum": 0}},
                   {"type": "array", "items": {"type": "integer", "maximum": 3}}]},
        ["[]", "[0, 3]", "[1]"],
        ["[4]", "[-1]", "[0, 4]"],
    ),
    Case(
        "allOf-patterns",
        {"allOf": [{"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "z$"}, {"maxLength": 4}]},
        ['"az"', '"abcz"'],
        ['"abcdz"', '"za"', '"a"'],
    ),
    Case(
        "allOf-additionalProperties-meets-properties",
        {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                   {"type": "object", "properties": {"b": {"type": "integer"}}, "additionalProperties": False}]},
        ['{"b": 1}', "{}"],
        ['{"a": 1}', '{"a": 1, "b": 1}'],
    ),
    Case(
        "allOf-unknown-keywords-merge",
        {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "x-doc": "one"},
                   {"x-doc": "two", "properties": {"a": {"minimum": 0}}}]},
        ['{"a": 1}', "{}", '{"a": 1, "z": [true]}'],
        ['{"a": -1}', '{"a": "1"}'],
    ),
    Case(
        "allOf-prefixItems-meet-items",
        {"allOf": [{"type": "array", "prefixItems": [{"type": "string"}]},
                   {"type": "array", "items": {"type": ["integer", "string"]}}]},
        ['["a", 1]', '["a"]', "[]"],
        ["[1]", '["a", null]', '["a", 1.5]'],
    ),
    Case(
        "allOf-patternProperties-one-side",
        {"allOf": [{"type": "object", "properties": {"n": {"type": "integer"}},
                    "patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
                   {"type": "object", "properties": {"xa": {"minimum": 5}}}]},
        ['{"n": 1}', '{"n": 1, "xa": 7}', '{"xb": 3}', '{"y": "s"}'],
        ['{"xa": 3}', '{"xa": "s"}', '{"y": 1}', '{"n": "s"}'],
    ),
    Case(
        "allOf-patternProperties-vs-closed-object",
        {"allOf": [{"type": "object", "properties": {"xa": {}, "b": {}}, "additionalProperties": False},
                   {"type": "object", "patternProperties": {"^x": {"type": "integer"}},
                    "additionalProperties": {"type": "string"}}]},
        ['{"xa": 1, "b": "s"}', "{}"],
        ['{"xa": "s"}', '{"b": 1}', '{"xc": 1}', '{"c": "s"}'],
    ),
    Case(
        "allOf-patternProperties-vs-additional-schema",
        {"allOf": [{"type": "object", "properties": {"b": {"type": "string"}},
                    "additionalProperties": {"type": "integer"}},
                   {"type": "object", "patternProperties": {"^x": {"minimum": 3}}}]},
        ['{"b": "s", "x1": 5}', '{"y": 1}'],
        ['{"x1": 2}', '{"x1": "s"}', '{"y": "s"}', '{"b": 1}'],
    ),
    Case(
        "allOf-ref-with-siblings-merges",
        {"$defs": {"o": {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}},
         "type": "object",
         "properties": {"p": {"allOf": [{"type": "object", "properties": {"b": {"type": "integer"}},
                                         "additionalProperties": False},
                                        {"type": "object", "$ref": "#/$defs/o"}]},
                        "s": {"allOf": [{"type": "string"}, {"type": "object", "$ref": "#/$defs/o"}]}}},
        ['{"p": {}}', "{}"],
        ['{"p": {"a": 1}}', '{"p": {"b": 1}}', '{"s": "x"}', '{"s": {}}'],
    ),
    Case(
        "patternProperties-overlapping",
        {"type": "object", "patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 3}},
         "additionalProperties": False},
        ['{"ab": 3}', '{"a": 1}', '{"b": 5}', '{"xb": "s"}', "{}"],
        ['{"ab": 2}', '{"ab": "s"}', '{"c": 1}', '{"a": "s"}', '{"b": 1}'],
    ),
    Case(
        "propertyNames",
        {"type": "object", "propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3},
         "properties": {"ab": {"type": "integer"}, "Bad": {"type": "integer"}},
         "additionalProperties": {"type": "boolean"}},
        ["{}", '{"ab": 1}', '{"ab": 1, "xyz": true}', '{"q": false}'],
        ['{"Bad": 1}', '{"xyzw": true}', '{"X": true}', '{"ab": 1, "A": true}'],
    ),
    Case(
        "propertyNames-enum-with-patternProperties",
        {"type": "object", "propertyNames": {"enum": ["a1", "b"]},
         "patternProperties": {"^a": {"type": "integer"}}},
        ['{"a1": 1}', '{"b": [1]}', '{"a1": 1, "b": null}'],
        ['{"a1": "s"}', '{"a2": 1}', '{"c": 1}'],
    ),
    # ------------------------------------------------------------------ references
    Case(
        "ref-defs",
        {"$defs": {"pos": {"type": "integer", "minimum": 1}}, "type": "object",
         "properties": {"n": {"$ref": "#/$defs/pos"}}, "required": ["n"], "additionalProperties": False},
        ['{"n": 1}', '{"n": 99}'],
        ['{"n": 0}', '{"n": "1"}'],
    ),
    Case("ref-siblings", {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 2},
         ['"ab"', '""'], ['"abc"', "1"]),
    Case("ref-definitions", {"definitions": {"x": {"type": "boolean"}}, "$ref": "#/definitions/x"},
         ["true"], ["1"]),
    Case("ref-anchor", {"$defs": {"x": {"$anchor": "nul", "type": "null"}}, "$ref": "#nul"}, ["null"], ["1"]),
    Case("ref-draft4-id", {"$schema": "http://json-schema.org/draft-04/schema#",
                           "definitions": {"x": {"id": "#nul", "type": "null"}},
                           "type": "array", "items": {"$ref": "#nul"}}, ["[]", "[null]"], ["[1]"]),
    Case("ref-escaped-pointer", {"$defs": {"a/b": {"const": 1}, "c~d": {"const": 2}},
                                 "anyOf": [{"$ref": "#/$defs/a~1b"}, {"$ref": "#/$defs/c~0d"}]},
         ["1", "2"], ["3"]),
    Case("ref-chain", {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"type": "integer", "maximum": 3}},
                       "$ref": "#/$defs/a"}, ["3"], ["4"]),
    Case("recursion-default-depth", RECURSIVE_NODE, [_chain(1), _chain(2), _chain(3)], [_chain(4), _chain(5)]),
    Case("recursion-depth-5", RECURSIVE_NODE, [_chain(5)], [_chain(6)], {"max_recursion_depth": 5}),
    Case("recursion-depth-1", RECURSIVE_NODE, [_chain(1)], [_chain(2)], {"max_recursion_depth": 1}),
    Case("recursion-root", {"type": "array", "items": {"$ref": "#"}, "maxItems": 2},
         ["[]", "[[]]", "[[], [[]]]", "[[[[]]]]"], ["[[[[[]]]]]", "[[], [], []]"]),
    # ------------------------------------------------------------------ not, if/then/else
    Case("not-type", {"not": {"type": "string"}}, ["1", "null", "[]", "{}", "true"], ['"a"']),
    Case("not-type-list", {"type": ["integer", "string", "null"], "not": {"type": ["null", "string"]}},
         ["1", "-7"], ['"x"', "null"]),
    Case("not-false", {"type": "integer", "not": False}, ["1"], ["null"]),
    Case(
        "oneOf-const-discriminator",
        {"oneOf": [
            {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "string"}}, "required": ["kind"]},
        ]},
        ['{"kind": "a", "x": 1}', '{"kind": "b", "y": "s"}', '{"kind": "a"}'],
        ['{"kind": "c"}', '{"x": 1}', "{}"],
    ),
    # ------------------------------------------------------------------ numeric constraints
    Case("int-range", {"type": "integer", "minimum": -3, "maximum": 12}, ["-3", "0", "12", "9"],
         ["-4", "13", "100", "-0"]),
    Case("int-exclusive", {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3}, ["1", "2"],
         ["0", "3"]),
    Case("int-draft4-exclusive", {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer",
                                  "minimum": 0, "exclusiveMinimum": True, "maximum": 2}, ["1", "2"], ["0", "3"]),
    Case("int-multiple", {"type": "integer", "multipleOf": 3, "minimum": 0, "maximum": 10}, ["0", "3", "9"],
         ["1", "12", "-3"]),
    Case("number-range", {"type": "number", "minimum": 0.5, "maximum": 2}, ["0.5", "1", "1.25", "2", "2.0"],
         ["0.49", "2.01", "-1", "1e0"]),
    Case("number-exclusive", {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, ["0.5", "0.999"],
         ["0", "1", "1.0", "0.0"]),
    Case("number-multiple", {"type": "number", "multipleOf": 0.25, "minimum": 0, "maximum": 1},
         ["0", "0.25", "0.5", "1.0", "0.75"], ["0.3", "1.25"]),
    Case("integer-float-bound", {"type": "integer", "minimum": 0.5, "maximum": 2.5}, ["1", "2"], ["0", "3"]),
    # ------------------------------------------------------------------ string constraints
    Case(
        "string-length",
        {"type": "string", "minLength": 2, "maxLength": 3},
        ['"ab"', '"abc"', '"éé"', '"\\u00e9\\n"', '"日本語"'],
        ['"a"', '"abcd"', '""', '"\\u00e9"'],
    ),
    Case("string-pattern", {"type": "string", "pattern": "^[a-z]+[0-9]?$"}, ['"abc"', '"a1"'],
         ['"ab12"', '""', '"A"', '"1"']),
    Case("string-pattern-search", {"type": "string", "pattern": "[0-9]{2}"}, ['"x12y"', '"99"'],
         ['"x1y"', '""']),
    Case("string-pattern-and-length", {"type": "string", "pattern": "^a+$", "minLength": 2, "maxLength": 3},
         ['"aa"', '"aaa"'], ['"a"', '"aaaa"', '"ab"']),
    Case("string-min-gt-max", {"type": ["string", "null"], "minLength": 3, "maxLength": 2}, ["null"], ['"abc"']),
    # ------------------------------------------------------------------ formats
    Case("format-date", {"type": "string", "format": "date"}, ['"2024-02-29"', '"0001-01-01"'],
         ['"2023-02-29"', '"2024-13-01"', '"24-01-01"', '"2024-1-1"']),
    Case("format-date-time", {"type": "string", "format": "date-time"},
         ['"2024-01-02T03:04:05Z"', '"2024-01-02T03:04:05.123+02:00"'],
         ['"2024-01-02T03:04:05"', '"2024-01-02 03:04:05Z"', '"2024-01-02T24:00:00Z"']),
    Case("format-uuid", {"type": "string", "format": "uuid"},
         ['"12345678-1234-1234-1234-123456789abc"', '"12345678-1234-1234-1234-123456789ABC"'],
         ['"12345678-1234-1234-1234-123456789ab"', '"12345678123412341234123456789abc"']),
    Case("format-ipv4", {"type": "string", "format": "ipv4"}, ['"127.0.0.1"', '"255.255.255.255"'],
         ['"256.1.1.1"', '"01.1.1.1"', '"1.1.1"']),
    Case("format-email", {"type": "string", "format": "email"}, ['"a.b@example.com"'], ['"ab"', '"a@"', '"@b"']),
    Case("format-with-length", {"type": "string", "format": "date", "minLength": 10}, ['"2024-01-01"'],
         ['"x"']),
    # a format no draft defines (OpenAPI's byte, a project's url) asserts nothing, as in jsonschema
    Case("format-annotation", {"type": "string", "format": "byte", "maxLength": 4}, ['"abc"', '"!!"', '""'],
         ['"abcde"', "1"]),
    Case("format-annotation-url", {"type": ["string", "null"], "format": "url"}, ['"not a url"', "null"], ["1"]),
    # ------------------------------------------------------------------ whitespace modes
    Case(
        "ws-compact",
        {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}},
        ['{"a":[1,2]}', "{}", '{"a":[]}'],
        ['{"a": [1, 2]}', '{"a":[1, 2]}', '{ "a":[1,2]}'],
        {"whitespace": "compact"},
    ),
    Case(
        "ws-flexible",
        {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}},
         "additionalProperties": False},
        ['{"a":[1,2]}', '{"a": [1, 2]}', '{ "a" :\n\t[ 1 ,2 ]\r\n}', "{}", "{ }", "{\n}", '{"a": []}',
         '{"a":' + " " * 8 + "[]}"],
        ['{"a":' + " " * 9 + "[]}", ' {"a": []}', '{"a": []} ', '{"a": [1,, 2]}', '{"a":\x0b[]}'],
        {"whitespace": "flexible"},
    ),
    Case(
        "ws-flexible-short-runs",
        {"type": "array", "items": {"type": "integer"}},
        ["[1,  2]", "[ 1 , 2 ]"],
        ["[1,   2]", "[1   , 2]"],
        {"whitespace": "flexible", "max_whitespace": 2},
    ),
    Case(
        "unique-enum-items",
        {"type": "array", "items": {"enum": ["a", "b", 1]}, "uniqueItems": True},
        ["[]", '["a"]', '["b", "a"]', '["a", 1, "b"]', '[1.0, "a"]', '["b", 1]'],
        ['["a", "a"]', '["a", "b", "a"]', "[1, 1.0]", "[1.0, 1]", '["c"]', '["a", 1, "b", 1]'],
    ),
    Case(
        "unique-literal-set-bounded",  # pydantic's set[Literal[...]] with a size bound
        {"type": "array", "items": {"type": "string", "enum": ["x", "y", "z", "w"]}, "uniqueItems": True,
         "minItems": 1, "maxItems": 2},
        ['["x"]', '["w", "z"]', '["y", "x"]'],
        ["[]", '["x", "x"]', '["x", "y", "z"]', '["v"]'],
    ),
    Case(
        "unique-items-of-one-of-consts",  # members with a title each; jsonschema decides membership
        {"type": "array", "uniqueItems": True,
         "items": {"oneOf": [{"const": "r", "title": "Red"}, {"const": "g"}, {"enum": ["b", "g"]}]}},
        ['["r", "b"]', '["b"]', "[]"],
        ['["r", "r"]', '["g"]', '["x"]'],  # "g" matches two branches: valid for none
    ),
    Case(
        "unique-booleans-and-null",
        {"type": "array", "items": {"type": ["boolean", "null"]}, "uniqueItems": True},
        ["[]", "[true, false, null]", "[null, true]"],
        ["[true, true]", "[null, false, null]", "[1]", "[true, false, null, true]"],
    ),
    Case(
        "unique-items-checked-against-the-item-schema",  # the enum meets the rest of the item schema
        {"$defs": {"v": {"enum": [1, 2, "s", 3.5], "type": "integer"}},
         "type": "array", "items": {"$ref": "#/$defs/v"}, "uniqueItems": True},
        ["[1, 2]", "[2]", "[2, 1.0]"],
        ["[1, 1]", '["s"]', "[3.5]", "[2, 2.0]"],
    ),
    Case(
        "unique-object-values",
        {"type": "array", "items": {"enum": [{"k": 1}, {"k": [True]}, [1]]}, "uniqueItems": True},
        ['[{"k": 1}, [1]]', '[{"k": [true]}, {"k": 1}]'],
        ['[{"k": 1}, {"k": 1}]', '[[1], [1]]', '[{"k": [1]}]'],
    ),
    Case(
        "oneOf-overlapping-string-patterns",  # exactly one branch: "admin" alone, not "admin-maker"
        {"type": "string", "oneOf": [{"pattern": "customer"}, {"pattern": "maker"}, {"pattern": "admin"}]},
        ['"customer"', '"xadminx"', '"adminadmin"', '"maker"'],
        ['"admin-maker"', '"customermaker"', '"none"', "5", '"\\u0061dmin"'],
    ),
    Case(
        "oneOf-string-minus-enum",
        {"type": "object", "properties": {"v": {"oneOf": [{"type": "string"}, {"enum": ["a", "é"]},
                                                         {"type": "string", "format": "date"}]}}},
        ['{"v": "b"}', '{"v": ""}', '{"v": "ab"}', '{"v": "e"}'],
        ['{"v": "a"}', '{"v": "é"}', '{"v": "2024-01-31"}', '{"v": 2}', '{"v": null}', '{"v": "\\u0062"}'],
    ),
    Case(
        "not-integer-values",  # a port range less the reserved ports (Github o57622)
        {"type": "integer", "minimum": 1024, "maximum": 65535, "not": {"enum": [6379, 6380.0, 43215, "x", True]}},
        ["1024", "6378", "6381", "65535", "43216"],
        ["6379", "6380", "43215", "1023", "65536", "6380.0", '"x"', "true"],
    ),
    Case(
        "not-integer-const-typed",
        {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 5, "not": {"const": 10, "type": "integer"}}}},
        ['{"n": 5}', '{"n": 0}', '{"n": -10}', '{"n": 15}'],
        ['{"n": 10}', '{"n": 7}', '{"n": 10.0}'],
    ),
    Case(
        "contains",  # at least one item matches, wherever it stands
        {"type": "array", "items": {"type": "integer"}, "contains": {"minimum": 5}},
        ["[5]", "[1, 7]", "[9, 1, 2]", "[1, 2, 3, 6]"],
        ["[]", "[1]", "[1, 2, 4]", '["x", 7]', "[7, 1.5]"],
    ),
    Case(
        "min-contains-with-max-items",
        {"type": "array", "contains": {"const": "x"}, "minContains": 2, "maxItems": 3},
        ['["x", "x"]', '["x", 1, "x"]', '[null, "x", "x"]'],
        ['["x"]', '["x", 1, 2]', '["x", "x", "x", "x"]', "[]"],
    ),
    Case(
        "contains-min-contains-zero-asserts-nothing",
        {"type": "array", "contains": {"const": "x"}, "minContains": 0, "items": {"type": "integer"}},
        ["[]", "[1, 2]"],
        ['["x"]'],
    ),
    Case(
        "allOf-of-not-required-beside-anyOf",  # "never O with B, never O with E" (Github o62895)
        {"type": "object", "additionalProperties": False,
         "properties": {"O": {"type": "integer"}, "B": {"type": "integer"}, "E": {"type": "integer"},
                        "M": {"type": "string"}},
         "allOf": [{"not": {"required": ["O", "B"]}}, {"not": {"required": ["O", "E"]}}],
         "anyOf": [{"required": ["M"]}, {"required": ["O"]}, {"required": ["B", "E"]}]},
        ['{"O": 1}', '{"B": 1, "E": 2}', '{"M": "m"}', '{"O": 1, "M": "x"}', '{"B": 1, "E": 2, "M": "m"}'],
        ["{}", '{"O": 1, "B": 2}', '{"O": 1, "E": 2}', '{"B": 1}', '{"O": 1, "B": 2, "E": 3}'],
    ),
    Case(
        "if-through-a-one-branch-oneOf",  # Github o3895: if: {properties: {type: {oneOf: [{pattern}]}}}
        {"type": "object", "properties": {"type": {"type": "string"}, "c": {"type": "integer"}},
         "if": {"properties": {"type": {"oneOf": [{"pattern": "^tuple$"}]}}},
         "then": {"required": ["type", "c"]}, "else": {"required": ["type"]}},
        ['{"type": "tuple", "c": 1}', '{"type": "int"}', '{"type": "int", "c": 2}'],
        ['{"type": "tuple"}', '{"c": 1}', "{}"],
    ),
    Case(
        "allOf-of-disjoint-oneOfs-merges-as-anyOf",  # (Github o3895: a $ref'd oneOf of patterns, then one more)
        {"$defs": {"T": {"oneOf": [{"type": "string", "pattern": "^a"}, {"type": "integer"}]}},
         "allOf": [{"$ref": "#/$defs/T"}, {"oneOf": [{"pattern": "b$"}]}]},
        ['"ab"', '"axb"', "5", "-3"],
        ['"ba"', '"a"', '"b"', "null", "1.5"],
    ),
    Case("ws-default-is-json-dumps", {"type": "object", "additionalProperties": {"type": "array"}},
         [json.dumps({"k": [1, {"x": None}], "l": []})], [json.dumps({"k": [1]}, indent=1)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_schema_table(case: Case) -> None:
    d = dfa(case.schema, **case.opts)
    for text in case.accept:
        assert d.matches(text.encode()), f"should accept {text!r}"
        assert js_valid(case.schema, text), f"test bug: jsonschema rejects {text!r}"
    for text in case.reject:
        assert not d.matches(text.encode()), f"should reject {text!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sampled_members_are_valid(case: Case) -> None:
    """Random members of each automaton decode as UTF-8 JSON that ``jsonschema`` accepts."""
    d = eager_dfa(case.schema, **case.opts)
    v = validator(case.schema)
    for raw in sample_texts(d, 25, seed=hash(case.id) & 0xFFFF):
        text = raw.decode("utf-8")
        value = json.loads(text)
        errors = [e.message for e in v.iter_errors(value)]
        assert not errors, (text, errors)


# --------------------------------------------------------------------------- CompileOptions


def test_compile_options_defaults_and_bad_whitespace() -> None:
    o = CompileOptions()
    assert (o.whitespace, o.max_recursion_depth, o.additional_properties, o.lenient) == ("default", 3, True, False)
    assert o.as_dict()["max_whitespace"] == 8
    with pytest.raises(ValueError, match="whitespace"):
        schema_to_node({"type": "null"}, CompileOptions(whitespace="pretty"))


def test_any_depth_bounds_free_values() -> None:
    d = CompileOptions().any_depth
    assert d >= 3
    assert accepts({}, "[" * d + "1" + "]" * d) and not accepts({}, "[" * (d + 1) + "1" + "]" * (d + 1))
    assert accepts({}, '{"a": [{"b": 1}]}') and accepts({"type": "object"}, '{"a": {"b": {"c": [null]}}}')
    assert accepts({}, "[[[1]]]", any_depth=3) and not accepts({}, "[[[[1]]]]", any_depth=3)
    assert accepts({}, "1", any_depth=0) and not accepts({}, "[]", any_depth=0)


# --------------------------------------------------------------------------- errors


UNSUPPORTED = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "meta": {"type": "object", "propertyNames": {"pattern": "(?=a)"}, "unevaluatedProperties": False},
        "xs": {"type": "array", "contains": {"type": "integer"}, "maxContains": 2},
        "color": {"type": "string", "format": "color"},
        "code": {"type": "string", "pattern": "(?=a)b"},
    },
    "dependentSchemas": {"a": 5},
}
UNSUPPORTED_POINTERS = {
    "/dependentSchemas/a",
    "/properties/tags/uniqueItems",
    "/properties/meta/unevaluatedProperties",
    "/properties/meta/propertyNames/pattern",
    "/properties/xs/maxContains",
    "/properties/color/format",
    "/properties/code/pattern",
}


def test_schema_error_lists_every_unsupported_keyword() -> None:
    with pytest.raises(SchemaError) as ei:
        schema_to_node(UNSUPPORTED)
    err = ei.value
    assert type(err) is SchemaError
    assert {i.pointer for i in err.issues} == UNSUPPORTED_POINTERS
    keywords = {i.keyword for i in err.issues}
    assert {"uniqueItems", "unevaluatedProperties", "maxContains", "format",
            "pattern", "dependentSchemas"} <= keywords
    for p in UNSUPPORTED_POINTERS:  # the message names each one
        assert p in str(err)


def test_schema_error_from_compile_automaton(trained_bpe_tokenizer: Any) -> None:
    vocab = Vocabulary.from_tokenizer(trained_bpe_tokenizer)
    with pytest.raises(SchemaError, match="/properties/tags/uniqueItems"):
        compile_automaton({"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}, vocab)


def test_unique_items_allowed_when_at_most_one_item() -> None:
    assert accepts({"type": "array", "uniqueItems": True, "maxItems": 1}, "[1]")
    assert accepts({"type": "array", "uniqueItems": True, "items": False}, "[]")
    assert accepts({"type": "string", "uniqueItems": True}, '"a"')  # an array keyword: no array here


@pytest.mark.parametrize(("schema", "pointer", "message"), [
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "/uniqueItems", "finite set of item values"),
    ({"type": "array", "uniqueItems": True}, "/uniqueItems", "finite set of item values"),
    ({"type": "array", "prefixItems": [{"const": 1}], "items": {"enum": [2]}, "uniqueItems": True}, "/uniqueItems",
     "beside prefixItems"),
    ({"type": "array", "items": {"enum": list(range(13))}, "uniqueItems": True}, "/uniqueItems",
     r"13 item values needs 8,192 automaton nodes .*limit 4,096"),
    ({"type": "array", "contains": {"const": 1}, "maxContains": 2}, "/maxContains", "maxContains is not supported"),
    ({"type": "array", "prefixItems": [{}], "contains": {"const": 1}}, "/contains", "beside prefixItems"),
    ({"type": "array", "items": {"enum": [1, 2]}, "uniqueItems": True, "contains": {"const": 1}}, "/contains",
     "beside uniqueItems"),
    ({"type": "array", "contains": {"const": 1}, "minContains": 3, "maxItems": 2000}, "/contains",
     "needs 8,004 automaton nodes"),
])
def test_array_keyword_refusals_name_the_keyword(schema: Any, pointer: str, message: str) -> None:
    """uniqueItems beyond small finite item domains, maxContains, contains beside prefixItems,
    uniqueItems or past its node limit: one issue, at the keyword's pointer, naming the reason."""
    with pytest.raises(SchemaError, match=message) as ei:
        schema_to_node(schema)
    assert [i.pointer for i in ei.value.issues] == [pointer]


def test_contains_nothing_can_match_is_unsatisfiable() -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node({"type": "array", "items": {"type": "string"}, "contains": {"type": "integer"}})
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node({"type": "array", "contains": {}, "minContains": 3, "maxItems": 2})


def test_unique_items_over_many_values_fits_with_a_small_max_items() -> None:
    schema = {"type": "array", "items": {"enum": list(range(40))}, "uniqueItems": True, "maxItems": 2}
    assert accepts(schema, "[39, 0]")
    assert not accepts(schema, "[7, 7]")
    assert not accepts(schema, "[1, 2, 3]")


def test_unique_items_unsatisfiable_min_items() -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node({"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True, "minItems": 3})


def test_unevaluated_true_is_fine() -> None:
    assert accepts({"type": "object", "unevaluatedProperties": True}, "{}")


def test_unknown_keywords_are_ignored() -> None:
    assert accepts({"type": "integer", "x-vendor": {"whatever": 1}}, "5")


def test_unresolvable_ref() -> None:
    with pytest.raises(SchemaError, match="not found"):
        schema_to_node({"$ref": "#/$defs/missing"})
    with pytest.raises(SchemaError) as ei:
        schema_to_node({"properties": {"r": {"$ref": "https://example.com/s.json"}}, "type": "object"})
    assert ei.value.issues[0].pointer == "/properties/r/$ref"


def test_lenient_gives_warnings_instead() -> None:
    with pytest.warns(UserWarning) as record:
        node = schema_to_node(
            {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True},
                                              "color": {"type": "string", "format": "color"}}},
            CompileOptions(lenient=True),
        )
    messages = [str(w.message) for w in record]
    assert any("/properties/tags/uniqueItems" in m for m in messages)
    assert any("/properties/color/format" in m for m in messages)
    d = LazyDFA(node)
    assert d.matches(b'{"tags": [1, 1], "color": "anything"}')  # not enforced, everything else is


def test_lenient_unsupported_pattern_is_not_enforced() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(?=a)b"}}, "required": ["code"]}
    with pytest.warns(UserWarning, match="/properties/code/pattern"):
        node = schema_to_node(schema, CompileOptions(lenient=True))
    assert LazyDFA(node).matches(b'{"code": "anything"}')


def test_issue_pointer_inside_ref_target_is_a_json_pointer() -> None:
    schema = {"$defs": {"D": {"type": "object", "unevaluatedProperties": False}}, "type": "object",
              "properties": {"d": {"$ref": "#/$defs/D"}}}
    with pytest.raises(SchemaError) as ei:
        schema_to_node(schema)
    assert [i.pointer for i in ei.value.issues] == ["/$defs/D/unevaluatedProperties"]


def _embedded_lazies(node: Any) -> int:
    """Distinct nested lazy automata a compiled language embeds (each a level of subset construction)."""
    return len({id(a) for a in LazyDFA(node).instances if isinstance(a, LazyDFA)})


def test_a_definition_used_once_is_inlined_a_shared_one_embedded() -> None:
    point = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
             "required": ["x", "y"], "additionalProperties": False}
    once = {"$defs": {"P": point}, "type": "object", "properties": {"a": {"$ref": "#/$defs/P"}},
            "required": ["a"], "additionalProperties": False}
    twice = {**once, "properties": {"a": {"$ref": "#/$defs/P"}, "b": {"$ref": "#/$defs/P"}}}
    assert _embedded_lazies(schema_to_node(once)) == 0
    assert _embedded_lazies(schema_to_node(twice)) == 1
    assert LazyDFA(schema_to_node(once)).matches(b'{"a": {"x": 1, "y": 2}}')
    shared = LazyDFA(schema_to_node(twice))
    assert shared.matches(b'{"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 4}}')
    assert not shared.matches(b'{"a": {"x": 1, "y": 2}, "b": {"x": 3}}')
    # used once, but inside another definition (compiled per recursion context): embedded
    nested = {"$defs": {"P": point, "Q": {"type": "object", "properties": {"p": {"$ref": "#/$defs/P"}},
                                         "additionalProperties": False}},
              "type": "object", "properties": {"q": {"$ref": "#/$defs/Q"}}, "additionalProperties": False}
    assert _embedded_lazies(schema_to_node(nested)) == 1


def test_a_definition_inlined_once_then_met_again_becomes_one_embedded_automaton() -> None:
    """``$ref`` once in the text, compiled once per required extra key (``additionalProperties``
    with ``required``, as in real config schemas): the second meeting embeds one shared automaton
    instead of copying the definition's positions into every key."""
    point = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "string"}},
             "required": ["x"], "additionalProperties": False}

    def schema(keys: list[str]) -> dict[str, Any]:
        return {"$defs": {"P": point}, "type": "object", "additionalProperties": {"$ref": "#/$defs/P"},
                "required": keys}

    for n in (1, 2, 5):  # the extra-key value is compiled too, so even one key meets it twice
        assert _embedded_lazies(schema_to_node(schema([f"k{i}" for i in range(n)]))) == 1
    few = position_count(schema_to_node(schema([f"k{i}" for i in range(2)])), 10**6)
    many = position_count(schema_to_node(schema([f"k{i}" for i in range(12)])), 10**6)
    alone = position_count(schema_to_node(point), 10**6)
    assert many - few < 10 * alone  # the keys share the definition: not one copy each
    d = LazyDFA(schema_to_node(schema(["a", "b", "c"])))
    assert d.matches(b'{"a": {"x": 1}, "b": {"x": 2, "y": "s"}, "c": {"x": 3}}')
    assert d.matches(b'{"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}, "d": {"x": 4}}')
    assert not d.matches(b'{"a": {"x": 1}, "b": {"y": "s"}, "c": {"x": 3}}')
    assert not d.matches(b'{"a": {"x": 1}, "b": {"x": 2}}')


@pytest.mark.parametrize(
    "schema, pointer",
    [
        ({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 10}]}, "/oneOf"),
        ({"type": "object", "properties": {"v": {"oneOf": [{"type": "array"},
                                                             {"type": ["array", "null"], "maxItems": 2}]}}},
         "/properties/v/oneOf"),  # [1] matches both branches, [1, 2, 3] one: a difference of arrays
        ({"type": "number", "not": {"enum": [0, 1]}}, "/not"),  # 1, 1.0, 1e0: one value, several spellings
        ({"type": "integer", "if": {"minimum": 10}, "then": {"multipleOf": 5}, "else": {"maximum": 3}}, "/if"),
        ({"type": "object", "minProperties": 2}, "/minProperties"),
    ],
)
def test_refused_because_text_level_products_are_unsound(schema: Any, pointer: str) -> None:
    """oneOf with overlapping branches, general ``not``, if/then/else and minProperties over repeatable
    extra keys cannot be decided on texts (one value, many spellings): they are refused by pointer."""
    with pytest.raises(SchemaError) as ei:
        schema_to_node(schema)
    assert pointer in [i.pointer for i in ei.value.issues]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 5, "maximum": 1},
        {"enum": []},
        {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1},
        {"type": "string", "minLength": 3, "maxLength": 1},
        {"type": "array", "minItems": 3, "maxItems": 1},
        {"type": "object", "required": ["a"], "additionalProperties": False},
        {"type": "object", "properties": {"a": {"enum": []}}, "required": ["a"]},
        {"type": "integer", "multipleOf": 10, "minimum": 1, "maximum": 9},
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        {"const": 1, "enum": [2]},
        {"allOf": [{"type": "integer"}, False]},
        {"type": "object", "propertyNames": {"enum": ["a", "b"]}, "required": ["c"]},
        {"type": "array", "prefixItems": [{}], "items": False, "minItems": 2},
        {"type": "string", "format": "date", "maxLength": 3},
        {"type": "object", "properties": {"d": {"type": "string", "format": "date", "maxLength": 3}},
         "required": ["d"]},
        {"not": {}},
        False,
    ],
    ids=lambda s: json.dumps(s)[:40],
)
def test_unsatisfiable(schema: Any) -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "prefixItems": [False], "minItems": 1},
        {"type": "object", "properties": {"a": {"type": "array", "prefixItems": [False], "minItems": 1}},
         "required": ["a"]},
        {"type": "object", "properties": {"a": {"type": "null"}, "b": {"type": "null"}},
         "additionalProperties": False, "minProperties": 3},
    ],
    ids=["prefixItems-false+minItems", "nested-required", "minProperties-unreachable"],
)
def test_unsatisfiable_graph_languages(schema: Any) -> None:
    assert not js_valid_any(schema)
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node(schema)


def js_valid_any(schema: Any) -> bool:
    """Does any of a few candidate values satisfy ``schema``? (sanity check for the test itself)"""
    candidates = [None, [], [None], [None, None], {}, {"a": None}, {"a": None, "b": None}, {"a": []}]
    return any(validator(schema).is_valid(c) for c in candidates)


def test_recursion_limit_error() -> None:
    schema = {
        "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}, "required": ["next"]}},
        "$ref": "#/$defs/N",
    }
    with pytest.raises(RecursionLimitError, match="max_recursion_depth=3"):
        schema_to_node(schema)
    assert issubclass(RecursionLimitError, AutomatonTooLarge)


def test_max_states_applies_to_schemas() -> None:
    schema = {"type": "string", "pattern": "^[ab]*a[ab]{9}$"}
    with pytest.raises(AutomatonTooLarge):
        compile_dfa(schema_to_node(schema, CompileOptions(max_states=500)), max_states=500)


# --------------------------------------------------------------------------- EOS semantics


@pytest.fixture(scope="module")
def trained_vocab(trained_bpe_tokenizer: Any) -> Vocabulary:
    return Vocabulary.from_tokenizer(trained_bpe_tokenizer)


@pytest.mark.parametrize(
    "schema, text, accepting, final",
    [
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, '{"a": 1}', True, True),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, '{"a": 1', False, False),
        ({"type": "integer"}, "12", True, False),  # more digits may follow: accepting, not final
        ({"type": "integer", "maximum": 9}, "7", True, True),
        ({"enum": ["a", "ab"]}, '"a"', True, True),
        ({"type": "string"}, '"abc', False, False),
        ({"type": "array", "items": {"type": "null"}}, "[null]", True, True),
        ({"type": "boolean"}, "true", True, True),
        ({"type": "number"}, "1.5", True, False),
    ],
)
def test_eos_semantics(trained_vocab: Vocabulary, schema: Any, text: str, accepting: bool, final: bool) -> None:
    ta = compile_automaton(schema, trained_vocab)
    st = ta.walk(text.encode())
    assert st >= 0
    assert ta.is_accepting(st) == accepting
    assert ta.is_final(st) == final
    eos = int(trained_vocab.eos_ids[0])
    assert ta.allows(st, eos) == accepting  # EOS exactly where the text is a complete value
    if final:  # only EOS may follow
        assert set(ta.allowed_tokens(st).tolist()) == set(trained_vocab.eos_ids)
    assert not ta.is_final(-1) and not ta.is_accepting(-1)


# --------------------------------------------------------------------------- merge_schemas


def test_merge_schemas_basics() -> None:
    assert merge_schemas(True, {"type": "integer"}) == {"type": "integer"}
    assert merge_schemas({"type": "integer"}, {}) == {"type": "integer"}
    assert merge_schemas(False, {"type": "integer"}) is False
    assert merge_schemas({"type": "string"}, {"type": "integer"}) is False
    assert merge_schemas({"type": "number"}, {"type": "integer"}) == {"type": "integer"}
    assert merge_schemas({"minimum": 1, "maximum": 9}, {"minimum": 3, "maximum": 20}) == {"minimum": 3, "maximum": 9}
    assert merge_schemas({"enum": [1, 2, True]}, {"enum": [2, 1.0, 1]}) == {"enum": [1, 2]}
    assert merge_schemas({"$ref": "#/x"}, {"type": "integer"}) is None
    assert merge_schemas({"items": {"type": "integer"}}, {"items": {"type": "string"}}) == {"items": False}
    # unknown keywords constrain nothing; items meet across the other side's prefixItems
    assert merge_schemas({"x-a": 1, "minimum": 1}, {"x-a": 2}) == {"minimum": 1}
    assert merge_schemas({"prefixItems": [{"type": "string"}]}, {"items": {"maxLength": 2}}) == \
        {"prefixItems": [{"type": "string", "maxLength": 2}], "items": {"maxLength": 2}}
    # types that cannot meet are unsatisfiable even beside a $ref
    assert merge_schemas({"type": "string"}, {"type": "object", "$ref": "#/x"}) is False
    # a declared name of one side meeting a pattern of the other, under a schema additionalProperties: no merge
    assert merge_schemas({"properties": {"xa": {}}, "additionalProperties": {"type": "integer"}},
                         {"patternProperties": {"^x": {"minimum": 1}}}) is None


# --------------------------------------------------------------------------- soundness


def _sound(schema: Any, text: str, **opts: Any) -> None:
    """Either the schema is refused, or the automaton rejects ``text`` (which jsonschema rejects)."""
    assert not js_valid(schema, text), "test bug: jsonschema accepts this text"
    try:
        d = dfa(schema, **opts)
    except SchemaError:
        return
    assert not d.matches(text.encode()), f"automaton accepts {text!r}, which jsonschema rejects"


@pytest.mark.parametrize(
    "schema, text",
    [
        # an extra key spelled with escapes would duplicate a declared key ("\u0061" is "a")
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, '{"a": 1, "\\u0061": "x"}'),
        # repeated extra keys count twice in the text, once after json.loads
        ({"type": "object", "minProperties": 2}, '{"x": 1, "x": 2}'),
        # allOf: items of one branch apply to every element, across the other branch's prefixItems
        ({"allOf": [{"type": "array", "prefixItems": [{"type": "string"}]},
                    {"type": "array", "items": {"type": "integer"}}]}, '["a", 1]'),
        # allOf: a declared property of one branch meets the other's additionalProperties: false
        ({"allOf": [{"type": "object", "patternProperties": {"^x": {"type": "integer"}},
                     "additionalProperties": False},
                    {"type": "object", "properties": {"a": {"type": "integer"}}}]}, '{"a": 1}'),
        # not / oneOf / if over objects: the subschema's own property order must not matter
        ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
          "not": {"properties": {"b": {"const": 1}}, "required": ["b"]}}, '{"a": 1, "b": 1}'),
        ({"type": "object", "oneOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                                      {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
         '{"a": 1, "b": 2}'),
        ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
          "required": ["a", "b"], "additionalProperties": False,
          "if": {"properties": {"b": {"const": 2}}}, "then": {"properties": {"a": {"const": 1}}}},
         '{"a": 0, "b": 2}'),
        # oneOf with integer/number overlap (1 and 1.0 are one value)
        ({"oneOf": [{"type": "integer"}, {"const": 1.0}]}, "1"),
        # nullable is OpenAPI, not JSON Schema: the validator rejects null
        ({"type": "integer", "nullable": True}, "null"),
    ],
    ids=["escaped-duplicate-key", "duplicate-extra-keys", "allOf-prefixItems-items", "allOf-patternProperties",
         "not-object-order", "oneOf-object-order", "if-then-object-order", "oneOf-1-vs-1.0", "nullable"],
)
def test_never_accepts_what_jsonschema_rejects(schema: Any, text: str) -> None:
    _sound(schema, text, any_depth=1)  # shallow free values: products over them stay small


@pytest.mark.parametrize(
    "schema",
    [
        {"allOf": [{"type": "array", "prefixItems": [{"type": "string"}]},
                   {"type": "array", "items": {"type": "integer"}}]},
        {"allOf": [{"type": "object", "patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False},
                   {"type": "object", "properties": {"a": {"type": "integer"}}}]},
    ],
    ids=["prefixItems-vs-items", "patternProperties-vs-properties"],
)
def test_small_allof_with_free_values_compiles(schema: Any) -> None:
    """These merge syntactically now, so no eager product over free values is built."""
    schema_to_node(schema, CompileOptions(max_states=20_000, any_depth=6))


def test_bug_oneof_tag_discriminator_without_object_type() -> None:
    schema = {"oneOf": [{"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
                        {"properties": {"kind": {"const": "b"}}, "required": ["kind"]}]}
    _sound(schema, "5")


@pytest.mark.xfail(strict=True, reason="GAP: not {type: integer} (non-integer numbers only) is refused with "
                   "SchemaError, so {type: number, not: {type: integer}} does not compile")
def test_bug_not_integer_keeps_fractions() -> None:
    schema = {"type": "number", "not": {"type": "integer"}}
    assert js_valid(schema, "1.5")
    assert accepts(schema, "1.5") and not accepts(schema, "2")


def test_bug_enum_memo_ignores_root_definitions() -> None:
    def schema(t: str) -> dict[str, Any]:
        return {"$defs": {"T": {"type": t}}, "type": "object",
                "properties": {"v": {"enum": [{"a": 1}, {"a": "x"}], "properties": {"a": {"$ref": "#/$defs/T"}}}}}

    assert accepts(schema("integer"), '{"v": {"a": 1}}')  # fills the memo
    s = schema("string")
    assert js_valid(s, '{"v": {"a": "x"}}') and not js_valid(s, '{"v": {"a": 1}}')
    assert accepts(s, '{"v": {"a": "x"}}')
    assert not accepts(s, '{"v": {"a": 1}}')


def test_allof_inherited_properties_come_first() -> None:
    base = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    schema = {"$defs": {"Base": base}, "type": "object", "allOf": [{"$ref": "#/$defs/Base"}],
              "properties": {"extra": {"type": "integer"}}}
    assert accepts(schema, '{"id": "a", "name": "b", "extra": 1}')
    assert not accepts(schema, '{"extra": 1, "id": "a"}')  # one order per object: the base's fields first
    # a part refining some declared properties does not move them to the front
    refine = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "allOf": [{"properties": {"b": {"minimum": 0}}}]}
    assert accepts(refine, '{"a": -1, "b": 2}') and not accepts(refine, '{"a": 1, "b": -2}')
    assert not accepts(refine, '{"b": 2, "a": 1}')

# --------------------------------------------------------------------------- oneOf disjointness proofs

_TAGGED = {"type": "object", "properties": {"t": {"enum": ["p"]}}, "required": ["t"]}


@dataclass
class OneOfRule:
    """A oneOf that a disjointness rule proves exact, and a near miss whose branches overlap."""

    id: str
    schema: Any
    accept: list[str]
    near_miss: Any
    overlap: str  # a value of two branches of near_miss (so near_miss itself rejects it)


ONEOF_RULES = [
    OneOfRule(  # per pair: null vs objects by type, the objects by their tag
        "pairs-types-and-tags",
        {"oneOf": [{"type": "null"}, _TAGGED,
                   {"type": "object", "properties": {"t": {"enum": ["q", "r"]}}, "required": ["t"]}]},
        ["null", '{"t": "p"}', '{"t": "r"}'],
        {"oneOf": [{"type": "null"}, _TAGGED,
                   {"type": "object", "properties": {"t": {"enum": ["q", "p"]}}, "required": ["t"]}]},
        '{"t": "p"}',
    ),
    OneOfRule(  # scalar const/enum values, and a const against a type without it
        "values",
        {"oneOf": [{"enum": ["a", "b"]}, {"const": "c"}, {"type": "integer"}, {"const": 1.5}]},
        ['"a"', '"c"', "2", "1.5"],
        {"oneOf": [{"enum": ["a", 2, 1]}, {"const": 2}]},  # (strings: exact, see _one_of_strings)
        "2",
    ),
    OneOfRule(  # sibling keywords are part of every branch (JME_15, Snowplow sp_361)
        "siblings-merged",
        {"type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"],
         "oneOf": [{"properties": {"kind": {"const": "a"}}}, {"properties": {"kind": {"const": "b"}}}]},
        ['{"kind": "a"}', '{"kind": "b"}'],
        {"type": "object", "properties": {"kind": {"type": "string"}},
         "oneOf": [{"properties": {"kind": {"const": "a"}}}, {"properties": {"kind": {"const": "b"}}}]},
        "{}",
    ),
    OneOfRule(  # a property one branch requires and the other forbids (additionalProperties: false)
        "required-vs-forbidden",
        {"type": "object", "oneOf": [
            {"properties": {"a": {"type": "string"}, "x": {}}, "required": ["a"], "additionalProperties": False},
            {"properties": {"b": {"type": "string"}, "x": {}}, "additionalProperties": False}]},
        ['{"a": "s"}', '{"b": "s"}', '{"x": 1}', "{}"],
        {"type": "object", "oneOf": [
            {"properties": {"a": {"type": "string"}, "x": {}}, "required": ["a"], "additionalProperties": False},
            {"properties": {"b": {"type": "string"}, "x": {}}}]},
        '{"a": "s"}',
    ),
    OneOfRule(  # forbidden by patternProperties (Github o88605): the property's value must be null there
        "required-vs-patternProperties",
        {"oneOf": [
            {"type": "object", "properties": {"m": {"type": "string"}},
             "patternProperties": {"^(o)$": {"type": "null"}}, "required": ["m"]},
            {"type": "object", "properties": {"o": {"type": "string"}},
             "patternProperties": {"^(m)$": {"type": "null"}}, "required": ["o"]}]},
        ['{"m": "s"}', '{"m": "s", "o": null}', '{"o": "s", "m": null}'],
        {"oneOf": [
            {"type": "object", "properties": {"m": {"type": "string"}},
             "patternProperties": {"^(oo)$": {"type": "null"}}, "required": ["m"]},
            {"type": "object", "properties": {"o": {"type": "string"}},
             "patternProperties": {"^(mm)$": {"type": "null"}}, "required": ["o"]}]},
        '{"m": "s", "o": "t"}',
    ),
    OneOfRule(  # a shared required property whose values are disjoint, recursively (Github o85188)
        "nested-required",
        {"$defs": {"L": {"type": "object", "properties": {"align": {"enum": ["left"]}}, "required": ["align"]}},
         "type": "object", "oneOf": [
             {"properties": {"c": {"$ref": "#/$defs/L"}}, "required": ["c"]},
             {"properties": {"c": {"type": "object", "properties": {"align": {"enum": ["right"]}},
                                   "required": ["align"]}}, "required": ["c"]}]},
        ['{"c": {"align": "left"}}', '{"c": {"align": "right"}}'],
        {"type": "object", "oneOf": [
            {"properties": {"c": {"type": "object", "properties": {"align": {"enum": ["left"]}}}},
             "required": ["c"]},
            {"properties": {"c": {"type": "object", "properties": {"align": {"enum": ["right"]}}}},
             "required": ["c"]}]},
        '{"c": {}}',
    ),
    OneOfRule(  # number ranges (exclusive bounds)
        "number-ranges",
        {"oneOf": [{"type": "number", "exclusiveMaximum": 0}, {"type": "integer", "minimum": 0, "maximum": 9},
                   {"type": "number", "exclusiveMinimum": 9}]},
        ["-0.5", "0", "9", "9.5"],
        {"oneOf": [{"type": "number", "maximum": 0}, {"type": "integer", "minimum": 0}]},
        "0",
    ),
    OneOfRule(  # array sizes
        "array-sizes",
        {"oneOf": [{"type": "array", "maxItems": 1}, {"type": "array", "minItems": 2, "items": {"type": "integer"}}]},
        ["[]", '["s"]', "[1, 2]"],
        {"oneOf": [{"type": "array", "maxItems": 2}, {"type": "array", "minItems": 2, "items": {"type": "integer"}}]},
        "[1, 2]",
    ),
]


@pytest.mark.parametrize("rule", ONEOF_RULES, ids=[r.id for r in ONEOF_RULES])
def test_oneof_proved_disjoint(rule: OneOfRule) -> None:
    d = dfa(rule.schema)
    for text in rule.accept:
        assert js_valid(rule.schema, text), f"test bug: jsonschema rejects {text!r}"
        assert d.matches(text.encode()), f"should accept {text!r}"
    v = validator(rule.schema)  # every member matches exactly one branch
    for raw in sample_texts(eager_dfa(rule.schema), 40, seed=7):
        value = json.loads(raw.decode("utf-8"))
        assert v.is_valid(value), raw


@pytest.mark.parametrize("rule", ONEOF_RULES, ids=[r.id for r in ONEOF_RULES])
def test_oneof_near_miss_is_refused(rule: OneOfRule) -> None:
    branches = rule.near_miss["oneOf"]
    base = {k: v for k, v in rule.near_miss.items() if k != "oneOf"}
    matching = [b for b in branches if js_valid({**base, "allOf": [b]}, rule.overlap)]
    assert len(matching) >= 2, "test bug: the overlap value is not in two branches"
    with pytest.raises(SchemaError) as ei:
        schema_to_node(rule.near_miss)
    assert [i.keyword for i in ei.value.issues] == ["oneOf"]


def test_oneof_widening_never_proves_true_branches_disjoint() -> None:
    """A branch that admits everything (true, {}, an unresolvable part) overlaps every satisfiable one:
    "anything but what the other admits" is a difference, refused; except where the other admits a
    whole JSON type (null), which is then simply excluded: exact, checked against a validator."""
    values = ["null", "1", "2", '{"a": 1}', "{}", '"s"', "[]", "true"]
    for other in ({"type": "null"}, {"const": 1}, {"type": "object", "required": ["a"]}):
        for free in (True, {}, {"not": {"type": "string"}}, {"description": "anything"}):
            schema = {"oneOf": [free, other]}
            if other == {"type": "null"} and free != {"not": {"type": "string"}}:
                for text in values:
                    assert accepts(schema, text) == js_valid(schema, text), (schema, text)
                continue
            with pytest.raises(SchemaError):
                schema_to_node(schema)


def test_compile_time_is_a_named_limit() -> None:
    from jsonmode import CompileTimeoutError

    # an allOf of two patterns whose product has ~2**13 states: seconds of work, stopped at 10 ms
    pats = [{"type": "string", "pattern": "^[ab]*a[ab]{12}$"}, {"type": "string", "pattern": "^[ab]*b[ab]{11}$"}]
    opts = CompileOptions(max_compile_seconds=0.01, max_states=10**6, eager_states=10**6)
    with pytest.raises(CompileTimeoutError, match="max_compile_seconds=0.01"):
        schema_to_node({"allOf": pats}, opts)
    assert isinstance(CompileTimeoutError("x"), AutomatonTooLarge)  # a refusal like the other limits


# ---------------------------------------------------------------- finite value lists beside combinators

FINITE = [
    # an enum beside keywords no automaton here expresses: the validator picks the values
    {"allOf": [{"enum": [{"a": 21}, {"a": 1}, {"a": "x"}]},
               {"not": {"properties": {"a": {"type": "integer", "maximum": 20}}}}]},
    {"enum": [1, 2, 3, 4], "not": {"enum": [2, 4]}},
    {"enum": [[1, 1], [1, 2], []], "uniqueItems": True, "if": {"minItems": 1}, "then": {"contains": {"const": 2}}},
    {"enum": ["a", "b", 1], "oneOf": [{"type": "string"}, {"const": "a"}]},  # overlapping oneOf: "a" is in both
    {"$defs": {"Odd": {"enum": [1, 3, 5]}}, "allOf": [{"$ref": "#/$defs/Odd"}, {"not": {"const": 3}}]},
    {"const": {"b": [1, 2]}, "anyOf": [{"required": ["a"]}, {"properties": {"b": {"contains": {"const": 2}}}}]},
]


@pytest.mark.parametrize("schema", FINITE, ids=range(len(FINITE)))
def test_finite_values_beside_combinators_are_exact(schema: dict[str, Any]) -> None:
    """Exactly the listed values that a JSON Schema validator accepts, nothing refused."""
    values = [json.loads(t) for t in
              ['{"a": 21}', '{"a": 1}', '{"a": "x"}', "1", "2", "3", "4", "5", "[1, 1]", "[1, 2]", "[]",
               '"a"', '"b"', '{"b": [1, 2]}']]
    for v in values:
        text = json.dumps(v)
        assert accepts(schema, text) == js_valid(schema, text), text
    assert any(accepts(schema, json.dumps(v)) for v in values)


def test_finite_values_none_valid_is_unsatisfiable() -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node({"allOf": [{"enum": [1, 2]}, {"not": {"type": "integer"}}]})


def test_finite_values_with_refs_outside_definitions_fall_back() -> None:
    """A reference the validator could not resolve like the root does (here into the schema's own
    properties, below the root) is not guessed: the usual path refuses ``not``."""
    schema = {"properties": {"v": {"enum": [1, 2], "not": {"$ref": "#/properties/w"}}, "w": {"const": 1}}}
    with pytest.raises(SchemaError, match="not is supported only"):
        schema_to_node(schema)
    # at the root the whole schema is checked as written, so the same reference resolves there
    root = {"enum": [1, 2], "not": {"$ref": "#/$defs/one"}, "$defs": {"one": {"const": 1}}}
    assert accepts(root, "2") and not accepts(root, "1")


PRESENCE = [
    [["radius"], ["length", "width"], ["base", "height"]],  # the function-calling "one shape" case
    [["a"], ["b"]],
    [["a"], ["a", "b"]],  # the second implies the first: only {a} without b
    [["a", "b"], ["b", "c"], ["c"]],
    [["a"], ["b"], ["c"], ["d"]],
]


@pytest.mark.parametrize("reqs", PRESENCE)
@pytest.mark.parametrize("additional", [False, True])
def test_oneof_of_required_sets_is_exact(reqs: list[list[str]], additional: bool) -> None:
    """oneOf branches that only list ``required`` names: every presence pattern of the names
    (written in schema order, plus an undeclared key when allowed) is accepted iff a validator
    finds exactly one branch satisfied."""
    names = sorted({n for r in reqs for n in r} | {"z"})
    schema = {"type": "object", "properties": {n: {"type": "integer"} for n in names},
              "additionalProperties": additional, "oneOf": [{"required": r} for r in reqs]}
    for mask in range(1 << len(names)):
        obj = {n: i for i, n in enumerate(names) if mask >> i & 1}
        for extra in ([{}, {"q": 1}] if additional else [{}]):
            text = json.dumps({**obj, **extra})
            assert accepts(schema, text) == js_valid(schema, text), text


def test_oneof_of_required_sets_needs_an_object() -> None:
    """Non-objects satisfy every required-only branch, so with two branches none is valid."""
    schema = {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert accepts(schema, '{"a": 1}') and accepts(schema, '{"b": "x"}')
    for text in ("1", '"a"', "[]", "null", '{"a": 1, "b": 2}', "{}"):
        assert not accepts(schema, text), text


def test_oneof_of_required_sets_never_alone_is_unsatisfiable() -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        schema_to_node({"type": "object", "required": ["a", "b"],
                        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]})


DEPENDENCIES = [
    {"dependencies": {"a": ["b"]}},
    {"dependentRequired": {"a": ["b", "c"], "c": ["a"]}},
    {"dependencies": {"a": {"required": ["c"]}, "b": ["a"]}},
    {"dependentSchemas": {"a": {"properties": {"b": {"minimum": 5}}}}},
    {"dependencies": {"a": False, "b": True, "c": []}},
    {"required": ["a"], "dependencies": {"a": ["c"]}},
]


@pytest.mark.parametrize("deps", DEPENDENCIES)
def test_property_dependencies_are_exact(deps: dict[str, Any]) -> None:
    """Every presence pattern (and value) of a, b, c: accepted iff a validator finds it valid."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                                               "c": {"type": "integer"}}, **deps}
    if "dependencies" in deps:  # a draft-7 keyword (2019-09 split it in two)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    for mask in range(8):
        for v in (1, 7):
            obj = {n: v for i, n in enumerate("abc") if mask >> i & 1}
            text = json.dumps(obj)
            assert accepts(schema, text) == js_valid(schema, text), (deps, text)


def test_property_dependencies_limit_is_named() -> None:
    deps = {n: ["z"] for n in "abcdefg"}  # 2**7 alternatives
    with pytest.raises(SchemaError, match="7 property dependencies make 128 alternatives"):
        schema_to_node({"type": "object", "dependencies": deps})


def test_malformed_required_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="draft 3's boolean form"):
        schema_to_node({"type": "object", "properties": {"a": {"type": "object", "required": True}}})
    with pytest.raises(SchemaError, match="/required: required must be an array"):
        schema_to_node({"type": "object", "required": [1]})


def test_recursive_reference_inside_allof_is_bounded() -> None:
    """A bare $ref part of allOf counts towards max_recursion_depth like any $ref (it recursed
    until Python's limit before)."""
    schema = {"$defs": {"node": {"type": "object", "properties": {
        "kids": {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/node"}], "minProperties": 0}}},
        "additionalProperties": False}}, "$ref": "#/$defs/node"}
    assert accepts(schema, '{"kids": [{"kids": []}, {}]}')
    assert not accepts(schema, '{"kids": [{"other": 1}]}')
    deep = '{"kids": [' * 5 + "{}" + "]}" * 5
    assert not accepts(schema, deep, max_recursion_depth=3) and accepts(schema, deep, max_recursion_depth=6)


ANY_ANY = {"allOf": [{"anyOf": [{"type": "integer", "minimum": 5}, {"type": "string", "maxLength": 2}]},
                     {"anyOf": [{"type": "integer", "maximum": 7}, {"type": "string", "minLength": 2},
                                {"type": "null"}]}]}


def test_two_anyof_under_allof_distribute() -> None:
    """(a1 | a2) & (b1 | b2 | b3) is the union of the pairs (it recursed until Python's limit)."""
    for text in ("4", "5", "7", "8", '"a"', '"ab"', '"abc"', "null", "[]"):
        assert accepts(ANY_ANY, text) == js_valid(ANY_ANY, text), text
    assert accepts(ANY_ANY, "6") and accepts(ANY_ANY, '"ab"')


ONE_OF_BY_TYPE = [
    # JSON Patch: object branches with a required op tag and no type (5 or "x" matches both)
    {"oneOf": [{"required": ["op", "path"], "properties": {"op": {"enum": ["add", "test"]}, "path": {"type": "string"}}},
               {"required": ["op"], "properties": {"op": {"const": "remove"}}, "additionalProperties": False}]},
    {"oneOf": [{"minimum": 5}, {"maximum": 3}]},  # numbers by disjoint ranges, every other value twice
    {"oneOf": [{"type": "null"}, {"properties": {"x": {"type": "integer"}}}]},  # null matches both
    {"oneOf": [{"type": "string"}, {"type": "array", "maxItems": 1}, {"minItems": 2}]},  # strings match two
    {"oneOf": [{"format": "uuid"}, {"pattern": "^[$][A-Z]+"}, {"type": "string", "maxLength": 1}]},  # by automata
    {"oneOf": [{"type": "string", "pattern": "^u?int(8|16)?$"}, {"type": "string", "pattern": "^x"}]},
    {"$defs": {"o": {"properties": {"k": {"const": 1}}, "required": ["k"]}},
     "oneOf": [{"$ref": "#/$defs/o"}, {"allOf": [{"properties": {"k": {"const": 2}}}, {"required": ["k"]}]}]},
]
ONE_OF_VALUES = ['"int8"', '"uint"', '"xint"', '"$AB"', '"$"', '"123e4567-e89b-12d3-a456-426614174000"', '{"op": "add", "path": "/a"}', '{"op": "remove"}', '{"op": "remove", "path": "/a"}',
                 '{"op": "move", "path": "/a"}', '{"op": "test"}', '{"x": 1}', '{"x": "a"}', '{"k": 1}', '{"k": 2}',
                 '{"k": 3}', "{}", "5", "3", "4", "-1", "7.5", "null", "true", '"x"', '"xy"', '""', "[]", "[1]",
                 "[1, 2]"]


@pytest.mark.parametrize("schema", ONE_OF_BY_TYPE)
def test_one_of_split_by_type_is_exact(schema: dict[str, Any]) -> None:
    """Branches that overlap only on types they leave free: a value of such a type matches two
    of them and is valid for none; the rest is the usual disjoint oneOf.  Same verdict as a
    validator on values of every type."""
    for text in ONE_OF_VALUES:
        assert accepts(schema, text) == js_valid(schema, text), text


@pytest.mark.parametrize("schema", [
    # strings that match one branch alone come from automata over their one spelling
    {"oneOf": [{"type": "string"}, {"maxLength": 3}]},  # "ab" matches both, "abcd" one
    {"oneOf": [{"pattern": "customer"}, {"pattern": "maker"}]},  # "customer maker" matches both
    {"oneOf": [{"type": "string"}, {"type": "array"}, {"enum": ["x", "int8", 5]}, {"type": "integer", "maximum": 4}]},
])
def test_one_of_overlapping_on_strings_is_exact(schema: dict[str, Any]) -> None:
    for text in ONE_OF_VALUES + ['"customer maker"', '"abcd"', '"customer"', '"\\u0078"']:
        assert accepts(schema, text) == js_valid(schema, text) or text == '"\\u0078"', text
    assert not accepts(schema, '"\\u0078"')  # "x" in another spelling: never written


@pytest.mark.parametrize("schema", [
    {"oneOf": [{"type": "integer"}, {"minimum": 0}]},  # overlap on numbers
    {"oneOf": [{"type": "array"}, {"type": ["array", "string"], "maxItems": 2}]},  # overlap on arrays
])
def test_one_of_split_by_type_refuses_what_it_cannot_prove(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match="oneOf branches that may overlap"):
        schema_to_node(schema)


NOT_CASES = [
    # required names: "never both", "neither", "not a unless typed", through allOf
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "not": {"required": ["a", "b"]}},
    {"properties": {"a": {}, "b": {}}, "not": {"anyOf": [{"required": ["a"]}, {"required": ["b", "c"]}]}},
    {"not": {"type": "object", "required": ["a"]}},
    {"type": "object", "not": {"allOf": [{"required": ["a"]}, {"required": ["c"]}]}},
    # string keywords: a value of another type passes pattern, so fails not (unless typed)
    {"type": "string", "not": {"pattern": "^x"}},
    {"not": {"pattern": "^x", "maxLength": 2}},
    {"type": ["string", "null"], "not": {"enum": ["a", "b"]}},
    {"type": "string", "maxLength": 3, "not": {"type": "string", "minLength": 2, "pattern": "b"}},
    # properties whose values are scalar const/enum or a type (rust-toolchain's "not a path table")
    {"type": "object", "not": {"properties": {"a": {"type": "string"}, "c": {"const": "x"}}, "required": ["a"]}},
]
NOT_VALUES = ['{"a": "s"}', '{"a": 1, "c": "x"}', '{"a": 1, "c": "y"}', '{"a": 1}', '{"b": 1}', '{"c": 1}', '{"a": 1, "b": 2}', '{"a": 1, "c": 2}', '{"b": 1, "c": 2}', "{}",
              "5", "null", "[]", '"xa"', '"x"', '"ab"', '"a"', '"c"', '"abc"', '"bb"', '"b"', '""', '"xyz"', '"é"']


@pytest.mark.parametrize("schema", NOT_CASES)
def test_not_of_required_names_and_string_keywords_is_exact(schema: dict[str, Any]) -> None:
    for text in NOT_VALUES:
        assert accepts(schema, text) == js_valid(schema, text), text


def test_not_of_string_keywords_writes_the_canonical_spelling_only() -> None:
    """A difference over several spellings would let "\\u0061" through where "a" is excluded: the
    strings under such a not are json.dumps's spelling only (so "\\u0062" is refused too)."""
    schema = {"type": "string", "not": {"enum": ["a"]}}
    assert not accepts(schema, '"\\u0061"') and not accepts(schema, '"a"')
    assert accepts(schema, '"b"') and not accepts(schema, '"\\u0062"') and accepts(schema, '"\\n"')


@pytest.mark.parametrize("neg", [
    {"required": ["a"], "properties": {"a": {"const": 1}}},  # a value condition: a difference
    {"enum": [0, 1]},  # numbers have several spellings (1, 1.0, 1e0)
    {"pattern": "a", "minItems": 2},
])
def test_not_of_other_shapes_is_refused(neg: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match="not is supported only as"):
        schema_to_node({"not": neg})


IF_CASES = [
    {"type": "object", "properties": {"kind": {"type": "string"}, "n": {"type": "integer"}},
     "if": {"properties": {"kind": {"const": "a"}}}, "then": {"required": ["n"]}, "else": {"properties": {"n": False}}},
    {"properties": {"kind": {}, "n": {}}, "if": {"properties": {"kind": {"enum": ["a", True]}}, "required": ["kind"]},
     "then": {"properties": {"n": {"type": "integer"}}}, "else": {"properties": {"n": {"type": "string"}}}},
    {"properties": {"kind": {}, "n": {}}, "if": {"properties": {"kind": {"anyOf": [{"const": "a"}, {"type": "null"}]}}},
     "then": {"required": ["n"]}},
    {"if": {"type": "string"}, "then": {"maxLength": 1}, "else": {"type": "integer"}},
    {"properties": {"kind": {}, "n": {}}, "if": {"properties": {"kind": {"pattern": "^a"}}}, "else": {"required": ["n"]}},
]
IF_VALUES = ['{"kind": "a", "n": 1}', '{"kind": "a"}', '{"kind": "b", "n": 1}', '{"kind": "b", "n": "x"}', '{"kind": "b"}',
             '{"kind": true, "n": 1}', '{"kind": false, "n": "x"}', '{"kind": null}', '{"kind": null, "n": 2}', '{"n": 1}',
             '{"kind": 5, "n": 1}', '{"kind": "ab", "n": 1}', '{"kind": "ba"}', "{}", '"x"', '"xy"', "3", "3.5", "null"]


@pytest.mark.parametrize("schema", IF_CASES)
def test_if_then_else_is_exact(schema: dict[str, Any]) -> None:
    """(if and then) or (not if and else), with not-if built for the shapes an if takes."""
    for text in IF_VALUES:
        assert accepts(schema, text) == js_valid(schema, text), text


def test_if_of_other_shapes_is_refused() -> None:
    with pytest.raises(SchemaError, match="if/then/else is supported where"):
        schema_to_node({"if": {"properties": {"n": {"minimum": 3}}}, "then": {"required": ["a"]}})


def _count_intersects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from jsonmode import compiler

    calls = [0]
    orig = compiler._Ctx._intersect

    def spy(self: Any, *a: Any) -> Any:
        calls[0] += 1
        return orig(self, *a)

    monkeypatch.setattr(compiler._Ctx, "_intersect", spy)
    return calls


def test_definition_outside_a_cycle_compiles_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A definition that cannot reach an open recursive one compiles the same at every depth of
    the recursion: once, not once per recursion context (the cause of compile timeouts on
    schemas of mutually recursive content types)."""
    calls = _count_intersects(monkeypatch)
    schema = {"$defs": {
        "base": {"type": "object", "properties": {"id": {"type": "string"}}},
        "leaf": {"allOf": [{"$ref": "#/$defs/base"}, {"properties": {"v": {"type": "integer"}}}]},
        "tree": {"type": "object", "properties": {"leaf": {"$ref": "#/$defs/leaf"},
                                                  "kids": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
                 "additionalProperties": False}},
        "$ref": "#/$defs/tree"}
    lazy = LazyDFA(schema_to_node(schema))
    assert calls[0] == 1
    deep = '{"leaf": {"id": "a", "v": 1}, "kids": [{"kids": [{"leaf": {"id": "b", "v": 2}, "kids": []}]}]}'
    assert lazy.matches(deep.encode())
    assert not lazy.matches(deep.replace('"v": 2', '"v": "2"').encode())


def test_same_merged_schema_compiles_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`$ref` with siblings (allOf inheritance) met again in the same context reuses the first
    compile, embedded by reference; the language is unchanged."""
    calls = _count_intersects(monkeypatch)
    ref = {"$ref": "#/$defs/base", "required": ["id"]}
    schema = {"$defs": {"base": {"type": "object", "properties": {"id": {"type": "integer"}}}},
              "type": "object", "properties": {"a": ref, "b": ref, "c": {"type": "array", "items": ref}}}
    lazy = LazyDFA(schema_to_node(schema))
    assert calls[0] == 1
    assert lazy.matches(b'{"a": {"id": 1}, "b": {"id": 2}, "c": [{"id": 3}]}')
    assert not lazy.matches(b'{"a": {"id": 1}, "b": {}}')
    assert not lazy.matches(b'{"c": [{"id": "x"}]}')


def test_recursion_levels_are_built_when_first_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Definitions unrolled inside a recursion are walked when an output first reaches them, not
    at compile time; the bound and the language are unchanged."""
    from jsonmode import fsm

    walks = [0]
    orig = fsm.LazyDFA._walk

    def spy(self: Any, deferred: bool = False) -> tuple[bool, int]:
        walks[0] += 1
        return orig(self, deferred)

    monkeypatch.setattr(fsm.LazyDFA, "_walk", spy)
    schema = {"$defs": {
        "a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"}, "x": {"type": "integer"}},
              "additionalProperties": False},
        "b": {"type": "array", "items": {"$ref": "#/$defs/a"}}},
        "$ref": "#/$defs/a"}
    lazy = LazyDFA(schema_to_node(schema))
    at_compile = walks[0]
    assert lazy.matches(b'{"x": 1}') and walks[0] == at_compile
    deep = '{"b": [{"b": [{"x": 3}]}]}'  # a entered 3 times: max_recursion_depth
    assert lazy.matches(deep.encode()) and walks[0] > at_compile
    assert not lazy.matches(deep.replace('{"x": 3}', '{"b": [{}]}').encode())  # a 4th time
    assert not lazy.matches(deep.replace('"x": 3', '"x": "3"').encode())
