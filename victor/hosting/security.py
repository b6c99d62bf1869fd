"""Who may reach a server: the bind and token rules, and ``Guard``, the ASGI layer in
front of every route (the MCP endpoint included).

- Without an API token a server listens on loopback only (``check_bind``); a port in use
  is said before the server is announced (``free_port``).
- With a token, every request must carry ``Authorization: Bearer <token>`` (compared in
  constant time); without one, requests arriving on a non-loopback address are refused,
  however the server was started.
- Request bodies above the limit are answered 413 before the app reads them.

Plain ASGI, so it needs neither FastAPI nor Starlette.
"""

from __future__ import annotations

import errno
import functools
import hmac
import os
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._util import is_loopback
from ..errors import ConfigurationError
from .problem import PROBLEM_TYPE, Problem

__all__ = ["Guard", "TOKEN_VARIABLE", "check_bind", "free_port", "is_loopback", "token_from_env"]

#: The environment variable holding the API token (never a command-line flag: those show
#: in ``ps`` and shell history).
TOKEN_VARIABLE = "VICTOR_API_TOKEN"


def token_from_env() -> str | None:
    """The API token from the environment (None when unset or empty)."""
    return os.environ.get(TOKEN_VARIABLE) or None


@functools.lru_cache(maxsize=64)  # asked for every request's local address
def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token, saying why."""
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to listen on {host!r} without an API token: anyone who can reach this "
            f"address could run your agents, their tools and your API keys. Set "
            f"{TOKEN_VARIABLE} (clients then send 'Authorization: Bearer <token>'), or listen "
            f"on 127.0.0.1"
        )


def free_port(host: str, port: int) -> int:
    """``port`` if nothing listens on it at ``host`` (0: a free port the system picks), so
    a port in use is one line saying so before the server is announced, not uvicorn's
    log after it. Bound as uvicorn binds (``SO_REUSEADDR``: a port left in TIME_WAIT by
    the last server is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"port {port} on {host} is in use: stop what listens there, or use another "
                    f"port (--port {port % 65535 + 1}, or --port 0 for any free one)"
                ) from None
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"
            ) from None
        return probe.getsockname()[1]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class Guard:
    """Token check, loopback rule and body-size limit around an ASGI app."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int = 1_000_000):
        self.app = app
        self._token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            return await self.app(scope, receive, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            if scope["type"] == "websocket":  # none are served, but none get past either
                return await send({"type": "websocket.close", "code": 1008})
            return await _send_problem(send, refusal)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return await _send_problem(send, self._too_large())

        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not refused:
                    # A body without Content-Length that grows too large: answer 413 here
                    # (the app would turn the error into a 400) and drop its answer.
                    refused = True
                    if not started:
                        await _send_problem(send, self._too_large())
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _TooLarge:
            pass

    def _refusal(self, scope: Scope) -> Problem | None:
        if self._token is None:
            server = scope.get("server") or ("127.0.0.1", 0)
            if server[0] is not None and not is_loopback(str(server[0])):
                return Problem(
                    403,
                    "Forbidden",
                    f"this server has no API token, so it answers only on loopback; set "
                    f"{TOKEN_VARIABLE} on the server to accept requests from other machines",
                )
            return None
        header = _header(scope, b"authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self._token
        ):
            return None
        return Problem(
            401,
            "Unauthorized",
            "send the server's API token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _too_large(self) -> Problem:
        return Problem(
            413,
            "Request too large",
            f"the request body is larger than this server accepts ({self.max_body_bytes} bytes)",
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _send_problem(send: Send, problem: Problem) -> None:
    body = problem.json()
    headers = [
        (b"content-type", PROBLEM_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in problem.headers.items()),
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
