"""One run, one trace: victor's spans are current while the work they describe happens, so
the spans the SDKs (Anthropic's own, scope ``com.anthropic.sdk.python``) and the HTTP
client instrumentation (opentelemetry-instrumentation-httpx) make land under victor's
``chat``; GenAI metrics; content only on request, keys never. Checked with the
OpenTelemetry SDK's in-memory span exporter and metric reader, against the loopback
protocol servers."""

from __future__ import annotations

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

from tests.servers import Call, Text, ToolCalls
from victor import Agent, telemetry
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


async def test_an_anthropic_run_is_one_trace_with_the_sdks_spans_under_chat(
    recorded, anthropic_server
):
    anthropic_server.script(ToolCalls([Call("add", {"a": 1, "b": 2}, id="toolu_1")]), Text("3"))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, tools=[add], name="calc")
    assert await agent.run("1 + 2?") == "3"
    one_trace(recorded)
    assert_under_chats(recorded, {ANTHROPIC_SCOPE, HTTPX_SCOPE})
    sdk_spans = [s for s in recorded.spans() if s.instrumentation_scope.name == ANTHROPIC_SCOPE]
    assert len(sdk_spans) == 2
    assert KEY not in recorded.everything()
