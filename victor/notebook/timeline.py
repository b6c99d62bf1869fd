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

``deterministic=True`` places everything by event order instead of wall-clock time and
leaves durations out, so documentation built from scripted runs does not change between
executions. Live updates go through ``display(..., display_id=True)`` and are batched to
at most ``interval`` (0.1 s) apart, with one final update when the run ends.
"""

from __future__ import annotations

import asyncio
import base64
import html
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.events import Event, EventBus
from .runner import call_in_main

__all__ = ["TeamTimeline", "Bar", "Marker"]

#: Events the timeline is drawn from (agent tokens are not needed).
PATTERNS = ("team.*", "agent.start", "agent.complete", "agent.error", "provider.*", "tool.*")

_COLORS = {
    "run": ("#e9eef6", "#9fb3d1"),
    "model": ("#4c78a8", "#35587f"),
    "tool": ("#f58518", "#b8620f"),
    "error": ("#d62728", "#8c1a1b"),
    "delegate": "#54a24b",
    "round": "#888888",
    "vote": "#b279a2",
}


@dataclass
class Bar:
    """A span on one lane: a member ``run``, a ``model`` call or a ``tool`` call."""

    lane: str
    kind: str
    start: float
    end: float | None = None
    label: str = ""
    #: Hover text lines: prompt summary, tokens, duration ...
    detail: list[str] = field(default_factory=list)
    error: str | None = None
    tokens: int = 0
    #: For runs: the final answer (what the transcript holds), and the event run id.
    result: str | None = None
    run_id: str | None = None


@dataclass
class Marker:
    """A point event: a ``delegate`` (lane -> ``to``), a ``round`` or a ``vote``."""

    kind: str
    t: float
    lane: str | None = None
    to: str | None = None
    label: str = ""
    detail: str = ""


class TeamTimeline:
    """Swimlanes of a team run, built from events; static or live in a notebook."""

    def __init__(
        self,
        source: Any = None,
        *,
        deterministic: bool = False,
        width: int = 900,
        interval: float = 0.1,
    ) -> None:
        """``source``: a ``TeamResult`` or a list of events (static), an ``AgentTeam`` or an
        ``EventBus`` (live: follows the runs whose events pass through it)."""
        self.deterministic = deterministic
        self.width = width
        #: Seconds between live display updates at most.
        self.interval = interval
        self.events: list[Event] = []
        self._bus: EventBus | None = None
        self._handles: list[Any] = []
        self._pending: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._print_at_close = False
        #: How many live display updates were sent (batched: far fewer than events).
        self.updates = 0
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
            handle = display(self._repr_mimebundle_(), raw=True, display_id=self._bus is not None)
            if self._bus is not None and handle is not None:
                self._handles.append(handle)

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
        self._flush()
        self._handles = []
        if self._print_at_close:
            self._print_at_close = False
            print(self.summary())

    def _changed(self, final: bool) -> None:
        if not self._handles:
            return
        if final:
            self._flush()
            return
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        delay = max(0.0, self._last_flush + self.interval - time.monotonic())
        self._pending = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if not self._handles:
            return
        self._last_flush = time.monotonic()
        self.updates += 1
        bundle, handles = self._repr_mimebundle_(), list(self._handles)

        def update() -> None:
            for handle in handles:
                handle.update(bundle, raw=True)

        call_in_main(update)

    # -- the model built from events ---------------------------------------------------

    def _build(self) -> _Layout:
        return _Layout(self.events, self.deterministic)

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
        layout = self._build()
        head = f"TeamTimeline: {layout.title()}"
        if not layout.lanes:
            return f"{head}\n  (no events yet)"
        columns = 48
        name_width = min(24, max(len(n) for n in layout.lanes))
        lines = [head]
        for lane in layout.lanes:
            strip = [" "] * columns
            bars = [b for b in layout.bars if b.lane == lane]
            for bar in sorted(bars, key=lambda b: ("run", "model", "tool").index(b.kind)):
                char = {"run": "-", "model": "=", "tool": "#"}[bar.kind]
                if bar.error:
                    char = "!"
                a, b = layout.column(bar.start, columns), layout.column(layout.end_of(bar), columns)
                for i in range(a, max(a + 1, b)):
                    strip[min(i, columns - 1)] = char
            models = [b for b in bars if b.kind == "model"]
            tools = [b for b in bars if b.kind == "tool"]
            errors = sum(1 for b in bars if b.error and b.kind != "run")
            stats = (
                f"{_count(len(models), 'model call')}, {_count(len(tools), 'tool call')}, "
                f"{sum(b.tokens for b in models)} tokens"
                + (f", {_count(errors, 'error')}" if errors else "")
            )
            lines.append(f"  {lane[:name_width]:<{name_width}} |{''.join(strip)}| {stats}")
        kinds = [m.kind for m in layout.markers]
        lines.append(
            f"  markers: {_count(kinds.count('delegate'), 'delegation')}, "
            f"{_count(kinds.count('round'), 'round')}, {_count(kinds.count('vote'), 'vote')}"
            "   (- run  = model call  # tool call  ! error)"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.summary(), "text/html": self.to_html()}

    def to_svg(self) -> str:
        """The swimlanes as a standalone inline SVG (hover titles, no script)."""
        return _render_svg(self._build(), self.width)

    def to_html(self) -> str:
        """Header, SVG, legend and a collapsible table of every call."""
        layout = self._build()
        rows = []
        for bar in layout.bars:
            if bar.kind == "run":
                continue
            rows.append(
                "<tr>"
                + "".join(
                    f"<td style='padding:1px 6px'>{_esc(cell)}</td>"
                    for cell in (
                        bar.lane,
                        bar.label,
                        layout.format_time(bar.start),
                        layout.format_span(bar),
                        bar.tokens or "",
                        "; ".join(bar.detail[1:]),
                        bar.error or "",
                    )
                )
                + "</tr>"
            )
        header = "".join(
            f"<th style='text-align:left;padding:1px 6px'>{h}</th>"
            for h in ("lane", "call", "start", "duration", "tokens", "detail", "error")
        )
        legend = " ".join(
            f"<span style='display:inline-block;width:10px;height:10px;background:{color};"
            f"margin:0 3px 0 10px'></span>{name}"
            for name, color in (
                ("member run", _COLORS["run"][1]),
                ("model call", _COLORS["model"][0]),
                ("tool call", _COLORS["tool"][0]),
                ("error", _COLORS["error"][0]),
                ("delegation", _COLORS["delegate"]),
                ("round", _COLORS["round"]),
                ("vote", _COLORS["vote"]),
            )
        )
        return (
            "<div class='victor-timeline' style='font-family:system-ui,sans-serif;font-size:12px'>"
            f"<div style='font-weight:600;margin-bottom:4px'>{_esc(layout.title())}</div>"
            f"{_svg_image(_render_svg(layout, self.width), layout.title())}"
            f"<div style='margin:4px 0'>{legend}</div>"
            f"<details><summary>{_count(len(rows), 'call')}</summary>"
            "<table style='border-collapse:collapse;font-size:11px'>"
            f"<tr>{header}</tr>{''.join(rows)}</table>"
            "</details></div>"
        )


def _svg_image(svg: str, alt: str) -> str:
    """The chart as an ``<img>`` of the SVG. Front ends sanitise inline ``<svg>`` out of the
    HTML of a notebook that is reopened (untrusted) — JupyterLab leaves only its text — but
    they show images, so the saved timeline stays a picture. The table below the chart
    carries what the bars' hover titles say."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f"<img src='data:image/svg+xml;base64,{data}' alt='{_esc(alt)}' style='max-width:100%'>"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _short(text: Any, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Layout:
    """The bars, markers and lanes of the latest team run in ``events``."""

    def __init__(self, events: list[Event], deterministic: bool) -> None:
        self.deterministic = deterministic
        self.bars: list[Bar] = []
        self.markers: list[Marker] = []
        self.lanes: list[str] = []
        self.team = ""
        self.formation = ""
        self.status = "running"
        self.duration = 0.0
        selected = _latest_run(events)
        t0 = selected[0].timestamp if selected else 0.0
        times = [float(i) if deterministic else e.timestamp - t0 for i, e in enumerate(selected)]
        self.now = times[-1] if times else 0.0
        runs: dict[str, Bar] = {}
        open_calls: dict[str, Bar] = {}
        last_response: dict[str, float] = {}
        for event, t in zip(selected, times, strict=True):
            data, kind = event.data, event.type
            lane = event.agent or "?"
            if kind == "team.start":
                self.team, self.formation = data.get("team", ""), data.get("formation", "")
                for name in data.get("members", []):
                    self._lane(name)
            elif kind in ("team.complete", "team.error") and event.run_id == selected[0].run_id:
                self.status = (
                    "completed" if kind == "team.complete" else f"failed: {data.get('error')}"
                )
                self.duration = t
            elif kind == "team.delegate":
                self.markers.append(
                    Marker(
                        "delegate",
                        t,
                        data.get("from"),
                        data.get("to"),
                        f"{data.get('from')} -> {data.get('to')}",
                        _short(data.get("task", "")),
                    )
                )
            elif kind == "team.round":
                label = f"round {data.get('round')}" + (
                    f" {data['phase']}" if data.get("phase") else ""
                )
                self.markers.append(Marker("round", t, label=label))
            elif kind == "team.vote":
                choice = data.get("choice") or "abstain"
                self.markers.append(
                    Marker(
                        "vote",
                        t,
                        data.get("voter"),
                        label=str(choice),
                        detail=_short(data.get("reason", "")),
                    )
                )
            elif kind == "agent.start":
                self._lane(lane)
                bar = runs[event.run_id or ""] = Bar(
                    lane,
                    "run",
                    t,
                    label=f"{lane} run",
                    run_id=event.run_id,
                    detail=[f"{lane}: {_short(data.get('task', ''))}"],
                )
                self.bars.append(bar)
            elif kind in ("agent.complete", "agent.error"):
                bar = runs.get(event.run_id or "")
                if bar is not None:
                    bar.end = t
                    if kind == "agent.complete":
                        bar.result = data.get("result", "")
                        bar.detail.append(f"answer: {_short(bar.result)}")
                    else:
                        bar.error = str(data.get("error"))
            elif kind == "provider.request":
                self._lane(lane)
                bar = Bar(lane, "model", t, label=f"model call {data.get('iteration', '')}".strip())
                bar.detail = [
                    f"{lane}: {bar.label}",
                    f"{data.get('provider')}/{data.get('model')}",
                    f"{data.get('messages', '?')} messages in",
                ]
                open_calls[event.run_id or ""] = bar
                self.bars.append(bar)
            elif kind == "provider.response":
                bar = open_calls.pop(event.run_id or "", None)
                if bar is not None:
                    usage = data.get("usage") or {}
                    bar.end = t
                    bar.tokens = int(usage.get("input_tokens", 0)) + int(
                        usage.get("output_tokens", 0)
                    )
                    bar.detail.append(
                        f"{usage.get('input_tokens', 0)} in / "
                        f"{usage.get('output_tokens', 0)} out tokens"
                    )
                    if not deterministic and data.get("duration_ms") is not None:
                        bar.detail.append(f"{data['duration_ms'] / 1000:.2f} s")
                last_response[event.run_id or ""] = t
            elif kind == "provider.error":
                bar = open_calls.get(event.run_id or "")
                if bar is not None:
                    bar.detail.append(
                        f"error: {_short(data.get('error'))}"
                        + (" (retrying)" if data.get("retrying") else "")
                    )
                    if not data.get("retrying"):
                        bar.end, bar.error = t, str(data.get("error"))
                        open_calls.pop(event.run_id or "", None)
            elif kind in ("tool.execution", "tool.error"):
                self._lane(lane)
                seconds = float(data.get("duration_ms") or 0) / 1000
                start = (
                    last_response.get(event.run_id or "", t - 0.5) if deterministic else t - seconds
                )
                bar = Bar(lane, "tool", start, t, label=f"tool {data.get('tool_name')}")
                bar.detail = [
                    f"{lane}: {bar.label}",
                    f"arguments: {_short(data.get('arguments', {}), 80)}",
                ]
                if kind == "tool.error":
                    bar.error = str(data.get("error"))
                else:
                    bar.detail.append(f"result: {_short(data.get('result', ''), 80)}")
                if not deterministic:
                    bar.detail.append(f"{seconds:.2f} s")
                self.bars.append(bar)
        if not self.duration:
            self.duration = self.now

    def _lane(self, name: str) -> None:
        if name not in self.lanes:
            self.lanes.append(name)

    def end_of(self, bar: Bar) -> float:
        return bar.end if bar.end is not None else self.now

    def span(self) -> float:
        return max(self.duration, self.now, 1e-9)

    def column(self, t: float, columns: int) -> int:
        return int(t / self.span() * (columns - 1) + 0.5)

    def format_time(self, t: float) -> str:
        return f"step {int(t)}" if self.deterministic else f"{t:.2f} s"

    def format_span(self, bar: Bar) -> str:
        if self.deterministic:
            return ""
        return f"{(self.end_of(bar) - bar.start):.2f} s"

    def title(self) -> str:
        if not self.team:
            return "no team run yet"
        runs = sum(1 for b in self.bars if b.kind == "run")
        length = f"{int(self.span())} steps" if self.deterministic else f"{self.duration:.2f} s"
        return (
            f"{self.formation} team {self.team!r} · {self.status} · "
            f"{_count(runs, 'member run')} · {length}"
        )


def _latest_run(events: list[Event]) -> list[Event]:
    """The events of the last top-level team run (all events if there is none)."""
    starts = [i for i, e in enumerate(events) if e.type == "team.start" and e.parent is None]
    if not starts:
        starts = [i for i, e in enumerate(events) if e.type == "team.start"]
    if not starts:
        return list(events)
    first = starts[-1]
    team_run = events[first].run_id
    return [e for e in events[first:] if e.run_id == team_run or e.parent == team_run]


def _render_svg(layout: _Layout, width: int) -> str:
    label_w, pad, axis_h, lane_h = 170, 16, 26, 30
    lanes = layout.lanes or ["(no agents yet)"]
    height = axis_h + lane_h * len(lanes) + 8
    plot_w = width - label_w - pad
    span = layout.span()

    def x(t: float) -> float:
        return round(label_w + t / span * plot_w, 1)

    def y(lane: str | None) -> float:
        return axis_h + lane_h * (lanes.index(lane) if lane in lanes else 0)

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' style='font-family:system-ui,sans-serif;font-size:11px'>"
    ]
    # lanes and labels
    for i, lane in enumerate(lanes):
        top = axis_h + lane_h * i
        fill = "#fafafa" if i % 2 else "#ffffff"
        out.append(f"<rect x='0' y='{top}' width='{width}' height='{lane_h}' fill='{fill}'/>")
        out.append(
            f"<text x='6' y='{top + lane_h / 2 + 4}' fill='#333'>{_esc(_short(lane, 26))}</text>"
        )
    # axis ticks
    steps = 6
    for k in range(steps + 1):
        t = span * k / steps
        tx = x(t)
        label = f"{int(round(t))}" if layout.deterministic else f"{t:.2f}s"
        out.append(f"<line x1='{tx}' y1='{axis_h - 4}' x2='{tx}' y2='{height - 6}' stroke='#eee'/>")
        out.append(
            f"<text x='{tx}' y='{axis_h - 8}' fill='#777' text-anchor='middle'>{label}</text>"
        )
    unit = "event order" if layout.deterministic else "seconds"
    out.append(f"<text x='6' y='{axis_h - 8}' fill='#777'>{unit}</text>")
    # bars: runs behind, then model and tool calls
    geometry = {"run": (3, lane_h - 6), "model": (8, lane_h - 16), "tool": (11, lane_h - 22)}
    for kind in ("run", "model", "tool"):
        for bar in (b for b in layout.bars if b.kind == kind):
            offset, h = geometry[kind]
            x1 = x(bar.start)
            w = max(2.0, round(x(layout.end_of(bar)) - x1, 1))
            fill, stroke = _COLORS["error"] if bar.error and kind != "run" else _COLORS[kind]
            if bar.error and kind == "run":
                stroke = _COLORS["error"][0]
            title = "\n".join([*bar.detail, *([f"error: {bar.error}"] if bar.error else [])])
            out.append(
                f"<rect x='{x1}' y='{y(bar.lane) + offset}' width='{w}' height='{h}' rx='2' "
                f"fill='{fill}' stroke='{stroke}'><title>{_esc(title)}</title></rect>"
            )
    # markers
    for marker in layout.markers:
        mx = x(marker.t)
        if marker.kind == "round":
            out.append(
                f"<line x1='{mx}' y1='{axis_h}' x2='{mx}' y2='{height - 6}' "
                f"stroke='{_COLORS['round']}' "
                f"stroke-dasharray='4 3'><title>{_esc(marker.label)}</title></line>"
                f"<text x='{mx + 2}' y='{height - 8}' fill='{_COLORS['round']}' font-size='9'>"
                f"{_esc(marker.label.replace('round ', 'R'))}</text>"
            )
        elif marker.kind == "delegate":
            y1 = y(marker.lane) + lane_h / 2
            y2 = y(marker.to) + lane_h / 2
            color = _COLORS["delegate"]
            tip = y2 - 5 if y2 > y1 else y2 + 5
            out.append(
                f"<g><title>{_esc(marker.label + ': ' + marker.detail)}</title>"
                f"<line x1='{mx}' y1='{y1}' x2='{mx}' y2='{y2}' stroke='{color}' "
                "stroke-width='1.5'/>"
                f"<polygon points='{mx - 4},{tip} {mx + 4},{tip} {mx},{y2}' fill='{color}'/></g>"
            )
        elif marker.kind == "vote":
            vy = y(marker.lane) + lane_h / 2
            out.append(
                f"<g><title>{_esc(f'{marker.lane} voted {marker.label}: {marker.detail}')}</title>"
                f"<circle cx='{mx}' cy='{vy}' r='7' fill='{_COLORS['vote']}'/>"
                f"<text x='{mx}' y='{vy + 4}' fill='#fff' text-anchor='middle' font-size='9'>"
                f"{_esc(marker.label[:2])}</text></g>"
            )
    out.append("</svg>")
    return "".join(out)
