"""jsonmode.prompt: the Hermes 2 Pro JSON-mode system prompt and chat rendering."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import load_shared_tokenizer

from jsonmode import json_mode_messages, json_mode_system_prompt
from jsonmode.catalog import Character
from jsonmode.prompt import as_messages, chatml, render

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}}, "required": ["name"]}


def hermes_prompt(schema: Any) -> str:
    return (
        "You are a helpful assistant that answers in JSON. Here's the json schema you must adhere to:\n"
        f"<schema>\n{json.dumps(schema)}\n</schema>"
    )


@pytest.mark.parametrize("schema", [SCHEMA, Character.model_json_schema(), True, {"type": "string", "x": "é\n"}])
def test_system_prompt_is_exactly_hermes(schema: Any) -> None:
    assert json_mode_system_prompt(schema) == hermes_prompt(schema)
    assert "\n" not in json.dumps(schema)  # the schema is one line, default separators


def test_string_prompt_becomes_system_plus_user() -> None:
    msgs = json_mode_messages(SCHEMA, "Describe Goku")
    assert msgs == [
        {"role": "system", "content": hermes_prompt(SCHEMA)},
        {"role": "user", "content": "Describe Goku"},
    ]


def test_user_system_message_is_appended_after_a_blank_line() -> None:
    given = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Bonjour"},
        {"role": "assistant", "content": '{"name": "x"}'},
        {"role": "user", "content": "Encore"},
    ]
    msgs = json_mode_messages(SCHEMA, given)
    assert msgs[0] == {"role": "system", "content": hermes_prompt(SCHEMA) + "\n\nAnswer in French."}
    assert msgs[1:] == given[1:]
    assert [m["role"] for m in msgs].count("system") == 1
    assert given[0]["content"] == "Answer in French."  # the caller's list is not modified


def test_empty_user_system_message_is_dropped() -> None:
    msgs = json_mode_messages(SCHEMA, [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}])
    assert msgs == [{"role": "system", "content": hermes_prompt(SCHEMA)}, {"role": "user", "content": "hi"}]


def test_messages_need_role_and_content() -> None:
    with pytest.raises(ValueError, match="role"):
        as_messages([{"content": "no role"}])
    with pytest.raises(ValueError):
        json_mode_messages(SCHEMA, [{"role": "user"}])
    extra = as_messages([{"role": "user", "content": "x", "name": "bob"}])
    assert extra == [{"role": "user", "content": "x", "name": "bob"}]


def test_builtin_chatml() -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert chatml(msgs) == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert chatml(msgs, add_generation_prompt=False) == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"


def test_render_without_template_uses_chatml() -> None:
    msgs = json_mode_messages(SCHEMA, "hi")
    for tok in (SimpleNamespace(chat_template=None), SimpleNamespace(), SimpleNamespace(chat_template="")):
        assert render(tok, msgs) == chatml(msgs)
        assert render(tok, msgs, add_generation_prompt=False) == chatml(msgs, False)


@pytest.mark.parametrize("name", ["gpt-2", "deepseek-llm", "llama-spm", "llama-3.1"])
def test_shared_tokenizers_without_template_use_chatml(name: str) -> None:
    tok = load_shared_tokenizer(name)
    assert not getattr(tok, "chat_template", None)
    msgs = json_mode_messages(SCHEMA, "hi")
    assert render(tok, msgs) == chatml(msgs)


def test_render_with_template_trained(trained_bpe_tokenizer: Any) -> None:
    msgs = json_mode_messages(SCHEMA, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    text = render(trained_bpe_tokenizer, msgs)
    # the tiny tokenizer's template is ChatML, so both renderings agree
    assert text == chatml(msgs)
    assert text.endswith("<|im_start|>assistant\n")
    assert not render(trained_bpe_tokenizer, msgs, add_generation_prompt=False).endswith("assistant\n")


def test_render_with_hermes_template() -> None:
    tok = load_shared_tokenizer("hermes-2-pro-llama-3")
    assert tok.chat_template
    msgs = json_mode_messages(SCHEMA, "Describe Goku")
    text = render(tok, msgs)
    assert text == tok.bos_token + chatml(msgs)  # Hermes' template = BOS + ChatML
    assert text.endswith("<|im_start|>assistant\n")
    assert f"<|im_start|>system\n{hermes_prompt(SCHEMA)}<|im_end|>\n" in text
    no_gen = render(tok, msgs, add_generation_prompt=False)
    assert text.startswith(no_gen) and not no_gen.endswith("<|im_start|>assistant\n")
    # <|im_start|> / <|im_end|> are single tokens here, not text
    enc = tok(text, add_special_tokens=False)["input_ids"]
    assert enc.count(tok.convert_tokens_to_ids("<|im_end|>")) == 2
    assert enc[0] == tok.bos_token_id and enc.count(tok.bos_token_id) == 1
