"""ECMA pattern parsing and JSON-string-content languages (jsonmode.regex)."""

from __future__ import annotations

import functools
import json
import random
import re
from typing import Any

import pytest
from automata_helpers import sample_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jsonmode.errors import SchemaError
from jsonmode.fsm import DFA, compile_dfa, lit, seq
from jsonmode.regex import (
    DOT,
    SPACE,
    CAlt,
    CAnchor,
    CRepeat,
    CSeq,
    CSet,
    char_dfa,
    hex_class,
    json_char,
    literal_json_string,
    normalize,
    parse_pattern,
    pattern_node,
    string_content,
    utf8_class,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def quoted(pattern: str | None = None, lo: int = 0, hi: int | None = None) -> DFA:
    return compile_dfa(seq(lit('"'), string_content(pattern, lo, hi), lit('"')))


def test_parse_basic_ast() -> None:
    assert parse_pattern("a") == CSet(((97, 97),))
    assert parse_pattern("ab") == CSeq((CSet(((97, 97),)), CSet(((98, 98),))))
    assert parse_pattern("a|b") == CAlt((CSet(((97, 97),)), CSet(((98, 98),))))
    assert parse_pattern("a{2,3}?") == CRepeat(CSet(((97, 97),)), 2, 3)
    assert parse_pattern("^a$") == CSeq((CAnchor(True), CSet(((97, 97),)), CAnchor(False)))
    assert parse_pattern("[a-c\\d]") == CSet(((48, 57), (97, 99)))
    assert parse_pattern("[^\\x00-\\u{10FFFF}]") == CSet(())
    assert parse_pattern("\\uD83D\\uDE00") == CSet(((0x1F600, 0x1F600),))
    assert parse_pattern("[\\b]") == CSet(((8, 8),))
    assert parse_pattern("\\s") == CSet(SPACE)
    assert parse_pattern(".") == CSet(DOT)
    assert parse_pattern("[\\w-]") == CSet(normalize([(48, 57), (65, 90), (95, 95), (97, 122), (45, 45)]))
    assert parse_pattern("a{") == CSeq((CSet(((97, 97),)), CSet(((123, 123),))))  # Annex B literal
    assert parse_pattern("(?<year>\\d)") == CSet(((48, 57),))


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        ("(?=a)", "lookahead"),
        ("(?!a)", "lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("(?<!a)b", "lookbehind"),
        ("(a)\\1", "backreference"),
        ("(?<n>a)\\k<n>", "named backreference"),
        ("a\\b", "word boundary"),
        ("\\Ba", "word boundary"),
        ("a^b", "anchor '^'"),
        ("a$b", "anchor '$'"),
        ("a(b|^c)", "anchor '^'"),
        ("(a$|b)c", "anchor '$'"),
        ("(?i)a", "inline flags"),
        ("\\p{Script=Latin}", "Unicode property"),
        ("\\A", "unknown escape"),
        ("\\Z", "unknown escape"),
        ("a**", "nothing to repeat"),
        ("*a", "nothing to repeat"),
        ("^*", "nothing to repeat"),
        ("[b-a]", "out of order"),
        ("a{3,2}", "out of order"),
        ("(a", "unterminated group"),
        ("[a", "unterminated character class"),
        ("a)", "unmatched ')'"),
        ("\\01", "octal"),
        ("\\x4", "\\x"),
    ],
)
def test_refusals_name_construct_and_pattern(pattern: str, construct: str) -> None:
    with pytest.raises(SchemaError) as ei:
        pattern_node(pattern)
    assert construct in str(ei.value)
    assert repr(pattern) in str(ei.value)


def test_ecma_whitespace() -> None:
    d = quoted("^\\s$")
    spaces = "\t\n\x0b\x0c\r \u00a0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    for c in spaces:
        assert d.matches(json.dumps(c, ensure_ascii=False).encode()), hex(ord(c))
        assert d.matches(json.dumps(c).encode()), hex(ord(c))
    for c in "\x85\u180e\u200b\x1c_a":
        assert not d.matches(json.dumps(c, ensure_ascii=False).encode()), hex(ord(c))
    assert quoted("^\\S+$").matches('"a\u200b"'.encode())


def test_unicode_property_categories() -> None:
    d = quoted("^\\p{Lu}\\P{L}$")
    assert d.matches('"Ä1"'.encode())
    assert not d.matches('"ä1"'.encode())
    assert not d.matches('"ÄÖ"'.encode())
    assert quoted("^\\p{gc=Nd}+$").matches('"٣3"'.encode())


# --------------------------------------------------------------------------- encodings


def test_char_classes_are_compact() -> None:
    assert char_dfa(normalize([(97, 122), (48, 57), (95, 95)])).num_states <= 12
    assert char_dfa(((0, 0x10FFFF),)).num_states <= 16
    # \p{L} has hundreds of ranges; range splitting + minimization keeps it manageable
    assert compile_dfa(seq(lit('"'), string_content("^\\p{L}$"), lit('"'))).num_states < 3000


def test_utf8_class_exact_on_boundaries() -> None:
    ranges = normalize(
        [(0x7F, 0x81), (0x7FF, 0x801), (0xD7FF, 0xE000), (0xFFFF, 0x10001), (0x10FFFF, 0x10FFFF)]
    )
    d = compile_dfa(utf8_class(ranges))
    inside = {cp for lo, hi in ranges for cp in range(lo, hi + 1) if not 0xD800 <= cp <= 0xDFFF}
    probe = set(range(0x70, 0x90)) | set(range(0x7F0, 0x810)) | set(range(0xD7F0, 0xE010))
    probe |= set(range(0xFFF0, 0x10010)) | {0x10FFFE, 0x10FFFF}
    for cp in probe:
        if 0xD800 <= cp <= 0xDFFF:
            assert not d.matches(chr(cp).encode("utf-8", "surrogatepass"))
            continue
        assert d.matches(chr(cp).encode()) == (cp in inside), hex(cp)
    assert not d.matches(b"\xe0\x80\xbf")  # overlong
    assert not d.matches(b"\xc1\xbf")


def test_hex_class_exact() -> None:
    ranges = normalize([(0x41, 0x5A), (0x1234, 0x1300), (0xE000, 0xFFFF)])
    d = compile_dfa(hex_class(ranges))
    for v in list(range(0, 0x2000)) + list(range(0xDF00, 0x10000)):
        want = any(lo <= v <= hi for lo, hi in ranges)
        assert d.matches(f"{v:04x}".encode()) == want
        assert d.matches(f"{v:04X}".encode()) == want


def test_json_char_spellings() -> None:
    d = compile_dfa(json_char([(0x22, 0x22)]))
    assert d.matches(b'\\"') and d.matches(b"\\u0022") and not d.matches(b'"')
    d = compile_dfa(json_char([(0x2F, 0x2F)]))
    assert d.matches(b"/") and d.matches(b"\\/") and d.matches(b"\\u002F")
    d = compile_dfa(json_char([(0x0A, 0x0A)]))
    assert d.matches(b"\\n") and d.matches(b"\\u000a") and not d.matches(b"\n")
    d = compile_dfa(json_char([(0x1F600, 0x1F600)]))
    assert d.matches("😀".encode()) and not d.matches(b"\\ud83d\\ude00")
    d = compile_dfa(json_char([(0xD800, 0xDFFF)]))
    assert d.is_empty()


def test_free_string_spellings() -> None:
    d = quoted()
    for s in [
        "",
        "plain",
        'q"uote',
        "back\\slash",
        "new\nline",
        "tab\t",
        "\x00\x1f\x7f",
        "é日本😀",
        "\u2028",
    ]:
        assert d.matches(json.dumps(s, ensure_ascii=False).encode()), s
        assert d.matches(json.dumps(s).encode()), s  # surrogate pairs too, for free strings
    assert d.matches(b'"\\/\\b\\f\\r\\uABCD\\uabcd"')
    for bad in [
        b'"\n"',
        b'"\x1f"',
        b'"\\x"',
        b'"\\u12"',
        b'"\\ud800"',
        b'"\\udc00\\ud800"',
        b'"\xff"',
        b'"\xed\xa0\x80"',
    ]:
        assert not d.matches(bad), bad


def test_lengths_count_code_points() -> None:
    d = quoted(None, 2, 3)
    assert d.matches('"é😀"'.encode())
    assert d.matches(b'"\\u00e9\\n"')
    assert d.matches('"ab😀"'.encode())
    assert not d.matches('"ab😀c"'.encode())
    assert not d.matches('"😀"'.encode())
    assert not d.matches(b'"\\ud83d\\ude00"')  # a pair would be 1 char; only free strings take pairs
    assert quoted(None, 3, 1).is_empty()


def test_anchors_and_search() -> None:
    d = quoted("b")
    assert d.matches(b'"abc"') and not d.matches(b'"ac"')
    d = quoted("^b")
    assert d.matches(b'"bc"') and not d.matches(b'"ab"')
    d = quoted("b$")
    assert d.matches(b'"ab"') and not d.matches(b'"ba"')
    d = quoted("^a$|^b")
    assert d.matches(b'"a"') and d.matches(b'"bz"') and not d.matches(b'"az"')
    d = quoted("^$")
    assert d.matches(b'""') and not d.matches(b'"a"')
    d = quoted("")
    assert d.matches(b'"anything\\n"')
    d = quoted("^.$")
    assert d.matches('"😀"'.encode()) and not d.matches(b'"\\n"') and not d.matches(b'"\\u2028"')


def test_anchors_in_groups_at_the_pattern_edges() -> None:
    d = quoted("(^Hpt_|^Int_|_Armour_)")
    assert d.matches(b'"Hpt_x"') and d.matches(b'"Int_"') and d.matches(b'"a_Armour_b"')
    assert not d.matches(b'"xHpt_"') and not d.matches(b'"a_Int_"') and not d.matches(b'"Armour"')
    d = quoted("^(?:a$|b)")
    assert d.matches(b'"a"') and d.matches(b'"bz"') and not d.matches(b'"az"') and not d.matches(b'"xb"')
    d = quoted("(x|(^y|z)w)$")
    assert d.matches(b'"ax"') and d.matches(b'"yw"') and d.matches(b'"azw"')
    assert not d.matches(b'"ayw"') and not d.matches(b'"xa"')
    for bad in ("x(^a)", "(^a)*", "(a$)b", "a$b"):
        with pytest.raises(SchemaError, match="anchor"):
            pattern_node(bad)


def test_underscore_identity_escape() -> None:
    d = quoted("^[A-Z\\_]{2,}$")
    assert d.matches(b'"A_"') and not d.matches(b'"A"') and not d.matches(b'"a_"')
    assert quoted("^a\\_$").matches(b'"a_"')


def test_pattern_with_escapes_in_value() -> None:
    d = quoted('^[^"\\\\]+$')
    assert d.matches(b'"abc"') and not d.matches(b'"a\\"c"') and not d.matches(b'"a\\\\c"')
    d = quoted('^a"b\\\\$')
    assert d.matches(b'"a\\"b\\\\"') and d.matches(b'"\\u0061\\u0022b\\u005c"')


def test_literal_json_string() -> None:
    for s in ["", "x", 'a"b\\c/d\n\x01é😀']:
        d = compile_dfa(seq(lit('"'), literal_json_string(s), lit('"')))
        assert d.matches(json.dumps(s, ensure_ascii=False).encode())
        assert json.loads(json.dumps(s, ensure_ascii=False)) == s
    d = compile_dfa(seq(lit('"'), literal_json_string("é"), lit('"')))
    assert not d.matches(b'"\\u00e9"')  # canonical spelling only
    d = compile_dfa(seq(lit('"'), literal_json_string("\ud800"), lit('"')))
    assert d.matches(b'"\\ud800"')


def test_sizes() -> None:
    assert quoted(None, 0, 1000).num_states < 30_000
    assert quoted("^[a-z]+$").num_states < 20
    assert quoted("^\\d{3}-\\d{4}$").num_states < 100


# --------------------------------------------------------------------------- properties

# (ECMA pattern, Python equivalent): Python's '$' also matches before a final newline and
# its '.' only excludes '\n', so the equivalents spell ECMA's meaning out.
PATTERNS = [
    ("^[a-z]+$", r"^[a-z]+\Z"),
    ("^\\d{3}-\\d{4}$", r"^[0-9]{3}-[0-9]{4}\Z"),
    ("abc", "abc"),
    ("^(foo|bar)+baz", "^(foo|bar)+baz"),
    ("colou?r$", r"colou?r\Z"),
    ('^[^"\\\\]{2,5}$', r'^[^"\\]{2,5}\Z'),
    ("^[\\u00e9-\\u00ff\\u4e00]*$", "^[\u00e9-\u00ff\u4e00]*\\Z"),
    ("^.{2}$", "^[^\n\r\u2028\u2029]{2}\\Z"),
    ("[\\u{1F600}-\\u{1F602}]", "[\U0001f600-\U0001f602]"),
    ("^\\w+@\\w+\\.com$", r"^[A-Za-z0-9_]+@[A-Za-z0-9_]+\.com\Z"),
    ("^(?:a|b)*c{2,}$", r"^(?:a|b)*c{2,}\Z"),
    ("x|^y$", r"x|^y\Z"),
    ("^$", r"^\Z"),
    ("", ""),
    ("\\/\\.\\-\\n", "/\\.\\-\n"),
    ("^(?<y>\\d{4})-(?<m>\\d\\d)$", r"^(?P<y>[0-9]{4})-(?P<m>[0-9][0-9])\Z"),
    ("^[\\s]+$", "^[\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+\\Z"),
    ("^[^a-z]?é$", "^[^a-z]?é\\Z"),
]

ALPHABET = st.sampled_from(
    list('abcfoobarxyz019-_@."\\/\n\r\t é日\u2028\u00a0\U0001f600\U0001f601') + ["\x00"]
)
TEXT = st.one_of(st.text(ALPHABET, max_size=8), st.text(max_size=6))


@functools.cache
def cached(pattern: str | None, lo: int, hi: int | None) -> DFA:
    return quoted(pattern, lo, hi)


def expected(py: str | None, lo: int, hi: int | None, s: str) -> bool:
    found = py is None or re.search(py, s) is not None
    return found and lo <= len(s) and (hi is None or len(s) <= hi)


@SETTINGS
@given(
    st.sampled_from(PATTERNS + [(None, None)]),
    st.integers(0, 3),
    st.one_of(st.none(), st.integers(0, 6)),
    TEXT,
)
def test_text_matches_iff_search(
    pats: tuple[str | None, str | None], lo: int, hi: int | None, s: str
) -> None:
    ecma, py = pats
    d = cached(ecma, lo, hi)
    want = expected(py, lo, hi, s)
    assert d.matches(json.dumps(s, ensure_ascii=False).encode()) == want
    if all(ord(c) <= 0xFFFF for c in s):
        assert d.matches(json.dumps(s).encode()) == want


@SETTINGS
@given(st.data())
def test_from_regex_matches(data: st.DataObject) -> None:
    ecma, py = data.draw(st.sampled_from(PATTERNS))
    s = data.draw(st.from_regex(py))
    hi = data.draw(st.one_of(st.none(), st.integers(0, 12)))
    d = cached(ecma, 0, hi)
    want = expected(py, 0, hi, s)
    assert d.matches(json.dumps(s, ensure_ascii=False).encode()) == want
    if all(ord(c) <= 0xFFFF for c in s):
        assert d.matches(json.dumps(s).encode()) == want


@SETTINGS
@given(
    st.sampled_from(PATTERNS + [(None, None)]),
    st.integers(0, 3),
    st.one_of(st.none(), st.integers(3, 8)),
    st.randoms(),
)
def test_generated_strings_decode_and_match(pats: tuple, lo: int, hi: int | None, rng: random.Random) -> None:
    """Soundness: anything the automaton lets through is valid JSON whose value matches."""
    ecma, py = pats
    d = compile_dfa(string_content(ecma, lo, hi))
    if d.trim().is_empty():
        return
    for raw in sample_texts(d, 5, seed=rng.randrange(2**32), max_len=80):
        value = json.loads(b'"' + raw + b'"')
        assert lo <= len(value) and (hi is None or len(value) <= hi), (raw, value)
        if py is not None:
            assert re.search(py, value), (ecma, raw, value)


def test_free_string_samples_decode() -> None:
    d = compile_dfa(string_content())
    for raw in sample_texts(d, 200, seed=1, max_len=60):
        json.loads(b'"' + raw + b'"')


def test_unanchored_alternatives_share_one_search_prefix() -> None:
    """`a|b|c` searched inside a string: one leading/trailing any* for all branches, else the subset
    construction remembers which branches matched (2**n states; 17 words took minutes)."""
    words = [f"INTERVAL_{w}" for w in ("TICK", "M1", "M2", "M3", "M4", "M5", "M6", "M10", "M15", "M20",
                                       "M30", "H1", "H2", "H4", "D1", "W1", "MN1")]
    d = quoted("|".join(words))
    assert d.num_states < 2_000
    assert d.matches(b'"x INTERVAL_M30 and INTERVAL_H1"') and d.matches(b'"INTERVAL_MN1"')
    assert not d.matches(b'"INTERVAL_M7"') and not d.matches(b'""')
    anchored = quoted("^(?:ab|cd)$|xy")
    assert anchored.matches(b'"ab"') and anchored.matches(b'"__xy__"') and not anchored.matches(b'"abx"')


# --------------------------------------------------------------------------- computed counters


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 4), st.integers(0, 4), st.lists(st.text(max_size=7), min_size=1, max_size=8))
def test_counter_dfa_equals_tabled_length_dfa(lo: int, extra: int, samples: list[str]) -> None:
    """The computed counter reads exactly the language of the tabled counter, and knows its count."""
    from jsonmode.regex import counter_dfa, length_dfa

    hi = lo + extra
    c = counter_dfa(lo, hi)
    d = length_dfa(lo, hi)
    _same_language_and_counts(c, d, samples + ["", "é", '\\"', "\\u00e9x", "😀"])


def _same_language_and_counts(c: Any, d: DFA, samples: list[str]) -> None:
    """``c`` reads the JSON spelling of each sample as ``d`` does, and where it accepts it sits
    between characters, its count the sample's length."""
    for s in samples:
        data = json.dumps(s, ensure_ascii=False)[1:-1].encode()
        assert c.matches(data) == d.matches(data), s
        state = 0
        for b in data:
            state = c.step(state, b)
            if state < 0:
                break
        if state >= 0 and c.is_accepting(state):
            assert c.position(state) == (len(s), 0)


def test_counter_dfa_is_computed_not_tabled() -> None:
    """A maxLength of 100,000 costs what a small one does (rows are arithmetic)."""
    from jsonmode.regex import counter_dfa

    c = counter_dfa(2, 100_000)
    assert c.num_states == 100_001 * c.m
    s = 0
    for b in b"ab\\u00e9":
        s = c.step(s, b)
    assert c.position(s) == (3, 0) and c.is_accepting(s)
    last = 100_000 * c.m
    assert c.is_accepting(last) and (c.row(last) < 0).all()  # full: not even a first byte fits
    assert (c.row(last - c.m) >= 0).sum() > 0


SEARCH_PATTERNS = ["[a-z]+", "ab", "x.y", "[0-9]{2}", r"^(?:[\s\S]{2})*$", "é|z$"]
# patterns that die on some character: counted too, over their own automaton
CLASS_PATTERNS = ["^[a-z]+$", "^[a-z0-9-]{2,}$", "^(?:ab)+$", r"^\S+(?:\s\S+){0,2}$", "^[xyé]*z?$"]


def _prefixes_alive_alike(c: Any, d: DFA, samples: list[str]) -> None:
    """Every prefix of each sample's JSON spelling is alive in ``c`` exactly where it is in the
    trimmed ``d``: ``c`` never reads on where the string can no longer end in bounds."""
    d = d.trim()
    for s in samples:
        data = json.dumps(s, ensure_ascii=False)[1:-1].encode()
        a, b = 0, 0
        for byte in data:
            a, b = c.step(a, byte), d.step(b, byte) if b >= 0 else -1
            assert (a >= 0) == (b >= 0), (s, data)
            if a < 0:
                break


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEARCH_PATTERNS + CLASS_PATTERNS), st.integers(0, 4), st.integers(0, 5),
       st.lists(st.text(alphabet="abxyz09é -\"\\", max_size=9), min_size=1, max_size=8))
def test_counted_pattern_equals_tabled_product(pattern: str, lo: int, extra: int, samples: list[str]) -> None:
    """A pattern with lengths, counted over the pattern's automaton, reads exactly the language
    of the (pattern x length) product, knows its count and phase, and dies where the product's
    trimmed automaton does (no dead end a model could write itself into)."""
    from jsonmode.fsm import CountedDFA, intersect
    from jsonmode.regex import ALL, char_dfa, length_dfa, string_content

    hi = lo + extra
    pat = compile_dfa(string_content(pattern, 0, None))
    c = CountedDFA.build(pat, char_dfa(ALL), lo, hi)
    d = intersect(pat, length_dfa(lo, hi))
    assert c is not None, pattern  # every state of these has one character phase
    assert bool(c) == (not d.is_empty())
    if not c:
        return
    assert c.dies == (pattern in CLASS_PATTERNS)
    extra_samples = ["", "ab", "x_y", "12", "é", "\\u00e9x", "abab", "a b", "z"]
    _same_language_and_counts(c, d, samples + extra_samples)
    _prefixes_alive_alike(c, d, samples + extra_samples + ["x" * 9, "a" * (hi + 1)])


def test_counted_pattern_has_no_dead_end() -> None:
    """A search pattern that must still appear: 19 ``x`` of at most 20 characters leave room
    for no ``abc``, so the 19th is already refused (it used to be allowed, then nothing)."""
    from jsonmode.fsm import CountedDFA
    from jsonmode.regex import ALL, char_dfa, string_content

    c = CountedDFA.build(compile_dfa(string_content("abc", 0, None)), char_dfa(ALL), 0, 20)
    assert isinstance(c, CountedDFA)
    s = 0
    for _ in range(17):
        s = c.step(s, ord("x"))
    assert s >= 0 and c.step(s, ord("x")) < 0 and c.step(s, ord("a")) >= 0
    assert c.matches(b"x" * 17 + b"abc") and not c.matches(b"x" * 18 + b"abc")


def test_counted_pattern_follows_the_period() -> None:
    """An even-length pattern: settled through its period, far past any table."""
    from jsonmode.fsm import CountedDFA
    from jsonmode.regex import ALL, char_dfa, string_content

    even = compile_dfa(string_content(r"^(?:[\s\S]{2})*$", 0, None))
    char = char_dfa(ALL)
    assert CountedDFA.build(even, char, 3, 3) is False and CountedDFA.build(even, char, 3, 4)
    assert CountedDFA.build(even, char, 99_999, 100_000) and CountedDFA.build(even, char, 100_001, 100_001) is False


def test_counted_word_limit_compiles() -> None:
    """A word limit within a long length (a real schema's ``^(?:\\S+\\s+){0,99}\\S+$`` with
    maxLength 5,000): counted, not a (pattern x length) product past max_states."""
    from jsonmode.fsm import CountedDFA
    from jsonmode.regex import ALL, char_dfa, string_content

    words = compile_dfa(string_content(r"^$|(^(?:\S+\s+){0,99}\S+$)", 0, None))
    c = CountedDFA.build(words, char_dfa(ALL), 1, 5000)
    assert isinstance(c, CountedDFA) and c.dies
    text = " ".join(["w"] * 100).encode()
    assert c.matches(text) and not c.matches(text + b" w") and not c.matches(b"")
