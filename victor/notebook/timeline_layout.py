"""A team run's timeline as data, built from its events alone: one lane per agent; bars
for member runs, model calls and tool calls; markers for delegations, rounds and votes.

``deterministic`` places everything by event order instead of wall-clock time (a logical
clock), so output built from scripted runs does not change between executions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.events import Event

__all__ = ["Bar", "Layout", "Marker", "plural", "short"]


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
    #: The call's own text, whole (the widget's side panel): prompt, answer, arguments,
    #: result, each as the events carry it.
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Marker:
    """A point event: a ``delegate`` (lane -> ``to``), a ``round`` or a ``vote``."""

    kind: str
    t: float
    lane: str | None = None
    to: str | None = None
    label: str = ""
    detail: str = ""


def short(text: Any, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class Layout:
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
        last_call: dict[str, Bar] = {}  # a run's latest model call: it gave the answer
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
                        short(data.get("task", "")),
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
                        detail=short(data.get("reason", "")),
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
                    detail=[f"{lane}: {short(data.get('task', ''))}"],
                    fields={"prompt": data.get("task", "")},
                )
                self.bars.append(bar)
            elif kind in ("agent.complete", "agent.error"):
                bar = runs.get(event.run_id or "")
                if bar is not None:
                    bar.end = t
                    if kind == "agent.complete":
                        bar.result = data.get("result", "")
                        bar.detail.append(f"answer: {short(bar.result)}")
                        bar.fields["answer"] = bar.result
                        if event.run_id in last_call:
                            last_call[event.run_id].fields["answer"] = bar.result
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
                run = runs.get(event.run_id or "")
                if run is not None:  # the events carry the run's task, not each request
                    bar.fields["prompt"] = run.fields.get("prompt", "")
                open_calls[event.run_id or ""] = last_call[event.run_id or ""] = bar
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
                        f"error: {short(data.get('error'))}"
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
                    f"arguments: {short(data.get('arguments', {}), 80)}",
                ]
                bar.fields["arguments"] = data.get("arguments", {})
                if kind == "tool.error":
                    bar.error = str(data.get("error"))
                else:
                    bar.detail.append(f"result: {short(data.get('result', ''), 80)}")
                    bar.fields["result"] = data.get("result", "")
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
            f"{plural(runs, 'member run')} · {length}"
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
