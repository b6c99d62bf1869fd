"""`victor serve`: uvicorn on 127.0.0.1 (a free port) and real httpx clients, streaming
included; agents on victor.testing providers or on the Anthropic protocol server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import Call, Hang, Status, Text, ToolCalls
from tests.timing import PROMPTLY, STALL
from victor import Agent, AgentTeam, ConfigurationError
from victor.cli import main as victor_cli
from victor.core.events import EventBus
from victor.hosting.security import Guard
from victor.serve import ServeSettings, load_app, start
from victor.testing import FunctionProvider, ScriptedProvider, call
from victor.tools import tool

TOKEN = "test-token-0123456789abcdef"
SECRET = "sk-ant-serve-secret-4242"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(requires_approval=True)
def launch(target: str) -> str:
    """Do something that needs approval."""
    return f"launched {target}"


@contextmanager
def serving(**settings) -> Iterator[httpx.Client]:
    """A victor server on a free port, and a client for it."""
    settings.setdefault("mcp", False)
    with start(ServeSettings(**settings)) as server:
        headers = {"Authorization": f"Bearer {settings['token']}"} if settings.get("token") else {}
        with httpx.Client(base_url=server.url, headers=headers, timeout=STALL) as client:
            client.server = server  # type: ignore[attr-defined]
            yield client


def sse(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs of a Server-Sent Events response, as they arrive."""
    event, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def runs_in_progress(client: httpx.Client) -> int:
    return client.get("/v1/health").json()["runs_in_progress"]


def wait_idle(client: httpx.Client) -> None:
    deadline = time.monotonic() + PROMPTLY
    while runs_in_progress(client) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runs_in_progress(client) == 0


def is_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


# -- runs and streams ------------------------------------------------------------------


def test_run_returns_the_answer_and_usage():
    agent = Agent(provider=ScriptedProvider([call("add", a=2, b=3), "2 + 3 = 5"]), tools=[add])
    with serving(agents={"calc": agent}) as client:
        response = client.post("/v1/runs", json={"task": "What is 2 + 3?"})
    assert response.status_code == 200
    body = response.json()
    assert (body["agent"], body["content"], body["iterations"]) == ("calc", "2 + 3 = 5", 2)
    spent = body["usage"]
    assert spent["output_tokens"] == 10 + 5  # a tool call, then five words
    assert spent["total_tokens"] == spent["input_tokens"] + spent["output_tokens"]
    assert agent.last_run is None  # each request runs on its own view of the agent


def test_stream_is_the_runs_events_one_to_one():
    adding = call("add", a=2, b=3)
    script = [adding, "The sum is 5."]
    local = Agent(provider=ScriptedProvider(script), tools=[add])

    async def in_process() -> list[str]:
        return [event.kind async for event in local.events("Add 2 and 3")]

    expected = asyncio.run(in_process())
    agent = Agent(provider=ScriptedProvider(script), tools=[add])
    with serving(agents={"calc": agent}) as client:
        with client.stream("POST", "/v1/runs/stream", json={"task": "Add 2 and 3"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(sse(response))
    assert [kind for kind, _ in events] == ["run_started", *expected]
    by_kind = {kind: data for kind, data in events}
    assert by_kind["run_started"]["run_id"].startswith("run_")
    assert by_kind["run_started"].items() <= by_kind["run_finished"].items()  # run_id, agent
    started = {"id": adding.id, "name": "add", "arguments": {"a": 2, "b": 3}}
    assert by_kind["tool_started"] == started
    assert by_kind["tool_finished"]["output"] == "5" and by_kind["tool_finished"]["success"]
    text = "".join(data["text"] for kind, data in events if kind == "text")
    assert text == "The sum is 5." == events[-1][1]["content"]
    assert events[-1][0] == "run_finished" and events[-1][1]["usage"]["output_tokens"] > 0


def test_stream_over_the_anthropic_protocol(anthropic_server):
    reply = Text("Paris is the capital.", chunks=4)
    anthropic_server.script(reply)
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, api_key=SECRET)
    with serving(agents={"claude": agent}) as client:
        with client.stream("POST", "/v1/runs/stream", json={"task": "Capital?"}) as response:
            events = list(sse(response))
    assert [data["text"] for kind, data in events if kind == "text"] == reply.pieces()
    assert events[-1][1]["provider"] == "anthropic"
    assert anthropic_server.requests[-1].body["stream"] is True


def test_a_client_that_disconnects_cancels_its_run_and_the_model_stream(anthropic_server):
    anthropic_server.script(Hang(seconds=STALL, text="thinking hard"))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, api_key=SECRET)
    with EventBus.capture("agent.*") as seen, serving(agents={"claude": agent}) as client:
        with client.stream("POST", "/v1/runs/stream", json={"task": "Think"}) as response:
            events = sse(response)  # (kept: closing the reader early would hang up too)
            assert next(events)[0] == "run_started"
            assert next(events) == ("text", {"text": "thinking "})
            assert runs_in_progress(client) == 1
        # The model server sees its stream closed: the run was cancelled, not left running.
        assert anthropic_server.wait_disconnects(1, timeout=PROMPTLY)
        wait_idle(client)
    errors = [e.data for e in seen if e.type == "agent.error"]
    assert errors == [{"error": "cancelled", "error_type": "CancelledError"}]


def test_a_client_that_gives_up_on_a_plain_run_cancels_it_too(anthropic_server):
    anthropic_server.script(Hang(seconds=STALL))  # answers only after STALL seconds
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, api_key=SECRET)
    with EventBus.capture("agent.error") as errors, serving(agents={"claude": agent}) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/runs", json={"task": "Think"}, timeout=0.5)
        assert anthropic_server.wait_disconnects(1, timeout=PROMPTLY)
        wait_idle(client)
    assert [e.data["error"] for e in errors] == ["cancelled"]


def test_a_quiet_stream_is_kept_open_with_comment_lines(monkeypatch):
    import victor.serve.streaming

    monkeypatch.setattr(victor.serve.streaming, "PING_SECONDS", 0.05)
    agent = Agent(provider=ScriptedProvider(["slow words here"], chunk_delay=0.3))
    with serving(agents={"slow": agent}) as client:
        with client.stream("POST", "/v1/runs/stream", json={"task": "go"}) as response:
            raw = response.read().decode()
    assert ": ping\n\n" in raw
    events = list(sse(httpx.Response(200, content=raw.encode())))
    kinds = [kind for kind, _ in events]
    assert kinds == ["run_started"] + ["text"] * 3 + ["response", "run_finished"]


def test_every_stream_says_at_once_that_its_run_started_and_pings_while_the_model_is_silent(
    anthropic_server, monkeypatch
):
    """Proxies and people see a stream is alive before the model says anything: the first
    event, ``run_started`` with the run's id, comes at once, then a comment line each
    ``PING_SECONDS`` of quiet (15 s; shortened here)."""
    import victor.serve.streaming

    monkeypatch.setattr(victor.serve.streaming, "PING_SECONDS", 0.05)
    silent = Hang(seconds=STALL, text="")  # the model answers nothing for STALL seconds
    anthropic_server.script(silent, silent, silent)

    def model(role: str | None = None) -> Agent:
        return Agent(role, provider="anthropic", base_url=anthropic_server.url, api_key=SECRET)

    team = AgentTeam.pipeline([model("writer"), model("editor")])
    requests = {
        "/v1/runs/stream": {"agent": "claude", "task": "Think"},
        "/v1/teams/runs/stream": {"team": "desk", "task": "Think"},
        "/v1/workflows/runs/stream": {"workflow": "explain", "agent": "claude"},
    }
    with serving(agents={"claude": model(), "desk": team}) as client:
        for asked, (path, body) in enumerate(requests.items(), 1):
            with client.stream("POST", path, json=body, timeout=PROMPTLY) as response:
                lines, deadline = response.iter_lines(), time.monotonic() + PROMPTLY
                assert next(lines) == "event: run_started", path
                started = json.loads(next(lines).removeprefix("data: "))
                assert started["run_id"] and next(lines) == ""
                while len(anthropic_server.requests) < asked:  # the model is asked...
                    assert time.monotonic() < deadline, path
                    time.sleep(0.01)
                while (line := next(lines)) != ": ping":  # (a team's delegation may come first)
                    assert time.monotonic() < deadline and line != "event: text", (path, line)
                assert runs_in_progress(client) == 1  # ...and has not answered
            wait_idle(client)
    assert anthropic_server.wait_disconnects(3, timeout=PROMPTLY)  # each run was cut short


def test_agent_and_team_streams_speak_one_vocabulary():
    """A member's text and tool calls in a team stream have the names and fields they
    have in an agent's stream; what teams add is named in the same style, and every
    name is in the route's OpenAPI description."""
    adding = call("add", a=2, b=3)

    def adder() -> Agent:
        provider = ScriptedProvider([adding, "The sum is 5."])
        return Agent(role="adder", provider=provider, tools=[add])

    team = AgentTeam.pipeline([adder(), Agent(role="checker", provider=ScriptedProvider(["ok"]))])
    with serving(agents={"calc": adder(), "desk": team}) as client:
        with client.stream("POST", "/v1/runs/stream", json={"task": "2 + 3"}) as response:
            solo = list(sse(response))
        with client.stream("POST", "/v1/teams/runs/stream", json={"task": "2 + 3"}) as response:
            together = list(sse(response))
        paths = client.get("/openapi.json").json()["paths"]
    alone, teamed = {k for k, _ in solo}, {k for k, _ in together}
    assert {"run_started", "text", "response", "tool_finished", "run_finished"} <= alone & teamed
    assert {"agent_started", "agent_finished", "delegated"} <= teamed
    assert all(name.isidentifier() and name.islower() for name in alone | teamed)
    for path, names in (("/v1/runs/stream", alone), ("/v1/teams/runs/stream", teamed)):
        described = paths[path]["post"]["responses"]["200"]["description"]
        assert all(f"`{name}`" in described for name in names), (path, names, described)
    tool = next(data for kind, data in solo if kind == "tool_finished")
    member_tool = next(data for kind, data in together if kind == "tool_finished")
    assert {k: member_tool[k] for k in tool if k != "duration_ms"} == {
        k: v for k, v in tool.items() if k != "duration_ms"
    }
    assert member_tool["agent"] == "adder"
    member_text = [d["text"] for k, d in together if k == "text" and d["agent"] == "adder"]
    assert "".join(member_text) == "The sum is 5." == solo[-1][1]["content"]
    usages = [d["usage"] for k, d in solo + together if k == "response"]
    assert {tuple(u) for u in usages} == {("input_tokens", "output_tokens", "total_tokens")}


def test_a_422_lists_each_error_once():
    """The body is validated once (FastAPI validates it for every dependant declaring it:
    once in a route and once in its dependency made every error appear twice)."""
    agent = Agent(provider=ScriptedProvider(["hi"]))
    team = AgentTeam.pipeline([Agent(role="a"), Agent(role="b")])
    bad = {
        "/v1/runs": {"task": "", "bogus": 1},
        "/v1/runs/stream": {"task": "", "bogus": 1},
        "/v1/chat": {"message": "", "bogus": 1},
        "/v1/chat/stream": {"message": "", "bogus": 1},
        "/v1/teams/runs": {"task": "", "bogus": 1},
        "/v1/teams/runs/stream": {"task": "", "bogus": 1},
        "/v1/workflows/runs": {"workflow": 3, "bogus": 1},
        "/v1/workflows/runs/stream": {"workflow": 3, "bogus": 1},
    }
    with serving(agents={"a": agent, "t": team}) as client:
        answers = {path: client.post(path, json=body) for path, body in bad.items()}
    for path, response in answers.items():
        errors = is_problem(response, 422)["errors"]
        assert [e["loc"][-1] for e in errors] == [next(iter(bad[path])), "bogus"], path


def test_a_burst_of_events_goes_out_first_event_first_then_in_one_write(monkeypatch):
    """A model's stream arrives a network read at a time, many events each: the first is
    written at once (time to first token), the rest of the burst joined into one write."""
    from victor.serve import streaming

    monkeypatch.setattr(streaming, "COALESCE_SECONDS", 60.0)

    async def burst():  # 50 events ready at once: no await between them
        for i in range(50):
            yield f"e{i},"

    async def writes() -> list[bytes]:
        return [out async for out in streaming.Frames(burst(), str.encode)]

    written = asyncio.run(writes())
    assert written == [b"e0,", "".join(f"e{i}," for i in range(1, 50)).encode()]


def test_a_stream_starts_its_run_while_the_headers_go_out_and_cancels_it_if_they_fail():
    """The model's request should not wait for the response headers to be written; and a
    response that cannot be written (the client is gone) leaves no run behind."""
    from starlette.requests import ClientDisconnect

    from victor.serve.streaming import EventStream

    async def respond() -> tuple[bool, bool]:
        started, finished = asyncio.Event(), asyncio.Event()

        async def events():
            started.set()
            try:
                yield "e"
                await asyncio.sleep(STALL)
            finally:
                finished.set()

        async def send(message):  # the headers are written only once the run has begun
            await asyncio.wait_for(started.wait(), PROMPTLY)
            raise OSError("the client went away")

        async def receive():
            await asyncio.sleep(STALL)

        response = EventStream(events(), str.encode)
        scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
        with pytest.raises(ClientDisconnect):
            await response(scope, receive, send)
        await asyncio.wait_for(finished.wait(), PROMPTLY)
        return started.is_set(), finished.is_set()

    assert asyncio.run(respond()) == (True, True)


def test_errors_mid_stream_end_the_stream_with_problem_details():
    def fail(messages, tools):
        raise RuntimeError(f"database password {SECRET} rejected")

    agent = Agent(provider=FunctionProvider(fail))
    with serving(agents={"broken": agent}) as client:
        with client.stream("POST", "/v1/runs/stream", json={"task": "go"}) as response:
            assert response.status_code == 200
            events = list(sse(response))
        plain = client.post("/v1/runs", json={"task": "go"})
    assert [kind for kind, _ in events] == ["run_started", "error"]
    assert events[1][1]["status"] == 500 and "server log" in events[1][1]["detail"]
    body = is_problem(plain, 500)
    assert SECRET not in plain.text and "password" not in plain.text
    assert body["title"] == "Internal server error"


def test_provider_failures_are_502_and_never_show_the_key(anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    anthropic_server.script(Status(500), Status(500))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, max_retries=0)
    with serving(agents={"claude": agent}) as client:
        response = client.post("/v1/runs", json={"task": "Hello"})
    body = is_problem(response, 502)
    assert "anthropic" in body["detail"] and "500" in body["detail"]
    assert SECRET not in response.text
    assert SECRET in str(anthropic_server.requests[-1].headers)  # it was really sent


def test_requests_name_what_they_want():
    one = Agent(provider=ScriptedProvider(["from one"]))
    two = Agent(provider=ScriptedProvider(["from two"]))
    with serving(agents={"one": one, "two": two}) as client:
        missing = client.post("/v1/runs", json={"task": "hi"})
        unknown = client.post("/v1/runs", json={"agent": "tow", "task": "hi"})
        empty = client.post("/v1/runs", json={"agent": "one", "task": ""})
        extra = client.post("/v1/runs", json={"agent": "one", "task": "hi", "temperature": 2})
        ok = client.post("/v1/runs", json={"agent": "two", "task": "hi"})
        listed = client.get("/v1/agents").json()
    assert "one, two" in is_problem(missing, 422)["detail"]
    assert "Did you mean 'two'?" in is_problem(unknown, 404)["detail"]
    assert is_problem(empty, 422)["detail"] == "task: String should have at least 1 character"
    assert "temperature" in is_problem(extra, 422)["detail"]
    assert ok.json()["content"] == "from two"
    assert [a["name"] for a in listed["agents"]] == ["one", "two"]
    assert listed["agents"][0]["provider"] == "scripted" and "code-review" in listed["workflows"]


def test_profiles_are_served_when_no_agents_are_given(monkeypatch, tmp_path):
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    (tmp_path / "profiles.toml").write_text('[profiles.helper]\nprovider = "anthropic"\n')
    with serving() as client:
        agents = {a["name"]: a for a in client.get("/v1/agents").json()["agents"]}
    assert {"helper", "development", "production", "local"} <= set(agents)
    assert agents["helper"] == {
        "name": "helper",
        "aliases": [],
        "kind": "agent",
        "source": "profile",
        "role": None,
        "provider": "anthropic",
        "model": None,
        "tools": [],
    }


# -- conversations, teams, workflows, AG-UI ---------------------------------------------


def test_chat_keeps_conversations_apart_by_id():
    def echo(messages, tools):
        return " | ".join(m.content for m in messages if m.role == "user")

    agent = Agent(provider=FunctionProvider(echo))
    with serving(agents={"echo": agent}) as client:
        first = client.post("/v1/chat", json={"message": "I am Ada"}).json()
        other = client.post("/v1/chat", json={"message": "I am Bob"}).json()
        again = client.post(
            "/v1/chat", json={"message": "Who am I?", "conversation_id": first["conversation_id"]}
        ).json()
        with client.stream(
            "POST",
            "/v1/chat/stream",
            json={"message": "And now?", "conversation_id": other["conversation_id"]},
        ) as response:
            streamed = list(sse(response))
        history = client.get(f"/v1/conversations/{first['conversation_id']}").json()
        deleted = client.delete(f"/v1/conversations/{first['conversation_id']}")
        gone = client.post(
            "/v1/chat", json={"message": "Hello?", "conversation_id": first["conversation_id"]}
        )
    assert first["conversation_id"] != other["conversation_id"]
    assert again["content"] == "I am Ada | Who am I?"
    assert streamed[-1][1]["content"] == "I am Bob | And now?"
    assert streamed[-1][1]["conversation_id"] == other["conversation_id"]
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2
    assert deleted.status_code == 204
    assert "start a new one" in is_problem(gone, 404)["detail"]


def test_team_run_and_stream():
    def team():
        writer = Agent(role="writer", provider=ScriptedProvider(["a draft"]))
        editor = Agent(role="editor", provider=ScriptedProvider(["the final text"]))
        return AgentTeam.pipeline([writer, editor], name="desk")

    with serving(agents={"desk": team()}) as client:
        result = client.post("/v1/teams/runs", json={"task": "Write a haiku"}).json()
    with serving(agents={"desk": team()}) as client:
        with client.stream("POST", "/v1/teams/runs/stream", json={"task": "Write"}) as response:
            events = list(sse(response))
    assert result["content"] == "the final text" and result["formation"] == "pipeline"
    assert set(result["usage_by_agent"]) == {"writer", "editor"}
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert {"delegated", "agent_started", "agent_finished"} <= set(kinds)
    started, finished = events[0][1], events[-1][1]
    assert started["members"] == ["writer", "editor"] and started["formation"] == "pipeline"
    assert finished["content"] == "the final text" and finished["run_id"] == started["run_id"]
    done = [data for kind, data in events if kind == "agent_finished"]
    assert [(d["agent"], d["content"]) for d in done] == [
        ("writer", "a draft"),
        ("editor", "the final text"),
    ]
    assert all(d["parent"] == started["run_id"] for d in done)


def test_workflow_run_and_stream():
    agent = Agent(provider=FunctionProvider(lambda messages, tools: "step done"))
    with serving(agents={"helper": agent}) as client:
        result = client.post(
            "/v1/workflows/runs", json={"workflow": "code-review", "input": {"code": "x = 1"}}
        ).json()
        with client.stream(
            "POST", "/v1/workflows/runs/stream", json={"workflow": "explain", "input": {"a": 1}}
        ) as response:
            events = list(sse(response))
        unknown = client.post("/v1/workflows/runs", json={"workflow": "code-reveiw"})
    assert list(result["steps"]) == ["understand", "review", "summary"]
    assert result["usage"]["total_tokens"] > 0
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["run_started", "step_started"] and kinds[-1] == "run_finished"
    assert "agent_finished" in kinds
    assert events[0][1]["run_id"] == events[-1][1]["run_id"] == events[1][1]["run_id"]
    assert "Did you mean 'code-review'?" in is_problem(unknown, 404)["detail"]


def test_ag_ui_runs_the_agent_with_the_front_ends_conversation():
    provider = ScriptedProvider([call("add", a=1, b=2), "It is 3."])
    agent = Agent(provider=provider, tools=[add])
    run_input = {
        "threadId": "thread-1",
        "runId": "run-1",
        "messages": [
            {"id": "m1", "role": "user", "content": "Remember: be brief."},
            {"id": "m2", "role": "assistant", "content": "OK."},
            {"id": "m3", "role": "user", "content": "What is 1 + 2?"},
        ],
        "tools": [],
        "context": [{"description": "units", "value": "none"}],
        "state": {},
        "forwardedProps": {},
    }
    with serving(agents={"calc": agent}) as client:
        with client.stream("POST", "/v1/agui/calc", json=run_input) as response:
            events = [data for _, data in sse(response)]
    types = [e["type"] for e in events]
    assert types == [
        "RUN_STARTED",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert events[0] == {"type": "RUN_STARTED", "threadId": "thread-1", "runId": "run-1"}
    assert events[2]["delta"] == '{"a": 1, "b": 2}' and events[4]["content"] == "3"
    assert events[-1]["result"] == "It is 3." and events[-1]["usage"][0]["totalTokens"] > 0
    sent = provider.requests[0]
    assert [(m.role, m.content.split("\n")[0]) for m in sent] == [
        ("user", "Remember: be brief."),
        ("assistant", "OK."),
        ("user", "What is 1 + 2?"),
    ]
    assert '<context name="units">' in sent[-1].content


def test_ag_ui_front_end_tools_are_offered_to_the_model_and_run_by_the_front_end(
    anthropic_server,
):
    """A front end's tool (a confirmation dialog): the model's call to it ends the run with
    the call; the front end runs it and posts the conversation again with the result."""
    anthropic_server.script(
        ToolCalls([Call("confirm", {"question": "Book it?"}, id="toolu_1")]), Text("Booked.")
    )
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, api_key=SECRET, tools=[add])
    confirm = {
        "name": "confirm",
        "description": "Ask the user to confirm.",
        "parameters": {"type": "object", "properties": {"question": {"type": "string"}}},
    }
    asked = {"id": "m1", "role": "user", "content": "Book the 9:00 train."}
    run_input = {
        "threadId": "t1",
        "runId": "r1",
        "messages": [asked],
        "tools": [confirm],
        "context": [],
        "state": {},
        "forwardedProps": {},
    }
    call_message = {
        "id": "m2",
        "role": "assistant",
        "toolCalls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "confirm", "arguments": '{"question": "Book it?"}'},
            }
        ],
    }
    answered = {"id": "m3", "role": "tool", "toolCallId": "toolu_1", "content": "yes"}
    with serving(agents={"travel": agent}) as client:
        with client.stream("POST", "/v1/agui/travel", json=run_input) as response:
            first = [data for _, data in sse(response)]
        again = {**run_input, "runId": "r2", "messages": [asked, call_message, answered]}
        with client.stream("POST", "/v1/agui/travel", json=again) as response:
            second = [data for _, data in sse(response)]
        clash = {**run_input, "tools": [{**confirm, "name": "add"}]}
        with client.stream("POST", "/v1/agui/travel", json=clash) as response:
            clashed = [data for _, data in sse(response)]
    assert [e["type"] for e in first] == [
        "RUN_STARTED",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "RUN_FINISHED",
    ]
    assert first[1]["toolCallName"] == "confirm" and first[1]["toolCallId"] == "toolu_1"
    assert json.loads(first[2]["delta"]) == {"question": "Book it?"}
    offered, resumed = (r.body for r in anthropic_server.requests[-2:])
    assert [t["name"] for t in offered["tools"]] == ["add", "confirm"]
    assert [e["type"] for e in second][-2:] == ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    assert second[-1]["result"] == "Booked."
    # The model read the front end's result after its own call, with no new user turn.
    assert [m["role"] for m in resumed["messages"]] == ["user", "assistant", "user"]
    result = resumed["messages"][-1]["content"][0]
    assert (result["type"], result["tool_use_id"], result["content"]) == (
        "tool_result",
        "toolu_1",
        "yes",
    )
    assert clashed[-1]["type"] == "RUN_ERROR" and "'add'" in clashed[-1]["message"]


def test_a_conversation_goes_on_from_the_results_of_client_side_tools():
    """The Python side of the same mechanism: ``ClientTool`` and ``events(None, ...)``."""
    from victor.core.messages import Message
    from victor.tools import ClientTool

    provider = ScriptedProvider([call("pick", options=["a", "b"]), "You picked b."])
    agent = Agent(provider=provider)

    async def converse():
        pick = ClientTool("pick", "Let the user pick one.", {"type": "object"})
        first = [e async for e in agent.events("Choose for me", tools=[pick], remember=True)]
        started = [e.call for e in first if e.kind == "tool_started"]
        agent.history.append(Message.tool(started[0], "b"))
        second = [e async for e in agent.events(None, tools=[pick], remember=True)]
        return first, second

    first, second = asyncio.run(converse())
    assert [e.kind for e in first] == ["response", "tool_started", "run_finished"]
    assert second[-1].content == "You picked b."
    assert [m.role for m in provider.requests[-1]] == ["user", "assistant", "tool"]
    with pytest.raises(ConfigurationError, match="task=None continues"):
        asyncio.run(anext(Agent(provider=provider).events(None)))


# -- safety ------------------------------------------------------------------------------


def test_tools_that_need_approval_are_refused_unless_the_server_allows_them():
    def agent():
        script = [call("launch", target="prod"), "done"]
        return Agent(provider=ScriptedProvider(script), tools=[launch], approval="auto")

    served = agent()
    with serving(agents={"ops": served}) as client:
        refused = client.post("/v1/runs/stream", json={"task": "Launch"}).text
        assert served.approval == "never"  # the server's policy, while it serves
    assert served.approval == "auto"  # given back when the server stops
    with serving(agents={"ops": agent()}, approval="auto") as client:
        allowed = client.post("/v1/runs/stream", json={"task": "Launch"}).text
    assert "approval policy is 'never'" in refused and "launched prod" not in refused
    assert "launched prod" in allowed


def test_with_a_token_every_request_needs_it():
    agent = Agent(provider=FunctionProvider(lambda m, t: "secret plans"))
    with serving(agents={"a": agent}, token=TOKEN) as client:
        url = client.server.url
        bare = httpx.get(url + "/v1/health")
        wrong = httpx.post(
            url + "/v1/runs", json={"task": "x"}, headers={"Authorization": "Bearer nope"}
        )
        docs = httpx.get(url + "/openapi.json")
        ok = client.post("/v1/runs", json={"task": "x"})
    assert is_problem(bare, 401)["detail"].startswith("send the server's API token")
    assert bare.headers["www-authenticate"] == "Bearer"
    is_problem(wrong, 401)
    is_problem(docs, 401)
    assert ok.json()["content"] == "secret plans"


def test_without_a_token_only_loopback_is_served(capsys):
    with pytest.raises(ConfigurationError, match="VICTOR_API_TOKEN"):
        ServeSettings(host="0.0.0.0").check()
    ServeSettings(host="0.0.0.0", token=TOKEN).check()
    assert victor_cli(["serve", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "refusing to listen on '0.0.0.0' without an API token" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="too short"):
        ServeSettings(token="short").check()


def test_a_request_reaching_another_address_without_a_token_is_refused():
    """However the app is run (another ASGI server, --host by hand), the guard refuses
    requests that arrive on a non-loopback address when no token is set."""
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])

    async def request(guard, server):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "path": "/v1/health", "headers": [], "server": server}
        await guard(scope, receive, send)
        return sent[0]["status"] if sent else 200

    no_token = Guard(app, token=None)
    assert asyncio.run(request(no_token, ("192.168.1.20", 8000))) == 403
    assert asyncio.run(request(no_token, ("127.0.0.1", 8000))) == 200
    assert calls == ["/v1/health"]


def test_request_size_and_concurrent_run_limits(anthropic_server):
    anthropic_server.script(Hang(seconds=STALL, text="busy"))
    agent = Agent(provider="anthropic", base_url=anthropic_server.url, api_key=SECRET)
    with serving(agents={"a": agent}, max_body_bytes=2000, max_concurrent_runs=1) as client:
        large = client.post("/v1/runs", json={"task": "x" * 5000})
        chunked = client.post("/v1/runs", content=iter([b'{"task": "', b"y" * 5000, b'"}']))
        with client.stream("POST", "/v1/runs/stream", json={"task": "hold"}) as holding:
            events = sse(holding)
            assert [next(events)[0], next(events)[0]] == ["run_started", "text"]
            busy = client.post("/v1/runs", json={"task": "me too"})
        assert anthropic_server.wait_disconnects(1, timeout=PROMPTLY)
        wait_idle(client)
        anthropic_server.script(Text("free again"))
        after = client.post("/v1/runs", json={"task": "now?"})
    assert "2000 bytes" in is_problem(large, 413)["detail"]
    is_problem(chunked, 413)
    assert "max_concurrent_runs=1" in is_problem(busy, 429)["detail"]
    assert busy.headers["retry-after"] == "1"
    assert after.json()["content"] == "free again"


def test_cors_only_when_configured():
    agent = Agent(provider=FunctionProvider(lambda m, t: "hi"))
    origin = {"Origin": "http://localhost:3000"}
    with serving(agents={"a": agent}) as client:
        closed = client.get("/v1/health", headers=origin)
    with serving(agents={"a": agent}, cors_origins=["http://localhost:3000"], token=TOKEN) as c:
        # A browser's preflight never carries the token: it must pass without it, so the
        # guard has to sit inside CORS. httpx.options, not c: c sends the token.
        preflight = httpx.options(
            c.server.url + "/v1/runs",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        opened = c.get("/v1/health", headers=origin)
        refused = httpx.get(c.server.url + "/v1/health", headers=origin)  # no token
    assert "access-control-allow-origin" not in closed.headers
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert refused.status_code == 401  # only the preflight goes without the token
    assert opened.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_the_openapi_description():
    agent = Agent(provider=FunctionProvider(lambda m, t: "hi"))
    with serving(agents={"a": agent}) as client:
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {
        "/v1/runs",
        "/v1/runs/stream",
        "/v1/chat",
        "/v1/chat/stream",
        "/v1/conversations/{conversation_id}",
        "/v1/teams/runs",
        "/v1/teams/runs/stream",
        "/v1/workflows/runs",
        "/v1/workflows/runs/stream",
        "/v1/agents",
        "/v1/health",
        "/v1/agui/{agent}",
    } <= set(paths)
    assert "text/event-stream" in paths["/v1/runs/stream"]["post"]["responses"]["200"]["content"]
    assert "application/problem+json" in paths["/v1/runs"]["post"]["responses"]["429"]["content"]
    request = schema["components"]["schemas"]["RunRequest"]
    assert request["required"] == ["task"] and request["additionalProperties"] is False


# -- what is served ----------------------------------------------------------------------

APP = """
from victor import Agent, AgentTeam
from victor.testing import FunctionProvider

helper = Agent(role="helper", provider=FunctionProvider(lambda m, t: "served from a file"))
pair = AgentTeam.pipeline([Agent(role="a"), Agent(role="b")])
_private = Agent(role="hidden")
speaker = Agent(name="echo", provider=FunctionProvider(lambda m, t: "echo here"))
"""


def test_load_app_finds_agents_and_teams(tmp_path):
    path = tmp_path / "myapp.py"
    path.write_text(APP)
    assert list(load_app(str(path))) == ["helper", "pair", "echo", "speaker"]
    assert list(load_app(f"{path}:helper")) == ["helper"]
    with pytest.raises(ConfigurationError, match="has no 'nope'; it defines: helper, pair, "):
        load_app(f"{path}:nope")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigurationError, match="defines no Agent or AgentTeam"):
        load_app(str(tmp_path / "empty.py"))
    (tmp_path / "broken.py").write_text("x = 1\nraise ValueError('bad setting')\n")
    with pytest.raises(ConfigurationError, match=r"broken.py \(line 2\): ValueError: bad setting"):
        load_app(str(tmp_path / "broken.py"))


def test_victor_serve_app_py(tmp_path):
    """The command end to end: a file's agent, served by `victor serve` in a process."""
    (tmp_path / "app.py").write_text(APP)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    env.pop("VICTOR_API_TOKEN", None)
    command = [sys.executable, "-c", "from victor.cli import main; raise SystemExit(main())"]
    process = subprocess.Popen(
        [*command, "serve", "app.py", "--port", str(port), "--no-mcp", "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stderr.readline()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STALL
        while True:
            try:
                httpx.get(url + "/v1/health")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        answer = httpx.post(url + "/v1/runs", json={"agent": "helper", "task": "hi"}).json()
        echo = httpx.post(url + "/v1/runs", json={"agent": "echo", "task": "hi"}).json()
    finally:
        process.terminate()
        process.wait(timeout=PROMPTLY)
    serving_line = f"victor: serving helper, pair, echo (also speaker) on http://127.0.0.1:{port}"
    assert banner.startswith(serving_line)
    assert answer["content"] == "served from a file"
    assert (echo["agent"], echo["content"]) == ("echo", "echo here")


def test_a_port_in_use_is_one_line_before_anything_is_announced(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    env.pop("VICTOR_API_TOKEN", None)
    command = [sys.executable, "-c", "from victor.cli import main; raise SystemExit(main())"]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = subprocess.run(
            [*command, "serve", "app.py", "--port", str(port), "--no-mcp"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=STALL,
        )
    assert ran.returncode == 1
    assert ran.stderr.splitlines() == [
        f"victor: port {port} on 127.0.0.1 is in use: stop what listens there, or use another "
        f"port (--port {port + 1}, or --port 0 for any free one)"
    ]


def test_a_missing_serve_extra_is_one_line_before_anything_is_announced(
    tmp_path, monkeypatch, capsys
):
    """`pip install victor-ai` without [serve]: the error, not "serving ..." and then it."""
    (tmp_path / "app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn: ImportError
    assert victor_cli(["serve", "app.py", "--port", "0", "--no-mcp"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        'victor: victor serve needs uvicorn: pip install "victor-ai[serve]"'
    ]


# -- names -------------------------------------------------------------------------------


def test_an_agent_is_named_by_its_name_its_role_or_its_variable(tmp_path):
    """Not by its provider: approval prompts, progress bars, events and /v1/agents say who."""
    model = ScriptedProvider(["hi"])
    assert Agent(provider=model).name == "agent"
    assert Agent(role="reviewer", provider=model).name == "reviewer"
    assert Agent(role="reviewer", name="rev", provider=model).name == "rev"
    (tmp_path / "names.py").write_text(
        "from victor import Agent, AgentTeam\n"
        "from victor.testing import FunctionProvider\n"
        "helper = Agent(provider=FunctionProvider(lambda m, t: 'hi'))\n"
        "reviewer = Agent(role='code reviewer', provider=FunctionProvider(lambda m, t: 'ok'))\n"
        "desk = AgentTeam.pipeline([Agent(role='writer'), helper])\n"
    )
    served = load_app(str(tmp_path / "names.py"))
    assert {name: value.name for name, value in served.items()} == {
        "helper": "helper",  # neither name nor role: its variable's name
        "reviewer": "code reviewer",
        "desk": "pipeline",
    }
    with serving(agents=served) as client:
        listed = client.get("/v1/agents").json()
    assert listed["teams"][0]["members"] == ["writer", "helper"]


def test_an_agent_is_served_under_its_own_name_and_its_variable(tmp_path):
    (tmp_path / "app.py").write_text(
        "from victor import Agent\n"
        "from victor.testing import FunctionProvider\n"
        "helper = Agent(name='echo', provider=FunctionProvider(lambda m, t: m[-1].content))\n"
    )
    with serving(agents=load_app(str(tmp_path / "app.py"))) as client:
        by_name = client.post("/v1/runs", json={"agent": "echo", "task": "one"}).json()
        by_variable = client.post("/v1/runs", json={"agent": "helper", "task": "two"}).json()
        unnamed = client.post("/v1/runs", json={"task": "three"}).json()  # the only agent
        listed = client.get("/v1/agents").json()["agents"]
    assert [by_name["content"], by_variable["content"], unnamed["content"]] == [
        "one",
        "two",
        "three",
    ]
    assert [(a["name"], a["aliases"]) for a in listed] == [("echo", ["helper"])]


def test_two_agents_with_one_name_are_an_error(tmp_path):
    head = "from victor import Agent\nfrom victor.testing import ScriptedProvider\n"
    (tmp_path / "twice.py").write_text(
        head + "a = Agent(name='echo', provider=ScriptedProvider(['x']))\n"
        "b = Agent(name='echo', provider=ScriptedProvider(['y']))\n"
    )
    (tmp_path / "clash.py").write_text(
        head + "a = Agent(name='b', provider=ScriptedProvider(['x']))\n"
        "b = Agent(provider=ScriptedProvider(['y']))\n"
    )
    with pytest.raises(ConfigurationError, match="a and b are both named 'echo'"):
        load_app(str(tmp_path / "twice.py"))
    with pytest.raises(ConfigurationError, match="b would be served as 'b', but a is named 'b'"):
        load_app(str(tmp_path / "clash.py"))


def test_missing_extras_say_what_to_install():
    code = """
import asyncio, sys
sys.modules["fastapi"] = None   # as if the extras were not installed
sys.modules["mcp"] = None
from victor import ConfigurationError
import victor.mcp, victor.serve
try:
    victor.serve.create_app()
except ConfigurationError as error:
    print(error)
try:
    asyncio.run(victor.mcp.server("some-mcp-server").connect())
except ConfigurationError as error:
    print(error)
"""
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ran.stdout.splitlines() == [
        'victor serve needs fastapi: pip install "victor-ai[serve]"',
        'victor.mcp needs the MCP SDK: pip install "victor-ai[mcp]"',
    ], ran.stderr


def test_settings_never_show_the_token():
    settings = ServeSettings(token=TOKEN)
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
