"""Typed errors.  Every failure a user can meet has its own class and names the problem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class JsonModeError(Exception):
    """Base class of every error jsonmode raises on purpose."""


@dataclass(frozen=True)
class SchemaIssue:
    """One keyword the engine cannot enforce, located by JSON pointer."""

    pointer: str
    keyword: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class SchemaError(JsonModeError):
    """The schema cannot be enforced exactly: unsupported keyword, unsatisfiable, or too large."""

    def __init__(self, message: str, issues: Sequence[SchemaIssue] = ()) -> None:
        self.issues = tuple(issues)
        if self.issues:
            message = message + "\n" + "\n".join(f"  - {i}" for i in self.issues)
        super().__init__(message)


class UnsatisfiableSchemaError(SchemaError):
    """No JSON value satisfies the schema (e.g. minimum > maximum, empty enum)."""


class AutomatonTooLarge(SchemaError):
    """A named limit (states, positions, recursion depth) was exceeded while compiling."""


class CompileTimeoutError(AutomatonTooLarge):
    """Compiling took longer than ``max_compile_seconds`` (a schema whose automaton is too big to build)."""


class RecursionLimitError(AutomatonTooLarge):
    """A recursive schema needs more unrolling than ``max_recursion_depth`` allows."""


class OutputError(JsonModeError):
    """The model's output could not be turned into a value; carries the raw text."""

    def __init__(self, message: str, text: str) -> None:
        self.text = text
        super().__init__(f"{message}\n--- output ---\n{text[:2000]}")


class TruncatedOutputError(OutputError):
    """The token budget ran out before the JSON value was complete.

    ``text`` holds the partial output so no work is lost; raise ``max_new_tokens``
    or bound the schema (``max_length``/``max_items``).
    """


class ValidationError(OutputError):
    """Complete output that fails JSON parsing, JSON Schema or Pydantic validation."""

    def __init__(self, message: str, text: str, detail: str = "") -> None:
        self.detail = detail
        super().__init__(f"{message}: {detail}" if detail else message, text)


class TokenRejectedError(JsonModeError):
    """A token outside the automaton's mask was fed to a matcher (a caller bug, reported as a state)."""


class ToolCallError(OutputError):
    """A tool call in the model's output is malformed or names an unknown tool."""
