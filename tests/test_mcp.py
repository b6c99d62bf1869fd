"""MCP both ways, on the official SDK: an MCP server's tools in a victor agent (in-process,
a real stdio subprocess, streamable HTTP), and victor's tools and agents as an MCP server."""

from __future__ import annotations

import asyncio
import inspect
import os
import pydoc
import sys
import time
from pathlib import Path

import mcp
import pytest
from mcp.server import MCPServer

import victor.mcp
from tests.servers import Call, Text, ToolCalls
from tests.servers.mcp_stdio import build
from tests.timing import PROMPTLY, STALL
from victor import Agent, ConfigurationError, ToolError
from victor.serve import ServeSettings, start
from victor.testing import FunctionProvider, ScriptedProvider, call
from victor.tools import tool

ROOT = Path(__file__).parents[1]
STDIO_SERVER = [sys.executable, str(ROOT / "tests" / "servers" / "mcp_stdio.py")]
TOKEN = "mcp-token-0123456789abcdef"


def transcript(agent: Agent) -> list[tuple[str, str, bool]]:
    """(tool name, result text, is_error) of the tool results in the last run."""
    assert agent.last_run is not None
    return [(m.name, m.content, m.is_error) for m in agent.last_run.messages if m.role == "tool"]


# -- the client: an MCP server's tools in an agent --------------------------------------


async def test_in_process_server_tools_in_an_agent():
    demo = victor.mcp.server(build())
    provider = ScriptedProvider(
        [
            [call("demo_add", a=2, b=3), call("demo_divide", a=1, b=0)],
            call("demo_shout_loud", text="done"),
            "2 + 3 = 5, and 1 / 0 is undefined.",
        ]
    )
    agent = await Agent.create(provider=provider, tools=[demo], approval="auto")
    assert [t.name for t in agent.tools] == [
        "demo_add",
        "demo_divide",
        "demo_wait",
        "demo_shout_loud",
    ]
    assert await agent.run("Compute") == "2 + 3 = 5, and 1 / 0 is undefined."
    # The schemas the model saw are the server's, from list_tools.
    add_schema = {s.name: s for s in provider.tools_offered[0]}["demo_add"].parameters
    assert add_schema["properties"]["a"]["type"] == "integer"
    assert add_schema["required"] == ["a", "b"]
    assert transcript(agent) == [
        ("demo_add", "5", False),
        (
            "demo_divide",
            "Error: Error executing tool divide: cannot divide by zero; pass a non-zero b",
            True,
        ),
        ("demo_shout_loud", "DONE", False),
    ]
    await demo.aclose()
    assert not demo.connected


async def test_mcp_tools_need_approval_unless_the_server_is_trusted():
    untrusted = victor.mcp.server(build())
    agent = await Agent.create(
        provider=ScriptedProvider([call("demo_add", a=1, b=1), "ok"]),
        tools=[untrusted],
        approval="never",
    )
    await agent.run("add")
    [(name, text, failed)] = transcript(agent)
    assert failed and "refused" in text and "approval policy is 'never'" in text

    trusted = victor.mcp.server(build(), requires_approval=False)
    agent = await Agent.create(
        provider=ScriptedProvider([call("demo_add", a=1, b=1), "ok"]),
        tools=[trusted],
        approval="never",
    )
    await agent.run("add")
    assert transcript(agent) == [("demo_add", "2", False)]

    only_wait = await victor.mcp.server(build(), requires_approval={"wait"}).connect()
    assert {t.name: t.requires_approval for t in only_wait.tools} == {
        "demo_add": False,
        "demo_divide": False,
        "demo_wait": True,
        "demo_shout_loud": False,
    }
    with pytest.raises(ConfigurationError, match="'wiat', which the MCP server 'demo' does not"):
        await victor.mcp.server(build(), requires_approval={"wiat"}).connect()
    for toolset in (untrusted, trusted, only_wait):
        await toolset.aclose()


async def test_per_call_timeout_is_a_tool_error_and_the_connection_lives_on():
    demo = victor.mcp.server(build(), timeout=0.5, requires_approval=False)
    agent = await Agent.create(
        provider=ScriptedProvider(
            [call("demo_wait", seconds=STALL), call("demo_add", a=20, b=22), "42"]
        ),
        tools=[demo],
    )
    started = time.monotonic()
    assert await agent.run("wait, then add") == "42"
    assert time.monotonic() - started < PROMPTLY
    assert transcript(agent) == [
        ("demo_wait", "Error: tool 'demo_wait' timed out after 0.5 s", True),
        ("demo_add", "42", False),
    ]
    await demo.aclose()


def test_server_takes_the_toolsets_parameters_declared_once():
    # server() forwards to MCPToolset: help() and inspect show MCPToolset's parameters,
    # so the two cannot drift apart.
    expected = inspect.signature(victor.mcp.MCPToolset).replace(return_annotation="MCPToolset")
    assert inspect.signature(victor.mcp.server) == expected
    assert "connect_timeout: 'float' = 60.0" in pydoc.render_doc(victor.mcp.server)
    toolset = victor.mcp.server("python -m some_server", name="x", timeout=5)
    assert (toolset.name, toolset.timeout) == ("x", 5)


async def test_name_clashes_are_clear_errors():
    first = victor.mcp.server(build(), prefix="x_")
    second = victor.mcp.server(build("other"), prefix="x_")
    with pytest.raises(ToolError, match="two tools are named 'x_add'.*prefix="):
        await Agent.create(provider=ScriptedProvider(["-"]), tools=[first, second])

    @tool
    def add(a: int, b: int) -> int:
        """A local add."""
        return a + b

    bare = victor.mcp.server(build(), prefix="")
    with pytest.raises(ToolError, match="two tools are named 'add'"):
        await Agent.create(provider=ScriptedProvider(["-"]), tools=[add, bare])

    both = MCPServer("both")
    both.tool(name="a.b")(lambda: "dot")
    both.tool(name="a_b")(lambda: "underscore")
    with pytest.raises(ToolError, match="'a.b' and 'a_b', which both become 'both_a_b'"):
        await victor.mcp.server(both).connect()

    separate = [victor.mcp.server(build()), victor.mcp.server(build(), name="backup")]
    agent = await Agent.create(provider=ScriptedProvider(["-"]), tools=separate)
    assert {"demo_add", "backup_add"} <= {t.name for t in agent.tools}
    for toolset in (first, second, bare, *separate):
        await toolset.aclose()


async def test_bad_targets_and_failed_connections_say_what_to_do():
    with pytest.raises(ConfigurationError, match="is not an MCP server"):
        victor.mcp.server(42)
    with pytest.raises(ConfigurationError, match="headers= are for a server at a URL"):
        victor.mcp.server("npx -y some-server", headers={"X": "1"})
    missing = victor.mcp.server("/nonexistent/mcp-server --stdio")
    with pytest.raises(ToolError, match="'/nonexistent/mcp-server' was not found"):
        await missing.connect()
    crashing = victor.mcp.server([sys.executable, "-c", "import sys; sys.exit('no config')"])
    with pytest.raises(ToolError, match="the server exited or closed its stdout"):
        await crashing.connect()
    silent = victor.mcp.server(
        [sys.executable, "-c", f"import time; time.sleep({STALL})"], connect_timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"'python' did not answer within 0.5 s"):
        await silent.connect()
    assert time.monotonic() - started < PROMPTLY


def test_one_connection_serves_any_event_loop():
    """Opened from one event loop, used from another, closed from a third: the owner task
    on victor's MCP loop enters and exits the SDK's scopes, so nothing crosses tasks."""
    demo = victor.mcp.server(build())
    asyncio.run(demo.connect())
    result = asyncio.run(demo.call("add", {"a": 1, "b": 2}))
    asyncio.run(demo.aclose())
    assert result.output == "3" and not demo.connected
    assert asyncio.run(demo.call("add", {"a": 2, "b": 2})).output == "4"  # reopens
    demo.close()


# -- stdio: a real subprocess ---------------------------------------------------------


async def test_stdio_server_round_trip_through_an_agent_on_the_anthropic_protocol(
    anthropic_server, capsys
):
    demo = victor.mcp.server(STDIO_SERVER)
    assert repr(demo) == "<MCP server 'mcp_stdio' (stdio): not connected>"
    demo = victor.mcp.server(STDIO_SERVER, name="demo", requires_approval=False)
    await demo.connect()
    ready = capsys.readouterr().err
    assert "demo server ready (pid " in ready
    pid = int(ready.split("(pid ")[1].split(")")[0])
    anthropic_server.script(ToolCalls([Call("demo_add", {"a": 19, "b": 23})]), Text("19 + 23 = 42"))
    agent = await Agent.create(
        provider="anthropic", base_url=anthropic_server.url, api_key="sk-test", tools=[demo]
    )
    assert await agent.run("What is 19 + 23?") == "19 + 23 = 42"
    first, second = (r.body for r in anthropic_server.requests[-2:])
    assert "demo_add" in [t["name"] for t in first["tools"]]
    result = second["messages"][-1]["content"][0]
    assert (result["type"], result["content"]) == ("tool_result", "42")
    # What the server wrote to stderr while working is shown before the call returned.
    assert "demo: adding 19 and 23" in capsys.readouterr().err
    await demo.aclose()
    deadline = time.monotonic() + PROMPTLY
    while _alive(pid):
        assert time.monotonic() < deadline, "the stdio server outlived its connection"
        await asyncio.sleep(0.05)


async def test_a_server_that_dies_is_started_again_on_the_next_call(capsys):
    """A stdio server that exits (a crash, an OOM kill) costs one failed call, which says
    so, not every call after it: the next call starts the server again."""
    demo = victor.mcp.server(STDIO_SERVER, name="demo", requires_approval=False)
    agent = await Agent.create(
        provider=ScriptedProvider([call("demo_add", a=1, b=2), call("demo_add", a=3, b=4), "done"]),
        tools=[demo],
    )
    assert (await demo.call("add", {"a": 20, "b": 22})).output == "42"
    first = _server_pid(capsys.readouterr().err)
    os.kill(first, 9)
    deadline = time.monotonic() + PROMPTLY
    while _alive(first) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await agent.run("add twice") == "done"
    (_, lost, failed), again = transcript(agent)
    assert failed and "closed the connection" in lost and "call 'add' again" in lost
    assert again == ("demo_add", "7", False)
    assert _server_pid(capsys.readouterr().err) != first  # a new server answered
    await demo.aclose()


def _server_pid(stderr: str) -> int:
    return int(stderr.split("(pid ")[-1].split(")")[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_victor_mcp_serve_over_stdio(tmp_path):
    """`victor mcp serve app.py`: registered tools and ask_<agent>, to any MCP client."""
    (tmp_path / "app.py").write_text(
        "from victor import Agent\n"
        "from victor.testing import FunctionProvider\n"
        "helper = Agent(provider=FunctionProvider(lambda m, t: 'answer: ' + m[-1].content))\n"
    )
    (tmp_path / "notes.txt").write_text("remember the milk\n")
    command = [sys.executable, "-c", "from victor.cli import main; raise SystemExit(main())"]
    victor_tools = victor.mcp.server(
        [*command, "mcp", "serve", "app.py", "--tools", "read_file,write_file"],
        name="victor",
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        requires_approval=False,
    )
    await victor_tools.connect()
    assert [t.name for t in victor_tools.tools] == [
        "victor_read_file",
        "victor_write_file",
        "victor_ask_helper",
    ]
    read = await victor_tools.call("read_file", {"file_path": "notes.txt"})
    write = await victor_tools.call("write_file", {"file_path": "x.txt", "content": "no"})
    asked = await victor_tools.call("ask_helper", {"task": "hello"})
    await victor_tools.aclose()
    assert read.success and "remember the milk" in read.output
    assert not write.success and "approval policy is 'never'" in write.error
    assert not (tmp_path / "x.txt").exists()
    assert asked.output == "answer: hello"


# -- streamable HTTP: victor serve's /mcp ----------------------------------------------


async def test_streamable_http_at_victor_serves_mcp_endpoint():
    helper = Agent(provider=FunctionProvider(lambda m, t: "the helper's answer"))
    settings = ServeSettings(agents={"helper": helper}, token=TOKEN, mcp=True)
    server = await asyncio.to_thread(start, settings)
    try:
        refused = victor.mcp.server(server.url + "/mcp", connect_timeout=PROMPTLY)
        with pytest.raises(ToolError, match="cannot connect"):
            await refused.connect()
        remote = victor.mcp.server(
            server.url + "/mcp",
            name="remote",
            headers={"Authorization": f"Bearer {TOKEN}"},
            requires_approval=False,
        )
        agent = await Agent.create(
            provider=ScriptedProvider([call("remote_ask_helper", task="hi"), "relayed"]),
            tools=[await remote.connect()],
        )
        assert "remote_read_file" in [t.name for t in agent.tools]
        assert await agent.run("ask the helper") == "relayed"
        assert transcript(agent) == [("remote_ask_helper", "the helper's answer", False)]
        assert repr(remote) == f"<MCP server 'remote' (url): {len(agent.tools)} tools>"
        assert TOKEN not in repr(remote)
        await remote.aclose()
    finally:
        await asyncio.to_thread(server.stop)


# -- the server side ---------------------------------------------------------------------


async def test_create_server_offers_tools_and_agents(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    # A file that exists next to the workspace: refused as outside it, not as missing.
    outside = tmp_path.parent / f"outside-{tmp_path.name}.txt"
    outside.write_text("not for the model\n")
    helper = Agent(provider=FunctionProvider(lambda m, t: "done: " + m[-1].content))
    writer = Agent(
        provider=ScriptedProvider([call("write_file", file_path="c.txt", content="c"), "tried"]),
        tools=["write_file"],
        workspace=tmp_path,
        approval="auto",
    )
    server = victor.mcp.create_server(
        ["read_file", "write_file"], {"helper": helper, "writer": writer}, workspace=tmp_path
    )
    async with mcp.Client(server) as client:
        listing = {t.name: t for t in (await client.list_tools()).tools}
        read = await client.call_tool("read_file", {"file_path": "a.txt"})
        escape = await client.call_tool("read_file", {"file_path": f"../{outside.name}"})
        refused = await client.call_tool("write_file", {"file_path": "b.txt", "content": "b"})
        asked = await client.call_tool("ask_helper", {"task": "tidy up", "context": {"x": 1}})
        unknown = await client.call_tool("raed_file", {})
        await client.call_tool("ask_writer", {"task": "write c.txt"})
        assert writer.approval == "never"  # the server's policy while it serves
    assert writer.approval == "auto"
    assert not (tmp_path / "c.txt").exists()
    refusal = writer.provider.requests[-1][-1]  # what the model was told about its call
    assert refusal.role == "tool" and "approval policy is 'never'" in refusal.content
    assert list(listing) == ["read_file", "write_file", "ask_helper", "ask_writer"]
    assert listing["ask_helper"].input_schema["required"] == ["task"]
    assert not read.is_error and "alpha" in read.content[0].text
    assert escape.is_error and "is outside the workspace" in escape.content[0].text
    assert "not for the model" not in escape.content[0].text
    assert refused.is_error and "approval policy is 'never'" in refused.content[0].text
    assert not (tmp_path / "b.txt").exists()
    assert not asked.is_error and asked.content[0].text.startswith("done: tidy up")
    assert unknown.is_error and "Did you mean 'read_file'?" in unknown.content[0].text

    allowing = victor.mcp.create_server(["write_file"], approval="auto", workspace=tmp_path)
    async with mcp.Client(allowing) as client:
        wrote = await client.call_tool("write_file", {"file_path": "b.txt", "content": "b"})
    assert not wrote.is_error and (tmp_path / "b.txt").read_text() == "b"


async def test_a_served_call_takes_the_agent_loops_path(tmp_path):
    """Validation, the approval gate, the timeout and the events of a model's call in a
    run: an MCP client's call emits ``tool.execution``/``tool.error`` as the loop's does."""
    from victor.core.events import EventBus

    @tool(timeout=0.05)
    async def stall() -> str:
        """Never answers in time."""
        await asyncio.sleep(STALL)
        return "late"

    (tmp_path / "a.txt").write_text("alpha\n")
    server = victor.mcp.create_server(["read_file", "write_file", stall], workspace=tmp_path)
    with EventBus.capture("tool.*") as events:
        async with mcp.Client(server) as client:
            read = await client.call_tool("read_file", {"file_path": "a.txt"})
            refused = await client.call_tool("write_file", {"file_path": "b", "content": "b"})
            bad = await client.call_tool("read_file", {"path": "a.txt"})
            late = await client.call_tool("stall", {})
    assert not read.is_error and refused.is_error and bad.is_error and late.is_error
    assert "timed out after 0.05 s" in late.content[0].text
    finished = [e for e in events if e.type in ("tool.execution", "tool.error")]
    assert [(e.type, e.data["tool_name"]) for e in finished] == [
        ("tool.execution", "read_file"),
        ("tool.error", "write_file"),
        ("tool.error", "read_file"),
        ("tool.error", "stall"),
    ]
    assert "alpha" in finished[0].data["result"]
    assert "approval policy is 'never'" in finished[1].data["error"]
    assert all(e.data["call_id"].startswith("mcp_") for e in finished)


async def test_victor_mcp_serve_over_http(tmp_path, capsys):
    """`victor mcp serve --transport http`: MCP at /mcp, with victor serve's address rule."""
    import socket
    import subprocess

    from victor.cli import main as victor_cli

    assert victor_cli(["mcp", "serve", "--transport", "http", "--host", "0.0.0.0"]) == 1
    assert "without an API token" in capsys.readouterr().err

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "notes.txt").write_text("over http\n")
    command = [sys.executable, "-c", "from victor.cli import main; raise SystemExit(main())"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VICTOR_API_TOKEN", None)
    process = subprocess.Popen(
        [*command, "mcp", "serve", "--transport", "http", "--port", str(port),
         "--tools", "read_file"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        banner = await asyncio.to_thread(process.stderr.readline)
        assert banner.startswith(f"victor: MCP at http://127.0.0.1:{port}/mcp (loopback only)")
        remote = victor.mcp.server(f"http://127.0.0.1:{port}/mcp", name="files")
        deadline = time.monotonic() + STALL
        while True:  # the banner comes just before uvicorn listens
            try:
                await remote.connect()
                break
            except ToolError:
                assert time.monotonic() < deadline and process.poll() is None
                await asyncio.sleep(0.1)
        assert [t.name for t in remote.tools] == ["files_read_file"]
        read = await remote.call("read_file", {"file_path": "notes.txt"})
        await remote.aclose()
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, PROMPTLY)
    assert read.success and "over http" in read.output
