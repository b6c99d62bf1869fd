"""The actor of the Ray backend: one process that runs many items of a batch at a time and
streams their events and results back to the driver (ray_backend.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..core.events import EventBus, EventScope
from .items import BatchResult, Work, attribute, run_item

__all__ = ["BatchActor", "FLUSH_INTERVAL", "FORWARDED"]

#: Seconds an item's events wait in the actor before they are sent to the driver
#: (an item that ends sooner sends its events once, with its result).
FLUSH_INTERVAL = 0.2
#: Events an actor forwards: everything but agent.token (one message per token would
#: cost more than it tells; the answer arrives with the result).
FORWARDED = (
    "agent.start",
    "agent.complete",
    "agent.error",
    "provider.*",
    "tool.*",
    "team.*",
    "workflow.*",
    "compose.*",
)


class BatchActor:
    """One Ray actor process: the batch's agent, unpickled once, running many items at a
    time as tasks of its event loop (``ray.remote`` is applied by ``RayBackend``).

    The driver sends items with ``submit`` and reads one long ``results`` stream: the
    events and results of whatever finished since the last message, sent as soon as
    something finished (so messages coalesce under load) and at least every
    ``FLUSH_INTERVAL`` seconds while events wait.
    """

    def __init__(self, blob: bytes, settings: Mapping[str, Any]) -> None:
        import pickle

        self.call = pickle.loads(blob)
        self.settings = dict(settings)
        bus = EventBus.default()
        self.scope = EventScope(
            bus, run_id=settings["run_id"], agent=settings["name"], parent=settings["parent"]
        )
        self.running: set[asyncio.Future[BatchResult]] = set()
        self.done: list[BatchResult] = []
        #: Events of the items, tagged with the item's index, waiting to be sent.
        self.outbox: list[tuple[Any, ...]] = []
        self._wake: asyncio.Event | None = None
        for pattern in FORWARDED:
            bus.subscribe(pattern, self._observe)

    def _observe(self, event: Any) -> None:
        context = attribute(self, event)
        if context is not None:
            self.outbox.append(
                (context.index, event.type, event.data, event.run_id, event.agent,
                 event.parent, event.timestamp, event.id)
            )  # fmt: skip

    def _wake_up(self) -> asyncio.Event:
        if self._wake is None:  # made on the actor's loop, on first use
            self._wake = asyncio.Event()
        return self._wake

    async def submit(self, works: list[Work]) -> None:
        """Start running ``works``; their results come through ``results``."""
        for work in works:
            task = asyncio.ensure_future(self._item(work))
            self.running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[BatchResult]) -> None:
        self.running.discard(task)
        if not task.cancelled():  # run_item returns every failure as a result
            self.done.append(task.result())
            self._wake_up().set()

    async def results(self) -> AsyncIterator[tuple[list[Any], list[BatchResult]]]:
        """Yield ``(events, results)`` as items finish, for as long as the batch runs."""
        wake = self._wake_up()
        while True:
            try:
                await asyncio.wait_for(wake.wait(), FLUSH_INTERVAL)
            except asyncio.TimeoutError:
                pass
            wake.clear()
            if self.done or self.outbox:
                events, self.outbox = self.outbox, []
                done, self.done = self.done, []
                yield events, done

    async def _item(self, work: Work) -> BatchResult:
        from ..telemetry import attached

        settings = self.settings
        with attached(settings["carrier"]):  # code here that traces itself joins the trace
            return await run_item(
                self.call,
                work,
                owner=self,
                run_scope=self.scope,
                retries=settings["retries"],
                timeout=settings["timeout"],
                retry_delay=settings["retry_delay"],
            )

    async def stop(self) -> None:
        """Cancel every running item and wait until they have unwound."""
        running = list(self.running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def pid(self) -> int:
        return os.getpid()
