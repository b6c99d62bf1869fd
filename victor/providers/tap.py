"""The seam a recorder plugs into: every model exchange passes a tap, when one is set.

HTTP providers' clients get their transports wrapped in ``TapTransport`` when they are
created; in-process providers (the embedded model) call through ``current_tap()`` at the
provider boundary. With no tap set, a request costs one context-variable lookup more. The
providers know nothing of what a tap does: ``victor.cassette`` sets one to record and
replay, and it imports this module, never the reverse.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["Tap", "TapTransport", "current_tap", "set_tap", "set_process_tap", "tap_client"]


class Tap(Protocol):
    """What a recorder implements: one call per HTTP request, one per in-process call."""

    #: True when nothing will be sent (a cassette that only replays): no API key needed.
    replay_only: bool

    async def handle_http(self, request: Any, transport: Any) -> Any:
        """Answer ``request`` (an httpx or httpx2 ``Request``), through ``transport`` or not."""

    async def chat(self, provider: Any, arguments: tuple[Any, ...]) -> Any:
        """An in-process provider's ``_chat(*arguments)``, answered or recorded."""

    def stream(self, provider: Any, arguments: tuple[Any, ...]) -> Any:
        """An in-process provider's ``_stream(*arguments)`` events, answered or recorded."""


_tap: ContextVar[Tap | None] = ContextVar("victor_tap", default=None)
#: The tap of a whole process (a notebook's ``%victor cassette``), under any scoped one.
_process_tap: Tap | None = None


def current_tap() -> Tap | None:
    """The tap in effect here: the innermost scoped one, else the process's, else None."""
    return _tap.get() or _process_tap


def set_tap(tap: Tap | None) -> Any:
    """Set the scoped tap; returns the token ``reset_tap`` takes."""
    return _tap.set(tap)


def reset_tap(token: Any) -> None:
    _tap.reset(token)


def set_process_tap(tap: Tap | None) -> Tap | None:
    """Set the process-wide tap; returns the previous one."""
    global _process_tap
    previous, _process_tap = _process_tap, tap
    return previous


class TapTransport:
    """An async httpx (or httpx2) transport that hands each request to the current tap,
    or straight to the transport it wraps when there is none."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_async_request(self, request: Any) -> Any:
        tap = current_tap()
        if tap is None:
            return await self.inner.handle_async_request(request)
        return await tap.handle_http(request, self.inner)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> TapTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def tap_client(http_client: Any) -> None:
    """Wrap every transport of an httpx/httpx2 ``AsyncClient`` (the default one and those
    mounted for proxies) in a ``TapTransport``, in place."""
    # httpx picks a mount (proxies from the environment) before the default transport;
    # both are wrapped so that no request goes around the tap.
    if not isinstance(http_client._transport, TapTransport):
        http_client._transport = TapTransport(http_client._transport)
    http_client._mounts = {
        pattern: transport
        if transport is None or isinstance(transport, TapTransport)
        else TapTransport(transport)
        for pattern, transport in http_client._mounts.items()
    }
