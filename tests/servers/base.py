"""Stdlib loopback HTTP server that replays a FIFO script of replies; protocols subclass it.

The server runs ``http.server.ThreadingHTTPServer`` in a daemon thread on 127.0.0.1 with
an ephemeral port and speaks HTTP/1.1 (keep-alive, chunked streaming), so official SDKs
behave exactly as against the real service, connection pooling included.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .replies import Hang, Json, Reply, Slow, Status, Text, ToolCalls, Truncate, split_json

# Errors meaning "the client is gone"; they end one exchange, never the server.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass(frozen=True)
class Request:
    """One request as the server saw it. ``headers`` keys are lower-case; ``body`` is the
    parsed JSON body, or None when there is none or it is not JSON."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""
    raw: bytes = b""


@dataclass
class Frames:
    """A streaming response as wire frames, split where faults cut in: ``body`` (opening
    events and content deltas) and ``end`` (the closing events a complete stream has)."""

    body: list[bytes] = field(default_factory=list)
    end: list[bytes] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    """Wire-level I/O for one connection; every decision is delegated to the owner server."""

    protocol_version = "HTTP/1.1"  # keep-alive + chunked, as the real APIs
    # Headers and body go out in separate writes; with Nagle on, the client's delayed
    # ACK would add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    def read_request(self) -> Request:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(self.command, parts.path, headers, body, parts.query, raw)

    def send_json(self, code: int, obj: Any, headers: dict[str, str], cut: bool = False) -> None:
        """Send a JSON response; with ``cut`` announce the full length but send only half,
        then drop the connection (a truncated non-streaming body)."""
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if cut else data)
        if cut:
            self.abort()

    def start_stream(self, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def write_chunk(self, data: bytes) -> bool:
        """Write one chunk; False if the client has gone away."""
        if self.peer_gone():
            return False
        try:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        except _GONE:
            return False
        return True

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def abort(self) -> None:
        """Drop the connection without finishing the response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def peer_gone(self, timeout: float = 0.0) -> bool:
        """True once the client has closed its end. Writing alone cannot tell: the kernel
        accepts the first write after the peer's FIN, so look for EOF on the read side."""
        try:
            readable, _, _ = select.select([self.connection], [], [], timeout)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler must never keep pytest alive
    request_queue_size = 256  # benchmarks open 100+ connections at once
    owner: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-exchange is expected in fault tests; stay quiet then.
        if not isinstance(sys.exc_info()[1], _GONE):
            super().handle_error(request, client_address)


class ScriptedServer:
    """Base server: a thread-safe FIFO script of replies, request recording and fault
    handling. Subclasses set the paths and encode replies in their API's wire format."""

    chat_path: ClassVar[str] = "/chat"
    stream_content_type: ClassVar[str] = "text/event-stream"
    stream_by_default: ClassVar[bool] = False

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._script: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._disconnects = 0
        self._ids: dict[str, int] = {}
        self._conns: set[socket.socket] = set()
        self._connections = 0
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: What to answer when the script is empty (benchmarks set a long reply here).
        self.default_reply: Reply = Text("ok")

    # -- protocol hooks -------------------------------------------------------------

    def encode_response(self, reply: Text | ToolCalls, request: Request) -> dict[str, Any]:
        """The non-streaming JSON body for a reply."""
        raise NotImplementedError

    def encode_stream(self, reply: Text | ToolCalls, request: Request) -> Frames:
        """The streaming frames for a reply."""
        raise NotImplementedError

    def error_body(self, code: int, message: str | None = None) -> dict[str, Any]:
        """The API's error body for an HTTP status."""
        return {"error": message or f"HTTP {code}"}

    def check_request(self, body: Any) -> str | None:
        """Why the real API would reject this chat request (answered with a 400), or None.
        Protocols check what they must: structured-output requests, for one."""
        return None

    def structured(self, reply: Json, request: Request) -> Text | ToolCalls:
        """A typed answer as this API sends it; by default, the JSON as message content."""
        pieces = split_json(reply.text())
        chunks = reply.chunks if reply.chunks is not None else len(pieces)
        return Text(reply.text(), chunks=chunks, input_tokens=reply.input_tokens)

    def response_headers(self) -> dict[str, str]:
        """Extra headers on every response (request ids)."""
        return {}

    def wants_stream(self, body: Any) -> bool:
        """Whether to stream, from the request's "stream" field."""
        if isinstance(body, dict) and "stream" in body:
            return bool(body["stream"])
        return self.stream_by_default

    def get_routes(self) -> dict[str, Callable[[Request], Any]]:
        """GET path -> function returning the JSON body."""
        return {}

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
            name=f"{type(self).__name__}:{httpd.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()  # wakes Slow/Hang handlers
        httpd.shutdown()
        httpd.server_close()
        # Pooled keep-alive connections would otherwise park handler threads forever.
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public state ---------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> ScriptedServer:
        """Append replies; each chat POST consumes the next (``Text("ok")`` when empty)."""
        with self._cond:
            self._script.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._cond:
            return len(self._script)

    @property
    def requests(self) -> list[Request]:
        """Snapshot of all requests received so far, in order."""
        with self._cond:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        """Responses the client abandoned before they were complete."""
        with self._cond:
            return self._disconnects

    @property
    def connections(self) -> int:
        """Connections clients have opened so far (a pooled client reuses one)."""
        with self._cond:
            return self._connections

    def wait_disconnects(self, n: int = 1, timeout: float = 2.0) -> bool:
        """Block until at least ``n`` disconnects were seen (they are noticed on the
        server thread, slightly after the client hangs up)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._disconnects >= n, timeout)

    def next_id(self, prefix: str) -> str:
        """Sequential ids per prefix ("toolu_1", "toolu_2", ...), unique per server."""
        with self._cond:
            n = self._ids[prefix] = self._ids.get(prefix, 0) + 1
        return f"{prefix}{n}"

    # -- internals ------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)
            self._connections += add

    def _count_disconnect(self) -> None:
        with self._cond:
            self._disconnects += 1
            self._cond.notify_all()

    def _next_reply(self) -> Reply:
        with self._cond:
            return self._script.popleft() if self._script else self.default_reply

    def _handle(self, h: _Handler) -> None:
        request = h.read_request()
        with self._cond:
            self._requests.append(request)
        headers = self.response_headers()
        try:
            if request.method == "POST" and request.path == self.chat_path:
                self._serve_chat(h, request, headers)
            elif request.method == "GET" and request.path in self.get_routes():
                h.send_json(200, self.get_routes()[request.path](request), headers)
            else:
                message = f"no route for {request.method} {request.path}"
                h.send_json(404, self.error_body(404, message), headers)
        except _GONE:
            self._count_disconnect()
            h.abort()

    def _serve_chat(self, h: _Handler, request: Request, headers: dict[str, str]) -> None:
        problem = self.check_request(request.body)
        if problem is not None:  # rejected before the model runs: no scripted reply is used
            return self._send_json(h, 400, self.error_body(400, problem), headers)
        reply = self._next_reply()
        while isinstance(reply, Slow):
            if self._stop.wait(reply.delay_s):
                return h.abort()
            reply = reply.then
        stream = self.wants_stream(request.body)
        if isinstance(reply, Json):
            reply = self.structured(reply, request)

        if isinstance(reply, Status):
            body = reply.body if reply.body is not None else self.error_body(reply.code)
            return self._send_json(h, reply.code, body, {**headers, **reply.headers})
        if isinstance(reply, (Text, ToolCalls)):
            if not stream:
                return self._send_json(h, 200, self.encode_response(reply, request), headers)
            frames = self.encode_stream(reply, request)
            h.start_stream(self.stream_content_type, headers)
            if self._write(h, frames.body + frames.end):
                h.end_stream()
            return None
        if isinstance(reply, Truncate):
            text = Text(reply.text)
            if not stream:
                return h.send_json(200, self.encode_response(text, request), headers, cut=True)
            h.start_stream(self.stream_content_type, headers)
            frames = self.encode_stream(text, request)
            if self._write(h, frames.body + (frames.end if reply.whole else [])):
                h.abort()  # no terminating chunk (and unless whole, no closing events)
            return None
        if isinstance(reply, Hang):
            text = Text(reply.text)
            if not stream:
                if self._stalled(h, reply.seconds):
                    return None
                return self._send_json(h, 200, self.encode_response(text, request), headers)
            frames = self.encode_stream(text, request)
            h.start_stream(self.stream_content_type, headers)
            if self._write(h, frames.body) and not self._stalled(h, reply.seconds):
                if self._write(h, frames.end):
                    h.end_stream()
            return None
        raise TypeError(f"not a reply: {reply!r}")

    def _send_json(self, h: _Handler, code: int, body: Any, headers: dict[str, str]) -> None:
        # A client that timed out while we were slow is a disconnect, not an answer.
        if h.peer_gone():
            self._count_disconnect()
            return h.abort()
        h.send_json(code, body, headers)

    def _write(self, h: _Handler, frames: list[bytes]) -> bool:
        for frame in frames:
            if not h.write_chunk(frame):
                self._count_disconnect()
                h.abort()
                return False
        return True

    def _stalled(self, h: _Handler, seconds: float) -> bool:
        """Wait up to ``seconds`` for the client to leave (counted as a disconnect) or the
        server to stop; True if either ended the exchange."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if h.peer_gone(timeout=min(0.05, left)):
                self._count_disconnect()
                h.abort()
                return True
            if self._stop.is_set():
                h.abort()
                return True
        return False
