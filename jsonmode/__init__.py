"""jsonmode: schema-valid JSON from local LLMs, right the first time.

Data flow: schema (:mod:`.schema`, :mod:`.compiler`) -> byte DFA (:mod:`.fsm`) ->
token automaton over the real vocabulary (:mod:`.vocab`, :mod:`.automaton`) ->
logits processor (:mod:`.processor`) -> decode loop (:mod:`.engine`) -> validator
(:mod:`.validate`).
"""

from .automaton import TokenAutomaton, compile_automaton
from .compiler import CompileOptions
from .engine import BatchGenerationError, Engine, Generation, generate
from .errors import (
    AutomatonTooLarge,
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
from .validate import parse_output
from .vocab import Vocabulary

__all__ = [
    "AutomatonTooLarge",
    "BatchGenerationError",
    "CompileOptions",
    "Engine",
    "Generation",
    "JsonLogitsProcessor",
    "JsonModeError",
    "OutputError",
    "RecursionLimitError",
    "SchemaError",
    "TokenAutomaton",
    "TokenRejectedError",
    "ToolCallError",
    "TruncatedOutputError",
    "UnsatisfiableSchemaError",
    "ValidationError",
    "Vocabulary",
    "compile_automaton",
    "generate",
    "json_mode_messages",
    "json_mode_system_prompt",
    "parse_output",
]
__version__ = "0.1.0"
