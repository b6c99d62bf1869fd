"""``StreamView.attach(agent)``: every run of an agent shown live, whatever starts it.

Fed by the agent's event bus rather than by a run's event stream: streamed runs
(``astream``, ``events``) show text as it arrives; ``run``/``chat`` show the answer when it
is complete. Each run gets its own view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..core.messages import RunFinished, Usage

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..core.events import Event

__all__ = ["Attachment"]


class FedView(Protocol):
    """What a view fed from the bus is told (``StreamView`` is one): a run began, text
    arrived, a tool call finished, the run finished or failed."""

    def _begin(self) -> None: ...

    def _text(self, delta: str) -> None: ...

    def _tool_finished(
        self,
        key: str,
        name: str,
        arguments: dict[str, Any],
        ok: bool,
        output: str,
        duration_ms: float,
    ) -> None: ...

    def _finish(self, finished: RunFinished) -> None: ...

    def _fail(self, message: str, *, interrupted: bool = False) -> None: ...


class Attachment:
    """``StreamView.attach(agent)``: one view per run of the agent, fed by its event bus."""

    _PATTERNS = ("agent.*", "tool.*")

    def __init__(
        self, view_class: Callable[..., FedView], agent: Agent, options: dict[str, Any]
    ) -> None:
        self.agent = agent
        self.views: dict[str | None, FedView] = {}
        self._make = lambda: view_class(**options)
        self._bus = agent.bus
        for pattern in self._PATTERNS:
            self._bus.subscribe(pattern, self._on_event)

    def detach(self) -> None:
        """Stop showing the agent's runs."""
        for pattern in self._PATTERNS:
            self._bus.unsubscribe(pattern, self._on_event)

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _on_event(self, event: Event) -> None:
        if event.agent != self.agent.name:
            return
        data = event.data
        if event.type == "agent.start":
            view = self.views[event.run_id] = self._make()
            view._begin()
            return
        view = self.views.get(event.run_id)
        if view is None:
            return
        if event.type == "agent.token":
            view._text(data.get("text", ""))
        elif event.type in ("tool.execution", "tool.error"):
            ok = event.type == "tool.execution"
            view._tool_finished(
                event.id,
                data.get("tool_name", "?"),
                data.get("arguments") or {},
                ok,
                str(data.get("result" if ok else "error", "")),
                data.get("duration_ms", 0.0),
            )
        elif event.type == "agent.complete":
            usage = data.get("usage") or {}
            view._finish(
                RunFinished(
                    content=str(data.get("result", "")),
                    usage=Usage(**usage) if isinstance(usage, dict) else Usage(),
                    duration_ms=data.get("duration_ms", 0.0),
                    # agent.last_run is set after this event: the provider is what ran.
                    model=self.agent.provider.model,
                    provider=self.agent.provider.name,
                    output=data.get("output"),  # a typed run's object, as plain data
                )
            )
            del self.views[event.run_id]
        elif event.type == "agent.error":
            cancelled = data.get("error_type") == "CancelledError"
            view._fail(f"{data.get('error_type')}: {data.get('error')}", interrupted=cancelled)
            del self.views[event.run_id]
