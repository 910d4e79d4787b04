"""JSON number literals under JSON Schema numeric keywords, as exact byte-level automata.

Grammar (RFC 8259): ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``.  The automata are
*exact* in one direction and documented in the other:

* they never accept a literal whose value breaks ``minimum``/``maximum``/``exclusive*``/
  ``multipleOf`` (values are compared as exact decimals, the schema's float bounds taken as
  their shortest ``repr``);
* they accept every in-range literal of the *supported shape*, which bounds output length so
  a model cannot run away: no negative zero (``-0``, ``-0.0``), digit limits (see
  :func:`number_node`), and exponents only for unconstrained numbers.

Ranges are built as "x >= L" and "x <= U" languages by the classic digit-by-digit split
(same length with a larger digit at position i, or more digits), intersected with a
length-limited grammar and minimised; ``multipleOf`` is a product with a remainder automaton.
Results are cached, so repeated schemas cost nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .errors import AutomatonTooLarge, SchemaError, UnsatisfiableSchemaError
from .fsm import DFA, EMPTY, NEVER, DfaNode, Node, alt, compile_dfa, intersect, lit, opt, rep, seq, star, sym
from .fsm import sym_range as _sym_range

__all__ = ["integer_node", "number_node", "INT64_MIN", "INT64_MAX"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_MODULUS = 10_000  # largest remainder automaton built for multipleOf
ENUMERATE_LIMIT = 1_000  # above MAX_MODULUS, ranges with at most this many multiples are listed
DEFAULT_MAX_STATES = 100_000

Number = int | float | Decimal


# --------------------------------------------------------------------------- bounds


@dataclass(frozen=True)
class _Bound:
    value: Decimal
    exclusive: bool


def _decimal(value: object, keyword: str) -> Decimal:
    """Exact decimal of a schema number; floats via ``repr`` (the text the schema most likely held)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise SchemaError(f"{keyword} must be a number, got {value!r}")
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not d.is_finite():
        raise SchemaError(f"{keyword} must be finite, got {value!r}")
    return d


def _resolve(
    inclusive: Number | None, exclusive: Number | bool | None, kw: str, ex_kw: str, lower: bool
) -> _Bound | None:
    """Tightest of an inclusive bound and an exclusive one (draft 6+ number or draft 4 boolean)."""
    inc = None if inclusive is None else _decimal(inclusive, kw)
    if isinstance(exclusive, bool):  # draft 4: the flag makes `minimum`/`maximum` exclusive
        return None if inc is None else _Bound(inc, exclusive)
    if exclusive is None:
        return None if inc is None else _Bound(inc, False)
    exc = _decimal(exclusive, ex_kw)
    if inc is None:
        return _Bound(exc, True)
    tighter = exc >= inc if lower else exc <= inc
    return _Bound(exc, True) if tighter else _Bound(inc, False)


def _bounds(
    minimum: Number | None,
    maximum: Number | None,
    exclusive_minimum: Number | bool | None,
    exclusive_maximum: Number | bool | None,
) -> tuple[_Bound | None, _Bound | None]:
    lo = _resolve(minimum, exclusive_minimum, "minimum", "exclusiveMinimum", True)
    hi = _resolve(maximum, exclusive_maximum, "maximum", "exclusiveMaximum", False)
    if lo is not None and hi is not None:
        if lo.value > hi.value or (lo.value == hi.value and (lo.exclusive or hi.exclusive)):
            raise UnsatisfiableSchemaError(f"no number satisfies {_describe(lo, hi)}")
    return lo, hi


def _describe(lo: _Bound | None, hi: _Bound | None) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'exclusiveMinimum' if lo.exclusive else 'minimum'}={lo.value}")
    if hi is not None:
        parts.append(f"{'exclusiveMaximum' if hi.exclusive else 'maximum'}={hi.value}")
    return ", ".join(parts) or "no bounds"


def _multiple(value: Number | None) -> tuple[int, int] | None:
    """``multipleOf`` as ``a / 10**k`` with integers ``a >= 1``, ``k >= 0``."""
    if value is None:
        return None
    d = _decimal(value, "multipleOf")
    if d <= 0:
        raise SchemaError(f"multipleOf must be > 0, got {value!r}")
    _, digits, exp = d.as_tuple()
    a = int("".join(map(str, digits)))
    assert isinstance(exp, int)
    while exp < 0 and a % 10 == 0:
        a, exp = a // 10, exp + 1
    return (a * 10**exp, 0) if exp >= 0 else (a, -exp)


def _plain(scaled: int, k: int) -> tuple[bool, str, str]:
    """``scaled / 10**k`` as (negative, canonical integer digits, fraction digits without trailing 0s)."""
    s = str(abs(scaled)).rjust(k + 1, "0")
    ip, fp = (s[:-k], s[-k:]) if k else (s, "")
    return scaled < 0, ip, fp.rstrip("0")


def _parts(d: Decimal) -> tuple[bool, str, str]:
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    c = int("".join(map(str, digits)) or "0")
    neg, ip, fp = _plain(c * 10**exp, 0) if exp >= 0 else _plain(c, -exp)
    return bool(sign) and c != 0, ip, fp


def _text(scaled: int, k: int) -> str:
    neg, ip, fp = _plain(scaled, k)
    return ("-" if neg else "") + ip + ("." + fp if fp else "")


# --------------------------------------------------------------------------- regex pieces

_DIG = _sym_range(0x30, 0x39)
_DOT = lit(".")
_MINUS = lit("-")


def _d(lo: int, hi: int) -> Node:
    return _sym_range(0x30 + lo, 0x30 + hi)


def _fixed(n: int) -> Node:
    return rep(_DIG, n, n)


_ANY_INT = alt(lit("0"), seq(_d(1, 9), star(_DIG)))
_ANY_FRAC = opt(seq(_DOT, rep(_DIG, 1, None)))
_ANY_MAG = seq(_ANY_INT, _ANY_FRAC)


def _int_gt(ci: str) -> Node:
    """Canonical integers greater than ``ci``: more digits, or a larger digit after a shared prefix."""
    n = len(ci)
    same = [seq(lit(ci[:i]), _d(int(ci[i]) + 1, 9), _fixed(n - i - 1)) for i in range(n)]
    return alt(seq(_d(1, 9), rep(_DIG, n, None)), *same)


def _int_lt(ci: str) -> Node:
    """Canonical integers less than ``ci`` (no leading zeros, so a shorter one is always smaller)."""
    n = len(ci)
    shorter = alt(lit("0"), seq(_d(1, 9), rep(_DIG, 0, n - 2))) if n >= 2 else NEVER
    same = [
        seq(lit(ci[:i]), _d(1 if i == 0 and n > 1 else 0, int(ci[i]) - 1), _fixed(n - i - 1)) for i in range(n)
    ]
    return alt(shorter, *same)


def _frac_cmp(cf: str, op: str) -> Node:
    """Optional fraction ``("" | "." digits)`` whose value ``0.f`` compares to ``0.cf`` by ``op``.

    ``cf`` has no trailing zeros, so padding either side with zeros decides the comparison
    at the first differing position; trailing zeros of the input ("1.50") are thereby exact.
    """
    k = len(cf)
    greater = [seq(lit(cf[:i]), _d(int(cf[i]) + 1, 9), star(_DIG)) for i in range(k)]
    less = [seq(lit(cf[:i]), _d(0, int(cf[i]) - 1), star(_DIG)) for i in range(k)]
    prefixes = [lit(cf[:j]) for j in range(1, k)]  # shorter than cf: strictly smaller
    if op == "ge":
        return _ANY_FRAC if not cf else seq(_DOT, alt(*greater, seq(lit(cf), star(_DIG))))
    if op == "gt":
        return seq(_DOT, alt(*greater, seq(lit(cf), star(lit("0")), _d(1, 9), star(_DIG))))
    if op == "le":
        if not cf:
            return opt(seq(_DOT, rep(lit("0"), 1, None)))
        return opt(seq(_DOT, alt(*less, *prefixes, seq(lit(cf), star(lit("0"))))))
    return NEVER if not cf else opt(seq(_DOT, alt(*less, *prefixes)))  # lt


def _mag_cmp(ci: str, cf: str, op: str) -> Node:
    """Unsigned literals ``m`` with ``m op ci.cf``: compare integer parts, then fractions on a tie."""
    other = _int_gt(ci) if op in ("ge", "gt") else _int_lt(ci)
    return alt(seq(other, _ANY_FRAC), seq(lit(ci), _frac_cmp(cf, op)))


_FLIP = {"ge": "le", "gt": "lt", "le": "ge", "lt": "gt"}


def _cmp(bound: Decimal, op: str) -> Node:
    """Signed literals ``x`` with ``x op bound`` (negative zero is removed by the grammar)."""
    neg, ci, cf = _parts(bound)
    if op in ("ge", "gt"):
        return alt(_ANY_MAG, seq(_MINUS, _mag_cmp(ci, cf, _FLIP[op]))) if neg else _mag_cmp(ci, cf, op)
    return seq(_MINUS, _mag_cmp(ci, cf, _FLIP[op])) if neg else alt(seq(_MINUS, _ANY_MAG), _mag_cmp(ci, cf, op))


def _grammar(sig: int, zeros: int, fractions: bool) -> Node:
    """Literals without exponent, <= ``sig`` significant digits, <= ``zeros`` zeros after ``0.``.

    Significant digits run from the first non-zero digit to the end (trailing zeros count:
    they are output).  No ``-`` before a zero value.
    """
    if not fractions:
        return alt(lit("0"), seq(opt(_MINUS), _d(1, 9), rep(_DIG, 0, sig - 1)))
    zero = seq(lit("0"), opt(seq(_DOT, rep(lit("0"), 1, zeros))))
    big = [seq(_d(1, 9), _fixed(n - 1), opt(seq(_DOT, rep(_DIG, 1, sig - n)))) for n in range(1, sig + 1)]
    small = seq(lit("0."), rep(lit("0"), 0, zeros), _d(1, 9), rep(_DIG, 0, sig - 1))
    return alt(zero, seq(opt(_MINUS), alt(*big, small)))


def _exponent(digits: int) -> Node:
    return seq(sym(ord("e"), ord("E")), opt(sym(ord("+"), ord("-"))), rep(_DIG, 1, digits))


# --------------------------------------------------------------------------- DFA helpers


def _minimize(d: DFA) -> DFA:
    """Trim, Moore-minimise (numpy partition refinement) and merge identical symbol classes."""
    d = d.trim()
    t, acc = d.trans, d.accept
    block = acc.astype(np.int64)
    n = len(np.unique(block))
    while True:
        sig = np.column_stack([block, np.where(t >= 0, block[np.maximum(t, 0)], -1)])
        _, inv = np.unique(sig, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        k = int(inv.max()) + 1
        if k == n:
            break
        block, n = inv, k
    start = int(block[0])
    perm = np.arange(n)
    perm[[0, start]] = perm[[start, 0]]  # start state becomes 0
    block = perm[block]
    _, rep_idx = np.unique(block, return_index=True)
    trans = t[rep_idx]
    trans = np.where(trans >= 0, block[np.maximum(trans, 0)], -1).astype(np.int32)
    accept = acc[rep_idx].copy()
    cols, cinv = np.unique(trans.T, axis=0, return_inverse=True)
    cinv = cinv.reshape(-1)
    dead = [i for i in range(cols.shape[0]) if (cols[i] < 0).all()]
    keep = [i for i in range(cols.shape[0]) if i not in dead]
    newid = np.full(cols.shape[0], -1, np.int64)
    newid[keep] = np.arange(len(keep))
    colmap = newid[cinv]  # old class -> new class
    cm = d.classmap
    classmap = np.where(cm >= 0, colmap[np.maximum(cm, 0)], -1).astype(np.int32)
    trans = np.ascontiguousarray(cols[keep].T, dtype=np.int32).reshape(n, len(keep))
    return DFA(trans, accept, classmap)


def _and(*dfas: DFA, max_states: int) -> DFA:
    out = dfas[0]
    for d in dfas[1:]:
        out = _minimize(intersect(out, d, max_states=max_states))
    return out


def _mod_dfa(a: int, k: int) -> DFA:
    """Literals (digits, ``-``, ``.``) whose value times ``10**k`` is a multiple of ``a``.

    States: remainder of the digits read so far (integer part), then (remainder, fraction
    digits read); a fraction may run past ``k`` digits only with zeros.  The range grammar
    it is intersected with supplies the syntax.
    """
    n = a * (k + 2)
    trans = np.full((n, 12), -1, np.int64)
    r = np.arange(a)
    frac = a + r * (k + 1)  # state of (r, j=0)
    for dig in range(10):
        nr = (10 * r + dig) % a
        trans[:a, dig] = nr
        for j in range(k):
            trans[frac + j, dig] = a + nr * (k + 1) + j + 1
    trans[0, 10] = 0  # '-'
    trans[:a, 11] = frac  # '.'
    trans[frac + k, 0] = frac + k  # zeros past the k-th fraction digit
    accept = np.zeros(n, bool)
    accept[:a] = (r * 10**k) % a == 0
    for j in range(k + 1):
        accept[frac + j] = (r * 10 ** (k - j)) % a == 0
    classmap = np.full(256, -1, np.int32)
    classmap[0x30:0x3A] = np.arange(10)
    classmap[ord("-")] = 10
    classmap[ord(".")] = 11
    return _minimize(DFA(trans.astype(np.int32), accept, classmap))


def _with_multiple(r: DFA, a: int, k: int, max_states: int) -> DFA:
    if a * (k + 2) > 20 * MAX_MODULUS:
        raise SchemaError(f"multipleOf {_text(a, k)} needs too fine a remainder automaton")
    try:
        return _minimize(intersect(r, _mod_dfa(a, k), max_states=max_states))
    except AutomatonTooLarge:
        raise AutomatonTooLarge(
            f"multipleOf {_text(a, k)} over this range needs more than {max_states} states; "
            "narrow minimum/maximum or use a smaller multipleOf"
        ) from None


def _enumerate(texts: list[str]) -> DFA:
    return _minimize(compile_dfa(alt(*(lit(s) for s in texts))))


# --------------------------------------------------------------------------- integers


def integer_node(
    minimum: Number | None = None,
    maximum: Number | None = None,
    *,
    exclusive_minimum: Number | bool | None = None,
    exclusive_maximum: Number | bool | None = None,
    multiple_of: Number | None = None,
    max_digits: int | None = None,
    max_states: int = DEFAULT_MAX_STATES,
) -> Node:
    """JSON integers ``-?(0|[1-9][0-9]*)`` in the given range (no fraction, no exponent).

    Bounds may be ints, floats or Decimals (``minimum=0.5`` means ``>= 1``); exclusive bounds
    are numbers (draft 6+) or draft-4 booleans that make ``minimum``/``maximum`` exclusive.
    An unbounded side stops at the int64 limit (or ``±(10**max_digits - 1)`` when given) so
    output is bounded and fits common integer types; an explicit bound beyond it is honoured,
    and an explicit bound beyond the *opposite* default widens that default to the bound's
    digit count.  ``-0`` is never produced (JSON allows it, but it is just 0).

    ``multipleOf`` (any positive number; an integer multiple of ``a/10**k`` is a multiple of
    ``a / gcd(a, 10**k)``) is a product with a remainder automaton of at most
    ``MAX_MODULUS`` states; above that the range must hold at most ``ENUMERATE_LIMIT``
    multiples (listed), else :class:`SchemaError`.  Products above ``max_states`` raise
    :class:`AutomatonTooLarge`.
    """
    lo_b, hi_b = _bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    lo = None if lo_b is None else math.floor(lo_b.value) + 1 if lo_b.exclusive else math.ceil(lo_b.value)
    hi = None if hi_b is None else math.ceil(hi_b.value) - 1 if hi_b.exclusive else math.floor(hi_b.value)
    if lo is not None and hi is not None and lo > hi:
        raise UnsatisfiableSchemaError(f"no integer satisfies {_describe(lo_b, hi_b)}")
    dlo, dhi = (INT64_MIN, INT64_MAX) if max_digits is None else (-(10**max_digits - 1), 10**max_digits - 1)
    if lo is None:
        lo = dlo if hi is None or hi >= dlo else -(10 ** len(str(-hi)) - 1)
    if hi is None:
        hi = dhi if lo <= dhi else 10 ** len(str(lo)) - 1
    m = 1
    mult = _multiple(multiple_of)
    if mult is not None:
        a, k = mult
        m = a // math.gcd(a, 10**k)
        first, last = -((-lo) // m), hi // m
        if first > last:
            raise UnsatisfiableSchemaError(
                f"no multiple of {_text(*mult)} (multipleOf) in [{lo}, {hi}] ({_describe(lo_b, hi_b)})"
            )
        if m > MAX_MODULUS:
            if last - first + 1 > ENUMERATE_LIMIT:
                raise SchemaError(
                    f"multipleOf {_text(*mult)} is too large for an exact automaton (> {MAX_MODULUS}) "
                    f"and [{lo}, {hi}] holds more than {ENUMERATE_LIMIT} multiples; narrow the range"
                )
            return DfaNode(_enumerate([str(i * m) for i in range(first, last + 1)]))
    return DfaNode(_integer_dfa(lo, hi, m, max_states))


@lru_cache(maxsize=256)
def _integer_dfa(lo: int, hi: int, m: int, max_states: int) -> DFA:
    digits = max(len(str(abs(lo))), len(str(abs(hi))))
    parts = [compile_dfa(_grammar(digits, 0, False))]
    if lo > -(10**digits - 1):
        parts.append(compile_dfa(_cmp(Decimal(lo), "ge")))
    if hi < 10**digits - 1:
        parts.append(compile_dfa(_cmp(Decimal(hi), "le")))
    r = _and(*parts, max_states=max_states)
    return _with_multiple(r, m, 0, max_states) if m > 1 else r


# --------------------------------------------------------------------------- numbers


def number_node(
    minimum: Number | None = None,
    maximum: Number | None = None,
    *,
    exclusive_minimum: Number | bool | None = None,
    exclusive_maximum: Number | bool | None = None,
    multiple_of: Number | None = None,
    max_significant: int = 17,
    max_exponent_digits: int = 3,
    max_states: int = DEFAULT_MAX_STATES,
) -> Node:
    """JSON numbers (integers and decimals) in the given range.

    Supported shape, chosen so every float64's shortest ``repr`` fits and output is bounded:

    * at most ``max_significant`` (17: enough to round-trip any float64) significant digits,
      counted from the first non-zero digit to the end, trailing zeros included ("1.50" is 3);
    * at most ``max_significant`` zeros between ``0.`` and the first significant digit;
    * an exponent (``[eE][+-]?`` and at most ``max_exponent_digits`` digits) only when there is
      no ``minimum``/``maximum``/``multipleOf``: bounded numbers are written out in full, which
      only rejects valid exponent spellings, never accepts an out-of-range value;
    * no negative zero.

    With bounds, both digit limits are raised to one more than the bounds themselves need, so a
    non-empty range always yields a non-empty language (``minimum=1e30`` still works).

    Bounds are compared as exact decimals (floats via their ``repr``).  A validator that parses
    the output to binary floats may round a literal of more than 17 digits onto an exclusive
    bound; the 17-digit limit makes that only possible right next to such a bound.

    ``multipleOf = a / 10**k`` admits literals with at most ``k`` fraction digits (then only
    zeros, e.g. "10.0" for an integer multiple) whose scaled value is divisible by ``a``;
    ``a <= MAX_MODULUS``, else the (bounded) range must hold at most ``ENUMERATE_LIMIT``
    multiples, listed in canonical form, else :class:`SchemaError`.
    """
    lo, hi = _bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    mult = _multiple(multiple_of)
    sig, zeros = max_significant, max_significant
    for b in (lo, hi):
        if b is not None:
            _, ip, fp = _parts(b.value)
            sig = max(sig, (len(ip) + len(fp) if ip != "0" else len(fp.lstrip("0"))) + 1)
            zeros = max(zeros, (len(fp) - len(fp.lstrip("0")) if ip == "0" else 0) + 1)
    if mult is not None:
        a, k = mult
        step = Fraction(a, 10**k)
        first = None if lo is None else _ceil_strict(Fraction(lo.value) / step, lo.exclusive)
        last = None if hi is None else -_ceil_strict(-Fraction(hi.value) / step, hi.exclusive)
        if first is not None and last is not None and first > last:
            raise UnsatisfiableSchemaError(
                f"no multiple of {_text(a, k)} (multipleOf) satisfies {_describe(lo, hi)}"
            )
        if a > MAX_MODULUS:
            if first is None or last is None or last - first + 1 > ENUMERATE_LIMIT:
                raise SchemaError(
                    f"multipleOf {_text(a, k)} is too large for an exact automaton (> {MAX_MODULUS}) "
                    f"and the range holds more than {ENUMERATE_LIMIT} multiples; narrow the range"
                )
            return DfaNode(_enumerate([_text(i * a, k) for i in range(first, last + 1)]))
    dfa = _number_dfa(lo, hi, mult, sig, zeros, max_exponent_digits, max_states)
    if dfa.is_empty():
        raise SchemaError(f"no number of at most {sig} significant digits satisfies {_describe(lo, hi)}")
    return DfaNode(dfa)


def _ceil_strict(q: Fraction, strict: bool) -> int:
    """Least integer >= q (> q when strict)."""
    return math.floor(q) + 1 if strict else math.ceil(q)


@lru_cache(maxsize=256)
def _number_dfa(
    lo: _Bound | None,
    hi: _Bound | None,
    mult: tuple[int, int] | None,
    sig: int,
    zeros: int,
    exp_digits: int,
    max_states: int,
) -> DFA:
    if lo is None and hi is None and mult is None:
        exponent = opt(_exponent(exp_digits)) if exp_digits > 0 else EMPTY
        return _minimize(compile_dfa(seq(_grammar(sig, zeros, True), exponent)))
    parts = [compile_dfa(_grammar(sig, zeros, True))]
    if lo is not None:
        parts.append(compile_dfa(_cmp(lo.value, "gt" if lo.exclusive else "ge")))
    if hi is not None:
        parts.append(compile_dfa(_cmp(hi.value, "lt" if hi.exclusive else "le")))
    r = _and(*parts, max_states=max_states)
    return r if mult is None else _with_multiple(r, mult[0], mult[1], max_states)

