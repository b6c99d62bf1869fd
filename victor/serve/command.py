"""``victor serve [APP] [--host H] [--port P] ...``: the command behind the HTTP server."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

from ..errors import ConfigurationError
from .settings import TOKEN_VARIABLE, ServeSettings, _token_from_env

__all__ = ["main", "served", "free_port"]


def served(args: argparse.Namespace) -> dict[str, object] | None:
    """The agents and teams of ``args.app`` (a file or module), or None to serve profiles."""
    if not args.app:
        return None
    from .catalog import load_app

    return load_app(args.app)  # type: ignore[return-value]


def free_port(host: str, port: int) -> int:
    """``port`` if nothing listens on it at ``host`` (0: a free port the system picks), so
    a port in use is one line saying so before the server is announced, not uvicorn's
    log after it. Bound as uvicorn binds (``SO_REUSEADDR``: a port left in TIME_WAIT by
    the last server is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"port {port} on {host} is in use: stop what listens there, or use another "
                    f"port (--port {port % 65535 + 1}, or --port 0 for any free one)"
                ) from None
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"
            ) from None
        return probe.getsockname()[1]


def main(args: argparse.Namespace) -> int:
    from . import runner

    agents = served(args)
    settings = ServeSettings(
        agents=agents,  # type: ignore[arg-type]
        profiles=args.profile or None,
        host=args.host,
        port=args.port,
        token=_token_from_env(),
        approval=args.approval,
        max_body_bytes=args.max_body,
        max_concurrent_runs=args.max_runs,
        cors_origins=args.cors or (),
        mcp=False if args.no_mcp else None,
    ).check()
    settings.port = free_port(settings.host, settings.port)
    names = _listing(agents or {}) or "profiles: " + ", ".join(args.profile or ["all"])
    auth = f"token from {TOKEN_VARIABLE}" if settings.token else "no token (loopback only)"
    print(
        f"victor: serving {names} on http://{settings.host}:{settings.port} ({auth}; "
        f"tools needing approval: {args.approval}). API docs at /docs",
        file=sys.stderr,
    )
    runner.run(settings, log_level=args.log_level)
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
