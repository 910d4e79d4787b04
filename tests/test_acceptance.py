"""Acceptance: sampled generations from a tiny random model are always valid typed objects.

Runs 200 generations (temperature 1.0, a distinct seed each) of the bounded Character schema
with the Hermes 2 Pro tokenizer, as the core issue asks; ``JSONMODE_ACCEPTANCE_N`` overrides
the count.  Marked slow: ``python -m pytest -m slow`` runs it alone.
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import load_shared_tokenizer

from jsonmode import Engine
from jsonmode.catalog import Character
from jsonmode.tiny import tiny_llama

N = int(os.environ.get("JSONMODE_ACCEPTANCE_N", "200"))
BATCH = 25


@pytest.mark.slow
def test_200_sampled_characters_all_valid(torch_one_thread: None) -> None:
    tok = load_shared_tokenizer("hermes-2-pro-llama-3")
    engine = Engine(tiny_llama(tok, extra_columns=32), tok)
    assert engine.vocab.logits_width == 128288
    prompt = "Please return a json object to represent Goku from the anime Dragon Ball Z"
    results = []
    t0 = time.perf_counter()
    for start in range(0, N, BATCH):
        n = min(BATCH, N - start)
        # one seed per batch and a distinct sampling stream per row: seeds never repeat
        results += engine.generate_batch(Character, [prompt] * n, temperature=1.0, seed=1000 + start,
                                         max_new_tokens=1024, return_results=True)
    elapsed = time.perf_counter() - t0
    bad = [(r.error, r.text) for r in results if r.error is not None]
    lengths = sorted(len(r.token_ids) for r in results)
    print(f"\n{N} generations in {elapsed:.0f}s; valid {N - len(bad)}/{N}; tokens p50 {lengths[len(lengths) // 2]} "
          f"max {lengths[-1]}")
    assert not bad, bad[:3]
    assert all(isinstance(r.value, Character) for r in results)
    assert max(lengths) <= 1024
