"""Where front ends plug into the core: how to show a run, and how to ask a person.

The core never imports a front end. It asks for one here, by slot, when it needs it:
``Agent.run(display=True)`` for a ``run_view``, ``AgentTeam.run(display=True)`` and
``TeamResult.timeline()`` for a ``team_view``, an ``Ask`` approval inside a Jupyter kernel
for the ``kernel_approval`` front end. A front end fills its slots when it loads. victor's
own (the notebook layer, which also prints to a terminal) are plugged in by the package's
face as ``"module:attribute"`` paths, imported the first time the core asks, so
``import victor`` loads none of them; a program can plug in its own::

    from victor.core import seams
    seams.plug("run_view", MyView)        # what display=True shows from now on

One slot is entered rather than asked: ``tracing`` (filled by ``victor.telemetry`` while it
traces) makes the span of a step current while the step's work happens, so spans that the
SDKs and HTTP clients make nest under victor's. The steps enter ``traced(...)`` and
``traced_stream(...)``, which cost a dictionary look-up when nothing traces.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError

if TYPE_CHECKING:  # the shapes of the front ends, for type checkers (no cost at import)
    from collections.abc import AsyncIterator, Iterable
    from contextlib import AbstractContextManager
    from typing import Protocol

    from .events import Event, EventBus, EventScope
    from .messages import RunFinished, StreamEvent

    class RunView(Protocol):
        """Shows one agent run while it happens (``Agent.run(display=True)``)."""

        def __init__(self, *, format: str = ...) -> None: ...

        async def consume(self, events: AsyncIterator[StreamEvent]) -> RunFinished:
            """Show the run from its ``agent.events(...)`` stream and return its end."""
            ...

    class TeamView(Protocol):
        """Draws a team run from its events: live from a bus, or after the fact."""

        def __init__(
            self, source: EventBus | Iterable[Event], *, deterministic: bool = False
        ) -> None: ...

        def show(self) -> None: ...

        def close(self) -> None: ...

    class KernelApproval(Protocol):
        """Asks the person at a notebook (inside a Jupyter kernel) about one tool call."""

        def widgets_work(self, kernel: Any) -> bool:
            """Whether buttons can reach ``kernel`` while a cell runs (else an input box)."""
            ...

        async def ask_in_notebook(self, request: Any, channel: str, timeout: float | None) -> str:
            """The person's answer to ``request`` (an ``ApprovalRequest``): yes, no, always or
            timeout."""
            ...

        def card_bundle(self, request: Any) -> dict[str, str]:
            """The request as a display bundle (HTML and plain text)."""
            ...

    class Tracing(Protocol):
        """Makes the span of a run's step current while the step's work happens."""

        def current(
            self, step: Step, scope: EventScope, detail: Any = None
        ) -> AbstractContextManager[Any]:
            """The block in which ``step`` of the run of ``scope`` happens: ``"run"`` (an
            agent's or a team's), ``"chat"`` (one model call, ``detail`` the messages sent;
            the block's value has ``answered(response)``) or ``"tool"`` (one tool call,
            ``detail`` the ``ToolCall``)."""
            ...

        def stream(
            self, events: AsyncIterator[Any], scope: EventScope, messages: list[Any]
        ) -> AsyncIterator[Any]:
            """``events`` (a model's stream of ``messages``) read with the model call's
            span current."""
            ...


__all__ = ["Slot", "SLOTS", "plug", "unplug", "front_end", "traced", "traced_stream"]

Slot = Literal["run_view", "team_view", "kernel_approval", "tool_provider", "tracing"]
Step = Literal["run", "chat", "tool"]

#: Each slot and what fills it.
SLOTS: dict[str, str] = {
    "run_view": "shows one agent run live (display=True): a class like victor.notebook.StreamView",
    "team_view": "draws a team run from its events: a class like victor.notebook.TeamTimeline",
    "kernel_approval": "asks for approval in a Jupyter kernel, as victor.notebook.approval does",
    "tool_provider": "registers a front end's tools when the default registry is asked for a "
    "name it does not know: a function (registry, name) -> bool, as "
    "victor.notebook.workspace.provide",
    "tracing": "makes a run's spans current while their work happens: an object like "
    "victor.telemetry.Instrumentation (plugged by instrument(), unplugged by uninstrument())",
}


_plugged: dict[str, Any] = {}


def plug(slot: Slot, front_end: Any) -> None:
    """Fill ``slot`` with ``front_end``: an object, or a ``"module:attribute"`` (or
    ``"module"``) path imported the first time the core asks for it."""
    if slot not in SLOTS:
        raise ConfigurationError(f"there is no front-end slot {slot!r}: use one of {list(SLOTS)}")
    _plugged[slot] = front_end


def unplug(slot: Slot) -> None:
    """Empty ``slot`` (nothing happens if it is empty)."""
    _plugged.pop(slot, None)


_NOTHING = nullcontext()


def traced(step: Step, scope: EventScope, detail: Any = None) -> AbstractContextManager[Any]:
    """The block in which ``step`` of ``scope``'s run happens: its span current inside,
    when something traces (else a no-op)."""
    tracing = _plugged.get("tracing")
    return _NOTHING if tracing is None else tracing.current(step, scope, detail)


def traced_stream(
    events: AsyncIterator[Any], scope: EventScope, messages: list[Any]
) -> AsyncIterator[Any]:
    """``events`` (a model's stream of ``messages``), read with the model call's span
    current when something traces (else ``events`` itself)."""
    tracing = _plugged.get("tracing")
    return events if tracing is None else tracing.stream(events, scope, messages)


def front_end(slot: Slot) -> Any:
    """What fills ``slot`` (a plugged path is imported now), or a ``ConfigurationError``."""
    found = _plugged.get(slot)
    if found is None:
        raise ConfigurationError(
            f"nothing is plugged into the {slot!r} front-end slot, which {SLOTS[slot]}: "
            f"import victor (whose face plugs in the notebook layer), or "
            f"victor.core.seams.plug({slot!r}, ...) your own"
        )
    if isinstance(found, str):
        import importlib

        module, _, attribute = found.partition(":")
        found = importlib.import_module(module)
        if attribute:
            found = getattr(found, attribute)
        _plugged[slot] = found
    return found
