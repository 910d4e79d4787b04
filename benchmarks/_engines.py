"""Engine adapters for the MaskBench harness (:mod:`benchmarks.maskbench`).

An *engine factory* is a callable ``factory(tokenizer: TokenizerHandle, **options) -> Engine``;
it runs once per worker process (tokenizer-dependent set-up such as llguidance's
``LLTokenizer`` or xgrammar's ``TokenizerInfo`` is done here, outside every timing).
``Engine.compile(schema) -> Matcher`` is what TTFM times, together with the first
``Matcher.mask()``.

Matcher protocol::

    mask()               compute the allowed-token mask of the current state (the timed call);
                         returns a packed int32 bitmask (bit i%32 of word i//32) or a bool array
    allows(token) bool   whether ``token`` is set in the mask *just computed* by ``mask()``
    advance(token) bool  consume ``token``; False when the engine rejects it
    is_accepting() bool  whether the engine would allow EOS now (the value is complete)
    reset()              back to the initial state
    error_message() str  (optional) engine's own error text after a rejection

Refusals: an adapter raises :class:`EngineRefusal` when the engine *explicitly* refuses the
schema (unsupported feature, invalid/unsatisfiable schema, size limits it enforces); any other
exception out of ``compile`` is counted as a compile error.  A factory raises
:class:`EngineUnavailable` when its package is not importable.

Whitespace: MaskBench serialises instances with ``json.dumps(data, indent=None,
ensure_ascii=False)``, i.e. separators ``", "`` and ``": "`` and no other whitespace.  Every
peer is configured for that fixed layout where it can be (no free whitespace), see each class.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, Protocol

import numpy as np

__all__ = [
    "BUILTIN_ENGINES",
    "Engine",
    "EngineRefusal",
    "EngineUnavailable",
    "JsonModeEngine",
    "LLGuidanceEngine",
    "Matcher",
    "OutlinesEngine",
    "XGrammarEngine",
    "bitmask_allows",
    "token_bytes_table",
]

BENCH_HINT = "pip install -e .[bench]"


class EngineRefusal(Exception):
    """The engine explicitly refused the schema (its own "unsupported"/"invalid schema" error)."""


class EngineUnavailable(Exception):
    """The engine cannot be used here (package not installed / core not written yet)."""


class Matcher(Protocol):
    def mask(self) -> np.ndarray: ...

    def allows(self, token_id: int) -> bool: ...

    def advance(self, token_id: int) -> bool: ...

    def is_accepting(self) -> bool: ...

    def reset(self) -> None: ...


class Engine(Protocol):
    name: str

    def compile(self, schema: Any) -> Matcher: ...


def bitmask_allows(mask: np.ndarray, token_id: int) -> bool:
    """``token_id`` set in a packed 32-bit-word bitmask (or a per-token bool array)?"""
    flat = mask.reshape(-1)
    if flat.dtype == np.bool_:
        return token_id < flat.shape[0] and bool(flat[token_id])
    word = token_id >> 5
    if word >= flat.shape[0]:
        return False
    return bool((int(flat[word]) >> (token_id & 31)) & 1)


class _BitmaskMatcher:
    """Shared ``allows`` over the last mask computed into ``self._mask``."""

    _mask: np.ndarray

    def allows(self, token_id: int) -> bool:
        return bitmask_allows(self._mask, token_id)

    def error_message(self) -> str:
        return ""


# --------------------------------------------------------------------------- jsonmode


class JsonModeEngine:
    """jsonmode: ``compile_automaton(schema, Vocabulary.from_tokenizer(hf), **options)``.

    ``options`` are passed to :func:`jsonmode.automaton.compile_automaton` unchanged (e.g.
    ``--option jsonmode.whitespace=...``); none by default, so jsonmode's own defaults apply.
    jsonmode's in-process compile cache is cleared before each compile so that schemas that
    occur in several files are compiled for real each time (TTFM stays honest); the per-vocabulary
    token tables are kept (like a peer's tokenizer set-up).
    """

    name = "jsonmode"

    def __init__(self, tokenizer: Any, **options: Any) -> None:
        try:
            import jsonmode.automaton as automaton
            from jsonmode.errors import SchemaError
            from jsonmode.vocab import Vocabulary
        except ImportError as e:  # core not written yet / broken install
            raise EngineUnavailable(f"jsonmode core not importable ({e})") from e
        # jsonmode imports jsonschema where it first needs it (enum values filtered against their
        # sibling keywords, validation); a process serving schemas has it loaded, so load it with
        # the engine, like the peers' native modules: its one-off import (~1 s with the format
        # extras) then lands outside the first such schema's TTFM -- in every fork child too
        import jsonschema  # noqa: F401

        self._automaton = automaton
        self._refusals: tuple[type[BaseException], ...] = (SchemaError,)
        self.vocab = Vocabulary.from_tokenizer(tokenizer.hf)
        self.options = options

    def compile(self, schema: Any) -> _JsonModeMatcher:
        cache = getattr(self._automaton, "_CACHE", None)
        if isinstance(cache, dict):
            cache.clear()
        try:
            ta = self._automaton.compile_automaton(schema, self.vocab, **self.options)
        except self._refusals as e:
            raise EngineRefusal(f"{type(e).__name__}: {e}") from e
        return _JsonModeMatcher(ta)


class _JsonModeMatcher(_BitmaskMatcher):
    def __init__(self, ta: Any) -> None:
        self.ta = ta
        self.state = ta.initial_state
        self._mask = np.zeros(0, np.int32)

    def mask(self) -> np.ndarray:
        self._mask = self.ta.mask(self.state)
        return self._mask

    def advance(self, token_id: int) -> bool:
        nxt = self.ta.advance(self.state, token_id)
        if nxt < 0:
            return False
        self.state = nxt
        return True

    def is_accepting(self) -> bool:
        return bool(self.ta.is_accepting(self.state))

    def reset(self) -> None:
        self.state = self.ta.initial_state


# --------------------------------------------------------------------------- llguidance


class LLGuidanceEngine:
    """llguidance (``LLMatcher``), JSON schema compiled by ``LLMatcher.grammar_from_json_schema``.

    Options: llguidance's defaults except fixed whitespace, passed as the ``defaults`` argument
    (a schema's own ``x-guidance`` would still win)::

        {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

    llguidance's own default is ``item_separator=","``, ``key_separator=":"`` with
    ``whitespace_flexible=True`` (any JSON whitespace anywhere); ``whitespace_flexible=False``
    alone would reject ``json.dumps`` output (``{"a": 1}`` has a space after the colon), hence
    the separators.  Extra ``--option llguidance.KEY=VALUE`` entries are added to those defaults.

    ``LLMatcher.reset()`` does not clear the matcher's error state (entered when
    ``consume_token`` fails, or on a parser resource limit), so the adapter builds a fresh
    matcher from the same grammar in that case (untimed); otherwise a rejected test would
    poison the schema's later tests.

    Refusal: the ``LLMatcher`` constructor never raises for grammar errors; it enters an error
    state.  ``is_error()`` right after construction (the same message
    ``LLMatcher.validate_grammar(grammar, tokenizer)`` would give, without compiling twice) is an
    :class:`EngineRefusal`.  ``ValueError`` from ``grammar_from_json_schema`` (not a JSON object)
    is a compile error.
    """

    name = "llguidance"

    def __init__(self, tokenizer: Any, **options: Any) -> None:
        try:
            import llguidance
            import llguidance.hf
            import llguidance.numpy
        except ImportError as e:
            raise EngineUnavailable(f"llguidance not installed: {BENCH_HINT}") from e
        self._llg = llguidance
        self._fill = llguidance.numpy.fill_next_token_bitmask
        self._alloc = llguidance.numpy.allocate_token_bitmask
        self.lltok = llguidance.hf.from_tokenizer(tokenizer.hf)
        self.json_options = {
            "whitespace_flexible": False,
            "item_separator": ", ",
            "key_separator": ": ",
            **options,
        }

    def compile(self, schema: Any) -> _LLGuidanceMatcher:
        LLMatcher = self._llg.LLMatcher
        grammar = LLMatcher.grammar_from_json_schema(schema, defaults=self.json_options)
        m = LLMatcher(self.lltok, grammar, log_level=0)
        if m.is_error():
            raise EngineRefusal(m.get_error())
        rebuild = partial(LLMatcher, self.lltok, grammar, log_level=0)
        return _LLGuidanceMatcher(m, self._alloc(1, self.lltok.vocab_size), self._fill, rebuild)


class _LLGuidanceMatcher(_BitmaskMatcher):
    def __init__(self, m: Any, bitmask: np.ndarray, fill: Any, rebuild: Any) -> None:
        self.m = m
        self._rebuild = rebuild
        self._bitmask = bitmask
        self._mask = bitmask[0]
        self._fill = fill

    def mask(self) -> np.ndarray:
        self._fill(self.m, self._bitmask, 0)
        return self._mask

    def advance(self, token_id: int) -> bool:
        return bool(self.m.consume_token(token_id))

    def is_accepting(self) -> bool:
        return bool(self.m.is_accepting())

    def reset(self) -> None:
        # reset() rolls the tokens back but an LLMatcher never leaves its error state
        # (entered when consume_token fails), so start again from a pristine copy then.
        if self.m.is_error():
            self.m = self._rebuild()
        else:
            self.m.reset()

    def error_message(self) -> str:
        return self.m.get_error() if self.m.is_error() else ""


# --------------------------------------------------------------------------- xgrammar


class XGrammarEngine:
    """xgrammar: ``GrammarCompiler(TokenizerInfo.from_huggingface(hf), max_threads=1,
    cache_enabled=False).compile_json_schema(schema, any_whitespace=False)``.

    ``any_whitespace=False`` with ``indent=None`` gives xgrammar's default separators
    ``(", ", ": ")`` = ``json.dumps`` layout.  Other options keep xgrammar's defaults, notably
    ``strict_mode=True``: properties/items the schema does not list are *not* allowed even where
    JSON Schema allows them (a valid instance with an extra property is rejected);
    ``--option xgrammar.strict_mode=false`` turns that off.  ``max_threads=1`` (override with
    ``--option xgrammar.max_threads=N``) keeps compile single-threaded like the other engines, and
    the compile cache is off so repeated schemas are compiled for real.

    Masks go into a NumPy int32 bitmask via ``GrammarMatcher.fill_next_token_bitmask`` (DLPack);
    advance = ``accept_token``; accepting = the mask allows a stop token (i.e. EOS would be
    accepted; the same as ``is_completed()`` for JSON).

    Refusal: ``compile_json_schema`` raises ``RuntimeError`` for everything its JSON-schema and
    regex converters reject (``Unsupported type``, ``Lookbehind is not supported``, bad ``$ref``,
    ``minimum greater than maximum``...) and ``InvalidJSONError``; those are refusals, except
    internal assertion failures (``Check failed``), which count as compile errors.
    """

    name = "xgrammar"
    _COMPILER_KEYS = ("max_threads", "cache_enabled", "cache_limit_bytes")

    def __init__(self, tokenizer: Any, **options: Any) -> None:
        try:
            import xgrammar
        except ImportError as e:
            raise EngineUnavailable(f"xgrammar not installed: {BENCH_HINT}") from e
        self._xgr = xgrammar
        self.info = xgrammar.TokenizerInfo.from_huggingface(tokenizer.hf)
        compiler_kw: dict[str, Any] = {"max_threads": 1, "cache_enabled": False}
        for k in self._COMPILER_KEYS:
            if k in options:
                compiler_kw[k] = options.pop(k)
        self.compiler = xgrammar.GrammarCompiler(self.info, **compiler_kw)
        self.json_options = {"any_whitespace": False, **options}
        self.stop_ids = [int(t) for t in self.info.stop_token_ids]
        self.shape = tuple(xgrammar.get_bitmask_shape(1, self.info.vocab_size))

    def compile(self, schema: Any) -> _XGrammarMatcher:
        xgr = self._xgr
        try:
            cg = self.compiler.compile_json_schema(schema, **self.json_options)
        except xgr.InvalidJSONError as e:
            raise EngineRefusal(f"InvalidJSONError: {e}") from e
        except RuntimeError as e:
            if "Check failed" in str(e):
                raise
            raise EngineRefusal(str(e).strip()) from e
        return _XGrammarMatcher(xgr.GrammarMatcher(cg), np.full(self.shape, -1, np.int32), self.stop_ids)


class _XGrammarMatcher(_BitmaskMatcher):
    def __init__(self, m: Any, bitmask: np.ndarray, stop_ids: list[int]) -> None:
        self.m = m
        self._bitmask = bitmask
        self._mask = bitmask[0]
        self.stop_ids = stop_ids

    def mask(self) -> np.ndarray:
        self.m.fill_next_token_bitmask(self._bitmask, 0)
        return self._mask

    def advance(self, token_id: int) -> bool:
        return bool(self.m.accept_token(token_id))

    def is_accepting(self) -> bool:
        if self.m.is_terminated():
            return True
        self.m.fill_next_token_bitmask(self._bitmask, 0)
        return any(bitmask_allows(self._mask, t) for t in self.stop_ids)

    def reset(self) -> None:
        self.m.reset()


# --------------------------------------------------------------------------- outlines


class OutlinesEngine:
    """outlines-core: ``Index(json_schema.build_regex_from_schema(json.dumps(schema)), Vocabulary)``
    walked with a ``Guide``.

    The ``Vocabulary`` is built offline from the tokenizer (``Vocabulary(eos_id, {bytes: [ids]})``,
    token bytes decoded from ``tokenizer.json``: ByteLevel or SentencePiece ``▁``/``<0xNN>``),
    special and added tokens left out.  Whitespace: outlines' default ``WHITESPACE`` pattern
    ``[ ]?`` (an optional single space around every separator), which admits ``json.dumps``
    output; override with ``--option outlines.whitespace_pattern=...``.  Masks via
    ``Guide.write_mask_into`` into a packed int32 bitmask; accepting = ``Guide.is_finished()``.

    Refusal: outlines raises ``ValueError`` for every schema it cannot translate (``Unsupported
    JSON Schema structure``, ``Format ... is not supported``, ``Failed to build DFA``...).
    Note that ``Index`` construction (the whole regex DFA times the vocabulary) is part of TTFM.
    """

    name = "outlines"

    def __init__(self, tokenizer: Any, **options: Any) -> None:
        try:
            import outlines_core
            from outlines_core.json_schema import build_regex_from_schema
        except ImportError as e:
            raise EngineUnavailable(f"outlines-core not installed: {BENCH_HINT}") from e
        self._oc = outlines_core
        self._build_regex = build_regex_from_schema
        self.options = options
        eos = tokenizer.eos_token_id
        table = token_bytes_table(tokenizer)
        skip = tokenizer.special_ids | {eos}
        mapping: dict[bytes, list[int]] = {}
        for i, b in enumerate(table):
            if b and i not in skip:
                mapping.setdefault(b, []).append(i)
        self.vocab = outlines_core.Vocabulary(eos, mapping)
        self.words = (tokenizer.vocab_size + 31) // 32

    def compile(self, schema: Any) -> _OutlinesMatcher:
        try:
            regex = self._build_regex(json.dumps(schema), **self.options)
            index = self._oc.Index(regex, self.vocab)
        except ValueError as e:
            raise EngineRefusal(str(e).strip()) from e
        return _OutlinesMatcher(self._oc.Guide(index), np.zeros(self.words, np.int32))


class _OutlinesMatcher(_BitmaskMatcher):
    def __init__(self, guide: Any, bitmask: np.ndarray) -> None:
        self.g = guide
        self._mask = bitmask
        self._ptr = bitmask.ctypes.data

    def mask(self) -> np.ndarray:
        self.g.write_mask_into(self._ptr, self._mask.size, 4)
        return self._mask

    def advance(self, token_id: int) -> bool:
        try:
            self.g.advance(token_id, return_tokens=False)
        except ValueError:
            return False
        return True

    def is_accepting(self) -> bool:
        return bool(self.g.is_finished())

    def reset(self) -> None:
        self.g.reset()


def _gpt2_byte_decoder() -> dict[str, int]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def token_bytes_table(tokenizer: Any) -> list[bytes | None]:
    """Raw bytes of every token id of ``tokenizer`` (a :class:`TokenizerHandle`); None = unused id.

    ByteLevel vocabularies (GPT-2 / Llama-3 style) map each character back through the GPT-2
    byte table; SentencePiece ones turn ``▁`` into a space and ``<0xNN>`` into byte NN.
    Added tokens stand for their literal text.
    """
    spec = json.loads(tokenizer.raw.to_str())
    decoder = json.dumps(spec.get("decoder") or {})
    byte_level = '"ByteLevel"' in decoder
    vocab = tokenizer.raw.get_vocab(with_added_tokens=False)
    table: list[bytes | None] = [None] * tokenizer.vocab_size
    dec = _gpt2_byte_decoder()
    for piece, i in vocab.items():
        if byte_level:
            try:
                table[i] = bytes(dec[c] for c in piece)
            except KeyError:
                table[i] = piece.encode("utf-8")
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            table[i] = bytes([int(piece[3:5], 16)])
        else:
            table[i] = piece.replace("\u2581", " ").encode("utf-8")
    for added in spec.get("added_tokens") or []:
        i = added["id"]
        if i < len(table):
            table[i] = added["content"].encode("utf-8")
    return table


BUILTIN_ENGINES: dict[str, tuple[str, str, str]] = {
    # name: (factory "module:callable", module whose absence means "not installed", hint)
    "jsonmode": ("benchmarks._engines:JsonModeEngine", "jsonmode.automaton", "jsonmode core not written yet"),
    "llguidance": ("benchmarks._engines:LLGuidanceEngine", "llguidance", BENCH_HINT),
    "xgrammar": ("benchmarks._engines:XGrammarEngine", "xgrammar", BENCH_HINT),
    "outlines": ("benchmarks._engines:OutlinesEngine", "outlines_core", BENCH_HINT),
}
