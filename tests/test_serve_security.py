"""The token guard compares the whole credential: no prefix, no empty token, no junk.

Driven through ``Guard`` as an ASGI server would call it (the served path is in
tests/test_serve.py). Checked against deliberate breaks: a prefix match, an empty
``Bearer `` accepted, trailing junk ignored, another scheme accepted.
"""

from __future__ import annotations

import asyncio

import pytest

from victor.hosting.security import Guard

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


# -- what the guard answers, exactly ------------------------------------------------------


async def exchange(guard: Guard, scope_changes: dict, chunks=(b"",)) -> list[dict]:
    """One request through ``guard``; every ASGI message it sent."""
    sent: list[dict] = []
    body = list(chunks)

    async def receive():
        chunk = body.pop(0) if body else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(body)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/v1/runs", "headers": [], "server": ("127.0.0.1", 80)}
    await guard(scope | scope_changes, receive, send)
    return sent


def problem(sent: list[dict]) -> tuple[int, dict[bytes, bytes], dict]:
    import json

    start, body = sent
    assert start["type"] == "http.response.start" and body["type"] == "http.response.body"
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"content-length"] == str(len(body["body"])).encode()
    return start["status"], headers, json.loads(body["body"])


def test_a_refusal_is_problem_details_with_the_challenge():
    status, headers, body = problem(asyncio.run(exchange(guard(), {})))
    assert (status, headers[b"www-authenticate"]) == (401, b"Bearer")
    assert body == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "send the server's API token as 'Authorization: Bearer <token>'",
    }


def test_without_a_token_another_address_is_told_how_to_open_up():
    async def app(scope, receive, send):
        pass

    sent = asyncio.run(exchange(Guard(app, token=None), {"server": ("192.168.1.20", 80)}))
    status, _, body = problem(sent)
    assert status == 403 and body["title"] == "Forbidden"
    assert body["detail"] == (
        "this server has no API token, so it answers only on loopback; set VICTOR_API_TOKEN "
        "on the server to accept requests from other machines"
    )
    # No server address (a Unix socket): served, as loopback is.
    assert asyncio.run(exchange(Guard(app, token=None), {"server": None})) == []
    assert asyncio.run(exchange(Guard(app, token=None), {"server": ("::1", 80)})) == []


def echo_app(received: list[bytes]):
    async def app(scope, receive, send):
        assert scope["path"] == "/v1/runs"  # the request's own scope
        while True:
            message = await receive()
            received.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.parametrize("length", [b"11", b"-1", b"1e3", b"abc"])
def test_a_declared_length_over_the_limit_or_not_a_number_is_refused_unread(length):
    received: list[bytes] = []
    limited = Guard(echo_app(received), token=None, max_body_bytes=10)
    sent = asyncio.run(exchange(limited, {"headers": [(b"content-length", length)]}))
    status, _, body = problem(sent)
    assert status == 413 and received == [] and body["title"] == "Request too large"
    assert body["detail"] == "the request body is larger than this server accepts (10 bytes)"


def test_a_body_within_the_limit_is_passed_through():
    received: list[bytes] = []
    limited = Guard(echo_app(received), token=None, max_body_bytes=10)
    sent = asyncio.run(
        exchange(limited, {"headers": [(b"Content-Length", b"10")]}, [b"01234", b"56789"])
    )
    assert received == [b"01234", b"56789"]
    assert [m.get("status") for m in sent] == [200, None] and sent[1]["body"] == b"ok"


def test_a_body_without_a_length_that_grows_too_large_is_cut_off_with_413():
    received: list[bytes] = []
    limited = Guard(echo_app(received), token=None, max_body_bytes=10)
    sent = asyncio.run(exchange(limited, {}, [b"0123456789", b"x"]))
    status, _, _ = problem(sent)  # only the 413: the app's own answer is dropped
    assert status == 413 and received == [b"0123456789"]


def test_a_body_too_large_after_the_app_answered_ends_the_answer():
    """The app started its answer before reading the body: too late for a 413, so the
    rest of its answer is dropped (the client sees a cut-off response)."""
    sent_by_app = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while (await receive()).get("more_body"):
                pass
        except Exception:  # noqa: BLE001 - an app that carries on regardless
            sent_by_app.append("after")
        await send({"type": "http.response.body", "body": b"after the limit"})

    sent = asyncio.run(exchange(Guard(app, token=None, max_body_bytes=4), {}, [b"0123", b"4"]))
    assert sent == [{"type": "http.response.start", "status": 200, "headers": []}]
    assert sent_by_app == ["after"]


def test_the_default_body_limit_is_a_megabyte():
    assert Guard(echo_app([]), token=None).max_body_bytes == 1_000_000


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_lifespan_and_an_authorised_websocket_reach_the_app_as_they_are(kind):
    seen = []

    async def app(scope, receive, send):
        seen.append((scope, receive, send))

    async def receive():
        return {}

    async def send(message):
        pass

    headers = [(b"authorization", f"Bearer {TOKEN}".encode())]
    scope = {"type": kind, "path": "/", "headers": headers, "server": ("10.0.0.5", 80)}
    asyncio.run(Guard(app, token=TOKEN)(scope, receive, send))
    assert seen == [(scope, receive, send)]


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("127.0.0.9:11434", True),
        ("http://[::1]:8080", True),
        ("http://localhost:1234", True),
        ("https://api.openai.com/v1", False),
        ("http://localhost.example.com", False),
        ("http://10.0.0.1:8000", False),
        ("http://0.0.0.0:8000", False),
        ("", False),
    ],
)
def test_one_loopback_rule_for_binds_and_provider_urls(url: str, local: bool) -> None:
    # The same check decides whether serve may listen without a token and whether
    # block_requests() lets a provider's request through: one rule, tested both ways.
    from victor._util import is_loopback, url_is_loopback

    assert url_is_loopback(url) is local
    host = url.split("//")[-1].rsplit(":", 1)[0] if url else ""
    assert is_loopback(host) is local
