"""A small MCP server for notebooks/07-serve-and-mcp.ipynb, on the official MCP SDK.

    python mcp_capitals_server.py      # serves over stdio, as MCP clients start servers

Like most stdio servers it logs to stderr; victor shows those lines in the notebook cell.
"""

import sys

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima"}

server = MCPServer("capitals")


@server.tool()
def capital(country: str) -> str:
    """The capital city of a country."""
    print(f"capitals: looking up {country}", file=sys.stderr, flush=True)
    if country not in CAPITALS:
        # A ToolError's message reaches the client (and the model) as an error result.
        raise ToolError(f"unknown country {country!r}; known: {', '.join(CAPITALS)}")
    return CAPITALS[country]


@server.tool()
def countries() -> list[str]:
    """Every country this server knows."""
    return sorted(CAPITALS)


if __name__ == "__main__":
    print("capitals server: ready", file=sys.stderr, flush=True)
    server.run()  # stdio
