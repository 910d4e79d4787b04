"""Vocabulary: exact bytes per token id for byte-level BPE and SentencePiece tokenizers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import load_shared_tokenizer

from jsonmode.vocab import Vocabulary, bytes_to_unicode, token_byte_matrix

SHARED = ["llama-3.1", "hermes-2-pro-llama-3", "deepseek-llm", "gpt-2", "llama-spm"]

TEXTS = [
    '{"name": "Ada", "age": 36, "tags": ["x", "y"], "ok": true, "none": null, "pi": -3.14e-2}',
    "Café ñ 日本語 🙂",
    '{\n  "a": [\n    1,\n    2\n  ]\n}\n',
    "   leading and trailing spaces   ",
    "tabs\tand\r\nCRLF and \\u00e9 escapes",
    '"ø ö ú ÿ" <tool_call> {"x": "y"} </tool_call>',
]

_VOCABS: dict[str, Vocabulary] = {}


def _tokenizer(name: str, trained: Any) -> Any:
    return trained if name == "trained" else load_shared_tokenizer(name)


def _vocab(name: str, tokenizer: Any) -> Vocabulary:
    """One Vocabulary per tokenizer per session (construction is ~0.3 s for 128k tokens)."""
    if name not in _VOCABS:
        _VOCABS[name] = Vocabulary.from_tokenizer(tokenizer)
    return _VOCABS[name]


@pytest.fixture(params=[*SHARED, "trained"])
def named(request: pytest.FixtureRequest, trained_bpe_tokenizer: Any) -> tuple[str, Any, Vocabulary]:
    tok = _tokenizer(request.param, trained_bpe_tokenizer)
    return request.param, tok, _vocab(request.param, tok)


def _is_sentencepiece(tok: Any) -> bool:
    return "Metaspace" in tok.backend_tokenizer.pre_tokenizer.__getstate__().decode()


def test_bytes_to_unicode_is_gpt2_table() -> None:
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert table[0] == "Ā" and table[0xA0] == "ł" and table[0xAD] == "Ń"


@pytest.mark.parametrize("text", TEXTS)
def test_roundtrip(named: tuple[str, Any, Vocabulary], text: str) -> None:
    name, tok, vocab = named
    ids = tok.encode(text, add_special_tokens=False)
    expected = text.encode()
    if _is_sentencepiece(tok):
        # SentencePiece (Metaspace, prepend_scheme="first") marks the start of the text as a word
        # boundary: the first piece starts with "▁", which is a real space in the token's bytes. The
        # text's own leading space is absorbed into that "▁"; otherwise one is prepended. The HF
        # decoder strips it again (Strip decoder); we keep it because mid-generation it is a space.
        assert tok.convert_ids_to_tokens(ids[:1])[0].startswith("▁")
        if not text.startswith(" "):
            expected = b" " + expected
    assert vocab.decode(ids) == expected


def test_every_token_matches_tokenizer_decode(named: tuple[str, Any, Vocabulary]) -> None:
    """Cross-check every model-vocab token against the tokenizer's own decoder where it is exact."""
    name, tok, vocab = named
    backend = tok.backend_tokenizer
    added = backend.get_added_tokens_decoder()
    ids = [i for i in range(vocab.size) if i not in added and i not in vocab.special_ids]
    decoded = backend.decode_batch([[i] for i in ids], skip_special_tokens=False)
    spm = _is_sentencepiece(tok)
    checked = 0
    for i, text in zip(ids, decoded, strict=True):
        raw = vocab.token_bytes[i]
        try:
            mine = raw.decode()
        except UnicodeDecodeError:  # partial UTF-8 sequence: the decoder shows U+FFFD instead
            assert "\ufffd" in text
            continue
        if spm and mine.startswith(" "):
            mine = mine[1:]  # Strip decoder removes one leading space of a whole decode
        assert mine == text, (i, raw, text)
        checked += 1
    assert checked > 0.7 * len(ids)  # the rest are partial UTF-8 (e.g. lone bytes)


def test_added_tokens(named: tuple[str, Any, Vocabulary]) -> None:
    name, tok, vocab = named
    for i, added in tok.backend_tokenizer.get_added_tokens_decoder().items():
        assert vocab.special_id(added.content) == i
        if added.special:
            assert i in vocab.special_ids and vocab.token_bytes[i] == b""
        else:
            assert vocab.token_bytes[i] == added.content.encode()
    for i in tok.all_special_ids:
        assert i in vocab.special_ids and vocab.token_bytes[i] == b""
    assert vocab.special_id("definitely not a token") is None
    assert vocab.decode([*sorted(vocab.special_ids), vocab.size, vocab.size + 5]) == b""


def test_byte_matrix(named: tuple[str, Any, Vocabulary]) -> None:
    name, tok, vocab = named
    matrix, lengths = token_byte_matrix(vocab)
    assert token_byte_matrix(vocab)[0] is matrix  # cached
    assert matrix.dtype == np.uint8 and lengths.dtype == np.int32
    assert matrix.shape == (vocab.size, max(len(b) for b in vocab.token_bytes))
    assert lengths.tolist() == [len(b) for b in vocab.token_bytes]
    assert not matrix.flags.writeable
    rng = np.random.default_rng(0)
    for i in rng.integers(0, vocab.size, 500).tolist() + sorted(vocab.special_ids)[:5]:
        n = int(lengths[i])
        assert matrix[i, :n].tobytes() == vocab.token_bytes[i]
        assert not matrix[i, n:].any()


def test_raw_tokenizers_tokenizer_gives_same_vocabulary(named: tuple[str, Any, Vocabulary]) -> None:
    name, tok, vocab = named
    raw = Vocabulary.from_tokenizer(tok.backend_tokenizer)
    assert raw.token_bytes == vocab.token_bytes
    assert raw.special_ids <= vocab.special_ids
    # A raw Tokenizer has no eos_token_id: only the named terminators are found.
    assert set(raw.eos_ids) <= set(vocab.eos_ids)


def test_hermes_eos_width_and_tool_call() -> None:
    tok = load_shared_tokenizer("hermes-2-pro-llama-3")
    vocab = _vocab("hermes-2-pro-llama-3", tok)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end == tok.eos_token_id == 128003 and im_end in vocab.eos_ids
    assert vocab.size == 128256 and vocab.logits_width == 128256
    tool_call = vocab.special_id("<tool_call>")
    assert tool_call is not None and tool_call == tok.convert_tokens_to_ids("<tool_call>")
    assert vocab.token_bytes[tool_call] == b"<tool_call>" and tool_call not in vocab.special_ids

    # The real model's logits have 128288 columns: taken from the model config, or given explicitly.
    wide = Vocabulary.from_tokenizer(tok, model_config=SimpleNamespace(vocab_size=128288))
    assert wide.logits_width == 128288 and wide.size == 128256
    assert wide.fingerprint != vocab.fingerprint
    explicit = Vocabulary.from_tokenizer(tok, model_config={"vocab_size": 1}, logits_width=128288)
    assert explicit.logits_width == 128288 and explicit.fingerprint == wide.fingerprint
    with pytest.raises(ValueError, match="logits_width"):
        Vocabulary.from_tokenizer(tok, logits_width=1000)


def test_llama31_eos_and_generation_config() -> None:
    tok = load_shared_tokenizer("llama-3.1")
    vocab = _vocab("llama-3.1", tok)
    assert {128001, 128009} <= set(vocab.eos_ids)
    assert list(vocab.eos_ids) == sorted(vocab.eos_ids)
    assert vocab.token_bytes[128009] == b"" and vocab.decode([128000, 9906, 128009]) == b"Hello"
    # generation_config ids (int or list) are added; out-of-range ids are ignored.
    gen = Vocabulary.from_tokenizer(tok, generation_config=SimpleNamespace(eos_token_id=[128008, 10**9]))
    assert set(gen.eos_ids) == set(vocab.eos_ids) | {128008}
    assert Vocabulary.from_tokenizer(tok, generation_config={"eos_token_id": 128008}).eos_ids == gen.eos_ids


def test_llama_spm_byte_fallback() -> None:
    tok = load_shared_tokenizer("llama-spm")
    vocab = _vocab("llama-spm", tok)
    assert vocab.token_bytes[tok.convert_tokens_to_ids("<0x0A>")] == b"\n"
    assert vocab.token_bytes[tok.convert_tokens_to_ids("<0xF0>")] == b"\xf0"
    assert vocab.token_bytes[tok.convert_tokens_to_ids("▁{")] == b" {"
    assert {0, 1, 2} <= vocab.special_ids and vocab.eos_ids == (2,)


def test_deepseek_added_letters_are_literal_text() -> None:
    """DeepSeek adds "ø" etc. as non-special added tokens: they match the literal text "ø"."""
    tok = load_shared_tokenizer("deepseek-llm")
    vocab = _vocab("deepseek-llm", tok)
    oslash = vocab.special_id("ø")
    assert oslash is not None and tok.encode("ø", add_special_tokens=False) == [oslash]
    assert vocab.token_bytes[oslash] == "ø".encode()  # the ByteLevel decoder would say b"\xf8"


def test_trained_tokenizer(trained_bpe_tokenizer: Any) -> None:
    tok = trained_bpe_tokenizer
    vocab = _vocab("trained", tok)
    assert 500 <= vocab.size <= 600 and vocab.eos_ids == (tok.convert_tokens_to_ids("<|im_end|>"),)
    assert vocab.special_id("<|im_start|>") in vocab.special_ids
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    assert vocab.decode(tok.encode(prompt)) == b"user\nhi\nassistant\n"


def test_fingerprint_is_stable_and_sensitive(trained_bpe_tokenizer: Any) -> None:
    vocab = _vocab("trained", trained_bpe_tokenizer)
    again = Vocabulary.from_tokenizer(trained_bpe_tokenizer)
    assert again is not vocab and again.fingerprint == vocab.fingerprint and len(vocab.fingerprint) == 64
    assert again != vocab  # eq=False: identity semantics, usable as a cache key by object
    tb = list(vocab.token_bytes)
    tb[300] = tb[300] + b"x"
    changed = Vocabulary.from_token_bytes(tb, special_ids=vocab.special_ids, eos_ids=vocab.eos_ids)
    assert changed.fingerprint != vocab.fingerprint
    same = Vocabulary.from_token_bytes(
        vocab.token_bytes, special_ids=vocab.special_ids, eos_ids=vocab.eos_ids
    )
    assert same.fingerprint == vocab.fingerprint
    assert "fingerprint" in repr(vocab) and len(repr(vocab)) < 200


def test_from_token_bytes_and_validation() -> None:
    vocab = Vocabulary.from_token_bytes([b"{", b"}", b"", b'"a"'], eos_ids=[2], logits_width=8)
    assert vocab.special_ids == frozenset({2}) and vocab.size == 4 and vocab.logits_width == 8
    assert vocab.decode(np.array([0, 3, 2, 1, 7])) == b'{"a"}'
    matrix, lengths = token_byte_matrix(vocab)
    assert matrix.shape == (4, 3) and lengths.tolist() == [1, 1, 0, 3]
    with pytest.raises(ValueError):
        Vocabulary(token_bytes=(b"a",), special_ids=frozenset(), eos_ids=(), size=2, logits_width=2)
    with pytest.raises(ValueError):
        Vocabulary.from_token_bytes([b"a"], eos_ids=[5])
    with pytest.raises(TypeError, match="fast tokenizer"):
        Vocabulary.from_tokenizer(object())
