"""One run, one trace: victor's spans are current while the work they describe happens, so
the spans the SDKs (Anthropic's own, scope ``com.anthropic.sdk.python``) and the HTTP
client instrumentation (opentelemetry-instrumentation-httpx) make land under victor's
``chat``; GenAI metrics; content only on request, keys never. Checked with the
OpenTelemetry SDK's in-memory span exporter and metric reader, against the loopback
protocol servers."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("opentelemetry.sdk", reason="extra otel and opentelemetry-sdk (in `dev`)")
pytest.importorskip("opentelemetry.instrumentation.httpx", reason="in `dev`")

from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.servers import Call, Hang, Status, Text, ToolCalls
from victor import Agent, AgentTeam, ProviderError, telemetry
from victor.testing import ScriptedProvider, call
from victor.tools import tool

KEY = "sk-ant-trace-secret-0123456789abcdef"
OPENAI_KEY = "sk-proj-trace-secret-0123456789abcdef"
ANTHROPIC_SCOPE = "com.anthropic.sdk.python"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@pytest.fixture(scope="module")
def sdk():
    """The global tracer provider (the SDKs trace with it) exporting to memory, and the
    httpx and httpx2 clients instrumented with it for the module's tests."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process, by whoever is first
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentors = [HTTPXClientInstrumentor(), HTTPX2ClientInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    yield provider, exporter
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    exporter.shutdown()


class Recorded:
    """What one test recorded: finished spans and metrics."""

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter, self.reader = exporter, reader

    def spans(self):
        return self.exporter.get_finished_spans()

    def named(self, prefix: str):
        return [s for s in self.spans() if s.name.startswith(prefix)]

    def metrics(self) -> dict[str, list]:
        """Data points by metric name."""
        data = self.reader.get_metrics_data()
        found: dict[str, list] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def everything(self) -> str:
        """Every name, attribute, status and event of every span, and every metric
        attribute, as one string."""
        parts = []
        for span in self.spans():
            parts += [span.name, str(span.status.description)]
            parts += [json.dumps(dict(span.attributes), default=str)]
            parts += [json.dumps(dict(e.attributes or {}), default=str) for e in span.events]
        for points in self.metrics().values():
            parts += [json.dumps(dict(p.attributes), default=str) for p in points]
        return "\n".join(parts)


def start(sdk, capture_content: bool = False) -> Recorded:
    provider, exporter = sdk
    exporter.clear()
    reader = InMemoryMetricReader()
    kwargs = {"meter_provider": MeterProvider(metric_readers=[reader])}
    telemetry.instrument(tracer_provider=provider, capture_content=capture_content, **kwargs)
    return Recorded(exporter, reader)


@pytest.fixture
def recorded(sdk, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    yield start(sdk)
    telemetry.uninstrument()


def one_trace(recorded: Recorded) -> None:
    spans = recorded.spans()
    assert spans
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 1, sorted((s.name, s.parent is None) for s in spans)


def children_of(parent, spans):
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def assert_under_chats(recorded: Recorded, kinds: set[str]) -> None:
    """Each ``chat`` span has the SDK's/HTTP client's spans of its call as descendants."""
    spans = recorded.spans()
    chats = recorded.named("chat ")
    assert chats
    for chat in chats:
        below = children_of(chat, spans)
        assert below, f"nothing under {chat.name}"
        seen = {s.instrumentation_scope.name for s in below}
        for child in below:
            seen |= {s.instrumentation_scope.name for s in children_of(child, spans)}
        assert kinds <= seen, seen


HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"


def one_run(recorded: Recorded, agent: str):
    """The run's span; every span of the test in its trace."""
    one_trace(recorded)
    (run,) = recorded.named(f"invoke_agent {agent}")
    return run


def sdk_spans(recorded: Recorded, scope: str):
    return [s for s in recorded.spans() if s.instrumentation_scope.name == scope]


async def test_an_anthropic_run_is_one_trace_with_the_sdks_spans_under_chat(
    recorded, anthropic_server
):
    anthropic_server.script(ToolCalls([Call("add", {"a": 1, "b": 2}, id="toolu_1")]), Text("3"))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, tools=[add], name="calc")
    assert await agent.run("1 + 2?") == "3"
    run = one_run(recorded, "calc")
    chats = recorded.named("chat ")
    assert len(chats) == 2 and all(c.parent.span_id == run.context.span_id for c in chats)
    assert_under_chats(recorded, {ANTHROPIC_SCOPE, HTTPX_SCOPE})
    calls = sdk_spans(recorded, ANTHROPIC_SCOPE)
    assert [c.name for c in calls] == ["anthropic.messages.create"] * 2
    assert {c.parent.span_id for c in calls} == {c.context.span_id for c in chats}
    # The conventions' words and the conversation the calls belong to (a one-shot run's own).
    assert [c.attributes["gen_ai.response.finish_reasons"] for c in chats] == [
        ("tool_call",),
        ("stop",),
    ]
    assert {c.attributes["gen_ai.conversation.id"] for c in chats} == {
        run.attributes["gen_ai.conversation.id"]
    }
    (tool,) = recorded.named("execute_tool add")
    assert tool.parent.span_id == run.context.span_id
    assert KEY not in recorded.everything()


async def test_an_openai_run_is_one_trace_with_the_http_spans_under_chat(recorded, openai_server):
    openai_server.script(ToolCalls([Call("add", {"a": 2, "b": 2}, id="call_1")]), Text("4"))
    agent = Agent(provider="openai", base_url=openai_server.url + "/v1", tools=[add], name="oa")
    assert await agent.run("2 + 2?") == "4"
    one_run(recorded, "oa")
    assert len(recorded.named("chat ")) == 2
    assert_under_chats(recorded, {HTTPX_SCOPE})
    assert OPENAI_KEY not in recorded.everything()


async def test_an_ollama_run_is_one_trace_with_the_http_spans_under_chat(recorded, ollama_server):
    ollama_server.script(Text("hello there"))
    agent = Agent(provider="ollama", base_url=ollama_server.url, name="llama")
    assert await agent.run("hi") == "hello there"
    one_run(recorded, "llama")
    assert_under_chats(recorded, {HTTPX_SCOPE})


async def test_a_team_run_is_one_trace(recorded, anthropic_server):
    anthropic_server.script(Text("a draft"), Text("the final text"))

    def member(role: str) -> Agent:
        return Agent(provider="anthropic", base_url=anthropic_server.url, role=role, name=role)

    result = await AgentTeam.pipeline([member("writer"), member("editor")], name="desk").run("go")
    assert result.answer == "the final text"
    one_trace(recorded)
    (team,) = recorded.named("invoke_workflow desk")
    members = recorded.named("invoke_agent ")
    assert len(members) == 2 and all(m.parent.span_id == team.context.span_id for m in members)
    assert_under_chats(recorded, {ANTHROPIC_SCOPE, HTTPX_SCOPE})


async def test_a_streamed_run_is_one_trace_and_times_its_first_chunk(recorded, anthropic_server):
    anthropic_server.script(Text("one two three four", chunks=4))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, name="streamer")
    assert "".join([c async for c in agent.astream("count")]) == "one two three four"
    one_run(recorded, "streamer")
    assert_under_chats(recorded, {ANTHROPIC_SCOPE, HTTPX_SCOPE})
    (first,) = recorded.metrics()["gen_ai.client.operation.time_to_first_chunk"]
    assert first.count == 1 and 0 < first.sum < 60
    assert first.attributes["gen_ai.provider.name"] == "anthropic"


async def test_a_run_cancelled_midway_is_one_trace_with_every_span_ended(
    recorded, anthropic_server
):
    anthropic_server.script(Hang(seconds=30, text="thinking hard"))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, name="stopped")
    streaming = asyncio.Event()

    async def consume():
        async for _ in agent.astream("think"):
            streaming.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(streaming.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await agent.cleanup()
    run = one_run(recorded, "stopped")
    (chat,) = recorded.named("chat ")
    for span in (run, chat):
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"] == "CancelledError"
    (call,) = sdk_spans(recorded, ANTHROPIC_SCOPE)  # ended, so exported, under chat
    assert call.parent.span_id == chat.context.span_id
    (duration,) = recorded.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "CancelledError"


async def test_metrics_of_model_calls(recorded, anthropic_server):
    anthropic_server.script(Text("ok", input_tokens=12, output_tokens=3), Status(400))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, model="claude-x")
    await agent.run("hi")
    with pytest.raises(ProviderError):
        await agent.run("again")
    metrics = recorded.metrics()
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert {kind: p.sum for kind, p in tokens.items()} == {"input": 12, "output": 3}
    assert dict(tokens["input"].attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x",
        "gen_ai.response.model": "claude-x",
        "gen_ai.token.type": "input",
    }
    assert tokens["input"].explicit_bounds[:3] == (1, 4, 16)  # the conventions' buckets
    ok, failed = sorted(
        metrics["gen_ai.client.operation.duration"], key=lambda p: len(p.attributes)
    )
    assert ok.count == failed.count == 1 and ok.sum > 0
    assert "error.type" not in ok.attributes and failed.attributes["error.type"] == "400"
    assert ok.explicit_bounds[:2] == (0.01, 0.02)
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics  # no stream


async def test_content_only_on_request_and_never_a_key(sdk, anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    echo = "the key is " + KEY  # a model that echoes the key back

    def run_once() -> Agent:
        anthropic_server.script(
            ToolCalls([Call("add", {"a": 40, "b": 2}, id="toolu_9")]), Text("42, " + echo)
        )
        return Agent(
            provider="anthropic",
            base_url=anthropic_server.url,
            tools=[add],
            system_prompt="Be exact.",
            name="careful",
        )

    plain = start(sdk)  # content off by default
    try:
        await run_once().run("What is 40 + 2?")
    finally:
        telemetry.uninstrument()
    recorded_plain = plain.everything()
    for text in ("What is 40 + 2", "42,", "Be exact", '"a": 40', "the key is"):
        assert text not in recorded_plain
    for span in plain.spans():
        assert not any(key.endswith(".messages") for key in span.attributes)
        assert "gen_ai.tool.call.arguments" not in span.attributes

    monkeypatch.setenv(telemetry.CAPTURE_CONTENT_ENV, "true")  # the conventions' variable
    provider, exporter = sdk
    exporter.clear()
    telemetry.instrument(tracer_provider=provider)
    try:
        await run_once().run("What is 40 + 2?")
    finally:
        telemetry.uninstrument()
    spans = exporter.get_finished_spans()
    first, second = [s for s in spans if s.name.startswith("chat ")]
    (system,) = json.loads(first.attributes["gen_ai.system_instructions"])
    assert system["type"] == "text" and system["content"].endswith("Be exact.")
    assert json.loads(first.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is 40 + 2?"}]}
    ]
    (answer,) = json.loads(first.attributes["gen_ai.output.messages"])
    assert answer["finish_reason"] == "tool_call"
    assert answer["parts"][-1] == {
        "type": "tool_call",
        "id": "toolu_9",
        "name": "add",
        "arguments": {"a": 40, "b": 2},
    }
    sent = json.loads(second.attributes["gen_ai.input.messages"])
    assert sent[-1]["parts"] == [{"type": "tool_call_response", "id": "toolu_9", "response": "42"}]
    (answer,) = json.loads(second.attributes["gen_ai.output.messages"])
    assert answer["parts"] == [{"type": "text", "content": "42, the key is ***"}]  # scrubbed
    (used,) = [s for s in spans if s.name == "execute_tool add"]
    assert json.loads(used.attributes["gen_ai.tool.call.arguments"]) == {"a": 40, "b": 2}
    assert used.attributes["gen_ai.tool.call.result"] == "42"
    everything = "\n".join(json.dumps(dict(s.attributes), default=str) for s in spans)
    assert KEY not in everything and "the key is ***" in everything


async def test_a_tools_own_spans_are_children_of_its_execute_tool_span(recorded):
    tracer = trace.get_tracer("my.tool")

    @tool
    def look_up(word: str) -> str:
        """Look a word up."""
        with tracer.start_as_current_span("dictionary lookup"):
            return word.upper()

    agent = Agent(provider=ScriptedProvider([call("look_up", word="hi"), "HI"]), tools=[look_up])
    assert await agent.run("look up hi") == "HI"
    one_trace(recorded)
    (used,) = recorded.named("execute_tool look_up")
    (lookup,) = recorded.named("dictionary lookup")
    assert lookup.parent.span_id == used.context.span_id


async def test_a_run_that_fails_before_its_loop_begins_ends_its_span(recorded):
    from pydantic import BaseModel

    from victor import ConfigurationError

    class Sum(BaseModel):
        value: int

    @tool(name="Sum")  # named like the output type: the run cannot start
    def clashing(a: int) -> int:
        """Clash."""
        return a

    agent = Agent(provider=ScriptedProvider(['{"value": 1}']), tools=[clashing], name="clash")
    with pytest.raises(ConfigurationError, match="also the name of a tool"):
        await agent.run("x", output_type=Sum)
    (run,) = recorded.named("invoke_agent clash")
    assert run.status.status_code == StatusCode.ERROR
    assert run.attributes["error.type"] == "ConfigurationError"
    await Agent(provider=ScriptedProvider(["ok"]), name="next").run("y")
    (after,) = recorded.named("invoke_agent next")
    assert after.parent is None  # the failed run's span did not stay current


async def test_a_chat_is_one_conversation_until_reset(recorded):
    agent = Agent(provider=ScriptedProvider(["hi", "fine", "new"]), name="pal")
    await agent.chat("hello")
    await agent.chat("how are you?")
    first = agent.conversation_id
    agent.reset()
    await agent.chat("again")
    chats = sorted(recorded.named("chat "), key=lambda s: s.start_time)
    ids = [c.attributes["gen_ai.conversation.id"] for c in chats]
    assert ids[:2] == [first, first] and ids[2] == agent.conversation_id != first


async def test_an_agent_a_tool_runs_is_under_that_tool_call(recorded):
    helper = Agent(provider=ScriptedProvider(["Paris"]), name="helper")

    @tool
    async def ask_helper(question: str) -> str:
        """Ask the helper."""
        return await helper.run(question)

    boss = Agent(
        provider=ScriptedProvider([call("ask_helper", question="capital?"), "Paris it is"]),
        tools=[ask_helper],
        name="boss",
    )
    assert await boss.run("capital of France?") == "Paris it is"
    one_trace(recorded)
    (used,) = recorded.named("execute_tool ask_helper")
    (inner,) = recorded.named("invoke_agent helper")
    assert inner.parent.span_id == used.context.span_id
