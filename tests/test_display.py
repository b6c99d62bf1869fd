"""The throttled display that StreamView, TeamTimeline and a batch's progress share."""

from __future__ import annotations

import asyncio
import time

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from victor import run_sync
from victor.notebook.display import LiveOutput, Throttle


async def test_a_throttle_runs_at_most_once_per_interval():
    runs = []
    throttle = Throttle(lambda: runs.append(time.perf_counter()), interval=0.05)
    started = time.perf_counter()
    throttle.start()
    await asyncio.sleep(0.02)
    assert runs == []  # the first run comes one interval in
    for _ in range(100):
        throttle.poke()
        await asyncio.sleep(0.003)
    throttle.cancel()
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.1)  # a cancelled run does not come later
    assert 2 <= len(runs) <= seconds / 0.05 + 1
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    assert min(gaps) >= 0.05 * 0.9


def test_outside_an_event_loop_a_throttle_runs_at_once():
    runs = []
    throttle = Throttle(lambda: runs.append(1), interval=10)
    throttle.poke()
    assert runs == [1]


def test_the_newest_bundle_wins_when_the_main_thread_lags():
    InteractiveShell.instance()
    output = LiveOutput()

    async def post_many():
        # From run_sync's loop thread: the main thread shows them when it gets to them.
        for n in range(50):
            output.post({"text/plain": str(n)})

    with capture_output() as captured:
        run_sync(post_many())
    shown = [o.data["text/plain"] for o in captured.outputs]
    assert shown[-1] == "49" and len(shown) == output.updates_sent
    assert len(shown) < 50  # posts the main thread had not shown were replaced
