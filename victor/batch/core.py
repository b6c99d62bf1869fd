"""``batch()``: one agent (or team, or function) per item, N at a time, with retries,
timeouts, a checkpoint, progress, and the local asyncio backend.

A ``Batch`` runs when it is awaited (all results, in input order) or iterated (results as
they finish). Each finished item is counted, shown, written to the checkpoint and emitted
as ``batch.item`` the moment it finishes, whoever reads the results and however slowly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .._util import did_you_mean, forwards_to, new_id
from ..core.events import EventBus, EventScope, current_scope
from ..errors import ConfigurationError, VictorError
from .checkpoint import Checkpoint
from .items import BatchResult, Prompt, Work, attribute, item_keys, make_call, run_item, task_for
from .progress import Progress
from .results import BatchResults

if TYPE_CHECKING:
    from ..core.events import Event

__all__ = ["Batch", "batch", "BACKENDS"]

BACKENDS = ("local", "ray")

Backend = Literal["local", "ray"]


class ItemListener(Protocol):
    """What a backend tells the batch as items start and finish."""

    def started(self, index: int) -> None: ...
    def response(self, index: int, usage: dict[str, int]) -> None: ...
    def finished(self, result: BatchResult) -> None: ...


class Batch:
    """One batch run, made by ``batch(...)``; runs once, when awaited or iterated."""

    def __init__(
        self,
        items: Iterable[Any],
        agent: Any,
        *,
        prompt: Prompt = None,
        concurrency: int = 8,
        retries: int = 0,
        timeout: float | None = None,
        retry_delay: float = 1.0,
        checkpoint: str | os.PathLike[str] | None = None,
        key: Callable[[Any], Any] | None = None,
        progress: bool | None = None,
        backend: Backend = "local",
        workers: int | None = None,
        ray_options: Mapping[str, Any] | None = None,
        workflow: str | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise ConfigurationError(
                f"items must be a list (or any iterable) of items, got {type(items).__name__}; "
                f"wrap a single item in a list"
            )
        _check_int(concurrency, "concurrency", 1)
        _check_int(retries, "retries", 0)
        if workers is not None:
            _check_int(workers, "workers", 1)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ConfigurationError(
                f"timeout={timeout!r} is invalid: use a positive number of seconds or None"
            )
        if (
            isinstance(retry_delay, bool)
            or not isinstance(retry_delay, (int, float))
            or (retry_delay < 0)
        ):
            raise ConfigurationError(f"retry_delay={retry_delay!r} is invalid: use 0 or more")
        if backend not in BACKENDS:
            raise ConfigurationError(
                f"backend={backend!r} is unknown.{did_you_mean(str(backend), BACKENDS)} "
                f"Use one of: {', '.join(BACKENDS)}"
            )
        if backend == "local" and (workers is not None or ray_options):
            raise ConfigurationError(
                "workers= and ray_options= apply to backend='ray'; drop them or add backend='ray'"
            )
        self.items: list[Any] = list(items)
        self.keys = item_keys(self.items, key)
        self.agent = agent
        self._call = make_call(agent, prompt, workflow)
        self._check_first_task(prompt, workflow)
        self.prompt = prompt
        self.workflow = workflow
        self.concurrency = concurrency
        self.retries = retries
        self.timeout = timeout
        self.retry_delay = float(retry_delay)
        self.checkpoint = Checkpoint(checkpoint) if checkpoint is not None else None
        self.show_progress = progress
        self.backend = backend
        self.workers = workers
        self.ray_options = dict(ray_options or {})
        self.name = name or _name_of(agent)
        #: The batch's run id in events: agent runs inside it name it as their ``parent``.
        self.run_id = new_id("batch")
        #: Every result so far, in input order, with the summary: set when the batch ends.
        self.results: BatchResults | None = None
        self.progress: Progress | None = None
        self.scope: EventScope | None = None
        self._ran = False

    def __await__(self) -> Generator[Any, None, BatchResults]:
        return self.run().__await__()

    def __aiter__(self) -> AsyncIterator[BatchResult]:
        return self._run()

    def __repr__(self) -> str:
        return (
            f"Batch(name={self.name!r}, items={len(self.items)}, backend={self.backend!r}, "
            f"concurrency={self.concurrency})"
        )

    async def run(self) -> BatchResults:
        """Run every item; return the results in input order (``await batch`` does this;
        ``victor.run_sync(batch(...).run())`` runs it from sync code)."""
        async with aclosing(self._run()) as results:
            async for _ in results:
                pass
        assert self.results is not None
        return self.results

    async def _run(self) -> AsyncIterator[BatchResult]:
        if self._ran:
            raise VictorError("this batch has run already: call batch(...) again to rerun it")
        self._ran = True
        records = self.checkpoint.read() if self.checkpoint is not None else {}
        resumed: list[BatchResult] = []
        pending: list[Work] = []
        for index, (key, item) in enumerate(zip(self.keys, self.items, strict=True)):
            record = records.get(key)
            if record is not None and record.get("error") is None:
                resumed.append(BatchResult.from_record(record, index, item))
            else:
                pending.append(Work(index, key, item))
        outer = current_scope()
        bus = EventBus.default()
        run_scope = self.scope = EventScope(
            bus, run_id=self.run_id, agent=self.name, parent=outer.run_id
        )
        progress = self.progress = Progress(self.name, len(self.items), show=self.show_progress)
        run = _Run(self, bus, run_scope, progress, resumed)
        bus.subscribe("provider.response", run.observe)
        status, error = "interrupted", None
        runner: asyncio.Future[None] | None = None
        try:
            await run_scope.emit(
                "batch.start",
                {
                    "batch": self.name,
                    "items": len(self.items),
                    "pending": len(pending),
                    "backend": self.backend,
                    "concurrency": self.concurrency,
                },
            )
            progress.begin(resumed)
            for result in resumed:
                yield result
            runner = asyncio.ensure_future(self._backend().run(pending, run))
            runner.add_done_callback(lambda _: run.queue.put_nowait(None))
            while (result := await run.queue.get()) is not None:
                yield result
            await runner  # a failure of the backend itself is raised here
            status = "done"
        except BaseException as exc:
            error = exc
            raise
        finally:
            if runner is not None and not runner.done():
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            bus.unsubscribe("provider.response", run.observe)
            if self.checkpoint is not None:
                self.checkpoint.close()
            summary = progress.end(status)
            self.results = BatchResults([r for r in run.done if r is not None], summary)
            if error is None:
                await run_scope.emit(
                    "batch.complete",
                    {
                        "batch": self.name,
                        "done": summary.done,
                        "failed": summary.failed,
                        "resumed": summary.resumed,
                        "usage": summary.usage.model_dump(),
                        "duration_ms": summary.seconds * 1000,
                    },
                )
            else:
                cancelled = isinstance(error, (asyncio.CancelledError, GeneratorExit))
                await run_scope.emit(
                    "batch.error",
                    {
                        "batch": self.name,
                        "error": "cancelled" if cancelled else str(error),
                        "error_type": "CancelledError" if cancelled else type(error).__name__,
                    },
                )

    def _backend(self) -> Any:
        if self.backend == "ray":
            from .ray_backend import RayBackend

            return RayBackend(self)
        return LocalBackend(self)

    def _item_data(self, result: BatchResult) -> dict[str, Any]:
        return {
            "batch": self.name,
            "index": result.index,
            "key": result.key,
            "ok": result.ok,
            "error": result.error,
            "error_type": result.error_type,
            "attempts": result.attempts,
            "duration_ms": result.duration_ms,
            "usage": result.usage.model_dump(),
        }

    def _check_first_task(self, prompt: Prompt, workflow: str | None) -> None:
        """A template that does not fit the items fails now, not once per item."""
        from ..core.agent import Agent
        from ..teams.base import AgentTeam

        if self.items and workflow is None and isinstance(self.agent, (Agent, AgentTeam)):
            task_for(self.items[0], prompt)

    async def run_one(
        self, work: Work, *, owner: object | None = None, **extra: Any
    ) -> BatchResult:
        """Run one item with this batch's settings (both backends' unit of work)."""
        assert self.scope is not None
        return await run_item(
            self._call,
            work,
            owner=self if owner is None else owner,
            run_scope=self.scope,
            retries=self.retries,
            timeout=self.timeout,
            retry_delay=self.retry_delay,
            **extra,
        )


@forwards_to(Batch)
def batch(*args: Any, **kwargs: Any) -> Batch:
    """Run ``agent`` once per item: ``await batch(...)`` for every result in input order,
    ``async for result in batch(...)`` for each as it finishes.

    - ``agent``: an ``Agent`` (run on each item's task), an ``AgentTeam`` (its answer is the
      output), or a function of the item, sync or async, whose return value is the output;
      if it returns an agent or team, that is run on the item and cleaned up afterwards.
    - The task: a string item is the task; a dict item's ``task`` (or ``input``) field is,
      with its ``context`` dict as context. ``prompt=`` overrides that: a template
      (``"Classify: {text}"``; ``{item}`` is the whole item) or a function of the item.
      ``workflow="code-review"`` runs that workflow per item, the item as its input.
    - ``concurrency``: items in flight at most. ``retries``: further attempts of a failed
      item, ``retry_delay`` seconds apart, doubling. ``timeout``: seconds per attempt.
    - ``checkpoint``: a JSONL file each result is appended to as it finishes; run the same
      batch again with it and finished items are read back instead of run. Items are told
      apart by ``key(item)`` (default: a hash of the item). Failed items run again.
    - ``progress``: show a bar (notebook) or a line (terminal stderr) and a summary; on
      by default. ``name``: the batch's name in progress and events.
    - ``backend="ray"``: run the items on a Ray cluster in ``workers`` async actors (extra
      ``ray``; see ``victor.batch.ray_backend``); ``ray_options`` go to the actors.

    A failed item is a ``BatchResult`` with ``error`` set, never an exception that stops
    the others. Cancelling the batch cancels every item in flight.
    """
    return Batch(*args, **kwargs)


class _Run:
    """What the backend of one batch run reports to (``ItemListener``): each finished item is kept
    in input order, made durable, counted and announced before anyone reads it, so nothing
    is lost if the reader is slow or the process dies right after."""

    def __init__(
        self,
        batch: Batch,
        bus: EventBus,
        scope: EventScope,
        progress: Progress,
        resumed: list[BatchResult],
    ) -> None:
        self.batch = batch
        self.bus = bus
        self.scope = scope
        self.progress = progress
        self.done: list[BatchResult | None] = [None] * len(batch.items)
        for result in resumed:
            self.done[result.index] = result
        #: Results for the reader, as they finish; None: the backend is done.
        self.queue: asyncio.Queue[BatchResult | None] = asyncio.Queue()
        self._emit_items = bus.has_listeners("batch.item")

    def started(self, index: int) -> None:
        self.progress.started(index)

    def response(self, index: int, usage: dict[str, int]) -> None:
        self.progress.tokens(index, usage)

    def finished(self, result: BatchResult) -> None:
        self.done[result.index] = result
        if self.batch.checkpoint is not None:
            self.batch.checkpoint.append(result)
        self.progress.finished(result)
        if self._emit_items:
            data = self.batch._item_data(result)
            self.bus.emit("batch.item", data, **_meta(self.scope))
        self.queue.put_nowait(result)

    def observe(self, event: Event) -> None:
        """On ``provider.response``: count the tokens of the item (of this batch) that got it."""
        context = attribute(self.batch, event)
        if context is not None:
            self.response(context.index, event.data.get("usage") or {})


class LocalBackend:
    """Items as coroutines on this event loop: ``concurrency`` workers, each taking the next
    item when it finishes one, so no more than that many are ever in flight."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    async def run(self, pending: list[Work], listener: ItemListener) -> None:
        queue = iter(pending)

        async def worker() -> None:
            for work in queue:  # shared: each worker takes the next item
                listener.started(work.index)
                listener.finished(await self.batch.run_one(work))

        workers = [worker() for _ in range(min(self.batch.concurrency, len(pending)))]
        await _all_or_cancel(workers)


async def _all_or_cancel(coroutines: list[Awaitable[None]]) -> None:
    """Run the coroutines as tasks; if one fails or this is cancelled, cancel the rest and
    wait for them to unwind (streams closed) before raising."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _meta(scope: EventScope) -> dict[str, Any]:
    return {"run_id": scope.run_id, "agent": scope.agent, "parent": scope.parent}


def _name_of(agent: Any) -> str:
    name = getattr(agent, "name", None) or getattr(agent, "__name__", None)
    return str(name) if name and name != "<lambda>" else "batch"


def _check_int(value: Any, label: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{label}={value!r} is invalid: use an integer >= {minimum}")
