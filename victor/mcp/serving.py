"""victor's tools and agents as an MCP server: ``victor mcp serve`` over stdio or HTTP.

Every registered tool (built-ins and your own) is offered under its name, and every served
agent or team as ``ask_<name>`` (arguments: ``task``, optional ``context``). A call goes
through the same validation and approval as a model's call in an agent run: tools that
write files or run commands are refused unless the server's approval policy allows them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._util import needs_extra
from ..errors import ConfigurationError, VictorError

if TYPE_CHECKING:
    import mcp.server

    from ..core.agent import Agent
    from ..hosting.catalog import Catalog
    from ..teams import AgentTeam
    from ..tools.approval import ApprovalPolicy
    from ..tools.base import BaseTool
    from ..tools.registry import ToolLike
    from ..tools.sandbox import Workspace

__all__ = ["create_server", "serve_stdio", "serve_http"]

ASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {"type": "string", "description": "What to do or answer."},
        "context": {
            "type": "object",
            "description": "Named pieces of context (code, data) the task refers to.",
            "additionalProperties": True,
        },
    },
    "required": ["task"],
}


def create_server(
    tools: Iterable[ToolLike] | None = None,
    agents: Catalog | Mapping[str, Agent | AgentTeam] | None = None,
    *,
    name: str = "victor",
    approval: ApprovalPolicy = "never",
    workspace: Workspace | str | os.PathLike[str] | None = None,
    tool_timeout: float | None = 120.0,
) -> mcp.server.Server:
    """An MCP server (the SDK's low-level ``Server``) offering ``tools`` and ``agents``.

    ``tools``: names, toolsets or tools (default: every registered tool); ``agents``: a
    mapping of names to agents or teams (offered as ``ask_<name>``), or a served catalog;
    ``approval``: who allows calls of tools that need approval (``"never"``, the default,
    refuses them; ``"auto"`` allows them); ``workspace``: where file tools read and write.
    """
    from .._util import new_id
    from ..core.events import current_scope
    from ..core.loop import run_tool_call
    from ..core.messages import ToolCall
    from ..hosting.catalog import Catalog
    from ..tools.approval import check_policy
    from ..tools.context import ToolContext
    from ..tools.registry import registry
    from ..tools.sandbox import Workspace

    with needs_extra("mcp", "the MCP server", what="the MCP SDK"):
        import mcp.types as types
        from mcp.server import Server
    from .. import __version__

    policy = check_policy(approval)
    offered: dict[str, BaseTool] = {
        t.name: t for t in registry.resolve(tools if tools is not None else list(registry))
    }
    catalog = (
        agents
        if isinstance(agents, Catalog)
        else Catalog(agents or {}, profiles=(), approval=policy)
    )
    asks = {f"ask_{n}": n for n in catalog.names()}
    clash = sorted(set(asks) & set(offered))
    if clash:
        raise ConfigurationError(
            f"the tool {clash[0]!r} has the name of the agent tool for {asks[clash[0]]!r}; "
            f"rename the agent or leave the tool out"
        )
    context = ToolContext(workspace=Workspace.coerce(workspace), approval=policy)

    def listing() -> list[types.Tool]:
        out = [
            types.Tool(name=t.name, description=t.description, input_schema=t.schema)
            for t in offered.values()
        ]
        for tool_name, served in asks.items():
            kind = catalog.kind(served)
            out.append(
                types.Tool(
                    name=tool_name,
                    description=f"Ask the {kind} {served!r} to do a task; returns its answer.",
                    input_schema=ASK_SCHEMA,
                )
            )
        return out

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing())

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        if params.name in asks:
            ok, text = await _ask(catalog, asks[params.name], arguments)
        elif params.name in offered:
            # Validated, put to the approval policy and run as the agent loop runs a call.
            call = ToolCall(id=new_id("mcp"), name=params.name, arguments=arguments)
            result, _ = await run_tool_call(call, offered, current_scope(), tool_timeout, context)
            # The error without to_text()'s "Error: ": is_error already says so.
            ok = result.success
            text = result.to_text() if ok else result.error or "the tool failed"
        else:
            from .._util import did_you_mean

            known = [*offered, *asks]
            ok, text = (
                False,
                (
                    f"there is no tool named {params.name!r}.{did_you_mean(params.name, known)} "
                    f"Tools: {', '.join(known)}"
                ),
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], is_error=not ok
        )

    @asynccontextmanager
    async def lifespan(server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        catalog.open()  # the agents get the server's approval policy while it serves
        try:
            yield {}
        finally:
            await catalog.close()

    server: Server[Any] = Server(
        name,
        version=__version__,
        instructions="Tools and agents served by victor.",
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    return server


async def _ask(catalog: Catalog, name: str, arguments: dict[str, Any]) -> tuple[bool, str]:
    task, context = arguments.get("task"), arguments.get("context")
    if not isinstance(task, str) or not task.strip():
        return False, "give the task as a non-empty string: {'task': '...'}"
    if context is not None and not isinstance(context, dict):
        return False, "context must be an object of name -> value"
    try:
        if catalog.kind(name) == "team":
            team = await catalog.team(name)
            return True, str(await team.run(task, context))
        agent = await catalog.agent(name)
        answer = await agent.run(task, context)
        finished = agent.last_run
        return True, finished.content if finished is not None else str(answer)
    except VictorError as exc:
        return False, f"{type(exc).__name__}: {exc}"


async def serve_stdio(server: mcp.server.Server) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin closes.

    While it serves, anything printed goes to stderr, never onto the protocol's stdout.
    """
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def http_app(server: mcp.server.Server, *, host: str = "127.0.0.1") -> tuple[Any, Any]:
    """(ASGI app answering MCP over streamable HTTP, its session manager).

    Run the manager (``async with manager.run():``) around serving the app. On a loopback
    host, requests must name a loopback Host and Origin (DNS rebinding protection).
    """
    from mcp.server.streamable_http_manager import (
        StreamableHTTPASGIApp,
        StreamableHTTPSessionManager,
    )
    from mcp.server.transport_security import TransportSecuritySettings

    from ..hosting.security import is_loopback

    security = None
    if is_loopback(host):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    manager = StreamableHTTPSessionManager(app=server, security_settings=security)
    return StreamableHTTPASGIApp(manager), manager


async def serve_http(
    server: mcp.server.Server,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
) -> None:
    """Serve ``server`` over streamable HTTP at ``http://host:port/mcp`` (uvicorn).

    As ``victor serve``: loopback by default; another address needs a token, and with a
    token every request needs ``Authorization: Bearer <token>``.
    """
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    from ..hosting.security import Guard, check_bind

    check_bind(host, token)
    endpoint, manager = http_app(server, host=host)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with manager.run():
            yield

    app = Starlette(routes=[Route("/mcp", endpoint=endpoint)], lifespan=lifespan)
    guarded = Guard(app, token=token)
    config = uvicorn.Config(guarded, host=host, port=port, lifespan="on", log_level="info")
    await uvicorn.Server(config).serve()
