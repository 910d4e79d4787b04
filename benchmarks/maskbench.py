"""MaskBench harness: token-mask correctness and latency of JSON-schema engines.

Usage::

    python -m benchmarks.maskbench DATA --tokenizer TOKENIZER_DIR \\
        [--engine jsonmode] [--engine llguidance] [--engine xgrammar] [--engine outlines] \\
        [--sample N --seed S] [--timeout SECONDS] [--jobs J] [--isolate {fork,none}] [--json OUT.json]

``DATA`` is a directory of MaskBench ``*.json`` files or a ``.tar``/``.tar.xz`` of them (read in
place).  Each file is ``{"schema": ..., "tests": [{"valid": bool, "data": ...}, ...]}``.

Protocol (MaskBench, JSONSchemaBench arXiv 2501.10868), per schema file and engine:

* TTFM = ``engine.compile(schema)`` + the first ``mask()``.
* Each test: ``json.dumps(data, indent=None, ensure_ascii=False)``, tokenized without special
  tokens; for each token ``mask()`` (timed: TBM), check the token is in that mask, ``advance``.
  A valid test must be accepted at every token *and* end accepting (EOS allowed); an invalid one
  must be rejected at some token or not end accepting.
* Row status: ``pass`` | ``schema_error`` (the engine's explicit refusal) | ``compile_error``
  (any other exception out of compile) | ``crash`` (the worker died, or went over
  ``--max-rss-mb``) | ``runtime_error`` (an exception while matching; counted with crashes in
  the summary) | ``timeout`` | ``validation_error`` (a valid test rejected) |
  ``invalidation_error`` (an invalid test accepted; takes precedence, it is the worse kind).

Each engine runs in its own pool of ``--jobs`` spawned worker processes; a worker loads the
tokenizer and the engine once, warms the engine on one small schema (untimed), and is replaced
when it dies or stops answering.  With ``--isolate fork`` (the default where ``os.fork``
exists) the worker runs each schema in a child forked from itself: the child's peak RSS
(``peak_rss_mb``) is the worker's base (``base_rss_mb``) plus that schema alone, and no state
(caches, heap growth) carries over from one schema to the next; a timeout or ``--max-rss-mb``
kills the child, a child that dies without a row is a crash.  ``--isolate none`` runs the
schemas one after another in the worker itself (its RSS then carries earlier schemas' leftovers).
Rows also carry ``base_rss_mb`` (RSS when the schema's measurement starts), ``isolate``, the
minor page faults in TTFM and in the tests (``minflt_ttfm``, ``minflt_tests``) and, with fork,
``fork_ms`` (the ``os.fork()`` call), ``rewarm_ms`` and ``isolate_overhead_ms`` (the worker's
wall time per schema beyond the child's ``run_schema``).
With more than one job the workers share the CPU cores, so latencies carry some noise; use
``--jobs 1`` for the cleanest timings.  Garbage collection is off while a schema's tests run.

Engines are named ``jsonmode``, ``llguidance``, ``xgrammar``, ``outlines`` (see
:mod:`benchmarks._engines`) or given as ``module:callable`` (a factory
``factory(tokenizer_handle, **options)``); ``--option ENGINE.KEY=VALUE`` (VALUE parsed as JSON
when it can be) passes options to a factory.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import importlib.util
import io
import json
import math
import multiprocessing as mp
import os
import pickle
import random
import resource
import signal
import sys
import tarfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._engines import BUILTIN_ENGINES, EngineRefusal, EngineUnavailable

SUMMARY_KEYS = (
    "schemas",
    "passing",
    "schema_errors",
    "compile_errors",
    "crashes",
    "timeouts",
    "validation_errors",
    "invalidation_errors",
    "ttfm_p50_ms",
    "ttfm_p90_ms",
    "ttfm_p99_ms",
    "ttfm_max_ms",
    "tbm_mean_us",
    "tbm_p50_us",
    "tbm_p90_us",
    "tbm_p99_us",
    "tbm_p999_us",
    "tbm_max_us",
    "tokens",
    "peak_rss_mb_max",
)
LATENCY_KEYS = tuple(k for k in SUMMARY_KEYS if k.startswith(("ttfm_", "tbm_")))
COMPILED_STATUSES = ("pass", "validation_error", "invalidation_error", "runtime_error")
MAX_FAILURES_PER_ROW = 5


# =========================================================================== data


@dataclasses.dataclass(frozen=True)
class SchemaFile:
    name: str  # file name without directories, e.g. "Github_easy---o39515.json"
    raw: bytes

    @property
    def category(self) -> str:
        return category_of(self.name)

    def load(self) -> dict[str, Any]:
        return json.loads(self.raw)


def category_of(name: str) -> str:
    """``Github_easy---o1.json`` -> ``Github_easy``; ``BFCL_simple_3.json`` -> ``BFCL``; ``JME_7`` -> ``JME``.

    MaskBench names are ``<Dataset>---<id>.json`` except the BFCL and json-mode-eval sets
    (``BFCL_<split>_<n>``, ``JME_<n>``), which count as one category each.
    """
    base = Path(name).name
    if base.endswith(".json"):
        base = base[: -len(".json")]
    if "---" in base:
        return base.split("---", 1)[0]
    return base.split("_", 1)[0]


def read_dataset(path: str | os.PathLike[str]) -> list[SchemaFile]:
    """All ``*.json`` MaskBench files of a directory or a tar archive (any compression), sorted by name."""
    p = Path(path)
    files: list[SchemaFile] = []
    if p.is_dir():
        for f in sorted(p.rglob("*.json")):
            files.append(SchemaFile(f.name, f.read_bytes()))
    elif p.is_file() and tarfile.is_tarfile(p):
        # Stream it in one pass: random access into an .xz member list would re-decompress.
        with tarfile.open(p, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".json"):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        files.append(SchemaFile(Path(member.name).name, fh.read()))
    else:
        raise FileNotFoundError(f"{path}: not a directory or tar archive of MaskBench files")
    files.sort(key=lambda f: f.name)
    return files


def stratified_sample(files: Sequence[SchemaFile], n: int, seed: int) -> list[SchemaFile]:
    """``n`` files stratified by :func:`category_of`, deterministic for ``seed``.

    Each category gets a share proportional to its size (largest remainder), at least one file
    when ``n`` covers every category; files within a category are drawn uniformly.  The result
    is sorted by name, so it does not depend on the input order either.
    """
    ordered = sorted(files, key=lambda f: f.name)
    if n >= len(ordered):
        return list(ordered)
    if n <= 0:
        return []
    groups: dict[str, list[SchemaFile]] = defaultdict(list)
    for f in ordered:
        groups[f.category].append(f)
    cats = sorted(groups)
    rng = random.Random(seed)
    alloc = dict.fromkeys(cats, 0)
    if n < len(cats):
        for c in rng.sample(cats, n):
            alloc[c] = 1
    else:
        for c in cats:
            alloc[c] = 1
        rest = n - len(cats)
        spare = {c: len(groups[c]) - 1 for c in cats}
        total_spare = sum(spare.values())
        quotas = {c: rest * spare[c] / total_spare for c in cats}
        for c in cats:
            alloc[c] += math.floor(quotas[c])
        left = n - sum(alloc.values())
        by_remainder = sorted(cats, key=lambda c: (-(quotas[c] - math.floor(quotas[c])), c))
        i = 0
        while left > 0:
            c = by_remainder[i % len(cats)]
            if alloc[c] < len(groups[c]):
                alloc[c] += 1
                left -= 1
            i += 1
    picked: list[SchemaFile] = []
    for c in cats:
        picked.extend(rng.sample(groups[c], alloc[c]))
    return sorted(picked, key=lambda f: f.name)


# =========================================================================== tokenizer


class TokenizerHandle:
    """The benchmark's tokenizer: ``tokenizers.Tokenizer`` for encoding, ``transformers`` on demand.

    ``path`` is a folder with ``tokenizer.json`` (or the file itself).  ``.hf`` loads
    ``AutoTokenizer.from_pretrained(folder)`` lazily (engine adapters that need it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import tokenizers

        p = Path(path)
        self.dir = p.parent if p.is_file() else p
        self.file = p if p.is_file() else p / "tokenizer.json"
        self.raw = tokenizers.Tokenizer.from_file(str(self.file))
        self.vocab_size = int(self.raw.get_vocab_size(with_added_tokens=True))
        self._hf: Any = None

    @property
    def hf(self) -> Any:
        if self._hf is None:
            import transformers

            try:
                self._hf = transformers.AutoTokenizer.from_pretrained(str(self.dir))
            except Exception:
                self._hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(self.file))
        return self._hf

    def encode(self, text: str) -> list[int]:
        return list(self.raw.encode(text, add_special_tokens=False).ids)

    def piece(self, token_id: int) -> str:
        return self.raw.id_to_token(token_id) or f"<{token_id}>"

    @property
    def special_ids(self) -> set[int]:
        spec = json.loads(self.raw.to_str())
        return {a["id"] for a in spec.get("added_tokens") or [] if a.get("special")}

    @property
    def eos_token_id(self) -> int:
        eos = getattr(self.hf, "eos_token_id", None)
        if isinstance(eos, int):
            return eos
        return max(self.special_ids, default=self.vocab_size - 1)


# =========================================================================== engines


def resolve_engine(spec: str) -> tuple[str, Callable[..., Any]]:
    """Engine spec -> (display name, factory).  ``spec`` is a built-in name or ``module:callable``."""
    if spec in BUILTIN_ENGINES:
        target, name = BUILTIN_ENGINES[spec][0], spec
    elif ":" in spec:
        target, name = spec, ""
    else:
        raise ValueError(f"unknown engine {spec!r}: use one of {sorted(BUILTIN_ENGINES)} or module:callable")
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return name or str(getattr(factory, "name", attr)), factory


def engine_display_name(spec: str) -> str:
    if spec in BUILTIN_ENGINES or ":" not in spec:
        return spec
    try:
        return resolve_engine(spec)[0]
    except Exception:
        return spec.rpartition(":")[2]


def missing_reason(spec: str) -> str | None:
    """Why a built-in engine cannot run here (None: looks available; import errors surface later)."""
    if spec not in BUILTIN_ENGINES:
        return None
    _, module, hint = BUILTIN_ENGINES[spec]
    try:
        found = importlib.util.find_spec(module) is not None
    except Exception as e:  # a parent package that fails to import
        return f"{spec} not importable ({type(e).__name__}: {e}): {hint}"
    if not found:
        if spec == "jsonmode":
            return f"jsonmode engine missing: {module} not found ({hint})"
        return f"{spec} not installed: {hint}"
    return None


# =========================================================================== one schema


def _proc_status_mb(field: str, pid: int | str = "self") -> float | None:
    """A ``kB`` line of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``) in MB; None off Linux."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def _vm_rss_mb(pid: int | str = "self") -> float | None:
    return _proc_status_mb("VmRSS", pid)


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _rss_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_peak_mb(reset_ok: bool) -> float:
    if reset_ok:
        hwm = _proc_status_mb("VmHWM")
        if hwm is not None:
            return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _err(e: BaseException) -> str:
    msg = str(e).strip().replace("\n", " ")
    return f"{type(e).__name__}: {msg[:500]}" if msg else type(e).__name__


def run_schema(
    engine: Any, tok: TokenizerHandle, name: str, doc: dict[str, Any], engine_name: str
) -> dict[str, Any]:
    """Run the MaskBench protocol for one schema file on one engine (in the current process).

    Returns a row (see :func:`_new_row`) with ``tbm_us``: a float64 array of every mask time.
    """
    tests = doc.get("tests") or []
    row = _new_row(name, engine_name)
    row["tests"] = len(tests)
    row["valid_tests"] = sum(1 for t in tests if t.get("valid"))
    row["invalid_tests"] = row["tests"] - row["valid_tests"]
    encoded = [tok.encode(json.dumps(t.get("data"), indent=None, ensure_ascii=False)) for t in tests]
    rss_ok = _rss_reset()
    row["base_rss_mb"] = _vm_rss_mb()
    samples: list[int] = []
    gc.collect()
    flt0 = _minflt()
    t0 = time.perf_counter_ns()
    try:
        matcher = engine.compile(doc.get("schema"))
        t1 = time.perf_counter_ns()
        matcher.mask()
        t2 = time.perf_counter_ns()
        flt1 = _minflt()
    except EngineRefusal as e:
        row.update(status="schema_error", error=_err(e))
        row["peak_rss_mb"] = _rss_peak_mb(rss_ok)
        return row
    except Exception as e:
        row.update(status="compile_error", error=_err(e), traceback=traceback.format_exc(limit=8))
        row["peak_rss_mb"] = _rss_peak_mb(rss_ok)
        return row
    row["compile_ms"] = (t1 - t0) / 1e6
    row["ttfm_ms"] = (t2 - t0) / 1e6
    row["minflt_ttfm"] = flt1 - flt0
    clock = time.perf_counter_ns
    failures: list[dict[str, Any]] = row["failures"]
    gc.disable()
    try:
        for ti, (test, ids) in enumerate(zip(tests, encoded, strict=True)):
            valid = bool(test.get("valid"))
            matcher.reset()
            ok, reason = True, ""
            for k, t in enumerate(ids):
                a = clock()
                matcher.mask()
                b = clock()
                samples.append(b - a)
                if not matcher.allows(t):
                    ok, reason = False, f"token {k}/{len(ids)} {tok.piece(t)!r} ({t}) not in mask"
                    break
                if not matcher.advance(t):
                    row["mask_advance_mismatch"] += 1
                    extra = getattr(matcher, "error_message", lambda: "")()
                    ok = False
                    reason = f"token {k}/{len(ids)} {tok.piece(t)!r} ({t}) in mask but advance failed"
                    reason += f": {extra[:300]}" if extra else ""
                    break
            accepted = ok and bool(matcher.is_accepting())
            if ok and not accepted:
                reason = f"all {len(ids)} tokens accepted but not accepting at the end"
            if valid and not accepted:
                row["validation_errors"] += 1
            elif not valid and accepted:
                row["invalidation_errors"] += 1
                reason = f"invalid instance accepted ({len(ids)} tokens)"
            else:
                continue
            if len(failures) < MAX_FAILURES_PER_ROW:
                fail = {"test": ti, "valid": valid, "reason": reason}
                if not ok:  # the text accepted before the rejected token, for debugging
                    fail["before"] = tok.raw.decode(ids[:k], skip_special_tokens=False)[-80:]
                failures.append(fail)
    except Exception as e:
        row.update(status="runtime_error", error=_err(e), traceback=traceback.format_exc(limit=8))
    finally:
        gc.enable()
    row["minflt_tests"] = _minflt() - flt1
    if row["status"] != "runtime_error":
        if row["invalidation_errors"]:
            row["status"] = "invalidation_error"
        elif row["validation_errors"]:
            row["status"] = "validation_error"
        else:
            row["status"] = "pass"
    row["tbm_us"] = np.asarray(samples, dtype=np.float64) / 1000.0
    row["tokens"] = len(samples)
    row["peak_rss_mb"] = _rss_peak_mb(rss_ok)
    return row


def _new_row(name: str, engine_name: str) -> dict[str, Any]:
    return {
        "file": name,
        "category": category_of(name),
        "engine": engine_name,
        "status": "",
        "tests": 0,
        "valid_tests": 0,
        "invalid_tests": 0,
        "validation_errors": 0,
        "invalidation_errors": 0,
        "mask_advance_mismatch": 0,
        "compile_ms": None,
        "ttfm_ms": None,
        "tokens": 0,
        "peak_rss_mb": None,
        "base_rss_mb": None,
        "isolate": None,
        "error": None,
        "failures": [],
    }


# =========================================================================== workers


ISOLATE_MODES = ("fork", "none")


def fork_available() -> bool:
    """Whether ``--isolate fork`` can run here (POSIX ``os.fork``: Linux, macOS)."""
    return hasattr(os, "fork") and sys.platform != "win32"


def default_isolate() -> str:
    return "fork" if fork_available() else "none"


_WARM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "n": {"type": "number"},
        "b": {"type": "boolean"},
        "a": {"type": "array", "items": {"type": "string"}},
        "o": {"type": "object"},
    },
    "required": ["s"],
}
_WARM_DATA = {"s": "warm \u00e9", "i": -12, "n": 1.5e3, "b": True, "a": ["x", "y"], "o": {"k": None}}


def _warm_up(engine: Any, tok: TokenizerHandle) -> None:
    """One small schema through compile/mask/advance, untimed, before the first real schema.

    Lazy per-engine set-up (token tables built on first compile, imports, JIT) then lands in
    the worker once instead of in the first schema's TTFM -- or, with ``--isolate fork``, in
    every child, which starts from the worker's state.  Each fork child runs it once more,
    untimed, so that the copy-on-write faults of the common code paths (engine objects,
    interpreter state, the malloc heap numpy's temporaries reuse) are not in its timings;
    the whole walk, not just compile + first mask, measured best (jsonmode: ~100 ms/schema).
    Errors are ignored.
    """
    try:
        m = engine.compile(_WARM_SCHEMA)
        for t in tok.encode(json.dumps(_WARM_DATA, ensure_ascii=False)):
            m.mask()
            if not m.allows(t) or not m.advance(t):
                break
        m.is_accepting()
        m.reset()
        m.mask()
    except Exception:
        pass


class _ForkState:
    """The worker's current child (for its SIGTERM handler) and libc's ``prctl`` (Linux)."""

    child: int | None = None
    prctl: Any = None


def _on_sigterm(signum: int, frame: Any) -> None:
    # The worker is being stopped (timeout / --max-rss-mb / end of run): take the child along.
    pid = _ForkState.child
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
    os._exit(128 + signum)


def _child_init(parent: int) -> None:
    """First thing in a forked child: die with the worker (Linux ``PR_SET_PDEATHSIG``)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _ForkState.prctl is not None:
        _ForkState.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)


def _run_forked(
    conn: Any, engine: Any, tok: TokenizerHandle, file_name: str, doc: dict[str, Any], name: str
) -> dict[str, Any]:
    """:func:`run_schema` in a child made with ``os.fork()``; the row comes back over a pipe.

    The child starts as a copy-on-write image of the worker (engine loaded and warmed), so its
    peak RSS (VmHWM, reset by the kernel to the child's RSS at fork) is base + this schema, and
    nothing one schema leaves behind (caches, fragmentation) reaches the next.  A child that
    dies without a row (signal, ``os._exit``, crash in native code) gives a ``crash`` row.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    parent = os.getpid()
    t0 = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:  # ---- child: never returns
        code = 0
        try:
            _child_init(parent)
            os.close(rfd)
            conn.close()  # only the worker talks to the harness
            c0 = time.perf_counter_ns()
            # The child's first writes to pages it shares with the worker are copy-on-write
            # faults (5-10 us each on a VM); warming up again takes the common ones here, out
            # of the timed TTFM (it adds no state: the worker ran the same warm-up).
            _warm_up(engine, tok)
            w0 = time.perf_counter_ns()
            row = run_schema(engine, tok, file_name, doc, name)
            row["rewarm_ms"] = (w0 - c0) / 1e6
            row["child_ms"] = (time.perf_counter_ns() - w0) / 1e6
            data = pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(wfd, "wb") as f:
                f.write(data)
        except BaseException:
            code = 70
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    # ---- worker
    fork_ns = time.perf_counter_ns() - t0
    _ForkState.child = pid
    os.close(wfd)
    try:
        conn.send(("child", file_name, pid))
        chunks = []
        while True:
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
        _ForkState.child = None
    total_ms = (time.perf_counter_ns() - t0) / 1e6
    data = b"".join(chunks)
    row: dict[str, Any] | None = None
    if data:
        try:
            row = pickle.loads(data)
        except Exception:
            row = None
    if row is None:
        row = _new_row(file_name, name)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"killed by signal {sig} ({signal.Signals(sig).name})" if sig in _SIGNALS else f"killed by signal {sig}"
        else:
            how = f"exit code {os.waitstatus_to_exitcode(status)}"
        row.update(status="crash", error=f"schema child process died without a result ({how})")
    row["fork_ms"] = fork_ns / 1e6
    child_ms = row.pop("child_ms", None)
    if child_ms is not None:
        row["isolate_overhead_ms"] = max(0.0, total_ms - child_ms)
    return row


_SIGNALS = {int(s) for s in signal.Signals}


def _worker_main(
    conn: Any, spec: str, options: dict[str, Any], tokenizer_path: str, isolate: str = "none"
) -> None:
    fork = isolate == "fork" and fork_available()
    if fork:
        # Rust tokenizers warn (and can deadlock) when a process forks after their threads ran.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        tok = TokenizerHandle(tokenizer_path)
        name, factory = resolve_engine(spec)
        engine = factory(tok, **options)
    except EngineUnavailable as e:
        conn.send(("init_error", str(e), True))
        return
    except BaseException as e:  # reported to the parent
        conn.send(("init_error", f"{_err(e)}\n{traceback.format_exc(limit=8)}", False))
        return
    _warm_up(engine, tok)
    # Load-time objects out of the collector's way: cheaper collections in both modes, and
    # with fork no collection in a child touches (copies) the worker's pages for them.
    gc.collect()
    gc.freeze()
    if fork:
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _ForkState.prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                _ForkState.prctl = None
        signal.signal(signal.SIGTERM, _on_sigterm)
    conn.send(("ready", name))
    mode = "fork" if fork else "none"
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        file_name, raw = task
        try:
            doc = json.loads(raw)
        except ValueError as e:
            row = _new_row(file_name, name)
            row.update(status="compile_error", error=f"bad MaskBench file: {_err(e)}")
        else:
            if fork:
                row = _run_forked(conn, engine, tok, file_name, doc, name)
            else:
                row = run_schema(engine, tok, file_name, doc, name)
        row["isolate"] = mode
        conn.send(("result", row))


class EngineInitError(RuntimeError):
    def __init__(self, message: str, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


@dataclasses.dataclass
class _Worker:
    proc: Any
    conn: Any
    ready: bool = False
    task: SchemaFile | None = None
    started: float = 0.0
    child: int | None = None  # --isolate fork: the pid of the task's child, once the worker said
    draining: str | None = None  # a child killed by the harness: its worker's late row is dropped
    drain_deadline: float = 0.0


def run_engine(
    spec: str,
    files: Sequence[SchemaFile],
    tokenizer_path: str,
    *,
    jobs: int = 2,
    timeout: float = 60.0,
    options: dict[str, Any] | None = None,
    max_rss_mb: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    start_method: str = "spawn",
    isolate: str | None = None,
) -> list[dict[str, Any]]:
    """Run every file on one engine in a pool of worker processes; rows in file order.

    ``isolate="fork"`` (the default where ``os.fork`` exists): each schema runs in a child
    forked from its worker (see :func:`_run_forked`).  A timeout or ``max_rss_mb`` (watched on
    the child) kills that child and the worker carries on; a worker that does not answer within
    5 s after that, or any stuck worker with ``isolate="none"``, is killed and replaced.

    Raises :class:`EngineInitError` when the engine cannot start in a worker.
    """
    isolate = isolate or default_isolate()
    if isolate not in ISOLATE_MODES:
        raise ValueError(f"isolate={isolate!r}: expected one of {ISOLATE_MODES}")
    ctx = mp.get_context(start_method)
    name = engine_display_name(spec)
    pending = list(reversed(files))
    results: dict[str, dict[str, Any]] = {}
    workers: list[_Worker] = []
    init_deaths = 0

    def spawn() -> _Worker:
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=_worker_main, args=(child, spec, dict(options or {}), tokenizer_path, isolate), daemon=True
        )
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def kill_child(w: _Worker) -> None:
        if w.child:
            try:
                os.kill(w.child, signal.SIGKILL)
            except OSError:
                pass
            w.child = None

    def stop(w: _Worker) -> None:
        kill_child(w)  # the worker's SIGTERM handler / PR_SET_PDEATHSIG do it too
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join(2.0)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(2.0)
        w.conn.close()

    def fail(w: _Worker, status: str, error: str) -> None:
        assert w.task is not None
        row = _new_row(w.task.name, name)
        row.update(status=status, error=error, peak_rss_mb=None)
        results[w.task.name] = row
        w.task = None
        if progress:
            progress(name, len(results), len(files))

    def busy_count() -> int:
        return sum(1 for w in workers if w.task is not None)

    try:
        for _ in range(max(1, min(jobs, len(files)))):
            workers.append(spawn())
        while pending or busy_count():
            # dispatch
            for w in workers:
                if w.ready and w.task is None and w.draining is None and pending:
                    f = pending.pop()
                    w.task, w.started = f, time.monotonic()
                    w.conn.send((f.name, f.raw))
            now = time.monotonic()
            deadlines = [w.started + timeout - now for w in workers if w.task is not None]
            deadlines += [w.drain_deadline - now for w in workers if w.draining is not None]
            wait_s = max(0.0, min([0.5, *deadlines]))
            objs = [w.conn for w in workers] + [w.proc.sentinel for w in workers]
            mp_wait(objs, timeout=wait_s)
            replace: list[_Worker] = []
            for w in workers:
                dead = False
                try:
                    while w.conn.poll():
                        msg = w.conn.recv()
                        if msg[0] == "ready":
                            w.ready = True
                        elif msg[0] == "init_error":
                            raise EngineInitError(msg[1], bool(msg[2]))
                        elif msg[0] == "child":
                            if w.task is not None and msg[1] == w.task.name:
                                w.child = int(msg[2])
                        elif msg[0] == "result":
                            row = msg[1]
                            if w.task is not None and row["file"] == w.task.name:
                                results[row["file"]] = row
                                w.task, w.child = None, None
                                if progress:
                                    progress(name, len(results), len(files))
                            elif w.draining == row["file"]:  # the child we killed: already counted
                                w.draining = None
                except (EOFError, OSError, ConnectionError):
                    dead = True
                if dead or not w.proc.is_alive():
                    w.proc.join(1.0)
                    code = w.proc.exitcode
                    if w.task is not None:
                        fail(w, "crash", f"worker process died (exit code {code})")
                    elif not w.ready:
                        init_deaths += 1
                        if init_deaths >= 3:
                            raise EngineInitError(f"worker died during start-up (exit code {code})", False)
                    replace.append(w)
                elif w.task is not None:
                    over = None
                    if time.monotonic() - w.started > timeout:
                        over = ("timeout", f"no result within {timeout:g} s")
                    elif max_rss_mb and (_vm_rss_mb(w.child or w.proc.pid) or 0.0) > max_rss_mb:
                        who = "schema child" if w.child else "worker"
                        over = ("crash", f"{who} RSS over --max-rss-mb {max_rss_mb:g}")
                    if over is not None:
                        task_name, child = w.task.name, w.child
                        fail(w, *over)
                        if child:  # fork: kill the child only; the worker reports it and goes on
                            kill_child(w)
                            w.draining, w.drain_deadline = task_name, time.monotonic() + 5.0
                        else:
                            replace.append(w)
                elif w.draining is not None and time.monotonic() > w.drain_deadline:
                    replace.append(w)
            for w in replace:
                stop(w)
                workers.remove(w)
                if pending:
                    workers.append(spawn())
    finally:
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5.0
        for w in workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            stop(w)
    return [results[f.name] for f in files if f.name in results]


# =========================================================================== summary


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def row_tbm_stats(row: dict[str, Any]) -> dict[str, float | None]:
    s = row.get("tbm_us")
    arr = np.asarray(s if s is not None else [], dtype=np.float64)
    return {
        "tbm_mean_us": float(arr.mean()) if arr.size else None,
        "tbm_p50_us": _pct(arr, 50),
        "tbm_p90_us": _pct(arr, 90),
        "tbm_p99_us": _pct(arr, 99),
        "tbm_p999_us": _pct(arr, 99.9),
        "tbm_max_us": float(arr.max()) if arr.size else None,
    }


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-engine figures over all rows of one engine (keys: :data:`SUMMARY_KEYS`, plus extras)."""
    rows = list(rows)
    st = [r["status"] for r in rows]
    compiled = [r for r in rows if r["status"] in COMPILED_STATUSES]
    ttfm = np.asarray([r["ttfm_ms"] for r in compiled if r.get("ttfm_ms") is not None], dtype=np.float64)
    parts = [np.asarray(r["tbm_us"], dtype=np.float64) for r in rows if r.get("tbm_us") is not None]
    tbm = np.concatenate(parts) if parts else np.zeros(0)
    rss = np.asarray([r["peak_rss_mb"] for r in rows if r.get("peak_rss_mb") is not None], dtype=np.float64)
    out: dict[str, Any] = {
        "schemas": len(rows),
        "passing": st.count("pass"),
        "schema_errors": st.count("schema_error"),
        "compile_errors": st.count("compile_error"),
        "crashes": st.count("crash") + st.count("runtime_error"),
        "timeouts": st.count("timeout"),
        "validation_errors": sum(1 for r in compiled if r["validation_errors"]),
        "invalidation_errors": sum(1 for r in compiled if r["invalidation_errors"]),
        "ttfm_p50_ms": _pct(ttfm, 50),
        "ttfm_p90_ms": _pct(ttfm, 90),
        "ttfm_p99_ms": _pct(ttfm, 99),
        "ttfm_max_ms": float(ttfm.max()) if ttfm.size else None,
        **row_tbm_stats({"tbm_us": tbm}),
        "tokens": int(tbm.size),
        "peak_rss_mb_max": float(rss.max()) if rss.size else None,
    }
    assert tuple(out) == SUMMARY_KEYS
    return out


def _fmt(v: Any, key: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if key.endswith("_ratio"):
            return f"{v:.2f}x"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


_TABLE_ROWS: tuple[tuple[str, str], ...] = (
    ("schemas", "schemas"),
    ("passing", "passing"),
    ("schema_errors", "schema_errors (refused)"),
    ("compile_errors", "compile_errors (other exc.)"),
    ("crashes", "crashes"),
    ("timeouts", "timeouts"),
    ("validation_errors", "validation_errors (valid rejected)"),
    ("invalidation_errors", "invalidation_errors (invalid accepted)"),
    ("ttfm_p50_ms", "TTFM p50 (ms)"),
    ("ttfm_p90_ms", "TTFM p90 (ms)"),
    ("ttfm_p99_ms", "TTFM p99 (ms)"),
    ("ttfm_max_ms", "TTFM max (ms)"),
    ("tbm_mean_us", "TBM mean (µs)"),
    ("tbm_p50_us", "TBM p50 (µs)"),
    ("tbm_p90_us", "TBM p90 (µs)"),
    ("tbm_p99_us", "TBM p99 (µs)"),
    ("tbm_p999_us", "TBM p99.9 (µs)"),
    ("tbm_max_us", "TBM max (µs)"),
    ("tokens", "tokens"),
    ("peak_rss_mb_p50", "peak RSS p50 (MB)"),
    ("peak_rss_mb_max", "peak RSS max (MB)"),
    ("base_rss_mb_p50", "  base RSS p50 (MB)"),
    ("schema_rss_mb_max", "  peak - base max (MB)"),
)


def build_table(
    summaries: dict[str, dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    """Header and body of the side-by-side table (metrics x engines, then jsonmode/peer ratios).

    A ratio column ``jsonmode/PEER (N common)`` divides the latency figures of the two engines
    computed over the N schemas both compiled (so refusals/timeouts on one side do not skew it).
    """
    engines = list(summaries)
    extra: dict[str, dict[str, float | None]] = {}  # table-only memory figures (not in the summary)
    for e in engines:
        mine = [r for r in rows if r["engine"] == e and r.get("peak_rss_mb") is not None]
        rss = np.asarray([r["peak_rss_mb"] for r in mine], dtype=np.float64)
        base = np.asarray([r["base_rss_mb"] for r in mine if r.get("base_rss_mb") is not None], dtype=np.float64)
        grow = np.asarray(
            [r["peak_rss_mb"] - r["base_rss_mb"] for r in mine if r.get("base_rss_mb") is not None],
            dtype=np.float64,
        )
        extra[e] = {
            "peak_rss_mb_p50": _pct(rss, 50),
            "base_rss_mb_p50": _pct(base, 50),
            "schema_rss_mb_max": float(grow.max()) if grow.size else None,
        }
    ratio_pairs = [("jsonmode", p) for p in engines if p != "jsonmode"] if "jsonmode" in engines else []
    # Ratios compare like with like: only the schemas that both engines compiled.
    common: dict[tuple[str, str], tuple[int, dict[str, Any], dict[str, Any]]] = {}
    for a, b in ratio_pairs:
        ok = {
            e: {r["file"] for r in rows if r["engine"] == e and r["status"] in COMPILED_STATUSES}
            for e in (a, b)
        }
        both = ok[a] & ok[b]
        sa = summarize(r for r in rows if r["engine"] == a and r["file"] in both)
        sb = summarize(r for r in rows if r["engine"] == b and r["file"] in both)
        common[(a, b)] = (len(both), sa, sb)
    header = ["metric", *engines, *[f"{a}/{b} ({common[(a, b)][0]} common)" for a, b in ratio_pairs]]
    body: list[list[str]] = []
    for key, label in _TABLE_ROWS:
        line = [label]
        for e in engines:
            v = extra[e][key] if key in extra[e] else summaries[e].get(key)
            line.append(_fmt(v, key))
        for a, b in ratio_pairs:
            _, sa, sb = common[(a, b)]
            va, vb = sa.get(key), sb.get(key)
            if key in LATENCY_KEYS and va is not None and vb:
                line.append(f"{va / vb:.2f}x")
            else:
                line.append("")
        body.append(line)
    return header, body


def render_table(header: list[str], body: list[list[str]], *, title: str = "", plain: bool = False) -> str:
    if not plain:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            plain = True
    if not plain:
        table = Table(title=title or None)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for line in body:
            table.add_row(*line)
        buf = io.StringIO()
        Console(file=buf, width=max(100, 34 + 16 * (len(header) - 1)), force_terminal=False).print(table)
        return buf.getvalue()
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    lines = [title] if title else []
    lines.append(
        "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header))
    )
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(lines) + "\n"


def json_row(row: dict[str, Any], keep_samples: bool = False) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "tbm_us"}
    out.update(row_tbm_stats(row))
    if keep_samples and row.get("tbm_us") is not None:
        out["tbm_us"] = [round(float(x), 3) for x in row["tbm_us"]]
    return out


# =========================================================================== CLI


def _parse_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for item in items:
        head, sep, value = item.partition("=")
        engine, dot, key = head.partition(".")
        if not sep or not dot or not engine or not key:
            raise SystemExit(f"--option {item!r}: expected ENGINE.KEY=VALUE")
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        out[engine][key] = parsed
    return dict(out)


_DISTRIBUTIONS = {
    "jsonmode": "jsonmode",
    "llguidance": "llguidance",
    "xgrammar": "xgrammar",
    "outlines": "outlines-core",
}


def _versions(specs: Sequence[str]) -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for spec in specs:
        dist = _DISTRIBUTIONS.get(spec)
        if dist:
            try:
                out[spec] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[spec] = None
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.maskbench",
        description="MaskBench: per-token mask correctness and latency of JSON-schema engines.",
    )
    ap.add_argument("data", nargs="?", help="directory of MaskBench *.json files, or a .tar/.tar.xz of them")
    ap.add_argument("--tokenizer", help="tokenizer folder (with tokenizer.json); required unless --merge")
    ap.add_argument(
        "--shard", default=None, metavar="K/N",
        help="run only the K-th of N interleaved slices of the selected files (1-based); "
        "merge the slices' --json outputs (written with --json-samples) with --merge",
    )
    ap.add_argument(
        "--merge", nargs="+", default=None, metavar="RUN.json",
        help="no run: one table (and --json) from the rows of several runs, e.g. the shards of one run",
    )
    ap.add_argument(
        "--engine",
        action="append",
        dest="engines",
        metavar="ENGINE",
        help=f"engine to run (repeatable): {', '.join(BUILTIN_ENGINES)} or module:callable (default: jsonmode)",
    )
    ap.add_argument(
        "--sample", type=int, default=None, metavar="N", help="run N files stratified by category"
    )
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ap.add_argument("--filter", default=None, metavar="SUBSTR", help="only files whose name contains SUBSTR")
    ap.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per (schema, engine) task (default 60)"
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes per engine (default 2)",
    )
    ap.add_argument(
        "--max-rss-mb",
        type=float,
        default=8000.0,
        help="kill a schema's process (its fork child, or the worker with --isolate none) above this "
        "RSS (counted as crash; 0 = off)",
    )
    ap.add_argument(
        "--isolate",
        choices=ISOLATE_MODES,
        default=None,
        help="fork: each schema runs in a child forked from its worker (engine loaded and warmed), so "
        "peak RSS is base + that schema and no state carries over between schemas; none: in the "
        f"worker itself, one schema after another (default: {default_isolate()}; fork needs os.fork)",
    )
    ap.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="ENGINE.KEY=VALUE",
        help="engine option (VALUE as JSON if it parses)",
    )
    ap.add_argument(
        "--json", dest="json_out", default=None, metavar="OUT.json", help="write summary and per-file rows"
    )
    ap.add_argument("--json-samples", action="store_true", help="also write every TBM sample (µs) per row")
    ap.add_argument("--plain", action="store_true", help="plain-text table even when rich is installed")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    return ap


def _read_json(path: str | os.PathLike[str]) -> Any:
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    return json.loads(raw)


def _write_json(path: str | os.PathLike[str], payload: Any) -> None:
    data = json.dumps(payload, indent=None if str(path).endswith(".gz") else 1, ensure_ascii=False,
                      default=str).encode()
    if str(path).endswith(".gz"):
        import gzip

        data = gzip.compress(data)
    Path(path).write_bytes(data)


def merge_runs(paths: Sequence[str], *, json_out: str | None = None, plain: bool = False) -> int:
    """One table from several runs' rows (each run written with ``--json-samples``).

    Percentiles are recomputed from the pooled per-token samples, so the shards of one run
    give exactly the table the whole run would have printed.
    """
    runs = [_read_json(p) for p in paths]
    rows = [r for run in runs for r in run["rows"]]
    missing = [p for p, run in zip(paths, runs, strict=True)
               if any(r.get("tbm_us") is None and r.get("tbm_p50_us") is not None for r in run["rows"])]
    if missing:
        print(f"--merge needs runs written with --json-samples: {', '.join(missing)}", file=sys.stderr)
        return 2
    engines: list[str] = []
    for r in rows:
        if r["engine"] not in engines:
            engines.append(r["engine"])
    summaries = {e: summarize(r for r in rows if r["engine"] == e) for e in engines}
    files = {r["file"] for r in rows}
    header, body = build_table(summaries, rows)
    tok = Path(str(runs[0]["meta"].get("tokenizer", ""))).name
    print(render_table(header, body, title=f"MaskBench: {len(files)} schemas, tokenizer {tok} ({len(runs)} runs merged)",
                       plain=plain))
    if json_out:
        meta = dict(runs[0]["meta"])
        meta["merged_from"] = [str(p) for p in paths]
        meta["files"] = len(files)
        _write_json(json_out, {"summary": summaries, "rows": [json_row(r) for r in rows], "meta": meta})
        print(f"wrote {json_out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.merge:
        return merge_runs(args.merge, json_out=args.json_out, plain=args.plain)
    if not args.data or not args.tokenizer:
        parser.error("DATA and --tokenizer are required (unless --merge)")
    specs = args.engines or ["jsonmode"]
    options = _parse_options(args.option)
    files = read_dataset(args.data)
    if args.filter:
        files = [f for f in files if args.filter in f.name]
    if args.sample is not None:
        files = stratified_sample(files, args.sample, args.seed)
    if args.shard:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            parser.error(f"--shard {args.shard!r}: expected K/N with 1 <= K <= N")
        files = files[int(k) - 1 :: int(n)]
    if not files:
        print("no MaskBench files selected", file=sys.stderr)
        return 2
    cats = defaultdict(int)
    for f in files:
        cats[f.category] += 1
    no_tests = sum(1 for f in files if not f.load().get("tests"))
    note = " (timings share the CPU: use --jobs 1 for the cleanest latencies)" if args.jobs > 1 else ""
    isolate = args.isolate or default_isolate()
    isolate_note = ""
    if isolate == "fork" and not fork_available():
        isolate = "none"
        isolate_note = " (fork unavailable here: schemas run in the worker, peak RSS is the worker's)"
    elif isolate == "none":
        isolate_note = " (peak RSS includes what earlier schemas left in the worker)"
    print(
        f"{len(files)} files from {args.data} ({len(cats)} categories; {no_tests} without tests, "
        f"which pass when they compile); tokenizer {args.tokenizer}; jobs={args.jobs}{note}; "
        f"timeout={args.timeout:g}s; isolate={isolate}{isolate_note}",
        file=sys.stderr,
    )

    def progress(engine: str, done: int, total: int) -> None:
        if args.quiet:
            return
        step = max(1, total // 10)
        if done == total or done % step == 0:
            print(f"  [{engine}] {done}/{total}", file=sys.stderr, flush=True)

    all_rows: list[dict[str, Any]] = []
    summaries: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for spec in specs:
        name = engine_display_name(spec)
        reason = missing_reason(spec)
        if reason:
            print(reason, file=sys.stderr)
            skipped[name] = reason
            continue
        t0 = time.monotonic()
        try:
            rows = run_engine(
                spec,
                files,
                args.tokenizer,
                jobs=args.jobs,
                timeout=args.timeout,
                options=options.get(name, {}),
                max_rss_mb=args.max_rss_mb or None,
                progress=progress,
                isolate=isolate,
            )
        except EngineInitError as e:
            msg = str(e).strip()
            line = msg if e.missing else f"{name} failed to start: {msg}"
            print(line, file=sys.stderr)
            skipped[name] = line
            continue
        if not args.quiet:
            print(f"  [{name}] done in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        all_rows.extend(rows)
        summaries[name] = summarize(rows)

    if summaries:
        header, body = build_table(summaries, all_rows)
        title = f"MaskBench: {len(files)} schemas, tokenizer {Path(args.tokenizer).name}"
        print(render_table(header, body, title=title, plain=args.plain))
    else:
        print("no engine ran", file=sys.stderr)
    if args.json_out:
        payload = {
            "summary": summaries,
            "rows": [json_row(r, args.json_samples) for r in all_rows],
            "meta": {
                "data": str(args.data),
                "tokenizer": str(args.tokenizer),
                "engines": specs,
                "options": options,
                "sample": args.sample,
                "seed": args.seed,
                "shard": args.shard,
                "timeout_s": args.timeout,
                "jobs": args.jobs,
                "isolate": isolate,
                "isolate_requested": args.isolate or default_isolate(),
                "warmup": True,
                "files": len(files),
                "skipped": skipped,
                "versions": _versions(specs),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            },
        }
        _write_json(args.json_out, payload)
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0 if summaries else 1


if __name__ == "__main__":
    sys.exit(main())
