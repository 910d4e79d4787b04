"""Core property suite: random Pydantic models, their valid and invalid JSON instances, and sampling.

For random models built with ``pydantic.create_model`` (nested models, Optional, bounded lists,
dicts, Literal, Enum, Union, constrained int/float/str, date, datetime, UUID, EmailStr and a
recursive model):

1. the token automaton (trained BPE vocabulary, ``additional_properties=False``) accepts every
   valid instance, serialised with ``json.dumps`` defaults and walked token by token, and refuses
   every invalid mutation (wrong type, missing key, bound exceeded) that ``jsonschema`` rejects;
2. sampling from a tiny random model always yields output that validates (``json.loads`` +
   ``jsonschema`` + ``model_validate``);
3. keywords compiled by value-level rules (``uniqueItems`` over finite items, ``oneOf``
   overlapping on strings, ``not`` of integer values, ``contains``) give ``jsonschema``'s verdict
   on random schemas and values.

Documented gaps of the automaton that the valid-instance strategies stay clear of (each is a
subset choice of the engine, not an acceptance bug): bounded numbers are written without
exponent and never as ``-0.0`` (jsonmode.numbers), length/pattern-constrained strings take astral
characters raw but not as ``\\ud83d\\ude42`` surrogate-pair escapes (jsonmode.regex), and datetimes
carry an offset (RFC 3339, as ``format: date-time`` requires).  Object keys and enum/const strings
are ASCII here: non-ASCII ones are only accepted raw, not in ``json.dumps``' default ``\\u00e9``
spelling (see the xfail tests at the end).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import itertools
import json
import math
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

import jsonschema
import pytest
from automata_helpers import token_walk_accepts
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from pydantic import BaseModel, EmailStr, Field, TypeAdapter, create_model

from jsonmode import Engine, TruncatedOutputError, Vocabulary, compile_automaton
from jsonmode.tiny import tiny_llama, trained_bpe_tokenizer

pytestmark = pytest.mark.usefixtures("torch_one_thread")

_ids = itertools.count()
BMP = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
ANY_CHAR = st.characters(exclude_categories=("Cs",))


# --------------------------------------------------------------------------- kinds of fields


@dataclass
class Kind:
    """A field type: its annotation, valid Python values, and JSON values that should be invalid."""

    ann: Any
    values: st.SearchStrategy[Any]
    bad: st.SearchStrategy[Any]
    label: str


def _json(ann: Any, value: Any) -> Any:
    return TypeAdapter(ann).dump_python(value, mode="json")


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


@st.composite
def int_kind(draw: st.DrawFn) -> Kind:
    lo = draw(st.one_of(st.none(), st.integers(-50, 10)))
    hi = draw(st.one_of(st.none(), st.integers((lo if lo is not None else -50) + 10, 100)))
    m = draw(st.sampled_from([None, None, 2, 3, 5]))
    ann = Annotated[int, Field(ge=lo, le=hi, multiple_of=m)]
    step = m or 1
    klo = _ceil_div(lo if lo is not None else -(10**12), step)
    khi = (hi if hi is not None else 10**12) // step
    values = st.integers(klo, khi).map(lambda k: k * step)
    bad = ["7", 1.5, None, True, [1]]
    if hi is not None:
        bad.append(hi + step)
    if lo is not None:
        bad.append(lo - step)
    if m:
        bad.append(klo * m + 1)
    return Kind(ann, values, st.sampled_from(bad), f"int[{lo},{hi}]%{m}")


def _plain_repr(x: float) -> bool:
    return "e" not in repr(x) and "inf" not in repr(x) and "nan" not in repr(x)


@st.composite
def float_kind(draw: st.DrawFn) -> Kind:
    bounded = draw(st.booleans())
    if not bounded:
        values = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: math.copysign(1, x) > 0 or x != 0)
        return Kind(float, values, st.sampled_from(["1.0", None, {}, [1.5]]), "float")
    lo = draw(st.integers(-100, 0)) / 4
    hi = lo + draw(st.integers(1, 400)) / 4
    ann = Annotated[float, Field(ge=lo, le=hi)]
    values = st.floats(lo, hi, allow_nan=False).filter(lambda x: _plain_repr(x) and not (x == 0 and
                                                                                          math.copysign(1, x) < 0))
    return Kind(ann, values, st.sampled_from([hi + 1.0, lo - 1.0, "1", None]), f"float[{lo},{hi}]")


LOWER = "abcdefghijklmnopqrstuvwxyz"


def _lower(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(LOWER, min_size=max(lo, 1), max_size=hi)


def _ident(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.builds(lambda a, b: a + b, st.sampled_from("ABCXYZ"),
                     st.text(LOWER + "0123456789_", min_size=max(lo - 1, 0), max_size=hi - 1))


@st.composite
def _has_digit(draw: st.DrawFn, lo: int, hi: int) -> str:
    n = draw(st.integers(max(lo, 1), hi))
    chars = draw(st.lists(BMP, min_size=n - 1, max_size=n - 1))
    chars.insert(draw(st.integers(0, n - 1)), draw(st.sampled_from("0123456789")))
    return "".join(chars)


def _pairs(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(["ab", "cd"]), min_size=max(1, (lo + 1) // 2), max_size=hi // 2).map("".join)


# pattern, valid values for (minLength, maxLength), a non-matching value
PATTERNS = [
    ("^[a-z]+$", _lower, "!!"),
    ("^[A-Z][a-z0-9_]*$", _ident, "lower"),
    ("[0-9]", _has_digit, "no digit"),
    ("^(ab|cd)+$", _pairs, "abc"),
]


@st.composite
def str_kind(draw: st.DrawFn, gen: bool) -> Kind:
    if not gen and draw(st.integers(0, 4)) == 0:  # unconstrained: any character, any spelling
        return Kind(str, st.text(ANY_CHAR, max_size=20), st.sampled_from([5, None, ["x"]]), "str")
    lo = draw(st.integers(0, 3))
    hi = draw(st.integers(max(lo, 2), 16))
    pat = draw(st.sampled_from([None, None, *PATTERNS]))
    if pat is not None and pat[1] is _pairs and hi == lo and lo % 2:
        hi += 1  # pairs only have even lengths: [3, 3] would be an unsatisfiable model
    if pat is None:
        ann = Annotated[str, Field(min_length=lo, max_length=hi)]
        values = st.text(BMP, min_size=lo, max_size=hi)
        bad = ["x" * (hi + 1), 5, None]
        if lo:
            bad.append("")
        return Kind(ann, values, st.sampled_from(bad), f"str[{lo},{hi}]")
    pattern, make, nonmatch = pat
    ann = Annotated[str, Field(min_length=lo, max_length=hi, pattern=pattern)]
    return Kind(ann, make(lo, hi), st.sampled_from([nonmatch, "Z9" * hi, 5, None]), f"str~{pattern}[{lo},{hi}]")


def bool_kind() -> st.SearchStrategy[Kind]:
    return st.just(Kind(bool, st.booleans(), st.sampled_from(["true", 1, None]), "bool"))


@st.composite
def literal_kind(draw: st.DrawFn) -> Kind:
    opts = draw(st.lists(st.one_of(st.text("abcxyz", min_size=1, max_size=4), st.integers(-5, 5)),
                         min_size=1, max_size=3, unique=True))
    ann = Literal[tuple(opts)]  # type: ignore[valid-type]
    return Kind(ann, st.sampled_from(opts), st.sampled_from(["not-an-option", 99, None]), f"Literal{opts}")


@st.composite
def enum_kind(draw: st.DrawFn) -> Kind:
    names = draw(st.lists(st.sampled_from(["red", "green", "blue", "dark red", "x-1"]), min_size=1, max_size=3,
                          unique=True))
    cls = enum.Enum(f"Color{next(_ids)}", {f"M{i}": n for i, n in enumerate(names)}, type=str)
    return Kind(cls, st.sampled_from(list(cls)), st.sampled_from(["purple", 3]), f"Enum{names}")


def date_kind() -> st.SearchStrategy[Kind]:
    return st.just(Kind(dt.date, st.dates(), st.sampled_from(["2023-02-29", "2024-1-1", 20240101]), "date"))


def datetime_kind() -> st.SearchStrategy[Kind]:
    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
    tz = st.one_of(st.just(dt.timezone.utc), offsets)
    values = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=tz)
    return st.just(Kind(dt.datetime, values, st.sampled_from(["2024-01-01T00:00:00", "yesterday", 5]), "datetime"))


def uuid_kind() -> st.SearchStrategy[Kind]:
    return st.just(Kind(uuid.UUID, st.uuids(), st.sampled_from(["not-a-uuid", "1234", 5]), "uuid"))


_LOCAL = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,5})?", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z]{1,8}\.(com|org|io|de)", fullmatch=True)


def email_kind() -> st.SearchStrategy[Kind]:
    values = st.builds(lambda a, b: f"{a}@{b}", _LOCAL, _DOMAIN)
    return st.just(Kind(EmailStr, values, st.sampled_from(["no-at-sign", 5, None]), "email"))


class Tree(BaseModel):
    v: int = Field(ge=0, le=9)
    kids: list[Tree] = Field(default_factory=list, max_length=2)


Tree.model_rebuild()


def _trees(depth: int) -> st.SearchStrategy[Tree]:
    """Trees of at most ``depth`` levels: the compiler unrolls a $ref max_recursion_depth (3) times."""
    kids = st.just([]) if depth <= 1 else st.lists(_trees(depth - 1), max_size=2)
    return st.builds(Tree, v=st.integers(0, 9), kids=kids)


def tree_kind() -> st.SearchStrategy[Kind]:
    bad = st.sampled_from([{"v": 10, "kids": []}, {"v": 1, "kids": "x"}, {"v": 1, "kids": [{"v": -1, "kids": []}]},
                           {"kids": []}])
    return st.just(Kind(Tree, _trees(3), bad, "Tree"))


def leaf_kinds(gen: bool) -> st.SearchStrategy[Kind]:
    leaves = [int_kind(), float_kind(), str_kind(gen), bool_kind(), literal_kind(), enum_kind(), date_kind(),
              datetime_kind(), uuid_kind(), tree_kind()]
    if not gen:  # the automaton's email language is wider than Pydantic's EmailStr (see the xfail below)
        leaves.append(email_kind())
    return st.one_of(leaves)


@st.composite
def optional_of(draw: st.DrawFn, inner: st.SearchStrategy[Kind]) -> Kind:
    k = draw(inner)
    return Kind(Optional[k.ann], st.one_of(st.none(), k.values), k.bad.filter(lambda v: v is not None),  # noqa: UP045
                f"Optional[{k.label}]")


@st.composite
def list_of(draw: st.DrawFn, inner: st.SearchStrategy[Kind]) -> Kind:
    k = draw(inner)
    lo = draw(st.integers(0, 1))
    hi = draw(st.integers(max(lo, 1), 3))
    ann = Annotated[list[k.ann], Field(min_length=lo, max_length=hi)]
    values = st.lists(k.values, min_size=lo, max_size=hi)

    @st.composite
    def bad(d: st.DrawFn) -> Any:
        choice = d(st.integers(0, 3))
        if choice == 0:
            return [d(k.bad)]
        if choice == 1:
            return [_json(k.ann, v) for v in d(st.lists(k.values, min_size=hi + 1, max_size=hi + 1))]
        if choice == 2 and lo:
            return []
        return {"not": "a list"}

    return Kind(ann, values, bad(), f"list[{k.label}]{{{lo},{hi}}}")


KEYS = st.text(st.characters(max_codepoint=0x7E), max_size=4)  # json.dumps escapes DEL: see the xfail below


@st.composite
def dict_of(draw: st.DrawFn, inner: st.SearchStrategy[Kind]) -> Kind:
    k = draw(inner)
    hi = draw(st.integers(1, 2))
    ann = Annotated[dict[str, k.ann], Field(max_length=hi)]
    values = st.dictionaries(KEYS, k.values, max_size=hi)

    @st.composite
    def bad(d: st.DrawFn) -> Any:
        choice = d(st.integers(0, 2))
        if choice == 0:
            return {"k": d(k.bad)}
        if choice == 1:
            vals = d(st.lists(k.values, min_size=hi + 1, max_size=hi + 1))
            return {f"k{i}": _json(k.ann, v) for i, v in enumerate(vals)}
        return ["not", "a", "dict"]

    return Kind(ann, values, bad(), f"dict[str,{k.label}]{{..{hi}}}")


@st.composite
def union_of(draw: st.DrawFn, leaves: st.SearchStrategy[Kind]) -> Kind:
    a, b = draw(leaves), draw(leaves)
    ann = Union[a.ann, b.ann]  # noqa: UP007
    return Kind(ann, st.one_of(a.values, b.values), st.one_of(a.bad, b.bad), f"{a.label}|{b.label}")


@dataclass
class ModelSpec:
    model: type[BaseModel]
    fields: dict[str, Kind]
    required: list[str]

    def __repr__(self) -> str:  # shown by hypothesis on failure
        return f"{self.model.__name__}({', '.join(f'{n}: {k.label}' for n, k in self.fields.items())})"


@st.composite
def model_specs(draw: st.DrawFn, depth: int = 2, gen: bool = False) -> ModelSpec:
    leaves = leaf_kinds(gen)
    if depth <= 0:
        kinds = leaves
    else:
        sub = st.deferred(lambda: model_kinds(depth - 1, gen))
        inner = st.one_of(leaves, sub)
        composite = [optional_of(inner), list_of(inner), union_of(inner), sub]
        if not gen:  # dict keys are free strings: unbounded for a random model
            composite.append(dict_of(inner))
        kinds = st.one_of(leaves, *composite)
    n = draw(st.integers(1, 4))
    fields: dict[str, Kind] = {}
    defs: dict[str, Any] = {}
    required: list[str] = []
    for i in range(n):
        k = draw(kinds)
        name = draw(st.sampled_from(["id", "name", "value", "x", "kind", "items", "when"])) + f"_{i}"
        optional = draw(st.integers(0, 4)) == 0
        if optional:
            k = Kind(Optional[k.ann], st.one_of(st.none(), k.values), k.bad.filter(lambda v: v is not None),  # noqa: UP045
                     f"Optional[{k.label}]=None")
            defs[name] = (k.ann, None)
        else:
            defs[name] = (k.ann, ...)
            required.append(name)
        fields[name] = k
    model = create_model(f"M{next(_ids)}", **defs)  # unique names: no two schemas share a title
    return ModelSpec(model, fields, required)


def model_kinds(depth: int, gen: bool) -> st.SearchStrategy[Kind]:
    @st.composite
    def build(draw: st.DrawFn) -> Kind:
        spec = draw(model_specs(depth, gen))
        return Kind(spec.model, instances(spec), invalid_json(spec), repr(spec))

    return build()


def instances(spec: ModelSpec) -> st.SearchStrategy[BaseModel]:
    return st.fixed_dictionaries({n: k.values for n, k in spec.fields.items()}).map(
        lambda kw: spec.model.model_validate(kw))


@st.composite
def invalid_json(draw: st.DrawFn, spec: ModelSpec) -> Any:
    """A valid instance's JSON with one defect: a bad field value, a missing required key, or not an object."""
    obj = draw(instances(spec)).model_dump(mode="json")
    choice = draw(st.integers(0, 5))
    if choice == 0 and spec.required:
        del obj[draw(st.sampled_from(spec.required))]
    elif choice == 1:
        return draw(st.sampled_from(["string", 3, None, []]))
    else:
        name = draw(st.sampled_from(sorted(spec.fields)))
        obj[name] = draw(spec.fields[name].bad)
    return obj


# --------------------------------------------------------------------------- shared resources


@functools.cache
def _tok() -> Any:
    return trained_bpe_tokenizer()


@functools.cache
def _vocab() -> Vocabulary:
    return Vocabulary.from_tokenizer(_tok())


@functools.cache
def _engine() -> Engine:
    return Engine(tiny_llama(_tok(), hidden=64, layers=2), _tok())


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


# --------------------------------------------------------------------------- properties

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])


@settings(max_examples=300, **SETTINGS)
@given(st.data())
def test_automaton_accepts_valid_and_rejects_invalid_instances(data: st.DataObject) -> None:
    spec = data.draw(model_specs(depth=2, gen=False), label="model")
    schema = spec.model.model_json_schema()
    note(json.dumps(schema))
    ta = compile_automaton(schema, _vocab(), additional_properties=False)
    v = _validator(schema)
    tok = _tok()
    for _ in range(3):
        inst = data.draw(instances(spec), label="valid")
        text = json.dumps(inst.model_dump(mode="json"))
        assert v.is_valid(json.loads(text)), f"strategy bug: {text}"
        assert token_walk_accepts(ta, tok, text), f"valid instance refused: {text}"
    for _ in range(3):
        bad = data.draw(invalid_json(spec), label="invalid")
        assume(not v.is_valid(bad))
        text = json.dumps(bad)
        assert not token_walk_accepts(ta, tok, text), f"invalid instance accepted: {text}"


@settings(max_examples=40, **SETTINGS)
@given(model_specs(depth=2, gen=True), st.integers(0, 2**31 - 1))
def test_sampling_always_validates(spec: ModelSpec, seed: int) -> None:
    schema = spec.model.model_json_schema()
    note(json.dumps(schema))
    v = _validator(schema)
    results = _engine().generate_batch(spec.model, ["Fill in the object.", "Another one."], temperature=1.0,
                                       seed=seed, max_new_tokens=400, return_results=True)
    for r in results:
        note(r.text)
        assert r.error is None, f"{type(r.error).__name__}: {r.error}"
        assert r.complete
        value = json.loads(r.text)
        errors = [e.message for e in v.iter_errors(value)]
        assert not errors, (r.text, errors)
        assert isinstance(r.value, spec.model)
        assert spec.model.model_validate(value) == r.value


def test_recursive_model_round_trip() -> None:
    """The recursive model alone: depth up to the compiler's unrolling is accepted, beyond is refused."""
    ta = compile_automaton(Tree.model_json_schema(), _vocab(), additional_properties=False)
    leaf = {"v": 1, "kids": []}
    three = {"v": 1, "kids": [{"v": 2, "kids": [leaf]}]}
    four = {"v": 1, "kids": [three]}
    assert token_walk_accepts(ta, _tok(), json.dumps(three))
    assert not token_walk_accepts(ta, _tok(), json.dumps(four))
    out = _engine().generate_batch(Tree, ["a", "b", "c"], temperature=1.0, seed=7, max_new_tokens=400)
    assert all(isinstance(t, Tree) for t in out)


class Contact(BaseModel):
    email: EmailStr
    backup: EmailStr


@pytest.mark.xfail(strict=True, reason="BUG: format 'email' is unbounded (a random model never ends the local "
                   "part: TruncatedOutputError) and wider than Pydantic's EmailStr (64-char local part, dotless "
                   "domains, special-use TLDs such as .test: ValidationError)")
def test_sampling_email_fields_validates() -> None:
    results = _engine().generate_batch(Contact, ["a", "b", "c", "d"], temperature=1.0, seed=0, max_new_tokens=400,
                                       return_results=True)
    bad = [(r.text, type(r.error).__name__) for r in results if r.error is not None]
    assert not bad, bad


def test_email_language_vs_pydantic() -> None:
    """Pin the cause of the xfail above: jsonschema's email check is only '@', EmailStr is stricter."""
    ta = compile_automaton(Contact.model_json_schema(), _vocab(), additional_properties=False)
    text = json.dumps({"email": "a@b", "backup": "x@y.test"})
    assert token_walk_accepts(ta, _tok(), text)
    assert _validator(Contact.model_json_schema()).is_valid(json.loads(text))
    with pytest.raises(Exception):  # noqa: B017 - pydantic.ValidationError
        Contact.model_validate_json(text)


def test_truncation_is_reported_not_hidden() -> None:
    """A budget too small for the smallest instance is a TruncatedOutputError on every row."""
    results = _engine().generate_batch(Tree, ["a", "b"], temperature=1.0, seed=1, max_new_tokens=4,
                                       return_results=True)
    assert all(isinstance(r.error, TruncatedOutputError) and not r.complete for r in results)


@pytest.mark.xfail(strict=True, reason="BUG: declared property names, extra (dict) keys and enum/const strings are "
                   "only accepted in their raw UTF-8 spelling; json.dumps' default spelling (\\u00e9) is refused")
@pytest.mark.parametrize("case", ["declared-key", "dict-key", "dict-key-del", "enum-value"])
def test_non_ascii_in_json_dumps_default_spelling(case: str) -> None:
    if case == "declared-key":
        model = create_model(f"K{next(_ids)}", **{"é": (int, ...)})
        value = {"é": 1}
    elif case.startswith("dict-key"):
        model = create_model(f"K{next(_ids)}", d=(dict[str, int], ...))
        value = {"d": {"é" if case == "dict-key" else "\x7f": 1}}
    else:
        model = create_model(f"K{next(_ids)}", e=(enum.Enum(f"E{next(_ids)}", {"A": "été"}, type=str), ...))
        value = {"e": "été"}
    model.model_validate(value)
    ta = compile_automaton(model.model_json_schema(), _vocab(), additional_properties=False)
    assert token_walk_accepts(ta, _tok(), json.dumps(value, ensure_ascii=False))  # the raw spelling is fine
    assert token_walk_accepts(ta, _tok(), json.dumps(value))


# --------------------------------------------------------------------------- keywords against jsonschema


def _same_verdict(schema: dict[str, Any], values: list[Any], spell: Any = json.dumps, *,
                  refusable: bool = False) -> None:
    """The byte automaton of ``schema`` accepts ``spell(v)`` exactly when ``jsonschema`` finds
    ``v`` valid; an unsatisfiable schema must admit none of them; ``refusable``: a SchemaError
    (a shape jsonmode refuses) skips the example."""
    from jsonmode import SchemaError, UnsatisfiableSchemaError
    from jsonmode.compiler import schema_to_node
    from jsonmode.fsm import LazyDFA

    v = jsonschema.Draft202012Validator(schema)
    try:
        d = LazyDFA(schema_to_node(schema))
    except UnsatisfiableSchemaError:
        assert not any(v.is_valid(x) for x in values)
        return
    except SchemaError:
        if not refusable:
            raise
        assume(False)
        return
    for x in values:
        text = spell(x)
        note(text)
        assert d.matches(text.encode()) == v.is_valid(x), text


_SCALARS = st.one_of(st.integers(-3, 3), st.sampled_from([1.0, 2.5, True, False, None]), st.text("ab", max_size=2))


@settings(max_examples=200, **SETTINGS)
@given(st.lists(_SCALARS, max_size=5), st.integers(0, 3), st.one_of(st.none(), st.integers(0, 5)),
       st.lists(st.lists(_SCALARS, max_size=6), min_size=1, max_size=8))
def test_unique_items_automaton_is_jsonschema(domain: list[Any], lo: int, hi: int | None,
                                              arrays: list[list[Any]]) -> None:
    """A uniqueItems array over a finite item domain (1 and 1.0 are one value, true and 1 two)."""
    schema: dict[str, Any] = {"type": "array", "items": {"enum": domain}, "uniqueItems": True, "minItems": lo}
    if hi is not None:
        schema["maxItems"] = hi
    _same_verdict(schema, [*arrays, list(domain)])


_STRING_BRANCH = st.one_of(
    st.sampled_from(["a", "^a", "b$", "ab", "^(a|b)+$", "^.{2}$", "aa|bb"]).map(lambda p: {"pattern": p}),
    st.integers(0, 3).map(lambda n: {"maxLength": n}),
    st.lists(st.one_of(st.text("abc", max_size=3), st.integers(0, 5)), min_size=1, max_size=3).map(
        lambda v: {"enum": v}),
    st.sampled_from([{"type": "integer", "maximum": 3}, {"type": "null"}, {"type": "string"}, {"type": "integer"}]),
)


@settings(max_examples=200, **SETTINGS)
@given(st.lists(_STRING_BRANCH, min_size=2, max_size=4), st.booleans(),
       st.lists(st.one_of(st.text("abcé\"", max_size=4), st.integers(0, 6), st.none()), min_size=1, max_size=12))
def test_one_of_string_branches_is_jsonschema(branches: list[dict[str, Any]], typed: bool, values: list[Any]) -> None:
    """oneOf whose branches overlap on strings (patterns, lengths, enums, beside other types),
    where jsonmode compiles it (overlapping numbers are refused), on each value's
    ``json.dumps(ensure_ascii=False)`` spelling."""
    schema: dict[str, Any] = {"oneOf": branches, **({"type": "string"} if typed else {})}
    _same_verdict(schema, values, lambda x: json.dumps(x, ensure_ascii=False), refusable=True)


@settings(max_examples=150, **SETTINGS)
@given(st.integers(-30, 30), st.integers(0, 40),
       st.lists(st.one_of(st.integers(-35, 35), st.sampled_from([2.0, 2.5, "3"])), min_size=1, max_size=6),
       st.sampled_from([None, 1, 3]))
def test_not_integer_values_is_jsonschema(lo: int, span: int, excluded: list[Any], step: int | None) -> None:
    """``not`` of listed values beside ``type: integer``."""
    schema: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": lo + span, "not": {"enum": excluded}}
    if step is not None:
        schema["multipleOf"] = step
    _same_verdict(schema, list(range(lo - 2, lo + span + 3)), str)


_CONTAINS = st.sampled_from([{"const": 1}, {"minimum": 2}, {"type": "string"}, {"enum": [None, "a"]},
                             {"type": "integer", "maximum": 0}])


@settings(max_examples=150, **SETTINGS)
@given(_CONTAINS, st.sampled_from([None, 0, 1, 2]), st.sampled_from([True, {"type": "integer"},
                                                                      {"type": ["integer", "string"]}]),
       st.integers(0, 2), st.one_of(st.none(), st.integers(0, 4)),
       st.lists(st.lists(st.one_of(st.integers(-2, 4), st.sampled_from(["a", "b", None])), max_size=5),
                min_size=1, max_size=10))
def test_contains_automaton_is_jsonschema(contains: Any, min_contains: int | None, items: Any, lo: int,
                                          hi: int | None, arrays: list[list[Any]]) -> None:
    """contains / minContains over arrays."""
    schema: dict[str, Any] = {"type": "array", "items": items, "contains": contains, "minItems": lo}
    if min_contains is not None:
        schema["minContains"] = min_contains
    if hi is not None:
        schema["maxItems"] = hi
    _same_verdict(schema, arrays)
