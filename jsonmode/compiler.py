"""JSON Schema -> regular language of the JSON text it admits (an :mod:`jsonmode.fsm` AST).

Everything a schema says is either enforced exactly, refused with a
:class:`~jsonmode.errors.SchemaError` naming the keyword by JSON pointer, or (with
``lenient=True``) reported as a warning and not enforced.  Annotations are ignored
on purpose.  Semantics follow llguidance's documented choices where JSON Schema
leaves room: properties are written in schema order, additional properties after
the declared ones, and every value has a bounded nesting depth.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import fsm
from .errors import (
    AutomatonTooLarge,
    RecursionLimitError,
    SchemaError,
    SchemaIssue,
    UnsatisfiableSchemaError,
)
from .fsm import EMPTY, NEVER, Node, alt, alt_list, lit, opt, rep, seq, star
from .schema import JsonSchema, resolve_ref

TYPES = ("null", "boolean", "object", "array", "string", "number", "integer")

# Keywords that never constrain a value: ignored on purpose.
ANNOTATIONS = frozenset({
    "title", "description", "examples", "example", "default", "$schema", "$id", "id", "$comment",
    "deprecated", "readOnly", "writeOnly", "$anchor", "$defs", "definitions", "contentMediaType",
    "contentEncoding", "discriminator", "markdownDescription", "$vocabulary", "$dynamicAnchor",
    "nullable",  # OpenAPI only: JSON Schema validators ignore it, so do we
})
# Validation keywords of JSON Schema (draft 4 .. 2020-12).  Anything outside this set and
# ANNOTATIONS is an unknown keyword, which JSON Schema itself says to ignore.
VALIDATION = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties",
    "propertyNames", "minProperties", "maxProperties", "dependentRequired", "dependentSchemas",
    "dependencies", "unevaluatedProperties", "items", "prefixItems", "additionalItems", "minItems",
    "maxItems", "uniqueItems", "contains", "minContains", "maxContains", "unevaluatedItems",
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "anyOf", "oneOf", "allOf", "not", "if", "then", "else",
    "$ref", "$dynamicRef", "$recursiveRef", "contentSchema",
})


@dataclass
class CompileOptions:
    """Knobs of the schema -> automaton translation (all part of the cache key)."""

    whitespace: str = "default"  # "default" (json.dumps: ", " and ": "), "compact" ("," ":"), "flexible"
    max_whitespace: int = 8  # longest whitespace run in "flexible" mode
    max_recursion_depth: int = 3  # times one $ref may be re-entered on a path
    any_depth: int = 16  # nesting depth of values the schema leaves free ({} / true); built lazily
    additional_properties: bool = True  # default when a schema omits additionalProperties
    lenient: bool = False  # unsupported keywords -> warnings instead of SchemaError
    max_states: int = 200_000  # states of any automaton built eagerly (products, patterns, enums)
    # states a lazily built automaton may grow to while matching (about 2 KB each): counted
    # repetitions (maxItems of structured items, long maxLength) grow with the output they see
    max_lazy_states: int = 500_000
    max_compile_seconds: float | None = 20.0  # schema -> automaton; past it CompileTimeoutError
    disk_cache_states: int = 20_000  # automata up to this size are written to cache_dir
    eager_states: int = 10_000  # limit of eagerly built operands of allOf intersections
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_ANY_CACHE: dict[tuple[int, str, int], fsm.LazyDFA] = {}
_KEY_DFA: list[fsm.DFA] = []
_ANY_WARM_SYMBOLS = 3  # symbols from the start of each shared any-value automaton built when it is made
_ANY_WARM_STATES = 2_000  # ... and at most this many states of it
# Compiled leaf languages (strings with patterns/formats, enums) shared across schemas in a process:
# real schemas repeat them (a $ref'd definition is expanded at every use).
_MEMO: dict[str, tuple[Node, list[tuple[str, str, str]]]] = {}
_MEMO_MAX = 4096
# Bounded repetitions longer than this embed their item as one lazily built automaton.
_EMBED_REPEATS = 16
_UNIQUE_MAX_SETS = 4096  # automaton nodes of a uniqueItems array (sets of item values written so far)
_CONTAINS_MAX_NODES = 4096  # automaton nodes of a contains array (items written x matching items)
_COUNTER_MAX = 100_000_000  # longest maxLength kept as a counter (its states must fit 32 bits)


@functools.lru_cache(maxsize=256)
def _counter(lo: int, hi: int | None, ranges: tuple[tuple[int, int], ...] | None = None) -> fsm.CounterDFA:
    """``lo..hi`` JSON string characters (of ``ranges`` only, when given) as a computed counter."""
    from . import regex

    return regex.counter_dfa(lo, hi, char=None if ranges is None else regex.char_dfa(ranges))


def _class_counter(patterns: list[Any], fmt: Any, lo: int, hi: int | None) -> Node | None:
    """A string whose one pattern is ``^C{m,n}$`` (and no format but an annotation) as a computed
    counter over the JSON spellings of ``C``: its states know their count and character phase,
    so its masks come from per-vocabulary tables, not from a trie walk per position (the
    pattern's own automaton is a chain of ``n`` states, ~1-3 ms a first mask each at n = 255)."""
    from . import formats, regex

    if len(patterns) != 1 or not isinstance(patterns[0], str):
        return None
    if fmt is not None and not (isinstance(fmt, str) and formats.is_annotation(fmt)):
        return None
    found = regex.class_repeat(patterns[0])
    if found is None:
        return None
    ranges, m, n = found
    lo2 = max(lo, m)
    hi2 = n if hi is None else (hi if n is None else min(hi, n))
    if hi2 is not None and hi2 < lo2:
        return NEVER
    if lo2 == 0 and hi2 is None:
        return None  # nothing to count: the pattern's one-state loop takes the string tables already
    if lo2 > _COUNTER_MAX or (hi2 is not None and hi2 > _COUNTER_MAX):
        return None
    if regex.char_dfa(ranges).is_empty():  # a class with no character JSON can spell
        return NEVER if lo2 else EMPTY
    return fsm.DfaNode(_counter(lo2, hi2, ranges))


def _memo_put(key: str, value: tuple[Node, list[tuple[str, str, str]]]) -> None:
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = value


def _key_texts(names: tuple[str, ...]) -> list[bytes]:
    """The names as a key's content is written (JSON-escaped, without the quotes)."""
    return [json.dumps(n, ensure_ascii=False)[1:-1].encode() for n in names]


@functools.lru_cache(maxsize=1024)
def _known_keys_dfa(names: tuple[str, ...]) -> fsm.DFA:
    return fsm.literals_dfa(_key_texts(names))


@functools.lru_cache(maxsize=1024)
def _pattern_key_dfa(pattern: str, max_states: int) -> fsm.DFA:
    """Key contents a patternProperties pattern matches (shared: $ref'd objects repeat them)."""
    from . import regex

    return fsm.compile_dfa(regex.string_content(pattern, 0, None), max_states=max_states)


@functools.lru_cache(maxsize=1024)
def _key_regions(patterns: tuple[str, ...], names: tuple[str, ...], max_states: int
                 ) -> tuple[list[tuple[tuple[int, ...], fsm.DFA]], fsm.DFA]:
    """Undeclared keys split by the patterns they match, and the keys no pattern matches.

    Keys matching several patterns need all their schemas: with few patterns the keys are
    split into regions by the set they match; with more, such keys are left out.  Cached
    because a $ref'd object compiles once per recursion context with the same key sets.
    """
    any_key = _canonical_key_dfa()
    dfas = [_pattern_key_dfa(p, max_states) for p in patterns]

    def minus_known(d: fsm.DFA) -> fsm.DFA:
        if not names:
            return d
        if d is any_key:
            return _extra_keys_dfa(names, max_states)
        return fsm.difference(d, _known_keys_dfa(names), max_states=max_states)

    regions: list[tuple[tuple[int, ...], fsm.DFA]] = []
    if 1 < len(dfas) <= 6:
        parts: list[tuple[tuple[int, ...], fsm.DFA]] = [((), minus_known(any_key))]
        for i, d in enumerate(dfas):
            parts = [r for sel, kd in parts for r in (
                (sel + (i,), fsm.intersect(kd, d, max_states=max_states)),
                (sel, fsm.difference(kd, d, max_states=max_states))) if not r[1].is_empty()]
        regions = [(sel, kd) for sel, kd in parts if sel]
    else:
        for i, d in enumerate(dfas):
            # canonical spellings only, as every other key (and the regions above)
            kd = fsm.intersect(minus_known(d), any_key, max_states=max_states)
            for j, other in enumerate(dfas):
                if i != j:
                    kd = fsm.difference(kd, other, max_states=max_states)
            regions.append(((i,), kd))
    rest = minus_known(any_key)
    for d in dfas:
        rest = fsm.difference(rest, d, max_states=max_states)
    return regions, rest


@functools.lru_cache(maxsize=1024)
def _extra_keys_dfa(names: tuple[str, ...], max_states: int) -> fsm.DFA:
    """Canonical keys other than ``names`` (a :class:`~jsonmode.fsm.StringsDFA`: never dies)."""
    keys = _canonical_key_dfa()
    assert isinstance(keys, fsm.StringsDFA)  # canonical key text never dies (tests/test_fsm.py)
    return fsm.strings_minus(keys, _key_texts(names), max_states=max_states)


def _canonical_key_dfa() -> fsm.DFA:
    from . import regex

    if not _KEY_DFA:
        _KEY_DFA.append(fsm.strings_dfa(fsm.compile_dfa(canonical_key_content()), regex.canonical_key_char()))
    return _KEY_DFA[0]

_ANY_LOCK = threading.RLock()
_INLINE_POSITIONS = 400  # a $ref'd definition used once is inlined up to this many positions
_KEY_SETS = itertools.count(1)  # ids of complete additional-key sets (fsm.DfaNode.key_set)


def _ref_uses(root: JsonSchema) -> dict[str, int]:
    """How many times each ``$ref`` string occurs in ``root``, not followed (iteratively: schemas
    nest deep; enum values count too, a superset that only costs cache hits)."""
    uses: dict[str, int] = {}
    todo: list[Any] = [root]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            ref = v.get("$ref")
            if isinstance(ref, str):
                uses[ref] = uses.get(ref, 0) + 1
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return uses


class _Ctx:
    def __init__(self, root: JsonSchema, opts: CompileOptions) -> None:
        self.root = root
        self.opts = opts
        self.issues: list[SchemaIssue] = []
        self.ref_depth: dict[str, int] = {}
        self.truncated = False
        self.free_values = False  # a shared any-value automaton is embedded (see any_value)
        self._ref_cache: dict[tuple[str, tuple[tuple[str, int], ...]], Node] = {}
        self._merge_cache: dict[tuple[str, bool, tuple[tuple[str, int], ...]], Node] = {}
        self._closures: dict[str, frozenset[str]] = {}  # $ref -> itself and every $ref reachable from it
        self._direct: dict[str, frozenset[str]] = {}  # $ref -> the $refs written in its target
        # oneOf disjointness proofs, by the JSON of what they compare: a recursion meets the same
        # oneOf at every level, and a proof depends on the schemas and the root alone
        self._proofs: dict[str, bool] = {}
        self.ref_uses = _ref_uses(root)
        ws = opts.whitespace
        if ws == "default":
            self.item_sep, self.key_sep = lit(", "), lit(": ")
            self.open_ws = self.close_ws = EMPTY
            self.sep_text = (", ", ": ")
        elif ws == "compact":
            self.item_sep, self.key_sep = lit(","), lit(":")
            self.open_ws = self.close_ws = EMPTY
            self.sep_text = (",", ":")
        elif ws == "flexible":
            w = rep(fsm.sym(0x20, 0x09, 0x0A, 0x0D), 0, opts.max_whitespace)
            self.ws = w
            self.item_sep, self.key_sep = seq(w, lit(","), w), seq(w, lit(":"), w)
            self.open_ws = self.close_ws = w
            self.sep_text = (", ", ": ")
        else:
            raise ValueError(f"whitespace must be 'default', 'compact' or 'flexible', not {ws!r}")

    def issue(self, pointer: str, keyword: str, message: str) -> None:
        self.issues.append(SchemaIssue(pointer, keyword, message))

    # ------------------------------------------------------------------ helpers

    def dumps(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=self.sep_text, allow_nan=False)

    def json_string(self, s: str) -> Node:
        return lit(json.dumps(s, ensure_ascii=False))

    @property
    def eager_limit(self) -> int:
        """States an automaton built eagerly on the way (an intersection, a difference) may have."""
        return min(self.opts.eager_states, self.opts.max_states)

    def to_dfa(self, node: Node) -> fsm.DFA:
        return fsm.compile_dfa(node, max_states=self.opts.max_states)

    def lazy_node(self, node: Node, *, value: bool = False) -> fsm.DfaNode:
        """``node`` as one lazily built automaton embedded by reference (grows to max_lazy_states).

        ``value``: ``node`` is a JSON value (never the empty text).  Inside a recursion (a
        definition entered again on this path) its construction then waits until an output
        first reaches it (see ``LazyDFA(deferred=True)``): the unrolled levels are most of such
        a compile and outputs rarely nest that deep.  The first level is built now: deferring
        it moved 10-20 ms walks into first masks."""
        deferred = value and max(self.ref_depth.values(), default=0) >= 2
        return fsm.DfaNode(fsm.LazyDFA(node, max_states=self.opts.max_lazy_states, limit_name="max_lazy_states",
                                       deferred=deferred))

    # ------------------------------------------------------------------ any value

    def any_value(self, depth: int | None = None) -> Node:
        """Any JSON value nested at most ``depth`` levels: one lazily built automaton per
        (depth, whitespace) shared by every schema in the process, embedded by reference."""
        self.free_values = True
        d = self.opts.any_depth if depth is None else depth
        key = (d, self.opts.whitespace, self.opts.max_whitespace)
        with _ANY_LOCK:
            lazy = _ANY_CACHE.get(key)
            if lazy is None:
                # shared by every schema and grown on demand: bounded by its full size
                # (only the nesting an instance reaches is ever built), not by one schema's max_states
                lazy = fsm.LazyDFA(self._any_node(d), max_states=2_000_000)
                # built now, once per process, for every later schema: the first bytes of a free
                # value (a number's, a literal's, an object's first key) cost a cold mask ~1 ms
                # of row builds per nesting level otherwise, in every schema with an open object
                lazy.expand_near(_ANY_WARM_SYMBOLS, _ANY_WARM_STATES)
                _ANY_CACHE[key] = lazy
                fsm.SHARED_AUTOMATA[id(lazy)] = lazy
        return fsm.DfaNode(lazy)

    def _any_node(self, d: int) -> Node:
        from . import numbers, regex

        scalars = alt(
            lit("null"), lit("true"), lit("false"),
            numbers.number_node(),
            seq(lit('"'), regex.string_content(), lit('"')),
        )
        if d <= 0:
            return scalars
        inner = self.any_value(d - 1)
        key = seq(lit('"'), regex.string_content(), lit('"'))
        arr = seq(lit("["), self.open_ws, opt(seq(inner, star(seq(self.item_sep, inner)))), self.close_ws, lit("]"))
        entry = seq(key, self.key_sep, inner)
        obj = seq(lit("{"), self.open_ws, opt(seq(entry, star(seq(self.item_sep, entry)))), self.close_ws, lit("}"))
        return alt(scalars, arr, obj)

    # ------------------------------------------------------------------ main dispatch

    def node(self, schema: JsonSchema, ptr: str) -> Node:
        if schema is True or schema == {}:
            return self.any_value()
        if schema is False:
            return NEVER
        if not isinstance(schema, dict):
            self.issue(ptr, "", f"schema must be an object or a boolean, got {type(schema).__name__}")
            return NEVER
        schema = dict(schema)
        req = schema.get("required")
        if req is not None and not (isinstance(req, list) and all(isinstance(r, str) for r in req)):
            self.issue(ptr + "/required", "required", "required must be an array of property names"
                       + (" (draft 3's boolean form is not supported)" if isinstance(req, bool) else ""))
            del schema["required"]
        finite = self._finite(schema, ptr)
        if finite is not None:
            return finite
        if "$ref" in schema:
            return self._ref(schema, ptr)
        for kw in ("$dynamicRef", "$recursiveRef"):
            if kw in schema:
                self.issue(ptr + "/" + kw, kw, f"{kw} is not supported (use $ref to $defs)")
                schema.pop(kw)
        if "allOf" in schema:
            return self._all_of(schema, ptr)
        if "anyOf" in schema or "oneOf" in schema:
            return self._any_one_of(schema, ptr)
        if "not" in schema or "if" in schema:
            return self._not_if(schema, ptr)
        if any(k in schema for k in _DEPENDENCY_KEYWORDS):
            return self._dependencies(schema, ptr)
        if "enum" in schema or "const" in schema:
            return self._enum(schema, ptr)
        return self._typed(schema, ptr)

    # ------------------------------------------------------------------ references

    def _ref(self, schema: dict[str, Any], ptr: str) -> Node:
        ref = schema.pop("$ref")
        if not isinstance(ref, str):
            self.issue(ptr + "/$ref", "$ref", "$ref must be a string")
            return NEVER
        target, tptr = resolve_ref(self.root, ref, ptr)
        count = self.ref_depth.get(ref, 0)
        if count >= self.opts.max_recursion_depth:
            self.truncated = True
            return NEVER
        self.ref_depth[ref] = count + 1
        try:
            siblings = {k: v for k, v in schema.items() if k not in ANNOTATIONS}
            if siblings:
                return self.node({"allOf": [target, siblings]}, ptr)
            # a definition is compiled once per recursion context and embedded by reference
            key = (ref, self._context(self._reach(ref)))
            hit = self._reuse(self._ref_cache, key)
            if hit is not None:
                return hit
            trunc = self.truncated
            self.truncated = False
            node = self.node(target, tptr)
            if node is not NEVER and not isinstance(node, fsm.DfaNode | fsm.Sym) and (
                    self.ref_uses.get(ref, 0) > 1 or sum(map(bool, self.ref_depth.values())) > 1  # (this one too)
                    or fsm.position_count(node, _INLINE_POSITIONS) > _INLINE_POSITIONS):
                # shared (or recursive): one lazy automaton embedded wherever it is used.  A
                # small definition referenced once, outside any other definition, is inlined
                # instead: its positions join the user's, so its states are plain ones, not
                # mirrors of a nested automaton (one level of subset construction per state
                # instead of one per nesting level).  Inside another definition (compiled once
                # per recursion context, maybe copied) or large, inlining costs compile time
                node = self.lazy_node(node, value=True)
            if not self.truncated:  # a truncated expansion depends on the path: do not reuse it
                self._ref_cache[key] = node
            self.truncated = self.truncated or trunc
            return node
        finally:
            self.ref_depth[ref] = count

    def _reuse(self, cache: dict[Any, Node], key: Any) -> Node | None:
        """A compile cached under ``key``, if any.  One met again that was inlined (its user is
        compiled twice in one context) becomes one embedded automaton from now on, not a copy
        per user."""
        hit = cache.get(key)
        if hit is not None and hit is not NEVER and not isinstance(hit, fsm.DfaNode | fsm.Sym):
            hit = cache[key] = self.lazy_node(hit, value=True)
        return hit

    def _context(self, refs: set[str] | frozenset[str]) -> tuple[tuple[str, int], ...]:
        """The recursion context a compile of something that can reach ``refs`` depends on: how
        often each of them is open on the current path (no other count can change what it
        compiles to).  Keying on every open definition made a type used under N different
        parents compile N times."""
        return tuple(sorted((k, v) for k, v in self.ref_depth.items() if v and k in refs))

    def _reach(self, ref: str) -> frozenset[str]:
        """``ref`` and every ``$ref`` reachable from its target."""
        got = self._closures.get(ref)
        if got is not None:
            return got
        seen = {ref}
        todo = list(self._direct_refs(ref))
        while todo:
            r = todo.pop()
            if r not in seen:
                seen.add(r)
                todo.extend(self._direct_refs(r))
        got = self._closures[ref] = frozenset(seen)
        return got

    def _direct_refs(self, ref: str) -> frozenset[str]:
        got = self._direct.get(ref)
        if got is None:
            try:
                target, _ = resolve_ref(self.root, ref, "")
            except SchemaError:  # reported where the reference is compiled
                target = {}
            got = self._direct[ref] = frozenset(_ref_uses(target))
        return got

    def deref(self, schema: JsonSchema, ptr: str) -> JsonSchema:
        """Follow a chain of bare ``$ref``s (no siblings) without counting recursion."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            rest = {k: v for k, v in schema.items() if k != "$ref" and k not in ANNOTATIONS}
            if rest:
                break
            schema, _ = resolve_ref(self.root, schema["$ref"], ptr)
            seen += 1
        return schema

    # ------------------------------------------------------------------ combinators

    def _all_of(self, schema: dict[str, Any], ptr: str) -> Node:
        parts = schema.pop("allOf")
        if not isinstance(parts, list) or not parts:
            self.issue(ptr + "/allOf", "allOf", "allOf must be a non-empty array")
            return NEVER
        # The parts merge first and the sibling keywords last: `allOf: [{$ref: Base}]` beside
        # `properties` is how schemas spell inheritance, and instances write the base's fields first.
        merged: JsonSchema = {}
        leftovers: list[tuple[JsonSchema, str]] = []
        queue: list[tuple[JsonSchema, str]] = [(part, f"{ptr}/allOf/{i}") for i, part in enumerate(parts)]
        queue.append((schema, ptr))
        entered: list[tuple[str, int]] = []
        try:
            while queue:
                part, pptr = queue.pop(0)
                p = part  # (a bare $ref is entered below too: deref would skip the recursion count)
                ref = p.get("$ref") if isinstance(p, dict) else None
                if isinstance(ref, str) and self.ref_depth.get(ref, 0) < self.opts.max_recursion_depth:
                    # a $ref with siblings is allOf(target, siblings): merge both (entering the
                    # reference counts towards max_recursion_depth, as in _ref)
                    target, tptr = resolve_ref(self.root, ref, pptr)
                    count = self.ref_depth.get(ref, 0)
                    entered.append((ref, count))
                    self.ref_depth[ref] = count + 1
                    assert isinstance(p, dict)
                    queue[0:0] = [(target, tptr), ({k: v for k, v in p.items() if k != "$ref"}, pptr)]
                    continue
                if isinstance(p, dict) and isinstance(p.get("oneOf"), list) and p["oneOf"] and "anyOf" not in p:
                    # a oneOf whose branches no value shares is their anyOf, which merges (and
                    # distributes over another part's anyOf) where a oneOf would be intersected
                    rest = {k: v for k, v in p.items() if k != "oneOf"}
                    branches = p["oneOf"]
                    if len(branches) == 1 or self._pairwise_disjoint(
                            {k: v for k, v in rest.items() if k not in ANNOTATIONS}, branches, pptr):
                        p = {**rest, "anyOf": branches}
                if isinstance(p, dict) and p.keys() - ANNOTATIONS == {"not"}:
                    # "never both a and b" parts: alternatives of absent names, which merge (two
                    # such parts and a sibling anyOf distribute into their combinations)
                    alts = self._absent_alternatives(self.deref(p["not"], pptr + "/not"), pptr)
                    if alts:
                        p = {"anyOf": alts}
                m = merge_schemas(merged, p)
                if m is None:
                    leftovers.append((part, pptr))
                else:
                    merged = m
            return self._merged(merged, leftovers, ptr)
        finally:
            for ref, count in reversed(entered):
                self.ref_depth[ref] = count

    def _merged(self, merged: JsonSchema, leftovers: list[tuple[JsonSchema, str]], ptr: str) -> Node:
        """:meth:`_intersect`, compiled once per (merged schema, parts left over, recursion context).

        Schemas that spell inheritance as ``allOf: [{$ref: Base}, ...]`` at every level merge the
        same definitions again at every use: without this, a document of such types (the
        Washington Post's ANS schemas) re-derived the same merged sub-schemas ~10^4 times and hit
        max_compile_seconds.  A second use embeds the first one's automaton by reference, as a
        ``$ref`` used twice does.  Only a clean compile (no issue, no truncation at
        max_recursion_depth) is reused: those depend on the path that reached them.
        """
        whole = [merged, [part for part, _ in leftovers]]
        try:
            text = json.dumps(whole, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):  # not JSON data: compile it as it is
            return self._intersect(merged, leftovers, ptr)
        key = (text, ptr == "", self._context(frozenset().union(*map(self._reach, _ref_uses(whole)))))
        hit = self._reuse(self._merge_cache, key)
        if hit is not None:
            return hit
        n_issues, truncated = len(self.issues), self.truncated
        self.truncated = False
        node = self._intersect(merged, leftovers, ptr)
        if len(self.issues) == n_issues and not self.truncated:
            self._merge_cache[key] = node
        self.truncated = self.truncated or truncated
        return node

    def _intersect(self, merged: JsonSchema, leftovers: list[tuple[JsonSchema, str]], ptr: str) -> Node:
        """Merged allOf parts, intersected at the automaton level with the parts that did not merge."""
        node = self.node(merged, ptr)
        lim = self.eager_limit
        for part, pptr in leftovers:
            if node is NEVER:
                return NEVER
            other = self.node(part, pptr)
            if other is NEVER:  # e.g. a $ref past max_recursion_depth: nothing to intersect
                return NEVER
            # text-level intersection is sound: a text in both languages is an instance of both
            try:
                node = dfa_node(fsm.intersect(fsm.compile_dfa(node, max_states=lim),
                                              fsm.compile_dfa(other, max_states=lim),
                                              max_states=self.opts.max_states))
            except AutomatonTooLarge:
                self.issue(pptr, "allOf", f"allOf branches that do not merge need an automaton intersection "
                           f"larger than eager_states={lim}")
                return NEVER
        return node

    def _any_one_of(self, schema: dict[str, Any], ptr: str) -> Node:
        key = "anyOf" if "anyOf" in schema else "oneOf"
        branches = schema.pop(key)
        if not isinstance(branches, list) or not branches:
            self.issue(ptr + "/" + key, key, f"{key} must be a non-empty array")
            return NEVER
        nodes = []
        base = {k: v for k, v in schema.items() if k not in ANNOTATIONS}
        if key == "oneOf" and len(branches) > 1:
            alts = self._presence_alternatives(base, branches, ptr)
            if alts is not None:
                return alt_list([self.node({"allOf": [base, a]} if base else a, f"{ptr}/oneOf/{i}")
                                 for i, a in alts])
        for i, b in enumerate(branches):
            bptr = f"{ptr}/{key}/{i}"
            if base:
                nodes.append(self.node({"allOf": [base, b]}, bptr))
            else:
                nodes.append(self.node(b, bptr))
        if key == "anyOf" or len(nodes) == 1 or self._pairwise_disjoint(base, branches, ptr):
            return alt_list(nodes)
        kinds = self._one_of_by_kind(base, branches, ptr)
        if kinds is not None:
            by_kind, apart = kinds
            parts = [self.node({"allOf": [base, branches[i], {"type": sorted(ks)}]}, f"{ptr}/oneOf/{i}")
                     for i, ks in by_kind.items() if ks]
            strings = self._one_of_strings(base, [{"allOf": [b, {"type": "string"}]} for b in branches], ptr) \
                if apart else NEVER
            if strings is not None:
                return alt_list([*parts, strings])
        # Text-level differences are unsound for values with several spellings (objects in
        # another property order, escaped strings, 1 vs 1.0), so overlapping oneOf is refused.
        self.issue(ptr + "/oneOf", "oneOf", "oneOf branches that may overlap are not supported "
                   "(add a const/enum discriminator or disjoint types)")
        return alt_list(nodes)

    def _dependencies(self, schema: dict[str, Any], ptr: str) -> Node:
        """``dependencies`` / ``dependentRequired`` / ``dependentSchemas`` as alternatives.

        "If property ``p`` is present, the object also matches ``D``" holds exactly when ``p`` is
        absent (``properties: {p: false}``) or present with ``D`` (``required: [p]`` and ``D``; a
        list of names is ``required`` too).  Each dependency doubles the alternatives (one whose
        ``p`` the schema already requires does not), so at most ``_PRESENCE_ALTERNATIVES``.
        """
        options: list[list[JsonSchema]] = []
        required = schema.get("required")
        known = set(required) if isinstance(required, list) else set()
        for kw in _DEPENDENCY_KEYWORDS:
            deps = schema.pop(kw, None)
            if deps is None:
                continue
            if not isinstance(deps, dict):
                self.issue(f"{ptr}/{kw}", kw, f"{kw} must be an object")
                continue
            for name, dep in deps.items():
                if isinstance(dep, list) and kw != "dependentSchemas" and all(isinstance(n, str) for n in dep):
                    extra: JsonSchema = {"required": sorted(set(dep))} if dep else True
                elif isinstance(dep, dict | bool) and kw != "dependentRequired":
                    extra = dep
                else:
                    self.issue(f"{ptr}/{kw}/{_esc(name)}", kw, f"{kw} values must be "
                               + ("arrays of names" if kw == "dependentRequired" else "schemas")
                               + ("" if kw == "dependentSchemas" else " or arrays of names"))
                    continue
                if extra is True or extra == {}:
                    continue  # nothing more when present
                present = {"allOf": [{"required": [name]}, extra]}
                options.append([present] if name in known else [{"properties": {name: False}}, present])
        count = math.prod(len(o) for o in options)
        if count > _PRESENCE_ALTERNATIVES:
            self.issue(ptr, "dependencies", f"{len(options)} property dependencies make {count} alternatives "
                       f"(at most {_PRESENCE_ALTERNATIVES})")
            return self.node(schema, ptr)
        if not options:
            return self.node(schema, ptr)
        return alt_list([self.node({"allOf": [schema, *choice]}, ptr) for choice in itertools.product(*options)])

    def _presence_alternatives(self, base: dict[str, Any], branches: list[JsonSchema], ptr: str
                               ) -> list[tuple[int, dict[str, Any]]] | None:
        """``oneOf`` branches that only say which properties are ``required`` ("exactly one of
        radius / length+width / base+height"), as overlapping-free alternatives.

        A value matches branch ``i`` alone when it is an object holding ``R_i`` and, for every
        other branch ``j``, missing one name of ``R_j`` (not in ``R_i``): each choice of those
        missing names is one alternative, ``allOf: [base, {type: object, required: R_i,
        properties: {missing: false}}]``, and their union is exactly the oneOf (a value, not a
        text, property: no spelling argument needed).  None when a branch says more than
        ``required``, or the choices multiply past ``_PRESENCE_ALTERNATIVES``.
        """
        reqs: list[frozenset[str]] = []
        for i, b in enumerate(branches):
            b = self.deref(b, f"{ptr}/oneOf/{i}")
            if not isinstance(b, dict) or set(b) - ANNOTATIONS != {"required"}:
                return None
            r = b["required"]
            if not isinstance(r, list) or not all(isinstance(n, str) for n in r):
                return None
            reqs.append(frozenset(r))
        out: list[tuple[int, dict[str, Any]]] = []
        for i, ri in enumerate(reqs):
            choices: list[frozenset[str]] = [frozenset()]
            for j, rj in enumerate(reqs):
                if j == i:
                    continue
                names = sorted(rj - ri)  # one of these must be missing
                choices = [c | {n} for c in choices for n in names]
                if len(choices) > _PRESENCE_ALTERNATIVES:
                    return None
            minimal = [c for c in set(choices) if not any(d < c for d in choices)]
            for c in sorted(minimal, key=sorted):
                alt: dict[str, Any] = {"type": "object", "required": sorted(ri)}
                if c:
                    alt["properties"] = {n: False for n in sorted(c)}
                out.append((i, alt))
        if len(out) > _PRESENCE_ALTERNATIVES:
            return None
        return out

    # ------------------------------------------------------------------ oneOf disjointness
    # Proofs are about VALUES (JSON Schema semantics), not texts: when no value is valid against two
    # branches, the value of every text of the alternation matches exactly one branch, so oneOf is
    # anyOf.  Every step may only WIDEN a schema (ignore a keyword, drop an allOf part that does not
    # merge, an unresolvable $ref): disjoint wider schemas have disjoint narrower ones.

    def _pairwise_disjoint(self, base: dict[str, Any], branches: list[JsonSchema], ptr: str) -> bool:
        """Is no value valid against two of the branches (each with the sibling keywords ``base``)?"""
        return self._proof(["oneOf", base, branches], lambda: self._pairwise_disjoint_uncached(base, branches, ptr))

    def _pairwise_disjoint_uncached(self, base: dict[str, Any], branches: list[JsonSchema], ptr: str) -> bool:
        flat = [self._widen({"allOf": [base, b]} if base else b, ptr) for b in branches]
        return all(self._disjoint(flat[i], flat[j], ptr, 0)
                   for i in range(len(flat)) for j in range(i + 1, len(flat)))

    def _proof(self, what: Any, prove: Callable[[], bool]) -> bool:
        """``prove()``, memoised per compile by the JSON of ``what`` (it is compared as it stands)."""
        key = _json_key(what)
        if key is None:
            return prove()
        hit = self._proofs.get(key)
        if hit is None:
            hit = self._proofs[key] = prove()
        return hit

    def _one_of_by_kind(self, base: dict[str, Any], branches: list[JsonSchema], ptr: str
                        ) -> tuple[dict[int, set[str]], bool] | None:
        """``oneOf`` split by JSON type: for each type, the branches a value of it may match
        alone, or None where that is not provable.

        Branches that overlap only on types they leave free are common: object branches with
        ``properties``/``required`` and no ``type`` (JSON Patch's operations) also admit every
        string or number, so such a value matches them all and is valid for none.  Per type:
        two or more branches admitting all of it exclude it; one such branch keeps it if no other
        branch may take it; none keeps each branch that may, when those are pairwise disjoint
        on it.  Strings that no such rule settles are set apart, for :meth:`_one_of_strings`.
        Returns (branch index -> the types it is compiled for, whether strings are apart).
        """
        out: dict[int, set[str]] = {i: set() for i in range(len(branches))}
        apart = False
        flat = [self._widen(b, ptr) for b in branches]
        for kind in sorted(_KINDS):
            full = [i for i, b in enumerate(branches) if self._admits_all(b, kind, ptr)]
            some = [i for i, f in enumerate(flat) if i not in full
                    and (f is True or isinstance(f, dict) and kind in _kind_set(f))]
            if len(full) >= 2:
                continue  # every value of this type matches two branches
            if full and not some:
                out[full[0]].add(kind)
                continue
            # with a full branch, a value is valid iff outside the other branches (a difference)
            typed = [{"allOf": [base, branches[i], {"type": kind}]} if base else
                     {"allOf": [branches[i], {"type": kind}]} for i in some]
            if full or not self._pairwise_disjoint_uncached({}, typed, ptr):
                if kind != "string":
                    return None
                apart = True
                continue
            for i in some:
                out[i].add(kind)
        return out, apart

    def _admits_all(self, schema: JsonSchema, kind: str, ptr: str, depth: int = 0) -> bool:
        """True only if ``schema`` admits every value of JSON type ``kind`` (exactly: no widening)."""
        if depth > 8:
            return False
        try:
            schema = self.deref(schema, ptr)
        except SchemaError:
            return False
        if schema is True:
            return True
        if not isinstance(schema, dict):
            return False
        for k, v in schema.items():
            if k in ANNOTATIONS or k not in VALIDATION:
                continue
            if k == "type":
                names = [v] if isinstance(v, str) else v
                if not isinstance(names, list) or kind not in names:
                    return False
            elif k == "allOf":
                if not isinstance(v, list) or not all(self._admits_all(p, kind, ptr, depth + 1) for p in v):
                    return False
            elif k == "$ref":
                try:
                    target, _ = resolve_ref(self.root, v, ptr)
                except SchemaError:
                    return False
                if not self._admits_all(target, kind, ptr, depth + 1):
                    return False
            elif not any(k in kws for other, kws in _KIND_KEYWORDS.items() if other != kind):
                return False  # a keyword that constrains this type (or several: enum, not, ...)
        return True

    def _widen(self, schema: JsonSchema, ptr: str, depth: int = 0) -> JsonSchema:
        """A schema admitting every value of ``schema`` (maybe more) with no $ref/allOf to follow at its
        top: references are resolved and allOf parts merged; a part that does not merge is dropped."""
        if depth > 8:
            return True
        try:
            schema = self.deref(schema, ptr)
            if isinstance(schema, dict) and "$ref" in schema:
                # $ref with siblings: drafts up to 7 ignore the siblings, later ones add them (as we
                # compile it): the target alone is the wider of both readings
                return self._widen(resolve_ref(self.root, schema["$ref"], ptr)[0], ptr, depth + 1)
        except SchemaError:
            return True
        if not isinstance(schema, dict):
            return schema if isinstance(schema, bool) else True
        parts = schema.get("allOf")
        if not isinstance(parts, list):
            return schema
        out: JsonSchema = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            m = merge_schemas(out, self._widen(part, ptr, depth + 1))
            if m is not None:
                out = m
        return out

    def _disjoint(self, a: JsonSchema, b: JsonSchema, ptr: str, depth: int) -> bool:
        """True only if no JSON value is valid against both ``a`` and ``b`` (False: not proved)."""
        a, b = self._widen(a, ptr), self._widen(b, ptr)
        if a is False or b is False:
            return True
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False  # true (or invalid) admits everything
        common = _kind_set(a) & _kind_set(b)
        if not common:
            return True  # a value has one JSON type (integers are numbers: 1 and 1.0 are one value)
        for x, y in ((a, b), (b, a)):
            vals = _values(x)
            if vals is not None and not any(_may_admit(y, v) for v in vals):
                return True  # x admits only these values and y admits none of them
        for kind, lo_key, hi_key in (("number", "minimum", "maximum"), ("string", "minLength", "maxLength"),
                                     ("array", "minItems", "maxItems"), ("object", "minProperties", "maxProperties")):
            if common == {kind} and _ranges_disjoint(_bounds(a, lo_key, hi_key), _bounds(b, lo_key, hi_key)):
                return True  # the values' size (or number) would have to lie in both ranges
        if common == {"string"} and self._strings_disjoint(a, b, ptr):
            return True
        if common == {"object"} and depth < 4:
            names = [r for s in (a, b) for r in (s.get("required") or []) if isinstance(r, str)]
            for name in dict.fromkeys(names):
                # a common instance has this property (one branch requires it), and its value would
                # have to match what both branches say of it (false: a property the branch forbids)
                if self._disjoint(self._prop_schema(a, name), self._prop_schema(b, name), ptr, depth + 1):
                    return True
        return False

    def _strings_disjoint(self, a: dict[str, Any], b: dict[str, Any], ptr: str) -> bool:
        """No string is valid against both plain string schemas (patterns, formats, lengths): their
        automata over the one spelling jsonmode writes do not intersect (small automata only)."""
        if any(k in VALIDATION and k not in _STRING_ONLY for s in (a, b) for k in s):
            return False
        return self._proof(["strings", a, b], lambda: self._strings_disjoint_uncached(a, b, ptr))

    def _strings_disjoint_uncached(self, a: dict[str, Any], b: dict[str, Any], ptr: str) -> bool:
        n_issues, truncated = len(self.issues), self.truncated
        sub = ptr + "/oneOf"  # (never "": _finite reads pointer "" as the root schema itself)
        try:
            da, db = (fsm.compile_dfa(self.node({"allOf": [s, {"type": "string"}]}, sub), max_states=_DISJOINT_STATES)
                      for s in (a, b))
            return len(self.issues) == n_issues and fsm.intersect(da, db, max_states=_DISJOINT_STATES).is_empty()
        except AutomatonTooLarge:
            return False
        finally:
            del self.issues[n_issues:]
            self.truncated = truncated

    def _prop_schema(self, schema: dict[str, Any], name: str) -> JsonSchema:
        """What the value of property ``name`` must match in an object valid against ``schema``:
        properties[name] and every matching patternProperties entry, else additionalProperties."""
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        pats = schema.get("patternProperties")
        matched = _matching_patterns(pats, name, self.opts.max_states) if isinstance(pats, dict) else []
        sub: list[JsonSchema] = [props[name]] if name in props else []
        if matched is None:
            return sub[0] if sub else True  # whether a pattern applies is unknown: the wider of both cases
        sub.extend(matched)
        if not sub:
            addl = schema.get("additionalProperties", True)
            return addl if isinstance(addl, bool | dict) else True
        return sub[0] if len(sub) == 1 else {"allOf": sub}

    def _not_if(self, schema: dict[str, Any], ptr: str) -> Node:
        if "not" in schema:
            neg = self.deref(schema.pop("not"), ptr + "/not")
            if neg is True or neg == {}:
                return NEVER
            if neg is False:
                return self.node(schema, ptr)
            only_type = isinstance(neg, dict) and set(neg) - ANNOTATIONS <= {"type"}
            nt = neg.get("type") if isinstance(neg, dict) else None
            kinds = ({nt} if isinstance(nt, str) else set(nt)) if isinstance(nt, str | list) else None
            if kinds is not None and only_type and "integer" in kinds and "number" not in kinds:
                self.issue(ptr + "/not", "not", "not {type: integer} (non-integer numbers only) is not supported")
                return NEVER
            if kinds is not None and only_type:  # not {type: X}: restrict the type instead
                allowed = set(TYPES) - kinds - ({"integer"} if "number" in kinds else set())
                t = schema.get("type")
                cur = set(TYPES) if t is None else ({t} if isinstance(t, str) else set(t))
                if "number" in cur and "integer" in kinds and "number" not in kinds:
                    self.issue(ptr + "/not", "not", "not {type: integer} inside numbers is not supported")
                    return NEVER
                keep = sorted((cur & allowed) | ({"integer"} if "number" in cur & allowed else set()))
                if not keep:
                    return NEVER
                return self.node({**schema, "type": keep}, ptr)
            got = self._not_required(schema, neg, ptr)
            if got is None:
                got = self._not_string(schema, neg, ptr)
            if got is None:
                got = self._not_integers(schema, neg, ptr)
            if got is None:
                opposite = self._negation(neg, ptr + "/not")  # the shapes an if takes (properties...)
                if opposite is not None:
                    got = self.node({"allOf": [schema, opposite]}, ptr)
            if got is not None:
                return got
            self.issue(ptr + "/not", "not", "not is supported only as not {type: ...}, of required names, "
                       "or of string keywords (pattern, format, lengths, string enum/const)")
            return self.node(schema, ptr)
        cond, then, other = (schema.pop(kw, True) for kw in ("if", "then", "else"))
        cond = self.deref(cond, ptr + "/if")
        neg = self._negation(cond, ptr + "/if")
        if neg is None:
            self.issue(ptr + "/if", "if", "if/then/else is supported where if is a type, required names or "
                       "properties whose values are type, string keywords or scalar const/enum")
            return self.node(schema, ptr)
        # (if and then) or (not if and else): the two never share a value, so the union is exact
        return alt(self.node({"allOf": [schema, cond, then]}, ptr + "/then"),
                   self.node({"allOf": [schema, neg, other]}, ptr + "/else"))

    def _negation(self, s: JsonSchema, ptr: str) -> JsonSchema | None:
        """A schema of exactly the values ``s`` rejects, for the shapes an ``if`` takes (a type,
        required names, properties whose values are a type, string keywords or scalar values);
        None for any other shape.  Strings come out under ``not`` of string keywords (one spelling)."""
        s = self.deref(s, ptr)
        if s is True or s == {}:
            return False
        if s is False:
            return True
        if not isinstance(s, dict):
            return None
        rest = {k: v for k, v in s.items() if k not in ANNOTATIONS and k in VALIDATION}
        if len(rest) == 1:
            (kw, only), = rest.items()
            if kw in ("allOf", "anyOf", "oneOf") and isinstance(only, list) and len(only) == 1:
                return self._negation(only[0], f"{ptr}/{kw}/0")  # one branch: the branch itself
        if rest.keys() <= _STRING_ONLY and "type" not in rest and _values(rest) is None:
            return {"not": rest}  # pattern, format, lengths: non-strings satisfy them
        vals = _values(rest)
        if vals is not None and rest.keys() <= {"enum", "const", "type"}:
            if not all(v is None or isinstance(v, str | bool) for v in vals):
                return None  # numbers and containers have several spellings
            t = rest.get("type")
            kinds = {"null" if v is None else "boolean" if isinstance(v, bool) else "string" for v in vals}
            if t is not None:
                tt = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else None
                if tt is None or not all(x in TYPES for x in tt):
                    return None
                vals = [v for v in vals if _type_of(v) in {"number" if x == "integer" else x for x in tt}]
                kinds = {"null" if v is None else "boolean" if isinstance(v, bool) else "string" for v in vals}
            parts: list[JsonSchema] = [{"type": [x for x in TYPES if x not in kinds and x != "integer"]}]
            left = [b for b in (True, False) if "boolean" in kinds and b not in vals]
            if left:
                parts.append({"enum": left})
            strings = [v for v in vals if isinstance(v, str)]
            if strings:
                parts.append({"type": "string", "not": {"enum": strings}})
            return {"anyOf": parts}
        if set(rest) == {"type"}:
            t = rest["type"]
            tt = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set()
            if not tt or not tt <= set(TYPES) or "integer" in tt and "number" not in tt:
                return None  # (non-integer numbers are not a type here)
            left = [x for x in TYPES if x not in tt and not (x == "integer" and "number" in tt)]
            return {"type": left} if left else False
        if rest.keys() <= {"properties", "required", "type"} and rest.get("type", "object") == "object":
            props = rest.get("properties", {})
            req = rest.get("required", [])
            if not isinstance(props, dict) or not isinstance(req, list) or not all(isinstance(n, str) for n in req):
                return None
            alts: list[JsonSchema] = [{"type": "object", "properties": {n: False}} for n in req]
            for name, sub in props.items():
                nsub = self._negation(sub, f"{ptr}/properties/{_esc(name)}")
                if nsub is None:
                    return None
                if nsub is not False:
                    alts.append({"type": "object", "required": [name], "properties": {name: nsub}})
            if "type" in rest:
                alts.append({"not": {"type": "object"}})
            return {"anyOf": alts} if alts else False
        if set(rest) == {"anyOf"} and isinstance(rest["anyOf"], list):
            negs = [self._negation(p, ptr) for p in rest["anyOf"]]
            return None if any(n is None for n in negs) else {"allOf": negs}
        return None

    def _not_required(self, schema: dict[str, Any], neg: JsonSchema, ptr: str) -> Node | None:
        """``not`` of required names ("never both a and b"): alternatives of absent names, exact.

        ``neg`` is ``{required: R}``, ``allOf`` of such (a conjunction: one of its names is
        absent) or ``anyOf`` of such (every group misses one name): each choice of one name per
        group is an alternative with ``properties: {name: false}``.  Non-objects satisfy
        ``required``, so they fail ``not`` unless ``neg`` itself says ``type: object``.
        None when ``neg`` is of another shape.
        """
        alts = self._absent_alternatives(neg, ptr)
        if alts is None:
            return None
        if not alts:
            self.issue(ptr + "/not", "not", f"not of required names makes more than "
                       f"{_PRESENCE_ALTERNATIVES} alternatives")
            return self.node(schema, ptr)
        return alt_list([self.node({"allOf": [schema, a]}, ptr) for a in alts])

    def _absent_alternatives(self, neg: JsonSchema, ptr: str) -> list[JsonSchema] | None:
        """``not neg`` as schemas one of which holds, when ``neg`` is ``required`` names (see
        :meth:`_not_required`): objects lacking one name per group (``properties: {n: false}``),
        and the other types where ``neg`` says ``type: object``.  None for another shape; []
        past ``_PRESENCE_ALTERNATIVES``."""
        if not isinstance(neg, dict):
            return None
        rest = {k: v for k, v in neg.items() if k not in ANNOTATIONS and k in VALIDATION}
        objects_only = rest.pop("type", None) == "object"
        if "anyOf" in rest and len(rest) == 1:
            parts = rest["anyOf"] if isinstance(rest["anyOf"], list) else None
            groups = [self._required_names(self.deref(p, ptr + "/not")) for p in parts or []]
        else:
            groups = [self._required_names(rest)]
        if not groups or any(g is None for g in groups):
            return None
        absent: set[frozenset[str]] = set()
        for choice in itertools.product(*(sorted(g or ()) for g in groups)):
            absent.add(frozenset(choice))
            if len(absent) > _PRESENCE_ALTERNATIVES:
                return []
        alts: list[JsonSchema] = [{"type": "object", "properties": {n: False for n in sorted(names)}}
                                  for names in sorted(absent, key=sorted)]
        if objects_only:
            alts.append({"type": [t for t in TYPES if t != "object"]})
        return alts

    def _required_names(self, part: JsonSchema) -> set[str] | None:
        """The names a conjunction of ``required`` keywords asks for (None: other keywords too)."""
        if not isinstance(part, dict):
            return None
        names: set[str] = set()
        for k, v in part.items():
            if k in ANNOTATIONS or k not in VALIDATION:
                continue
            if k == "required" and isinstance(v, list) and all(isinstance(n, str) for n in v):
                names.update(v)
            elif k == "allOf" and isinstance(v, list):
                for sub in v:
                    got = self._required_names(self.deref(sub, ""))
                    if got is None:
                        return None
                    names |= got
            else:
                return None
        return names

    def _not_string(self, schema: dict[str, Any], neg: JsonSchema, ptr: str) -> Node | None:
        """``not`` of string keywords (``pattern``, ``format``, lengths, an enum of strings): the
        strings of ``schema`` less those of ``neg``, as automata over the one spelling
        ``json.dumps(ensure_ascii=False)`` writes (a difference over several spellings would let
        ``"\u0061"`` through where ``"a"`` is excluded).  Values of other types are kept when
        ``neg`` is typed (``type: string``, an enum) and fail ``not`` when it is not (``pattern``
        holds for them).  None when ``neg`` is of another shape.
        """
        if not isinstance(neg, dict):
            return None
        rest = {k: v for k, v in neg.items() if k not in ANNOTATIONS and k in VALIDATION}
        if not rest or any(k not in _STRING_ONLY for k in rest):
            return None
        vals = _values(rest)
        if rest.get("type", "string") != "string" or vals is not None and not all(isinstance(v, str) for v in vals):
            return None
        typed = "type" in rest or vals is not None
        lim = self.eager_limit
        n_issues = len(self.issues)
        try:
            keep = fsm.compile_dfa(self.node({"allOf": [schema, {"type": "string"}]}, ptr), max_states=lim)
            drop = fsm.compile_dfa(self.node({"allOf": [rest, {"type": "string"}]}, ptr + "/not"), max_states=lim)
            if len(self.issues) > n_issues:
                return self.node(schema, ptr)  # (the issues name what is not supported in there)
            canon = fsm.intersect(keep, _canonical_string_dfa(), max_states=self.opts.max_states)
            strings = dfa_node(fsm.difference(canon, drop, max_states=self.opts.max_states))
        except AutomatonTooLarge:
            self.issue(ptr + "/not", "not", f"not of string keywords needs automata larger than eager_states={lim}")
            return self.node(schema, ptr)
        if not typed:
            return strings
        return alt(strings, self.node({"allOf": [schema, {"type": [t for t in TYPES if t != "string"]}]}, ptr))

    def _not_integers(self, schema: dict[str, Any], neg: JsonSchema, ptr: str) -> Node | None:
        """``not`` of listed values beside ``type: integer`` (a port range less the reserved
        ports): the integers of ``schema`` less those values, as automata over the one spelling
        an integer has here (no ``1.0``, no exponent, no leading zero), so a difference of texts
        is a difference of values.  None for any other shape.
        """
        if not isinstance(neg, dict):
            return None
        rest = {k: v for k, v in neg.items() if k not in ANNOTATIONS and k in VALIDATION}
        vals = _values(rest)
        if vals is None or not set(rest) <= {"enum", "const", "type"}:
            return None
        w = self._widen(schema, ptr)
        if not isinstance(w, dict) or w.get("type") not in ("integer", ["integer"]):
            return None
        bad = self._filter_values(list(vals), rest)
        if bad is None:
            return None
        texts = sorted({f for v in bad for f in self._value_forms(v)})  # (only integer spellings matter)
        lim = self.eager_limit
        n_issues = len(self.issues)
        try:
            keep = fsm.compile_dfa(self.node({"allOf": [schema, {"type": "integer"}]}, ptr), max_states=lim)
            if len(self.issues) > n_issues:
                return self.node(schema, ptr)  # (the issues name what is not supported in there)
            if not texts:
                return dfa_node(keep)
            return dfa_node(fsm.difference(keep, fsm.compile_dfa(_literals(texts)), max_states=lim))
        except AutomatonTooLarge:
            self.issue(ptr + "/not", "not", f"not of integer values needs automata larger than eager_states={lim}")
            return self.node(schema, ptr)

    def _one_of_strings(self, base: dict[str, Any], branches: list[JsonSchema], ptr: str) -> Node | None:
        """``oneOf`` whose branches admit only strings (``pattern: "admin"`` beside ``pattern:
        "operator"``): the strings valid against exactly one branch, as automata over the one
        spelling ``json.dumps(ensure_ascii=False)`` writes (see :meth:`_not_string`: with one
        spelling per value, a difference of texts is a difference of values).  None when a
        branch may admit another type (then a value of it has several spellings) or a branch
        is not compiled exactly (its own issues say why).
        """
        for b in branches:
            w = self._widen({"allOf": [base, b]} if base else b, ptr)
            if w is False:
                continue  # admits nothing (a branch of another type, restricted to strings)
            if not isinstance(w, dict) or _kind_set(w) != {"string"}:
                return None  # (a wider schema admitting only strings: so does the branch)
        lim = self.eager_limit
        n_issues = len(self.issues)
        try:
            ds = [fsm.intersect(fsm.compile_dfa(self.node({"allOf": [base, b, {"type": "string"}]},
                                                          f"{ptr}/oneOf/{i}"), max_states=lim),
                                _canonical_string_dfa(), max_states=lim)
                  for i, b in enumerate(branches)]
            if len(self.issues) > n_issues:
                del self.issues[n_issues:]  # (the branches' own compile in _any_one_of reported them)
                return None
            alone = []
            for i, d in enumerate(ds):
                others = fsm.compile_dfa(alt_list([dfa_node(e) for j, e in enumerate(ds) if j != i]), max_states=lim)
                alone.append(dfa_node(fsm.difference(d, others, max_states=lim)))
            return dfa_node(fsm.compile_dfa(alt_list(alone), max_states=lim))
        except AutomatonTooLarge:
            self.issue(ptr + "/oneOf", "oneOf", f"oneOf of strings needs automata larger than eager_states={lim}")
            return NEVER

    def _finite(self, schema: dict[str, Any], ptr: str) -> Node | None:
        """A finite list of values (``enum``/``const``, here or in an ``allOf`` part) beside
        combinators (``allOf``, ``anyOf``, ``oneOf``, ``not``, ``if``): the values that a JSON
        Schema validator finds valid against the whole schema, as literals.

        Exact for any keyword the validator knows, including those no automaton here expresses
        (``not``, ``if``/``then``/``else``, ``contains``, ``uniqueItems``...), which would
        otherwise be refused.  None (the usual path) when there is no such list or the
        validator cannot check the schema on its own (see :meth:`_filter_values`).
        """
        values: Any = None
        if "const" in schema:
            values = [schema["const"]]
        elif "enum" in schema:
            values = schema["enum"]
        elif isinstance(schema.get("allOf"), list):
            for i, part in enumerate(schema["allOf"]):
                p = self.deref(part, f"{ptr}/allOf/{i}")
                if isinstance(p, dict) and ("const" in p or "enum" in p):
                    values = [p["const"]] if "const" in p else p["enum"]
                    break
            else:
                return None
        if not isinstance(values, list) or not _COMBINATORS & schema.keys():
            return None
        # the root itself is checked as it stands (its references resolve as they are written)
        rest = self.root if ptr == "" and isinstance(self.root, dict) else schema
        keep = self._filter_values(values, {k: v for k, v in rest.items() if k not in ANNOTATIONS},
                                   whole_root=ptr == "")
        if keep is None:
            return None
        return _literals([f for v in keep for f in sorted(self._value_forms(v))])

    def _enum(self, schema: dict[str, Any], ptr: str) -> Node:
        try:
            key = json.dumps(["enum", schema, self.sep_text, self.opts.max_states], sort_keys=True)
        except (TypeError, ValueError):
            return self._enum_uncached(schema, ptr)
        if "$ref" in key:  # siblings refer to this schema's own definitions: not shareable
            return self._enum_uncached(schema, ptr)
        hit = _MEMO.get(key)
        if hit is not None and not hit[1]:
            return hit[0]
        before = len(self.issues)
        node = self._enum_uncached(schema, ptr)
        if len(self.issues) == before and not self.truncated:
            _memo_put(key, (node, []))
        return node

    def _enum_uncached(self, schema: dict[str, Any], ptr: str) -> Node:
        if "const" in schema:
            values = [schema.pop("const")]
            if "enum" in schema:
                enum = schema.pop("enum")
                values = [v for v in values if any(_json_eq(v, e) for e in enum)]
        else:
            values = schema.pop("enum")
            if not isinstance(values, list):
                self.issue(ptr + "/enum", "enum", "enum must be an array")
                return NEVER
        rest = {k: v for k, v in schema.items() if k not in ANNOTATIONS}
        if rest:  # the other keywords still apply: keep only the values they admit (checked on values)
            keep = self._filter_values(values, rest)
            if keep is not None:
                return _literals([f for v in keep for f in sorted(self._value_forms(v))])
        node = _literals([f for v in values for f in sorted(self._value_forms(v))])
        if rest and node is not NEVER:
            node = dfa_node(fsm.intersect(self.to_dfa(node), self.to_dfa(self._typed(rest, ptr)),
                                          max_states=self.opts.max_states))
        return node

    def _value_forms(self, v: Any) -> set[str]:
        """Spellings of one enum/const value: 1 and 1.0 are the same JSON number.  NaN/inf: none."""
        try:
            forms = {self.dumps(v)}
        except ValueError:
            return set()
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            forms.add(self.dumps(int(v)))
        elif isinstance(v, int) and not isinstance(v, bool):
            forms.add(self.dumps(float(v)) if abs(v) < 2**53 else self.dumps(v))
        return forms

    def _filter_values(self, values: list[Any], rest: dict[str, Any], *, whole_root: bool = False) -> list[Any] | None:
        """Values of ``values`` valid against ``rest`` (jsonschema, with the root's definitions);
        ``whole_root``: ``rest`` is the root, whose references resolve as written."""
        import jsonschema

        if not whole_root and not _local_refs_only(rest):
            return None  # "#" or a pointer outside the definitions would resolve against ``rest``
        sch = dict(rest)
        if isinstance(self.root, dict):
            for k in ("$defs", "definitions"):
                if k in self.root and k not in sch:
                    sch[k] = self.root[k]
        try:
            cls = jsonschema.validators.validator_for(self.root if isinstance(self.root, dict) else {},
                                                      default=jsonschema.Draft202012Validator)
            val = cls(sch, format_checker=cls.FORMAT_CHECKER)
            return [v for v in values if val.is_valid(v)]
        except Exception:  # noqa: BLE001 - unresolvable refs etc.: fall back to automata
            return None

    # ------------------------------------------------------------------ typed values

    def _typed(self, schema: dict[str, Any], ptr: str) -> Node:
        t = schema.get("type")
        if t is None:
            types = set(TYPES)
        elif isinstance(t, str):
            types = {t}
        elif isinstance(t, list) and all(isinstance(x, str) for x in t):
            types = set(t)
        else:
            self.issue(ptr + "/type", "type", f"invalid type {t!r}")
            return NEVER
        unknown = types - set(TYPES)
        if unknown:
            self.issue(ptr + "/type", "type", f"unknown type(s) {sorted(unknown)}")
            types -= unknown
        if "number" in types:
            types.discard("integer")
        self._check_keywords(schema, ptr)
        parts: list[Node] = []
        for ty in ("null", "boolean", "integer", "number", "string", "array", "object"):
            if ty not in types:
                continue
            if ty == "null":
                parts.append(lit("null"))
            elif ty == "boolean":
                parts.append(alt(lit("true"), lit("false")))
            elif ty in ("integer", "number"):
                parts.append(self._number(schema, ptr, ty == "integer"))
            elif ty == "string":
                parts.append(self._string(schema, ptr))
            elif ty == "array":
                parts.append(self._array(schema, ptr))
            else:
                parts.append(self._object(schema, ptr))
        return alt_list(parts)

    def _check_keywords(self, schema: dict[str, Any], ptr: str) -> None:
        unsupported = {
            "unevaluatedProperties": "unevaluatedProperties is not supported",
            "unevaluatedItems": "unevaluatedItems is not supported",
            "contentSchema": "contentSchema is not supported",
        }
        for kw, msg in unsupported.items():
            if kw in schema:
                v = schema[kw]
                if kw == "unevaluatedProperties" and v is True:
                    continue
                if kw == "unevaluatedItems" and v is True:
                    continue
                self.issue(f"{ptr}/{kw}", kw, msg)

    def _number(self, schema: dict[str, Any], ptr: str, integer: bool) -> Node:
        from . import numbers

        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if isinstance(xlo, bool):  # draft 4
            xlo, lo = (lo, None) if xlo else (None, lo)
        if isinstance(xhi, bool):
            xhi, hi = (hi, None) if xhi else (None, hi)
        for name, v in (("minimum", lo), ("maximum", hi), ("exclusiveMinimum", xlo), ("exclusiveMaximum", xhi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or
                                  (isinstance(v, float) and not math.isfinite(v))):
                self.issue(f"{ptr}/{name}", name, f"{name} must be a finite number, got {v!r}")
                return NEVER
        mult = schema.get("multipleOf")
        try:
            if integer:
                return numbers.integer_node(lo, hi, exclusive_minimum=xlo, exclusive_maximum=xhi, multiple_of=mult)
            return numbers.number_node(lo, hi, exclusive_minimum=xlo, exclusive_maximum=xhi, multiple_of=mult)
        except UnsatisfiableSchemaError:
            return NEVER
        except SchemaError as e:
            self.issue(ptr + "/multipleOf" if "multipleOf" in str(e) else ptr, "number", str(e))
            return NEVER

    def _string(self, schema: dict[str, Any], ptr: str) -> Node:
        key = json.dumps(["string", schema.get("minLength", 0), schema.get("maxLength"), schema.get("pattern"),
                          schema.get("format"), self.opts.lenient, self.opts.max_states], sort_keys=True)
        hit = _MEMO.get(key)
        if hit is not None:
            node, issues = hit
            self.issues.extend(SchemaIssue(ptr + suffix, kw, msg) for suffix, kw, msg in issues)
            return node
        before = len(self.issues)
        node = self._string_uncached(schema, ptr)
        issues = [(i.pointer[len(ptr):], i.keyword, i.message) for i in self.issues[before:]
                  if i.pointer.startswith(ptr)]
        _memo_put(key, (node, issues))
        return node

    def _string_uncached(self, schema: dict[str, Any], ptr: str) -> Node:
        from . import regex

        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        pats = schema.get("pattern")
        patterns = [pats] if isinstance(pats, str) else list(pats or [])
        fmt = schema.get("format")
        if hi is not None and hi < lo:
            return NEVER
        pieces: list[fsm.DFA] = []
        counted = _class_counter(patterns, fmt, lo, hi)
        if counted is not None:
            return seq(lit('"'), counted, lit('"'))
        try:
            from . import formats

            # a format no draft defines asserts nothing: any string, as validators take it
            if fmt is not None and not (isinstance(fmt, str) and formats.is_annotation(fmt)):
                f = formats.format_content(fmt) if isinstance(fmt, str) else None
                if f is None:
                    self.issue(ptr + "/format", "format", f"format {fmt!r} is not supported")
                else:
                    pieces.append(self.to_dfa(f))
            for p in patterns:
                try:
                    pieces.append(self.to_dfa(regex.string_content(p, 0, None)))
                except AutomatonTooLarge:
                    raise
                except SchemaError as e:
                    self.issue(ptr + "/pattern", "pattern", str(e))
                    if not self.opts.lenient:
                        return NEVER
            d: fsm.DFA | None = None  # what the format and the patterns admit
            for piece in pieces:
                d = piece if d is None else fsm.intersect(d, piece, max_states=self.opts.max_states)
            content: Node | None = None
            if d is not None and hi is not None and _EMBED_REPEATS < hi <= _COUNTER_MAX:
                # a pattern with a long bound: a computed count over the pattern's automaton
                # instead of a (pattern x length) table, whose states each need their own mask
                counted = fsm.CountedDFA.build(d, regex.char_dfa(regex.ALL), lo, hi)
                if counted is not None:
                    content = fsm.DfaNode(counted) if counted else NEVER
            if content is None and d is None:
                content = regex.string_content(None, lo, hi)
                if (lo or hi is not None) and lo <= _COUNTER_MAX:
                    # a computed counter (its states know their count: a string's masks come from
                    # per-vocabulary tables, as a free string's do, not from trie walks over one
                    # position per character); past _COUNTER_MAX one shared lazy automaton
                    content = fsm.DfaNode(_counter(lo, hi)) if hi is None or hi <= _COUNTER_MAX \
                        else self.lazy_node(content)
            elif content is None:
                assert d is not None  # the branch above took content is None and d is None
                if lo or hi is not None:
                    d = fsm.intersect(d, self.to_dfa(regex.string_content(None, lo, hi)),
                                      max_states=self.opts.max_states)
                content = dfa_node(d)
        except AutomatonTooLarge:
            raise
        except SchemaError as e:
            self.issue(ptr + ("/pattern" if patterns else ""), "pattern", str(e))
            return NEVER
        return seq(lit('"'), content, lit('"'))

    def _array(self, schema: dict[str, Any], ptr: str) -> Node:
        items = schema.get("items", True)
        prefix: list[JsonSchema] = list(schema.get("prefixItems", []) or [])
        if isinstance(items, list):  # draft 4-2019 tuple form
            prefix, items = list(items), schema.get("additionalItems", True)
        lo = int(schema.get("minItems", 0) or 0)
        hi = schema.get("maxItems")
        if hi is not None:
            hi = int(hi)
            if hi < lo:
                return NEVER
        need = self._min_contains(schema, prefix, ptr)
        if schema.get("uniqueItems") is True and (hi is None or hi > 1) and (items is not False or prefix):
            if need:
                self.issue(ptr + "/contains", "contains", "contains beside uniqueItems is not supported")
            unique = self._unique_array(items, prefix, lo, hi, ptr)
            if unique is not None:
                return unique
        if need:
            return self._contains_array(items, schema["contains"], need, lo, hi, ptr)
        m = len(prefix)
        pnodes = [self.node(p, f"{ptr}/prefixItems/{i}") for i, p in enumerate(prefix)]
        rest = self.node(items, ptr + "/items") if items is not False else NEVER
        explicit = hi if hi is not None else max(m, lo)
        rest = self._shared_item(rest, explicit)
        if hi is None and rest is NEVER:
            explicit = m
        # nodes 0..explicit; node i = i elements written
        edges: list[tuple[int, int, Node]] = []
        for i in range(explicit):
            el = pnodes[i] if i < m else rest
            if el is NEVER:
                break
            edges.append((i, i + 1, el if i == 0 else seq(self.item_sep, el)))
        finals = tuple(i for i in range(lo, explicit + 1))
        if hi is None and rest is not NEVER:
            k = explicit
            loop = seq(self.item_sep, rest) if k > 0 else rest
            if k == 0:
                edges.append((0, explicit + 1, rest))
                edges.append((explicit + 1, explicit + 1, seq(self.item_sep, rest)))
                finals = finals + (explicit + 1,)
            else:
                edges.append((k, k, loop))
        n_nodes = explicit + 2
        if not finals:
            return NEVER
        return self._bracketed(fsm.Graph(n_nodes, 0, finals, tuple(edges)))

    def _bracketed(self, body: fsm.Graph) -> Node:
        """``[`` items ``]``, the items as ``body`` writes them (NEVER when it admits nothing)."""
        if fsm.graph_is_empty(body):
            return NEVER
        return seq(lit("["), self.open_ws, body, self.close_ws, lit("]"))

    def _shared_item(self, item: Node, copies: int) -> Node:
        """``item`` as one lazily built automaton when an array spells it more than
        ``_EMBED_REPEATS`` times: each copy would otherwise get fresh positions."""
        if copies > _EMBED_REPEATS and item is not NEVER and not isinstance(item, fsm.DfaNode | fsm.Sym):
            return self.lazy_node(item, value=True)
        return item

    def _min_contains(self, schema: dict[str, Any], prefix: list[JsonSchema], ptr: str) -> int:
        """How many items must match ``contains`` (0: no ``contains``, or ``minContains: 0``)."""
        if "contains" not in schema:
            return 0  # (minContains / maxContains alone assert nothing)
        need = schema.get("minContains", 1)
        if not isinstance(need, int) or isinstance(need, bool) or need < 0:
            self.issue(ptr + "/minContains", "minContains", f"minContains must be a non-negative integer, got {need!r}")
            return 0
        if "maxContains" in schema:
            self.issue(ptr + "/maxContains", "maxContains", "maxContains is not supported (at most k matching "
                       "items needs the automaton of the items that do not match)")
        if need and prefix:
            self.issue(ptr + "/contains", "contains", "contains beside prefixItems is not supported")
            return 0
        return need

    def _contains_array(self, items: JsonSchema, contains: JsonSchema, need: int, lo: int, hi: int | None,
                        ptr: str) -> Node:
        """Arrays with at least ``need`` items matching ``contains`` (``minContains``, default 1).

        Nodes count (items written, matching items, both capped); each item is any item or, as
        an alternative, one of the items that match, a choice the determinisation resolves.
        Sound: a text is accepted only through ``need`` item texts of the automaton of
        ``items`` and ``contains`` together, whose values match.  (At most k matches would need
        the items that do not match: ``maxContains`` is refused.)
        """
        rest = self.node(items, ptr + "/items") if items is not False else NEVER
        both: JsonSchema = contains if items is True or items == {} else {"allOf": [items, contains]}
        match = self.node(both, ptr + "/contains")
        if match is NEVER:
            return NEVER
        cap = hi if hi is not None else max(lo, need)
        if cap < need:
            return NEVER
        width = need + 1
        if (cap + 1) * width > _CONTAINS_MAX_NODES:
            self.issue(ptr + "/contains", "contains", f"contains with {need} matches among up to {cap} counted "
                       f"items needs {(cap + 1) * width:,} automaton nodes (limit {_CONTAINS_MAX_NODES:,})")
            return NEVER
        rest, match = self._shared_item(rest, cap), self._shared_item(match, cap)
        edges: list[tuple[int, int, Node]] = []
        for n in range(cap + 1):
            if hi is not None and n == hi:
                continue
            nxt = min(n + 1, cap)
            for c in range(width):
                for el, c2 in ((rest, c), (match, min(c + 1, need))):
                    if el is not NEVER:
                        edges.append((n * width + c, nxt * width + c2, el if n == 0 else seq(self.item_sep, el)))
        finals = tuple(n * width + need for n in range(lo, cap + 1))
        return self._bracketed(fsm.Graph((cap + 1) * width, 0, finals, tuple(edges)))

    def _unique_array(self, items: JsonSchema, prefix: list[JsonSchema], lo: int, hi: int | None,
                      ptr: str) -> Node | None:
        """``uniqueItems`` over a finite set of item values (``enum``/``const``, ``boolean``,
        ``null``: a ``set[Literal[...]]`` field): an automaton whose nodes are the sets of values
        written so far, each value allowed once.  Exact: the values are those a JSON Schema
        validator finds valid against the item schema, and distinct values have disjoint texts.
        None after an issue (items not finite, or too many sets): lenient mode then goes on
        without enforcing uniqueness.
        """
        if prefix:
            self.issue(f"{ptr}/uniqueItems", "uniqueItems", "uniqueItems beside prefixItems is not supported "
                       "(not enforced with lenient=True)")
            return None
        values = self._item_values(items, ptr + "/items")
        if values is None:
            self.issue(f"{ptr}/uniqueItems", "uniqueItems",
                       "uniqueItems is enforced only over a finite set of item values (enum, const, boolean, "
                       "null items); over these items it cannot be enforced by a finite automaton "
                       "(not enforced with lenient=True)")
            return None
        k = len(values)
        top = k if hi is None else min(k, hi)
        if lo > top:
            return NEVER
        sets = sum(math.comb(k, i) for i in range(top + 1))
        if sets > _UNIQUE_MAX_SETS:
            self.issue(f"{ptr}/uniqueItems", "uniqueItems",
                       f"uniqueItems over {k} item values needs {sets:,} automaton nodes (sets of values "
                       f"written so far; limit {_UNIQUE_MAX_SETS:,}): a smaller maxItems or fewer values fit "
                       "(not enforced with lenient=True)")
            return None
        # one small DFA per value, embedded by reference on every edge (literal positions copied
        # on each of the ~k 2^(k-1) edges made 12 values a 1.5 s compile)
        texts = [fsm.DfaNode(fsm.literals_dfa(sorted(self._value_forms(v)))) for v in values]
        ids = {0: 0}
        order = [0]
        edges: list[tuple[int, int, Node]] = []
        finals: list[int] = []
        for written in order:  # breadth first: sets in order of size, appended as met
            size = written.bit_count()
            if size >= lo:
                finals.append(ids[written])
            if size == top:
                continue
            for j in range(k):
                if written >> j & 1:
                    continue
                nxt = written | 1 << j
                if nxt not in ids:
                    ids[nxt] = len(ids)
                    order.append(nxt)
                edges.append((ids[written], ids[nxt], texts[j] if written == 0 else seq(self.item_sep, texts[j])))
        return self._bracketed(fsm.Graph(len(ids), 0, tuple(finals), tuple(edges)))

    def _item_values(self, items: JsonSchema, ptr: str) -> list[Any] | None:
        """The distinct values an item schema admits when they are finitely many and listed
        (``enum``/``const``, or only ``boolean``/``null`` types), checked by a JSON Schema
        validator against the whole item schema; None otherwise."""
        p = self.deref(items, ptr)
        if not isinstance(p, dict):
            return None
        vals = _values(p)
        for kw in ("anyOf", "oneOf"):  # a union of listed values (an Enum with a title per member)
            parts = p.get(kw)
            if vals is None and isinstance(parts, list) and parts:
                listed = [_values(b) if isinstance(b, dict) else None
                          for b in (self.deref(b, f"{ptr}/{kw}/{i}") for i, b in enumerate(parts))]
                if all(v is not None for v in listed):
                    vals = [x for v in listed if v is not None for x in v]
        if vals is None:
            t = p.get("type")
            types = {t} if isinstance(t, str) else set(t) if isinstance(t, list) and \
                all(isinstance(x, str) for x in t) else set()
            if not types or not types <= {"boolean", "null"}:
                return None
            vals = ([True, False] if "boolean" in types else []) + ([None] if "null" in types else [])
        keep = self._filter_values(list(vals), {k: v for k, v in p.items() if k not in ANNOTATIONS})
        if keep is None:
            return None
        out: list[Any] = []
        for v in keep:
            if self._value_forms(v) and not any(_json_eq(v, w) for w in out):  # (NaN: no JSON text)
                out.append(v)
        return out

    def _property_names(self, pnames: JsonSchema | None, ptr: str) -> fsm.DFA | None:
        """Quoted JSON text of the keys propertyNames admits (None: every key)."""
        if pnames is None or pnames is True or pnames == {}:
            return None
        p = self.deref(pnames, ptr)
        as_string = merge_schemas(p, {"type": "string"})
        if as_string is None:
            as_string = {"allOf": [pnames, {"type": "string"}]}
        node = self.node(as_string, ptr)
        if node is NEVER:
            return fsm.compile_dfa(NEVER)
        return self.to_dfa(node)

    def _object(self, schema: dict[str, Any], ptr: str) -> Node:
        props: dict[str, JsonSchema] = dict(schema.get("properties", {}) or {})
        required: list[str] = [r for r in (schema.get("required") or []) if isinstance(r, str)]
        addl = schema.get("additionalProperties", None)
        if addl is None:
            addl = True if self.opts.additional_properties else False
        pattern_props: dict[str, JsonSchema] = dict(schema.get("patternProperties", {}) or {})
        key_dfa = self._property_names(schema.get("propertyNames"), ptr + "/propertyNames")
        min_p = int(schema.get("minProperties", 0) or 0)
        max_p = schema.get("maxProperties")

        # compiled key languages of patternProperties (content, unquoted)
        pat_dfas: list[tuple[str, fsm.DFA]] = []
        for pat in pattern_props:
            try:
                pat_dfas.append((pat, _pattern_key_dfa(pat, self.opts.max_states)))
            except SchemaError as e:
                self.issue(f"{ptr}/patternProperties", "patternProperties", str(e))
        names = list(props) + [r for r in required if r not in props]
        entries: list[tuple[str, Node, bool]] = []
        for name in names:
            content = json.dumps(name, ensure_ascii=False)[1:-1].encode()
            sub: list[JsonSchema] = []
            if name in props:
                sub.append(props[name])
            matched = [pattern_props[p] for p, d in pat_dfas if d.matches(content)]
            sub.extend(matched)
            if name not in props and not matched:
                sub.append(addl)
            s: JsonSchema = sub[0] if len(sub) == 1 else {"allOf": sub}
            if key_dfa is not None and not key_dfa.matches(json.dumps(name, ensure_ascii=False).encode()):
                s = False  # propertyNames rejects this name
            vnode = self.node(s, f"{ptr}/properties/{_esc(name)}")
            entries.append((name, vnode, name in required))
        if any(v is NEVER and req for _, v, req in entries):
            return NEVER
        # additional keys: not a declared name; value from patternProperties or additionalProperties
        def quoted(kd: fsm.DFA, key_set: int) -> Node:
            """Additional keys ``kd`` (content) in quotes, restricted to propertyNames."""
            if key_dfa is None:
                return seq(lit('"'), fsm.DfaNode(kd, key_set), lit('"'))
            return dfa_node(fsm.intersect(self.to_dfa(seq(lit('"'), fsm.DfaNode(kd), lit('"'))), key_dfa,
                                          max_states=self.opts.max_states))

        regions, rest_keys = _key_regions(tuple(p for p, _ in pat_dfas), tuple(names), self.opts.max_states)
        parts: list[tuple[fsm.DFA, Node]] = []  # (key contents, value) of each kind of additional key
        # every key but the declared names is allowed somewhere (no key language dropped, keys
        # matching several patterns kept: see _key_regions), so any key prefix goes on
        complete = key_dfa is None and len(pat_dfas) == len(pattern_props) <= 6
        for sel, kd in regions:
            if kd.is_empty():
                continue
            subs = [pattern_props[pat_dfas[i][0]] for i in sel]
            sub_ptr = f"{ptr}/patternProperties/{_esc(pat_dfas[sel[0]][0])}"
            v = self.node(subs[0] if len(subs) == 1 else {"allOf": subs}, sub_ptr)
            if v is NEVER:
                complete = False
            else:
                parts.append((kd, v))
        if addl is not False:
            v = self.node(addl, ptr + "/additionalProperties")
            if not rest_keys.is_empty():
                if v is NEVER:
                    complete = False
                else:
                    parts.append((rest_keys, v))
        elif not rest_keys.is_empty():
            complete = False
        key_set = 0
        if complete and parts:
            from . import regex

            key_set = next(_KEY_SETS)
            for kd, _v in parts:  # the phases the token level reads them with, now, not at a mask
                fsm.char_phases(kd, regex.canonical_key_char())
        extra: list[tuple[Node, Node]] = [(quoted(kd, key_set), v) for kd, v in parts]

        n = len(entries)
        max_possible = None if extra else sum(1 for _, v, _r in entries if v is not NEVER)
        n_required = sum(1 for _, _v, r in entries if r)
        if max_p is not None and max_possible is not None and max_p >= max_possible:
            max_p = None
        if min_p <= n_required:
            min_p = 0
        elif extra and min_p >= 2:  # (one key, even repeated, is one property: min 1 stays exact)
            self.issue(ptr + "/minProperties", "minProperties",
                       "minProperties above the required count with additional properties is not supported "
                       "(repeated extra keys would count twice)")
            return NEVER
        if max_p is not None and int(max_p) < n_required:
            return NEVER
        cap = max(1, min_p, int(max_p) if max_p is not None else 0)
        if cap > 32:
            self.issue(ptr + ("/maxProperties" if max_p is not None else "/minProperties"),
                       "maxProperties", "minProperties/maxProperties above 32 are not supported")
            return NEVER
        counts = list(range(cap + 1))

        def nid(k: int, c: int) -> int:  # control node: k declared names considered, c entries written
            return k * (cap + 1) + c

        def mid(k: int, c: int) -> int:  # after the separator of entry number c
            return (n + 1) * (cap + 1) + k * (cap + 1) + c

        def sat(c: int) -> int:
            return min(c, cap)

        limit = int(max_p) if max_p is not None else None
        edges: list[tuple[int, int, Node]] = []
        for k, (name, vnode, req) in enumerate(entries):
            for c in counts:
                if not req:
                    edges.append((nid(k, c), nid(k + 1, c), EMPTY))
                if vnode is NEVER or (limit is not None and c >= limit):
                    continue
                c2 = sat(c + 1)
                edges.append((nid(k, c), mid(k, c2), EMPTY if c == 0 else self.item_sep))
            for c2 in counts[1:]:
                if vnode is not NEVER:
                    edges.append((mid(k, c2), nid(k + 1, c2), seq(self.json_string(name), self.key_sep, vnode)))
        if extra:
            k = n
            entry = alt_list(seq(kn, self.key_sep, vn) for kn, vn in extra)
            for c in counts:
                if limit is not None and c >= limit:
                    continue
                c2 = sat(c + 1)
                edges.append((nid(k, c), mid(k, c2), EMPTY if c == 0 else self.item_sep))
            for c2 in counts[1:]:
                edges.append((mid(k, c2), nid(k, c2), entry))
        finals = tuple(nid(n, c) for c in counts if c >= min_p and (limit is None or c <= limit))
        n_nodes = 2 * (n + 1) * (cap + 1)
        body = fsm.Graph(n_nodes, nid(0, 0), finals, tuple(edges))
        if fsm.graph_is_empty(body):
            return NEVER
        return seq(lit("{"), self.open_ws, body, self.close_ws, lit("}"))


_KINDS = frozenset({"null", "boolean", "object", "array", "string", "number"})
_STRING_ONLY = frozenset({"type", "pattern", "format", "minLength", "maxLength", "enum", "const"})
_DISJOINT_STATES = 4_000  # automata a disjointness proof may build for each string branch
# keywords that constrain values of one JSON type only (any other value passes them)
_KIND_KEYWORDS: dict[str, frozenset[str]] = {
    "object": frozenset({"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                         "minProperties", "maxProperties", "dependentRequired", "dependentSchemas",
                         "dependencies", "unevaluatedProperties"}),
    "array": frozenset({"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems",
                        "contains", "minContains", "maxContains", "unevaluatedItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
}


def _kind_set(schema: dict[str, Any]) -> set[str]:
    """JSON types a schema may admit by its type/const/enum; 'integer' counts as 'number'."""
    out = set(_KINDS)
    t = schema.get("type")
    t = [t] if isinstance(t, str) else t
    if isinstance(t, list) and all(isinstance(x, str) and x in TYPES for x in t):
        out &= {"number" if x == "integer" else x for x in t}
    vals = _values(schema)
    if vals is not None:
        out &= {_type_of(v) for v in vals}
    return out


def _values(schema: dict[str, Any]) -> list[Any] | None:
    """The values a schema may admit when const/enum lists them (None: not a finite set)."""
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _may_admit(schema: dict[str, Any], v: Any) -> bool:
    """False only if ``v`` is certainly not valid against ``schema`` (its type, const/enum or range)."""
    if _type_of(v) not in _kind_set(schema):
        return False
    vals = _values(schema)
    if vals is not None and not any(_json_eq(v, w) for w in vals):
        return False
    if _is_num(v):
        t = schema.get("type")
        if (t == "integer" or t == ["integer"]) and isinstance(v, float) and not v.is_integer():
            return False  # 1.5 is no integer (1.0 is)
        if _ranges_disjoint((v, False, v, False), _bounds(schema, "minimum", "maximum")):
            return False
    return True


_Bounds = tuple[float | None, bool, float | None, bool]  # low, low exclusive, high, high exclusive


def _bounds(schema: dict[str, Any], lo_key: str, hi_key: str) -> _Bounds:
    """Range a schema puts on a number (minimum/maximum/exclusive*, draft 4 booleans) or a size."""
    lo, hi = schema.get(lo_key), schema.get(hi_key)
    lo, hi = (lo if _is_num(lo) else None), (hi if _is_num(hi) else None)
    lo_x = hi_x = False
    if lo_key == "minimum":
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if xlo is True:  # draft 4: the minimum itself is excluded
            lo_x = lo is not None
        elif _is_num(xlo) and (lo is None or xlo >= lo):
            lo, lo_x = xlo, True
        if xhi is True:
            hi_x = hi is not None
        elif _is_num(xhi) and (hi is None or xhi <= hi):
            hi, hi_x = xhi, True
    return lo, lo_x, hi, hi_x


def _ranges_disjoint(r: _Bounds, s: _Bounds) -> bool:
    """No number lies in both ranges."""
    for (_, _, hi, hi_x), (lo, lo_x, _, _) in ((r, s), (s, r)):
        if hi is not None and lo is not None and (hi < lo or (hi == lo and (hi_x or lo_x))):
            return True
    return False


def _type_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


_TRIE_LITERALS = 16  # enums with at least this many spellings embed one trie automaton


def _literals(texts: list[str]) -> Node:
    """Any one of ``texts``: alternatives of literals, or one embedded trie when there are many."""
    if len(texts) >= _TRIE_LITERALS:
        return fsm.DfaNode(fsm.literals_dfa(texts))
    return alt_list(lit(t) for t in texts)


def dfa_node(d: fsm.DFA) -> Node:
    """Embed a DFA, or NEVER when its language is empty (an embedded empty DFA is a dead end)."""
    return NEVER if d.is_empty() else fsm.DfaNode(d)


_CANON_STRING: list[fsm.DFA] = []


def _canonical_string_dfa() -> fsm.DFA:
    """A whole JSON string (quotes included) in ``json.dumps(ensure_ascii=False)`` spelling only."""
    if not _CANON_STRING:
        _CANON_STRING.append(fsm.compile_dfa(seq(lit('"'), canonical_key_content(), lit('"'))))
    return _CANON_STRING[0]


def canonical_key_content() -> Node:
    """Object keys exactly as ``json.dumps(ensure_ascii=False)`` writes them: one spelling per key,
    so subtracting the declared names' spellings excludes those names (no ``\\u0061`` twin of "a")."""
    from . import regex

    return star(regex.canonical_key_char_node())


def _esc(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _json_key(value: Any) -> str | None:
    """A dict key for a JSON value (None when it is not plain JSON)."""
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return None


def _json_eq(a: Any, b: Any) -> bool:
    """Equality of JSON values as JSON Schema has it: 1 == 1.0, but true != 1 (at any depth)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return False
    return a == b


_MERGE_MIN = ("minimum", "minLength", "minItems", "minProperties")
_MERGE_MAX = ("maximum", "maxLength", "maxItems", "maxProperties")


_COMBINATORS = frozenset({"allOf", "anyOf", "oneOf", "not", "if"})
_DEPENDENCY_KEYWORDS = ("dependencies", "dependentRequired", "dependentSchemas")
_PRESENCE_ALTERNATIVES = 64  # alternatives of a required-only oneOf or of property dependencies (each compiles the base again)
_DISTRIBUTE = 64  # branch pairs of two anyOf merged into one


def _local_refs_only(schema: Any) -> bool:
    """Every ``$ref`` in ``schema`` points into the root's ``$defs``/``definitions`` (and no
    ``$id`` moves the base), so a validator built on ``schema`` plus those resolves them as
    the root would."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None and not (isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/"))):
            return False
        if isinstance(schema.get("$id"), str) or isinstance(schema.get("id"), str):
            return False
        return all(_local_refs_only(v) for k, v in schema.items() if k not in ("enum", "const"))
    if isinstance(schema, list):
        return all(_local_refs_only(v) for v in schema)
    return True


def merge_schemas(a: JsonSchema, b: JsonSchema) -> JsonSchema | None:
    """Intersection of two schemas as one schema, or None when no sound syntactic merge exists."""
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    if a is False or b is False:
        return False
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    if not _kind_set(a) & _kind_set(b):
        return False  # no value has two disjoint types (holds beside a $ref too)
    if "$ref" in a or "$ref" in b:
        return None
    if any(not isinstance(s.get("required", []), list) for s in (a, b)):
        return None  # malformed: node() reports it
    out: dict[str, Any] = {}
    arr = ("items", "prefixItems", "additionalItems")
    done: frozenset[str] = _OBJ_KEYS
    if any(k in a for k in arr) and any(k in b for k in arr) and \
            any(a.get(k) != b.get(k) for k in arr):
        out.update(_merge_arrays(a, b))
        done = done | frozenset(arr)
    for k in list(a) + [k for k in b if k not in a]:
        if k not in VALIDATION or k in done:
            continue  # unknown keywords (x-..., vendor extensions) constrain nothing
        if k not in b or k not in a:
            out[k] = a[k] if k in a else b[k]
            continue
        va, vb = a[k], b[k]
        if va == vb:
            out[k] = va
        elif k == "type":
            ta = {va} if isinstance(va, str) else set(va)
            tb = {vb} if isinstance(vb, str) else set(vb)
            for s1, s2 in ((ta, tb), (tb, ta)):
                if "number" in s1 and "integer" in s2:
                    s1.add("integer")
            both = sorted(ta & tb)
            if not both:
                return False
            out[k] = both[0] if len(both) == 1 else both
        elif k in _MERGE_MIN and _is_num(va) and _is_num(vb):
            out[k] = max(va, vb)
        elif k in _MERGE_MAX and _is_num(va) and _is_num(vb):
            out[k] = min(va, vb)
        elif k == "allOf":
            out[k] = list(va) + list(vb)
        elif k == "propertyNames":
            out[k] = _both(va, vb)
        elif k == "enum":
            out[k] = [x for x in va if any(_json_eq(x, y) for y in vb)]
        elif k == "pattern":
            out[k] = ([va] if isinstance(va, str) else list(va)) + ([vb] if isinstance(vb, str) else list(vb))
        elif k == "anyOf" and isinstance(va, list) and isinstance(vb, list) and len(va) * len(vb) <= _DISTRIBUTE:
            # (a1 | a2) & (b1 | b2) = a1&b1 | a1&b2 | ...: each pair merges on its own.  (Moving
            # one side into allOf instead met the other again in that allOf, forever.)
            out[k] = [{"allOf": [x, y]} for x in va for y in vb]
        elif k in ("anyOf", "oneOf"):
            return None  # exactly-one does not distribute: the automata intersect
        else:
            return None
    if any(k in a or k in b for k in _OBJ_KEYS):
        merged = _merge_objects(a, b)
        if merged is None:
            return None
        out.update(merged)
    return out


_OBJ_KEYS = frozenset({"properties", "additionalProperties", "required", "patternProperties"})


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _both(a: JsonSchema, b: JsonSchema) -> JsonSchema:
    """Schema of allOf(a, b): merged when possible, else kept as an allOf (compiled on its own)."""
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    m = merge_schemas(a, b)
    return {"allOf": [a, b]} if m is None else m


def _array_form(s: dict[str, Any]) -> tuple[list[JsonSchema], JsonSchema]:
    """(positional item schemas, schema of the rest), read as ``_Ctx._array`` reads them."""
    items = s.get("items", True)
    if isinstance(items, list):
        return list(items), s.get("additionalItems", True)
    return list(s.get("prefixItems", []) or []), items


def _merge_arrays(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """prefixItems/items of allOf(a, b): position i meets both sides' schema for position i."""
    pa, ra = _array_form(a)
    pb, rb = _array_form(b)
    prefix = [_both(pa[i] if i < len(pa) else ra, pb[i] if i < len(pb) else rb)
              for i in range(max(len(pa), len(pb)))]
    out: dict[str, Any] = {"items": _both(ra, rb)}
    if prefix:
        out["prefixItems"] = prefix
    return out


def _matching_patterns(pats: dict[str, JsonSchema], name: str,
                       max_states: int = fsm.DEFAULT_MAX_STATES) -> list[JsonSchema] | None:
    """Schemas of the patternProperties that apply to key ``name`` (None: a pattern is unsupported)."""
    content = json.dumps(name, ensure_ascii=False)[1:-1].encode()
    out = []
    for pat, sub in pats.items():
        try:
            hit = _pattern_key_dfa(pat, max_states).matches(content)
        except (SchemaError, AutomatonTooLarge):
            return None
        if hit:
            out.append(sub)
    return out


def _merge_objects(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """properties/patternProperties/additionalProperties/required of allOf(a, b), exact.

    JSON Schema's additionalProperties only sees sibling properties, so a name
    declared on one side meets the other side's additionalProperties (or, when that
    side has patternProperties, its matching patterns or else its additionalProperties).
    """
    if "patternProperties" in a and "patternProperties" in b:
        return None  # name-dependent rules on both sides: intersect the automata instead
    pa, pb = a.get("properties", {}) or {}, b.get("properties", {}) or {}
    # written in this order: the side that declares every name keeps its order (an allOf part
    # refining some properties must not move them to the front); otherwise a's names come first
    names = list(pb) if set(pa) <= set(pb) else list(pa) + [n for n in pb if n not in pa]
    if "patternProperties" in a:
        a, b, pa, pb = b, a, pb, pa  # b alone has patternProperties
    aa, ab = (True if s.get("additionalProperties", True) == {} else s.get("additionalProperties", True)
              for s in (a, b))
    pats: dict[str, JsonSchema] = dict(b.get("patternProperties", {}) or {})
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    matching = {n: _matching_patterns(pats, n) for n in names} if pats else {n: [] for n in names}
    if any(m is None for m in matching.values()):
        return None
    if pats and aa is False:
        # only a's names may appear: spell b's requirement out per name, drop the patterns
        for name in names:
            if name not in pa:
                props[name] = False
                continue
            sb = ([pb[name]] if name in pb else [] if matching[name] else [ab]) + list(matching[name] or [])
            props[name] = functools.reduce(_both, sb, pa[name])
        pats, ab = {}, False
    else:
        if pats and aa is not True:
            if any(matching[n] for n in pa):
                return None  # a declared name of a would meet a pattern of b but not a's additionalProperties
            pats = {p: _both(s, aa) for p, s in pats.items()}
        for name in names:
            # b's requirement beyond its patterns (which still apply to a declared name)
            req = pb[name] if name in pb else (ab if not matching[name] else True)
            props[name] = _both(pa.get(name, aa), req)
    if props:
        out["properties"] = props
    if pats:
        out["patternProperties"] = pats
    if aa is True:
        add = ab
    elif ab is True:
        add = aa
    else:
        add = {"allOf": [aa, ab]} if aa is not False and ab is not False else False
    if add is not True:
        out["additionalProperties"] = add
    req = list(dict.fromkeys(list(a.get("required", [])) + list(b.get("required", []))))
    if req:
        out["required"] = req
    return out


def schema_to_node(schema: JsonSchema, opts: CompileOptions | None = None) -> Node:
    """The JSON text language of ``schema``; raises SchemaError listing every unenforceable keyword."""
    return compile_schema(schema, opts)[0]


def compile_schema(schema: JsonSchema, opts: CompileOptions | None = None) -> tuple[Node, bool]:
    """:func:`schema_to_node`, and whether the language embeds the shared any-value automata (a
    value the schema leaves free: their masks are worth warming once per process)."""
    opts = opts or CompileOptions()
    ctx = _Ctx(schema, opts)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 20_000))
    try:
        with fsm.time_limit(opts.max_compile_seconds):
            node = ctx.node(schema, "")
    except RecursionError as e:
        raise AutomatonTooLarge("schema nesting is too deep to compile (Python recursion limit)") from e
    finally:
        sys.setrecursionlimit(old_limit)
    if ctx.issues:
        if opts.lenient:
            for i in ctx.issues:
                warnings.warn(f"jsonmode: not enforced: {i}", stacklevel=2)
        else:
            raise SchemaError("schema uses keywords jsonmode cannot enforce exactly", ctx.issues)
    if node is NEVER:
        if ctx.truncated:
            raise RecursionLimitError(
                f"recursive schema has no instance within max_recursion_depth={opts.max_recursion_depth}"
            )
        raise UnsatisfiableSchemaError("no JSON value satisfies this schema")
    return node, ctx.free_values
