"""The part of ``victor.telemetry`` the core's tracing slot calls (``victor.core.seams``):
it makes the span of a run, a model call or a tool call current while that work happens,
so spans that the SDKs and HTTP clients make of their requests nest under victor's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from ._genai import input_messages, output_messages
from .core.messages import ResponseComplete

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .core.events import EventScope
    from .core.messages import AgentResponse, Message, ToolCall

__all__ = ["CurrentSpans", "attached"]


class CurrentSpans:
    """Mixed into ``victor.telemetry.Instrumentation``, whose span bookkeeping it uses:
    ``spans`` (runs), ``_chats`` (model calls), ``_tools`` (tool calls)."""

    if TYPE_CHECKING:  # provided by Instrumentation
        spans: dict[str, Span]
        _chats: dict[str, Span]
        _tools: dict[tuple[str, str], Span]
        capture_content: bool
        _batches: set[str]
        tracer: Any
        _trace: Any
        _context: Any

        def _forget(self, run_id: str) -> Span | None: ...
        def _fail(self, span: Span, data: Any) -> None: ...
        def _set(self, span: Span, key: str, value: str) -> None: ...
        def _clean(self, attributes: dict[str, Any]) -> dict[str, Any]: ...

    def current(self, step: str, scope: EventScope, detail: Any = None) -> Any:
        """The block in which ``step`` of ``scope``'s run happens (see ``seams.traced``)."""
        run_id = scope.run_id or ""
        if step == "chat":
            span = self._chats.get(run_id)
            if span is None:
                return nullcontext()
            self._record_input(span, detail)
            return self._within(span, _Call(self, span))
        if step == "tool":
            return self._tool_block(run_id, detail)
        span = self.spans.get(run_id)
        if span is not None:  # a team's, opened by its team.start
            return self._within(span)
        return self._run_block(scope) if scope.run_id else nullcontext()

    @contextmanager
    def _run_block(self, scope: EventScope) -> Iterator[None]:
        """An agent run, whose span opens now (agent.start, still to come, adds to it)."""
        run_id, agent = scope.run_id or "", scope.agent or "agent"
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
        span = self._open(run_id, scope.parent, f"invoke_agent {agent}", attributes, None)
        try:
            with self._within(span):
                yield
        except BaseException as exc:
            if self.spans.get(run_id) is span:  # failed before its loop began: no event ends it
                self._forget(run_id)
                self._fail(span, {"error_type": type(exc).__name__})
                span.end()
            raise

    def stream(
        self, events: AsyncIterator[Any], scope: EventScope, messages: list[Message]
    ) -> AsyncIterator[Any]:
        """``events`` read with the model call's span current."""
        span = self._chats.get(scope.run_id or "")
        if span is None:
            return events
        self._record_input(span, messages)
        return _Current(events, self._trace.set_span_in_context(span), _Call(self, span))

    @contextmanager
    def _within(self, span: Span, value: Any = None) -> Iterator[Any]:
        token = self._context.attach(self._trace.set_span_in_context(span))
        try:
            yield value
        finally:
            self._context.detach(token)

    @contextmanager
    def _tool_block(self, run_id: str, call: ToolCall | None) -> Iterator[None]:
        run = self.spans.get(run_id)
        if run is None or call is None:
            yield
            return
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": call.id,
        }
        span = self.tracer.start_span(
            f"execute_tool {call.name}",
            context=self._trace.set_span_in_context(run),
            kind=self._trace.SpanKind.INTERNAL,
            attributes=self._clean(attributes),
        )
        key = (run_id, call.id)
        self._tools[key] = span  # ended by the tool's event, with its outcome
        try:
            with self._within(span):
                yield
        except BaseException as exc:  # no event will come (cancelled): end it here
            if self._tools.pop(key, None) is span:
                self._fail(span, {"error_type": type(exc).__name__})
                span.end()
            raise

    def _open(
        self,
        run_id: str,
        parent_id: str | None,
        name: str,
        attributes: dict[str, Any],
        start_time: int | None,
    ) -> Span:
        """Start the span of run ``run_id``: under its parent run's span (or the tool call
        of that run it started in); a batch item's in a trace of its own, linked to the
        batch's; with no parent run, under whatever span is current where the run started."""
        parent = self.spans.get(parent_id or "")
        current = self._trace.get_current_span()
        if parent is not None and any(
            span is current and key[0] == parent_id for key, span in self._tools.items()
        ):
            parent = current  # an agent that a tool runs
        links = None
        if parent is None:
            context = None
        elif parent_id in self._batches:
            from opentelemetry.context import Context
            from opentelemetry.trace import Link

            context, links = Context(), [Link(parent.get_span_context())]
        else:
            context = self._trace.set_span_in_context(parent)
        self.spans[run_id] = span = self.tracer.start_span(
            name,
            context=context,
            kind=self._trace.SpanKind.INTERNAL,
            attributes=self._clean(attributes),
            links=links,
            start_time=start_time,
        )
        return span

    def _record_input(self, span: Span, messages: list[Message] | None) -> None:
        if self.capture_content and messages:
            system, chat = input_messages(messages)
            if system != "[]":
                self._set(span, "gen_ai.system_instructions", system)
            self._set(span, "gen_ai.input.messages", chat)

    def _answered(self, span: Span, response: AgentResponse) -> None:
        if self.capture_content:
            self._set(span, "gen_ai.output.messages", output_messages(response))


class _Call:
    """The value of a model call's tracing block: the answer goes on its span."""

    __slots__ = ("_owner", "_span")

    def __init__(self, owner: CurrentSpans, span: Span) -> None:
        self._owner, self._span = owner, span

    def answered(self, response: AgentResponse) -> None:
        self._owner._answered(self._span, response)


class _Current:
    """A model's stream, each chunk read with the model call's span current (so an SDK's
    spans of the request are its children); the answer goes on the span."""

    __slots__ = ("_events", "_context", "_call")

    def __init__(self, events: AsyncIterator[Any], context: Any, call: _Call) -> None:
        self._events, self._context, self._call = events, context, call

    def __aiter__(self) -> _Current:
        return self

    async def __anext__(self) -> Any:
        from opentelemetry import context

        token = context.attach(self._context)
        try:
            event = await self._events.__anext__()
        finally:
            context.detach(token)
        if type(event) is ResponseComplete:
            self._call.answered(event.response)
        return event

    async def aclose(self) -> None:
        from opentelemetry import context

        token = context.attach(self._context)
        try:
            await self._events.aclose()  # type: ignore[attr-defined]
        finally:
            context.detach(token)


@contextmanager
def attached(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace context in ``carrier`` current inside the block (where OpenTelemetry
    is installed; elsewhere the block just runs)."""
    if not carrier:
        yield
        return
    try:
        from opentelemetry import context, propagate
    except ImportError:
        yield
        return
    token = context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        context.detach(token)
