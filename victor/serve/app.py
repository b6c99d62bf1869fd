"""The HTTP app: ``create_app(settings)`` builds a FastAPI app whose routes call the same
public API a script would (``Agent.run``/``events``/``chat``, ``AgentTeam.run``/``events``,
``agent.run_workflow``); its lifespan opens and closes what is served.

Streams are Server-Sent Events: one event per stream event of the run, JSON data, the last
one ``run_finished`` with the answer and usage (or ``error`` with problem details). A client
that disconnects cancels its run, which closes the model's stream.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name dependencies defined inside create_app.

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from .. import __version__
from .._util import needs_extra, new_id
from ..core.agent import Agent
from ..core.events import Event
from ..errors import ConfigurationError, VictorError
from ..hosting.catalog import Catalog
from ..teams import AgentTeam
from . import models as m
from .settings import ServeSettings, is_loopback
from .streaming import EventStream, agent_sse, sse_pairs, until_disconnect
from .wire import (
    AGENT_STREAM,
    MEMBER_STREAM,
    PROBLEM_TYPE,
    UNSENT_BUS_EVENTS,
    Problem,
    encode_bus_event,
    finished,
    problem_for,
    to_json,
    usage,
)

__all__ = ["create_app", "ServerState"]

T = TypeVar("T")
B = TypeVar("B")
V = TypeVar("V")

AGUI_STREAM = "AG-UI events as Server-Sent Events (`data:` lines only)"


@dataclass
class Conversation:
    id: str
    agent_name: str
    agent: Agent
    busy: bool = False


@dataclass
class Target(Generic[B, V]):
    """A request's body and what it names (the name served, this request's view of it).

    The body is declared by one dependency only: FastAPI validates a body once for every
    dependant declaring it, so an endpoint and its dependency both taking it doubled the
    work and listed each error of a 422 twice.
    """

    body: B
    name: str
    view: V


@dataclass
class ServerState:
    """What the app keeps between requests (``app.state.victor``)."""

    settings: ServeSettings
    catalog: Catalog
    runs: int = 0
    conversations: OrderedDict[str, Conversation] = field(default_factory=OrderedDict)

    def remember(self, conversation: Conversation) -> None:
        self.conversations[conversation.id] = conversation
        while len(self.conversations) > self.settings.max_conversations:
            oldest = next((c for c in self.conversations.values() if not c.busy), None)
            if oldest is None:
                break
            del self.conversations[oldest.id]


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
    problems = {
        code: {"description": text, "content": {PROBLEM_TYPE: {}}}
        for code, text in (
            (401, "Missing or wrong API token"),
            (404, "Nothing served under that name"),
            (413, "Request body too large"),
            (422, "Invalid request"),
            (429, "Too many runs in progress"),
            (502, "The model provider failed"),
        )
    }

    # -- errors ----------------------------------------------------------------------

    def problem_response(problem: Problem) -> Response:
        return Response(
            problem.json(),
            status_code=problem.status,
            media_type=PROBLEM_TYPE,
            headers=problem.headers,
        )

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            Problem(exc.status_code, title, detail, headers=dict(exc.headers or {}))
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return problem_response(
            Problem(422, "Invalid request", f"{where}: {first['msg']}", errors=errors)
        )

    @app.exception_handler(VictorError)
    async def on_failed_run(request: Request, exc: VictorError) -> Response:
        return problem_response(problem_for(exc))

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> Response:
        # A bug: Starlette logs the traceback after this answer; the client sees an id.
        return problem_response(problem_for(exc))

    # -- dependencies: checked before a stream starts, so they can still answer 4xx ----

    async def run_slot() -> AsyncIterator[None]:
        if state.runs >= settings.max_concurrent_runs:
            raise Problem(
                429,
                "Too many runs",
                f"{state.runs} runs are in progress, the most this server allows "
                f"(max_concurrent_runs={settings.max_concurrent_runs}); try again shortly",
                headers={"Retry-After": "1"},
            )
        state.runs += 1
        try:
            yield
        finally:
            state.runs -= 1

    slot = Depends(run_slot, scope="request")

    def choose(name: str | None, kind: str) -> str:
        if name is not None:
            if catalog.kind(name) != kind:
                raise Problem(404, f"No such {kind}", catalog.missing(name, kind))  # type: ignore[arg-type]
            return name
        names = catalog.names(kind)  # type: ignore[arg-type]
        if len(names) == 1:
            return names[0]
        raise Problem(
            422,
            "Invalid request",
            f"name the {kind} to use ({kind!r} in the body): one of {', '.join(names) or 'none'}",
        )

    async def agent_for(body: m.RunRequest) -> Target[m.RunRequest, Agent]:
        name = choose(body.agent, "agent")
        return Target(body, name, await catalog.agent(name))

    async def team_for(body: m.TeamRunRequest) -> Target[m.TeamRunRequest, AgentTeam]:
        name = choose(body.team, "team")
        return Target(body, name, await catalog.team(name))

    async def workflow_for(body: m.WorkflowRunRequest) -> Target[m.WorkflowRunRequest, Agent]:
        from ..workflows import list_workflows

        if body.workflow not in list_workflows():
            from .._util import did_you_mean

            known = list_workflows()
            raise Problem(
                404,
                "No such workflow",
                f"no workflow named {body.workflow!r}.{did_you_mean(body.workflow, known)} "
                f"Workflows: {', '.join(known)}",
            )
        name = choose(body.agent, "agent")
        return Target(body, name, await catalog.agent(name))

    async def conversation_for(
        body: m.ChatRequest,
    ) -> AsyncIterator[Target[m.ChatRequest, Conversation]]:
        if body.conversation_id is None:
            name = choose(body.agent, "agent")
            conversation = Conversation(new_id("conv"), name, await catalog.agent(name))
        else:
            conversation = _find(body.conversation_id)
            if body.agent is not None and body.agent != conversation.agent_name:
                raise Problem(
                    422,
                    "Invalid request",
                    f"conversation {conversation.id!r} is with {conversation.agent_name!r}, "
                    f"not {body.agent!r}",
                )
        if conversation.busy:
            raise Problem(
                409,
                "Conversation busy",
                f"conversation {conversation.id!r} is answering another message; wait for it",
            )
        conversation.busy = True
        state.remember(conversation)
        try:
            yield Target(body, conversation.agent_name, conversation)
        finally:
            conversation.busy = False

    AgentTarget = Annotated[Target[m.RunRequest, Agent], Depends(agent_for)]
    TeamTarget = Annotated[Target[m.TeamRunRequest, AgentTeam], Depends(team_for)]
    WorkflowTarget = Annotated[Target[m.WorkflowRunRequest, Agent], Depends(workflow_for)]
    ConversationTarget = Annotated[
        Target[m.ChatRequest, Conversation], Depends(conversation_for, scope="request")
    ]

    def _find(conversation_id: str) -> Conversation:
        conversation = state.conversations.get(conversation_id)
        if conversation is None:
            raise Problem(
                404,
                "No such conversation",
                f"no conversation {conversation_id!r} (it may have been forgotten: this server "
                f"keeps the {settings.max_conversations} most recent); start a new one",
            )
        state.conversations.move_to_end(conversation_id)
        return conversation

    # -- routes ----------------------------------------------------------------------

    @app.get("/v1/health", tags=["server"])
    async def health() -> m.Health:
        """Whether the server is up, and how busy it is."""
        return m.Health(status="ok", version=__version__, runs_in_progress=state.runs)

    @app.get("/v1/agents", tags=["server"])
    async def agents() -> m.Served:
        """The agents (configured and from profiles), teams and workflows served."""
        from ..workflows import list_workflows

        described = catalog.describe()
        return m.Served(
            agents=[d for d in described if d["kind"] == "agent"],
            teams=[d for d in described if d["kind"] == "team"],
            workflows=list_workflows(),
        )

    @app.post("/v1/runs", tags=["agents"], dependencies=[slot], responses=problems)
    async def run(target: AgentTarget, request: Request) -> m.RunResponse:
        """Do a task and return the answer and its usage (``Agent.run``)."""
        body, agent = target.body, target.view
        await _unless_gone(request, agent.run(body.task, body.context))
        assert agent.last_run is not None
        return m.RunResponse(agent=target.name, **finished(agent.last_run))

    @app.post(
        "/v1/runs/stream",
        tags=["agents"],
        dependencies=[slot],
        response_class=EventStream,
        response_description=AGENT_STREAM,
        responses=problems,
    )
    async def run_stream(target: AgentTarget) -> EventStream:
        """Do a task, streaming its events (``Agent.events``): ``run_started`` (``run_id``,
        ``agent``), ``text``, ``response`` (also ``content`` and ``tool_calls``),
        ``tool_started``, ``tool_finished``, then ``run_finished`` (or ``error``)."""
        body = target.body
        started = {"run_id": new_id("run"), "agent": target.name}
        return agent_sse(target.view.events(body.task, body.context), started)

    @app.post("/v1/chat", tags=["agents"], dependencies=[slot], responses=problems)
    async def chat(target: ConversationTarget, request: Request) -> m.ChatResponse:
        """Send a message in a conversation (a new one without ``conversation_id``)."""
        conversation = target.view
        agent = conversation.agent
        await _unless_gone(request, agent.chat(target.body.message))
        assert agent.last_run is not None
        return m.ChatResponse(
            agent=conversation.agent_name,
            conversation_id=conversation.id,
            **finished(agent.last_run),
        )

    @app.post(
        "/v1/chat/stream",
        tags=["agents"],
        dependencies=[slot],
        response_class=EventStream,
        response_description=AGENT_STREAM,
        responses=problems,
    )
    async def chat_stream(target: ConversationTarget) -> EventStream:
        """``/v1/chat`` as a stream of events, as ``/v1/runs/stream`` sends them;
        ``run_started`` and ``run_finished`` have the ``conversation_id``."""
        conversation = target.view
        events = conversation.agent.events(target.body.message, remember=True)
        started = {
            "run_id": new_id("run"),
            "agent": conversation.agent_name,
            "conversation_id": conversation.id,
        }
        return agent_sse(events, started)

    @app.get("/v1/conversations/{conversation_id}", tags=["agents"], responses=problems)
    async def conversation(conversation_id: str) -> m.ConversationOut:
        """A conversation's messages so far."""
        found = _find(conversation_id)
        return m.ConversationOut(
            id=found.id,
            agent=found.agent_name,
            messages=[msg.model_dump(mode="json") for msg in found.agent.history],
        )

    @app.delete(
        "/v1/conversations/{conversation_id}",
        tags=["agents"],
        status_code=204,
        responses=problems,
    )
    async def forget(conversation_id: str) -> None:
        """Forget a conversation."""
        found = _find(conversation_id)
        if found.busy:
            raise Problem(409, "Conversation busy", f"{conversation_id!r} is answering")
        del state.conversations[conversation_id]

    @app.post("/v1/teams/runs", tags=["teams"], dependencies=[slot], responses=problems)
    async def team_run(target: TeamTarget, request: Request) -> m.TeamRunResponse:
        """Do a task as a team (``AgentTeam.run``)."""
        body = target.body
        result = await _unless_gone(request, target.view.run(body.task, body.context))
        return m.TeamRunResponse(team=target.name, **_team_result(result))

    @app.post(
        "/v1/teams/runs/stream",
        tags=["teams"],
        dependencies=[slot],
        response_class=EventStream,
        response_description=MEMBER_STREAM,
        responses=problems,
    )
    async def team_stream(target: TeamTarget) -> EventStream:
        """A team run's events as they happen (``AgentTeam.events``), under the names
        ``/v1/runs/stream`` uses: ``run_started`` (``run_id``, ``team``, ``formation``,
        ``members``, ``task``), what the members do, the team's ``round_started``,
        ``delegated`` (``from``, ``to``, ``task``) and ``voted`` (``voter``, ``choice``),
        then ``run_finished`` (the team's answer, ``usage_by_agent``) or ``error``."""
        body, name, team = target.body, target.name, target.view

        async def events() -> AsyncIterator[tuple[str, str]]:
            async with aclosing(team.events(body.task, body.context)) as stream:
                async for event in stream:
                    if event.type not in UNSENT_BUS_EVENTS:
                        yield encode_bus_event(event)
            result = team.last_result
            end = {"run_id": result.run_id, "team": name, **_team_result(result)}
            yield "run_finished", to_json(end)

        return sse_pairs(events())

    @app.post("/v1/workflows/runs", tags=["workflows"], dependencies=[slot], responses=problems)
    async def workflow_run(target: WorkflowTarget, request: Request) -> m.WorkflowRunResponse:
        """Run a workflow on an agent (``agent.run_workflow``)."""
        body, agent = target.body, target.view
        outcome: dict[str, Any] = {}
        run = _workflow(agent, body.workflow, body.input, outcome, new_id("run"))

        async def work() -> None:
            async with aclosing(run) as events:
                async for _ in events:
                    pass

        await _unless_gone(request, work())
        return m.WorkflowRunResponse(workflow=body.workflow, agent=target.name, **outcome)

    @app.post(
        "/v1/workflows/runs/stream",
        tags=["workflows"],
        dependencies=[slot],
        response_class=EventStream,
        response_description=MEMBER_STREAM,
        responses=problems,
    )
    async def workflow_stream(target: WorkflowTarget) -> EventStream:
        """A workflow's events, under the names ``/v1/runs/stream`` uses: ``run_started``
        (``run_id``, ``workflow``, ``agent``), ``step_started`` (``step``, ``index``) and
        what each step's run does, then ``run_finished`` with every step's output."""
        body, agent = target.body, target.view
        started = {"run_id": new_id("run"), "workflow": body.workflow, "agent": target.name}

        async def events() -> AsyncIterator[tuple[str, str]]:
            outcome: dict[str, Any] = {}
            run = _workflow(agent, body.workflow, body.input, outcome, started["run_id"])
            async with aclosing(run) as stream:
                async for event in stream:
                    if event.type not in UNSENT_BUS_EVENTS:
                        yield encode_bus_event(event)
            yield "run_finished", to_json({**started, **outcome})

        return sse_pairs(events(), started)

    _add_agui(app, catalog, slot, problems)
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


# -- runs ------------------------------------------------------------------------------


async def _unless_gone(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``, cancelling it if the client disconnects first (which closes the
    model's stream): an abandoned request should not go on spending tokens."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnect(request.receive, task.cancel))
    try:
        return await task
    except asyncio.CancelledError:
        if not watcher.done() or watcher.cancelled():
            raise  # the server is cancelling us, not the client
        # Nobody reads this answer; nginx's code for it, so logs say what happened.
        raise Problem(
            499, "Client closed request", "the client disconnected; run cancelled"
        ) from None
    finally:
        watcher.cancel()


def _team_result(result: Any) -> dict[str, Any]:
    return {
        "content": result.answer,
        "formation": result.formation,
        "usage": usage(result.usage),
        "usage_by_agent": {name: usage(u) for name, u in result.usage_by_agent.items()},
        "requests": result.requests,
        "duration_ms": round(result.duration_ms, 3),
    }


async def _workflow(
    agent: Agent,
    workflow: str,
    input: dict[str, Any] | None,
    outcome: dict[str, Any],
    run_id: str,
) -> AsyncIterator[Event]:
    """Run a workflow in a scope of its own (``run_id``) and yield its events; fill
    ``outcome``.

    The events of the workflow's steps go to a bus of this run only (forwarding to the
    agent's), so concurrent requests never mix.
    """
    from ..core.events import EventBus, EventScope, scope
    from ..core.messages import Usage

    bus = EventBus(parent=agent.bus)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    bus.subscribe("*", queue.put_nowait)
    done = object()

    async def work() -> Any:
        with scope(EventScope(bus, run_id=run_id, agent=agent.name)):
            return await agent.run_workflow(workflow, input)

    task = asyncio.create_task(work())
    task.add_done_callback(lambda _: queue.put_nowait(done))
    spent = Usage()
    try:
        while (event := await queue.get()) is not done:
            if event.type == "agent.complete":
                spent += Usage(**event.data.get("usage", {}))
            yield event
        result = task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    outcome.update(content=str(result), steps=dict(result.steps), usage=usage(spent))


def _add_agui(app: FastAPI, catalog: Catalog, slot: Any, problems: dict[int, Any]) -> None:
    """``POST /v1/agui/{agent}``: the AG-UI protocol over the agent's events."""
    with needs_extra("serve", "victor serve", what="the AG-UI protocol package"):
        from ag_ui.core import RunAgentInput
    from .agui import agui_events

    async def agui_agent(agent: str) -> Agent:
        if catalog.kind(agent) != "agent":
            raise Problem(404, "No such agent", catalog.missing(agent, "agent"))
        return await catalog.agent(agent)

    AguiAgent = Annotated[Agent, Depends(agui_agent)]

    @app.post(
        "/v1/agui/{agent}",
        tags=["ag-ui"],
        dependencies=[slot],
        response_class=EventStream,
        response_description=AGUI_STREAM,
        responses=problems,
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
