"""MCP both ways (extra ``mcp``): an MCP server's tools as victor tools, and victor's tools
and agents as an MCP server.

    import victor.mcp
    agent = await Agent.create(tools=[victor.mcp.server("npx -y some-server")], approval="auto")

``victor mcp serve`` (or ``victor.mcp.serve_stdio``/``create_server``) offers the registered
tools and ``ask_<agent>`` tools to MCP clients. The MCP SDK is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import MCPTool, MCPToolset, server

if TYPE_CHECKING:
    from .serving import create_server, serve_http, serve_stdio

__all__ = ["MCPTool", "MCPToolset", "create_server", "serve_http", "serve_stdio", "server"]


def __getattr__(name: str) -> Any:
    if name in ("create_server", "serve_http", "serve_stdio"):
        from . import serving as module

        return getattr(module, name)
    raise AttributeError(f"module 'victor.mcp' has no attribute {name!r}")
