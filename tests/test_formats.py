"""JSON Schema ``format`` languages (jsonmode.formats) against jsonschema's checkers and the stdlib."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import re
import sys
import uuid
import zlib

import pytest
from automata_helpers import sample_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from jsonmode.formats import SUPPORTED_FORMATS, format_content, format_dfa, hostname_dfa, is_annotation
from jsonmode.fsm import DFA, compile_dfa, lit, seq

CHECKER = Draft202012Validator.FORMAT_CHECKER
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Formats whose jsonschema checker needs an optional package.
OPTIONAL = {"hostname": "fqdn", "duration": "isoduration", "uri": "rfc3986_validator",
            "uri-reference": "rfc3986_validator", "json-pointer": "jsonpointer",
            "relative-json-pointer": "jsonpointer"}


def checker_active(fmt: str) -> bool:
    return fmt in CHECKER.checkers


def accepts(fmt: str, s: str) -> bool:
    d = format_dfa(fmt)
    assert d is not None
    return d.matches(s.encode())


def fqdn_reference(s: str) -> bool:
    """fqdn's rule (min_labels=1), restated: RFC 1123 labels <= 63, total <= 253 w/o final dot."""
    body = s[:-1] if s.endswith(".") else s
    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    return len(body) <= 253 and re.fullmatch(rf"{label}(?:\.{label})*", body) is not None


def stdlib_ok(fmt: str, s: str) -> bool:
    """Independent stdlib / reference checks (None-free: True where nothing applies)."""
    if fmt == "ipv4":
        ipaddress.IPv4Address(s)
    elif fmt == "ipv6":
        assert "%" not in s
        ipaddress.IPv6Address(s)
    elif fmt == "uuid":
        uuid.UUID(s)
    elif fmt == "date":
        dt.date.fromisoformat(s)
    elif fmt in ("date-time", "time") and sys.version_info >= (3, 11):
        text = s.upper() if fmt == "date-time" else "1970-01-01T" + s.upper()
        dt.datetime.fromisoformat(text)
    elif fmt == "hostname":
        assert fqdn_reference(s)
    elif fmt == "email":
        assert "@" in s
    return True


def test_unsupported_format_is_none() -> None:
    assert format_content("color") is None
    assert format_content("iri-reference") is None
    for fmt in SUPPORTED_FORMATS:
        assert format_content(fmt) is not None


def test_formats_no_draft_defines_are_annotations() -> None:
    for fmt in ("byte", "url", "int32", "password", "path", ""):
        assert is_annotation(fmt) and format_content(fmt) is None
    for fmt in ("uri-reference", "regex", "json-pointer", "iri", "color", *SUPPORTED_FORMATS):
        assert not is_annotation(fmt)  # defined by a draft: enforced, or refused by the compiler


def test_sizes_stay_small() -> None:
    for fmt in SUPPORTED_FORMATS:
        d = format_dfa(fmt)
        assert d is not None and d.num_states < 1000, fmt


VALID = {
    "date-time": ["2024-02-29T12:30:00Z", "1999-12-31t23:59:59.123456789+05:30", "0001-01-01T00:00:00-23:59",
                  "2000-02-29T00:00:00z"],
    "date": ["2024-02-29", "2000-02-29", "2023-12-31", "0004-02-29", "9999-09-30"],
    "time": ["12:30:00Z", "23:59:59.5+01:00", "00:00:00z"],
    "duration": ["P1Y2M3DT4H5M6S", "P4W", "PT36H", "P1D", "PT0S", "P1M", "PT1M", "P1Y2M", "PT1H30M"],
    "email": ["joe.bloggs@example.com", "te~st@example.com", "a+b/c=d@sub-domain.example.co.uk", "x@localhost"],
    "hostname": ["example.com", "localhost", "a-b.c", "xn--bcher-kva.example", "example.com.", "123.example"],
    "ipv4": ["0.0.0.0", "255.255.255.255", "192.168.1.10"],
    "ipv6": ["::", "::1", "1::", "2001:db8::ff00:42:8329", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
             "::ffff:192.0.2.128", "1:2:3:4:5:6:1.2.3.4", "ABCD:ef01::1", "::1.2.3.4"],
    "uuid": ["2eb8aa08-aa98-11ea-b4aa-73b441d16380", "2EB8AA08-AA98-11EA-B4AA-73B441D16380"],
    "uri": ["http://example.com/path?q=1&r=2/?#frag", "urn:isbn:0451450523", "mailto:a@b.c", "http://[::1]:8080/",
            "ftp://user:pw@host:21/x%20y", "file:///etc/hosts", "a:", "tel:+1-816-555-1212"],
    "uri-reference": ["http://example.com/a?b#c", "//host:8/p", "/abs/path", "rel/a:b", "../up", "?q=1", "#frag",
                      "", "a@b", "%41/x", "mailto:a@b.c"],
    "json-pointer": ["", "/", "/a/b", "/a~0b/c~1d", "//", "/é/0", "/ "],
    "relative-json-pointer": ["0", "12", "10", "0#", "1/a", "3/", "7/x~1y"],
}  # fmt: skip

INVALID = {
    "date-time": ["2023-02-29T12:30:00Z", "1900-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z",
                  "2024-01-01 00:00:00Z", "2024-01-01T00:00:00", "0000-01-01T00:00:00Z", "2024-01-01T00:00:00.Z",
                  "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-01-01T00:00:00+24:00"],
    "date": ["2023-02-29", "1900-02-29", "2024-1-01", "0000-01-01", "2024-00-10", "2024-06-31"],
    "time": ["12:30:00", "24:00:00Z", "12:60:00Z", "1:00:00Z"],
    "duration": ["P", "PT", "P1YT", "PT1D", "P2D1Y", "P1Y2W", "1Y", "P1.5Y", "P-1Y"],
    "email": ["plain", "@example.com", "a@", ".a@b.c", "a.@b.c", "a..b@c.d", "a@-b.c", "a@b..c", '"a b"@c.d'],
    "hostname": ["", "-a.com", "a-.com", "a..b", ".a", "a_b.com", "a" * 64 + ".com", "ex ample.com"],
    "ipv4": ["256.1.1.1", "01.1.1.1", "1.1.1", "1.1.1.1.1", "1.1.1.", "a.b.c.d", "1.1.1.01"],
    "ipv6": [":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "1:2:3:4:5:6:7:8::", "::1.2.3.04", "1:2:3:4:5:6:7",
             ":1::", "fe80::1%eth0", "1:2:3:4:5:6:7:1.2.3.4"],
    "uuid": ["2eb8aa08aa9811eab4aa73b441d16380", "2eb8aa08-aa98-11ea-b4aa-73b441d1638", "{2eb8aa08-aa98-11ea-b4aa-73b441d16380}",
             "2eb8aa08-aa98-11ea-b4aa-73b441d1638g"],
    "uri": ["//example.com", "http://exa mple.com", "1http://x", "http://[::1", "%zz", "http://x/%g0", "/path", ""],
    "uri-reference": ["a b", "%zz", "x#a#b", "//h[1]/", "/p\\q", "a\"b", "http://[::1"],
    "json-pointer": ["a", "a/b", "/~", "/a~2", "/~a", "#/a"],
    "relative-json-pointer": ["", "#", "05", "00", "100", "1#x", "-1", "1a", "0~0", "3/a~"],
}  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(VALID))
def test_known_valid(fmt: str) -> None:
    for s in VALID[fmt]:
        assert accepts(fmt, s), (fmt, s)
        if checker_active(fmt):
            assert CHECKER.conforms(s, fmt), (fmt, s)
        assert stdlib_ok(fmt, s)


@pytest.mark.parametrize("fmt", sorted(INVALID))
def test_known_invalid(fmt: str) -> None:
    for s in INVALID[fmt]:
        assert not accepts(fmt, s), (fmt, s)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_generated_values_pass_checkers(fmt: str) -> None:
    """Random walks through each automaton produce values every checker accepts."""
    if fmt in OPTIONAL and not checker_active(fmt):
        pytest.importorskip(OPTIONAL[fmt])
    d = format_dfa(fmt)
    assert d is not None
    whole = compile_dfa(seq(lit('"'), format_content(fmt), lit('"')))  # type: ignore[arg-type]
    seed = zlib.crc32(fmt.encode())
    samples = [raw for k, max_len in enumerate((10, 40, 120)) for raw in sample_texts(d, 100, seed=seed + k,
                                                                                      max_len=max_len)]
    for raw in samples:
        s = json.loads(b'"' + raw + b'"')
        assert whole.matches(b'"' + raw + b'"')
        if fmt not in ("json-pointer", "relative-json-pointer"):  # (any character: JSON escapes too)
            assert raw.decode() == s  # written raw
        assert CHECKER.conforms(s, fmt), (fmt, s)
        assert stdlib_ok(fmt, s)


# --------------------------------------------------------------------------- exactness


def _ipv4_ok(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def _ipv6_ok(s: str) -> bool:
    try:
        a = ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return not a.scope_id


@SETTINGS
@given(st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3}){2,4}", fullmatch=True))
def test_ipv4_exact(s: str) -> None:
    assert accepts("ipv4", s) == _ipv4_ok(s)


IPV6_CANDIDATES = st.lists(
    st.one_of(
        st.from_regex(r"[0-9a-fA-F]{0,5}", fullmatch=True), st.sampled_from(["", "1.2.3.4", "0.01.2.3"])
    ),
    min_size=1,
    max_size=10,
).map(":".join)


@SETTINGS
@given(IPV6_CANDIDATES)
def test_ipv6_exact(s: str) -> None:
    assert accepts("ipv6", s) == _ipv6_ok(s)


def _date_ok(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
    except ValueError:
        return False
    return True


@SETTINGS
@given(st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True))
def test_date_exact(s: str) -> None:
    assert accepts("date", s) == _date_ok(s)
    assert accepts("date", s) == CHECKER.conforms(s, "date")


def test_date_exact_leap_years() -> None:
    for year in list(range(1, 500)) + list(range(1500, 2500)) + [9996, 9999]:
        s = f"{year:04d}-02-29"
        assert accepts("date", s) == _date_ok(s), s


@SETTINGS
@given(
    st.from_regex(
        r"[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,3})?([Zz]|[+-][0-2][0-9]:[0-6][0-9])?",
        fullmatch=True,
    )
)
def test_date_time_exact(s: str) -> None:
    assert accepts("date-time", s) == CHECKER.conforms(s, "date-time")
    t = s[11:]
    assert accepts("time", t) == CHECKER.conforms(t, "time")


@SETTINGS
@given(st.from_regex(r"[+-]?P([0-9]{0,2}[YMWDTHS.]){0,6}", fullmatch=True))
def test_duration_subset(s: str) -> None:
    if accepts("duration", s):
        if checker_active("duration"):
            assert CHECKER.conforms(s, "duration"), s
        assert re.fullmatch(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?", s)


def test_hostname_exact_variant_matches_fqdn() -> None:
    exact = hostname_dfa(1, 254)
    rng = random.Random(7)
    parts = ["a", "b-c", "0", "x" * 63, "y" * 64, "-", "", "z" * 30]
    for _ in range(400):
        s = ".".join(rng.choice(parts) for _ in range(rng.randint(1, 7)))
        if rng.random() < 0.2:
            s += "."
        assert exact.matches(s.encode()) == fqdn_reference(s), s
    long = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 chars exactly
    assert exact.matches(long.encode()) and exact.matches((long + ".").encode())
    assert not exact.matches((long + "b").encode())


@SETTINGS
@given(st.from_regex(r"[a-zA-Z0-9.-]{1,80}", fullmatch=True))
def test_hostname_default_is_subset(s: str) -> None:
    if accepts("hostname", s):
        assert fqdn_reference(s)
        if checker_active("hostname"):
            assert CHECKER.conforms(s, "hostname")


@SETTINGS
@given(
    st.from_regex(
        r"[0-9a-fA-FgG]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{11,13}", fullmatch=True
    )
)
def test_uuid_exact(s: str) -> None:
    assert accepts("uuid", s) == CHECKER.conforms(s, "uuid")


@SETTINGS
@given(st.from_regex(r"[a-z][a-z0-9+.-]{0,3}:(//)?([a-z0-9:@%\[\]/?#. -]{0,12})", fullmatch=True))
def test_uri_subset(s: str) -> None:
    if accepts("uri", s) and checker_active("uri"):
        assert CHECKER.conforms(s, "uri"), s


@SETTINGS
@given(st.text(alphabet="abc09:/?#[]@!$&'()*+,;=%-._~ ", max_size=14))
def test_uri_reference_is_the_checker(s: str) -> None:
    """Same verdict as rfc3986-validator's URI_reference rule (which jsonschema uses), except
    IPvFuture hosts (``[v1.x]``, never accepted here) and a trailing newline (its ``$``)."""
    if not checker_active("uri-reference"):
        pytest.skip("rfc3986-validator not installed: jsonschema does not check uri-reference")
    if "[v" in s:
        assert not accepts("uri-reference", s) or CHECKER.conforms(s, "uri-reference")
        return
    assert accepts("uri-reference", s) == CHECKER.conforms(s, "uri-reference"), s


@SETTINGS
@given(st.text(alphabet="/~01a#é\"\\", max_size=10), st.sampled_from(["json-pointer", "relative-json-pointer"]))
def test_json_pointers_are_the_checker(s: str, fmt: str) -> None:
    """Same verdict as jsonschema's checker (the ``jsonpointer`` package), on the string's JSON
    content (quotes and backslashes escaped, as in the output)."""
    if not checker_active(fmt):
        pytest.skip("jsonpointer not installed: jsonschema does not check " + fmt)
    content = json.dumps(s, ensure_ascii=False)[1:-1].encode()
    d = format_dfa(fmt)
    assert d is not None
    assert d.matches(content) == CHECKER.conforms(s, fmt), s


def test_dfa_type() -> None:
    d = format_dfa("ipv4")
    assert isinstance(d, DFA)
