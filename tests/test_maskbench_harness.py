"""Fast tests of the MaskBench harness (benchmarks/maskbench.py) with fake engines.

The fake engines below are loaded by the harness's worker processes as
``test_maskbench_harness:Name`` (spawned workers inherit ``sys.path``).
"""

from __future__ import annotations

import json
import os
import random
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import maskbench as mb  # noqa: E402
from benchmarks._engines import EngineRefusal, EngineUnavailable, _gpt2_byte_decoder, bitmask_allows  # noqa: E402

SHARED = ROOT.parent / "shared"
TARBALL = SHARED / "maskbench-dev.tar.xz"
ME = __name__


# --------------------------------------------------------------------------- fake engines


class _Matcher:
    """Allows every token; accepting decided by ``accept`` over the text so far."""

    def __init__(self, tok: Any, schema: Any, accept: Any, words: int) -> None:
        self.tok, self.schema, self.accept = tok, schema, accept
        self.ids: list[int] = []
        self._mask = np.full(words, -1, np.int32)
        self.raise_on_mask = isinstance(schema, dict) and "x-runtime" in schema

    def mask(self) -> np.ndarray:
        if self.raise_on_mask and len(self.ids) >= 2:  # after the first mask (that one is TTFM)
            raise RuntimeError("mask exploded")
        return self._mask

    def allows(self, token_id: int) -> bool:
        return bitmask_allows(self._mask, token_id)

    def advance(self, token_id: int) -> bool:
        self.ids.append(token_id)
        return True

    def is_accepting(self) -> bool:
        return self.accept(self.tok.raw.decode(self.ids), self.schema)

    def reset(self) -> None:
        self.ids = []


class AcceptAll:
    """Accepts every token sequence: every invalid test becomes an invalidation error."""

    name = "accept_all"

    def __init__(self, tok: Any, **options: Any) -> None:
        self.tok = tok
        self.words = (tok.vocab_size + 31) // 32

    def compile(self, schema: Any) -> _Matcher:
        return _Matcher(self.tok, schema, lambda text, schema: True, self.words)


def _oracle_accept(text: str, schema: Any) -> bool:
    import jsonschema

    try:
        value = json.loads(text)
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(schema).is_valid(value)


class Tricky(AcceptAll):
    """Correct (jsonschema oracle at the end) unless the schema asks for trouble via x-* keys."""

    name = "tricky"

    def compile(self, schema: Any) -> _Matcher:
        if "x-raise" in schema:
            raise ValueError("boom")
        if "x-refuse" in schema:
            raise EngineRefusal("unsupported keyword x-refuse")
        if "x-hang" in schema:
            time.sleep(600)
        if "x-crash" in schema:
            os._exit(7)
        return _Matcher(self.tok, schema, _oracle_accept, self.words)


_LEAK: list[np.ndarray] = []  # what a leaky engine keeps between schemas (a cache, say)


class Hog(AcceptAll):
    """Misbehaves in compile on request: memory, leaks, signals, exits, hangs (for --isolate)."""

    name = "hog"

    def compile(self, schema: Any) -> _Matcher:
        if "x-leak-mb" in schema:  # kept after the schema is done: the next one must not see it
            _LEAK.append(np.ones(schema["x-leak-mb"] << 20, np.uint8))
        if "x-hold-mb" in schema:  # above --max-rss-mb long enough for the harness to notice
            big = np.ones(schema["x-hold-mb"] << 20, np.uint8)
            time.sleep(20)
            del big
        if "x-leaked" in schema:  # reports what earlier schemas left behind in this process
            raise EngineRefusal(f"leaked={len(_LEAK)}")
        if "x-segv" in schema:
            import resource
            import signal

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.kill(os.getpid(), signal.SIGSEGV)
        if "x-exit" in schema:
            os._exit(3)
        if "x-hang" in schema:
            time.sleep(600)
        return super().compile(schema)


class NotHere:
    name = "not_here"

    def __init__(self, tok: Any, **options: Any) -> None:
        raise EngineUnavailable("not_here not installed: pip install -e .[bench]")


# --------------------------------------------------------------------------- fixtures


def _byte_tokenizer(path: Path) -> Path:
    """A 256-token byte-level BPE tokenizer (no merges): one token per byte."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers

    vocab = _gpt2_byte_decoder()  # GPT-2 byte char -> byte value: token id = byte value
    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    return path


@pytest.fixture(scope="module")
def tokdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _byte_tokenizer(tmp_path_factory.mktemp("tok"))


OBJ_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
OBJ_TESTS = [
    {"description": "ok", "valid": True, "data": {"a": 1}},
    {"description": "ok2", "valid": True, "data": {"a": 2, "b": "é"}},
    {"description": "wrong type", "valid": False, "data": {"a": "x"}},
    {"description": "missing", "valid": False, "data": {}},
]


def _doc(schema: dict[str, Any], tests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"description": "t", "meta": {}, "schema": schema, "tests": OBJ_TESTS if tests is None else tests}


def _write_data(d: Path) -> dict[str, dict[str, Any]]:
    docs = {
        "Alpha---ok.json": _doc(OBJ_SCHEMA),
        "Alpha---raise.json": _doc({**OBJ_SCHEMA, "x-raise": True}),
        "Beta---refuse.json": _doc({**OBJ_SCHEMA, "x-refuse": True}),
        "Beta---hang.json": _doc({**OBJ_SCHEMA, "x-hang": True}),
        "Gamma---crash.json": _doc({**OBJ_SCHEMA, "x-crash": True}),
        "Gamma---runtime.json": _doc({**OBJ_SCHEMA, "x-runtime": True}),
        "JME_1.json": _doc({"type": "string"}, [{"valid": True, "data": "hi"}, {"valid": False, "data": 3}]),
        # the oracle accepts this valid test only if the data is valid, so this stays a pass
        "Zeta---after.json": _doc({"type": "integer"}, [{"valid": True, "data": 5}]),
    }
    d.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (d / name).write_text(json.dumps(doc))
    (d / "README.md").write_text("not a schema")
    return docs


# --------------------------------------------------------------------------- data


def test_category_rule() -> None:
    assert mb.category_of("Github_easy---o39515.json") == "Github_easy"
    assert mb.category_of("maskbench-dev/Glaiveai2K---calc_1.json") == "Glaiveai2K"
    assert mb.category_of("BFCL_parallel_multiple_63.json") == "BFCL"
    assert mb.category_of("JME_71.json") == "JME"
    assert mb.category_of("Synthesized---draft2019_09_x.json") == "Synthesized"


def _fake_files() -> list[mb.SchemaFile]:
    sizes = {"Github_easy": 120, "Github_hard": 60, "Kubernetes": 50, "Tiny": 2, "BFCL": 40, "JME": 7}
    files = []
    for cat, n in sizes.items():
        for i in range(n):
            name = f"{cat}_{i}.json" if cat in ("BFCL", "JME") else f"{cat}---{i}.json"
            files.append(mb.SchemaFile(name, b"{}"))
    return files


def test_sampling_deterministic_and_stratified() -> None:
    files = _fake_files()
    a = mb.stratified_sample(files, 40, seed=0)
    b = mb.stratified_sample(list(reversed(files)), 40, seed=0)
    assert [f.name for f in a] == [f.name for f in b]  # deterministic, input-order independent
    assert len(a) == 40 and len({f.name for f in a}) == 40
    c = mb.stratified_sample(files, 40, seed=1)
    assert [f.name for f in a] != [f.name for f in c]
    counts: dict[str, int] = {}
    for f in a:
        counts[f.category] = counts.get(f.category, 0) + 1
    assert set(counts) == {"Github_easy", "Github_hard", "Kubernetes", "Tiny", "BFCL", "JME"}
    total = len(files)
    for cat in ("Github_easy", "Github_hard", "Kubernetes", "BFCL"):
        size = sum(1 for f in files if f.category == cat)
        assert abs(counts[cat] - 40 * size / total) <= 1.5, (cat, counts[cat])
    assert mb.stratified_sample(files, 3, seed=0) == mb.stratified_sample(files, 3, seed=0)
    assert len(mb.stratified_sample(files, 3, seed=0)) == 3
    assert len(mb.stratified_sample(files, 10_000, seed=0)) == len(files)
    assert mb.stratified_sample(files, 0, seed=0) == []


def test_read_dataset_dir_and_tar(tmp_path: Path) -> None:
    docs = _write_data(tmp_path / "data" / "maskbench-dev")
    from_dir = mb.read_dataset(tmp_path / "data")
    assert [f.name for f in from_dir] == sorted(docs)
    tar_path = tmp_path / "mb.tar.xz"
    with tarfile.open(tar_path, "w:xz") as tar:
        tar.add(tmp_path / "data" / "maskbench-dev", arcname="maskbench-dev")
    from_tar = mb.read_dataset(tar_path)
    assert [(f.name, f.raw) for f in from_tar] == [(f.name, f.raw) for f in from_dir]
    assert from_tar[0].load()["schema"]
    with pytest.raises(FileNotFoundError):
        mb.read_dataset(tmp_path / "nope")


@pytest.mark.skipif(not TARBALL.exists(), reason=f"{TARBALL} absent (../shared not mounted)")
def test_real_tarball() -> None:
    files = mb.read_dataset(TARBALL)
    assert len(files) == 2786
    cats = {f.category for f in files}
    assert {"Github_easy", "BFCL", "JME", "Kubernetes", "Glaiveai2K"} <= cats
    assert len(cats) == 15
    sample = mb.stratified_sample(files, 100, seed=0)
    assert len(sample) == 100 and len({f.category for f in sample}) == 15
    doc = sample[0].load()
    assert "schema" in doc and isinstance(doc["tests"], list)


# --------------------------------------------------------------------------- one schema in-process


def test_run_schema_in_process(tokdir: Path) -> None:
    tok = mb.TokenizerHandle(tokdir)
    assert tok.encode('{"a": 1}') == list(b'{"a": 1}')  # byte tokenizer: one token per byte
    row = mb.run_schema(AcceptAll(tok), tok, "X---1.json", _doc(OBJ_SCHEMA), "accept_all")
    assert row["status"] == "invalidation_error"
    assert (row["invalidation_errors"], row["validation_errors"]) == (2, 0)
    n_tokens = sum(len(json.dumps(t["data"], ensure_ascii=False).encode()) for t in OBJ_TESTS)
    assert row["tokens"] == n_tokens == len(row["tbm_us"])
    assert row["ttfm_ms"] >= row["compile_ms"] >= 0 and row["peak_rss_mb"] > 0
    good = mb.run_schema(Tricky(tok), tok, "X---1.json", _doc(OBJ_SCHEMA), "tricky")
    assert good["status"] == "pass", good["failures"]
    refused = mb.run_schema(Tricky(tok), tok, "X---2.json", _doc({"x-refuse": 1}), "tricky")
    assert refused["status"] == "schema_error" and "x-refuse" in refused["error"]
    raised = mb.run_schema(Tricky(tok), tok, "X---3.json", _doc({"x-raise": 1}), "tricky")
    assert raised["status"] == "compile_error" and "boom" in raised["error"]


def test_validation_error_detail(tokdir: Path) -> None:
    tok = mb.TokenizerHandle(tokdir)

    class RejectComma(AcceptAll):
        def compile(self, schema: Any) -> _Matcher:
            m = _Matcher(self.tok, schema, _oracle_accept, self.words)
            m._mask = m._mask.copy()
            m._mask[ord(",") >> 5] &= ~np.int32(1 << (ord(",") & 31))
            return m

    row = mb.run_schema(RejectComma(tok), tok, "X---1.json", _doc(OBJ_SCHEMA), "rc")
    assert row["status"] == "validation_error" and row["validation_errors"] == 1
    assert "not in mask" in row["failures"][0]["reason"]
    assert row["failures"][0]["before"] == '{"a": 2'  # text accepted before the rejected ","


# --------------------------------------------------------------------------- the pool, end to end


def test_harness_end_to_end(tmp_path: Path, tokdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_data(tmp_path / "data")
    out = tmp_path / "out.json"
    t0 = time.monotonic()
    rc = mb.main(
        [
            str(tmp_path / "data"),
            "--tokenizer",
            str(tokdir),
            "--engine",
            f"{ME}:Tricky",
            "--engine",
            f"{ME}:AcceptAll",
            "--engine",
            f"{ME}:NotHere",
            "--engine",
            "no_such_module_xyz:Engine",
            "--timeout",
            "8",  # generous: a replacement worker must start within it on a loaded 2-core machine
            "--jobs",
            "1",
            "--plain",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    assert time.monotonic() - t0 < 120
    captured = capsys.readouterr()
    assert "not_here not installed: pip install -e .[bench]" in captured.err
    assert "failed to start" in captured.err and "no_such_module_xyz" in captured.err
    assert "tricky" in captured.out and "accept_all" in captured.out and "TBM p99.9" in captured.out

    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"tricky", "accept_all"}
    for s in result["summary"].values():
        assert tuple(s) == mb.SUMMARY_KEYS
    status = {r["file"]: r["status"] for r in result["rows"] if r["engine"] == "tricky"}
    assert status == {
        "Alpha---ok.json": "pass",
        "Alpha---raise.json": "compile_error",
        "Beta---refuse.json": "schema_error",
        "Beta---hang.json": "timeout",
        "Gamma---crash.json": "crash",
        "Gamma---runtime.json": "runtime_error",
        "JME_1.json": "pass",
        "Zeta---after.json": "pass",  # runs after the hang and the crash: workers were replaced
    }
    s = result["summary"]["tricky"]
    assert (s["schemas"], s["passing"], s["schema_errors"], s["compile_errors"]) == (8, 3, 1, 1)
    assert (s["crashes"], s["timeouts"], s["invalidation_errors"]) == (2, 1, 0)
    assert s["tokens"] > 0 and s["tbm_p999_us"] >= s["tbm_p50_us"] > 0
    assert s["ttfm_max_ms"] >= s["ttfm_p50_ms"] > 0 and s["peak_rss_mb_max"] > 0
    a = result["summary"]["accept_all"]
    assert a["invalidation_errors"] == 6 and a["passing"] == 1 and a["timeouts"] == 0
    row = next(r for r in result["rows"] if r["engine"] == "accept_all" and r["file"] == "JME_1.json")
    assert row["category"] == "JME" and row["status"] == "invalidation_error"
    assert {"ttfm_ms", "tokens", "tbm_p50_us", "tbm_p999_us", "peak_rss_mb", "error", "failures"} <= set(row)
    assert len(result["meta"]["skipped"]) == 2
    assert result["meta"]["isolate"] == mb.default_isolate()
    assert {r["isolate"] for r in result["rows"] if r["status"] not in ("timeout", "crash")} == {mb.default_isolate()}


def test_missing_builtin_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        mb.BUILTIN_ENGINES, "ghost", ("benchmarks._engines:Ghost", "ghost_pkg_xyz", "pip install -e .[bench]")
    )
    assert mb.missing_reason("ghost") == "ghost not installed: pip install -e .[bench]"
    assert mb.missing_reason(f"{ME}:AcceptAll") is None
    assert mb.engine_display_name(f"{ME}:AcceptAll") == "accept_all"


# --------------------------------------------------------------------------- summary and table


def test_summary_and_table_ratios() -> None:
    rng = random.Random(0)

    def rows(engine: str, scale: float) -> list[dict[str, Any]]:
        out = []
        for i in range(5):
            r = mb._new_row(f"A---{i}.json", engine)
            r.update(status="pass", ttfm_ms=scale * (i + 1), peak_rss_mb=100.0 + i)
            r["tbm_us"] = np.asarray([scale * rng.uniform(1, 2) for _ in range(50)])
            out.append(r)
        bad = mb._new_row("B---x.json", engine)
        bad.update(status="timeout")
        return [*out, bad]

    all_rows = rows("jsonmode", 1.0) + rows("llguidance", 10.0)
    summaries = {e: mb.summarize(r for r in all_rows if r["engine"] == e) for e in ("jsonmode", "llguidance")}
    assert tuple(summaries["jsonmode"]) == mb.SUMMARY_KEYS
    assert summaries["jsonmode"]["schemas"] == 6 and summaries["jsonmode"]["timeouts"] == 1
    assert summaries["jsonmode"]["tokens"] == 250
    header, body = mb.build_table(summaries, all_rows)
    assert header == ["metric", "jsonmode", "llguidance", "jsonmode/llguidance (5 common)"]
    ttfm = next(line for line in body if line[0].startswith("TTFM p50"))
    assert ttfm[3] == "0.10x"
    text = mb.render_table(header, body, plain=True)
    assert "peak RSS p50 (MB)" in text and "jsonmode/llguidance (5 common)" in text
    assert mb._parse_options(["xgrammar.strict_mode=false", "outlines.whitespace_pattern=[ ]?"]) == {
        "xgrammar": {"strict_mode": False},
        "outlines": {"whitespace_pattern": "[ ]?"},
    }


def test_shards_merge_to_the_whole_run(tmp_path: Path, tokdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--shard K/N`` slices the files; ``--merge`` pools the slices' rows and samples into one table."""
    data = tmp_path / "data"
    _write_data(data)
    for f in data.glob("*.json"):  # keep the quick, well-behaved files only
        if f.name not in ("Alpha---ok.json", "JME_1.json", "Zeta---after.json", "Beta---refuse.json"):
            f.unlink()
    common = ["--tokenizer", str(tokdir), "--engine", f"{ME}:AcceptAll", "--jobs", "1", "--plain", "--json-samples"]
    outs = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}.json.gz"
        assert mb.main([str(data), *common, "--shard", f"{k}/2", "--json", str(out)]) == 0
        outs.append(out)
    shard_files = [{r["file"] for r in mb._read_json(o)["rows"]} for o in outs]
    assert not (shard_files[0] & shard_files[1]) and len(shard_files[0] | shard_files[1]) == 4
    merged = tmp_path / "merged.json"
    capsys.readouterr()
    assert mb.main(["--merge", *map(str, outs), "--plain", "--json", str(merged)]) == 0
    assert "2 runs merged" in capsys.readouterr().out
    res = json.loads(merged.read_text())
    pooled = [x for o in outs for r in mb._read_json(o)["rows"] for x in r.get("tbm_us") or []]
    s = res["summary"]["accept_all"]
    assert s["schemas"] == 4 and s["tokens"] == len(pooled)
    assert s["tbm_max_us"] == pytest.approx(max(pooled))
    with pytest.raises(SystemExit):
        mb.main([str(data), *common, "--shard", "3/2"])


# --------------------------------------------------------------------------- --isolate


SMALL_TESTS = [{"valid": True, "data": {"a": 1}}, {"valid": False, "data": {}}]


def _hog_files(tmp_path: Path, isolate: str, flags: dict[str, dict[str, Any]]) -> list[mb.SchemaFile]:
    """One file per name: OBJ_SCHEMA plus the ``x-...`` flags that tell the Hog engine what to do."""
    if isolate == "fork" and not mb.fork_available():
        pytest.skip("no os.fork here")
    d = tmp_path / "data"
    d.mkdir(parents=True, exist_ok=True)
    for name, extra in flags.items():
        (d / f"{name}.json").write_text(json.dumps(_doc({**OBJ_SCHEMA, **extra}, SMALL_TESTS)))
    return mb.read_dataset(d)


@pytest.mark.parametrize("isolate", ["fork", "none"])
def test_isolate_memory_and_state(tmp_path: Path, tokdir: Path, isolate: str) -> None:
    """With fork a schema that allocates (and keeps) 200 MB does not raise the next one's peak RSS."""
    files = _hog_files(tmp_path, isolate, {"A---1hog": {"x-leak-mb": 200}, "A---2next": {},
                                           "A---3leaked": {"x-leaked": True}})
    rows = mb.run_engine(f"{ME}:Hog", files, str(tokdir), jobs=1, timeout=30, isolate=isolate)
    hog, nxt, leaked = rows
    assert [r["isolate"] for r in rows] == [isolate] * 3
    assert hog["status"] == nxt["status"] == "invalidation_error"  # AcceptAll accepts {}
    if sys.platform.startswith("linux"):
        assert hog["peak_rss_mb"] - hog["base_rss_mb"] > 190  # this schema's 200 MB is in its peak
    if isolate == "fork":
        assert leaked["error"].endswith("leaked=0")  # no state from earlier schemas
        assert nxt["peak_rss_mb"] < hog["peak_rss_mb"] - 150
        if sys.platform.startswith("linux"):
            assert nxt["peak_rss_mb"] - nxt["base_rss_mb"] < 50
            assert abs(nxt["base_rss_mb"] - hog["base_rss_mb"]) < 50
        assert all(r["fork_ms"] >= 0 and r["isolate_overhead_ms"] >= 0 and r["rewarm_ms"] >= 0 for r in rows)
    else:  # the worker carries the leak: what --isolate fork is for
        assert leaked["error"].endswith("leaked=1")
        if sys.platform.startswith("linux"):
            assert nxt["base_rss_mb"] > hog["base_rss_mb"] + 150


@pytest.mark.parametrize("isolate", ["fork", "none"])
def test_isolate_crash_hang_and_rss_limit(tmp_path: Path, tokdir: Path, isolate: str) -> None:
    """A child (or worker) that dies is a crash, a hang a timeout, --max-rss-mb a crash; the run goes on."""
    files = _hog_files(tmp_path, isolate, {"C---1segv": {"x-segv": True}, "C---2exit": {"x-exit": True},
                                           "C---3hang": {"x-hang": True}, "C---4hold": {"x-hold-mb": 700},
                                           "C---5ok": {}})
    t0 = time.monotonic()
    rows = mb.run_engine(f"{ME}:Hog", files, str(tokdir), jobs=1, timeout=4, max_rss_mb=500, isolate=isolate)
    assert time.monotonic() - t0 < 60
    by = {r["file"]: r for r in rows}
    status = {k: r["status"] for k, r in by.items()}
    assert status == {
        "C---1segv.json": "crash",
        "C---2exit.json": "crash",
        "C---3hang.json": "timeout",
        "C---4hold.json": "crash",
        "C---5ok.json": "invalidation_error",  # ran after all that: AcceptAll accepts {}
    }
    assert "RSS over --max-rss-mb 500" in by["C---4hold.json"]["error"]
    if isolate == "fork":
        assert "SIGSEGV" in by["C---1segv.json"]["error"]
        assert "exit code 3" in by["C---2exit.json"]["error"]
        assert "schema child RSS" in by["C---4hold.json"]["error"]
    else:
        assert "worker process died" in by["C---1segv.json"]["error"]


def _gone(pid: int, within: float) -> bool:
    """``pid`` exited (absent, or a zombie waiting for its reaper) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and PR_SET_PDEATHSIG")
@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_isolate_fork_child_dies_with_its_worker(tokdir: Path, how: str) -> None:
    """No orphan: a worker stopped by SIGTERM (its handler) or SIGKILL (PDEATHSIG) takes its child along."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=mb._worker_main, args=(child, f"{ME}:Hog", {}, str(tokdir), "fork"), daemon=True)
    proc.start()
    child.close()
    try:
        assert parent.poll(60) and parent.recv()[0] == "ready"
        parent.send(("H---hang.json", json.dumps(_doc({"x-hang": True}, SMALL_TESTS)).encode()))
        assert parent.poll(30)
        kind, name, pid = parent.recv()
        assert (kind, name) == ("child", "H---hang.json") and pid != proc.pid
        assert not _gone(pid, 0.2)  # the child is hanging in compile
        getattr(proc, how)()
        proc.join(10)
        assert not proc.is_alive()
        assert _gone(pid, 5.0)
    finally:
        if proc.is_alive():
            proc.kill()
