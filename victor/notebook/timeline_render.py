"""Drawing a timeline's ``Layout``: the text summary (an ASCII strip per lane), the SVG chart
(hover titles, no script) and the HTML (the chart as an image, a legend, a table of calls).
"""

from __future__ import annotations

import base64
import html
from typing import Any

from .timeline_layout import Layout, plural, short

__all__ = ["render_html", "render_summary", "render_svg"]

COLORS = {
    "run": ("#e9eef6", "#9fb3d1"),
    "model": ("#4c78a8", "#35587f"),
    "tool": ("#f58518", "#b8620f"),
    "error": ("#d62728", "#8c1a1b"),
    "delegate": "#54a24b",
    "round": "#888888",
    "vote": "#b279a2",
}


def render_summary(layout: Layout) -> str:
    """A text summary: one line per lane with an ASCII strip of its activity."""
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
            f"{plural(len(models), 'model call')}, {plural(len(tools), 'tool call')}, "
            f"{sum(b.tokens for b in models)} tokens"
            + (f", {plural(errors, 'error')}" if errors else "")
        )
        lines.append(f"  {lane[:name_width]:<{name_width}} |{''.join(strip)}| {stats}")
    kinds = [m.kind for m in layout.markers]
    lines.append(
        f"  markers: {plural(kinds.count('delegate'), 'delegation')}, "
        f"{plural(kinds.count('round'), 'round')}, {plural(kinds.count('vote'), 'vote')}"
        "   (- run  = model call  # tool call  ! error)"
    )
    return "\n".join(lines)


def render_html(layout: Layout, width: int) -> str:
    """Header, SVG, legend and a collapsible table of every call."""
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
            ("member run", COLORS["run"][1]),
            ("model call", COLORS["model"][0]),
            ("tool call", COLORS["tool"][0]),
            ("error", COLORS["error"][0]),
            ("delegation", COLORS["delegate"]),
            ("round", COLORS["round"]),
            ("vote", COLORS["vote"]),
        )
    )
    return (
        "<div class='victor-timeline' style='font-family:system-ui,sans-serif;font-size:12px'>"
        f"<div style='font-weight:600;margin-bottom:4px'>{_esc(layout.title())}</div>"
        f"{_svg_image(render_svg(layout, width), layout.title())}"
        f"<div style='margin:4px 0'>{legend}</div>"
        f"<details><summary>{plural(len(rows), 'call')}</summary>"
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


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_svg(layout: Layout, width: int) -> str:
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
            f"<text x='6' y='{top + lane_h / 2 + 4}' fill='#333'>{_esc(short(lane, 26))}</text>"
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
            fill, stroke = COLORS["error"] if bar.error and kind != "run" else COLORS[kind]
            if bar.error and kind == "run":
                stroke = COLORS["error"][0]
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
                f"stroke='{COLORS['round']}' "
                f"stroke-dasharray='4 3'><title>{_esc(marker.label)}</title></line>"
                f"<text x='{mx + 2}' y='{height - 8}' fill='{COLORS['round']}' font-size='9'>"
                f"{_esc(marker.label.replace('round ', 'R'))}</text>"
            )
        elif marker.kind == "delegate":
            y1 = y(marker.lane) + lane_h / 2
            y2 = y(marker.to) + lane_h / 2
            color = COLORS["delegate"]
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
                f"<circle cx='{mx}' cy='{vy}' r='7' fill='{COLORS['vote']}'/>"
                f"<text x='{mx}' y='{vy + 4}' fill='#fff' text-anchor='middle' font-size='9'>"
                f"{_esc(marker.label[:2])}</text></g>"
            )
    out.append("</svg>")
    return "".join(out)
