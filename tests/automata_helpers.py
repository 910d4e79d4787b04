"""Independent oracles for the core tests: a reference matcher for fsm ASTs, a DFA text sampler,
brute-force token masks and a token-by-token walker.

Everything here is deliberately naive (plain Python loops over positions, bytes and tokens) so it
shares no code path with the vectorised implementation under test.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import numpy as np

from jsonmode.fsm import DFA, EMPTY, NEVER, Alt, DfaNode, Graph, Node, Repeat, Seq, Sym

# --------------------------------------------------------------------------- AST reference matcher


def ends(node: Node, s: tuple[int, ...], i: int) -> frozenset[int]:
    """Every j such that ``s[i:j]`` is in the language of ``node`` (backtracking-free set semantics)."""
    if node is EMPTY:
        return frozenset((i,))
    if node is NEVER:
        return frozenset()
    if isinstance(node, Sym):
        return frozenset((i + 1,)) if i < len(s) and (node.mask >> s[i]) & 1 else frozenset()
    if isinstance(node, Seq):
        cur = frozenset((i,))
        for it in node.items:
            cur = frozenset().union(*(ends(it, s, k) for k in cur)) if cur else cur
        return cur
    if isinstance(node, Alt):
        return frozenset().union(*(ends(it, s, i) for it in node.items))
    if isinstance(node, Repeat):
        cur = frozenset((i,))
        for _ in range(node.lo):
            cur = frozenset().union(*(ends(node.item, s, k) for k in cur)) if cur else cur
        out = set(cur)
        frontier = set(cur)
        extra = 0
        while frontier and (node.hi is None or extra < node.hi - node.lo):
            nxt = set().union(*(ends(node.item, s, k) for k in frontier))
            extra += 1
            frontier = nxt - out if node.hi is None else nxt
            out |= nxt
        return frozenset(out)
    if isinstance(node, Graph):
        seen = {(node.start, i)}
        todo = [(node.start, i)]
        while todo:
            u, k = todo.pop()
            for a, b, x in node.edges:
                if a != u:
                    continue
                for j in ends(x, s, k):
                    if (b, j) not in seen:
                        seen.add((b, j))
                        todo.append((b, j))
        return frozenset(k for u, k in seen if u in node.finals)
    if isinstance(node, DfaNode):
        out = set()
        st = 0
        if node.dfa.accept[0]:
            out.add(i)
        for j in range(i, len(s)):
            st = node.dfa.step(st, s[j])
            if st < 0:
                break
            if node.dfa.accept[st]:
                out.add(j + 1)
        return frozenset(out)
    raise TypeError(node)


def ref_matches(node: Node, data: bytes | Iterable[int]) -> bool:
    s = tuple(data)
    return len(s) in ends(node, s, 0)


# --------------------------------------------------------------------------- DFA sampling


def _class_symbols(dfa: DFA, limit: int = 256) -> list[np.ndarray]:
    cm = dfa.classmap[:limit]
    return [np.flatnonzero(cm == c) for c in range(dfa.trans.shape[1])]


def sample_texts(dfa: DFA, n: int, *, seed: int = 0, max_len: int = 300, p_stop: float = 0.35) -> list[bytes]:
    """Random members of the (byte) language of ``dfa``: random walks that head for acceptance.

    After ``max_len // 2`` bytes every step strictly shortens the distance to an accepting state, so
    each walk ends.  Returns fewer than ``n`` texts only if the language is empty.
    """
    d = dfa.trim()
    if d.is_empty():
        return []
    syms = _class_symbols(d)
    # distance to acceptance: Bellman-Ford rounds over byte edges, vectorised
    usable = np.array([s.size > 0 for s in syms], bool)
    trans = np.where((d.trans >= 0) & usable[None, :], d.trans, -1)
    big = 10**9
    dist = np.where(d.accept, 0, big).astype(np.int64)
    while True:
        via = np.where(trans >= 0, dist[np.maximum(trans, 0)] + 1, big).min(axis=1, initial=big)
        nxt = np.minimum(dist, via)
        if (nxt == dist).all():
            break
        dist = nxt
    rng = random.Random(seed)
    out: list[bytes] = []
    for _ in range(n):
        s, buf = 0, bytearray()
        while True:
            moves = [(c, t) for c, t in enumerate(trans[s].tolist()) if t >= 0]
            if d.accept[s] and (not moves or rng.random() < p_stop):
                break
            if len(buf) >= max_len // 2:
                moves = [(c, t) for c, t in moves if dist[t] < dist[s]]
                if not moves:  # only at an accepting state (distance 0): past the soft length, stop here
                    break
            c, t = rng.choice(moves)
            buf.append(int(rng.choice(syms[c].tolist())))
            s = t
        out.append(bytes(buf))
    return out


def random_prefixes(dfa: DFA, n: int, *, seed: int = 0, max_steps: int = 60) -> list[tuple[int, bytes]]:
    """(state, prefix) pairs reached by random byte walks from the start of a trimmed DFA.

    Every prefix can still be completed to a member (the DFA is trimmed), so the states are exactly
    the ones a constrained decoder visits.
    """
    d = dfa.trim()
    rng = random.Random(seed)
    syms = _class_symbols(d)
    found: list[tuple[int, bytes]] = []
    for _ in range(n):
        s, buf = 0, bytearray()
        for _ in range(rng.randrange(max_steps)):
            moves = [(c, t) for c, t in enumerate(d.trans[s].tolist()) if t >= 0 and syms[c].size]
            if not moves:
                break
            c, t = rng.choice(moves)
            buf.append(int(rng.choice(syms[c].tolist())))
            s = t
        found.append((s, bytes(buf)))
    return found


# --------------------------------------------------------------------------- token level


def brute_force_allowed(dfa: DFA, state: int, vocab: Any, token_ids: Iterable[int]) -> set[int]:
    """{t : t's bytes walked from ``state`` of the trimmed eager ``dfa`` stay alive} + EOS if accepting.

    A plain Python loop over tokens and bytes: shares nothing with the vectorised mask code.
    """
    eos = set(vocab.eos_ids)
    out = set()
    for t in token_ids:
        t = int(t)
        if t in eos:
            if dfa.accept[state]:
                out.add(t)
            continue
        data = vocab.token_bytes[t]
        if not data or t in vocab.special_ids:
            continue
        st = state
        for b in data:
            st = dfa.step(st, b)
            if st < 0:
                break
        if st >= 0:
            out.add(t)
    return out


def walk_tokens(ta: Any, ids: Iterable[int], state: int | None = None) -> int:
    """State after feeding ``ids`` one by one through the mask + advance API; -1 on a refused token."""
    state = ta.initial_state if state is None else state
    for t in ids:
        if not ta.allows(state, t):
            return -1
        nxt = ta.advance(state, t)
        assert nxt >= 0, f"token {t} is in the mask of state {state} but advance() refuses it"
        state = nxt
    return state


def token_walk_accepts(ta: Any, tokenizer: Any, text: str) -> bool:
    """Tokenize ``text`` (no special tokens) and walk it token by token; True iff it ends accepting."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ta.vocab.decode(ids) == text.encode(), "tokenizer does not round-trip this text"
    st = walk_tokens(ta, ids)
    return st >= 0 and ta.is_accepting(st)
