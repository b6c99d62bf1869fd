"""The Anthropic provider: victor messages to the Messages API and back, via the official SDK.

This module is the only place that knows Anthropic's wire format. The ``anthropic`` SDK is
imported lazily (in ``_create_client`` and ``_map_error``) so that importing victor stays
fast and works without the SDK until a request is made.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.messages import (
    AgentResponse,
    Message,
    OutputSchema,
    ResponseComplete,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from ..errors import ProviderError
from .base import Provider
from .retry import retry_after, retryable_status
from .translation import StreamedCall, split_options, stop_reason

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["AnthropicProvider"]

# Anthropic's stop reasons in victor's vocabulary; unknown ones (e.g. "refusal",
# "pause_turn") are passed on as they are.
_STOP_REASONS = {
    "end_turn": "end",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
}

# In-stream ``error`` events arrive with HTTP 200; their error type says if retrying helps.
_RETRYABLE_ERROR_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


class AnthropicProvider(Provider):
    """Claude models through the Anthropic Messages API."""

    name: ClassVar[str] = "anthropic"
    system: ClassVar[str] = "anthropic"
    default_model: ClassVar[str] = "claude-sonnet-4-20250514"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    # Explicit (not left to the SDK) so that the base class's test guard sees the real
    # host: a None base URL counts as "no network request".
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    max_temperature: ClassVar[float | None] = 1.0
    # Typed answers come as a call to an output tool whose input schema is the type.
    native_output: ClassVar[bool] = True
    #: Messages API parameters taken by name; any other field goes in ``extra_body``.
    api_options: ClassVar[frozenset[str] | None] = frozenset(
        {"top_p", "top_k", "stop_sequences", "metadata", "thinking", "tool_choice",
         "service_tier", "extra_body", "extra_headers", "extra_query"}
    )  # fmt: skip

    # -- client ----------------------------------------------------------------------

    def _create_client(self) -> AsyncAnthropic:
        from anthropic import AsyncAnthropic

        # api_key is passed explicitly so the SDK does not go looking for profiles,
        # auth tokens or federation credentials of its own; max_retries=0 because the
        # base class retries (with our backoff and events).
        kwargs: dict[str, Any] = {
            "api_key": self.api_key(),
            "max_retries": 0,
            "timeout": self.timeout,
        }
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        return AsyncAnthropic(**kwargs)

    def _http_client(self, client: AsyncAnthropic) -> Any:
        return client._client  # the SDK's httpx2.AsyncClient

    # -- requests --------------------------------------------------------------------

    def _request(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> dict[str, Any]:
        """Keyword arguments of ``messages.create`` for this conversation."""
        system, wire_messages = _to_wire_messages(messages)
        sdk_options, fields = split_options(self.options)
        # The SDK has no ``temperature`` parameter, and options must reach the API
        # verbatim whatever the SDK version knows about: both go in ``extra_body``.
        body: dict[str, Any] = {"temperature": self.temperature, **fields}
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": wire_messages,
            **sdk_options,
            "extra_body": body,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [_to_wire_tool(tool) for tool in tools]
        if output is not None:
            # A typed answer is a call to the output tool. Alone it is forced; beside the
            # real tools the model must call *a* tool ("any"), so it can still use them
            # first and the answer cannot come as prose.
            request["tools"] = [*request.get("tools", []), _output_tool(output)]
            choice = {"type": "tool", "name": output.name} if not tools else {"type": "any"}
            body.pop("tool_choice", None)
            request["tool_choice"] = choice
        return request

    async def _chat(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AgentResponse:
        reply = await self.client().messages.create(**self._request(messages, tools, output))
        texts: list[str] = []
        calls: list[ToolCall] = []
        answer: str | None = None
        for block in reply.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                if output is not None and block.name == output.name and answer is None:
                    # Kept as sent when it is not an object, so validation says what is wrong.
                    raw = block.input
                    answer = raw if isinstance(raw, str) else json.dumps(raw)
                else:
                    calls.append(_tool_call(block.id, block.name, block.input, None))
            # Other blocks (thinking, server tools) have no victor equivalent yet.
        response = AgentResponse(
            content="".join(texts),
            tool_calls=calls,
            usage=_usage(reply.usage),
            model=reply.model or self.model,
            stop_reason=stop_reason(reply.stop_reason, _STOP_REASONS, bool(calls)),
        )
        return response if answer is None else _typed_answer(response, answer)

    async def _stream(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AsyncIterator[StreamEvent]:
        request = self._request(messages, tools, output)
        stream = await self.client().messages.create(**request, stream=True)
        # With an output type the answer is the output tool's input: its JSON streams as
        # the text deltas, and prose (if any) is kept out of them.
        answer_index: int | None = None
        texts: list[str] = []
        blocks: dict[int, StreamedCall] = {}  # tool-use blocks by content index
        usage = Usage()
        model = self.model
        reason: str | None = None
        finished = False
        try:
            async for event in stream:
                kind = event.type
                # Text deltas are by far the most frequent event: test for them first
                # and do as little as possible per chunk.
                if kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        text = delta.text
                        texts.append(text)
                        if output is None:
                            yield TextDelta(text)
                    elif delta.type == "input_json_delta":
                        pending = blocks.get(event.index)
                        if pending is not None:
                            pending.pieces.append(delta.partial_json)
                            if event.index == answer_index and delta.partial_json:
                                yield TextDelta(delta.partial_json)
                elif kind == "content_block_start":
                    started = event.content_block
                    if started.type == "tool_use":
                        blocks[event.index] = StreamedCall(started.id, started.name, started.input)
                        if (
                            output is not None
                            and started.name == output.name
                            and answer_index is None
                        ):
                            answer_index = event.index
                elif kind == "message_start":
                    message = event.message
                    model = message.model or model
                    usage = _usage(message.usage)
                elif kind == "message_delta":
                    reason = event.delta.stop_reason
                    if event.usage is not None:
                        usage = _merge_delta_usage(usage, event.usage)
                elif kind == "message_stop":
                    # Not a break: the body ends right after it, and a response read to
                    # its end leaves its connection in the pool for the next call (closed
                    # early, the next call would open a new one, a TLS handshake).
                    finished = True
        except Exception:
            if not finished:
                raise
            # The answer is whole: a failure reading past its end costs the connection only.
        finally:
            # Closes the HTTP response, also when the caller abandons or cancels the
            # stream, so the connection is not left open.
            await stream.close()
        if not finished:
            raise ProviderError(
                "stream ended early: the connection closed before the response was complete; "
                "try again",
                provider=self.name,
                retryable=True,
            )
        answer = None
        if answer_index is not None:
            written = blocks.pop(answer_index)
            answer = written.arguments or json.dumps(written.start_input or {})
        calls = [
            _tool_call(call.id, call.name, call.start_input, call.arguments)
            for _, call in sorted(blocks.items())
        ]
        response = AgentResponse(
            content="".join(texts),
            tool_calls=calls,
            usage=usage,
            model=model,
            stop_reason=stop_reason(reason, _STOP_REASONS, bool(calls)),
        )
        yield ResponseComplete(response if answer is None else _typed_answer(response, answer))

    # -- errors ----------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> ProviderError | None:
        import anthropic
        import httpx2

        if isinstance(exc, anthropic.APIStatusError):
            return self._status_error(exc)
        if isinstance(exc, (anthropic.APITimeoutError, httpx2.TimeoutException)):
            return ProviderError(
                f"no answer from {self.base_url} within timeout={self.timeout}s: try again, "
                f"or pass a larger timeout",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, httpx2.RemoteProtocolError) or isinstance(
            exc.__cause__, httpx2.RemoteProtocolError
        ):
            # A connection dropped mid-answer: raw while a stream is read (the SDK does
            # not wrap those), wrapped in APIConnectionError for a whole response.
            return ProviderError(
                f"stream ended early: the server closed the connection before the response "
                f"was complete ({self.redact(exc.__cause__ or exc)}); try again",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
            return ProviderError(
                f"could not reach {self.base_url} ({self.redact(exc.__cause__ or exc)}): "
                f"check the network and the {self.base_url_env} variable",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, anthropic.APIError):
            return ProviderError(
                f"unexpected reply from the API: {self.redact(exc)}", provider=self.name
            )
        return None

    def _status_error(self, exc: Any) -> ProviderError:
        status: int = exc.status_code
        detail = self.redact(exc.api_message or exc.message)
        wait = retry_after(exc.response.headers)
        if status < 400:
            # An ``error`` event inside a 200 stream: no HTTP status of its own.
            retryable = exc.type in _RETRYABLE_ERROR_TYPES
            return ProviderError(
                f"the API reported an error mid-stream: {detail}",
                provider=self.name,
                request_id=exc.request_id,
                retryable=retryable,
                retry_after=wait,
            )
        hints = {
            400: "the API rejected the request",
            401: f"authentication failed: check the {self.api_key_env} variable or api_key=...",
            403: "permission denied: this API key may not use this model or feature",
            404: f"not found: check the model name {self.model!r} and the base URL {self.base_url}",
            413: "request too large: shorten the conversation or the tool results",
            429: "rate limited: wait and try again, or lower the request rate",
            529: "the API is overloaded: try again later",
        }
        hint = hints.get(status) or (
            "server error: try again later" if status >= 500 else "request failed"
        )
        return ProviderError(
            f"{hint} ({detail})",
            provider=self.name,
            status=status,
            request_id=exc.request_id,
            retryable=retryable_status(status),
            retry_after=wait,
        )


# -- translation helpers (module level: no state, cheap to call) ----------------------


def _to_wire_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the ``messages`` list of the Messages API."""
    system: list[str] = []
    wire: list[dict[str, Any]] = []
    for message in messages:
        role = message.role
        if role == "system":
            # The API takes one top-level system prompt, not system turns.
            if message.content:
                system.append(message.content)
        elif role == "user":
            wire.append({"role": "user", "content": message.content})
        elif role == "assistant":
            content: list[dict[str, Any]] = []
            if message.content:
                content.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                content.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                )
            # The API rejects empty assistant turns; an empty one carries nothing anyway.
            if content:
                wire.append({"role": "assistant", "content": content})
        elif role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            if message.is_error:
                result["is_error"] = True
            previous = wire[-1] if wire else None
            # All results of one assistant turn must come back in a single user turn.
            if (
                previous is not None
                and previous["role"] == "user"
                and isinstance(previous["content"], list)
                and previous["content"]
                and previous["content"][-1].get("type") == "tool_result"
            ):
                previous["content"].append(result)
            else:
                wire.append({"role": "user", "content": [result]})
    return "\n\n".join(system), wire


def _to_wire_tool(tool: ToolSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters}
    if tool.description:
        spec["description"] = tool.description
    return spec


def _output_tool(output: OutputSchema) -> dict[str, Any]:
    """The tool a typed answer is given through: its input schema is the output type."""
    what = f": {output.description.rstrip('.')}" if output.description else ""
    return {
        "name": output.name,
        "description": f"Give your final answer{what}. Call this once, when you have it.",
        "input_schema": output.json_schema,
    }


def _typed_answer(response: AgentResponse, answer: str) -> AgentResponse:
    """The response as the run's answer: the output tool's input (JSON text) is the
    content. Calls made alongside it are not run: the answer ends the run."""
    return response.model_copy(update={"content": answer, "tool_calls": [], "stop_reason": "end"})


def _tool_call(call_id: str, name: str, start_input: Any, raw: str | None) -> ToolCall:
    """A ``ToolCall`` from streamed JSON text, or from the object the API sent whole
    (non-streaming replies, or a stream whose arguments came only in the start event)."""
    if raw is None or not raw.strip():
        if start_input is None or isinstance(start_input, dict):
            return ToolCall(id=call_id, name=name, arguments=start_input or {})
        # Not an object (a misbehaving server): keep it visible as invalid arguments.
        raw = start_input if isinstance(start_input, str) else json.dumps(start_input, default=str)
    return ToolCall.from_json(call_id, name, raw)


def _usage(usage: Any) -> Usage:
    # Anthropic counts cached prompt tokens apart from ``input_tokens``; victor's usage
    # is what the model read, so they are added in.
    return Usage(
        input_tokens=(usage.input_tokens or 0)
        + (usage.cache_creation_input_tokens or 0)
        + (usage.cache_read_input_tokens or 0),
        output_tokens=usage.output_tokens or 0,
    )


def _merge_delta_usage(usage: Usage, delta: Any) -> Usage:
    # ``message_delta`` counts are cumulative; input counts are present only sometimes.
    if delta.input_tokens is not None:
        usage = _usage(delta)
    return Usage(input_tokens=usage.input_tokens, output_tokens=delta.output_tokens or 0)
