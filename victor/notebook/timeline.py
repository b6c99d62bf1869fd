"""TeamTimeline: a team run drawn from its events alone, live or static.

One swimlane per agent; bars for member runs, model calls and tool calls; markers for
delegations (arrows), rounds (dashed lines) and votes (dots). The HTML form is the chart
as an SVG image above a collapsible table of every call (prompt summary, tokens,
duration, error); ``to_svg()`` gives the chart alone, where each bar and marker carries a
hover title. No JavaScript, no CDN, plus a text summary: saved, reopened and exported
notebooks show it.

    result = await team.run(task)
    result.timeline()                          # static, real relative times
    TeamTimeline(result, deterministic=True)   # logical clock: same output every run
    TeamTimeline(team)                         # live: follows the team's runs
    await team.run(task, display=True)         # live during the run
    %%victor --agent team                      # live too: the cell is the team's task

``deterministic=True`` places everything by event order instead of wall-clock time and
leaves durations out, so documentation built from scripted runs does not change between
executions. Live updates are batched to at most ``interval`` (0.1 s) apart (the one throttle
of display.py, as ``StreamView``'s), with one final update when the run ends.

Where widgets work (a kernel as the approval card needs it, and anywidget installed), the
static form is displayed first and the interactive ``TimelineWidget`` (timeline_widget.py,
front end widgets/timeline.js) after it; the widget hides its static twin while it lives,
and a reopened or exported notebook shows the static one. Live, the widget gets batches of
new and changed bars; the static output is updated once, at the end.

The timeline as data (lanes, bars, markers) is built in timeline_layout.py and drawn in
timeline_render.py; this module is the notebook object, static or live.
"""

from __future__ import annotations

from typing import Any

from .._sync import call_in_main
from ..core.events import Event, EventBus
from .display import UPDATE_INTERVAL, LiveOutput, Throttle
from .timeline_layout import Bar, Layout, Marker
from .timeline_render import render_html, render_summary, render_svg

__all__ = ["TeamTimeline", "Bar", "Marker"]

#: Events the timeline is drawn from (agent tokens are not needed).
PATTERNS = ("team.*", "agent.start", "agent.complete", "agent.error", "provider.*", "tool.*")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _widgets_work() -> bool:
    """Whether to show the interactive widget: in a kernel where widgets work (decided as
    for the approval card) and with anywidget installed (the notebook extra)."""
    from IPython import get_ipython

    from .approval import widgets_work

    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not widgets_work(kernel):
        return False
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


class TeamTimeline:
    """Swimlanes of a team run, built from events; static or live in a notebook."""

    def __init__(
        self,
        source: Any = None,
        *,
        deterministic: bool = False,
        width: int = 900,
        interval: float = UPDATE_INTERVAL,
    ) -> None:
        """``source``: a ``TeamResult`` or a list of events (static), an ``AgentTeam`` or an
        ``EventBus`` (live: follows the runs whose events pass through it)."""
        self.deterministic = deterministic
        self.width = width
        #: Seconds between live display updates at most.
        self.interval = interval
        self.events: list[Event] = []
        self._bus: EventBus | None = None
        self._output = LiveOutput()
        self._throttle = Throttle(self._flush, interval)
        self._print_at_close = False
        #: How many batched updates were made (far fewer than events).
        self.updates = 0
        #: The interactive view, where widgets work (timeline_widget.py); None elsewhere.
        self.widget: Any = None
        self._final_at: int | None = None  # how many events the final update showed
        from ..teams.base import AgentTeam

        if isinstance(source, AgentTeam):
            self._attach(source.bus)
        elif isinstance(source, EventBus):
            self._attach(source)
        elif source is not None:
            self.events = list(getattr(source, "events", source))

    # -- live ------------------------------------------------------------------------

    def _attach(self, bus: EventBus) -> None:
        self._bus = bus
        for pattern in PATTERNS:
            bus.subscribe(pattern, self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.type == "team.start" and event.parent is None:
            self.events = []  # a new top-level run: show it alone
        self.events.append(event)
        self._changed(final=event.type in ("team.complete", "team.error") and event.parent is None)

    def show(self) -> None:
        """Display the timeline now; when live, the display follows new events."""
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # no IPython: the summary is printed when the run ends
            self._print_at_close = True
            return
        if get_ipython() is None:
            self._print_at_close = True
            return

        def show_here() -> None:
            # The static form first, its own output: what a reopened (the widget's model is
            # gone) or exported notebook shows; the widget's view hides it while it lives.
            bundle = self._repr_mimebundle_()
            if self._bus is not None:
                self._output.show(bundle)  # live: updated when the run ends
            else:
                display(bundle, raw=True)
            if _widgets_work():
                from .timeline_widget import TimelineWidget

                self.widget = TimelineWidget(self._build())
                display(self._view_bundle(), raw=True)

        # From run_sync's loop thread, display on the cell's thread (as StreamView does):
        # output sent from another thread can land in the wrong cell.
        call_in_main(show_here)

    def _ipython_display_(self) -> None:
        self.show()

    def close(self) -> None:
        """Stop following the bus, after one last update."""
        if self._bus is not None:
            for pattern in PATTERNS:
                self._bus.unsubscribe(pattern, self._on_event)
            self._bus = None
        if self._output.shown:
            self._throttle.cancel()
            self._flush(final=True)
        if self._print_at_close:
            self._print_at_close = False
            print(self.summary())

    @property
    def updates_sent(self) -> int:
        """Live display messages sent: each display and each update (batched: far fewer
        than events)."""
        return self._output.updates_sent

    def _changed(self, final: bool) -> None:
        if not self._output.shown:
            return  # nobody watches: nothing to draw
        if final:
            self._throttle.cancel()
            self._flush(final=True)
        else:
            self._throttle.poke()

    def _flush(self, final: bool = False) -> None:
        """One batched update: the widget gets the new and changed bars (the whole state
        and a fresh static form when the run ends); without it, the display is redrawn."""
        if final and self._final_at == len(self.events):
            return  # (the run's end and close() both ask for the final update: send it once)
        self._final_at = len(self.events) if final else None
        self.updates += 1
        layout = self._build()

        def update() -> None:
            # On the cell's thread, where show() creates the widget: read it here.
            widget = self.widget
            if widget is not None and not final:
                widget.push(layout)
                return
            if widget is not None:
                widget.sync(layout)
            self._output.post(
                {"text/plain": render_summary(layout), "text/html": render_html(layout, self.width)}
            )

        call_in_main(update)

    # -- the model built from events ---------------------------------------------------

    def _build(self) -> Layout:
        return Layout(self.events, self.deterministic)

    @property
    def lanes(self) -> list[str]:
        """Agent names, one lane each, in team order."""
        return self._build().lanes

    @property
    def bars(self) -> list[Bar]:
        return self._build().bars

    @property
    def markers(self) -> list[Marker]:
        return self._build().markers

    @property
    def runs(self) -> list[Bar]:
        """Member runs in the order they started: rebuilt from events, they match the
        team's transcript (agent and answer, or error)."""
        return [b for b in self._build().bars if b.kind == "run"]

    # -- rendering -------------------------------------------------------------------

    def summary(self) -> str:
        """A text summary: one line per lane with an ASCII strip of its activity."""
        return render_summary(self._build())

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.summary(), "text/html": self.to_html()}

    def _view_bundle(self) -> dict[str, Any]:
        """The widget's output: its view alone. (No text/plain: the static output above it
        is the text form, and a notebook's checked outputs do not depend on whether the
        kernel that ran it had widgets.)"""
        view = self.widget._repr_mimebundle_()
        view = view[0] if isinstance(view, tuple) else view
        return {WIDGET_VIEW: view[WIDGET_VIEW]}

    def to_svg(self) -> str:
        """The swimlanes as a standalone inline SVG (hover titles, no script)."""
        return render_svg(self._build(), self.width)

    def to_html(self) -> str:
        """Header, SVG, legend and a collapsible table of every call."""
        return render_html(self._build(), self.width)
