"""EventBus: the one channel for observing what agents, tools and providers do.

``EventBus.subscribe/unsubscribe/emit`` called on the class act on the default bus;
called on an instance they act on that bus. A bus made with ``parent=`` forwards every
event to its parent, so a team's bus feeds the default bus too. Patterns are
shell-style: ``"tool.*"``, ``"*"``. Handlers may be sync or async; a failing handler is
logged and never breaks the run that emitted the event.
"""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, ClassVar

from .._secrets import get_logger
from .._util import bound, new_id

if TYPE_CHECKING:
    import asyncio

__all__ = ["Event", "EventBus", "EventScope", "current_scope", "EVENT_TYPES"]

logger = get_logger("victor.events")

#: Every event type victor emits, with the keys its ``data`` carries.
EVENT_TYPES: dict[str, str] = {
    "agent.start": "task, conversation",
    "agent.token": "text",
    "agent.complete": "result, usage, duration_ms",
    "agent.error": "error, error_type",
    "tool.execution": "tool_name, call_id, arguments, result, duration_ms",
    "tool.error": "tool_name, call_id, arguments, error, duration_ms",
    "tool.approval_requested": "tool_name, arguments, call_id",
    "tool.approval_decided": "tool_name, call_id, approved, policy, reason",
    "compose.start": "kind, steps",
    "compose.step": "kind, index, step, success, error, duration_ms",
    "compose.complete": "kind, success, error, duration_ms",
    "provider.request": "provider, model, iteration, messages, temperature, max_tokens",
    "provider.response": "provider, model, duration_ms, usage, stop_reason, first_chunk_ms",
    "provider.error": "provider, model, error, error_type, status, retrying",
    "workflow.step": "workflow, step, index",
    "team.start": "team, formation, task, members",
    "team.complete": "team, result, usage, duration_ms",
    "team.error": "team, error, error_type",
    "team.delegate": "team, from, to, task, subtask",
    "team.round": "team, round, phase",
    "team.vote": "team, round, voter, choice, reason",
    "batch.start": "batch, items, pending, backend, concurrency",
    "batch.item": "batch, index, key, ok, error, error_type, attempts, duration_ms, usage",
    "batch.complete": "batch, done, failed, resumed, usage, duration_ms",
    "batch.error": "batch, error, error_type",
}

Handler = Callable[["Event"], Any]


@dataclass(slots=True)
class Event:
    """Something that happened. ``agent``/``run_id``/``parent`` place it in a run tree."""

    type: str
    data: dict[str, Any]
    run_id: str | None = None
    agent: str | None = None
    parent: str | None = None
    timestamp: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: new_id("evt"))


class _on_default_bus:
    """Descriptor: a method called on the class runs on ``EventBus.default()``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: EventBus | None, cls: type[EventBus]) -> Callable[..., Any]:
        return self.fn.__get__(obj if obj is not None else cls.default(), cls)


class EventBus:
    """Publish/subscribe for victor's events."""

    _default: ClassVar[EventBus | None] = None

    def __init__(self, parent: EventBus | None = None) -> None:
        self.parent = parent
        self._subscriptions: list[tuple[str, Handler]] = []
        self._matches: dict[str, tuple[Handler, ...]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def default(cls) -> EventBus:
        """The process-wide bus that class-level calls use."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    @_on_default_bus
    def subscribe(self, pattern: str, handler: Handler) -> Handler:
        """Call ``handler(event)`` for every event whose type matches ``pattern``."""
        if not callable(handler):
            raise TypeError(f"handler for {pattern!r} must be callable, got {handler!r}")
        self._subscriptions.append((pattern, handler))
        self._matches.clear()
        return handler

    @_on_default_bus
    def unsubscribe(self, pattern: str, handler: Handler | None = None) -> None:
        """Remove ``handler`` from ``pattern`` (or every handler of ``pattern``)."""
        self._subscriptions = [
            (p, h)
            for p, h in self._subscriptions
            if not (p == pattern and (handler is None or h == handler))
        ]
        self._matches.clear()

    @_on_default_bus
    def emit(self, type: str, data: dict[str, Any] | None = None, **meta: Any) -> Event | None:
        """Deliver an event now. Async handlers are scheduled on the running loop."""
        handlers = self._handlers_for(type)
        if not handlers:
            return None
        event = Event(type, data or {}, **meta)
        for handler in handlers:
            self._call(handler, event)
        return event

    async def aemit(
        self, type: str, data: dict[str, Any] | None = None, **meta: Any
    ) -> Event | None:
        """Deliver an event and wait for async handlers to finish."""
        handlers = self._handlers_for(type)
        if not handlers:
            return None
        event = Event(type, data or {}, **meta)
        for handler in handlers:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("event handler %r failed on %s", handler, type)
        return event

    def has_listeners(self, type: str) -> bool:
        """Whether emitting ``type`` would reach any handler (lets hot paths skip work)."""
        return bool(self._handlers_for(type))

    @_on_default_bus
    @contextmanager
    def capture(self, pattern: str = "*") -> Iterator[list[Event]]:
        """Collect matching events into a list while the block runs."""
        events: list[Event] = []
        self.subscribe(pattern, events.append)
        try:
            yield events
        finally:
            self.unsubscribe(pattern, events.append)

    def _handlers_for(self, type: str) -> tuple[Handler, ...]:
        handlers = self._matches.get(type)
        if handlers is None:
            own = tuple(h for p, h in self._subscriptions if fnmatchcase(type, p))
            self._matches[type] = handlers = own
        if self.parent is not None:
            return handlers + self.parent._handlers_for(type)
        return handlers

    def _call(self, handler: Handler, event: Event) -> None:
        try:
            result = handler(event)
        except Exception:
            logger.exception("event handler %r failed on %s", handler, event.type)
            return
        if inspect.isawaitable(result):
            import asyncio  # imported when used: see victor/__init__.py

            try:
                task = asyncio.get_running_loop().create_task(result)  # type: ignore[arg-type]
            except RuntimeError:  # no running loop: run the handler to completion here
                try:
                    asyncio.run(result)  # type: ignore[arg-type]
                except Exception:
                    logger.exception("event handler %r failed on %s", handler, event.type)
                return
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("async event handler failed", exc_info=task.exception())


@dataclass(slots=True)
class EventScope:
    """Where events of the current run go, and how they are tagged."""

    bus: EventBus
    run_id: str | None = None
    agent: str | None = None
    parent: str | None = None

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        await self.bus.aemit(type, data, run_id=self.run_id, agent=self.agent, parent=self.parent)


_current_scope: contextvars.ContextVar[EventScope | None] = contextvars.ContextVar(
    "victor_event_scope", default=None
)


def current_scope() -> EventScope:
    """The scope of the run in progress, or an untagged scope on the default bus."""
    return _current_scope.get() or EventScope(EventBus.default())


def scope(s: EventScope) -> bound[EventScope | None]:
    """``with scope(s):`` makes ``s`` the current scope for code (providers, tools) running
    inside the block."""
    return bound(_current_scope, s)
