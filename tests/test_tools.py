"""Hermes function calling (issue 4): tool schemas, the prompt, the turn automaton, parsing, the loop.

Generation tests use the tiny random Llama with the Hermes 2 Pro tokenizer: outputs are
meaningless but must always be well formed.  The 200-sample acceptance run is marked
``slow`` (``pytest -m slow tests/test_tools.py -s`` prints its figures).
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
import hashlib
import json
import re
import time
from typing import Any, Literal

import pytest
from conftest import SHARED_TOKENIZERS, load_shared_tokenizer

from jsonmode import (
    Engine,
    Tool,
    ToolCall,
    ToolCallError,
    TruncatedOutputError,
    execute_tool_call,
    generate_tool_calls,
    generate_tool_calls_batch,
    parse_tool_calls,
    render_tools_prompt,
    run_tool_loop,
    tool_call_automaton,
    tool_schema,
)
from jsonmode.errors import SchemaError
from jsonmode.tools import tool_call_node
from jsonmode.vocab import Vocabulary

HERMES = "hermes-2-pro-llama-3"


# --------------------------------------------------------------------------- the card's functions


def get_current_temperature(location: str, unit: str) -> float:
    """
    Get the current temperature at a location.

    Args:
        location: The location to get the temperature for, in the format "City, Country"
        unit: The unit to return the temperature in. (choices: ["celsius", "fahrenheit"])

    Returns:
        The current temperature at the specified location in the specified units, as a float.
    """
    return 22.0  # A real function should probably actually get the temperature!


def get_current_wind_speed(location: str) -> float:
    """
    Get the current wind speed in km/h at a given location.

    Args:
        location: The location to get the temperature for, in the format "City, Country"

    Returns:
        The current wind speed at the given location in km/h, as a float.
    """
    return 6.0  # A real function should probably actually get the wind speed!


CARD_TOOLS = [get_current_temperature, get_current_wind_speed]
CARD_MESSAGES = [
    {"role": "system", "content": "You are a bot that responds to weather queries."},
    {"role": "user", "content": "Hey, what's the temperature in Paris right now?"},
]

CARD_SYSTEM_TURN = (
    "<|begin_of_text|><|im_start|>system\n"
    "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML "
    "tags. You may call one or more functions to assist with the user query. Don't make assumptions about what "
    "values to plug into functions. Here are the available tools: <tools> "
    '{"type": "function", "function": {"name": "get_current_temperature", "description": "get_current_temperature('
    'location: str, unit: str) -> float - Get the current temperature at a location.\n'
    "\n"
    "    Args:\n"
    '        location(str): The location to get the temperature for, in the format "City, Country"'
    "        unit(str): The unit to return the temperature in.\n"
    "    Returns:\n"
    '        The current temperature at the specified location in the specified units, as a float.", '
    '"parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The location '
    'to get the temperature for, in the format \\"City, Country\\""}, "unit": {"type": "string", "enum": '
    '["celsius", "fahrenheit"], "description": "The unit to return the temperature in."}}, "required": '
    '["location", "unit"]}}\n'
    '{"type": "function", "function": {"name": "get_current_wind_speed", "description": "get_current_wind_speed('
    'location: str) -> float - Get the current wind speed in km/h at a given location.\n'
    "\n"
    "    Args:\n"
    '        location(str): The location to get the temperature for, in the format "City, Country"\n'
    "    Returns:\n"
    '        The current wind speed at the given location in km/h, as a float.", "parameters": {"type": "object", '
    '"properties": {"location": {"type": "string", "description": "The location to get the temperature for, in '
    'the format \\"City, Country\\""}}, "required": ["location"]}} </tools>'
    "Use the following pydantic model json schema for each tool call you will make: "
    '{"properties": {"name": {"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", '
    '"type": "object"}}, "required": ["name", "arguments"], "title": "FunctionCall", "type": "object"}}\n'
    "For each function call return a json object with function name and arguments within <tool_call></tool_call> "
    "XML tags as follows:\n"
    "<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-dict>}\n'
    "</tool_call><|im_end|>\n"
)
CARD_PROMPT = (
    CARD_SYSTEM_TURN
    + "<|im_start|>system\nYou are a bot that responds to weather queries.<|im_end|>\n"
    + "<|im_start|>user\nHey, what's the temperature in Paris right now?<|im_end|>\n"
    + "<|im_start|>assistant\n"
)
# the card: the call as the template renders it back, then the tool turn and the answer
CARD_CALL = (
    '<|im_start|>assistant\n<tool_call>\n{"name": "get_current_temperature", "arguments": '
    '{"location": "Paris, France", "unit": "celsius"}}\n</tool_call><|im_end|>\n'
)
CARD_TOOL_TURN = "<|im_start|>tool\n<tool_response>\n22.0\n</tool_response><|im_end|>"


@pytest.fixture(scope="module")
def hermes() -> Any:
    return load_shared_tokenizer(HERMES)


@pytest.fixture(scope="module")
def hermes_vocab(hermes: Any) -> Vocabulary:
    return Vocabulary.from_tokenizer(hermes, logits_width=128288)


@pytest.fixture(scope="module")
def engine(hermes: Any, torch_one_thread: Any) -> Engine:
    from jsonmode.tiny import tiny_llama

    return Engine(tiny_llama(hermes, extra_columns=32), hermes)


def _bounded(fn: Any, max_length: int) -> Tool:
    """The card's tool with its string arguments capped (so random-model runs finish quickly)."""
    tool = Tool.from_function(fn)
    params = copy.deepcopy(tool.parameters)
    for spec in params["properties"].values():
        if spec.get("type") == "string" and "enum" not in spec:
            spec["maxLength"] = max_length
    return Tool.from_function(fn, parameters=params)


def _ids(tok: Any, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _run(ta: Any, ids: list[int]) -> int:
    state = ta.initial_state
    for i in ids:
        state = ta.advance(state, i)
        if state < 0:
            return -1
    return state


# --------------------------------------------------------------------------- schemas


def test_tool_schema_of_card_function() -> None:
    assert tool_schema(get_current_temperature) == {
        "type": "function",
        "function": {
            "name": "get_current_temperature",
            "description": "Get the current temperature at a location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": 'The location to get the temperature for, in the format "City, Country"',
                    },
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The unit to return the temperature in.",
                    },
                },
                "required": ["location", "unit"],
            },
            "return": {
                "type": "number",
                "description": "The current temperature at the specified location in the specified units, as a float.",
            },
        },
    }
    # dicts (OpenAI style or bare) and Tool objects go through unchanged
    s = tool_schema(get_current_wind_speed)
    assert tool_schema(s) == s
    assert tool_schema(s["function"]) == s
    assert tool_schema(Tool.from_function(get_current_wind_speed)) == s


def test_tool_schema_errors() -> None:
    def undocumented(x: int) -> int:
        return x

    with pytest.raises(SchemaError, match="undocumented"):
        tool_schema(undocumented)
    with pytest.raises(SchemaError, match="unique"):
        tool_call_node([get_current_wind_speed, tool_schema(get_current_wind_speed)], "auto")
    with pytest.raises(ValueError, match="names no tool"):
        tool_call_node(CARD_TOOLS, "get_weather")


# --------------------------------------------------------------------------- prompt


def test_fallback_prompt_golden_string(hermes: Any) -> None:
    assert not isinstance(hermes.chat_template, dict)  # this tokenizer has no tool_use template
    assert render_tools_prompt(hermes, CARD_MESSAGES, CARD_TOOLS) == CARD_PROMPT


def test_fallback_prompt_golden_ids(hermes: Any) -> None:
    ids = _ids(hermes, CARD_PROMPT)
    tid = hermes.convert_tokens_to_ids
    assert len(ids) == 532
    assert hashlib.sha256(json.dumps(ids).encode()).hexdigest() == (
        "46fe98444b51a3c87e4d76109ef6a0a77b0a8d93033a8d2e4cf836c48f17813f"
    )
    bos, im_start, im_end = tid("<|begin_of_text|>"), tid("<|im_start|>"), tid("<|im_end|>")
    nl = _ids(hermes, "\n")
    assert nl == [198]
    assert ids[:4] == [bos, im_start, *_ids(hermes, "system"), 198]
    assert ids[-3:] == [im_start, *_ids(hermes, "assistant"), 198]
    # every tag is one token, read from the tokenizer: never split into text pieces
    counts = collections.Counter(ids)
    for tag, n in {"<tools>": 2, "</tools>": 2, "<tool_call>": 2, "</tool_call>": 2, "<|im_start|>": 4,
                   "<|im_end|>": 3, "<|begin_of_text|>": 1}.items():
        assert counts[tid(tag)] == n, tag
    close = ids.index(im_end)
    assert ids[close - 1] == tid("</tool_call>") and ids[close + 1: close + 3] == [198, im_start]
    assert hermes.decode(ids) == CARD_PROMPT


def _template_minus_quirks(text: str, bos: str) -> str:
    """The early-release template's output with its two known quirks repaired."""
    text = text.replace(bos, bos + "<|im_start|>system\n", 1).replace("</tool_call><|im_end|>",
                                                                      "</tool_call><|im_end|>\n", 1)
    return re.sub(r'\{"name": "([^"]+)"\}, "arguments": (.*)\n</tool_call>', r'{"name": "\1", "arguments": \2}\n</tool_call>',
                  text)


def _early_template() -> str:
    return (SHARED_TOKENIZERS / HERMES / "tool_use.early-release.jinja").read_text()


CONVERSATION = [
    *CARD_MESSAGES,
    {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "get_current_temperature",
                                          "arguments": {"location": "Paris, France", "unit": "celsius"}}},
        ToolCall("get_current_wind_speed", {"location": "Paris, France"}),
    ]},
    {"role": "tool", "name": "get_current_temperature", "content": "22.0"},
    {"role": "tool", "name": "get_current_wind_speed", "content": 6.0},
    {"role": "assistant", "content": "It is 22 degrees with a 6 km/h wind."},
    {"role": "user", "content": "And in Lyon?"},
    {"role": "assistant", "tool_calls": [ToolCall("get_current_temperature", {"location": "Lyon", "unit": "celsius"})]},
    {"role": "tool", "name": "get_current_temperature", "content": "19.5"},
]


@pytest.mark.parametrize("n", range(1, len(CONVERSATION) + 1))
def test_fallback_equals_template_minus_quirks(hermes: Any, n: int) -> None:
    msgs = CONVERSATION[:n]
    norm = [m if m["role"] != "tool" else {**m, "content": str(m["content"])} for m in msgs]
    norm = [{**m, "tool_calls": [c.to_openai() if isinstance(c, ToolCall) else c for c in m["tool_calls"]]}
            if "tool_calls" in m else m for m in norm]
    ref = hermes.apply_chat_template(norm, chat_template=_early_template(), tools=CARD_TOOLS,
                                     add_generation_prompt=True, tokenize=False)
    assert render_tools_prompt(hermes, msgs, CARD_TOOLS) == _template_minus_quirks(ref, hermes.bos_token)


def test_tokenizer_tool_use_template_is_used(hermes: Any, monkeypatch: Any) -> None:
    jinja = _early_template()
    monkeypatch.setattr(hermes, "chat_template", {"default": hermes.chat_template, "tool_use": jinja})
    msgs = CONVERSATION[:4]
    out = render_tools_prompt(hermes, msgs, CARD_TOOLS)
    expected = hermes.apply_chat_template(msgs, chat_template=jinja, tools=CARD_TOOLS, add_generation_prompt=True,
                                          tokenize=False)
    assert out == expected
    assert '{"name": "get_current_temperature"}, "arguments"' in out  # the template's own quirk: it really ran
    assert "<|im_start|>system\nYou are a function calling" not in out


# --------------------------------------------------------------------------- the turn language


@pytest.fixture(scope="module")
def required_ta(hermes_vocab: Vocabulary) -> Any:
    return tool_call_automaton(hermes_vocab, CARD_TOOLS, "required")


@pytest.fixture(scope="module")
def auto_ta(hermes_vocab: Vocabulary) -> Any:
    return tool_call_automaton(hermes_vocab, CARD_TOOLS, "auto")


T_CALL = '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Paris, France", "unit": "celsius"}}\n</tool_call>'
T_CALL_ARGS_FIRST = (
    '<tool_call>\n{"arguments": {"location": "Paris, France", "unit": "celsius"}, "name": "get_current_temperature"}'
    "\n</tool_call>"
)
W_CALL = '<tool_call>\n{"name": "get_current_wind_speed", "arguments": {"location": "Oslo"}}\n</tool_call>'


def test_turn_tags_are_single_token_symbols(hermes_vocab: Vocabulary, required_ta: Any, auto_ta: Any) -> None:
    v = hermes_vocab
    assert required_ta.specials == ("<tool_call>", "</tool_call>", "<|im_end|>")
    tool_call, im_end = v.special_id("<tool_call>"), v.special_id("<|im_end|>")
    # required: the only first token is the <tool_call> token
    assert required_ta.allowed_tokens(required_ta.initial_state).tolist() == [tool_call]
    # auto: <tool_call> or text, not the end of turn, not a tag spelled by an added text token
    first = set(auto_ta.allowed_tokens(auto_ta.initial_state).tolist())
    assert tool_call in first and im_end not in first and v.special_id("<tools>") not in first
    assert len(first) > 100_000


def test_after_a_call(hermes: Any, hermes_vocab: Vocabulary, required_ta: Any) -> None:
    s = _run(required_ta, _ids(hermes, T_CALL))
    assert s >= 0 and not required_ta.is_accepting(s)
    allowed = set(required_ta.allowed_tokens(s).tolist())
    assert allowed == {198, hermes_vocab.special_id("<tool_call>"), hermes_vocab.special_id("<|im_end|>")}


@pytest.mark.parametrize("text,ok", [
    (T_CALL, True),
    (T_CALL_ARGS_FIRST, True),
    (W_CALL, True),
    (T_CALL + W_CALL, True),
    (T_CALL + "\n" + W_CALL + "\n" + T_CALL_ARGS_FIRST, True),
    (T_CALL + "\n", False),  # newline only between calls
    (T_CALL.replace("celsius", "kelvin"), False),  # enum from the docstring's (choices: ...)
    (T_CALL.replace("get_current_temperature", "get_weather"), False),  # unknown tool
    (W_CALL.replace('"Oslo"}', '"Oslo", "unit": "celsius"}'), False),  # argument of the other tool
    (T_CALL.replace(', "unit": "celsius"', ""), False),  # missing required argument
    (T_CALL.replace("<tool_call>\n", "<tool_call>"), False),
    ('{"name": "get_current_wind_speed", "arguments": {"location": "Oslo"}}', False),  # no tags
    ("The weather is fine.", False),  # text is not a call
])
def test_required_language(hermes: Any, required_ta: Any, text: str, ok: bool) -> None:
    s = _run(required_ta, _ids(hermes, text + "<|im_end|>"))
    assert required_ta.is_accepting(s) is ok


def test_required_needs_end_of_turn(hermes: Any, required_ta: Any) -> None:
    s = _run(required_ta, _ids(hermes, T_CALL))
    assert not required_ta.is_accepting(s)
    s = _run(required_ta, _ids(hermes, T_CALL + "<|im_end|>"))
    assert required_ta.is_final(s)  # only EOS may follow


def test_tag_spelled_as_text_is_rejected(hermes: Any, required_ta: Any, auto_ta: Any) -> None:
    spelled = _ids(hermes, "<tool") + _ids(hermes, "_call>")
    assert hermes.decode(spelled) == "<tool_call>"
    assert _run(required_ta, spelled) == -1
    assert _run(auto_ta, spelled) == -1  # free text may not contain a tag either
    assert _run(auto_ta, _ids(hermes, "Hello ") + spelled) == -1


@pytest.mark.parametrize("text,ok", [
    ("It is 22 degrees in Paris.", True),
    ("Ünïcödé ✓ 日本語 🙂", True),
    (T_CALL, True),
    (T_CALL_ARGS_FIRST + W_CALL, True),
    ("", False),  # an empty answer is not an answer
    ("Let me check. " + T_CALL, False),  # text xor calls
    (T_CALL + " Done.", False),
    ("a <tools> b", False),
])
def test_auto_language(hermes: Any, auto_ta: Any, text: str, ok: bool) -> None:
    s = _run(auto_ta, _ids(hermes, text + "<|im_end|>"))
    assert auto_ta.is_accepting(s) is ok


def test_none_named_and_max_calls(hermes: Any, hermes_vocab: Vocabulary) -> None:
    none = tool_call_automaton(hermes_vocab, CARD_TOOLS, "none")
    assert none.is_accepting(_run(none, _ids(hermes, "No tools today.<|im_end|>")))
    assert _run(none, _ids(hermes, T_CALL)) == -1
    named = tool_call_automaton(hermes_vocab, CARD_TOOLS, {"type": "function",
                                                          "function": {"name": "get_current_wind_speed"}})
    assert named.is_accepting(_run(named, _ids(hermes, W_CALL + W_CALL + "<|im_end|>")))
    assert _run(named, _ids(hermes, T_CALL)) == -1
    one = tool_call_automaton(hermes_vocab, CARD_TOOLS, "required", max_calls=1)
    assert one.is_accepting(_run(one, _ids(hermes, W_CALL + "<|im_end|>")))
    assert not one.is_accepting(_run(one, _ids(hermes, W_CALL + W_CALL + "<|im_end|>")))
    no_tools = tool_call_automaton(hermes_vocab, [], "auto")  # nothing to call: text only
    assert no_tools.allowed_tokens(0).tolist() == none.allowed_tokens(0).tolist()
    with pytest.raises(ValueError, match="at least one tool"):
        tool_call_node([], "required")
    short = tool_call_automaton(hermes_vocab, CARD_TOOLS, "auto", max_text_length=5)
    assert short.is_accepting(_run(short, _ids(hermes, "Hé 🙂!<|im_end|>")))
    assert not short.is_accepting(_run(short, _ids(hermes, "Hello!<|im_end|>")))


def test_tags_as_text_without_special_tokens() -> None:
    """A vocabulary without the tag tokens: tags are spelled in bytes and the turn ends on EOS."""
    vocab = Vocabulary.from_token_bytes([bytes([b]) for b in range(256)] + [b""], eos_ids=[256])
    ta = tool_call_automaton(vocab, CARD_TOOLS, "auto")
    assert ta.specials == ()
    for text, ok in [(T_CALL, True), (T_CALL + "\n" + W_CALL, True), ("Just text.", True),
                     ("text with <tool_call> inside", False), (T_CALL + "<|im_end|>", False)]:
        assert ta.is_accepting(ta.walk(text.encode())) is ok, text
    assert 256 in ta.allowed_tokens(ta.walk(T_CALL.encode())).tolist()  # EOS ends the turn


def test_whitespace_options_reach_the_call(hermes: Any, hermes_vocab: Vocabulary) -> None:
    ta = tool_call_automaton(hermes_vocab, CARD_TOOLS, "required", whitespace="compact")
    compact = '<tool_call>\n{"name":"get_current_wind_speed","arguments":{"location":"Oslo"}}\n</tool_call><|im_end|>'
    assert ta.is_accepting(_run(ta, _ids(hermes, compact)))
    assert not ta.is_accepting(_run(ta, _ids(hermes, W_CALL + "<|im_end|>")))


# --------------------------------------------------------------------------- parsing


def test_parse_several_calls_both_orders() -> None:
    text = (T_CALL_ARGS_FIRST + "\n" + W_CALL + "<|im_end|>")
    calls = parse_tool_calls(text, CARD_TOOLS)
    assert calls == [
        ToolCall("get_current_temperature", {"location": "Paris, France", "unit": "celsius"}),
        ToolCall("get_current_wind_speed", {"location": "Oslo"}),
    ]
    assert parse_tool_calls("no calls here") == []
    # a closing tag inside a string argument does not end the call
    tricky = '<tool_call>\n{"name": "f", "arguments": {"s": "a </tool_call> b"}}\n</tool_call>'
    assert parse_tool_calls(tricky) == [ToolCall("f", {"s": "a </tool_call> b"})]
    # OpenAI-style string arguments are accepted
    assert parse_tool_calls('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>') == [
        ToolCall("f", {"x": 1})]


@pytest.mark.parametrize("text,index,name,match", [
    (W_CALL + '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Paris"\n</tool_call>',
     1, "get_current_temperature", "malformed JSON"),
    ('<tool_call>\n{"name": "get_current_wind_speed", "arguments": {"location": 3}}\n</tool_call>',
     0, "get_current_wind_speed", "do not match the schema at /location"),
    ('<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>', 0, "get_weather", "unknown tool"),
    (W_CALL + W_CALL + '<tool_call>\n{"arguments": {}}\n</tool_call>', 2, None, "missing string 'name'"),
    ('<tool_call>\n{"name": "get_current_wind_speed", "arguments": {"location": "x"}}', 0,
     "get_current_wind_speed", "unterminated"),
    ('<tool_call>\n{"name": "get_current_wind_speed", "arguments": [1]}\n</tool_call>', 0,
     "get_current_wind_speed", "must be an object"),
])
def test_parse_errors_name_the_call(text: str, index: int, name: str | None, match: str) -> None:
    with pytest.raises(ToolCallError, match=match) as info:
        parse_tool_calls(text, CARD_TOOLS)
    assert info.value.index == index and info.value.tool_name == name
    assert f"tool call {index + 1}" in str(info.value)


# --------------------------------------------------------------------------- tools as Python functions


def test_arguments_convert_to_the_functions_types() -> None:
    def plan(days: list[dt.date], mode: Literal["fast", "slow"] = "fast", *, limit: int = 3) -> str:
        return f"{[d.isoformat() for d in days]} {mode} {limit}"

    schema = {"type": "object", "properties": {
        "days": {"type": "array", "items": {"type": "string", "format": "date"}},
        "mode": {"enum": ["fast", "slow"]}, "limit": {"type": "integer"}}, "required": ["days"]}
    tool = Tool("plan", "Plan some days.", schema, plan)
    args = {"days": ["2024-05-01"], "limit": 2}
    tool.validate(args)
    assert tool.convert(args) == {"days": [dt.date(2024, 5, 1)], "limit": 2}
    msg = execute_tool_call(ToolCall("plan", args), [tool])
    assert msg == {"role": "tool", "name": "plan", "content": "['2024-05-01'] fast 2"}


def test_tool_failures_become_tool_responses() -> None:
    def boom(city: str) -> dict[str, Any]:
        """Explode.

        Args:
            city: A city.
        """
        raise RuntimeError(f"no weather in {city}")

    msg = execute_tool_call(ToolCall("boom", {"city": "Atlantis"}), [boom])
    assert msg["role"] == "tool" and msg["name"] == "boom"
    assert "RuntimeError: no weather in Atlantis" in msg["content"]
    bad_type = execute_tool_call(ToolCall("get_current_wind_speed", {"location": ["x"]}), CARD_TOOLS)
    assert "ValidationError" in bad_type["content"]
    unknown = execute_tool_call(ToolCall("nope", {}), CARD_TOOLS)
    assert "unknown tool 'nope'" in unknown["content"]
    assert execute_tool_call(ToolCall("get_current_wind_speed", {"location": "Oslo"}), CARD_TOOLS)["content"] == "6.0"


# --------------------------------------------------------------------------- generation with the tiny model


def _check_required_turn(turn: Any, tools: list[Tool], max_calls: int, ta: Any) -> None:
    assert turn.error is None, turn.error
    assert turn.complete and turn.text == ""
    assert 1 <= len(turn.calls) <= max_calls
    by_name = {t.name: t for t in tools}
    for call in turn.calls:
        by_name[call.name].validate(call.arguments)
        if call.name == "get_current_temperature":
            assert call.arguments["unit"] in ("celsius", "fahrenheit")
    assert turn.raw.startswith("<tool_call>\n") and turn.raw.endswith("\n</tool_call>")
    assert turn.raw.count("<tool_call>") == turn.raw.count("</tool_call>") == len(turn.calls)
    _check_ends_with_im_end(turn, ta)


def _check_ends_with_im_end(turn: Any, ta: Any) -> None:
    """Engine._decode cuts the stop token; the turn is accepted only with <|im_end|> after it."""
    im_end = ta.vocab.special_id("<|im_end|>")
    assert not ta.is_accepting(_run(ta, turn.token_ids))
    assert ta.is_accepting(_run(ta, [*turn.token_ids, im_end]))


def test_required_small_batch(engine: Engine) -> None:
    tools = [_bounded(get_current_temperature, 12), _bounded(get_current_wind_speed, 12)]
    turns = generate_tool_calls_batch(engine, [CARD_MESSAGES] * 10, tools, "required", max_calls=2,
                                      temperature=1.0, seed=1234, max_new_tokens=160)
    ta = tool_call_automaton(engine.vocab, tools, "required", max_calls=2)
    for turn in turns:
        _check_required_turn(turn, tools, 2, ta)


def _biased_engine(tok: Any, token: str, bias: float) -> Engine:
    """Tiny random model whose lm_head favours ``token`` (so "auto" runs really choose between text and calls)."""
    import torch

    from jsonmode.tiny import tiny_llama

    model = tiny_llama(tok, extra_columns=32)
    old = model.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        head.bias[tok.convert_tokens_to_ids(token)] = bias
    model.lm_head = head
    return Engine(model, tok)


@pytest.fixture(scope="module")
def biased_engine(hermes: Any, torch_one_thread: Any) -> Engine:
    return _biased_engine(hermes, "<tool_call>", 12.0)


def _check_auto_turn(turn: Any, tools: list[Tool], max_calls: int, ta: Any) -> str:
    """'text' or 'calls'; anything else (a broken or truncated call) fails."""
    if turn.raw.startswith("<tool_call>"):
        _check_required_turn(turn, tools, max_calls, ta)
        return "calls"
    assert turn.calls == [] and turn.text == turn.raw and turn.text
    assert "<tool_call>" not in turn.text and "</tool_call>" not in turn.text
    assert turn.error is None or isinstance(turn.error, TruncatedOutputError)
    if not turn.complete:
        return "truncated text"
    _check_ends_with_im_end(turn, ta)
    return "text"


def test_auto_small_batch(biased_engine: Engine) -> None:
    tools = [_bounded(get_current_temperature, 12), _bounded(get_current_wind_speed, 12)]
    turns = generate_tool_calls_batch(biased_engine, [CARD_MESSAGES] * 16, tools, "auto", max_calls=2,
                                      max_text_length=16, temperature=1.0, seed=7, max_new_tokens=160)
    ta = tool_call_automaton(biased_engine.vocab, tools, "auto", max_calls=2, max_text_length=16)
    kinds = collections.Counter(_check_auto_turn(t, tools, 2, ta) for t in turns)
    assert kinds["truncated text"] == 0
    assert kinds["text"] > 0 and kinds["calls"] > 0, kinds


def test_generate_tool_calls_raises_truncation(engine: Engine) -> None:
    with pytest.raises(TruncatedOutputError) as info:
        generate_tool_calls(engine, CARD_MESSAGES, CARD_TOOLS, "required", max_new_tokens=5, temperature=1.0,
                            seed=0)
    assert info.value.text.startswith("<tool_call>\n")


def _card_tool_for_loop() -> Tool:
    """get_current_temperature, narrowed so that the random model must ask what the card's model asked."""
    tool = Tool.from_function(get_current_temperature)
    params = copy.deepcopy(tool.parameters)
    params["properties"]["location"]["enum"] = ["Paris, France"]
    params["properties"]["unit"]["enum"] = ["celsius"]
    return Tool.from_function(get_current_temperature, parameters=params)


def test_tool_loop_end_to_end_card_example(hermes: Any, engine: Engine) -> None:
    tools = [_card_tool_for_loop(), get_current_wind_speed]
    final, msgs = run_tool_loop(engine, CARD_MESSAGES, tools, tool_choice="get_current_temperature",
                                followup_tool_choice="none", max_calls=1, max_text_length=40,
                                temperature=1.0, seed=3, max_new_tokens=64)
    assert msgs[:2] == CARD_MESSAGES and len(msgs) == 5
    assert msgs[2] == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_current_temperature",
                                          "arguments": {"location": "Paris, France", "unit": "celsius"}}}]}
    assert msgs[3] == {"role": "tool", "name": "get_current_temperature", "content": "22.0"}
    assert msgs[4] == {"role": "assistant", "content": final} and final
    # the conversation renders exactly as on the model card (system prompt from the card's functions)
    assert render_tools_prompt(hermes, msgs[:4], CARD_TOOLS) == (
        CARD_PROMPT.removesuffix("<|im_start|>assistant\n") + CARD_CALL + CARD_TOOL_TURN + "<|im_start|>assistant\n")
    # once the answer follows, the template writes the tool turn as "...\n</tool_response>\n<|im_end|>"
    assert render_tools_prompt(hermes, msgs, CARD_TOOLS, add_generation_prompt=False).endswith(
        CARD_CALL + "<|im_start|>tool\n<tool_response>\n22.0\n</tool_response>\n<|im_end|>"
        f"<|im_start|>assistant\n{final}<|im_end|>\n")


def test_tool_loop_survives_tool_exceptions(engine: Engine) -> None:
    def get_current_wind_speed(location: str) -> float:
        """
        Get the current wind speed in km/h at a given location.

        Args:
            location: The location to get the temperature for, in the format "City, Country"
        """
        raise ConnectionError("weather service down")

    final, msgs = run_tool_loop(engine, CARD_MESSAGES, [_bounded(get_current_wind_speed, 8)], max_rounds=1,
                                tool_choice="required", max_calls=1, max_text_length=8, temperature=1.0, seed=5,
                                max_new_tokens=48)
    assert [m["role"] for m in msgs[2:]] == ["assistant", "tool", "assistant"]
    assert "ConnectionError: weather service down" in msgs[3]["content"]
    assert msgs[-1]["content"] == final


# --------------------------------------------------------------------------- acceptance figures


@pytest.mark.slow
def test_acceptance_200_required_and_auto(engine: Engine, biased_engine: Engine) -> None:
    """200 sampled "required" turns (8 batches x 25, distinct seeds) + 100 "auto" turns; prints the figures."""
    tools = [_bounded(get_current_temperature, 16), _bounded(get_current_wind_speed, 16)]
    t0 = time.perf_counter()
    turns = []
    for b in range(8):
        turns += generate_tool_calls_batch(engine, [CARD_MESSAGES] * 25, tools, "required", max_calls=3,
                                           temperature=1.0, seed=100 + b, max_new_tokens=256)
    t_req = time.perf_counter() - t0
    ta = tool_call_automaton(engine.vocab, tools, "required", max_calls=3)
    for turn in turns:
        _check_required_turn(turn, tools, 3, ta)
    calls = [c for t in turns for c in t.calls]
    order = collections.Counter(
        "arguments first" if m.startswith('{"arguments"') else "name first"
        for t in turns for m in re.findall(r"<tool_call>\n(.*)\n</tool_call>", t.raw))
    t0 = time.perf_counter()
    auto = []
    for b in range(4):
        auto += generate_tool_calls_batch(biased_engine, [CARD_MESSAGES] * 25, tools, "auto", max_calls=3,
                                          max_text_length=24, temperature=1.0, seed=200 + b, max_new_tokens=256)
    t_auto = time.perf_counter() - t0
    ta_auto = tool_call_automaton(biased_engine.vocab, tools, "auto", max_calls=3, max_text_length=24)
    kinds = collections.Counter(_check_auto_turn(t, tools, 3, ta_auto) for t in auto)
    print(f"\nrequired: {len(turns)} turns, {len(calls)} calls in {t_req:.1f}s; "
          f"calls/turn {sorted(collections.Counter(len(t.calls) for t in turns).items())}; "
          f"tools {dict(collections.Counter(c.name for c in calls))}; "
          f"units {dict(collections.Counter(c.arguments.get('unit') for c in calls if 'unit' in c.arguments))}; "
          f"key order {dict(order)}; max tokens {max(len(t.token_ids) for t in turns)}")
    print(f"auto: {len(auto)} turns in {t_auto:.1f}s: {dict(kinds)}")
    assert len(turns) == 200 and kinds["truncated text"] == 0
