"""Task: status transitions, hooks (sync and async), failure, cancellation and reuse."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.timing import PROMPTLY, STALL
from victor import hooks as hooks_module
from victor.core.agent import Agent
from victor.core.hooks import HOOK_NAMES, call_hook, logging_hooks, validate_hooks
from victor.core.task import Task, TaskStatus
from victor.errors import ConfigurationError, VictorError
from victor.testing import FunctionProvider
from victor.tools import registry, tool


def FakeAgent(reply: str = "done", error: Exception | None = None, delay: float = 0.0) -> Agent:
    """A real Agent on a FunctionProvider that answers ``"<reply>: <task>"`` (or fails)."""

    async def answer(messages, tools):
        if delay:
            await asyncio.sleep(delay)
        return error if error is not None else f"{reply}: {messages[-1].content.split(chr(10))[0]}"

    agent = Agent(provider=FunctionProvider(answer, max_retries=0))
    agent.calls = agent.provider.requests  # what the model was sent, one list per request
    return agent


@tool
def lookup(key: str) -> str:
    """Look a key up (a tool the Task tests enable by name)."""
    return ""


@pytest.fixture(autouse=True)
def _lookup_registered():
    registry.register(lookup)
    yield
    registry.unregister("lookup")


async def test_lifecycle_seen_from_async_hooks():
    seen: list[tuple] = []

    async def on_start(task):
        seen.append(("start", task.status, task.result, task.started_at is not None))

    async def on_complete(task, result):
        seen.append(("complete", task.status, task.result, result, task.duration is not None))

    agent = FakeAgent()
    task = Task(
        name="code_review",
        description="Review the authentication module",
        agent=agent,
        hooks={"on_start": on_start, "on_complete": on_complete},
        context={"repo": "victor"},
        tools=["lookup"],
    )
    assert task.status is TaskStatus.PENDING and str(task.status) == "pending"
    assert task.duration is None

    result = await task.execute()

    assert result == "done: Review the authentication module"
    assert task.result == result
    assert task.status is TaskStatus.COMPLETED and f"{task.status}" == "completed"
    assert seen == [
        ("start", TaskStatus.RUNNING, None, True),
        ("complete", TaskStatus.COMPLETED, result, result, True),
    ]
    [sent] = agent.calls
    assert 'Review the authentication module\n\n<context name="repo">\nvictor' in sent[-1].content
    assert [t.name for t in agent.provider.tools_offered[0]] == ["lookup"]
    assert task.finished_at >= task.started_at and task.duration >= 0
    assert repr(task) == "Task(name='code_review', status='completed')"


async def test_sync_hooks_are_called_too():
    seen = []
    task = Task(
        "t",
        "say hi",
        FakeAgent(),
        hooks={
            "on_start": lambda t: seen.append(str(t.status)),
            "on_complete": lambda t, r: seen.append((str(t.status), r)),
        },
    )
    await task.execute()
    assert seen == ["running", ("completed", "done: say hi")]


async def test_failure_keeps_error_calls_on_error_and_reraises():
    boom = RuntimeError("provider exploded")
    seen = []

    async def on_error(task, error):
        seen.append((task.status, error, task.error))

    task = Task(
        "t",
        "fail",
        FakeAgent(error=boom),
        hooks={"on_error": on_error, "on_complete": lambda t, r: seen.append("complete?!")},
    )
    with pytest.raises(RuntimeError, match="provider exploded") as info:
        await task.execute()

    assert info.value is boom
    assert task.status is TaskStatus.FAILED
    assert task.error is boom and task.result is None
    assert seen == [(TaskStatus.FAILED, boom, boom)]
    assert task.finished_at is not None


async def test_failing_hook_is_logged_and_does_not_change_outcome(caplog):
    def on_start(task):
        raise ValueError("bad hook")

    async def on_complete(task, result):
        raise KeyError("worse hook")

    task = Task("t", "x", FakeAgent(), hooks={"on_start": on_start, "on_complete": on_complete})
    with caplog.at_level(logging.ERROR, logger="victor.task"):
        result = await task.execute()

    assert result == "done: x" and task.status is TaskStatus.COMPLETED
    messages = [r.getMessage() for r in caplog.records if r.name == "victor.task"]
    assert any("on_start" in m for m in messages)
    assert any("on_complete" in m for m in messages)


async def test_failing_on_error_hook_still_reraises_original_error():
    def on_error(task, error):
        raise ValueError("hook bug")

    task = Task("t", "x", FakeAgent(error=LookupError("real")), hooks={"on_error": on_error})
    with pytest.raises(LookupError, match="real"):
        await task.execute()
    assert task.status is TaskStatus.FAILED


async def test_cancellation_marks_cancelled_without_on_error():
    seen = []
    started = asyncio.Event()
    task = Task(
        "slow",
        "wait",
        FakeAgent(delay=STALL),
        hooks={"on_start": lambda t: started.set(), "on_error": lambda t, e: seen.append(e)},
    )
    runner = asyncio.create_task(task.execute())
    await asyncio.wait_for(started.wait(), PROMPTLY)
    assert task.status is TaskStatus.RUNNING
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner

    assert task.status is TaskStatus.CANCELLED
    assert seen == [] and task.error is None and task.result is None


async def test_execute_twice_is_refused_until_reset():
    agent = FakeAgent()
    task = Task("t", "x", agent)
    await task.execute()

    with pytest.raises(VictorError, match=r"new Task.*reset\(\)"):
        await task.execute()
    assert len(agent.calls) == 1

    task.reset()
    assert task.status is TaskStatus.PENDING
    assert task.result is None and task.started_at is None and task.duration is None
    assert await task.execute() == "done: x"
    assert len(agent.calls) == 2


async def test_concurrent_second_execute_is_refused():
    task = Task("t", "x", FakeAgent(delay=0.01))
    first = asyncio.create_task(task.execute())
    await asyncio.sleep(0)
    with pytest.raises(VictorError, match="already running"):
        await task.execute()
    with pytest.raises(VictorError, match="running"):
        task.reset()
    assert await first == "done: x"


def test_unknown_hook_name_suggests_the_close_one():
    with pytest.raises(ConfigurationError, match=r"'on_complet'.*Did you mean 'on_complete'"):
        Task("t", "x", FakeAgent(), hooks={"on_complet": lambda t, r: None})


def test_non_callable_hook_is_rejected():
    with pytest.raises(ConfigurationError, match="'on_start' must be a function"):
        Task("t", "x", FakeAgent(), hooks={"on_start": "print"})


def test_validate_hooks_drops_none_and_rejects_non_mapping():
    def f(task):
        return None

    assert validate_hooks({"on_start": f, "on_error": None}) == {"on_start": f}
    assert validate_hooks(None) == {}
    with pytest.raises(ConfigurationError, match="must be a dict"):
        validate_hooks([f])


async def test_call_hook_sync_async_and_missing():
    async def async_hook(task):
        return ("async", task)

    assert await call_hook({"on_start": lambda t: ("sync", t)}, "on_start", 1) == ("sync", 1)
    assert await call_hook({"on_start": async_hook}, "on_start", 2) == ("async", 2)
    assert await call_hook({}, "on_error", 3, 4) is None
    assert await call_hook(None, "on_complete", 3, 4) is None
    with pytest.raises(ConfigurationError):
        await call_hook({}, "on_finish")


async def test_logging_hooks_log_each_transition(caplog):
    log = logging.getLogger("test.task.hooks")
    ok = Task("good", "x", FakeAgent(), hooks=logging_hooks(log))
    bad = Task("bad", "x", FakeAgent(error=RuntimeError("nope")), hooks=logging_hooks(log))
    with caplog.at_level(logging.INFO, logger="test.task.hooks"):
        await ok.execute()
        with pytest.raises(RuntimeError):
            await bad.execute()

    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.task.hooks"]
    assert (logging.INFO, "Task good started") in records
    assert any(level == logging.INFO and "good completed" in m for level, m in records)
    assert (logging.ERROR, "Task bad failed: RuntimeError: nope") in records


def test_hooks_module_public_names():
    assert HOOK_NAMES == ("on_start", "on_complete", "on_error")
    assert set(hooks_module.Hooks.__annotations__) == set(HOOK_NAMES)
    assert set(logging_hooks()) == set(HOOK_NAMES)
