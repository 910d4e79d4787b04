"""JSON Schema ``format`` values as byte-level languages of JSON string contents.

Each language is a subset of what ``jsonschema``'s ``Draft202012Validator.FORMAT_CHECKER``
accepts (so generated values always validate) that still covers the forms seen in practice.
Formats are spelled in raw ASCII only: a value such as ``"2024-01-01"`` is never written
with ``\\u`` escapes, which keeps the automata small and the output canonical.

Checkers behind ``jsonschema`` (4.26), and what is approximated here:

* ``date-time``/``date``/``time``: ``rfc3339-validator`` / ``date.fromisoformat``.  Exact:
  ``T``/``t``, ``Z``/``z``, any number of fraction digits, numeric offsets ``±HH:MM`` with
  hours 00-23, seconds 00-59 (no leap second: the checker refuses ``:60``), year 0001-9999,
  days per month with Gregorian leap years (Feb 29 only in leap years).  ``time`` requires
  an offset, as the checker does.
* ``duration``: the RFC 3339 appendix A ABNF (``P1Y2M3DT4H5M6S``, ``P4W``, ``PT36H``...);
  ``isoduration`` also takes some non-ABNF forms (``P1Y1D``), which are not generated.
* ``email``: dot-atom local part ``@`` hostname labels (1-63 chars, any count); no quoted
  local parts, no IP-literal domains, no length limits (the checker only wants an ``@``).
* ``hostname``: RFC 1123 labels of 1-63 letters/digits/inner hyphens, optional trailing
  dot, total <= 253 (``fqdn``).  The exact language needs ~24k states (two independent
  counters), so by default each label costs 1 unit if <= 31 chars, 2 units if 32-63, and at
  most 7 units are allowed (<= 7 labels, <= 223 chars): ~750 states.  See :func:`hostname`.
* ``ipv4``: dotted quad, octets 0-255 without leading zeros (``ipaddress``).  Exact.
* ``ipv6``: all ``::`` compression forms and IPv4-suffixed forms, hex any case, no zone id
  (``ipaddress``).  Exact.
* ``uuid``: 8-4-4-4-12 hex digits, any case.  Exact for the checker's hyphenated form.
* ``uri``: RFC 3986 ``scheme ":" hier-part ["?" query] ["#" fragment]`` with
  ``%``-escapes, userinfo, port and ``[IPv6]`` hosts (``rfc3986-validator``), minus
  ``IPvFuture`` literals.  ``uri-reference``: a ``uri`` or a relative reference (``//host/p``,
  ``/p``, ``p/q`` whose first segment has no ``:``, ``?q``, ``#f``, the empty string), the same way.
* ``json-pointer`` (RFC 6901: ``~`` only as ``~0``/``~1``, as ``jsonpointer`` parses) and
  ``relative-json-pointer`` (a count, then ``#`` or a pointer; counts as jsonschema's checker
  reads them, which rejects any digit after a ``0``), over any characters.

A format no draft defines (:data:`SPEC_FORMATS`) is an annotation: validators accept any
string for it, and so does the compiler.  The drafts' other formats are refused.

``hostname``, ``duration``, ``uri`` and ``uri-reference`` are only checked by ``jsonschema`` when ``fqdn``,
``isoduration`` and ``rfc3986-validator`` are installed; the languages here match those
checkers either way.
"""

from __future__ import annotations

import calendar
import functools

import numpy as np

from .fsm import (
    DFA,
    EMPTY,
    DfaNode,
    Node,
    Sym,
    alt,
    compile_dfa,
    lit,
    opt,
    plus,
    rep,
    seq,
    star,
)
from .regex import minimize

SUPPORTED_FORMATS = (
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
    "uri",
    "uri-reference",
    "json-pointer",
    "relative-json-pointer",
)


# Formats some JSON Schema draft defines: a validator may assert them (jsonschema's
# FORMAT_CHECKER does, for each one whose checker is installed), so one jsonmode cannot
# enforce is refused.  Any other value (OpenAPI's ``byte``, ``int32``, ``password``, a
# project's own ``url`` or ``path``) is an annotation: no draft gives it a meaning and
# validators accept every string for it, so it constrains nothing here either.
SPEC_FORMATS = frozenset((
    *SUPPORTED_FORMATS,
    "idn-email", "idn-hostname", "iri", "iri-reference", "uri-template", "regex",
    "color", "host-name", "ip-address", "utc-millisec", "phone", "style",  # draft 3
))


def is_annotation(fmt: str) -> bool:
    """Whether ``format: fmt`` asserts nothing (no JSON Schema draft defines it)."""
    return fmt not in SPEC_FORMATS


def cs(chars: str) -> Node:
    """One byte out of ``chars`` (ASCII)."""
    m = 0
    for c in chars:
        m |= 1 << ord(c)
    return Sym(m)


DIGITS = "0123456789"
HEX = "0123456789abcdefABCDEF"
ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
D = cs(DIGITS)


def number(lo: int, hi: int, width: int) -> Node:
    """Zero-padded decimal numbers lo..hi of exactly ``width`` digits."""
    return alt(*(lit(f"{v:0{width}d}") for v in range(lo, hi + 1)))


# --------------------------------------------------------------------------- dates


def _year() -> Node:
    """0001-9999 (the checkers refuse year 0)."""
    nz = cs("123456789")
    return alt(seq(nz, D, D, D), seq(lit("0"), nz, D, D), seq(lit("00"), nz, D), seq(lit("000"), nz))


def _leap_year() -> Node:
    """Gregorian leap years: yy % 4 == 0 (yy != 00), or yy == 00 and the century % 4 == 0."""
    mult4 = alt(*(lit(f"{v:02d}") for v in range(4, 100, 4)))  # 04..96, not 00
    return alt(seq(D, D, mult4), seq(mult4, lit("00")))


def _date() -> Node:
    md = []
    for month in range(1, 13):
        days = calendar.monthrange(2001, month)[1]  # a common year: Feb has 28
        md.append(seq(lit(f"{month:02d}-"), number(1, days, 2)))
    return alt(seq(_year(), lit("-"), alt(*md)), seq(_leap_year(), lit("-02-29")))


def _time() -> Node:
    hms = seq(number(0, 23, 2), lit(":"), number(0, 59, 2), lit(":"), number(0, 59, 2))
    frac = opt(seq(lit("."), plus(D)))
    offset = alt(cs("Zz"), seq(cs("+-"), number(0, 23, 2), lit(":"), number(0, 59, 2)))
    return seq(hms, frac, offset)


def _duration() -> Node:
    num = plus(D)
    second = seq(num, lit("S"))
    minute = seq(num, lit("M"), opt(second))
    hour = seq(num, lit("H"), opt(minute))
    dtime = seq(lit("T"), alt(hour, minute, second))
    day = seq(num, lit("D"))
    month = seq(num, lit("M"), opt(day))
    year = seq(num, lit("Y"), opt(month))
    ddate = seq(alt(day, month, year), opt(dtime))
    week = seq(num, lit("W"))
    return seq(lit("P"), alt(ddate, dtime, week))


# --------------------------------------------------------------------------- network


def _label(max_len: int = 63) -> Node:
    """RFC 1123 label: letters/digits, inner hyphens, 1..max_len chars."""
    an = cs(ALPHA + DIGITS)
    return seq(an, opt(seq(rep(cs(ALPHA + DIGITS + "-"), 0, max_len - 2), an)))


def hostname_dfa(unit: int = 32, max_units: int = 7) -> DFA:
    """Hostnames whose labels cost ``ceil((len+1)/unit)`` units each, at most ``max_units``.

    Sound for the 253-char limit when ``unit * max_units <= 254``; ``unit=1,
    max_units=254`` is the exact ``fqdn`` language (~24k states).  Built as an explicit
    state machine over (units used, label length, last char was '-').
    """
    if unit * max_units > 254:
        raise ValueError("unit * max_units must be <= 254 to respect the 253-character limit")

    def cost(n: int) -> int:
        return -(-(n + 1) // unit)

    classmap = np.full(256, -1, np.int32)
    for b in (ALPHA + DIGITS).encode():
        classmap[b] = 0
    classmap[ord("-")] = 1
    classmap[ord(".")] = 2
    start = (0, 0, False)
    ids = {start: 0}
    order = [start]
    rows: list[list[int]] = []
    i = 0
    while i < len(order):
        used, n, hyphen = order[i]
        row = []
        for c in range(3):
            nxt: tuple[int, int, bool] | None
            if c < 2:
                ok = n < 63 and used + cost(n + 1) <= max_units and not (c == 1 and n == 0)
                nxt = (used, n + 1, c == 1) if ok else None
            else:
                nxt = (used + cost(n), 0, False) if n and not hyphen else None
            if nxt is None:
                row.append(-1)
                continue
            j = ids.get(nxt)
            if j is None:
                j = ids[nxt] = len(order)
                order.append(nxt)
            row.append(j)
        rows.append(row)
        i += 1
    accept = [(n > 0 and not hy) or (n == 0 and used > 0) for used, n, hy in order]  # trailing dot ok
    return minimize(DFA(np.array(rows, np.int32), np.array(accept, bool), classmap), 1_000_000)


def hostname(unit: int = 32, max_units: int = 7) -> Node:
    """See :func:`hostname_dfa`; the default is the ``format: hostname`` language."""
    return DfaNode(hostname_dfa(unit, max_units))


def _email() -> Node:
    atext = cs(ALPHA + DIGITS + "!#$%&'*+-/=?^_`{|}~")
    local = seq(plus(atext), star(seq(lit("."), plus(atext))))
    domain = seq(_label(), star(seq(lit("."), _label())))
    return seq(local, lit("@"), domain)


def _ipv4() -> Node:
    octet = alt(
        seq(lit("25"), cs("012345")),
        seq(lit("2"), cs("01234"), D),
        seq(lit("1"), D, D),
        seq(cs("123456789"), D),
        D,
    )
    return seq(octet, rep(seq(lit("."), octet), 3, 3))


def _ipv6() -> Node:
    """``ipaddress.IPv6Address`` syntax: 8 groups, or ``::`` eliding >= 1 group; IPv4 = 2 groups."""
    h = rep(cs(HEX), 1, 4)
    h_colon = seq(h, lit(":"))
    v4 = _ipv4()

    def groups(n: int) -> Node:  # n >= 1 colon-separated groups
        return seq(rep(h_colon, n - 1, n - 1), h)

    def right(n: int) -> Node:  # exactly n groups after '::' (IPv4 tail counts as 2)
        if n == 0:
            return EMPTY
        return alt(groups(n), seq(rep(h_colon, n - 2, n - 2), v4) if n >= 2 else alt())

    full = seq(rep(h_colon, 6, 6), alt(seq(h, lit(":"), h), v4))
    compressed = []
    for k in range(8):  # groups before '::'
        left = groups(k) if k else EMPTY
        compressed.append(seq(left, lit("::"), alt(*(right(m) for m in range(0, 8 - k)))))
    return alt(full, *compressed)


def _uuid() -> Node:
    x = cs(HEX)
    return seq(*(seq(rep(x, n, n), lit("-")) for n in (8, 4, 4, 4)), rep(x, 12, 12))


def _uri() -> Node:
    return _uri_parts()[0]


def _uri_reference() -> Node:
    return alt(*_uri_parts())


def _uri_parts() -> tuple[Node, Node]:
    """(URI, relative-ref) of RFC 3986 as ``rfc3986-validator`` reads them (no IPvFuture)."""
    unreserved = ALPHA + DIGITS + "-._~"
    sub_delims = "!$&'()*+,;="
    pct = seq(lit("%"), cs(HEX), cs(HEX))
    pchar = alt(cs(unreserved + sub_delims + ":@"), pct)
    segment = star(pchar)
    path_abempty = star(seq(lit("/"), segment))
    path_absolute = seq(lit("/"), opt(seq(plus(pchar), path_abempty)))
    path_rootless = seq(plus(pchar), path_abempty)
    userinfo = star(alt(cs(unreserved + sub_delims + ":"), pct))
    host = alt(seq(lit("["), _ipv6(), lit("]")), star(alt(cs(unreserved + sub_delims), pct)))
    authority = seq(opt(seq(userinfo, lit("@"))), host, opt(seq(lit(":"), star(D))))
    hier = alt(seq(lit("//"), authority, path_abempty), path_absolute, path_rootless, EMPTY)
    query = star(alt(cs(unreserved + sub_delims + ":@/?"), pct))
    scheme = seq(cs(ALPHA), star(cs(ALPHA + DIGITS + "+-.")))
    tail = seq(opt(seq(lit("?"), query)), opt(seq(lit("#"), query)))
    # relative-part: a first segment without ":" (else it would read as a scheme)
    path_noscheme = seq(plus(alt(cs(unreserved + sub_delims + "@"), pct)), path_abempty)
    relative = alt(seq(lit("//"), authority, path_abempty), path_absolute, path_noscheme, EMPTY)
    return seq(scheme, lit(":"), hier, tail), seq(relative, tail)


_BUILDERS = {
    "date": _date,
    "time": _time,
    "date-time": lambda: seq(_date(), cs("Tt"), _time()),
    "duration": _duration,
    "email": _email,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "uuid": _uuid,
    "uri": _uri,
    "uri-reference": _uri_reference,
}
# Formats whose language is a pattern over any characters (escaped where JSON needs it):
# RFC 6901 pointers, as the ``jsonpointer`` package parses them ("~" only as "~0" / "~1"),
# and relative pointers as jsonschema's checker reads them (no digit after a "0": "100" fails it,
# so the counts here are "0" or [1-9]+ with at most one final "0").
_PATTERN_FORMATS = {
    "json-pointer": r"^(/([^~]|~[01])*)?$",
    "relative-json-pointer": r"^(0|[1-9]+0?)(#|(/([^~]|~[01])*)?)$",
}


@functools.cache
def format_dfa(fmt: str) -> DFA | None:
    """Minimal DFA of the ``format`` language (cached), or None if unsupported."""
    if fmt == "hostname":
        return hostname_dfa()
    if fmt in _PATTERN_FORMATS:
        from .regex import string_content

        return minimize(compile_dfa(string_content(_PATTERN_FORMATS[fmt])))
    build = _BUILDERS.get(fmt)
    return None if build is None else minimize(compile_dfa(build()))


def format_content(fmt: str) -> Node | None:
    """Byte language of the inside of a JSON string with JSON Schema ``format`` ``fmt``.

    None for formats not in :data:`SUPPORTED_FORMATS` (the caller reports a SchemaError).
    """
    d = format_dfa(fmt)
    return None if d is None else DfaNode(d)
