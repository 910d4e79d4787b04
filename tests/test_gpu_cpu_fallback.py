"""The device-side constraint path (jsonmode.gpu, jsonmode.kernels) and our decode loop
(jsonmode.decode), run on the CPU: torch fallbacks, the same code the GPU runs around them.

Reference everywhere: the host automaton (``TokenAutomaton.advance`` / ``mask``) and HF
``generate`` + :class:`jsonmode.JsonLogitsProcessor`.  The Triton kernels themselves are
checked under Triton's interpreter in a subprocess when ``triton`` is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from jsonmode import Engine, JsonLogitsProcessor, Vocabulary, kernels
from jsonmode.decode import decode_batch, supported_mode
from jsonmode.gpu import _MIRRORS, DeviceAutomaton, DeviceLogitsProcessor, apply_host_states, device_automaton
from jsonmode.processor import ERROR, FINISHED
from jsonmode.prompt import json_mode_messages, render
from jsonmode.tiny import tiny_llama
from jsonmode.validate import parse_output

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "age", "ok"],
    "additionalProperties": False,
}
PROMPTS = ["hi", "Describe somebody, with a longer prompt than the others", "x y", "Another person"]
EXTRA_COLUMNS = 7  # logits wider than the tokenizer: extra columns never allowed


@pytest.fixture(scope="module")
def setup(trained_bpe_tokenizer):
    tok = trained_bpe_tokenizer
    model = tiny_llama(tok, extra_columns=EXTRA_COLUMNS)
    eng = Engine(model, tok)
    ta = eng.automaton(SCHEMA)
    return tok, model, eng, ta


def _random_cases(ta, da, B, seed=0):
    rng = np.random.default_rng(seed)
    live = [s for s in range(da.fin) if s != da.dead]
    states = np.array([int(rng.choice(live)) if rng.random() < 0.85 else int(rng.choice([da.dead, da.fin]))
                       for _ in range(B)], np.int32)
    toks = []
    for s in states:
        if s not in (da.dead, da.fin) and rng.random() < 0.7:
            toks.append(int(rng.choice(ta.allowed_tokens(int(s)))))
        else:
            toks.append(int(rng.integers(-1, ta.width)))
    return states, np.array(toks)


def _host_next(ta, da, s, t):
    if s in (da.dead, da.fin) or t < 0:
        return s
    if t in set(ta.eos_ids.tolist()) and ta.is_accepting(s):
        return da.fin
    n = ta.advance(s, t) if t < ta.vocab.size else -1
    return da.dead if n < 0 else n


def _host_proc(ta, da, states):
    p = JsonLogitsProcessor(ta)
    p.states = [int(s) if s not in (da.dead, da.fin) else (ERROR if s == da.dead else FINISHED) for s in states]
    return p


def test_mirror_layout(setup):
    _, _, _, ta = setup
    da = DeviceAutomaton(ta, "cpu")
    assert da.complete
    assert da.masks.shape[1] == ta.num_words
    assert da.row_of.shape[0] == da.fin + 1
    # every live state's device row equals its host mask; dead / fin -> EOS only
    for s in range(da.fin):
        row = da.masks[int(da.row_of[s])].numpy()
        if s == da.dead:
            assert np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little")).tolist() == sorted(
                ta.eos_ids.tolist())
        else:
            assert np.array_equal(row, ta.mask(s))


def test_advance_matches_host(setup):
    _, _, _, ta = setup
    da = DeviceAutomaton(ta, "cpu")
    states, toks = _random_cases(ta, da, 400)
    st = torch.from_numpy(states.copy())
    et = torch.full((400,), -1, dtype=torch.int32)
    es = et.clone()
    kernels.advance(st, torch.from_numpy(toks), da.tables, et, es, use_triton=False)
    exp = [_host_next(ta, da, int(s), int(t)) for s, t in zip(states, toks, strict=True)]
    assert st.tolist() == exp
    new_err = [(int(t), int(s)) for s, t, n in zip(states, toks, exp, strict=True)
               if s not in (da.dead, da.fin) and n == da.dead]
    assert new_err, "the random cases should include rejected tokens"
    got_err = [(int(et[i]), int(es[i])) for i in range(400) if states[i] not in (da.dead, da.fin) and exp[i] == da.dead]
    assert got_err == new_err


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fill_and_argmax_match_host_processor(setup, dtype):
    _, _, _, ta = setup
    da = DeviceAutomaton(ta, "cpu")
    states, _ = _random_cases(ta, da, 200, seed=1)
    C = ta.width + 3  # wider still than the automaton: the tail is banned too
    x = torch.randn(200, C).to(dtype)
    x[:, 10:20] = x[:, 9:10]  # ties: lowest index wins, as torch.argmax
    ref = x.float()
    _host_proc(ta, da, states).apply(ref)
    st = torch.from_numpy(states)
    for bt in (None, da.banned_table(C)):
        got = x.float()
        kernels.mask_fill(got, st, da.row_of, da.masks, bt, use_triton=False)
        assert torch.equal(got, ref)
    am = kernels.masked_argmax(x, st, da.row_of, da.masks, use_triton=False)
    assert torch.equal(am, ref.argmax(-1))
    assert (am < ta.vocab.size).all()


def test_select_advance(setup):
    _, _, _, ta = setup
    da = DeviceAutomaton(ta, "cpu")
    B = 64
    states, _ = _random_cases(ta, da, B, seed=2)
    x = torch.randn(B, ta.width)
    st = torch.from_numpy(states.copy())
    done = torch.zeros(B, dtype=torch.int8)
    done[:5] = 1
    tok = torch.zeros(B, dtype=torch.long)
    out = torch.zeros(B, 4, dtype=torch.long)
    eos = torch.tensor(sorted(ta.vocab.eos_ids))
    et = torch.full((B,), -1, dtype=torch.int32)
    es = et.clone()
    pad = 3
    kernels.select_advance(x, st, da.row_of, da.masks, done, tok, out, torch.tensor([2]), pad, eos, da.tables, et, es,
                           use_triton=False)
    ref = x.clone()
    _host_proc(ta, da, states).apply(ref)
    nxt = ref.argmax(-1)
    nxt[:5] = pad
    assert torch.equal(out[:, 2], nxt) and torch.equal(tok, nxt)
    assert torch.equal(done.bool(), torch.isin(nxt, eos) | (torch.arange(B) < 5))
    assert st.tolist() == [_host_next(ta, da, int(s), int(t)) for s, t in zip(states, nxt.tolist(), strict=True)]


def test_apply_host_states_hook(setup):
    """The device branch of JsonLogitsProcessor.apply gives the host path's result."""
    _, _, _, ta = setup
    da = DeviceAutomaton(ta, "cpu")
    states, _ = _random_cases(ta, da, 50, seed=3)
    p = _host_proc(ta, da, states)
    x = torch.randn(50, ta.width)
    ref = p.apply(x.clone())
    got = apply_host_states(p, x.clone())
    assert torch.equal(got, ref)


def _texts(eng, n):
    return [render(eng.tokenizer, json_mode_messages(SCHEMA, p)) for p in PROMPTS[:n]]


def test_device_processor_in_hf_generate(setup):
    tok, model, eng, ta = setup
    from transformers import LogitsProcessorList

    enc = eng._encode(_texts(eng, 3))
    res = []
    for proc in (JsonLogitsProcessor(ta), DeviceLogitsProcessor(ta, device_path=True)):
        out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), max_new_tokens=40, do_sample=False,
                             eos_token_id=list(eng.vocab.eos_ids), pad_token_id=tok.pad_token_id, temperature=None,
                             top_p=None, top_k=None)
        proc._advance(out[:, -1].tolist())
        res.append((out.tolist(), proc.states, proc.errors))
    assert res[0] == res[1]
    assert res[1][1] == [FINISHED] * 3


@pytest.mark.parametrize("mode", ["eager", "exact", "fast"])
@pytest.mark.parametrize("n", [1, 4])
def test_decode_batch_identical_to_hf_generate(setup, mode, n):
    """Greedy: our loop == HF generate + JsonLogitsProcessor, row for row (ids, final state, error)."""
    tok, model, eng, ta = setup
    texts = _texts(eng, n)
    ref = eng._decode(ta, texts, max_new_tokens=60, temperature=0.0, top_p=1.0, seed=None)
    enc = eng._encode(texts)
    stats = {}
    got = decode_batch(model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=60,
                       eos_ids=list(eng.vocab.eos_ids), pad_id=tok.pad_token_id, mode=mode, stats=stats)
    assert stats["mode"] == mode
    assert got == ref
    assert all(state == FINISHED for _, state, _ in got)


def test_decode_batch_budget_and_early_stop(setup):
    tok, model, eng, ta = setup
    enc = eng._encode(_texts(eng, 2))
    # budget too small: rows end in a live state, not finished, no error
    rows = decode_batch(model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=5,
                        eos_ids=list(eng.vocab.eos_ids), pad_id=tok.pad_token_id, mode="exact")
    ref = eng._decode(ta, _texts(eng, 2), max_new_tokens=5, temperature=0.0, top_p=1.0, seed=None)
    assert rows == ref
    assert all(len(ids) == 5 and state >= 0 and err is None for ids, state, err in rows)
    # all rows done long before the budget: the loop stops early
    stats = {}
    decode_batch(model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=400,
                 eos_ids=list(eng.vocab.eos_ids), pad_id=tok.pad_token_id, mode="exact", stats=stats, check_every=4)
    assert stats["steps"] < 100


def test_decode_batch_sampling_matches_hf(setup):
    """Sampling: same warpers in HF's order (constraint, temperature, top-p), same RNG draws."""
    tok, model, eng, ta = setup
    texts = _texts(eng, 3)
    ref = eng._decode(ta, texts, max_new_tokens=50, temperature=0.8, top_p=0.9, seed=123)
    enc = eng._encode(texts)
    for mode in ("eager", "exact"):
        got = decode_batch(model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=50, temperature=0.8,
                           top_p=0.9, seed=123, eos_ids=list(eng.vocab.eos_ids), pad_id=tok.pad_token_id, mode=mode)
        assert got == ref, mode


def test_decode_batch_host_fallback(setup):
    """An automaton too big to mirror: host-side states, device rows uploaded on demand."""
    tok, model, eng, ta = setup
    texts = _texts(eng, 3)
    ref = eng._decode(ta, texts, max_new_tokens=60, temperature=0.0, top_p=1.0, seed=None)
    small = DeviceAutomaton(ta, "cpu", max_states=1)
    assert not small.complete
    saved = _MIRRORS.get(ta)
    _MIRRORS[ta] = {"cpu": small}
    try:
        enc = eng._encode(texts)
        stats = {}
        got = decode_batch(model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=60,
                           eos_ids=list(eng.vocab.eos_ids), pad_id=tok.pad_token_id, mode="exact", stats=stats)
        assert stats["host_fallback"]
        assert got == ref
    finally:
        if saved is None:
            _MIRRORS.pop(ta, None)
        else:
            _MIRRORS[ta] = saved


def test_bounded_schema_every_row_valid(trained_bpe_tokenizer):
    """Random model, bounded strings/integers, default (fixed) whitespace: every row finishes valid."""
    tok = trained_bpe_tokenizer
    model = tiny_llama(tok, seed=7)
    eng = Engine(model, tok)
    ta = eng.automaton(SCHEMA)
    prompts = [f"Person number {i}" + "!" * i for i in range(8)]
    texts = [render(tok, json_mode_messages(SCHEMA, p)) for p in prompts]
    enc = eng._encode(texts)
    rows = decode_batch(model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=96,
                        eos_ids=list(eng.vocab.eos_ids), pad_id=tok.pad_token_id)
    for ids, state, err in rows:
        assert state == FINISHED and err is None
        value = parse_output(eng.vocab.decode(ids).decode("utf-8"), SCHEMA, SCHEMA)
        assert 0 <= value["age"] <= 120 and 1 <= len(value["name"]) <= 10


def test_supported_mode(setup):
    _, model, _, _ = setup
    assert supported_mode(model, "auto") == "exact"
    assert supported_mode(model, "eager") == "eager"
    with pytest.raises(ValueError):
        supported_mode(model, "bogus")

    class Other:
        config = type("C", (), {"model_type": "gpt2"})()

    assert supported_mode(Other(), "fast") == "eager"


def test_device_automaton_cached(setup):
    _, _, _, ta = setup
    assert device_automaton(ta, "cpu") is device_automaton(ta, "cpu")


_INTERPRET_SCRIPT = textwrap.dedent(
    """
    import numpy as np, torch
    from jsonmode import Vocabulary, compile_automaton, kernels
    from jsonmode.gpu import DeviceAutomaton
    from jsonmode.tiny import trained_bpe_tokenizer
    tok = trained_bpe_tokenizer()
    vocab = Vocabulary.from_tokenizer(tok, logits_width=len(tok) + 5)
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 4},
              "b": {"type": "integer", "minimum": 0, "maximum": 99}}, "required": ["a", "b"],
              "additionalProperties": False}
    ta = compile_automaton(schema, vocab)
    da = DeviceAutomaton(ta, "cpu")
    rng = np.random.default_rng(0)
    B = 12
    live = [s for s in range(da.fin) if s != da.dead]
    states = torch.tensor([int(rng.choice(live)) for _ in range(B - 2)] + [da.dead, da.fin], dtype=torch.int32)
    toks = torch.tensor([int(rng.choice(ta.allowed_tokens(int(s)))) if s < da.fin and s != da.dead else 5
                         for s in states.tolist()][:-3] + [ta.width - 1, -1, 7], dtype=torch.long)
    outs = []
    for use in (True, False):
        st = states.clone(); et = torch.full((B,), -1, dtype=torch.int32); es = et.clone()
        kernels.advance(st, toks, da.tables, et, es, use_triton=use)
        x = torch.randn(B, ta.width + 40, generator=torch.Generator().manual_seed(1))
        f = x.clone(); kernels.mask_fill(f, states, da.row_of, da.masks, use_triton=use)
        a = kernels.masked_argmax(x.to(torch.bfloat16), states, da.row_of, da.masks, use_triton=use)
        done = torch.zeros(B, dtype=torch.int8); done[0] = 1
        tk = torch.zeros(B, dtype=torch.long); out = torch.zeros(B, 3, dtype=torch.long)
        s2 = states.clone(); e2 = torch.full((B,), -1, dtype=torch.int32); e3 = e2.clone()
        kernels.select_advance(x, s2, da.row_of, da.masks, done, tk, out, torch.tensor([1]), 9,
                               torch.tensor(sorted(vocab.eos_ids)), da.tables, e2, e3, use_triton=use)
        y = x.clone(); so = torch.full_like(states, -5)
        e4 = torch.full((B,), -1, dtype=torch.int32); e5 = e4.clone()
        kernels.advance_fill(y, states, so, toks, da.row_of, da.masks, da.tables, e4, e5, use_triton=use)
        outs.append([st, et, es, f, a, done, tk, out, s2, e2, e3, y, so, e4, e5])
    for i, (p, q) in enumerate(zip(*outs)):
        assert torch.equal(p, q), i
    print("TRITON-INTERPRET-OK")
    """
)


def test_triton_kernels_under_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", JSONMODE_TRITON="1")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _INTERPRET_SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600, cwd=root)
    if r.returncode != 0 and "active drivers" in (r.stderr or ""):
        pytest.skip("this triton build cannot run its interpreter here")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TRITON-INTERPRET-OK" in r.stdout


def test_vocabulary_width_mismatch_never_allows_extra_columns(setup):
    """Logits wider than the tokenizer: the extra columns are -inf after the fill."""
    _, _, _, ta = setup
    assert isinstance(ta.vocab, Vocabulary)
    da = DeviceAutomaton(ta, "cpu")
    x = torch.zeros(3, ta.width + 10)
    st = torch.tensor([ta.initial_state, da.dead, da.fin], dtype=torch.int32)
    kernels.mask_fill(x, st, da.row_of, da.masks, use_triton=False)
    assert torch.isinf(x[:, ta.vocab.size:]).all()

