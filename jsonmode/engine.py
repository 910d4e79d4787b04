"""The user-facing engine: prompt -> constrained decoding -> typed value."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from .automaton import TokenAutomaton, compile_automaton
from .errors import JsonModeError, OutputError
from .processor import ERROR, FINISHED, JsonLogitsProcessor
from .prompt import Message, json_mode_messages, render
from .schema import is_model_class, to_json_schema
from .validate import parse_output
from .vocab import Vocabulary

T = TypeVar("T")
Prompt = str | Sequence[Message]


@dataclass
class Generation(Generic[T]):
    """One row's outcome: the text, its tokens, and the value or the typed error."""

    text: str
    token_ids: list[int]
    complete: bool
    value: T | None = None
    error: JsonModeError | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class BatchGenerationError(JsonModeError):
    """Some rows of a batch failed; ``results`` keeps every row (values and errors) so no work is lost."""

    def __init__(self, results: list[Generation[Any]]) -> None:
        self.results = results
        bad = [i for i, r in enumerate(results) if r.error is not None]
        first = results[bad[0]].error if bad else None
        super().__init__(f"{len(bad)} of {len(results)} rows failed (first: row {bad[0] if bad else '-'}: {first})")


class Engine:
    """A Hugging Face causal LM + tokenizer that answers in schema-valid JSON.

    ``compile_options`` go to the schema compiler (whitespace, recursion depth, ...).
    Pydantic models get ``additional_properties=False`` unless given: the object
    should hold the model's fields and nothing else.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        compile_options: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        backend: str = "auto",
    ) -> None:
        if backend not in ("auto", "jsonmode", "hf"):
            raise ValueError(f"backend must be 'auto', 'jsonmode' or 'hf', not {backend!r}")
        self.backend = backend
        self.model = model
        self.tokenizer = tokenizer
        self.compile_options = dict(compile_options or {})
        self.cache_dir = cache_dir
        self.vocab = Vocabulary.from_tokenizer(
            tokenizer,
            model_config=getattr(model, "config", None),
            generation_config=getattr(model, "generation_config", None),
        )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        *,
        tokenizer_id: str | None = None,
        dtype: Any = "auto",
        device: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        **engine_kwargs: Any,
    ) -> Engine:
        """Load model and tokenizer with ``transformers`` (from the hub or a local folder)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer_id or model_id)
        kw = dict(model_kwargs or {})
        kw.setdefault("dtype", dtype)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # PreTrainedModel.to is @wraps(nn.Module.to): typeshed's _Wrapped reads the device as ``self``
        model = AutoModelForCausalLM.from_pretrained(model_id, **kw).to(device)  # type: ignore[arg-type]
        model.eval()
        return cls(model, tok, **engine_kwargs)

    # ------------------------------------------------------------------ building blocks

    def schema_of(self, spec: Any) -> dict[str, Any] | bool:
        return to_json_schema(spec)

    def automaton(self, spec: Any, **options: Any) -> TokenAutomaton:
        opts = {**self.compile_options, **options}
        if is_model_class(spec):
            opts.setdefault("additional_properties", False)
        return compile_automaton(to_json_schema(spec), self.vocab, cache_dir=self.cache_dir, **opts)

    def render_prompt(self, spec: Any, prompt: Prompt) -> str:
        return render(self.tokenizer, json_mode_messages(to_json_schema(spec), prompt))

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        bos = getattr(tok, "bos_token", None)
        add_special = not (bos and all(t.startswith(bos) for t in texts))
        tok.padding_side = "left"
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        dev = next(self.model.parameters()).device
        return {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        spec: type[T] | dict[str, Any],
        prompt: Prompt,
        *,
        max_new_tokens: int = 1024,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        **options: Any,
    ) -> T:
        """Generate one object of ``spec`` (Pydantic model class or JSON Schema dict)."""
        res = self.generate_batch(
            spec, [prompt], max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
            seed=seed, return_results=True, **options,
        )[0]
        return res.unwrap()

    def generate_batch(
        self,
        spec: Any,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 1024,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        return_results: bool = False,
        **options: Any,
    ) -> list[Any]:
        """One padded batch through the model.

        Returns the values; if any row fails, raises :class:`BatchGenerationError` whose
        ``results`` keep every row.  ``return_results=True`` returns the per-row
        :class:`Generation` records instead of raising.
        """
        schema = to_json_schema(spec)
        ta = self.automaton(spec, **options)
        texts = [render(self.tokenizer, json_mode_messages(schema, p)) for p in prompts]
        rows = self._decode(ta, texts, max_new_tokens=max_new_tokens, temperature=temperature,
                            top_p=top_p, seed=seed)
        results: list[Generation[Any]] = []
        for ids, state, err in rows:
            text = self.vocab.decode(ids).decode("utf-8", errors="replace")
            # a value that ended exactly at the budget (only EOS could follow) is complete too
            done = state == FINISHED or (state > 0 and ta.is_final(state))
            gen: Generation[Any] = Generation(text, ids, done)
            try:
                if state == ERROR:
                    raise OutputError(f"constrained decoding failed: {err}", text)
                gen.value = parse_output(text, spec, schema, complete=gen.complete)
            except JsonModeError as e:
                gen.error = e
            results.append(gen)
        if return_results:
            return results
        if any(r.error is not None for r in results):
            raise BatchGenerationError(results)
        return [r.value for r in results]

    def _use_own_loop(self) -> bool:
        if self.backend == "auto":
            return next(self.model.parameters()).device.type == "cuda"
        return self.backend == "jsonmode"

    def _decode(
        self, ta: TokenAutomaton, texts: list[str], *, max_new_tokens: int, temperature: float, top_p: float,
        seed: int | None,
    ) -> list[tuple[list[int], int, str | None]]:
        """Constrained decoding; returns (generated ids without EOS, final state, error) per row.

        ``backend="auto"`` runs our own batched loop (static KV cache, CUDA graphs, masks on
        the device: :mod:`jsonmode.decode`) on CUDA and HF ``generate`` + the logits
        processor elsewhere; ``"jsonmode"`` / ``"hf"`` force one.
        """
        from transformers import LogitsProcessorList

        enc = self._encode(texts)
        if self._use_own_loop():
            from .decode import decode_batch

            with self._lock, torch.inference_mode():
                return decode_batch(
                    self.model, enc["input_ids"], enc["attention_mask"], ta, max_new_tokens=max_new_tokens,
                    temperature=temperature, top_p=top_p, seed=seed,
                    eos_ids=[int(e) for e in self.vocab.eos_ids], pad_id=self.tokenizer.pad_token_id,
                )
        proc = JsonLogitsProcessor(ta)
        if seed is not None:
            torch.manual_seed(seed)
        sample = temperature > 0
        kw: dict[str, Any] = {"do_sample": sample}
        if sample:
            kw.update(temperature=temperature, top_p=top_p, top_k=0)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        eos = [int(e) for e in self.vocab.eos_ids]
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **enc,
                logits_processor=LogitsProcessorList([proc]),
                max_new_tokens=max_new_tokens,
                eos_token_id=eos,
                pad_token_id=self.tokenizer.pad_token_id,
                **kw,
            )
        prompt_len = enc["input_ids"].shape[1]
        gen = out[:, prompt_len:].tolist()
        # the processor saw every token but the last; advance on it to learn the final states
        last = [row[-1] if row else -1 for row in gen]
        if proc.states:
            proc._advance(last)
        eos_set = set(eos)
        rows = []
        for r, ids in enumerate(gen):
            cut = next((i for i, t in enumerate(ids) if t in eos_set), len(ids))
            state = proc.states[r] if proc.states else ta.initial_state
            rows.append((ids[:cut], state, proc.errors.get(r)))
        return rows


_ENGINES: dict[str, Engine] = {}


def generate(spec: type[T] | dict[str, Any], prompt: Prompt, *, model: str | Engine | tuple[Any, Any],
             **kwargs: Any) -> T:
    """Convenience form: ``model`` is a hub id / local path (engine cached), an Engine, or (model, tokenizer)."""
    if isinstance(model, Engine):
        engine = model
    elif isinstance(model, tuple):
        engine = Engine(*model)
    else:
        cached = _ENGINES.get(model)
        if cached is None:
            cached = Engine.from_pretrained(model)
            _ENGINES[model] = cached
        engine = cached
    return engine.generate(spec, prompt, **kwargs)
