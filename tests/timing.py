"""Time in tests that must hold on a loaded CI machine: how long a stall lasts, how long
"promptly" may take, and a rendezvous that proves work runs concurrently without a stopwatch.

A test asserts a contract, not a schedule: that something ends well before a stall would
have ended it (``PROMPTLY`` against ``STALL``), never that it took less than a fraction of a
second. Benchmarks live in ``bench/``.
"""

from __future__ import annotations

import asyncio

STALL = 30.0
"""How long a test server or a fake model stalls. A wait that reaches it is a hang. It is
below pytest's 60 s timeout, so a hang fails one test, not the run."""

PROMPTLY = 10.0
"""How long something that takes milliseconds on an idle machine may take on a loaded one.
Well under ``STALL``, so passing still proves the stall was cut short."""


class Rendezvous:
    """``n`` parties each ``await meet()``; nobody leaves before all have arrived.

    Work that runs concurrently meets at once; work that runs one after another leaves the
    first party waiting alone, which fails after ``PROMPTLY`` seconds. Concurrency is
    proven by the meeting, whatever the machine's load.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrived = 0
        self._everyone = asyncio.Event()

    async def meet(self) -> None:
        self.arrived += 1
        if self.arrived >= self.n:
            self._everyone.set()
        try:
            await asyncio.wait_for(self._everyone.wait(), PROMPTLY)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"only {self.arrived} of {self.n} were running at once after {PROMPTLY:.0f} s: "
                f"they do not run concurrently"
            ) from None
