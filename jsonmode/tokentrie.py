"""Compiled token-trie walks: the cold-mask hot path on the CPU.

A state's mask is the set of tokens whose whole symbol string keeps the DFA alive.  The
vocabulary is laid out once as a trie in preorder (llguidance's TokTrie idea): node ``i``
holds one symbol, its depth, the index just past its subtree (``skip``) and the token
that ends there.  A walk from a DFA state visits the nodes in order, keeps the DFA state of
every depth on a small stack and jumps over a whole subtree as soon as the DFA dies, so a
state that allows a few bytes touches a few hundred nodes, and the inside of a free string
(everything alive) touches each node once.

The loops are compiled with numba (no per-token Python, no temporaries).  The DFA is built
lazily, so a walk can meet a state whose row does not exist yet: it then returns that state
with its position, the caller builds the row in Python and calls again; the stack array
carries the walk across calls.  Without numba, :data:`AVAILABLE` is False and
:mod:`jsonmode.automaton` keeps its vectorised numpy path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

numba: ModuleType | None
try:  # numba is a core dependency; the numpy path stays for platforms it does not support
    if os.environ.get("JSONMODE_NUMBA", "") == "0":
        raise ImportError("disabled by JSONMODE_NUMBA=0")
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised through JSONMODE_NUMBA=0
    numba = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "TokenTrie", "build_trie", "trie_walk", "list_walk", "signature", "mirror_row", "mirror_rows",
           "missing_targets", "same_region"]

DONE = -1  # status of a finished walk; any status >= 0 is a state whose row must be built first


def _njit(fn: Any) -> Any:
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


@dataclass(frozen=True)
class TokenTrie:
    """The vocabulary (with its special symbols) as a preorder trie of symbols."""

    sym: np.ndarray  # int32 (n,): symbol on the edge into node i
    depth: np.ndarray  # int32 (n,): depth of node i (0 = a first symbol)
    skip: np.ndarray  # int32 (n,): first node after i's subtree
    tok: np.ndarray  # int32 (n,): a token ending at node i, or -1
    dup: np.ndarray  # int32 (V,): next token with the same symbols, or -1
    max_depth: int
    node_start: np.ndarray  # int64 (n + 1,): the tokens ending at nodes i.. are node_toks[node_start[i]:]
    node_toks: np.ndarray  # int64: every token, in node order (a subtree's tokens are one slice)


@_njit
def _skip_pointers(depth: np.ndarray) -> np.ndarray:
    n = depth.shape[0]
    skip = np.empty(n, np.int32)
    stack = np.empty(n + 1, np.int32)
    top = 0
    for j in range(n):
        while top > 0 and depth[stack[top - 1]] >= depth[j]:
            top -= 1
            skip[stack[top]] = j
        stack[top] = j
        top += 1
    for k in range(top):
        skip[stack[k]] = n
    return skip


@_njit
def _trie_nodes(order: np.ndarray, buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                n_tok: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    total = 0
    for k in range(order.shape[0]):
        total += lengths[order[k]]
    sym = np.empty(total, np.int32)
    depth = np.empty(total, np.int32)
    tok = np.full(total, -1, np.int32)
    dup = np.full(n_tok, -1, np.int32)
    n = 0
    prev = -1
    for k in range(order.shape[0]):
        t = order[k]
        a, m = offsets[t], lengths[t]
        lcp = 0
        if prev >= 0:
            pa, pm = offsets[prev], lengths[prev]
            lim = min(m, pm)
            while lcp < lim and buf[a + lcp] == buf[pa + lcp]:
                lcp += 1
            if lcp == m and m == pm:  # same symbols as the previous token: chain it there
                dup[t] = dup[prev]
                dup[prev] = t
                continue
        for j in range(lcp, m):
            sym[n] = buf[a + j]
            depth[n] = j
            n += 1
        tok[n - 1] = t
        prev = t
    return sym[:n], depth[:n], tok[:n], dup


@_njit
def _node_tokens(tok: np.ndarray, dup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = tok.shape[0]
    start = np.zeros(n + 1, np.int64)
    for i in range(n):
        c = 0
        t = tok[i]
        while t >= 0:
            c += 1
            t = dup[t]
        start[i + 1] = start[i] + c
    toks = np.empty(start[n], np.int64)
    for i in range(n):
        k = start[i]
        t = tok[i]
        while t >= 0:
            toks[k] = t
            k += 1
            t = dup[t]
    return start, toks


def build_trie(buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> TokenTrie:
    """Trie of every token with ``lengths > 0`` (symbols in ``buf[offsets[t]:offsets[t] + lengths[t]]``)."""
    ids = np.flatnonzero(lengths > 0)
    # sort by symbol string: lexicographic over a padded matrix (-1 pads sort first)
    width = int(lengths.max(initial=1))
    mat = np.full((ids.size, width), -1, np.int64)
    ln = lengths[ids].astype(np.int64)
    rows = np.repeat(np.arange(ids.size), ln)
    cols = np.arange(int(ln.sum())) - np.repeat(np.cumsum(ln) - ln, ln)
    mat[rows, cols] = buf[np.repeat(offsets[ids], ln) + cols]
    order = ids[np.lexsort(mat.T[::-1])].astype(np.int64)
    sym, depth, tok, dup = _trie_nodes(order, buf, offsets.astype(np.int64), lengths.astype(np.int64),
                                       lengths.shape[0])
    skip = _skip_pointers(depth)
    node_start, node_toks = _node_tokens(tok, dup)
    return TokenTrie(sym, depth, skip, tok, dup, int(depth.max(initial=0)) + 1, node_start, node_toks)


CLASSIFY = -3  # status: the state after the quote at node ``pos`` must be classified in ``stop`` first
_QUOTE = 0x22


@_njit
def trie_walk(table: np.ndarray, expanded: np.ndarray, start: int, sym: np.ndarray, depth: np.ndarray,
              skip: np.ndarray, tok: np.ndarray, dup: np.ndarray, width: int, out: np.ndarray,
              stack: np.ndarray, pos: int, roots: np.ndarray, stop: np.ndarray, stops: np.ndarray,
              n_stops: np.ndarray, seen: np.ndarray, vis: np.ndarray, n_vis: np.ndarray) -> tuple[int, int]:
    """Set in ``out`` (uint32 words) the bit of every token alive from ``start``, and record every
    state the walk reaches (see :func:`_visit`; an empty ``seen`` records nothing).

    Only tokens whose first symbol ``f`` has ``roots[f]`` are walked.  A quote that leads to a
    state with ``stop`` 2 (the inside of a string whose tokens the caller takes from tables)
    is not descended: its node and that state go to ``stops`` (pairs, ``n_stops[0]`` of them)
    for the caller to settle its subtree; ``stop`` 0 (not classified yet) returns
    ``(CLASSIFY, i)``.  Returns ``(DONE, n)`` or ``(state, i)``: row ``state`` must be built,
    then call again with ``pos=i`` and the same ``stack``.
    """
    n = sym.shape[0]
    i = pos
    if i == 0:
        stack[0] = start
    while i < n:
        d = depth[i]
        if d == 0 and not roots[sym[i]]:
            i = skip[i]
            continue
        q = stack[d]
        if not expanded[q]:
            return q, i
        st = table[q, sym[i]]
        if st == 0:
            i = skip[i]
            continue
        stack[d + 1] = st
        if st < seen.shape[0] and not seen[st]:
            _visit(st, seen, vis, n_vis)
        t = tok[i]
        while t >= 0:
            if t < width:
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            t = dup[t]
        if sym[i] == _QUOTE and skip[i] > i + 1:
            if st >= stop.shape[0] or stop[st] == 0:
                return CLASSIFY, i
            k = n_stops[0]
            if stop[st] == 2 and 2 * k + 1 < stops.shape[0]:
                stops[2 * k] = i
                stops[2 * k + 1] = st
                n_stops[0] = k + 1
                i = skip[i]
                continue
        i += 1
    return DONE, n


@_njit
def _visit(st: int, seen: np.ndarray, vis: np.ndarray, n_vis: np.ndarray) -> None:
    """Mark ``st`` in ``seen`` and list it in ``vis`` (``n_vis[0]`` counts on past its end: the
    caller then knows the list is incomplete and clears ``seen`` whole)."""
    seen[st] = True
    k = n_vis[0]
    if k < vis.shape[0]:
        vis[k] = st
    n_vis[0] = k + 1


@_njit
def same_region(table: np.ndarray, a: int, seen: np.ndarray, b: int, phi: np.ndarray, queue: np.ndarray) -> bool:
    """Whether every trie walk from ``b`` goes as the one from ``a`` went (so both allow the same
    tokens), given ``seen``: ``a`` and the states the walk from it reached (see :func:`_visit`).

    Maps each seen state ``v`` to the state ``phi[v]`` the same path reaches from ``b``, and
    checks that every byte dead from ``v`` is dead from ``phi[v]`` and that every byte into a
    seen state leads, from ``phi[v]``, where the map says.  A byte from ``v`` into an unseen
    state is read at no trie node where the walk was at ``v`` (it would have seen it), so it is
    not read from ``phi[v]`` either.  Exact on the safe side: a dead byte that no token reads
    there still counts as a difference.  ``phi`` (one int32 per state, all -1) is restored.
    """
    phi[a] = b
    queue[0] = a
    size = 1
    same = True
    i = 0
    while i < size and same:
        v = queue[i]
        pv = phi[v]
        for c in range(table.shape[1]):
            w = table[v, c]
            w2 = table[pv, c]
            if w == 0:
                if w2 != 0:
                    same = False
                    break
            elif seen[w]:
                if w2 == 0:
                    same = False
                    break
                if phi[w] < 0:
                    phi[w] = w2
                    queue[size] = w
                    size += 1
                elif phi[w] != w2:
                    same = False
                    break
        i += 1
    for k in range(size):
        phi[queue[k]] = -1
    return same


@_njit
def list_walk(table: np.ndarray, expanded: np.ndarray, start: int, ids: np.ndarray, buf: np.ndarray,
              offsets: np.ndarray, lengths: np.ndarray, width: int, out: np.ndarray,
              pos: int, seen: np.ndarray, vis: np.ndarray, n_vis: np.ndarray) -> tuple[int, int]:
    """Like :func:`trie_walk` for the listed tokens only (e.g. those containing a quote)."""
    k = pos
    while k < ids.shape[0]:
        t = ids[k]
        a = offsets[t]
        q = start
        for j in range(lengths[t]):
            if not expanded[q]:
                return q, k
            q = table[q, buf[a + j]]
            if q == 0:
                break
            if q < seen.shape[0] and not seen[q]:
                _visit(q, seen, vis, n_vis)
        if q != 0 and t < width:
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        k += 1
    return DONE, k


@_njit
def set_bits(out: np.ndarray, ids: np.ndarray) -> None:
    """Set the bits of token ``ids`` in packed uint32 words ``out``."""
    for k in range(ids.shape[0]):
        t = ids[k]
        out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@_njit
def clear_bits(out: np.ndarray, ids: np.ndarray) -> None:
    """Clear the bits of token ``ids`` in packed uint32 words ``out``."""
    for k in range(ids.shape[0]):
        t = ids[k]
        out[t >> 5] &= ~(np.uint32(1) << np.uint32(t & 31))


@_njit
def mirror_row(r: np.ndarray, ids: np.ndarray, out: np.ndarray) -> int:
    """``out = ids[r]``, zero past ``r``: an embedded automaton's row in the outer one's ids.

    Returns how many entries are -1 (inner states with no outer state yet), so the caller
    knows in the same pass whether it must create states; one call instead of numpy's
    gather, min and pad (~2 us of a ~3 us row at every nesting level of a cold mask).
    """
    k = min(r.shape[0], out.shape[0])
    miss = 0
    for i in range(k):
        v = ids[r[i]]
        out[i] = v
        if v < 0:
            miss += 1
    for i in range(k, out.shape[0]):
        out[i] = 0
    return miss


@_njit
def mirror_rows(rows: np.ndarray, ids: np.ndarray, js: np.ndarray, table: np.ndarray) -> None:
    """``table[js[i]] = ids[rows[i]]`` (zero past ``rows``' width is left as it is): the rows of an
    embedded automaton's states in the outer one's ids, written in place (no gathered temporary,
    no fancy-indexed assignment: ~25 us of a 32-state format automaton's ~60 us mirror)."""
    w = min(rows.shape[1], table.shape[1])
    for i in range(js.shape[0]):
        j = js[i]
        for c in range(w):
            table[j, c] = ids[rows[i, c]]


@_njit
def missing_targets(r: np.ndarray, ids: np.ndarray, out: np.ndarray) -> int:
    """Write to ``out`` each distinct ``v`` in ``r`` with ``ids[v] < 0`` (first-seen order) and
    return how many: the inner states a mirrored row must create outer states for, without
    numpy's gather, compare, compress and a Python set (~4 us at each nesting level)."""
    k = 0
    for i in range(r.shape[0]):
        v = r[i]
        if ids[v] == -1:
            ids[v] = -2  # seen (restored below)
            out[k] = v
            k += 1
    for j in range(k):
        ids[out[j]] = -1
    return k


_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)


@_njit
def signature(table: np.ndarray, expanded: np.ndarray, start: int, limit: int, skip_sym: int,
              queue: np.ndarray, ids: np.ndarray) -> tuple[int, np.uint64, np.uint64]:
    """Canonical hash of the part of the DFA reachable from ``start`` on bytes other than ``skip_sym``.

    States are numbered in the order a breadth-first walk meets them, bytes in order, so
    the hash does not depend on the ids a lazy DFA happened to give its states.  Returns
    ``(DONE, h1, h2)``; ``(-2, 0, 0)`` when more than ``limit`` states are reachable;
    ``(state, 0, 0)`` when that row must be built first.  ``ids`` (one int32 per DFA state,
    all -1) is restored before returning.
    """
    h1 = np.uint64(0x243F6A8885A308D3)
    h2 = np.uint64(0x13198A2E03707344)
    queue[0] = start
    ids[start] = 0
    size = 1
    status = DONE
    i = 0
    while i < size:
        q = queue[i]
        if not expanded[q]:
            status = q
            break
        for b in range(256):
            if b == skip_sym:
                continue
            v = table[q, b]
            c = -1
            if v != 0:
                c = ids[v]
                if c < 0:
                    if size >= limit:
                        status = -2
                        break
                    c = size
                    ids[v] = c
                    queue[size] = v
                    size += 1
            x = np.uint64(c + 2)
            h1 = (h1 ^ x) * _M1
            h2 = (h2 + x) * _M2
            h2 ^= h2 >> np.uint64(29)
        if status != DONE:
            break
        i += 1
    for k in range(size):
        ids[queue[k]] = -1
    if status != DONE:
        return status, np.uint64(0), np.uint64(0)
    return DONE, h1, h2


def warm() -> None:
    """Compile (or load from numba's cache) every walk with the argument types the automaton uses.

    Called when a vocabulary's tables are built, so the one-off JIT cost lands there and not
    in the first mask of the first schema.
    """
    if not AVAILABLE:
        return
    table = np.zeros((2, 257), np.int32)
    expanded = np.ones(2, bool)
    i32 = np.zeros(1, np.int32)
    trie_walk(table, expanded, 1, i32, i32, i32 + 1, i32 - 1, i32 - 1, 1, np.zeros(1, np.uint32),
              np.zeros(4, np.int32), 0, np.ones(257, bool), np.ones(2, np.int8), np.zeros(8, np.int64),
              np.zeros(1, np.int64), np.zeros(2, bool), np.zeros(2, np.int32), np.zeros(1, np.int64))
    list_walk(table, expanded, 1, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64),
              np.ones(1, np.int32), 1, np.zeros(1, np.uint32), 0, np.zeros(2, bool), np.zeros(2, np.int32),
              np.zeros(1, np.int64))
    set_bits(np.zeros(1, np.uint32), np.zeros(1, np.int64))
    clear_bits(np.zeros(1, np.uint32), np.zeros(1, np.int64))
    mirror_row(np.zeros(2, np.int32), np.zeros(1, np.int32), np.zeros(2, np.int32))
    missing_targets(np.zeros(2, np.int32), np.zeros(1, np.int32), np.zeros(2, np.int32))
    mirror_rows(np.zeros((1, 2), np.int32), np.zeros(1, np.int32), np.zeros(1, np.int32), table)
    signature(table, expanded, 1, 4, 0x22, np.zeros(5, np.int32), np.full(2, -1, np.int32))
    seen = np.zeros(2, bool)
    same_region(table, 1, seen, 1, np.full(2, -1, np.int32), np.zeros(2, np.int32))
