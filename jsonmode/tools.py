"""Hermes 2 Pro function calling: tools from Python functions, constrained ``<tool_call>``, the tool loop.

Hermes 2 Pro answers a tool request with::

    <tool_call>
    {"name": "get_current_temperature", "arguments": {"location": "Paris, France", "unit": "celsius"}}
    </tool_call><|im_end|>

(``arguments`` may come first as well).  NousResearch's reference code prompts for this
and parses it with a regex and ``json.loads``, asking again when that fails.  Here the
whole assistant turn is one regular language compiled into a :class:`TokenAutomaton`, so
every call the model writes is well formed, names a tool and has arguments valid against
that tool's JSON Schema:

* ``tool_choice="required"`` (or a tool name)::

      CALLS  = BLOCK ("\\n"? BLOCK)*            (at most ``max_calls`` blocks)
      BLOCK  = <tool_call> "\\n" CALL "\\n" </tool_call>
      CALL   = anyOf over tools t: {"name": NAME_t, "arguments": ARGS_t}
                                  | {"arguments": ARGS_t, "name": NAME_t}
      TURN   = CALLS <|im_end|>

* ``"auto"``: ``TURN = (CALLS | TEXT) <|im_end|>``; ``"none"``: ``TURN = TEXT <|im_end|>``.
  ``TEXT`` is non-empty UTF-8 that does not contain the byte spelling of a tool tag or a
  ChatML control token.  Where the tokenizer has ``<tool_call>`` as one token it is a
  special symbol of the automaton (never bytes), so the first token decides: the
  ``<tool_call>`` token starts calls, anything else starts text, and text cannot spell the
  tag afterwards, so a parser never sees half a call.

``NAME_t`` is the tool's name as a JSON string constant and ``ARGS_t`` its parameters
schema compiled by :func:`jsonmode.compiler.schema_to_node` (``additionalProperties``
defaults to false: a model should not invent arguments).  Tags and ``<|im_end|>`` are
emitted as the tokenizer's single tokens when it has them (ids read from the tokenizer),
as text otherwise.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import fsm, regex
from .automaton import TokenAutomaton, automaton_from_node, cache_key
from .compiler import CompileOptions, schema_to_node
from .errors import JsonModeError, OutputError, SchemaError, ToolCallError, TruncatedOutputError
from .fsm import EMPTY, Node, alt, lit, opt, rep, seq, star, sym
from .vocab import Vocabulary

__all__ = [
    "Tool",
    "ToolCall",
    "ToolTurn",
    "as_tools",
    "execute_tool_call",
    "generate_tool_calls",
    "generate_tool_calls_batch",
    "parse_tool_calls",
    "render_tools_prompt",
    "run_tool_loop",
    "tool_call_automaton",
    "tool_call_node",
    "tool_schema",
]

Message = dict[str, Any]
ToolLike = Any  # a Python function, a Tool, or an OpenAI-style tool dict

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_RESPONSE_OPEN = "<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>"
TOOLS_OPEN = "<tools>"
TOOLS_CLOSE = "</tools>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
TAGS = (TOOLS_OPEN, TOOLS_CLOSE, TOOL_CALL_OPEN, TOOL_CALL_CLOSE, TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE)
# byte strings free text may not contain: a parser (or the next prompt) would read them as structure
FORBIDDEN_IN_TEXT = (*TAGS, IM_START, IM_END)

# --------------------------------------------------------------------------- the Hermes prompt

HERMES_TOOLS_PREAMBLE = (
    "You are a function calling AI model. You are provided with function signatures within <tools></tools> "
    "XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about "
    "what values to plug into functions. Here are the available tools: <tools> "
)
# NOTE: the trailing "}}" is verbatim from the tool_use template (one brace more than the JSON needs).
HERMES_FUNCTION_CALL_SCHEMA = (
    '{"properties": {"name": {"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", '
    '"type": "object"}}, "required": ["name", "arguments"], "title": "FunctionCall", "type": "object"}}'
)
HERMES_TOOLS_INSTRUCTIONS = (
    " </tools>"
    "Use the following pydantic model json schema for each tool call you will make: "
    + HERMES_FUNCTION_CALL_SCHEMA + "\n"
    "For each function call return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags as follows:\n"
    "<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-dict>}\n'
    "</tool_call>"
)


# --------------------------------------------------------------------------- tools


def tool_schema(fn: ToolLike) -> dict[str, Any]:
    """OpenAI-style tool schema ``{"type": "function", "function": {name, description, parameters[, return]}}``.

    Python functions go through ``transformers.utils.get_json_schema``: name, type hints and
    the Google-style docstring (``Args:``, ``Returns:``, ``(choices: [...])`` -> ``enum``).
    """
    return as_tools([fn])[0].schema


def _json_schema_of_function(fn: Callable[..., Any]) -> dict[str, Any]:
    from transformers.utils import get_json_schema
    from transformers.utils.chat_template_utils import DocstringParsingException, TypeHintParsingException

    try:
        return get_json_schema(fn)
    except (DocstringParsingException, TypeHintParsingException) as e:
        name = getattr(fn, "__name__", repr(fn))
        raise SchemaError(
            f"cannot describe tool {name!r}: {e} (tools need type hints and a Google-style docstring "
            "with an Args: entry per parameter; or pass Tool(name, description, parameters, fn))"
        ) from e


@dataclass(frozen=True)
class Tool:
    """One callable tool: its name, description, JSON Schema of the arguments, and the Python function.

    ``Tool.from_function(fn)`` reads everything from the function; any field can be
    overridden (``Tool.from_function(fn, parameters={...})`` narrows what the model may
    pass, e.g. ``maxLength`` on strings).  ``fn`` may be None for schema-only tools.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    fn: Callable[..., Any] | None = field(default=None, compare=False)
    returns: dict[str, Any] | None = None
    _adapters: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **overrides: Any) -> Tool:
        f = _json_schema_of_function(fn)["function"]
        kw: dict[str, Any] = {
            "name": f["name"],
            "description": f.get("description") or "",
            "parameters": f["parameters"],
            "returns": f.get("return"),
        }
        kw.update(overrides)
        return cls(fn=fn, **kw)

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any], fn: Callable[..., Any] | None = None) -> Tool:
        """From ``{"type": "function", "function": {...}}`` or the bare ``{"name", "parameters", ...}``."""
        f = schema.get("function", schema) if schema.get("type", "function") == "function" else schema
        if not isinstance(f, Mapping) or not isinstance(f.get("name"), str):
            raise SchemaError(f"a tool schema needs a 'name': {dict(schema)!r}")
        params = f.get("parameters") or {"type": "object", "properties": {}}
        return cls(name=f["name"], description=f.get("description") or "", parameters=dict(params), fn=fn,
                   returns=f.get("return"))

    @property
    def schema(self) -> dict[str, Any]:
        f: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": self.parameters}
        if self.returns is not None:
            f["return"] = self.returns
        return {"type": "function", "function": f}

    # ---------------------------------------------------------------- arguments

    def validate(self, arguments: Any) -> None:
        """Raise :class:`jsonschema.ValidationError` unless ``arguments`` is valid for ``parameters``."""
        from .validate import validate_value

        validate_value(arguments, self.parameters)

    def convert(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """JSON arguments -> the function's own types (pydantic, one ``TypeAdapter`` per parameter).

        Raises ``pydantic.ValidationError`` (or ``TypeError`` for unknown/missing arguments).
        """
        if self.fn is None:
            return dict(arguments)
        sig = inspect.signature(self.fn)
        hints = _type_hints(self.fn)
        out: dict[str, Any] = {}
        accepts_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        for name, value in arguments.items():
            p = sig.parameters.get(name)
            if p is None or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                if accepts_kw:
                    out[name] = value
                    continue
                raise TypeError(f"{self.name}() got an unexpected argument {name!r}")
            out[name] = self._adapter(name, hints.get(name, Any)).validate_python(value)
        missing = [p.name for p in sig.parameters.values()
                   if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in out]
        if missing:
            raise TypeError(f"{self.name}() missing required arguments: {', '.join(missing)}")
        return out

    def _adapter(self, name: str, hint: Any) -> Any:
        ad = self._adapters.get(name)
        if ad is None:
            from pydantic import ConfigDict, TypeAdapter

            try:
                ad = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
            except Exception:  # noqa: BLE001 - e.g. config not allowed on a BaseModel hint
                ad = TypeAdapter(hint)
            self._adapters[name] = ad
        return ad

    def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Convert ``arguments`` and call the function with them."""
        if self.fn is None:
            raise TypeError(f"tool {self.name!r} has no Python function")
        kw = self.convert(arguments)
        sig = inspect.signature(self.fn)
        pos = [kw.pop(p.name) for p in sig.parameters.values() if p.kind is p.POSITIONAL_ONLY and p.name in kw]
        return self.fn(*pos, **kw)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to no conversion
        return {}


def as_tools(tools: Iterable[ToolLike]) -> list[Tool]:
    """Normalize functions / :class:`Tool` / tool-schema dicts; names must be unique."""
    out: list[Tool] = []
    for t in tools:
        if isinstance(t, Tool):
            out.append(t)
        elif isinstance(t, Mapping):
            out.append(Tool.from_schema(t))
        elif callable(t):
            out.append(Tool.from_function(t))
        else:
            raise TypeError(f"a tool must be a function, a Tool or a tool schema dict, not {type(t).__name__}")
    names = [t.name for t in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SchemaError(f"tool names must be unique: {', '.join(dup)}")
    return out


# --------------------------------------------------------------------------- calls


@dataclass
class ToolCall:
    """One parsed call: the tool's name and its JSON arguments (already schema-valid when parsed with tools)."""

    name: str
    arguments: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}

    def to_openai(self) -> dict[str, Any]:
        """The entry of an assistant message's ``tool_calls`` list (what chat templates read)."""
        return {"type": "function", "function": self.to_dict()}


@dataclass
class ToolTurn:
    """One assistant turn: free ``text`` or ``calls`` (never both), with the raw output.

    ``complete`` is True when the turn ended on the end-of-turn token; ``error`` is a
    :class:`TruncatedOutputError` when the token budget ran out, an :class:`OutputError`
    when constrained decoding failed, a :class:`ToolCallError` when a call did not parse.
    """

    text: str
    calls: list[ToolCall]
    raw: str = ""
    token_ids: list[int] = field(default_factory=list)
    complete: bool = True
    error: JsonModeError | None = None

    @property
    def message(self) -> Message:
        """The assistant message to append to the conversation."""
        if self.calls:
            return {"role": "assistant", "content": "", "tool_calls": [c.to_openai() for c in self.calls]}
        return {"role": "assistant", "content": self.text}

    def unwrap(self) -> ToolTurn:
        if self.error is not None:
            raise self.error
        return self


def _call_error(message: str, text: str, index: int | None, name: str | None) -> ToolCallError:
    where = f"tool call {index + 1}" if index is not None else "tool call"
    if name:
        where += f" ({name})"
    err = ToolCallError(f"{where}: {message}", text)
    err.index = index  # type: ignore[attr-defined]
    err.tool_name = name  # type: ignore[attr-defined]
    return err


_WS = " \t\r\n"


def parse_tool_calls(text: str, tools: Iterable[ToolLike] | None = None) -> list[ToolCall]:
    """Every ``<tool_call> {...} </tool_call>`` block of ``text``, in order (for unconstrained output too).

    The JSON object is read with ``json.JSONDecoder.raw_decode``, so ``</tool_call>`` inside a
    string argument does not cut it short; ``name``/``arguments`` may come in either order.
    With ``tools``, names must be known and arguments valid against the tool's schema.
    Any problem raises :class:`ToolCallError` naming the call (``.index`` 0-based, ``.tool_name``).
    """
    toolset = {t.name: t for t in as_tools(tools)} if tools is not None else None
    dec = json.JSONDecoder()
    calls: list[ToolCall] = []
    pos = 0
    i = 0
    while True:
        start = text.find(TOOL_CALL_OPEN, pos)
        if start < 0:
            break
        j = start + len(TOOL_CALL_OPEN)
        while j < len(text) and text[j] in _WS:
            j += 1
        close = text.find(TOOL_CALL_CLOSE, j)
        block = text[start: close + len(TOOL_CALL_CLOSE)] if close >= 0 else text[start:]
        try:
            obj, end = dec.raw_decode(text, j)
        except json.JSONDecodeError as e:
            name = _guess_name(text[j: close if close >= 0 else len(text)])
            raise _call_error(f"malformed JSON: {e.msg} (char {e.pos - j})", block, i, name) from e
        k = end
        while k < len(text) and text[k] in _WS:
            k += 1
        if not text.startswith(TOOL_CALL_CLOSE, k):
            name = obj.get("name") if isinstance(obj, dict) and isinstance(obj.get("name"), str) else None
            what = "unterminated (no </tool_call>)" if close < 0 else f"unexpected text after the JSON object: {text[k:k + 20]!r}"
            raise _call_error(what, block, i, name)
        block = text[start: k + len(TOOL_CALL_CLOSE)]
        calls.append(_check_call(obj, block, i, toolset))
        pos = k + len(TOOL_CALL_CLOSE)
        i += 1
    return calls


def _guess_name(fragment: str) -> str | None:
    m = re.search(r'"name"\s*:\s*"([^"\\]*)"', fragment)
    return m.group(1) if m else None


def _check_call(obj: Any, block: str, i: int, toolset: dict[str, Tool] | None) -> ToolCall:
    if not isinstance(obj, dict):
        raise _call_error(f"expected a JSON object, got {type(obj).__name__}", block, i, None)
    name = obj.get("name")
    if not isinstance(name, str):
        raise _call_error("missing string 'name'", block, i, None)
    if "arguments" not in obj:
        raise _call_error("missing 'arguments'", block, i, name)
    args = obj["arguments"]
    if isinstance(args, str):  # OpenAI style: arguments as a JSON string
        try:
            args = json.loads(args)
        except json.JSONDecodeError as e:
            raise _call_error(f"'arguments' string is not JSON: {e}", block, i, name) from e
    if not isinstance(args, dict):
        raise _call_error(f"'arguments' must be an object, got {type(args).__name__}", block, i, name)
    extra = sorted(set(obj) - {"name", "arguments"})
    if extra:
        raise _call_error(f"unexpected keys {extra} (a call has only 'name' and 'arguments')", block, i, name)
    if toolset is not None:
        tool = toolset.get(name)
        if tool is None:
            raise _call_error(f"unknown tool (known: {', '.join(toolset) or 'none'})", block, i, name)
        import jsonschema

        try:
            tool.validate(args)
        except jsonschema.ValidationError as e:
            path = "/" + "/".join(str(p) for p in e.absolute_path)
            raise _call_error(f"arguments do not match the schema at {path}: {e.message}", block, i, name) from e
    return ToolCall(name, args)


# --------------------------------------------------------------------------- the turn automaton


def _choice_name(tool_choice: Any) -> str:
    if isinstance(tool_choice, Mapping):  # OpenAI: {"type": "function", "function": {"name": ...}}
        f = tool_choice.get("function", tool_choice)
        tool_choice = f.get("name") if isinstance(f, Mapping) else None
    if not isinstance(tool_choice, str):
        raise ValueError(f"tool_choice must be 'auto', 'required', 'none' or a tool name, not {tool_choice!r}")
    return tool_choice


def turn_specials(vocab: Vocabulary) -> list[str]:
    """The tags of the turn language that ``vocab`` has as single tokens (special symbols 256+i)."""
    return [t for t in (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, IM_END) if vocab.special_id(t) is not None]


_TEXT_DFAS: dict[tuple[tuple[bytes, ...], int | None], fsm.DFA] = {}


def free_text_node(forbidden: Sequence[str] = FORBIDDEN_IN_TEXT, max_length: int | None = None) -> Node:
    """Non-empty UTF-8 text of at most ``max_length`` characters containing none of ``forbidden`` (as bytes)."""
    key = (tuple(f.encode() for f in forbidden), max_length)
    d = _TEXT_DFAS.get(key)
    if d is None:
        if max_length is not None and max_length < 1:
            raise ValueError("max_text_length must be at least 1")
        char = regex.char_class_utf8(((0, regex.MAX_CODE_POINT),))
        text = regex.minimize(fsm.compile_dfa(rep(char, 1, max_length)))
        anyb = star(fsm.Sym(fsm.ALL_BYTES))
        bad = fsm.compile_dfa(seq(anyb, alt(*(lit(f) for f in key[0])), anyb))
        d = regex.minimize(fsm.difference(text, bad))
        _TEXT_DFAS[key] = d
    return fsm.DfaNode(d)


def _separators(opts: CompileOptions) -> tuple[Node, Node, Node]:
    """(item separator, key separator, optional inner whitespace) matching the compiler's style."""
    if opts.whitespace == "compact":
        return lit(","), lit(":"), EMPTY
    if opts.whitespace == "flexible":
        w = rep(sym(0x20, 0x09, 0x0A, 0x0D), 0, opts.max_whitespace)
        return seq(w, lit(","), w), seq(w, lit(":"), w), w
    return lit(", "), lit(": "), EMPTY


def tool_call_node(
    tools: Iterable[ToolLike],
    tool_choice: Any = "auto",
    *,
    specials: Sequence[str] = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, IM_END),
    end: bool = True,
    max_calls: int | None = None,
    max_text_length: int | None = None,
    **compile_options: Any,
) -> Node:
    """The assistant turn as an :mod:`jsonmode.fsm` AST (see the module docstring).

    ``specials``: tags that are single tokens (symbol ``256 + index``); the others are
    spelled as text.  ``end``: finish with ``<|im_end|>`` (symbol or text per ``specials``).
    ``max_calls`` bounds the calls per turn, ``max_text_length`` the characters of free text.
    ``compile_options`` go to :func:`schema_to_node` for each tool's parameters
    (``additional_properties`` defaults to False here).
    """
    toolset = as_tools(tools)
    choice = _choice_name(tool_choice)
    compile_options.setdefault("additional_properties", False)
    opts = CompileOptions(**compile_options)
    if max_calls is not None and max_calls < 1:
        raise ValueError("max_calls must be at least 1")
    specials = list(specials)

    def tag(t: str) -> Node:
        return sym(256 + specials.index(t)) if t in specials else lit(t)

    if choice == "none" or (choice == "auto" and not toolset):
        body = free_text_node(max_length=max_text_length)
    else:
        if choice in ("auto", "required"):
            chosen = toolset
        else:
            chosen = [t for t in toolset if t.name == choice]
            if not chosen:
                raise ValueError(f"tool_choice {choice!r} names no tool (tools: {', '.join(t.name for t in toolset)})")
        if not chosen:
            raise ValueError(f"tool_choice={choice!r} needs at least one tool")
        item_sep, key_sep, ws = _separators(opts)
        forms = []
        for t in chosen:
            name = seq(lit('"name"'), key_sep, lit('"'), regex.literal_json_string(t.name), lit('"'))
            args = seq(lit('"arguments"'), key_sep, schema_to_node(t.parameters, opts))
            forms.append(alt(seq(name, item_sep, args), seq(args, item_sep, name)))
        call = seq(lit("{"), ws, alt(*forms), ws, lit("}"))
        block = seq(tag(TOOL_CALL_OPEN), lit("\n"), call, lit("\n"), tag(TOOL_CALL_CLOSE))
        more = rep(seq(opt(lit("\n")), block), 0, None if max_calls is None else max_calls - 1)
        calls = seq(block, more)
        body = alt(calls, free_text_node(max_length=max_text_length)) if choice == "auto" else calls
    return seq(body, tag(IM_END)) if end else body


_AUTOMATA: dict[str, TokenAutomaton] = {}
_AUTOMATA_LOCK = threading.Lock()
_AUTOMATA_MAX = 32


def tool_call_automaton(
    vocab: Vocabulary,
    tools: Iterable[ToolLike],
    tool_choice: Any = "auto",
    *,
    max_calls: int | None = None,
    max_text_length: int | None = None,
    **compile_options: Any,
) -> TokenAutomaton:
    """Token automaton of one assistant turn under ``tool_choice`` (cached per tools/choice/vocabulary).

    ``tool_choice``: ``"auto"`` (text or calls), ``"required"`` (at least one call),
    ``"none"`` (text only) or a tool name (calls of that tool only; also OpenAI's
    ``{"type": "function", "function": {"name": ...}}``).  ``max_calls`` bounds the calls
    per turn (1 = no parallel calls), ``max_text_length`` the characters of a text
    answer (so that a text turn must end within a budget).  The turn ends with ``<|im_end|>`` when the
    vocabulary has it, else with any EOS token.
    """
    toolset = as_tools(tools)
    choice = _choice_name(tool_choice)
    specials = turn_specials(vocab)
    end = IM_END in specials
    payload = {"tools": [t.schema for t in toolset], "choice": choice, "max_calls": max_calls,
               "max_text_length": max_text_length, "specials": specials, "kind": "jsonmode.tools/1"}
    key = cache_key(payload, vocab, dict(compile_options))
    with _AUTOMATA_LOCK:
        hit = _AUTOMATA.get(key)
    if hit is not None:
        return hit
    node = tool_call_node(toolset, choice, specials=specials, end=end, max_calls=max_calls,
                          max_text_length=max_text_length, **compile_options)
    max_states = compile_options.get("max_lazy_states")
    ta = automaton_from_node(node, vocab, specials=specials, max_states=max_states, key=key)
    with _AUTOMATA_LOCK:
        if len(_AUTOMATA) >= _AUTOMATA_MAX:
            _AUTOMATA.pop(next(iter(_AUTOMATA)))
        _AUTOMATA[key] = ta
    return ta


# --------------------------------------------------------------------------- prompt rendering


def has_tool_use_template(tokenizer: Any) -> bool:
    """True when the tokenizer carries a named ``tool_use`` chat template."""
    tpl = getattr(tokenizer, "chat_template", None)
    return isinstance(tpl, Mapping) and "tool_use" in tpl


def _tool_content(value: Any) -> str:
    """A tool result as the text of a tool message (strings as-is, everything else as JSON)."""
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic model
        value = dump(mode="json")
    return json.dumps(value, ensure_ascii=False, default=str)


def _normalize_messages(messages: Sequence[Message]) -> list[Message]:
    out: list[Message] = []
    for m in messages:
        if "role" not in m:
            raise ValueError(f"chat messages need a 'role': {m!r}")
        m = dict(m)
        if m.get("content") is None:
            m["content"] = ""
        calls = m.get("tool_calls")
        if calls is not None:
            norm = []
            for c in calls:
                if isinstance(c, ToolCall):
                    c = c.to_openai()
                else:
                    c = dict(c)
                    f = dict(c.get("function", c))
                    if isinstance(f.get("arguments"), str):
                        f["arguments"] = json.loads(f["arguments"])
                    c = {**c, "function": f} if "function" in c else {"type": "function", "function": f}
                norm.append(c)
            m["tool_calls"] = norm
        if m["role"] == "tool" and not isinstance(m["content"], str):
            m["content"] = _tool_content(m["content"])
        out.append(m)
    return out


_PY_TYPES = {"string": "str", "number": "float", "integer": "int", "boolean": "bool", "null": "None"}


def _py_type(spec: Any) -> str:
    """The template's ``json_to_python_type`` (its ``list[...]`` case fixed: the jinja prints ``list[Union[]]``)."""
    if not isinstance(spec, Mapping):
        return "Any"
    t = spec.get("type")
    if isinstance(t, str) and t in _PY_TYPES:
        return _PY_TYPES[t]
    if t == "array":
        return f"list[{_py_type(spec['items'])}]" if isinstance(spec.get("items"), Mapping) else "list[Any]"
    if t == "object":
        if "additionalProperties" in spec:
            return f"dict[str, {_py_type(spec['additionalProperties'])}]"
        return "dict"
    if isinstance(t, list):
        return "Union[" + ",".join(_py_type({"type": x}) for x in t) + "]"
    return "Any"


def _render_tool_signature(tool: Tool) -> str:
    """One tool inside ``<tools>``, character for character as the tool_use template writes it."""
    props: Mapping[str, Any] = tool.parameters.get("properties") or {}
    desc = tool.name + "(" + ", ".join(f"{p}: {_py_type(s)}" for p, s in props.items()) + ")"
    if tool.returns is not None:
        desc += " -> " + _py_type(tool.returns)
    desc += " - " + tool.description + "\n\n"
    for i, (p, s) in enumerate(props.items()):
        if i == 0:
            desc += "    Args:\n"
        pd = s.get("description", "") if isinstance(s, Mapping) else ""
        desc += "        " + p + "(" + _py_type(s) + "): " + str(pd).strip()
    if tool.returns is not None and "description" in tool.returns:
        desc += "\n    Returns:\n        " + str(tool.returns["description"])
    params = json.dumps(tool.parameters, ensure_ascii=False) if props else "{}"
    return ('{"type": "function", "function": {"name": "' + tool.name + '", "description": "' + desc + '"'
            + ', "parameters": ' + params + "}")


def hermes_tools_system_prompt(tools: Iterable[ToolLike]) -> str:
    """The Hermes function-calling system prompt (the text of the system turn, without the ChatML wrapper)."""
    return HERMES_TOOLS_PREAMBLE + "\n".join(_render_tool_signature(t) for t in as_tools(tools)) + \
        HERMES_TOOLS_INSTRUCTIONS


def render_hermes_tools(
    messages: Sequence[Message], tools: Iterable[ToolLike], *, bos_token: str = "", add_generation_prompt: bool = True
) -> str:
    """Our rendering of Hermes 2 Pro's ``tool_use`` chat template.

    Identical to the template's output except for its two known quirks: the tools system
    prompt is a proper ``<|im_start|>system ... <|im_end|>\\n`` turn, and an assistant
    tool call is ``{"name": "...", "arguments": {...}}`` (the template writes a stray ``"}``
    after the name).  Tool results: consecutive ``tool`` messages share one ``tool`` turn,
    each inside ``<tool_response>\\n ... \\n</tool_response>``.
    """
    msgs = _normalize_messages(messages)
    out = [bos_token, IM_START, "system\n", hermes_tools_system_prompt(tools), IM_END, "\n"]
    n = len(msgs)
    for i, m in enumerate(msgs):
        role = m["role"]
        if role in ("user", "system") or (role == "assistant" and m.get("tool_calls") is None):
            out.append(f"{IM_START}{role}\n{m['content']}{IM_END}\n")
        elif role == "assistant":
            out.append(IM_START + "assistant")
            for c in m["tool_calls"]:
                f = c["function"]
                call = '{"name": "' + f["name"] + '"'
                if "arguments" in f:
                    call += ', "arguments": ' + json.dumps(f["arguments"], ensure_ascii=False)
                out.append(f"\n{TOOL_CALL_OPEN}\n{call}}}\n{TOOL_CALL_CLOSE}")
            out.append(IM_END + "\n")
        elif role == "tool":
            if "name" not in m:
                raise ValueError("tool messages need a 'name': the name of the function that was called")
            last = i == n - 1
            if i > 0 and msgs[i - 1]["role"] != "tool":
                out.append(IM_START + "tool\n")
            out.append(f"{TOOL_RESPONSE_OPEN}\n{m['content']}\n{TOOL_RESPONSE_CLOSE}" + ("" if last else "\n"))
            if last or msgs[i + 1]["role"] != "tool":
                out.append(IM_END)
        else:
            raise ValueError(f"unsupported role {role!r} (system, user, assistant, tool)")
    if add_generation_prompt:
        out.append(IM_START + "assistant\n")
    return "".join(out)


def render_tools_prompt(
    tokenizer: Any, messages: Sequence[Message], tools: Iterable[ToolLike], *, add_generation_prompt: bool = True
) -> str:
    """The prompt text for a tool-calling turn.

    The tokenizer's ``tool_use`` chat template when it has one; otherwise
    :func:`render_hermes_tools` (with the tokenizer's BOS token in front, as the template does).
    """
    toolset = as_tools(tools)
    msgs = _normalize_messages(messages)
    if has_tool_use_template(tokenizer):
        return tokenizer.apply_chat_template(
            msgs, chat_template="tool_use", tools=[t.schema for t in toolset],
            add_generation_prompt=add_generation_prompt, tokenize=False,
        )
    bos = getattr(tokenizer, "bos_token", None) or ""
    return render_hermes_tools(msgs, toolset, bos_token=bos, add_generation_prompt=add_generation_prompt)


# --------------------------------------------------------------------------- generation


def _decode_turn(vocab: Vocabulary, ids: Sequence[int], specials: Sequence[str]) -> str:
    """Bytes of the generated ids, with tag tokens written as their text even where they are special."""
    tag_of = {vocab.special_id(t): t.encode() for t in specials}
    tb, size, special = vocab.token_bytes, vocab.size, vocab.special_ids
    parts = []
    for raw in ids:
        i = int(raw)
        if i in tag_of:
            parts.append(tag_of[i])
        elif 0 <= i < size and i not in special:
            parts.append(tb[i])
    return b"".join(parts).decode("utf-8", errors="replace")


def _turn_from_row(ta: TokenAutomaton, toolset: list[Tool], ids: list[int], state: int,
                   err: str | None) -> ToolTurn:
    from .processor import ERROR, FINISHED

    raw = _decode_turn(ta.vocab, ids, ta.specials)
    complete = state == FINISHED or ta.is_accepting(state)
    is_calls = raw.startswith(TOOL_CALL_OPEN)  # text can never contain the tag: the first token decides
    turn = ToolTurn(text="" if is_calls else raw, calls=[], raw=raw, token_ids=list(ids), complete=complete)
    if state == ERROR:
        turn.complete = False
        turn.error = OutputError(f"constrained decoding failed: {err}", raw)
    elif not complete:
        turn.error = TruncatedOutputError("the token budget ran out before the assistant turn ended", raw)
    elif is_calls:
        try:
            turn.calls = parse_tool_calls(raw, toolset)
        except ToolCallError as e:
            turn.error = e
    return turn


def generate_tool_calls_batch(
    engine: Any,
    conversations: Sequence[Sequence[Message]],
    tools: Iterable[ToolLike],
    tool_choice: Any = "auto",
    *,
    max_calls: int | None = None,
    max_text_length: int | None = None,
    max_new_tokens: int = 1024,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    compile_options: Mapping[str, Any] | None = None,
) -> list[ToolTurn]:
    """One padded batch of assistant turns (one per conversation); never raises for a row: see ``turn.error``."""
    toolset = as_tools(tools)
    opts = {**getattr(engine, "compile_options", {}), **dict(compile_options or {})}
    ta = tool_call_automaton(engine.vocab, toolset, tool_choice, max_calls=max_calls,
                             max_text_length=max_text_length, **opts)
    texts = [render_tools_prompt(engine.tokenizer, msgs, toolset) for msgs in conversations]
    rows = engine._decode(ta, texts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                          seed=seed)
    return [_turn_from_row(ta, toolset, ids, state, err) for ids, state, err in rows]


def generate_tool_calls(
    engine: Any,
    messages: Sequence[Message],
    tools: Iterable[ToolLike],
    tool_choice: Any = "auto",
    **kwargs: Any,
) -> ToolTurn:
    """One assistant turn under ``tool_choice``: free text or schema-valid :class:`ToolCall` s.

    ``engine`` is a :class:`jsonmode.Engine` (its model, tokenizer and vocabulary are used).
    Keywords: ``max_calls``, ``max_text_length``, ``max_new_tokens``, ``temperature``, ``top_p``, ``seed``,
    ``compile_options``.  Raises the turn's error (e.g. :class:`TruncatedOutputError`
    when the token budget ran out; its ``text`` keeps the partial output).
    """
    return generate_tool_calls_batch(engine, [messages], tools, tool_choice, **kwargs)[0].unwrap()


# --------------------------------------------------------------------------- the loop


TOOL_ERROR_TEMPLATE = (
    "There was an error when executing the function: {name}\n"
    "Here's the error traceback: {error}\n"
    "Please call this function again with correct arguments within XML tags <tool_call></tool_call>"
)


def execute_tool_call(call: ToolCall, tools: Iterable[ToolLike]) -> Message:
    """Run ``call`` and return the ``tool`` message; any exception becomes the message's content."""
    by_name = {t.name: t for t in as_tools(tools)}
    try:
        tool = by_name.get(call.name)
        if tool is None:
            raise LookupError(f"unknown tool {call.name!r}")
        content = _tool_content(tool.invoke(call.arguments))
    except Exception as e:  # noqa: BLE001 - the model gets to see every failure of a tool
        content = TOOL_ERROR_TEMPLATE.format(name=call.name, error=f"{type(e).__name__}: {e}")
    return {"role": "tool", "name": call.name, "content": content}


def run_tool_loop(
    engine: Any,
    messages: Sequence[Message],
    tools: Iterable[ToolLike],
    *,
    max_rounds: int = 5,
    tool_choice: Any = "auto",
    followup_tool_choice: Any = "auto",
    seed: int | None = None,
    **kwargs: Any,
) -> tuple[str, list[Message]]:
    """Ask, run the requested tools, append their results, ask again, until the model answers in text.

    The first request uses ``tool_choice``, later ones ``followup_tool_choice``.  After
    ``max_rounds`` rounds of tool calls the model is asked once more with
    ``tool_choice="none"``, so the conversation always ends in a text answer.  Tool
    exceptions (and arguments the function's types reject) go back to the model as the
    tool's response.  Returns ``(final_text, messages)``; ``messages`` is a new list (the
    input plus every assistant and tool message).  Other keywords as in :func:`generate_tool_calls`.
    """
    toolset = as_tools(tools)
    msgs = [dict(m) for m in messages]
    for r in range(max_rounds + 1):
        choice = "none" if r == max_rounds else (tool_choice if r == 0 else followup_tool_choice)
        turn = generate_tool_calls(engine, msgs, toolset, choice, seed=None if seed is None else seed + r, **kwargs)
        msgs.append(turn.message)
        if not turn.calls:
            return turn.text, msgs
        for call in turn.calls:
            msgs.append(execute_tool_call(call, toolset))
    raise AssertionError("unreachable: the last round is text only")  # pragma: no cover

