"""The team timeline as an anywidget: the front end is ``widgets/timeline.js`` (shipped in the
wheel as ``victor/widgets/timeline.js``), the data is the ``Layout`` the static chart is drawn
from (timeline_layout.py), turned into plain dicts here.

Imported only when a timeline is shown where widgets work: ``import victor`` loads neither
anywidget nor ipywidgets.

Each bar carries its detail (prompt, answer, arguments, result, error), every field cut to
``DETAIL_LIMIT`` characters and scrubbed of secrets. Sending it with the bar, rather than on
request, is what lets a click open it while a ``run_sync`` or ``%%victor`` cell still blocks
the kernel's main thread (no comm message is read then) and in a reopened notebook whose
widget state was saved; a 1,000-call run stays well under a megabyte (bench/timeline.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .._secrets import scrub
from ..errors import ConfigurationError
from .timeline_layout import Bar, Layout, Marker

__all__ = ["DETAIL_LIMIT", "TimelineWidget", "bar_dicts", "esm_path"]

#: Longest text of one detail field a bar carries to the front end.
DETAIL_LIMIT = 2000
_PACKAGE = Path(__file__).resolve().parents[1]


def esm_path() -> Path:
    """Where ``timeline.js`` is: inside the installed package (the wheel puts it there), or
    in the source checkout's ``widgets/`` folder."""
    for path in (_PACKAGE / "widgets" / "timeline.js", _PACKAGE.parent / "widgets" / "timeline.js"):
        if path.is_file():
            return path
    raise ConfigurationError(
        f"the timeline widget's front end (widgets/timeline.js) is missing from {_PACKAGE}: "
        "reinstall victor-ai"
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, indent=1, default=str)
        except (TypeError, ValueError):
            value = str(value)
    value = scrub(value)
    if len(value) > DETAIL_LIMIT:
        value = value[:DETAIL_LIMIT] + f"… ({len(value) - DETAIL_LIMIT} more characters)"
    return value


def _bar(layout: Layout, index: int, bar: Bar) -> dict[str, Any]:
    detail = {key: _text(value) for key, value in bar.fields.items() if value not in ("", None)}
    if bar.error:
        detail["error"] = _text(bar.error)
    detail["info"] = _text("\n".join(bar.detail))
    return {
        "id": f"b{index}",
        "lane": bar.lane,
        "kind": bar.kind,
        "start": bar.start,
        "end": bar.end,
        "tokens": bar.tokens,
        "label": bar.label,
        "error": _text(bar.error) if bar.error else None,
        "detail": detail,
    }


def _marker(index: int, marker: Marker, lanes: list[str]) -> dict[str, Any]:
    lane = marker.lane if marker.lane in lanes else (lanes[0] if lanes else "team")
    text = marker.label + (f": {marker.detail}" if marker.detail else "")
    return {
        "id": f"m{index}",
        "lane": lane,
        "kind": "step",
        "start": marker.t,
        "end": marker.t,
        "tokens": 0,
        "label": marker.label,
        "error": None,
        "detail": {"info": _text(text)},
    }


def bar_dicts(layout: Layout) -> list[dict[str, Any]]:
    """Every bar and marker of ``layout`` as the front end draws it, with a stable id."""
    bars = [_bar(layout, i, bar) for i, bar in enumerate(layout.bars)]
    return bars + [_marker(i, m, layout.lanes) for i, m in enumerate(layout.markers)]


class TimelineWidget(anywidget.AnyWidget):
    """Swimlanes you can hover, open, zoom and filter; live runs arrive as batches of the
    bars that are new or changed (``push``), the whole state once at the end (``sync``)."""

    _esm = traitlets.Any().tag(sync=True)
    lanes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    bars = traitlets.List(traitlets.Dict()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    deterministic = traitlets.Bool(False).tag(sync=True)
    #: The number of the last batch sent (the front end shows it as data-seq).
    seq = traitlets.Int(0).tag(sync=True)

    def __init__(self, layout: Layout) -> None:
        bars = bar_dicts(layout)
        super().__init__(
            _esm=esm_path().read_text(encoding="utf-8"),
            lanes=list(layout.lanes),
            bars=bars,
            title=layout.title(),
            deterministic=layout.deterministic,
        )
        self._sent = {bar["id"]: bar for bar in bars}
        # What the front end has now: traits are only set by ``sync`` (setting one sends it
        # whole, and the front end would reload from the traits, dropping the batches).
        self._lanes, self._title = list(layout.lanes), self.title
        #: Messages and bytes of live batches sent so far (bench/timeline.py reads them).
        self._seq = 0
        self.messages = 0
        self.bytes = 0
        self.on_msg(self._on_front_end)

    def _on_front_end(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """The front end missed a batch (one came before its model existed): send what it
        should have, once, as a reset. Read whenever the kernel reads comm messages."""
        if isinstance(content, dict) and content.get("type") == "resync":
            bars = list(self._sent.values())
            self._send_batch(bars, reset=True, lanes=self._lanes, title=self._title)

    def _send_batch(self, bars: list[dict[str, Any]], reset: bool, **changed: Any) -> None:
        message: dict[str, Any] = {"type": "bars", "seq": self._seq, "bars": bars, **changed}
        if reset:
            message["reset"] = True
        self.send(message)
        self.messages += 1
        self.bytes += len(json.dumps(message))

    def push(self, layout: Layout) -> None:
        """Send the bars that are new or changed since the last batch (one message)."""
        bars = bar_dicts(layout)
        ids = {bar["id"] for bar in bars}
        reset = not set(self._sent) <= ids  # a new run replaced the old one
        if reset:
            self._sent = {}
        changed = [bar for bar in bars if self._sent.get(bar["id"]) != bar]
        lanes_changed = list(layout.lanes) != self._lanes
        title = layout.title()
        if not (changed or lanes_changed or reset or title != self._title):
            return
        self._seq += 1
        extra: dict[str, Any] = {}
        if lanes_changed:
            extra["lanes"] = self._lanes = list(layout.lanes)
        if title != self._title:
            extra["title"] = self._title = title
        self._sent.update((bar["id"], bar) for bar in changed)
        self._send_batch(changed, reset, **extra)

    def sync(self, layout: Layout) -> None:
        """Sync the whole state (the run ended): what a saved widget state holds."""
        bars = bar_dicts(layout)
        self._sent = {bar["id"]: bar for bar in bars}
        self._lanes, self._title = list(layout.lanes), layout.title()
        with self.hold_sync():
            self.lanes = list(layout.lanes)
            self.bars = bars
            self.title = self._title
            self.seq = self._seq
        self.messages += 1
        self.bytes += len(json.dumps({"lanes": self.lanes, "bars": bars, "title": self.title}))
