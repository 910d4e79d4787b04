"""jsonmode.fsm: AST helpers, Glushkov + subset construction, DFA products, trim and size limits."""

from __future__ import annotations

import itertools
import re
import signal

import numpy as np
import pytest
from automata_helpers import ref_matches
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from jsonmode.errors import AutomatonTooLarge, SchemaError
from jsonmode.fsm import (
    ALL_BYTES,
    DFA,
    EMPTY,
    NEVER,
    Alt,
    DfaNode,
    Graph,
    LazyDFA,
    Node,
    Repeat,
    Seq,
    Sym,
    alt,
    alt_list,
    compile_dfa,
    difference,
    intersect,
    join,
    lit,
    mask_range,
    opt,
    plus,
    product,
    rep,
    seq,
    star,
    sym,
    sym_range,
)

A, B, C = (ord(ch) for ch in "abc")


def words(alphabet: str = "abc", max_len: int = 5) -> list[bytes]:
    return [bytes(w) for n in range(max_len + 1) for w in itertools.product(alphabet.encode(), repeat=n)]


def lang(d: DFA, max_len: int = 5, alphabet: str = "abc") -> set[bytes]:
    return {w for w in words(alphabet, max_len) if d.matches(w)}


# --------------------------------------------------------------------------- AST helpers


def test_sym_and_ranges() -> None:
    assert sym() is NEVER
    assert sym(A, B) == Sym((1 << A) | (1 << B))
    assert sym_range(A, C) == Sym(0b111 << A)
    assert sym_range(C, A) is NEVER
    assert mask_range(0, 255) == ALL_BYTES and mask_range(3, 2) == 0
    assert sym(300) == Sym(1 << 300)  # symbols above 255 stand for special tokens


def test_lit() -> None:
    assert lit("") is EMPTY and lit(b"") is EMPTY
    assert lit("a") == Sym(1 << A)
    assert lit("ab") == Seq((Sym(1 << A), Sym(1 << B)))
    assert lit("é") == Seq((Sym(1 << 0xC3), Sym(1 << 0xA9)))  # UTF-8 bytes


def test_seq_normalises() -> None:
    a, b = lit("a"), lit("b")
    assert seq() is EMPTY
    assert seq(a) is a
    assert seq(EMPTY, a, EMPTY) is a
    assert seq(a, NEVER, b) is NEVER
    assert seq(seq(a, b), a) == Seq((a, b, a))  # flattened


def test_alt_normalises() -> None:
    a, b, ab = lit("a"), lit("b"), lit("ab")
    assert alt() is NEVER
    assert alt(NEVER, NEVER) is NEVER
    assert alt(EMPTY) is EMPTY and alt(EMPTY, EMPTY, NEVER) is EMPTY
    assert alt(a, b) == Sym((1 << A) | (1 << B))  # symbol sets merge
    assert alt(a, NEVER) == a
    assert alt(ab, a) == Alt((Sym(1 << A), ab))  # merged set first
    assert alt(ab, EMPTY) == Alt((ab, EMPTY))  # EMPTY goes last
    assert alt(alt(ab, lit("ba")), a) == Alt((Sym(1 << A), ab, lit("ba")))  # flattened
    assert alt_list(iter([a, b])) == alt(a, b)
    assert opt(a) == Alt((a, EMPTY))


def test_rep_normalises() -> None:
    a = lit("a")
    assert rep(a, 3, 2) is NEVER
    assert rep(a, 0, 0) is EMPTY
    assert rep(EMPTY, 2, None) is EMPTY
    assert rep(NEVER, 0, 3) is EMPTY and rep(NEVER, 1, 3) is NEVER
    assert rep(a, 1, 1) is a
    assert rep(a, 2, 5) == Repeat(a, 2, 5)
    assert star(a) == Repeat(a, 0, None) and plus(a) == Repeat(a, 1, None)


def test_join() -> None:
    sep = lit(",")
    assert join([], sep) is EMPTY
    assert join([lit("a")], sep) == lit("a")
    assert compile_dfa(join([lit("a"), lit("b"), lit("c")], sep)).matches(b"a,b,c")


# --------------------------------------------------------------------------- compile_dfa


@pytest.mark.parametrize(
    "node, accepted, rejected",
    [
        (lit("abc"), [b"abc"], [b"", b"ab", b"abcc", b"abd"]),
        (seq(lit("a"), alt(lit("b"), lit("cc")), lit("a")), [b"aba", b"acca"], [b"aca", b"aa", b"abcca"]),
        (alt(lit("ab"), lit("a"), EMPTY), [b"", b"a", b"ab"], [b"b", b"aab"]),
        (rep(lit("ab"), 2, 3), [b"abab", b"ababab"], [b"", b"ab", b"abababab", b"aba"]),
        (rep(lit("a"), 0, 2), [b"", b"a", b"aa"], [b"aaa"]),
        (rep(lit("a"), 3, None), [b"aaa", b"a" * 20], [b"aa", b""]),
        (star(alt(lit("a"), lit("bc"))), [b"", b"a", b"bca", b"abcbca"], [b"b", b"cb"]),
        (plus(lit("ab")), [b"ab", b"abab"], [b"", b"aba"]),
        (rep(opt(lit("a")), 2, 3), [b"", b"a", b"aa", b"aaa"], [b"aaaa"]),  # nullable item, bounded
        (star(opt(lit("a"))), [b"", b"aaaa"], [b"b"]),  # nullable item under star
        (rep(star(lit("a")), 2, 2), [b"", b"aaaaa"], [b"b"]),
        (seq(opt(lit("a")), opt(lit("b")), lit("c")), [b"c", b"ac", b"bc", b"abc"], [b"bac", b"ab"]),
        (NEVER, [], [b"", b"a"]),
        (EMPTY, [b""], [b"a"]),
        (sym_range(A, C), [b"a", b"b", b"c"], [b"d", b""]),
    ],
)
def test_compile_dfa_language(node: Node, accepted: list[bytes], rejected: list[bytes]) -> None:
    d = compile_dfa(node)
    for w in accepted:
        assert d.matches(w), w
    for w in rejected:
        assert not d.matches(w), w
    # the DFA agrees with the reference matcher on every short word
    for w in words("abcd", 4):
        assert d.matches(w) == ref_matches(node, w), w


def test_repeat_bounds_exhaustive() -> None:
    for lo, hi in [(0, 0), (0, 1), (1, 1), (0, 3), (2, 4), (3, 3), (0, None), (2, None)]:
        d = compile_dfa(Repeat(lit("a"), lo, hi))  # raw node: no rep() normalisation
        for n in range(8):
            expected = n >= lo and (hi is None or n <= hi)
            assert d.matches(b"a" * n) == expected, (lo, hi, n)


def test_symbols_above_255() -> None:
    node = seq(sym(256), lit("{"), star(sym_range(A, C)), lit("}"), sym(257))
    d = compile_dfa(node)
    assert d.num_symbols >= 258
    assert d.matches([256, ord("{"), A, B, ord("}"), 257])
    assert not d.matches([256, ord("{"), ord("}"), 256])
    assert not d.matches(b"{}")
    assert d.step(0, 1000) == -1  # symbols past the classmap have no transitions
    assert d.run([999]) == -1


def test_dfa_step_run_and_full_table() -> None:
    d = compile_dfa(seq(lit("a"), star(lit("b"))))
    s1 = d.step(0, A)
    assert s1 > 0 and d.accept[s1]
    assert d.step(0, B) == -1 and d.step(-1, A) == -1
    assert d.run(b"abbb") >= 0 and d.run(b"ba") == -1
    full = d.full_table(256)
    S = d.num_states
    assert full.shape == (S + 1, 256) and full.dtype == np.int32
    assert (full[S] == S).all()  # absorbing dead row
    for s in range(S):
        for b in range(256):
            t = d.step(s, b)
            assert full[s, b] == (S if t < 0 else t)
    assert d.full_table(256) is full  # cached
    wide = d.full_table(300)  # wider than the classmap: extra symbols are dead
    assert wide.shape == (S + 1, 300) and (wide[:, 256:] == S).all()


# --------------------------------------------------------------------------- Graph


def test_graph_linear_and_optional_paths() -> None:
    # 0 -a-> 1 -b-> 2 ; 0 -EMPTY-> 1 ; finals {2}
    g = Graph(3, 0, (2,), ((0, 1, lit("a")), (1, 2, lit("b")), (0, 1, EMPTY)))
    d = compile_dfa(g)
    assert lang(d, 3) == {b"ab", b"b"}


def test_graph_nullable_edge_chain_reaches_final() -> None:
    # start can reach the final node through two empty edges: the graph is nullable
    g = Graph(4, 0, (3,), ((0, 1, EMPTY), (1, 2, opt(lit("a"))), (2, 3, star(lit("b"))), (0, 3, lit("c"))))
    d = compile_dfa(g)
    assert d.matches(b"")
    assert lang(d, 3) == {w for w in words("abc", 3) if ref_matches(g, w)}
    assert {b"", b"a", b"ab", b"abb", b"bbb", b"c"} <= lang(d, 3)


def test_graph_cycles() -> None:
    # 0 -a-> 1, 1 -b-> 0 (cycle), 1 final; self-loop 1 -c-> 1; nullable cycle 1 -EMPTY-> 2 -EMPTY-> 1
    g = Graph(
        3,
        0,
        (1,),
        ((0, 1, lit("a")), (1, 0, lit("b")), (1, 1, lit("c")), (1, 2, EMPTY), (2, 1, EMPTY), (2, 2, opt(lit("b")))),
    )
    d = compile_dfa(g)
    got = lang(d, 6)
    assert got == {w for w in words("abc", 6) if ref_matches(g, w)}
    assert {b"a", b"ac", b"aba", b"acbac", b"abb"} <= got  # 1 -EMPTY-> 2 -b-> 2 -EMPTY-> 1
    assert b"b" not in got and b"" not in got


def test_graph_unreachable_final_and_no_finals() -> None:
    g = Graph(3, 0, (2,), ((0, 1, lit("a")),))  # node 2 unreachable
    assert compile_dfa(g).is_empty()
    g2 = Graph(2, 0, (), ((0, 1, lit("a")),))
    assert compile_dfa(g2).is_empty()
    g3 = Graph(1, 0, (0,), ())  # start is final, no edges
    assert lang(compile_dfa(g3), 2) == {b""}


def test_graph_embedded_in_seq_and_star() -> None:
    g = Graph(2, 0, (1,), ((0, 1, lit("a")), (1, 1, lit("b"))))  # a b*
    node = seq(lit("["), star(seq(g, lit(","))), lit("]"))
    d = compile_dfa(node)
    assert d.matches(b"[]") and d.matches(b"[a,abb,]") and not d.matches(b"[b,]")
    for w in words("ab,", 4):
        assert d.matches(b"[" + w + b"]") == ref_matches(node, b"[" + w + b"]")


# --------------------------------------------------------------------------- DfaNode embedding


def test_dfanode_embedding() -> None:
    inner = compile_dfa(alt(lit("ab"), star(lit("c"))))  # nullable
    node = seq(lit("x"), DfaNode(inner), lit("y"), DfaNode(inner))  # same DFA embedded twice
    d = compile_dfa(node)
    for w in [b"xy", b"xaby", b"xyab", b"xccyab", b"xabyccc"]:
        assert d.matches(w), w
    for w in [b"x", b"xay", b"xabab", b"xyaby"]:
        assert not d.matches(w), w
    looped = compile_dfa(star(seq(DfaNode(inner), lit("|"))))
    assert looped.matches(b"ab|cc||") and not looped.matches(b"a|")
    empty = compile_dfa(DfaNode(compile_dfa(NEVER)))
    assert empty.is_empty()


def test_dfanode_with_special_symbols() -> None:
    inner = compile_dfa(seq(sym(256), lit("a")))
    d = compile_dfa(seq(lit("x"), DfaNode(inner)))
    assert d.matches([ord("x"), 256, A]) and not d.matches(b"xa")


# --------------------------------------------------------------------------- LazyDFA


def test_lazy_dfa_builds_states_on_demand() -> None:
    node = seq(lit("{"), star(sym_range(A, C)), lit("}"))
    lazy = LazyDFA(node)
    assert lazy.start == 1 and lazy.num_states == 2  # dead (0) and start (1), nothing expanded yet
    assert lazy.matches(b"{ab}") and not lazy.matches(b"{ad}") and not lazy.matches(b"{")
    assert lazy.step(0, A) == 0 and lazy.step(1, ord("x")) == 0  # 0 is the dead state
    assert lazy.step(1, 10_000) == 0  # beyond the alphabet
    assert lazy.row(1)[ord("{")] > 1 and lazy.row(1)[A] == -1  # rows use -1 for dead, like DFA.row
    eager = compile_dfa(node)
    for w in words("{}ab", 4):
        assert lazy.matches(w) == eager.matches(w), w


def test_lazy_dfa_only_expands_what_is_walked() -> None:
    lazy = LazyDFA(alt(seq(lit("a"), rep(sym(A, B), 30, 30)), seq(lit("b"), rep(sym(A, B), 30, 30))))
    assert lazy.matches(b"a" + b"b" * 30)
    walked = lazy.num_states
    assert walked < 40
    m = lazy.materialize()
    assert lazy.num_states > walked and m.matches(b"b" + b"a" * 30)


def test_lazy_literal_rows_build_ahead_along_the_literal() -> None:
    # one row write per letter, and up to _LITERAL_AHEAD letters at once: same language
    node = seq(lit("abcdefghijklmnop"), alt(lit("q"), star(sym(A))))
    lazy = LazyDFA(node)
    lazy.expand([lazy.start])
    assert 8 <= int(lazy.expanded[: lazy.num_states].sum()) <= 10  # the literal's first states, not all 16
    eager = compile_dfa(node)
    for w in [b"abcdefghijklmnop", b"abcdefghijklmnopq", b"abcdefghijklmnopaa", b"abcdefghijklmnoq", b"abc", b""]:
        assert lazy.matches(w) == eager.matches(w), w
    m = lazy.materialize()
    for cut in range(17):  # every prefix of the literal, and one wrong letter at each position
        w = b"abcdefghijklmnop"[:cut]
        assert m.matches(w + b"q") == eager.matches(w + b"q") and m.matches(w + b"x") == eager.matches(w + b"x")


def test_lazy_expand_near_builds_only_the_first_symbols() -> None:
    node = alt(seq(lit("{"), star(sym_range(A, C)), lit("}")), lit("xyzzy"), seq(lit("x"), rep(sym(A), 3, 3)))
    lazy = LazyDFA(node)
    n = lazy.expand_near(2, limit=1000)
    built = {s for s in range(1, lazy.num_states) if lazy.expanded[s]}
    # start, then the states after one symbol ('{', 'x'); the states after two are known, not built
    assert len(built) == 3 and n == lazy.num_states - 1
    assert lazy.matches(b"{ab}") and lazy.matches(b"xyzzy") and lazy.matches(b"xaaa") and not lazy.matches(b"xaa")
    assert LazyDFA(node).expand_near(5, limit=2) <= 4  # stops once past the limit


def test_lazy_materialize_equals_compile_dfa() -> None:
    node = seq(star(alt(lit("ab"), lit("c"))), opt(lit("a")))
    m, e = LazyDFA(node).materialize(), compile_dfa(node)
    assert lang(m, 6) == lang(e, 6)


def test_lazy_from_dfa_and_from_table() -> None:
    d = compile_dfa(seq(lit("a"), star(lit("b"))))
    lz = LazyDFA.from_dfa(d, n_sym=300)
    assert lz.num_symbols == 300 and lz.expanded[: lz.num_states].all()
    assert lz.matches(b"abb") and not lz.matches(b"ba")
    again = LazyDFA.from_table(lz.table[: lz.num_states], lz.accept[: lz.num_states])
    for w in words("ab", 4):
        assert again.matches(w) == d.matches(w)


def test_lazy_max_states() -> None:
    lazy = LazyDFA(_blowup(8), max_states=50)
    with pytest.raises(AutomatonTooLarge, match="max_states=50"):
        lazy.materialize()


@pytest.mark.parametrize("reserve", [True, False])
def test_lazy_table_reserved_not_doubled(monkeypatch: pytest.MonkeyPatch, reserve: bool) -> None:
    """Past a small size a lazy table gets room for every state it may have (reserved memory) and
    is never copied again: doubling copied the whole table into fresh pages at once, a 56 ms mask
    call on a VM whose page faults are slow.  Without reservable memory it doubles as before."""
    import jsonmode.fsm as fsm

    monkeypatch.setattr(fsm, "_RESERVE_ABOVE", 8 * 1024)
    if not reserve:
        monkeypatch.setattr(fsm, "_reserve_rows", lambda rows, width: None)
    tables: list[np.ndarray] = []
    grow = LazyDFA._grow

    def spy(self: LazyDFA, need: int) -> None:
        grow(self, need)
        if not tables or self.table is not tables[-1]:
            tables.append(self.table)

    monkeypatch.setattr(LazyDFA, "_grow", spy)
    lazy = LazyDFA(_blowup(9), max_states=3000)
    m = lazy.materialize()
    assert lazy.num_states > 1000
    assert lang(m, 12) == lang(compile_dfa(_blowup(9)), 12)
    assert not lazy.table[lazy.num_states :].any()  # rows past the built ones read as zero
    if reserve and fsm._reserve_rows(4, 4) is not None:
        assert lazy.table.shape[0] == 3001  # room for max_states, reserved once
        assert len(tables) <= 6  # 4 rows doubled up to 8 KB, then the reservation
    else:
        assert lazy.table.shape[0] < 3001 and len(tables) >= 5


def test_unexpanded_lazy_dfas_stay_small() -> None:
    """A recursive schema makes thousands of lazy automata a compile never expands (one per $ref
    use and depth): each starts with a few rows, not 64 (a 20 s compile held 1 GB of them)."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = [LazyDFA(seq(lit("ab"), star(lit("c"))), n_sym=300) for _ in range(500)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 500 * 20_000  # ~5 KB of table each at 4 rows; 64 rows were 77 KB
    assert keep[0].matches(b"abcc") and keep[0].num_states > 3  # and they still grow on demand


def test_live_states_cached_read_only() -> None:
    d = compile_dfa(seq(lit("a"), star(lit("b"))))
    live = d.live_states()
    assert live is d.live_states() and not live.flags.writeable
    assert not d.is_empty()


def test_lazy_dfa_embedded_as_dfanode() -> None:
    inner = LazyDFA(alt(lit("ab"), star(lit("c"))))
    node = seq(lit("["), DfaNode(inner), lit(","), DfaNode(inner), lit("]"))
    for lz in (LazyDFA(node), compile_dfa(node)):
        assert lz.matches(b"[ab,]") and lz.matches(b"[cc,ab]") and not lz.matches(b"[a,]")


# --------------------------------------------------------------------------- trim, live states


def test_trim_and_live_states() -> None:
    # hand-made DFA over classes {a: 0, b: 1}: 0 -a-> 1 (accept), 0 -b-> 2 (dead end), 2 -a-> 2,
    # state 3 unreachable but accepting
    classmap = np.full(256, -1, np.int32)
    classmap[A], classmap[B] = 0, 1
    trans = np.array([[1, 2], [-1, -1], [2, -1], [1, -1]], np.int32)
    d = DFA(trans, np.array([False, True, False, True]), classmap)
    assert d.live_states().tolist() == [True, True, False, True]
    t = d.trim()
    assert t.num_states == 2 and t.matches(b"a") and not t.matches(b"b")
    assert t.trans[0, 1] == -1  # edge into the dead end removed
    assert lang(t, 4) == lang(d, 4) == {b"a"}
    empty = DFA(np.array([[0, 0]], np.int32), np.array([False]), classmap).trim()
    assert empty.num_states == 1 and empty.is_empty() and not empty.accept[0]
    assert (empty.trans == -1).all()


def test_is_empty() -> None:
    assert compile_dfa(NEVER).is_empty()
    assert not compile_dfa(EMPTY).is_empty()
    assert compile_dfa(seq(lit("a"), NEVER)).is_empty()


# --------------------------------------------------------------------------- products


PRODUCT_CASES = [
    (star(sym(A, B)), seq(star(lit("a")), star(lit("b")))),
    (seq(star(sym(A, B, C)), lit("a")), rep(sym(A, B, C), 0, 3)),
    (alt(lit("ab"), lit("ba"), EMPTY), star(lit("ab"))),
    (plus(lit("a")), star(lit("b"))),  # disjoint
    (star(sym(A, B, C)), NEVER),
    (seq(lit("a"), star(sym(A, B))), seq(star(sym(A, C)), lit("b"))),
]


@pytest.mark.parametrize("x, y", PRODUCT_CASES)
def test_intersect_and_difference_exhaustive(x: Node, y: Node) -> None:
    dx, dy = compile_dfa(x), compile_dfa(y)
    lx, ly = lang(dx), lang(dy)
    inter = intersect(dx, dy)
    diff = difference(dx, dy)
    assert lang(inter) == lx & ly
    assert lang(diff) == lx - ly
    assert lang(difference(dy, dx)) == ly - lx
    for d in (inter, diff):  # products come back trimmed: every state can still accept
        assert d.live_states().all() or (d.num_states == 1 and d.is_empty())


def test_products_with_different_alphabets() -> None:
    digits = compile_dfa(plus(sym_range(ord("0"), ord("9"))))
    specials = compile_dfa(seq(sym(256), plus(sym_range(ord("0"), ord("9")))))
    assert intersect(digits, specials).is_empty()
    assert difference(specials, digits).matches([256, ord("7")])
    anything = compile_dfa(star(Sym(ALL_BYTES)))
    ab = compile_dfa(lit("ab"))
    assert lang(intersect(anything, ab)) == {b"ab"}
    assert difference(ab, anything).is_empty()


def test_difference_from_empty_automaton() -> None:
    never = compile_dfa(NEVER)
    a = compile_dfa(lit("a"))
    assert difference(never, a).is_empty()
    assert lang(difference(a, never)) == {b"a"}
    assert product(a, a, "and").matches(b"a")


# --------------------------------------------------------------------------- size limits


def _blowup(k: int) -> Node:
    """(a|b)* a (a|b){k}: the classic 2**(k+1)-state subset construction."""
    ab = sym(A, B)
    return seq(star(ab), lit("a"), rep(ab, k, k))


def test_max_states_raises_automaton_too_large() -> None:
    assert compile_dfa(_blowup(4), max_states=200).num_states >= 32  # 2**5 subsets (+ Glushkov start)
    with pytest.raises(AutomatonTooLarge, match="max_states=100"):
        compile_dfa(_blowup(8), max_states=100)
    assert issubclass(AutomatonTooLarge, SchemaError)


def test_max_positions_raises() -> None:
    with pytest.raises(AutomatonTooLarge, match="positions"):
        compile_dfa(rep(lit("abc"), 50, 50), max_positions=100)


def test_product_max_states() -> None:
    x = compile_dfa(_blowup(5))
    y = compile_dfa(seq(star(sym(A, B)), lit("b"), rep(sym(A, B), 4, 4)))  # 5th-last is b, 6th-last a
    with pytest.raises(AutomatonTooLarge, match="max_states"):
        intersect(x, y, max_states=50)
    assert not intersect(x, y).is_empty()


# --------------------------------------------------------------------------- property: DFA == Python re

LETTERS = "abc"


def _leaf() -> st.SearchStrategy[tuple[Node, str]]:
    def make_sym(letters: frozenset[str]) -> tuple[Node, str]:
        chars = "".join(sorted(letters))
        return sym(*(ord(ch) for ch in chars)), f"[{chars}]"

    return st.one_of(
        st.frozensets(st.sampled_from(LETTERS), min_size=1).map(make_sym),
        st.text(LETTERS, min_size=0, max_size=3).map(lambda s: (lit(s), f"(?:{re.escape(s)})")),
        st.just((EMPTY, "(?:)")),
        st.just((NEVER, "(?!)")),
    )


def _extend(children: st.SearchStrategy[tuple[Node, str]]) -> st.SearchStrategy[tuple[Node, str]]:
    pair = st.lists(children, min_size=1, max_size=3)

    def mk_seq(items: list[tuple[Node, str]]) -> tuple[Node, str]:
        return Seq(tuple(n for n, _ in items)), "".join(f"(?:{r})" for _, r in items)

    def mk_alt(items: list[tuple[Node, str]]) -> tuple[Node, str]:
        return Alt(tuple(n for n, _ in items)), "(?:" + "|".join(r for _, r in items) + ")"

    def mk_helper_seq(items: list[tuple[Node, str]]) -> tuple[Node, str]:
        return seq(*(n for n, _ in items)), "".join(f"(?:{r})" for _, r in items)

    def mk_helper_alt(items: list[tuple[Node, str]]) -> tuple[Node, str]:
        return alt(*(n for n, _ in items)), "(?:" + "|".join(r for _, r in items) + ")"

    @st.composite
    def mk_rep(draw: st.DrawFn) -> tuple[Node, str]:
        node, rx = draw(children)
        lo = draw(st.integers(0, 2))
        hi = draw(st.one_of(st.none(), st.integers(lo, lo + 2)))
        q = f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
        return Repeat(node, lo, hi), f"(?:{rx}){q}"

    return st.one_of(pair.map(mk_seq), pair.map(mk_alt), pair.map(mk_helper_seq), pair.map(mk_helper_alt), mk_rep())


regex_asts = st.recursive(_leaf(), _extend, max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regex_asts, st.lists(st.text(LETTERS, max_size=8), min_size=1, max_size=12))
def test_property_dfa_agrees_with_python_re(ast: tuple[Node, str], samples: list[str]) -> None:
    node, rx = ast
    d = compile_dfa(node)
    pat = re.compile(rx)
    for s in samples + ["", "a", "ab", "abc"]:
        assert d.matches(s.encode()) == (_re_fullmatch(pat, s) is not None), (rx, s)


class _Backtracking(Exception):
    pass


def _re_fullmatch(pat: re.Pattern[str], s: str, seconds: float = 0.5) -> re.Match[str] | None:
    """``pat.fullmatch(s)``, or the example rejected when Python's backtracking engine takes
    too long: nested nullable repeats (``(?:(?:)|a){1,}`` inside ``{1,}``) are exponential
    there and hung a CI run; the AST oracle (``ref_matches``) covers such examples."""
    if not hasattr(signal, "setitimer"):
        return pat.fullmatch(s)

    def expire(signum: int, frame: object) -> None:
        raise _Backtracking

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return pat.fullmatch(s)
    except _Backtracking:
        reject()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@st.composite
def graph_asts(draw: st.DrawFn) -> Node:
    """Graphs whose edges are random regex ASTs (nullable edges and cycles included) inside regex ASTs."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(0, 6))
    edges = tuple(
        (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)), draw(regex_asts)[0]) for _ in range(m)
    )
    finals = tuple(sorted(draw(st.sets(st.integers(0, n - 1), max_size=n))))
    g = Graph(n, draw(st.integers(0, n - 1)), finals, edges)
    wrap = draw(st.sampled_from(["bare", "seq", "star", "dfa"]))
    if wrap == "seq":
        return seq(lit("a"), g, opt(lit("c")))
    if wrap == "star":
        return rep(g, 0, None)
    if wrap == "dfa":
        return seq(DfaNode(compile_dfa(g)), opt(g))
    return g


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_asts(), st.lists(st.text(LETTERS, max_size=6), min_size=1, max_size=10))
def test_property_graph_and_dfanode_agree_with_reference(node: Node, samples: list[str]) -> None:
    d = compile_dfa(node)
    lazy = LazyDFA(node)
    nested = LazyDFA(seq(DfaNode(LazyDFA(node)), lit("|")))  # a lazy automaton embedded in another
    for s in samples + [""]:
        want = ref_matches(node, s.encode())
        assert d.matches(s.encode()) == want, s
        assert lazy.matches(s.encode()) == want, s
        assert nested.matches(s.encode() + b"|") == want, s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regex_asts, regex_asts)
def test_property_products(x: tuple[Node, str], y: tuple[Node, str]) -> None:
    dx, dy = compile_dfa(x[0]), compile_dfa(y[0])
    lx, ly = lang(dx, 4), lang(dy, 4)
    assert lang(intersect(dx, dy), 4) == lx & ly
    assert lang(difference(dx, dy), 4) == lx - ly


def test_strings_dfa_only_when_no_character_sequence_dies() -> None:
    from jsonmode.compiler import _extra_keys_dfa, _known_keys_dfa
    from jsonmode.fsm import StringsDFA, strings_dfa
    from jsonmode.regex import canonical_key_char

    char = canonical_key_char()
    extra = _extra_keys_dfa(("id", "idx", "é"), 200_000)
    assert isinstance(extra, StringsDFA) and extra.phase is not None
    s = extra.run(b"id")  # a declared name so far: still alive, between characters
    assert s >= 0 and extra.phase[s] == char.start and not extra.is_accepting(s)
    s = extra.run("é".encode()[:1])  # mid-character
    assert s >= 0 and extra.phase[s] != char.start
    # only finitely many strings: "idxx" dies, so no phases
    assert not isinstance(strings_dfa(_known_keys_dfa(("id", "idx")), char), StringsDFA)


def test_char_phases_of_automata_that_may_die() -> None:
    """Phases exist where a DFA reads only what its character phase reads, dying or not; a DFA
    reading bytes the character cannot (a non-canonical escape) or in two phases has none."""
    from jsonmode.compiler import _key_regions
    from jsonmode.fsm import char_phases
    from jsonmode.regex import canonical_key_char, string_content

    char = canonical_key_char()
    (((_sel, counted),), _rest) = _key_regions(("^[a-z]{1,3}$",), ("ab",), 200_000)
    ph = char_phases(counted, char)
    assert ph is not None and counted.run(b"abc") >= 0 and counted.run(b"abcd") < 0  # dies after 3
    assert all(ph[counted.run(w)] == char.start for w in (b"a", b"ab", b"abc"))
    (((_sel, prefixed),), _rest) = _key_regions(("^x-",), (), 200_000)
    ph = char_phases(prefixed, char)
    assert ph is not None and ph[prefixed.run("x-é".encode()[:3])] != char.start  # mid-character
    assert char_phases(compile_dfa(string_content("^x-", 0, None)), char) is None  # reads "\\/" too
    assert char_phases(compile_dfa(alt(lit("ab"), lit(b"\xc3\xa9b"), lit(b"\xc3b"))), char) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=5), min_size=1, max_size=30), st.lists(st.binary(max_size=6), max_size=20))
def test_literals_dfa_is_exactly_the_texts(texts: list[bytes], probes: list[bytes]) -> None:
    from jsonmode.fsm import literals_dfa

    d = literals_dfa(texts)
    for w in texts + probes + [t[:-1] for t in texts if t]:
        assert d.matches(w) == (w in texts), w


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("ab\u00e9\"\\\n/\U0001f600", max_size=5), min_size=1, max_size=12),
       st.lists(st.text("ab\u00e9\"\\/", max_size=6), max_size=20))
def test_strings_minus_is_the_difference_with_the_phases_of_its_strings(names: list[str], probes: list[str]) -> None:
    """An open object's extra keys, built directly: the same language as the generic
    difference, still never dying, and each state's phase the one a breadth-first check finds."""
    import json

    from jsonmode.compiler import _canonical_key_dfa
    from jsonmode.fsm import StringsDFA, _phases, literals_dfa, strings_minus
    from jsonmode.regex import canonical_key_char

    keys = _canonical_key_dfa()
    assert isinstance(keys, StringsDFA)
    spelled = [json.dumps(n, ensure_ascii=False)[1:-1].encode() for n in names]
    d = strings_minus(keys, spelled)
    generic = difference(keys, literals_dfa(spelled))
    assert difference(d, generic).is_empty() and difference(generic, d).is_empty()
    phase = _phases(d, canonical_key_char(), exact=True)
    reached = phase >= 0  # (states of the key automaton only reached from inside the trie stay in)
    assert phase is not None and np.array_equal(phase[reached], d.phase[reached])
    assert reached[: d.num_states - keys.num_states].all()  # every trie node is reached
    for w in spelled:
        assert not d.matches(w) and keys.matches(w)
    for t in probes:
        w = json.dumps(t, ensure_ascii=False)[1:-1].encode()
        assert d.matches(w) == (w not in spelled)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text("ab;]", min_size=1, max_size=3).map(str.encode), min_size=1, max_size=12),
       st.text("ab]", min_size=1, max_size=3).map(str.encode), st.lists(st.text("ab;]", max_size=7).map(str.encode),
                                                                 max_size=40))
def test_rows_inside_one_embedded_automaton_beside_narrow_positions(
        words: list[bytes], after: bytes, probes: list[bytes]) -> None:
    """A state inside an embedded automaton that may end there, with the few positions that
    follow it (the keyed-symbol path), reads exactly the language (vs the reference matcher)."""
    from jsonmode.fsm import literals_dfa

    inner = DfaNode(literals_dfa(words))
    # what follows may begin with a byte the automaton itself goes on with
    node = seq(inner, alt(lit(after), lit(words[-1][:1]), seq(lit(b";"), inner)), lit(b"]"))
    lazy = LazyDFA(node)
    for w in probes + [a + b + c + d for a in words[:3] for b in (b"", *words[:2])
                       for c in (after, words[-1][:1], b";" + words[0]) for d in (b"", b"]")]:
        assert lazy.matches(w) == ref_matches(node, w), w


def test_small_embedded_dfa_is_mirrored_at_once() -> None:
    """The first row inside a small eager embedded automaton creates all its states; the rows
    of those that cannot end it are filled then, and the language is unchanged."""
    from jsonmode.fsm import literals_dfa

    words = [f"v{i:03d}{'xyz'[i % 3] * (i % 5)}".encode() for i in range(40)]
    inner = literals_dfa(words)
    node = seq(lit("["), DfaNode(inner), lit("]"))
    lazy = LazyDFA(node)
    s = lazy.step(lazy.step(lazy.start, ord("[")), ord("v"))
    pure = int((~inner.accept).sum())  # states that cannot end it: their rows are filled at once
    assert s > 0 and lazy.num_states >= inner.num_states and int(lazy.expanded[: lazy.num_states].sum()) >= pure
    for w in words[:5] + [b"v04", b"v0400", b"w001"]:
        assert lazy.matches(b"[" + w + b"]") == (w in words), w


def test_mirror_keeps_states_made_before_it() -> None:
    """An embedded automaton's state reached alone before its first mirrored row (here by a
    letter only it reads, beside another embedded automaton) keeps its id when the rest are
    created in bulk."""
    from jsonmode.fsm import literals_dfa

    words = [b"ab", b"abc", b"xa", b"xb"]
    node = seq(alt(DfaNode(literals_dfa([b"x!", b"y"])), DfaNode(literals_dfa(words))), lit(";"))
    lazy = LazyDFA(node)
    alone = lazy.step(lazy.start, ord("a"))  # "a" is read by the embedded automaton alone
    assert alone > 0 and lazy._alone
    key = next(k for k, v in lazy._ids.items() if v == alone)
    assert lazy.step(alone, ord("b")) > 0  # its row: the mirror must find ``alone``, not remake it
    assert lazy._ids[key] == alone
    for w in words + [b"x!", b"x", b"a", b"abd", b"xab"]:
        assert lazy.matches(w + b";") == ref_matches(node, w + b";"), w
    fresh = LazyDFA(seq(lit("["), DfaNode(literals_dfa(words)), lit("]")))
    assert fresh.matches(b"[abc]") and not fresh.matches(b"[ab;]") and not fresh._alone


def test_position_count_counts_copies_and_stops_at_the_limit() -> None:
    from jsonmode.fsm import position_count

    word = lit("abc")
    assert position_count(seq(word, word), 100) == 6  # a shared sub-node is copied
    assert position_count(rep(word, 2, 4), 100) == 12
    assert position_count(star(word), 100) == 3
    assert position_count(seq(word, rep(word, 0, 1000)), 50) == 51


def test_deferred_lazy_dfa_walks_on_first_use() -> None:
    """A deferred automaton embeds like any other and builds its positions only when a match
    first reads past its start; the language is the same."""
    inner = seq(lit('"'), star(sym_range(0x61, 0x7A)), lit('"'))
    deferred = LazyDFA(inner, deferred=True)
    assert deferred.__dict__["_node"] is not None and "labels" not in deferred.__dict__
    outer = LazyDFA(seq(lit("["), DfaNode(deferred), lit("]")))
    assert "labels" not in deferred.__dict__  # embedding reads only the start
    eager = LazyDFA(seq(lit("["), inner, lit("]")))
    for text in [b'["abc"]', b'[""]', b'["a"', b'[abc]', b'["ab1"]']:
        assert outer.matches(text) == eager.matches(text)
    assert "labels" in deferred.__dict__ and deferred.__dict__["_node"] is None


def test_deferred_lazy_dfa_must_not_accept_empty() -> None:
    with pytest.raises(RuntimeError, match="non-empty"):
        LazyDFA(opt(lit("a")), deferred=True).step(1, 0x61)


def test_literals_dfa_is_minimal() -> None:
    """An enum's trie merges equal subtrees (a DAWG): 1,554 codes of one shape need a handful of
    states, not one per trie node, and the language is exactly the words."""
    from jsonmode.fsm import literals_dfa

    codes = [f"005-{i:03d}" for i in range(1554)]
    d = literals_dfa(codes)
    assert d.num_states <= 16
    for w in ["005-000", "005-999", "005-1", "005-0001", "", "006-001"]:
        assert d.matches(w.encode()) == (w in codes[:1000] or w in codes), w


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abc\u00e9", max_size=5), max_size=12))
def test_literals_dfa_language(words: list[str]) -> None:
    """Minimising the trie keeps the language: every word, and no other string of the alphabet."""
    from jsonmode.fsm import literals_dfa

    d = literals_dfa(words)
    assert d.num_states <= 1 + sum(len(w.encode()) for w in words)
    probes = set(words) | {w + "a" for w in words} | {w[:-1] for w in words} | {"", "ab", "cab", "\u00e9"}
    for p in probes:
        assert d.matches(p.encode()) == (p in words), p
