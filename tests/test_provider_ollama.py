"""Tests of the Ollama provider against the loopback fake Ollama server (real HTTP, NDJSON)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.servers import Call, Hang, Slow, Status, Text, ToolCalls, Truncate
from tests.servers.base import Frames, Request
from tests.servers.ollama import OllamaServer, ndjson
from tests.timing import PROMPTLY, STALL
from victor.core.messages import Message, ResponseComplete, TextDelta, ToolCall, ToolSpec
from victor.errors import ProviderError
from victor.providers import get_provider_class
from victor.providers.ollama import OllamaProvider, normalise_host

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
TIME = ToolSpec(name="get_time", description="Current time in a city")


def provider(server: Any, **kwargs: Any) -> OllamaProvider:
    kwargs.setdefault("max_retries", 0)
    return OllamaProvider(base_url=server.url, **kwargs)


async def collect(p: OllamaProvider, messages: list[Message], tools: list[ToolSpec] | None = None):
    """(text deltas, final response) of one streamed answer."""
    deltas: list[str] = []
    final = None
    async for event in p.stream(messages, tools):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            assert isinstance(event, ResponseComplete) and final is None
            final = event.response
    assert final is not None
    return deltas, final


def body(server: Any) -> dict[str, Any]:
    return server.requests[-1].body


# -- packaging and settings ---------------------------------------------------------


def test_import_does_not_load_httpx() -> None:
    code = "import sys, victor.providers.ollama; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registered_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert get_provider_class("ollama") is OllamaProvider
    p = OllamaProvider()
    assert (p.model, p.base_url) == ("llama3.2", "http://127.0.0.1:11434")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("localhost", "http://localhost:11434"),
        ("example.com:8080", "http://example.com:8080"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://ollama.example.com/", "https://ollama.example.com:443"),
        ("https://example.com/ollama", "https://example.com:443/ollama"),
        ("[::1]:9999", "http://[::1]:9999"),
        ("::1", "http://[::1]:11434"),
        ("  ", "http://127.0.0.1:11434"),
    ],
)
def test_ollama_host_is_normalised(monkeypatch: pytest.MonkeyPatch, host: str, url: str) -> None:
    assert normalise_host(host) == url
    monkeypatch.setenv("OLLAMA_HOST", host)
    assert OllamaProvider().base_url == url


# -- answers ------------------------------------------------------------------------


async def test_chat_text_usage_and_request(ollama_server: OllamaServer) -> None:
    ollama_server.script(Text("Hello there, friend.", input_tokens=12, output_tokens=5))
    p = provider(ollama_server, model="qwen2.5:0.5b", temperature=0.2, max_tokens=77)
    response = await p.chat([Message.user("hi")])
    assert response.content == "Hello there, friend."
    assert response.tool_calls == []
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 5)
    assert response.tokens_used == 17
    assert (response.model, response.stop_reason) == ("qwen2.5:0.5b", "end")
    request = ollama_server.requests[-1]
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert "authorization" not in request.headers  # a local server needs no key
    sent = request.body
    assert sent["stream"] is False  # explicit: Ollama streams by default
    assert sent["model"] == "qwen2.5:0.5b"
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["options"] == {"temperature": 0.2, "num_predict": 77}
    assert "tools" not in sent
    await p.close()


async def test_stream_text(ollama_server: OllamaServer) -> None:
    ollama_server.script(Text("one two three four", input_tokens=7))
    p = provider(ollama_server)
    deltas, final = await collect(p, [Message.user("count")])
    assert deltas == ["one ", "two ", "three ", "four"]
    assert final.content == "one two three four"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 4)
    assert final.stop_reason == "end"
    assert body(ollama_server)["stream"] is True
    await p.close()


async def test_length_stop_reason(ollama_server: OllamaServer) -> None:
    ollama_server.script(Text("cut", stop_reason="length"), Text("cut", stop_reason="length"))
    p = provider(ollama_server)
    assert (await p.chat([Message.user("x")])).stop_reason == "length"
    assert (await collect(p, [Message.user("x")]))[1].stop_reason == "length"
    await p.close()


async def test_system_messages_joined_first(ollama_server: OllamaServer) -> None:
    p = provider(ollama_server)
    await p.chat([Message.system("Be brief."), Message.user("hi"), Message.system("Speak French.")])
    assert body(ollama_server)["messages"] == [
        {"role": "system", "content": "Be brief.\n\nSpeak French."},
        {"role": "user", "content": "hi"},
    ]
    await p.close()


async def test_extra_options_split_between_options_and_body(ollama_server: OllamaServer) -> None:
    p = provider(
        ollama_server,
        top_p=0.9,
        seed=42,
        stop=["END"],
        keep_alive="10m",
        format="json",
        think=False,
        options={"num_ctx": 8192, "num_predict": 5},
    )
    await p.chat([Message.user("hi")])
    sent = body(ollama_server)
    assert sent["options"] == {
        "temperature": 0.7,
        "num_predict": 5,  # an explicit option wins over max_tokens
        "top_p": 0.9,
        "seed": 42,
        "stop": ["END"],
        "num_ctx": 8192,
    }
    assert (sent["keep_alive"], sent["format"], sent["think"]) == ("10m", "json", False)
    await p.close()


# -- tools --------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_one_tool_call(ollama_server: OllamaServer, streaming: bool) -> None:
    ollama_server.script(ToolCalls([Call("get_weather", {"city": "Paris"})], input_tokens=30))
    p = provider(ollama_server)
    messages = [Message.user("weather in Paris?")]
    if streaming:
        deltas, response = await collect(p, messages, [WEATHER])
        assert deltas == []
    else:
        response = await p.chat(messages, [WEATHER])
    [call] = response.tool_calls
    assert (call.name, call.arguments, call.invalid_arguments) == (
        "get_weather",
        {"city": "Paris"},
        None,
    )
    assert call.id.startswith("call_")
    assert response.stop_reason == "tool_calls"
    assert response.usage.input_tokens == 30
    assert body(ollama_server)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    await p.close()


@pytest.mark.parametrize("streaming", [False, True])
async def test_several_tool_calls_with_text(ollama_server: OllamaServer, streaming: bool) -> None:
    reply = ToolCalls(
        [Call("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})],
        text="Checking both.",
    )
    ollama_server.script(reply)
    p = provider(ollama_server)
    if streaming:
        deltas, response = await collect(p, [Message.user("?")], [WEATHER, TIME])
        assert "".join(deltas) == "Checking both."
    else:
        response = await p.chat([Message.user("?")], [WEATHER, TIME])
    assert response.content == "Checking both."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {"city": "Lima"}),
    ]
    ids = [c.id for c in response.tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    assert response.stop_reason == "tool_calls"
    await p.close()


async def test_arguments_sent_as_string(ollama_server: OllamaServer) -> None:
    # Some models/servers send arguments as JSON text, or as text that is not JSON.
    ollama_server.script(
        ToolCalls([Call("get_weather", raw_arguments="{not json"), Call("get_time")])
    )
    p = provider(ollama_server)
    bad, empty = (await p.chat([Message.user("?")], [WEATHER, TIME])).tool_calls
    assert bad.name == "get_weather" and bad.arguments == {}
    assert bad.invalid_arguments and "{not json" in bad.invalid_arguments
    assert empty.arguments == {} and empty.invalid_arguments is None
    await p.close()


async def test_tool_results_sent_in_ollama_shape(ollama_server: OllamaServer) -> None:
    weather = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    clock = ToolCall(id="call_2", name="get_time", arguments={"city": "Lima"})
    p = provider(ollama_server)
    await p.chat(
        [
            Message.system("sys"),
            Message.user("?"),
            Message.assistant("Checking.", [weather, clock]),
            Message.tool(weather, "3 C, snow"),
            Message.tool(clock, "no such city", is_error=True),
            Message.assistant("Oslo is cold."),
            Message.user("thanks"),
        ],
        [WEATHER, TIME],
    )
    assert body(ollama_server)["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
                {"function": {"name": "get_time", "arguments": {"city": "Lima"}}},
            ],
        },
        {"role": "tool", "content": "3 C, snow", "tool_name": "get_weather"},
        {"role": "tool", "content": "Error: no such city", "tool_name": "get_time"},
        {"role": "assistant", "content": "Oslo is cold."},
        {"role": "user", "content": "thanks"},
    ]
    await p.close()


# -- errors and retries -------------------------------------------------------------


async def test_500_then_success_is_retried(ollama_server: OllamaServer) -> None:
    ollama_server.script(Status(500, headers={"retry-after": "0"}), Text("recovered"))
    p = provider(ollama_server, max_retries=1)
    assert (await p.chat([Message.user("hi")])).content == "recovered"
    assert len(ollama_server.requests) == 2
    ollama_server.script(Status(503, headers={"retry-after": "0"}), Text("again"))
    assert (await collect(p, [Message.user("hi")]))[1].content == "again"
    assert len(ollama_server.requests) == 4
    await p.close()


async def test_429_retry_after_honoured_then_error(ollama_server: OllamaServer) -> None:
    busy = Status(
        429,
        body={"error": "server busy, please try again"},
        headers={"retry-after": "0.3", "x-request-id": "req_42"},
    )
    ollama_server.script(busy, busy)
    p = provider(ollama_server, max_retries=1)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("hi")])
    assert time.monotonic() - started >= 0.3  # waited as the server asked
    error = info.value
    assert (error.status, error.request_id, error.retryable, error.retry_after) == (
        429,
        "req_42",
        True,
        0.3,
    )
    assert "server busy" in str(error) and "req_42" in str(error)
    assert len(ollama_server.requests) == 2
    await p.close()


@pytest.mark.parametrize("streaming", [False, True])
async def test_model_not_found_says_pull(ollama_server: OllamaServer, streaming: bool) -> None:
    missing = Status(404, body={"error": 'model "mistral" not found, try pulling it first'})
    ollama_server.script(missing)
    p = provider(ollama_server, model="mistral", max_retries=2)
    with pytest.raises(ProviderError) as info:
        if streaming:
            await collect(p, [Message.user("hi")])
        else:
            await p.chat([Message.user("hi")])
    assert "ollama pull mistral" in str(info.value)
    assert (info.value.status, info.value.retryable) == (404, False)
    assert len(ollama_server.requests) == 1  # not retried
    await p.close()


async def test_bad_request_is_not_retried(ollama_server: OllamaServer) -> None:
    ollama_server.script(Status(400, body={"error": "gemma:2b does not support tools"}))
    p = provider(ollama_server, max_retries=2)
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("hi")], [WEATHER])
    assert "does not support tools" in str(info.value) and "tool support" in str(info.value)
    assert (info.value.status, info.value.retryable) == (400, False)
    assert len(ollama_server.requests) == 1
    await p.close()


async def test_unreachable_server_explains_what_to_do() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OllamaProvider(base_url=f"127.0.0.1:{port}", max_retries=0)
    for attempt in ("chat", "stream"):
        with pytest.raises(ProviderError) as info:
            if attempt == "chat":
                await p.chat([Message.user("hi")])
            else:
                await collect(p, [Message.user("hi")])
        message = str(info.value)
        assert f"Ollama is not reachable at http://127.0.0.1:{port}" in message
        assert "ollama serve" in message and "OLLAMA_HOST" in message
        assert 'provider="local"' in message
        assert '"anthropic"' in message and '"openai"' in message
        assert info.value.retryable
    await p.close()


async def test_truncated_stream_raises(ollama_server: OllamaServer) -> None:
    ollama_server.script(Truncate("partial answer here"))
    p = provider(ollama_server, max_retries=1)
    deltas: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for event in p.stream([Message.user("hi")]):
            assert isinstance(event, TextDelta)  # never a ResponseComplete
            deltas.append(event.text)
    assert "".join(deltas) == "partial answer here"
    assert "stream ended early" in str(info.value) and info.value.retryable
    assert len(ollama_server.requests) == 1  # text was shown: not retried
    await p.close()


async def test_truncated_json_reply_raises(ollama_server: OllamaServer) -> None:
    ollama_server.script(Truncate("partial"))
    p = provider(ollama_server)
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("hi")])
    assert info.value.retryable
    await p.close()


class _NoDoneServer(OllamaServer):
    """Ends the stream cleanly but without the final done line (or with an error line)."""

    error: str | None = None

    def encode_stream(self, reply: Any, request: Request) -> Frames:
        frames = super().encode_stream(reply, request)
        frames.end = [ndjson({"error": self.error})] if self.error else []
        return frames


@pytest.mark.parametrize("error", [None, "llama runner process has terminated"])
async def test_stream_without_done_line_raises(error: str | None) -> None:
    with _NoDoneServer() as server:
        server.error = error
        server.script(Text("almost"))
        p = provider(server)
        with pytest.raises(ProviderError) as info:
            await collect(p, [Message.user("hi")])
        expected = error or "stream ended early"
        assert expected in str(info.value) and info.value.retryable
        await p.close()


async def test_slow_server_times_out_quickly(ollama_server: OllamaServer) -> None:
    ollama_server.script(Slow(STALL, then=Text("late")), Hang(STALL))
    p = provider(ollama_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("hi")])
    assert time.monotonic() - started < PROMPTLY  # the 0.5 s timeout, not the server's stall
    assert "did not answer within 0.5 s" in str(info.value) and info.value.retryable
    # A stream that stalls after its first deltas times out too, instead of hanging.
    started = time.monotonic()
    with pytest.raises(ProviderError):
        await collect(p, [Message.user("hi")])
    assert time.monotonic() - started < PROMPTLY
    await p.close()


async def test_abandoned_stream_closes_connection(ollama_server: OllamaServer) -> None:
    ollama_server.script(Hang(STALL, text="a long story"))
    p = provider(ollama_server)
    agen = p.stream([Message.user("hi")])
    async for event in agen:
        assert isinstance(event, TextDelta)
        break
    await agen.aclose()
    assert await asyncio.to_thread(ollama_server.wait_disconnects, 1, PROMPTLY)
    await p.close()


# -- clients and secrets ------------------------------------------------------------


def test_one_client_per_event_loop(ollama_server: OllamaServer) -> None:
    p = provider(ollama_server)

    async def use() -> Any:
        await p.chat([Message.user("hi")])
        return p.client()

    clients = []
    for _ in range(2):
        loop = asyncio.new_event_loop()
        try:
            clients.append(loop.run_until_complete(use()))
            loop.run_until_complete(p.close())
        finally:
            loop.close()
    assert clients[0] is not clients[1]
    assert all(c.is_closed for c in clients)


async def test_close_closes_client(ollama_server: OllamaServer) -> None:
    p = provider(ollama_server)
    await p.chat([Message.user("hi")])
    client = p.client()
    await p.close()
    assert client.is_closed
    assert (await p.chat([Message.user("again")])).content == "ok"  # a new client
    await p.close()


async def test_explicit_key_sent_as_bearer_and_never_logged(
    ollama_server: OllamaServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-ollama-SECRET-123"
    ollama_server.script(Text("hi"), Status(401, body={"error": "unauthorized"}))
    p = provider(ollama_server, api_key=secret)
    with caplog.at_level(logging.DEBUG):
        await p.chat([Message.user("hi")])
        with pytest.raises(ProviderError) as info:
            await p.chat([Message.user("hi")])
    assert ollama_server.requests[0].headers["authorization"] == f"Bearer {secret}"
    assert caplog.records  # httpx/httpcore did log at DEBUG
    for record in caplog.records:
        assert secret not in record.getMessage()
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in repr(p)
    assert info.value.status == 401 and not info.value.retryable
    await p.close()


def test_body_is_plain_json(ollama_server: OllamaServer) -> None:
    # The request body round-trips through JSON exactly (no pydantic objects leak in).
    p = provider(ollama_server)
    sent = p._body([Message.user("hi")], [WEATHER], stream=True)
    assert json.loads(json.dumps(sent)) == sent
