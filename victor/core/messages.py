"""The plain data every part of victor speaks: messages, tool calls, usage, model responses,
stream events.

Only ``victor.providers`` knows wire formats; the loop, teams, events and widgets use
these types. ``Message``/``ToolCall``/``Usage``/``AgentResponse`` are pydantic models
(validated, JSON round-trips for saved conversations). Stream events are slotted
dataclasses because one is made per streamed token and must cost next to nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Role",
    "ToolCall",
    "ToolSpec",
    "ToolResult",
    "OutputSchema",
    "Usage",
    "Message",
    "AgentResponse",
    "StreamEvent",
    "TextDelta",
    "ResponseComplete",
    "ToolCallStarted",
    "ToolCallFinished",
    "RunFinished",
]

Role = Literal["system", "user", "assistant", "tool"]


class Model(BaseModel):
    """Base of victor's data models. Validators are built on first use, not at import,
    which keeps ``import victor`` fast."""

    model_config = ConfigDict(defer_build=True)


class ToolCall(Model):
    """A model's request to call one tool with JSON arguments."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    #: Set when the model sent arguments that are not a JSON object; the loop turns
    #: this into an error result the model can read instead of calling the tool.
    invalid_arguments: str | None = None

    @classmethod
    def from_json(cls, id: str, name: str, raw: str | None) -> ToolCall:
        """Build a call from a JSON argument string, keeping malformed input visible."""
        if not raw or not raw.strip():
            return cls(id=id, name=name)
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as exc:
            return cls(id=id, name=name, invalid_arguments=f"{exc.msg} in {raw!r}")
        if not isinstance(arguments, dict):
            return cls(id=id, name=name, invalid_arguments=f"expected a JSON object, got {raw!r}")
        return cls(id=id, name=name, arguments=arguments)


class ToolSpec(Model):
    """What a provider tells the model about one tool: name, description, JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class OutputSchema(Model):
    """What a provider asks the model to answer with: a JSON object matching ``json_schema``.

    Built by ``victor.core.output`` from a run's ``output_type``; each provider sends it in its
    own way (a response format, a tool the model must call, a grammar). ``strict``: the
    schema follows the strict-mode rules (closed objects, every property required).
    """

    name: str
    description: str = ""
    #: The JSON schema of the answer; always an object (other types come wrapped).
    json_schema: dict[str, Any]
    strict: bool = True


class Usage(Model):
    """Token counts of one response or, summed with ``+``, of a whole run."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class Message(Model):
    """One turn of a conversation."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    #: For ``role="tool"``: which call this answers, the tool's name, and whether it failed.
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=content, tool_calls=tool_calls or [])

    @classmethod
    def tool(cls, call: ToolCall, content: str, *, is_error: bool = False) -> Message:
        return cls(
            role="tool", content=content, tool_call_id=call.id, name=call.name, is_error=is_error
        )


class AgentResponse(Model):
    """One model response: what ``Provider.chat`` returns."""

    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    tokens_used: int = 0
    model: str = ""
    stop_reason: str | None = None

    def model_post_init(self, context: Any, /) -> None:
        # tokens_used is the total unless given (the seed's examples give only that). Set
        # as pydantic's __setattr__ would (value, and marked as set), at a third of the cost:
        # every model response makes one of these.
        if not self.tokens_used:
            self.__dict__["tokens_used"] = self.usage.total_tokens
            self.__pydantic_fields_set__.add("tokens_used")


class ToolResult(BaseModel):
    """What a tool returns: ``output`` on success, ``error`` (a message the model can act
    on) on failure."""

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    success: bool
    output: Any = None
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def fail(cls, error: str, **metadata: Any) -> ToolResult:
        return cls(success=False, error=error, metadata=metadata)

    def to_text(self) -> str:
        """The result as the model reads it."""
        if not self.success:
            return f"Error: {self.error}"
        if isinstance(self.output, str):
            return self.output
        if self.output is None:
            return "(no output)"
        try:
            return json.dumps(self.output, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(self.output)

    def __str__(self) -> str:
        return self.to_text()


# -- stream events -------------------------------------------------------------------


@dataclass(slots=True)
class TextDelta:
    """A piece of the model's answer, as it arrives."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(slots=True)
class ResponseComplete:
    """One model response is complete (text, tool calls, usage, stop reason)."""

    response: AgentResponse
    kind: Literal["response"] = "response"


@dataclass(slots=True)
class ToolCallStarted:
    """The loop is about to run a tool call."""

    call: ToolCall
    kind: Literal["tool_started"] = "tool_started"


@dataclass(slots=True)
class ToolCallFinished:
    """A tool call finished; ``result.success`` tells whether it worked."""

    call: ToolCall
    result: ToolResult
    duration_ms: float = 0.0
    kind: Literal["tool_finished"] = "tool_finished"


@dataclass(slots=True)
class RunFinished:
    """The run is over: the final answer, usage summed over all responses, the transcript."""

    content: str
    usage: Usage
    messages: list[Message] = field(default_factory=list)
    iterations: int = 0
    duration_ms: float = 0.0
    model: str = ""
    provider: str = ""
    #: With an ``output_type``: the validated answer (``content`` is its raw JSON text).
    output: Any = None
    kind: Literal["run_finished"] = "run_finished"


StreamEvent = TextDelta | ResponseComplete | ToolCallStarted | ToolCallFinished | RunFinished
