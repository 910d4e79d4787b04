"""Our own batched constrained decode loop (greedy or sampled), for ``Engine.generate_batch``.

:func:`decode_batch` prefills once (the very call HF ``generate`` makes), then decodes with
the automaton on the device (:mod:`jsonmode.gpu`): per step one masked argmax (or masked
sampling) and one state advance, no host round trip.  Rows stop at EOS individually but stay
in the batch (static shapes; their input becomes ``pad_id`` as in HF), and the loop ends when
every row is done (checked every ``check_every`` steps) or at ``max_new_tokens``.

Modes (``mode=``):

* ``"exact"`` -- static KV cache, and the decode step split into CUDA graphs around
  attention: one graph per layer boundary (o_proj + MLP of layer i, norms and q/k/v/rope of
  layer i+1), attention itself run eagerly with exactly the inputs HF ``generate`` gives it
  (the keys so far, HF's contiguous (B, 1, 1, L) mask).  Without padding that is the model's
  own attention function on views of the cache; on a left-padded batch HF's SDPA call gets a
  mask and ``repeat_kv``'d keys, so the cache is kept in that repeated layout and read in
  place (HF copies it every layer, every step).  Same kernels, same inputs, hence the same
  logits bit for bit -- checked on an H100 (B = 1, 32, 128, 96 tokens) with every row equal
  to HF ``generate`` + our processor.  Caveat: cuDNN attention, PyTorch 2.11's pick for some
  of these shapes on Hopper, is not run-to-run reproducible; HF ``generate`` then does not
  reproduce itself either (B >= 32), and "identical" holds under
  ``torch.nn.attention.sdpa_kernel`` without ``CUDNN_ATTENTION``.
* ``"fast"`` -- the whole step in one CUDA graph over a static cache of ``max_len`` keys
  with a padding mask (and GQA without materialising repeated K/V).  Fastest (about 1.2x
  ``"exact"`` at batch 128); its attention sums in another order than HF's, so logits
  differ in the last bits and greedy outputs drift apart at near-ties.
* ``"eager"`` -- the model's own forward with a dynamic cache, step by step (any
  architecture); only the constraint work is ours.
* ``"auto"`` -- ``"exact"`` for supported architectures (Llama, Mistral, Qwen2/3 with full
  attention; ``sdpa`` or ``eager`` attention), else ``"eager"``.

On CPU the same code runs without graphs (the CI tests compare it with HF ``generate`` +
:class:`~jsonmode.processor.JsonLogitsProcessor`).
"""

from __future__ import annotations

import math
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from . import kernels
from .automaton import TokenAutomaton
from .gpu import DeviceAutomaton, device_automaton
from .processor import ERROR, FINISHED

__all__ = ["decode_batch", "supported_mode", "clear_runners"]

Row = tuple[list[int], int, str | None]

_SUPPORTED_TYPES = {"llama", "mistral", "qwen2", "qwen3"}


# ---------------------------------------------------------------------- model adapter


def _attn_impl(model: Any) -> str:
    cfg = model.config
    impl = getattr(cfg, "_attn_implementation", None) or "eager"
    return str(impl)


def supported_mode(model: Any, mode: str = "auto") -> str:
    """The mode :func:`decode_batch` will actually use for ``model``."""
    if mode == "eager":
        return "eager"
    cfg = getattr(model, "config", None)
    mt = getattr(cfg, "model_type", None)
    ok = (
        mt in _SUPPORTED_TYPES
        and all(hasattr(model, a) for a in ("model", "lm_head"))
        and all(hasattr(model.model, a) for a in ("layers", "rotary_emb", "embed_tokens", "norm"))
        and _attn_impl(model) in ("sdpa", "eager")
        and all(t == "full_attention" for t in (getattr(cfg, "layer_types", None) or ["full_attention"]))
        and not (mt == "mistral" and getattr(cfg, "sliding_window", None))
        and not (mt in ("qwen2", "qwen3") and getattr(cfg, "use_sliding_window", False))
    )
    if not ok:
        return "eager"
    if mode == "auto":
        return "exact"
    if mode in ("exact", "fast"):
        return mode
    raise ValueError(f"mode must be 'auto', 'exact', 'fast' or 'eager', not {mode!r}")


class _Llama:
    """The decode step of a Llama-style decoder, piece by piece (same modules, same ops as HF)."""

    def __init__(self, model: Any) -> None:
        cfg = model.config
        m = model.model
        self.model = model
        self.embed = m.embed_tokens
        self.rope = m.rotary_emb
        self.layers = list(m.layers[: cfg.num_hidden_layers])
        self.norm = m.norm
        self.head = model.lm_head
        a0 = self.layers[0].self_attn
        self.apply_rope = sys.modules[type(a0).__module__].apply_rotary_pos_emb
        self.head_dim = a0.head_dim
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.groups = self.n_heads // self.n_kv
        self.scaling = a0.scaling
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        mod = sys.modules[type(a0).__module__]
        default = getattr(mod, "eager_attention_forward", None)
        impl = _attn_impl(model)
        attn_fn: Callable[..., Any] | None  # None: eager asked of a module without eager_attention_forward
        if hasattr(ALL_ATTENTION_FUNCTIONS, "get_interface"):
            # transformers types the default Callable; it is dict.get's default there, so None passes through
            attn_fn = ALL_ATTENTION_FUNCTIONS.get_interface(impl, default)  # type: ignore[arg-type]
        else:
            attn_fn = default if impl == "eager" else ALL_ATTENTION_FUNCTIONS[impl]
        self.attn_fn = attn_fn
        self.impl = impl

    @staticmethod
    def groups_of(model: Any) -> int:
        cfg = model.config
        return int(cfg.num_attention_heads // (getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads))

    def pre(self, i: int, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
            cache_pos: torch.Tensor, repeated: bool = False) -> torch.Tensor:
        layer = self.layers[i]
        a = layer.self_attn
        x = layer.input_layernorm(h)
        shape = (*x.shape[:-1], -1, self.head_dim)
        if hasattr(a, "q_norm"):
            q = a.q_norm(a.q_proj(x).view(shape)).transpose(1, 2)
            k = a.k_norm(a.k_proj(x).view(shape)).transpose(1, 2)
        else:
            q = a.q_proj(x).view(shape).transpose(1, 2)
            k = a.k_proj(x).view(shape).transpose(1, 2)
        v = a.v_proj(x).view(shape).transpose(1, 2)
        q, k = self.apply_rope(q, k, cos, sin)
        if repeated:  # cache kept in repeat_kv layout (B, H, L, D): the keys HF's masked SDPA call sees
            k, v = self.repeat(k), self.repeat(v)
        K.index_copy_(2, cache_pos, k)
        V.index_copy_(2, cache_pos, v)
        return q

    def repeat(self, x: torch.Tensor) -> torch.Tensor:
        """transformers' ``repeat_kv``: (B, Hkv, L, D) -> (B, H, L, D)."""
        if self.groups == 1:
            return x
        B, Hkv, L, D = x.shape
        return x[:, :, None, :, :].expand(B, Hkv, self.groups, L, D).reshape(B, Hkv * self.groups, L, D)

    def repeated_sdpa(self, q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                      mask: torch.Tensor | None) -> torch.Tensor:
        """transformers' ``sdpa_attention_forward`` with a mask, minus its per-call ``repeat_kv`` copy."""
        out = F.scaled_dot_product_attention(q, K, V, attn_mask=mask, dropout_p=0.0, scale=self.scaling,
                                             is_causal=False)
        return out.transpose(1, 2).contiguous()

    def post(self, i: int, h: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """``attn``: (B, 1, H, D) as the attention function returns it."""
        layer = self.layers[i]
        o = layer.self_attn.o_proj(attn.reshape(*attn.shape[:2], -1).contiguous())
        h = h + o
        x = layer.post_attention_layernorm(h)
        x = layer.mlp(x)
        return h + x

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(h)
        return self.head(h[:, -1:, :])[:, -1]

    def exact_attention(self, i: int, q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, mask: torch.Tensor | None,
                        pos: torch.Tensor) -> torch.Tensor:
        a = self.layers[i].self_attn
        fn = self.attn_fn
        assert fn is not None  # the modules of _SUPPORTED_TYPES all define eager_attention_forward
        out, _ = fn(a, q, K, V, mask, dropout=0.0, scaling=a.scaling, position_ids=pos, use_cache=True)
        return out

    def fast_attention(self, q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """GQA without repeat_kv: the g query heads sharing a KV head act as g queries of it."""
        B = q.shape[0]
        qg = q.reshape(B, self.n_kv, self.groups, self.head_dim)
        o = F.scaled_dot_product_attention(qg, K, V, attn_mask=bias, scale=self.scaling)
        return o.reshape(B, 1, self.n_heads, self.head_dim)


# ---------------------------------------------------------------------- static runners


class _Runner:
    """Static buffers (+ CUDA graphs) of one (model, mode, batch, max_len)."""

    def __init__(self, model: Any, mode: str, B: int, max_len: int, use_graphs: bool, repeated: bool = False) -> None:
        self.net = _Llama(model)
        self.repeated = repeated
        self.mode = mode
        self.B = B
        self.max_len = max_len
        p = next(model.parameters())
        dev, dt = p.device, p.dtype
        self.device, self.dtype = dev, dt
        n = len(self.net.layers)
        shape = (B, self.net.n_heads if repeated else self.net.n_kv, max_len, self.net.head_dim)
        self.K = [torch.zeros(shape, dtype=dt, device=dev) for _ in range(n)]
        self.V = [torch.zeros(shape, dtype=dt, device=dev) for _ in range(n)]
        self.tok = torch.zeros(B, dtype=torch.long, device=dev)
        self.pos = torch.zeros((B, 1), dtype=torch.long, device=dev)
        self.cache_pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.step_t = torch.zeros(1, dtype=torch.long, device=dev)
        # fast mode: additive bias over max_len keys; exact mode: HF's mask, sliced per step
        self.bias = torch.full((B, 1, 1, max_len), float("-inf"), dtype=dt, device=dev)
        self.mask_full: torch.Tensor | None = None
        self.attn_buf = [torch.zeros((B, 1, self.net.n_heads, self.net.head_dim), dtype=dt, device=dev)
                         for _ in range(n)] if mode == "exact" else []
        self.use_graphs = use_graphs and dev.type == "cuda"
        self.graphs: list[torch.cuda.CUDAGraph] = []
        self.captured = False
        self.capture_s = 0.0
        self.prompt_len = 0
        self.t = 0  # steps run since load()
        self._outs: dict[str, Any] = {}
        self.q_of: list[Any] = [None] * n

    # -------------------------------------------------------------- pieces

    def _head_piece(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        self.step_t.add_(1)
        h = self.net.embed(self.tok[:, None])
        cos, sin = self.net.rope(h, self.pos)
        return h, cos, sin, self.net.pre(0, h, cos, sin, self.K[0], self.V[0], self.cache_pos, self.repeated)

    def _tail_bump(self) -> None:
        self.pos.add_(1)
        self.cache_pos.add_(1)

    def _fast_body(self) -> torch.Tensor:
        self.bias.index_fill_(3, self.cache_pos, 0.0)
        h, cos, sin, q = self._head_piece()
        net = self.net
        n = len(net.layers)
        for i in range(n):
            if i:
                q = net.pre(i, h, cos, sin, self.K[i], self.V[i], self.cache_pos)
            attn = net.fast_attention(q, self.K[i], self.V[i], self.bias)
            h = net.post(i, h, attn)
        logits = net.logits(h)
        self._tail_bump()
        return logits

    # exact mode: graph 0 = head + pre(0); graph i (1..n-1) = post(i-1) + pre(i); graph n = post(n-1) + logits
    def _exact_piece(self, k: int) -> None:
        net = self.net
        n = len(net.layers)
        o = self._outs
        if k == 0:
            h, cos, sin, q = self._head_piece()
            o["h"], o["cos"], o["sin"] = h, cos, sin
            self.q_of[0] = q
            return
        h = net.post(k - 1, o["h"], self.attn_buf[k - 1])
        if k < n:
            self.q_of[k] = net.pre(k, h, o["cos"], o["sin"], self.K[k], self.V[k], self.cache_pos, self.repeated)
            o["h"] = h
        else:
            o["logits"] = net.logits(h)
            self._tail_bump()

    def _step_mask(self, L: int) -> torch.Tensor | None:
        """HF's decode-step mask: a fresh contiguous (B, 1, 1, L) tensor (layout matters to some kernels)."""
        return None if self.mask_full is None else self.mask_full[..., :L].contiguous()

    def _exact_attend(self, i: int, L: int, mask: torch.Tensor | None) -> None:
        K, V = self.K[i][:, :, :L], self.V[i][:, :, :L]
        if self.repeated:
            out = self.net.repeated_sdpa(self.q_of[i], K, V, mask)
        else:
            out = self.net.exact_attention(i, self.q_of[i], K, V, mask, self.pos)
        self.attn_buf[i].copy_(out)

    # -------------------------------------------------------------- capture

    def _capture(self) -> None:
        t0 = time.perf_counter()
        saved = (self.pos.clone(), self.cache_pos.clone(), self.step_t.clone(), self.tok.clone(), self.bias.clone())
        scratch = self.max_len - 1  # warm-up writes K/V here; overwritten (or masked) later
        n = len(self.net.layers)
        s = torch.cuda.Stream(device=self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(s):
            for _ in range(2):
                self.cache_pos.fill_(scratch)
                if self.mode == "fast":
                    self._fast_body()
                else:
                    mask = self._step_mask(self.max_len)
                    for k in range(n + 1):
                        if k:
                            self._exact_attend(k - 1, self.max_len, mask)
                        self._exact_piece(k)
        torch.cuda.current_stream(self.device).wait_stream(s)
        torch.cuda.synchronize(self.device)
        self.cache_pos.fill_(scratch)
        pool = torch.cuda.graph_pool_handle()
        if self.mode == "fast":
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool):
                self._outs["logits"] = self._fast_body()
            self.graphs = [g]
        else:
            self.graphs = []
            for k in range(n + 1):
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, pool=pool):
                    self._exact_piece(k)
                self.graphs.append(g)
        torch.cuda.synchronize(self.device)
        pos, cp, st, tok, bias = saved
        self.pos.copy_(pos)
        self.cache_pos.copy_(cp)
        self.step_t.copy_(st)
        self.tok.copy_(tok)
        self.bias.copy_(bias)
        self.captured = True
        self.capture_s = time.perf_counter() - t0

    # -------------------------------------------------------------- greedy tail as a graph

    def select_buffers(self) -> tuple[torch.Tensor, ...]:
        if not hasattr(self, "_sel_bufs"):
            B, dev = self.B, self.device
            self._sel_bufs = (
                torch.zeros(B, dtype=torch.int32, device=dev),  # states
                torch.full((B,), -1, dtype=torch.int32, device=dev),  # err_tok
                torch.full((B,), -1, dtype=torch.int32, device=dev),  # err_state
                torch.zeros(B, dtype=torch.int8, device=dev),  # done
                torch.zeros((B, self.max_len), dtype=torch.long, device=dev),  # out
            )
            self._sel_graphs: OrderedDict = OrderedDict()
        return self._sel_bufs

    def select_graph(self, da: DeviceAutomaton, pad_id: int, eos: tuple[int, ...]) -> torch.cuda.CUDAGraph:
        """Masked argmax + done/pad + store + advance for ``da``, captured once (reads the forward's logits)."""
        states, et, es, done, out = self.select_buffers()
        key = (id(da), pad_id, eos)
        hit = self._sel_graphs.get(key)
        if hit is not None and hit[0] is da:
            self._sel_graphs.move_to_end(key)
            return hit[2]
        eos_t = torch.tensor(eos, dtype=torch.long, device=self.device)
        logits = self._outs["logits"]

        def tail() -> None:
            kernels.select_advance(logits, states, da.row_of, da.masks, done, self.tok, out, self.step_t, pad_id,
                                   eos_t, da.tables, et, es, use_triton=True)

        saved = (self.tok.clone(), self.step_t.clone())
        states.fill_(da.automaton.initial_state)
        s = torch.cuda.Stream(device=self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(s):
            tail()  # compiles the kernels, allocates their scratch outside the capture
        torch.cuda.current_stream(self.device).wait_stream(s)
        torch.cuda.synchronize(self.device)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            tail()
        torch.cuda.synchronize(self.device)
        self.tok.copy_(saved[0])
        self.step_t.copy_(saved[1])
        self._sel_graphs[key] = (da, eos_t, g)
        while len(self._sel_graphs) > 8:
            self._sel_graphs.popitem(last=False)
        return g

    # -------------------------------------------------------------- use

    def load(self, cache: Any, attention_mask: torch.Tensor, next_pos: torch.Tensor, impl: str) -> None:
        """Copy the prefill's dynamic cache in; set masks, positions, counters."""
        P = attention_mask.shape[1]
        self.prompt_len = P
        for i in range(len(self.net.layers)):
            k, v = _layer_kv(cache, i)
            if self.repeated:
                k, v = self.net.repeat(k), self.net.repeat(v)
            self.K[i][:, :, :P].copy_(k)
            self.V[i][:, :, :P].copy_(v)
        am = torch.ones((self.B, self.max_len), dtype=torch.bool, device=self.device)
        am[:, :P] = attention_mask.bool()
        if self.mode == "fast":
            self.bias.fill_(float("-inf"))
            self.bias[:, 0, 0, :P].masked_fill_(attention_mask.bool(), 0.0)
        else:
            if impl == "sdpa" and bool(attention_mask.bool().all()):
                self.mask_full = None  # HF: no padding -> no mask (q_len 1), SDPA flash / GQA path
            elif impl == "sdpa":
                self.mask_full = am[:, None, None, :]
            else:  # eager attention: additive float mask
                zero = torch.zeros((), dtype=self.dtype, device=self.device)
                self.mask_full = torch.where(am, zero, torch.finfo(self.dtype).min)[:, None, None, :]
        self.pos.copy_(next_pos)
        self.cache_pos.fill_(P)
        self.step_t.zero_()
        self.t = 0
        if self.use_graphs and not self.captured:
            try:
                self._capture()
            except Exception as e:  # noqa: BLE001 - capture refused (an op that syncs, a custom kernel...)
                warnings.warn(f"jsonmode.decode: CUDA graph capture failed ({type(e).__name__}: {e}); "
                              "running the step eagerly", RuntimeWarning, stacklevel=3)
                torch.cuda.synchronize(self.device)
                self.use_graphs = False
                self.graphs = []
                self.pos.copy_(next_pos)
                self.cache_pos.fill_(P)
                self.step_t.zero_()

    def forward(self) -> torch.Tensor:
        """Logits (B, V) of ``self.tok`` at the next position; advances positions."""
        L = self.prompt_len + self.t + 1  # keys after this step's K/V is written
        n = len(self.net.layers)
        if self.mode == "fast":
            if self.use_graphs:
                self.graphs[0].replay()
                logits = self._outs["logits"]
            else:
                logits = self._fast_body()
        else:
            mask = self._step_mask(L)
            for k in range(n + 1):
                if k:
                    self._exact_attend(k - 1, L, mask)
                if self.use_graphs:
                    self.graphs[k].replay()
                else:
                    self._exact_piece(k)
            logits = self._outs["logits"]
        self.t += 1
        return logits


def _layer_kv(cache: Any, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return layers[i].keys, layers[i].values
    return cache.key_cache[i], cache.value_cache[i]  # transformers 4.x


_RUNNERS: weakref.WeakKeyDictionary[Any, OrderedDict] = weakref.WeakKeyDictionary()
_RUNNERS_LOCK = threading.Lock()
_MAX_RUNNERS = 1  # static caches are big: keep one per model and mode


def clear_runners(model: Any | None = None) -> None:
    with _RUNNERS_LOCK:
        if model is None:
            _RUNNERS.clear()
        else:
            _RUNNERS.pop(model, None)


def _runner(model: Any, mode: str, B: int, need: int, use_graphs: bool, repeated: bool = False) -> _Runner:
    gran = 64 if mode == "fast" else 128
    max_len = int(math.ceil(need / gran) * gran)
    key = (mode, B, max_len, use_graphs, repeated)
    with _RUNNERS_LOCK:
        per = _RUNNERS.setdefault(model, OrderedDict())
        r = per.get(key)
        if r is not None:
            per.move_to_end(key)
            return r
        for k in [k for k in per if k[0] == mode]:
            del per[k]
    r = _Runner(model, mode, B, max_len, use_graphs, repeated)
    with _RUNNERS_LOCK:
        per[key] = r
        while sum(1 for k in per if k[0] == mode) > _MAX_RUNNERS:
            per.popitem(last=False)
    return r


# ---------------------------------------------------------------------- the loop


def _prefill(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[Any, torch.Tensor, Any]:
    """Exactly HF ``generate``'s first forward: same inputs, a fresh dynamic cache, last logits only."""
    from transformers import DynamicCache

    prep = getattr(model, "_prepare_position_ids_for_generation", None)
    if prep is not None:
        pos = prep(input_ids, {"attention_mask": attention_mask})
    else:
        pos = attention_mask.long().cumsum(-1) - 1
        pos = pos.masked_fill(attention_mask == 0, 1)
    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # older transformers
        cache = DynamicCache()
    out = model(input_ids=input_ids.clone(memory_format=torch.contiguous_format), attention_mask=attention_mask,
                position_ids=pos, past_key_values=cache, use_cache=True, logits_to_keep=1, return_dict=True)
    return out.past_key_values, out.logits[:, -1], pos


def _warpers(temperature: float, top_p: float) -> list[Any]:
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    w: list[Any] = []
    if temperature != 1.0:
        w.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        w.append(TopPLogitsWarper(top_p))
    return w


def decode_batch(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    automaton: TokenAutomaton,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    eos_ids: Sequence[int],
    pad_id: int,
    mode: str = "auto",
    cuda_graphs: bool = True,
    check_every: int = 8,
    stats: dict[str, Any] | None = None,
) -> list[Row]:
    """Constrained decoding of a left-padded batch; one ``(generated ids without EOS, final state, error)`` per row.

    The row format is ``Engine._decode``'s: ``final state`` is
    :data:`~jsonmode.processor.FINISHED` after an accepted EOS,
    :data:`~jsonmode.processor.ERROR` after a rejected token (``error`` says which), else the
    automaton state where the budget ran out.  Greedy (``temperature == 0``) output equals HF
    ``generate`` + :class:`~jsonmode.processor.JsonLogitsProcessor` token for token in
    ``"exact"`` and ``"eager"`` modes (see the module doc for the cuDNN caveat); sampling draws
    through the same warpers, in HF's order (constraint first, then temperature, then top-p),
    with the same RNG calls, so a seeded run matches HF's too.

    Static buffers and CUDA graphs are cached per (model, mode, batch, length bucket) -- one
    entry per mode; :func:`clear_runners` frees them (the exact mode's repeated-layout cache
    of a padded batch of 128 is about 26 GB for the Llama-3-8B shape).
    """
    t_start = time.perf_counter()
    if input_ids.dim() != 2:
        raise ValueError("input_ids must be (batch, prompt_len)")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    B, P = input_ids.shape
    dev = input_ids.device
    run_mode = supported_mode(model, mode)
    da: DeviceAutomaton = device_automaton(automaton, dev)
    host_fallback = not da.complete
    sample = temperature > 0
    warpers = _warpers(temperature, top_p) if sample else []
    if seed is not None:
        torch.manual_seed(seed)
    eos_t = torch.tensor(sorted({int(e) for e in eos_ids}), dtype=torch.long, device=dev)
    use_triton = kernels.triton_enabled(dev)

    host_states = [automaton.initial_state] * B  # host-fallback path only
    host_err: dict[int, str] = {}

    with torch.inference_mode():
        cache, logits, pos = _prefill(model, input_ids, attention_mask)
        t_prefill = time.perf_counter()
        next_pos = pos[:, -1:] + 1
        runner: _Runner | None = None
        if run_mode in ("exact", "fast") and max_new_tokens > 1:
            # exact mode on a left-padded batch: HF's SDPA call gets a mask and repeat_kv'd keys; keep the
            # cache in that layout so each step reads it in place instead of copying it (4x for GQA 4)
            padded = not bool(attention_mask.bool().all())
            repeated = run_mode == "exact" and padded and _attn_impl(model) == "sdpa" and _Llama.groups_of(model) > 1
            runner = _runner(model, run_mode, B, P + max_new_tokens, cuda_graphs, repeated)
            fresh = runner.use_graphs and not runner.captured
            runner.load(cache, attention_mask, next_pos, _attn_impl(model))
            del cache
            cache = None
            tok, step_t = runner.tok, runner.step_t
        else:
            fresh = False
            tok = torch.zeros(B, dtype=torch.long, device=dev)
            step_t = torch.zeros(1, dtype=torch.long, device=dev)
            am = attention_mask
        sel_graph = None
        if runner is not None and runner.use_graphs and use_triton and not sample and not host_fallback:
            eos_key = tuple(sorted({int(e) for e in eos_ids}))
            sel_graph = runner.select_graph(da, pad_id, eos_key)
            states, err_tok, err_state, done, out = runner.select_buffers()
            states.fill_(automaton.initial_state)
            err_tok.fill_(-1)
            err_state.fill_(-1)
            done.zero_()
            step_t.zero_()
        else:
            states = da.initial_states(B)
            err_tok = torch.full((B,), -1, dtype=torch.int32, device=dev)
            err_state = torch.full((B,), -1, dtype=torch.int32, device=dev)
            done = torch.zeros(B, dtype=torch.int8, device=dev)
            out = torch.full((B, max(max_new_tokens, 1)), pad_id, dtype=torch.long, device=dev)
        t_ready = time.perf_counter()

        def select(lg: torch.Tensor) -> None:
            nonlocal host_states
            if sel_graph is not None:
                assert runner is not None  # the select graph is the runner's
                static = runner._outs["logits"]
                if lg is not static:
                    static.copy_(lg)
                sel_graph.replay()
                return
            if host_fallback:
                host_states = _host_select(lg, host_states, host_err, da, done, tok, out, step_t, pad_id, eos_t,
                                           warpers, sample)
                return
            if not sample:
                kernels.select_advance(lg, states, da.row_of, da.masks, done, tok, out, step_t, pad_id, eos_t,
                                       da.tables, err_tok, err_state,
                                       None if use_triton else da.banned_table(lg.shape[1]), use_triton=use_triton)
                return
            scores = lg.float()
            da.fill_(scores, states)
            nxt = _sample(scores, warpers)
            kernels.finish_tokens(nxt, states, done, tok, out, step_t, pad_id, eos_t, da.tables, err_tok, err_state,
                                  use_triton=use_triton)

        select(logits)
        steps = 1
        for t in range(1, max_new_tokens):
            if check_every and t % check_every == 0 and bool((done != 0).all()):
                break
            if runner is not None:
                logits = runner.forward()
            else:
                step_t.add_(1)
                am = torch.cat([am, am.new_ones((B, 1))], dim=-1)
                o = model(input_ids=tok[:, None].clone(), attention_mask=am, position_ids=next_pos,
                          past_key_values=cache, use_cache=True, logits_to_keep=1, return_dict=True)
                cache = o.past_key_values
                logits = o.logits[:, -1]
                next_pos = next_pos + 1
            select(logits)
            steps += 1
            if host_fallback and bool((done != 0).all()):
                break
        gen = out[:, :steps].tolist()
        if host_fallback:
            final = list(host_states)
            errs = dict(host_err)
        else:
            fin_states = states.tolist()
            et, es = err_tok.tolist(), err_state.tolist()
            final = [da.host_state(s) for s in fin_states]
            errs = {r: f"token {et[r]} not allowed in state {es[r]}" for r, s in enumerate(fin_states) if s == da.dead}
    eos_set = {int(e) for e in eos_ids}
    rows: list[Row] = []
    for r, ids in enumerate(gen):
        cut = next((i for i, tk in enumerate(ids) if tk in eos_set), len(ids))
        rows.append((ids[:cut], final[r], errs.get(r)))
    if stats is not None:
        t_end = time.perf_counter()
        stats.update(mode=run_mode, steps=steps, prefill_s=t_prefill - t_start, setup_s=t_ready - t_prefill,
                     capture_s=runner.capture_s if runner is not None and fresh else 0.0, total_s=t_end - t_start, triton=use_triton,
                     select_graph=sel_graph is not None,
                     repeated_kv=bool(runner is not None and runner.repeated),
                     host_fallback=host_fallback, graphs=bool(runner is not None and runner.use_graphs))
    return rows


def _sample(scores: torch.Tensor, warpers: list[Any]) -> torch.Tensor:
    for w in warpers:
        scores = w(None, scores)
    probs = F.softmax(scores, dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)


def _host_select(lg: torch.Tensor, host_states: list[int], host_err: dict[int, str], da: DeviceAutomaton,
                 done: torch.Tensor, tok: torch.Tensor, out: torch.Tensor, step_t: torch.Tensor, pad_id: int,
                 eos_t: torch.Tensor, warpers: list[Any], sample: bool) -> list[int]:
    """Automaton too big to mirror: states on the host, rows uploaded on demand (one sync per step)."""
    ta = da.automaton
    scores = lg.float()
    rows = da.rows_for_host_states(host_states)
    da.fill_rows_(scores, rows)
    nxt = _sample(scores, warpers) if sample else torch.argmax(scores, dim=-1)
    d = done != 0
    nxt = torch.where(d, torch.full_like(nxt, pad_id), nxt)
    out.index_copy_(1, step_t.view(1), nxt.view(-1, 1))
    tok.copy_(nxt)
    done.copy_((d | torch.isin(nxt, eos_t)).to(done.dtype))
    eos = {int(e) for e in ta.eos_ids.tolist()}
    new = list(host_states)
    for r, t in enumerate(nxt.tolist()):
        s = new[r]
        if s < 0:
            continue
        if t in eos and ta.is_accepting(s):
            new[r] = FINISHED
            continue
        n = ta.advance(s, t)
        if n < 0:
            host_err[r] = f"token {t} not allowed in state {s}"
            new[r] = ERROR
        else:
            new[r] = n
    return new
