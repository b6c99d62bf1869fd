"""Translation pieces several providers share: the chat-completions message shape (OpenAI and
Ollama speak it), stop reasons in victor's words, tool calls assembled from a stream, and
options split into SDK request options and body fields.

Each provider module stays the one translation of its API; what is written here once is
what they would otherwise repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.messages import Message, ToolCall, ToolSpec

__all__ = [
    "StreamedCall",
    "chat_messages",
    "function_tools",
    "split_options",
    "stop_reason",
    "system_text",
    "tool_result_text",
]


def system_text(messages: list[Message]) -> str:
    """Every system message joined: the APIs take one system prompt."""
    return "\n\n".join(m.content for m in messages if m.role == "system" and m.content)


def tool_result_text(message: Message) -> str:
    """A tool result's content for APIs without an error flag: a failure says so in words."""
    if message.is_error and not message.content.startswith("Error"):
        return f"Error: {message.content}"
    return message.content


def function_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    """Tools in the Chat Completions ``function`` shape, which Ollama speaks too."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def chat_messages(
    messages: list[Message],
    call: Callable[[ToolCall], dict[str, Any]],
    result: Callable[[Message], dict[str, Any]],
    *,
    no_text: str | None = "",
) -> list[dict[str, Any]]:
    """Messages in the chat-completions shape: all system text joined into one first
    message, assistant turns carrying ``tool_calls``, one ``tool`` message per result.

    What differs between the APIs is given: ``call`` writes one tool call, ``result`` the
    fields naming the call a result answers, ``no_text`` the content of an assistant turn
    that only calls tools.
    """
    system = system_text(messages)
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        role = m.role
        if role == "system":
            continue
        if role == "tool":
            # No error flag on results in this shape: a failure says so in words.
            wire.append({"role": "tool", "content": tool_result_text(m), **result(m)})
        elif role == "assistant" and m.tool_calls:
            wire.append(
                {
                    "role": "assistant",
                    "content": m.content or no_text,
                    "tool_calls": [call(c) for c in m.tool_calls],
                }
            )
        else:
            wire.append({"role": role, "content": m.content})
    return wire


def stop_reason(
    reason: str | None, known: Mapping[str, str], has_calls: bool = False
) -> str | None:
    """An API's stop reason in victor's words (``known`` maps the API's own), e.g. "end",
    "tool_calls", "length"; unknown ones pass through as they are.

    A response that calls tools stopped for them, also where the API just says it stopped
    (Ollama, some OpenAI-compatible servers) or says nothing.
    """
    mapped = known.get(reason, reason) if reason else None
    if has_calls and mapped in (None, "end"):
        return "tool_calls"
    return mapped


@dataclass(slots=True)
class StreamedCall:
    """A tool call arriving over a stream: id and name first, the arguments' JSON in pieces."""

    id: str = ""
    name: str = ""
    #: The arguments the start of the call gave whole, if any (Anthropic's ``input``).
    start_input: Any = None
    pieces: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        """The arguments' JSON text received so far."""
        return "".join(self.pieces)


#: ``Provider.options`` the official SDKs take as request options, not as body fields.
SDK_REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query"})


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``Provider.options`` for an SDK call: the SDK's request options (``extra_headers``,
    ``extra_query``) and the fields for the JSON body, which the SDK sends as they are
    (``extra_body``): API parameters by name, then ``extra_body`` on top (what is sent on
    purpose wins)."""
    request: dict[str, Any] = {}
    body: dict[str, Any] = {}
    extra: Mapping[str, Any] = {}
    for key, value in options.items():
        if key in SDK_REQUEST_OPTIONS:
            request[key] = value
        elif key == "extra_body":
            extra = value
        else:
            body[key] = value
    body.update(extra)
    return request, body
