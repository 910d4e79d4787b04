"""jsonmode.processor: JsonLogitsProcessor on synthetic scores (no model)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList

from jsonmode import JsonLogitsProcessor, TokenAutomaton, Vocabulary, compile_automaton
from jsonmode.processor import ERROR, FINISHED, DeviceMaskTable, unpack_mask

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 999}, "b": {"enum": ["x", "yz"]}},
    "required": ["a"],
    "additionalProperties": False,
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@functools.cache
def _tok() -> Any:
    from jsonmode.tiny import trained_bpe_tokenizer

    return trained_bpe_tokenizer()


@functools.cache
def _automaton(extra: int = 0) -> TokenAutomaton:
    tok = _tok()
    base = Vocabulary.from_tokenizer(tok)
    vocab = Vocabulary.from_tokenizer(tok, logits_width=base.size + extra) if extra else base
    return compile_automaton(SCHEMA, vocab)


def ids(text: str) -> list[int]:
    return _tok().encode(text, add_special_tokens=False)


def expected_allowed(ta: TokenAutomaton, state: int, width: int) -> np.ndarray:
    """Bool (width,) of what a row in ``state`` may emit: the mask, EOS only when finished/errored."""
    out = np.zeros(width, bool)
    if state >= 0:
        out[ta.allowed_tokens(state)] = True
    else:
        out[ta.eos_ids] = True
    return out


def check_row(scores_in: torch.Tensor, scores_out: torch.Tensor, allowed: np.ndarray) -> None:
    """-inf exactly outside ``allowed``; untouched inside."""
    out = scores_out.float().cpu().numpy()
    inp = scores_in.float().cpu().numpy()
    assert np.isneginf(out[~allowed]).all()
    assert np.array_equal(out[allowed], inp[allowed])
    assert np.isfinite(out[allowed]).all()


def run_steps(proc: JsonLogitsProcessor, prompt_len: int, rows: list[list[int]], width: int, device: str,
              dtype: torch.dtype = torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Feed a generation step by step: rows[r][k] is the token row r emitted at step k."""
    B = len(rows)
    steps = len(rows[0])
    g = torch.Generator().manual_seed(0)
    input_ids = torch.zeros((B, prompt_len), dtype=torch.long)
    seen = []
    for k in range(steps + 1):
        scores = torch.randn((B, width), generator=g).to(dtype)
        before = scores.clone()
        out = proc(input_ids.to(device), scores.to(device))
        seen.append((before, out))
        if k < steps:
            col = torch.tensor([[r[k]] for r in rows], dtype=torch.long)
            input_ids = torch.cat([input_ids, col], dim=1)
    return seen


@pytest.mark.parametrize("device", DEVICES)
def test_first_step_masks_initial_state(device: str) -> None:
    ta = _automaton()
    proc = JsonLogitsProcessor(ta)
    scores = torch.randn(2, ta.width)
    before = scores.clone()
    out = proc(torch.zeros((2, 5), dtype=torch.long, device=device), scores.to(device))
    assert proc.states == [ta.initial_state] * 2
    allowed = expected_allowed(ta, ta.initial_state, ta.width)
    assert allowed.sum() >= 1
    for r in range(2):
        check_row(before[r], out[r], allowed)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_rows_follow_their_own_states(device: str) -> None:
    ta = _automaton()
    texts = ['{"a": 7, "b": "yz"}', '{"a": 120}', '{"a": 0, "b": "x"}']
    toks = [ids(t) for t in texts]
    n = min(len(t) for t in toks)
    rows = [t[:n] for t in toks]
    proc = JsonLogitsProcessor(ta)
    seen = run_steps(proc, 4, rows, ta.width, device)
    for k, (before, out) in enumerate(seen):
        for r, row in enumerate(rows):
            state = ta.initial_state
            for t in row[:k]:
                state = ta.advance(state, t)
            check_row(before[r], out[r], expected_allowed(ta, state, ta.width))
    assert proc.errors == {}
    assert all(s > 0 for s in proc.states)


@pytest.mark.parametrize("device", DEVICES)
def test_row_that_emitted_eos_allows_only_eos(device: str) -> None:
    ta = _automaton()
    eos = int(ta.eos_ids[0])
    done = ids('{"a": 5}') + [eos]
    busy = ids('{"a": 123, "b": "x"}')
    n = max(len(done), len(busy))
    pad = eos
    rows = [done + [pad] * (n - len(done)), busy[:n]]
    proc = JsonLogitsProcessor(ta)
    seen = run_steps(proc, 3, rows, ta.width, device)
    assert proc.states[0] == FINISHED and proc.finished(0) and not proc.finished(1)
    only_eos = np.zeros(ta.width, bool)
    only_eos[ta.eos_ids] = True
    before, out = seen[-1]
    check_row(before[0], out[0], only_eos)
    assert 0 not in proc.errors


@pytest.mark.parametrize("device", DEVICES)
def test_eos_before_the_value_is_complete_is_an_error(device: str) -> None:
    ta = _automaton()
    eos = int(ta.eos_ids[0])
    rows = [ids('{"a"')[:2] + [eos]]
    proc = JsonLogitsProcessor(ta)
    run_steps(proc, 2, rows, ta.width, device)
    assert proc.states[0] == ERROR and 0 in proc.errors


@pytest.mark.parametrize("device", DEVICES)
def test_illegal_token_sets_error_state_without_raising(device: str) -> None:
    ta = _automaton()
    good = ids('{"a": 1}')
    bad_tok = ids("zzz")[0]
    assert not ta.allows(ta.initial_state, bad_tok)
    rows = [[bad_tok] + good[1:], good]
    proc = JsonLogitsProcessor(ta)
    seen = run_steps(proc, 2, rows, ta.width, device)  # must not raise
    assert proc.states[0] == ERROR
    msg = proc.errors[0]
    assert isinstance(msg, str) and str(bad_tok) in msg
    assert 1 not in proc.errors and proc.states[1] > 0
    info = proc.state_info()
    assert info["states"][0] == ERROR and 0 in info["errors"]
    # the errored row may only stop
    only_eos = np.zeros(ta.width, bool)
    only_eos[ta.eos_ids] = True
    before, out = seen[-1]
    check_row(before[0], out[0], only_eos)


@pytest.mark.parametrize("device", DEVICES)
def test_logits_wider_than_the_tokenizer(device: str) -> None:
    """Vocabulary width 37 columns past the tokenizer, and scores 64 columns wider still."""
    ta = _automaton(extra=37)
    size = ta.vocab.size
    assert ta.width == size + 37
    for width in (ta.width, ta.width + 64):
        proc = JsonLogitsProcessor(ta)
        toks = ids('{"a": 42}')
        seen = run_steps(proc, 3, [toks], width, device)
        state = ta.initial_state
        for k, (before, out) in enumerate(seen):
            if k:
                state = ta.advance(state, toks[k - 1])
            assert out.shape == (1, width)
            assert torch.isinf(out[0, size:]).all() and (out[0, size:] < 0).all()
            check_row(before[0], out[0], expected_allowed(ta, state, width))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_scores(dtype: torch.dtype) -> None:
    ta = _automaton()
    proc = JsonLogitsProcessor(ta)
    seen = run_steps(proc, 2, [ids('{"a": 3}')], ta.width, "cpu", dtype=dtype)
    for _before, out in seen:
        assert out.dtype == dtype
    before, out = seen[0]
    check_row(before[0], out[0], expected_allowed(ta, ta.initial_state, ta.width))


def test_reset_and_reuse_and_logits_processor_list() -> None:
    ta = _automaton()
    proc = JsonLogitsProcessor(ta)
    run_steps(proc, 2, [ids('{"a": 3}')], ta.width, "cpu")
    assert proc.states[0] > ta.initial_state
    proc.reset()
    assert proc.states == [] and proc.errors == {}
    lst = LogitsProcessorList([proc])
    scores = torch.randn(3, ta.width)
    before = scores.clone()
    out = lst(torch.zeros((3, 7), dtype=torch.long), scores)
    assert proc.states == [ta.initial_state] * 3
    check_row(before[1], out[1], expected_allowed(ta, ta.initial_state, ta.width))


def test_unpack_mask_and_device_table_match_host_masks() -> None:
    """The device-path helpers, exercised on the CPU device."""
    ta = _automaton(extra=37)
    states = [ta.initial_state, ta.walk(b'{"a": 1'), ta.walk(b'{"a": 12, "b": "'), FINISHED, ERROR]
    table = DeviceMaskTable(ta, torch.device("cpu"))
    words = table.rows_for(states)
    assert words.shape == (len(states), ta.num_words) and words.dtype == torch.int32
    bits = unpack_mask(words, ta.width)
    assert bits.shape == (len(states), ta.width) and bits.dtype == torch.bool
    for r, s in enumerate(states):
        assert np.array_equal(bits[r].numpy(), expected_allowed(ta, s, ta.width)), s
    # a mask for a state first seen later is appended to the device table
    later = ta.walk(b'{"a": 999')
    again = table.rows_for([later])
    assert np.array_equal(unpack_mask(again, ta.width)[0].numpy(), expected_allowed(ta, later, ta.width))
