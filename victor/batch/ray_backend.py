"""The Ray backend of ``batch`` (extra ``ray``): items run in async actors on a Ray cluster.

    import ray
    ray.init(address="auto")          # on a cluster node; or nothing, for this machine
    results = await batch(items, agent, backend="ray", workers=8, concurrency=64)

Each of ``workers`` actors is one process that unpickles the agent (team, function) once
and runs many items on its event loop, so a local model is loaded once per actor, not
once per item. The driver hands each item to the least busy actor and follows it through a
Ray streaming generator: the item's events (agent, provider, tool and team events; not
tokens) come back every ``FLUSH_INTERVAL`` seconds and are emitted on the driver's bus, so
the progress bar, timelines and tracing work as with the local backend; its result comes
last. Cancelling the batch cancels the items in the actors (their streams are closed),
then the actors are stopped; a finished batch stops them too.

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
import math
import os
import threading
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..core.events import EventBus, EventScope
from ..errors import ConfigurationError, VictorError
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
    try:
        import ray
    except ImportError:
        raise ConfigurationError(
            'backend="ray" needs the ray extra: pip install "victor-ai[ray]"'
        ) from None
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
        runtime_env["env_vars"] = {**env, **(runtime_env.get("env_vars") or {})}
        actor_options = {
            "num_cpus": 1,
            # Its share of the items in flight, plus room for the driver's idle() call.
            "max_concurrency": math.ceil(batch.concurrency / workers) + 2,
            **options,
            "runtime_env": runtime_env,
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
        }
        target = ray.put(blob)
        actor_class = ray.remote(BatchActor)
        self.actors = actors = [
            actor_class.options(**actor_options).remote(target, settings) for _ in range(workers)
        ]
        load = [0] * workers
        queue = iter(pending)
        cancelled = False

        async def drive() -> None:
            for work in queue:  # shared: each driver takes the next item
                slot = min(range(workers), key=load.__getitem__)
                load[slot] += 1
                hooks.started(work.index)
                try:
                    result = await self._follow(actors[slot], work, carrier, hooks)
                finally:
                    load[slot] -= 1
                hooks.finished(result)

        try:
            await _all_or_cancel([drive() for _ in range(min(batch.concurrency, len(pending)))])
        except BaseException:
            cancelled = True
            raise
        finally:
            await self._stop(ray, actors, graceful=cancelled)
            self.actors = []

    async def _follow(
        self, actor: Any, work: Work, carrier: dict[str, str], hooks: Hooks
    ) -> BatchResult:
        """Relay one item's events from its actor; return its result."""
        ray = _ray()
        stream = actor.run.remote(work, carrier)
        bus = EventBus.default()
        try:
            async for ref in stream:
                events, result = await ref
                for type, data, run_id, agent, parent, timestamp, event_id in events:
                    bus.emit(
                        type, data, run_id=run_id, agent=agent, parent=parent,
                        timestamp=timestamp, id=event_id,
                    )  # fmt: skip
                    if type == "provider.response":
                        hooks.response(work.index, data.get("usage") or {})
                if result is not None:
                    return result
        except asyncio.CancelledError:
            ray.cancel(stream)
            raise
        except ray.exceptions.RayError as exc:  # the actor died or could not start
            return BatchResult(
                index=work.index,
                item=work.item,
                error=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                error_type=type(exc).__name__,
                attempts=1,
                key=work.key,
            )
        raise VictorError(f"the Ray actor running item {work.index} ended without a result")

    async def _stop(self, ray: Any, actors: list[Any], *, graceful: bool) -> None:
        """Stop the actors; after a cancellation, first give the items time to unwind."""
        if graceful and actors:
            waits = [asyncio.ensure_future(_awaited(actor.idle.remote())) for actor in actors]
            await asyncio.wait(waits, timeout=CANCEL_GRACE)
            for wait in waits:
                wait.cancel()
        for actor in actors:
            ray.kill(actor, no_restart=True)


async def _awaited(ref: Any) -> Any:
    return await ref


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# -- the actor -----------------------------------------------------------------------------


class BatchActor:
    """One Ray actor process: the batch's agent, unpickled once, running many items at a
    time on its event loop (``ray.remote`` is applied by ``RayBackend``)."""

    def __init__(self, blob: bytes, settings: Mapping[str, Any]) -> None:
        import pickle

        self.call = pickle.loads(blob)
        self.settings = dict(settings)
        bus = EventBus.default()
        self.scope = EventScope(
            bus, run_id=settings["run_id"], agent=settings["name"], parent=settings["parent"]
        )
        self.running: set[asyncio.Future[Any]] = set()
        for pattern in FORWARDED:
            bus.subscribe(pattern, self._observe)

    def _observe(self, event: Any) -> None:
        attribute(self, event)  # queued in the item's outbox

    async def run(
        self, work: Work, carrier: dict[str, str]
    ) -> AsyncIterator[tuple[list[Any], Any]]:
        """Run one item; yield ``(events, None)`` while it runs, then ``(events, result)``."""
        outbox: list[tuple[Any, ...]] = []
        task = asyncio.ensure_future(self._item(work, carrier, outbox))
        self.running.add(task)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=FLUSH_INTERVAL)
                if done:
                    break
                if outbox:
                    events = outbox[:]
                    outbox.clear()
                    yield events, None
            yield outbox[:], task.result()
        finally:
            if not task.done():  # cancelled by the driver: let the item unwind first
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            self.running.discard(task)

    async def _item(self, work: Work, carrier: dict[str, str], outbox: list[Any]) -> BatchResult:
        from ..telemetry import attached

        settings = self.settings
        with attached(carrier):  # code in the actor that traces itself joins the trace
            return await run_item(
                self.call,
                work,
                owner=self,
                run_scope=self.scope,
                retries=settings["retries"],
                timeout=settings["timeout"],
                retry_delay=settings["retry_delay"],
                outbox=outbox,
            )

    async def idle(self) -> None:
        """Return once no item is running here."""
        while self.running:
            await asyncio.sleep(0.05)

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
