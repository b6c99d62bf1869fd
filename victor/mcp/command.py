"""``victor mcp serve [APP] [--transport stdio|http] ...``: victor's tools and agents as an
MCP server."""

from __future__ import annotations

import argparse
import asyncio
import sys

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    from ..hosting.catalog import Catalog, load_app
    from ..hosting.security import check_bind, free_port, token_from_env
    from .serving import create_server, serve_http, serve_stdio

    agents = load_app(args.app) if args.app else None
    tools = [name.strip() for name in (args.tools or "").split(",") if name.strip()] or None
    # Agents from the app file and --profile only: an editor wants tools, not every profile.
    catalog = Catalog(agents or {}, profiles=args.profile or (), approval=args.approval)  # type: ignore[arg-type]
    server = create_server(tools, catalog, approval=args.approval, workspace=args.workspace or None)
    if args.transport == "http":
        token = token_from_env()
        check_bind(args.host, token)
        port = free_port(args.host, args.port)  # a port in use: said before announcing
        print(
            f"victor: MCP at http://{args.host}:{port}/mcp "
            f"({'token required' if token else 'loopback only'})",
            file=sys.stderr,
        )
        runner = serve_http(server, host=args.host, port=port, token=token)
    else:
        runner = serve_stdio(server)

    async def serve() -> None:
        catalog.open()
        try:
            await runner
        finally:
            await catalog.close()

    asyncio.run(serve())
    return 0
