"""CPU hot paths of the core slice, jsonmode beside its peers in one run.

Measures, on a real 128k vocabulary (Llama-3 / Hermes tokenizer):

1. compile time and first-mask time for the Character schema (bounded strings and lists);
2. per-step logits-processor overhead at batch 1 and 64: advance every row by its last token,
   build the masks, apply them to a (batch, vocab) float tensor.  Every engine walks the same
   valid token path, all rows in step.  Peers use their own documented HF recipe:
   xgrammar ``GrammarMatcher`` + ``fill_next_token_bitmask`` + ``apply_token_bitmask_inplace``,
   llguidance ``LLMatcher`` + ``fill_next_token_bitmask`` + ``apply_token_bitmask_inplace``.

    python -m benchmarks.cpu_processor --tokenizer ../shared/tokenizers/llama-3.1 [--json out.json]

Prints a table with ratios jsonmode/peer (lower is better for jsonmode).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from jsonmode.catalog import Character

INSTANCE = Character(
    name="Son Goku",
    species="Saiyan",
    role="Protagonist",
    personality_traits=["cheerful", "brave", "hungry"],
    special_attacks=["Kamehameha", "Spirit Bomb"],
)


def _text() -> str:
    return json.dumps(INSTANCE.model_dump(mode="json"), ensure_ascii=False)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _per_step_us(batches: list[int], reps: int, n_steps: int,
                 setup: Callable[[int], tuple[Callable[[int], Any], Callable[[int], Any]]]) -> dict[str, float]:
    """Mean µs per step at each batch size; ``setup(b)`` gives (timed ``step(i)``, untimed ``after(i)``).

    The first repetition is not counted: it warms every engine's caches alike.
    """
    out: dict[str, float] = {}
    for b in batches:
        times = []
        for rep in range(reps + 1):
            step, after = setup(b)
            total = 0.0
            for i in range(n_steps):
                t0 = time.perf_counter()
                step(i)
                total += time.perf_counter() - t0
                after(i)
            if rep:
                times.append(total / n_steps * 1e6)
        out[f"step_us_b{b}"] = _median(times)
    return out


# ----------------------------------------------------------------------------- jsonmode


def bench_jsonmode(tok: Any, schema: dict, ids: list[int], batches: list[int], reps: int) -> dict[str, Any]:
    from jsonmode import automaton as A
    from jsonmode import compiler
    from jsonmode.processor import JsonLogitsProcessor
    from jsonmode.vocab import Vocabulary

    vocab = Vocabulary.from_tokenizer(tok)
    out: dict[str, Any] = {}
    compiles, firsts = [], []
    for _ in range(reps):
        A._CACHE.clear()
        A._TABLES.clear()
        A.token_tables(vocab)  # per-vocabulary set-up, like the peers' tokenizer info (untimed)
        compiler._ANY_CACHE.clear()
        t0 = time.perf_counter()
        ta = A.compile_automaton(schema, vocab, additional_properties=False)
        t1 = time.perf_counter()
        ta.mask(ta.initial_state)
        t2 = time.perf_counter()
        compiles.append((t1 - t0) * 1e3)
        firsts.append((t2 - t1) * 1e3)
    # first compile in a fresh process: every cache cold (honest TTFM); later ones reuse
    # process-wide leaf caches (compiled patterns, key automata), reported apart
    out["compile_ms"] = compiles[0]
    out["first_mask_ms"] = firsts[0]
    out["compile_warm_ms"] = _median(compiles[1:]) if len(compiles) > 1 else compiles[0]

    def setup(b: int) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
        proc = JsonLogitsProcessor(ta)
        scores = torch.zeros((b, vocab.size))
        inp = [torch.zeros((b, 1), dtype=torch.long)]

        def after(i: int) -> None:
            if i < len(ids):
                inp[0] = torch.cat([inp[0], torch.full((b, 1), ids[i], dtype=torch.long)], dim=1)
            scores.zero_()

        return (lambda i: proc(inp[0], scores)), after

    out.update(_per_step_us(batches, reps, len(ids) + 1, setup))
    return out


# ----------------------------------------------------------------------------- peers


def bench_xgrammar(tok: Any, schema: dict, ids: list[int], batches: list[int], reps: int) -> dict[str, Any] | None:
    try:
        import xgrammar as xgr
    except ImportError:
        return None
    info = xgr.TokenizerInfo.from_huggingface(tok)
    out: dict[str, Any] = {}
    compiles, firsts = [], []
    for _ in range(reps):
        comp = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        t0 = time.perf_counter()
        cg = comp.compile_json_schema(json.dumps(schema), any_whitespace=False)
        m = xgr.GrammarMatcher(cg)
        t1 = time.perf_counter()
        bm = xgr.allocate_token_bitmask(1, info.vocab_size)
        m.fill_next_token_bitmask(bm, 0)
        t2 = time.perf_counter()
        compiles.append((t1 - t0) * 1e3)
        firsts.append((t2 - t1) * 1e3)
    out["compile_ms"] = _median(compiles)
    out["first_mask_ms"] = _median(firsts)
    def setup(b: int) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
        ms = [xgr.GrammarMatcher(cg) for _ in range(b)]
        bm = xgr.allocate_token_bitmask(b, info.vocab_size)
        scores = torch.zeros((b, info.vocab_size))

        def step(i: int) -> None:
            if i:
                for m in ms:
                    m.accept_token(ids[i - 1])
            for r, m in enumerate(ms):
                m.fill_next_token_bitmask(bm, r)
            xgr.apply_token_bitmask_inplace(scores, bm)

        return step, lambda i: scores.zero_()

    out.update(_per_step_us(batches, reps, len(ids) + 1, setup))
    return out


def bench_llguidance(tok: Any, schema: dict, ids: list[int], batches: list[int], reps: int) -> dict[str, Any] | None:
    try:
        import llguidance
        import llguidance.hf
        import llguidance.torch
    except ImportError:
        return None
    lt = llguidance.hf.from_tokenizer(tok)
    defaults = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
    out: dict[str, Any] = {}
    compiles, firsts = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        g = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=defaults)
        m = llguidance.LLMatcher(lt, g, log_level=0)
        t1 = time.perf_counter()
        bm = llguidance.torch.allocate_token_bitmask(1, lt.vocab_size)
        llguidance.torch.fill_next_token_bitmask(m, bm, 0)
        t2 = time.perf_counter()
        compiles.append((t1 - t0) * 1e3)
        firsts.append((t2 - t1) * 1e3)
    out["compile_ms"] = _median(compiles)
    out["first_mask_ms"] = _median(firsts)
    def setup(b: int) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
        ms = [llguidance.LLMatcher(lt, g, log_level=0) for _ in range(b)]
        bm = llguidance.torch.allocate_token_bitmask(b, lt.vocab_size)
        scores = torch.zeros((b, lt.vocab_size))

        def step(i: int) -> None:
            if i:
                for m in ms:
                    m.consume_token(ids[i - 1])
            for r, m in enumerate(ms):
                llguidance.torch.fill_next_token_bitmask(m, bm, r)
            llguidance.torch.apply_token_bitmask_inplace(scores, bm)

        return step, lambda i: scores.zero_()

    out.update(_per_step_us(batches, reps, len(ids) + 1, setup))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default="../shared/tokenizers/llama-3.1")
    ap.add_argument("--batch", type=int, action="append", default=None)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    batches = args.batch or [1, 64]
    torch.set_num_threads(1)

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    schema = Character.model_json_schema()
    ids = tok.encode(_text(), add_special_tokens=False)
    results: dict[str, Any] = {"jsonmode": bench_jsonmode(tok, schema, ids, batches, args.reps)}
    for name, fn in (("xgrammar", bench_xgrammar), ("llguidance", bench_llguidance)):
        r = fn(tok, schema, ids, batches, args.reps)
        if r is None:
            print(f"{name} not installed: pip install -e .[bench]")
        else:
            results[name] = r
    metrics = ["compile_ms", "first_mask_ms"] + [f"step_us_b{b}" for b in batches]
    for p in list(results):
        results[p].setdefault("compile_warm_ms", results[p]["compile_ms"])
    metrics.insert(1, "compile_warm_ms")
    engines = list(results)
    peers = [e for e in engines if e != "jsonmode"]
    head = f"{'metric':<16}" + "".join(f"{e:>12}" for e in engines) + "".join(f"{'jm/' + p[:8]:>12}" for p in peers)
    print(f"Character schema, {len(ids)} tokens/path, vocab {len(tok)}, torch threads 1")
    print(head)
    for k in metrics:
        row = f"{k:<16}" + "".join(f"{results[e].get(k, float('nan')):>12.3f}" for e in engines)
        row += "".join(f"{results['jsonmode'][k] / results[p][k]:>12.2f}" for p in peers)
        print(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tokens": len(ids), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
