"""Per-step device kernels of constrained decoding: Triton where it runs, torch otherwise.

Every entry point takes the same tensors either way, so callers never branch:

* :func:`mask_fill` -- ``logits[b, c] = -inf`` for every column banned in row ``b``'s state
  (in place; columns past the mask table's width are banned too);
* :func:`masked_argmax` -- greedy token per row under the mask, logits untouched;
* :func:`advance` -- per-row automaton step on the device (no host round trip);
* :func:`select_advance` -- argmax + done/pad + output store + advance, one decode step's tail.

``tables`` is the dict built by :class:`jsonmode.gpu.DeviceAutomaton` (``n_tok``, ``full``,
``n_sym``, ``buf``, ``off``, ``len``, ``is_eos``, ``accept``, ``dead``, ``fin``, ``flat``).

Triton is used for CUDA tensors when it imports (``JSONMODE_TRITON=0`` forces the torch
path; ``JSONMODE_TRITON=1`` also runs Triton on CPU tensors, for ``TRITON_INTERPRET=1``
tests).  The torch path is what CPU-only installs and CI run.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import torch

__all__ = ["advance", "advance_fill", "mask_fill", "masked_argmax", "select_advance", "triton_enabled", "torch_mask_fill"]

_NEG_INF = float("-inf")


@lru_cache(maxsize=1)
def _triton_module() -> Any:
    try:
        from . import triton_mask
    except Exception:  # noqa: BLE001 - no triton, or it cannot initialise here
        return None
    return triton_mask


def triton_enabled(device: torch.device | str) -> bool:
    flag = os.environ.get("JSONMODE_TRITON", "")
    if flag == "0":
        return False
    dev = torch.device(device)
    if dev.type != "cuda" and flag != "1":
        return False
    return _triton_module() is not None


# ---------------------------------------------------------------------- torch fallbacks

_LUT: dict[torch.device, torch.Tensor] = {}


def _byte_lut(device: torch.device) -> torch.Tensor:
    lut = _LUT.get(device)
    if lut is None:
        b = torch.arange(256, dtype=torch.int32)
        lut = ((b[:, None] >> torch.arange(8, dtype=torch.int32)[None, :]) & 1).bool().to(device)
        _LUT[device] = lut
    return lut


def allowed_from_words(words: torch.Tensor, n_cols: int) -> torch.Tensor:
    """(B, W) packed int32 words -> (B, n_cols) bool, columns past ``32 W`` False."""
    B, W = words.shape
    by = words.contiguous().view(torch.uint8)  # little-endian: word w, bits 0..7 = byte 4w
    allowed = _byte_lut(words.device)[by.long()].reshape(B, W * 32)
    if n_cols <= W * 32:
        return allowed[:, :n_cols]
    return torch.nn.functional.pad(allowed, (0, n_cols - W * 32), value=False)


def torch_mask_fill(logits: torch.Tensor, states: torch.Tensor, row_of: torch.Tensor, masks: torch.Tensor,
                    banned_table: torch.Tensor | None = None) -> torch.Tensor:
    rows = row_of[states.long()].long()
    n_cols = logits.shape[1]
    if banned_table is not None and banned_table.shape[1] >= n_cols:
        banned = banned_table.index_select(0, rows)[:, :n_cols]
    else:
        banned = ~allowed_from_words(masks.index_select(0, rows), n_cols)
    return logits.masked_fill_(banned, _NEG_INF)


def _torch_argmax(logits: torch.Tensor, states: torch.Tensor, row_of: torch.Tensor, masks: torch.Tensor,
                  banned_table: torch.Tensor | None) -> torch.Tensor:
    x = logits.clone()
    torch_mask_fill(x, states, row_of, masks, banned_table)
    return torch.argmax(x, dim=-1)


def _torch_walk(states: torch.Tensor, tokens: torch.Tensor, t: dict) -> torch.Tensor:
    dead, fin, n_tok = t["dead"], t["fin"], t["n_tok"]
    s = states.long()
    tok = tokens.long()
    live = (s != dead) & (s != fin)
    valid = (tok >= 0) & (tok < n_tok)
    tc = torch.where(valid, tok, torch.zeros_like(tok))
    eos_acc = (t["is_eos"][tc] != 0) & (t["accept"][s] != 0) & valid & live
    length = torch.where(valid, t["len"][tc].long(), torch.zeros_like(tok))
    off = t["off"][tc].long()
    n = torch.where(live & valid & ~eos_acc, length, torch.zeros_like(length))
    cur = torch.where(live, s, torch.full_like(s, dead))
    steps = int(n.max()) if n.numel() else 0  # one host sync (the torch path only)
    buf, flat, n_sym = t["buf"], t["flat"], t["n_sym"]
    last = buf.shape[0] - 1
    for i in range(steps):
        act = i < n
        sym = buf[(off + i).clamp(max=last)].long()
        nxt = flat[cur * n_sym + sym].long()
        cur = torch.where(act, nxt, cur)
    walked = torch.where((length == 0) | (cur == dead), torch.full_like(cur, dead), cur)
    new = torch.where(live & valid, torch.where(eos_acc, torch.full_like(cur, fin), walked),
                      torch.where(live & (tok >= n_tok), torch.full_like(s, dead), s))
    return new.to(states.dtype)


def _torch_advance(states: torch.Tensor, tokens: torch.Tensor, t: dict, err_tok: torch.Tensor,
                   err_state: torch.Tensor) -> None:
    new = _torch_walk(states, tokens, t)
    failed = (states != t["dead"]) & (states != t["fin"]) & (new == t["dead"])
    err_tok.copy_(torch.where(failed, tokens.to(err_tok.dtype), err_tok))
    err_state.copy_(torch.where(failed, states.to(err_state.dtype), err_state))
    states.copy_(new)


# ---------------------------------------------------------------------- dispatch


def mask_fill(logits: torch.Tensor, states: torch.Tensor, row_of: torch.Tensor, masks: torch.Tensor,
              banned_table: torch.Tensor | None = None, *, use_triton: bool | None = None) -> torch.Tensor:
    """In place: ban every column not allowed in each row's state; returns ``logits``."""
    if use_triton is None:
        use_triton = triton_enabled(logits.device)
    if use_triton and logits.stride(1) == 1:
        _triton_module().mask_fill(logits, states, row_of, masks)
        return logits
    return torch_mask_fill(logits, states, row_of, masks, banned_table)


def masked_argmax(logits: torch.Tensor, states: torch.Tensor, row_of: torch.Tensor, masks: torch.Tensor,
                  banned_table: torch.Tensor | None = None, *, out: torch.Tensor | None = None,
                  use_triton: bool | None = None) -> torch.Tensor:
    if use_triton is None:
        use_triton = triton_enabled(logits.device)
    if out is None:
        out = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
    if use_triton and logits.stride(1) == 1:
        return _triton_module().masked_argmax(logits, states, row_of, masks, out)
    out.copy_(_torch_argmax(logits, states, row_of, masks, banned_table))
    return out


def advance(states: torch.Tensor, tokens: torch.Tensor, tables: dict, err_tok: torch.Tensor,
            err_state: torch.Tensor, *, use_triton: bool | None = None) -> None:
    """In place: ``states[b]`` <- state after ``tokens[b]``; records (token, state) of new errors."""
    if use_triton is None:
        use_triton = triton_enabled(states.device)
    if use_triton:
        _triton_module().advance(states, tokens, tables, err_tok, err_state)
    else:
        _torch_advance(states, tokens, tables, err_tok, err_state)


def advance_fill(logits: torch.Tensor, states_in: torch.Tensor, states_out: torch.Tensor, tokens: torch.Tensor,
                 row_of: torch.Tensor, masks: torch.Tensor, tables: dict, err_tok: torch.Tensor, err_state: torch.Tensor,
                 banned_table: torch.Tensor | None = None, *, use_triton: bool | None = None) -> torch.Tensor:
    """One logits-processor step: ``states_out`` = ``states_in`` advanced by ``tokens``, then the masked
    fill for ``states_out`` -- a single launch on the Triton path.  ``states_in`` is left unchanged."""
    if use_triton is None:
        use_triton = triton_enabled(logits.device)
    if use_triton and logits.stride(1) == 1:
        _triton_module().advance_fill(logits, states_in, states_out, tokens, row_of, masks, tables, err_tok, err_state)
        return logits
    states_out.copy_(states_in)
    _torch_advance(states_out, tokens, tables, err_tok, err_state)
    return torch_mask_fill(logits, states_out, row_of, masks, banned_table)


def select_advance(logits: torch.Tensor, states: torch.Tensor, row_of: torch.Tensor, masks: torch.Tensor,
                   done: torch.Tensor, tok: torch.Tensor, out: torch.Tensor, step: torch.Tensor, pad_id: int,
                   eos: torch.Tensor, tables: dict, err_tok: torch.Tensor, err_state: torch.Tensor,
                   banned_table: torch.Tensor | None = None, *, use_triton: bool | None = None) -> None:
    """Greedy step tail: token = masked argmax (``pad_id`` where done), ``out[:, step] = token``,
    ``tok = token``, ``done |= token in eos``, advance states.  No host sync on the Triton path."""
    if use_triton is None:
        use_triton = triton_enabled(logits.device)
    if use_triton and logits.stride(1) == 1:
        _triton_module().select_advance(logits, states, row_of, masks, done, tok, out, step, pad_id, eos,
                                        tables, err_tok, err_state)
        return
    nxt = _torch_argmax(logits, states, row_of, masks, banned_table)
    finish_tokens(nxt, states, done, tok, out, step, pad_id, eos, tables, err_tok, err_state, use_triton=False)


def finish_tokens(nxt: torch.Tensor, states: torch.Tensor, done: torch.Tensor, tok: torch.Tensor,
                  out: torch.Tensor, step: torch.Tensor, pad_id: int, eos: torch.Tensor, tables: dict,
                  err_tok: torch.Tensor, err_state: torch.Tensor, *, use_triton: bool | None = None) -> None:
    """The part of :func:`select_advance` after the token choice (used by sampling too)."""
    d = done != 0
    nxt = torch.where(d, torch.full_like(nxt, pad_id), nxt)
    out.index_copy_(1, step.view(1), nxt.view(-1, 1).to(out.dtype))
    tok.copy_(nxt)
    done.copy_((d | torch.isin(nxt, eos)).to(done.dtype))
    advance(states, nxt, tables, err_tok, err_state, use_triton=use_triton)
