"""OpenAI Chat Completions provider; also serves any OpenAI-compatible server (vLLM, llama.cpp).

The one place that knows the Chat Completions wire format: ``Message``/``ToolSpec`` go out
as ``messages``/``tools`` JSON, completions and stream chunks come back as
``AgentResponse``. The ``openai`` SDK is imported lazily so that importing victor stays
cheap for users of other providers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .._util import url_is_loopback
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
from ..errors import ConfigurationError, ProviderError
from .base import Provider
from .retry import retry_after, retryable_status
from .translation import StreamedCall, chat_messages, function_tools, split_options, stop_reason

__all__ = ["OpenAIProvider"]

#: Chat Completions ``finish_reason`` -> victor's stop reasons (unknown ones pass through).
_STOP_REASONS = {
    "stop": "end",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
}

#: Error codes/types a mid-stream error event may carry that are worth a retry.
_TRANSIENT_ERRORS = {"server_error", "rate_limit_exceeded", "overloaded", "internal_error"}


class OpenAIProvider(Provider):
    """Chat Completions over the official ``openai`` SDK (``AsyncOpenAI``)."""

    name = "openai"
    system = "openai"
    default_model = "gpt-4o"
    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    max_temperature = 2.0
    native_output = True  # response_format with a JSON schema
    #: Chat Completions parameters taken by name, and the samplers OpenAI-compatible servers
    #: (llama.cpp, vLLM) commonly add; any other field goes in ``extra_body``.
    api_options = frozenset(
        {"top_p", "frequency_penalty", "presence_penalty", "seed", "stop", "logit_bias",
         "logprobs", "top_logprobs", "n", "response_format", "tool_choice",
         "parallel_tool_calls", "user", "reasoning_effort", "service_tier", "store",
         "metadata", "max_completion_tokens", "prediction", "modalities", "audio",
         "verbosity", "top_k", "min_p", "repeat_penalty",
         "extra_body", "extra_headers", "extra_query"}
    )  # fmt: skip

    # -- client ----------------------------------------------------------------------

    def api_key(self) -> str:
        try:
            return super().api_key()
        except ConfigurationError:
            # Local OpenAI-compatible servers (llama.cpp, vLLM) need no key but the SDK
            # insists on one. Only loopback gets a placeholder: a real endpoint still
            # fails here, naming the variable to set.
            if url_is_loopback(self.base_url or ""):
                return "not-needed"
            raise

    def _create_client(self) -> Any:
        from openai import AsyncOpenAI

        # max_retries=0: the base class retries, with our error mapping and events.
        return AsyncOpenAI(
            api_key=self.api_key(),
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
        )

    def _http_client(self, client: Any) -> Any:
        return client._client  # the SDK's httpx2.AsyncClient

    # -- requests --------------------------------------------------------------------

    def _request(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` (minus ``stream``)."""
        sdk_options, fields = split_options(self.options)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": _wire_messages(messages),
            # max_tokens, not max_completion_tokens: every compatible server knows it.
            "max_tokens": self.max_tokens,
            **sdk_options,
            # The other fields go into the JSON body as they are, so server-specific ones
            # (top_k, repeat_penalty, ...) work without the SDK knowing them; temperature too
            # (the JSON is the same): the SDK's per-call handling of a named parameter costs
            # more than merging extra_body.
            "extra_body": {"temperature": self.temperature, **fields},
        }
        if tools:  # some compatible servers reject an empty list
            request["tools"] = function_tools(tools)
        if output is not None:
            # Structured Outputs: the answer's content is JSON matching the schema; tool
            # calls may still come first. The run's type wins over a response_format option.
            request["extra_body"].pop("response_format", None)
            request["response_format"] = _response_format(output)
        return request

    async def _chat(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AgentResponse:
        completion = await self.client().chat.completions.create(
            **self._request(messages, tools, output)
        )
        if not completion.choices:
            raise ProviderError(
                f"the server returned no choices for model {self.model!r}", provider=self.name
            )
        choice = completion.choices[0]
        message = choice.message
        calls = [
            ToolCall.from_json(c.id, c.function.name, c.function.arguments)
            for c in message.tool_calls or []
            if getattr(c, "function", None) is not None  # skip non-function (custom) calls
        ]
        # A refusal (Structured Outputs) comes instead of the content: it is the answer,
        # and says so in its stop reason.
        refusal = None if message.content else getattr(message, "refusal", None)
        return AgentResponse(
            content=message.content or refusal or "",
            tool_calls=calls,
            usage=_usage(completion.usage),
            model=completion.model or self.model,
            stop_reason=stop_reason(
                "refusal" if refusal else choice.finish_reason, _STOP_REASONS, bool(calls)
            ),
        )

    async def _stream(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AsyncIterator[StreamEvent]:
        stream = await self.client().chat.completions.create(
            **self._request(messages, tools, output),
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        # Arguments arrive in pieces, and several calls interleave by their index.
        calls: dict[int, StreamedCall] = {}
        finish: str | None = None
        usage: Any = None
        model = ""
        refused = False
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                if not chunk.choices:  # the final usage-only chunk
                    continue
                if not model:
                    model = chunk.model
                choice = chunk.choices[0]
                delta = choice.delta
                text = delta.content
                if text:
                    parts.append(text)
                    yield TextDelta(text)
                elif getattr(delta, "refusal", None):  # instead of content, see _chat
                    refused = True
                    parts.append(delta.refusal)
                    yield TextDelta(delta.refusal)
                if delta.tool_calls:
                    for position, fragment in enumerate(delta.tool_calls):
                        index = fragment.index if fragment.index is not None else position
                        call = calls.get(index)
                        if call is None:
                            call = calls[index] = StreamedCall()
                        if fragment.id:
                            call.id = fragment.id
                        function = fragment.function
                        if function is not None:
                            if function.name and not call.name:
                                call.name = function.name
                            if function.arguments:
                                call.pieces.append(function.arguments)
                if choice.finish_reason:
                    finish = choice.finish_reason
        finally:
            # Also on cancellation or an abandoned generator: release the connection.
            await stream.close()
        if finish is None:
            # The SDK ends quietly when the connection drops; without a finish_reason
            # the answer is incomplete and must not pass for a whole one.
            raise ProviderError(
                "stream ended early, before the server's finish_reason; the answer is "
                "incomplete (connection dropped?)",
                provider=self.name,
                retryable=True,
            )
        tool_calls = [
            ToolCall.from_json(call.id or f"call_{index}", call.name, call.arguments)
            for index, call in sorted(calls.items())
        ]
        yield ResponseComplete(
            AgentResponse(
                content="".join(parts),
                tool_calls=tool_calls,
                usage=_usage(usage),
                model=model or self.model,
                stop_reason=stop_reason(
                    "refusal" if refused else finish, _STOP_REASONS, bool(tool_calls)
                ),
            )
        )

    # -- errors ----------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> ProviderError | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = self.redact(_error_detail(exc))
            return ProviderError(
                f"{_status_advice(status, self)}: {detail}",
                provider=self.name,
                status=status,
                request_id=exc.request_id,
                retryable=retryable_status(status),
                retry_after=retry_after(exc.response.headers),
            )
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(
                f"no answer from {self.base_url} within timeout={self.timeout}s; raise timeout= "
                f"if the model is slow",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            # Compare by name: the SDK may run on httpx or httpx2, whose classes differ.
            if type(cause).__name__ != "ConnectError":  # the server was reached, then gone
                return ProviderError(
                    f"stream ended early: the connection to {self.base_url} dropped before "
                    f"the answer was complete ({cause or exc})",
                    provider=self.name,
                    retryable=True,
                )
            return ProviderError(
                f"could not reach {self.base_url} ({cause}); check the URL "
                f"({self.base_url_env}) and that the server is running",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, openai.APIError):
            # An error event inside a stream: no HTTP status, only the error body.
            body = exc.body if isinstance(exc.body, dict) else {}
            kind = {str(body.get("type")), str(body.get("code"))}
            return ProviderError(
                f"the server reported an error mid-response: {self.redact(exc.message)}",
                provider=self.name,
                retryable=bool(kind & _TRANSIENT_ERRORS),
            )
        return None


# -- translation helpers -----------------------------------------------------------------


def _wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """victor messages -> Chat Completions ``messages`` (systems joined, first)."""
    return chat_messages(messages, _wire_call, _answered_call, no_text=None)


def _wire_call(call: ToolCall) -> dict[str, Any]:
    # The arguments are a JSON string in this API, not an object.
    function = {"name": call.name, "arguments": json.dumps(call.arguments)}
    return {"id": call.id, "type": "function", "function": function}


def _answered_call(result: Message) -> dict[str, Any]:
    return {"tool_call_id": result.tool_call_id}


def _response_format(output: OutputSchema) -> dict[str, Any]:
    """``response_format`` asking for a JSON object matching ``output``'s schema."""
    spec: dict[str, Any] = {
        "name": output.name,
        "schema": output.json_schema,
        # Strict mode guarantees the schema; a schema it cannot express (open-ended keys)
        # is sent non-strict and checked by victor's validation instead.
        "strict": output.strict,
    }
    if output.description:
        spec["description"] = output.description
    return {"type": "json_schema", "json_schema": spec}


def _usage(usage: Any) -> Usage:
    if usage is None:  # compatible servers may omit it
        return Usage()
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)


def _error_detail(exc: Any) -> str:
    """The server's own error message, without the SDK's 'Error code: ...' wrapping."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    # A non-JSON body may be a whole HTML error page from a proxy: keep the start.
    return str(body)[:300] if body else exc.response.reason_phrase or "no details"


def _status_advice(status: int, provider: OpenAIProvider) -> str:
    """What the status means for the user, and what to do about it."""
    if status == 401:
        return f"authentication failed: check the {provider.api_key_env} variable or api_key="
    if status == 403:
        return f"permission denied for model {provider.model!r}: check the key's access"
    if status == 404:
        return (
            f"not found: check the model name {provider.model!r} and base_url {provider.base_url!r}"
        )
    if status == 429:
        return "rate limited or out of quota: wait, or check your plan and usage"
    if status >= 500:
        return "server error: the service failed"
    if status in (408, 409):
        return "request timed out or conflicted on the server"
    return "request rejected"
