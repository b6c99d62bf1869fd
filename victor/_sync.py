"""Running coroutines from sync code while an event loop is already running (notebooks).

A Jupyter kernel runs every cell inside its own event loop, so ``asyncio.run`` and
``loop.run_until_complete`` fail there. ``run_sync`` instead hands the coroutine to one
private, long-lived loop in a background thread and blocks until it is done. While it
waits, the calling thread runs whatever the coroutine posts with ``call_in_main`` (display
updates must come from the kernel's main thread, where the cell's output is routed).
Ctrl-C or the kernel's stop button cancels the coroutine and waits for it to unwind
(streams closed, conversation left consistent) before ``KeyboardInterrupt`` propagates.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import VictorError

__all__ = ["run_sync", "call_in_main", "in_run_sync", "background_loop"]

T = TypeVar("T")

#: Seconds an interrupted run may take to unwind (close its stream) before giving up on it.
CANCEL_GRACE = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None

#: The inbox of the ``run_sync`` call waiting on this coroutine (None outside run_sync).
_inbox: contextvars.ContextVar[queue.SimpleQueue[Any] | None] = contextvars.ContextVar(
    "victor_main_inbox", default=None
)


@dataclass(slots=True)
class _Outcome:
    """How the coroutine ended: its value or its exception."""

    value: Any = None
    error: BaseException | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """victor's private event loop, running in a daemon thread; started on first use.

    It lives as long as the process, so HTTP clients made on it (one per loop) are
    reused from cell to cell.
    """
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=serve, name="victor-loop", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
    """Run ``coro`` to completion from sync code, even inside a running event loop.

    Works the same in a script, in a terminal and in a notebook cell. The coroutine sees
    the caller's context variables (``victor.testing.override`` included). ``timeout``
    (seconds) cancels it and raises ``TimeoutError``; ``KeyboardInterrupt`` cancels it and
    is re-raised once it has unwound.
    """
    if not asyncio.iscoroutine(coro):
        raise TypeError(
            f"run_sync() needs a coroutine, got {type(coro).__name__}: call the async function"
        )
    if threading.current_thread() is _thread:
        coro.close()
        raise VictorError(
            "run_sync() was called from victor's own loop thread, where it would wait on "
            "itself forever; use `await` there instead"
        )
    loop = background_loop()
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    context = contextvars.copy_context()
    context.run(_inbox.set, inbox)
    # The task is created inside ``context``, so it inherits the caller's variables.
    loop.call_soon_threadsafe(_start, loop, coro, inbox, context=context)
    try:
        outcome = _drain(inbox, timeout)
    except BaseException:  # KeyboardInterrupt, or an error in a posted callback
        _cancel(loop, inbox)
        raise
    if outcome is None:  # timed out
        _cancel(loop, inbox)
        raise TimeoutError(f"run_sync() gave up after {timeout} s and cancelled the coroutine")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


def call_in_main(fn: Callable[[], Any]) -> None:
    """Run ``fn()`` on the thread that awaits this coroutine: the thread blocked in
    ``run_sync``, or right now when the coroutine runs on the caller's own loop."""
    inbox = _inbox.get()
    if inbox is None or threading.current_thread() is not _thread:
        fn()
    else:
        inbox.put(fn)


def in_run_sync() -> bool:
    """Whether this code runs on victor's loop thread for a ``run_sync`` caller, so that
    ``call_in_main`` posts to that caller's thread (blocked in ``run_sync``)."""
    return _inbox.get() is not None and threading.current_thread() is _thread


# -- internals --------------------------------------------------------------------------

#: Running tasks by the id of the inbox they report to (touched on the loop thread only).
_tasks: dict[int, asyncio.Task[Any]] = {}


def _start(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], inbox: queue.SimpleQueue[Any]
) -> None:
    """On the loop thread: start ``coro`` as a task that reports its outcome to ``inbox``."""

    async def report() -> None:
        try:
            value = await coro
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
            inbox.put(_Outcome(error=exc))
        else:
            inbox.put(_Outcome(value=value))
        finally:
            _tasks.pop(id(inbox), None)

    _tasks[id(inbox)] = loop.create_task(report())


def _drain(inbox: queue.SimpleQueue[Any], timeout: float | None) -> _Outcome | None:
    """Run posted callbacks on this thread until the outcome arrives (None: timed out)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return None
        try:
            # A bounded wait keeps the thread responsive to signals on every platform.
            item = inbox.get(timeout=0.2 if wait is None else min(0.2, wait))
        except queue.Empty:
            continue
        if isinstance(item, _Outcome):
            return item
        item()


def _cancel(loop: asyncio.AbstractEventLoop, inbox: queue.SimpleQueue[Any]) -> None:
    """Cancel the run reporting to ``inbox`` and let it unwind, still serving its callbacks
    (its final 'interrupted' render, say). A second interrupt stops the waiting."""

    def cancel() -> None:
        task = _tasks.get(id(inbox))
        if task is not None:
            task.cancel()

    loop.call_soon_threadsafe(cancel)
    try:
        _drain(inbox, CANCEL_GRACE)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001
        pass  # the interrupt or error that got us here is what the caller must see


@atexit.register
def _shutdown() -> None:
    loop = _loop
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
