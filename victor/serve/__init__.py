"""``victor serve`` (extra ``serve``): agents, teams and workflows over HTTP, with streaming
(Server-Sent Events), AG-UI, and MCP at ``/mcp``.

    from victor.serve import ServeSettings, create_app, start
    app = create_app(ServeSettings(agents={"helper": agent}))   # any ASGI server runs it
    with start(ServeSettings(agents={"helper": agent})) as server:   # on a thread
        httpx.post(server.url + "/v1/runs", json={"task": "..."})

FastAPI and uvicorn are imported when an app is made, never by ``import victor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._util import needs_extra
from ..hosting.catalog import Catalog, load_app
from ..hosting.security import TOKEN_VARIABLE
from .settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .runner import BackgroundServer, run, start

__all__ = [
    "BackgroundServer",
    "Catalog",
    "ServeSettings",
    "TOKEN_VARIABLE",
    "create_app",
    "load_app",
    "run",
    "start",
]


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``settings`` (see ``ServeSettings``)."""
    with needs_extra("serve", "victor serve"):
        from .app import create_app as build
    return build(settings)


def __getattr__(name: str) -> Any:
    if name in ("run", "start", "BackgroundServer"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'victor.serve' has no attribute {name!r}")
