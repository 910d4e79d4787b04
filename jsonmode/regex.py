"""JSON Schema ``pattern``/length constraints as byte-level languages of JSON string contents.

Two layers:

* :func:`parse_pattern` reads the ECMA-262 subset that JSON Schema patterns use into a
  *character-level* AST (:class:`CNode`: code point sets as inclusive ranges, seq, alt,
  repeat, and top-level anchors).
* :func:`string_content` turns that into the *byte-level* language (see :mod:`jsonmode.fsm`)
  of the inside of a JSON string literal whose decoded value matches, with every JSON
  encoding of each admitted character: raw UTF-8 where JSON allows it, the short escapes
  and ``\\uXXXX`` (hex in any case) for BMP code points.

Character sets become compact automata: raw UTF-8 by the classic range-splitting
(split by encoded length and lead bytes, share continuation ranges) and ``\\uXXXX`` by
digit-wise hex range splitting; each one-character automaton is minimized and embedded as
a :class:`~jsonmode.fsm.DfaNode`, so ``[a-z0-9_]`` costs a handful of states, not one
branch per code point.

Supported pattern subset (Unicode semantics, i.e. as with the ``u`` flag: ``.`` and
classes match whole code points):

* literals; escapes ``\\d \\D \\w \\W \\s \\S \\t \\n \\r \\f \\v \\0 \\cX \\xHH \\uHHHH``
  (a ``\\uD83D\\uDE00`` pair is one code point) ``\\u{H..}`` and identity escapes of
  punctuation and ``_`` (``\\. \\/ \\- \\_ \\\\`` ...); ``\\s`` is ECMA whitespace (incl. U+00A0, U+FEFF,
  U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000);
* ``\\p{..}``/``\\P{..}`` for Unicode general categories only (``L``, ``Lu``, ``Nd``, ...,
  long names such as ``Letter``, optionally prefixed ``gc=``/``General_Category=``), taken
  from Python's :mod:`unicodedata`; scripts and binary properties are refused;
* classes ``[...]``/``[^...]`` with ranges and the escapes above (``\\b`` is backspace in a
  class); ``.`` = any code point but ``\\n \\r \\u2028 \\u2029``;
* groups ``( )``, ``(?: )``, ``(?<name> )``; alternation; quantifiers ``* + ? {n} {n,}
  {n,m}`` and their lazy forms (same language); a ``{`` that does not start a quantifier
  is a literal (ECMA Annex B), as are stray ``]`` and ``}``;
* anchors ``^``/``$`` where they start/end every match: at the start/end of the pattern or
  of an alternative of a group that itself starts/ends the pattern (``(^a|b)c``).

Refused with :class:`~jsonmode.errors.SchemaError` naming the construct and the pattern:
lookahead/lookbehind, backreferences (``\\1``, ``\\k<n>``), ``\\b``/``\\B`` word
boundaries, anchors elsewhere, inline flags/modifiers, legacy octal escapes, unknown
letter escapes (``\\A``, ``\\Z``, ``\\z``... are not ECMA and would silently mean a
letter), unsupported ``\\p`` properties, and malformed syntax.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import SchemaError
from .fsm import (
    DEFAULT_MAX_STATES,
    DFA,
    EMPTY,
    NEVER,
    CounterDFA,
    DfaNode,
    Node,
    Sym,
    alt,
    char_final,
    compile_dfa,
    intersect,
    lit,
    rep,
    seq,
    star,
    strings_dfa,
)

MAX_CODE_POINT = 0x10FFFF
# Moore rounds x states spent minimizing a pattern DFA before giving up (~0.1 s).
MINIMIZE_WORK = 300_000
Ranges = tuple[tuple[int, int], ...]

# --------------------------------------------------------------------------- range sets


def normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, disjoint, non-adjacent inclusive ranges (empty ones dropped)."""
    out: list[list[int]] = []
    for lo, hi in sorted(r for r in ranges if r[0] <= r[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return tuple(out)


def intersect_ranges(a: Ranges, b: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _chars(s: str) -> Ranges:
    return normalize((ord(c), ord(c)) for c in s)


ALL: Ranges = ((0, MAX_CODE_POINT),)
DIGIT: Ranges = ((0x30, 0x39),)
WORD: Ranges = normalize([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
SPACE: Ranges = normalize(
    [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029)]
    + [(0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
)
DOT: Ranges = complement(_chars("\n\r\u2028\u2029"))
SURROGATES: Ranges = ((0xD800, 0xDFFF),)
# Code points JSON lets us write raw: not control, quote or backslash; surrogates are not
# encodable in UTF-8 at all.
RAW_OK: Ranges = normalize([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, MAX_CODE_POINT)])
BMP_NO_SURROGATES: Ranges = ((0, 0xD7FF), (0xE000, 0xFFFF))
SHORT_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}

# --------------------------------------------------------------------------- character AST


class CNode:
    """A character-level regex node (code points, not bytes)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class CSet(CNode):
    """One code point out of ``ranges`` (sorted, disjoint, inclusive)."""

    ranges: Ranges


@dataclass(frozen=True, slots=True)
class CSeq(CNode):
    items: tuple[CNode, ...]


@dataclass(frozen=True, slots=True)
class CAlt(CNode):
    items: tuple[CNode, ...]


@dataclass(frozen=True, slots=True)
class CRepeat(CNode):
    """``item{lo,hi}``; ``hi=None`` is unbounded."""

    item: CNode
    lo: int
    hi: int | None


@dataclass(frozen=True, slots=True)
class CAnchor(CNode):
    """``^`` (``start=True``) or ``$``: first/last item of an alternative (see :func:`_anchored_branches`)."""

    start: bool


def _cseq(items: Sequence[CNode]) -> CNode:
    flat: list[CNode] = []
    for it in items:
        flat.extend(it.items if isinstance(it, CSeq) else (it,))
    return flat[0] if len(flat) == 1 else CSeq(tuple(flat))


# --------------------------------------------------------------------------- \p{..}

_GC_LONG = {
    "Letter": "L", "Cased_Letter": "LC", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M",
    "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
    "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No",
    "Punctuation": "P", "punct": "P", "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd",
    "Open_Punctuation": "Ps", "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf", "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z",
    "Space_Separator": "Zs", "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C",
    "Control": "Cc", "cntrl": "Cc", "Format": "Cf", "Surrogate": "Cs", "Private_Use": "Co",
    "Unassigned": "Cn",
}  # fmt: skip


@functools.cache
def _category_table() -> dict[str, Ranges]:
    """Two-letter general category -> ranges, scanned once from :mod:`unicodedata` (~0.5 s)."""
    acc: dict[str, list[tuple[int, int]]] = {}
    start, cur = 0, unicodedata.category("\0")
    for cp in range(1, MAX_CODE_POINT + 2):
        cat = unicodedata.category(chr(cp)) if cp <= MAX_CODE_POINT else ""
        if cat != cur:
            acc.setdefault(cur, []).append((start, cp - 1))
            start, cur = cp, cat
    return {k: tuple(v) for k, v in acc.items()}


def unicode_property(name: str) -> Ranges | None:
    """Ranges of a general category (``L``, ``Lu``, ``Letter``, ``gc=Nd``...), or None."""
    for prefix in ("General_Category=", "gc="):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    name = _GC_LONG.get(name, name)
    table = _category_table()
    if name == "LC":
        return normalize(table.get("Lu", ()) + table.get("Ll", ()) + table.get("Lt", ()))
    if len(name) == 1 and name in "LMNPSZC":
        return normalize(r for k, v in table.items() if k.startswith(name) for r in v)
    if len(name) == 2 and name in table:
        return table[name]
    return None


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the ECMA-262 pattern grammar (subset in the module doc)."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.depth = 0

    def fail(self, what: str) -> SchemaError:
        return SchemaError(f"unsupported regex construct in pattern {self.p!r}: {what} (at offset {self.i})")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def parse(self) -> CNode:
        node = self.disjunction()
        if self.i < len(self.p):
            raise self.fail("unmatched ')'")
        return node

    def disjunction(self) -> CNode:
        branches = [self.alternative()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.alternative())
        return branches[0] if len(branches) == 1 else CAlt(tuple(branches))

    def alternative(self) -> CNode:
        items: list[CNode] = []
        while self.i < len(self.p) and self.peek() not in "|)":
            c = self.peek()
            if c == "^":
                if any(not isinstance(it, CAnchor) for it in items):
                    raise self.fail("anchor '^' is only supported at the start of the pattern or of an alternative")
                self.i += 1
                items.append(CAnchor(True))
                self.no_quantifier("^")
                continue
            if c == "$":
                self.i += 1
                if self.peek() not in ("", "|", ")"):
                    raise self.fail("anchor '$' is only supported at the end of the pattern or of an alternative")
                items.append(CAnchor(False))
                continue
            atom = self.atom()
            items.append(self.quantified(atom))
        return _cseq(items) if items else CSeq(())

    def no_quantifier(self, what: str) -> None:
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self.try_braces(consume=False)):
            raise self.fail(f"quantifier after {what!r} (nothing to repeat)")

    def try_braces(self, consume: bool) -> tuple[int, int | None] | None:
        """Parse ``{n}``, ``{n,}``, ``{n,m}`` at ``i``; None if it is not a quantifier (Annex B literal)."""
        j = self.i + 1
        p = self.p
        k = j
        while k < len(p) and p[k].isdigit() and p[k].isascii():
            k += 1
        if k == j:
            return None
        lo = int(p[j:k])
        hi: int | None = lo
        if k < len(p) and p[k] == ",":
            m = k + 1
            while m < len(p) and p[m].isdigit() and p[m].isascii():
                m += 1
            hi = int(p[k + 1 : m]) if m > k + 1 else None
            k = m
        if k >= len(p) or p[k] != "}":
            return None
        if consume:
            self.i = k + 1
        return lo, hi

    def quantified(self, atom: CNode) -> CNode:
        c = self.peek()
        if c == "*":
            lo, hi = 0, None
            self.i += 1
        elif c == "+":
            lo, hi = 1, None
            self.i += 1
        elif c == "?":
            lo, hi = 0, 1
            self.i += 1
        elif c == "{" and (b := self.try_braces(consume=True)) is not None:
            lo, hi = b
            if hi is not None and hi < lo:
                raise self.fail(f"quantifier {{{lo},{hi}}} out of order")
        else:
            return atom
        if self.peek() == "?":  # lazy: same language
            self.i += 1
        self.no_quantifier("quantifier")
        return CRepeat(atom, lo, hi)

    def atom(self) -> CNode:
        c = self.peek()
        if c == "(":
            return self.group()
        if c == "[":
            return CSet(self.char_class())
        if c == ".":
            self.i += 1
            return CSet(DOT)
        if c == "\\":
            return self.atom_escape()
        if c in "*+?":
            raise self.fail(f"quantifier {c!r} with nothing to repeat")
        if c == "{" and self.try_braces(consume=False) is not None:
            raise self.fail("quantifier '{...}' with nothing to repeat")
        self.i += 1
        return CSet(((ord(c), ord(c)),))

    def group(self) -> CNode:
        self.i += 1
        if self.peek() == "?":
            nxt = self.p[self.i + 1 : self.i + 3]
            if nxt.startswith(":"):
                self.i += 2
            elif nxt.startswith(("=", "!")):
                raise self.fail("lookahead assertion")
            elif nxt in ("<=", "<!"):
                raise self.fail("lookbehind assertion")
            elif nxt.startswith("<"):
                end = self.p.find(">", self.i + 2)
                name = self.p[self.i + 2 : end] if end > 0 else ""
                if not name or not all(ch.isalnum() or ch in "_$" for ch in name):
                    raise self.fail("malformed group name")
                self.i = end + 1
            else:
                raise self.fail("inline flags / modifiers group '(?...'")
        self.depth += 1
        inner = self.disjunction()
        self.depth -= 1
        if self.peek() != ")":
            raise self.fail("unterminated group")
        self.i += 1
        return inner

    def hex_digits(self, n: int) -> int | None:
        s = self.p[self.i : self.i + n]
        if len(s) == n and all(ch in "0123456789abcdefABCDEF" for ch in s):
            self.i += n
            return int(s, 16)
        return None

    def char_escape(self, in_class: bool) -> int | Ranges:
        """After the backslash: a code point, or a set for ``\\d``-style escapes."""
        c = self.peek()
        if not c:
            raise self.fail("trailing backslash")
        self.i += 1
        sets = {"d": DIGIT, "w": WORD, "s": SPACE}
        if c.lower() in sets:
            r = sets[c.lower()]
            return complement(r) if c.isupper() else r
        simple = {"t": 9, "n": 10, "r": 13, "f": 12, "v": 11}
        if c in simple:
            return simple[c]
        if c == "b":
            if in_class:
                return 8
            raise self.fail("word boundary '\\b'")
        if c == "B":
            raise self.fail("word boundary '\\B'")
        if c == "0":
            if self.peek().isdigit():
                raise self.fail("legacy octal escape")
            return 0
        if c.isdigit():
            raise self.fail(f"backreference '\\{c}'")
        if c == "k":
            raise self.fail("named backreference '\\k'")
        if c == "c":
            x = self.peek()
            if x.isascii() and x.isalpha():
                self.i += 1
                return ord(x) % 32
            raise self.fail("malformed control escape '\\c'")
        if c == "x":
            v = self.hex_digits(2)
            if v is None:
                raise self.fail("malformed '\\x' escape")
            return v
        if c == "u":
            if self.peek() == "{":
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1 : end] if end > 0 else ""
                if not digits or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                    raise self.fail("malformed '\\u{...}' escape")
                v = int(digits, 16)
                if v > MAX_CODE_POINT:
                    raise self.fail("'\\u{...}' beyond U+10FFFF")
                self.i = end + 1
                return v
            v = self.hex_digits(4)
            if v is None:
                raise self.fail("malformed '\\u' escape")
            if 0xD800 <= v <= 0xDBFF and self.p[self.i : self.i + 2] == "\\u":
                save = self.i
                self.i += 2
                lo = self.hex_digits(4)
                if lo is not None and 0xDC00 <= lo <= 0xDFFF:
                    return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                self.i = save
            return v
        if c in "pP":
            end = self.p.find("}", self.i)
            if self.peek() != "{" or end < 0:
                raise self.fail(f"malformed '\\{c}' escape")
            name = self.p[self.i + 1 : end]
            prop = unicode_property(name)
            if prop is None:
                raise self.fail(f"Unicode property '\\{c}{{{name}}}' (only general categories are supported)")
            self.i = end + 1
            return complement(prop) if c == "P" else prop
        if c.isalnum():
            raise self.fail(f"unknown escape '\\{c}'")
        return ord(c)  # identity escape of punctuation (and '_', as Annex B and PCRE-style engines read it)

    def atom_escape(self) -> CNode:
        self.i += 1
        v = self.char_escape(in_class=False)
        return CSet(((v, v),) if isinstance(v, int) else v)

    def char_class(self) -> Ranges:
        self.i += 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        acc: list[tuple[int, int]] = []
        while True:
            if self.i >= len(self.p):
                raise self.fail("unterminated character class")
            if self.peek() == "]":
                self.i += 1
                break
            a = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                b = self.class_atom()
                if isinstance(a, int) and isinstance(b, int):
                    if b < a:
                        raise self.fail("character class range out of order")
                    acc.append((a, b))
                    continue
                acc.append((0x2D, 0x2D))  # Annex B: [\d-z] is \d, '-', 'z'
                for x in (a, b):
                    acc.extend(((x, x),) if isinstance(x, int) else x)
                continue
            acc.extend(((a, a),) if isinstance(a, int) else a)
        r = normalize(acc)
        return complement(r) if negate else r

    def class_atom(self) -> int | Ranges:
        c = self.peek()
        self.i += 1
        if c == "\\":
            return self.char_escape(in_class=True)
        return ord(c)


def parse_pattern(pattern: str) -> CNode:
    """Character-level AST of an ECMA-262 JSON Schema ``pattern`` (subset: see module doc).

    Anchors appear only as :class:`CAnchor` first/last items of an alternative.
    Raises :class:`SchemaError` naming the unsupported construct and the pattern.
    """
    return _Parser(pattern).parse()


# --------------------------------------------------------------------------- byte automata


def _utf8_split(s: int, e: int, out: list[list[tuple[int, int]]]) -> None:
    """Byte-range sequences whose union is the UTF-8 encoding of [s, e] (no surrogates inside)."""
    for mx in (0x7F, 0x7FF, 0xFFFF):
        if s <= mx < e:
            _utf8_split(s, mx, out)
            _utf8_split(mx + 1, e, out)
            return
    if e <= 0x7F:
        out.append([(s, e)])
        return
    for i in (1, 2, 3):
        m = (1 << (6 * i)) - 1
        if s & ~m != e & ~m:
            if s & m:
                _utf8_split(s, s | m, out)
                _utf8_split((s | m) + 1, e, out)
                return
            if e & m != m:
                _utf8_split(s, (e & ~m) - 1, out)
                _utf8_split(e & ~m, e, out)
                return
    out.append(list(zip(chr(s).encode(), chr(e).encode(), strict=True)))


def _byte_mask(lo: int, hi: int) -> int:
    return ((1 << (hi - lo + 1)) - 1) << lo


def utf8_class(ranges: Iterable[tuple[int, int]]) -> Node:
    """Raw UTF-8 of one code point from ``ranges`` (surrogates dropped), range-split."""
    seqs: list[list[tuple[int, int]]] = []
    for lo, hi in intersect_ranges(normalize(ranges), complement(SURROGATES)):
        _utf8_split(lo, hi, seqs)
    return alt(*(seq(*(Sym(_byte_mask(a, b)) for a, b in sq)) for sq in seqs))


_HEX_MASKS = [
    1 << ord(c) if c.isdigit() else (1 << ord(c)) | (1 << ord(c.upper())) for c in "0123456789abcdef"
]


def _hex_digit_mask(lo: int, hi: int) -> int:
    m = 0
    for v in range(lo, hi + 1):
        m |= _HEX_MASKS[v]
    return m


def _hex_split(lo: int, hi: int, n: int) -> list[list[tuple[int, int]]]:
    """Digit-value range sequences (n hex digits) covering exactly [lo, hi]."""
    if n == 1:
        return [[(lo, hi)]]
    m = 16 ** (n - 1)
    a, b = divmod(lo, m)
    c, d = divmod(hi, m)
    if a == c:
        return [[(a, a)] + s for s in _hex_split(b, d, n - 1)]
    out: list[list[tuple[int, int]]] = []
    tail: list[list[tuple[int, int]]] = []
    if b:
        out += [[(a, a)] + s for s in _hex_split(b, m - 1, n - 1)]
        a += 1
    if d != m - 1:
        tail = [[(c, c)] + s for s in _hex_split(0, d, n - 1)]
        c -= 1
    if a <= c:
        out.append([(a, c)] + [(0, 15)] * (n - 1))
    return out + tail


def hex_class(ranges: Ranges, digits: int = 4) -> Node:
    """``digits`` hex digits (either case) spelling a value in ``ranges``."""
    parts = []
    for lo, hi in ranges:
        for sq in _hex_split(lo, hi, digits):
            parts.append(seq(*(Sym(_hex_digit_mask(a, b)) for a, b in sq)))
    return alt(*parts)


def minimize(d: DFA, max_work: int | None = None) -> DFA:
    """Moore partition refinement (numpy); rounds ~ the DFA's depth.

    With ``max_work`` (total state-rows refined over all rounds) it gives up and returns
    the trimmed input unchanged: minimizing is an optimization, and long counter chains
    (``{0,1000}``) would need a round per step.
    """
    d = d.trim()
    S, C = d.trans.shape
    if S == 0 or C == 0:
        return d
    t = np.vstack([np.where(d.trans >= 0, d.trans, S), np.full((1, C), S)])
    part = np.append(d.accept, False).astype(np.int64)
    n = int(part.max()) + 1
    work = 0
    while True:
        work += S
        if max_work is not None and work > max_work:
            return d
        sig = np.ascontiguousarray(np.column_stack([part, part[t]]).astype(np.int32))
        keys = sig.view(np.dtype((np.void, 4 * (C + 1)))).ravel()
        _, new = np.unique(keys, return_inverse=True)
        new = new.ravel().astype(np.int64)
        k = int(new.max()) + 1
        if k == n:
            break
        part, n = new, k
    dead = part[S]
    # renumber reachable classes in BFS order from the start state
    order = {int(part[0]): 0}
    reps = [0]
    rows: list[list[int]] = []
    i = 0
    while i < len(reps):
        row = []
        for c in range(C):
            tgt = int(t[reps[i], c])
            cls = int(part[tgt])
            if cls == dead:
                row.append(-1)
                continue
            j = order.get(cls)
            if j is None:
                j = order[cls] = len(reps)
                reps.append(tgt)
            row.append(j)
        rows.append(row)
        i += 1
    acc = np.array([bool(d.accept[r]) if r < S else False for r in reps], bool)
    return DFA(np.array(rows, np.int32).reshape(len(rows), C), acc, d.classmap)


def _surrogate_pair() -> Node:
    """``\\uD8xx\\uDCxx``: one astral code point spelled as a UTF-16 pair (either hex case)."""
    return seq(lit("\\u"), hex_class(((0xD800, 0xDBFF),)), lit("\\u"), hex_class(((0xDC00, 0xDFFF),)))


@functools.lru_cache(maxsize=4096)
def char_dfa(ranges: Ranges, pairs: bool = False) -> DFA:
    """Minimal DFA of every JSON spelling of one code point in ``ranges``.

    Raw UTF-8 when JSON allows it, the short escapes of their characters, ``\\uXXXX`` for BMP
    non-surrogates; with ``pairs``, also surrogate-pair escapes of astral code points
    (used for fully free strings only, so lengths and classes stay exact elsewhere).
    """
    raw = utf8_class(intersect_ranges(ranges, RAW_OK))
    short = 0
    for cp, ch in SHORT_ESCAPES.items():
        if intersect_ranges(ranges, ((cp, cp),)):
            short |= 1 << ord(ch)
    bmp = intersect_ranges(ranges, BMP_NO_SURROGATES)
    esc = alt(Sym(short) if short else NEVER, seq(lit("u"), hex_class(bmp)) if bmp else NEVER)
    node = alt(raw, seq(lit("\\"), esc) if esc is not NEVER else NEVER)
    if pairs:
        node = alt(node, _surrogate_pair())
    return minimize(compile_dfa(node))


def json_char(ranges: Iterable[tuple[int, int]], pairs: bool = False) -> Node:
    """Byte language of one JSON-encoded code point from ``ranges`` (a compact DfaNode)."""
    r = normalize(ranges)
    d = char_dfa(r, pairs)
    return NEVER if d.is_empty() else DfaNode(d)


def char_class_utf8(ranges: Iterable[tuple[int, int]]) -> Node:
    """Raw UTF-8 only (no JSON escaping): for contexts outside string literals."""
    return utf8_class(normalize(ranges))


@functools.lru_cache(maxsize=1)
def free_string_dfa() -> DFA:
    """Inside of an unconstrained JSON string: one embedded automaton whose states know their
    character phase (a :class:`~jsonmode.fsm.StringsDFA`), so string masks come from
    per-vocabulary tables wherever the string sits (under $refs, nested free values)."""
    char = char_dfa(ALL, pairs=True)
    return strings_dfa(minimize(compile_dfa(star(DfaNode(char)))), char)


def canonical_key_char_node() -> Node:
    """One character of an object key as ``json.dumps(ensure_ascii=False)`` writes it."""
    raw = utf8_class([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x10FFFF)])
    short = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}
    esc = alt(lit('\\"'), lit("\\\\"), *(lit("\\" + c) for c in short.values()),
              *(lit(f"\\u{c:04x}") for c in range(0x20) if c not in short))
    return alt(raw, esc)


@functools.lru_cache(maxsize=1)
def canonical_key_char() -> DFA:
    """:func:`canonical_key_char_node` as a minimal DFA (a single final state)."""
    return minimize(compile_dfa(canonical_key_char_node()))


def any_json_char() -> Node:
    """Any single code point, in any JSON spelling (no surrogate-pair escapes)."""
    return json_char(ALL)


def literal_json_string(s: str) -> Node:
    """Exactly ``json.dumps(s, ensure_ascii=False)`` without the quotes (const/enum strings).

    Only the canonical spelling is accepted: the decoded value is fixed, and one spelling
    keeps the automaton a plain chain.  Lone surrogates (not UTF-8 encodable) are written
    as ``\\udxxx`` escapes, which is what json.loads needs to give them back.
    """
    text = json.dumps(s, ensure_ascii=False)[1:-1]
    text = "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return lit(text.encode())


def _to_bytes(node: CNode) -> Node:
    if isinstance(node, CSet):
        return json_char(node.ranges)
    if isinstance(node, CSeq):
        return seq(*(_to_bytes(it) for it in node.items))
    if isinstance(node, CAlt):
        return alt(*(_to_bytes(it) for it in node.items))
    if isinstance(node, CRepeat):
        return rep(_to_bytes(node.item), node.lo, node.hi)
    raise SchemaError(f"anchor inside a pattern construct: {node!r}")  # parser never builds this


def _anchor_in(node: CNode) -> CAnchor | None:
    if isinstance(node, CAnchor):
        return node
    if isinstance(node, CSeq | CAlt):
        return next((a for it in node.items if (a := _anchor_in(it)) is not None), None)
    return _anchor_in(node.item) if isinstance(node, CRepeat) else None


def _has_anchor(node: CNode) -> bool:
    return _anchor_in(node) is not None


def _flat(items: Sequence[CNode]) -> list[CNode]:
    c = _cseq(items)
    return list(c.items) if isinstance(c, CSeq) else [c]


def _anchored_branches(pattern: str, tree: CNode, limit: int = 256) -> list[tuple[bool, list[CNode], bool]]:
    """Top-level branches as (starts with ``^``, anchor-free items, ends with ``$``).

    A group that begins (ends) a branch and holds anchors is distributed over the branch
    (``(^a|b)c`` = ``^ac|bc``), a language-preserving rewrite, so anchors inside it reach
    the branch's edge.  Anchors that still sit inside are refused.
    """
    work = [_flat([br]) for br in (tree.items if isinstance(tree, CAlt) else (tree,))]
    out: list[tuple[bool, list[CNode], bool]] = []
    while work:
        items = work.pop()
        if len(out) + len(work) > limit:
            raise SchemaError(f"unsupported regex construct in pattern {pattern!r}: too many anchored alternatives")
        if items and isinstance(items[0], CAlt) and _has_anchor(items[0]):
            work.extend(_flat([b, *items[1:]]) for b in items[0].items)
            continue
        if items and isinstance(items[-1], CAlt) and _has_anchor(items[-1]):
            work.extend(_flat([*items[:-1], b]) for b in items[-1].items)
            continue
        start = end = False
        while items and isinstance(items[0], CAnchor) and items[0].start:
            start = True
            items = items[1:]
        while items and isinstance(items[-1], CAnchor) and not items[-1].start:
            end = True
            items = items[:-1]
        inner = _anchor_in(CSeq(tuple(items)))
        if inner is not None:
            raise SchemaError(f"unsupported regex construct in pattern {pattern!r}: anchor "
                              f"'{'^' if inner.start else '$'}' is only supported where it can start (end) a match "
                              "of the whole pattern")
        out.append((start, items, end))
    return out[::-1]


def class_repeat(pattern: str) -> tuple[Ranges, int, int | None] | None:
    """(class, lo, hi) when ``pattern`` is exactly ``^C{lo,hi}$`` for one character class ``C``
    (``^[0-9a-f]{24}$``, ``^[\\w-]{1,255}$``, ``^\\d+$``): then it says only "lo..hi characters
    of C", a count the compiler keeps as a computed counter instead of a chain of states."""
    try:
        branches = _anchored_branches(pattern, parse_pattern(pattern))
    except SchemaError:
        return None
    if len(branches) != 1:
        return None
    start, items, end = branches[0]
    if not (start and end) or len(items) != 1:
        return None
    item = items[0]
    if isinstance(item, CSet):
        return item.ranges, 1, 1
    if isinstance(item, CRepeat) and isinstance(item.item, CSet):
        return item.item.ranges, item.lo, item.hi
    return None


def pattern_node(pattern: str) -> Node:
    """Byte language of JSON string contents containing a match of ``pattern`` (search semantics)."""
    any_star = star(any_json_char())
    # Branches with the same anchoring share one leading and one trailing `any*`: with a copy
    # per branch the subset construction tracks which branches have matched (2**n states).
    groups: dict[tuple[bool, bool], list[Node]] = {}
    for start, items, end in _anchored_branches(pattern, parse_pattern(pattern)):
        groups.setdefault((start, end), []).append(_to_bytes(_cseq(items) if items else CSeq(())))
    return alt(*(seq(EMPTY if start else any_star, alt(*bodies), EMPTY if end else any_star)
                 for (start, end), bodies in groups.items()))


def length_dfa(min_length: int, max_length: int | None, char: DFA | None = None) -> DFA:
    """Strings of ``min_length..max_length`` JSON characters, built directly as a counter DFA.

    States are (characters done, state inside the current character); the character DFA's
    single final state folds back to the start of the next character.  Linear in
    ``max_length`` and made in numpy, so it costs nothing next to the pattern DFA.
    """
    c = char if char is not None else char_dfa(ALL)
    Q, C = c.trans.shape
    f = char_final(c)
    if f is None:
        raise ValueError("length_dfa needs a one-character DFA with a single sink final state")
    inner = [q for q in range(Q) if q != f]  # state 0 (start) first
    idx = np.full(Q, -1, np.int64)
    idx[inner] = np.arange(len(inner))
    K = (max_length if max_length is not None else min_length) + 1  # counters 0..K-1
    m = len(inner)
    tr = c.trans[inner]  # (m, C)
    trans = np.full((K * m, C), -1, np.int64)
    for k in range(K):
        nk = k + 1 if k + 1 < K else (k if max_length is None else -1)
        blk = np.where(tr >= 0, idx[np.where(tr >= 0, tr, 0)] + k * m, -1)
        to_final = tr == f
        blk = np.where(to_final, nk * m if nk >= 0 else -1, blk)
        trans[k * m : (k + 1) * m] = blk
    accept = np.zeros(K * m, bool)
    accept[np.arange(min_length, K) * m] = True
    return DFA(trans.astype(np.int32), accept, c.classmap).trim()


def counter_dfa(min_length: int, max_length: int | None, char: DFA | None = None) -> CounterDFA:
    """:func:`length_dfa` as a :class:`CounterDFA` (rows computed, each state's count and phase known)."""
    return CounterDFA(char if char is not None else char_dfa(ALL), min_length, max_length)


def string_content(
    pattern: str | None = None,
    min_length: int = 0,
    max_length: int | None = None,
    *,
    max_states: int = DEFAULT_MAX_STATES,
) -> Node:
    """Byte language of the inside of a JSON string whose value matches the constraints.

    ``pattern`` is searched (unanchored unless ``^``/``$``), lengths count code points.
    Each admitted character may be spelled raw (UTF-8, when JSON allows) or escaped
    (short escapes, ``\\uXXXX`` any hex case, BMP only).  Fully free strings (no pattern,
    no lengths) also accept surrogate-pair escapes, which models trained on
    ``ensure_ascii`` JSON emit for emoji.  Returns NEVER when unsatisfiable.  Raises
    SchemaError for unsupported patterns, AutomatonTooLarge past ``max_states``.

    Without a pattern this is ``rep(char, lo, hi)`` over a minimal one-character DFA.  A
    pattern is compiled, minimized (when cheap) and intersected with a counter DFA for the
    lengths (:func:`length_dfa`, built directly in numpy rather than by subset construction).
    """
    min_length = max(min_length, 0)
    if max_length is not None and max_length < min_length:
        return NEVER
    if pattern is None:
        if min_length == 0 and max_length is None:
            return DfaNode(free_string_dfa())
        return rep(any_json_char(), min_length, max_length)
    pdfa = minimize(compile_dfa(pattern_node(pattern), max_states=max_states), MINIMIZE_WORK)
    if min_length or max_length is not None:
        pdfa = intersect(pdfa, length_dfa(min_length, max_length), max_states=max_states)
    return NEVER if pdfa.is_empty() else DfaNode(pdfa)
