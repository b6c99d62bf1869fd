"""victor.testing.cassette: record from the loopback protocol servers through the official
clients, then replay with the servers stopped and every socket connection refused."""

from __future__ import annotations

import json
import socket
import time
import warnings
from contextlib import contextmanager

import pytest
from pydantic import BaseModel

from tests.servers import Call, Json, Status, Text, ToolCalls
from victor import Agent, AgentTeam
from victor.errors import (
    CassetteError,
    CassetteMiss,
    ConfigurationError,
    ProviderError,
    VictorError,
)
from victor.testing import cassette
from victor.tools import tool

SECRET = "sk-cassette-secret-0123456789abcdef"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class City(BaseModel):
    name: str
    population: int


@contextmanager
def no_connections():
    """Refuse (and count) every attempt to open a network connection in the block."""
    attempts = []
    real = socket.socket.connect, socket.socket.connect_ex

    def refuse(self, address):
        attempts.append(address)
        raise ConnectionRefusedError(f"socket guard: no connection to {address} in a replay")

    socket.socket.connect = socket.socket.connect_ex = refuse
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = real
    assert attempts == [], f"a replay tried to connect: {attempts}"


@pytest.fixture(params=["anthropic", "openai", "ollama"])
def served(request):
    """(provider name, server, keyword arguments for Agent.create)."""
    server = request.getfixturevalue(f"{request.param}_server")
    base_url = server.url + "/v1" if request.param == "openai" else server.url
    kwargs = {"base_url": base_url, "max_retries": 1, "timeout": 5.0}
    if request.param != "ollama":
        kwargs["api_key"] = SECRET
    return request.param, server, kwargs


async def session(name: str, kwargs: dict) -> dict:
    """What a user's test would do: a run with a tool call, a stream, a typed answer, a
    request that meets a 429 and is retried."""
    agent = await Agent.create(provider=name, tools=[add], **kwargs)
    seen = {"run": await agent.run("What is 2 + 3?")}
    seen["stream"] = [token async for token in agent.astream("Tell me a story")]
    city = await agent.run("The biggest city?", output_type=City)
    seen["typed"] = city.model_dump()
    seen["retried"] = await agent.run("Try again")
    await agent.cleanup()
    return seen


SCRIPT = (
    ToolCalls([Call("add", {"a": 2, "b": 3})]),
    Text("2 + 3 = 5"),
    Text("Once upon a time, a model answered.", chunks=5),
    Json({"name": "Tokyo", "population": 37_000_000}, tool="City"),
    Status(429, headers={"retry-after": "0"}),
    Text("after the rate limit"),
)


async def test_round_trip_replays_without_the_server(served, tmp_path):
    name, server, kwargs = served
    path = tmp_path / f"{name}.json"
    server.script(*SCRIPT)
    with cassette(path):
        recorded = await session(name, kwargs)
    assert recorded == {
        "run": "2 + 3 = 5",
        "stream": ["Once up", "on a ti", "me, a m", "odel an", "swered."],
        "typed": {"name": "Tokyo", "population": 37_000_000},
        "retried": "after the rate limit",
    }
    sent = len(server.requests)
    assert sent == 6  # tool turn, answer, stream, typed, 429, retry
    server.stop()

    with no_connections(), cassette(path, "none"):
        replayed = await session(name, kwargs)
    assert replayed == recorded  # the same chunks too: the stream keeps its chunking
    assert len(server.requests) == sent


async def test_recorded_streams_are_structured_events(served, tmp_path):
    name, server, kwargs = served
    path = tmp_path / "stream.json"
    server.script(Text("one two three"))
    agent = await Agent.create(provider=name, **kwargs)
    with cassette(path):
        assert [t async for t in agent.astream("count")] == ["one ", "two ", "three"]
    await agent.cleanup()
    text = path.read_text()
    stored = json.loads(text)["interactions"][0]
    assert stored["request"]["json"]["messages"][-1]["content"] in (
        "count",
        [{"type": "text", "text": "count"}],
    )
    events = [e for chunk in stored["response"]["stream"] for e in chunk.get("events", [])]
    assert events, "stream chunks are stored as parsed events"
    assert all(isinstance(e, dict) for e in events)
    assert '\\"' not in text, "no escaped JSON blobs in the file"


async def test_identical_requests_replay_in_recorded_order(served, tmp_path):
    name, server, kwargs = served
    path = tmp_path / "repeat.json"
    server.script(Text("first"), Text("second"), Text("third"))
    agent = await Agent.create(provider=name, **kwargs)
    with cassette(path):
        recorded = [await agent.run("same question") for _ in range(3)]
    assert recorded == ["first", "second", "third"]
    server.stop()
    agent = await Agent.create(provider=name, **kwargs)
    with no_connections(), cassette(path, "none"):
        assert [await agent.run("same question") for _ in range(3)] == recorded
        # A fourth was never recorded: the miss itself, not a connection error of the SDK's.
        with pytest.raises(CassetteMiss, match="already replayed"):
            await agent.run("same question")


async def test_a_miss_names_the_nearest_recording_and_the_first_difference(ollama_server, tmp_path):
    path = tmp_path / "miss.json"
    agent = await Agent.create(provider="ollama", base_url=ollama_server.url, max_retries=0)
    with cassette(path):
        await agent.run("What is the capital of France?")
        await agent.run("And of Italy?")
    ollama_server.stop()
    with no_connections(), cassette(path, "none"), pytest.raises(CassetteMiss) as info:
        await agent.run("What is the capital of Spain?")
    message = str(info.value)
    assert isinstance(info.value, VictorError)
    assert f"no recording in {path} answers POST /api/chat" in message
    assert "Nearest: recording #1, which differs at messages[0].content" in message
    assert "recorded: 'What is the capital of France?'" in message
    assert "this run: 'What is the capital of Spain?'" in message
    assert "new_episodes" in message


async def test_new_episodes_records_only_what_is_missing(ollama_server, tmp_path):
    path = tmp_path / "episodes.json"
    agent = await Agent.create(provider="ollama", base_url=ollama_server.url, max_retries=0)
    ollama_server.script(Text("Paris"), Text("Rome"))
    with cassette(path):
        assert await agent.run("France?") == "Paris"
    with cassette(path, "new_episodes"):
        assert await agent.run("France?") == "Paris"  # replayed
        assert await agent.run("Italy?") == "Rome"  # recorded
    assert len(ollama_server.requests) == 2
    assert len(json.loads(path.read_text())["interactions"]) == 2
    ollama_server.script(Text("Parigi"))
    with cassette(path, "all"):
        assert await agent.run("France?") == "Parigi"
    assert len(json.loads(path.read_text())["interactions"]) == 1


async def test_unused_recordings_warn_or_fail(ollama_server, tmp_path):
    path = tmp_path / "unused.json"
    agent = await Agent.create(provider="ollama", base_url=ollama_server.url, max_retries=0)
    with cassette(path):
        await agent.run("one")
        await agent.run("two")
    with pytest.warns(UserWarning, match=r"1 recording\(s\) in .* were not used: #2 POST"):
        with cassette(path, "none"):
            await agent.run("one")
    with pytest.raises(CassetteError, match="were not used"):
        with cassette(path, "none", fail_on_unused=True):
            await agent.run("one")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with cassette(path, "none", fail_on_unused=True):
            await agent.run("one")
            await agent.run("two")


async def test_secrets_are_scrubbed_at_record_time(openai_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-live-9f8e7d6c5b4a")
    path = tmp_path / "secret.json"
    openai_server.script(Text("noted"))
    agent = await Agent.create(
        provider="openai",
        base_url=openai_server.url + "/v1",
        api_key=SECRET,
        max_retries=0,
        extra_body={"api_key": "body-key-1234567890"},
        extra_headers={"Cookie": "session=abcdef123456", "X-Api-Key": SECRET},
    )
    with cassette(path):
        await agent.run("Remember tok-live-9f8e7d6c5b4a and ghp_abcdefghijklmnopqrstuvwxyz0123")
    assert SECRET in openai_server.requests[0].headers["authorization"]  # it was sent
    text = path.read_text()
    for secret in (SECRET, "body-key-1234567890", "session=abcdef", "tok-live-9f8e7d6c5b4a",
                   "ghp_abcdefghijklmnopqrstuvwxyz0123"):  # fmt: skip
        assert secret not in text
    headers = json.loads(text)["interactions"][0]["request"]["headers"]
    assert headers["authorization"] == headers["cookie"] == headers["x-api-key"] == "***"
    # a scrubbed body still matches on replay: the live request is scrubbed the same way
    openai_server.stop()
    with no_connections(), cassette(path, "none"):
        assert (
            await agent.run("Remember tok-live-9f8e7d6c5b4a and ghp_abcdefghijklmnopqrstuvwxyz0123")
            == "noted"
        )


def test_a_corrupted_cassette_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n "version": 1,\n "interactions": [\n  {"request": }\n ]\n}\n')
    with pytest.raises(CassetteError, match=rf"{path}:4:\d+: the cassette is not valid JSON"):
        with cassette(path, "none"):
            pass
    path.write_text(
        '{"version": 1, "interactions": [\n {"request": {"method": "POST",\n'
        ' "path": "/x"}, "response": {"status": 200}},\n {"request": {"path": "/y"}}]}\n'
    )
    with pytest.raises(CassetteError, match=rf"{path}:4: interaction 2 needs a \"request\""):
        with cassette(path, "none"):
            pass


def test_a_bad_mode_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="record='sometimes' is not a cassette mode"):
        cassette(tmp_path / "x.json", "sometimes")  # type: ignore[arg-type]


async def test_a_user_matcher_and_ignored_fields(ollama_server, tmp_path):
    path, url = tmp_path / "matcher.json", ollama_server.url
    agent = await Agent.create(provider="ollama", base_url=url, max_retries=0)
    ollama_server.script(Text("hello"))
    with cassette(path):
        await agent.run("Hi, it is 10:01")
    ollama_server.stop()

    def same_but_the_time(request, recorded):
        return (
            request["body"]["messages"][0]["content"][:9]
            == (recorded["body"]["messages"][0]["content"][:9])
        )

    with no_connections(), cassette(path, "none", match=same_but_the_time):
        assert await agent.run("Hi, it is 10:02") == "hello"
    hot = await Agent.create(provider="ollama", base_url=url, max_retries=0, temperature=0.1)
    with no_connections(), cassette(path, "none", ignore=["options"]):
        assert await hot.run("Hi, it is 10:01") == "hello"


async def test_a_team_run_replays(openai_server, tmp_path):
    path = tmp_path / "team.json"
    kwargs = {"base_url": openai_server.url + "/v1", "api_key": SECRET}
    openai_server.script(Text("from one"), Text("from two"))
    team = AgentTeam.flat(["researcher", "writer"], provider="openai", **kwargs)
    with cassette(path):
        recorded = await team.run("Write about cassettes")
    openai_server.stop()
    team = AgentTeam.flat(["researcher", "writer"], provider="openai", **kwargs)
    with no_connections(), cassette(path, "none"):
        replayed = await team.run("Write about cassettes")
    assert str(replayed) == str(recorded)
    assert [(t.agent, t.content) for t in replayed.transcript] == [
        (t.agent, t.content) for t in recorded.transcript
    ]


async def test_decorator_and_recording_streams_live(openai_server, tmp_path):
    from tests.servers import Hang

    path = tmp_path / "decorated.json"
    kwargs = {"base_url": openai_server.url + "/v1", "api_key": SECRET, "max_retries": 0}
    agent = await Agent.create(provider="openai", **kwargs)
    await agent.run("warm up")  # the SDK's first import is not what is measured
    openai_server.script(Hang(1.5, "thinking hard"))

    @cassette(path)
    async def ask() -> list[float]:
        import time

        start, arrivals = time.monotonic(), []
        async for _ in agent.astream("think"):
            arrivals.append(time.monotonic() - start)
        return [*arrivals, time.monotonic() - start]

    arrivals = await ask()
    # Recording does not hold the stream back: the first text came before the stall ended.
    assert arrivals[0] < 1.0 < arrivals[-1]
    assert json.loads(path.read_text())["interactions"][0]["response"]["stream"]


async def test_the_suites_secret_scan_finds_a_secret_left_in_a_cassette(tmp_path):
    from tests.cassette_scan import secrets_in

    path = tmp_path / "leaky.json"
    path.write_text(
        '{\n "headers": {"x-api-key": "***"},\n "note": "sk-ant-api03-abcdefghijklmnop"\n}'
    )
    assert secrets_in(path) == [f'{path}:3: "note": "***"']


def test_sync_code_and_the_decorator_replay_the_second_time(ollama_server, tmp_path):
    path, url = tmp_path / "sync.json", ollama_server.url
    ollama_server.script(Text("sync answer"))
    agent = Agent(provider="ollama", base_url=url, max_retries=0)

    @cassette(path)  # "once": records the first call, replays from then on
    def ask() -> str:
        return agent.run_sync("hi")  # on victor's own loop thread: the cassette goes along

    assert ask() == "sync answer"
    ollama_server.stop()
    with no_connections():
        assert ask() == "sync answer"


async def test_realtime_replays_at_the_recorded_pace(openai_server, tmp_path):
    from tests.servers import Hang

    path = tmp_path / "pace.json"
    kwargs = {"base_url": openai_server.url + "/v1", "api_key": SECRET, "max_retries": 0}
    openai_server.script(Hang(0.6, "slow end"))
    agent = await Agent.create(provider="openai", **kwargs)
    with cassette(path):
        assert await agent.run("wait") == "slow end"
    openai_server.stop()

    async def replay(realtime: bool) -> float:
        start = time.monotonic()
        with cassette(path, "none", realtime=realtime):
            assert await agent.run("wait") == "slow end"
        return time.monotonic() - start

    assert await replay(realtime=False) < 0.3
    assert await replay(realtime=True) >= 0.55  # the stall before the closing events


async def test_replay_only_without_a_file_says_so(ollama_server, tmp_path):
    agent = await Agent.create(provider="ollama", base_url=ollama_server.url, max_retries=0)
    with cassette(tmp_path / "never.json", "none"), pytest.raises(CassetteMiss) as info:
        await agent.run("hi")
    assert "record='none' and the file does not exist yet" in str(info.value)
    assert "No recording has POST /api/chat; recorded: none" in str(info.value)
    assert not ollama_server.requests and not (tmp_path / "never.json").exists()


async def test_a_stream_cut_off_while_recording_is_cut_off_on_replay(served, tmp_path):
    from tests.servers import Truncate

    name, server, kwargs = served
    path = tmp_path / "cut.json"
    server.script(Truncate("half an answer"))
    agent = await Agent.create(provider=name, **kwargs)

    async def listen() -> tuple[list[str], str]:
        tokens = []
        with pytest.raises(ProviderError) as info:
            async for token in agent.astream("tell me"):
                tokens.append(token)
        return tokens, str(info.value).split(" (")[0]

    with cassette(path):
        recorded = await listen()
    assert recorded[0] == ["half ", "an ", "answer"]
    server.stop()
    with no_connections(), cassette(path, "none"):
        assert await listen() == recorded


async def test_a_replay_works_where_real_requests_are_blocked(openai_server, tmp_path):
    # This suite's conftest calls block_requests(): a cassette recorded from a hosted API
    # must still replay here, and recording one must still be refused.
    path = tmp_path / "hosted.json"
    openai_server.script(Text("recorded from the API"))
    loopback = await Agent.create(
        provider="openai", base_url=openai_server.url + "/v1", api_key=SECRET
    )
    with cassette(path):
        await loopback.run("hello")
    hosted = await Agent.create(
        provider="openai", base_url="https://api.openai.example/v1", api_key=SECRET
    )
    with no_connections(), cassette(path, "none"):
        assert await hosted.run("hello") == "recorded from the API"
    with cassette(tmp_path / "new.json"), pytest.raises(CassetteError) as info:
        await hosted.run("hello")
    assert "recording it needs api.openai.example, but real model requests are blocked" in str(
        info.value
    )


async def test_a_replay_needs_no_api_key(served, tmp_path):
    name, server, kwargs = served
    path = tmp_path / "keys.json"
    server.script(Text("answered"))
    with cassette(path):
        assert await (await Agent.create(provider=name, **kwargs)).run("hi") == "answered"
    server.stop()
    keyless = {k: v for k, v in kwargs.items() if k != "api_key"}  # as in CI: no key set
    with no_connections(), cassette(path, "none"):
        assert await (await Agent.create(provider=name, **keyless)).run("hi") == "answered"
    if name == "anthropic":  # recording still needs the key (OpenAI on loopback does not)
        with cassette(tmp_path / "new.json"), pytest.raises(ConfigurationError, match="_API_KEY"):
            await (await Agent.create(provider=name, **keyless)).run("hi")
        # The same agent after its replay: the client made with the replay's placeholder key
        # is not reused for a live request, which says the key is missing, not "401".
        agent = await Agent.create(provider=name, **keyless)
        with no_connections(), cassette(path, "none"):
            assert await agent.run("hi") == "answered"
        with pytest.raises(ConfigurationError, match="_API_KEY"):
            await agent.run("hi")
        with no_connections(), cassette(path, "none"):  # and a replay again after that
            assert await agent.run("hi") == "answered"
        await agent.cleanup()


async def test_a_provider_the_cassette_cannot_see_stays_blocked(tmp_path):
    from victor.core.messages import AgentResponse
    from victor.providers.base import Provider

    class OwnHTTP(Provider):  # a user's provider with its own client: no tap sees it
        name = "own-http"

        def _create_client(self):
            return None

        async def _chat(self, messages, tools):
            return AgentResponse(content="sent to the network")

        async def _stream(self, messages, tools):
            yield None

    agent = await Agent.create(provider=OwnHTTP(base_url="https://models.example"))
    with cassette(tmp_path / "own.json"), pytest.raises(ProviderError, match="are blocked"):
        await agent.run("hi")
