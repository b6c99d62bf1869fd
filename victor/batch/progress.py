"""A batch's progress where the user is: a bar in the notebook cell, a line on a terminal's
stderr, a summary at the end.

The counting is always done (the summary comes from it); the showing is throttled like
``StreamView``'s (victor/notebook/display.py): one output updated in place at most every
``interval`` seconds however fast items finish, the first update one interval in (a batch
shorter than that sends one message, its final form), and always one final render. The bar
is an SVG image, so saved and untrusted notebooks show it too. A terminal gets a live line
when stderr is a TTY, and the summary line either way. Other lines meant for stderr while
that line is live (victor's warnings, the CLI's notices) go above it: ``write_line``.
"""

from __future__ import annotations

import base64
import html
import logging
import sys
import threading
from time import perf_counter
from typing import Any

from .._sync import call_in_main
from ..notebook.display import LiveOutput, Throttle, detect_target
from .items import BatchResult
from .results import BatchSummary

__all__ = ["Progress", "render_summary", "svg_image", "write_line"]

#: Seconds between two live updates of the bar.
UPDATE_INTERVAL = 0.25

_BAR_WIDTH = 24  # characters of the text bar


class Progress:
    """Counts one batch run and shows it (``show=False``: counts only).

    Called on the event loop running the batch; display messages go to the thread that
    awaits it (``call_in_main``), as ``StreamView``'s do.
    """

    def __init__(
        self, name: str, total: int, *, show: bool | None = None, interval: float = UPDATE_INTERVAL
    ) -> None:
        self.summary = BatchSummary(name=name, total=total)
        self.running = 0
        #: Tokens of the items in flight, by index, as their model responses arrive.
        self.live: dict[int, int] = {}
        self.show = True if show is None else show
        self.target = detect_target()
        self.tty = _isatty(sys.stderr)
        self.interval = interval
        self._started = perf_counter()
        self._throttle = Throttle(self._push, interval)
        self._output = LiveOutput()
        self._above: _AboveBar | None = None

    @property
    def updates_sent(self) -> int:
        """Display messages sent: first display plus updates (for tests and benchmarks)."""
        return self._output.updates_sent

    # -- counting ----------------------------------------------------------------------

    def begin(self, resumed: list[BatchResult]) -> None:
        """Start the clock; ``resumed`` items count as done already."""
        summary = self.summary
        for result in resumed:
            summary.resumed += 1
            summary.ok += 1
            summary.usage += result.usage
        self._started = perf_counter()
        if self.show and self._live_target():
            # The first update comes one interval in: a short batch sends only its final form.
            self._throttle.start()
            victor_logger = logging.getLogger("victor")
            if self.target != "display" and not victor_logger.hasHandlers():
                # Logging's last resort would write warnings into the live line.
                self._above = _AboveBar(logging.WARNING)
                victor_logger.addHandler(self._above)

    def started(self, index: int) -> None:
        self.running += 1
        self.live[index] = 0
        self._changed()

    def tokens(self, index: int, usage: dict[str, int]) -> None:
        """A model response of the item at ``index`` arrived with this usage."""
        if index in self.live:
            self.live[index] += int(usage.get("input_tokens", 0)) + int(
                usage.get("output_tokens", 0)
            )
            self._changed()

    def finished(self, result: BatchResult) -> None:
        summary = self.summary
        if self.live.pop(result.index, None) is not None:
            self.running -= 1
        if result.ok:
            summary.ok += 1
        else:
            summary.failed += 1
            summary.errors[result.error_type or "Error"] += 1
        summary.usage += result.usage
        self._changed()

    def end(self, status: str = "done") -> BatchSummary:
        """Stop the clock, show the final form, and return the summary."""
        summary = self.summary
        summary.status = status
        summary.seconds = perf_counter() - self._started
        self._throttle.cancel()
        if self._above is not None:
            logging.getLogger("victor").removeHandler(self._above)
            self._above = None
        if self.show:
            if self.target == "display":
                self._output.post(render_summary(summary))
            else:
                line = str(summary)
                call_in_main(lambda: _draw(None, f"\r{line}\x1b[K\n" if self.tty else f"{line}\n"))
        return summary

    @property
    def token_count(self) -> int:
        return self.summary.usage.total_tokens + sum(self.live.values())

    # -- showing -----------------------------------------------------------------------

    def line(self) -> str:
        """The live state in one line of text."""
        summary = self.summary
        done, total = summary.done, summary.total
        elapsed = perf_counter() - self._started
        ran = done - summary.resumed
        parts = [f"{summary.name}: {_text_bar(summary)} {done}/{total}"]
        parts.append(f"{summary.failed} failed")
        parts.append(f"{self.running} running")
        if ran and elapsed > 0:
            rate = ran / elapsed
            parts.append(f"{rate:.1f} items/s")
            parts.append(f"{_clock((total - done) / rate)} left")
        parts.append(f"{self.token_count:,} tokens")
        return " · ".join(parts)

    def _live_target(self) -> bool:
        return self.target == "display" or self.tty

    def _changed(self) -> None:
        if self.show and self._live_target():
            self._throttle.poke()

    def _push(self) -> None:
        line = self.line()
        if self.target == "display":
            self._output.post({"text/plain": line, "text/html": _html(self.summary, line)})
        else:
            call_in_main(lambda: _draw(line, f"\r{line}\x1b[K"))


def render_summary(summary: BatchSummary) -> dict[str, str]:
    """The static form of a finished batch: the full bar and the summary line."""
    line = str(summary)
    return {"text/plain": line, "text/html": _html(summary, line)}


def _html(summary: BatchSummary, line: str) -> str:
    return (
        "<div style='font-family:monospace;font-size:12px'>"
        f"{_bar_image(summary)}<br>{html.escape(line)}</div>"
    )


def _bar_image(summary: BatchSummary, width: int = 320, height: int = 12) -> str:
    """The bar: green for done, red for failed, grey for what is left."""
    total = max(summary.total, 1)
    ok_w = width * summary.ok / total
    failed_w = width * summary.failed / total
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
        f"<rect width='{width}' height='{height}' rx='3' fill='#e5e7eb'/>"
        f"<rect width='{ok_w:.1f}' height='{height}' rx='3' fill='#16a34a'/>"
        f"<rect x='{ok_w:.1f}' width='{failed_w:.1f}' height='{height}' fill='#dc2626'/>"
        "</svg>"
    )
    return svg_image(svg, f"{summary.done} of {summary.total} done, {summary.failed} failed")


def svg_image(svg: str, alt: str) -> str:
    """An SVG as an ``<img>``: front ends strip inline ``<svg>`` from untrusted HTML, so a
    saved or exported notebook would lose it (as ``TeamTimeline`` found)."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f"<img src='data:image/svg+xml;base64,{data}' alt='{html.escape(alt, quote=True)}'>"


def _text_bar(summary: BatchSummary) -> str:
    filled = round(_BAR_WIDTH * summary.done / max(summary.total, 1))
    return "█" * filled + "░" * (_BAR_WIDTH - filled)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0) + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _write(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


#: The live line on the terminal (written without its newline), or None.
_live_line: str | None = None
_terminal_lock = threading.Lock()


def _draw(live: str | None, text: str) -> None:
    """Write ``text`` (a live line, or with ``live=None`` the final one) to stderr."""
    global _live_line
    with _terminal_lock:
        _live_line = live
        _write(text)


def write_line(text: str) -> None:
    """Write a line to stderr: above a batch's live line, if one is on the terminal (it is
    written again below), else as it is."""
    with _terminal_lock:
        if _live_line is None:
            _write(f"{text}\n")
        else:
            _write(f"\r{text}\x1b[K\n{_live_line}")


class _AboveBar(logging.Handler):
    """victor's warnings, written above the live line while nothing else shows them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the batch
            self.handleError(record)
