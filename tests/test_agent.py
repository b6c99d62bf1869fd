"""Agent and loop behaviour, through the public API with victor.testing providers."""

from __future__ import annotations

import asyncio

import pytest

from tests.timing import Rendezvous
from victor import Agent, ConfigurationError, LimitExceededError, ProviderError, ToolError
from victor.core.events import EventBus
from victor.core.messages import (
    ResponseComplete,
    RunFinished,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from victor.providers.base import AgentResponse
from victor.testing import FunctionProvider, ScriptedProvider, block_requests, call, override
from victor.tools import BaseTool, ToolResult, registry, tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
async def slow_echo(text: str, delay: float = 0.2) -> str:
    """Echo text after a delay."""
    await asyncio.sleep(delay)
    return text


async def test_run_returns_the_answer():
    agent = await Agent.create(provider=ScriptedProvider(["Hello there"]))
    assert await agent.run("Say hello") == "Hello there"
    assert agent.last_run.iterations == 1


async def test_context_reaches_the_model():
    provider = ScriptedProvider(["Faster now"])
    agent = await Agent.create(provider=provider)
    await agent.run("Optimize this function", context={"code": "def slow_func(): ..."})
    sent = provider.requests[0][-1]
    assert sent.role == "user"
    assert "Optimize this function" in sent.content
    assert 'name="code"' in sent.content and "def slow_func(): ..." in sent.content


async def test_tool_round_trip_feeds_result_back():
    provider = ScriptedProvider([call("add", a=2, b=3), "The sum is 5"])
    agent = await Agent.create(provider=provider, tools=[add])
    assert await agent.run("What is 2 + 3?") == "The sum is 5"
    tool_message = provider.requests[1][-1]
    assert (tool_message.role, tool_message.name, tool_message.content) == ("tool", "add", "5")
    assert provider.tools_offered[0][0].parameters["required"] == ["a", "b"]


async def test_tool_calls_in_one_turn_run_concurrently():
    together = Rendezvous(3)

    @tool
    async def meet(text: str) -> str:
        """Echo text once all three calls are running."""
        await together.meet()
        return text

    provider = ScriptedProvider(
        [[call("meet", text="a"), call("meet", text="b"), call("meet", text="c")], "done"]
    )
    agent = await Agent.create(provider=provider, tools=[meet])
    await agent.run("echo three")
    results = [m.content for m in provider.requests[1] if m.role == "tool"]
    assert results == ["a", "b", "c"]  # all three met, and the results are in call order


async def test_invalid_arguments_become_a_result_the_model_reads():
    provider = ScriptedProvider([call("add", a="two", b=3), call("add", a=2, b=3), "5"])
    agent = await Agent.create(provider=provider, tools=[add])
    with EventBus.capture("tool.*") as events:
        assert await agent.run("add") == "5"
    error = provider.requests[1][-1]
    assert (
        error.is_error
        and "invalid arguments for tool 'add'" in error.content
        and "a:" in error.content
    )
    assert [e.type for e in events] == ["tool.error", "tool.execution"]


async def test_unknown_tool_and_malformed_json_are_reported_to_the_model():
    from victor.core.messages import ToolCall

    bad_json = ToolCall.from_json("c1", "add", '{"a": 1')
    provider = ScriptedProvider([[call("nope"), bad_json], "sorry"])
    agent = await Agent.create(provider=provider, tools=[add])
    assert await agent.run("x") == "sorry"
    unknown, malformed = [m for m in provider.requests[1] if m.role == "tool"]
    assert "no tool named 'nope'" in unknown.content and "add" in unknown.content
    assert "not a valid JSON object" in malformed.content


async def test_a_tool_that_raises_does_not_break_the_run():
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    provider = ScriptedProvider([call("explode"), "handled"])
    agent = await Agent.create(provider=provider, tools=[explode])
    assert await agent.run("go") == "handled"
    assert "RuntimeError: disk on fire" in provider.requests[1][-1].content


async def test_tool_timeout_is_reported():
    provider = ScriptedProvider([call("slow_echo", text="x", delay=5), "gave up"])
    agent = await Agent.create(provider=provider, tools=[slow_echo], tool_timeout=0.05)
    assert await agent.run("go") == "gave up"
    assert "timed out after 0.05 s" in provider.requests[1][-1].content


async def test_iteration_limit_is_a_clear_error():
    provider = FunctionProvider(lambda messages, tools: call("add", a=1, b=1))
    agent = await Agent.create(provider=provider, tools=[add], max_iterations=3)
    with pytest.raises(LimitExceededError, match="max_iterations=3"):
        await agent.run("loop forever")
    assert len(provider.requests) == 3


async def test_astream_yields_text_across_tool_turns():
    provider = ScriptedProvider(
        [
            AgentResponse(content="Let me add.", tool_calls=[call("add", a=1, b=2)]),
            "The answer is 3",
        ]
    )
    agent = await Agent.create(provider=provider, tools=[add])
    tokens = [t async for t in agent.astream("1+2?")]
    assert len(tokens) > 3
    assert "".join(tokens) == "Let me add.The answer is 3"


async def test_events_stream_is_typed_and_ordered():
    provider = ScriptedProvider([call("add", a=1, b=2), "three"])
    agent = await Agent.create(provider=provider, tools=[add])
    kinds = [type(e) async for e in agent.events("1+2?")]
    assert kinds == [
        ResponseComplete,
        ToolCallStarted,
        ToolCallFinished,
        TextDelta,
        ResponseComplete,
        RunFinished,
    ]


async def test_chat_remembers_and_run_does_not():
    provider = ScriptedProvider(["class User: ...", "with auth", "one-shot"])
    agent = await Agent.create(provider=provider, system_prompt="Be brief.")
    await agent.chat("Create a class for User")
    await agent.chat("Add authentication")
    second = provider.requests[1]
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert second[2].content == "class User: ..."
    await agent.run("unrelated")
    assert [m.role for m in provider.requests[2]] == ["system", "user"]
    assert len(agent.history) == 4


async def test_a_failed_chat_turn_leaves_history_intact():
    provider = ScriptedProvider(
        ["first", ProviderError("boom", provider="scripted")], max_retries=0
    )
    agent = await Agent.create(provider=provider)
    await agent.chat("one")
    with pytest.raises(ProviderError):
        await agent.chat("two")
    assert [m.content for m in agent.history] == ["one", "first"]


async def test_retryable_errors_are_retried():
    flaky = ProviderError(
        "overloaded", provider="scripted", status=529, retryable=True, retry_after=0
    )
    provider = ScriptedProvider([flaky, "recovered"], max_retries=2)
    agent = await Agent.create(provider=provider)
    with EventBus.capture("provider.error") as errors:
        assert await agent.run("x") == "recovered"
    assert errors[0].data["retrying"] is True and errors[0].data["status"] == 529


async def test_events_carry_run_agent_and_data():
    provider = ScriptedProvider([call("add", a=1, b=2), "3"])
    agent = await Agent.create(provider=provider, tools=[add], name="calc")
    with EventBus.capture() as events:
        await agent.run("1+2")
    types = [e.type for e in events]
    assert types == [
        "agent.start",
        "provider.request",
        "provider.response",
        "tool.execution",
        "provider.request",
        "provider.response",
        "agent.complete",
    ]
    assert {e.agent for e in events} == {"calc"}
    assert len({e.run_id for e in events}) == 1
    assert events[0].data == {"task": "1+2", "conversation": events[0].run_id}  # one-shot
    assert events[3].data["tool_name"] == "add" and events[3].data["result"] == "3"
    assert events[2].data["provider"] == "scripted" and events[2].data["duration_ms"] >= 0
    assert events[-1].data["result"] == "3"


async def test_agent_error_event_then_raise():
    provider = ScriptedProvider([ProviderError("down", provider="scripted")], max_retries=0)
    agent = await Agent.create(provider=provider)
    with EventBus.capture("agent.error") as errors, pytest.raises(ProviderError):
        await agent.run("x")
    assert errors[0].data["error_type"] == "ProviderError" and "down" in errors[0].data["error"]


async def test_override_swaps_the_provider_in_a_block():
    agent = await Agent.create(provider="anthropic")
    with override(ScriptedProvider(["from the double"])):
        assert await agent.run("hi") == "from the double"


async def test_base_tool_subclass_from_the_registry():
    class Upper(BaseTool):
        name = "upper"
        description = "Uppercase text"
        parameters = {"input": {"type": "string", "description": "Text", "required": True}}

        async def execute(self, **kwargs) -> ToolResult:
            return ToolResult(success=True, output=kwargs["input"].upper())

    registry.register(Upper())
    try:
        provider = ScriptedProvider([call("upper", input="hi"), call("upper"), "ok"])
        agent = await Agent.create(provider=provider, tools=["upper"])
        await agent.run("shout")
        assert provider.requests[1][-1].content == "HI"
        assert "'input' is a required property" in provider.requests[2][-1].content
    finally:
        registry.unregister("upper")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "antropic"}, "Did you mean 'anthropic'"),
        ({"temperature": -0.1}, r"temperature=-0.1 is invalid: use a number, 0.0 or more"),
        ({"provider": "anthropic", "temperature": 1.5}, "anthropic takes 0.0 to 1.0"),
        ({"max_tokens": 0}, "max_tokens=0"),
        ({"max_iterations": 0}, "max_iterations=0"),
    ],
)
async def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        await Agent.create(**kwargs)


async def test_unknown_tool_name_suggests_close_matches():
    registry.register(add)
    try:
        with pytest.raises(ToolError, match="Did you mean 'add'"):
            await Agent.create(provider=ScriptedProvider([]), tools=["ad"])
    finally:
        registry.unregister("add")


async def test_missing_key_is_reported_at_first_request_naming_the_variable():
    agent = await Agent.create(provider="anthropic")  # no error yet
    with block_requests(False), pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        await agent.run("hi")


async def test_default_provider_is_ollama_and_env_overrides(monkeypatch):
    assert (await Agent.create()).provider.name == "ollama"
    monkeypatch.setenv("VICTOR_PROVIDER", "openai")
    monkeypatch.setenv("VICTOR_MODEL", "gpt-4o-mini")
    agent = await Agent.create()
    assert (agent.provider.name, agent.provider.model) == ("openai", "gpt-4o-mini")


async def test_real_requests_are_blocked_in_tests(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    agent = await Agent.create(provider="anthropic")
    with pytest.raises(ProviderError, match="blocked"):
        await agent.run("hi")


async def test_async_context_manager_and_repr_without_secrets():
    async with await Agent.create(provider="openai", api_key="sk-secret-123") as agent:
        assert "sk-secret-123" not in repr(agent) and "sk-secret-123" not in repr(agent.provider)


async def test_empty_task_is_rejected():
    agent = await Agent.create(provider=ScriptedProvider(["x"]))
    with pytest.raises(ConfigurationError, match="empty"):
        await agent.run("   ")


async def test_a_finished_run_is_not_reported_as_cancelled():
    agent = await Agent.create(provider=ScriptedProvider(["one", "two"]))
    with EventBus.capture("agent.*") as events:
        await agent.run("x")
        [t async for t in agent.astream("y")]
        await asyncio.sleep(0.01)  # let any late finalizers run
    lifecycle = [e.type for e in events if e.type != "agent.token"]
    assert lifecycle == ["agent.start", "agent.complete"] * 2
    assert "".join(e.data["text"] for e in events if e.type == "agent.token") == "two"


async def test_abandoning_a_stream_reports_cancellation():
    agent = await Agent.create(provider=ScriptedProvider(["many words in this answer"]))
    with EventBus.capture("agent.error") as errors:
        stream = agent.astream("x")
        assert await stream.__anext__() == "many"
        await stream.aclose()
    assert errors[0].data["error_type"] == "CancelledError"


def test_importing_victor_loads_no_sdk_ipython_or_asyncio():
    import subprocess
    import sys

    code = (
        "import sys; from victor import Agent; "
        "print(sorted(m for m in ('anthropic', 'openai', 'httpx', 'IPython', 'jsonschema', "
        "'asyncio', 'llama_cpp', 'pandas', 'numpy', 'victor.notebook', 'anywidget', "
        "'ipywidgets', 'traitlets', 'acp', 'victor.acp') if m in sys.modules)); "
        # victor.testing neither: its cassette loads the recorder when first used
        "import victor.testing; "
        "print(sorted(m for m in ('victor.cassette', 'vcr', 'yaml', 'httpx', 'httpx2') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]"]


def test_the_notebook_toolset_resolves_without_ipython_or_pandas():
    """tools=["notebook"] works before %load_ext (the registry's tool_provider seam), and
    resolving it loads no IPython, pandas or numpy: the tools look for a kernel when called."""
    import subprocess
    import sys

    code = (
        "import sys; from victor import Agent; "
        "from victor.testing import ScriptedProvider; "
        "a = Agent(provider=ScriptedProvider(['ok']), tools=['notebook']); "
        "print(sorted(t.name for t in a.tools), "
        "sorted(m for m in ('IPython', 'pandas', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['insert_cell', 'inspect_variable', 'last_error', 'list_variables', 'read_cells', "
        "'run_code'] []"
    )
