"""``victor acp``: an ACP agent over a real stdio subprocess, driven by the official SDK's
client side (``acp.spawn_agent_process``), its model a protocol server on 127.0.0.1 or a
``victor.testing`` provider defined in the app file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

acp = pytest.importorskip("acp", reason="extra acp (in `dev`)")

from acp import RequestError, spawn_agent_process, text_block  # noqa: E402
from acp.schema import (  # noqa: E402
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    EmbeddedResourceContentBlock,
    FileSystemCapabilities,
    HttpMcpServer,
    ImageContentBlock,
    McpServerStdio,
    ReadTextFileResponse,
    RequestPermissionResponse,
    SseMcpServer,
    TextResourceContents,
)

from tests.servers.replies import Hang, Status, Text, ToolCalls  # noqa: E402
from tests.timing import PROMPTLY, STALL  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MCP_SERVER = ROOT / "tests" / "servers" / "mcp_stdio.py"


class Client:
    """An ACP client as an editor is one: it records what the agent sends, answers
    permission requests with ``answer`` (an option id, ``"cancelled"``, or ``None``: it
    cannot answer), and with ``files`` set holds the open buffers the fs methods use."""

    def __init__(self, answer: str | None = "allow_once", files: dict[str, str] | None = None):
        self.answer = answer
        self.files = files
        self.updates: list[tuple[str, Any]] = []  # (session id, update)
        self.permissions: list[Any] = []
        self.reads: list[str] = []
        self.writes: list[tuple[str, str]] = []

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append((session_id, update))

    async def request_permission(self, session_id, tool_call, options, **_: Any):
        self.permissions.append((tool_call, [o.option_id for o in options]))
        if self.answer is None:
            raise RequestError.method_not_found("session/request_permission")
        if self.answer == "wait":  # the person looks away: only a cancel ends this
            await asyncio.Event().wait()
        if self.answer == "cancelled":
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.answer)
        )

    async def read_text_file(self, session_id, path, line=None, limit=None, **_: Any):
        self.reads.append(path)
        if self.files is None or path not in self.files:
            raise RequestError.resource_not_found(path)
        return ReadTextFileResponse(content=self.files[path])

    async def write_text_file(self, session_id, path, content, **_: Any):
        self.writes.append((path, content))
        assert self.files is not None
        self.files[path] = content

    def on_connect(self, conn: Any) -> None:
        pass

    def of(self, kind: str, session_id: str | None = None) -> list[Any]:
        return [
            u
            for s, u in self.updates
            if u.session_update == kind and (session_id is None or s == session_id)
        ]

    def text(self, session_id: str | None = None) -> str:
        return "".join(u.content.text for u in self.of("agent_message_chunk", session_id))


def write_app(tmp_path: Path, body: str) -> Path:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(body))
    return app


def openai_app(tmp_path: Path, server: Any, tools: str = "[]", **options: Any) -> Path:
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    return write_app(
        tmp_path,
        f"""
        from victor import Agent
        agent = Agent(name="helper", provider="openai", model="gpt-4o-mini",
                      base_url={server.url + "/v1"!r}, api_key="sk-test", max_retries=0,
                      tools={tools}{extra})
        """,
    )


@asynccontextmanager
async def victor_acp(client: Client, *args: str, fs: bool = False, home: Path | None = None):
    """``python -m victor acp ARGS`` with ``client`` connected and initialized (``home``:
    its $VICTOR_HOME); yields the connection, the process and the raw messages it sent (in
    wire order)."""
    wire: list[dict[str, Any]] = []

    def observe(event: Any) -> None:
        if event.direction.value == "incoming":
            wire.append(event.message)

    env = {"PYTHONPATH": str(ROOT), **({"VICTOR_HOME": str(home)} if home else {})}
    async with spawn_agent_process(
        client, sys.executable, "-m", "victor", "acp", *args, env=env, observers=[observe]
    ) as (conn, process):
        capabilities = ClientCapabilities(
            fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs)
        )
        try:
            reply = await asyncio.wait_for(
                conn.initialize(protocol_version=1, client_capabilities=capabilities), PROMPTLY
            )
        except ConnectionError:
            stderr = (await process.stderr.read()).decode()
            raise AssertionError(f"victor acp {' '.join(args)} exited:\n{stderr}") from None
        assert reply.protocol_version == 1
        yield conn, process, wire


async def settled(client: Client) -> None:
    """Let the SDK's client run the notification handlers it has queued."""
    for _ in range(20):
        await asyncio.sleep(0.01)


async def wait_for(condition, timeout: float = PROMPTLY) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


# -- a prompt, streamed ------------------------------------------------------------------


async def test_a_prompt_streams_its_answer_as_message_chunks(tmp_path, openai_server) -> None:
    openai_server.script(Text("one two three four", input_tokens=7))
    client = Client()
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, wire):
        session = await conn.new_session(cwd=str(tmp_path))
        assert [m.id for m in session.modes.available_modes] == ["ask", "auto-edits", "read-only"]
        done = await conn.prompt(session_id=session.session_id, prompt=[text_block("Count.")])
        await settled(client)
    assert done.stop_reason == "end_turn"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (7, 4)
    # Deltas that arrive while a chunk is being written go out with the next one.
    assert client.of("agent_message_chunk") and client.text() == "one two three four"
    # On the wire every chunk went out before the prompt's answer.
    kinds = [
        m.get("params", {}).get("update", {}).get("sessionUpdate")
        or ("answer" if "stopReason" in m.get("result", {}) else None)
        for m in wire
    ]
    last_chunk = max(i for i, k in enumerate(kinds) if k == "agent_message_chunk")
    assert kinds.index("answer") > last_chunk
    # The model got the prompt; the workflows are offered as slash commands.
    assert openai_server.requests[-1].body["messages"][-1]["content"] == "Count."
    (commands,) = client.of("available_commands_update")
    assert {"code-review", "explain"} <= {c.name for c in commands.available_commands}


@pytest.mark.parametrize(
    ("protocol", "settings"),
    [
        ("anthropic", "base_url={url!r}, api_key='sk-test'"),
        ("ollama", "base_url={url!r}"),
    ],
)
async def test_every_protocol_streams_over_acp(tmp_path, request, protocol, settings) -> None:
    server = request.getfixturevalue(f"{protocol}_server")
    server.script(Text("a streamed answer"))
    app = write_app(
        tmp_path,
        f"""
        from victor import Agent
        agent = Agent(provider={protocol!r}, {settings.format(url=server.url)}, max_retries=0)
        """,
    )
    client = Client()
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("Answer.")])
        await settled(client)
    assert done.stop_reason == "end_turn" and client.text() == "a streamed answer"
    assert done.usage.output_tokens == 3


async def test_a_session_remembers_the_conversation_and_reads_resources(
    tmp_path, openai_server
) -> None:
    openai_server.script(Text("It says hello."), Text("Twice."))
    client = Client()
    resource = EmbeddedResourceContentBlock(
        type="resource",
        resource=TextResourceContents(uri="file:///notes.txt", text="hello hello", mime_type=None),
    )
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        await conn.prompt(session_id=sid, prompt=[text_block("What does it say?"), resource])
        await conn.prompt(session_id=sid, prompt=[text_block("How often?")])
    first, second = (r.body["messages"] for r in openai_server.requests)
    assert '<context name="file:///notes.txt">\nhello hello\n</context>' in first[-1]["content"]
    assert [m["content"] for m in second[-3:]][1:] == ["It says hello.", "How often?"]


async def test_text_goes_out_at_once_and_what_comes_during_a_write_goes_as_one_chunk() -> None:
    from victor.acp.updates import Updates

    class SlowClient:
        def __init__(self) -> None:
            self.sent: list[str] = []
            self.written = asyncio.Event()

        async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
            self.sent.append(update.content.text)
            await self.written.wait()  # a pipe the reader is slow to empty

    client = SlowClient()
    updates = Updates(client, "sess_1", files=None)  # type: ignore[arg-type]
    await updates.text("one")
    assert client.sent == ["one"]  # on its way before the caller reads the next delta
    await updates.text(" two")
    await updates.text(" three")
    assert client.sent == ["one"]  # "one" is still being written
    client.written.set()
    await updates.flush()
    assert client.sent == ["one", " two three"]


# -- approval through the client ---------------------------------------------------------


def script_write(server: Any) -> None:
    server.script(
        ToolCalls([("write_file", {"file_path": "notes.md", "content": "# Notes\n"})]),
        Text("Done."),
    )


@pytest.mark.parametrize(
    ("answer", "written"),
    [("allow_once", True), ("allow_always", True), ("reject_once", False), ("cancelled", False)],
)
async def test_a_write_asks_the_client_and_follows_its_answer(
    tmp_path, openai_server, answer, written
) -> None:
    script_write(openai_server)
    client = Client(answer)
    app = openai_app(tmp_path, openai_server, tools='["files"]')
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("Write notes.")])
        await settled(client)
    assert done.stop_reason == "end_turn"
    (asked, options) = client.permissions[0]
    assert options == ["allow_once", "allow_always", "reject_once"]
    assert asked.title == "write_file notes.md" and asked.kind == "edit"
    (start,) = client.of("tool_call")
    assert start.status == "pending" and start.kind == "edit"
    (diff,) = start.content
    assert (diff.type, diff.path, diff.old_text, diff.new_text) == (
        "diff",
        str(tmp_path / "notes.md"),
        None,
        "# Notes\n",
    )
    final = client.of("tool_call_update")[-1]
    assert final.status == ("completed" if written else "failed")
    assert (tmp_path / "notes.md").exists() == written
    result = openai_server.requests[1].body["messages"][-1]["content"]
    assert ("refused" in result) != written


async def test_a_profile_is_served_with_its_tools_asking_the_client(
    tmp_path, openai_server
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "profiles.toml").write_text(
        textwrap.dedent(
            f"""
            [profiles.writer]
            provider = "openai"
            model = "gpt-4o-mini"
            tools = ["files"]
            [profiles.writer.options]
            base_url = "{openai_server.url}/v1"
            api_key = "sk-test"
            """
        )
    )
    script_write(openai_server)
    client = Client("allow_once")
    async with victor_acp(client, "--profile", "writer", home=tmp_path / "home") as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("Write notes.")])
        await settled(client)
    assert done.stop_reason == "end_turn" and client.text() == "Done."
    assert client.permissions and (tmp_path / "notes.md").read_text() == "# Notes\n"


async def test_allow_always_holds_for_the_rest_of_the_session(tmp_path, openai_server) -> None:
    write = ("write_file", {"file_path": "a.md", "content": "a"})
    openai_server.script(ToolCalls([write]), ToolCalls([write]), Text("ok"), ToolCalls([write]))
    openai_server.script(Text("again"))
    client = Client("allow_always")
    app = openai_app(tmp_path, openai_server, tools='["files"]')
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        await conn.prompt(session_id=sid, prompt=[text_block("Write twice.")])
        await conn.prompt(session_id=sid, prompt=[text_block("And again.")])
        other = (await conn.new_session(cwd=str(tmp_path))).session_id
        openai_server.script(ToolCalls([write]), Text("there"))
        await conn.prompt(session_id=other, prompt=[text_block("Write.")])
    assert len(client.permissions) == 2  # once in the first session, once in the other


async def test_a_client_that_cannot_answer_gets_the_call_refused(tmp_path, openai_server) -> None:
    script_write(openai_server)
    client = Client(answer=None)
    app = openai_app(tmp_path, openai_server, tools='["files"]')
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("Write notes.")])
    assert done.stop_reason == "end_turn"
    assert not (tmp_path / "notes.md").exists()
    result = openai_server.requests[1].body["messages"][-1]["content"]
    assert "the ACP client could not be asked about write_file: Method not found" in result


async def test_session_modes_decide_what_is_asked(tmp_path, openai_server) -> None:
    client = Client("allow_once")
    app = openai_app(tmp_path, openai_server, tools='["files"]')
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        await conn.set_session_mode(session_id=sid, mode_id="read-only")
        script_write(openai_server)
        await conn.prompt(session_id=sid, prompt=[text_block("Write notes.")])
        assert not (tmp_path / "notes.md").exists() and not client.permissions
        await conn.set_session_mode(session_id=sid, mode_id="auto-edits")
        script_write(openai_server)
        await conn.prompt(session_id=sid, prompt=[text_block("Write notes.")])
        assert (tmp_path / "notes.md").read_text() == "# Notes\n" and not client.permissions
        with pytest.raises(RequestError, match="there is no session mode 'yolo'"):
            await conn.set_session_mode(session_id=sid, mode_id="yolo")
    refused = openai_server.requests[1].body["messages"][-1]["content"]
    assert "the session is read-only" in refused


# -- cancel, several sessions, the client going away -------------------------------------


async def test_cancel_ends_the_prompt_and_closes_the_models_stream(tmp_path, openai_server) -> None:
    openai_server.script(Hang(STALL, text="one two three"))
    client = Client()
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        prompt = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=[text_block("Go.")]))
        assert await wait_for(lambda: client.text() == "one two three")
        await conn.cancel(session_id=sid)
        done = await asyncio.wait_for(prompt, PROMPTLY)
        assert done.stop_reason == "cancelled"
        assert await wait_for(lambda: openai_server.disconnects == 1)
        # The session goes on.
        openai_server.script(Text("still here"))
        again = await conn.prompt(session_id=sid, prompt=[text_block("Go on.")])
    assert again.stop_reason == "end_turn"


async def test_cancel_while_the_client_is_asked_refuses_the_call(tmp_path, openai_server) -> None:
    script_write(openai_server)
    client = Client("wait")
    app = openai_app(tmp_path, openai_server, tools='["files"]')
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        prompt = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=[text_block("Write.")]))
        assert await wait_for(lambda: client.permissions)
        await conn.cancel(session_id=sid)
        done = await asyncio.wait_for(prompt, PROMPTLY)
    assert done.stop_reason == "cancelled"
    assert not (tmp_path / "notes.md").exists() and len(openai_server.requests) == 1


async def test_two_sessions_run_at_once(tmp_path, openai_server) -> None:
    openai_server.script(Hang(STALL, text="alpha"), Hang(STALL, text="beta"))
    client = Client()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
        one = (await conn.new_session(cwd=str(tmp_path / "a"))).session_id
        two = (await conn.new_session(cwd=str(tmp_path / "b"))).session_id
        prompts = [
            asyncio.ensure_future(conn.prompt(session_id=sid, prompt=[text_block("Go.")]))
            for sid in (one, two)
        ]
        # Each stream stalls until it is closed: both answered at once, or the test fails.
        assert await wait_for(lambda: client.text(one) and client.text(two))
        assert {client.text(one), client.text(two)} == {"alpha", "beta"}
        await conn.cancel(session_id=one)
        assert (await asyncio.wait_for(prompts[0], PROMPTLY)).stop_reason == "cancelled"
        assert not prompts[1].done()  # the other session still runs
        await conn.cancel(session_id=two)
        assert (await asyncio.wait_for(prompts[1], PROMPTLY)).stop_reason == "cancelled"
    assert await wait_for(lambda: openai_server.disconnects == 2)


async def test_a_client_that_goes_away_ends_the_process_cleanly(tmp_path, openai_server) -> None:
    openai_server.script(Hang(STALL, text="working"))
    client = Client()
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, proc, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        asyncio.ensure_future(conn.prompt(session_id=sid, prompt=[text_block("Go.")]))
        assert await wait_for(lambda: client.text() == "working")
        proc.stdin.close()  # the editor quits
        code = await asyncio.wait_for(proc.wait(), PROMPTLY)
        stderr = (await proc.stderr.read()).decode()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert await wait_for(lambda: openai_server.disconnects == 1)


# -- the client's MCP servers and files --------------------------------------------------


async def test_mcp_servers_the_client_passes_are_the_sessions_tools(
    tmp_path, openai_server
) -> None:
    openai_server.script(ToolCalls([("demo_add", {"a": 2, "b": 3})]), Text("5"))
    client = Client("allow_once")
    demo = McpServerStdio(name="demo", command=sys.executable, args=[str(MCP_SERVER)], env=[])
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path), mcp_servers=[demo])).session_id
        await conn.prompt(session_id=sid, prompt=[text_block("Add 2 and 3.")])
        await settled(client)
        with pytest.raises(RequestError, match="could not connect the MCP server 'broken'"):
            broken = McpServerStdio(name="broken", command="/nonexistent/server", args=[], env=[])
            await conn.new_session(cwd=str(tmp_path), mcp_servers=[broken])
    offered = {t["function"]["name"] for t in openai_server.requests[0].body["tools"]}
    assert {"demo_add", "demo_divide"} <= offered
    assert client.permissions[0][0].title == "demo_add"  # MCP tools need approval
    assert client.of("tool_call_update")[-1].content[0].content.text == "5"
    assert openai_server.requests[1].body["messages"][-1]["content"] == "5"


async def test_an_http_mcp_server_connects_and_an_sse_one_is_refused(
    tmp_path, openai_server
) -> None:
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "notes.txt").write_text("over http\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VICTOR_API_TOKEN", None)
    mcp_http = subprocess.Popen(
        [sys.executable, "-m", "victor", "mcp", "serve", "--transport", "http", "--port", str(port),
         "--tools", "read_file"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    remote = HttpMcpServer(type="http", name="files", url=url, headers=[])
    openai_server.script(ToolCalls([("files_read_file", {"file_path": "notes.txt"})]), Text("ok"))
    client = Client("allow_once")
    try:
        await asyncio.to_thread(mcp_http.stderr.readline)  # its banner: listening next
        async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
            for _ in range(int(STALL / 0.1)):  # until uvicorn listens
                try:
                    sid = await conn.new_session(cwd=str(tmp_path), mcp_servers=[remote])
                    break
                except RequestError:
                    await asyncio.sleep(0.1)
            await conn.prompt(session_id=sid.session_id, prompt=[text_block("Read it.")])
            sse = SseMcpServer(type="sse", name="old", url=url, headers=[])
            with pytest.raises(RequestError, match="is an SSE server"):
                await conn.new_session(cwd=str(tmp_path), mcp_servers=[sse])
    finally:
        mcp_http.terminate()
        await asyncio.to_thread(mcp_http.wait, PROMPTLY)
    assert "over http" in openai_server.requests[1].body["messages"][-1]["content"]


async def test_file_tools_read_and_write_through_the_clients_buffers(
    tmp_path, openai_server
) -> None:
    notes = str(tmp_path / "notes.md")
    openai_server.script(
        ToolCalls([("read_file", {"file_path": "notes.md"})]),
        ToolCalls(
            [("edit_file", {"file_path": "notes.md", "old_text": "draft", "new_text": "final"})]
        ),
        ToolCalls([("read_file", {"file_path": "../outside.md"})]),
        Text("Edited."),
    )
    client = Client("allow_once", files={notes: "# A draft in the editor\n"})
    app = openai_app(tmp_path, openai_server, tools='["files"]')
    async with victor_acp(client, str(app), fs=True) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        await conn.prompt(session_id=sid, prompt=[text_block("Finish the notes.")])
        await settled(client)
    messages = [r.body["messages"][-1]["content"] for r in openai_server.requests]
    assert messages[1] == "# A draft in the editor\n"  # the buffer, not the disk
    assert client.writes == [(notes, "# A final in the editor\n")]
    assert not Path(notes).exists()  # the edit landed in the editor, not on disk
    assert "outside the workspace" in messages[3] and client.reads == [notes] * 3
    edit = client.of("tool_call")[1].content[0]
    assert (edit.old_text, edit.new_text) == (
        "# A draft in the editor\n",
        "# A final in the editor\n",
    )


# -- commands, teams, errors -------------------------------------------------------------


async def test_a_slash_command_runs_the_workflow_with_its_steps_as_a_plan(
    tmp_path, openai_server
) -> None:
    openai_server.script(Text("It prints."))
    client = Client()
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("/explain print('hi')")])
        await settled(client)
    assert done.stop_reason == "end_turn" and client.text() == "It prints."
    plans = client.of("plan")
    assert [(e.content, e.status) for e in plans[-1].entries] == [("explain", "completed")]
    asked = openai_server.requests[0].body["messages"][-1]["content"]
    assert "Explain what the context holds" in asked and "print('hi')" in asked


async def test_a_teams_member_runs_are_a_plan_in_the_sessions_workspace(tmp_path) -> None:
    app = write_app(
        tmp_path,
        """
        from victor import Agent
        from victor.teams import PipelineTeam
        from victor.testing import ScriptedProvider, call
        writer = Agent(name="writer", tools=["files"], provider=ScriptedProvider(
            [call("write_file", file_path="draft.md", content="a draft"), "a draft"]))
        editor = Agent(name="editor", tools=["files"], provider=ScriptedProvider(
            [call("read_file", file_path="draft.md"), "the final text"]))
        team = PipelineTeam([writer, editor], name="desk")
        """,
    )
    client = Client("allow_once")
    (tmp_path / "work").mkdir()
    async with victor_acp(client, str(app), "--agent", "desk") as (conn, _, wire):
        sid = (await conn.new_session(cwd=str(tmp_path / "work"))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("Write it.")])
        await settled(client)
    assert done.stop_reason == "end_turn" and client.text() == "the final text"
    entries = client.of("plan")[-1].entries
    assert [(e.content.split(":")[0], e.status) for e in entries] == [
        ("writer", "completed"),
        ("editor", "completed"),
    ]
    # The member's write asked the client, after showing the call, in the session's cwd.
    assert (tmp_path / "work" / "draft.md").read_text() == "a draft"
    shown = [
        m["params"]["update"]["sessionUpdate"]
        if m.get("method") == "session/update"
        else m.get("method")
        for m in wire
    ]
    assert shown.index("tool_call") < shown.index("session/request_permission")
    write, read = client.of("tool_call")
    assert (write.title, write.status, read.title, read.kind) == (
        "write_file draft.md",
        "pending",
        "read_file draft.md",
        "read",
    )
    finished = {u.tool_call_id: u for u in client.of("tool_call_update") if u.status == "completed"}
    assert finished[read.tool_call_id].content[0].content.text == "a draft"
    assert set(finished) == {write.tool_call_id, read.tool_call_id}


async def test_a_provider_error_is_an_acp_error_with_its_message(tmp_path, openai_server) -> None:
    openai_server.script(Status(401))
    client = Client()
    async with victor_acp(client, str(openai_app(tmp_path, openai_server))) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        with pytest.raises(RequestError) as info:
            await conn.prompt(session_id=sid, prompt=[text_block("Hi.")])
    assert info.value.code == -32603 and "401" in str(info.value)
    assert info.value.data["error"] == "ProviderError" and "sk-test" not in str(info.value)


async def test_a_bug_in_a_users_function_is_an_acp_error_naming_it(tmp_path) -> None:
    # Not a victor error: the client sees its type and message (secrets masked), not a
    # bare "Internal error"; the traceback goes to stderr.
    app = write_app(
        tmp_path,
        """
        from victor import Agent
        from victor.testing import FunctionProvider

        def broken(messages, tools):
            raise ValueError("the parser broke on sk-ant-api03-abcdefghijklmnopqrstu")

        agent = Agent(name="helper", provider=FunctionProvider(broken))
        """,
    )
    client = Client()
    async with victor_acp(client, str(app)) as (conn, process, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        with pytest.raises(RequestError) as info:
            await conn.prompt(session_id=sid, prompt=[text_block("Hi.")])
        # The agent goes on: the next prompt is answered (with the same error).
        with pytest.raises(RequestError):
            await conn.prompt(session_id=sid, prompt=[text_block("Again.")])
    assert info.value.code == -32603 and info.value.data["error"] == "ValueError"
    assert "ValueError: the parser broke on ***" in str(info.value)
    assert "sk-ant-api03" not in str(info.value)


async def test_malformed_requests_get_clear_errors_and_the_agent_goes_on(
    tmp_path, openai_server
) -> None:
    client = Client()
    app = write_app(
        tmp_path,
        """
        from victor import Agent
        from victor.tools import tool
        from victor.testing import ScriptedProvider, call

        @tool
        def noisy() -> str:
            '''Print to stdout, as careless tools do.'''
            print("not a protocol message")
            return "printed"

        agent = Agent(name="helper", provider=ScriptedProvider([call("noisy"), "ok"]),
                      tools=[noisy])
        """,
    )
    async with victor_acp(client, str(app)) as (conn, proc, _w):
        raw = conn._conn  # the SDK's JSON-RPC connection: requests the typed API would refuse
        with pytest.raises(RequestError) as info:
            await raw.send_request("session/new", {"cwd": "relative/dir", "mcpServers": []})
        assert "is not an existing directory given as an absolute path" in str(info.value)
        with pytest.raises(RequestError) as info:
            await raw.send_request("session/prompt", {"sessionId": 5})
        assert info.value.code == -32602  # invalid params
        with pytest.raises(RequestError, match="there is no session 'nope'"):
            await conn.prompt(session_id="nope", prompt=[text_block("Hi.")])
        with pytest.raises(RequestError) as info:
            await raw.send_request("session/fly", {})
        assert info.value.code == -32601
        proc.stdin.write(b"this is not JSON\n")
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        image = ImageContentBlock(type="image", data="AAAA", mime_type="image/png")
        with pytest.raises(RequestError, match="not a image block"):
            await conn.prompt(session_id=sid, prompt=[image])
        # A tool printing to stdout does not break the protocol.
        done = await conn.prompt(session_id=sid, prompt=[text_block("Go.")])
        await settled(client)
        assert done.stop_reason == "end_turn" and client.text() == "ok"
        assert client.of("tool_call_update")[-1].content[0].content.text == "printed"
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), PROMPTLY) == 0
        stderr = (await proc.stderr.read()).decode()
    assert "not a protocol message" in stderr  # what it printed went to stderr
    assert "Error parsing JSON-RPC message (skipped)" in stderr and "Traceback" not in stderr


# -- the embedded model --------------------------------------------------------------------


@pytest.mark.timeout(180)  # loading the model on a busy 2-core machine takes a while
async def test_the_embedded_model_answers_over_acp(tmp_path) -> None:
    pytest.importorskip("llama_cpp", reason="extra local")
    app = write_app(
        tmp_path,
        """
        from victor import Agent
        agent = Agent(name="local", provider="local", max_tokens=8, temperature=0)
        """,
    )
    client = Client()
    async with victor_acp(client, str(app)) as (conn, _, _w):
        sid = (await conn.new_session(cwd=str(tmp_path))).session_id
        done = await conn.prompt(session_id=sid, prompt=[text_block("Say hello.")])
        await settled(client)
    assert done.stop_reason in ("end_turn", "max_tokens")
    assert client.text().strip() and 0 < done.usage.output_tokens <= 8


def test_importing_the_command_module_needs_no_sdk() -> None:
    code = (
        "import sys, victor.cli, victor.acp.command\n"
        "print(json.dumps(sorted(m for m in ('acp', 'victor.acp.server') if m in sys.modules)))"
    )
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_without_the_extra_the_command_says_what_to_install(tmp_path) -> None:
    import subprocess

    app = write_app(tmp_path, "from victor import Agent\nagent = Agent(name='a')\n")
    code = (
        "import sys; sys.modules['acp'] = None\n"  # as if agent-client-protocol were missing
        "from victor.cli import main\n"
        f"raise SystemExit(main(['acp', {str(app)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1 and done.stdout == ""
    assert 'pip install "victor-ai[acp]"' in done.stderr
