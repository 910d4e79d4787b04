"""Hermes 2 Pro prompts: the JSON-mode system prompt, rendered as a chat."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Message = dict[str, Any]

HERMES_JSON_SYSTEM = (
    "You are a helpful assistant that answers in JSON. "
    "Here's the json schema you must adhere to:\n<schema>\n{schema}\n</schema>"
)


def json_mode_system_prompt(schema: dict[str, Any] | bool) -> str:
    """The exact system prompt Hermes 2 Pro was trained with; the schema as one ``json.dumps`` line."""
    return HERMES_JSON_SYSTEM.format(schema=json.dumps(schema))


def as_messages(prompt: str | Sequence[Message]) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    msgs = [dict(m) for m in prompt]
    for m in msgs:
        if "role" not in m or "content" not in m:
            raise ValueError(f"chat messages need 'role' and 'content': {m!r}")
    return msgs


def json_mode_messages(schema: dict[str, Any] | bool, prompt: str | Sequence[Message]) -> list[Message]:
    """Prepend the JSON-mode system prompt.

    A system message of the caller's is kept: its text follows the JSON-mode prompt
    after a blank line, in one system turn (the model saw one system turn in training).
    """
    msgs = as_messages(prompt)
    system = json_mode_system_prompt(schema)
    if msgs and msgs[0]["role"] == "system":
        user_sys = msgs.pop(0)["content"]
        if user_sys:
            system = f"{system}\n\n{user_sys}"
    return [{"role": "system", "content": system}, *msgs]


def chatml(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """Built-in ChatML rendering for tokenizers without a chat template."""
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return out + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def render(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool = True, **kw: Any) -> str:
    """Through the tokenizer's chat template when it has one, else ChatML."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt, **kw
        )
    return chatml(messages, add_generation_prompt)
