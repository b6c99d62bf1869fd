"""An MCP server's tools as victor tools: ``tools=[victor.mcp.server("npx -y some-server")]``.

Each connection lives in one task on a private event loop thread ("victor-mcp"): that task
enters the SDK's ``Client`` and, when the connection closes, exits it. The SDK's anyio cancel
scopes must be entered and exited by the same task, and an agent may run on several loops
(the kernel's, a background one); talking to the owner task through
``run_coroutine_threadsafe`` keeps both true. A call cancelled by its caller (a timeout,
Ctrl-C) cancels the request on the MCP loop too.

A stdio server's stderr goes where ``sys.stderr`` points at the time: the terminal, or in
Jupyter the cell that is running; what a server writes before answering a call is shown
before the call returns.

The loop and the stderr relay are in connection.py; what a target is, how tools are named
and how results and errors read, in translation.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shlex
import threading
from collections.abc import Collection, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from .._util import did_you_mean, forwards_to, needs_extra
from ..errors import ConfigurationError, ToolError
from ..tools.base import BaseTool, ToolResult
from .connection import StderrRelay, live, mcp_loop, stdio_transport
from .translation import (
    connection_lost,
    describe,
    innermost,
    parse_target,
    safe_name,
    strip_credentials,
    to_result,
)

if TYPE_CHECKING:
    import mcp

__all__ = ["MCPToolset", "MCPTool", "server"]


class MCPTool(BaseTool):
    """One tool of an MCP server, called through its ``MCPToolset``'s connection."""

    def __init__(
        self,
        toolset: MCPToolset,
        remote: mcp.types.Tool,
        name: str,
        requires_approval: bool,
    ) -> None:
        self.toolset = toolset
        #: The tool's name on the server (``name`` is what the model sees).
        self.remote_name = remote.name
        self.name = name  # type: ignore[misc]
        self.description = remote.description or remote.title or ""  # type: ignore[misc]
        self.parameters = dict(remote.input_schema or {"type": "object"})  # type: ignore[misc]
        self.parameters.setdefault("type", "object")
        self.timeout = toolset.timeout  # type: ignore[misc]
        self.requires_approval = requires_approval  # type: ignore[misc]

    async def execute(self, **kwargs: Any) -> ToolResult:
        return await self.toolset.call(self.remote_name, kwargs)


class MCPToolset:
    """A connection to one MCP server and its tools (make one with ``victor.mcp.server``)."""

    def __init__(
        self,
        target: Any,
        *,
        name: str | None = None,
        prefix: str | None = None,
        timeout: float | None = 60.0,
        connect_timeout: float = 60.0,
        requires_approval: bool | Collection[str] = True,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._kind, self._target, label = parse_target(target)
        if self._kind != "stdio" and (env or cwd):
            raise ConfigurationError(
                f"env= and cwd= are for a server started as a command, not for {label!r}"
            )
        if self._kind != "url" and headers:
            raise ConfigurationError(f"headers= are for a server at a URL, not for {label!r}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout={timeout!r} is invalid: use seconds > 0 or None")
        if isinstance(requires_approval, str):
            raise ConfigurationError(
                f"requires_approval={requires_approval!r} is invalid: use True, False, or a "
                f"collection of the server's tool names, e.g. {{{requires_approval!r}}}"
            )
        self._given_name = name
        self.name = safe_name(name or label)
        self._prefix = prefix
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.requires_approval = requires_approval
        self._env = dict(env or {})
        self._cwd = cwd
        self._headers = dict(headers or {})
        self._lock = threading.Lock()
        self._opening: concurrent.futures.Future[list[MCPTool]] | None = None
        self._tools: list[MCPTool] | None = None
        self._client: mcp.Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._stderr: StderrRelay | None = None

    # -- the public face -------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """What goes before each tool's name (``"<name>_"`` unless given)."""
        return f"{self.name}_" if self._prefix is None else self._prefix

    @property
    def tools(self) -> list[MCPTool]:
        """The server's tools as victor tools (connects first, blocking, if needed)."""
        if self._tools is None:
            self._connect_sync()
        assert self._tools is not None
        return list(self._tools)

    def __victor_tools__(self) -> list[MCPTool]:
        """What ``tools=[toolset]`` resolves to (see ``victor.tools.registry``)."""
        return self.tools

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> MCPToolset:
        """Start (or reach) the server and list its tools, without blocking the event loop."""
        if self._tools is None:
            self._check_not_on_mcp_loop()
            await asyncio.wrap_future(self._start_opening())
        return self

    async def call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Call the server's tool ``tool`` (its own name, no prefix) and return the result;
        errors are results the model can read, as with every victor tool."""
        await self.connect()
        client = self._client
        if client is None:
            return ToolResult.fail(
                f"the MCP server {self.name!r} is not connected (it was closed or exited)"
            )
        future = mcp_loop().submit(client.call_tool(tool, dict(arguments or {})))
        try:
            result = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not connection_lost(exc):
                return ToolResult.fail(f"the MCP server {self.name!r} failed: {describe(exc)}")
            # The server exited or hung up. Whether this call reached it is unknown, so it
            # is not repeated here; the dead connection is dropped and the next call
            # starts (or reaches) the server again.
            await asyncio.wrap_future(mcp_loop().submit(self._close_if(client)))
            return ToolResult.fail(
                f"the MCP server {self.name!r} closed the connection ({self._describe_target()} "
                f"exited or hung up). It is started again on the next call: call {tool!r} "
                f"again if it should still run"
            )
        finally:
            if self._stderr is not None:
                self._stderr.drain()  # what the server logged while working, before its answer
        return to_result(result)

    async def aclose(self) -> None:
        """Close the connection (and stop a stdio server). It reopens on next use."""
        if self._owner is not None or self._opening is not None:
            self._check_not_on_mcp_loop()
            await asyncio.wrap_future(mcp_loop().submit(self._close()))

    def close(self) -> None:
        """``aclose`` for synchronous code."""
        if self._owner is not None or self._opening is not None:
            self._check_not_on_mcp_loop()
            mcp_loop().submit(self._close()).result()

    async def __aenter__(self) -> MCPToolset:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # Never the env, the headers or a URL's credentials: they may hold secrets.
        state = f"{len(self._tools)} tools" if self._tools is not None else "not connected"
        return f"<MCP server {self.name!r} ({self._kind}): {state}>"

    # -- opening and closing, on the MCP loop ------------------------------------------

    def _start_opening(self) -> concurrent.futures.Future[list[MCPTool]]:
        with self._lock:  # concurrent first users share one opening
            if self._opening is None or (self._opening.done() and self._tools is None):
                self._opening = mcp_loop().submit(self._open())
            return self._opening

    def _connect_sync(self) -> None:
        self._check_not_on_mcp_loop()
        self._start_opening().result()

    async def _open(self) -> list[MCPTool]:
        ready: asyncio.Future[list[MCPTool]] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._own(ready, self._stop))
        try:
            return await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout)
        except asyncio.TimeoutError:
            ready.cancel()  # nobody waits for it any more
            await self._close()
            raise ToolError(
                f"the MCP server {self.name!r} did not answer within {self.connect_timeout} s "
                f"(connect_timeout); check that {self._describe_target()} starts and speaks MCP"
            ) from None
        except BaseException:
            await self._close()
            raise

    async def _own(self, ready: asyncio.Future[list[MCPTool]], stop: asyncio.Event) -> None:
        """The one task that opens the connection, serves it until asked to stop, closes it."""
        live.add(self)
        try:
            async with AsyncExitStack() as stack:
                client = await self._enter_client(stack)
                tools = await self._list_tools(client)
                self._client, self._tools = client, tools
                if not ready.done():
                    ready.set_result(tools)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                error = self._connect_error(exc)
                if isinstance(error, asyncio.CancelledError):
                    ready.cancel()
                else:
                    ready.set_exception(error)
            if not isinstance(exc, (asyncio.CancelledError, Exception)):
                raise
        finally:
            self._client = None
            self._tools = None
            live.discard(self)

    async def _enter_client(self, stack: AsyncExitStack) -> mcp.Client:
        with needs_extra("mcp", "victor.mcp", what="the MCP SDK"):
            from mcp import Client, Implementation, StdioServerParameters
        from .. import __version__

        target: Any = self._target
        if self._kind == "stdio":
            self._stderr = StderrRelay(self.name)
            stack.callback(self._stderr.close)
            command, *args = self._target
            target = stdio_transport(
                StdioServerParameters(
                    command=command,
                    args=args,
                    env=self._env or None,
                    cwd=self._cwd,
                ),
                self._stderr,
            )
        elif self._kind == "url" and self._headers:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = await stack.enter_async_context(create_mcp_http_client(headers=self._headers))
            target = streamable_http_client(self._target, http_client=http)
        client = Client(target, client_info=Implementation(name="victor", version=__version__))
        entered = await stack.enter_async_context(client)
        if self._stderr is not None:
            self._stderr.drain()  # what the server printed while starting
        return entered

    async def _list_tools(self, client: mcp.Client) -> list[MCPTool]:
        if self._given_name is None and self._kind == "object":
            info = client.server_info
            if info is not None and info.name:
                self.name = safe_name(info.name)
        remote: list[mcp.types.Tool] = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            remote += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        return self._make_tools(remote)

    def _make_tools(self, remote: Sequence[mcp.types.Tool]) -> list[MCPTool]:
        rule = self.requires_approval
        if not isinstance(rule, bool):
            unknown = [n for n in rule if n not in {t.name for t in remote}]
            if unknown:
                names = [t.name for t in remote]
                raise ConfigurationError(
                    f"requires_approval names {unknown[0]!r}, which the MCP server {self.name!r} "
                    f"does not have.{did_you_mean(unknown[0], names)} Its tools: {', '.join(names)}"
                )
        tools: dict[str, MCPTool] = {}
        for spec in remote:
            local = safe_name(self.prefix + spec.name)
            if local in tools:
                raise ToolError(
                    f"the MCP server {self.name!r} has tools {tools[local].remote_name!r} and "
                    f"{spec.name!r}, which both become {local!r}; connect it with another prefix="
                )
            needs = rule if isinstance(rule, bool) else spec.name in rule
            tools[local] = MCPTool(self, spec, local, needs)
        return list(tools.values())

    async def _close_if(self, client: mcp.Client) -> None:
        """Close the connection if it is still ``client`` (not one opened since)."""
        if self._client is client:
            await self._close()

    async def _close(self) -> None:
        owner, stop = self._owner, self._stop
        self._owner = self._stop = None
        with self._lock:
            self._opening = None
        if owner is None:
            return
        if self._client is None:
            owner.cancel()  # still starting: nothing to close gracefully
        elif stop is not None:
            stop.set()
        try:
            # The owner exits the SDK's context itself; a stdio server gets a few seconds
            # to stop after its stdin closes, then is killed (the SDK's own sequence).
            await asyncio.wait_for(asyncio.shield(owner), 10.0)
        except asyncio.TimeoutError:
            owner.cancel()
        except BaseException:
            pass  # its failure was reported to whoever was waiting for it

    # -- helpers ---------------------------------------------------------------------

    def _connect_error(self, exc: BaseException) -> BaseException:
        leaf = innermost(exc)
        if isinstance(leaf, (ConfigurationError, ToolError, asyncio.CancelledError)):
            return leaf
        hint = ""
        if self._kind == "stdio" and "closed" in str(describe(exc)).lower():
            hint = " (the server exited or closed its stdout; its stderr is shown above)"
        return ToolError(
            f"cannot connect to the MCP server {self.name!r} ({self._describe_target()}): "
            f"{describe(exc)}{hint}"
        )

    def _describe_target(self) -> str:
        if self._kind == "stdio":
            return f"the command {shlex.join(self._target)!r}"
        if self._kind == "url":
            return f"the URL {strip_credentials(self._target)!r}"
        return f"the in-process server {type(self._target).__name__}"

    def _check_not_on_mcp_loop(self) -> None:
        if threading.current_thread() is mcp_loop().thread:
            raise ToolError(
                f"the MCP server {self.name!r} was used from inside an MCP tool call; "
                f"call it from your own code or an agent instead"
            )


@forwards_to(MCPToolset)
def server(*args: Any, **kwargs: Any) -> MCPToolset:
    """An MCP server whose tools an agent can use: ``Agent(tools=[victor.mcp.server(...)])``.

    ``target`` is a command line (``"npx -y @modelcontextprotocol/server-everything"``, or a
    list of arguments) started as a stdio server, an ``http(s)://`` URL (streamable HTTP),
    or an in-process server (``mcp.server.MCPServer`` or a low-level ``Server``).

    - ``name``: how the server is called in tool names and messages (default: derived from
      the target, then the server's own name); ``prefix``: put before each tool's name
      (default ``"<name>_"``; ``""`` keeps the server's names).
    - ``timeout``: seconds one call may take; ``connect_timeout``: for starting and listing.
    - ``requires_approval``: MCP tools can do anything, so by default every call needs the
      agent's approval policy (``approval="auto"`` or a callback). ``False`` trusts the
      server; a collection of the server's tool names asks only for those.
    - ``env``, ``cwd``: for a stdio server's process (it inherits only a safe minimum of
      the environment: pass API keys it needs in ``env``). ``headers``: for a URL.

    The connection opens on first use (or ``await toolset.connect()``, which does not block
    the event loop) and closes with ``await toolset.aclose()``, ``async with``, or at exit.
    """
    return MCPToolset(*args, **kwargs)
