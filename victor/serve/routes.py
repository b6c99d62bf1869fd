"""The routes: agents' runs and conversations, teams' runs, workflows, each as one answer
or as a stream of Server-Sent Events. They call the same public API a script would."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import APIRouter, Request

from .. import __version__
from .._util import new_id
from ..core.agent import Agent
from ..core.events import Event
from . import models as m
from .deps import (
    PROBLEMS,
    SLOT,
    AgentTarget,
    ConversationTarget,
    TeamTarget,
    WorkflowTarget,
    find_conversation,
    server,
)
from .streaming import EventStream, agent_sse, sse_pairs, until_disconnect
from .wire import (
    AGENT_STREAM,
    MEMBER_STREAM,
    UNSENT_BUS_EVENTS,
    Problem,
    encode_bus_event,
    finished,
    to_json,
    usage,
)

__all__ = ["router"]

T = TypeVar("T")

router = APIRouter()
_stream = {"response_class": EventStream, "dependencies": [SLOT], "responses": PROBLEMS}


@router.get("/v1/health", tags=["server"])
async def health(request: Request) -> m.Health:
    """Whether the server is up, and how busy it is."""
    return m.Health(status="ok", version=__version__, runs_in_progress=server(request).runs)


@router.get("/v1/agents", tags=["server"])
async def agents(request: Request) -> m.Served:
    """The agents (configured and from profiles), teams and workflows served."""
    from ..workflows import list_workflows

    described = server(request).catalog.describe()
    return m.Served(
        agents=[d for d in described if d["kind"] == "agent"],
        teams=[d for d in described if d["kind"] == "team"],
        workflows=list_workflows(),
    )


# -- agents -----------------------------------------------------------------------------


@router.post("/v1/runs", tags=["agents"], dependencies=[SLOT], responses=PROBLEMS)
async def run(target: AgentTarget, request: Request) -> m.RunResponse:
    """Do a task and return the answer and its usage (``Agent.run``)."""
    body, agent = target.body, target.view
    await _unless_gone(request, agent.run(body.task, body.context))
    assert agent.last_run is not None
    return m.RunResponse(agent=target.name, **finished(agent.last_run))


@router.post("/v1/runs/stream", tags=["agents"], response_description=AGENT_STREAM, **_stream)
async def run_stream(target: AgentTarget) -> EventStream:
    """Do a task, streaming its events (``Agent.events``): ``run_started`` (``run_id``,
    ``agent``), ``text``, ``response`` (also ``content`` and ``tool_calls``),
    ``tool_started``, ``tool_finished``, then ``run_finished`` (or ``error``)."""
    body = target.body
    started = {"run_id": new_id("run"), "agent": target.name}
    return agent_sse(target.view.events(body.task, body.context), started)


@router.post("/v1/chat", tags=["agents"], dependencies=[SLOT], responses=PROBLEMS)
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


@router.post("/v1/chat/stream", tags=["agents"], response_description=AGENT_STREAM, **_stream)
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


@router.get("/v1/conversations/{conversation_id}", tags=["agents"], responses=PROBLEMS)
async def conversation(conversation_id: str, request: Request) -> m.ConversationOut:
    """A conversation's messages so far."""
    found = find_conversation(server(request), conversation_id)
    return m.ConversationOut(
        id=found.id,
        agent=found.agent_name,
        messages=[msg.model_dump(mode="json") for msg in found.agent.history],
    )


@router.delete(
    "/v1/conversations/{conversation_id}", tags=["agents"], status_code=204, responses=PROBLEMS
)
async def forget(conversation_id: str, request: Request) -> None:
    """Forget a conversation."""
    state = server(request)
    found = find_conversation(state, conversation_id)
    if found.busy:
        raise Problem(409, "Conversation busy", f"{conversation_id!r} is answering")
    del state.conversations[conversation_id]


# -- teams ------------------------------------------------------------------------------


@router.post("/v1/teams/runs", tags=["teams"], dependencies=[SLOT], responses=PROBLEMS)
async def team_run(target: TeamTarget, request: Request) -> m.TeamRunResponse:
    """Do a task as a team (``AgentTeam.run``)."""
    body = target.body
    result = await _unless_gone(request, target.view.run(body.task, body.context))
    return m.TeamRunResponse(team=target.name, **_team_result(result))


@router.post("/v1/teams/runs/stream", tags=["teams"], response_description=MEMBER_STREAM, **_stream)
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


# -- workflows --------------------------------------------------------------------------


@router.post("/v1/workflows/runs", tags=["workflows"], dependencies=[SLOT], responses=PROBLEMS)
async def workflow_run(target: WorkflowTarget, request: Request) -> m.WorkflowRunResponse:
    """Run a workflow on an agent (``agent.run_workflow``)."""
    body, agent = target.body, target.view
    outcome: dict[str, Any] = {}
    steps = _workflow(agent, body.workflow, body.input, outcome, new_id("run"))

    async def work() -> None:
        async with aclosing(steps) as events:
            async for _ in events:
                pass

    await _unless_gone(request, work())
    return m.WorkflowRunResponse(workflow=body.workflow, agent=target.name, **outcome)


@router.post(
    "/v1/workflows/runs/stream",
    tags=["workflows"],
    response_description=MEMBER_STREAM,
    **_stream,
)
async def workflow_stream(target: WorkflowTarget) -> EventStream:
    """A workflow's events, under the names ``/v1/runs/stream`` uses: ``run_started``
    (``run_id``, ``workflow``, ``agent``), ``step_started`` (``step``, ``index``) and
    what each step's run does, then ``run_finished`` with every step's output."""
    body, agent = target.body, target.view
    started = {"run_id": new_id("run"), "workflow": body.workflow, "agent": target.name}

    async def events() -> AsyncIterator[tuple[str, str]]:
        outcome: dict[str, Any] = {}
        steps = _workflow(agent, body.workflow, body.input, outcome, started["run_id"])
        async with aclosing(steps) as stream:
            async for event in stream:
                if event.type not in UNSENT_BUS_EVENTS:
                    yield encode_bus_event(event)
        yield "run_finished", to_json({**started, **outcome})

    return sse_pairs(events(), started)


# -- running ----------------------------------------------------------------------------


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
