"""Token id -> exact output bytes, for any Hugging Face fast tokenizer.

Everything downstream (the JSON automaton, the token mask compiler, the logits processor) reasons about
*bytes*, not token strings: vocab strings are an encoding artefact (GPT-2 byte-to-unicode letters,
SentencePiece ``▁`` and ``<0xNN>`` pieces) and single tokens are often not valid UTF-8 on their own.
:class:`Vocabulary` is that byte view, built once per tokenizer and shared (it is immutable).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Vocabulary", "token_byte_matrix", "bytes_to_unicode"]

# Added tokens that end a turn in common chat formats. Base tokenizers often name only the
# end-of-document token as EOS (Llama-3.1: <|end_of_text|>) while chat fine-tunes stop on the turn
# token (<|eot_id|>, ChatML <|im_end|>), and generation_config is not always available; a structured
# generation must be allowed to stop on whichever of them the model actually emits.
_NAMED_EOS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<|endoftext|>")

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_FINGERPRINT_VERSION = b"jsonmode.vocab/1"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character table used by ByteLevel BPE vocabularies.

    Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space, NBSP, soft
    hyphen) are shifted to U+0100.. in byte order, so every vocab string is made of visible letters.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def _byte_level_translation() -> dict[int, str]:
    """``str.translate`` table turning a ByteLevel vocab string into a Latin-1 string of its bytes.

    Latin-1 characters that are *not* table letters (e.g. a literal space) are mapped to a
    non-Latin-1 sentinel so that ``encode("latin-1")`` fails and we fall back to raw UTF-8, exactly
    as the `tokenizers` ByteLevel decoder does for strings outside the table.
    """
    trans: dict[int, str] = {ord(ch): chr(b) for b, ch in bytes_to_unicode().items()}
    for code in range(256):
        trans.setdefault(code, "\U0010ffff")
    return trans


_BYTE_LEVEL_TRANS = _byte_level_translation()


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Immutable byte view of a tokenizer; identity-hashed so it can key per-vocabulary caches.

    ``token_bytes[i]`` is what id ``i`` contributes to the generated text. Special tokens, unassigned
    ids and tokens that would emit nothing are ``b""`` *and* listed in ``special_ids``: a token that
    emits no bytes can never advance a JSON automaton, so it must never be allowed inside JSON.
    Ids ``size..logits_width-1`` are model logits columns without a token and are never allowed.
    """

    token_bytes: tuple[bytes, ...] = field(repr=False)
    special_ids: frozenset[int] = field(repr=False)
    eos_ids: tuple[int, ...]
    size: int
    logits_width: int
    added_text: dict[str, int] = field(default_factory=dict, repr=False)
    fingerprint: str = ""
    # text -> token ids as the tokenizer writes them (no special tokens); None for hand-made
    # vocabularies.  Compiling uses it to walk example outputs (see jsonmode.sketch).
    encode: Callable[[str], list[int]] | None = field(default=None, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.token_bytes) != self.size:
            raise ValueError(f"len(token_bytes)={len(self.token_bytes)} != size={self.size}")
        if self.logits_width < self.size:
            raise ValueError(f"logits_width={self.logits_width} < size={self.size}")
        eos = tuple(sorted(set(self.eos_ids)))
        if any(not 0 <= i < self.size for i in eos) or any(not 0 <= i < self.size for i in self.special_ids):
            raise ValueError("eos_ids and special_ids must be token ids in [0, size)")
        object.__setattr__(self, "eos_ids", eos)
        if not self.fingerprint:
            fp = _fingerprint(self.token_bytes, self.special_ids, eos, self.logits_width)
            object.__setattr__(self, "fingerprint", fp)

    def decode(self, ids: Iterable[int]) -> bytes:
        """Bytes of a token sequence; special ids and ids outside the vocabulary contribute nothing."""
        tb, size, special = self.token_bytes, self.size, self.special_ids
        out = []
        for raw in ids:
            i = int(raw)
            if 0 <= i < size and i not in special:
                out.append(tb[i])
        return b"".join(out)

    def special_id(self, text: str) -> int | None:
        """Id of the added token whose content is exactly ``text`` (e.g. ``"<tool_call>"``), else None."""
        return self.added_text.get(text)

    @classmethod
    def from_token_bytes(
        cls,
        token_bytes: Iterable[bytes],
        *,
        special_ids: Iterable[int] = (),
        eos_ids: Iterable[int] = (),
        logits_width: int | None = None,
        added_text: Mapping[str, int] | None = None,
    ) -> Vocabulary:
        """Hand-made vocabulary (tests, toy models); empty non-special tokens become special."""
        tb = tuple(token_bytes)
        special = frozenset(special_ids) | {i for i, b in enumerate(tb) if not b}
        tb = tuple(b"" if i in special else b for i, b in enumerate(tb))
        return cls(
            token_bytes=tb,
            special_ids=special,
            eos_ids=tuple(eos_ids),
            size=len(tb),
            logits_width=len(tb) if logits_width is None else logits_width,
            added_text=dict(added_text or {}),
        )

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        *,
        model_config: Any = None,
        generation_config: Any = None,
        logits_width: int | None = None,
    ) -> Vocabulary:
        """Build from a ``transformers`` fast tokenizer or a raw ``tokenizers.Tokenizer``.

        The byte scheme (ByteLevel vs SentencePiece) is read from the tokenizer's decoder /
        pre-tokenizer / ``byte_fallback`` configuration rather than guessed from vocab strings,
        because both schemes contain pieces that look like the other's (``<0x0A>`` is plain text in
        a ByteLevel vocab).

        ``eos_ids`` is the union of ``tokenizer.eos_token_id``, ``generation_config.eos_token_id``,
        ``model_config.eos_token_id`` and the named turn/document terminators present as added
        tokens: the tokenizer's own EOS is often not the token a chat model stops on (Hermes-2-Pro
        ends turns with ``<|im_end|>``, Llama-3.1 Instruct with ``<|eot_id|>``), and letting a
        finished JSON value end on any of them is what keeps generation from running on.

        ``logits_width``: explicit value, else ``model_config.vocab_size``, else ``size``.
        """
        backend = _backend(tokenizer)
        model_vocab: dict[str, int] = backend.get_vocab(with_added_tokens=False)
        added = backend.get_added_tokens_decoder()  # id -> AddedToken
        size = 1 + max(max(model_vocab.values(), default=-1), max(added, default=-1))

        scheme, replacement = _detect_scheme(backend)
        pieces: list[str | None] = [None] * size
        for piece, i in model_vocab.items():
            pieces[i] = piece
        if scheme == "byte_level":
            token_bytes: list[bytes | None] = [None if p is None else _byte_level_bytes(p) for p in pieces]
        else:
            byte_fallback = scheme == "sentencepiece_bytes"
            token_bytes = [None if p is None else _spm_bytes(p, replacement, byte_fallback) for p in pieces]

        special: set[int] = set()
        added_text: dict[str, int] = {}
        hf_special = set(getattr(tokenizer, "all_special_ids", ()) or ())
        for i, tok in added.items():
            added_text[tok.content] = i
            if tok.special or i in hf_special:
                special.add(i)
            else:
                # Added tokens are matched on the raw input text before pre-tokenization, so they
                # stand for their literal content (even where the ByteLevel decoder would read
                # e.g. DeepSeek's added "ø" as the single byte 0xF8).
                text = tok.content
                if scheme != "byte_level" and tok.normalized and replacement:
                    text = text.replace(replacement, " ")
                token_bytes[i] = text.encode("utf-8")
        for i, b in enumerate(token_bytes):
            if not b:  # unassigned id or empty piece: never valid output
                special.add(i)
        final = tuple(b"" if b is None or i in special else b for i, b in enumerate(token_bytes))

        eos: set[int] = set()
        for source in (tokenizer, generation_config, model_config):
            eos.update(_ids(_get(source, "eos_token_id")))
        eos.update(added_text[name] for name in _NAMED_EOS if name in added_text)
        eos = {i for i in eos if 0 <= i < size}

        if logits_width is None:
            width = _get(model_config, "vocab_size")
            logits_width = int(width) if width is not None else size
        return cls(
            token_bytes=final,
            special_ids=frozenset(special),
            eos_ids=tuple(sorted(eos)),
            size=size,
            logits_width=logits_width,
            added_text=added_text,
            encode=_Encoder(backend),
        )

    def __repr__(self) -> str:
        return (
            f"Vocabulary(size={self.size}, logits_width={self.logits_width}, "
            f"special={len(self.special_ids)}, eos_ids={self.eos_ids}, fingerprint={self.fingerprint[:12]}…)"
        )


def token_byte_matrix(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """``(B, lengths)``: B[i, :lengths[i]] are token i's bytes, zero padded; cached, read-only.

    Lets mask compilers walk all tokens in lock-step with numpy (column j = every token's j-th byte)
    instead of looping over 128k Python byte strings. ``B`` has at least one column.
    """
    cached = vocab._cache.get("byte_matrix")
    if cached is not None:
        return cached
    lengths = np.fromiter(map(len, vocab.token_bytes), dtype=np.int32, count=vocab.size)
    lmax = max(int(lengths.max(initial=0)), 1)
    matrix = np.zeros((vocab.size, lmax), dtype=np.uint8)
    # Row-major boolean assignment fills exactly the concatenation order of token_bytes.
    matrix[np.arange(lmax, dtype=np.int32) < lengths[:, None]] = np.frombuffer(
        b"".join(vocab.token_bytes), dtype=np.uint8
    )
    matrix.setflags(write=False)
    lengths.setflags(write=False)
    vocab._cache["byte_matrix"] = (matrix, lengths)
    return matrix, lengths


# --------------------------------------------------------------------------- helpers


class _Encoder:
    """``text -> ids`` through a ``tokenizers.Tokenizer`` (a class, not a closure: picklable)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __call__(self, text: str) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=False).ids)


def _backend(tokenizer: Any) -> Any:
    """The underlying ``tokenizers.Tokenizer`` (slow Python tokenizers have no byte-exact vocab)."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(backend, Tokenizer):
        raise TypeError(
            f"need a fast tokenizer (transformers PreTrainedTokenizerFast or tokenizers.Tokenizer), "
            f"got {type(tokenizer).__name__}"
        )
    return backend


def _component_json(component: Any) -> list[dict[str, Any]]:
    """Flattened JSON configs of a decoder / pre-tokenizer, ``Sequence`` members expanded."""
    if component is None:
        return []
    stack = [json.loads(component.__getstate__())]
    flat: list[dict[str, Any]] = []
    while stack:
        node = stack.pop()
        children = node.get("decoders") or node.get("pretokenizers")
        if node.get("type") == "Sequence" and children:
            stack.extend(reversed(children))
        else:
            flat.append(node)
    return flat


def _detect_scheme(backend: Any) -> tuple[str, str]:
    """``("byte_level" | "sentencepiece" | "sentencepiece_bytes", replacement_char)``.

    ByteLevel anywhere in the decoder (or, without a decoder, in the pre-tokenizer) means GPT-2 byte
    letters. Otherwise a Metaspace / ``Replace(▁ -> " ")`` decoder, a ByteFallback decoder or a model
    with ``byte_fallback`` means SentencePiece pieces (``_bytes``: ``<0xNN>`` pieces are raw bytes).
    """
    decoders = _component_json(backend.decoder)
    pre = _component_json(backend.pre_tokenizer)
    dec_types = {d.get("type") for d in decoders}
    if "ByteLevel" in dec_types or (not decoders and any(p.get("type") == "ByteLevel" for p in pre)):
        return "byte_level", ""

    replacement = ""
    for node in (*decoders, *pre):
        if node.get("type") == "Metaspace" and node.get("replacement"):
            replacement = node["replacement"]
            break
        pattern = node.get("pattern")
        if node.get("type") == "Replace" and node.get("content") == " " and isinstance(pattern, dict):
            if pattern.get("String"):
                replacement = pattern["String"]
                break
    byte_fallback = bool(getattr(backend.model, "byte_fallback", False)) or "ByteFallback" in dec_types
    if replacement or byte_fallback:
        return ("sentencepiece_bytes" if byte_fallback else "sentencepiece"), replacement or "▁"
    raise ValueError(
        f"unsupported tokenizer: {type(backend.model).__name__} model with decoder types {sorted(map(str, dec_types))}"
        " (need a ByteLevel or SentencePiece-style BPE/Unigram tokenizer)"
    )


def _byte_level_bytes(piece: str) -> bytes:
    try:
        return piece.translate(_BYTE_LEVEL_TRANS).encode("latin-1")
    except UnicodeEncodeError:  # not made of table letters: the decoder emits it as raw UTF-8
        return piece.encode("utf-8")


def _spm_bytes(piece: str, replacement: str, byte_fallback: bool) -> bytes:
    # "▁" stays a real leading space: mid-generation it *is* a space; only the very first token of a
    # whole document has it stripped by the decoder (Strip / prepend_scheme), which JSON tolerates.
    if byte_fallback and len(piece) == 6:
        m = _BYTE_PIECE.fullmatch(piece)
        if m:
            return bytes((int(m.group(1), 16),))
    return piece.replace(replacement, " ").encode("utf-8")


def _get(obj: Any, name: str) -> Any:
    """Attribute or mapping key (configs may be objects or plain dicts)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value if v is not None]


def _fingerprint(
    token_bytes: tuple[bytes, ...], special_ids: Iterable[int], eos_ids: tuple[int, ...], logits_width: int
) -> str:
    h = hashlib.sha256(_FINGERPRINT_VERSION)
    lengths = np.fromiter(map(len, token_bytes), dtype="<i4", count=len(token_bytes))
    for arr in (
        np.array([len(token_bytes), logits_width], dtype="<i8"),
        lengths,
        np.array(sorted(special_ids), dtype="<i8"),
        np.array(eos_ids, dtype="<i8"),
    ):
        h.update(len(arr).to_bytes(8, "little"))
        h.update(arr.tobytes())
    h.update(b"".join(token_bytes))
    return h.hexdigest()
