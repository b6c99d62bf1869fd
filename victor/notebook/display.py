"""Live output while work runs: a display updated in place, at most ~10 times a second.

``StreamView`` (an agent's answer), ``TeamTimeline`` (a team's swimlanes) and a batch's
``Progress`` bar all show changing state the same way, with these two parts:

- ``Throttle`` decides *when*: however often the state changes, its action runs at most
  once per interval (a change inside the interval is shown when the interval ends, with
  every other change made meanwhile).
- ``LiveOutput`` decides *where*: ``display(..., display_id=True)`` once, then in-place
  updates, always from the main thread (``call_in_main``: output sent from ``run_sync``'s
  loop thread could land in the wrong cell). The newest bundle wins: bundles the main
  thread has not shown yet are replaced, so a busy main thread never falls behind.

Plain display updates need no JavaScript, so the output works in every front end and the
saved notebook holds the last form.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any, Literal

from .._sync import call_in_main

__all__ = ["UPDATE_INTERVAL", "Throttle", "LiveOutput", "detect_target"]

#: Seconds between two live updates: at most ~10 display messages a second.
UPDATE_INTERVAL = 0.1


class Throttle:
    """Runs ``action`` at most once per ``interval`` seconds, on the running event loop."""

    def __init__(self, action: Callable[[], None], interval: float = UPDATE_INTERVAL) -> None:
        self.action = action
        self.interval = interval
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start the clock; the first run comes one interval in, so work shorter than that
        sends only its final form, and work of T seconds at most T / interval + 1."""
        self.cancel()
        self._last = perf_counter()
        self._timer = asyncio.get_running_loop().call_later(self.interval, self.run)

    def poke(self) -> None:
        """The state changed: run now if the last run is old enough, else once the interval
        ends. Outside an event loop (no timer to wait on), run now."""
        if self._timer is not None:
            return  # a run is already due: it will show this change too (the hot path)
        wait = self.interval - (perf_counter() - self._last)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            wait = 0
        if wait <= 0:
            self.run()
        else:
            self._timer = loop.call_later(wait, self.run)

    def run(self) -> None:
        """Run the action now; a pending run is dropped (it would run twice)."""
        self.cancel()
        self._last = perf_counter()
        self.action()

    def cancel(self) -> None:
        """Drop the pending run, if any (the work ended: its final form comes instead)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class LiveOutput:
    """Display outputs updated in place from any thread; the main thread shows them.

    ``post(bundle)`` shows the bundle: the first one as a new output, later ones as updates
    of every output shown so far. ``show(bundle)`` adds one more output that later posts
    update too (a view displayed again in another cell follows the same run).
    """

    def __init__(self) -> None:
        #: Display messages sent: every new output and every update (for tests, benchmarks).
        self.updates_sent = 0
        #: Whether an output was asked for (it may still be on its way to the page).
        self.shown = False
        self._handles: list[Any] = []
        self._pending: dict[str, str] | None = None
        self._lock = threading.Lock()

    def post(self, bundle: dict[str, str]) -> None:
        """Hand the newest bundle to the main thread; bundles not shown yet are replaced."""
        self.shown = True
        with self._lock:
            scheduled = self._pending is not None
            self._pending = bundle
        if not scheduled:
            call_in_main(self._flush)

    def show(self, bundle: dict[str, str]) -> None:
        """Display one more output, now or as soon as the main thread runs (not throttled)."""
        self.shown = True
        call_in_main(lambda: self._display(bundle))

    def _display(self, bundle: dict[str, str]) -> None:
        from IPython.display import display

        self._handles.append(display(bundle, raw=True, display_id=True))
        self.updates_sent += 1

    def _flush(self) -> None:
        """On the main thread: show the newest bundle (a first display, then updates)."""
        with self._lock:
            bundle, self._pending = self._pending, None
        if bundle is None:
            return
        if not self._handles:
            self._display(bundle)
            return
        for handle in self._handles:
            handle.update(bundle, raw=True)
            self.updates_sent += 1


def detect_target() -> Literal["display", "print"]:
    """``display`` under an IPython shell that renders rich output (a kernel), else ``print``.

    IPython is never imported here: if it is not loaded, there is no shell.
    """
    ipython_module = sys.modules.get("IPython")
    shell = ipython_module.get_ipython() if ipython_module is not None else None
    if shell is None or type(shell).__name__ == "TerminalInteractiveShell":
        return "print"
    return "display"
