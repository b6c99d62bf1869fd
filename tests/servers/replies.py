"""Protocol-independent scripted replies for the fake LLM servers, and text-splitting helpers.

A test scripts *what* the model says (text, tool calls, a fault); each protocol module
decides *how* that is put on the wire.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Text:
    """A plain assistant text turn.

    ``chunks`` is how many stream deltas the text is split into (default: one per word,
    keeping the spaces). ``output_tokens`` defaults to the number of chunks.
    ``stop_reason`` is ``"end"`` or ``"length"`` (mapped to each API's own value); any
    other string is sent verbatim, e.g. ``"stop_sequence"`` or ``"refusal"`` for Anthropic.
    ``refusal``: OpenAI sends the text as a refusal (``message.refusal``, ``delta.refusal``)
    with no content, as Structured Outputs does when the model declines.
    """

    text: str
    chunks: int | None = None
    input_tokens: int = 10
    output_tokens: int | None = None
    stop_reason: str = "end"
    refusal: bool = False

    def pieces(self) -> list[str]:
        return split_text(self.text, self.chunks)

    def usage_out(self) -> int:
        return self.output_tokens if self.output_tokens is not None else max(1, len(self.pieces()))


@dataclass(frozen=True)
class Call:
    """One tool call. ``raw_arguments`` overrides ``arguments`` with a literal (possibly
    malformed) JSON string, for fault tests."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    raw_arguments: str | None = None

    def arguments_json(self) -> str:
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments)

    def arguments_value(self) -> Any:
        """Arguments as a decoded object for APIs that send objects (Anthropic, Ollama).

        Malformed raw arguments cannot be an object, so the raw string is sent instead:
        a deliberately wrong shape the client must cope with.
        """
        if self.raw_arguments is None:
            return self.arguments
        try:
            return json.loads(self.raw_arguments)
        except ValueError:
            return self.raw_arguments


@dataclass(frozen=True)
class ToolCalls:
    """One assistant turn holding one or more tool calls, optionally preceded by text.

    ``calls`` items are ``Call`` objects or ``(name, arguments_dict)`` tuples.
    """

    calls: list[Call | tuple[str, dict[str, Any]]]
    text: str = ""
    input_tokens: int = 10
    output_tokens: int | None = None

    def normalized(self) -> list[Call]:
        return [c if isinstance(c, Call) else Call(c[0], dict(c[1])) for c in self.calls]

    def usage_out(self) -> int:
        if self.output_tokens is not None:
            return self.output_tokens
        return len(split_text(self.text)) + sum(
            len(split_json(c.arguments_json())) for c in self.normalized()
        )


@dataclass(frozen=True)
class Json:
    """A typed answer: ``value`` as JSON (or ``raw``, literal and possibly malformed text),
    put on the wire the way each API returns structured output: message content (OpenAI,
    Ollama) or a call to the output tool (Anthropic: the tool ``tool_choice`` names, else
    ``tool``). ``chunks``: stream deltas (default: JSON token-like fragments)."""

    value: Any = None
    raw: str | None = None
    tool: str | None = None
    chunks: int | None = None
    input_tokens: int = 10

    def text(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.value)


@dataclass(frozen=True)
class Status:
    """Reply with an HTTP error. ``body`` replaces the API's default error body verbatim."""

    code: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Truncate:
    """Start answering ``text``, then drop the connection before the response is complete
    (stream: after the content deltas, before the closing events). ``whole``: a stream
    sends every event, closing ones included, and lacks only the body's last chunk."""

    text: str = "partial answer"
    whole: bool = False


@dataclass(frozen=True)
class Slow:
    """Wait ``delay_s`` seconds before sending ``then`` (for client timeout tests)."""

    delay_s: float
    then: Reply = field(default_factory=lambda: Text("ok"))


@dataclass(frozen=True)
class Hang:
    """Stream the deltas of ``text``, then stall until the client disconnects (counted in
    ``server.disconnects``) or ``seconds`` pass, after which the stream finishes normally.
    Not streaming: stall before answering."""

    seconds: float = 5.0
    text: str = "thinking"


Reply = Text | ToolCalls | Json | Status | Truncate | Slow | Hang


def split_text(text: str, chunks: int | None = None) -> list[str]:
    """Split text into stream deltas whose concatenation is exactly ``text``."""
    if not text:
        return []
    if chunks is None:
        # One word per delta, spaces kept attached so that joining is lossless.
        return re.findall(r"\s*\S+\s*|\s+", text)
    n = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def split_json(text: str) -> list[str]:
    """Split a JSON string into token-like fragments, the way APIs stream tool arguments:
    words and punctuation runs separately, e.g. '{"', 'city', '": "', 'Paris', '"}'."""
    return re.findall(r"\w+|\W+", text) or [text]
