"""Device-resident automaton: masks, byte DFA and token bytes live on the GPU.

Per decode step the device does all of it -- gather B mask rows by state id, one fused
masked fill (or masked argmax), and the state advance (each row walks its sampled token's
bytes through the byte-level DFA) -- with no host<->device round trip and nothing on the
host that scales with the vocabulary.

Layout (see :mod:`jsonmode.kernels`):

* ``masks``: (R + 1, W) int32, the automaton's packed masks with duplicate rows removed,
  plus a last EOS-only row (used by finished and failed rows, as in the host processor);
* ``full``: (N, n_sym) int32, the byte-level transition table; state ids are the
  automaton's own, its dead state ``dead`` (a rejected token: ERROR) included, and
  ``fin = N`` marks a finished row (EOS accepted);
* ``row_of``: (N + 1,) int32, mask row of each state (dead and fin: the EOS-only row);
* ``buf`` / ``off`` / ``len``: CSR of every token's symbols; ``is_eos``; ``accept``.

This needs every state's mask up front (:meth:`TokenAutomaton.precompute`).  Automata too big
for that (``max_states``) get a *host-fallback* mirror: states advance on the host, mask rows
are computed on demand and uploaded once each, and only the gather + fill run on the device.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, cast

import numpy as np
import torch

from . import kernels
from .automaton import TokenAutomaton
from .processor import ERROR, FINISHED, JsonLogitsProcessor

__all__ = [
    "DeviceAutomaton",
    "DeviceLogitsProcessor",
    "apply_host_states",
    "device_automaton",
    "gpu_enabled",
]

DEFAULT_MAX_STATES = 4_096  # precompute every mask up to this many DFA states (else host fallback)
DEFAULT_MAX_TABLE_BYTES = 1 << 30  # unique mask rows on the device, at most
BANNED_TABLE_BYTES = 256 << 20  # torch path: a (rows, width) bool table when it fits


def gpu_enabled() -> bool:
    return os.environ.get("JSONMODE_GPU", "1") != "0"


class DeviceAutomaton:
    """Device mirror of a :class:`TokenAutomaton` (complete, or host-fallback; see module doc)."""

    def __init__(self, automaton: TokenAutomaton, device: torch.device | str, *,
                 max_states: int = DEFAULT_MAX_STATES, max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES) -> None:
        ta = automaton
        dev = torch.device(device)
        self.automaton = ta
        self.device = dev
        self.width = ta.width
        self.num_words = ta.num_words
        self._lock = threading.Lock()
        row_bytes = ta.num_words * 4
        # every state built and every mask computed, when the automaton is small enough
        small = _expand_bounded(ta, max_states)
        if small:
            ta.precompute()  # no-op for the states done already
        n_rows_full, dead = _table_shape(ta)
        self.dead = dead
        self.fin = n_rows_full  # one past the table: "EOS accepted"
        self.num_states = n_rows_full
        row_of, masks = ta.mask_table()
        row_of = np.asarray(row_of)
        live = np.ones(n_rows_full, bool)
        live[dead] = False
        self.complete = bool(small and row_of.shape[0] >= n_rows_full and (row_of[:n_rows_full][live] >= 0).all())


        t = ta.tables
        V = int(t.lengths.shape[0])
        self.n_tok = V
        is_eos = np.zeros(V, np.int8)
        is_eos[ta.eos_ids[ta.eos_ids < V]] = 1
        accept = np.zeros(n_rows_full + 1, np.int8)
        acc = np.asarray(ta._accept)[:n_rows_full]
        accept[: acc.shape[0]] = acc.astype(np.int8)
        accept[dead] = 0
        full = np.ascontiguousarray(np.asarray(ta._full)[:n_rows_full], dtype=np.int32)
        self.tables: dict[str, Any] = {
            "n_tok": V,
            "n_sym": int(full.shape[1]),
            "dead": dead,
            "fin": self.fin,
            "full": torch.from_numpy(full).to(dev),
            "accept": torch.from_numpy(accept).to(dev),
            "is_eos": torch.from_numpy(is_eos).to(dev),
        }
        self.tables["flat"] = self.tables["full"].view(-1)
        self.tables.update(_token_csr(ta, dev))

        if self.complete:
            uniq, inv = _dedupe_rows(np.asarray(masks))
            if (uniq.shape[0] + 1) * row_bytes > max_table_bytes:
                self.complete = False
        if self.complete:
            table = np.concatenate([uniq, ta.eos_words[None, :]], axis=0)
            eos_row = table.shape[0] - 1
            rows = np.full(n_rows_full + 1, eos_row, np.int32)
            rows[:n_rows_full][live] = inv[row_of[:n_rows_full][live]]
            self.masks = torch.from_numpy(np.ascontiguousarray(table)).to(dev)
            self.row_of = torch.from_numpy(rows).to(dev)
            self.n_rows = table.shape[0]
        else:
            # host fallback: rows uploaded on demand; row 0 = EOS-only
            self._host_rows: dict[int, int] = {}
            self._cap = 64
            self.masks = torch.zeros((self._cap, ta.num_words), dtype=torch.int32, device=dev)
            self.masks[0] = torch.from_numpy(ta.eos_words.copy()).to(dev)
            self.n_rows = 1
            self.row_of = torch.zeros(0, dtype=torch.int32, device=dev)
        self._banned: torch.Tensor | None = None
        self._banned_cols = -1

    # ------------------------------------------------------------------ host-fallback rows

    def rows_for_host_states(self, states: list[int]) -> torch.Tensor:
        """Device row index per host state (-1/-2 = EOS-only), uploading new rows once."""
        ta = self.automaton
        with self._lock:
            ta.ensure_masks(states)
            row_of, masks = ta.mask_table()
            idx = []
            new: list[int] = []
            for s in states:
                if s < 0:
                    idx.append(0)
                    continue
                r = int(row_of[s])
                d = self._host_rows.get(r)
                if d is None:
                    d = self.n_rows + len(new)
                    self._host_rows[r] = d
                    new.append(r)
                idx.append(d)
            if new:
                end = self.n_rows + len(new)
                if end > self._cap:
                    cap = max(end, 2 * self._cap)
                    grown = torch.zeros((cap, ta.num_words), dtype=torch.int32, device=self.device)
                    grown[: self.n_rows] = self.masks[: self.n_rows]
                    self.masks = grown
                    self._cap = cap
                block = torch.from_numpy(np.ascontiguousarray(masks[new])).to(self.device)
                self.masks[self.n_rows : end] = block
                self.n_rows = end
                self._banned = None
            return _upload_ints(idx, self.device)

    # ------------------------------------------------------------------ per-step operations

    def initial_states(self, batch: int) -> torch.Tensor:
        return torch.full((batch,), self.automaton.initial_state, dtype=torch.int32, device=self.device)

    def banned_table(self, n_cols: int) -> torch.Tensor | None:
        """(rows, n_cols) bool of banned columns, for the torch path when it is small enough."""
        if self._banned is not None and self._banned_cols == n_cols:
            return self._banned
        if self.n_rows * n_cols > BANNED_TABLE_BYTES:
            return None
        allowed = kernels.allowed_from_words(self.masks[: self.n_rows], n_cols)
        self._banned = ~allowed
        self._banned_cols = n_cols
        return self._banned

    def fill_(self, scores: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """``scores`` (B, C) in place: -inf where banned in ``states`` (device states of a complete mirror)."""
        use_triton = kernels.triton_enabled(scores.device)
        bt = None if use_triton else self.banned_table(scores.shape[1])
        return kernels.mask_fill(scores, states, self.row_of, self.masks, bt, use_triton=use_triton)

    def fill_rows_(self, scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``scores`` in place given mask *row* indices (host-fallback path)."""
        ident = _identity(self.n_rows, self.device)
        use_triton = kernels.triton_enabled(scores.device)
        bt = None if use_triton else self.banned_table(scores.shape[1])
        return kernels.mask_fill(scores, rows, ident, self.masks[: self.n_rows], bt, use_triton=use_triton)

    def advance_(self, states: torch.Tensor, tokens: torch.Tensor, err_tok: torch.Tensor,
                 err_state: torch.Tensor) -> None:
        kernels.advance(states, tokens, self.tables, err_tok, err_state)

    def advance_fill_(self, scores: torch.Tensor, states_in: torch.Tensor, states_out: torch.Tensor,
                      tokens: torch.Tensor, err_tok: torch.Tensor, err_state: torch.Tensor) -> torch.Tensor:
        """``states_out`` <- ``states_in`` advanced by ``tokens``; then ban in ``scores`` (one launch)."""
        use = kernels.triton_enabled(scores.device)
        bt = None if use else self.banned_table(scores.shape[1])
        return kernels.advance_fill(scores, states_in, states_out, tokens, self.row_of, self.masks, self.tables,
                                    err_tok, err_state, bt, use_triton=use)

    def host_state(self, s: int) -> int:
        """Device state id -> the host processor's convention (FINISHED / ERROR / state)."""
        if s == self.fin:
            return FINISHED
        if s == self.dead:
            return ERROR
        return s


_IDENT: dict[tuple[int, torch.device], torch.Tensor] = {}


def _identity(n: int, device: torch.device) -> torch.Tensor:
    """arange(m) int32 for some m >= n (a power of two, cached)."""
    key = (1 << max(int(n) - 1, 0).bit_length(), device)
    t = _IDENT.get(key)
    if t is None:
        t = torch.arange(key[0], dtype=torch.int32, device=device)
        _IDENT[key] = t
    return t


def _upload_ints(values: list[int], device: torch.device) -> torch.Tensor:
    host = torch.tensor(values, dtype=torch.int32)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def _expand_bounded(ta: TokenAutomaton, limit: int) -> bool:
    """Build every DFA state of a lazy automaton unless there are more than ``limit``."""
    lazy = getattr(ta, "lazy", None)
    if lazy is None:  # eagerly built automaton
        return ta.num_states <= limit
    while True:
        n = int(lazy.n)
        if n > limit:
            return False
        todo = np.flatnonzero(~lazy.expanded[:n])
        if not todo.size:
            return True
        lazy.expand(todo.tolist())


def _table_shape(ta: TokenAutomaton) -> tuple[int, int]:
    """(rows of the byte table that matter, dead state id), for either automaton layout."""
    dead = int(ta._dead)
    n = int(ta.num_states)
    return max(n, dead + 1), dead


def _dedupe_rows(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seen: dict[bytes, int] = {}
    inv = np.empty(masks.shape[0], np.int32)
    keep: list[int] = []
    for i in range(masks.shape[0]):
        k = masks[i].tobytes()
        j = seen.get(k)
        if j is None:
            j = len(keep)
            seen[k] = j
            keep.append(i)
        inv[i] = j
    return masks[keep], inv


_CSR: dict[tuple[int, str], tuple[Any, dict[str, torch.Tensor]]] = {}
_CSR_LOCK = threading.Lock()


def _token_csr(ta: TokenAutomaton, device: torch.device) -> dict[str, torch.Tensor]:
    """Token bytes on the device, shared by every automaton over the same token tables."""
    t = ta.tables
    key = (id(t), str(device))
    with _CSR_LOCK:
        hit = _CSR.get(key)
        if hit is not None and hit[0]() is t:
            return hit[1]
    buf = t.buf.astype(np.int32)
    if buf.size == 0:
        buf = np.zeros(1, np.int32)
    out = {
        "buf": torch.from_numpy(buf).to(device),
        "off": torch.from_numpy(t.offsets.astype(np.int64)).to(device),
        "len": torch.from_numpy(t.lengths.astype(np.int32)).to(device),
    }
    with _CSR_LOCK:
        _CSR[key] = (weakref.ref(t), out)
    return out


_MIRRORS: weakref.WeakKeyDictionary[TokenAutomaton, dict[str, DeviceAutomaton]] = weakref.WeakKeyDictionary()
_MIRRORS_LOCK = threading.Lock()


def device_automaton(automaton: TokenAutomaton, device: torch.device | str, **kw: Any) -> DeviceAutomaton:
    """The (cached) device mirror of ``automaton`` on ``device``."""
    key = str(torch.device(device))
    with _MIRRORS_LOCK:
        per = _MIRRORS.get(automaton)
        if per is None:
            per = {}
            _MIRRORS[automaton] = per
        da = per.get(key)
    if da is None:
        da = DeviceAutomaton(automaton, device, **kw)
        with _MIRRORS_LOCK:
            per[key] = da
    return da


# ---------------------------------------------------------------------- HF logits processors


def apply_host_states(proc: JsonLogitsProcessor, scores: torch.Tensor) -> torch.Tensor:
    """Device branch of :meth:`JsonLogitsProcessor.apply`: host-side states, device gather + fused fill.

    Uploads B row ids (one small copy), never a (B, vocab) tensor.
    """
    da = device_automaton(proc.automaton, scores.device)
    rows = da.rows_for_host_states(proc.states) if not da.complete else None
    if rows is None:
        states = [s if s >= 0 else (da.fin if s == FINISHED else da.dead) for s in proc.states]
        return da.fill_(scores, _upload_ints(states, scores.device))
    return da.fill_rows_(scores, rows)


class DeviceLogitsProcessor(JsonLogitsProcessor):
    """:class:`JsonLogitsProcessor` whose row states live on the logits' device.

    Per step: advance every row by ``input_ids[:, -1]`` with one kernel, then one fused masked
    fill -- no ``.tolist()``, no host loop over rows.  ``states`` / ``errors`` read the device
    state back (one sync) when asked.  Falls back to the host processor on CPU logits and for
    automata too big to mirror completely.
    """

    def __init__(self, automaton: TokenAutomaton, batch_size: int | None = None, *,
                 device_path: bool | None = None) -> None:
        """``device_path``: None = on CUDA logits only; True = always (CPU too: tests); False = never."""
        self._dev_states: torch.Tensor | None = None
        self._da: DeviceAutomaton | None = None
        self._device_path = device_path
        super().__init__(automaton, batch_size)

    # states / errors: views of the device state when it exists
    @property
    def states(self) -> list[int]:  # type: ignore[override]
        if self._dev_states is None:
            return self._host_states
        da = self._da
        assert da is not None  # set before the device states are
        return [da.host_state(s) for s in self._dev_states.tolist()]

    @states.setter
    def states(self, value: list[int]) -> None:
        self._host_states = value
        if not value:
            self._dev_states = None

    @property
    def errors(self) -> dict[int, str]:  # type: ignore[override]
        if self._dev_states is None:
            return self._host_errors
        da = self._da
        assert da is not None  # set before the device states are
        out = {}
        sts = self._dev_states.tolist()
        toks = self._err_tok.tolist()
        prev = self._err_state.tolist()
        for r, s in enumerate(sts):
            if s == da.dead:
                out[r] = f"token {toks[r]} not allowed in state {prev[r]}"
        return out

    @errors.setter
    def errors(self, value: dict[int, str]) -> None:
        self._host_errors = value

    def reset(self) -> None:
        super().reset()
        self._dev_states = None

    def _use_device(self, scores: torch.Tensor) -> bool:
        if self._device_path is False:
            return False
        if self._device_path is None and (scores.device.type != "cuda" or not gpu_enabled()):
            return False
        if self._da is None or self._da.device != scores.device:
            self._da = device_automaton(self.automaton, scores.device)
        return self._da.complete

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._dev_states is None and (self._prompt_len is not None and self._host_states):
            return super().__call__(input_ids, scores)  # started on the host path: stay there
        if not self._use_device(scores):
            return super().__call__(input_ids, scores)
        da = self._da
        assert da is not None  # _use_device made it
        if self._dev_states is None:
            B = input_ids.shape[0]
            self._prompt_len = input_ids.shape[1]
            self._dev_states = da.initial_states(B)
            self._spare = torch.empty_like(self._dev_states)
            self._err_tok = torch.full((B,), -1, dtype=torch.int32, device=da.device)
            self._err_state = torch.full((B,), -1, dtype=torch.int32, device=da.device)
            return cast(torch.FloatTensor, da.fill_(scores, self._dev_states))
        # advance + fill in one launch, into the spare state buffer (ping-pong)
        da.advance_fill_(scores, self._dev_states, self._spare, input_ids[:, -1], self._err_tok, self._err_state)
        self._dev_states, self._spare = self._spare, self._dev_states
        return scores

    def _advance(self, last: list[int]) -> None:
        if self._dev_states is None:
            super()._advance(last)
            return
        da = self._da
        assert da is not None  # set before the device states are
        toks = torch.tensor(last, dtype=torch.int64).to(da.device)
        da.advance_(self._dev_states, toks, self._err_tok, self._err_state)

    def finished(self, row: int) -> bool:
        return self.states[row] == FINISHED
