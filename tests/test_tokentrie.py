"""jsonmode.tokentrie: the compiled trie walks behind cold masks.

Oracles are plain Python: a per-token walk over the DFA table, and the preorder/subtree
definitions themselves.  Random DFAs and vocabularies come from hypothesis.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jsonmode import tokentrie

pytestmark = pytest.mark.skipif(not tokentrie.AVAILABLE, reason="numba not importable: numpy path only")


_NO_VISITS = (np.zeros(0, bool), np.zeros(0, np.int32), np.zeros(1, np.int64))  # (records nothing)


def _tables(tokens: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.array([len(t) for t in tokens], np.int32)
    offsets = np.zeros(len(tokens), np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    buf = np.frombuffer(b"".join(tokens), np.uint8).astype(np.int64)
    return buf, offsets, lengths


def _expected(table: np.ndarray, start: int, tokens: list[bytes], width: int) -> set[int]:
    out = set()
    for t, b in enumerate(tokens):
        if not b or t >= width:
            continue
        q = start
        for c in b:
            q = int(table[q, c])
            if not q:
                break
        if q:
            out.add(t)
    return out


def _bits(words: np.ndarray) -> set[int]:
    return set(np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little")).tolist())


def _walk_all(table: np.ndarray, expanded: np.ndarray, start: int, trie: tokentrie.TokenTrie, width: int,
              build: list[int], roots: np.ndarray | None = None) -> np.ndarray:
    """trie_walk to the end, 'building' rows the way the automaton does (recording the order)."""
    out = np.zeros((width + 31) // 32, np.uint32)
    stack = np.zeros(trie.max_depth + 2, np.int32)
    roots = np.ones(257, bool) if roots is None else roots
    never = np.ones(table.shape[0], np.int8)  # no state is a string the caller settles from tables
    stops, n_stops = np.zeros(8, np.int64), np.zeros(1, np.int64)
    pos = 0
    while True:
        status, pos = tokentrie.trie_walk(table, expanded, start, trie.sym, trie.depth, trie.skip, trie.tok,
                                          trie.dup, width, out, stack, pos, roots, never, stops, n_stops,
                                          *_NO_VISITS)
        if status == tokentrie.DONE:
            return out
        assert not expanded[status]
        build.append(status)
        expanded[status] = True


def test_trie_layout_preorder_skip_and_duplicates() -> None:
    tokens = [b"ab", b"a", b"abc", b"b", b"", b"ab", b"ba"]
    trie = tokentrie.build_trie(*_tables(tokens))
    # nodes in preorder: a, b, c (under ab), b, a
    assert trie.sym.tolist() == [ord(c) for c in "abcba"]
    assert trie.depth.tolist() == [0, 1, 2, 0, 1]
    assert trie.skip.tolist() == [3, 3, 3, 5, 5]
    ends = {}
    for i, t in enumerate(trie.tok.tolist()):
        chain = []
        while t >= 0:
            chain.append(t)
            t = int(trie.dup[t])
        if chain:
            ends[i] = sorted(chain)
    assert ends == {0: [1], 1: [0, 5], 2: [2], 3: [3], 4: [6]}  # "ab" twice: ids 0 and 5 share node 1
    assert trie.max_depth == 3


@st.composite
def dfa_and_vocab(draw: st.DrawFn) -> tuple[np.ndarray, list[bytes]]:
    n = draw(st.integers(2, 7))
    alphabet = draw(st.integers(2, 5))
    table = np.zeros((n, 257), np.int32)
    for q in range(1, n):
        for c in range(alphabet):
            table[q, 97 + c] = draw(st.integers(0, n - 1))
    word = st.binary(min_size=0, max_size=6).map(lambda b: bytes(97 + x % (alphabet + 1) for x in b))
    tokens = draw(st.lists(word, min_size=1, max_size=40))
    return table, tokens


@settings(max_examples=150, deadline=None)
@given(dfa_and_vocab(), st.data())
def test_trie_walk_equals_per_token_walk(case: tuple[np.ndarray, list[bytes]], data: st.DataObject) -> None:
    table, tokens = case
    trie = tokentrie.build_trie(*_tables(tokens))
    width = data.draw(st.integers(1, len(tokens) + 3))
    n = table.shape[0]
    for start in range(1, n):
        # some rows "not built yet": the walk must stop at each, once, and resume to the same answer
        expanded = np.array([True] + [data.draw(st.booleans()) for _ in range(n - 1)])
        before = expanded.copy()
        built: list[int] = []
        got = _walk_all(table, expanded, start, trie, width, built)
        assert _bits(got) == _expected(table, start, tokens, width)
        assert len(built) == len(set(built)) and not before[built].any()
        roots = np.array([data.draw(st.booleans()) for _ in range(257)])
        part = _walk_all(table, expanded, start, trie, width, [], roots)
        assert _bits(part) == {t for t in _expected(table, start, tokens, width) if roots[tokens[t][0]]}


@settings(max_examples=100, deadline=None)
@given(dfa_and_vocab(), st.data())
def test_list_walk_equals_per_token_walk(case: tuple[np.ndarray, list[bytes]], data: st.DataObject) -> None:
    table, tokens = case
    buf, offsets, lengths = _tables(tokens)
    ids = np.array(sorted(set(data.draw(st.lists(st.integers(0, len(tokens) - 1), max_size=10)))), np.int64)
    keep = [t for t in ids.tolist() if lengths[t] > 0]
    ids = np.array(keep, np.int64)
    width = len(tokens)
    for start in range(1, table.shape[0]):
        expanded = np.array([True] + [data.draw(st.booleans()) for _ in range(table.shape[0] - 1)])
        out = np.zeros((width + 31) // 32, np.uint32)
        pos = 0
        while True:
            status, pos = tokentrie.list_walk(table, expanded, start, ids, buf, offsets, lengths, width, out, pos,
                                              *_NO_VISITS)
            if status == tokentrie.DONE:
                break
            expanded[status] = True
        assert _bits(out) == _expected(table, start, tokens, width) & set(keep)


def _signature(table: np.ndarray, start: int, limit: int = 80) -> tuple[int, int, int]:
    ids = np.full(table.shape[0], -1, np.int32)
    status, h1, h2 = tokentrie.signature(table, np.ones(table.shape[0], bool), start, limit, 0x22,
                                         np.zeros(limit + 1, np.int32), ids)
    assert (ids == -1).all()  # scratch restored
    return status, int(h1), int(h2)


@settings(max_examples=100, deadline=None)
@given(dfa_and_vocab(), st.randoms(use_true_random=False))
def test_signature_ignores_state_numbering(case: tuple[np.ndarray, list[bytes]], rnd: object) -> None:
    table, _ = case
    n = table.shape[0]
    perm = list(range(1, n))
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    new_of = np.array([0] + perm)  # state q is renamed new_of[q]; dead stays 0
    renamed = np.zeros_like(table)
    renamed[new_of] = np.where(table > 0, new_of[table], 0)
    for q in range(1, n):
        assert _signature(table, q) == _signature(renamed, int(new_of[q]))


def test_signature_separates_and_limits() -> None:
    loop = np.zeros((3, 257), np.int32)
    loop[1, 97:100] = 1  # a-c loop
    loop[2, 97:99] = 2  # a-b loop: a different language
    a, b = _signature(loop, 1), _signature(loop, 2)
    assert a[0] == b[0] == tokentrie.DONE and a[1:] != b[1:]
    quote = loop.copy()
    quote[1, 0x22] = 2  # bytes equal to skip_sym are not part of the signature
    assert _signature(quote, 1) == a
    chain = np.zeros((12, 257), np.int32)
    for q in range(1, 11):
        chain[q, 97] = q + 1
    assert _signature(chain, 1, limit=5)[0] == -2
    assert _signature(chain, 1, limit=20)[0] == tokentrie.DONE


@settings(deadline=None)  # the first call may compile the kernel
@given(st.lists(st.integers(0, 30), max_size=40), st.lists(st.integers(-1, 50), min_size=31, max_size=31),
       st.integers(0, 50))
def test_mirror_row_gathers_pads_and_counts_missing(r: list[int], ids: list[int], width: int) -> None:
    rr, ii = np.array(r, np.int32), np.array(ids, np.int32)
    out = np.full(width, 7, np.int32)
    miss = tokentrie.mirror_row(rr, ii, out)
    k = min(len(r), width)
    assert out[:k].tolist() == ii[rr[:k]].tolist() and not out[k:].any()
    assert miss == int((ii[rr[:k]] < 0).sum())


@settings(deadline=None)
@given(st.lists(st.integers(0, 30), max_size=40), st.lists(st.sampled_from([-1, 0, 3, 9]), min_size=31, max_size=31))
def test_missing_targets_lists_each_unmapped_target_once(r: list[int], ids: list[int]) -> None:
    rr, ii = np.array(r, np.int32), np.array(ids, np.int32)
    before = ii.copy()
    out = np.zeros(len(r), np.int32)
    k = tokentrie.missing_targets(rr, ii, out)
    want = list(dict.fromkeys(v for v in r if ids[v] < 0))  # distinct, first-seen order
    assert out[:k].tolist() == want
    assert ii.tolist() == before.tolist()  # the marks it uses are restored


def _seen_walk(table: np.ndarray, start: int, trie: tokentrie.TokenTrie, width: int) -> tuple[np.ndarray, np.ndarray]:
    """trie_walk over a complete table, recording: the tokens and ``start`` with the states reached."""
    out = np.zeros((width + 31) // 32, np.uint32)
    n = table.shape[0]
    seen, vis, count = np.zeros(n, bool), np.zeros(n, np.int32), np.zeros(1, np.int64)
    status, _ = tokentrie.trie_walk(table, np.ones(n, bool), start, trie.sym, trie.depth, trie.skip, trie.tok,
                                    trie.dup, width, out, np.zeros(trie.max_depth + 2, np.int32), 0,
                                    np.ones(257, bool), np.ones(n, np.int8), np.zeros(8, np.int64),
                                    np.zeros(1, np.int64), seen, vis, count)
    assert status == tokentrie.DONE
    assert set(vis[: int(count[0])].tolist()) == set(np.flatnonzero(seen).tolist())  # listed once each
    assert int(count[0]) == np.count_nonzero(seen)
    seen[start] = True
    return out, seen


@settings(max_examples=150, deadline=None)
@given(dfa_and_vocab())
def test_same_region_implies_same_tokens(case: tuple[np.ndarray, list[bytes]]) -> None:
    """A recording trie walk allows what a per-token walk allows and marks every state a token
    passes; a state that same_region says walks as another allows exactly its tokens."""
    table, tokens = case
    trie = tokentrie.build_trie(*_tables(tokens))
    width = len(tokens)
    n = table.shape[0]
    phi, queue = np.full(n, -1, np.int32), np.zeros(n, np.int32)
    for a in range(1, n):
        words, seen = _seen_walk(table, a, trie, width)
        assert _bits(words) == _expected(table, a, tokens, width)
        passed = {a}
        for tok in tokens:
            q = a
            for c in tok:
                q = int(table[q, c])
                if not q:
                    break
                passed.add(q)
        assert set(np.flatnonzero(seen).tolist()) == passed
        for b in range(1, n):
            if tokentrie.same_region(table, a, seen, b, phi, queue):
                assert _expected(table, b, tokens, width) == _bits(words), (a, b)
            assert (phi == -1).all()


def test_same_region_follows_a_counter_until_its_end() -> None:
    """A word counter (state 2k: in word k, 2k+1: after it; at most 5 words): tokens of one word
    and a space walk from word k as from word k-1 while the end is out of their reach."""
    words = 5
    n = 2 * words + 1
    table = np.zeros((n, 257), np.int32)
    for k in range(words):
        w, sp = 2 * k + 1, 2 * k + 2  # rows 1.. (0 dead)
        table[w, ord("a")] = w
        if k + 1 < words:
            table[w, ord(" ")] = sp
            table[sp, ord(" ")] = sp
            table[sp, ord("a")] = 2 * k + 3
    tokens = [b"a", b"aa", b" a", b" ", b"a a"]
    trie = tokentrie.build_trie(*_tables(tokens))
    phi, queue = np.full(n, -1, np.int32), np.zeros(n, np.int32)
    _, seen = _seen_walk(table, 1, trie, len(tokens))
    assert tokentrie.same_region(table, 1, seen, 3, phi, queue)  # word 0 and word 1: far from the end
    assert not tokentrie.same_region(table, 1, seen, 9, phi, queue)  # word 4 cannot read a space
    assert _expected(table, 9, tokens, len(tokens)) != _expected(table, 1, tokens, len(tokens))
