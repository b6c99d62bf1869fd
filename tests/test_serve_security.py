"""The token guard compares the whole credential: no prefix, no empty token, no junk.

Driven through ``Guard`` as an ASGI server would call it (the served path is in
tests/test_serve.py). Checked against deliberate breaks: a prefix match, an empty
``Bearer `` accepted, trailing junk ignored, another scheme accepted.
"""

from __future__ import annotations

import asyncio

import pytest

from victor.serve.security import Guard

TOKEN = "test-token-0123456789abcdef"


async def status(guard: Guard, authorization: str | None) -> int:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    scope = {"type": "http", "path": "/v1/health", "headers": headers, "server": ("10.0.0.5", 80)}
    await guard(scope, receive, send)
    return sent[0]["status"] if sent else 200


def guard() -> Guard:
    async def app(scope, receive, send):
        pass  # reached only when the guard lets the request through: 200 above

    return Guard(app, token=TOKEN)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer  ",
        f"Bearer {TOKEN[:-1]}",  # a prefix of the token
        f"Bearer {TOKEN[:1]}",
        f"Bearer {TOKEN}x",  # the token and more
        f"Bearer {TOKEN} junk",
        f"Bearer {TOKEN},{TOKEN}",
        f"Bearer{TOKEN}",  # no space
        f"Basic {TOKEN}",  # another scheme
        f"Bearerx {TOKEN}",
        TOKEN,  # no scheme
        f"Token {TOKEN}",
    ],
)
def test_anything_but_the_whole_token_is_refused(authorization):
    assert asyncio.run(status(guard(), authorization)) == 401


@pytest.mark.parametrize(
    "authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN} "]
)
def test_the_token_is_accepted_with_the_scheme_in_any_case(authorization):
    assert asyncio.run(status(guard(), authorization)) == 200


def test_a_websocket_without_the_token_is_closed():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/ws", "headers": [], "server": ("10.0.0.5", 80)}
    asyncio.run(guard()(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
