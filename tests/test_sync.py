"""agent.run_sync, agent.chat_sync and team.run_sync: from plain sync code, inside a running
event loop (no deadlock), and from several threads at once."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers import Text
from victor import Agent, AgentTeam, ProviderError, TeamResult
from victor._sync import background_loop
from victor.testing import FunctionProvider, ScriptedProvider, call


def echo_provider() -> FunctionProvider:
    """Answers with the last user message and the thread the provider ran on."""

    def reply(messages, tools):
        user = [m.content for m in messages if m.role == "user"][-1]
        return f"{user} @ {threading.current_thread().name}"

    return FunctionProvider(reply)


def test_from_plain_sync_code():
    """As in a script: no event loop is running."""
    agent = Agent(provider=echo_provider())
    assert agent.run_sync("hello") == "hello @ victor-loop"
    assert agent.chat_sync("one").startswith("one") and agent.chat_sync("two").startswith("two")
    assert [m.role for m in agent.history] == ["user", "assistant", "user", "assistant"]

    team = AgentTeam.pipeline(["writer", "editor"], provider=echo_provider())
    result = team.run_sync("a haiku")
    assert isinstance(result, TeamResult) and "@ victor-loop" in result.answer
    assert team.last_result is result


def test_options_and_errors_pass_through(tmp_path):
    agent = Agent(
        provider=ScriptedProvider([call("write_file", file_path="a.txt", content="A"), "ok"]),
        tools=["read_file"],
        workspace=tmp_path,
        approval="auto",
    )
    # Per-run tools (run's own argument) reach the run.
    assert agent.run_sync("write", tools=["write_file"]) == "ok"
    assert (tmp_path / "a.txt").read_text() == "A"
    # A failing run raises the same error as `await agent.run` would, in the caller.
    with pytest.raises(ProviderError, match="ran out of replies"):
        agent.run_sync("again")


async def test_inside_a_running_event_loop_without_deadlock():
    """An async web handler or a kernel cell calling the sync form: the run happens on
    victor's loop thread while this loop waits, then this loop carries on."""
    agent = Agent(provider=echo_provider())
    caller = asyncio.get_running_loop()
    assert agent.run_sync("from a coroutine") == "from a coroutine @ victor-loop"
    assert agent.chat_sync("and a chat").endswith("@ victor-loop")
    assert await agent.run("awaited") == f"awaited @ {threading.current_thread().name}"
    assert asyncio.get_running_loop() is caller
    team = AgentTeam.flat([Agent(role="a"), Agent(role="b")], provider=echo_provider())
    assert "from a loop" in team.run_sync("from a loop").answer


async def test_clients_are_per_event_loop(openai_server):
    """The same agent awaited here and run with run_sync talks through two SDK clients,
    one per loop; the private loop's client is reused by the next run_sync."""
    openai_server.script(Text("one"), Text("two"), Text("three"))
    agent = Agent(provider="openai", base_url=openai_server.url + "/v1", api_key="sk-sync-test")
    assert await agent.run("here") == "one"
    assert agent.run_sync("there") == "two"
    clients = dict(agent.provider._clients)
    assert set(clients) == {asyncio.get_running_loop(), background_loop()}
    assert agent.run_sync("again") == "three"
    assert agent.provider._clients[background_loop()] is clients[background_loop()]
    await agent.cleanup()


def test_from_threads_at_once():
    """Several threads, each blocked in run_sync; their runs share the private loop and
    overlap there (the provider waits until two are in flight: serialized runs would hang
    until its timeout)."""
    in_flight = 0
    both_in: asyncio.Event | None = None

    async def reply(messages, tools):
        nonlocal in_flight, both_in
        both_in = both_in or asyncio.Event()
        in_flight += 1
        if in_flight >= 2:
            both_in.set()
        await asyncio.wait_for(both_in.wait(), timeout=10)
        return messages[-1].content.upper()

    agent = Agent(provider=FunctionProvider(reply))
    tasks = [f"task {i}" for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(agent.run_sync, tasks))
    assert answers == [t.upper() for t in tasks]


def test_run_sync_from_tools():
    """A sync tool runs in a worker thread, so it may call run_sync; an async tool runs on
    victor's loop thread itself, where run_sync would wait on itself: a clear error."""
    from victor.tools import tool

    inner = Agent(provider=echo_provider())

    @tool
    def sync_helper() -> str:
        """Ask another agent, synchronously."""
        return inner.run_sync("inner")

    @tool
    async def async_helper() -> str:
        """Ask another agent, wrongly."""
        return inner.run_sync("inner")

    def script(name):
        def reply(messages, tools):
            return call(name) if len(messages) == 1 else messages[-1].content

        return FunctionProvider(reply)

    outer = Agent(provider=script("sync_helper"), tools=[sync_helper])
    assert outer.run_sync("go") == "inner @ victor-loop"
    outer = Agent(provider=script("async_helper"), tools=[async_helper])
    answer = outer.run_sync("go")
    assert "run_sync() was called from victor's own loop thread" in answer
    assert "use `await` there instead" in answer
