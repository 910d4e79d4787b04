"""Shared test helpers: real tokenizers from ../shared (skipped when absent) and a tiny trained one."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

SHARED_TOKENIZERS = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers"

@functools.cache
def _load(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(SHARED_TOKENIZERS / name))


def load_shared_tokenizer(name: str) -> Any:
    """``AutoTokenizer`` for ``../shared/tokenizers/NAME``, loaded once per session; skips if absent."""
    if not (SHARED_TOKENIZERS / name).is_dir():
        pytest.skip(f"../shared/tokenizers/{name} not found: shared test data absent")
    return _load(name)


def build_trained_bpe_tokenizer() -> Any:
    """Byte-level BPE trained in memory (see :mod:`jsonmode.tiny`)."""
    from jsonmode.tiny import trained_bpe_tokenizer

    return trained_bpe_tokenizer()


@pytest.fixture(scope="session")
def trained_bpe_tokenizer() -> Any:
    """Session-cached :func:`build_trained_bpe_tokenizer` (training takes a fraction of a second)."""
    return build_trained_bpe_tokenizer()


@pytest.fixture(scope="session")
def torch_one_thread() -> Any:
    """Tiny models on a shared 2-core machine: one intra-op thread is far faster than oversubscribing."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
