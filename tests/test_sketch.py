"""jsonmode.sketch: example instances written from a schema alone, and the compile-time walk
(``TokenAutomaton.warm``) that computes masks along them.

Oracles: ``jsonschema`` for the sketches' validity on schemas they are meant to cover, Python's
``re`` for sampled patterns, and an automaton compiled without warming for the masks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jsonmode import Vocabulary, compile_automaton
from jsonmode.automaton import _CACHE
from jsonmode.sketch import sketches
from jsonmode.tiny import trained_bpe_tokenizer

ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        "when": {"type": "string", "format": "date-time"},
        "mail": {"type": "string", "format": "email"},
        "note": {"type": "string", "minLength": 7, "maxLength": 9},
        "qty": {"type": "integer", "minimum": 5000, "multipleOf": 7},
        "price": {"type": "number", "exclusiveMaximum": 1},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 3, "uniqueItems": True},
        "kind": {"anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]},
        "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
        "free": {},
        "maybe": {"type": ["null", "boolean"]},
    },
    "required": ["id", "kind"],
    "additionalProperties": False,
    "$defs": {
        "Cat": {"type": "object", "properties": {"lives": {"type": "integer", "maximum": 9}},
                "required": ["lives"], "additionalProperties": False},
        "Dog": {"type": "object", "properties": {"breed": {"type": "string"}}, "required": ["breed"],
                "additionalProperties": False},
    },
}
TREE = {
    "$ref": "#/$defs/Node",
    "$defs": {"Node": {"type": "object", "properties": {"name": {"type": "string"},
                                                        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                       "required": ["name", "children"], "additionalProperties": False}},
}


def test_sketches_are_valid_and_take_each_branch() -> None:
    out = sketches(ORDER, variants=3)
    assert len(out) == 3
    for x in out:
        jsonschema.validate(x, ORDER, format_checker=jsonschema.FormatChecker())
        assert list(x) == list(ORDER["properties"])  # every property, in schema order
    assert {next(iter(x["kind"])) for x in out} == {"lives", "breed"}  # anyOf branch by variant
    assert re.fullmatch(r"[A-Z]{2}-[0-9]{3}", out[0]["id"])


def test_recursive_schema_stops_at_the_smallest_valid_value() -> None:
    for x in sketches(TREE):
        jsonschema.validate(x, TREE)
        depth, node = 0, x
        while node["children"]:
            node, depth = node["children"][0], depth + 1
        assert depth <= 3


def test_a_depth_limit_keeps_the_shallow_part_and_stays_valid() -> None:
    deep = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {
        "type": "object", "properties": {"c": {"type": "integer"}}}}}, "z": {"type": "string"}},
        "required": ["a"]}
    shallow = sketches(deep, variants=1, max_depth=0)[0]
    assert list(shallow) == ["a", "z"] and shallow["a"] == {}  # every top-level name, values at their smallest
    assert sketches(deep, variants=1, max_depth=1)[0]["a"] == {"b": {}}
    assert sketches(deep, variants=1)[0]["a"] == {"b": {"c": 1}}
    for depth in range(4):
        for x in sketches(TREE, max_depth=depth) + sketches(ORDER, max_depth=depth):
            jsonschema.validate(x, TREE if "children" in x else ORDER, format_checker=jsonschema.FormatChecker())


def test_free_values_and_open_objects_get_typical_shapes() -> None:
    out = sketches({"type": "object"}, variants=1)
    assert out and isinstance(out[0], dict) and len(out[0]) > 3
    assert sketches({"type": "object", "additionalProperties": False}) == [{}]
    assert {type(v) for v in (x["v"] for x in sketches({"properties": {"v": {}}}))} == {str, dict, int}


def test_out_of_time_patterns_fall_back_to_plain_text() -> None:
    s = {"type": "string", "pattern": "^q{4}[0-9]$"}
    assert sketches(s, variants=1, seconds=-1.0) != ["qqqq0"]
    assert sketches(s, variants=1) == ["qqqq0"]


def test_unsketchable_input_is_skipped_not_raised() -> None:
    assert all(isinstance(x, str) for x in sketches({"type": "string", "pattern": "(?<=x)y"}))
    assert sketches({"$ref": "#/nowhere"}) is not None


# --------------------------------------------------------------------------- warming


@pytest.fixture(scope="module")
def tok_vocab() -> tuple[Any, Vocabulary]:
    tok = trained_bpe_tokenizer()
    return tok, Vocabulary.from_tokenizer(tok)


def _fresh(schema: Any, vocab: Vocabulary, **kw: Any) -> Any:
    _CACHE.clear()
    return compile_automaton(schema, vocab, **kw)


def test_vocabulary_encodes_like_its_tokenizer(tok_vocab: tuple[Any, Vocabulary]) -> None:
    tok, vocab = tok_vocab
    text = json.dumps(sketches(ORDER)[0])
    assert vocab.encode is not None
    assert vocab.encode(text) == tok.encode(text, add_special_tokens=False)
    assert Vocabulary.from_token_bytes([b"a", b"b"]).encode is None


def test_compiling_warms_the_states_a_sketch_passes(tok_vocab: tuple[Any, Vocabulary]) -> None:
    _, vocab = tok_vocab
    assert vocab.encode is not None
    cold = _fresh(ORDER, vocab, warm_seconds=0, precompute=False)
    warm = _fresh(ORDER, vocab, warm_seconds=5.0, precompute=False)
    assert not any(cold.has_mask(s) for s in range(cold.num_states))
    s = warm.initial_state
    for tid in vocab.encode(json.dumps(sketches(ORDER)[0])):
        assert warm.has_mask(s)  # computed while compiling
        s = warm.advance(s, tid)


def test_warm_masks_equal_cold_masks(tok_vocab: tuple[Any, Vocabulary]) -> None:
    _, vocab = tok_vocab
    assert vocab.encode is not None
    cold = _fresh(ORDER, vocab, warm_seconds=0, precompute=False)
    warm = _fresh(ORDER, vocab, warm_seconds=5.0, precompute=False)
    text = ('{"id": "QZ-101", "when": "2024-01-01T10:00:00Z", "note": "1234567", "qty": 7000, "tags": ["c", "a", "b"], '
            '"kind": {"breed": "x y"}, "extra": {"n": -3}, "free": [1, {"z": null}], "maybe": null}')
    ids = vocab.encode(text)
    sc = sw = cold.initial_state
    for tid in ids:
        assert np.array_equal(cold.mask(sc), warm.mask(sw))
        sc, sw = cold.advance(sc, tid), warm.advance(sw, tid)
    assert cold.is_accepting(sc) and warm.is_accepting(sw)


def test_warming_walks_shallow_sketches_before_the_full_ones(tok_vocab: tuple[Any, Vocabulary],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from jsonmode import automaton

    _, vocab = tok_vocab
    assert vocab.encode is not None
    walked: list[Any] = []
    monkeypatch.setattr(automaton.TokenAutomaton, "warm",
                        lambda self, outputs, seconds: walked.extend(outputs) or 0)
    _fresh(TREE, vocab, warm_seconds=5.0, precompute=False)
    expect = [json.dumps(x) for d in automaton.WARM_DEPTHS for x in sketches(TREE, 1, max_depth=d)]
    expect += [json.dumps(x) for x in sketches(TREE)]
    expect = list(dict.fromkeys(expect))  # (each text once)
    assert walked == [vocab.encode(t) for t in expect]
    assert len(walked[0]) < len(walked[-1]) and len(set(map(tuple, walked))) == len(walked)


def test_warm_stops_at_a_refused_token_and_at_the_deadline(tok_vocab: tuple[Any, Vocabulary]) -> None:
    _, vocab = tok_vocab
    assert vocab.encode is not None
    ta = _fresh({"type": "object", "properties": {"a": {"type": "integer"}}}, vocab, warm_seconds=0)
    bad = vocab.encode('{"a": "no", "b": 1}')
    assert ta.warm([bad], 5.0) < len(bad)  # stopped where the string was refused
    assert ta.warm([vocab.encode('{"a": 1}')], 0.0) == 0


@settings(max_examples=40, deadline=None)
@given(st.recursive(
    st.sampled_from([{"type": "string"}, {"type": "integer", "minimum": 3}, {"enum": ["x", 2]}, {"type": "boolean"},
                     {"type": "number", "maximum": -1}, {"type": "string", "format": "date"}]),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3).map(
            lambda p: {"type": "object", "properties": p, "required": sorted(p), "additionalProperties": False}),
        inner.map(lambda i: {"type": "array", "items": i, "minItems": 1}),
        st.lists(inner, min_size=1, max_size=3).map(lambda bs: {"anyOf": bs})),
    max_leaves=8))
def test_sketches_of_simple_schemas_are_valid(schema: dict[str, Any]) -> None:
    out = sketches(schema)
    assert out
    for x in out:
        jsonschema.validate(x, schema, format_checker=jsonschema.FormatChecker())


def test_required_names_take_their_pattern_and_not_forbids_pairs() -> None:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "site": {"type": "string"}, "app": {"type": "string"}},
        "patternProperties": {"^n_": {"type": "integer"}},
        "required": ["id", "n_count"],
        "not": {"allOf": [{"required": ["site"]}, {"required": ["app"]}]},
        "additionalProperties": False,
    }
    for x in sketches(schema):
        jsonschema.validate(x, schema)
        assert isinstance(x["n_count"], int) and not ("site" in x and "app" in x)
