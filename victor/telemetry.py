"""OpenTelemetry traces of victor runs: one EventBus subscriber turns the events victor
already emits into spans that follow the GenAI semantic conventions (extra ``otel``).

    import victor.telemetry
    victor.telemetry.instrument()        # or VICTOR_OTEL=1 before `import victor`

You bring the SDK and an exporter (Jaeger, Tempo, Honeycomb, Logfire...); without one the
spans cost next to nothing and go nowhere. One run is one trace: while a model call, a
tool call or a run happens its span is current (through ``victor.core.seams``' tracing
slot), so the spans the SDKs make of their requests (Anthropic's own, an HTTP client's
instrumentation) are children of victor's ``chat``. Spans:

- ``invoke_workflow {team}``: a team run; ``invoke_agent {agent}``: an agent run;
- ``chat {model}``: each model call (kind CLIENT; INTERNAL for in-process models), with
  provider, request parameters, finish reasons, token usage, time to first chunk;
- ``execute_tool {tool}``: each tool call, ``error.type`` when it failed;
- ``batch {name}``: a ``victor.batch`` run; each item's agent run is a trace of its own,
  linked to it.

Parents come from the events' ``parent`` ids, so a team's members sit under the team, also
when they ran in Ray actors (their events reach the driver, and ``trace_carrier``/``attached``
carry the trace into the actors for anything there that traces itself). Metrics (the
conventions' ``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration`` and, for
streams, ``gen_ai.client.operation.time_to_first_chunk``) go to the meter provider. Message
content (prompts, answers, tool arguments and results) is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is true (or ``capture_content=True``);
API keys never: events do not carry them, and every attribute is scrubbed besides, by the
scrubber logs, errors and HTTP problems use (``victor._secrets``).

Instrumentation observes, it does not patch: ``uninstrument()`` removes the subscriber and
victor runs exactly as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import __version__
from ._genai import Metrics, finish_reason, text_message, to_json
from ._secrets import scrub, secret_values
from ._tracing import CurrentSpans, attached
from ._util import needs_extra
from .core import seams
from .core.events import Event, EventBus

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["instrument", "uninstrument", "Instrumentation", "trace_carrier", "attached"]

#: The variable the GenAI conventions define for opting in to message content.
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_active: Instrumentation | None = None


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    capture_content: bool | None = None,
    bus: EventBus | None = None,
    meter_provider: MeterProvider | None = None,
) -> Instrumentation:
    """Start turning events into spans and metrics (again, with these settings, if on).

    ``tracer_provider``, ``meter_provider``: where spans and metrics go (default: the
    global ones the SDK set up).
    ``capture_content``: record message content (default: the
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` variable). ``bus``: the bus to
    observe (default: the default bus, which every run's events reach).
    """
    global _active
    with needs_extra(
        "otel",
        "OpenTelemetry tracing",
        what="the OpenTelemetry API",
        hint="(plus the opentelemetry-sdk and an exporter of your choice)",
    ):
        from opentelemetry import metrics, trace
    uninstrument()
    tracer = trace.get_tracer("victor", __version__, tracer_provider=tracer_provider)
    meter = metrics.get_meter("victor", __version__, meter_provider=meter_provider)
    if capture_content is None:
        capture_content = _env_flag(os.environ.get(CAPTURE_CONTENT_ENV, ""))
    _active = Instrumentation(
        tracer, bus or EventBus.default(), capture_content=capture_content, metrics=Metrics(meter)
    )
    return _active


def uninstrument() -> None:
    """Stop making spans; spans of runs still in progress are dropped, not ended."""
    global _active
    if _active is not None:
        _active.close()
        _active = None


def instrument_from_env() -> None:
    """``VICTOR_OTEL=1``: instrument at ``import victor``."""
    if _env_flag(os.environ.get("VICTOR_OTEL", "")):
        instrument()


class Instrumentation(CurrentSpans):
    """The subscriber: keeps the open span of each run (by run id), of each model call and
    tool call; and, plugged into the core's tracing seam, makes them current meanwhile."""

    def __init__(
        self,
        tracer: Tracer,
        bus: EventBus,
        *,
        capture_content: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        from opentelemetry import context, trace

        self._trace = trace
        self._context = context
        self.tracer = tracer
        self.bus = bus
        self.capture_content = capture_content
        self.metrics = metrics
        #: Agent, team and batch spans by run id, until their run ends.
        self.spans: dict[str, Span] = {}
        #: The model call in progress of each agent run, and its start and metric attributes.
        self._chats: dict[str, Span] = {}
        self._calls: dict[str, tuple[float, dict[str, Any]]] = {}
        #: Tool calls in progress, by run id and call id.
        self._tools: dict[tuple[str, str], Span] = {}
        #: Batch runs (their items' runs are traces of their own) and runs' conversations.
        self._batches: set[str] = set()
        self._conversations: dict[str, str] = {}
        #: Runs whose span has its provider and model set.
        self._described: set[str] = set()
        self._secrets = secret_values()
        self._handlers = {
            "agent.start": self._agent_start,
            "agent.complete": self._run_complete,
            "agent.error": self._run_error,
            "team.start": self._team_start,
            "team.complete": self._run_complete,
            "team.error": self._run_error,
            "batch.start": self._batch_start,
            "batch.complete": self._batch_complete,
            "batch.error": self._run_error,
            "provider.request": self._chat_start,
            "provider.response": self._chat_end,
            "provider.error": self._chat_error,
            "tool.execution": self._tool,
            "tool.error": self._tool,
        }
        # One handler, subscribed by exact name: agent.token is left out, so the loop's
        # token path stays as cheap as without tracing.
        for name in self._handlers:
            bus.subscribe(name, self.on_event)
        seams.plug("tracing", self)

    def close(self) -> None:
        seams.unplug("tracing")
        for name in self._handlers:
            self.bus.unsubscribe(name, self.on_event)
        for state in (self.spans, self._chats, self._calls, self._tools, self._conversations):
            state.clear()
        self._described.clear()
        self._batches.clear()

    def on_event(self, event: Event) -> None:
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event)

    # -- runs --------------------------------------------------------------------------

    def _agent_start(self, event: Event) -> None:
        self._secrets = secret_values()  # keys set since instrument() are scrubbed too
        agent = event.agent or "agent"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
        }
        conversation = event.data.get("conversation")
        if conversation and event.run_id:
            self._conversations[event.run_id] = attributes["gen_ai.conversation.id"] = conversation
        if self.capture_content:
            attributes["gen_ai.input.messages"] = text_message("user", event.data.get("task"))
        span = self.spans.get(event.run_id or "")
        if span is not None:  # opened when the run began (its tracing block)
            span.set_attributes(self._clean(attributes))
            return
        self._open_event(event, f"invoke_agent {agent}", attributes)

    def _team_start(self, event: Event) -> None:
        self._secrets = secret_values()
        data = event.data
        team = str(data.get("team") or event.agent or "team")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": team,
            "victor.team.formation": str(data.get("formation", "")),
            "victor.team.members": [str(m) for m in data.get("members") or ()],
        }
        if self.capture_content:
            attributes["gen_ai.input.messages"] = text_message("user", data.get("task"))
        self._open_event(event, f"invoke_workflow {team}", attributes)

    def _batch_start(self, event: Event) -> None:
        self._secrets = secret_values()
        data = event.data
        attributes = {
            f"victor.batch.{key}": data[key]
            for key in ("items", "pending", "backend", "concurrency")
            if data.get(key) is not None
        }
        self._open_event(event, f"batch {data.get('batch') or event.agent}", attributes)
        if event.run_id:
            self._batches.add(event.run_id)

    def _run_complete(self, event: Event) -> None:
        span = self._forget(event.run_id or "")
        if span is None:
            return
        usage = event.data.get("usage") or {}
        self._set_usage(span, usage)
        if self.capture_content and event.data.get("result") is not None:
            answer = text_message("assistant", event.data["result"])
            self._set(span, "gen_ai.output.messages", answer)
        span.end(end_time=_ns(event.timestamp))

    def _forget(self, run_id: str) -> Span | None:
        """The span of run ``run_id``, no longer kept."""
        self._described.discard(run_id)
        self._batches.discard(run_id)
        self._conversations.pop(run_id, None)
        return self.spans.pop(run_id, None)

    def _batch_complete(self, event: Event) -> None:
        span = self.spans.get(event.run_id or "")
        if span is not None:
            for key in ("done", "failed", "resumed"):
                if key in event.data:
                    span.set_attribute(f"victor.batch.{key}", int(event.data[key]))
        self._run_complete(event)

    def _run_error(self, event: Event) -> None:
        span = self._forget(event.run_id or "")
        chat = self._chats.pop(event.run_id or "", None)
        if chat is not None:  # the run ended during a model call (cancelled, say)
            self._measure(event, error_type=str(event.data.get("error_type") or "_OTHER"))
        for open_span in (chat, span):
            if open_span is not None:
                self._fail(open_span, event.data)
                open_span.end(end_time=_ns(event.timestamp))

    # -- model calls -------------------------------------------------------------------

    def _chat_start(self, event: Event) -> None:
        run = self.spans.get(event.run_id or "")
        if run is None:
            return
        data = event.data
        # The provider's own facts (Provider.system, Provider.in_process), from the event.
        provider = str(data.get("system") or data.get("provider") or "")
        model = str(data.get("model") or "")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,  # the name before semantic conventions 1.37
            "gen_ai.request.model": model,
        }
        for key in ("temperature", "max_tokens"):
            if data.get(key) is not None:
                attributes[f"gen_ai.request.{key}"] = data[key]
        measured = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")
        self._calls[event.run_id or ""] = (
            event.timestamp,
            self._clean({key: attributes[key] for key in measured}),
        )
        if event.run_id in self._conversations:
            attributes["gen_ai.conversation.id"] = self._conversations[event.run_id]
        kinds = self._trace.SpanKind
        kind = kinds.INTERNAL if data.get("in_process") else kinds.CLIENT
        if event.run_id not in self._described:  # the agent's model, known from its first call
            self._described.add(event.run_id or "")
            run.set_attribute("gen_ai.provider.name", provider)
            run.set_attribute("gen_ai.request.model", model)
        self._chats[event.run_id or ""] = self.tracer.start_span(
            f"chat {model}".strip(),
            context=self._trace.set_span_in_context(run),
            kind=kind,
            attributes=self._clean(attributes),
            start_time=_ns(event.timestamp),
        )

    def _chat_end(self, event: Event) -> None:
        span = self._chats.pop(event.run_id or "", None)
        if span is None:
            return
        data = event.data
        if data.get("model"):
            self._set(span, "gen_ai.response.model", str(data["model"]))
        if data.get("stop_reason"):
            reason = finish_reason(str(data["stop_reason"]))
            span.set_attribute("gen_ai.response.finish_reasons", [reason])
        self._set_usage(span, data.get("usage") or {})
        first_chunk = data.get("first_chunk_ms")
        if first_chunk is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", first_chunk / 1000)
        self._measure(event, data.get("usage"), first_chunk and first_chunk / 1000)
        span.end(end_time=_ns(event.timestamp))

    def _measure(
        self,
        event: Event,
        usage: Mapping[str, Any] | None = None,
        first_chunk: float | None = None,
        error_type: str | None = None,
    ) -> None:
        """The metrics of the model call that ``event`` ends."""
        started, attributes = self._calls.pop(event.run_id or "", (None, None))
        if self.metrics is None or started is None or attributes is None:
            return
        if error_type is not None:
            attributes = {**attributes, "error.type": error_type}
        elif event.data.get("model"):
            attributes = {**attributes, "gen_ai.response.model": self._scrub(event.data["model"])}
        seconds = max(event.timestamp - started, 0.0)
        if event.data.get("duration_ms") is not None:
            seconds = event.data["duration_ms"] / 1000
        self.metrics.record(attributes, seconds, usage, first_chunk)

    def _chat_error(self, event: Event) -> None:
        span = self._chats.get(event.run_id or "")
        if span is None:
            return
        data = event.data
        error_type = str(data.get("status") or data.get("error_type") or "_OTHER")
        if data.get("retrying"):
            span.add_event("retry", {"error.type": error_type}, timestamp=_ns(event.timestamp))
            return
        del self._chats[event.run_id or ""]
        self._measure(event, error_type=error_type)
        self._fail(span, {**data, "error_type": error_type})
        span.end(end_time=_ns(event.timestamp))

    # -- tools -------------------------------------------------------------------------

    def _tool(self, event: Event) -> None:
        data = event.data
        end = _ns(event.timestamp)
        span = self._tools.pop((event.run_id or "", str(data.get("call_id"))), None)
        if span is None:  # a call that ran outside its tracing block: drawn after the fact
            run = self.spans.get(event.run_id or "")
            if run is None:
                return
            tool = str(data.get("tool_name") or "tool")
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.type": "function",
            }
            if data.get("call_id"):
                attributes["gen_ai.tool.call.id"] = str(data["call_id"])
            span = self.tracer.start_span(
                f"execute_tool {tool}",
                context=self._trace.set_span_in_context(run),
                kind=self._trace.SpanKind.INTERNAL,
                attributes=self._clean(attributes),
                start_time=end - int(float(data.get("duration_ms") or 0) * 1e6),
            )
        if self.capture_content:  # arguments and results are content
            self._set(span, "gen_ai.tool.call.arguments", to_json(data.get("arguments") or {}))
            if event.type == "tool.execution":
                self._set(span, "gen_ai.tool.call.result", str(data.get("result", "")))
        if event.type == "tool.error":
            self._fail(span, {"error_type": "ToolError", "error": data.get("error")})
        span.end(end_time=end)

    # -- helpers -----------------------------------------------------------------------

    def _open_event(self, event: Event, name: str, attributes: dict[str, Any]) -> None:
        if event.run_id:
            self._open(event.run_id, event.parent, name, attributes, _ns(event.timestamp))

    def _fail(self, span: Span, data: Mapping[str, Any]) -> None:
        from opentelemetry.trace import Status, StatusCode

        error_type = str(data.get("error_type") or "_OTHER")
        span.set_attribute("error.type", error_type)
        # An error message can quote the conversation: it is content.
        detail = self._scrub(str(data.get("error") or "")) if self.capture_content else ""
        span.set_status(
            Status(StatusCode.ERROR, f"{error_type}: {detail}" if detail else error_type)
        )

    def _set_usage(self, span: Span, usage: Mapping[str, Any]) -> None:
        if "input_tokens" in usage:
            span.set_attribute("gen_ai.usage.input_tokens", int(usage["input_tokens"]))
        if "output_tokens" in usage:
            span.set_attribute("gen_ai.usage.output_tokens", int(usage["output_tokens"]))

    def _set(self, span: Span, key: str, value: str) -> None:
        span.set_attribute(key, self._scrub(value))

    def _clean(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            key: self._scrub(value) if isinstance(value, str) else value
            for key, value in attributes.items()
        }

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)


# -- crossing process boundaries -----------------------------------------------------------


def trace_carrier(run_id: str | None = None) -> dict[str, str]:
    """The trace context of run ``run_id``'s span (else the current one) as W3C headers,
    to continue the trace in another process (a Ray actor); {} when nothing traces."""
    if "opentelemetry" not in sys.modules:
        return {}  # nobody in this process uses OpenTelemetry
    from opentelemetry import propagate, trace

    span = _active.spans.get(run_id) if _active is not None and run_id else None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span) if span else None)
    return carrier


# -- helpers -------------------------------------------------------------------------------


def _ns(timestamp: float) -> int:
    return int(timestamp * 1e9)


def _env_flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on", "span_only", "span_and_event")
