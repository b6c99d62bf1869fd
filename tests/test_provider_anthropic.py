"""AnthropicProvider against the loopback Anthropic server, through the official SDK."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import pytest

from tests.servers import AnthropicServer, Call, Hang, Slow, Status, Text, ToolCalls, Truncate
from tests.timing import PROMPTLY, STALL
from victor.core.messages import Message, ResponseComplete, TextDelta, ToolCall, ToolSpec
from victor.errors import ConfigurationError, ProviderError
from victor.providers.anthropic import AnthropicProvider
from victor.providers.base import AgentResponse

KEY = "sk-ant-test-SECRET-0123456789"

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

Factory = Callable[..., AnthropicProvider]


@pytest.fixture
async def provider(anthropic_server: AnthropicServer) -> AsyncIterator[Factory]:
    """Make providers pointed at the server; close their clients after the test."""
    made: list[AnthropicProvider] = []

    def make(**kwargs: object) -> AnthropicProvider:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("base_url", anthropic_server.url)
        kwargs.setdefault("max_retries", 0)
        p = AnthropicProvider(**kwargs)  # type: ignore[arg-type]
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()


async def collect(
    p: AnthropicProvider, messages: list[Message], tools: list[ToolSpec] | None = None
):
    events = [event async for event in p.stream(messages, tools)]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    completes = [e for e in events if isinstance(e, ResponseComplete)]
    assert len(completes) == 1 and events[-1] is completes[0]
    return deltas, completes[0].response


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = (
        "import sys, victor.providers.anthropic;"
        "assert 'anthropic' not in sys.modules and 'httpx2' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_class_settings() -> None:
    p = AnthropicProvider(api_key=KEY)
    assert (p.name, p.model) == ("anthropic", "claude-sonnet-4-20250514")
    assert (p.api_key_env, p.base_url_env) == ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
    # chat/stream stay the base class's (retries live there; docs patch .chat).
    assert "chat" not in AnthropicProvider.__dict__ and "stream" not in AnthropicProvider.__dict__


# -- chat ------------------------------------------------------------------------------


async def test_chat_text_usage_and_request_body(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Text("Hello there!", input_tokens=12, output_tokens=3))
    p = provider(model="claude-test-1")
    response = await p.chat([Message.user("Hi")])
    assert isinstance(response, AgentResponse)
    assert response.content == "Hello there!"
    assert response.tool_calls == []
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert response.tokens_used == 15
    assert response.stop_reason == "end"
    assert response.model == "claude-test-1"

    request = anthropic_server.requests[-1]
    assert (request.method, request.path) == ("POST", "/v1/messages")
    body = request.body
    assert body["model"] == "claude-test-1"
    assert body["max_tokens"] == 4096 and body["temperature"] == 0.7
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert "system" not in body and "tools" not in body and "stream" not in body


async def test_system_prompts_settings_and_options_reach_the_body(
    provider: Factory, anthropic_server
) -> None:
    anthropic_server.script(Text("x"))
    p = provider(
        temperature=0.2,
        max_tokens=123,
        top_k=5,
        stop_sequences=["END"],
        metadata={"user_id": "u1"},
        extra_headers={"x-trace": "t1"},
    )
    await p.chat([Message.system("Be brief."), Message.user("Hi"), Message.system("Be kind.")])
    request = anthropic_server.requests[-1]
    body = request.body
    assert body["system"] == "Be brief.\n\nBe kind."
    assert all(m["role"] != "system" for m in body["messages"])
    assert body["temperature"] == 0.2 and body["max_tokens"] == 123
    assert body["top_k"] == 5 and body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u1"}
    assert request.headers["x-trace"] == "t1" and "extra_headers" not in body


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("length", "length"), ("stop_sequence", "stop_sequence"), ("refusal", "refusal")],
)
async def test_stop_reasons_are_normalised(provider: Factory, anthropic_server, wire, expected):
    anthropic_server.script(Text("a b", stop_reason=wire), Text("a b", stop_reason=wire))
    p = provider()
    assert (await p.chat([Message.user("x")])).stop_reason == expected
    _, response = await collect(p, [Message.user("x")])
    assert response.stop_reason == expected


async def test_chat_several_tool_calls_in_one_turn(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(
        ToolCalls(
            [
                Call("get_weather", {"city": "Paris"}, id="toolu_a"),
                Call("get_weather", {"city": "Oslo"}),
            ],
            text="Checking both.",
        )
    )
    p = provider()
    response = await p.chat([Message.user("Weather in Paris and Oslo?")], [WEATHER])
    assert response.content == "Checking both."
    assert response.stop_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert response.tool_calls[0].id == "toolu_a" and response.tool_calls[1].id
    assert anthropic_server.requests[-1].body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER.parameters,
        }
    ]


async def test_malformed_tool_arguments_stay_visible(provider: Factory, anthropic_server) -> None:
    bad = Call("get_weather", raw_arguments='{"city": "Par', id="toolu_bad")
    anthropic_server.script(ToolCalls([bad]), ToolCalls([bad]))
    p = provider()
    response = await p.chat([Message.user("x")], [WEATHER])
    _, streamed = await collect(p, [Message.user("x")], [WEATHER])
    for call in (response.tool_calls[0], streamed.tool_calls[0]):
        assert call.id == "toolu_bad" and call.arguments == {}
        assert call.invalid_arguments and "Par" in call.invalid_arguments


async def test_tool_results_go_back_in_one_user_turn(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Text("Paris 20C, Oslo unknown."))
    paris = ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})
    oslo = ToolCall(id="toolu_2", name="get_weather", arguments={"city": "Oslo"})
    conversation = [
        Message.system("You report weather."),
        Message.user("Weather in Paris and Oslo?"),
        Message.assistant("Checking.", [paris, oslo]),
        Message.tool(paris, "20C"),
        Message.tool(oslo, "service down", is_error=True),
    ]
    p = provider()
    response = await p.chat(conversation, [WEATHER])
    assert response.content == "Paris 20C, Oslo unknown."
    assert anthropic_server.requests[-1].body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "20C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "service down",
                    "is_error": True,
                },
            ],
        },
    ]


# -- streaming -------------------------------------------------------------------------


async def test_stream_text_deltas_then_one_response(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Text("The quick brown fox", input_tokens=7))
    p = provider()
    deltas, response = await collect(p, [Message.user("Say it")])
    assert deltas == ["The ", "quick ", "brown ", "fox"]
    assert response.content == "The quick brown fox"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 4)
    assert response.stop_reason == "end" and response.tool_calls == []
    assert anthropic_server.requests[-1].body["stream"] is True


async def test_stream_assembles_fragmented_tool_calls(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(
        ToolCalls(
            [
                Call("get_weather", {"city": "San Francisco", "units": "metric"}, id="toolu_x"),
                Call("get_weather", {"city": "Oslo"}, id="toolu_y"),
            ],
            text="Looking up.",
        )
    )
    p = provider()
    deltas, response = await collect(p, [Message.user("x")], [WEATHER])
    assert "".join(deltas) == response.content == "Looking up."
    assert response.stop_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("toolu_x", "get_weather", {"city": "San Francisco", "units": "metric"}),
        ("toolu_y", "get_weather", {"city": "Oslo"}),
    ]
    assert response.usage.output_tokens > 1  # the final count, not message_start's 1


async def test_truncated_stream_raises(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Truncate("partial answer here"))
    p = provider()
    seen: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for event in p.stream([Message.user("x")]):
            assert isinstance(event, TextDelta), "no response may complete"
            seen.append(event.text)
    assert "".join(seen) == "partial answer here"
    assert "stream ended early" in str(info.value) and info.value.retryable


async def test_truncated_chat_raises_retryable(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Truncate("partial"), Truncate("partial"))
    p = provider()
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert "ended early" in str(info.value) and info.value.retryable


async def test_abandoned_stream_closes_the_connection(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Hang(seconds=STALL, text="thinking hard"))
    p = provider()
    agen = p.stream([Message.user("x")])
    async for event in agen:
        assert isinstance(event, TextDelta)
        break
    await agen.aclose()
    # Waited for in a thread so the loop stays free to finish closing; long before the
    # server would have ended the stalled reply itself.
    assert await asyncio.to_thread(anthropic_server.wait_disconnects, 1, PROMPTLY)


async def test_cancelled_stream_closes_the_connection(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Hang(seconds=STALL, text="thinking hard"))
    p = provider()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in p.stream([Message.user("x")]):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), PROMPTLY)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(anthropic_server.wait_disconnects, 1, PROMPTLY)


# -- errors and retries ----------------------------------------------------------------


async def test_500_then_success_is_retried(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Status(500, headers={"retry-after": "0"}), Text("recovered"))
    p = provider(max_retries=1)
    assert (await p.chat([Message.user("x")])).content == "recovered"
    assert len(anthropic_server.requests) == 2


async def test_stream_529_then_success_is_retried(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Status(529, headers={"retry-after": "0"}), Text("back"))
    p = provider(max_retries=1)
    deltas, response = await collect(p, [Message.user("x")])
    assert "".join(deltas) == response.content == "back"
    assert len(anthropic_server.requests) == 2


async def test_429_retry_after_is_honoured(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Status(429, headers={"retry-after": "0.4"}), Text("ok"))
    p = provider(max_retries=1)
    started = time.monotonic()
    assert (await p.chat([Message.user("x")])).content == "ok"
    assert time.monotonic() - started >= 0.4


async def test_429_when_retries_are_exhausted(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(*[Status(429, headers={"retry-after": "0"})] * 2)
    p = provider(max_retries=1)
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    error = info.value
    assert len(anthropic_server.requests) == 2
    assert (error.status, error.retryable, error.retry_after) == (429, True, 0.0)
    assert error.request_id == anthropic_server.last_request_id
    assert error.provider == "anthropic" and "rate limited" in str(error)
    assert error.request_id in str(error)


@pytest.mark.parametrize(
    ("code", "words"),
    [(401, "ANTHROPIC_API_KEY"), (404, "claude-missing"), (400, "rejected")],
)
async def test_client_errors_are_not_retried(provider: Factory, anthropic_server, code, words):
    anthropic_server.script(Status(code), Status(code))
    p = provider(model="claude-missing", max_retries=2)
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert info.value.status == code and not info.value.retryable
    assert words in str(info.value)
    assert len(anthropic_server.requests) == 1


async def test_slow_server_times_out_quickly(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Slow(STALL, Text("late")))
    p = provider(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert time.monotonic() - started < PROMPTLY  # the 0.5 s timeout, not the server's stall
    assert info.value.retryable and "timeout=0.5" in str(info.value)


async def test_stalled_stream_times_out(provider: Factory, anthropic_server) -> None:
    anthropic_server.script(Hang(seconds=STALL, text="hmm"))
    p = provider(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        async for _ in p.stream([Message.user("x")]):
            pass
    assert time.monotonic() - started < PROMPTLY
    assert info.value.retryable


async def test_unreachable_server_is_a_retryable_provider_error(provider: Factory) -> None:
    p = provider(base_url="http://127.0.0.1:9", timeout=1.0)
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert info.value.retryable and "ANTHROPIC_BASE_URL" in str(info.value)


# -- settings, clients, secrets ----------------------------------------------------------


async def test_missing_key_fails_at_first_request(monkeypatch, anthropic_server) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    p = AnthropicProvider(base_url=anthropic_server.url)  # constructing is fine
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        await p.chat([Message.user("x")])
    assert anthropic_server.requests == []


async def test_key_and_base_url_from_environment(monkeypatch, anthropic_server) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    p = AnthropicProvider()
    try:
        assert (await p.chat([Message.user("x")])).content == "ok"
    finally:
        await p.close()
    headers = anthropic_server.requests[-1].headers
    assert KEY in headers.get("x-api-key", "") + headers.get("authorization", "")


def test_one_client_per_event_loop(anthropic_server) -> None:
    p = AnthropicProvider(api_key=KEY, base_url=anthropic_server.url, max_retries=0)

    async def use() -> object:
        await p.chat([Message.user("x")])
        client = p.client()
        await p.chat([Message.user("x")])
        assert p.client() is client  # reused within a loop
        return client

    clients = []
    for _ in range(2):
        loop = asyncio.new_event_loop()
        try:
            clients.append(loop.run_until_complete(use()))
            loop.run_until_complete(p.close())
            assert clients[-1].is_closed()
        finally:
            loop.close()
    assert clients[0] is not clients[1]
    assert len(anthropic_server.requests) == 4


async def test_close_closes_the_client(provider: Factory) -> None:
    p = provider()
    await p.chat([Message.user("x")])
    client = p.client()
    assert not client.is_closed()
    await p.close()
    assert client.is_closed()
    assert p.client() is not client  # a new one on next use


async def test_api_key_never_in_logs_or_errors(provider: Factory, anthropic_server, caplog) -> None:
    for name in (None, "anthropic", "httpx2", "httpcore", "victor"):
        caplog.set_level(logging.DEBUG, logger=name)
    anthropic_server.script(
        Text("fine"), ToolCalls([("get_weather", {"city": "Rome"})]), Status(401)
    )
    p = provider()
    await p.chat([Message.user("x")])
    await collect(p, [Message.user("x")], [WEATHER])
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert any(r.name.startswith("anthropic") for r in caplog.records), "nothing was logged"
    for record in caplog.records:
        assert KEY not in record.getMessage()
    assert KEY not in caplog.text
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in repr(p) and KEY not in str(p)


@pytest.mark.parametrize(
    ("kind", "retryable"), [("overloaded_error", True), ("invalid_request_error", False)]
)
def test_error_event_inside_a_stream_is_mapped(kind: str, retryable: bool) -> None:
    # The loopback server cannot send an SSE ``error`` event, so build the exception the
    # SDK raises for one: an APIStatusError on the 200 response of the stream.
    import anthropic
    import httpx2

    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    response = httpx2.Response(200, headers={"request-id": "req_9"}, request=request)
    body = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    exc = anthropic.APIStatusError(str(body), response=response, body=body)
    error = AnthropicProvider(api_key=KEY)._map_error(exc)
    assert isinstance(error, ProviderError)
    assert (error.retryable, error.status, error.request_id) == (retryable, None, "req_9")
    assert "mid-stream" in str(error) and "Overloaded" in str(error)
