"""The Ray backend of ``batch`` (extra ``ray``): items run in async actors on a Ray cluster.

    import ray
    ray.init(address="auto")          # on a cluster node; or nothing, for this machine
    results = await batch(items, agent, backend="ray", workers=8, concurrency=64)

Each of ``workers`` actors is one process that unpickles the agent (team, function) once
and runs many items as tasks of its event loop, so a local model is loaded once per actor,
not once per item. The driver keeps ``concurrency`` items in flight, handing the next ones
to the least busy actor as results come back (one ``submit`` call per actor and batch of
items), and reads one Ray streaming generator per actor: the events (agent, provider, tool
and team events; not tokens) and results of whatever finished since its last message, so
messages coalesce under load, and at least every ``FLUSH_INTERVAL`` seconds while events
wait. The events are emitted on the driver's bus, so the progress bar, timelines and
tracing work as with the local backend. Cancelling the batch cancels the items in the
actors (their streams are closed), then the actors are stopped; a finished batch stops
them too. An actor that dies fails its items in flight; the others take the rest.

API keys are not pickled with the agent: a key given as ``api_key=`` and the provider
variables set on the driver (``ANTHROPIC_API_KEY``, ``OPENAI_BASE_URL``, ...) reach the
actors as environment variables of their runtime environment. Anyone who can read the
cluster's job and actor metadata (dashboard, state API) can read those; where that
matters, set the keys in the cluster's own environment and pass ``forward_env=False`` in
``ray_options``.

This module is the driver's side; the actor is in ray_actor.py, and how an agent is sent
to it in ray_shipping.py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from .._util import needs_extra
from ..core.events import EventBus
from .core import Batch, ItemListener, _all_or_cancel
from .items import BatchResult, Work
from .ray_actor import BatchActor
from .ray_shipping import provider_environment, ship

# BatchActor and ship live in ray_actor.py and ray_shipping.py; importable here too.
__all__ = ["RayBackend", "ship", "BatchActor"]

#: Seconds cancelled items get to unwind in their actors before the actors are stopped.
CANCEL_GRACE = 5.0


def _ray() -> Any:
    with needs_extra("ray", 'backend="ray"', what="the ray extra"):
        import ray
    return ray


class RayBackend:
    """Runs a batch's pending items in Ray actors (see the module docstring)."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        #: The actors of the run in progress (handles; empty before and after).
        self.actors: list[Any] = []

    async def run(self, pending: list[Work], listener: ItemListener) -> None:
        if not pending:
            return
        ray = _ray()
        batch = self.batch
        if not ray.is_initialized():
            ray.init()  # RAY_ADDRESS names a cluster; else this machine
        options = dict(batch.ray_options)
        forward_env = options.pop("forward_env", True)
        blob, keys = ship(batch._call)
        env = {**(provider_environment() if forward_env else {}), **keys}
        workers = batch.workers or _cluster_cpus(ray)
        workers = max(1, min(workers, len(pending), batch.concurrency))
        runtime_env = dict(options.pop("runtime_env", None) or {})
        if env:  # only then: an actor with its own environment takes seconds longer to start
            runtime_env["env_vars"] = {**env, **(runtime_env.get("env_vars") or {})}
        actor_options = {
            "num_cpus": 1,
            # Items run as tasks of the actor's loop; calls are few: submit, results, stop.
            "max_concurrency": 8,
            **options,
            **({"runtime_env": runtime_env} if runtime_env else {}),
        }
        from ..telemetry import trace_carrier

        carrier = trace_carrier(batch.run_id)
        assert batch.scope is not None
        settings = {
            "retries": batch.retries,
            "timeout": batch.timeout,
            "retry_delay": batch.retry_delay,
            "run_id": batch.scope.run_id,
            "name": batch.scope.agent,
            "parent": batch.scope.parent,
            "carrier": carrier,
        }
        target = ray.put(blob)
        actor_class = ray.remote(BatchActor)
        self.actors = actors = [
            actor_class.options(**actor_options).remote(target, settings) for _ in range(workers)
        ]
        dispatch = _Dispatch(actors, pending, batch.concurrency, listener)
        finished = False
        try:
            dispatch.top_up()
            await _all_or_cancel([dispatch.follow(i) for i in range(workers)])
            dispatch.fail_the_rest()
            finished = True
        finally:
            await self._stop(ray, actors, graceful=not finished)
            self.actors = []

    async def _stop(self, ray: Any, actors: list[Any], *, graceful: bool) -> None:
        """Stop the actors; after a cancellation, first let their items unwind."""
        if graceful and actors:
            stops = [asyncio.ensure_future(_awaited(actor.stop.remote())) for actor in actors]
            await asyncio.wait(stops, timeout=CANCEL_GRACE)
            for stop in stops:
                stop.cancel()
        for actor in actors:
            ray.kill(actor, no_restart=True)


class _Dispatch:
    """The driver's side of a Ray batch: which actor runs which item, topped up to
    ``concurrency`` items in flight as results come back, the least busy actor first."""

    def __init__(
        self, actors: list[Any], pending: list[Work], concurrency: int, listener: ItemListener
    ) -> None:
        self.actors = actors
        self.queue = deque(pending)
        self.concurrency = concurrency
        self.listener = listener
        #: Items in flight on each actor, by index; None once the actor is gone.
        self.assigned: list[dict[int, Work] | None] = [{} for _ in actors]
        self.in_flight = 0
        self.failure = "no Ray actor was left to run it"
        #: Set when no item is in flight and none is left to hand out.
        self.done = asyncio.Event()

    def top_up(self) -> None:
        """Hand out items until ``concurrency`` are in flight: one ``submit`` per actor."""
        batches: dict[int, list[Work]] = {}
        while self.queue and self.in_flight < self.concurrency:
            live = [i for i, a in enumerate(self.assigned) if a is not None]
            if not live:
                return
            slot = min(live, key=lambda i: len(self.assigned[i] or ()))
            work = self.queue.popleft()
            self.assigned[slot][work.index] = work  # type: ignore[index]
            self.in_flight += 1
            self.listener.started(work.index)
            batches.setdefault(slot, []).append(work)
        for slot, works in batches.items():
            self.actors[slot].submit.remote(works)

    async def follow(self, slot: int) -> None:
        """Relay actor ``slot``'s events and results until the batch is done or the actor
        is gone."""
        ray = _ray()
        stream = self.actors[slot].results.remote()
        bus = EventBus.default()
        listener = self.listener
        try:
            while not self.done.is_set():
                message = asyncio.ensure_future(_next(stream))
                finished = asyncio.ensure_future(self.done.wait())
                try:
                    await asyncio.wait({message, finished}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    finished.cancel()
                    if not message.done():
                        message.cancel()
                if not message.done() or message.cancelled():
                    break  # every item is done: nothing more will come
                events, results = message.result()
                for index, type, data, run_id, agent, parent, timestamp, event_id in events:
                    bus.emit(
                        type, data, run_id=run_id, agent=agent, parent=parent,
                        timestamp=timestamp, id=event_id,
                    )  # fmt: skip
                    if type == "provider.response":
                        listener.response(index, data.get("usage") or {})
                for result in results:
                    self._finished(slot, result)
                self.top_up()
        except asyncio.CancelledError:
            ray.cancel(stream)
            raise
        except (ray.exceptions.RayError, StopAsyncIteration) as exc:  # the actor is gone
            text = str(exc).strip()
            self.failure = text.splitlines()[0] if text else type(exc).__name__
            lost = self.assigned[slot] or {}
            self.assigned[slot] = None
            for work in list(lost.values()):
                self.in_flight -= 1
                listener.finished(_failed(work, self.failure, type(exc).__name__))
            self.top_up()  # the other actors take over what is left
            self._check_done()

    def fail_the_rest(self) -> None:
        """Items no actor could take (every actor died) end as failures too."""
        while self.queue:
            work = self.queue.popleft()
            self.listener.started(work.index)
            self.listener.finished(_failed(work, self.failure, "RayActorError"))

    def _finished(self, slot: int, result: BatchResult) -> None:
        assigned = self.assigned[slot]
        if assigned is not None and assigned.pop(result.index, None) is not None:
            self.in_flight -= 1
            self.listener.finished(result)
            self._check_done()

    def _check_done(self) -> None:
        if self.in_flight == 0 and (not self.queue or all(a is None for a in self.assigned)):
            self.done.set()


def _failed(work: Work, message: str, error_type: str) -> BatchResult:
    return BatchResult(
        index=work.index,
        item=work.item,
        error=message,
        error_type=error_type,
        attempts=1,
        key=work.key,
    )


async def _awaited(ref: Any) -> Any:
    return await ref


async def _next(stream: Any) -> Any:
    """The next message of a Ray streaming generator."""
    return await (await stream.__anext__())


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
