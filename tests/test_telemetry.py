"""victor.telemetry: spans from events, checked with the OpenTelemetry SDK's in-memory
exporter: names, kinds, parents, GenAI attributes, content only on request, keys never."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("opentelemetry.sdk", reason="extra otel and opentelemetry-sdk (in `dev`)")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import victor
from tests.servers import Call, Status, Text, ToolCalls
from victor import Agent, AgentTeam, ConfigurationError, ProviderError, telemetry
from victor.core import seams
from victor.core.events import EventBus, EventScope
from victor.testing import FunctionProvider, ScriptedProvider, call
from victor.tools import tool

KEY = "sk-ant-telemetry-secret-0123456789"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class Traces:
    """An SDK tracer provider exporting to memory: ``finished()`` lists the spans."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self):
        return self.exporter.get_finished_spans()


@pytest.fixture
def traces():
    """victor instrumented (content off) with an in-memory exporter."""
    traces = Traces()
    telemetry.instrument(tracer_provider=traces.provider, capture_content=False)
    yield traces
    telemetry.uninstrument()


def by_name(finished, name):
    return [s for s in finished if s.name == name]


def everything_recorded(finished) -> str:
    """Every attribute value, status and event of every span, as one string."""
    parts = []
    for span in finished:
        parts += [span.name, str(span.status.description)]
        parts += [json.dumps(dict(span.attributes), default=str)]
        parts += [json.dumps(dict(e.attributes or {}), default=str) for e in span.events]
    return "\n".join(parts)


async def test_an_agent_run_is_a_tree_of_spans(traces):
    replies = [[call("add", a=2, b=3), call("nope")], "The sum is 5"]
    provider = ScriptedProvider(replies, temperature=0.2)
    agent = Agent(provider=provider, tools=[add], name="calculator")
    assert await agent.run("What is 2 + 3?") == "The sum is 5"

    finished = traces.finished()
    (run,) = by_name(finished, "invoke_agent calculator")
    chats = by_name(finished, "chat test-model")
    tools = {s.name: s for s in finished if s.name.startswith("execute_tool")}
    assert len(chats) == 2 and set(tools) == {"execute_tool add", "execute_tool nope"}
    assert len(finished) == 5
    # agent -> model calls and tools, all in one trace
    assert run.parent is None
    for child in [*chats, *tools.values()]:
        assert child.parent.span_id == run.context.span_id
        assert child.context.trace_id == run.context.trace_id
    assert run.kind == SpanKind.INTERNAL
    assert chats[0].kind == SpanKind.INTERNAL  # an in-process (test) model

    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.name"] == "calculator"
    assert run.attributes["gen_ai.provider.name"] == "scripted"
    assert run.attributes["gen_ai.usage.output_tokens"] == 24  # both responses summed
    first = chats[0].attributes
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.request.model"] == first["gen_ai.response.model"] == "test-model"
    assert first["gen_ai.request.temperature"] == 0.2
    assert first["gen_ai.request.max_tokens"] == 4096
    assert first["gen_ai.response.finish_reasons"] == ("tool_call",)  # the conventions' words
    assert first["gen_ai.usage.output_tokens"] == 20
    assert chats[1].attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert chats[0].start_time <= tools["execute_tool add"].start_time
    assert tools["execute_tool add"].end_time <= chats[1].start_time

    good, bad = tools["execute_tool add"], tools["execute_tool nope"]
    assert good.attributes["gen_ai.tool.name"] == "add"
    assert good.attributes["gen_ai.tool.call.id"] == provider.replies[0][0].id
    assert good.status.status_code == StatusCode.UNSET and "error.type" not in good.attributes
    assert bad.status.status_code == StatusCode.ERROR
    assert bad.attributes["error.type"] == "ToolError"

    # No content by default: not the task, the arguments, the results or the answer.
    recorded = everything_recorded(finished)
    for text in ("What is 2 + 3", "The sum is 5", '"a": 2', "no tool named"):
        assert text not in recorded


async def test_content_only_when_the_variable_asks(monkeypatch):
    monkeypatch.setenv(telemetry.CAPTURE_CONTENT_ENV, "true")
    traces = Traces()
    telemetry.instrument(tracer_provider=traces.provider)
    try:
        agent = Agent(provider=ScriptedProvider([call("add", a=2, b=3), "5"]), tools=[add])
        await agent.run("What is 2 + 3?")
    finally:
        telemetry.uninstrument()
    finished = traces.finished()
    (run,) = [s for s in finished if s.name.startswith("invoke_agent")]
    (used,) = by_name(finished, "execute_tool add")
    assert json.loads(run.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is 2 + 3?"}]}
    ]
    assert json.loads(run.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == "5"
    assert json.loads(used.attributes["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 3}
    assert used.attributes["gen_ai.tool.call.result"] == "5"


async def test_a_remote_model_call_is_a_client_span_and_keys_never_appear(
    traces, anthropic_server, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    # Content on: the strictest case for leaks.
    telemetry.instrument(tracer_provider=traces.provider, capture_content=True)
    anthropic_server.script(
        ToolCalls([Call("add", {"a": 1, "b": 1}, id="toolu_1")]),
        Text("Two, and the key is " + KEY, chunks=4),  # a model that echoes the key
        Status(401),
    )
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, tools=[add], name="remote")
    chunks = [c async for c in agent.astream("one plus one")]
    assert "".join(chunks).startswith("Two")
    with pytest.raises(ProviderError, match="authentication failed"):
        await agent.run("again")  # 401: the key is wrong

    finished = traces.finished()
    chats = [s for s in finished if s.name.startswith("chat ")]
    assert [s.kind for s in chats] == [SpanKind.CLIENT] * 3
    streamed = chats[1].attributes
    assert streamed["gen_ai.provider.name"] == streamed["gen_ai.system"] == "anthropic"
    assert 0 < streamed["gen_ai.response.time_to_first_chunk"] < 60
    assert streamed["gen_ai.usage.input_tokens"] == 10
    failed = chats[2]
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["error.type"] == "401"
    (errored_run,) = [
        s
        for s in finished
        if s.name == "invoke_agent remote" and s.status.status_code == StatusCode.ERROR
    ]
    assert errored_run.attributes["error.type"] == "ProviderError"
    recorded = everything_recorded(finished)
    assert "Two, and the key is ***" in recorded  # content was captured, the key scrubbed
    assert KEY not in recorded


async def test_the_span_kind_and_provider_name_are_the_providers_own_facts(traces):
    """Telemetry keeps no list of provider names: a provider of your own that runs in this
    process is INTERNAL by its ``in_process``, and reports its ``system`` (else its name)."""

    class Mine(ScriptedProvider):
        name = "mine"

    class Branded(ScriptedProvider):
        name = "branded"
        system = "acme"

    class Remote(ScriptedProvider):
        name = "remote"
        in_process = False

    for provider in (Mine(["a"]), Branded(["b"]), Remote(["c"])):
        await Agent(provider=provider, name=provider.name).run("hi")
    finished = traces.finished()
    chats = {s.parent.span_id: s for s in finished if s.name.startswith("chat ")}
    runs = {s.attributes["gen_ai.agent.name"]: s for s in finished if s.name.startswith("invoke_")}
    seen = {
        agent: (chats[run.context.span_id].kind, chats[run.context.span_id].attributes)
        for agent, run in runs.items()
    }
    assert {agent: kind for agent, (kind, _) in seen.items()} == {
        "mine": SpanKind.INTERNAL,
        "branded": SpanKind.INTERNAL,
        "remote": SpanKind.CLIENT,
    }
    assert {agent: a["gen_ai.provider.name"] for agent, (_, a) in seen.items()} == {
        "mine": "mine",
        "branded": "acme",
        "remote": "remote",
    }
    assert runs["branded"].attributes["gen_ai.provider.name"] == "acme"


async def test_a_team_is_a_workflow_span_over_its_members(traces):
    writer = Agent(role="writer", provider=FunctionProvider(lambda m, t: "draft"))
    editor = Agent(role="editor", provider=FunctionProvider(lambda m, t: "final"))
    await AgentTeam.pipeline([writer, editor], name="desk").run("a story")
    finished = traces.finished()
    (team,) = by_name(finished, "invoke_workflow desk")
    members = [s for s in finished if s.name.startswith("invoke_agent")]
    assert {s.name for s in members} == {"invoke_agent writer", "invoke_agent editor"}
    assert all(s.parent.span_id == team.context.span_id for s in members)
    assert team.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert team.attributes["gen_ai.workflow.name"] == "desk"
    assert team.attributes["victor.team.formation"] == "pipeline"
    assert team.attributes["victor.team.members"] == ("writer", "editor")


async def test_a_batch_item_is_a_trace_of_its_own_linked_to_the_batch(traces):
    agent = Agent(provider=FunctionProvider(lambda m, t: "ok"), name="worker")
    tracer = trace.get_tracer("test", tracer_provider=traces.provider)
    with tracer.start_as_current_span("notebook cell") as cell:
        await victor.batch(["a", "b", "c"], agent, name="labels", progress=False)
    finished = traces.finished()
    (job,) = by_name(finished, "batch labels")
    runs = by_name(finished, "invoke_agent worker")
    assert job.parent.span_id == cell.get_span_context().span_id  # under the user's span
    assert job.context.trace_id == cell.get_span_context().trace_id
    assert len(runs) == 3 and all(r.parent is None for r in runs)
    assert len({r.context.trace_id for r in runs} | {job.context.trace_id}) == 4
    assert all([link.context for link in r.links] == [job.context] for r in runs)
    for run in runs:  # each item's model call is in its item's trace
        (chat,) = [s for s in finished if s.parent and s.parent.span_id == run.context.span_id]
        assert chat.context.trace_id == run.context.trace_id
    assert job.attributes["victor.batch.items"] == 3 and job.attributes["victor.batch.done"] == 3


async def test_uninstrument_removes_the_subscriber(traces):
    assert EventBus.default().has_listeners("agent.start")
    assert not EventBus.default().has_listeners("agent.token")  # the token path stays free
    scope = EventScope(EventBus.default(), run_id="run_1")
    assert seams.traced("chat", scope) is not seams.traced("chat", scope)  # a block per call
    telemetry.uninstrument()
    assert not EventBus.default().has_listeners("agent.start")
    # The tracing seam is empty again: the steps enter one shared no-op block.
    assert seams.traced("chat", scope) is seams.traced("run", scope)
    stream = object()
    assert seams.traced_stream(stream, scope, []) is stream
    await Agent(provider=FunctionProvider(lambda m, t: "ok")).run("hi")
    assert traces.finished() == ()


def test_a_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError, match=r'pip install "victor-ai\[otel\]"'):
        telemetry.instrument()


def test_victor_otel_instruments_at_import():
    code = (
        "import victor; from victor.core.events import EventBus; "
        "print(EventBus.default().has_listeners('provider.request'))"
    )

    def run(env):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        return out.stdout.strip()

    assert run({**os.environ, "VICTOR_OTEL": "1"}) == "True"
    assert run({k: v for k, v in os.environ.items() if k != "VICTOR_OTEL"}) == "False"
