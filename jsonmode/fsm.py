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

import gc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import AutomatonTooLarge

BYTE_SYMBOLS = 256
ALL_BYTES = (1 << 256) - 1
DEFAULT_MAX_STATES = 200_000


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


@dataclass(frozen=True, slots=True, eq=False)
class DfaNode(Node):
    """A compiled DFA used as a piece of a larger expression."""

    dfa: DFA


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


def lit(data: bytes | str) -> Node:
    if isinstance(data, str):
        data = data.encode()
    if not data:
        return EMPTY
    return Seq(tuple(Sym(1 << b) for b in data)) if len(data) > 1 else Sym(1 << data[0])


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

    @property
    def num_states(self) -> int:
        return int(self.trans.shape[0])

    @property
    def num_symbols(self) -> int:
        return int(self.classmap.shape[0])

    def full_table(self, n_symbols: int | None = None) -> np.ndarray:
        """(S+1, n_symbols) int32 table over raw symbols; row S is the absorbing dead state."""
        n = n_symbols or self.num_symbols
        if self._full is not None and self._full.shape[1] == n:
            return self._full
        S = self.num_states
        cm = np.full(n, -1, dtype=np.int64)
        k = min(n, self.num_symbols)
        cm[:k] = self.classmap[:k]
        t = np.concatenate([self.trans, np.full((S, 1), -1, np.int32)], axis=1)  # column C = dead
        table = t[:, np.where(cm >= 0, cm, t.shape[1] - 1)]
        table = np.where(table < 0, S, table).astype(np.int32)
        table = np.concatenate([table, np.full((1, n), S, np.int32)], axis=0)
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
        """Bool mask of states from which an accepting state is reachable."""
        S = self.num_states
        live = self.accept.copy()
        t = self.trans
        while True:
            nxt = live | ((t >= 0) & live[np.where(t >= 0, t, 0)]).any(axis=1)
            if (nxt == live).all():
                return live
            live = nxt

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


# --------------------------------------------------------------------------- Glushkov


def _bits(x: int) -> Iterable[int]:
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


_NONE: frozenset[int] = frozenset()
Walk = tuple[bool, frozenset[int], frozenset[int]]


class _Glushkov:
    """Positions, labels and follow sets of an AST (fresh positions per occurrence).

    Position sets are Python sets of small ints: DFA states touch few positions,
    so hashing and unions stay proportional to what a state holds, not to the size
    of the whole expression.
    """

    def __init__(self, max_positions: int) -> None:
        self.labels: list[int] = []
        self.follow: list[set[int]] = []
        self.max_positions = max_positions
        self._templates: dict[int, tuple[list[int], list[tuple[int, ...]], list[int], list[int], bool]] = {}

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
            fol[p] |= first

    def walk(self, node: Node) -> Walk:
        """Returns (nullable, first, last) with fresh positions."""
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
            return self._dfa(node.dfa)
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
        walked = [(u, v, *self.walk(x)) for u, v, x in g.edges]
        n = g.n_nodes
        in_direct: list[set[int]] = [set() for _ in range(n)]
        out: list[set[int]] = [set() for _ in range(n)]
        for u, v, _nl, f, la in walked:
            in_direct[v] |= la
            out[u] |= f
        nullable_edges = [(u, v) for u, v, nl, _f, _l in walked if nl]
        null_reach = [False] * n
        for fn in g.finals:
            null_reach[fn] = True
        changed = True
        while changed:  # closure over empty edges (graphs are small)
            changed = False
            for u, v in nullable_edges:
                if not out[v] <= out[u]:
                    out[u] |= out[v]
                    changed = True
                if null_reach[v] and not null_reach[u]:
                    null_reach[u] = True
                    changed = True
        for u in range(n):
            self._link(frozenset(in_direct[u]), frozenset(out[u]))
        last: set[int] = set()
        for u in range(n):
            if null_reach[u]:
                last |= in_direct[u]
        return null_reach[g.start], frozenset(out[g.start]), frozenset(last)

    def _dfa(self, dfa: DFA) -> Walk:
        tpl = self._templates.get(id(dfa))
        if tpl is None:
            tpl = _dfa_template(dfa)
            self._templates[id(dfa)] = tpl
        labels, follows, first, last, nullable = tpl
        base = len(self.labels)
        if base + len(labels) > self.max_positions:
            raise AutomatonTooLarge(f"regular expression has more than {self.max_positions} positions")
        self.labels.extend(labels)
        self.follow.extend({base + q for q in fol} for fol in follows)
        return nullable, frozenset(base + p for p in first), frozenset(base + p for p in last)


def _dfa_template(dfa: DFA) -> tuple[list[int], list[tuple[int, ...]], list[int], list[int], bool]:
    """Glushkov positions of a DFA: one per (target state, label of the edge into it)."""
    S = dfa.num_states
    cls_masks = [0] * dfa.trans.shape[1]
    for sym_id, c in enumerate(dfa.classmap.tolist()):
        if c >= 0:
            cls_masks[c] |= 1 << sym_id
    pos_of: dict[tuple[int, int], int] = {}
    labels: list[int] = []
    out_groups: list[list[int]] = [[] for _ in range(S)]
    for s, row in enumerate(dfa.trans.tolist()):
        groups: dict[int, int] = {}
        for c, t in enumerate(row):
            if t >= 0:
                groups[t] = groups.get(t, 0) | cls_masks[c]
        for t, label in groups.items():
            key = (t, label)
            p = pos_of.get(key)
            if p is None:
                p = len(labels)
                labels.append(label)
                pos_of[key] = p
            out_groups[s].append(p)
    follows: list[tuple[int, ...]] = [()] * len(labels)
    last = []
    for (t, _label), p in pos_of.items():
        if dfa.accept[t]:
            last.append(p)
        follows[p] = tuple(out_groups[t])
    first = out_groups[0] if S else []
    return labels, follows, first, last, (bool(dfa.accept[0]) if S else False)


def _partition(labels: Iterable[int]) -> list[int]:
    """Coarsest partition of the used symbols such that every label is a union of classes."""
    classes: list[int] = []
    for lab in set(labels):
        if not lab:
            continue
        rest = lab
        new: list[int] = []
        for c in classes:
            inter = c & lab
            if inter and inter != c:
                new.append(inter)
                new.append(c & ~lab)
            else:
                new.append(c)
            rest &= ~c
        if rest:
            new.append(rest)
        classes = new
    return classes


def compile_dfa(node: Node, *, max_states: int = DEFAULT_MAX_STATES, max_positions: int = 2_000_000) -> DFA:
    """Subset construction over Glushkov positions."""
    gc_was = gc.isenabled()
    gc.disable()  # millions of small sets: the cyclic collector only burns time here
    try:
        return _compile_dfa(node, max_states, max_positions)
    finally:
        if gc_was:
            gc.enable()


def _compile_dfa(node: Node, max_states: int, max_positions: int) -> DFA:
    g = _Glushkov(max_positions)
    nullable, first, last = g.walk(node)
    labels, follow = g.labels, g.follow
    classes = _partition(labels)
    nsym = max((c.bit_length() for c in classes), default=0)
    classmap = np.full(max(nsym, BYTE_SYMBOLS), -1, np.int32)
    for k, c in enumerate(classes):
        for s in _bits(c):
            classmap[s] = k
    pos_classes: list[tuple[int, ...]] = []
    cache: dict[int, tuple[int, ...]] = {}
    for lab in labels:
        tup = cache.get(lab)
        if tup is None:
            tup = tuple(k for k, c in enumerate(classes) if c & lab)
            cache[lab] = tup
        pos_classes.append(tup)

    C = len(classes)
    ids: dict[frozenset[int], int] = {}
    succ: list[frozenset[int] | set[int]] = [first]  # union of follow sets of each DFA state
    accept: list[bool] = [nullable]
    rows: list[list[int]] = []
    i = 0
    while i < len(succ):
        F = succ[i]
        targets: dict[int, list[int]] = {}
        for q in F:
            for k in pos_classes[q]:
                lst = targets.get(k)
                if lst is None:
                    targets[k] = [q]
                else:
                    lst.append(q)
        row = [-1] * C
        for k, qs in targets.items():
            key = frozenset(qs)
            j = ids.get(key)
            if j is None:
                j = len(succ)
                if j >= max_states:
                    raise AutomatonTooLarge(f"automaton exceeds max_states={max_states}")
                ids[key] = j
                if len(qs) == 1:
                    fol: set[int] | frozenset[int] = follow[qs[0]]
                else:
                    fol = set().union(*(follow[p] for p in qs))
                succ.append(fol)
                accept.append(not last.isdisjoint(key))
            row[k] = j
        rows.append(row)
        i += 1
    trans = np.array(rows, dtype=np.int32).reshape(len(rows), C)
    return DFA(trans, np.array(accept, dtype=bool), classmap)


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
    """Intersection (``and``) or difference (``diff``: in a, not in b) of two DFAs."""
    classmap, ua, ub = _joint_classes(a, b)
    C = ua.shape[0]
    ta, tb = a.trans.tolist(), b.trans.tolist()
    ua_l, ub_l = ua.tolist(), ub.tolist()
    ids: dict[tuple[int, int], int] = {(0, 0 if b.num_states else -1): 0}
    order: list[tuple[int, int]] = [(0, 0 if b.num_states else -1)]
    rows: list[list[int]] = []
    acc: list[bool] = []
    i = 0
    while i < len(order):
        sa, sb = order[i]
        row = [-1] * C
        for k in range(C):
            ka, kb = ua_l[k], ub_l[k]
            na = ta[sa][ka] if ka >= 0 else -1
            if na < 0:
                continue
            nb = tb[sb][kb] if (sb >= 0 and kb >= 0) else -1
            if nb < 0 and mode == "and":
                continue
            key = (na, nb)
            j = ids.get(key)
            if j is None:
                j = len(order)
                if j >= max_states:
                    raise AutomatonTooLarge(f"automaton product exceeds max_states={max_states}")
                ids[key] = j
                order.append(key)
            row[k] = j
        rows.append(row)
        in_b = sb >= 0 and bool(b.accept[sb])
        acc.append(bool(a.accept[sa]) and (in_b if mode == "and" else not in_b))
        i += 1
    cm = np.where(classmap >= 0, classmap, -1).astype(np.int32)
    # classes where a has no symbol are useless; keep mapping anyway (rows carry -1)
    return DFA(np.array(rows, np.int32).reshape(len(rows), C), np.array(acc, bool), cm).trim()


def intersect(a: DFA, b: DFA, **kw: int) -> DFA:
    return product(a, b, "and", **kw)


def difference(a: DFA, b: DFA, **kw: int) -> DFA:
    return product(a, b, "diff", **kw)
