"""Command line: one-off generation, batch extraction over JSONL, and schema diagnostics.

``--tiny`` swaps the hub model for a tiny random Llama (and, without a local
tokenizer, a BPE trained on the spot) so the whole pipeline runs offline: the
output is schema-valid but meaningless.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "NousResearch/Hermes-2-Pro-Llama-3-8B"


def _schema_arg(value: str) -> Any:
    """A catalog name (``character``), a path to a JSON Schema file, or ``module:Model``."""
    from .catalog import CATALOG

    if value in CATALOG:
        return CATALOG[value]
    p = Path(value)
    if p.exists():
        return json.loads(p.read_text())
    if ":" in value:
        import importlib

        mod, _, name = value.partition(":")
        return getattr(importlib.import_module(mod), name)
    raise argparse.ArgumentTypeError(
        f"--schema {value!r}: not a catalog name ({', '.join(CATALOG)}), file, or module:Model"
    )


def _engine(args: argparse.Namespace) -> Any:
    from .engine import Engine

    opts = {"whitespace": args.whitespace}
    if args.tiny:
        from transformers import AutoTokenizer

        from .tiny import tiny_llama, trained_bpe_tokenizer

        tok = AutoTokenizer.from_pretrained(args.tokenizer) if args.tokenizer else trained_bpe_tokenizer()
        model = tiny_llama(tok, seed=args.seed or 0)
        return Engine(model, tok, compile_options=opts, cache_dir=args.cache_dir)
    return Engine.from_pretrained(args.model, tokenizer_id=args.tokenizer, compile_options=opts,
                                  cache_dir=args.cache_dir)


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def cmd_generate(args: argparse.Namespace) -> int:
    from .errors import JsonModeError

    engine = _engine(args)
    prompts = [args.prompt] * args.n
    t0 = time.perf_counter()
    results = engine.generate_batch(
        args.schema, prompts, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, return_results=True,
    )
    dt = time.perf_counter() - t0
    bad = 0
    for r in results:
        if r.error is None:
            print(json.dumps(_dump(r.value), ensure_ascii=False))
        else:
            bad += 1
            err: JsonModeError = r.error
            print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
    print(f"{len(results) - bad}/{len(results)} valid in {dt:.1f}s", file=sys.stderr)
    return 1 if bad else 0


def _read_jsonl(path: Path) -> Iterator[tuple[str, str]]:
    with path.open() as f:
        for i, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                yield str(i), line
                continue
            if isinstance(obj, dict):
                yield str(obj.get("id", i)), str(obj.get("text", obj.get("prompt", "")))
            else:
                yield str(i), str(obj)


def cmd_batch(args: argparse.Namespace) -> int:
    """Extract one object per input line; results are appended as they complete (``--resume`` skips done ids)."""
    from tqdm import tqdm

    done: set[str] = set()
    out_path = Path(args.output)
    if args.resume and out_path.exists():
        for line in out_path.read_text().splitlines():
            try:
                done.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError):
                continue
    todo = [(i, t) for i, t in _read_jsonl(Path(args.input)) if i not in done]
    engine = _engine(args)
    prompt_tpl = args.instruction + "\n\n{text}"
    failed = 0
    with out_path.open("a") as out, tqdm(total=len(todo), unit="doc") as bar:
        for k in range(0, len(todo), args.batch_size):
            chunk = todo[k : k + args.batch_size]
            results = engine.generate_batch(
                args.schema, [prompt_tpl.format(text=t) for _, t in chunk], max_new_tokens=args.max_new_tokens,
                temperature=args.temperature, top_p=args.top_p, seed=args.seed, return_results=True,
            )
            for (doc_id, _), r in zip(chunk, results, strict=True):
                if r.error is None:
                    rec = {"id": doc_id, "value": _dump(r.value)}
                else:
                    failed += 1
                    rec = {"id": doc_id, "error": type(r.error).__name__, "message": str(r.error).splitlines()[0],
                           "text": r.text}
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    print(f"{len(todo) - failed}/{len(todo)} documents extracted -> {out_path}", file=sys.stderr)
    return 1 if failed else 0


def cmd_compile(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from .automaton import compile_automaton
    from .schema import to_json_schema
    from .vocab import Vocabulary

    tok = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    vocab = Vocabulary.from_tokenizer(tok)
    t0 = time.perf_counter()
    ta = compile_automaton(to_json_schema(args.schema), vocab, precompute=False, whitespace=args.whitespace)
    t1 = time.perf_counter()
    ta.mask(ta.initial_state)
    t2 = time.perf_counter()
    ta.precompute()
    t3 = time.perf_counter()
    print(json.dumps({"states": ta.num_states, "compile_ms": round((t1 - t0) * 1e3, 2),
                      "first_mask_ms": round((t2 - t1) * 1e3, 3), "all_masks_ms": round((t3 - t2) * 1e3, 1)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jsonmode", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--schema", type=_schema_arg, default="character",
                        help="catalog name (character, person, invoice, sentiment, topic), schema file, or module:Model")
        sp.add_argument("--model", default=DEFAULT_MODEL, help="hub id or local folder of the model")
        sp.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model's)")
        sp.add_argument("--tiny", action="store_true", help="offline: tiny random model (valid but meaningless output)")
        sp.add_argument("--whitespace", default="default", choices=["default", "compact", "flexible"])
        sp.add_argument("--cache-dir", default=None, help="on-disk automaton cache")

    def sampling(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--max-new-tokens", type=int, default=1024)
        sp.add_argument("--temperature", type=float, default=0.0)
        sp.add_argument("--top-p", type=float, default=1.0)
        sp.add_argument("--seed", type=int, default=None)

    g = sub.add_parser("generate", help="generate objects for one prompt")
    common(g)
    sampling(g)
    g.add_argument("--prompt", default="Please return a json object to represent Goku from the anime Dragon Ball Z")
    g.add_argument("-n", type=int, default=1, help="rows in the batch")
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser("batch", help="extract one object per line of a JSONL file")
    common(b)
    sampling(b)
    b.add_argument("--input", required=True, help="JSONL: {'id', 'text'} objects or plain strings")
    b.add_argument("--output", required=True, help="JSONL results, appended as batches complete")
    b.add_argument("--instruction", default="Extract the information from this document as JSON.")
    b.add_argument("--batch-size", type=int, default=16)
    b.add_argument("--resume", action="store_true", help="skip ids already in --output")
    b.set_defaults(func=cmd_batch)

    c = sub.add_parser("compile", help="compile a schema and print automaton size and timings")
    common(c)
    c.set_defaults(func=cmd_compile)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
