"""The OpenTelemetry GenAI semantic conventions' vocabulary, for ``victor.telemetry``:
finish reasons in their words, messages in their JSON shape, and the client metrics with
their units and bucket boundaries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

    from .core.messages import AgentResponse, Message, ToolCall

__all__ = ["finish_reason", "input_messages", "output_messages", "text_message", "Metrics"]

#: victor's stop reasons (and the APIs' own, as test providers give them) in the
#: conventions' words: stop, length, content_filter, tool_call, error. Others pass through.
FINISH_REASONS = {
    "end": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "tool_calls": "tool_call",
    "tool_use": "tool_call",
    "length": "length",
    "max_tokens": "length",
    "refusal": "content_filter",
    "content_filter": "content_filter",
    "error": "error",
}

#: ``gen_ai.client.token.usage``: the conventions' explicit bucket boundaries (tokens).
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864]  # fmt: skip
#: ``gen_ai.client.operation.duration`` and ``...time_to_first_chunk`` (seconds).
SECONDS_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92]  # fmt: skip


def finish_reason(reason: str) -> str:
    return FINISH_REASONS.get(reason, reason)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def text_message(role: str, text: Any) -> str:
    """One text message in the conventions' JSON shape (``[]`` for no text)."""
    if text is None:
        return "[]"
    return to_json([{"role": role, "parts": [{"type": "text", "content": str(text)}]}])


def _calls(calls: Iterable[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments} for c in calls
    ]


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        part = {
            "type": "tool_call_response",
            "id": message.tool_call_id,
            "response": message.content,
        }
        return {"role": "tool", "parts": [part]}
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "content": message.content})
    return {"role": message.role, "parts": parts + _calls(message.tool_calls)}


def input_messages(messages: Iterable[Message]) -> tuple[str, str]:
    """``gen_ai.system_instructions`` and ``gen_ai.input.messages`` of a model call."""
    system, chat = [], []
    for message in messages:
        if message.role == "system":
            system.append({"type": "text", "content": message.content})
        else:
            chat.append(_message(message))
    return to_json(system), to_json(chat)


def output_messages(response: AgentResponse) -> str:
    """``gen_ai.output.messages`` of a model call: its one answer."""
    parts: list[dict[str, Any]] = []
    if response.content:
        parts.append({"type": "text", "content": response.content})
    message = {"role": "assistant", "parts": parts + _calls(response.tool_calls)}
    message["finish_reason"] = finish_reason(response.stop_reason or "stop")
    return to_json([message])


class Metrics:
    """The conventions' client metrics of model calls."""

    def __init__(self, meter: Meter) -> None:
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )

    def record(
        self,
        attributes: Mapping[str, Any],
        seconds: float,
        usage: Mapping[str, Any] | None = None,
        first_chunk: float | None = None,
    ) -> None:
        """One model call: its attributes (``error.type`` when it failed), duration,
        token usage, and for a stream the seconds to its first chunk."""
        self.duration.record(seconds, attributes)
        if first_chunk is not None:
            self.first_chunk.record(first_chunk, attributes)
        for kind in ("input", "output"):
            if usage and f"{kind}_tokens" in usage:
                tokens = int(usage[f"{kind}_tokens"])
                self.tokens.record(tokens, {**attributes, "gen_ai.token.type": kind})
