"""Proves the fake servers in tests/servers speak the real wire protocols, by driving the
official anthropic and openai SDKs (and plain httpx for Ollama) against them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.servers import (
    AnthropicServer,
    Call,
    Hang,
    OllamaServer,
    OpenAIServer,
    Slow,
    Status,
    Text,
    ToolCalls,
    Truncate,
)
from tests.timing import PROMPTLY, STALL

MSG = [{"role": "user", "content": "hi"}]
WEATHER = {"city": "Paris", "days": 3, "units": "metric"}

# Both SDKs sit on httpx2 today but may move; a transport error is whatever
# non-status error they let out, so accept the httpx families and the SDK's wrapper.
try:
    import httpx2

    TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:  # pragma: no cover - depends on SDK version
    TRANSPORT_ERRORS = (httpx.HTTPError,)


@pytest.fixture
async def claude(anthropic_server: AnthropicServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=anthropic_server.url, api_key="test-key", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def gpt(openai_server: OpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=openai_server.url + "/v1", api_key="test", max_retries=0
    ) as client:
        yield client


# -- base behaviour --------------------------------------------------------------------


async def test_unscripted_post_gets_ok_and_requests_are_recorded(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(Text("first"))
    assert openai_server.pending == 1
    first = await gpt.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    second = await gpt.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert [first.choices[0].message.content, second.choices[0].message.content] == ["first", "ok"]
    assert openai_server.pending == 0
    req = openai_server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == "Bearer test"
    assert req.body == {"model": "gpt-4o-mini", "messages": MSG}


async def test_stop_releases_a_hanging_stream(ollama_server: OllamaServer) -> None:
    ollama_server.script(Hang(STALL, text="zzz"))
    async with httpx.AsyncClient(base_url=ollama_server.url) as client:
        async with client.stream("POST", "/api/chat", json={"messages": MSG}) as resp:
            lines = resp.aiter_lines()
            assert json.loads(await lines.__anext__())["message"]["content"] == "zzz"
            started = time.monotonic()
            ollama_server.stop()
            assert time.monotonic() - started < PROMPTLY  # not the STALL of the reply
            with pytest.raises(httpx.RemoteProtocolError):  # cut, not finished, not hung
                async for _ in lines:
                    pass


# -- Anthropic --------------------------------------------------------------------------


async def test_anthropic_non_stream_text(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Text("Hello there", input_tokens=7, output_tokens=2))
    msg = await claude.messages.create(model="claude-x", max_tokens=50, messages=MSG)
    assert msg.id.startswith("msg_") and msg.model == "claude-x"
    assert [(b.type, b.text) for b in msg.content] == [("text", "Hello there")]
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (7, 2)
    assert msg._request_id == anthropic_server.last_request_id
    req = anthropic_server.requests[0]
    # SDK versions differ on the auth header (x-api-key, or a bearer token).
    assert "test-key" in (req.headers.get("x-api-key"), req.headers.get("authorization", "")[7:])
    assert "anthropic-version" in req.headers
    assert req.body["max_tokens"] == 50


async def test_anthropic_non_stream_tool_use_and_length(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(
        ToolCalls([("get_weather", WEATHER)], text="Checking."),
        Text("cut", stop_reason="length"),
    )
    msg = await claude.messages.create(model="m", max_tokens=50, messages=MSG)
    assert msg.stop_reason == "tool_use"
    text, tool = msg.content
    assert text.text == "Checking."
    assert (tool.type, tool.name, tool.input) == ("tool_use", "get_weather", WEATHER)
    assert tool.id.startswith("toolu_")
    msg = await claude.messages.create(model="m", max_tokens=1, messages=MSG)
    assert msg.stop_reason == "max_tokens"


async def test_anthropic_raw_stream_assembles_text_and_tool_input(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(ToolCalls([("get_weather", WEATHER)], text="Let me check."))
    stream = await claude.messages.create(model="m", max_tokens=50, messages=MSG, stream=True)
    events = [event async for event in stream]

    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == types.count("content_block_stop") == 2
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert text == "Let me check."
    assert len(fragments) > 2  # really fragmented
    assert json.loads("".join(fragments)) == WEATHER
    assert events[-2].delta.stop_reason == "tool_use"
    assert events[0].message.usage.output_tokens == 1


async def test_anthropic_stream_helper_final_message_with_two_tools(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(
        ToolCalls(
            [Call("get_weather", WEATHER, id="toolu_A"), ("get_time", {"tz": "Europe/Paris"})],
            text="Two lookups.",
        )
    )
    async with claude.messages.stream(model="m", max_tokens=50, messages=MSG) as stream:
        deltas = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(deltas) == "Two lookups." and len(deltas) == 2
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert [(b.id, b.input) for b in final.content[1:]] == [
        ("toolu_A", WEATHER),
        ("toolu_1", {"tz": "Europe/Paris"}),
    ]
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 1


async def test_anthropic_rate_limit_is_typed_with_request_id(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Status(429, headers={"retry-after": "0"}))
    with pytest.raises(anthropic.RateLimitError) as info:
        await claude.messages.create(model="m", max_tokens=5, messages=MSG)
    assert info.value.status_code == 429
    assert info.value.request_id == anthropic_server.last_request_id is not None
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert info.value.response.headers["retry-after"] == "0"


async def test_anthropic_overloaded_529(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Status(529))
    with pytest.raises(anthropic.APIStatusError) as info:
        await claude.messages.create(model="m", max_tokens=5, messages=MSG)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"


async def test_anthropic_truncated_stream_raises(
    anthropic_server: AnthropicServer, claude: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.script(Truncate("half of an answer"))
    seen: list[str] = []
    with pytest.raises((anthropic.APIError, *TRANSPORT_ERRORS)):
        async with claude.messages.stream(model="m", max_tokens=50, messages=MSG) as stream:
            async for text in stream.text_stream:
                seen.append(text)
    assert "".join(seen) == "half of an answer"  # all deltas arrived, then the cut

    # Not streaming: a Content-Length body cut in half is a connection error.
    anthropic_server.script(Truncate("half of an answer"))
    with pytest.raises(anthropic.APIConnectionError):
        await claude.messages.create(model="m", max_tokens=50, messages=MSG)


async def test_anthropic_slow_reply_times_out(anthropic_server: AnthropicServer) -> None:
    anthropic_server.script(Slow(STALL, then=Text("too late")))
    async with anthropic.AsyncAnthropic(
        base_url=anthropic_server.url, api_key="k", max_retries=0, timeout=0.2
    ) as client:
        with pytest.raises(anthropic.APITimeoutError):
            await client.messages.create(model="m", max_tokens=5, messages=MSG)


# -- OpenAI -----------------------------------------------------------------------------


async def test_openai_non_stream_text_and_tool_calls(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(
        Text("Hi there", input_tokens=5, output_tokens=2),
        ToolCalls([("get_weather", WEATHER)]),
    )
    done = await gpt.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert done.object == "chat.completion" and done.model == "gpt-4o-mini"
    assert done.choices[0].message.content == "Hi there"
    assert done.choices[0].finish_reason == "stop"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (
        5,
        2,
        7,
    )

    done = await gpt.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_1", "function", "get_weather")
    assert json.loads(call.function.arguments) == WEATHER


async def test_openai_stream_reassembles_fragmented_tool_calls_with_usage(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(
        ToolCalls([("get_weather", WEATHER), ("get_time", {"tz": "UTC"})], text="Looking up.")
    )
    stream = await gpt.chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls: dict[int, dict[str, Any]] = {}
    pieces: dict[int, int] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:  # only the first fragment of a call names it
                slot["id"], slot["name"] = tc.id, tc.function.name
            slot["arguments"] += tc.function.arguments or ""
            pieces[tc.index] = pieces.get(tc.index, 0) + 1
    assert text == "Looking up."
    assert [(v["id"], v["name"], json.loads(v["arguments"])) for v in calls.values()] == [
        ("call_1", "get_weather", WEATHER),
        ("call_2", "get_time", {"tz": "UTC"}),
    ]
    assert min(pieces.values()) > 2
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 10


async def test_openai_stream_without_include_usage_has_no_usage_chunk(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(Text("one two three", chunks=2))
    stream = await gpt.chat.completions.create(model="m", messages=MSG, stream=True)
    chunks = [c async for c in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == ["one two", " three"]
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_malformed_raw_arguments_pass_through(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(ToolCalls([Call("f", raw_arguments='{"a": 1')]))
    stream = await gpt.chat.completions.create(model="m", messages=MSG, stream=True)
    args = "".join(
        [
            tc.function.arguments or ""
            async for c in stream
            for tc in (c.choices[0].delta.tool_calls or [])
        ]
    )
    assert args == '{"a": 1'
    with pytest.raises(json.JSONDecodeError):
        json.loads(args)


async def test_openai_500_is_internal_server_error(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(Status(500))
    with pytest.raises(openai.InternalServerError) as info:
        await gpt.chat.completions.create(model="m", messages=MSG)
    assert info.value.status_code == 500
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert info.value.body["type"] == "server_error"  # the SDK unwraps {"error": {...}}


async def test_openai_truncated_stream_raises(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(Truncate("cut here"))
    stream = await gpt.chat.completions.create(model="m", messages=MSG, stream=True)
    seen: list[str] = []
    with pytest.raises((openai.APIError, *TRANSPORT_ERRORS)):
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "cut here"


async def test_openai_hang_counts_disconnect_when_client_closes(
    openai_server: OpenAIServer, gpt: openai.AsyncOpenAI
) -> None:
    openai_server.script(Hang(STALL, text="still thinking"))
    stream = await gpt.chat.completions.create(model="m", messages=MSG, stream=True)
    got = []
    async for chunk in stream:
        got.append(chunk.choices[0].delta.content)
        if len(got) == 3:  # role chunk + both words: everything before the stall
            break
    await stream.close()
    assert got == ["", "still ", "thinking"]
    assert openai_server.wait_disconnects(1, timeout=PROMPTLY)


async def test_openai_models_list(openai_server: OpenAIServer, gpt: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in gpt.models.list()]
    assert models == openai_server.models
    assert openai_server.requests[-1].method == "GET"


# -- Ollama ----------------------------------------------------------------------------


async def test_ollama_streams_ndjson_by_default(ollama_server: OllamaServer) -> None:
    ollama_server.script(Text("Why is the sky blue", stop_reason="length"))
    lines: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=ollama_server.url) as client:
        async with client.stream(
            "POST", "/api/chat", json={"model": "llama3.2", "messages": MSG}
        ) as resp:
            assert resp.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) async for line in resp.aiter_lines() if line]
    assert all(not line["done"] for line in lines[:-1]) and len(lines) == 6
    assert "".join(line["message"]["content"] for line in lines) == "Why is the sky blue"
    last = lines[-1]
    assert last["done"] and last["done_reason"] == "length" and last["eval_count"] == 5
    assert last["model"] == "llama3.2" and last["created_at"].endswith("Z")


async def test_ollama_tool_calls_stream_whole_and_non_stream(
    ollama_server: OllamaServer,
) -> None:
    reply = ToolCalls([("get_weather", WEATHER)])
    ollama_server.script(reply, reply)
    body = {"model": "llama3.2", "messages": MSG}
    async with httpx.AsyncClient(base_url=ollama_server.url) as client:
        async with client.stream("POST", "/api/chat", json=body) as resp:
            lines = [json.loads(line) async for line in resp.aiter_lines() if line]
        single = (await client.post("/api/chat", json=body | {"stream": False})).json()
    with_calls = [line for line in lines if line["message"].get("tool_calls")]
    assert len(with_calls) == 1  # one whole chunk, not fragments
    expected = [{"function": {"name": "get_weather", "arguments": WEATHER}}]
    assert with_calls[0]["message"]["tool_calls"] == expected
    assert lines[-1]["done_reason"] == "stop"
    assert single["done"] is True and single["message"]["tool_calls"] == expected


async def test_ollama_error_tags_and_version(ollama_server: OllamaServer) -> None:
    ollama_server.script(Status(404, {"error": 'model "nope" not found, try pulling it first'}))
    async with httpx.AsyncClient(base_url=ollama_server.url) as client:
        err = await client.post("/api/chat", json={"model": "nope", "messages": MSG})
        tags = (await client.get("/api/tags")).json()
        version = (await client.get("/api/version")).json()
    assert err.status_code == 404 and "not found" in err.json()["error"]
    assert [m["name"] for m in tags["models"]] == ollama_server.models
    assert version == {"version": ollama_server.version}


async def test_ollama_truncate_is_a_protocol_error(ollama_server: OllamaServer) -> None:
    ollama_server.script(Truncate("cut short"))
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=ollama_server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", "/api/chat", json={"messages": MSG}) as resp:
                async for line in resp.aiter_lines():
                    seen.append(json.loads(line)["message"]["content"])
    assert "".join(seen) == "cut short"
