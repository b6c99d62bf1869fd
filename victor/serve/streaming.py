"""Streamed answers: a run's events written as Server-Sent Events, as fast as they come.

``EventStream`` is the response of every streaming route (agents, teams, workflows,
AG-UI): each event framed where it is read, frames ready together joined into one write,
and the run started while the response's headers go out. A victor stream's first event,
``run_started``, is written at once, before the model has said anything, and a quiet
stream gets a comment line every ``PING_SECONDS``: proxies and people see it is alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, Generic, TypeVar

from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .wire import event_frame, problem_for, sse, to_json

__all__ = [
    "EventStream",
    "Frames",
    "agent_sse",
    "sse_pairs",
    "started_frame",
    "until_disconnect",
]

T = TypeVar("T")

#: Seconds a stream may stay silent (a long tool call) before a ``: ping`` comment is sent.
PING_SECONDS = 15.0
#: Seconds over which events ready at once are joined into one write (a stream's first
#: event is written at once).
COALESCE_SECONDS = 0.001


class Frames(Generic[T]):
    """The frames of ``events`` as the writes of a response: several joined into one when
    several are ready at once, and a comment line (``: ping``) after ``PING_SECONDS`` idle
    so proxies keep a quiet stream open. ``first``, if given, is the first write, at once.

    A model's stream arrives a few packets at a time, each holding many events; writing
    each event on its own costs a send through every middleware and a syscall, and the
    client a read, per event. A task reads ahead (at most ``limit`` bytes) while the
    response writes what is there; ``start`` starts it before the first write is asked
    for. ``cancel`` (the client went away) cancels it, which closes the run and the
    model's stream. Not FastAPI's generator path (``EventSourceResponse``): it adds two
    tasks, two memory streams and a timer per event for its keep-alive pings, several
    times the cost of the event (bench/http_api.py).
    """

    def __init__(
        self,
        events: AsyncIterator[T],
        frame: Callable[[T], bytes],
        on_error: Callable[[Exception], bytes] | None = None,
        limit: int = 1 << 16,
        first: bytes | None = None,
    ) -> None:
        self._events = events
        self._frame = frame
        self._on_error = on_error
        self._limit = limit
        self._pending: list[bytes] = [first] if first else []
        self._size = len(first or b"")
        self._ready = asyncio.Event()  # something to write, or the end
        if first:
            self._ready.set()
        self._room = asyncio.Event()  # the reader may go on
        self._room.set()
        self._done = False
        self._written = 0.0  # loop time of the last write
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading the events (once)."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_ahead())

    def cancel(self) -> None:
        """Stop reading: the run is cancelled if it has not finished."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    async def _read_ahead(self) -> None:
        pending, frame, ready = self._pending, self._frame, self._ready
        loop = asyncio.get_running_loop()
        try:
            async with aclosing(self._events):  # type: ignore[type-var]
                async for event in self._events:
                    chunk = frame(event)
                    pending.append(chunk)
                    self._size += len(chunk)
                    if self._size >= self._limit:
                        ready.set()
                        self._room.clear()
                        await self._room.wait()
                    elif not ready.is_set():
                        ready.set()
                        # The writer is idle: a burst of events (one network read of the
                        # model's stream) would otherwise go out only when all of it is
                        # read. Let it write now if it has not for COALESCE_SECONDS, so
                        # the first event goes at once and the client reads as we go.
                        if loop.time() - self._written >= COALESCE_SECONDS:
                            await asyncio.sleep(0)
        except Exception as exc:
            if self._on_error is None:
                raise
            pending.append(self._on_error(exc))
        finally:
            self._done = True
            ready.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.start()
        assert self._reader is not None
        pending, ready, loop = self._pending, self._ready, asyncio.get_running_loop()
        try:
            while pending or not self._done:
                if not pending:
                    timer = loop.call_later(PING_SECONDS, ready.set)
                    await ready.wait()
                    ready.clear()
                    timer.cancel()
                    if not pending and not self._done:
                        yield b": ping\n\n"
                    continue
                out = b"".join(pending)
                pending.clear()
                self._size = 0
                self._room.set()
                self._written = loop.time()
                yield out
            if not self._reader.cancelled():  # cancelled: the client went away
                await self._reader  # re-raises what the reader could not turn into an event
        finally:
            self.cancel()


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response (its media type is what OpenAPI shows): each of
    ``events`` written as ``frame(event)`` (see ``Frames``), after ``first`` if given. With
    ``on_error``, a failure becomes a last frame instead of a cut.

    The run starts when the response does, so the model's request is on its way while
    the headers are written; it is cancelled however the response ends.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[T],
        frame: Callable[[T], bytes],
        *,
        on_error: Callable[[Exception], bytes] | None = None,
        status_code: int = 200,
        first: bytes | None = None,
    ) -> None:
        # no-cache, and no buffering by proxies (nginx), so each event goes out at once.
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        self.frames = Frames(events, frame, on_error, first=first)
        super().__init__(self.frames, status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        frames = self.frames
        frames.start()
        # A client that goes away stops the run at once, even while the stream is quiet.
        # One plain task listens for it: Starlette's way (an anyio task group a response,
        # under uvicorn's ASGI 2.3) cost 0.2 ms of CPU a request.
        listener = asyncio.ensure_future(until_disconnect(receive, frames.cancel))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # ASGI 2.4: what a send to a client that left raises
            raise ClientDisconnect() from None
        finally:
            listener.cancel()
            frames.cancel()


async def until_disconnect(receive: Receive, then: Callable[[], None]) -> None:
    """Call ``then`` when the client disconnects (or the response is complete)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    then()


def error_frame(exc: Exception) -> bytes:
    """A failure as the stream's last event: ``error`` with problem details."""
    return sse("error", problem_for(exc).json().decode())


def started_frame(started: dict[str, Any]) -> bytes:
    """The ``run_started`` event: the run's id and what runs it."""
    return sse("run_started", to_json(started))


def sse_pairs(
    events: AsyncIterator[tuple[str, str]], started: dict[str, Any] | None = None
) -> EventStream:
    """Server-Sent Events of (name, JSON) pairs, after ``run_started`` with ``started`` if
    given (else the events bring their own), and on failure an ``error`` event with
    problem details."""
    first = started_frame(started) if started is not None else None
    return EventStream(events, lambda pair: sse(*pair), on_error=error_frame, first=first)


def agent_sse(events: AsyncIterator[Any], started: dict[str, Any]) -> EventStream:
    """An agent's stream events as Server-Sent Events: first ``run_started`` with
    ``started`` (the run's id, the agent), at once; ``started`` added to ``run_finished``
    too, so each end of the stream says which run it is.

    Each event is framed where it is read: no generator between the run and the
    response (every layer costs each of a run's hundreds of text events).
    """
    return EventStream(
        events,
        lambda event: event_frame(event, started),
        on_error=error_frame,
        first=started_frame(started),
    )
