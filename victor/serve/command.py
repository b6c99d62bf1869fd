"""``victor serve [APP] [--host H] [--port P] ...``: the command behind the HTTP server."""

from __future__ import annotations

import argparse
import sys

from ..hosting.security import TOKEN_VARIABLE, free_port, token_from_env
from .settings import ServeSettings

__all__ = ["main", "served"]


def served(args: argparse.Namespace) -> dict[str, object] | None:
    """The agents and teams of ``args.app`` (a file or module), or None to serve profiles."""
    if not args.app:
        return None
    from ..hosting.catalog import load_app

    return load_app(args.app)  # type: ignore[return-value]


def main(args: argparse.Namespace) -> int:
    from . import runner

    agents = served(args)
    settings = ServeSettings(
        agents=agents,  # type: ignore[arg-type]
        profiles=args.profile or None,
        host=args.host,
        port=args.port,
        token=token_from_env(),
        approval=args.approval,
        max_body_bytes=args.max_body,
        max_concurrent_runs=args.max_runs,
        cors_origins=args.cors or (),
        mcp=False if args.no_mcp else None,
    ).check()
    settings.port = free_port(settings.host, settings.port)
    names = _listing(agents or {}) or "profiles: " + ", ".join(args.profile or ["all"])
    auth = f"token from {TOKEN_VARIABLE}" if settings.token else "no token (loopback only)"
    banner = (
        f"victor: serving {names} on http://{settings.host}:{settings.port} ({auth}; "
        f"tools needing approval: {args.approval}). API docs at /docs"
    )
    runner.run(settings, log_level=args.log_level, announce=lambda: print(banner, file=sys.stderr))
    return 0


def _listing(agents: dict[str, object]) -> str:
    """The names served, each object once: ``echo (also helper)``."""
    names: dict[int, list[str]] = {}
    for name, value in agents.items():
        names.setdefault(id(value), []).append(name)
    return ", ".join(
        first + (f" (also {', '.join(others)})" if others else "")
        for first, *others in names.values()
    )
