"""JSON number literals under JSON Schema numeric keywords, as exact byte-level automata.

Grammar (RFC 8259): ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``.  The automata are
*exact* in one direction and documented in the other:

* they never accept a literal whose value breaks ``minimum``/``maximum``/``exclusive*``/
  ``multipleOf`` (values are compared as exact decimals, the schema's float bounds taken as
  their shortest ``repr``);
* they accept every in-range literal of the *supported shape*, which bounds output length so
  a model cannot run away: no negative zero (``-0``, ``-0.0``), digit limits (see
  :func:`number_node`), and exponents only for unconstrained numbers and ranges that hold 0.

A range is the product of a digit-limited grammar with one comparison automaton per bound,
both built directly as small tables: the classic digit-by-digit split (a longer canonical
integer part is larger; equal lengths compare at the first differing digit; a tie moves on
to the fraction).  ``multipleOf`` adds a remainder automaton to the product.  Every bounded
result is a finite language, so minimisation is linear-time hash-consing; results are cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .errors import AutomatonTooLarge, SchemaError, UnsatisfiableSchemaError
from .fsm import DFA, EMPTY, DfaNode, Node, alt, compile_dfa, intersect, lit, opt, rep, seq, sym
from .fsm import sym_range as _sym_range

__all__ = ["integer_node", "number_node", "INT64_MIN", "INT64_MAX"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_MODULUS = 10_000  # largest remainder automaton built for multipleOf
ENUMERATE_LIMIT = 1_000  # above MAX_MODULUS, ranges with at most this many multiples are listed
DEFAULT_MAX_STATES = 10_000  # compile_dfa re-expands a DfaNode ~10x for remainder automata
MAX_BOUND_DIGITS = 1_000  # a bound written out in full must fit in this many digits

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
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if d and max(d.adjusted() + 1, len(d.as_tuple().digits) - exp) > MAX_BOUND_DIGITS:
        raise SchemaError(f"{keyword}={value!r} needs more than {MAX_BOUND_DIGITS} digits written out")
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
    _, ip, fp = _plain(c * 10**exp, 0) if exp >= 0 else _plain(c, -exp)
    return bool(sign) and c != 0, ip, fp


def _text(scaled: int, k: int) -> str:
    neg, ip, fp = _plain(scaled, k)
    return ("-" if neg else "") + ip + ("." + fp if fp else "")


# --------------------------------------------------------------------------- automata built directly

_DIG = _sym_range(0x30, 0x39)


# Columns of the small tables built directly below: digits 0-9, then '-' and '.'.
_COLS = np.full(256, -1, np.int32)
_COLS[0x30:0x3A] = np.arange(10)
_COLS[ord("-")], _COLS[ord(".")] = 10, 11
_MINUS_COL, _DOT_COL = 10, 11
_OK = {"ge": (0, 1), "gt": (1,), "le": (-1, 0), "lt": (-1,)}


def _table(rows: list[list[int]], accept: list[bool]) -> DFA:
    return DFA(np.array(rows, np.int32).reshape(len(rows), 12), np.array(accept, bool), _COLS.copy())


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def _cmp_dfa(bound: Decimal, op: str) -> DFA:
    """Well-formed literals ``x`` (no exponent) with ``x op bound``, read left to right.

    Same signs compare magnitudes (reversed when negative); a canonical integer part that is
    longer is larger, one of equal length compares digit by digit; a tie on the integer part
    goes on to the fraction, which is compared with the bound's fraction padded with zeros,
    so trailing zeros ("1.50") are exact.  Syntax is left to the grammar this is intersected
    with; once the outcome is decided the automaton accepts anything after (state 1).
    """
    neg_b, ci, cf = _parts(bound)
    ok = _OK[op]
    rows: list[list[int]] = [[-1] * 12, [1] * 10 + [-1, 1]]  # 0: start, 1: decided true
    acc: list[bool] = [False, True]

    def new(accepting: bool) -> int:
        rows.append([-1] * 12)
        acc.append(accepting)
        return len(rows) - 1

    def magnitude(flip: int) -> list[int]:
        """Row reading the first digit of |x|; ``flip`` turns cmp(|x|, |bound|) into cmp(x, bound)."""
        n, kf = len(ci), len(cf)
        decided = {r: 1 if r * flip in ok else -1 for r in (-1, 1)}
        frac = [new(flip * (0 if j == kf else -1) in ok) for j in range(kf + 1)]  # tie so far
        for j in range(kf + 1):
            for dig in range(10):
                s = _sign(dig - int(cf[j])) if j < kf else _sign(dig)
                rows[frac[j]][dig] = frac[min(j + 1, kf)] if s == 0 else decided[s]
        # integer part: (digits read L, lexicographic comparison with ci[:L])
        ints = {
            (L, lex): new(flip * (lex if L == n and lex else -1 if L < n or cf else 0) in ok)
            for L in range(1, n + 1)
            for lex in (-1, 0, 1)
        }
        for (L, lex), st in ints.items():
            for dig in range(10):
                rows[st][dig] = decided[1] if L == n else ints[L + 1, lex or _sign(dig - int(ci[L]))]
            rows[st][_DOT_COL] = decided[-1] if L < n else decided[lex] if lex else frac[0]
        return [ints[1, _sign(dig - int(ci[0]))] for dig in range(10)] + [-1, -1]

    if neg_b:  # x >= 0 > bound, or compare magnitudes reversed
        rows[0][:10] = [1 if 1 in ok else -1] * 10
        minus = new(False)
        rows[minus] = magnitude(-1)
        rows[0][_MINUS_COL] = minus
    else:  # x < 0 <= bound, or compare magnitudes
        rows[0][:10] = magnitude(1)[:10]
        rows[0][_MINUS_COL] = 1 if -1 in ok else -1
    return _table(rows, acc)


@lru_cache(maxsize=64)
def _grammar_dfa(sig: int, zeros: int, fractions: bool) -> DFA:
    """Literals without exponent, <= ``sig`` significant digits, <= ``zeros`` zeros after ``0.``.

    Significant digits run from the first non-zero digit to the end (trailing zeros count:
    they are output).  No ``-`` before a zero value.  Built as a table: a counter automaton
    whose regex would need O(sig**2) positions.
    """
    rows: list[list[int]] = []
    acc: list[bool] = []

    def new(accepting: bool) -> int:
        rows.append([-1] * 12)
        acc.append(accepting)
        return len(rows) - 1

    start, minus = new(False), new(False)
    ints = [new(True) for _ in range(sig)]  # ints[n]: n+1 integer digits, leading one non-zero
    fracs = [new(True) for _ in range(sig)]  # fracs[n]: n+1 significant digits, in the fraction
    for n in range(sig):
        if n + 1 < sig:
            rows[ints[n]][:10] = [ints[n + 1]] * 10
            rows[fracs[n]][:10] = [fracs[n + 1]] * 10
            if fractions:
                rows[ints[n]][_DOT_COL] = dot = new(False)
                rows[dot][:10] = [fracs[n + 1]] * 10
    for head, negative in ((start, False), (minus, True)):
        rows[head][1:10] = [ints[0]] * 9
        rows[head][0] = zero = new(not negative)  # "0" / "-0": the latter needs a non-zero fraction
        if fractions:
            rows[zero][_DOT_COL] = z = new(False)
            for j in range(zeros + 1):  # "0." then up to `zeros` zeros, then the first significant digit
                rows[z][1:10] = [fracs[0]] * 9
                if j < zeros:
                    rows[z][0] = z = new(not negative)
    rows[start][_MINUS_COL] = minus
    return _minimize(_table(rows, acc))


def _exponent(digits: int) -> Node:
    return seq(sym(ord("e"), ord("E")), opt(sym(ord("+"), ord("-"))), rep(_DIG, 1, digits))


# --------------------------------------------------------------------------- DFA helpers


def _minimize(d: DFA, cyclic: bool = False) -> DFA:
    """Trim and minimise; then merge symbol classes that behave identically everywhere."""
    d = d.trim()
    block = None if cyclic else _acyclic_blocks(d)
    if block is None:
        block = _moore_blocks(d)
    t, acc = d.trans, d.accept
    n = int(block.max()) + 1
    start = int(block[0])
    perm = np.arange(n)
    perm[[0, start]] = perm[[start, 0]]  # start state becomes 0
    block = perm[block]
    _, rep_idx = np.unique(block, return_index=True)
    trans = t[rep_idx]
    trans = np.where(trans >= 0, block[np.maximum(trans, 0)], -1).astype(np.int32)
    accept = acc[rep_idx].copy()
    cols, cinv = np.unique(trans.T, axis=0, return_inverse=True)
    live_cols = [i for i in range(cols.shape[0]) if (cols[i] >= 0).any()]
    newid = np.full(cols.shape[0], -1, np.int64)
    newid[live_cols] = np.arange(len(live_cols))
    colmap = newid[cinv.reshape(-1)]  # old class -> new class (-1: used nowhere)
    cm = d.classmap
    classmap = np.where(cm >= 0, colmap[np.maximum(cm, 0)], -1).astype(np.int32)
    trans = np.ascontiguousarray(cols[live_cols].T, dtype=np.int32).reshape(n, len(live_cols))
    return DFA(trans, accept, classmap)


def _acyclic_blocks(d: DFA) -> np.ndarray | None:
    """Equivalence classes of an acyclic DFA by hash-consing in reverse topological order.

    Linear time; every bounded number language is finite, hence acyclic.  None if cyclic.
    """
    rows = d.trans.tolist()
    acc = d.accept.tolist()
    pending = [sum(1 for x in row if x >= 0) for row in rows]
    preds: list[list[int]] = [[] for _ in rows]
    for s, row in enumerate(rows):
        for x in row:
            if x >= 0:
                preds[x].append(s)
    block = [-1] * len(rows)
    ids: dict[tuple[bool, tuple[int, ...]], int] = {}
    ready = [s for s, p in enumerate(pending) if p == 0]
    done = 0
    while ready:
        s = ready.pop()
        done += 1
        key = (acc[s], tuple(block[x] if x >= 0 else -1 for x in rows[s]))
        block[s] = ids.setdefault(key, len(ids))
        for p in preds[s]:
            pending[p] -= 1
            if pending[p] == 0:
                ready.append(p)
    return np.array(block, np.int64) if done == len(rows) else None


def _moore_blocks(d: DFA) -> np.ndarray:
    """Moore partition refinement, vectorised (for the cyclic remainder automata).

    Each round folds the successor blocks into the state's key one column at a time,
    re-compacting with a 1-D ``np.unique`` so keys stay small integers.
    """
    t = d.trans
    _, block = np.unique(d.accept, return_inverse=True)
    block = block.reshape(-1).astype(np.int64)
    n = int(block.max()) + 1
    while True:
        key = block
        for c in range(t.shape[1]):
            col = t[:, c]
            succ = np.where(col >= 0, block[np.maximum(col, 0)] + 1, 0)
            _, key = np.unique(key * (n + 1) + succ, return_inverse=True)
            key = key.reshape(-1)
        k = int(key.max()) + 1
        if k == n:
            return key
        block, n = key, k


def _and(*dfas: DFA, max_states: int) -> DFA:
    out = _minimize(dfas[0])
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
    return _minimize(DFA(trans.astype(np.int32), accept, _COLS.copy()), cyclic=True)


def _with_multiple(r: DFA, a: int, k: int, max_states: int) -> DFA:
    if a * (k + 2) > 20 * MAX_MODULUS:
        raise SchemaError(f"multipleOf {_text(a, k)} needs too fine a remainder automaton")
    try:  # the raw product may shrink a lot under minimisation: give it room
        out = _minimize(intersect(r, _mod_dfa(a, k), max_states=4 * max_states))
    except AutomatonTooLarge:
        out = None
    if out is None or out.num_states > max_states:
        raise AutomatonTooLarge(
            f"multipleOf {_text(a, k)} over this range needs more than max_states={max_states} states; "
            "narrow minimum/maximum or use a smaller multipleOf"
        )
    return out


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
    multiples (listed), else :class:`SchemaError`.  The product has about (digits x modulus)
    states, e.g. ~19*m over int64 for m coprime to 10 (powers of 2 and 5 cost little); above
    ``max_states`` it raises :class:`AutomatonTooLarge` (a :class:`SchemaError`) naming
    multipleOf, since ``compile_dfa`` re-expands an embedded DFA several-fold.
    """
    if max_digits is not None and max_digits < 1:
        raise ValueError("max_digits must be >= 1")
    lo_b, hi_b = _bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    lo = None if lo_b is None else _ceil_strict(Fraction(lo_b.value), lo_b.exclusive)
    hi = None if hi_b is None else -_ceil_strict(-Fraction(hi_b.value), hi_b.exclusive)
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
    parts = [_grammar_dfa(digits, 0, False)]
    if lo > -(10**digits - 1):
        parts.append(_cmp_dfa(Decimal(lo), "ge"))
    if hi < 10**digits - 1:
        parts.append(_cmp_dfa(Decimal(hi), "le"))
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
    * an exponent (``[eE][+-]?`` and at most ``max_exponent_digits`` digits) when there is no
      ``minimum``/``maximum``/``multipleOf``; in a range that holds 0, on the side of 0 a
      mantissa's sign takes, where no exponent can leave the range (see
      :func:`_exponent_forms`: ``1e-06`` under ``minimum: 0`` or ``0 <= x <= 1``); otherwise
      bounded numbers are written out in full, which only rejects valid exponent spellings,
      never accepts an out-of-range value;
    * no negative zero.

    When no number of that shape is in range (``minimum=1e30``, or ``0 < x < 1e-20``), both
    limits grow to one more than the bounds need, so a satisfiable range is never refused.

    Bounds are compared as exact decimals (floats via their ``repr``).  A validator that parses
    the output to binary floats may round a literal of more than 17 digits onto an exclusive
    bound; the 17-digit limit makes that only possible right next to such a bound.

    ``multipleOf = a / 10**k`` admits literals with at most ``k`` fraction digits (then only
    zeros, e.g. "10.0" for an integer multiple) whose scaled value is divisible by ``a``;
    ``a <= MAX_MODULUS``, else the (bounded) range must hold at most ``ENUMERATE_LIMIT``
    multiples, listed in canonical form, else :class:`SchemaError`; ``max_states`` as in
    :func:`integer_node`.
    """
    if max_significant < 1 or max_exponent_digits < 0:
        raise ValueError("max_significant must be >= 1 and max_exponent_digits >= 0")
    lo, hi = _bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    mult = _multiple(multiple_of)
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
    sig = zeros = max_significant
    dfa = _number_dfa(lo, hi, mult, sig, zeros, max_exponent_digits, max_states)
    if dfa.is_empty():  # e.g. minimum=1e30: grow the limits to what the bounds need, plus one
        for b in (lo, hi):
            if b is not None:
                _, ip, fp = _parts(b.value)
                sig = max(sig, (len(ip) + len(fp) if ip != "0" else len(fp.lstrip("0"))) + 1)
                zeros = max(zeros, (len(fp) - len(fp.lstrip("0")) if ip == "0" else 0) + 1)
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
        return _minimize(compile_dfa(seq(DfaNode(_grammar_dfa(sig, zeros, True)), exponent)))
    parts = [_grammar_dfa(sig, zeros, True)]
    if lo is not None:
        parts.append(_cmp_dfa(lo.value, "gt" if lo.exclusive else "ge"))
    if hi is not None:
        parts.append(_cmp_dfa(hi.value, "lt" if hi.exclusive else "le"))
    r = _and(*parts, max_states=max_states)
    if mult is not None:
        return _with_multiple(r, mult[0], mult[1], max_states)
    forms = [seq(DfaNode(m), e) for m, e in _exponent_forms(lo, hi, sig, zeros, exp_digits, max_states)]
    return _minimize(compile_dfa(alt(DfaNode(r), *forms))) if forms else r


def _exponent_forms(lo: _Bound | None, hi: _Bound | None, sig: int, zeros: int, exp_digits: int,
                    max_states: int) -> list[tuple[DFA, Node]]:
    """(mantissas, exponents) whose every product lies in a range that holds 0 on a mantissa's side.

    A nonnegative mantissa ``m`` times ``10**e`` stays in ``[0, m]`` for ``e <= 0`` and only
    grows for ``e > 0``: so with ``lo <= 0`` the nonnegative mantissas up to ``hi`` take a
    negative exponent, any exponent when there is no ``hi`` (``1e-06`` under ``minimum: 0``, as
    ``json.dumps`` writes small floats); the same, mirrored, for negative mantissas.  A bound
    at an exclusive 0 keeps two exponent digits, so no literal underflows to a float 0.
    Other ranges (``minimum: 1``) keep literals written out in full.
    """
    if exp_digits <= 0:
        return []
    out: list[tuple[DFA, Node]] = []
    for side, near, far in ((1, lo, hi), (-1, hi, lo)):
        # near: the bound on the zero side of this sign's mantissas; far: the one they grow to
        if near is not None and side * near.value > 0:
            continue  # the range stays off 0 on this side (minimum: 1): no such form is safe
        zero_excl = near is not None and near.value == 0 and near.exclusive
        to_zero = ("gt" if zero_excl else "ge") if side > 0 else ("lt" if zero_excl else "le")
        parts = [_grammar_dfa(sig, zeros, True), _cmp_dfa(Decimal(0), to_zero)]
        if far is not None:
            if side * far.value < 0:
                continue
            ops = ("lt" if far.exclusive else "le") if side > 0 else ("gt" if far.exclusive else "ge")
            parts.append(_cmp_dfa(far.value, ops))
        digits = min(exp_digits, 2) if zero_excl else exp_digits
        mant = _and(*parts, max_states=max_states)
        if mant.is_empty():
            continue
        if far is None:
            exp = _exponent(digits)
        else:
            exp = seq(sym(ord("e"), ord("E")), sym(ord("-")), rep(_DIG, 1, digits))
        out.append((mant, exp))
    return out
