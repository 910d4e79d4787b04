"""Exactness of the JSON number automata: unit edge cases, exhaustive short strings, properties."""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jsonmode.errors import SchemaError, UnsatisfiableSchemaError
from jsonmode.fsm import DFA, compile_dfa
from jsonmode.numbers import INT64_MAX, INT64_MIN, integer_node, number_node

NUMBER_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def dfa_int(*args: object, **kw: object) -> DFA:
    return compile_dfa(integer_node(*args, **kw))  # type: ignore[arg-type]


def dfa_num(*args: object, **kw: object) -> DFA:
    return compile_dfa(number_node(*args, **kw))  # type: ignore[arg-type]


@functools.cache
def cached_num(lo: Decimal | None, hi: Decimal | None, xlo: bool, xhi: bool, mult: Decimal | None) -> DFA:
    return dfa_num(
        minimum=None if xlo else lo,
        maximum=None if xhi else hi,
        exclusive_minimum=lo if xlo else None,
        exclusive_maximum=hi if xhi else None,
        multiple_of=mult,
    )


def accepts(d: DFA, text: str) -> bool:
    return d.matches(text.encode())


def shape(text: str) -> tuple[Decimal, int, int, bool, bool] | None:
    """(value, significant digits, zeros after '0.', has exponent, is negative zero) of a JSON number."""
    m = NUMBER_RE.fullmatch(text)
    if m is None:
        return None
    ip, fp = m.group(1), (m.group(2) or ".")[1:]
    value = Decimal(text)
    if ip != "0":
        sig, lz = len(ip) + len(fp), 0
    else:
        stripped = fp.lstrip("0")
        sig, lz = len(stripped), len(fp) - len(stripped)
    return value, sig, lz, m.group(3) is not None, text.startswith("-") and value == 0


def in_range(x: Decimal, lo: Decimal | None, hi: Decimal | None, xlo: bool, xhi: bool) -> bool:
    if lo is not None and (x <= lo if xlo else x < lo):
        return False
    return hi is None or (x < hi if xhi else x <= hi)


def is_multiple(x: Decimal, m: Decimal | None) -> bool:
    return m is None or (x / m) == (x / m).to_integral_value()


# --------------------------------------------------------------------------- integers


def test_int64_default_range() -> None:
    d = dfa_int()
    for x in (0, 1, -1, 7, 10, 99, 100, INT64_MAX, INT64_MIN, 10**18, -(10**18), INT64_MAX - 1, 123456789):
        assert accepts(d, str(x)), x
    for t in (str(INT64_MAX + 1), str(INT64_MIN - 1), "10000000000000000000", "-0", "01", "00", "+1"):
        assert not accepts(d, t), t
    for t in ("", "-", "1.", ".5", "1.0", "1e3", "1E3", " 1", "1 ", "0x1", "--1"):
        assert not accepts(d, t), t


def test_small_range_sizes() -> None:
    d = dfa_int(minimum=1, maximum=12)
    assert [x for x in range(-20, 40) if accepts(d, str(x))] == list(range(1, 13))
    assert integer_node(minimum=1, maximum=12).dfa.num_states <= 4  # type: ignore[attr-defined]
    assert integer_node().dfa.num_states < 100  # type: ignore[attr-defined]


def test_zero_and_negative_zero() -> None:
    d = dfa_int(minimum=0, maximum=0)
    assert accepts(d, "0") and not accepts(d, "-0") and not accepts(d, "1")
    d = dfa_int(minimum=-5, maximum=-1)
    assert [x for x in range(-9, 9) if accepts(d, str(x))] == [-5, -4, -3, -2, -1]
    assert not accepts(d, "-0")


@pytest.mark.parametrize(
    ("kw", "lo", "hi"),
    [
        ({"minimum": 0.5, "maximum": 3}, 1, 3),
        ({"minimum": -0.5, "maximum": 2.5}, 0, 2),
        ({"exclusive_minimum": 1, "exclusive_maximum": 5}, 2, 4),
        ({"exclusive_minimum": 1.5, "exclusive_maximum": 4.0}, 2, 3),
        ({"minimum": 1, "exclusive_minimum": True, "maximum": 5, "exclusive_maximum": True}, 2, 4),  # draft 4
        ({"minimum": 1, "exclusive_minimum": False, "maximum": 5, "exclusive_maximum": False}, 1, 5),
        ({"minimum": 2, "exclusive_minimum": 1}, 2, None),  # inclusive is tighter
        ({"minimum": 2, "exclusive_minimum": 2}, 3, None),  # equal: exclusive wins
        ({"minimum": Decimal("-2.000"), "maximum": Decimal("2E0")}, -2, 2),
        ({"exclusive_minimum": -3.7, "exclusive_maximum": -1.2}, -3, -2),
    ],
)
def test_integer_bounds(kw: dict[str, object], lo: int, hi: int | None) -> None:
    d = dfa_int(**kw)
    top = hi if hi is not None else 20
    got = [x for x in range(-20, 21) if accepts(d, str(x))]
    assert got == list(range(lo, min(top, 20) + 1))


def test_bounds_beyond_64_bits() -> None:
    d = dfa_int(minimum=2**64)
    assert accepts(d, str(2**64)) and accepts(d, str(10**19 * 5)) and not accepts(d, str(2**64 - 1))
    assert accepts(d, str(10**20 - 1)) and not accepts(d, str(10**20))  # widened to the bound's digits
    d = dfa_int(maximum=-(2**70))
    assert (
        accepts(d, str(-(2**70))) and accepts(d, str(-(2**70) - 12345)) and not accepts(d, str(-(2**70) + 1))
    )
    d = dfa_int(minimum=-(10**30), maximum=10**30)
    assert accepts(d, str(10**30)) and accepts(d, str(-(10**30))) and not accepts(d, str(10**30 + 1))
    d = dfa_int(maximum=1e20)
    assert (
        accepts(d, "100000000000000000000")
        and accepts(d, str(INT64_MIN))
        and not accepts(d, str(INT64_MIN - 1))
    )
    d = dfa_int(max_digits=3)
    assert accepts(d, "999") and accepts(d, "-999") and not accepts(d, "1000")


@pytest.mark.parametrize(
    "kw",
    [
        {"minimum": 3, "maximum": 2},
        {"minimum": 1.2, "maximum": 1.8},
        {"minimum": 1, "exclusive_maximum": 1},
        {"exclusive_minimum": 4, "exclusive_maximum": 5},
        {"minimum": 1, "maximum": 6, "multiple_of": 7},
        {"minimum": 1, "maximum": 1, "exclusive_minimum": True},
    ],
)
def test_integer_unsatisfiable(kw: dict[str, object]) -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        integer_node(**kw)  # type: ignore[arg-type]


def test_integer_multiple_of() -> None:
    d = dfa_int(minimum=0, multiple_of=7)
    assert [x for x in range(-50, 200) if accepts(d, str(x))] == list(range(0, 200, 7))
    assert accepts(d, str(7 * (INT64_MAX // 7))) and not accepts(d, str(7 * (INT64_MAX // 7) + 7))
    d = dfa_int(minimum=-100, maximum=100, multiple_of=5.0)
    assert [x for x in range(-150, 150) if accepts(d, str(x))] == list(range(-100, 101, 5))
    d = dfa_int(minimum=-10, maximum=10, multiple_of=0.5)  # every integer is a multiple of 0.5
    assert [x for x in range(-20, 20) if accepts(d, str(x))] == list(range(-10, 11))
    d = dfa_int(minimum=-30, maximum=30, multiple_of=2.5)  # integers: multiples of 5
    assert [x for x in range(-40, 40) if accepts(d, str(x))] == list(range(-30, 31, 5))
    d = dfa_int(multiple_of=10_000)
    assert accepts(d, "90000") and accepts(d, "-10000") and not accepts(d, "10001")
    assert integer_node(multiple_of=10_000).dfa.num_states < 200  # type: ignore[attr-defined]


def test_integer_multiple_of_too_large() -> None:
    with pytest.raises(SchemaError, match="multipleOf"):
        integer_node(multiple_of=10_007)
    with pytest.raises(SchemaError, match="multipleOf"):
        integer_node(multiple_of=0)
    with pytest.raises(SchemaError, match="multipleOf"):  # ~19 * 9999 states over int64: over max_states
        integer_node(multiple_of=9999)
    d = dfa_int(multiple_of=13)
    top = 13 * (INT64_MAX // 13)
    assert accepts(d, str(top)) and not accepts(d, str(top + 13)) and not accepts(d, str(top - 1))
    d = dfa_int(minimum=0, maximum=10**6, multiple_of=12_345)  # few multiples: enumerated
    assert [x for x in range(0, 10**6 + 1, 15) if accepts(d, str(x))] == list(range(0, 10**6 + 1, 12_345))


def test_bad_bound_types() -> None:
    for kw in ({"minimum": "1"}, {"maximum": float("inf")}, {"minimum": float("nan")}, {"maximum": True}):
        with pytest.raises(SchemaError):
            integer_node(**kw)  # type: ignore[arg-type]
        with pytest.raises(SchemaError):
            number_node(**kw)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    lo=st.one_of(st.none(), st.integers(-(10**21), 10**21)),
    hi=st.one_of(st.none(), st.integers(-(10**21), 10**21)),
    xs=st.lists(st.integers(-(10**22), 10**22), max_size=20),
)
def test_integer_range_property(lo: int | None, hi: int | None, xs: list[int]) -> None:
    assume(lo is None or hi is None or lo <= hi)
    eff_lo = lo if lo is not None else INT64_MIN if hi is None or hi >= INT64_MIN else None
    eff_hi = hi if hi is not None else INT64_MAX if lo is None or lo <= INT64_MAX else None
    assume(eff_lo is not None and eff_hi is not None)
    d = dfa_int(minimum=lo, maximum=hi)
    probes = [*xs, eff_lo, eff_hi, eff_lo - 1, eff_hi + 1, 0, (eff_lo + eff_hi) // 2]
    for x in probes:
        assert accepts(d, str(x)) == (eff_lo <= x <= eff_hi), (lo, hi, x)


@settings(max_examples=60, deadline=None)
@given(
    lo=st.integers(-5000, 5000),
    span=st.integers(0, 5000),
    m=st.integers(1, 60),
)
def test_integer_multiple_property(lo: int, span: int, m: int) -> None:
    hi = lo + span
    assume(math.ceil(lo / m) <= hi // m)
    d = dfa_int(minimum=lo, maximum=hi, multiple_of=m)
    for x in range(lo - 2 * m, hi + 2 * m, max(1, span // 200)):
        assert accepts(d, str(x)) == (lo <= x <= hi and x % m == 0), (lo, hi, m, x)


# --------------------------------------------------------------------------- numbers


def test_unbounded_number_grammar() -> None:
    d = dfa_num()
    good = ["0", "-1", "0.0", "1.5", "-0.25", "1e5", "1E+5", "2.5e-3", "0e0", "123.4560", "1e999", "-1.5E-07"]
    bad = ["-0", "-0.0", "-0e1", "01", "+1", "1.", ".5", "1e", "1e+", "1e1000", "--1", "1.2.3", "", "-", "e5"]
    for t in good:
        assert accepts(d, t), t
    for t in bad:
        assert not accepts(d, t), t
    assert accepts(d, "1" * 17) and not accepts(d, "1" * 18)  # significant-digit limit
    assert accepts(d, "1." + "0" * 16) and not accepts(d, "1." + "0" * 17)
    assert accepts(d, "0." + "0" * 17 + "1" * 17) and not accepts(d, "0." + "0" * 18 + "1")


@settings(max_examples=400, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_repr_accepted(x: float) -> None:
    assume(not (x == 0 and math.copysign(1, x) < 0))  # "-0.0" is never produced
    assert accepts(dfa_num(), json.dumps(x)), json.dumps(x)


def test_bounded_numbers() -> None:
    d = dfa_num(minimum=-90, maximum=90)
    for t in ("90", "90.0", "90.000", "-90", "-90.00", "0", "0.5", "-89.999999999999999", "45"):
        assert accepts(d, t), t
    for t in ("90.0000001", "-90.01", "91", "100", "9e1", "-0", "-0.0", "1.", "090"):
        assert not accepts(d, t), t
    d = dfa_num(minimum=-1.25, exclusive_maximum=0.5)
    for t in ("-1.25", "-1.250", "-1.2", "0.4999", "0", "0.49999999999999999"):
        assert accepts(d, t), t
    for t in ("-1.2500001", "-1.26", "0.5", "0.50", "0.5000000001", "1"):
        assert not accepts(d, t), t
    d = dfa_num(exclusive_minimum=0, maximum=1)
    assert accepts(d, "0.001") and accepts(d, "1.0") and not accepts(d, "0") and not accepts(d, "0.000")
    d = dfa_num(exclusive_maximum=0)
    assert accepts(d, "-0.001") and not accepts(d, "0") and not accepts(d, "-0.0")


def test_exponents_in_ranges_that_hold_zero() -> None:
    """``json.dumps`` writes small floats with an exponent (1e-06): accepted wherever no exponent
    can leave the range, still refused where one could."""
    d = dfa_num(minimum=0)
    for t in ("1e-06", "2.5E+10", "0e5", "3.14e-123", "1"):
        assert accepts(d, t), t
    for t in ("-1e-06", "1e-1234", "-2E5"):
        assert not accepts(d, t), t
    d = dfa_num(exclusive_minimum=0)
    assert accepts(d, "1e-06") and accepts(d, "1e99")
    for t in ("0e-5", "0.0e1", "1e-100", "-1e-06"):  # zero, or three digits that may underflow to 0.0
        assert not accepts(d, t), t
    d = dfa_num(minimum=0, maximum=1)
    for t in ("1e-06", "0.5e-1", "1.0e-0", "0e-9"):
        assert accepts(d, t), t
    for t in ("1e1", "1e+0", "2e-0", "1.5e-0", "-1e-06"):
        assert not accepts(d, t), t
    d = dfa_num(minimum=-1, exclusive_maximum=0)
    assert accepts(d, "-1e-06") and accepts(d, "-1e-0") and not accepts(d, "-2e-1") and not accepts(d, "1e-06")
    d = dfa_num(minimum=1)  # off zero: an exponent could leave the range, so numbers are written out
    assert not accepts(d, "1e5") and accepts(d, "100000")
    d = dfa_num(minimum=0, multiple_of=0.5)
    assert not accepts(d, "5e-1") and accepts(d, "0.5")


def test_number_limits_follow_bounds() -> None:
    d = dfa_num(minimum=1e30)
    assert accepts(d, "1" + "0" * 30) and accepts(d, "1" + "0" * 30 + ".5") and not accepts(d, "9" * 30)
    d = dfa_num(exclusive_minimum=0, maximum=1e-20)
    assert accepts(d, "0." + "0" * 19 + "1") and accepts(d, "0." + "0" * 20 + "5")
    assert not accepts(d, "0." + "0" * 19 + "11")
    d = dfa_num(
        exclusive_minimum=Decimal("0.123456789012345678901"),
        exclusive_maximum=Decimal("0.123456789012345678902"),
    )
    assert accepts(d, "0.1234567890123456789015")


@pytest.mark.parametrize(
    "kw",
    [
        {"minimum": 2, "maximum": 1},
        {"minimum": 0.5, "exclusive_maximum": 0.5},
        {"exclusive_minimum": 1, "maximum": 1.0},
        {"minimum": 0.001, "maximum": 0.009, "multiple_of": 0.01},
        {"minimum": 1, "maximum": 1, "exclusive_maximum": True},
    ],
)
def test_number_unsatisfiable(kw: dict[str, object]) -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        number_node(**kw)  # type: ignore[arg-type]


def test_number_multiple_of() -> None:
    d = dfa_num(minimum=0, maximum=10, multiple_of=0.01)
    for t in ("0", "0.5", "0.50", "0.500", "0.05", "1.23", "10", "10.00", "9.99"):
        assert accepts(d, t), t
    for t in ("0.001", "0.505", "10.01", "-0.01", "1.231"):
        assert not accepts(d, t), t
    d = dfa_num(multiple_of=0.5)
    for t in ("0", "0.5", "-1.5", "3.0", "3", "-2.50", "12345678.5"):
        assert accepts(d, t), t
    for t in ("0.25", "1.05", "1e1", "-0.0"):
        assert not accepts(d, t), t
    d = dfa_num(minimum=-20, maximum=20, multiple_of=5)
    assert accepts(d, "10") and accepts(d, "10.0") and accepts(d, "-20.00") and not accepts(d, "10.5")
    d = dfa_num(multiple_of=2.5)
    assert accepts(d, "7.5") and accepts(d, "-5") and not accepts(d, "2.6") and not accepts(d, "1.25")
    with pytest.raises(SchemaError, match="multipleOf"):
        number_node(multiple_of=0.12347)
    d = dfa_num(minimum=0, maximum=1, multiple_of=0.12347)  # a > MAX_MODULUS: few multiples, listed
    assert accepts(d, "0.24694") and not accepts(d, "0.2469") and not accepts(d, "0.12348")


# Exhaustive: every string up to 5 symbols over a digit/sign/dot alphabet, both directions.
ALPHABET = "0159-."
SHORT = ["".join(p) for n in range(1, 6) for p in itertools.product(ALPHABET, repeat=n)]


@pytest.mark.parametrize(
    ("lo", "hi", "xlo", "xhi", "mult"),
    [
        ("-1.5", "5", False, False, None),
        ("-1.5", "5", True, True, None),
        ("0", "0.5", False, True, None),
        ("0", "0.5", True, False, None),
        ("-9.9", "-0.05", False, False, None),
        ("-10", "-0.1", True, True, None),
        ("0.15", "19.5", False, False, None),
        ("-100", "100", False, False, "0.5"),
        ("-99", "99", True, False, "1.5"),
        (None, "10", False, False, None),
        ("-0.91", None, True, False, None),
        ("0", None, False, False, "0.05"),
    ],
)
def test_exhaustive_short_strings(
    lo: str | None, hi: str | None, xlo: bool, xhi: bool, mult: str | None
) -> None:
    dlo, dhi = (None if v is None else Decimal(v) for v in (lo, hi))
    m = None if mult is None else Decimal(mult)
    d = cached_num(dlo, dhi, xlo, xhi, m)
    for t in SHORT:
        sh = shape(t)
        want = (
            sh is not None
            and not sh[3]
            and not sh[4]
            and in_range(sh[0], dlo, dhi, xlo, xhi)
            and is_multiple(sh[0], m)
        )
        assert accepts(d, t) == want, (t, lo, hi, xlo, xhi, mult)


def test_exhaustive_short_integers() -> None:
    for lo, hi in [(-15, 59), (0, 9), (-1, 0), (5, 1510), (-999, -95)]:
        d = dfa_int(minimum=lo, maximum=hi)
        for t in SHORT:
            want = re.fullmatch(r"0|-?[1-9][0-9]*", t) is not None and lo <= int(t) <= hi
            assert accepts(d, t) == want, (t, lo, hi)


small_decimals = st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False)
values = st.one_of(
    st.floats(min_value=-2000, max_value=2000).map(json.dumps),
    small_decimals.map(lambda d: format(d, "f")),
    st.decimals(min_value=-2000, max_value=2000, places=6).map(lambda d: format(d, "f")),
    st.integers(-3000, 3000).map(str),
    st.tuples(small_decimals, st.sampled_from("eE"), st.sampled_from(["", "-", "+"]), st.integers(0, 120)).map(
        lambda t: f"{format(t[0], 'f')}{t[1]}{t[2]}{t[3]:0{1 + t[3] % 2}d}"
    ),
)


def exponent_supported(text: str, lo: Decimal | None, hi: Decimal | None, xlo: bool, xhi: bool,
                       m: Decimal | None) -> bool:
    """Whether ``text`` (with an exponent) has the supported shape: any exponent of at most 3
    digits for an unconstrained number; else no multipleOf, and the mantissa on a side of 0
    the range holds: a negative exponent when the range is bounded on that side too, at most 2
    digits when it stops at an exclusive 0."""
    mant, _, exp = text.replace("E", "e").partition("e")
    if len(exp.lstrip("+-")) > 3:
        return False
    if lo is hi is m is None:
        return True
    if m is not None:
        return False
    mv = Decimal(mant)
    digits = len(exp.lstrip("+-"))

    def side_ok(pos: bool) -> bool:  # the mantissas of one sign (a zero one belongs to both)
        near, xnear, far, xfar = (lo, xlo, hi, xhi) if pos else (hi, xhi, lo, xlo)
        if near is not None and (near > 0 if pos else near < 0):
            return False
        zero_excl = near == 0 and xnear
        if zero_excl and (mv == 0 or digits > 2):
            return False
        if far is not None:
            if not exp.startswith("-"):
                return False
            if pos and (mv >= far if xfar else mv > far):
                return False
            if not pos and (mv <= far if xfar else mv < far):
                return False
        return True

    return side_ok(not mant.startswith("-")) or (mv == 0 and side_ok(False))


def _check(
    d: DFA, texts: list[str], lo: Decimal | None, hi: Decimal | None, xlo: bool, xhi: bool, m: Decimal | None
) -> None:
    for t in texts:
        sh = shape(t)
        assert sh is not None
        value, sig, lz, has_exp, negzero = sh
        valid = in_range(value, lo, hi, xlo, xhi) and is_multiple(value, m)
        shape_ok = not negzero and (not has_exp or exponent_supported(t, lo, hi, xlo, xhi, m))
        got = accepts(d, t)
        if got:
            assert valid and shape_ok, (t, lo, hi, xlo, xhi, m)  # never accept an invalid value
        elif valid and shape_ok and sig <= 17 and lz <= 17:
            raise AssertionError(f"rejected supported in-range {t!r} ({lo}, {hi}, {xlo}, {xhi}, {m})")


@settings(max_examples=150, deadline=None)
@given(
    lo=st.one_of(st.none(), small_decimals, st.floats(-1000, 1000)),
    hi=st.one_of(st.none(), small_decimals, st.floats(-1000, 1000)),
    xlo=st.booleans(),
    xhi=st.booleans(),
    texts=st.lists(values, min_size=1, max_size=25),
)
def test_number_range_property(lo: object, hi: object, xlo: bool, xhi: bool, texts: list[str]) -> None:
    dlo = None if lo is None else Decimal(repr(lo)) if isinstance(lo, float) else lo
    dhi = None if hi is None else Decimal(repr(hi)) if isinstance(hi, float) else hi
    assert dlo is None or isinstance(dlo, Decimal)
    assert dhi is None or isinstance(dhi, Decimal)
    assume(dlo is None or dhi is None or dlo < dhi or (dlo == dhi and not xlo and not xhi))
    d = dfa_num(
        minimum=None if xlo else lo,
        maximum=None if xhi else hi,
        exclusive_minimum=lo if xlo else None,
        exclusive_maximum=hi if xhi else None,
    )
    probes = [format(b, "f") for b in (dlo, dhi) if b is not None and b != 0]
    _check(d, texts + probes, dlo, dhi, xlo, xhi, None)


@settings(max_examples=80, deadline=None)
@given(
    lo=st.one_of(st.none(), small_decimals),
    span=st.decimals(min_value=0, max_value=500, places=2),
    m=st.sampled_from(["0.01", "0.5", "0.25", "3", "2.5", "0.1", "7", "0.125", "1", "0.3"]),
    texts=st.lists(values, min_size=1, max_size=25),
)
def test_number_multiple_property(lo: Decimal | None, span: Decimal, m: str, texts: list[str]) -> None:
    dm = Decimal(m)
    hi = None if lo is None else lo + span
    try:
        d = cached_num(lo, hi, False, False, dm)
    except UnsatisfiableSchemaError:
        assert lo is not None and hi is not None
        assert math.ceil(lo / dm) > math.floor(hi / dm)
        return
    multiples = [] if lo is None else [format(math.ceil(lo / dm) * dm, "f")]
    _check(d, texts + multiples, lo, hi, False, False, dm)
