"""The HTTP app: ``create_app(settings)`` builds a FastAPI app whose routes call the same
public API a script would (``Agent.run``/``events``/``chat``, ``AgentTeam.run``/``events``,
``agent.run_workflow``); its lifespan opens and closes what is served.

Streams are Server-Sent Events: one event per stream event of the run, JSON data, the last
one ``run_finished`` with the answer and usage (or ``error`` with problem details). A client
that disconnects cancels its run, which closes the model's stream.

The routes are in ``routes.py``, what they depend on (the state, a run slot, the agent a
request names) in ``deps.py``, the error answers in ``problems.py``.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from .. import __version__
from .._util import needs_extra
from ..core.agent import Agent
from ..errors import ConfigurationError
from ..hosting.catalog import Catalog
from .deps import PROBLEMS, SLOT, ServerState
from .problems import add_problem_handlers
from .routes import router
from .settings import ServeSettings, is_loopback
from .streaming import EventStream
from .wire import Problem

__all__ = ["create_app", "ServerState"]

AGUI_STREAM = "AG-UI events as Server-Sent Events (`data:` lines only)"


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The victor HTTP app for ``settings`` (default: ``ServeSettings()``, every profile)."""
    settings = (settings or ServeSettings()).check()
    catalog = Catalog(settings.agents, profiles=settings.profiles, approval=settings.approval)
    state = ServerState(settings, catalog)
    mcp_endpoint, mcp_manager = _mcp(settings, catalog)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog.open()
        try:
            if mcp_manager is not None:
                async with mcp_manager.run():
                    yield
            else:
                yield
        finally:
            state.conversations.clear()
            await catalog.close()

    app = FastAPI(
        title="victor",
        version=__version__,
        summary="Run victor agents, teams and workflows over HTTP.",
        lifespan=lifespan,
    )
    app.state.victor = state
    add_problem_handlers(app)
    app.include_router(router)
    _add_agui(app)
    if mcp_endpoint is not None:
        from starlette.routing import Route

        app.router.routes.append(Route("/mcp", endpoint=mcp_endpoint))

    # Outermost last: CORS answers preflights (which carry no token) before the guard.
    from ..hosting.security import Guard

    app.add_middleware(Guard, token=settings.token, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _add_agui(app: FastAPI) -> None:
    """``POST /v1/agui/{agent}``: the AG-UI protocol over the agent's events."""
    with needs_extra("serve", "victor serve", what="the AG-UI protocol package"):
        from ag_ui.core import RunAgentInput
    from .agui import agui_events

    catalog: Catalog = app.state.victor.catalog

    async def agui_agent(agent: str) -> Agent:
        if catalog.kind(agent) != "agent":
            raise Problem(404, "No such agent", catalog.missing(agent, "agent"))
        return await catalog.agent(agent)

    AguiAgent = Annotated[Agent, Depends(agui_agent)]

    @app.post(
        "/v1/agui/{agent}",
        tags=["ag-ui"],
        dependencies=[SLOT],
        response_class=EventStream,
        response_description=AGUI_STREAM,
        responses=PROBLEMS,
    )
    async def agui(agent: str, body: RunAgentInput, view: AguiAgent) -> EventStream:
        """Run the agent for an AG-UI front end (``RunAgentInput`` in, AG-UI events out)."""

        def frame(event: Any) -> bytes:
            return f"data: {event.model_dump_json(by_alias=True)}\n\n".encode()

        return EventStream(agui_events(view, body), frame)


def _mcp(settings: ServeSettings, catalog: Catalog) -> tuple[Any, Any]:
    """(the ``/mcp`` endpoint, its session manager), or (None, None)."""
    if settings.mcp is False:
        return None, None
    try:
        with needs_extra("mcp", "serving MCP at /mcp", what="the MCP SDK"):
            import mcp  # noqa: F401
    except ConfigurationError:
        if settings.mcp:
            raise
        return None, None  # by default, /mcp is there when the MCP SDK is
    from ..mcp.serving import create_server, http_app

    server = create_server(agents=catalog, approval=settings.approval)
    return http_app(server, host=settings.host if is_loopback(settings.host) else "0.0.0.0")
