"""How much of jsonmode's per-token mask time recomputes a mask it has computed before.

A diagnostic for the design of the cold-mask path, jsonmode only (the peers do not cache
masks by content either, so there is nothing to put beside them).  Every schema runs in
this one process, its tests through compile / mask / advance as in
:mod:`benchmarks.maskbench`; each mask call is timed and each "cold" mask (computed by that
call, not at compile time, which warms states along sketches of the schema) hashed.  It
prints how many cold masks equal one computed before -- in the same schema, or anywhere
earlier in the process -- and what TBM would be if those repeats cost what a cached mask
costs: the headroom of a mask cache whose key does not depend on the schema (README, "What
the tail is made of").

    python -m benchmarks.mask_repeats DATA --tokenizer DIR [--sample N --seed S] [--tests-only] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file, not only as ``python -m benchmarks...``
    sys.path.insert(0, str(ROOT))

from benchmarks._engines import EngineRefusal, JsonModeEngine  # noqa: E402
from benchmarks.maskbench import SchemaFile, TokenizerHandle, _warm_up, read_dataset, stratified_sample  # noqa: E402


def measure(files: Sequence[SchemaFile], tok: TokenizerHandle, *, tests_only: bool = False) -> dict[str, Any]:
    """Run every file's tests through the harness's jsonmode adapter (its warm-up, compile and
    refusals); per mask call: time (us), cold, repeat in schema, repeat in process."""
    engine = JsonModeEngine(tok)
    _warm_up(engine, tok)
    seen_process: set[bytes] = set()
    times: list[float] = []
    flags: list[int] = []  # bit 0 cold, bit 1 repeat within the schema, bit 2 repeat within the process
    schemas = refused = 0
    clock = time.perf_counter_ns
    for f in files:
        doc = f.load()
        tests = doc.get("tests") or []
        if tests_only and not tests:
            continue
        try:
            matcher = engine.compile(doc.get("schema"))
        except EngineRefusal:
            refused += 1
            continue
        schemas += 1
        matcher.mask()  # the TTFM mask: not a per-token call
        seen_schema: set[bytes] = set()
        encoded = [tok.encode(json.dumps(t.get("data"), indent=None, ensure_ascii=False)) for t in tests]
        gc.disable()
        try:
            for ids in encoded:
                matcher.reset()
                for t in ids:
                    # computed by this call (not at compile time, which warms states: see jsonmode.sketch)
                    cold = not matcher.ta.has_mask(matcher.state)
                    a = clock()
                    m = matcher.mask()
                    b = clock()
                    flag = 0
                    if cold:
                        h = hashlib.blake2b(m.tobytes(), digest_size=16).digest()
                        flag = 1 | (2 if h in seen_schema else 0) | (4 if h in seen_process else 0)
                        seen_schema.add(h)
                        seen_process.add(h)
                    times.append((b - a) / 1e3)
                    flags.append(flag)
                    if not matcher.allows(t) or not matcher.advance(t):
                        break
        finally:
            gc.enable()
    return {"schemas": schemas, "refused": refused, "distinct_masks": len(seen_process),
            "times_us": np.array(times, np.float64), "flags": np.array(flags, np.int8)}


def _figures(us: np.ndarray) -> dict[str, float]:
    if not us.size:
        return {"tbm_p50_us": 0.0, "tbm_p99_us": 0.0, "tbm_p999_us": 0.0, "tbm_max_us": 0.0,
                "above_100us": 0.0, "sum_ms": 0.0}
    p50, p99, p999 = np.percentile(us, [50, 99, 99.9]).tolist()
    return {"tbm_p50_us": p50, "tbm_p99_us": p99, "tbm_p999_us": p999, "tbm_max_us": float(us.max()),
            "above_100us": float((us > 100).mean()), "sum_ms": float(us.sum() / 1e3)}


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Counts, and TBM as measured and with repeated cold masks at the median warm-call time."""
    us, fl = data["times_us"], data["flags"]
    cold = (fl & 1).astype(bool)
    in_schema = (fl & 2).astype(bool)
    in_process = (fl & 4).astype(bool)
    warm = float(np.median(us[~cold])) if (~cold).any() else 0.0
    out: dict[str, Any] = {
        "schemas": data["schemas"], "refused": data["refused"], "calls": int(us.size),
        "cold": int(cold.sum()), "distinct_masks": data["distinct_masks"],
        "repeats_in_schema": int(in_schema.sum()), "repeats_in_process": int(in_process.sum()),
        "warm_p50_us": warm,
    }
    out["measured"] = _figures(us)
    out["schema_repeats_free"] = _figures(np.where(in_schema, warm, us))
    out["process_repeats_free"] = _figures(np.where(in_process, warm, us))
    return out


def render(s: dict[str, Any]) -> str:
    cold = max(s["cold"], 1)
    lines = [
        f"schemas {s['schemas']} (refused {s['refused']}), mask calls {s['calls']:,}, "
        f"cold {s['cold']:,} ({s['cold'] / max(s['calls'], 1):.1%}), distinct cold masks {s['distinct_masks']:,}",
        f"cold masks equal to an earlier one: in the same schema {s['repeats_in_schema']:,} "
        f"({s['repeats_in_schema'] / cold:.1%}), earlier in the process {s['repeats_in_process']:,} "
        f"({s['repeats_in_process'] / cold:.1%}); warm call p50 {s['warm_p50_us']:.2f} us",
        "",
        f"{'TBM (us)':32s} {'p50':>7s} {'p99':>8s} {'p99.9':>9s} {'max':>9s} {'>100us':>7s} {'sum ms':>8s}",
    ]
    for key, label in (("measured", "measured"), ("schema_repeats_free", "repeats in schema free"),
                       ("process_repeats_free", "repeats in process free")):
        f = s[key]
        lines.append(f"{label:32s} {f['tbm_p50_us']:7.2f} {f['tbm_p99_us']:8.1f} {f['tbm_p999_us']:9.1f} "
                     f"{f['tbm_max_us']:9.1f} {f['above_100us']:7.2%} {f['sum_ms']:8.0f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mask_repeats", description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="MaskBench directory or .tar.xz")
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json")
    ap.add_argument("--sample", type=int, default=0, help="stratified sample of N files (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tests-only", action="store_true", help="only files with tests (default: all files)")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args(argv)
    files = read_dataset(args.data)
    if args.sample:
        files = stratified_sample(files, args.sample, args.seed)
    summary = summarize(measure(files, TokenizerHandle(args.tokenizer), tests_only=args.tests_only))
    print(render(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
