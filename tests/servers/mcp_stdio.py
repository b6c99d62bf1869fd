"""A small MCP server for tests, on the official SDK: ``python tests/servers/mcp_stdio.py``
serves it over stdio; ``build()`` gives it in-process.

It logs to stderr (as stdio servers do), so tests can see that output reach the caller.
"""

from __future__ import annotations

import logging
import os
import sys

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(name: str = "demo") -> MCPServer:
    # MCPServer() calls logging.basicConfig; keep the test process's logging as it was.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    server = MCPServer(name, log_level="WARNING")
    root.setLevel(level)
    root.handlers[:] = handlers

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        print(f"{name}: adding {a} and {b}", file=sys.stderr, flush=True)
        return a + b

    @server.tool()
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        if b == 0:
            raise ToolError("cannot divide by zero; pass a non-zero b")
        return a / b

    @server.tool()
    async def wait(seconds: float) -> str:
        """Wait, then say so."""
        import anyio

        await anyio.sleep(seconds)
        return f"waited {seconds} s"

    @server.tool(name="shout.loud")
    def shout(text: str) -> str:
        """Upper-case the text (its name has a dot, which model APIs do not accept)."""
        return text.upper()

    return server


if __name__ == "__main__":
    print(f"demo server ready (pid {os.getpid()})", file=sys.stderr, flush=True)
    build().run()
