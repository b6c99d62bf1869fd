"""OpenAIProvider through the official SDK against the loopback OpenAI server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time

import pytest

from tests.servers import Call, Hang, Slow, Status, Text, ToolCalls, Truncate
from tests.timing import PROMPTLY, STALL
from victor.core.messages import Message, ResponseComplete, TextDelta, ToolCall, ToolSpec
from victor.errors import ConfigurationError, ProviderError
from victor.providers.openai import OpenAIProvider
from victor.testing import block_requests

WEATHER = ToolSpec(
    name="weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def make(server, **kwargs) -> OpenAIProvider:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("max_retries", 0)
    return OpenAIProvider(base_url=server.url + "/v1", **kwargs)


async def collect(provider: OpenAIProvider, messages, tools=None):
    deltas, completes = [], []
    async for event in provider.stream(messages, tools):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            assert isinstance(event, ResponseComplete)
            completes.append(event.response)
    assert len(completes) == 1, "exactly one ResponseComplete, at the end"
    return deltas, completes[0]


async def wait_for(condition, timeout: float = PROMPTLY) -> bool:
    # Poll without blocking the loop: closing may need the loop to run.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def test_import_does_not_load_sdk() -> None:
    code = (
        "import sys, victor.providers.openai; "
        "print('openai' in sys.modules, 'httpx2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- requests and answers ---------------------------------------------------------------


async def test_chat_text_and_request_body(openai_server) -> None:
    openai_server.script(Text("Hello there", input_tokens=12, output_tokens=3))
    p = make(openai_server, model="gpt-4o-mini", temperature=0.2, max_tokens=77, seed=7, top_k=40)
    messages = [
        Message.system("Be brief."),
        Message.user("hi"),
        Message.system("Answer in English."),
    ]
    r = await p.chat(messages)
    assert r.content == "Hello there"
    assert r.tool_calls == []
    assert (r.usage.input_tokens, r.usage.output_tokens, r.tokens_used) == (12, 3, 15)
    assert r.model == "gpt-4o-mini"
    assert r.stop_reason == "end"

    request = openai_server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.body
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 77
    assert (body["seed"], body["top_k"]) == (7, 40)  # extra options, verbatim
    assert "tools" not in body and not body.get("stream")
    # Several system messages become one, first.
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\n\nAnswer in English."},
        {"role": "user", "content": "hi"},
    ]
    await p.close()


async def test_chat_one_and_several_tool_calls(openai_server) -> None:
    openai_server.script(
        ToolCalls([Call("weather", {"city": "Paris"}, id="call_a")]),
        ToolCalls(
            [
                Call("weather", {"city": "Oslo"}, id="call_b"),
                Call("weather", {"city": "Rome"}, id="call_c"),
                Call("weather", raw_arguments='{"city": ', id="call_d"),
            ],
            text="Checking.",
        ),
    )
    p = make(openai_server)
    one = await p.chat([Message.user("weather?")], [WEATHER])
    assert one.stop_reason == "tool_calls"
    assert one.content == ""
    assert [(c.id, c.name, c.arguments) for c in one.tool_calls] == [
        ("call_a", "weather", {"city": "Paris"})
    ]
    tools = openai_server.requests[-1].body["tools"]
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]

    several = await p.chat([Message.user("weather?")], [WEATHER])
    assert several.content == "Checking."
    assert [(c.id, c.arguments) for c in several.tool_calls[:2]] == [
        ("call_b", {"city": "Oslo"}),
        ("call_c", {"city": "Rome"}),
    ]
    broken = several.tool_calls[2]
    assert broken.arguments == {} and '{"city": ' in broken.invalid_arguments
    await p.close()


async def test_tool_results_go_back_in_wire_shape(openai_server) -> None:
    a = ToolCall(id="call_1", name="weather", arguments={"city": "Paris"})
    b = ToolCall(id="call_2", name="weather", arguments={"city": "Oslo"})
    messages = [
        Message.system("sys"),
        Message.user("weather in Paris and Oslo?"),
        Message.assistant("", [a, b]),
        Message.tool(a, "sunny"),
        Message.tool(b, "no such city", is_error=True),
    ]
    p = make(openai_server)
    r = await p.chat(messages, [WEATHER])
    assert r.content == "ok"
    wire = openai_server.requests[-1].body["messages"]
    assert wire[0] == {"role": "system", "content": "sys"}
    assert wire[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": json.dumps({"city": "Paris"})},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "weather", "arguments": json.dumps({"city": "Oslo"})},
            },
        ],
    }
    assert wire[3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert wire[4]["role"] == "tool" and wire[4]["tool_call_id"] == "call_2"
    assert "no such city" in wire[4]["content"] and "error" in wire[4]["content"].lower()
    assert len(wire) == 5
    await p.close()


async def test_stream_text_usage_and_request(openai_server) -> None:
    openai_server.script(Text("The quick brown fox", input_tokens=9))
    p = make(openai_server, max_tokens=50, temperature=0.0)
    deltas, r = await collect(p, [Message.system("s"), Message.user("go")])
    assert deltas == ["The ", "quick ", "brown ", "fox"]
    assert r.content == "The quick brown fox"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (9, 4)
    assert r.stop_reason == "end" and r.model == "gpt-4o"
    body = openai_server.requests[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"]) == (50, 0.0)
    assert body["messages"][0] == {"role": "system", "content": "s"}
    await p.close()


async def test_stream_assembles_fragmented_tool_calls(openai_server) -> None:
    args_b = {"city": "Oslo", "units": "metric", "days": [1, 2, 3]}
    openai_server.script(
        ToolCalls(
            [
                Call("weather", {"city": "Paris"}, id="call_a"),
                Call("forecast", args_b, id="call_b"),
            ],
            text="Let me look.",
        )
    )
    p = make(openai_server)
    deltas, r = await collect(p, [Message.user("weather?")], [WEATHER])
    assert "".join(deltas) == "Let me look." == r.content
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [
        ("call_a", "weather", {"city": "Paris"}),
        ("call_b", "forecast", args_b),
    ]
    assert all(c.invalid_arguments is None for c in r.tool_calls)
    assert r.stop_reason == "tool_calls"
    assert r.usage.output_tokens > 0
    await p.close()


async def test_stream_malformed_tool_arguments_stay_visible(openai_server) -> None:
    openai_server.script(ToolCalls([Call("weather", raw_arguments='{"city": "Pa', id="c1")]))
    p = make(openai_server)
    _, r = await collect(p, [Message.user("weather?")], [WEATHER])
    assert r.tool_calls[0].id == "c1"
    assert '{"city": "Pa' in r.tool_calls[0].invalid_arguments
    await p.close()


async def test_stop_reasons(openai_server) -> None:
    openai_server.script(
        Text("cut", stop_reason="length"),
        Text("cut", stop_reason="length"),
        Text("hidden", stop_reason="content_filter"),
    )
    p = make(openai_server)
    assert (await p.chat([Message.user("x")])).stop_reason == "length"
    _, r = await collect(p, [Message.user("x")])
    assert r.stop_reason == "length"
    assert (await p.chat([Message.user("x")])).stop_reason == "content_filter"  # unknown: raw
    await p.close()


async def test_a_refusal_is_the_answer_and_its_stop_reason(openai_server) -> None:
    words = "I can't help with that."
    openai_server.script(Text(words, refusal=True), Text(words, refusal=True))
    p = make(openai_server)
    response = await p.chat([Message.user("x")])
    assert (response.content, response.stop_reason) == (words, "refusal")
    deltas, streamed = await collect(p, [Message.user("x")])
    assert "".join(deltas) == streamed.content == words
    assert streamed.stop_reason == "refusal"
    await p.close()


async def test_extra_headers_option_is_a_header_not_a_body_field(openai_server) -> None:
    p = make(openai_server, extra_headers={"X-Trace": "abc"}, stop=["END"])
    await p.chat([Message.user("x")])
    request = openai_server.requests[-1]
    assert request.headers["x-trace"] == "abc"
    assert "extra_headers" not in request.body and request.body["stop"] == ["END"]
    await p.close()


# -- failures -----------------------------------------------------------------------------


async def test_500_then_success_is_retried(openai_server) -> None:
    retry_now = {"retry-after": "0"}
    openai_server.script(Status(500, headers=retry_now), Text("recovered"))
    openai_server.script(Status(503, headers=retry_now), Text("streamed"))
    p = make(openai_server, max_retries=1)
    assert (await p.chat([Message.user("x")])).content == "recovered"
    deltas, r = await collect(p, [Message.user("x")])
    assert "".join(deltas) == r.content == "streamed"
    assert len(openai_server.requests) == 4
    await p.close()


async def test_429_retry_after_is_honoured_then_reported(openai_server) -> None:
    headers = {"retry-after": "0.2"}
    openai_server.script(Status(429, headers=headers), Status(429, headers=headers))
    p = make(openai_server, max_retries=1)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert time.monotonic() - started >= 0.2  # waited as told
    err = info.value
    assert (err.status, err.retryable, err.retry_after) == (429, True, 0.2)
    assert err.request_id == "req_2"  # the last attempt's id
    assert "rate limit" in str(err) and "req_2" in str(err)
    assert len(openai_server.requests) == 2
    await p.close()


async def test_client_errors_are_not_retried_and_say_what_to_do(openai_server) -> None:
    openai_server.script(Status(401), Status(404), Status(400, body={"error": {"message": "bad"}}))
    p = make(openai_server, model="gpt-nope", max_retries=2)
    with pytest.raises(ProviderError) as auth:
        await p.chat([Message.user("x")])
    assert auth.value.status == 401 and not auth.value.retryable
    assert "OPENAI_API_KEY" in str(auth.value)
    with pytest.raises(ProviderError) as missing:
        await p.chat([Message.user("x")])
    assert missing.value.status == 404 and "gpt-nope" in str(missing.value)
    with pytest.raises(ProviderError) as bad:
        await p.chat([Message.user("x")])
    assert bad.value.status == 400 and "bad" in str(bad.value)
    assert len(openai_server.requests) == 3  # none retried
    await p.close()


async def test_truncated_stream_raises(openai_server) -> None:
    openai_server.script(Truncate("partial answer"), Truncate("partial answer"))
    p = make(openai_server)
    deltas: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for event in p.stream([Message.user("x")]):
            assert isinstance(event, TextDelta), "no ResponseComplete for a partial answer"
            deltas.append(event.text)
    assert "stream ended early" in str(info.value) and info.value.retryable
    assert "".join(deltas) == "partial answer"
    with pytest.raises(ProviderError) as cut:  # a non-streamed body cut short
        await p.chat([Message.user("x")])
    assert cut.value.retryable and "dropped" in str(cut.value)
    await p.close()


async def test_a_dropped_connection_reads_the_same_from_chat_and_stream(openai_server) -> None:
    """One mapping function: the SDK's error for a connection cut mid-answer becomes the
    same ProviderError whether the answer was streamed or not."""
    openai_server.script(Truncate("partial answer"), Truncate("partial answer"))
    p = make(openai_server)
    errors = []
    for streaming in (True, False):
        with pytest.raises(ProviderError) as info:
            if streaming:
                async for _ in p.stream([Message.user("x")]):
                    pass
            else:
                await p.chat([Message.user("x")])
        errors.append(info.value)
    expected = f"stream ended early: the connection to {p.base_url} dropped before the answer"
    assert [expected in str(e) and e.retryable for e in errors] == [True, True]
    await p.close()


async def test_stream_closed_cleanly_without_finish_reason_raises() -> None:
    # Some servers end the HTTP body properly but early; the SDK then just stops
    # iterating, so only the missing finish_reason tells the answer is cut.
    import httpx2
    from openai import AsyncOpenAI

    delta = {"choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": None}]}
    body = f"data: {json.dumps({'id': 'c', 'model': 'm', **delta})}\n\n".encode()

    class Cut(OpenAIProvider):
        def _create_client(self):
            transport = httpx2.MockTransport(
                lambda request: httpx2.Response(
                    200, headers={"content-type": "text/event-stream"}, content=body
                )
            )
            return AsyncOpenAI(
                api_key="k",
                base_url=self.base_url,
                max_retries=0,
                http_client=httpx2.AsyncClient(transport=transport),
            )

    p = Cut(base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(ProviderError, match="stream ended early") as info:
        async for _ in p.stream([Message.user("x")]):
            pass
    assert info.value.retryable
    await p.close()


async def test_slow_server_times_out_quickly(openai_server) -> None:
    openai_server.script(Slow(STALL, then=Text("late")), Hang(STALL, text="thinking about it"))
    p = make(openai_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert time.monotonic() - started < PROMPTLY  # the 0.5 s timeout, not the server's stall
    assert info.value.retryable and "timeout" in str(info.value)
    # A stream that stalls mid-answer also fails instead of hanging.
    started = time.monotonic()
    with pytest.raises(ProviderError):
        async for _ in p.stream([Message.user("x")]):
            pass
    assert time.monotonic() - started < PROMPTLY
    await p.close()


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert info.value.retryable and "could not reach" in str(info.value)
    await p.close()


async def test_abandoned_stream_closes_connection(openai_server) -> None:
    openai_server.script(Hang(STALL, text="one two three"))
    p = make(openai_server)
    agen = p.stream([Message.user("x")])
    async for event in agen:
        assert isinstance(event, TextDelta)
        break
    await agen.aclose()
    assert await wait_for(lambda: openai_server.disconnects == 1)
    await p.close()


async def test_cancelled_stream_closes_connection(openai_server) -> None:
    openai_server.script(Hang(STALL, text="one two three"))
    p = make(openai_server)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in p.stream([Message.user("x")]):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), PROMPTLY)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for(lambda: openai_server.disconnects == 1)
    await p.close()


# -- configuration, clients, secrets ------------------------------------------------------


async def test_missing_key_for_real_api_fails_at_first_request() -> None:
    p = OpenAIProvider()  # construction never needs the key
    assert p.base_url == "https://api.openai.com/v1"
    # tests/conftest.py blocks non-loopback hosts; the key check comes first anyway.
    with block_requests(False), pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        await p.chat([Message.user("x")])


async def test_env_settings_and_keyless_local_server(openai_server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    local = OpenAIProvider()  # loopback, no key: a placeholder lets llama.cpp/vLLM work
    assert (await local.chat([Message.user("x")])).content == "ok"
    assert openai_server.requests[-1].headers["authorization"] == "Bearer not-needed"
    await local.close()

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    keyed = OpenAIProvider()
    await keyed.chat([Message.user("x")])
    assert openai_server.requests[-1].headers["authorization"] == "Bearer sk-from-env"
    await keyed.close()


def test_one_client_per_event_loop(openai_server) -> None:
    p = make(openai_server)

    async def use():
        assert (await p.chat([Message.user("x")])).content == "ok"
        client = p.client()
        assert p.client() is client  # cached within the loop
        return client

    clients = []
    for _ in range(2):
        loop = asyncio.new_event_loop()
        try:
            client = loop.run_until_complete(use())
            clients.append(client)
            loop.run_until_complete(client.close())
        finally:
            loop.close()
    assert clients[0] is not clients[1]
    assert len(openai_server.requests) == 2


async def test_close_closes_clients(openai_server) -> None:
    p = make(openai_server)
    await p.chat([Message.user("x")])
    client = p.client()
    await p.close()
    assert client.is_closed()
    assert (await p.chat([Message.user("x")])).content == "ok"  # a fresh client after close
    assert p.client() is not client
    await p.close()


async def test_api_key_never_in_logs_or_errors(openai_server, caplog) -> None:
    key = "sk-very-secret-0123456789"
    echo = {"error": {"message": f"Incorrect API key provided: {key}", "type": "x"}}
    openai_server.script(Text("hi"), Text("hi"), Status(401, body=echo))
    caplog.set_level(logging.DEBUG)
    p = make(openai_server, api_key=key)
    await p.chat([Message.user("x")])
    await collect(p, [Message.user("x")])
    with pytest.raises(ProviderError) as info:
        await p.chat([Message.user("x")])
    assert openai_server.requests[-1].headers["authorization"] == f"Bearer {key}"
    assert caplog.records, "debug logging was captured"
    for record in caplog.records:
        assert key not in record.getMessage()
        assert key not in str(record.__dict__)
    assert key not in str(info.value) and key not in repr(info.value)
    assert key not in str(info.value.__cause__)  # the chained SDK error, shown in tracebacks
    assert "Incorrect API key provided" in str(info.value)
    assert key not in repr(p)
    await p.close()
