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
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._util import needs_extra
from ..core.events import EventBus, EventScope
from ..errors import ConfigurationError
from ..providers.base import Provider, available_providers, get_provider_class
from .core import Batch, Hooks, _all_or_cancel
from .items import BatchResult, Work, attribute, run_item

__all__ = ["RayBackend", "ship", "BatchActor"]

#: Seconds an item's events wait in the actor before they are sent to the driver
#: (an item that ends sooner sends its events once, with its result).
FLUSH_INTERVAL = 0.2
#: Seconds cancelled items get to unwind in their actors before the actors are stopped.
CANCEL_GRACE = 5.0
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
#: Driver variables the actors get besides the providers' own (keys and base URLs).
VICTOR_ENV = ("VICTOR_PROVIDER", "VICTOR_MODEL", "VICTOR_LOG_LEVEL")


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

    async def run(self, pending: list[Work], hooks: Hooks) -> None:
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
        dispatch = _Dispatch(actors, pending, batch.concurrency, hooks)
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
        self, actors: list[Any], pending: list[Work], concurrency: int, hooks: Hooks
    ) -> None:
        self.actors = actors
        self.queue = deque(pending)
        self.concurrency = concurrency
        self.hooks = hooks
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
            self.hooks.started(work.index)
            batches.setdefault(slot, []).append(work)
        for slot, works in batches.items():
            self.actors[slot].submit.remote(works)

    async def follow(self, slot: int) -> None:
        """Relay actor ``slot``'s events and results until the batch is done or the actor
        is gone."""
        ray = _ray()
        stream = self.actors[slot].results.remote()
        bus = EventBus.default()
        hooks = self.hooks
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
                        hooks.response(index, data.get("usage") or {})
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
                hooks.finished(_failed(work, self.failure, type(exc).__name__))
            self.top_up()  # the other actors take over what is left
            self._check_done()

    def fail_the_rest(self) -> None:
        """Items no actor could take (every actor died) end as failures too."""
        while self.queue:
            work = self.queue.popleft()
            self.hooks.started(work.index)
            self.hooks.finished(_failed(work, self.failure, "RayActorError"))

    def _finished(self, slot: int, result: BatchResult) -> None:
        assigned = self.assigned[slot]
        if assigned is not None and assigned.pop(result.index, None) is not None:
            self.in_flight -= 1
            self.hooks.finished(result)
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


# -- the actor ------------------------------------------------------------------------------


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


# -- shipping an agent ---------------------------------------------------------------------

#: What providers make on first use (victor/providers/base.py, local.py): connections, a
#: loaded model and its lock. An actor makes its own; these are not shipped.
_FRESH: dict[str, Any] = {
    "_clients": weakref.WeakKeyDictionary,
    "_shared": lambda: None,
    "_release": lambda: None,
    "_loading": threading.Lock,
}
_LOCKS = (type(threading.Lock()), type(threading.RLock()))


def ship(target: Any) -> tuple[bytes, dict[str, str]]:
    """Pickle ``target`` (an agent, team or function using them) for the actors: providers
    without their API key, connections or loaded model, event buses as the actor's own.

    Returns the pickle and the keys taken out, by the variable that carries each.
    """
    from ray import cloudpickle

    keys: dict[str, str] = {}

    class _Pickler(cloudpickle.CloudPickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, Provider):
                return _provider_reduction(obj, keys)
            if isinstance(obj, EventBus):
                return _actor_bus, (obj is EventBus.default(),)
            if isinstance(obj, _LOCKS):
                return type(obj), ()
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=5).dump(target)
    except Exception as exc:
        raise ConfigurationError(
            f"the agent cannot be sent to Ray actors: {exc}. Pass a function that builds the "
            f"agent from plain settings instead (batch(items, lambda item: Agent(...), ...))"
        ) from exc
    return buffer.getvalue(), keys


def _provider_reduction(provider: Provider, keys: dict[str, str]) -> tuple[Any, ...]:
    state = {k: v for k, v in vars(provider).items() if k not in _FRESH}
    key = state.pop("_api_key", None)
    if key:
        variable = provider.api_key_env
        if variable is None:
            raise ConfigurationError(
                f"{type(provider).__name__} has an api_key= but no api_key_env variable to "
                f"carry it to the Ray actors; set one on the class, or build the agent in a "
                f"function that reads the key on the cluster"
            )
        if keys.get(variable, key) != key:
            raise ConfigurationError(
                f"two agents of the batch use different api_key= values for {variable}; on "
                f"Ray a key travels as that environment variable, so use one key per provider"
            )
        keys[variable] = key
    fresh = tuple(name for name in _FRESH if name in vars(provider))
    return _rebuild_provider, (type(provider), state, fresh)


def _rebuild_provider(
    cls: type[Provider], state: dict[str, Any], fresh: tuple[str, ...]
) -> Provider:
    provider = cls.__new__(cls)
    provider.__dict__.update(state)
    provider._api_key = None  # read from the environment the actor was given
    for name in fresh:
        setattr(provider, name, _FRESH[name]())
    return provider


def _actor_bus(default: bool) -> EventBus:
    """The actor's own bus for a shipped one: its default bus, or a child of it (events
    reach the default bus either way, and from there the driver)."""
    return EventBus.default() if default else EventBus(parent=EventBus.default())


def provider_environment() -> dict[str, str]:
    """The driver's provider variables (keys, base URLs) and victor's defaults that are set."""
    names = set(VICTOR_ENV)
    classes: set[type[Provider]] = set()
    for name in available_providers():
        try:
            classes.add(get_provider_class(name))
        except Exception:  # noqa: BLE001 - a provider that cannot load has nothing to send
            continue
    stack = [Provider]
    while stack:
        for subclass in stack.pop().__subclasses__():
            classes.add(subclass)
            stack.append(subclass)
    for cls in classes:
        names.update(n for n in (cls.api_key_env, cls.base_url_env) if n)
    return {name: os.environ[name] for name in sorted(names) if os.environ.get(name)}
