"""Example instances of a JSON Schema, written from the schema alone.

Why: a lazily built automaton computes a state's mask the first time an output reaches it,
and that first visit is the slow tail of per-token latency.  Outputs of one schema pass
through the same structural states (each key, the start of each value, what follows it), so
:func:`jsonmode.automaton.compile_automaton` walks a few of these sketches through the
automaton, tokenized as the model would write them, and computes those masks up front.

A sketch is a heuristic, never validated: every declared property in schema order, one
``anyOf``/``oneOf`` branch and enum value per variant, two array items, strings that match
their ``pattern``/``format`` (sampled from the same automata the compiler builds), numbers
inside their bounds.  Where the schema is subtler than that, the walk stops at the first
token the automaton refuses: a bad sketch costs compile time, never correctness.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections import deque
from typing import Any

from . import formats, fsm, regex
from .errors import SchemaError
from .schema import resolve_ref

__all__ = ["sketches"]

MAX_DEPTH = 12  # nesting of a sketch; deeper values are the smallest of their type
MAX_REF_REPEATS = 2  # times one $ref may be re-entered on a path (recursive schemas)
MAX_STRING = 1_024  # longest string a sketch writes (a minLength above it is not sketched)
_SAMPLE_STATES = 20_000  # largest automaton built to sample a pattern (past it: plain text)
_FEWEST_MAX = 16  # minItems a smallest array is written out to (more: left empty)
MAX_VALUES = 20_000  # values in one sketch (nested definitions multiply); past it, the smallest ones

# bytes a sampled string prefers, most readable first (never '"' or '\\': no escapes to write)
_OMIT = "\x00omit"  # (private key) property names a chosen oneOf branch rules out
_PREFERRED = [ord(c) for c in "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:/ @+,"]
_PREFERRED += [b for b in range(0x20, 0x7F) if b not in _PREFERRED and b not in (0x22, 0x5C)]
_INTEGERS = (1, 42, 2024)
_NUMBERS = (1.5, 20.0, 3)
_TEXT = ("abcde", "Hello world", "x1")
# what a value the schema leaves free ({}, true, an open object's extra keys) is sketched as:
# the shapes such outputs take, one or two levels deep
_FREE_OBJECT = {"name": "abcde", "id": 42, "value": 1.5, "enabled": True, "tags": ["a", "b"],
                "data": {"key": "Hello world", "count": 2, "none": None}, "items": [{"id": 1, "type": "x"}]}
_FREE = ("abcde", _FREE_OBJECT, 42)


def sketches(schema: Any, variants: int = 3, *, seconds: float | None = None, max_depth: int = MAX_DEPTH) -> list[Any]:
    """Up to ``variants`` distinct example instances (variant ``k`` takes the ``k``-th branch,
    enum value, type and sample value wherever the schema offers several).

    ``seconds`` bounds the time spent (sampling a pattern or format compiles an automaton,
    once per process); past it, what is left of a sketch is the smallest values.
    """
    out: list[Any] = []
    seen: set[str] = set()
    deadline = None if seconds is None else time.perf_counter() + seconds
    for k in range(variants):
        try:
            value = _Sketcher(schema, k, deadline, max_depth=max_depth).value(schema, 0, ())
            text = json.dumps(value, ensure_ascii=False)
        except (RecursionError, TypeError, ValueError, OverflowError):
            continue
        if text not in seen:
            seen.add(text)
            out.append(value)
    return out


@functools.lru_cache(maxsize=4_096)
def _string(pattern: str | None, lo: int, hi: int | None, fmt: str | None, k: int) -> str | None:
    """A string of ``lo``..``hi`` characters matching ``pattern`` and ``fmt``; None when no
    readable one is found quickly (unsupported pattern, non-ASCII only, ...)."""
    try:
        if fmt is not None and pattern is None:
            d = formats.format_dfa(fmt)
            if d is not None:
                return _shortest(d)
        if pattern is not None:  # the pattern alone, kept small: a sample must not cost a compile
            d = fsm.compile_dfa(regex.pattern_node(pattern), max_states=_SAMPLE_STATES, max_positions=_SAMPLE_STATES)
            # not empty where it may not be: an empty string's quotes are one token (` ""`), which
            # would skip the state inside the string that real values start from
            text = _shortest(d, lo or (1 if hi is None or hi > 0 else 0))
            if text is None and not lo:
                text = _shortest(d, 0)
            return text if text is not None and (hi is None or len(text) <= hi) else None
    except Exception:  # noqa: BLE001 - a sketch is best effort: the compiler reports real errors
        return None
    if lo > MAX_STRING:
        return None
    text = _TEXT[k % len(_TEXT)]
    n = max(lo, min(len(text), hi if hi is not None else len(text)))
    return (text * (n // len(text) + 1))[:n]


def _shortest(d: fsm.DFA, lo: int = 0) -> str | None:
    """Shortest accepted string of ``d`` of at least ``lo`` bytes over readable ASCII, preferring
    letters (BFS over (state, length so far capped at ``lo``))."""
    if lo > MAX_STRING:
        return None
    start = (0, 0)
    parent: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        s, n = node
        if n >= lo and d.is_accepting(s):
            out = bytearray()
            step = parent[node]
            while step is not None:
                node, b = step
                out.append(b)
                step = parent[node]
            return out[::-1].decode("ascii")
        row = d.row(s)
        for b in _PREFERRED:
            t = int(row[b]) if b < row.shape[0] else -1
            nxt = (t, min(n + 1, lo))
            if t >= 0 and nxt not in parent:
                parent[nxt] = (node, b)
                queue.append(nxt)
    return None


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Sketcher:
    def __init__(self, root: Any, k: int, deadline: float | None = None, left: list[int] | None = None,
                 max_depth: int = MAX_DEPTH) -> None:
        self.root = root
        self.max_depth = max_depth
        self.k = k
        self.deadline = deadline
        self.left = [MAX_VALUES] if left is None else left  # shared by a sketch's array items

    def string(self, pattern: Any, lo: Any, hi: Any, fmt: Any) -> str:
        lo = lo if isinstance(lo, int) else 0
        hi = hi if isinstance(hi, int) else None
        pattern = pattern if isinstance(pattern, str) else None
        fmt = fmt if isinstance(fmt, str) else None
        left = None if self.deadline is None else self.deadline - time.perf_counter()
        if (pattern is not None or fmt is not None) and left is not None and left <= 0:
            pattern = fmt = None  # out of time for sampling automata: plain text
        with fsm.time_limit(left, "warm_seconds"):  # a pattern's compile is cut off there (then plain text)
            text = _string(pattern, lo, hi, fmt, self.k)
        if text is None and (pattern is not None or fmt is not None):
            text = _string(None, lo, hi, None, 0)  # the plainest text (no space) of the right length
        return "a" if text is None else text

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str):
            return None
        try:
            return resolve_ref(self.root, ref, "")[0]
        except SchemaError:  # the compiler reports it, named
            return None

    def value(self, s: Any, depth: int, refs: tuple[str, ...]) -> Any:
        self.left[0] -= 1
        if self.left[0] < 0 or (self.deadline is not None and time.perf_counter() > self.deadline):
            return self.smallest(s)
        if not isinstance(s, dict):
            return _FREE[self.k % len(_FREE)] if s is True else "a"
        if "$ref" in s:
            ref = s["$ref"]
            target = self.resolve(ref)
            if not isinstance(target, dict) or refs.count(ref) >= MAX_REF_REPEATS or depth > self.max_depth:
                return self.smallest(s)
            rest = {key: v for key, v in s.items() if key != "$ref"}
            return self.value({**target, **rest} if rest else target, depth + 1, (*refs, ref))
        if "const" in s:
            return s["const"]
        enum = s.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.k % len(enum)]
        for key in ("anyOf", "oneOf"):
            branches = s.get(key)
            if isinstance(branches, list) and branches:
                real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")] or branches
                branch = chosen = real[self.k % len(real)]
                rest = {kk: v for kk, v in s.items() if kk != key}
                if isinstance(branch, dict) and "$ref" in branch:
                    target = self.resolve(branch["$ref"])
                    if isinstance(target, dict) and branch["$ref"] not in refs:
                        branch = {**target, **{kk: v for kk, v in branch.items() if kk != "$ref"}}
                if isinstance(branch, dict) and rest:
                    branch = _merge(rest, branch)
                if key == "oneOf" and isinstance(branch, dict):
                    # exactly one branch: leave out the names only the other branches require
                    mine = set(branch.get("required") or [])
                    others = {n for b in real if b is not chosen and isinstance(b, dict)
                              for n in b.get("required") or [] if isinstance(n, str)} - mine
                    if others:
                        branch = {**branch, _OMIT: others | set(branch.get(_OMIT, ()))}
                return self.value(branch, depth + 1, refs)
        parts = s.get("allOf")
        if isinstance(parts, list):
            merged = {kk: v for kk, v in s.items() if kk != "allOf"}
            for part in parts:
                if isinstance(part, dict) and "$ref" in part:
                    target = self.resolve(part["$ref"])
                    part = target if isinstance(target, dict) else part
                if isinstance(part, dict):
                    merged = _merge(merged, part)
            return self.value(merged, depth + 1, refs)
        if depth > self.max_depth:
            return self.smallest(s)
        kind = _kind(s, self.k)
        if kind == "object":
            return self.object(s, depth, refs)
        if kind == "array":
            return self.array(s, depth, refs)
        if kind == "string":
            return self.string(s.get("pattern"), s.get("minLength", 0), s.get("maxLength"), s.get("format"))
        if kind in ("integer", "number"):
            return self.number(s, kind == "integer")
        if kind == "boolean":
            return self.k % 2 == 0
        if kind == "null":
            return None
        return _FREE[self.k % len(_FREE)]

    def smallest(self, s: Any, depth: int = 0) -> Any:
        """The smallest value of the schema's first type (where recursion or depth stops)."""
        for _ in range(MAX_DEPTH):
            if not isinstance(s, dict):
                return "a"
            if "$ref" in s:
                s = self.resolve(s["$ref"])
                continue
            if "const" in s:
                return s["const"]
            if isinstance(s.get("enum"), list) and s["enum"]:
                return s["enum"][0]
            branches = s.get("anyOf") or s.get("oneOf") or s.get("allOf")
            kind = _kind(s, 0)
            if kind is None and isinstance(branches, list) and branches:
                s = branches[0]
                continue
            break
        else:
            return None
        self.left[0] -= 1
        if kind == "object" and depth < MAX_DEPTH and self.left[0] > -MAX_VALUES:  # required ones at their smallest
            props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
            need = [n for n in s.get("required") or [] if isinstance(n, str)]
            names = [n for n in props if n in need] + [n for n in need if n not in props]  # schema order
            return {name: self.smallest(props.get(name, {}), depth + 1) for name in names}
        if kind == "string":
            return self.string(s.get("pattern"), s.get("minLength", 0), s.get("maxLength"), s.get("format"))
        if kind in ("integer", "number"):
            return self.number(s, kind == "integer")
        if kind == "array" and depth < MAX_DEPTH:
            return self.fewest_items(s, depth)
        return {"object": {}, "array": [], "boolean": True}.get(kind or "")

    def fewest_items(self, s: dict[str, Any], depth: int) -> list[Any]:
        """The shortest array ``s`` allows, items at their smallest (a depth-limited sketch's
        arrays: an empty one below ``minItems`` would stop the walk at its bracket)."""
        head = _head_items(s)
        if head is not None:
            return [self.smallest(x, depth + 1) for x in head]
        lo = s.get("minItems", 0)
        if not isinstance(lo, int) or lo <= 0 or lo > _FEWEST_MAX:
            return []
        item = s.get("items", {})
        enum = item.get("enum") if isinstance(item, dict) else None
        if s.get("uniqueItems"):  # distinct items only where they are listed
            return list(enum[:lo]) if isinstance(enum, list) and len(enum) >= lo else []
        return [self.smallest(item, depth + 1) for _ in range(lo)]

    def object(self, s: dict[str, Any], depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        props = s.get("properties")
        omit = s.get(_OMIT, ())
        if isinstance(props, dict):
            for name, sub in props.items():
                if name not in omit:
                    out[name] = self.value(sub, depth + 1, refs)
        extra = s.get("additionalProperties")
        patterns = s.get("patternProperties")
        for name in s.get("required") or []:
            if isinstance(name, str) and name not in out:
                out[name] = self.value(_extra_schema(name, patterns, extra), depth + 1, refs)
        for group in _forbidden_together(s.get("not")):
            present = [n for n in out if n in group]
            if present and len(present) == len(group):  # `not` of all of them: leave one out
                del out[present[-1]]
        if not out:
            if isinstance(patterns, dict) and patterns:
                pat, sub = next(iter(patterns.items()))
                out[self.string(pat, 1, None, None)] = self.value(sub, depth + 1, refs)
            elif isinstance(extra, dict) and extra:
                out["key"] = self.value(extra, depth + 1, refs)
            elif extra is not False and extra != {"not": {}}:
                out.update(_FREE_OBJECT)
        return out

    def array(self, s: dict[str, Any], depth: int, refs: tuple[str, ...]) -> list[Any]:
        head = _head_items(s)
        if head is not None:
            return [self.value(x, depth + 1, refs) for x in head]
        lo, hi = s.get("minItems", 0), s.get("maxItems")
        n = max(lo if isinstance(lo, int) else 0, 1 if s.get("uniqueItems") else 2)
        if isinstance(hi, int):
            n = min(n, hi)
        item = s.get("items", {})
        return [_Sketcher(self.root, self.k + i, self.deadline, self.left, self.max_depth).value(item, depth + 1, refs)
                for i in range(n)]

    def number(self, s: dict[str, Any], integer: bool) -> int | float:
        v: int | float = (_INTEGERS if integer else _NUMBERS)[self.k % len(_INTEGERS)]
        lo, hi = s.get("minimum"), s.get("maximum")
        xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        if _num(xlo) and v <= xlo:
            v = xlo + 1
        if _num(lo) and v < lo:
            v = lo
        if _num(xhi) and v >= xhi:
            v = xhi - 1
        if _num(hi) and v > hi:
            v = hi
        step = s.get("multipleOf")
        if _num(step) and step > 0:
            n = math.ceil(v / step)  # the first multiple at or above v, else the last below
            above = (_num(hi) and n * step > hi) or (_num(xhi) and n * step >= xhi)
            v = (n - 1 if above else n) * step
            if isinstance(step, float):
                v = float(round(v, 12))
        if integer:
            v = math.ceil(v)
        return v


def _head_items(s: dict[str, Any]) -> list[Any] | None:
    """The schemas of an array's leading items (``prefixItems``, or ``items`` as a list), or None."""
    head = s.get("prefixItems")
    if isinstance(head, list):
        return head
    items = s.get("items")
    return items if isinstance(items, list) else None


def _extra_schema(name: str, patterns: Any, extra: Any) -> Any:
    """The schema of a property not declared in ``properties``: the first ``patternProperties``
    entry it matches (by the compiler's own pattern automata), else ``additionalProperties``."""
    from .compiler import _matching_patterns

    hits = _matching_patterns(patterns, name) if isinstance(patterns, dict) else None
    if hits:
        return hits[0]
    return extra if isinstance(extra, dict) else {}


def _forbidden_together(neg: Any) -> list[set[str]]:
    """Sets of names that ``not`` forbids all at once (``not: {required: [...]}`` or an
    ``allOf`` of such)."""
    if not isinstance(neg, dict):
        return []
    parts = neg.get("allOf") if isinstance(neg.get("allOf"), list) else [neg]
    names = {n for p in parts if isinstance(p, dict) for n in p.get("required") or [] if isinstance(n, str)}
    simple = all(isinstance(p, dict) and set(p) <= {"required"} for p in parts)
    return [names] if names and simple else []


def _kind(s: dict[str, Any], k: int) -> str | None:
    t = s.get("type")
    if isinstance(t, list):
        real = [x for x in t if x != "null"] or ["null"]
        t = real[k % len(real)]
    if isinstance(t, str):
        return t
    if "properties" in s or "additionalProperties" in s or "patternProperties" in s or "required" in s:
        return "object"
    if "items" in s or "prefixItems" in s:
        return "array"
    if "pattern" in s or "format" in s or "minLength" in s or "maxLength" in s:
        return "string"
    if "minimum" in s or "maximum" in s or "multipleOf" in s:
        return "number"
    return None


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` and ``b`` as one schema, roughly: properties and required united, else ``b`` wins."""
    out = {**a, **b}
    pa, pb = a.get("properties"), b.get("properties")
    if isinstance(pa, dict) and isinstance(pb, dict):
        out["properties"] = {**pa, **pb}
    ra, rb = a.get("required"), b.get("required")
    if isinstance(ra, list) and isinstance(rb, list):
        out["required"] = list(dict.fromkeys([*ra, *rb]))
    return out
