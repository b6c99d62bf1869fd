"""The Ollama provider: victor's messages to Ollama's native ``/api/chat`` and back.

The API is small enough to speak with ``httpx`` directly (no SDK): JSON for ``chat``,
newline-delimited JSON for ``stream`` (one object a line, the last with ``"done": true``).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

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
from .translation import chat_messages, function_tools, stop_reason

__all__ = ["OllamaProvider"]

DEFAULT_PORT = 11434
CHAT_PATH = "api/chat"  # relative, so a base URL with a path (a reverse proxy) is kept

#: Names Ollama reads from the request's "options" object (model and runner
#: parameters); any other extra setting (keep_alive, format, think, ...) is top-level.
OPTION_NAMES = frozenset(
    {
        "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p",
        "repeat_last_n", "temperature", "repeat_penalty", "presence_penalty",
        "frequency_penalty", "penalize_newline", "stop", "numa", "num_ctx", "num_batch",
        "num_gpu", "main_gpu", "low_vram", "f16_kv", "vocab_only", "use_mmap", "use_mlock",
        "num_thread", "mirostat", "mirostat_tau", "mirostat_eta", "tfs_z",
    }
)  # fmt: skip

_STOP_REASONS = {"stop": "end", "length": "length"}

# Ollama sends tool calls without ids; ours must be unique across a conversation
# because results are matched to calls by id (also after switching providers).
_call_numbers = itertools.count()


class OllamaProvider(Provider):
    """Models served by a local (or remote) Ollama server; no API key needed."""

    name = "ollama"
    system = "ollama"
    default_model = "llama3.2"
    api_key_env = None
    base_url_env = "OLLAMA_HOST"
    default_base_url = f"http://127.0.0.1:{DEFAULT_PORT}"
    native_output = True  # "format" with a JSON schema
    #: Runner options (sent in "options") and /api/chat fields taken by name; any other
    #: field goes in ``extra_body`` (merged into the request body as it is).
    api_options = OPTION_NAMES | {"options", "keep_alive", "format", "think", "extra_body"}

    @property
    def base_url(self) -> str:
        # OLLAMA_HOST is often written the way the server reads it ("0.0.0.0:11434",
        # "localhost"): turn it into a URL a client can connect to.
        return normalise_host(super().base_url)

    # -- client ------------------------------------------------------------------------

    def _create_client(self) -> Any:
        import httpx

        # No key is needed for a local server; one passed explicitly (a server behind an
        # authenticating proxy, ollama.com) is sent as a bearer token.
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
        return httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, headers=headers)

    async def _close_client(self, client: Any) -> None:
        await client.aclose()

    def _http_client(self, client: Any) -> Any:
        return client

    # -- requests ----------------------------------------------------------------------

    def _body(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        stream: bool,
        output: OutputSchema | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": self.temperature, "num_predict": self.max_tokens}
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _wire_messages(messages),
            "stream": stream,  # always explicit: Ollama streams unless told not to
            "options": options,
        }
        if tools:
            body["tools"] = function_tools(tools)
        for key, value in self.options.items():
            if key == "options" and isinstance(value, dict):
                options.update(value)
            elif key == "extra_body":
                body.update(value)
            elif key in OPTION_NAMES:
                options[key] = value
            else:
                body[key] = value
        if output is not None:
            # Structured outputs: the reply's content is JSON matching the schema (the
            # run's type wins over a format= option).
            body["format"] = output.json_schema
        return body

    async def _chat(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AgentResponse:
        body = self._body(messages, tools, False, output)
        response = await self.client().post(CHAT_PATH, json=body)
        response.raise_for_status()  # _map_error reads the {"error": ...} body
        data = response.json()
        if "error" in data:
            raise self._error(data["error"], None, response.headers)
        message = data.get("message") or {}
        calls = [_tool_call(c) for c in message.get("tool_calls") or ()]
        return self._response(message.get("content") or "", calls, data)

    async def _stream(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AsyncIterator[StreamEvent]:
        body = self._body(messages, tools, True, output)
        parts: list[str] = []
        calls: list[ToolCall] = []
        final: dict[str, Any] | None = None
        # The context manager closes the response in its finally: a cancelled or
        # abandoned stream drops its connection instead of leaking it.
        async with self.client().stream("POST", CHAT_PATH, json=body) as response:
            if response.status_code >= 400:
                await response.aread()  # so _map_error can read the error body
                response.raise_for_status()
            try:
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    data = json.loads(line)
                    message = data.get("message")
                    if message:
                        text = message.get("content")
                        if text:
                            parts.append(text)
                            yield TextDelta(text)
                        if "tool_calls" in message:
                            calls.extend(_tool_call(c) for c in message["tool_calls"] or ())
                    elif "error" in data:  # a failure after the 200 status was sent
                        raise self._error(data["error"], None, response.headers)
                    if data.get("done"):
                        # The last line; read on to the body's end (no break) so the
                        # connection goes back to the pool for the next call.
                        final = data
            except Exception:
                if final is None:
                    raise
                # The answer is whole: a failure reading past its end costs the connection only.
        if final is None:
            raise ProviderError(
                "stream ended early: Ollama closed the response before its final "
                "(done) message; the answer is incomplete",
                provider=self.name,
                retryable=True,
            )
        yield ResponseComplete(self._response("".join(parts), calls, final))

    def _response(self, content: str, calls: list[ToolCall], data: dict[str, Any]) -> AgentResponse:
        return AgentResponse(
            content=content,
            tool_calls=calls,
            # Ollama leaves the counts out when zero (e.g. a fully cached prompt).
            usage=Usage(
                input_tokens=data.get("prompt_eval_count") or 0,
                output_tokens=data.get("eval_count") or 0,
            ),
            model=data.get("model") or self.model,
            # Ollama says "stop" also after tool calls: stop_reason makes that "tool_calls".
            stop_reason=stop_reason(data.get("done_reason"), _STOP_REASONS, bool(calls)),
        )

    # -- errors ------------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> ProviderError | None:
        import httpx

        if isinstance(exc, httpx.HTTPStatusError):
            response = exc.response
            try:
                detail = response.json().get("error")
            except (ValueError, AttributeError):
                detail = None
            return self._error(
                detail or response.text[:500], response.status_code, response.headers
            )
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ProviderError(
                f"Ollama is not reachable at {self.base_url} ({exc or type(exc).__name__}). "
                f"Start it with `ollama serve` (install from https://ollama.com), or set "
                f"OLLAMA_HOST to the address of a running Ollama server. Alternatives: "
                f'provider="local" runs an embedded model with no server; provider="anthropic" '
                f'or provider="openai" use a hosted API',
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(
                f"Ollama at {self.base_url} did not answer within {self.timeout} s "
                f"({type(exc).__name__}); a model that is still loading can take longer: "
                f"raise timeout=...",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, httpx.UnsupportedProtocol):
            return ProviderError(
                f"cannot connect to {self.base_url} ({exc}): set OLLAMA_HOST or base_url= "
                f"to an http:// or https:// address",
                provider=self.name,
            )
        if isinstance(exc, httpx.TransportError):  # connection reset, broken chunking, ...
            return ProviderError(
                f"stream ended early: the connection to Ollama at {self.base_url} broke "
                f"before the reply was complete ({type(exc).__name__}: {exc})",
                provider=self.name,
                retryable=True,
            )
        if isinstance(exc, json.JSONDecodeError):
            return ProviderError(
                f"Ollama at {self.base_url} sent a reply that is not JSON ({exc}); is "
                f"OLLAMA_HOST pointing at an Ollama server?",
                provider=self.name,
            )
        return None

    def _error(self, detail: Any, status: int | None, headers: Any) -> ProviderError:
        """A ``ProviderError`` from Ollama's ``{"error": ...}`` text and the HTTP status.

        ``status`` None: the error came inside a successful reply (a streamed line), i.e.
        the model runner failed after the request was accepted; worth another try.
        """
        detail = str(detail or "").strip() or "no details given"
        retryable = status is None or retryable_status(status)
        if status is None:
            message = f"Ollama failed while answering: {detail}"
        elif status == 404 and ("model" in detail.lower() or detail == "no details given"):
            message = (
                f"model {self.model!r} is not available on the Ollama server at "
                f"{self.base_url} ({detail}): run `ollama pull {self.model}` there, or pick "
                f"an installed model (`ollama list`)"
            )
        elif status == 404:
            message = (
                f"{self.base_url}/{CHAT_PATH} not found ({detail}): "
                f"is OLLAMA_HOST the address of an Ollama server?"
            )
        elif status in (401, 403):
            message = f"Ollama at {self.base_url} refused access ({detail}): check api_key=..."
        elif "does not support tools" in detail:
            message = f"{detail}: use a model with tool support (e.g. llama3.2, qwen2.5)"
        elif retryable:
            message = f"Ollama at {self.base_url} is busy or failing: {detail}"
        else:
            message = f"Ollama rejected the request: {detail}"
        return ProviderError(
            message,
            provider=self.name,
            status=status,
            request_id=headers.get("x-request-id"),
            retryable=retryable,
            retry_after=retry_after(headers),
        )


# -- wire translation ----------------------------------------------------------------


def _wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Victor messages as Ollama messages; all system text joined into one first message."""
    return chat_messages(messages, _wire_call, _answered_call)


def _wire_call(call: ToolCall) -> dict[str, Any]:
    # No id (Ollama matches results by tool name); the arguments are a JSON object.
    return {"function": {"name": call.name, "arguments": call.arguments}}


def _answered_call(result: Message) -> dict[str, Any]:
    return {"tool_name": result.name or ""}


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    """One Ollama tool call (arguments already a JSON object, usually) as a ``ToolCall``."""
    function = raw.get("function") or {}
    call_id = raw.get("id") or f"call_{next(_call_numbers)}"
    name = function.get("name") or ""
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        return ToolCall(id=call_id, name=name, arguments=arguments)
    if arguments is None or isinstance(arguments, str):
        return ToolCall.from_json(call_id, name, arguments)
    return ToolCall(
        id=call_id,
        name=name,
        invalid_arguments=f"expected a JSON object, got {json.dumps(arguments)}",
    )


def normalise_host(value: str | None) -> str:
    """An ``OLLAMA_HOST`` value as a URL, read the way Ollama reads it.

    No scheme means http on port 11434 ("localhost" -> "http://localhost:11434"); an
    explicit scheme without a port means that scheme's port. The listen-everywhere
    addresses 0.0.0.0 and :: become loopback, since a client cannot connect to "any".
    """
    raw = (value or "").strip().rstrip("/")
    scheme, sep, rest = raw.partition("://")
    if sep:
        scheme = scheme.lower()
        default_port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT)
    else:
        scheme, rest, default_port = "http", raw, DEFAULT_PORT
    hostport, slash, path = rest.partition("/")
    try:  # a bare IP, IPv6 included ("::1" has colons but no port)
        host, port = str(ipaddress.ip_address(hostport.strip("[]"))), None
    except ValueError:
        parts = urlsplit(f"//{hostport}")
        try:
            host, port = parts.hostname or "", parts.port
        except ValueError:  # a port that is not a number: leave it for httpx to reject
            return raw if sep else f"http://{raw}"
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or default_port}{slash}{path}"
