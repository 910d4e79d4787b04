"""Token-level automaton: a byte DFA lifted onto a real vocabulary.

For each DFA state we need the set of token ids whose whole byte string keeps the
DFA alive.  That is computed vectorised over the vocabulary (numpy), never with a
Python loop over tokens:

* tokens are grouped by first symbol, so a state that allows two bytes only looks at
  the few thousand tokens starting with them;
* tokens made only of symbols on which the state loops back to itself (the inside of
  a free string) are accepted in bulk with a bitset test;
* the rest walk the DFA together, one gather per byte position, dropping dead rows.

Masks are packed like xgrammar's and llguidance's: ``ceil(width/32)`` int32 words,
bit ``i % 32`` of word ``i // 32`` set when token ``i`` is allowed.  The mask table
is one 2-D array so a GPU copy is a single upload.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import tokentrie
from .errors import AutomatonTooLarge, TokenRejectedError
from .fsm import (
    DFA,
    NO_BOUND,
    PAIR,
    SHARED_AUTOMATA,
    CountedDFA,
    CounterDFA,
    LazyDFA,
    Node,
    StringsDFA,
    char_final,
    char_phases,
    lockstep_gates,
    time_limit,
)
from .regex import canonical_key_char
from .tokentrie import TokenTrie
from .vocab import Vocabulary

_BULK_THRESHOLD = 4096  # candidate count above which the self-loop bulk test pays off
_INTERIOR_MIN_BYTES = 32  # live first bytes from which a state may be a string interior
_SIGNATURE_LIMIT = 80  # states a string-interior signature may span
_WORD_BITS = 32
_COUNTED_LIST_MAX = 32  # edge tokens of a counted string stepped in Python (more: the compiled list walk)
_BLOCK_SHIFT = 6  # masks are stored in blocks of 64 rows (1 MB at a 128k vocabulary)
_BLOCK = 1 << _BLOCK_SHIFT
_BLOCK_LOW = _BLOCK - 1
_MIRROR_LEVELS = 16  # embedded-automaton levels a state's mask is looked up and kept at
_PATTERN_WITNESSES = 2  # latest pattern walks a new pattern state is compared with (0: none)
_WITNESS_STATES = 1024  # states a kept pattern walk may have reached (bounds each comparison)
_SHARED_MASKS_MAX = 4_096  # kept masks of shared automata per vocabulary (64 MB at a 128k vocabulary)
_PREFAULT_ROWS = 1024  # mask rows touched when warming runs out of time (16 MB at a 128k vocabulary)
_SUFFIX_TRIE = True  # (False: the token-by-token list walk, what tests compare with)
_CLEAR_LIMIT = 16_384  # tokens a bounded string's mask clears from the unbounded one before a cached pack pays


@dataclass(frozen=True)
class _TokenTables:
    """Per-(vocabulary, special symbols) arrays, shared by every automaton over them."""

    buf: np.ndarray  # int64: all tokens' symbols back to back (CSR data)
    offsets: np.ndarray  # int64 (V,): start of each token in ``buf``
    lengths: np.ndarray  # int32 (V,); 0 = token can never be produced as text
    by_first: np.ndarray  # int32 token ids sorted by first symbol (length > 0 only)
    first_start: np.ndarray  # int64 (n_sym + 1,) offsets into by_first
    first_sorted: np.ndarray  # first symbol of each token in by_first order
    first: np.ndarray  # int64 (V,): first symbol of each token (n_sym when empty)
    tail_bytes: np.ndarray  # uint64 (V, 4): bitset of the byte values after each token's first symbol
    has_special: np.ndarray  # bool (V,): token is a special-symbol token
    has_quote: np.ndarray  # bool (V,): token contains '"' or is a special symbol
    token_syms: list[Any]  # per-token bytes (or symbol tuple for specials) for cheap CPU advance
    n_sym: int
    max_len: int
    # masks of "string interior" sub-automata, shared by every schema over this vocabulary
    interior: dict[bytes, np.ndarray] = field(default_factory=dict)
    # compiled path (numba): the vocabulary as a trie, and packed interiors by 128-bit signature
    trie: TokenTrie | None = None
    quote_ids: np.ndarray | None = None  # int64 ids of the tokens with a quote or a special symbol
    quote_trie: TokenTrie | None = None  # the same tokens (those with text) as a trie
    quote_words: np.ndarray | None = None  # the same, packed
    quote_index: np.ndarray | None = None  # int32 (V,): position of each token in quote_ids, -1 if none
    quote_first: np.ndarray | None = None  # int32 over quote_ids: index of the token's first quote (-1: none)
    first_words: np.ndarray | None = None  # (256, words) packed: the tokens whose first byte is b
    interior_words: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    # inside strings (bounded, free, keys): characters each quote-free token starts from each
    # phase of a character DFA (-1 = dies), and the packed "starts at most r" masks made from them
    char_costs: dict[tuple[bytes, int], np.ndarray] = field(default_factory=dict)
    counter_words: dict[tuple[bytes, int, int], np.ndarray] = field(default_factory=dict)
    # per (character DFA, phase): the unbounded mask, its tokens by characters started (most
    # first) and minus those counts, so a room's mask is the unbounded one less a prefix
    room_tables: dict[tuple[bytes, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    # the same for the tokens with a quote: (characters started before the closing quote, index
    # of that quote) per (character DFA, phase), over ``quote_ids``
    quote_costs: dict[tuple[bytes, int, bool], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict)
    # what of those a string context needs whatever follows it (see ``_quote_orders``)
    quote_orders: dict[tuple[bytes, int, bool], tuple[np.ndarray, ...]] = field(default_factory=dict)
    # what a counted pattern walks of each of those tokens (see ``_quote_spans``)
    quote_spans: dict[tuple[bytes, int, bool], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict)
    # the same tokens' text after their closing quote as a trie (see ``_quote_suffix_trie``)
    quote_tries: dict[tuple[bytes, int, bool], tuple[Any, np.ndarray]] = field(default_factory=dict)
    # kept masks (see TokenAutomaton._keep_inner) of states of the automata every schema in the
    # process shares (free values: fsm.SHARED_AUTOMATA), by (width, automaton, state)
    shared_masks: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict)


# where a state reads inside a string: (character DFA, phase, room, counted pattern) (see _string_position)
_Position = tuple[DFA, int, "int | None", "tuple[CountedDFA, int, int] | None"]


def _grown(a: np.ndarray, n: int, fill: int) -> np.ndarray:
    """``a`` with room for ``n`` states (doubled, new entries ``fill``), or ``a`` itself."""
    if a.shape[0] >= n:
        return a
    g = np.full(max(n, 2 * a.shape[0]), fill, a.dtype)
    g[: a.shape[0]] = a
    return g


def _mode(values: np.ndarray) -> int | None:
    """Most common value (the smallest among ties); None for an empty array."""
    if not values.size:
        return None
    vals, counts = np.unique(values, return_counts=True)
    return int(vals[np.argmax(counts)])


_TABLES: dict[tuple[str, tuple[str, ...]], _TokenTables] = {}
_TABLES_LOCK = threading.Lock()


def token_tables(vocab: Vocabulary, specials: Sequence[str] = ()) -> _TokenTables:
    """Symbol data of the vocabulary; special token ``specials[i]`` becomes symbol ``256 + i``."""
    key = (vocab.fingerprint, tuple(specials))
    with _TABLES_LOCK:
        cached = _TABLES.get(key)
    if cached is not None:
        return cached
    V = vocab.size
    token_syms: list[Any] = list(vocab.token_bytes)
    lengths = np.fromiter(map(len, token_syms), dtype=np.int64, count=V)
    special_ids = np.fromiter(sorted(vocab.special_ids), dtype=np.int64, count=len(vocab.special_ids))
    if special_ids.size:
        lengths[special_ids[special_ids < V]] = 0
    has_special = np.zeros(V, bool)
    sym_of: dict[int, int] = {}
    for i, text in enumerate(specials):
        tid = vocab.special_id(text)
        if tid is None:
            raise ValueError(f"tokenizer has no single token {text!r}")
        sym_of[tid] = 256 + i
        token_syms[tid] = (256 + i,)
        lengths[tid] = 1
        has_special[tid] = True
    parts = [b if len(b) == n else b"" for b, n in zip(vocab.token_bytes, lengths.tolist(), strict=True)
             ] if special_ids.size else list(vocab.token_bytes)
    for tid in sym_of:
        parts[tid] = b"\0"
    buf = np.frombuffer(b"".join(parts), np.uint8).astype(np.int64)
    offsets = np.zeros(V, np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    for tid, sy in sym_of.items():
        buf[offsets[tid]] = sy
    n_sym = 256 + len(specials)
    valid = lengths > 0
    first = np.where(valid, buf[np.minimum(offsets, max(buf.size - 1, 0))], n_sym)
    by_first = np.argsort(first, kind="stable").astype(np.int32)
    counts = np.bincount(first, minlength=n_sym + 1)
    first_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    by_first = by_first[: first_start[n_sym]]
    # bitsets of the bytes after the first: 4 x 64-bit words (one bool matrix, packed)
    owner = np.repeat(np.arange(V), lengths)
    is_byte = buf < 256
    has_quote = np.zeros(V, bool)
    has_quote[owner[is_byte & (buf == 0x22)]] = True
    has_quote |= has_special
    tail = is_byte.copy()
    tail[offsets[lengths > 0]] = False
    present = np.zeros((V, 256), bool)
    present[owner[tail], buf[tail]] = True
    tail_bytes = np.packbits(present, axis=1, bitorder="little").view(np.uint64)
    compiled: dict[str, Any] = {}
    if tokentrie.AVAILABLE:  # what the compiled path reads, built here rather than in a first mask
        tokentrie.warm()
        quote_ids = np.flatnonzero(has_quote & (lengths > 0)).astype(np.int64)
        width = vocab.logits_width  # >= V, fixed by the fingerprint this cache is keyed on
        sole = np.flatnonzero((lengths > 0) & (first < 256))
        by_byte = np.zeros((256, -(-width // _WORD_BITS) * _WORD_BITS), bool)
        by_byte[first[sole], sole] = True
        first_words = np.packbits(by_byte, axis=1, bitorder="little").view(np.uint32)
        quote_index = np.full(V, -1, np.int32)
        quote_index[quote_ids] = np.arange(quote_ids.size, dtype=np.int32)
        at = np.flatnonzero(is_byte & (buf == 0x22))  # ascending: a token's first quote comes first
        tq, first_at = np.unique(owner[at], return_index=True)
        quote_first = np.full(quote_ids.size, -1, np.int32)
        quote_first[quote_index[tq]] = at[first_at] - offsets[tq]
        quoted = np.zeros_like(lengths)
        quoted[quote_ids] = lengths[quote_ids]
        compiled = {"trie": tokentrie.build_trie(buf, offsets, lengths), "quote_ids": quote_ids,
                    "quote_trie": tokentrie.build_trie(buf, offsets, quoted),
                    "quote_words": _pack(quote_ids, width), "first_words": first_words,
                    "quote_index": quote_index, "quote_first": quote_first}
    tables = _TokenTables(buf, offsets, lengths.astype(np.int32), by_first, first_start, first[by_first],
                          first, tail_bytes, has_special, has_quote, token_syms, n_sym,
                          int(lengths.max(initial=1)), **compiled)
    if compiled:  # the characters of bounded strings, free strings and keys, at each of their phases
        from .regex import ALL, canonical_key_char, char_dfa

        for char in (char_dfa(ALL), char_dfa(ALL, pairs=True), canonical_key_char()):
            ckey = _char_key(char)
            final = char_final(char)
            for phase in range(char.num_states):  # every phase: a mask mid-escape is a lookup too
                if phase != final:
                    _, _, neg = _room_tables(tables, char, ckey, phase, width)
                    room = 0
                    while neg.searchsorted(np.int64(-room), side="left") > _CLEAR_LIMIT:
                        _small_room(tables, char, ckey, phase, room, width)  # the rooms of short strings
                        room += 1
                    for after_first in (False, True):
                        _quote_orders(tables, char, ckey, phase, after_first)
                        _quote_suffix_trie(tables, char, ckey, phase, after_first)
    with _TABLES_LOCK:
        _TABLES[key] = tables
    return tables


def _pack(ids: np.ndarray, width: int) -> np.ndarray:
    """Packed uint32 mask (``ceil(width/32)`` words) with the bits of ``ids`` set."""
    bits = np.zeros(-(-width // _WORD_BITS) * _WORD_BITS, bool)
    bits[ids] = True
    return np.packbits(bits, bitorder="little").view(np.uint32)


def _char_key(char: DFA) -> bytes:
    key = char.__dict__.get("_token_key")
    if key is None:
        key = hashlib.sha1(char.trans.tobytes() + char.accept.tobytes() + char.classmap.tobytes()).digest()
        char.__dict__["_token_key"] = key
    return key


def _classes(t: _TokenTables, char: DFA) -> np.ndarray:
    """Class of each symbol of the vocabulary's tables in ``char`` (-1: none; index n_sym too)."""
    cm = np.full(t.n_sym + 1, -1, np.int64)
    cm[: min(char.classmap.shape[0], t.n_sym)] = char.classmap[: t.n_sym]
    return cm


def _char_costs(t: _TokenTables, char: DFA, ckey: bytes, phase: int) -> np.ndarray:
    """Characters each quote-free token starts when read from ``phase`` of ``char`` (-1: dies).

    ``char`` is a one-character DFA whose single final state folds back to its start (the
    characters of a :class:`~jsonmode.fsm.CounterDFA` or :class:`~jsonmode.fsm.StringsDFA`).
    Vectorised over the vocabulary, once per (vocabulary, character DFA, phase).
    """
    cost = t.char_costs.get((ckey, phase))
    if cost is not None:
        return cost
    final = char_final(char)
    assert final is not None
    cm = _classes(t, char)
    ids = np.flatnonzero((t.lengths > 0) & ~t.has_quote)
    if phase != char.start:  # mid-character (after a backslash, mid-UTF-8): only the few tokens whose
        live = np.zeros(t.n_sym + 1, bool)  # first byte goes on from here, so a rare phase is cheap
        cls = cm[:256]
        live[:256] = (cls >= 0) & (char.trans[phase, np.maximum(cls, 0)] >= 0)
        ids = ids[live[t.first[ids]]]
    ln = t.lengths[ids]
    order = np.argsort(-ln, kind="stable")
    ids, ln = ids[order], ln[order]
    off = t.offsets[ids]
    cur = np.full(ids.size, phase, np.int64)
    starts = np.zeros(ids.size, np.int32)
    alive = np.ones(ids.size, bool)
    trans = char.trans
    for j in range(int(ln[0]) if ln.size else 0):
        k = int(np.searchsorted(-ln, -j, side="left"))  # tokens longer than j sit first
        act = np.flatnonzero(alive[:k])
        if not act.size:
            break
        c = cur[act]
        cls = cm[t.buf[off[act] + j]]
        starts[act] += c == 0
        nxt = np.where(cls >= 0, trans[c, np.maximum(cls, 0)], -1)
        nxt[nxt == final] = 0
        alive[act] = nxt >= 0
        cur[act] = nxt
    cost = np.full(t.lengths.shape[0], -1, np.int32)
    cost[ids[alive]] = starts[alive]
    t.char_costs[(ckey, phase)] = cost
    return cost


def _room_tables(t: _TokenTables, char: DFA, ckey: bytes, phase: int,
                 width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(packed quote-free tokens alive from ``phase`` of ``char``, those token ids by characters
    started, most first, and minus those counts): the unbounded string mask and what a room
    takes off it."""
    got = t.room_tables.get((ckey, phase))
    if got is None:
        cost = _char_costs(t, char, ckey, phase)
        alive = np.flatnonzero(cost >= 0)
        order = alive[np.argsort(-cost[alive], kind="stable")]
        got = (_pack(alive, width), order.astype(np.int64), -cost[order].astype(np.int64))
        t.room_tables[(ckey, phase)] = got
    return got


def _small_room(t: _TokenTables, char: DFA, ckey: bytes, phase: int, room: int, width: int) -> np.ndarray:
    """Packed quote-free tokens starting at most ``room`` characters from ``phase`` (cached)."""
    words = t.counter_words.get((ckey, phase, room))
    if words is None:
        cost = _char_costs(t, char, ckey, phase)
        words = _pack(np.flatnonzero((cost >= 0) & (cost <= room)), width)
        t.counter_words[(ckey, phase, room)] = words
    return words


def _quote_costs(t: _TokenTables, char: DFA, ckey: bytes, phase: int,
                 after_first: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How each token with a quote reads inside a string, from ``phase`` of ``char``.

    Over ``t.quote_ids``: the characters the token starts before its closing quote (-1: it
    dies first), the index of that quote in the token, and that index less where the reading
    started (both -1 when every quote in it is escaped, so the token stays inside the string).
    A quote closes the string only between characters; after a backslash it is one.  With
    ``after_first`` the reading starts right after the token's first quote (a token that opens
    a string: its tail read from inside).  Vectorised over those ~1% of the vocabulary, once
    per (vocabulary, character DFA, phase, mode): what is left of a token after its closing
    quote no longer depends on where in the string it started.
    """
    got = t.quote_costs.get((ckey, phase, after_first))
    if got is not None:
        return got
    final = char_final(char)
    assert final is not None and t.quote_ids is not None and t.quote_first is not None
    cm = _classes(t, char)
    ids = t.quote_ids
    j0 = (t.quote_first.astype(np.int64) + 1) if after_first else np.zeros(ids.size, np.int64)
    ln = t.lengths[ids].astype(np.int64) - j0
    off = t.offsets[ids] + j0
    cur = np.full(ids.size, phase, np.int64)
    starts = np.zeros(ids.size, np.int32)
    rel = np.full(ids.size, -1, np.int64)
    alive = (t.quote_first >= 0) if after_first else np.ones(ids.size, bool)  # specials: no quote
    going = alive.copy()  # alive and not closed yet
    trans = char.trans
    start = char.start
    for j in range(int(ln.max(initial=0))):
        act = np.flatnonzero(going & (ln > j))
        if not act.size:
            break
        b = t.buf[off[act] + j]
        c = cur[act]
        shut = (c == start) & (b == 0x22)
        rel[act[shut]] = j
        going[act[shut]] = False
        act, b, c = act[~shut], b[~shut], c[~shut]
        cls = cm[b]
        starts[act] += c == start
        nxt = np.where(cls >= 0, trans[c, np.maximum(cls, 0)], -1)
        nxt[nxt == final] = start
        dead = act[nxt < 0]
        alive[dead] = False
        going[dead] = False
        cur[act] = nxt
    k = np.where(alive, starts, -1).astype(np.int32)
    close = np.where(rel >= 0, rel + j0, -1)
    got = (k, close, rel)
    t.quote_costs[(ckey, phase, after_first)] = got
    return got


def _quote_orders(t: _TokenTables, char: DFA, ckey: bytes, phase: int,
                  after_first: bool) -> tuple[np.ndarray, ...]:
    """The parts of a string context's quote tables that do not depend on what follows the
    string (cached per vocabulary, so a new context only walks what follows its closing quote).

    Over ``t.quote_ids``: the tokens that stay inside, by characters added (stable), and those
    counts; the tokens that close the string after at least one byte, in the same order, and
    those counts; and, for the suffix walk, the tokens that close it at all with where their
    text after the quote starts and how long it is.
    """
    key = (ckey, phase, after_first)
    got = t.quote_orders.get(key)
    if got is None:
        k, close, rel = _quote_costs(t, char, ckey, phase, after_first)
        assert t.quote_ids is not None
        inside = np.flatnonzero((k >= 0) & (rel < 0))
        inside = inside[np.argsort(k[inside], kind="stable")]
        shut = np.flatnonzero((rel > 0) & (k >= 0))
        shut = shut[np.argsort(k[shut], kind="stable")]
        qi = t.quote_ids
        walk = np.flatnonzero(close >= 0).astype(np.int64)
        offs = t.offsets[qi] + close + 1
        lens = (t.lengths[qi] - close - 1).astype(np.int32)
        got = (inside, k[inside].astype(np.int64), shut, k[shut].astype(np.int64), walk, offs, lens)
        t.quote_orders[key] = got
    return got


def _quote_suffix_trie(t: _TokenTables, char: DFA, ckey: bytes, phase: int,
                       after_first: bool) -> tuple[tokentrie.TokenTrie, np.ndarray]:
    """The text after the closing quote of each token that closes a string context at ``phase``,
    as a trie whose "tokens" are indices into ``quote_ids``, and those with no text after it.

    Each new context walks these from the state after its closing quote (:meth:`TokenAutomaton.
    _quote_suffix`); there only a few bytes live (``,`` ``}`` ``]``), and the trie drops a first
    byte's whole subtree at once where the token-by-token walk stepped each of ~1,300 tokens
    (~25 us a context).  Cached per vocabulary like the tables it is made from."""
    key = (ckey, phase, after_first)
    got = t.quote_tries.get(key)
    if got is None:
        walk, offs, lens = _quote_orders(t, char, ckey, phase, after_first)[4:]
        lengths = np.zeros(lens.shape[0], np.int64)
        lengths[walk] = lens[walk]
        got = tokentrie.build_trie(t.buf, offs, lengths), walk[lens[walk] == 0]
        t.quote_tries[key] = got
    return got


def _quote_spans(t: _TokenTables, char: DFA, ckey: bytes, phase: int,
                 after_first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over ``quote_ids``: the tokens alive inside the string from ``phase``, where the text they
    read there starts and how long it is, through the closing quote if any (what a counted
    pattern walks, per state; cached per vocabulary)."""
    key = (ckey, phase, after_first)
    got = t.quote_spans.get(key)
    if got is None:
        qi, qf = t.quote_ids, t.quote_first
        assert qi is not None and qf is not None
        k, close, _ = _quote_costs(t, char, ckey, phase, after_first)
        j0 = (qf.astype(np.int64) + 1) if after_first else np.zeros(qi.size, np.int64)
        end = np.where(close >= 0, close + 1, t.lengths[qi])
        got = (np.flatnonzero(k >= 0).astype(np.int64), t.offsets[qi] + j0,
               np.maximum(end - j0, 0).astype(np.int32))
        t.quote_spans[key] = got
    return got


def _ends_between_characters(d: StringsDFA) -> bool:
    """Every state between characters accepts, and no other: a free string, not a key that
    must avoid declared names (whether it may end then depends on what was written)."""
    got = d.__dict__.get("_ends_between")
    if got is None:
        assert d.phase is not None and d.char is not None
        seen = d.phase >= 0
        got = bool(np.array_equal(d.accept[seen], d.phase[seen] == d.char.start))
        d.__dict__["_ends_between"] = got
    return got


class _Visits:
    """States some compiled walks reached: a flag per state and their list, cleared state by
    state (a big automaton has ~10^5 states; a walk reaches tens)."""

    def __init__(self, room: int = 256, *, grow: bool = True) -> None:
        self.grow = grow  # (else ``room`` is a bound: a longer list is never taken)
        self.seen = np.zeros(64, bool)
        self.vis = np.zeros(room, np.int32)
        self.count = np.zeros(1, np.int64)

    def args(self, n_states: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The walk arguments, with a flag for each of ``n_states`` states."""
        self.seen = _grown(self.seen, n_states, 0)
        return self.seen, self.vis, self.count

    def take(self) -> np.ndarray | None:
        """The states listed since the last take, all cleared; None where the list overflowed."""
        k = int(self.count[0])
        self.count[0] = 0
        if k > self.vis.shape[0]:
            self.seen[:] = False
            if self.grow:
                self.vis = np.zeros(2 * k, np.int32)
            return None
        got = self.vis[:k].copy()
        self.seen[got] = False
        return got


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...], limit: int) -> int:
    """Length of the common prefix of ``a`` and ``b``, at most ``limit``."""
    head = a[:limit]
    if head == b[:limit]:  # (the usual answer, in C)
        return len(head)
    k = 0
    for x, y in zip(head, b, strict=False):
        if x != y:
            break
        k += 1
    return k


_NO_VISITS = (np.zeros(0, bool), np.zeros(0, np.int32), np.zeros(1, np.int64))  # (records nothing)


class TokenAutomaton:
    """A DFA over token ids: masks, advance, acceptance.  Thread-safe for reads."""

    def __init__(self, dfa: DFA | LazyDFA, vocab: Vocabulary, *, specials: Sequence[str] = (),
                 key: str = "") -> None:
        self.vocab = vocab
        self.specials = tuple(specials)
        self.key = key
        self.tables = token_tables(vocab, self.specials)
        n_sym = self.tables.n_sym
        if isinstance(dfa, DFA):
            dfa = LazyDFA.from_dfa(dfa.trim(), n_sym=n_sym)
        if dfa.n_sym != n_sym:
            raise ValueError(f"automaton uses {dfa.n_sym} symbols, vocabulary tables have {n_sym}")
        self.lazy = dfa
        self.width = vocab.logits_width
        self.num_words = (self.width + _WORD_BITS - 1) // _WORD_BITS
        self._inside_cache: dict[bytes, np.ndarray] = {}
        self._dead = 0
        self._eos = np.array(sorted(e for e in vocab.eos_ids if e < self.width), dtype=np.int64)
        self._row_arr = np.full(64, -1, np.int32)
        # masks live in fixed blocks of _BLOCK rows, never moved: a contiguous table doubled
        # as it grows copies all earlier masks at once (16 MB at 1,024 rows of a 128k
        # vocabulary), a 2 ms mask call here and 50 ms where fresh pages fault slowly (a VM)
        self._blocks: list[np.ndarray] = []
        self._n_rows = 0
        self._flat = np.zeros((0, self.num_words), np.int32)  # contiguous copy for mask_table
        self._flat_rows = 0
        self._lock = threading.RLock()
        self.initial_state = LazyDFA.start
        self.kernel = self.tables.trie is not None  # compiled trie walks (else the numpy path)
        self._stack = np.zeros(self.tables.max_len + 2, np.int32)
        self._sig_queue = np.zeros(_SIGNATURE_LIMIT + 1, np.int32)
        self._sig_ids = np.full(0, -1, np.int32)
        self._all_roots = np.ones(self.tables.n_sym + 1, bool)
        self._byte_roots = self._all_roots.copy()
        self._byte_roots[256:] = False  # (special symbols are whole tokens: always a root)
        self._pattern_quote_ok: dict[tuple[int, int, bool], np.ndarray] = {}  # (pattern, state, mode) -> over quote_ids
        self._pattern_cache: dict[tuple[int, int], np.ndarray] = {}  # (counted pattern, state) -> packed tokens
        # counted pattern -> its latest walks (state, states reached, packed tokens), newest first
        self._pattern_witnesses: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        self._pattern_alias: dict[tuple[int, int], int] = {}  # (counted pattern, state) -> the state it walks as
        self._inner_masks: dict[tuple[int, int], np.ndarray] = {}  # (embedded automaton, its state) -> mask
        self.inner_hits = 0  # masks taken from _inner_masks (a mirror state met again)
        self.shared_hits = 0  # ... of which kept by another automaton (free values: tables.shared_masks)
        self._mirror_levels = _MIRROR_LEVELS  # (0: masks are never kept: what tests compare with)
        self._visits = _Visits()  # states the walks of a recorded mask reached
        self._recording = False  # a mask that _keep_inner may keep is being computed
        self._record_ok = True
        self._record_extra: list[tuple[Any, ...]] = []  # _suffix_paths keys a recorded mask relied on
        self._suffix_visits = _Visits()  # (for _quote_suffix)
        self._pattern_visits = _Visits(_WITNESS_STATES, grow=False)  # (for _pattern_words)
        self._suffix_paths: dict[tuple[Any, ...], tuple[int, ...]] = {}  # _suffix_ok key -> its walk's common pure path
        self._pure_paths: dict[int, tuple[int, ...]] = {}  # state -> _pure_path
        self._chains: dict[tuple[int, int], tuple[tuple[int, int, int], ...]] = {}  # (automaton, state) -> _mirror_chain
        self._leaves: dict[tuple[int, int], Any] = {}  # (automaton, state) -> _string_leaf
        self._ctx_suffix: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # _quote_ctx key -> its _quote_suffix key
        self._quote_used: list[tuple[Any, ...]] = []  # _quote_suffix keys the last _quote_allowed relied on
        self._post_quote_ids: dict[tuple[Any, ...], int] = {}  # string context -> state after its closing quote
        self._suffix_ok: dict[tuple[int, bytes, int, bool], np.ndarray] = {}  # (q, char, phase, mode) -> ok
        self._close_here: dict[tuple[int, bytes, int, bool], np.ndarray] = {}  # the same -> closing at once
        self._quote_ctx: dict[tuple[Any, ...], Any] = {}
        # trie walks stop at quotes that open a string (2), or go on (1); 0: not asked yet
        self._stop = np.zeros(64, np.int8)
        # stop 2: what follows the quote, as in _quote_allowed, and the _quote_used it relied on
        self._opened: dict[int, tuple[list[np.ndarray], list[tuple[Any, ...]]]] = {}
        self._stops = np.zeros(2 * 4096, np.int64)
        self._go_on = np.ones(64, np.int8)  # (trie walks that never stop at a quote: _plain_trie_walk)
        self._n_stops = np.zeros(1, np.int64)

    # ------------------------------------------------------------------ lazy DFA plumbing

    @property
    def num_states(self) -> int:
        """States discovered so far (the DFA is built on demand)."""
        return self.lazy.n

    @property
    def _full(self) -> np.ndarray:
        return self.lazy.table

    @property
    def _accept(self) -> np.ndarray:
        return self.lazy.accept

    @property
    def _row_of(self) -> np.ndarray:
        if self._row_arr.shape[0] < self.lazy.n:  # checked inline: every warm mask comes here
            self._row_arr = _grown(self._row_arr, self.lazy.n, -1)
        return self._row_arr

    def _ensure(self, states: np.ndarray) -> None:
        exp = self.lazy.expanded
        todo = states[~exp[states]]
        if todo.size:
            self.lazy.expand(np.unique(todo).tolist())

    def expand_all(self) -> None:
        """Build every reachable DFA state (for eager mask tables, e.g. on a GPU)."""
        self.lazy.expand_all()

    # ------------------------------------------------------------------ queries

    def is_accepting(self, state: int) -> bool:
        return state >= 0 and bool(self._accept[state])

    def is_final(self, state: int) -> bool:
        """Accepting with nothing left to write: only EOS may follow."""
        if state <= 0 or not self._accept[state]:
            return False
        self._ensure(np.array([state]))
        return not bool(self._full[state].any())

    @property
    def eos_ids(self) -> np.ndarray:
        return self._eos

    def has_mask(self, state: int) -> bool:
        """Whether ``state``'s mask is computed already (a :meth:`mask` call is then a lookup)."""
        return 0 <= state < self.lazy.n and bool(self._row_of[state] >= 0)

    def mask(self, state: int) -> np.ndarray:
        """Packed allowed-token bitmask (int32 words) for ``state``; computed once, then cached."""
        row = self._row_of[state]
        if row < 0:
            return self._precompute_one(state)
        return self._blocks[row >> _BLOCK_SHIFT][row & _BLOCK_LOW]  # _row inlined: the warm path

    def _row(self, row: int) -> np.ndarray:
        return self._blocks[row >> _BLOCK_SHIFT][row & _BLOCK_LOW]

    def _new_rows(self, k: int) -> None:
        """Room for ``k`` more rows: new blocks (uninitialised; every row is written in full)."""
        while self._n_rows + k > len(self._blocks) << _BLOCK_SHIFT:
            self._blocks.append(np.empty((_BLOCK, self.num_words), np.int32))

    def _prefault(self, k: int) -> None:
        """Touch the next ``k`` mask rows now: a cold mask's first write to a fresh row faults its
        pages in (~8 µs of a 16 KB row on a VM), and a big schema's outputs meet hundreds."""
        self._new_rows(k)
        for block, off, _, n in self._spans(self._n_rows, k):
            block[off : off + n] = 0

    def _spans(self, first: int, n: int) -> Iterator[tuple[np.ndarray, int, int, int]]:
        """Rows ``first .. first + n`` as (block, offset in it, offset in the run, count)."""
        r, end = first, first + n
        while r < end:
            off = r & _BLOCK_LOW
            k = min(end - r, _BLOCK - off)
            yield self._blocks[r >> _BLOCK_SHIFT], off, r - first, k
            r += k

    def _put_rows(self, masks: np.ndarray) -> None:
        """Append ``masks`` (rows of packed words) after the rows stored so far."""
        self._new_rows(masks.shape[0])
        for block, off, i, k in self._spans(self._n_rows, masks.shape[0]):
            block[off : off + k] = masks[i : i + k]
        self._n_rows += masks.shape[0]

    def _precompute_one(self, state: int) -> np.ndarray:
        """:meth:`precompute` of one state, its mask computed in place (the decode loop's miss)."""
        if state <= 0 or not self.kernel:
            self.precompute([state])
            return self._row(int(self._row_of[state]))
        with self._lock:
            row = int(self._row_of[state])
            if row >= 0:
                return self._row(row)
            row = self._n_rows
            self._new_rows(1)
            words = self._row(row)
            out = words.view(np.uint32)
            out[:] = 0
            self._kernel_mask(state, out)
            self._row_of[state] = row
            self._n_rows = row + 1
            return words

    def warm(self, outputs: Iterable[Sequence[int]], seconds: float) -> int:
        """Compute the masks along each token sequence in ``outputs`` until it leaves the
        language or ``seconds`` have passed; returns the tokens walked.

        First visits are the slow mask calls; compiling walks example outputs (sketches of
        the schema) so the states real outputs share with them are a lookup by then.
        """
        deadline = time.perf_counter() + seconds
        walked = 0
        first = self._n_rows
        out_of_time = False
        try:
            for ids in outputs:
                s = self.initial_state
                for tid in ids:
                    if time.perf_counter() > deadline:
                        out_of_time = True  # (many more cold masks will come)
                        return walked
                    walked += 1
                    if not self.allows(s, tid):  # (computes the mask of s: the point of the walk)
                        break
                    s = self.advance(s, tid)
        except AutomatonTooLarge:
            pass  # an output reaching that far raises it again, named, where it happens
        finally:
            # rows for the cold masks still to come, touched now (see _prefault): as many again
            # as warming filled, a measure of how many states outputs meet
            self._prefault(_PREFAULT_ROWS if out_of_time else min(_PREFAULT_ROWS, self._n_rows - first))
        return walked

    def ensure_masks(self, states: Iterable[int]) -> None:
        """Compute the masks still missing for ``states`` (negative row markers are skipped)."""
        row_of = self._row_of
        need = [s for s in states if s > 0 and row_of[s] < 0]
        if need:
            self.precompute(need)

    @property
    def eos_words(self) -> np.ndarray:
        """Packed mask allowing only the EOS tokens (rows that finished or failed)."""
        words = self.__dict__.get("_eos_words")
        if words is None:
            words = _pack(self._eos, self.width).view(np.int32)
            self.__dict__["_eos_words"] = words
        return words

    def mask_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(row_of_state, masks) for every state computed so far; used by GPU mirrors.

        ``masks`` is one contiguous array, extended by the rows added since the last call
        (the per-token mask path never pays for it).
        """
        with self._lock:
            n, done = self._n_rows, self._flat_rows
            if n > done:
                if n > self._flat.shape[0]:
                    grown = np.empty((max(n, 2 * self._flat.shape[0], _BLOCK), self.num_words), np.int32)
                    grown[:done] = self._flat[:done]
                    self._flat = grown
                for block, off, i, k in self._spans(done, n - done):
                    self._flat[done + i : done + i + k] = block[off : off + k]
                self._flat_rows = n
            return self._row_of, self._flat[:n]

    def allowed_tokens(self, state: int) -> np.ndarray:
        m = self.mask(state).view(np.uint32)
        bits = np.unpackbits(m.view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self.width])

    def allows(self, state: int, token: int) -> bool:
        if state < 0 or token >= self.width:
            return False
        m = self.mask(state)
        return bool((int(m[token >> 5]) >> (token & 31)) & 1)

    def advance(self, state: int, token: int) -> int:
        """Next state after ``token``; -1 when the token is not allowed (EOS in an accepting state also -1)."""
        if state <= 0 or token >= self.vocab.size or not self.tables.lengths[token]:
            return -1
        lazy = self.lazy
        for s in self.tables.token_syms[token]:
            if not lazy.expanded[state]:
                lazy.expand([state])
            state = int(lazy.table[state, s])
            if not state:
                return -1
        return state

    def advance_checked(self, state: int, token: int) -> int:
        nxt = self.advance(state, token)
        if nxt < 0:
            raise TokenRejectedError(f"token {token} ({self.vocab.token_bytes[token]!r}) is not allowed here")
        return nxt

    def walk(self, data: bytes, state: int | None = None) -> int:
        """Feed raw bytes (not tokens) through the underlying DFA; -1 when it dies."""
        state = self.initial_state if state is None else state
        for b in data:
            state = self.lazy.step(state, b)
            if not state:
                return -1
        return state

    def accepts_text(self, text: str | bytes) -> bool:
        data = text.encode() if isinstance(text, str) else text
        st = self.walk(data)
        return self.is_accepting(st)

    # ------------------------------------------------------------------ mask computation

    def precompute(self, states: Iterable[int] | None = None, *, chunk: int = 64) -> None:
        """Compute masks for ``states`` (default: all states) in vectorised batches."""
        with self._lock:
            if states is None:
                self.lazy.expand_all()
                todo = np.arange(1, self.num_states)
            else:
                todo = np.fromiter(states, np.int64)
            todo = np.unique(todo[self._row_of[todo] < 0]) if todo.size else todo
            if not todo.size:
                return
            for i in range(0, todo.size, chunk):
                part = todo[i : i + chunk]
                packed = self._compute(part)
                self._row_of[part] = np.arange(self._n_rows, self._n_rows + part.size, dtype=np.int32)
                self._put_rows(packed)

    def _compute(self, states: np.ndarray) -> np.ndarray:
        if self.kernel:
            return self._compute_kernel(states)
        t = self.tables
        self._ensure(states)
        dead = self._dead
        k = states.size
        allowed = np.zeros((k, self.num_words * _WORD_BITS), bool)
        walk_state: list[np.ndarray] = []
        walk_tok: list[np.ndarray] = []
        walk_row: list[np.ndarray] = []
        for r, s in enumerate(states.tolist()):
            cand = self._candidates(s)
            if cand.size > _BULK_THRESHOLD:
                interior = self._interior(s, cand)
                if interior is not None:
                    allowed[r, : interior.size] |= interior
                    cand = cand[t.has_quote[cand]]
                else:
                    head = self._head_interior(s, cand)
                    if head is not None:
                        sel, interior = head
                        ids = cand[sel]
                        allowed[r, ids] = interior[ids]
                        cand = cand[~sel]
                    ok, cand = self._chain_bulk(s, cand)
                    allowed[r, ok] = True
            walk_state.append(np.full(cand.size, s, np.int32))
            walk_tok.append(cand)
            walk_row.append(np.full(cand.size, r, np.int32))
        if walk_tok:
            st = np.concatenate(walk_state)
            tk = np.concatenate(walk_tok)
            rw = np.concatenate(walk_row)
            ok = self._walk(st, tk) != dead
            allowed[rw[ok], tk[ok]] = True
        acc = self._accept[states]
        if self._eos.size and acc.any():
            allowed[np.ix_(np.flatnonzero(acc), self._eos)] = True
        if self.width < allowed.shape[1]:
            allowed[:, self.width :] = False
        return np.packbits(allowed, axis=1, bitorder="little").view(np.int32)

    # ------------------------------------------------------------------ compiled path

    def _compute_kernel(self, states: np.ndarray) -> np.ndarray:
        """Masks by compiled trie walks and per-vocabulary tables (see :meth:`_kernel_mask`)."""
        out = np.zeros((states.size, self.num_words), np.uint32)
        for r, s in enumerate(states.tolist()):
            self._kernel_mask(s, out[r])
        return out.view(np.int32)

    def _kernel_mask(self, s: int, row: np.ndarray) -> None:
        """OR the packed mask of ``s`` into ``row`` (uint32 words).

        Inside a string, the quote-free tokens come from per-vocabulary tables and the
        quote tokens from the string's context.  A state with many live bytes otherwise may
        still be the inside of a string: if the quote-free part of the DFA reachable from
        it has a signature already seen (any schema, same vocabulary), its quote-free tokens
        are copied and only the ~1% of tokens with a quote are walked; otherwise one full
        walk gives the mask and fills the cache.
        """
        lazy = self.lazy
        chain = self._mirror_chain(s)
        kept = None
        for c in reversed(chain):
            kept = self._inner_masks.get(c[1:])
            if kept is None and c[1] in SHARED_AUTOMATA:
                kept = self.tables.shared_masks.get((self.width, *c[1:]))
                self.shared_hits += kept is not None
            if kept is not None:
                break
        if kept is not None:
            self.inner_hits += 1
            row[:] = kept
        elif chain:
            self._recording = True
            self._record_ok = True
            self._record_extra = []
            try:
                self._kernel_walks(s, row)
            finally:
                self._recording = False
                states = self._visits.take()
            if self._record_ok and states is not None:
                self._keep_inner(chain, [states], self._record_extra, row)
        else:
            self._kernel_walks(s, row)
        if lazy.accept[s] and self._eos.size:
            row |= self.eos_words.view(np.uint32)

    def _kernel_walks(self, s: int, row: np.ndarray) -> None:
        """The walks and tables behind :meth:`_kernel_mask` (see there)."""
        t = self.tables
        lazy = self.lazy
        inside = self._string_position(s)
        if inside is not None:
            # the state's own row is not even needed unless the context is not a plain chain
            edge = self._string_words(row, *inside)
            if edge is not None and edge.size:
                if inside[3] is not None and edge.size <= _COUNTED_LIST_MAX:
                    self._counted_list(inside, edge, row)
                else:
                    self._kernel_list(s, edge, row)
            if self._string_quotes(s, row):
                self._record_suffixes(self._quote_used)
            else:
                if not lazy.expanded[s]:
                    lazy.expand([s])
                self._kernel_quotes(s, row)
        else:
            if not lazy.expanded[s]:
                lazy.expand([s])
            sig = None
            head = False
            if np.count_nonzero(lazy.table[s, :256]) >= _INTERIOR_MIN_BYTES:
                head = self._kernel_head(s, row)
                if not head:
                    sig = self._kernel_signature(s)
            if head:
                self._record_ok = False
            else:
                cached = t.interior_words.get(sig) if sig is not None else None
                if cached is not None:
                    self._record_ok = False
                    row[:] = cached
                    self._kernel_quotes(s, row)
                else:
                    self._kernel_trie(s, row)
                    if sig is not None:
                        qw = t.quote_words
                        assert qw is not None
                        t.interior_words[sig] = row & ~qw

    def _record_suffixes(self, keys: Iterable[tuple[Any, ...] | None]) -> None:
        """Add to a recorded mask the states read after the closing quotes it took from string
        contexts (see :meth:`_quote_suffix`); a context without them cannot be vouched for."""
        if not self._recording:
            return
        for key in keys:
            if key is None or key not in self._suffix_paths:
                self._record_ok = False
                return
            self._record_extra.append(key)

    def _kernel_head(self, s: int, out: np.ndarray) -> bool:
        """Mask of a state that mostly moves like a string interior ``c`` it leads to.

        The start or middle of a key in an open object branches on the declared names and
        otherwise is a plain string ``c`` (its most common successor).  Every first byte ``b``
        with ``row(s)[b] == row(c)[b]`` makes a token walk exactly as it would from ``c``, so
        those tokens come from ``c``'s cached interior; only the subtrees of the few other
        first bytes (the declared names' next letters) and the quote tokens are walked.
        False (nothing written) when ``s`` has no such successor or ``c`` no signature.
        """
        t = self.tables
        dead = self._dead
        row = self._full[s, :256]
        c = _mode(row[row != dead])
        if c is None or c == s:
            return False
        self._ensure(np.array([c]))
        crow = self._full[c, :256]
        same = (row == crow) & (crow != dead)
        if same.sum() < _INTERIOR_MIN_BYTES:
            return False
        sig = self._kernel_signature(c)
        if sig is None:
            return False
        qi, qw, fw = t.quote_ids, t.quote_words, t.first_words
        assert qi is not None and qw is not None and fw is not None  # set with the trie (compiled path)
        interior = t.interior_words.get(sig)
        if interior is None:
            interior = np.zeros(self.num_words, np.uint32)
            self._kernel_trie(c, interior)
            interior &= ~qw
            t.interior_words[sig] = interior
        other = np.ones(t.n_sym + 1, bool)
        other[:256] = ~same
        # tokens of c's interior whose first byte is not shared: removed, then walked from s
        out[:] = interior & ~np.bitwise_or.reduce(fw[np.flatnonzero(~same & (crow != dead))],
                                                   axis=0, initial=np.uint32(0))
        self._kernel_trie(s, out, other)
        self._kernel_quotes(s, out)
        return True

    def _string_position(self, s: int) -> _Position | None:
        """(character DFA, phase, room, pattern) when ``s`` reads on inside a string whose
        quote-free tokens depend on that alone: a bounded string (room: characters that still
        fit), or a free string or an open object's key (room None: their automata never die);
        pattern: a :class:`~jsonmode.fsm.CountedDFA`, its state and margin (see
        :meth:`_string_words`), or None.

        Follows embedded automata down (a ``$ref`` is a lazy automaton embedded in its user;
        the same property in several ``anyOf`` branches is several of them): every embedded
        automaton the state reads next in must lead to the same (character, phase, room),
        and besides them the state may only read a lone quote (the empty string's closing
        quote right after the opening one), or, beside a key automaton, the declared names'
        letters (strings themselves: they add no quote-free continuation).  Whatever could
        end its embedded part here must be followed by a quote only.
        """
        return self._string_leaf(self.lazy, s, 0)

    def _string_leaf(self, lazy: LazyDFA, q: int, depth: int) -> _Position | None:
        """:meth:`_string_position` of state ``q`` of ``lazy``, kept per (automaton, state): an
        embedded automaton's answer is the same in every context that holds it."""
        key = (id(lazy), q)
        got = self._leaves.get(key, False)
        if got is False:
            got = self._leaves[key] = self._find_leaf(lazy, q, depth)
        return got

    def _find_leaf(self, lazy: LazyDFA, q: int, depth: int) -> _Position | None:
        if depth > 64 or q <= 0:
            return None
        gates, labels = lazy.reads(q)
        letters = False  # declared names' letters beside a key automaton
        for lab in labels:
            if lab != 1 << 0x22:
                if lab & (lab - 1) or lab >> 256:
                    return None
                letters = True
        leaf: _Position | None = None
        for inst, inner in gates:
            auto = lazy.instances[inst]
            got: _Position | None
            if isinstance(auto, CountedDFA) and not letters:
                k, q = divmod(inner, auto.n)
                if k < auto.min_length and not auto.below_min or not lazy.follow_only(inst, 0x22):
                    return None  # below minLength the margin alone says nothing: walked
                got = auto.char, int(auto.phase[q]), auto.left(inner)[0], (auto, q, auto.margin(q))
            elif isinstance(auto, CounterDFA) and not letters:
                got = auto.char, auto.position(inner)[1], auto.left(inner)[0], None
                if not lazy.follow_only(inst, 0x22):
                    return None
            elif isinstance(auto, StringsDFA):
                assert auto.phase is not None and auto.char is not None
                got = auto.char, int(auto.phase[inner]), None, None
                if got[1] < 0 or not lazy.follow_only(inst, 0x22):
                    return None
            elif lazy.inst_key_set[inst] and type(auto) is DFA:
                # one of an open object's additional-key automata: it may die, but the key
                # set it belongs to goes on by any character (see fsm.DfaNode)
                char = canonical_key_char()
                ph = char_phases(auto, char)
                if ph is None or ph[inner] < 0 or not lazy.follow_only(inst, 0x22):
                    return None
                got = char, int(ph[inner]), None, None
            elif isinstance(auto, LazyDFA) and not letters:
                if auto.is_accepting(inner) and not lazy.follow_only(inst, 0x22):
                    return None
                got = self._string_leaf(auto, inner, depth + 1)
            else:
                return None
            if got is None or leaf is not None and (got[0] is not leaf[0] or got[1:] != leaf[1:]):
                return None
            leaf = got
        return leaf

    def _string_chain(self, s: int) -> tuple[list[tuple[LazyDFA, tuple[int, ...]]], list[bool], Any, int] | None:
        """The embedded automata ``s`` sits in, one level each down to a string's characters.

        Returns (``(automaton, instances)`` per level, whether that level's inner state
        accepts, the leaf automaton, its state), or None unless every level reads next in
        one embedded automaton and, besides it, only in what follows that automaton when it
        may end there: a plain chain, whose state after the closing quote does not depend on
        where in the string the quote comes.  Several instances of one automaton at one inner
        state (the same property in two ``anyOf`` branches) move in lockstep: they are one
        level, and what follows each of them is what follows the level.
        """
        chain: list[tuple[LazyDFA, tuple[int, ...]]] = []
        flags: list[bool] = []
        lazy, q = self.lazy, s
        for _ in range(65):
            if not 0 < q < len(lazy._succ):
                return None
            got = lockstep_gates(lazy, lazy._succ[q])
            if got is None:
                return None
            insts, inner, plain = got
            auto = lazy.instances[insts[0]]
            acc = auto.is_accepting(inner)
            if plain and (not acc or sorted(plain) != sorted(lazy.follow_of(insts))):
                return None
            chain.append((lazy, insts))
            flags.append(acc)
            if not isinstance(auto, LazyDFA):
                return chain, flags, auto, inner
            lazy, q = auto, inner
        return None

    def _post_quote(self, chain: list[tuple[LazyDFA, tuple[int, ...]]], flags: Sequence[bool]) -> int:
        """State after the closing quote of a string in ``chain`` (0: no closing quote there).

        Built level by level as the subset construction would: at the leaf, the quote
        positions that follow the string; above it, the inner state after the quote, plus
        what follows that level's automaton where its inner state (``flags``) may end.
        """
        key = (tuple((id(lz), i) for lz, i in chain), tuple(flags))
        w = self._post_quote_ids.get(key)
        if w is not None:
            return w
        lazy, insts = chain[-1]
        fol = lazy.follow_of(insts)
        w = 0
        if fol and all(lazy.follow_only(i, 0x22) for i in insts):
            w = lazy._state(tuple(sorted(fol)))
            for (lz, ii), f in zip(reversed(chain[:-1]), reversed(flags[:-1]), strict=True):
                codes = {PAIR | (i << 32) | w for i in ii}
                if f:
                    if not all(lz.follow_only(i, 0x22) for i in ii):
                        w = 0
                        break
                    codes.update(lz.follow_of(ii))
                w = lz._state(tuple(sorted(codes)))
        self._post_quote_ids[key] = w
        return w

    def _quote_suffix(self, q: int, char: DFA, ckey: bytes, phase: int, after_first: bool) -> np.ndarray:
        """Over ``quote_ids``: the part after the closing quote survives from ``q``."""
        key = (q, ckey, phase, after_first)
        ok = self._suffix_ok.get(key)
        if ok is None:
            t = self.tables
            qi = t.quote_ids
            assert qi is not None
            bits = np.zeros(-(-qi.size // _WORD_BITS) + 1, np.uint32)
            lazy = self.lazy
            if q and _SUFFIX_TRIE:
                tr, empty = _quote_suffix_trie(t, char, ckey, phase, after_first)
                tokentrie.set_bits(bits, empty)  # (nothing after the quote: alive wherever q is)
                self._plain_trie_walk(tr, q, qi.size, bits, self._suffix_visits)
            elif q:
                ids, offs, lens = _quote_orders(t, char, ckey, phase, after_first)[4:]
                pos = 0
                while True:
                    status, pos = tokentrie.list_walk(lazy.table, lazy.expanded, q, ids, t.buf, offs, lens, qi.size,
                                                      bits, pos, *self._suffix_visits.args(lazy.n))
                    if status == tokentrie.DONE:
                        break
                    lazy.expand([status])
            ok = np.unpackbits(bits.view(np.uint8), bitorder="little")[: qi.size].astype(bool)
            self._suffix_ok[key] = ok
            reached = self._suffix_visits.take()
            if reached is not None:  # (else never vouched for: see _record_suffixes)
                # what every state it reached has in common (see _keep_inner): their longest
                # common pure path, once per context rather than per mask relying on it
                common = self._pure_path(q)
                for st in reached.tolist():
                    common = common[: _common_prefix(self._pure_path(st), common, len(common))]
                self._suffix_paths[key] = common
        return ok

    def _quote_allowed(self, s: int, after_first: bool) -> list[np.ndarray] | None:
        """Indices into ``quote_ids`` of the tokens with a quote allowed inside a string at ``s``
        (with ``after_first``: of what follows their first quote), without walking them.

        A token is its text up to the closing quote (characters counted in per-vocabulary
        tables), then the rest read from the state after that quote, which in a plain chain
        is the same wherever the quote comes, so its walk is shared by every position of the
        string: per (string context, phase) the tokens that close it are sorted by the
        characters they add, and a position takes the slice its room and minLength allow.
        None where that does not hold: several automata at once (anyOf branches), keys that
        must avoid declared names.
        """
        self._quote_used = []
        got = self._string_chain(s)
        if got is None:
            return None
        chain, flags, leaf, inner = got
        counted = leaf if isinstance(leaf, CountedDFA) else None
        if isinstance(leaf, CounterDFA | CountedDFA):
            phase, char = leaf.position(inner)[1], leaf.char
            room, need = leaf.left(inner)
        elif isinstance(leaf, StringsDFA) and _ends_between_characters(leaf):
            assert leaf.phase is not None and leaf.char is not None
            phase, room, need, char = int(leaf.phase[inner]), NO_BOUND, 0, leaf.char
        else:
            return None
        ctx = self._quote_context(chain, char, phase, after_first)
        if ctx is None:
            return None
        shut, shut_k, inside, in_k = ctx
        lo = shut_k.searchsorted(np.int64(max(need, 0)), side="left")
        hi = shut_k.searchsorted(np.int64(room), side="right")
        stay = inside[: in_k.searchsorted(np.int64(room), side="right")]
        shut = shut[lo:hi]
        if counted is not None:
            # the pattern too: alive through what stays inside and accepting at the closing quote;
            # a token that stays inside must leave the margin (else it is walked: None)
            k, q = divmod(inner, counted.n)
            ok = self._pattern_quotes(counted, q, char, phase, after_first)
            stay, shut = stay[ok[stay]], shut[ok[shut]]
            fit = in_k.searchsorted(np.int64(room - counted.margin(q)), side="right")
            if stay.size and (k < counted.min_length and not counted.below_min
                              or stay.size > np.count_nonzero(ok[inside[:fit]])):
                return None
        parts = [stay, shut]
        if flags[-1] and phase == char.start:  # ``s`` itself may end the string
            here = self._post_quote(chain, flags)
            if here:
                ckey = _char_key(char)
                key = (here, ckey, phase, after_first)
                self._quote_used.append(key)
                now = self._close_here.get(key)
                if now is None:
                    rel = _quote_costs(self.tables, char, ckey, phase, after_first)[2]
                    now = np.flatnonzero(self._quote_suffix(here, char, ckey, phase, after_first) & (rel == 0))
                    self._close_here[key] = now
                parts.append(now)
        return parts

    def _pattern_quotes(self, auto: CountedDFA, q: int, char: DFA, phase: int, after_first: bool) -> np.ndarray:
        """Over ``quote_ids``: the pattern automaton of ``auto`` survives, from its state ``q``,
        what a token reads inside the string, and accepts before its closing quote if it has
        one (a walk of those ~1% of the vocabulary over the pattern's own table, once per state).
        From a token's start those are trie paths: a state that walks as another
        (:meth:`_pattern_words`) shares its result."""
        if not after_first:
            q = self._pattern_alias.get((id(auto), q), q)
        key = (id(auto), q, after_first)
        ok = self._pattern_quote_ok.get(key)
        if ok is None:
            t = self.tables
            qi = t.quote_ids
            assert qi is not None
            ids, offs, lens = _quote_spans(t, char, _char_key(char), phase, after_first)
            table, expanded = auto.walk_table
            bits = np.zeros(-(-qi.size // _WORD_BITS) + 1, np.uint32)
            status, _ = tokentrie.list_walk(table, expanded, q + 1, ids, t.buf, offs, lens, qi.size, bits, 0,
                                            *_NO_VISITS)
            assert status == tokentrie.DONE
            ok = np.unpackbits(bits.view(np.uint8), bitorder="little")[: qi.size].astype(bool)
            self._pattern_quote_ok[key] = ok
        return ok

    def _string_quotes(self, s: int, out: np.ndarray) -> bool:
        """OR into ``out`` the tokens with a quote allowed inside a string at ``s`` (see
        :meth:`_quote_allowed`); False (nothing written) where they must be walked."""
        parts = self._quote_allowed(s, False)
        if parts is None:
            return False
        qi = self.tables.quote_ids
        assert qi is not None
        for p in parts:
            if p.size:
                tokentrie.set_bits(out, qi[p])
        return True

    def _quote_context(self, chain: list[tuple[LazyDFA, tuple[int, ...]]], char: DFA, phase: int,
                       after_first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(tokens that close the string after at least one byte, by characters added; their
        counts; tokens that stay inside, by characters; their counts), as indices into
        ``quote_ids``, of a string context at ``phase``, or None when the context is not a plain
        chain."""
        key = (tuple((id(lz), i) for lz, i in chain), _char_key(char), phase, after_first)
        got = self._quote_ctx.get(key, False)
        if got is not False:
            if got is not None and key in self._ctx_suffix:
                self._quote_used.append(self._ctx_suffix[key])
            return got
        ctx = None
        if char.step(char.start, 0x22) < 0:  # a raw quote is never a character here
            # the flags of a position past ``s`` where the string can end: the leaf accepts, and
            # each level above accepts where its inner one does and its automaton may end there
            static: list[bool] = []
            acc = True
            plain = True
            for lz, ii in reversed(chain):
                static.append(acc)
                if acc and not all(lz.follow_only(i, 0x22) for i in ii):
                    plain = False
                acc = acc and any(i in lz.last_inst for i in ii)
            if plain:
                static.reverse()
                ckey = key[1]
                inside, in_k, shut, shut_k = _quote_orders(self.tables, char, ckey, phase, after_first)[:4]
                after = self._post_quote(chain, static)
                if after:  # the closing tokens whose rest survives, still in order of characters
                    self._ctx_suffix[key] = suffix = (after, ckey, phase, after_first)
                    self._quote_used.append(suffix)
                    keep = self._quote_suffix(after, char, ckey, phase, after_first)[shut]
                    shut, shut_k = shut[keep], shut_k[keep]
                else:
                    shut, shut_k = shut[:0], shut_k[:0]
                ctx = (shut, shut_k, inside, in_k)
        self._quote_ctx[key] = ctx
        return ctx

    def _opens_string(self, st: int) -> bool:
        """Whether the tokens that reach ``st`` by a quote have the rest read from string tables
        (kept for :meth:`_settle_stops`: a state's answer never changes)."""
        parts = self._quote_allowed(st, True) if self._string_position(st) is not None else None
        if parts is not None:
            self._opened[st] = parts, list(self._quote_used)
        return parts is not None

    def _settle_stops(self, s: int, out: np.ndarray, n: int) -> None:
        """Tokens under the quotes where a trie walk from ``s`` stopped (see ``trie_walk``).

        Every token below such a node has that quote at the node's depth; where it is the
        token's first quote, what follows it is read from the string tables of the state the
        quote led to (:meth:`_quote_allowed`), else (a quote before it) the token is walked.
        """
        t = self.tables
        tr = t.trie
        assert tr is not None and t.quote_index is not None and t.quote_first is not None
        assert t.quote_ids is not None
        stops = self._stops[: 2 * n].tolist()
        for k in range(n):
            i, st = stops[2 * k], stops[2 * k + 1]
            ids = tr.node_toks[tr.node_start[i + 1] : tr.node_start[tr.skip[i]]]
            qi = t.quote_index[ids]
            first = t.quote_first[qi] == tr.depth[i]
            if not first.all():
                self._kernel_list(s, ids[~first], out)
            ok = np.zeros(t.quote_ids.size, bool)
            for p in self._opened[st][0]:  # set when the walk classified ``st``
                ok[p] = True
            qi = qi[first]
            qi = qi[ok[qi]]
            if qi.size:
                tokentrie.set_bits(out, t.quote_ids[qi])

    def _string_words(self, out: np.ndarray, char: DFA, phase: int, room: int | None,
                      pattern: tuple[CountedDFA, int, int] | None = None) -> np.ndarray | None:
        """Write to ``out`` the packed quote-free tokens allowed inside a string at ``phase`` of ``char``.

        A token is allowed iff the character DFA survives it from that phase and the
        characters it starts still fit in ``room`` (None: no bound).  Every position of a
        long bounded string has its own room, so the mask of a room is the unbounded one
        less the few tokens that start more characters than it (a copy and a few bit
        clears); only small rooms, which clear many, are packed once and cached.

        With a ``pattern`` (counted automaton, its state, margin) the tokens must also keep
        the pattern alive, and only those leaving ``margin`` characters of room are certain to
        land where the string can still end: the rest (starting ``room - margin + 1`` to
        ``room`` characters, a few once the room is small) are returned, for the caller to walk.
        """
        t = self.tables
        ckey = _char_key(char)
        full, order, neg = _room_tables(t, char, ckey, phase, self.width)
        edge = None
        if pattern is not None:
            assert room is not None  # a counted string always has a bound
            auto, q, margin = pattern
            if margin:
                hi = int(neg.searchsorted(np.int64(-room), side="left"))
                room -= margin
                edge = order[hi : int(neg.searchsorted(np.int64(-room), side="left"))]
        over = 0 if room is None else int(neg.searchsorted(np.int64(-room), side="left"))  # tokens costing > room
        if over <= _CLEAR_LIMIT:
            out[:] = full
            if over:
                tokentrie.clear_bits(out, order[:over])
        else:
            assert room is not None  # over is 0 without a bound
            out[:] = _small_room(t, char, ckey, phase, room, self.width)
        if pattern is not None and pattern[0].dies:
            out &= self._pattern_words(pattern[0], pattern[1])
        return edge

    def _counted_list(self, inside: _Position, ids: np.ndarray, out: np.ndarray) -> None:
        """Set in ``out`` the quote-free tokens ``ids`` that a counted string at ``inside`` reads
        and can still end in bounds after, stepped over the counted automaton itself (a token
        near the room walked through the lazy DFA made one state per character: a run of 92
        dashes, 96 Python row builds, 11 ms)."""
        char, phase, room, pattern = inside
        assert pattern is not None and room is not None
        auto, q, _ = pattern
        s0 = (auto.max_length - room - (phase != char.start)) * auto.n + q
        t = self.tables
        keep: list[int] = []
        for tok in ids.tolist():
            s = s0
            off = int(t.offsets[tok])
            for b in t.buf[off : off + int(t.lengths[tok])].tolist():
                s = auto.step(s, b)
                if s < 0:
                    break
            else:
                keep.append(tok)
        if keep:
            tokentrie.set_bits(out, np.asarray(keep, np.int64))

    def _pattern_words(self, auto: CountedDFA, q: int) -> np.ndarray:
        """Packed quote-free tokens the pattern automaton of ``auto`` survives from its state ``q``
        (a trie walk over its own small table, once per state).

        A counted repetition (``(\\S+\\s+){0,99}``: a word limit) has a state per count, and
        every one of them was a walk of the whole trie (~2 ms: nearly every token keeps a
        word going) for the same tokens; so a state whose walk would go exactly as a recent
        one's went (:func:`~jsonmode.tokentrie.same_region`, tens of microseconds) takes its
        tokens instead."""
        key = (id(auto), q)
        words = self._pattern_cache.get(key)
        if words is not None:
            return words
        tr = self.tables.trie
        assert tr is not None
        table, expanded = auto.walk_table  # (bytes only: special symbols are never walked from a root)
        witnesses = self._pattern_witnesses.setdefault(id(auto), [])
        if witnesses:
            phi = np.full(table.shape[0], -1, np.int32)
            queue = np.empty(table.shape[0], np.int32)
            for a, seen, got in witnesses:
                if tokentrie.same_region(table, a + 1, seen, q + 1, phi, queue):
                    self._pattern_cache[key] = got
                    self._pattern_alias[key] = a
                    return got
        words = np.zeros(self.num_words, np.uint32)
        stop = np.ones(table.shape[0], np.int8)  # a quote (escaped, or closing: see walk_table) reads on
        n_stops = np.zeros(1, np.int64)
        status, _ = tokentrie.trie_walk(table, expanded, q + 1, tr.sym, tr.depth, tr.skip, tr.tok, tr.dup,
                                        self.width, words, self._stack, 0, self._byte_roots, stop,
                                        self._stops, n_stops, *self._pattern_visits.args(table.shape[0]))
        assert status == tokentrie.DONE
        self._pattern_cache[key] = words
        reached = self._pattern_visits.take()  # (None: more than _WITNESS_STATES)
        if _PATTERN_WITNESSES and reached is not None:
            seen = np.zeros(table.shape[0], bool)
            seen[reached] = True
            seen[q + 1] = True
        if _PATTERN_WITNESSES and reached is not None and np.count_nonzero(seen) <= _WITNESS_STATES:
            witnesses.insert(0, (q, seen, words))
            del witnesses[_PATTERN_WITNESSES:]
        return words

    def _mirror_chain(self, s: int) -> tuple[tuple[int, int, int], ...]:
        """(instance, id of its automaton, its state) per level down which ``s`` is a pure mirror
        (see :meth:`LazyDFA.pure_gate`), outermost first; empty unless ``s`` is one.

        Kept per (automaton, state) at every level: below the first level a chain is the
        definition's own, the same in every context, so a new state's chain is one step and a
        lookup (a cold mask asks it of every state its walks reach)."""
        chains = self._chains
        auto: Any = self.lazy
        key = (id(auto), s)
        got = chains.get(key)
        if got is not None:
            return got
        levels = self._mirror_levels
        if not levels:
            return ()
        steps: list[tuple[tuple[int, int], tuple[int, int, int]]] = []
        tail: tuple[tuple[int, int, int], ...] = ()
        exact = True  # (False: cut at the level limit, so only the first step's chain is whole)
        q = s
        while True:
            got = auto.pure_gate(q) if type(auto) is LazyDFA else None
            if got is None:
                break
            inst, q = got
            auto = auto.instances[inst]
            steps.append((key, (inst, id(auto), q)))
            if len(steps) >= levels:
                exact = False
                break
            key = (id(auto), q)
            known = chains.get(key)
            if known is not None:
                tail = known
                break
        for i in range(len(steps) - 1, -1, -1):
            k, step = steps[i]
            tail = (step, *tail[: levels - 1])
            if exact or i == 0:
                chains[k] = tail
        return tail

    def _pure_path(self, t: int) -> tuple[int, ...]:
        """The instances down which state ``t`` is a pure mirror (see :meth:`_mirror_chain`)."""
        got = self._pure_paths.get(t)
        if got is None:
            got = tuple(inst for inst, _, _ in self._mirror_chain(t))
            self._pure_paths[t] = got
        return got

    def _keep_inner(self, chain: tuple[tuple[int, int, int], ...], reached: list[np.ndarray],
                    suffixes: list[tuple[Any, ...]], words: np.ndarray) -> None:
        """Keep a mask for the deepest level of ``chain`` whose automaton its walks never left.

        A $ref'd definition is one automaton embedded wherever it is used; a state inside it is
        a mirror of one of its states, once per context (Kubernetes' ObjectMeta, a Container in
        two arrays, every item of a counted array).  When every state the walks reached
        (``reached``: the trie and list walks from the state; ``suffixes``: the walks after the
        closing quotes of the strings it settled from tables, see :meth:`_quote_suffix`) mirrors,
        level by level, the same instances as the state itself, they went as they go inside that
        definition alone: the mask is the definition state's, whatever holds it, and the next
        mirror of that state (another context, an instance, a level up) takes it without a walk
        or the row builds of its own mirrored states."""
        insts = tuple(inst for inst, _, _ in chain)
        level = len(insts)
        for key in suffixes:
            level = _common_prefix(self._suffix_paths[key], insts, level)
        for states in reached:
            for t in states.tolist():
                if not level:
                    return
                level = _common_prefix(self._pure_path(t), insts, level)
        if level:
            key = chain[level - 1][1:]
            kept = self._inner_masks[key] = words.copy()
            shared = self.tables.shared_masks
            if key[0] in SHARED_AUTOMATA and len(shared) < _SHARED_MASKS_MAX:
                shared[(self.width, *key)] = kept

    def _kernel_trie(self, s: int, out: np.ndarray, roots: np.ndarray | None = None) -> None:
        tr = self.tables.trie
        assert tr is not None
        if roots is None:
            roots = self._all_roots
        lazy = self.lazy
        pos = 0
        self._n_stops[0] = 0
        while True:
            self._stop = _grown(self._stop, lazy.n, 0)
            visits = self._visits.args(lazy.n) if self._recording else _NO_VISITS
            status, pos = tokentrie.trie_walk(lazy.table, lazy.expanded, s, tr.sym, tr.depth, tr.skip, tr.tok,
                                              tr.dup, self.width, out, self._stack, pos, roots, self._stop,
                                              self._stops, self._n_stops, *visits)
            if status == tokentrie.DONE:
                break
            if status == tokentrie.CLASSIFY:
                st = int(lazy.table[self._stack[tr.depth[pos]], tr.sym[pos]])
                if st >= self._stop.shape[0]:
                    continue  # grown above, then asked again
                self._stop[st] = 2 if self._opens_string(st) else 1
                continue
            lazy.expand([status])
        n = int(self._n_stops[0])
        if n:
            if self._recording:
                for st in self._stops[1 : 2 * n : 2].tolist():
                    self._record_suffixes(self._opened[st][1])
            self._settle_stops(s, out, n)

    def _kernel_list(self, s: int, ids: np.ndarray, out: np.ndarray) -> None:
        t = self.tables
        lazy = self.lazy
        pos = 0
        while True:
            visits = self._visits.args(lazy.n) if self._recording else _NO_VISITS
            status, pos = tokentrie.list_walk(lazy.table, lazy.expanded, s, ids, t.buf, t.offsets, t.lengths,
                                              self.width, out, pos, *visits)
            if status == tokentrie.DONE:
                return
            lazy.expand([status])

    def _kernel_quotes(self, s: int, out: np.ndarray) -> None:
        """Set in ``out`` the tokens with a quote allowed from ``s``, walked as their own trie (shared
        prefixes once, a dead first byte's subtree dropped) where :meth:`_kernel_list` stepped each of
        ~1% of the vocabulary token by token; no stop at quotes (what the list walk reads)."""
        tr = self.tables.quote_trie
        if tr is None or not _SUFFIX_TRIE:
            qi = self.tables.quote_ids
            assert qi is not None  # set with the trie (compiled path)
            self._kernel_list(s, qi, out)
            return
        self._plain_trie_walk(tr, s, self.width, out, self._visits if self._recording else None)

    def _plain_trie_walk(self, tr: TokenTrie, start: int, width: int, out: np.ndarray, visits: _Visits | None) -> None:
        """Set in ``out`` the "tokens" of ``tr`` alive from ``start``, every byte walked (no stop at
        quotes, as :func:`~jsonmode.tokentrie.list_walk`), recording the states reached in ``visits``."""
        lazy = self.lazy
        stack = np.zeros(tr.max_depth + 1, np.int64)
        pos = 0
        while True:
            self._go_on = _grown(self._go_on, lazy.n, 1)
            status, pos = tokentrie.trie_walk(lazy.table, lazy.expanded, start, tr.sym, tr.depth, tr.skip, tr.tok,
                                              tr.dup, width, out, stack, pos, self._all_roots, self._go_on,
                                              self._stops, self._n_stops,
                                              *(_NO_VISITS if visits is None else visits.args(lazy.n)))
            if status == tokentrie.DONE:
                return
            if status != tokentrie.CLASSIFY:  # (CLASSIFY: a state past _go_on, grown above)
                lazy.expand([status])

    def _kernel_signature(self, s: int) -> tuple[int, int] | None:
        lazy = self.lazy
        while True:
            self._sig_ids = _grown(self._sig_ids, lazy.n, -1)
            status, h1, h2 = tokentrie.signature(lazy.table, lazy.expanded, s, _SIGNATURE_LIMIT, 0x22,
                                                 self._sig_queue, self._sig_ids)
            if status == tokentrie.DONE:
                return int(h1), int(h2)
            if status == -2:
                return None
            lazy.expand([status])

    # ------------------------------------------------------------------ numpy path

    def _candidates(self, s: int) -> np.ndarray:
        """Tokens whose first symbol is live from ``s`` (grouped by first symbol, no walk)."""
        t = self.tables
        live = np.flatnonzero(self._full[s, : t.n_sym] != self._dead)
        if not live.size:
            return t.by_first[:0]
        if live.size <= 24:
            starts, ends = t.first_start[live], t.first_start[live + 1]
            return np.concatenate([t.by_first[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
        livemask = np.zeros(t.n_sym + 1, bool)
        livemask[live] = True
        return t.by_first[livemask[t.first_sorted]]

    def _interior(self, s: int, cand: np.ndarray | None = None) -> np.ndarray | None:
        """Allowed quote-free tokens from ``s`` (bool over the vocabulary), shared by signature.

        None when the quote-free part reachable from ``s`` is too big to have a signature.
        """
        sig = self._signature(s)
        if sig is None:
            return None
        t = self.tables
        interior = t.interior.get(sig)
        if interior is None:
            if cand is None:
                cand = self._candidates(s)
            interior = self._interior_mask(s, cand[~t.has_quote[cand]])
            t.interior[sig] = interior
        return interior

    def _head_interior(self, s: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Settle the tokens of ``s`` that agree with a successor string interior.

        The start of a key in an open object branches on the first letters of the declared
        names and otherwise enters a plain string ``c1``.  A quote-free token whose first byte
        takes ``s`` to ``c1`` *and* loops on ``c1`` walks exactly as it would from ``c1``, so it
        is allowed iff ``c1``'s (shared, cached) interior mask allows it.  Returns (selector
        over ``cand``, that interior mask), or None when ``s`` has no such successor.
        """
        t = self.tables
        row = self._full[s, :256]
        c1 = _mode(row[row != self._dead])
        if c1 is None:
            return None
        self._ensure(np.array([c1]))
        via = np.zeros(t.n_sym + 1, bool)
        via[:256] = (row == c1) & (self._full[c1, :256] == c1)
        if via.sum() < 32:
            return None
        interior = self._interior(c1)
        if interior is None:
            return None
        return via[t.first[cand]] & ~t.has_quote[cand], interior

    def _signature(self, s: int, limit: int = 80) -> bytes | None:
        """Canonical form of the part of the DFA reachable from ``s`` without reading '"'.

        Two states with equal signatures allow exactly the same tokens among those
        without a quote (e.g. the inside of any free string, in any schema), so that
        part of the mask is computed once per vocabulary.
        """
        dead = self._dead
        ids = {s: 0}
        queue = [s]
        parts: list[bytes] = []
        i = 0
        while i < len(queue):
            q = queue[i]
            if not self.lazy.expanded[q]:
                self.lazy.expand([q])
            row = self.lazy.table[q, :256].copy()
            row[0x22] = dead
            uniq, first_at, inv = np.unique(row, return_index=True, return_inverse=True)
            canon = np.empty(uniq.size, np.int16)
            # number successors in byte order (first byte reaching them), not by state id:
            # state ids depend on the order a lazy DFA happened to build its states
            for j in np.argsort(first_at, kind="stable").tolist():
                u = int(uniq[j])
                if u == dead:
                    canon[j] = -1
                    continue
                k = ids.get(u)
                if k is None:
                    if len(queue) >= limit:
                        return None
                    k = len(queue)
                    ids[u] = k
                    queue.append(u)
                canon[j] = k
            parts.append(canon[inv].tobytes())
            i += 1
        return hashlib.sha1(b"".join(parts)).digest()

    def _interior_mask(self, s: int, cand: np.ndarray) -> np.ndarray:
        """Allowed tokens among quote-free ``cand`` from ``s`` (bool over the vocabulary)."""
        out = np.zeros(self.tables.lengths.shape[0], bool)
        bulk, cand = self._chain_bulk(s, cand)
        out[bulk] = True
        ok = self._walk(np.full(cand.size, s, np.int32), cand) != self._dead
        out[cand[ok]] = True
        return out

    def _chain_bulk(self, s: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Settle most tokens of a large state without walking them.

        The first byte set B0 takes ``s`` to its most common successor ``c1``; from there
        follow the DFA on the byte set B whose bytes all move each state of the chain to
        one common next state (B shrinks as needed).  Every token spelled B0 B* then ends
        at ``chain[len(token)]``: allowed iff that is alive.  Free-string states give a
        self-loop, length-bounded strings a counter, and the start of a key in an open
        object (declared names branch off on their first letters, then any string) a
        one-step head before the loop.  Returns (allowed token ids, tokens still to walk).
        """
        dead = self._dead
        t = self.tables
        Lmax = int(t.max_len)
        lazy = self.lazy
        row = lazy.table[s, :256]
        cur = _mode(row[row != dead])
        if cur is None:
            return cand[:0], cand
        B0 = row == cur
        if B0.sum() < 32:
            return cand[:0], cand
        chain = np.full(Lmax + 1, dead, np.int64)
        chain[0] = s
        B: np.ndarray | None = None
        for k in range(1, Lmax + 1):
            chain[k] = cur
            if cur == dead:
                break
            if not lazy.expanded[cur]:
                lazy.expand([cur])
            r = lazy.table[cur, :256]
            nxt = _mode(r[r != dead] if B is None else r[B])
            if nxt is None:
                return cand[:0], cand
            nb = r == nxt if B is None else B & (r == nxt)
            if nxt == cur and B is not None and nb.sum() == B.sum():  # fixed point: loops here forever
                chain[k + 1:] = cur
                break
            B = nb
            cur = nxt
            if B.sum() < 32:
                return cand[:0], cand
        if B is None:
            return cand[:0], cand
        head = np.zeros(t.n_sym + 1, bool)
        head[:256] = B0
        inside = head[t.first[cand]] & self._tail_tokens(B)[cand]
        ids = cand[inside]
        ok = ids[chain[t.lengths[ids]] != dead]
        return ok, cand[~inside]

    def _tail_tokens(self, loops: np.ndarray) -> np.ndarray:
        """Tokens whose bytes after the first all lie in ``loops`` (cached per byte set)."""
        key = np.packbits(loops, bitorder="little").tobytes()
        hit = self._inside_cache.get(key)
        if hit is None:
            lw = np.frombuffer(key, np.uint64)
            t = self.tables
            hit = ~(t.tail_bytes & ~lw).any(axis=1) & ~t.has_special & (t.lengths > 0)
            self._inside_cache[key] = hit
        return hit

    def _walk(self, st: np.ndarray, tk: np.ndarray) -> np.ndarray:
        """End state of each (state, token) pair; ``dead`` where the DFA dies.

        Pairs are sorted by token length (a radix sort on small ints), so tokens that
        have ended sit at the tail and are cut off with a slice; pairs that died are
        compacted away every few steps.  Each step is two 1-D gathers.
        """
        t = self.tables
        dead = self._dead
        n = st.size
        res = np.full(n, dead, np.int32)
        if not n:
            return res
        lazy = self.lazy
        nsym = lazy.table.shape[1]
        buf = t.buf
        ln = t.lengths[tk].astype(np.int16)
        order = np.argsort(-ln, kind="stable")
        pos = order
        tk = t.offsets[tk[order]]  # from here on: offset of each pair's token in buf
        cur = st[order].astype(np.int64)
        ln = ln[order]
        neg = -ln
        for p in range(int(ln[0])):
            k = int(np.searchsorted(neg, -p, side="left"))  # pairs with length > p
            if k < pos.size:
                res[pos[k:]] = cur[k:]
                pos, tk, cur, neg = pos[:k], tk[:k], cur[:k], neg[:k]
                if not k:
                    break
            exp = lazy.expanded
            if not exp[cur].all():
                lazy.expand(np.unique(cur[~exp[cur]]).tolist())
            cur = lazy.table.reshape(-1)[cur * nsym + buf[tk + p]].astype(np.int64)
            if p & 1:
                live = cur != dead
                if live.sum() < 0.75 * live.size:
                    pos, tk, cur, neg = pos[live], tk[live], cur[live], neg[live]
                    if not pos.size:
                        break
        if pos.size:
            res[pos] = cur
        return res

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, max_states: int | None = None) -> None:
        """Write the whole DFA (every state built) and the masks computed so far (``.npz``).

        Raises AutomatonTooLarge when building every state would pass ``max_states``.
        """
        if max_states is not None:
            old = self.lazy.max_states
            self.lazy.max_states = min(old, max_states)
            try:
                self.lazy.expand_all()
            finally:
                self.lazy.max_states = old
        self.lazy.expand_all()
        n = self.num_states
        row_of, masks = self.mask_table()
        np.savez_compressed(
            path,
            table=self.lazy.table[:n],
            accept=self.lazy.accept[:n],
            row_of=row_of[:n],
            masks=masks,
            meta=np.frombuffer(json.dumps({"vocab": self.vocab.fingerprint, "specials": self.specials,
                                           "key": self.key}).encode(), np.uint8),
        )

    @classmethod
    def load(cls, path: str | Path, vocab: Vocabulary) -> TokenAutomaton:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta["vocab"] != vocab.fingerprint:
                raise ValueError(f"{path}: cached automaton was built for another vocabulary")
            ta = cls(LazyDFA.from_table(z["table"], z["accept"]), vocab, specials=meta["specials"],
                     key=meta["key"])
            row_of, masks = z["row_of"], z["masks"]
        if ta.num_states == row_of.shape[0]:
            ta._row_of[: row_of.shape[0]] = row_of
            ta._put_rows(masks.astype(np.int32, copy=False))
        return ta


# ---------------------------------------------------------------------- compile + cache

_CACHE: dict[str, TokenAutomaton] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 64


def cache_key(payload: Any, vocab: Vocabulary, options: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(payload, default=str).encode())  # key order matters: properties are written in it
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    h.update(vocab.fingerprint.encode())
    return h.hexdigest()


def automaton_from_node(
    node: Node, vocab: Vocabulary, *, specials: Sequence[str] = (), max_states: int | None = None, key: str = ""
) -> TokenAutomaton:
    import sys

    from .errors import AutomatonTooLarge

    kw: dict[str, Any] = {} if max_states is None else {"max_states": max_states, "limit_name": "max_lazy_states"}
    n_sym = token_tables(vocab, tuple(specials)).n_sym
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))
    try:
        lazy = LazyDFA(node, n_sym=n_sym, **kw)
    except RecursionError as e:
        raise AutomatonTooLarge("schema nesting is too deep to compile (Python recursion limit)") from e
    finally:
        sys.setrecursionlimit(old)
    return TokenAutomaton(lazy, vocab, specials=specials, key=key)


WARM_SECONDS = 0.5  # default compile-time budget of TokenAutomaton.warm over schema sketches
# depths of the sketches walked before the full ones: a big schema's full sketch is tens of
# thousands of tokens, and walked in schema order it spent the whole budget deep inside its
# first properties while outputs, which write a few of them, start with the shallow states
WARM_DEPTHS = (2, 4, 6, 8)


def _separators(whitespace: str) -> tuple[str, str]:
    """``json.dumps`` separators of outputs written in that whitespace mode."""
    return (",", ":") if whitespace == "compact" else (", ", ": ")


def _warm_with_sketches(ta: TokenAutomaton, schema: Any, encode: Any, seconds: float, whitespace: str) -> None:
    from .sketch import MAX_DEPTH, sketches

    deadline = time.perf_counter() + seconds
    seps = _separators(whitespace)

    def outputs() -> Iterator[list[int]]:
        """Sketches shallow to deep, each made only once the walk is ready for it."""
        seen: set[str] = set()
        for depth, variants in [*((d, 1) for d in WARM_DEPTHS), (MAX_DEPTH, 3)]:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            for x in sketches(schema, variants, seconds=left / 2, max_depth=depth):
                text = json.dumps(x, ensure_ascii=False, separators=seps)
                if text not in seen:
                    seen.add(text)
                    yield encode(text)

    ta.warm(outputs(), deadline - time.perf_counter())


# what a value a schema leaves free ({}, true, an open object's values) is written as, nested
# as outputs nest them: walked once per process and vocabulary (see _warm_free_values)
_FREE_VALUES: tuple[Any, ...] = (
    {"id": 1, "name": "Hello world", "value": 1.5, "enabled": True, "none": None, "tags": ["a", "b"],
     "data": {"key": "value", "count": 2, "items": [{"id": 10, "type": "x", "ok": False}]}},
    [1, -2, 3.25, -0.5, 1e3, "text", True, False, None, [], {}, [1, 2], [{"a": 1}], {"b": [2, 3]}],
    {"a": {"b": {"c": {"d": [1, {"e": "f"}]}}}, "list": [[0, 1], ["x", {"y": None}]], "empty": {}, "zero": 0},
    {"type": "object", "count": 12345, "ratio": 0.75, "url": "https://example.com/path?q=1", "date": "2024-01-31",
     "nested": {"values": [{"name": "item 1", "price": 9.99}, {"name": "item 2", "price": 19.5}], "total": 29.49}},
)
FREE_WARM_SECONDS = 0.5  # once per process and (vocabulary, whitespace): see _warm_free_values
_FREE_WARMED: set[tuple[Any, ...]] = set()
_FREE_LOCK = threading.Lock()


def _warm_free_values(ta: TokenAutomaton, opts: Any, encode: Any) -> None:
    """Walk typical free JSON through the shared any-value automata, once per process.

    A value a schema leaves free is one automaton per (nesting, whitespace) shared by every
    schema in the process, and a mask kept for one of its states (its walks never left it, see
    :meth:`TokenAutomaton._keep_inner`) is kept per vocabulary for all of them; the first cold
    masks of free JSON build rows at every nesting level (~1 ms each).  So the first schema with
    a free value in a process pays this walk (<= ``FREE_WARM_SECONDS``), later ones look up."""
    from .compiler import schema_to_node

    key = (id(ta.tables), ta.width, ta.specials, opts.whitespace, opts.max_whitespace, opts.any_depth)
    with _FREE_LOCK:
        if key in _FREE_WARMED:
            return
        _FREE_WARMED.add(key)
    free = automaton_from_node(schema_to_node(True, opts), ta.vocab, specials=ta.specials,
                               max_states=opts.max_lazy_states)
    seps = _separators(opts.whitespace)
    free.warm((encode(json.dumps(x, ensure_ascii=False, separators=seps)) for x in _FREE_VALUES), FREE_WARM_SECONDS)


def compile_automaton(
    schema: dict[str, Any] | bool,
    vocab: Vocabulary,
    *,
    cache_dir: str | Path | None = None,
    precompute: bool | None = None,
    warm_seconds: float = WARM_SECONDS,
    **options: Any,
) -> TokenAutomaton:
    """JSON Schema -> token automaton, cached in memory per (schema, vocabulary, options).

    ``options`` go to :func:`jsonmode.compiler.schema_to_node` (whitespace, depth,
    lenient, ...).  ``cache_dir`` adds an on-disk cache of DFA and masks.
    ``precompute`` computes every state's mask up front (default: when the DFA is
    small enough that it costs little and keeps every later mask a lookup).
    ``warm_seconds``: time spent computing the masks along a few example instances of
    the schema (:mod:`jsonmode.sketch`, tokenized by ``vocab.encode``), so the structural
    states that outputs share are a lookup when generation starts; 0 turns it off.
    """
    from .compiler import CompileOptions, compile_schema

    opts = CompileOptions(**options)
    key = cache_key(schema, vocab, opts.as_dict())
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    path = Path(cache_dir) / f"{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        ta = TokenAutomaton.load(path, vocab)
    else:
        with time_limit(opts.max_compile_seconds):
            node, free = compile_schema(schema, opts)
            ta = automaton_from_node(node, vocab, max_states=opts.max_lazy_states, key=key)
        if precompute:
            ta.precompute()
        elif warm_seconds > 0 and vocab.encode is not None:
            if free:
                _warm_free_values(ta, opts, vocab.encode)
            _warm_with_sketches(ta, schema, vocab.encode, warm_seconds, opts.whitespace)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                ta.save(path, max_states=opts.disk_cache_states)
            except AutomatonTooLarge:
                pass  # too big to build whole: stays lazy, in memory only
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = ta
    return ta
