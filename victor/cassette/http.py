"""Recording and replaying HTTP exchanges at the transport: the SDK above parses a replayed
response exactly as a live one, chunk by chunk."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from .._secrets import scrub
from .store import decode_body, decode_chunk, encode_body, encode_chunk, scrub_headers, stream_kind

__all__ = ["request_record", "record", "replay"]

#: Headers a replayed response must not carry over: its body is re-encoded.
_LENGTH_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding"})


def _httpx(request: Any) -> Any:
    """The module (httpx or httpx2) the request belongs to: its response must be of it."""
    return sys.modules[type(request).__module__.split(".")[0]]


async def request_record(request: Any, secrets: tuple[str, ...]) -> dict[str, Any]:
    """A request as stored: method, URL, path, headers and body, secrets masked."""
    body = await request.aread()
    url = scrub(str(request.url), secrets)
    parts = urlsplit(url)
    return {
        "method": request.method,
        "url": url,
        "path": parts.path + (f"?{parts.query}" if parts.query else ""),
        "headers": scrub_headers(request.headers, secrets),
        **encode_body(body, secrets),
    }


async def record(
    request: Any,
    transport: Any,
    secrets: tuple[str, ...],
    done: Callable[[dict[str, Any]], None],
) -> Any:
    """Send ``request`` and return its response, whose body reaches the caller as it
    arrives; ``done(response_record)`` when the body has been read (or abandoned)."""
    # An encoded body would be stored as opaque bytes: ask for it plain while recording.
    request.headers["accept-encoding"] = "identity"
    started = time.monotonic()
    response = await transport.handle_async_request(request)
    kind = stream_kind(response.headers.get("content-type", ""))
    stored: dict[str, Any] = {
        "status": response.status_code,
        "headers": scrub_headers(response.headers, secrets),
        "after": _seconds(time.monotonic() - started),
    }
    encoded = "content-encoding" in response.headers  # the server ignored identity
    chunks: list[dict[str, Any]] = []
    whole: list[bytes] = []

    def on_chunk(data: bytes, after: float) -> None:
        if kind is None or encoded:
            whole.append(data)
        else:
            chunks.append({"after": _seconds(after), **encode_chunk(data, kind, secrets)})

    def on_end(complete: bool) -> None:
        if kind is None or encoded:
            stored.update(encode_body(b"".join(whole), () if encoded else secrets))
            if encoded:  # kept byte for byte: a masked gzip stream would not decode
                stored["body_encoded"] = True
        else:
            stored["stream"] = chunks
        if not complete:
            stored["cut"] = True  # the caller stopped reading before the end
        done(stored)

    response.stream = _stream_classes(_httpx(request))[0](response.stream, on_chunk, on_end)
    return response


def replay(stored: dict[str, Any], request: Any, realtime: bool) -> Any:
    """A response built from ``stored`` for ``request``; with ``realtime`` its chunks come
    at their recorded pace."""
    httpx = _httpx(request)
    headers = [(k, v) for k, v in stored.get("headers", {}).items() if k not in _LENGTH_HEADERS]
    if stored.get("body_encoded"):
        headers += [(k, v) for k, v in stored["headers"].items() if k == "content-encoding"]
    if "stream" in stored:
        kind = stream_kind(stored.get("headers", {}).get("content-type", "")) or "sse"
        chunks = [(c.get("after", 0.0), decode_chunk(c, kind)) for c in stored["stream"]]
    else:
        body = decode_body(stored)
        headers.append(("content-length", str(len(body))))
        chunks = [(0.0, body)] if body else []
    # A response cut off while recording is cut off again where it was: the client sees
    # the same failure (an abandoned stream never reads that far).
    cut = httpx.RemoteProtocolError("the recorded response ended here: it was cut off")
    stream = _stream_classes(httpx)[1](chunks, realtime, cut if stored.get("cut") else None)
    return httpx.Response(
        stored["status"],
        headers=headers,
        stream=stream,
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )


def _seconds(value: float) -> float:
    return round(value, 4)


@cache
def _stream_classes(httpx: Any) -> tuple[type, type]:
    """Recording and replaying body streams for one httpx module (each checks its own
    ``AsyncByteStream`` class)."""

    class RecordingStream(httpx.AsyncByteStream):
        def __init__(self, inner: Any, on_chunk: Callable, on_end: Callable) -> None:
            self.inner, self.on_chunk, self.on_end = inner, on_chunk, on_end
            self.last = time.monotonic()
            self.ended = False

        async def __aiter__(self) -> Any:
            async for data in self.inner:
                now = time.monotonic()
                self.on_chunk(data, now - self.last)
                self.last = now
                yield data
            self._end(complete=True)

        def _end(self, complete: bool) -> None:
            if not self.ended:
                self.ended = True
                self.on_end(complete)

        async def aclose(self) -> None:
            self._end(complete=False)
            await self.inner.aclose()

    class ReplayStream(httpx.AsyncByteStream):
        def __init__(
            self, chunks: list[tuple[float, bytes]], realtime: bool, cut: Exception | None
        ) -> None:
            self.chunks, self.realtime, self.cut = chunks, realtime, cut

        async def __aiter__(self) -> Any:
            for after, data in self.chunks:
                if self.realtime and after > 0:
                    await asyncio.sleep(after)
                yield data
            if self.cut is not None:
                raise self.cut

        async def aclose(self) -> None:
            pass

    return RecordingStream, ReplayStream
