"""GPU smoke check: Engine.generate_batch on CUDA runs our own loop and returns valid objects.

    python -m benchmarks.gpu_engine_check [TOKENIZER_DIR]
"""
import sys
import time

from transformers import AutoTokenizer

import jsonmode
from jsonmode.catalog import Character, Sentiment
from jsonmode.tiny import tiny_llama

tok = AutoTokenizer.from_pretrained(sys.argv[1] if len(sys.argv) > 1 else "../shared/tokenizers/hermes-2-pro-llama-3")
model = tiny_llama(tok, extra_columns=32, hidden=256, layers=4).to("cuda")
eng = jsonmode.Engine(model, tok)
assert eng._use_own_loop()
for spec, n in ((Sentiment, 64), (Character, 64)):
    t = time.perf_counter()
    res = eng.generate_batch(spec, ["Goku"] * n, temperature=1.0, seed=3, return_results=True, max_new_tokens=1024)
    dt = time.perf_counter() - t
    ok = sum(r.error is None for r in res)
    print(spec.__name__, f"{ok}/{n} valid in {dt:.2f}s", "max tokens", max(len(r.token_ids) for r in res))
    bad = [str(r.error)[:200] for r in res if r.error is not None][:2]
    if bad:
        print(bad)
hf = jsonmode.Engine(model, tok, backend="hf").generate_batch(Sentiment, ["a", "b", "c"], return_results=True)
own = jsonmode.Engine(model, tok, backend="jsonmode").generate_batch(Sentiment, ["a", "b", "c"], return_results=True)
print("greedy identical hf vs own loop:", [r.token_ids for r in hf] == [r.token_ids for r in own])
