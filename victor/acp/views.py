"""What a session works with: the client's ``cwd`` as the workspace, views of the served
agent or team of its own, its tools (through the client's files where it offers them), the
MCP servers the client passed."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import RequestError

from ..tools.sandbox import Workspace
from .files import ClientFiles, client_file_tools

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..teams import AgentTeam

__all__ = ["agent_view", "agents", "close", "connect", "team_view", "workspace"]


def workspace(cwd: str) -> Workspace:
    """The session's workspace: the client's ``cwd`` (the protocol says absolute)."""
    path = Path(cwd)
    if not path.is_absolute() or not path.is_dir():
        raise RequestError(
            -32602,
            f"cwd {cwd!r} is not an existing directory given as an absolute path: the "
            f"session's tools work there",
        )
    return Workspace(path)


def _with(workspace: Workspace, base: Workspace) -> Workspace:
    """``workspace``'s root with the served agent's own workspace settings."""
    made = copy.copy(base)
    made.root = workspace.root
    return made


def agent_view(
    agent: Agent, workspace: Workspace, files: ClientFiles, toolsets: list[Any]
) -> Agent:
    """``agent`` (a view of its own) working in ``workspace``, with the session's tools."""
    agent.workspace = _with(workspace, agent.workspace)
    through = (
        {t.name: t for t in client_file_tools(files)} if files.can_read or files.can_write else {}
    )
    tools = [through.get(t.name, t) for t in agent.tools]
    for toolset in toolsets:
        tools += toolset.tools
    agent.tools = tools
    return agent


def team_view(
    team: AgentTeam, workspace: Workspace, files: ClientFiles, toolsets: list[Any]
) -> AgentTeam:
    """``team`` with members of this session's own (``agent_view``), wherever the team
    keeps them (``members``, a lead, a judge, ...)."""
    views: dict[int, Any] = {}
    for member in team.members:
        view = copy.copy(member)
        view.history, view.last_run = [], None
        views[id(member)] = agent_view(view, workspace, files, toolsets)
    for key, value in list(vars(team).items()):
        if id(value) in views:
            setattr(team, key, views[id(value)])
        elif isinstance(value, list) and any(id(v) in views for v in value):
            setattr(team, key, [views.get(id(v), v) for v in value])
    return team


def agents(target: Any) -> list[Any]:
    """The agents of a session's target: a team's members, or the agent itself."""
    return list(getattr(target, "members", [target]))


async def connect(servers: list[Any], cwd: str) -> list[Any]:
    """The MCP servers the client passed, connected (``victor.mcp``)."""
    if not servers:
        return []
    from ..mcp import server

    toolsets = []
    try:
        for spec in servers:
            kind = getattr(spec, "type", None)
            if kind == "sse":
                raise RequestError(
                    -32602,
                    f"MCP server {spec.name!r} is an SSE server, which victor does not connect "
                    f"to (initialize says sse: false): give its streamable HTTP URL",
                )
            if kind == "http":
                headers = {h.name: h.value for h in spec.headers}
                toolsets.append(server(spec.url, name=spec.name, headers=headers))
            else:
                env = {e.name: e.value for e in spec.env}
                toolsets.append(
                    server([spec.command, *spec.args], name=spec.name, env=env, cwd=cwd)
                )
            await toolsets[-1].connect()
    except RequestError:
        await close(toolsets)
        raise
    except Exception as exc:
        await close(toolsets)
        raise RequestError(
            -32603,
            f"could not connect the MCP server {spec.name!r}: {exc}",
            {"mcpServer": spec.name},
        ) from None
    return toolsets


async def close(toolsets: list[Any]) -> None:
    """Close MCP connections (stopping stdio servers); a failure to close is not an error."""
    await asyncio.gather(*(t.aclose() for t in toolsets), return_exceptions=True)
