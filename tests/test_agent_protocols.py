"""The issue's user story on all three providers: an Agent created the documented way,
talking to a loopback server that speaks the real wire protocol through the official
client (anthropic SDK, openai SDK, httpx for Ollama)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.servers import Hang, Status, Text, ToolCalls, Truncate
from tests.timing import PROMPTLY, STALL
from victor import Agent, ProviderError
from victor.core.events import EventBus
from victor.tools import tool

SECRET = "sk-test-secret-4242"


@tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    await asyncio.sleep(0.1 if a + b > 10 else 0)  # so the first call below finishes last
    return a + b


@pytest.fixture(params=["anthropic", "openai", "ollama"])
def served(request):
    """(provider name, server, keyword arguments for Agent.create)."""
    server = request.getfixturevalue(f"{request.param}_server")
    base_url = server.url + "/v1" if request.param == "openai" else server.url
    kwargs = {"base_url": base_url, "max_retries": 1, "timeout": 5.0}
    if request.param != "ollama":
        kwargs["api_key"] = SECRET
    return request.param, server, kwargs


def last_body(server) -> dict:
    return server.requests[-1].body


def tool_results_sent(body: dict) -> list[str]:
    """The tool results a request carries back to the model, in the order it sends them."""
    results = []
    for message in body["messages"]:
        if message["role"] == "tool":  # OpenAI and Ollama: one message per result
            results.append(message["content"])
        elif isinstance(message["content"], list):  # Anthropic: tool_result blocks
            blocks = message["content"]
            results += [b["content"] for b in blocks if b.get("type") == "tool_result"]
    return results


async def test_run_with_settings_and_context(served):
    name, server, kwargs = served
    server.script(Text("def sort(xs): return sorted(xs)"))
    agent = await Agent.create(
        provider=name, model="m-1", temperature=0.3, max_tokens=8192, **kwargs
    )
    assert await agent.run("Write a function to sort an array") == "def sort(xs): return sorted(xs)"
    body = last_body(server)
    assert body["model"] == "m-1"
    assert "Write a function to sort an array" in str(body["messages"])
    server.script(Text("faster"))
    await agent.run("Optimize this function", context={"code": "def slow_func(): ..."})
    assert "def slow_func(): ..." in str(last_body(server)["messages"])
    await agent.cleanup()


async def test_astream_yields_tokens(served):
    name, server, kwargs = served
    server.script(Text("Routes, models and handlers.", chunks=4))
    agent = await Agent.create(provider=name, **kwargs)
    tokens = [t async for t in agent.astream("Write a REST API")]
    assert len(tokens) == 4 and "".join(tokens) == "Routes, models and handlers."
    assert last_body(server)["stream"] is True
    await agent.cleanup()


@pytest.mark.parametrize("stream", [False, True])
async def test_calls_reuse_one_connection(served, stream):
    # A stream closed before its body ended costs the next call a new connection (a TLS
    # handshake against the real service): each stream must be read to its end.
    name, server, kwargs = served
    agent = await Agent.create(provider=name, **kwargs)
    for _ in range(3):
        if stream:
            assert "".join([t async for t in agent.astream("Say hi")]) == "ok"
        else:
            assert await agent.run("Say hi") == "ok"
    assert len(server.requests) == 3 and server.connections == 1
    await agent.cleanup()


async def test_a_stream_cut_after_its_last_event_keeps_the_answer(served):
    # Read to the body's end for the connection's sake, a cut after the closing events
    # must not cost the whole answer (nor a retry).
    name, server, kwargs = served
    server.script(Truncate("the whole answer", whole=True))
    agent = await Agent.create(provider=name, **kwargs)
    assert "".join([t async for t in agent.astream("Say it")]) == "the whole answer"
    assert len(server.requests) == 1
    await agent.cleanup()


async def test_chat_remembers(served):
    name, server, kwargs = served
    server.script(Text("class User: pass"), Text("class User: password = None"))
    agent = await Agent.create(provider=name, **kwargs)
    await agent.chat("Create a class for User")
    await agent.chat("Add authentication")
    sent = str(last_body(server)["messages"])
    assert (
        "Create a class for User" in sent
        and "class User: pass" in sent
        and "Add authentication" in sent
    )
    await agent.cleanup()


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(served, stream):
    name, server, kwargs = served
    server.script(
        ToolCalls([("add", {"a": 2, "b": 40}), ("add", {"a": 1, "b": 1})]), Text("42 and 2")
    )
    agent = await Agent.create(provider=name, tools=[add], **kwargs)
    with EventBus.capture("tool.execution") as executed:
        if stream:
            answer = "".join([t async for t in agent.astream("add things")])
        else:
            answer = await agent.run("add things")
    assert answer == "42 and 2"
    # The calls run concurrently, so they may finish in either order; the results go back
    # to the model in the order it made the calls.
    assert sorted(e.data["result"] for e in executed) == ["2", "42"]
    assert tool_results_sent(last_body(server)) == ["42", "2"]
    await agent.cleanup()


async def test_server_error_then_recovery(served):
    name, server, kwargs = served
    server.script(Status(500), Text("recovered"))
    agent = await Agent.create(provider=name, **kwargs)
    assert await agent.run("x") == "recovered"
    await agent.cleanup()


async def test_rate_limit_exhausted_is_a_clear_provider_error(served):
    name, server, kwargs = served
    server.script(*[Status(429, headers={"retry-after": "0"})] * 2)
    agent = await Agent.create(provider=name, **kwargs)
    with pytest.raises(ProviderError) as info:
        await agent.run("x")
    assert info.value.status == 429 and info.value.retryable and info.value.provider == name
    await agent.cleanup()


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "wait"),
    [
        # The finer retry-after-ms wins over retry-after, on every provider.
        (429, {"retry-after-ms": "250", "retry-after": "30"}, True, 0.25),
        (503, {"retry-after": "2"}, True, 2.0),
        (409, {}, True, None),
        (400, {"retry-after": "1"}, False, 1.0),
    ],
)
async def test_one_retry_rule_for_every_provider(served, status, headers, retryable, wait):
    name, server, kwargs = served
    server.script(Status(status, headers=headers))
    agent = await Agent.create(provider=name, **{**kwargs, "max_retries": 0})
    with pytest.raises(ProviderError) as info:
        await agent.run("x")
    error = info.value
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, wait)
    await agent.cleanup()


@pytest.mark.parametrize("name", ["anthropic", "openai"])
async def test_extra_body_wins_over_a_named_parameter(name, request):
    server = request.getfixturevalue(f"{name}_server")
    base_url = server.url + "/v1" if name == "openai" else server.url
    server.script(Text("ok"))
    # extra_body first: what is sent on purpose wins whatever the keywords' order.
    agent = await Agent.create(
        provider=name, base_url=base_url, api_key=SECRET, extra_body={"top_p": 0.9}, top_p=0.5
    )
    await agent.run("x")
    body = last_body(server)
    assert (body["top_p"], body["temperature"]) == (0.9, 0.7)
    await agent.cleanup()


async def test_truncated_stream_is_retried_before_any_text(served):
    name, server, kwargs = served
    server.script(Truncate(""), Text("whole answer"))
    agent = await Agent.create(provider=name, **kwargs)
    assert "".join([t async for t in agent.astream("x")]) == "whole answer"
    await agent.cleanup()


async def test_truncated_stream_after_text_is_not_retried(served):
    name, server, kwargs = served
    server.script(Truncate("partial answer"), Text("must not be used"))
    agent = await Agent.create(provider=name, **kwargs)
    seen = []
    with pytest.raises(ProviderError, match="ended early|closed|connection"):
        async for token in agent.astream("x"):
            seen.append(token)
    assert "".join(seen).startswith("partial") and server.pending == 1
    await agent.cleanup()


async def test_cancelling_a_stream_closes_the_connection(served):
    name, server, kwargs = served
    server.script(Hang(STALL, text="thinking"))
    agent = await Agent.create(provider=name, **kwargs)
    streaming = asyncio.Event()

    async def consume():
        async for _ in agent.astream("x"):
            streaming.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(streaming.wait(), PROMPTLY)  # the reply has started, then stalls
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.wait_disconnects, 1, PROMPTLY)
    await agent.cleanup()


async def test_secrets_absent_from_reprs_events_and_logs(served, caplog):
    name, server, kwargs = served
    server.script(Status(401), Text("ok"))
    agent = await Agent.create(provider=name, **kwargs)
    with caplog.at_level(logging.DEBUG), EventBus.capture() as events:
        with pytest.raises(ProviderError) as info:
            await agent.run("x")
        await agent.run("y")
    assert SECRET not in repr(agent) and SECRET not in repr(agent.provider)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert all(SECRET not in repr(e) for e in events) and events
    assert SECRET not in caplog.text
    await agent.cleanup()
