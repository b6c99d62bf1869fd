"""Where MCP connections live: one private event loop thread ("victor-mcp") for all of them,
and a stdio server's stderr relayed to ``sys.stderr`` (the terminal, or in Jupyter the
running cell). client.py says why one loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import select
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["mcp_loop", "live", "StderrRelay", "stdio_transport"]

T = TypeVar("T")


class _Loop:
    """A daemon thread running the event loop every MCP connection lives on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="victor-mcp", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


class _Connection(Protocol):
    """An open connection as the loop sees it (an ``MCPToolset``): its owner task, and
    how to close it."""

    _owner: asyncio.Task[None] | None

    async def _close(self) -> None: ...


_loop: _Loop | None = None
_loop_lock = threading.Lock()
#: Open connections, closed at exit so that stdio servers stop with us.
live: set[_Connection] = set()


def mcp_loop() -> _Loop:
    """The loop every MCP connection lives on, started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = _Loop()
            atexit.register(_close_all)
        return _loop


def _close_all() -> None:
    """At exit: close every connection still open, so stdio servers stop with us."""
    loop = _loop
    if loop is None:
        return

    async def close_everything() -> None:
        toolsets = [t for t in list(live) if t._owner is not None]
        await asyncio.gather(*(t._close() for t in toolsets), return_exceptions=True)

    try:
        loop.submit(close_everything()).result(timeout=15)
    except Exception:
        pass


class StderrRelay:
    """A pipe for a stdio server's stderr, copied line by line to ``sys.stderr``.

    A daemon thread copies lines as they come; ``drain()`` copies what is already in the
    pipe from the caller's thread (in Jupyter: into the running cell) and waits for a copy
    in progress, so output written before an answer is shown before the call returns.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._read, write = os.pipe()
        os.set_blocking(self._read, False)
        #: What the server process gets as its stderr.
        self.file = os.fdopen(write, "w")
        self._lock = threading.Lock()
        self._partial = b""
        self._closed = False
        self._thread = threading.Thread(target=self._follow, name=f"mcp-stderr-{name}", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._closed:
            try:
                readable, _, _ = select.select([self._read], [], [], 0.2)
            except (OSError, ValueError):
                return
            if readable and not self.drain():
                return

    def drain(self) -> bool:
        """Copy complete lines waiting in the pipe; False once the pipe is closed."""
        with self._lock:
            if self._closed:
                return False
            chunks = []
            while True:
                try:
                    chunk = os.read(self._read, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    return False
                if not chunk:  # every writer is gone
                    self._write(self._partial + b"\n" if self._partial else b"")
                    self._partial = b""
                    return False
                chunks.append(chunk)
            data = self._partial + b"".join(chunks)
            complete, _, self._partial = data.rpartition(b"\n")
            if complete:
                self._write(complete + b"\n")
            return True

    def _write(self, data: bytes) -> None:
        if data:
            stream = sys.stderr
            if stream is not None:
                stream.write(data.decode("utf-8", "replace"))
                stream.flush()

    def server_started(self) -> None:
        """Close our copy of the write end: EOF comes when the server's copies close."""
        if not self.file.closed:
            self.file.close()

    def close(self) -> None:
        self.server_started()
        self.drain()
        with self._lock:
            self._closed = True
            os.close(self._read)


def stdio_transport(params: Any, relay: StderrRelay) -> Any:
    """The SDK's stdio transport with the server's stderr on ``relay``."""
    from contextlib import asynccontextmanager

    from mcp.client.stdio import stdio_client

    @asynccontextmanager
    async def transport() -> Any:
        async with stdio_client(params, errlog=relay.file) as streams:
            relay.server_started()
            yield streams

    return transport()
