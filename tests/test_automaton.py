"""jsonmode.automaton: the byte DFA lifted onto real vocabularies.

Oracles: an *eager, trimmed* DFA of the same schema (``compile_dfa``) walked byte by byte in plain
Python, and the tokenizers' own encodings of valid JSON texts.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from automata_helpers import brute_force_allowed, random_prefixes, sample_texts, walk_tokens
from conftest import load_shared_tokenizer

import jsonmode.automaton as automaton_mod
from jsonmode import (
    CompileOptions,
    TokenAutomaton,
    TokenRejectedError,
    Vocabulary,
    compile_automaton,
    tokentrie,
)
from jsonmode.automaton import automaton_from_node
from jsonmode.catalog import Character, Person
from jsonmode.compiler import schema_to_node
from jsonmode.errors import AutomatonTooLarge
from jsonmode.fsm import DFA, compile_dfa, lit, seq, sym

MIXED = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        "note": {"type": "string", "maxLength": 5},
        "free": {"type": "string"},
        "n": {"type": "number"},
        "k": {"type": "integer", "minimum": -5, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["x", "yy", "zzz", 1, None]}, "maxItems": 3},
        "when": {"type": "string", "format": "date"},
        "any": {},
    },
    "required": ["code", "note", "free"],
    "additionalProperties": False,
}
SCHEMAS = {
    "mixed": MIXED,
    "person": Person.model_json_schema(),
    "character": Character.model_json_schema(),
}
TEXTS = {
    "mixed": [
        '{"code": "AB-123", "note": "", "free": "Caf\\u00e9 \\"q\\" \\\\ \\ud83d\\ude42 日本語 🙂"}',
        '{"code": "ZZ-000", "note": "12345", "free": "x", "n": -1.5e-7, "k": 120, "tags": ["zzz", 1, null], '
        '"when": "2024-02-29", "any": {"k": [1, {"z": null}], "t": true}}',
        '{"code": "QQ-999", "note": "\\n\\t", "free": "", "k": -5, "tags": [], "any": "s"}',
    ],
    "person": [
        '{"name": "Ada Lovelace", "age": 36, "email": "ada@example.com", '
        '"address": {"street": "1 Main St", "city": "London", "country": "UK", "postal_code": null}}',
        '{"name": "x", "age": null, "email": null, "address": null}',
        '{"name": ""}',
    ],
    "character": [
        '{"name": "Goku", "species": "Saiyan", "role": "hero", "personality_traits": ["brave", "kind"], '
        '"special_attacks": ["Kamehameha"]}',
        '{"name": "", "species": "", "role": "", "personality_traits": null, "special_attacks": []}',
    ],
}
# any_depth 3 keeps the eager oracle of the free "any" field small (the default nests free values 16 deep)
OPTS = {"additional_properties": False, "any_depth": 3}


@functools.cache
def eager(name: str) -> DFA:
    return compile_dfa(schema_to_node(SCHEMAS[name], CompileOptions(**OPTS))).trim()


@functools.cache
def trained() -> tuple[Any, Vocabulary]:
    from jsonmode.tiny import trained_bpe_tokenizer

    tok = trained_bpe_tokenizer()
    return tok, Vocabulary.from_tokenizer(tok)


@functools.cache
def llama() -> tuple[Any, Vocabulary]:
    tok = load_shared_tokenizer("llama-3.1")
    return tok, Vocabulary.from_tokenizer(tok)


def _tokenizer(family: str) -> tuple[Any, Vocabulary]:
    return trained() if family == "trained" else llama()


def fresh(name: str, vocab: Vocabulary) -> TokenAutomaton:
    """An automaton not shared through compile_automaton's cache."""
    return automaton_from_node(schema_to_node(SCHEMAS[name], CompileOptions(**OPTS)), vocab)


# --------------------------------------------------------------------------- token-level consistency


def _check_token_walk(ta: TokenAutomaton, tok: Any, text: str) -> None:
    ids = tok.encode(text, add_special_tokens=False)
    vocab = ta.vocab
    assert vocab.decode(ids) == text.encode()
    state = ta.initial_state
    for t in ids:
        assert ta.allows(state, t), (text, t, vocab.token_bytes[t])
        nxt = ta.advance(state, t)
        assert nxt > 0 and nxt == ta.walk(vocab.token_bytes[t], state), (text, t)
        state = nxt
    assert ta.is_accepting(state), text
    assert all(ta.allows(state, e) for e in vocab.eos_ids)


@pytest.mark.parametrize("family", ["trained", "llama-3.1"])
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_token_walk_agrees_with_byte_walk(family: str, name: str) -> None:
    tok, vocab = _tokenizer(family)
    ta = compile_automaton(SCHEMAS[name], vocab, **OPTS)
    texts = TEXTS[name] + [raw.decode() for raw in sample_texts(eager(name), 8, seed=7)]
    for text in texts:
        json.loads(text)
        _check_token_walk(ta, tok, text)


def test_invalid_texts_are_refused_token_by_token() -> None:
    tok, vocab = trained()
    ta = compile_automaton(MIXED, vocab, **OPTS)
    for text in [
        '{"code": "AB-12", "note": "", "free": ""}',  # pattern
        '{"code": "AB-123", "note": "123456", "free": ""}',  # maxLength
        '{"code": "AB-123", "free": "", "note": ""}',  # property order
        '{"code": "AB-123", "note": "", "free": "", "k": 121}',  # maximum
        '{"code": "AB-123", "note": "", "free": "", "extra": 1}',  # additionalProperties false
        '{"code":"AB-123","note":"","free":""}',  # whitespace
    ]:
        ids = tok.encode(text, add_special_tokens=False)
        st = walk_tokens(ta, ids)
        assert st < 0 or not ta.is_accepting(st), text


# --------------------------------------------------------------------------- masks vs brute force


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_masks_equal_brute_force_trained_vocab(name: str) -> None:
    """Every token of the small vocabulary, from states reached by random walks."""
    _, vocab = trained()
    ta = fresh(name, vocab)
    d = eager(name)
    everything = range(vocab.size)
    for i, (es, prefix) in enumerate(random_prefixes(d, 60, seed=11, max_steps=120)):
        st = ta.walk(prefix)
        assert st > 0, prefix
        got = set(ta.allowed_tokens(st).tolist())
        want = brute_force_allowed(d, es, vocab, everything)
        assert got == want, (i, prefix, sorted(got ^ want)[:10])
        assert ta.is_accepting(st) == bool(d.accept[es])


def _llama_sample(vocab: Vocabulary, n: int = 3000, seed: int = 0) -> np.ndarray:
    """A random sample of the vocabulary plus every EOS id and some quote/backslash/digit tokens."""
    rng = np.random.default_rng(seed)
    pick = set(rng.choice(vocab.size, n, replace=False).tolist())
    tricky = [i for i, b in enumerate(vocab.token_bytes) if b and (b'"' in b or b"\\" in b or b[:1].isdigit())]
    pick |= set(random.Random(seed).sample(tricky, 300))
    pick |= set(vocab.eos_ids) | set(list(vocab.special_ids)[:20])
    return np.array(sorted(pick))


def _llama_case(schema: Any, seed: int) -> tuple[Vocabulary, TokenAutomaton, DFA, np.ndarray, set[int]]:
    """``schema`` over the Llama vocabulary, lazily and as an eager DFA, and a vocabulary sample."""
    _, vocab = llama()
    node = schema_to_node(schema, CompileOptions())
    sample = _llama_sample(vocab, seed=seed)
    return vocab, automaton_from_node(node, vocab), compile_dfa(node).trim(), sample, set(sample.tolist())


@pytest.mark.parametrize("name", ["mixed", "person"])
def test_masks_equal_brute_force_llama_sample(name: str) -> None:
    """128k vocabulary: the bulk paths (free-string interiors, counters) against a plain loop on a sample."""
    _, vocab = llama()
    ta = compile_automaton(SCHEMAS[name], vocab, **OPTS)
    d = eager(name)
    sample = _llama_sample(vocab)
    sample_set = set(sample.tolist())
    prefixes = random_prefixes(d, 30, seed=5, max_steps=100)
    # make sure the big states are in: inside a free string, inside a bounded string, inside a number
    for probe in (b'{"code": "AB-123", "note": "', b'{"code": "AB-123", "note": "ab',
                  b'{"code": "AB-123", "note": "", "free": "xy', b'{"code": "AB-123", "note": "", "free": "', ):
        if name == "mixed":
            prefixes.append((d.run(probe), probe))
    for es, prefix in prefixes:
        assert es >= 0
        st = ta.walk(prefix)
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        want = brute_force_allowed(d, es, vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])


OPEN = {
    "type": "object",
    "properties": {"alpha": {"type": "string", "maxLength": 40}, "beta": {"type": "integer"}, "gamma": {"type": "string"}},
    "additionalProperties": {"type": "string", "maxLength": 30},
}


def test_masks_equal_brute_force_llama_open_object() -> None:
    """Key starts of an open object (declared names branch off a plain string) and long counters."""
    vocab, ta, d, sample, sample_set = _llama_case(OPEN, seed=3)
    probes = [b'{"', b'{"alpha": "x", "', b'{"alpha": "abc', b'{"zeta', b'{"z', b'{"beta": 1, "', b'{"al',
              b'{"alpha": "', b'{"q": "', rb'{"q": "\u00e9', rb'{"alpha": "\u00e9\u00e9',
              # inside keys (the key automaton's phases): mid-escape, mid-UTF-8, after a declared name
              b'{"a\\', b'{"\xc3', b'{"alpha": "x", "al', b'{"alpha": "x", "beta2', b'{"\\u00']
    prefixes = [(d.run(p), p) for p in probes] + random_prefixes(d, 20, seed=9, max_steps=80)
    for es, prefix in prefixes:
        assert es >= 0, prefix
        st = ta.walk(prefix)
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        want = brute_force_allowed(d, es, vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])


@pytest.mark.skipif(not tokentrie.AVAILABLE, reason="numba not importable: only the numpy path exists")
@pytest.mark.parametrize("family", ["trained", "llama-3.1"])
@pytest.mark.parametrize("name", ["mixed", "person", "open"])
def test_compiled_walk_equals_numpy_path(family: str, name: str) -> None:
    """Whole masks (every token) from the compiled trie walk and from the numpy path agree.

    The compiled path shares string interiors across schemas by signature, so the numpy
    automaton is built second: both start from whatever the vocabulary's caches hold.
    """
    _, vocab = _tokenizer(family)
    schema = OPEN if name == "open" else SCHEMAS[name]
    opts = CompileOptions() if name == "open" else CompileOptions(**OPTS)
    node = schema_to_node(schema, opts)
    fast = automaton_from_node(node, vocab)
    slow = automaton_from_node(node, vocab)
    slow.kernel = False
    assert fast.kernel
    d = compile_dfa(node).trim()
    probes = [(d.run(p), p) for p in (b'{"', b'{"alpha": "abc', b'{"q": "', b'{"name": "', b'{"code": "AB-123", "note": "ab')
              if d.run(p) >= 0]
    for _, prefix in probes + random_prefixes(d, 25, seed=21, max_steps=90):
        a, b = fast.walk(prefix), slow.walk(prefix)
        assert (a > 0) == (b > 0), prefix
        if a > 0:
            assert np.array_equal(fast.mask(a), slow.mask(b)), (prefix, sorted(
                set(fast.allowed_tokens(a).tolist()) ^ set(slow.allowed_tokens(b).tolist()))[:10])


# --------------------------------------------------------------------------- widths, EOS, precompute


def test_masks_wider_than_vocab_have_extra_bits_clear() -> None:
    tok, _ = trained()
    base = trained()[1]
    wide = Vocabulary.from_tokenizer(tok, logits_width=base.size + 45)
    ta = compile_automaton(MIXED, wide, **OPTS)
    assert ta.width == base.size + 45 and ta.num_words == (base.size + 45 + 31) // 32
    for _, prefix in random_prefixes(eager("mixed"), 25, seed=3):
        st = ta.walk(prefix)
        words = ta.mask(st)
        assert words.dtype == np.int32 and words.shape == (ta.num_words,)
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")
        assert bits.size == ta.num_words * 32
        assert not bits[base.size :].any()  # no token beyond the vocabulary, up to the last word's end
        assert (ta.allowed_tokens(st) < base.size).all()
        assert not ta.allows(st, base.size + 3)


def test_eos_bits_only_in_accepting_states() -> None:
    _, vocab = trained()
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99},
                                               "b": {"enum": ["x", "yz"]}, "c": {"type": "array", "maxItems": 2,
                                                                                  "items": {"type": "boolean"}}},
              "additionalProperties": False}
    ta = automaton_from_node(schema_to_node(schema), vocab)
    ta.precompute()  # every state
    assert ta.num_states > 10
    eos = int(vocab.eos_ids[0])
    n_accepting = 0
    for s in range(ta.initial_state, ta.num_states):
        acc = ta.is_accepting(s)
        n_accepting += acc
        assert ta.allows(s, eos) == acc, s
    assert n_accepting == 1  # only after the closing brace


def test_eos_is_refused_by_advance_and_specials_never_allowed() -> None:
    tok, vocab = trained()
    ta = compile_automaton({"type": "integer"}, vocab)
    st = ta.walk(b"12")
    eos = int(vocab.eos_ids[0])
    assert ta.allows(st, eos) and ta.advance(st, eos) == -1
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    for s in (ta.initial_state, st):
        assert not ta.allows(s, im_start) and ta.advance(s, im_start) == -1
    assert ta.advance(-1, 5) == -1 and ta.advance(st, vocab.size + 10) == -1
    with pytest.raises(TokenRejectedError):
        ta.advance_checked(st, tok.encode("x", add_special_tokens=False)[0])
    assert ta.walk(b"1x") == -1 and not ta.accepts_text("1x") and ta.accepts_text("-42")


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_precompute_equals_lazy_masks(chunk: int) -> None:
    _, vocab = trained()
    a = fresh("mixed", vocab)
    b = fresh("mixed", vocab)
    prefixes = [p for _, p in random_prefixes(eager("mixed"), 80, seed=chunk, max_steps=90)]
    a.precompute([a.walk(p) for p in prefixes], chunk=chunk)  # batch, in walk order
    for p in reversed(prefixes):  # one state at a time, in another order
        sa, sb = a.walk(p), b.walk(p)
        assert np.array_equal(a.mask(sa), b.mask(sb)), p


def test_precompute_all_states_equals_lazy() -> None:
    _, vocab = trained()
    schema = SCHEMAS["character"]
    a = automaton_from_node(schema_to_node(schema, CompileOptions(**OPTS)), vocab)
    b = automaton_from_node(schema_to_node(schema, CompileOptions(**OPTS)), vocab)
    a.precompute()
    row_of, masks = a.mask_table()
    assert masks.shape[0] == a.num_states - 1  # every state but the dead one
    for _es, p in random_prefixes(eager("character"), 40, seed=2):
        assert np.array_equal(a.mask(a.walk(p)), b.mask(b.walk(p)))


def test_masks_never_move_as_blocks_are_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """Masks are stored in fixed blocks: a mask handed out stays valid and unchanged while
    hundreds more are computed (a doubled contiguous table would copy them all at once),
    and mask_table's contiguous copy agrees row for row across block edges."""
    for name, value in (("_BLOCK_SHIFT", 3), ("_BLOCK", 8), ("_BLOCK_LOW", 7)):  # small blocks: many edges
        monkeypatch.setattr(automaton_mod, name, value)
    _, vocab = trained()
    ta = fresh("mixed", vocab)
    prefixes = [p for _, p in random_prefixes(eager("mixed"), 400, seed=5, max_steps=90)]
    by_state = {ta.walk(p): p for p in prefixes}
    states = [s for s in by_state if s > 0]
    assert len(states) > 5 * automaton_mod._BLOCK  # crosses block edges
    first = ta.mask(states[0])
    kept = first.copy()
    half = len(states) // 2
    for s in states[:half]:
        ta.mask(s)
    row_of, masks = ta.mask_table()  # extended once midway, then again
    for s in states[half:]:
        ta.mask(s)
    assert np.array_equal(first, kept) and np.shares_memory(first, ta.mask(states[0]))
    row_of, masks = ta.mask_table()
    assert masks.shape[0] == len(states)
    for s in states:
        assert np.array_equal(masks[row_of[s]], ta.mask(s))
    b = fresh("mixed", vocab)
    other = [b.walk(by_state[s]) for s in states]
    b.precompute(other, chunk=5)  # the batch path writes the same rows, across edges too
    for s, o in zip(states, other, strict=True):
        assert np.array_equal(b.mask(o), ta.mask(s))


# --------------------------------------------------------------------------- persistence and caching


def test_save_load_round_trip(tmp_path: Path) -> None:
    _, vocab = trained()
    ta = fresh("mixed", vocab)
    prefixes = [p for _, p in random_prefixes(eager("mixed"), 40, seed=21)]
    for p in prefixes[:20]:  # some masks computed before saving, the rest after loading
        ta.mask(ta.walk(p))
    path = tmp_path / "auto.npz"
    ta.save(path)
    back = TokenAutomaton.load(path, vocab)
    assert back.num_states == ta.num_states
    for p in prefixes:
        s1, s2 = ta.walk(p), back.walk(p)
        assert s1 == s2
        assert np.array_equal(ta.mask(s1), back.mask(s2))
        assert ta.is_accepting(s1) == back.is_accepting(s2)
    text = TEXTS["mixed"][1]
    assert back.accepts_text(text) and not back.accepts_text(text[:-1])
    other = Vocabulary.from_tokenizer(trained()[0], logits_width=vocab.size + 1)
    with pytest.raises(ValueError, match="another vocabulary"):
        TokenAutomaton.load(path, other)


def test_compile_automaton_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, vocab = trained()
    schema = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 3}}, "required": ["q"],
              "additionalProperties": False}
    a = compile_automaton(schema, vocab)
    assert compile_automaton(schema, vocab) is a
    assert compile_automaton(json.loads(json.dumps(schema)), vocab) is a  # equal dict, same automaton
    assert compile_automaton(schema, vocab, whitespace="compact") is not a
    assert compile_automaton(schema, vocab, max_recursion_depth=2) is not a
    # on-disk cache: written on the first compile, read back when memory misses
    c1 = compile_automaton(schema, vocab, cache_dir=tmp_path, any_depth=2)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and files[0].stem == c1.key
    monkeypatch.setattr(automaton_mod, "_CACHE", {})
    c2 = compile_automaton(schema, vocab, cache_dir=tmp_path, any_depth=2)
    assert c2 is not c1 and c2.key == c1.key
    for p in (b"", b'{"q": "', b'{"q": "ab'):
        assert np.array_equal(c1.mask(c1.walk(p)), c2.mask(c2.walk(p)))


def test_disk_cache_with_free_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, vocab = trained()
    schema = {"type": "object"}
    ta = compile_automaton(schema, vocab, max_states=5000)  # fine without a disk cache: built lazily
    assert ta.accepts_text('{"a": [1, {"b": null}]}')
    monkeypatch.setattr(automaton_mod, "_CACHE", {})  # (the memory cache ignores cache_dir)
    on_disk = compile_automaton(schema, vocab, max_states=5000, cache_dir=tmp_path)
    assert on_disk.accepts_text('{"a": [1, {"b": null}]}')


def test_cache_distinguishes_property_order() -> None:
    _, vocab = trained()
    props = {"a": {"type": "integer"}, "b": {"type": "integer"}}
    s1 = {"type": "object", "properties": props, "required": ["a", "b"], "additionalProperties": False}
    s2 = {"type": "object", "properties": dict(reversed(props.items())), "required": ["a", "b"],
          "additionalProperties": False}
    assert compile_automaton(s1, vocab).accepts_text('{"a": 1, "b": 2}')
    assert compile_automaton(s2, vocab).accepts_text('{"b": 2, "a": 1}')


# --------------------------------------------------------------------------- liveness and limits


def test_every_reachable_state_has_a_way_out() -> None:
    _, vocab = trained()
    inner = {"type": "object", "properties": {"a": {"type": "null"}, "b": {"type": "null"}},
             "additionalProperties": False, "minProperties": 3}
    ta = compile_automaton({"type": "object", "properties": {"o": inner}, "additionalProperties": False}, vocab)
    # explore every state reachable through allowed tokens
    seen, todo = {ta.initial_state}, [ta.initial_state]
    while todo:
        s = todo.pop()
        allowed = ta.allowed_tokens(s)
        assert allowed.size, f"state {s} allows no token at all"
        for t in allowed.tolist():
            n = ta.advance(s, t)
            if n > 0 and n not in seen:
                seen.add(n)
                todo.append(n)


def test_lazy_growth_is_bounded_by_max_lazy_states() -> None:
    """Lazily built automata grow with the output they see; the limit is named in the error."""
    _, vocab = trained()
    ta = compile_automaton({"type": "string", "maxLength": 100}, vocab, max_lazy_states=40)
    with pytest.raises(AutomatonTooLarge, match="max_lazy_states=40"):
        ta.walk(b'"' + b"a" * 90)


# --------------------------------------------------------------------------- special symbols


def test_special_token_symbols() -> None:
    tok, vocab = trained()
    tool_call = vocab.special_id("<tool_call>")
    assert tool_call is not None
    ta = automaton_from_node(seq(sym(256), lit("\n{}")), vocab, specials=["<tool_call>"])
    assert set(ta.allowed_tokens(ta.initial_state).tolist()) == {tool_call}
    st = ta.advance(ta.initial_state, tool_call)
    assert st > 0
    st = walk_tokens(ta, tok.encode("\n{}", add_special_tokens=False), st)
    assert st > 0 and ta.is_accepting(st)
    # the plain-text spelling of the special token is not the special symbol
    assert ta.walk(b"<tool_call>") == -1
    with pytest.raises(ValueError, match="no single token"):
        automaton_from_node(lit("x"), vocab, specials=["<not a token>"])


NULLABLE_BOUNDED = {
    "type": "object",
    "properties": {"inner": {"$ref": "#/$defs/inner"}, "long": {"type": "string", "maxLength": 131072}},
    "$defs": {"inner": {"type": "object", "properties": {"id": {"type": ["string", "null"], "maxLength": 40}},
                        "additionalProperties": False}},
    "additionalProperties": False,
}


def test_bounded_string_masks_from_the_opening_quote() -> None:
    """Right after a bounded string's opening quote (in a type union, under a $ref, or with a
    maxLength far past any token) the mask comes from the counter tables, and is right."""
    _, vocab = llama()
    node = schema_to_node(NULLABLE_BOUNDED, CompileOptions(any_depth=3))
    ta = automaton_from_node(node, vocab)
    small = schema_to_node({**NULLABLE_BOUNDED, "properties": {**NULLABLE_BOUNDED["properties"],
                                                               "long": {"type": "string", "maxLength": 300}}},
                           CompileOptions(any_depth=3))
    d = compile_dfa(small).trim()
    sample = _llama_sample(vocab, seed=4)
    sample_set = set(sample.tolist())
    for prefix in (b'{"inner": {"id": "', b'{"inner": {"id": "ab', b'{"inner": {"id": null}, "long": "'):
        st = ta.walk(prefix)
        assert ta._string_position(st) is not None, prefix
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        want = brute_force_allowed(d, d.run(prefix), vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])  # 300 characters hold any token, like 131072


def test_open_object_keys_take_the_key_tables() -> None:
    """Inside a key of an open object (declared names beside all other keys) the quote-free part
    of the mask comes from the key character's tables (room None), also mid-character."""
    _, vocab = llama()
    ta = automaton_from_node(schema_to_node(OPEN, CompileOptions()), vocab)
    for prefix in (b'{"', b'{"al', b'{"alpha": "x", "', b'{"\xc3'):
        pos = ta._string_position(ta.walk(prefix))
        assert pos is not None and pos[2] is None, prefix
    closed = automaton_from_node(schema_to_node({**OPEN, "additionalProperties": False}, CompileOptions()), vocab)
    assert closed._string_position(closed.walk(b'{"')) is None  # only the declared names: walked


PATTERN_KEYS = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "idle": {"type": "integer"}},
    "patternProperties": {"^[0-9a-z_]{1,12}$": {"type": ["string", "integer"]}, "^x-": {"type": "boolean"}},
    "additionalProperties": {"type": "null"},
}


def test_pattern_keys_beside_names_take_the_key_tables() -> None:
    """Keys of an object whose patterns, declared names and other keys together allow every
    key: each key automaton may die (a 12-character class count, a prefix pattern), but the
    set goes on by any character, so the quote-free mask is the key tables' at the phase;
    masks equal brute force.  A key set that leaves keys out (no additional keys) is walked."""
    vocab, ta, d, sample, sample_set = _llama_case(PATTERN_KEYS, seed=12)
    for prefix in (b'{"', b'{"i', b'{"id', b'{"idl', b'{"abcdefghijk', b'{"abcdefghijkl', b'{"x-', b'{"x-\\',
                   b'{"\xc3', b'{"id": "a", "', b'{"id": "a", "q\xe2\x82'):
        st = ta.walk(prefix)
        assert st > 0 and ta._string_position(st) is not None, prefix
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        want = brute_force_allowed(d, d.run(prefix), vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])
    closed = automaton_from_node(schema_to_node({**PATTERN_KEYS, "additionalProperties": False},
                                                CompileOptions()), vocab)
    assert closed._string_position(closed.walk(b'{"')) is None


CHAIN = {
    "type": "object",
    "properties": {
        "a": {"$ref": "#/$defs/box"},
        "b": {"type": "array", "items": {"$ref": "#/$defs/name"}, "maxItems": 3},
        "c": {"type": "string"},
    },
    "required": ["a"],
    "$defs": {
        "box": {"type": "object", "properties": {"name": {"$ref": "#/$defs/name"}, "n": {"type": "integer"}},
                "required": ["name"], "additionalProperties": False},
        "name": {"type": "string", "minLength": 3, "maxLength": 20},
    },
    "additionalProperties": False,
}


def _quotes_from_context(monkeypatch: pytest.MonkeyPatch, schema: Any, seed: int,
                         prefixes: list[bytes]) -> TokenAutomaton:
    """At each prefix (inside a string): the tokens with a quote come from the string's context
    (``_string_quotes`` answers True) and the mask equals brute force on a Llama sample."""
    vocab, ta, d, sample, sample_set = _llama_case(schema, seed=seed)
    used: list[bool] = []
    real = TokenAutomaton._string_quotes

    def spy(self: TokenAutomaton, s: int, out: np.ndarray) -> bool:
        got = real(self, s, out)
        used.append(got)
        return got

    monkeypatch.setattr(TokenAutomaton, "_string_quotes", spy)
    for prefix in prefixes:
        st = ta.walk(prefix)
        assert st > 0 and ta._string_position(st) is not None, prefix
        used.clear()
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        assert used == [True], prefix
        want = brute_force_allowed(d, d.run(prefix), vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])
    return ta


@pytest.mark.skipif(not tokentrie.AVAILABLE, reason="the compiled path's quote contexts: numba not importable")
def test_string_quote_tokens_from_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a string in a plain chain of embedded automata, the tokens with a quote come from
    the string's context (text before the closing quote counted in tables, the rest read once
    from the state after the quote), not from walking them: right below minLength, at the
    end of the room, mid-escape, mid-UTF-8, in free strings."""
    prefixes = [b'{"a": {"name": "', b'{"a": {"name": "a', b'{"a": {"name": "ab', b'{"a": {"name": "abc',
                b'{"a": {"name": "abcdefghijklmnop', b'{"a": {"name": "abcdefghijklmnopqrst', b'{"a": {"name": "ab\\',
                b'{"a": {"name": "ab\\u00', b'{"a": {"name": "ab\xc3', b'{"a": {"name": "abc", "n": 1}, "b": ["xy',
                b'{"a": {"name": "abc"}, "b": ["xyz", "', b'{"a": {"name": "abc"}, "c": "', b'{"a": {"name": "abc"}, "c": "x\\',
                b'{"a": {"name": "abc"}, "c": "x\xe2\x82']
    _quotes_from_context(monkeypatch, CHAIN, 9, prefixes)


LOCKSTEP = {
    "type": "object",
    "properties": {
        "p": {"type": "object", "properties": {"s": {"type": "string", "maxLength": 40}, "t": {"type": "string"},
                                              "n": {"type": "integer"}},
              "additionalProperties": False},
        "q": {"type": "integer"},
    },
    "anyOf": [{"required": ["p"]}, {"required": ["q"]}],
    "additionalProperties": False,
}


@pytest.mark.skipif(not tokentrie.AVAILABLE, reason="the compiled path's quote contexts: numba not importable")
def test_lockstep_strings_take_quote_tokens_from_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same property in two ``anyOf`` branches is two instances of one automaton moving in
    lockstep: inside its strings the tokens with a quote still come from the string's context
    (the state after the closing quote holds both branches), not from walking them; masks
    equal brute force at the start, mid-string, at the end of the room, mid-escape, mid-UTF-8."""
    prefixes = [b'{"p": {"s": "', b'{"p": {"s": "ab', b'{"p": {"s": "' + b"x" * 38, b'{"p": {"s": "' + b"x" * 39,
                b'{"p": {"s": "a\\', b'{"p": {"s": "a\xc3', b'{"p": {"s": "ab", "t": "xyz', b'{"p": {"t": "x\\u00']
    ta = _quotes_from_context(monkeypatch, LOCKSTEP, 13, prefixes)
    assert len(ta.lazy.reads(ta.walk(b'{"p": {"s": "ab'))[0]) == 2, "the property is in both branches"


@pytest.mark.skipif(not tokentrie.AVAILABLE, reason="the compiled path's quote contexts: numba not importable")
def test_tokens_opening_a_string_read_their_tail_from_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trie walk does not descend below a quote that opens a string: the tokens there (`` "ab``,
    ``["x", "y``, ``""}``) take what follows their first quote from the string's tables."""
    vocab, ta, d, sample, sample_set = _llama_case(CHAIN, seed=10)
    settled: list[int] = []
    real = TokenAutomaton._settle_stops

    def spy(self: TokenAutomaton, s: int, out: np.ndarray, n: int) -> None:
        settled.append(n)
        real(self, s, out, n)

    monkeypatch.setattr(TokenAutomaton, "_settle_stops", spy)
    for prefix in (b'{"a": {"name":', b'{"a": {"name": ', b'{"a": {"name": "abc"}, "c":', b'{"a": {"name": "abc"}, "b": [',
                   b'{"a": {"name": "abc"}, "b": ["xyz",', b'{"a": {"name": "abc", "n": 2}, "b": [], "c": "a'):
        st = ta.walk(prefix)
        settled.clear()
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        want = brute_force_allowed(d, d.run(prefix), vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])
        if not prefix.endswith(b'"a'):
            assert settled and settled[0] > 0, prefix


def test_search_pattern_with_length_takes_the_string_tables() -> None:
    """A search pattern with a long maxLength is counted over the pattern's automaton: inside it
    the quote-free tokens come from the string tables; masks equal brute force before, during and
    after the pattern's match, and near the end of the room."""
    schema = {"type": "object", "properties": {"t": {"type": "string", "pattern": "[a-z]+", "maxLength": 30},
                                               "n": {"type": "integer"}}, "additionalProperties": False}
    vocab, ta, d, sample, sample_set = _llama_case(schema, seed=11)
    for prefix in (b'{"t": "', b'{"t": "12', b'{"t": "12ab', b'{"t": "12ab-', b'{"t": "' + b"x" * 27,
                   b'{"t": "\\', b'{"t": "\xc3'):
        st = ta.walk(prefix)
        assert st > 0 and ta._string_position(st) is not None, prefix
        got = set(ta.allowed_tokens(st).tolist()) & sample_set
        want = brute_force_allowed(d, d.run(prefix), vocab, sample)
        assert got == want, (prefix, sorted(got ^ want)[:10])


COUNTED = {
    "type": "object",
    "properties": {
        "host": {"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 24},
        "words": {"type": "string", "pattern": r"^(?:\S+\s+){0,2}\S+$", "maxLength": 20},
        "tag": {"type": "string", "pattern": "abc", "minLength": 2, "maxLength": 18},
    },
    "additionalProperties": False,
}


@pytest.mark.parametrize("prefix", [
    b'{"host": "', b'{"host": "ab-', b'{"host": "' + b"x" * 20, b'{"host": "' + b"x" * 23, b'{"host": "' + b"x" * 24,
    b'{"host": "a\\u00', b'{"words": "', b'{"words": "one two', b'{"words": "one two ', b'{"words": "a b ' + b"c" * 14,
    b'{"words": "\xc3', b'{"tag": "', b'{"tag": "x', b'{"tag": "' + b"x" * 14, b'{"tag": "' + b"x" * 15,
    b'{"tag": "xxabc', b'{"tag": "abc' + b"y" * 14,
])
def test_counted_pattern_masks_equal_brute_force(prefix: bytes) -> None:
    """A pattern of a character class, a word limit and a search pattern, each with a length, are
    counted over their own automata: the quote-free tokens come from the string tables ANDed with
    what the pattern survives, those ending within the margin and the quote tokens are walked;
    masks equal brute force on the trimmed (pattern x length) DFA, so no token leads where the
    string could no longer end (19 ``x`` leave no room for ``abc``)."""
    vocab, ta, d, sample, sample_set = _llama_case(COUNTED, seed=12)
    st = ta.walk(prefix)
    es = d.run(prefix)
    assert (st > 0) == (es >= 0), prefix
    if st <= 0:
        return
    got = set(ta.allowed_tokens(st).tolist()) & sample_set
    want = brute_force_allowed(d, es, vocab, sample)
    assert got == want, (prefix, sorted(got ^ want)[:10])


LENGTHS = {
    "type": "object",
    "properties": {
        "name": {"$ref": "#/$defs/nonEmpty"},
        "code": {"type": "string", "minLength": 3, "maxLength": 5},
        "flag": {"type": "string", "maxLength": 2},
        "list": {"type": "array", "items": {"$ref": "#/$defs/nonEmpty"}},
    },
    "additionalProperties": False,
    "$defs": {"nonEmpty": {"type": "string", "minLength": 1}},
}


@pytest.mark.parametrize("prefix", [
    b'{"name": "', b'{"name": "a', b'{"name": "\\', b'{"name": "\\u00', b'{"name": "\xc3', b'{"code": "',
    b'{"code": "ab', b'{"code": "abc', b'{"code": "abcd', b'{"code": "abcde', b'{"flag": "', b'{"flag": "x',
    b'{"flag": "xy', b'{"list": ["', b'{"list": ["a", "', b'{"list": ["a", "b',
])
def test_length_bounded_strings_are_string_positions(prefix: bytes) -> None:
    """A minLength alone (no maxLength: the count stops at minLength) or a short maxLength is a
    computed counter, so its masks come from the string tables, not trie walks over one position
    per character; they equal brute force on the eager DFA."""
    assert _string_case_matches(LENGTHS, 13, prefix), prefix


def _string_case_matches(schema: Any, seed: int, prefix: bytes) -> bool:
    """``prefix``'s mask equals brute force on the eager DFA over a Llama sample; returns whether
    the state is a string position (its quote-free tokens from the string tables)."""
    vocab, ta, d, sample, sample_set = _llama_case(schema, seed=seed)
    st = ta.walk(prefix)
    es = d.run(prefix)
    assert st > 0 and es >= 0, prefix
    got = set(ta.allowed_tokens(st).tolist()) & sample_set
    want = brute_force_allowed(d, es, vocab, sample)
    assert got == want, (prefix, sorted(got ^ want)[:10])
    return ta._string_position(st) is not None


BELOW_MIN = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "[a-zA-Z0-9_.-]+", "minLength": 3, "maxLength": 255},
        "word": {"type": "string", "pattern": "^[a-z]+$", "minLength": 5, "maxLength": 40},
        "pair": {"type": "string", "pattern": "^(ab)+$", "minLength": 4, "maxLength": 30},
        "alt": {"type": "string", "pattern": "^(a{1,3}|b{10,20})$", "minLength": 5, "maxLength": 30},
    },
    "additionalProperties": False,
}


@pytest.mark.parametrize(("prefix", "fast"), [
    (b'{"name": "', True), (b'{"name": "a', True), (b'{"name": "ab', True), (b'{"name": "a\\', True),
    (b'{"name": "abc', True), (b'{"word": "', True), (b'{"word": "abcd', True), (b'{"pair": "', True),
    (b'{"pair": "ab', True), (b'{"pair": "aba', True), (b'{"pair": "abab', True), (b'{"alt": "', False),
    (b'{"alt": "b', False), (b'{"alt": "bbbb', False), (b'{"alt": "bbbbb', True),
])
def test_counted_pattern_below_min_length(prefix: bytes, fast: bool) -> None:
    """Below minLength a counted pattern takes the string tables when every state it can be in
    there can still end in bounds (gapless: a class repeated, a search; or checked count by count:
    ``^(ab)+$``), so a long maxLength is not a trie walk through one lazy state per count
    (Github_hard---o45481: one 30 ms mask); ``^(a{1,3}|b{10,20})$`` with minLength 5 is not (``aa``
    can never reach 5 characters) and is walked.  Masks equal brute force either way."""
    assert _string_case_matches(BELOW_MIN, 14, prefix) == fast, prefix


@pytest.mark.parametrize("pattern,lo,hi", [(r"^[0-9a-f]{3,5}$", 0, None), (r"^[0-9a-zA-Z_-]{1,40}$", 2, None),
                                           (r"^\w{2,}$", 0, 6), (r"^[A-Fa-f\d]{8}$", 0, None)])
def test_class_repeat_pattern_is_a_counter_with_the_same_masks(pattern: str, lo: int, hi: int | None) -> None:
    """``^C{m,n}$`` compiles to a computed counter (jsonmode.compiler._class_counter); the same
    pattern written as two equal branches takes the general pattern path: equal languages, equal
    masks at every prefix."""
    _, vocab = trained()
    base: dict[str, Any] = {"type": "string", "pattern": pattern, "minLength": lo}
    if hi is not None:
        base["maxLength"] = hi
    counted = automaton_from_node(schema_to_node(base, CompileOptions()), vocab)
    general = automaton_from_node(schema_to_node({**base, "pattern": f"{pattern}|{pattern}"}, CompileOptions()), vocab)
    assert any(type(a).__name__ == "CounterDFA" for a in counted.lazy.instances)
    rng = random.Random(7)
    for _ in range(40):
        n = rng.randint(0, 12)
        text = '"' + "".join(rng.choice("0a_F-z9 é\\u0041") for _ in range(n)) + '"'
        data = text.encode()
        assert counted.accepts_text(data) == general.accepts_text(data), text
        for k in range(len(data) + 1):
            sc, sg = counted.walk(data[:k]), general.walk(data[:k])
            assert (sc < 0) == (sg < 0), data[:k]
            if sc < 0:
                break
            assert np.array_equal(counted.mask(sc), general.mask(sg)), data[:k]


@pytest.mark.parametrize("family", ["trained", "llama"])
def test_word_limit_states_share_pattern_walks(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word limit has a pattern state per word count; states far from the limit take the
    tokens of an earlier one that walks the same way, and every mask equals the one walked
    from scratch (no sharing), up to and past the limit's reach."""
    _, vocab = _tokenizer(family)
    schema = {"type": "string", "pattern": r"^(?:\S+\s+){0,12}\S+$", "maxLength": 200}
    prefixes = [b'"' + b"w " * k for k in range(15)] + [b'"' + b"wo rd " * k + b"x" for k in range(7)]
    shared = compile_automaton(schema, vocab, warm_seconds=0)
    states = [shared.walk(prefix) for prefix in prefixes]
    masks = [shared.mask(s).copy() if s > 0 else None for s in states]
    monkeypatch.setattr(automaton_mod, "_PATTERN_WITNESSES", 0)
    automaton_mod._CACHE.clear()
    alone = compile_automaton(schema, vocab, warm_seconds=0)
    assert alone is not shared
    for prefix, a, mask in zip(prefixes, states, masks, strict=True):
        b = alone.walk(prefix)
        assert (a > 0) == (b > 0), prefix
        if mask is not None:
            assert np.array_equal(mask, alone.mask(b)), prefix
    assert shared._pattern_alias and not alone._pattern_alias


def _prefix_masks(ta: Any, texts: list[bytes]) -> tuple[list[bytes], list[np.ndarray | None]]:
    """Every prefix of ``texts`` and its mask in ``ta`` (None where the prefix is refused)."""
    prefixes = [text[:i] for text in texts for i in range(len(text) + 1)]
    return prefixes, [ta.mask(s).copy() if s > 0 else None for s in map(ta.walk, prefixes)]


def _assert_walked_alike(schema: Any, vocab: Vocabulary, prefixes: list[bytes], masks: list[np.ndarray | None],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``masks`` equal the masks of ``schema`` compiled again with masks never kept (each walked)."""
    monkeypatch.setattr(automaton_mod, "_MIRROR_LEVELS", 0)
    automaton_mod._CACHE.clear()
    walked = compile_automaton(schema, vocab, warm_seconds=0)
    for prefix, mask in zip(prefixes, masks, strict=True):
        s = walked.walk(prefix)
        assert (s > 0) == (mask is not None), prefix
        if mask is not None:
            assert np.array_equal(mask, walked.mask(s)), prefix
    assert walked.inner_hits == 0


SHARED_DEFINITION = {
    "type": "object",
    "properties": {
        "a": {"$ref": "#/$defs/item"},
        "b": {"$ref": "#/$defs/item"},
        "list": {"type": "array", "items": {"$ref": "#/$defs/item"}, "maxItems": 5},
        "nested": {"type": "object", "properties": {"x": {"$ref": "#/$defs/item"}, "y": {"type": "integer"}}},
    },
    "additionalProperties": False,
    "$defs": {"item": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 6},
            "kind": {"enum": ["alpha", "beta", "gamma"]},
            "count": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "ok": {"type": "boolean"},
        },
        "required": ["kind"],
        "additionalProperties": False,
    }},
}


STRINGS_DEFINITION = {
    "type": "object",
    "properties": {
        "one": {"$ref": "#/$defs/tags"},
        "rows": {"type": "array", "items": {"$ref": "#/$defs/tags"}},
        "last": {"$ref": "#/$defs/tags"},
    },
    "additionalProperties": False,
    "$defs": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 4}}},
}


@pytest.mark.parametrize("family", ["trained", "llama"])
def test_masks_kept_for_strings_in_a_definition_equal_masks_walked(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strings settled from tables inside a definition: a token that closes one, then the
    definition's array, then reads on (``"]}``, ``"],``) depends on where the definition is used,
    so such a mask is kept only where the walks after its closing quotes stayed inside."""
    _, vocab = _tokenizer(family)
    texts = [b'{"one": ["ab", "c"], "rows": [["x"], [], ["abcd", "y"]], "last": ["z", ""]}',
             b'{"rows": [["a", "b"], ["c"]], "last": ["q"]}', b'{"one": [""], "last": []}',
             b'{"one": ["a"], "rows": [["a"]]}']
    kept = compile_automaton(STRINGS_DEFINITION, vocab, warm_seconds=0)
    prefixes = [text[:i] for text in texts for i in range(len(text) + 1)]
    masks = [kept.mask(kept.walk(p)).copy() for p in prefixes]
    assert kept.inner_hits > 0
    monkeypatch.setattr(automaton_mod, "_MIRROR_LEVELS", 0)
    automaton_mod._CACHE.clear()
    walked = compile_automaton(STRINGS_DEFINITION, vocab, warm_seconds=0)
    for p, mask in zip(prefixes, masks, strict=True):
        assert np.array_equal(mask, walked.mask(walked.walk(p))), p


@pytest.mark.parametrize("family", ["trained", "llama"])
def test_masks_kept_for_a_definition_equal_masks_walked_in_each_context(
        family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One $ref'd definition used in five contexts (two properties, a counted array's items, a
    nested object): a state met again inside it, in another context, takes the mask kept for
    the definition's state, and every mask equals the one walked where it is (no keeping)."""
    _, vocab = _tokenizer(family)
    rng = random.Random(21)

    def item() -> dict[str, Any]:
        got: dict[str, Any] = {"name": rng.choice(["", "ab", "abcdef"]), "kind": rng.choice(["alpha", "beta", "gamma"]),
                               "count": rng.choice([0, 7, 123]), "tags": rng.choice([[], ["x"], ["x", "yz", ""]]),
                               "ok": rng.choice([True, False])}
        return {k: v for k, v in got.items() if k == "kind" or rng.random() < 0.6}

    texts = []
    for _ in range(12):
        doc = {"a": item(), "b": item(), "list": [item() for _ in range(rng.randrange(6))],
               "nested": {"x": item(), "y": 5}}
        texts.append(json.dumps({k: v for k, v in doc.items() if rng.random() < 0.8}).encode())
    kept = compile_automaton(SHARED_DEFINITION, vocab, warm_seconds=0)
    prefixes, masks = _prefix_masks(kept, texts)
    assert kept.inner_hits > 0
    _assert_walked_alike(SHARED_DEFINITION, vocab, prefixes, masks, monkeypatch)


@pytest.mark.parametrize("family", ["trained", "llama"])
def test_free_value_masks_kept_for_the_process_equal_walked_masks(family: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A value a schema leaves free is one automaton shared by every schema in the process: masks
    kept for its states by one schema (and by the once-per-process walk of typical free JSON) serve
    another schema's free values, and each equals the mask walked with keeping off."""
    _, vocab = _tokenizer(family)
    rng = random.Random(11)

    def free(depth: int) -> Any:
        kind = rng.choice(["obj", "arr", "num", "str", "lit"] if depth < 3 else ["num", "str", "lit"])
        if kind == "obj":
            return {rng.choice(["id", "name", "x y", "é"]) + str(i): free(depth + 1) for i in range(rng.randrange(4))}
        if kind == "arr":
            return [free(depth + 1) for _ in range(rng.randrange(4))]
        if kind == "num":
            return rng.choice([0, -7, 12.5, 1e20, 3])
        return rng.choice(["", "abc", "Hello world", "a\"b"]) if kind == "str" else rng.choice([True, False, None])

    holder = {"type": "object", "properties": {"meta": {}, "n": {"type": "integer"}}, "required": ["meta"]}
    user = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
    automaton_mod._CACHE.clear()
    first = compile_automaton(holder, vocab)  # (warming: the free JSON walk, once per process)
    _prefix_masks(first, [json.dumps({"meta": free(0), "n": 1}).encode() for _ in range(6)])
    assert first.tables.shared_masks
    texts = [json.dumps([{"k": free(1), "v": free(0)} for _ in range(rng.randrange(1, 4))]).encode() for _ in range(8)]
    kept = compile_automaton(user, vocab, warm_seconds=0)
    prefixes, masks = _prefix_masks(kept, texts)
    assert kept.shared_hits > 0
    _assert_walked_alike(user, vocab, prefixes, masks, monkeypatch)


@pytest.mark.parametrize("family", ["trained", "llama"])
def test_quote_token_trie_walks_equal_token_walks(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tokens with a quote, and what follows a string's closing quote, walked as tries allow
    exactly what the token-by-token walk allows (strings in objects, arrays, keys, free values)."""
    _, vocab = _tokenizer(family)
    schema = {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "array", "items": {"type": "string", "maxLength": 6}},
        "c": {"type": "object", "additionalProperties": {"type": "string"}}, "d": {"enum": ["x", "y z"]},
        "e": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "f": {}}}
    rng = random.Random(5)
    words = ["", "ab", "a b", "é", "x\"y", "12", "},", "\\"]
    texts = []
    for _ in range(10):
        doc = {"a": rng.choice(words), "b": [rng.choice(words)[:6] for _ in range(rng.randrange(3))],
               "c": {rng.choice(words): rng.choice(words) for _ in range(rng.randrange(3))},
               "d": rng.choice(["x", "y z"]), "e": rng.choice(["s", 3]), "f": rng.choice(["t", {"k": "v"}, ["w"]])}
        texts.append(json.dumps({k: v for k, v in doc.items() if rng.random() < 0.8}).encode())
    masks = []
    for trie in (True, False):
        monkeypatch.setattr(automaton_mod, "_SUFFIX_TRIE", trie)
        automaton_mod._CACHE.clear()
        ta = compile_automaton(schema, vocab, warm_seconds=0)
        masks.append(_prefix_masks(ta, texts)[1])
    assert len(masks[0]) == len(masks[1])
    for a, b in zip(*masks, strict=True):
        assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))


MASKBENCH = Path(__file__).resolve().parents[1].parent / "shared" / "maskbench-dev.tar.xz"
# real schemas whose definitions are used in several contexts (counted arrays of objects, $refs
# in many places): the ones where most masks are taken from kept ones
KEPT_SCHEMAS = ["Github_hard---o9788.json", "Github_ultra---o12652.json", "Github_hard---o14077.json",
                "Github_hard---o39113.json", "Kubernetes---kb_734_Normalized.json", "Github_hard---o36010.json",
                "JsonSchemaStore---machine.schema.json", "JsonSchemaStore---ide.host.json"]


@pytest.mark.skipif(not MASKBENCH.exists(), reason=f"{MASKBENCH} absent (../shared not mounted)")
def test_kept_masks_equal_walked_masks_on_real_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every token of every test instance of eight MaskBench schemas: the masks with keeping on
    (and warming, which fills the kept masks first) equal the masks walked with keeping off."""
    import tarfile

    tok, vocab = llama()
    with tarfile.open(MASKBENCH) as tar:
        docs = [json.load(tar.extractfile(f"maskbench-dev/{name}")) for name in KEPT_SCHEMAS]  # type: ignore[arg-type]
    hits = 0
    for doc in docs:
        seqs = [tok.encode(json.dumps(t["data"], ensure_ascii=False), add_special_tokens=False) for t in doc["tests"]]
        automaton_mod._CACHE.clear()
        kept = compile_automaton(doc["schema"], vocab)
        monkeypatch.setattr(automaton_mod, "_MIRROR_LEVELS", 0)
        automaton_mod._CACHE.clear()
        walked = compile_automaton(doc["schema"], vocab, warm_seconds=0)
        monkeypatch.undo()
        for ids in seqs:
            a = b = kept.initial_state
            for tid in ids:
                ma = kept.mask(a)
                assert np.array_equal(ma, walked.mask(b))
                if not (ma[tid >> 5] >> (tid & 31)) & 1:
                    break
                a, b = kept.advance(a, tid), walked.advance(b, tid)
        hits += kept.inner_hits
        assert walked.inner_hits == 0
    assert hits > 1000
