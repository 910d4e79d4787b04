"""Logits processor: one automaton state per row, all rows masked at once on the logits' device.

Per step the host does O(batch) work (advance each row's state by its last token);
masks are gathered on the device from a resident copy of the packed mask table and
applied with one ``masked_fill``.  Nothing per step scales with the vocabulary on the host.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from transformers import LogitsProcessor

from .automaton import TokenAutomaton

FINISHED = -2  # row emitted EOS
ERROR = -1  # row produced a token outside the mask (reported, never raised mid-generation)

_SHIFTS: dict[torch.device, torch.Tensor] = {}


def unpack_mask(words: torch.Tensor, width: int) -> torch.Tensor:
    """(B, W) int32 packed words -> (B, width) bool."""
    dev = words.device
    sh = _SHIFTS.get(dev)
    if sh is None:
        sh = torch.arange(32, dtype=torch.int32, device=dev)
        _SHIFTS[dev] = sh
    bits = (words.unsqueeze(-1) >> sh) & 1
    return bits.reshape(words.shape[0], -1)[:, :width].bool()


class DeviceMaskTable:
    """A device-resident mirror of an automaton's mask table, grown as new states get masks."""

    def __init__(self, automaton: TokenAutomaton, device: torch.device) -> None:
        self.automaton = automaton
        self.device = device
        self._rows = 0
        self._table = torch.zeros((0, automaton.num_words), dtype=torch.int32, device=device)
        self._eos_only = torch.from_numpy(automaton.eos_words.copy()).to(device)

    def rows_for(self, states: list[int]) -> torch.Tensor:
        ta = self.automaton
        ta.ensure_masks(states)
        row_of, masks = ta.mask_table()
        if masks.shape[0] > self._rows:
            new = torch.from_numpy(np.ascontiguousarray(masks[self._rows :])).to(self.device)
            self._table = torch.cat([self._table, new], dim=0)
            self._rows = masks.shape[0]
        idx = [int(row_of[s]) if s >= 0 else -1 for s in states]
        if all(i >= 0 for i in idx):
            return self._table[torch.tensor(idx, device=self.device)]
        out = torch.empty((len(states), ta.num_words), dtype=torch.int32, device=self.device)
        for r, i in enumerate(idx):
            out[r] = self._table[i] if i >= 0 else self._eos_only
        return out


class JsonLogitsProcessor(LogitsProcessor):
    """A ``transformers`` logits processor enforcing a :class:`TokenAutomaton` on every row.

    Use a fresh instance per ``generate`` call (it tracks the prompt length and row states).
    ``states`` and ``errors`` stay readable afterwards.
    """

    def __init__(self, automaton: TokenAutomaton, batch_size: int | None = None) -> None:
        self.automaton = automaton
        self.states: list[int] = []
        self.errors: dict[int, str] = {}
        self._prompt_len: int | None = None
        self._tables: dict[torch.device, DeviceMaskTable] = {}
        self._eos = set(int(e) for e in automaton.eos_ids.tolist())
        self._batch_size = batch_size

    def reset(self) -> None:
        self.states = []
        self.errors = {}
        self._prompt_len = None

    def _advance(self, last: list[int]) -> None:
        ta = self.automaton
        for r, tok in enumerate(last):
            s = self.states[r]
            if s < 0:
                continue
            if tok in self._eos and ta.is_accepting(s):
                self.states[r] = FINISHED
                continue
            nxt = ta.advance(s, tok)
            if nxt < 0:
                self.errors[r] = f"token {tok} not allowed in state {s}"
                self.states[r] = ERROR
            else:
                self.states[r] = nxt

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        B = input_ids.shape[0]
        if self._prompt_len is None or not self.states:
            self._prompt_len = input_ids.shape[1]
            self.states = [self.automaton.initial_state] * B
        else:
            self._advance(input_ids[:, -1].tolist())
        return cast(torch.FloatTensor, self.apply(scores))

    def _host_words(self) -> np.ndarray:
        """(B, W) packed masks of the current states, from the automaton's own table."""
        ta = self.automaton
        ta.ensure_masks(self.states)
        row_of, masks = ta.mask_table()
        out = np.empty((len(self.states), ta.num_words), np.int32)
        for r, s in enumerate(self.states):
            out[r] = masks[row_of[s]] if s >= 0 else ta.eos_words
        return out

    def apply(self, scores: torch.Tensor) -> torch.Tensor:
        dev = scores.device
        if dev.type == "cpu":
            # host path: numpy unpack (no int32 shift tensors), one in-place fill
            host_words = self._host_words()
            width = scores.shape[-1]
            n = min(width, host_words.shape[1] * 32)
            bits = np.unpackbits(host_words.view(np.uint8), axis=1, count=n, bitorder="little")
            banned = torch.from_numpy(bits.view(np.bool_)).logical_not()
            if n < width:
                banned = torch.nn.functional.pad(banned, (0, width - n), value=True)
            return scores.masked_fill_(banned, float("-inf"))
        if dev.type == "cuda":  # device-resident masks + fused fill (jsonmode.gpu); JSONMODE_GPU=0: old path
            from .gpu import apply_host_states, gpu_enabled

            if gpu_enabled():
                return apply_host_states(self, scores)
        table = self._tables.get(dev)
        if table is None:
            table = DeviceMaskTable(self.automaton, dev)
            self._tables[dev] = table
        words = table.rows_for(self.states)
        width = scores.shape[-1]
        allowed = unpack_mask(words, min(width, words.shape[1] * 32))
        if allowed.shape[1] < width:  # logits wider than the mask table: extra columns never allowed
            allowed = torch.nn.functional.pad(allowed, (0, width - allowed.shape[1]), value=False)
        return scores.masked_fill(~allowed, float("-inf"))

    def finished(self, row: int) -> bool:
        return self.states[row] == FINISHED

    def state_info(self) -> dict[str, Any]:
        return {"states": list(self.states), "errors": dict(self.errors)}
