"""jsonmode: schema-valid JSON from local LLMs, right the first time.

Data flow: schema (:mod:`.schema`, :mod:`.compiler`) -> byte DFA (:mod:`.fsm`) ->
token automaton over the real vocabulary (:mod:`.vocab`, :mod:`.automaton`) ->
logits processor (:mod:`.processor`) -> decode loop (:mod:`.engine`) -> validator
(:mod:`.validate`).
"""

from .automaton import TokenAutomaton, compile_automaton
from .compiler import CompileOptions
from .decode import decode_batch
from .engine import BatchGenerationError, Engine, Generation, generate
from .errors import (
    AutomatonTooLarge,
    CompileTimeoutError,
    JsonModeError,
    OutputError,
    RecursionLimitError,
    SchemaError,
    TokenRejectedError,
    ToolCallError,
    TruncatedOutputError,
    UnsatisfiableSchemaError,
    ValidationError,
)
from .processor import JsonLogitsProcessor
from .prompt import json_mode_messages, json_mode_system_prompt
from .tools import (
    Tool,
    ToolCall,
    ToolTurn,
    execute_tool_call,
    generate_tool_calls,
    generate_tool_calls_batch,
    parse_tool_calls,
    render_tools_prompt,
    run_tool_loop,
    tool_call_automaton,
    tool_schema,
)
from .validate import parse_output
from .vocab import Vocabulary

__all__ = [
    "AutomatonTooLarge",
    "BatchGenerationError",
    "CompileOptions",
    "CompileTimeoutError",
    "Engine",
    "Generation",
    "JsonLogitsProcessor",
    "JsonModeError",
    "OutputError",
    "RecursionLimitError",
    "SchemaError",
    "TokenAutomaton",
    "TokenRejectedError",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolTurn",
    "TruncatedOutputError",
    "UnsatisfiableSchemaError",
    "ValidationError",
    "Vocabulary",
    "compile_automaton",
    "decode_batch",
    "execute_tool_call",
    "generate",
    "generate_tool_calls",
    "generate_tool_calls_batch",
    "json_mode_messages",
    "json_mode_system_prompt",
    "parse_output",
    "parse_tool_calls",
    "render_tools_prompt",
    "run_tool_loop",
    "tool_call_automaton",
    "tool_schema",
]
__version__ = "0.1.0"
