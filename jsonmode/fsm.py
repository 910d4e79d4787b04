"""Byte-level regular languages: a small regex AST and its compilation to a DFA.

The schema compiler describes the JSON text a schema admits as an AST over *symbols*:
bytes 0..255, plus symbols from 256 up that stand for whole special tokens (e.g.
``<tool_call>``), so one automaton can mix text and special tokens.  Symbol sets are
Python ints used as bitsets, which keeps set algebra cheap.

Compilation is Glushkov (position automaton, no epsilon moves) followed by subset
construction over the alphabet's equivalence classes.  Sub-automata built elsewhere
(intersections, complements) embed back into an AST through :class:`DfaNode`.
"""

from __future__ import annotations

import functools
import gc
import mmap
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import tokentrie
from .errors import AutomatonTooLarge, CompileTimeoutError

BYTE_SYMBOLS = 256
ALL_BYTES = (1 << 256) - 1
DEFAULT_MAX_STATES = 200_000
NO_BOUND = 1 << 40  # the room of a string with no maxLength (characters that still fit)

# fixed random weights hashing a state's position set (shared: making them per automaton cost 25 µs each)
_WEIGHTS = np.random.default_rng(0).integers(1, 2**62, size=4096, dtype=np.int64)
_WEIGHTS.setflags(write=False)
# the lazy automata every schema in the process embeds (free values, see compiler.any_value),
# by id: a mask kept for one of their states serves every later schema (held here, so an id
# is never reused even where a cache of them is cleared)
SHARED_AUTOMATA: dict[int, Any] = {}

_LIMIT = threading.local()  # (deadline, seconds, option name) of the compile running in this thread


@contextmanager
def time_limit(seconds: float | None, name: str = "max_compile_seconds") -> Iterator[None]:
    """Work inside raises CompileTimeoutError once ``seconds`` have passed (nested limits keep the
    earliest deadline).  Compile loops poll :func:`check_time`; matching runs outside any limit."""
    prev = getattr(_LIMIT, "at", None)
    if seconds is not None:
        at = (time.monotonic() + seconds, seconds, name)
        _LIMIT.at = at if prev is None or at[0] < prev[0] else prev
    try:
        yield
    finally:
        _LIMIT.at = prev


def check_time() -> None:
    at = getattr(_LIMIT, "at", None)
    if at is not None and time.monotonic() > at[0]:
        raise CompileTimeoutError(f"compiling took longer than {at[2]}={at[1]:g} s")


# --------------------------------------------------------------------------- AST


class Node:
    """A regular language over symbols.  Immutable; build with the helpers below."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Never(Node):
    pass


@dataclass(frozen=True, slots=True)
class _Empty(Node):
    pass


NEVER: Node = _Never()
EMPTY: Node = _Empty()


@dataclass(frozen=True, slots=True)
class Sym(Node):
    """One symbol out of a set (bitset over symbol ids)."""

    mask: int


@dataclass(frozen=True, slots=True)
class Seq(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alt(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Repeat(Node):
    """``item{lo,hi}``; ``hi=None`` means unbounded."""

    item: Node
    lo: int
    hi: int | None


@dataclass(frozen=True, slots=True, eq=False)
class Graph(Node):
    """An automaton whose edges carry sub-expressions.

    Lets a construction share a continuation instead of copying it (objects with
    optional properties stay linear in size).  Nodes are ints ``0..n_nodes-1``.
    """

    n_nodes: int
    start: int
    finals: tuple[int, ...]
    edges: tuple[tuple[int, int, Node], ...]


def position_count(node: Node, limit: int) -> int:
    """Positions the Glushkov construction gives ``node`` (embedded automata count one), or
    ``limit + 1`` once past ``limit``: every occurrence of a shared sub-node counts again,
    as the construction copies it."""
    sizes: dict[int, int] = {}

    def size(n: Node) -> int:
        got = sizes.get(id(n))
        if got is not None:
            return got
        if isinstance(n, Sym | DfaNode):
            c = 1
        elif isinstance(n, Seq | Alt):
            c = 0
            for it in n.items:
                c += size(it)
                if c > limit:
                    break
        elif isinstance(n, Repeat):
            c = size(n.item) * (n.lo + (1 if n.hi is None else n.hi - n.lo))
        elif isinstance(n, Graph):
            c = 0
            for _, _, e in n.edges:
                c += size(e)
                if c > limit:
                    break
        else:
            c = 0
        c = min(c, limit + 1)
        sizes[id(n)] = c
        return c

    return size(node)


def graph_alive(g: Graph) -> set[int]:
    """Nodes with a path to a final node over edges that are not NEVER (backward search)."""
    check_time()
    preds: dict[int, list[int]] = {}
    for u, v, x in g.edges:
        if x is not NEVER:
            preds.setdefault(v, []).append(u)
    alive = set(g.finals)
    todo = list(alive)
    while todo:
        for u in preds.get(todo.pop(), ()):
            if u not in alive:
                alive.add(u)
                todo.append(u)
    return alive


def graph_is_empty(g: Graph) -> bool:
    return g.start not in graph_alive(g)


@dataclass(frozen=True, slots=True, eq=False)
class DfaNode(Node):
    """A compiled DFA used as a piece of a larger expression.

    ``key_set`` (non-zero) marks the additional-key automata of an object whose keys,
    declared names included, are every string but finitely many: whatever prefix of a key
    such an automaton has read can still go on by any character, so the token level takes
    the quote-free part of a mask there from the string tables (see ``char_phases``).
    """

    dfa: DFA | LazyDFA | CounterDFA | CountedDFA
    key_set: int = 0


def sym(*symbols: int) -> Node:
    m = 0
    for s in symbols:
        m |= 1 << s
    return Sym(m) if m else NEVER


def sym_range(lo: int, hi: int) -> Node:
    """Symbols lo..hi inclusive."""
    if hi < lo:
        return NEVER
    return Sym(((1 << (hi - lo + 1)) - 1) << lo)


def mask_range(lo: int, hi: int) -> int:
    return 0 if hi < lo else ((1 << (hi - lo + 1)) - 1) << lo


_BYTE_SYMS = tuple(Sym(1 << b) for b in range(256))


@functools.lru_cache(maxsize=1 << 16)
def lit(data: bytes | str) -> Node:
    """The literal text (nodes are immutable: one per text, shared; a recursive schema spells
    the same keys and separators ~10^5 times)."""
    if isinstance(data, str):
        data = data.encode()
    if not data:
        return EMPTY
    return Seq(tuple(_BYTE_SYMS[b] for b in data)) if len(data) > 1 else _BYTE_SYMS[data[0]]


def literals_dfa(texts: Iterable[bytes | str]) -> DFA:
    """The trie of some literal texts as a DFA (built directly: no subset construction).

    For enums with many values: as Glushkov positions, hundreds of literals make states of
    hundreds of positions; as one embedded trie they are a few hundred small states.
    """
    children: list[dict[int, int]] = [{}]
    final = [False]
    for t in texts:
        data = t.encode() if isinstance(t, str) else t
        node = 0
        for b in data:
            nxt = children[node].get(b)
            if nxt is None:
                nxt = len(children)
                children[node][b] = nxt
                children.append({})
                final.append(False)
            node = nxt
        final[node] = True
    # merge equal subtrees (a DAWG: the minimal DFA of a finite language, in one bottom-up pass;
    # children are numbered after their parents): 1,554 codes "005-001".. share their suffixes
    # and need ~30 states, not ~5,000 that a first mask would mirror (8 ms) into its automaton
    cls = [0] * len(children)
    ids: dict[tuple[Any, ...], int] = {}
    for u in range(len(children) - 1, -1, -1):
        key = (final[u], *sorted((b, cls[v]) for b, v in children[u].items()))
        cls[u] = ids.setdefault(key, len(ids))
    n = len(ids)
    table = np.full((n, BYTE_SYMBOLS), -1, np.int64)
    acc = np.zeros(n, bool)
    root = cls[0]
    order = [root] + [c for c in range(n) if c != root]  # the root becomes state 0 (the start)
    new_id = np.empty(n, np.int64)
    new_id[order] = np.arange(n)
    for u, ch in enumerate(children):
        r = new_id[cls[u]]
        acc[r] = final[u]
        for b, v in ch.items():
            table[r, b] = new_id[cls[v]]
    cm, first = _column_classes(table)
    return DFA(np.ascontiguousarray(table[:, first]).astype(np.int32), acc, cm)


def seq(*items: Node) -> Node:
    out: list[Node] = []
    for it in items:
        if it is NEVER:
            return NEVER
        if it is EMPTY:
            continue
        if isinstance(it, Seq):
            out.extend(it.items)
        else:
            out.append(it)
    if not out:
        return EMPTY
    return out[0] if len(out) == 1 else Seq(tuple(out))


def alt(*items: Node) -> Node:
    out: list[Node] = []
    syms = 0
    has_empty = False
    for it in items:
        if it is NEVER:
            continue
        if isinstance(it, Alt):
            sub = it.items
        else:
            sub = (it,)
        for s in sub:
            if isinstance(s, Sym):
                syms |= s.mask
            elif s is EMPTY:
                has_empty = True
            else:
                out.append(s)
    if syms:
        out.insert(0, Sym(syms))
    if has_empty:
        if not out:
            return EMPTY
        out.append(EMPTY)
    if not out:
        return NEVER
    return out[0] if len(out) == 1 else Alt(tuple(out))


def alt_list(items: Iterable[Node]) -> Node:
    return alt(*list(items))


def opt(item: Node) -> Node:
    return alt(item, EMPTY)


def star(item: Node) -> Node:
    return rep(item, 0, None)


def plus(item: Node) -> Node:
    return rep(item, 1, None)


def rep(item: Node, lo: int, hi: int | None) -> Node:
    if hi is not None and hi < lo:
        return NEVER
    if item is EMPTY or hi == 0:
        return EMPTY
    if item is NEVER:
        return EMPTY if lo == 0 else NEVER
    if lo == 1 and hi == 1:
        return item
    return Repeat(item, lo, hi)


def join(items: Sequence[Node], sep: Node) -> Node:
    parts: list[Node] = []
    for i, it in enumerate(items):
        if i:
            parts.append(sep)
        parts.append(it)
    return seq(*parts)


# --------------------------------------------------------------------------- DFA


_ROW_CACHE_STATES = 2048  # DFAs above this many states compute rows on demand
_LITERAL_AHEAD = 8  # states of literal text built at once (see LazyDFA._literal_rows)
_NARROW = 8  # plain positions reading at most this many symbols are keyed symbol by symbol
_BULK_MIRROR = 4096  # embedded eager DFAs up to this size get all their states at first use


@dataclass(eq=False)
class DFA:
    """A deterministic automaton over symbol classes.

    ``trans[s, c]`` is the next state from ``s`` on any symbol of class ``c``, or -1.
    State 0 is the start state.  ``classmap[symbol]`` gives the class of a symbol
    (symbols beyond ``len(classmap)`` have no transitions anywhere).
    """

    trans: np.ndarray  # int32 (S, C)
    accept: np.ndarray  # bool (S,)
    classmap: np.ndarray  # int32 (n_symbols,); -1 = symbol used nowhere
    _full: np.ndarray | None = field(default=None, repr=False)

    start = 0

    @property
    def num_states(self) -> int:
        return int(self.trans.shape[0])

    def is_accepting(self, s: int) -> bool:
        return bool(self.accept[s])

    def row(self, s: int | slice) -> np.ndarray:
        """Transitions of ``s`` over raw symbols (-1 = dead)."""
        if self.num_states > _ROW_CACHE_STATES and isinstance(s, int | np.integer):
            # a big DFA (pattern x length products): an (S, symbols) int64 cache would cost
            # hundreds of ms and MB on the first row asked for; one row is a gather
            cm = self.classmap
            r = np.full(cm.shape[0], -1, np.int64)
            ok = cm >= 0
            r[ok] = self.trans[s, cm[ok]]
            return r
        rows = self.__dict__.get("_rows")
        if rows is None:
            t = np.concatenate([self.trans, np.full((self.num_states, 1), -1, np.int32)], axis=1)
            cm = np.where(self.classmap >= 0, self.classmap, t.shape[1] - 1)
            rows = t[:, cm].astype(np.int64)
            self.__dict__["_rows"] = rows
        return rows[s]

    @property
    def num_symbols(self) -> int:
        return int(self.classmap.shape[0])

    def full_table(self, n_symbols: int | None = None) -> np.ndarray:
        """(S+1, n_symbols) int32 table over raw symbols; row S is the absorbing dead state."""
        n = n_symbols or self.num_symbols
        if self._full is not None and self._full.shape[1] == n:
            return self._full
        S = self.num_states
        rows = self.row(slice(None))  # (S, num_symbols), -1 = dead
        table = np.full((S + 1, n), S, np.int32)
        k = min(n, rows.shape[1])
        table[:S, :k] = np.where(rows[:, :k] < 0, S, rows[:, :k])
        self._full = table
        return table

    def step(self, state: int, symbol: int) -> int:
        if state < 0 or symbol >= self.num_symbols:
            return -1
        c = int(self.classmap[symbol])
        return -1 if c < 0 else int(self.trans[state, c])

    def run(self, symbols: Iterable[int], state: int = 0) -> int:
        for s in symbols:
            state = self.step(state, s)
            if state < 0:
                return -1
        return state

    def matches(self, data: bytes | Iterable[int]) -> bool:
        st = self.run(data)
        return st >= 0 and bool(self.accept[st])

    def live_states(self) -> np.ndarray:
        """Bool mask (read-only) of states from which an accepting state is reachable.

        Cached on the automaton (never changed once built): the compiler asks the same few
        key automata whether they are empty once per object it derives, 66k times for 42
        automata in one refused schema, a quarter of its compile.
        """
        live = self.__dict__.get("_live")
        if live is not None:
            return live
        live = self.accept.copy()
        t = self.trans
        while True:
            nxt = live | ((t >= 0) & live[np.where(t >= 0, t, 0)]).any(axis=1)
            if (nxt == live).all():
                break
            live = nxt
        live.setflags(write=False)
        self.__dict__["_live"] = live
        return live

    def is_empty(self) -> bool:
        return not bool(self.live_states()[0]) if self.num_states else True

    def trim(self) -> DFA:
        """Drop states that cannot reach acceptance (and unreachable ones); keep start = 0."""
        live = self.live_states()
        if not live[0]:
            return DFA(np.zeros((1, self.trans.shape[1]), np.int32) - 1, np.zeros(1, bool), self.classmap)
        t = np.where((self.trans >= 0) & live[np.where(self.trans >= 0, self.trans, 0)], self.trans, -1)
        # reachability from 0
        S = self.num_states
        seen = np.zeros(S, bool)
        seen[0] = True
        frontier = np.array([0])
        while frontier.size:
            nx = t[frontier].ravel()
            nx = np.unique(nx[nx >= 0])
            nx = nx[~seen[nx]]
            seen[nx] = True
            frontier = nx
        keep = np.nonzero(seen)[0]
        remap = np.full(S + 1, -1, np.int32)
        remap[keep] = np.arange(keep.size, dtype=np.int32)
        nt = remap[np.where(t[keep] >= 0, t[keep], S)]
        return DFA(nt.astype(np.int32), self.accept[keep].copy(), self.classmap)


def char_final(char: DFA) -> int | None:
    """The final state of a one-character DFA, when it is single and a sink (None otherwise).

    Counters, string automata and the per-vocabulary character tables fold that state back
    to the start of the next character, so they need exactly this shape.
    """
    finals = np.flatnonzero(char.accept)
    if finals.size != 1 or (char.trans[finals[0]] >= 0).any():
        return None
    return int(finals[0])


@dataclass(eq=False)
class StringsDFA(DFA):
    """A DFA of strings of ``char`` characters in which no sequence of characters ever dies.

    ``phase[s]`` is the state of ``char`` that state ``s`` is in (-1: unreachable).  From
    ``s``, a run of bytes survives exactly when it survives in ``char`` looped from that
    phase, so the token level takes the quote-free part of a mask from per-vocabulary
    tables instead of walking the vocabulary: the keys of an open object are all
    strings but finitely many (the declared names), and their automaton tracks the names.
    Built by :func:`strings_dfa`, which checks the property.
    """

    char: DFA | None = None
    phase: np.ndarray | None = None


def strings_dfa(d: DFA, char: DFA, max_states: int = 50_000) -> DFA:
    """``d`` as a :class:`StringsDFA` over the one-character DFA ``char``, or ``d`` unchanged.

    Checked state by state (breadth first, vectorised): the bytes a state can read are
    exactly those its phase of ``char`` can read, and every state has one phase.
    """
    if d.num_states > max_states:
        return d
    d = d.trim()
    phase = _phases(d, char, exact=True)
    if phase is None:
        return d
    return StringsDFA(d.trans, d.accept, d.classmap, char=char, phase=phase)


def _phases(d: DFA, char: DFA, *, exact: bool) -> np.ndarray | None:
    """Breadth-first phase of each state of ``d`` over ``char`` (vectorised), or None where a
    state would have two, or reads a byte its phase cannot (``exact``: or cannot read one
    its phase can)."""
    f = char_final(char)
    if f is None:
        return None
    n = max(d.num_symbols, char.num_symbols)
    rows = np.full((d.num_states, n), -1, np.int64)
    rows[:, : d.num_symbols] = d.row(slice(None))
    crows = np.full((char.num_states, n), -1, np.int64)
    crows[:, : char.num_symbols] = char.row(slice(None))
    crows[crows == f] = char.start  # a finished character folds back to the next one
    phase = np.full(d.num_states, -1, np.int64)
    phase[0] = char.start
    frontier = np.zeros(1, np.int64)
    while frontier.size:
        r, c = rows[frontier], crows[phase[frontier]]
        if (((r >= 0) != (c >= 0)) if exact else ((r >= 0) & (c < 0))).any():
            return None
        ok = r >= 0
        tgt, ph = r[ok], c[ok]
        new = phase[tgt] < 0
        phase[tgt[new]] = ph[new]
        if (phase[tgt] != ph).any():
            return None
        frontier = np.unique(tgt[new])
    return phase


def char_phases(d: DFA, char: DFA) -> np.ndarray | None:
    """The state of ``char`` each state of ``d`` is in (-1: unreachable), when every state has
    one and reads no byte its phase cannot read; None otherwise (cached on ``d``).

    Like :func:`strings_dfa` without "never dies": ``d`` may stop where ``char`` goes on
    (a key automaton that leaves the rest to the declared names and other patterns).
    """
    cache = d.__dict__.setdefault("_char_phases", {})
    key = id(char)
    if key in cache:
        return cache[key][0]
    got = _phases(d, char, exact=False) if d.num_states <= 20_000 else None
    cache[key] = (got, char)  # char kept alive so its id stays its own
    return got


class _ComputedCounter:
    """Rows computed from a count and a small automaton's state: state ``count * width + q``."""

    start = 0
    width: int
    min_length: int
    max_length: int
    _cols: int

    @property
    def num_states(self) -> int:
        return (self._top + 1) * self.width

    def row(self, s: int) -> np.ndarray:
        raise NotImplementedError

    def is_accepting(self, s: int) -> bool:
        raise NotImplementedError

    @property
    def num_symbols(self) -> int:
        return self._cols

    def _bounds(self, width: int, cols: int, min_length: int, max_length: int | None) -> None:
        self.width, self._cols = width, cols
        self.min_length, self.max_length = min_length, max_length
        self._top = min_length if max_length is None else max_length  # counts beyond this are not kept
        if (self._top + 1) * width >= 1 << 32:
            raise ValueError(f"{type(self).__name__} states must fit in 32 bits")

    def position(self, s: int) -> tuple[int, int]:
        raise NotImplementedError

    def left(self, s: int) -> tuple[int, int]:
        """(characters that may still be started, characters still needed before the string may
        end) at state ``s``; a character under way counts as done for both."""
        count, phase = self.position(s)
        done = count + (1 if phase != DFA.start else 0)
        room = NO_BOUND if self.max_length is None else self.max_length - done
        return room, self.min_length - done

    def step(self, s: int, symbol: int) -> int:
        if s < 0 or symbol >= self.num_symbols:
            return -1
        return int(self.row(s)[symbol])

    def matches(self, data: bytes | Iterable[int]) -> bool:
        s = 0
        for b in data:
            s = self.step(s, b)
            if s < 0:
                return False
        return self.is_accepting(s)


class CounterDFA(_ComputedCounter):
    """Strings of ``min_length..max_length`` characters of ``char``, computed, never tabled.

    State ``count * m + p`` is "``count`` characters done, at the ``p``-th non-final state
    of ``char``" (``m`` of them; ``p = 0`` between characters).  Rows are arithmetic on the
    character DFA's rows, so a ``maxLength`` of 100,000 costs what one of 20 does, and the
    token level reads each state's count and phase to take a bounded string's mask from
    per-vocabulary tables (characters each token starts) instead of walking the vocabulary
    from every position of the count.  ``max_length`` None: no bound, the count stops at
    ``min_length`` (a ``minLength`` alone).  Only embedded in lazy automata (a ``DfaNode``).
    """

    def __init__(self, char: DFA, min_length: int, max_length: int | None) -> None:
        f = char_final(char)
        if f is None:
            raise ValueError("CounterDFA needs a one-character DFA with a single sink final state")
        inner = np.array([q for q in range(char.num_states) if q != f], np.int64)  # start (0) first
        idx = np.full(char.num_states, -1, np.int64)
        idx[inner] = np.arange(inner.size)
        rows = char.row(slice(None))[inner]  # (m, symbols) over raw symbols, -1 dead
        # next phase index per (phase, symbol); -2: the character is complete
        self._next = np.where(rows == f, -2, np.where(rows >= 0, idx[np.maximum(rows, 0)], -1))
        self.char = char
        self.inner = inner  # phase index -> state of ``char``
        self.m = int(inner.size)
        self._bounds(self.m, int(rows.shape[1]), min_length, max_length)

    def position(self, s: int) -> tuple[int, int]:
        """(characters done, state of ``char``) of state ``s``."""
        k, p = divmod(int(s), self.m)
        return k, int(self.inner[p])

    def is_accepting(self, s: int) -> bool:
        k, p = divmod(int(s), self.m)
        return p == 0 and self.min_length <= k <= self._top

    def row(self, s: int) -> np.ndarray:
        """Transitions of ``s`` over raw symbols (-1 = dead)."""
        k, p = divmod(int(s), self.m)
        nx = self._next[p]
        if self.max_length is None:  # the count stays at min_length once there
            done = min(k + 1, self._top)
        elif k >= self.max_length:  # no room for another character (or its rest)
            return np.full(nx.shape[0], -1, np.int64)
        else:
            done = k + 1
        return np.where(nx == -2, done * self.m, np.where(nx >= 0, k * self.m + nx, -1))


_COUNTED_MAX_STATES = 20_000  # largest pattern automaton a CountedDFA counts over
_COUNTED_MAX_PERIOD = 4096  # completion lengths followed before the sequence must repeat


def _char_steps(rows: np.ndarray, between: np.ndarray) -> tuple[np.ndarray, ...]:
    """One character read from every state at once (breadth first over bytes: a character is at
    most a few bytes): (``src``, ``dst``) pairs where finishing it from ``src`` lands between
    characters at ``dst``, and (``msrc``, ``mid``) pairs where reading it passes through ``mid``."""
    n = rows.shape[0]
    src_l: list[np.ndarray] = []
    dst_l: list[np.ndarray] = []
    msrc_l: list[np.ndarray] = []
    mid_l: list[np.ndarray] = []
    o = s = np.arange(n, dtype=np.int64)
    for _ in range(16):
        if not s.size:
            break
        t = rows[s]
        ok = t >= 0
        pair = np.unique(np.repeat(o, ok.sum(axis=1)) * n + t[ok])
        o, s = pair // n, pair % n
        done = between[s]
        src_l.append(o[done])
        dst_l.append(s[done])
        o, s = o[~done], s[~done]
        msrc_l.append(o)
        mid_l.append(s)
    empty = np.zeros(0, np.int64)
    return tuple(np.concatenate(x) if x else empty for x in (src_l, dst_l, msrc_l, mid_l))


def _completions(src: np.ndarray, dst: np.ndarray, accept: np.ndarray,
                 between: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """The states that reach acceptance after exactly ``j`` more characters, for every ``j``
    (``src``, ``dst``: the character steps of :func:`_char_steps`).

    A character under way counts as one.  The sets form an eventually periodic sequence:
    returned as (``reach[i]`` for ``i < pre + period``, ``pre``, ``period``), index ``j >= pre``
    read at ``pre + (j - pre) % period``; None when it does not repeat within
    ``_COUNTED_MAX_PERIOD``.
    """
    n = accept.shape[0]
    cur = accept & between
    seen: dict[bytes, int] = {}
    sets: list[np.ndarray] = []
    for j in range(_COUNTED_MAX_PERIOD + 1):
        key = np.packbits(cur).tobytes()
        if key in seen:
            pre = seen[key]
            return np.array(sets, bool).reshape(len(sets), n), pre, j - pre
        seen[key] = j
        sets.append(cur)
        nxt_set = np.zeros(n, bool)
        nxt_set[src[cur[dst]]] = True
        cur = nxt_set
    return None


class CountedDFA(_ComputedCounter):
    """Strings of a pattern automaton ``d`` with ``min_length..max_length`` characters, computed.

    State ``count * n + q`` is "``count`` characters done, at state ``q`` of ``d``": a string
    with a pattern and a long length (``"pattern": "^[a-z0-9-]+$", "maxLength": 255``, a
    100-word limit within 5,000 characters) without the (pattern states x lengths) table.
    Every state of ``d`` has one phase of the character DFA ``char``; ``d`` may die where
    ``char`` goes on (``dies``: a pattern of a character class) or never (a
    :class:`StringsDFA`: a search pattern).

    A transition is kept only into a state from which the string can still end within the
    length bounds (``_completions``): ``"pattern": "abc", "maxLength": 20`` gives no ``x``
    after 19 of them.  The token level takes the quote-free part of a mask from
    per-vocabulary tables (characters each token starts, as for a :class:`CounterDFA`), ANDed
    with the tokens ``d`` survives from ``q`` when it dies, for the tokens that leave at least
    :meth:`margin` characters of room; the few others and the tokens with a quote are walked.
    """

    def __init__(self, d: DFA, min_length: int, max_length: int, *, char: DFA | None = None,
                 phase: np.ndarray | None = None) -> None:
        if char is None or phase is None:
            assert isinstance(d, StringsDFA) and d.char is not None and d.phase is not None
            char, phase = d.char, d.phase
        self.d = d
        self.char = char
        self.phase = phase
        self.dies = not isinstance(d, StringsDFA)
        self.n = d.num_states
        rows = d.row(slice(None))  # (n, symbols), -1 dead
        self._rows = rows
        between = phase == char.start
        # a byte that lands between characters completes one (characters are never empty)
        self._bump = ((rows >= 0) & between[np.maximum(rows, 0)]).astype(np.int64)
        self._bounds(self.n, int(rows.shape[1]), min_length, max_length)
        self._steps = _char_steps(rows, between)
        got = _completions(self._steps[0], self._steps[1], d.accept, between)
        if got is None:
            raise ValueError("pattern automaton's completion lengths do not settle")
        self._reach, self._pre, self._period = got
        # fewest characters to an accepting state from each state, not counting one under way
        # (the room a token leaves counts the characters it starts)
        hit = self._reach.any(axis=0)
        first = self._reach.argmax(axis=0)
        need = np.where(hit, first, max_length + 1).astype(np.int64)
        self.need = np.maximum(need - ~between, 0)
        # every state that can end after j more characters can end after any more (a class
        # repeated, a search): below minLength too, whether a token leaves the string able to
        # end in bounds then depends on the room alone, as at or above it (see margin)
        after = np.arange(self._reach.shape[0])[:, None] >= first[None, :]
        self.gapless = bool(np.all(self._reach | ~after | ~hit[None, :]))
        self._live_cache: dict[tuple[int, int], np.ndarray] = {}
        self._margins: np.ndarray | None = None
        self._walk: tuple[np.ndarray, np.ndarray] | None = None
        # below minLength the string tables serve when every state the string can be in there
        # can still end in bounds (gapless, or checked count by count for a short minimum:
        # ``^[+\w-]{5,96}$`` with minLength 5 has gaps past 96, none that matter)
        self.below_min = self.gapless or self._below_min_live()

    def _below_min_live(self, limit: int = 64) -> bool:
        """Every state reachable with ``k < min_length`` characters done (between characters or
        inside one) is live at ``k``, so a token that keeps the pattern alive there keeps the
        string able to end in bounds; False past ``limit`` (not checked)."""
        if self.min_length > limit:
            return False
        src, dst, msrc, mid = self._steps
        cur = np.zeros(self.n, bool)
        cur[0] = True
        for k in range(self.min_length):
            live = self.live(k)
            if not (live[cur].all() and live[mid[cur[msrc]]].all()):
                return False
            nxt = np.zeros(self.n, bool)
            nxt[dst[cur[src]]] = True
            cur = nxt
        return True

    @classmethod
    def build(cls, d: DFA, char: DFA, min_length: int, max_length: int) -> CountedDFA | bool | None:
        """``d`` (string content) counted over ``char``: the automaton, False when no string of
        ``min_length..max_length`` characters matches, None where ``d``'s states have no
        single phase of ``char`` or it is too big to track."""
        sd = strings_dfa(d, char)
        if isinstance(sd, StringsDFA):
            d, phase = sd, sd.phase
        else:
            d = d.trim()
            phase = char_phases(d, char)  # (None past 20,000 states)
        if phase is None or d.num_states > _COUNTED_MAX_STATES or d.is_empty():
            return None
        try:
            c = cls(d, min_length, max_length, char=char, phase=phase)
        except ValueError:
            return None
        if not c.live(0)[0]:
            return False
        c.margin(0)  # margins and the walk table are built now, in the compile, not in a first mask
        c.walk_table  # noqa: B018
        return c

    @property
    def walk_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``d`` as a token-trie walk table over bytes (row 0 dead, state ``q`` at row ``q + 1``)
        and its all-true ``expanded``; a closing quote from an accepting state leads to a last
        row that reads nothing more (string content never holds a bare quote, so a quote-free
        token's walk never meets it), so a walk up to a token's closing quote tells whether the
        pattern accepts there."""
        if self._walk is None:
            n = self.n
            table = np.zeros((n + 2, BYTE_SYMBOLS), np.int32)
            k = min(self._rows.shape[1], BYTE_SYMBOLS)
            table[1 : n + 1, :k] = self._rows[:, :k] + 1
            table[1 : n + 1, 0x22] = np.where(self.d.accept, n + 1, table[1 : n + 1, 0x22])
            self._walk = (table, np.ones(n + 2, bool))
        return self._walk

    def live(self, k: int) -> np.ndarray:
        """Per state of ``d``: with ``k`` characters done there, the string can still end in bounds."""
        jmin, jmax = max(0, self.min_length - k), self.max_length - k
        span = self._pre + self._period
        jmax = min(jmax, jmin + span)
        got = self._live_cache.get((jmin, jmax))
        if got is None:
            if jmax < jmin:
                got = np.zeros(self.n, bool)
            else:
                j = np.arange(jmin, jmax + 1)
                idx = np.where(j < self._pre, j, self._pre + (j - self._pre) % self._period)
                got = self._reach[np.unique(idx)].any(axis=0)
            if len(self._live_cache) < 65_536:
                self._live_cache[(jmin, jmax)] = got
        return got

    def margin(self, q: int) -> int:
        """Most characters a state reachable from ``q`` by at least one byte still needs to start
        before the string may end: a token that leaves that much room (at or above the minimum
        length) can only land where the string can still end."""
        if self._margins is None:
            self._margins = self._all_margins()
        return int(self._margins[q])

    def _all_margins(self, rounds: int = 32) -> np.ndarray:
        """:meth:`margin` of every state: the maximum of ``need`` propagated back along the edges
        (vectorised); where that has not settled in ``rounds`` the largest ``need`` of all,
        which bounds every margin (a word limit's chain of states is longer than that)."""
        rows = np.sort(self._rows, axis=1)
        keep = (rows >= 0) & np.concatenate([np.ones((rows.shape[0], 1), bool), rows[:, 1:] != rows[:, :-1]], axis=1)
        src, dst = np.nonzero(keep)[0], rows[keep]
        m = np.zeros(self.n, np.int64)
        for _ in range(rounds):
            new = m.copy()
            np.maximum.at(new, src, np.maximum(self.need[dst], m[dst]))
            if np.array_equal(new, m):
                return m
            m = new
        return np.full(self.n, int(self.need.max(initial=0)), np.int64)

    def position(self, s: int) -> tuple[int, int]:
        """(characters done, state of ``char``) of state ``s``."""
        k, q = divmod(int(s), self.n)
        return k, int(self.phase[q])

    def is_accepting(self, s: int) -> bool:
        k, q = divmod(int(s), self.n)
        return bool(self.d.accept[q]) and self.min_length <= k <= self.max_length

    def step(self, s: int, symbol: int) -> int:
        """``row(s)[symbol]`` without building the row (a token stepped byte by byte)."""
        if s < 0 or symbol >= self._cols:
            return -1
        k, q = divmod(int(s), self.n)
        if k >= self.max_length and self.phase[q] == self.char.start:
            return -1
        r = int(self._rows[q, symbol])
        if r < 0:
            return -1
        k += int(self._bump[q, symbol])
        return k * self.n + r if self.live(k)[r] else -1

    def row(self, s: int) -> np.ndarray:
        """Transitions of ``s`` over raw symbols (-1 = dead, or no way to end in bounds)."""
        k, q = divmod(int(s), self.n)
        r = self._rows[q]
        if k >= self.max_length and self.phase[q] == self.char.start:  # no room for another character
            return np.full(r.shape[0], -1, np.int64)
        bump = self._bump[q]
        tgt = np.maximum(r, 0)
        ok = (r >= 0) & np.where(bump == 1, self.live(k + 1)[tgt], self.live(k)[tgt])
        return np.where(ok, (k + bump) * self.n + r, -1)


# --------------------------------------------------------------------------- Glushkov

# Item codes.  Plain Glushkov positions are small ints.  An embedded automaton
# (a DfaNode occurrence, "instance" j) is never copied into positions: its states are
# items too.  GATE|j<<32|s: "may read next from inner state s"; PAIR|j<<32|s: "just
# read a symbol, now at inner state s"; INST|j marks "instance j may end here" in
# last-sets, so links after it go to ``inst_follow[j]``.
GATE = 1 << 61
PAIR = 1 << 62
INST = 1 << 60
_LOW = (1 << 32) - 1
_INST_MASK = (1 << 28) - 1

_NONE: frozenset[int] = frozenset()
Walk = tuple[bool, frozenset[int], frozenset[int]]


class _Glushkov:
    """Positions, labels and follow sets of an AST (fresh positions per occurrence).

    Position sets are Python sets of small ints: DFA states touch few positions,
    so hashing and unions stay proportional to what a state holds, not to the size
    of the whole expression.  Embedded automata cost O(1) positions.
    """

    def __init__(self, max_positions: int) -> None:
        self.labels: list[int] = []
        self.follow: list[set[int]] = []
        self.instances: list[DFA | LazyDFA | CounterDFA | CountedDFA] = []
        self.inst_follow: list[set[int]] = []
        self.inst_key_set: list[int] = []
        self.max_positions = max_positions

    def _new(self, label: int) -> int:
        p = len(self.labels)
        if p >= self.max_positions:
            raise AutomatonTooLarge(f"regular expression has more than {self.max_positions} positions")
        self.labels.append(label)
        self.follow.append(set())
        return p

    def _link(self, last: frozenset[int], first: frozenset[int]) -> None:
        if not first:
            return
        fol = self.follow
        for p in last:
            if p < INST:
                fol[p] |= first
            else:
                self.inst_follow[p & _LOW] |= first

    def walk(self, node: Node) -> Walk:
        """Returns (nullable, first, last) with fresh positions."""
        check_time()
        if isinstance(node, Sym):
            p = frozenset((self._new(node.mask),))
            return False, p, p
        if isinstance(node, Seq):
            n, f, la = True, _NONE, _NONE
            for it in node.items:
                n2, f2, l2 = self.walk(it)
                self._link(la, f2)
                f = f | f2 if n else f
                la = la | l2 if n2 else l2
                n = n and n2
            return n, f, la
        if isinstance(node, Alt):
            n, fs, ls = False, [], []
            for it in node.items:
                n2, f2, l2 = self.walk(it)
                n = n or n2
                fs.append(f2)
                ls.append(l2)
            return n, frozenset().union(*fs), frozenset().union(*ls)
        if isinstance(node, Repeat):
            return self._repeat(node)
        if node is EMPTY:
            return True, _NONE, _NONE
        if node is NEVER:
            return False, _NONE, _NONE
        if isinstance(node, DfaNode):
            return self._instance(node.dfa, node.key_set)
        if isinstance(node, Graph):
            return self._graph(node)
        raise TypeError(f"unknown node {node!r}")

    def _repeat(self, node: Repeat) -> Walk:
        n, f, la = True, _NONE, _NONE
        for _ in range(node.lo):
            n2, f2, l2 = self.walk(node.item)
            self._link(la, f2)
            f = f | f2 if n else f
            la = la | l2 if n2 else l2
            n = n and n2
        if node.hi is None:
            n2, f2, l2 = self.walk(node.item)
            self._link(l2, f2)  # star
            self._link(la, f2)
            f = f | f2 if n else f
            la = la | l2
            return n, f, la
        # optional tail a(a(a)?)? built back to front so no deep recursion
        tf: frozenset[int] = _NONE
        tl: list[frozenset[int]] = []
        for _ in range(node.hi - node.lo):
            n2, f2, l2 = self.walk(node.item)
            self._link(l2, tf)
            tf = f2 | tf if n2 else f2
            tl.append(l2)
        tls = frozenset().union(*tl)
        self._link(la, tf)
        f = f | tf if n else f
        la = la | tls
        return n, f, la

    def _graph(self, g: Graph) -> Walk:
        # keep only edges into nodes that can still reach a final node: no dead ends
        alive = graph_alive(g)
        if g.start not in alive:
            return False, _NONE, _NONE
        edges = [(u, v, x) for u, v, x in g.edges if v in alive and u in alive and x is not NEVER]
        walked = [(u, v, *self.walk(x)) for u, v, x in edges]
        n = g.n_nodes
        in_direct: list[set[int]] = [set() for _ in range(n)]
        out: list[set[int]] = [set() for _ in range(n)]
        for u, v, _nl, f, la in walked:
            in_direct[v] |= la
            out[u] |= f
        # closure over nullable edges by worklists (a chain of optional properties made the
        # pass-until-stable loop quadratic in the number of properties)
        npreds: list[list[int]] = [[] for _ in range(n)]
        for u, v, nl, _f, _l in walked:
            if nl:
                npreds[v].append(u)
        null_reach = [False] * n
        todo = list(set(g.finals))
        for fn in todo:
            null_reach[fn] = True
        while todo:
            for u in npreds[todo.pop()]:
                if not null_reach[u]:
                    null_reach[u] = True
                    todo.append(u)
        todo = [v for v in range(n) if npreds[v] and out[v]]
        queued = set(todo)
        while todo:
            v = todo.pop()
            queued.discard(v)
            for u in npreds[v]:
                if u != v and not out[v] <= out[u]:
                    out[u] |= out[v]
                    if u not in queued:
                        queued.add(u)
                        todo.append(u)
        for u in range(n):
            self._link(frozenset(in_direct[u]), frozenset(out[u]))
        last: set[int] = set()
        for u in range(n):
            if null_reach[u]:
                last |= in_direct[u]
        return null_reach[g.start], frozenset(out[g.start]), frozenset(last)

    def _instance(self, auto: DFA | LazyDFA | CounterDFA | CountedDFA, key_set: int = 0) -> Walk:
        j = len(self.instances)
        self.instances.append(auto)
        self.inst_follow.append(set())
        self.inst_key_set.append(key_set)
        start = auto.start
        return auto.is_accepting(start), frozenset((GATE | (j << 32) | start,)), frozenset((INST | j,))


def _item_key(codes: list[int]) -> tuple[int, ...]:
    """The state key of a target's item codes: sorted, without repeats."""
    return (codes[0],) if len(codes) == 1 else tuple(sorted(set(codes)))


def one_gate(items: Iterable[int]) -> tuple[int, list[int]]:
    """(the one embedded-automaton item, the plain positions) of a state's successor items;
    the gate is -1 when there is none or more than one."""
    gate = -1
    plain: list[int] = []
    for c in items:
        if c >= INST:
            if gate >= 0:
                return -1, plain
            gate = c
        else:
            plain.append(c)
    return gate, plain


def lockstep_gates(lazy: LazyDFA, items: Iterable[int]) -> tuple[tuple[int, ...], int, list[int]] | None:
    """(instances, their inner state, the plain positions) of a state's successor items that
    read in one embedded automaton: one instance, or several instances of one automaton at
    one inner state (the same property in two ``anyOf`` branches), which move in lockstep.
    None when there is no such item or the items go different ways."""
    insts: list[int] = []
    inner = -1
    auto = None
    plain: list[int] = []
    for c in items:
        if c >= INST:
            i = (c >> 32) & ((1 << 28) - 1)
            if auto is None:
                auto, inner = lazy.instances[i], c & _LOW
            elif lazy.instances[i] is not auto or c & _LOW != inner:
                return None
            insts.append(i)
        else:
            plain.append(c)
    if auto is None:
        return None
    return tuple(sorted(insts)), inner, plain


_WALK_LOCK = threading.RLock()
_WALKED = frozenset({"labels", "follow", "instances", "inst_key_set", "inst_follow", "last_plain",
                     "last_inst", "_succ"})


class LazyDFA:
    """Subset construction on demand, over raw symbols.

    State 0 is the absorbing dead state (its row is all zeros), state 1 the start.
    ``table[s]`` is valid once ``expanded[s]``; :meth:`expand` fills rows.  Only the
    states a caller actually reaches are ever built, so a schema with a huge language
    (free-form values nested three deep, long bounded strings) costs what is used.
    """

    start = 1

    def __init__(self, node: Node, *, n_sym: int | None = None, max_states: int = DEFAULT_MAX_STATES,
                 max_positions: int = 2_000_000, limit_name: str = "max_states", deferred: bool = False) -> None:
        """``deferred``: walk ``node`` (the Glushkov construction) when the automaton is first read
        past its start, not now.  For a JSON value (never empty: the start does not accept) over
        bytes only: a recursive schema unrolled to max_recursion_depth makes thousands of
        definition automata in contexts that an output rarely reaches, and walking each at
        compile time was most of such a compile (Github_hard---o69210: 6,690 walks, 8 of 15 s)."""
        self.max_states = max_states
        self.limit_name = limit_name  # the option to raise, named in AutomatonTooLarge
        self._label_arr: dict[int, np.ndarray] = {}
        self._inst_ids: dict[int, np.ndarray] = {}  # instance -> lazy id of each inner state alone
        self._code_pieces: dict[int, tuple[tuple[int, int], ...]] = {}  # embedded state -> row by target
        self._cls_bits: dict[int, list[int]] = {}  # embedded eager DFA -> symbols of each class
        self._ids: dict[tuple[int, ...], int] = {}  # sorted item codes -> state
        self._miss_buf = np.empty(0, np.int32)  # scratch for _mirror_into
        self._alone: set[int] = set()  # instances with a state of one inner state alone made one by one
        self._max_positions = max_positions
        self._node: Node | None = node
        if deferred:
            self.n_sym = max(BYTE_SYMBOLS, n_sym or 0)
            nullable = False
        else:
            nullable, width = self._walk()
            self.n_sym = max(width, n_sym or 0)
        # a few rows to start: a recursive schema makes thousands of these (one per $ref use and
        # depth) that a compile never expands; 64 rows each held 1 GB in 20 s of one such compile
        cap = 4
        self.table = np.zeros((cap, self.n_sym), np.int32)
        self.expanded = np.zeros(cap, bool)
        self.expanded[0] = True
        self.accept = np.zeros(cap, bool)
        self.accept[1] = nullable
        self.n = 2
        self._weights = _WEIGHTS

    def _walk(self, deferred: bool = False) -> tuple[bool, int]:
        """The Glushkov construction of the node: positions, follow sets, embedded automata.
        Returns (nullable, symbols used); a deferred automaton's (promised at creation: a
        non-empty language over bytes) is checked before anything is kept."""
        node = self._node
        assert node is not None
        g = _Glushkov(self._max_positions)
        gc_was = gc.isenabled()
        gc.disable()
        try:
            nullable, first, last = g.walk(node)
        finally:
            if gc_was:
                gc.enable()
        width = max([BYTE_SYMBOLS] + [lab.bit_length() for lab in g.labels] + [a.num_symbols for a in g.instances])
        if deferred and (nullable or width > self.n_sym):
            raise RuntimeError("a deferred automaton must be a non-empty language over bytes")
        # follow sets as tuples: tuples of ints drop out of the cyclic GC's view after its first
        # pass, sets never do, and a big schema has 10^5 of them (gen-2 pauses of 100+ ms)
        self.labels = g.labels
        self.follow: list[tuple[int, ...]] = [tuple(f) for f in g.follow]
        self.instances = g.instances
        self.inst_key_set = g.inst_key_set
        self.inst_follow: list[tuple[int, ...]] = [tuple(f) for f in g.inst_follow]
        self.last_plain = frozenset(p for p in last if p < INST)
        self.last_inst = frozenset(p & _LOW for p in last if p >= INST)
        self._succ: list[tuple[int, ...]] = [(), tuple(first)]  # what each state reads next
        self._node = None  # (walked: kept only until now, so a failed walk is tried again)
        return nullable, width

    def __getattr__(self, name: str) -> Any:
        # only reached for an attribute not set yet: those of the walk, in a deferred automaton
        if name not in _WALKED or "_node" not in self.__dict__:
            raise AttributeError(name)
        with _WALK_LOCK:  # two threads reading one automaton: one walks, the other waits for it
            if self.__dict__["_node"] is not None:
                self._walk(deferred=True)
        return self.__dict__[name]

    @classmethod
    def from_dfa(cls, dfa: DFA, n_sym: int | None = None) -> LazyDFA:
        """A fully expanded LazyDFA with the same language (start 1, dead 0)."""
        self = cls(DfaNode(dfa), n_sym=n_sym)
        self.expand_all()
        return self

    @classmethod
    def from_table(cls, table: np.ndarray, accept: np.ndarray) -> LazyDFA:
        """A fully built automaton from a saved table (row 0 dead, row 1 start)."""
        self = cls(EMPTY, n_sym=table.shape[1])
        self.table = np.ascontiguousarray(table, dtype=np.int32)
        self.accept = np.asarray(accept, dtype=bool).copy()
        self.expanded = np.ones(table.shape[0], bool)
        self.n = table.shape[0]
        return self

    # ---------------------------------------------------------------- interface shared with DFA

    @property
    def num_symbols(self) -> int:
        return self.n_sym

    @property
    def num_states(self) -> int:
        return self.n

    def is_accepting(self, s: int) -> bool:
        return bool(self.accept[s])

    def row(self, s: int) -> np.ndarray:
        """Transitions of ``s`` over symbols, -1 where dead (the DFA convention)."""
        if not self.expanded[s]:
            self.expand([s])
        r = self.table[s].astype(np.int64)
        r[r == 0] = -1
        return r

    def step(self, s: int, symbol: int) -> int:
        if s <= 0 or symbol >= self.n_sym:
            return 0
        if not self.expanded[s]:
            self.expand([s])
        return int(self.table[s, symbol])

    def matches(self, data: bytes | Iterable[int]) -> bool:
        s = self.start
        for b in data:
            s = self.step(s, b)
            if not s:
                return False
        return bool(self.accept[s])

    # ---------------------------------------------------------------- construction

    def _labels(self, label: int) -> np.ndarray:
        arr = self._label_arr.get(label)
        if arr is None:
            raw = np.frombuffer(label.to_bytes((self.n_sym + 7) // 8, "little"), np.uint8)
            arr = np.unpackbits(raw, bitorder="little")[: self.n_sym].astype(bool)
            self._label_arr[label] = arr
        return arr

    def _pieces(self, code: int) -> tuple[tuple[int, int], ...]:
        """(symbols as an int bit set, next item) pairs of one item of a state's successors.

        A position is its label; an embedded-automaton state is its row grouped by target
        (cached: rows of embedded automata never change once built).
        """
        if code < INST:
            return ((self.labels[code], code),)
        got = self._code_pieces.get(code)
        if got is None:
            inst = (code >> 32) & ((1 << 28) - 1)
            auto = self.instances[inst]
            base = PAIR | (inst << 32)
            if type(auto) is DFA or type(auto) is StringsDFA:
                # an eager DFA's row is its class row: OR the classes' bit sets per target
                # (no per-target pass over the symbols)
                bits = self._class_bits(inst, auto)
                by: dict[int, int] = {}
                for c, v in enumerate(auto.trans[code & _LOW].tolist()):
                    if v >= 0 and bits[c]:
                        by[v] = by.get(v, 0) | bits[c]
                got = tuple((by[v], base | v) for v in sorted(by))
            else:
                r = auto.row(code & _LOW)[: self.n_sym]
                vs = np.unique(r[r >= 0])
                # every target's symbols packed in one call (one packbits per target was ~2 us each,
                # 14 targets a row at a nested open object's key)
                packed = np.packbits(vs[:, None] == r[None, :], axis=1, bitorder="little")
                w = packed.shape[1]
                raw = packed.tobytes()
                got = tuple((int.from_bytes(raw[i * w : (i + 1) * w], "little"), base | v)
                            for i, v in enumerate(vs.tolist()))
            self._code_pieces[code] = got
        return got

    def _class_bits(self, inst: int, auto: DFA) -> list[int]:
        """The symbols of each class of an embedded eager DFA, as int bit sets (cached)."""
        got = self._cls_bits.get(inst)
        if got is None:
            cm = auto.classmap[: self.n_sym]
            onehot = cm[None, :] == np.arange(auto.trans.shape[1], dtype=cm.dtype)[:, None]
            packed = np.packbits(onehot, axis=1, bitorder="little")
            got = [int.from_bytes(row.tobytes(), "little") for row in packed]
            self._cls_bits[inst] = got
        return got

    def _symbols(self, bits: int) -> np.ndarray | slice:
        """Symbols of a label given as an int bit set (a slice for one symbol or a range)."""
        low = bits & -bits
        if bits == low:
            i = low.bit_length() - 1
            return slice(i, i + 1)
        top = bits.bit_length()
        lo = low.bit_length() - 1
        if bits == (1 << top) - (1 << lo):
            return slice(lo, top)
        return self._labels(bits)

    def _grow(self, need: int) -> None:
        cap = self.table.shape[0]
        if need <= cap:
            return
        new = max(need, cap * 2)
        t = _reserve_rows(self.max_states + 1, self.n_sym) if new * self.n_sym * 4 > _RESERVE_ABOVE else None
        if t is None or t.shape[0] < need:
            t = np.zeros((new, self.n_sym), np.int32)
        else:
            new = t.shape[0]
        t[:cap] = self.table
        e = np.zeros(new, bool)
        e[:cap] = self.expanded
        a = np.zeros(new, bool)
        a[:cap] = self.accept
        self.table, self.expanded, self.accept = t, e, a

    def _state(self, key: tuple[int, ...]) -> int:
        """State of a sorted tuple of item codes (tuples, not frozensets: see ``follow``)."""
        j = self._ids.get(key)
        if j is not None:
            return j
        j = self.n
        if not j & 255:
            check_time()
        if j >= self.max_states:
            raise AutomatonTooLarge(f"automaton exceeds {self.limit_name}={self.max_states}")
        self._ids[key] = j
        if len(key) == 1 and key[0] < INST:  # one plain position (literal text, punctuation): most states
            code = key[0]
            self._succ.append(self.follow[code])
            self._grow(j + 1)
            self.accept[j] = code in self.last_plain
            self.n = j + 1
            return j
        if len(key) == 1:  # one embedded-automaton state alone: _mirror_all must look for it
            self._alone.add((key[0] >> 32) & ((1 << 28) - 1))
        succ: set[int] = set()
        acc = False
        for code in key:
            if code < INST:
                succ.update(self.follow[code])
                if code in self.last_plain:
                    acc = True
            else:
                inst = (code >> 32) & ((1 << 28) - 1)
                inner = code & _LOW
                succ.add(GATE | (inst << 32) | inner)
                if self.instances[inst].is_accepting(inner):
                    succ.update(self.inst_follow[inst])
                    if inst in self.last_inst:
                        acc = True
        self._succ.append(tuple(succ))
        self._grow(j + 1)
        self.accept[j] = acc
        self.n = j + 1
        return j

    def expand(self, states: Iterable[int]) -> None:
        for s in states:
            s = int(s)
            if self.expanded[s]:
                continue
            F = self._succ[s]
            if not F:
                self.expanded[s] = True
                continue
            if len(F) == 1:
                if F[0] >= INST:
                    # inside one embedded automaton (a string with a pattern or format, a $ref):
                    # mirror its row; most states of big schemas are of this kind
                    self._mirror_into(s, F[0])
                    continue
                if self._literal_rows(s, F[0]):
                    continue
            items = list(F)
            if self._one_gate_row(s, items):
                continue
            pieces = [p for c in items for p in self._pieces(c)]
            if len(pieces) <= 64:
                # split the symbols into the atoms of the pieces' Boolean algebra (one target
                # set each) with int bit sets: no (items x symbols) matrix for the few items
                # of literal text, keys, punctuation or a value ending in its follow set
                # one-symbol labels (a declared name's next letter, punctuation) are grouped by
                # symbol and carved out of the few wide atoms afterwards: pairing every piece
                # with every atom was ~90 us a row at an open object's key (60 names' letters)
                wide: list[tuple[int, int]] = []
                narrow: dict[int, list[int]] = {}
                for lab, code in pieces:
                    if lab & (lab - 1):
                        wide.append((lab, code))
                    else:
                        narrow.setdefault(lab, []).append(code)
                atoms: list[tuple[int, list[int]]] = []
                for lab, code in wide:
                    nxt: list[tuple[int, list[int]]] = []
                    for bits, codes in atoms:
                        both = bits & lab
                        if both:
                            nxt.append((both, codes + [code]))
                            if both != bits:
                                nxt.append((bits & ~lab, codes))
                        else:
                            nxt.append((bits, codes))
                        lab &= ~bits
                    if lab:
                        nxt.append((lab, [code]))
                    atoms = nxt
                for b, ncodes in narrow.items():
                    for i, (bits, codes) in enumerate(atoms):
                        if bits & b:
                            atoms[i] = (bits & ~b, codes)
                            atoms.append((b, codes + ncodes))
                            break
                    else:
                        atoms.append((b, ncodes))
                row = np.zeros(self.n_sym, np.int32)
                for bits, codes in atoms:
                    if bits:  # (a wide atom whose symbols were all carved out)
                        row[self._symbols(bits)] = self._state(_item_key(codes))
                self.table[s] = row
                self.expanded[s] = True
                continue
            M = np.full((len(items), self.n_sym), -1, np.int64)
            for r, code in enumerate(items):
                if code < INST:
                    M[r, self._labels(self.labels[code])] = code
                else:
                    inst = (code >> 32) & ((1 << 28) - 1)
                    row = self.instances[inst].row(code & _LOW)
                    k = min(row.shape[0], self.n_sym)
                    seg = row[:k]
                    M[r, :k] = np.where(seg >= 0, PAIR | (inst << 32) | seg, -1)
            cols = M.T  # (n_sym, items)
            w = self._weights[: len(items)] if len(items) <= self._weights.size else \
                np.random.default_rng(len(items)).integers(1, 2**62, size=len(items), dtype=np.int64)
            h = (cols + 1) @ w  # wrapping int64 hash of each symbol's target set
            uniq, first_idx, inv = np.unique(h, return_index=True, return_inverse=True)
            if not (cols == cols[first_idx][inv]).all():  # hash collision: fall back to exact grouping
                _, first_idx, inv = np.unique(cols, axis=0, return_index=True, return_inverse=True)
                inv = inv.ravel()
            tgt = np.zeros(first_idx.size, np.int32)
            for u, ci in enumerate(first_idx.tolist()):
                c = cols[ci]
                codes = c[c >= 0]
                if codes.size:
                    tgt[u] = self._state(tuple(sorted(set(codes.tolist()))))
            self.table[s] = tgt[inv]
            self.expanded[s] = True

    def _literal_rows(self, s: int, code: int) -> bool:
        """Rows of literal text (a key's letters, punctuation): ``s`` reads one position that
        reads one symbol, and so on along the literal for up to ``_LITERAL_AHEAD`` states.

        A trie walk through a key needs the state of every letter its tokens span, and built
        one general row at a time (one walk re-entry each) that was ~5 us a letter; here each
        is one table write.  False (nothing done) unless ``code`` reads exactly one symbol.
        """
        lab = self.labels[code]
        if not lab or lab & (lab - 1):
            return False
        for _ in range(_LITERAL_AHEAD):
            t = self._state((code,))  # (may grow the table: index it after)
            self.table[s, lab.bit_length() - 1] = t  # (an unexpanded row is all zeros)
            self.expanded[s] = True
            F = self._succ[t]
            if self.expanded[t] or len(F) != 1 or F[0] >= INST:
                break
            code = F[0]
            lab = self.labels[code]
            if not lab or lab & (lab - 1):
                break
            s = t
        return True

    def _one_gate_row(self, s: int, items: list[int]) -> bool:
        """Row of a state inside one embedded automaton beside a few narrow plain positions
        (a value that may end here and what may follow it: a quote, a comma, a brace).

        Every symbol outside the plain labels leads to the embedded target alone, which is
        the mirrored row (vectorised, ids cached); only the labels' few symbols are keyed
        one by one.  False (nothing done) when the state is not of that shape.
        """
        gate, plain = one_gate(items)
        if gate < 0:
            return False
        extra: dict[int, list[int]] = {}
        for c in plain:
            lab = self.labels[c]
            if lab.bit_count() > _NARROW:
                return False
            while lab:
                low = lab & -lab
                extra.setdefault(low.bit_length() - 1, []).append(c)
                lab ^= low
        if len(extra) > 2 * _NARROW:
            return False
        row = self._instance_row(gate)
        inst = (gate >> 32) & ((1 << 28) - 1)
        auto = self.instances[inst]
        dead = 0 if isinstance(auto, LazyDFA) else -1  # (lazy ids: 0 is dead)
        base = PAIR | (inst << 32)
        for b, codes in extra.items():
            v = auto.step(gate & _LOW, b)
            if v > dead:
                codes = [*codes, base | v]
            row[b] = self._state(_item_key(codes))
        self.table[s] = row
        self.expanded[s] = True
        return True

    def reads(self, s: int) -> tuple[list[tuple[int, int]], list[int]]:
        """What state ``s`` reads next: (instance, its state) of each embedded automaton it
        may enter or go on in, and the labels (int bit sets) of its plain positions."""
        gates: list[tuple[int, int]] = []
        labels: list[int] = []
        if 0 < s < len(self._succ):
            for c in self._succ[s]:
                if c >= INST:
                    gates.append(((c >> 32) & ((1 << 28) - 1), c & _LOW))
                else:
                    labels.append(self.labels[c])
        return gates, labels

    def pure_gate(self, s: int) -> tuple[int, int] | None:
        """(instance, its state) when ``s`` reads next only inside one embedded automaton, at one
        state of it that cannot end it (a mirror of that state, whatever follows the automaton
        where it is used), else None."""
        F = self._succ[s] if 0 < s < len(self._succ) else ()
        if len(F) != 1 or F[0] < GATE:
            return None
        c = F[0]
        inst, v = (c >> 32) & _INST_MASK, c & _LOW
        if self.instances[inst].is_accepting(v):
            return None  # (one with nothing after it in this use: not so in others)
        return inst, v

    def follow_of(self, insts: Iterable[int]) -> set[int]:
        """What may come right after any of the embedded automata ``insts`` (a lockstep level)."""
        return {c for i in insts for c in self.inst_follow[i]}

    def follow_only(self, inst: int, symbol: int) -> bool:
        """Whatever may come right after embedded automaton ``inst`` starts with ``symbol`` only."""
        return all(c < INST and self.labels[c] == 1 << symbol for c in self.inst_follow[inst])

    def _mirror_all(self, inst: int) -> None:
        """Create the states of every position inside a small eager embedded automaton at once,
        with the rows of those that cannot end it (pure mirrors) filled in numpy.

        An enum of a few hundred strings is walked whole by the first mask that meets it;
        one state and one Python row build per inner state cost ~10 ms there.
        """
        auto = self.instances[inst]
        assert isinstance(auto, DFA)  # only small eager automata are mirrored whole (_instance_row)
        m = auto.num_states
        if self.n + m > self.max_states:
            return  # let the state-by-state path raise the named limit if it must
        base = PAIR | (inst << 32)
        gate = GATE | (inst << 32)
        ids = np.full(m + 1, -1, np.int32)  # index = inner state + 1 (0: dead)
        ids[0] = 0
        follow = self.inst_follow[inst]
        last = inst in self.last_inst
        j0 = self.n
        if inst in self._alone:  # some made one by one already: they keep their ids
            fresh: list[int] = []
            for v in range(m):
                j = self._ids.get((base | v,))
                if j is None:
                    fresh.append(v)
                else:
                    ids[v + 1] = j
        else:
            fresh = list(range(m))
        fr = np.asarray(fresh, np.int64)
        acc = auto.accept[fr]
        k = fr.size
        self._grow(j0 + k)
        self._ids.update(zip([(base | v,) for v in fresh], range(j0, j0 + k), strict=True))
        self._succ.extend([tuple({gate | v, *follow}) if a else (gate | v,)
                           for v, a in zip(fresh, acc.tolist(), strict=True)])
        self.accept[j0 : j0 + k] = acc & last
        ids[fr + 1] = np.arange(j0, j0 + k, dtype=np.int32)
        self.n = j0 + k
        check_time()
        pure = fr[~acc]
        if pure.size:
            js = ids[pure + 1]
            if tokentrie.AVAILABLE and k == m:
                # every instance of one automaton (a format on many properties) mirrors the
                # same rows: kept on the automaton, 1-based (0 = dead), as int32
                cache = auto.__dict__.setdefault("_mirror_rows", {})  # (by width, as ``_rows``)
                rows = cache.get(self.n_sym)
                if rows is None:
                    rows = (auto.row(slice(None))[pure, : self.n_sym] + 1).astype(np.int32)
                    cache[self.n_sym] = rows
                tokentrie.mirror_rows(rows, ids, js, self.table)
            else:
                rows = auto.row(slice(None))[pure, : self.n_sym] + 1
                self.table[js, : rows.shape[1]] = ids[rows]
            self.expanded[js] = True
        self._inst_ids[inst] = ids

    def _instance_row(self, code: int) -> np.ndarray:
        """Row of a state made of a single embedded-automaton position (vectorised, cached ids).

        Most states of big schemas are of this kind, once per level of nesting, so this
        reads a lazy inner automaton's table directly (0 = dead there too) and only
        creates states for inner targets it has not mirrored yet.
        """
        inst = (code >> 32) & ((1 << 28) - 1)
        u = code & _LOW
        auto = self.instances[inst]
        if inst not in self._inst_ids and isinstance(auto, DFA) and auto.num_states <= _BULK_MIRROR:
            self._mirror_all(inst)
        if isinstance(auto, LazyDFA):
            lazy = True
            if not auto.expanded[u]:
                auto.expand((u,))
            r = auto.table[u]  # lazy ids: 0 is dead, so index = id
            off = 0
            need = auto.n  # bounds every index in r (no pass over r for its maximum)
        else:
            lazy = False
            r = auto.row(u)[: self.n_sym] + 1  # -1 dead -> 0: index = state + 1
            off = 1
            need = int(r.max(initial=0)) + 1
        ids = self._inst_ids.get(inst)
        if ids is None or ids.shape[0] < need:
            ids = self._grow_ids(inst, need)
        if lazy and tokentrie.AVAILABLE:  # the nested-$ref case: one compiled pass per level
            out = np.empty(self.n_sym, np.int32)
            if tokentrie.mirror_row(r, ids, out):
                self._mirror_missing(inst, r[out[: r.shape[0]] < 0], off, ids)
                tokentrie.mirror_row(r, ids, out)
            return out
        tgt = ids[r]
        if tgt.min() < 0:
            self._mirror_missing(inst, r[tgt < 0], off, ids)
            tgt = ids[r]
        if tgt.shape[0] == self.n_sym:
            return tgt
        row = np.zeros(self.n_sym, np.int32)
        row[: tgt.shape[0]] = tgt
        return row

    def _mirror_into(self, s: int, code: int) -> None:
        """Expand ``s``, a state made of one embedded-automaton position, in place.

        A cold mask in a schema of nested ``$ref``s expands one such state per nesting level
        and per byte-level state its trie walk meets: the nested-lazy case writes the outer
        row straight into the table (no temporary row, no copy), the rest goes through
        :meth:`_instance_row`.
        """
        inst = (code >> 32) & _INST_MASK
        auto = self.instances[inst]
        if type(auto) is not LazyDFA or not tokentrie.AVAILABLE:
            self.table[s] = self._instance_row(code)
            self.expanded[s] = True
            return
        u = code & _LOW
        if not auto.expanded[u]:
            auto.expand((u,))
        r = auto.table[u]  # lazy ids: 0 is dead, so index = id
        ids = self._inst_ids.get(inst)
        if ids is None or ids.shape[0] < auto.n:
            ids = self._grow_ids(inst, auto.n)
        if tokentrie.mirror_row(r, ids, self.table[s]):
            miss = self._miss_buf
            if miss.shape[0] < r.shape[0]:
                miss = self._miss_buf = np.empty(r.shape[0], np.int32)
            k = tokentrie.missing_targets(r, ids, miss)
            for v in miss[:k].tolist():
                ids[v] = self._inst_state(inst, v)
            tokentrie.mirror_row(r, ids, self.table[s])  # (the table may have moved)
        self.expanded[s] = True

    def _grow_ids(self, inst: int, need: int) -> np.ndarray:
        """The outer state of each inner state of ``inst`` (-1: none yet), room for ``need``."""
        ids = self._inst_ids.get(inst)
        size = 0 if ids is None else ids.shape[0]
        grown = np.full(max(need, 2 * size, 16), -1, np.int32)
        if ids is not None:
            grown[:size] = ids
        grown[0] = 0
        self._inst_ids[inst] = grown
        return grown

    def _mirror_missing(self, inst: int, missing: np.ndarray, off: int, ids: np.ndarray) -> None:
        """States for the inner targets ``missing`` (indices into ``ids``, inner state + ``off``)."""
        for v in set(missing.tolist()):
            ids[v] = self._inst_state(inst, v - off)

    def _inst_state(self, inst: int, v: int) -> int:
        """:meth:`_state` of one embedded-automaton position alone (inner state ``v`` of ``inst``),
        the one a mirrored row creates, without the general case's loop over items."""
        key = (PAIR | (inst << 32) | v,)
        j = self._ids.get(key)
        if j is not None:
            return j
        j = self.n
        if not j & 255:
            check_time()
        if j >= self.max_states:
            raise AutomatonTooLarge(f"automaton exceeds {self.limit_name}={self.max_states}")
        self._ids[key] = j
        self._alone.add(inst)
        succ = {GATE | (inst << 32) | v}
        acc = False
        if self.instances[inst].is_accepting(v):
            succ.update(self.inst_follow[inst])
            acc = inst in self.last_inst
        self._succ.append(tuple(succ))
        self._grow(j + 1)
        self.accept[j] = acc
        self.n = j + 1
        return j

    def expand_all(self) -> None:
        """Build every reachable state (breadth first)."""
        s = 1
        while s < self.n:
            if not self.expanded[s]:
                self.expand([s])
            s += 1

    def expand_near(self, depth: int, limit: int) -> int:
        """Build the states within ``depth`` symbols of the start (breadth first), stopping once
        ``limit`` states are known; returns how many are.  For automata shared by every schema
        in a process: the first symbols of a value are where every output reads them first."""
        frontier = [self.start]
        seen = {0, self.start}
        for _ in range(depth):
            self.expand(frontier)
            nxt = set(np.unique(self.table[frontier]).tolist()) - seen
            seen |= nxt
            frontier = sorted(nxt)
            if not frontier or len(seen) > limit:
                break
        return len(seen) - 1

    def materialize(self) -> DFA:
        """The whole automaton as an eager, class-compressed :class:`DFA` (start 0)."""
        self.expand_all()
        n = self.n
        t = self.table[1:n].astype(np.int64) - 1  # dead 0 -> -1, start 1 -> 0
        classmap, first = _column_classes(t)
        return DFA(np.ascontiguousarray(t[:, first]).astype(np.int32), self.accept[1:n].copy(), classmap)


# A lazy table past this many bytes gets room for every state it may ever have, reserved (not
# committed) in one anonymous mapping: its pages are touched as rows are written, and it is never
# copied again.  Doubling copied the whole table at once: at 8k states of ~290 symbols, a 9 MB
# copy into 17 MB of fresh pages, 2 ms here and a 56 ms mask call on a VM whose page faults are slow.
_RESERVE_ABOVE = 1 << 18
_RESERVE_MAX = 1 << 30


def _reserve_rows(rows: int, width: int) -> np.ndarray | None:
    """A zeroed ``(rows, width)`` int32 table in reserved, lazily committed memory (POSIX), or
    None where that is not available (then the caller doubles as before)."""
    size = rows * width * 4
    noreserve = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)  # 3.13+
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0) | noreserve
    if size > _RESERVE_MAX or not hasattr(mmap, "MAP_ANONYMOUS"):
        return None
    try:
        buf = mmap.mmap(-1, size, flags=flags)
    except (OSError, ValueError):  # strict overcommit, address-space limits
        return None
    return np.frombuffer(buf, np.int32).reshape(rows, width)


def _column_classes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symbol classes of a (states, symbols) table: equal columns share a class.

    Numbered by first symbol.  Columns are hashed (a wrapping dot product with fixed random
    weights) and the grouping checked; a lexicographic sort of whole columns cost 100+ ms
    on tables of a few thousand states.
    """
    rng = np.random.default_rng(1)
    w = rng.integers(1, 2**62, size=t.shape[0], dtype=np.int64)
    with np.errstate(over="ignore"):
        h = w @ (t + 1)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.ravel()
    if not (t[:, first[inv]] == t).all():  # a hash collision: exact grouping
        _, first, inv = np.unique(t.T, axis=0, return_index=True, return_inverse=True)
        inv = inv.ravel()
    order = np.argsort(first, kind="stable")  # classes by first symbol
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inv].astype(np.int32), first[order]


def compile_dfa(node: Node, *, max_states: int = DEFAULT_MAX_STATES, max_positions: int = 2_000_000) -> DFA:
    """Eager DFA of ``node`` (every state built, dead ends trimmed)."""
    gc_was = gc.isenabled()
    gc.disable()  # millions of small sets: the cyclic collector only burns time here
    try:
        return LazyDFA(node, max_states=max_states, max_positions=max_positions).materialize().trim()
    finally:
        if gc_was:
            gc.enable()


# --------------------------------------------------------------------------- products


def _joint_classes(a: DFA, b: DFA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = max(a.num_symbols, b.num_symbols)
    ca = np.full(n, -1, np.int64)
    cb = np.full(n, -1, np.int64)
    ca[: a.num_symbols] = a.classmap
    cb[: b.num_symbols] = b.classmap
    pairs = (ca + 1) * (int(cb.max(initial=-1)) + 2) + (cb + 1)
    uniq, inv = np.unique(pairs, return_inverse=True)
    ua = uniq // (int(cb.max(initial=-1)) + 2) - 1
    ub = uniq % (int(cb.max(initial=-1)) + 2) - 1
    return inv.astype(np.int32), ua, ub


def product(a: DFA, b: DFA, mode: str = "and", *, max_states: int = DEFAULT_MAX_STATES) -> DFA:
    """Intersection (``and``) or difference (``diff``: in a, not in b) of two DFAs.

    Breadth first, one layer of pair states at a time in numpy; Python only numbers the
    distinct successor pairs of a layer (a per-class Python loop cost 100 ms on
    pattern x length products of a few thousand states).
    """
    classmap, ua, ub = _joint_classes(a, b)
    C = ua.shape[0]
    Sb = b.num_states
    ta = np.concatenate([a.trans, np.full((a.num_states, 1), -1, np.int32)], axis=1)[:, ua].astype(np.int64)
    # row -1 (b already left behind, "diff" only) and class -1 (no symbol in b): dead
    tb = np.full((Sb + 1, C), -1, np.int64)
    if Sb:
        tb[:Sb] = np.concatenate([b.trans, np.full((Sb, 1), -1, np.int32)], axis=1)[:, ub]
    width = Sb + 1
    start_b = 0 if Sb else -1
    ids: dict[int, int] = {start_b + 1: 0}  # pair (sa, sb) as sa * width + sb + 1
    all_a: list[int] = [0]
    all_b: list[int] = [start_b]
    rows: list[np.ndarray] = []
    fa, fb = np.zeros(1, np.int64), np.full(1, start_b, np.int64)
    while fa.size:
        check_time()
        na, nb = ta[fa], tb[fb]
        valid = na >= 0
        if mode == "and":
            valid &= nb >= 0
        code = na * width + nb + 1
        uq = np.unique(code[valid])
        got = np.empty(uq.size, np.int64)
        new_a: list[int] = []
        new_b: list[int] = []
        for k, c in enumerate(uq.tolist()):
            j = ids.get(c)
            if j is None:
                j = len(ids)
                if j >= max_states:
                    raise AutomatonTooLarge(f"automaton product exceeds max_states={max_states}")
                ids[c] = j
                new_a.append(c // width)
                new_b.append(c % width - 1)
            got[k] = j
        row = np.full(na.shape, -1, np.int64)
        row[valid] = got[np.searchsorted(uq, code[valid])]
        rows.append(row)
        all_a += new_a
        all_b += new_b
        fa, fb = np.array(new_a, np.int64), np.array(new_b, np.int64)
    oa, ob = np.array(all_a, np.int64), np.array(all_b, np.int64)
    in_b = np.zeros(oa.size, bool)
    has_b = ob >= 0
    in_b[has_b] = b.accept[ob[has_b]]
    acc = a.accept[oa] & (in_b if mode == "and" else ~in_b)
    cm = np.where(classmap >= 0, classmap, -1).astype(np.int32)
    trans = np.concatenate(rows).astype(np.int32) if rows else np.zeros((0, C), np.int32)
    return DFA(trans.reshape(-1, C), acc, cm).trim()


def strings_minus(a: StringsDFA, texts: Iterable[bytes], *, max_states: int = DEFAULT_MAX_STATES) -> StringsDFA:
    """The strings of ``a`` other than the literal ``texts`` (an object's extra keys).

    Built straight from the trie of the texts, no product search: a trie node has one path,
    so it is one state (``a``'s state after that path, plus where it is in the trie), and a
    string that leaves the trie is ``a`` itself from then on.  The result reads exactly what
    ``a`` reads (only acceptance changes), so it is still a :class:`StringsDFA` with the
    phases of its ``a`` states, and no trim or breadth-first phase check is needed (the
    generic difference and those checks were over half of a median schema's compile).
    States of ``a`` no string outside the trie reaches stay in, unreachable and harmless.
    """
    assert a.phase is not None and a.char is not None
    cm = np.asarray(a.classmap, np.int64)
    nsym = cm.shape[0]
    children: list[dict[int, int]] = [{}]
    final = [False]
    k_of = [0]  # a's state at each trie node (a's start is 0)
    for t in texts:
        node = 0
        for b in t:
            nxt = children[node].get(b)
            if nxt is None:
                k = int(a.trans[k_of[node], cm[b]]) if b < nsym and cm[b] >= 0 else -1
                if k < 0:  # a cannot spell this text: nothing to take away
                    break
                nxt = len(children)
                children[node][b] = nxt
                children.append({})
                final.append(False)
                k_of.append(k)
            node = nxt
        else:
            final[node] = True
    n = len(children)
    if n + a.num_states > max_states:
        raise AutomatonTooLarge(f"automaton product exceeds max_states={max_states}")
    # classes: a's classes split by the bytes on trie edges
    edge = np.zeros(nsym, bool)
    edge[[b for ch in children for b in ch]] = True
    live = cm >= 0
    key = cm * (nsym + 1) + np.where(edge, np.arange(nsym), nsym)
    uniq, inv = np.unique(key[live], return_inverse=True)
    classmap = np.full(nsym, -1, np.int32)
    classmap[live] = inv.ravel()
    off = a.trans[:, uniq // (nsym + 1)].astype(np.int64)  # leaving the trie: a's own states
    off = np.where(off >= 0, off + n, -1)
    ks = np.array(k_of, np.int64)
    inside = off[ks]  # each trie node reads what its a state reads ...
    for u, ch in enumerate(children):  # ... but its edges stay in the trie
        for b, v in ch.items():
            inside[u, classmap[b]] = v
    trans = np.concatenate([inside, off]).astype(np.int32)
    accept = np.concatenate([a.accept[ks] & ~np.array(final, bool), a.accept])
    phase = np.concatenate([a.phase[ks], a.phase])
    return StringsDFA(trans, accept, classmap, char=a.char, phase=phase)


def intersect(a: DFA, b: DFA, **kw: int) -> DFA:
    return product(a, b, "and", **kw)


def difference(a: DFA, b: DFA, **kw: int) -> DFA:
    return product(a, b, "diff", **kw)
