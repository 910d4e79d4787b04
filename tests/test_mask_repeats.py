"""The mask-repeat diagnostic (benchmarks/mask_repeats.py) on a trained tokenizer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import mask_repeats  # noqa: E402

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"},
                                           "tags": {"type": "array", "items": {"type": "string"}}},
          "required": ["name"]}
TESTS = [
    {"valid": True, "data": {"name": "ab", "n": 12, "tags": ["x", "yz"]}},
    {"valid": True, "data": {"name": "hello world", "tags": []}},
    {"valid": False, "data": {"n": 3}},
]


def test_repeats_counted_within_and_across_schemas(tmp_path: Path, trained_bpe_tokenizer: Any) -> None:
    tokdir = tmp_path / "tok"
    trained_bpe_tokenizer.save_pretrained(str(tokdir))
    data = tmp_path / "data"
    data.mkdir()
    doc = {"schema": SCHEMA, "tests": TESTS}
    (data / "A---one.json").write_text(json.dumps(doc))
    (data / "B---two.json").write_text(json.dumps(doc))  # the same schema again: every cold mask repeats
    (data / "C---refused.json").write_text(json.dumps({"schema": {"type": "string", "pattern": "(?=a)b"},
                                                       "tests": TESTS}))
    out = tmp_path / "s.json"
    assert mask_repeats.main([str(data), "--tokenizer", str(tokdir), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert (s["schemas"], s["refused"]) == (2, 1)
    assert s["cold"] > 0 and s["cold"] % 2 == 0 and s["calls"] > s["cold"]
    assert s["repeats_in_schema"] % 2 == 0  # both copies repeat the same masks within themselves
    # the second copy repeats every one of its cold masks in the process; the first only its own repeats
    assert s["repeats_in_process"] == s["cold"] // 2 + s["repeats_in_schema"] // 2
    assert s["distinct_masks"] == s["cold"] // 2 - s["repeats_in_schema"] // 2
    m, free = s["measured"], s["process_repeats_free"]
    assert free["sum_ms"] <= m["sum_ms"] and free["tbm_max_us"] <= m["tbm_max_us"]
    assert mask_repeats.render(s).count("\n") >= 5
