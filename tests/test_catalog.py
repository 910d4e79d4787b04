"""jsonmode.catalog and schemas/: the ready-made JSON files are the catalog models' schemas, and
every one of them compiles (a refused keyword in a ready-made schema would be a broken promise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jsonmode import Vocabulary, compile_automaton
from jsonmode.catalog import CATALOG, TicketLabels

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def test_schema_files_are_the_catalog() -> None:
    files = {p.stem for p in SCHEMAS.glob("*.json")}
    assert files == set(CATALOG)
    for name, model in CATALOG.items():
        assert json.loads((SCHEMAS / f"{name}.json").read_text()) == model.model_json_schema(), name


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_schemas_compile(name: str, trained_bpe_tokenizer: object) -> None:
    vocab = Vocabulary.from_tokenizer(trained_bpe_tokenizer)
    ta = compile_automaton(json.loads((SCHEMAS / f"{name}.json").read_text()), vocab)
    assert ta.mask(ta.initial_state).any()


def test_ticket_labels_is_a_set_without_repeats(trained_bpe_tokenizer: object) -> None:
    ta = compile_automaton(TicketLabels.model_json_schema(), Vocabulary.from_tokenizer(trained_bpe_tokenizer))
    assert ta.accepts_text('{"labels": ["bug", "urgent"]}')
    assert not ta.accepts_text('{"labels": ["bug", "bug"]}')
    assert not ta.accepts_text('{"labels": []}')
    assert not ta.accepts_text('{"labels": ["bug", "urgent", "spam", "other", "account"]}')
