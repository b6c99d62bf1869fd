"""What the routes depend on: the server's state between requests, a run slot, and the
agent, team, workflow or conversation a request names.

Dependencies run before a stream starts, so they can still answer with a 4xx problem.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.

from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request

from .._util import did_you_mean, new_id
from ..core.agent import Agent
from ..hosting.catalog import Catalog
from ..teams import AgentTeam
from . import models as m
from .settings import ServeSettings
from .wire import PROBLEM_TYPE, Problem

__all__ = [
    "AgentTarget",
    "Conversation",
    "ConversationTarget",
    "PROBLEMS",
    "SLOT",
    "ServerState",
    "Target",
    "TeamTarget",
    "WorkflowTarget",
    "find_conversation",
    "server",
]

B = TypeVar("B")
V = TypeVar("V")

#: The problems a route may answer with, for the OpenAPI document.
PROBLEMS: dict[int | str, dict[str, Any]] = {
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


def server(request: Request) -> ServerState:
    """The state of the app serving ``request``."""
    return request.app.state.victor


async def _run_slot(request: Request) -> AsyncIterator[None]:
    state = server(request)
    limit = state.settings.max_concurrent_runs
    if state.runs >= limit:
        raise Problem(
            429,
            "Too many runs",
            f"{state.runs} runs are in progress, the most this server allows "
            f"(max_concurrent_runs={limit}); try again shortly",
            headers={"Retry-After": "1"},
        )
    state.runs += 1
    try:
        yield
    finally:
        state.runs -= 1


#: One of the server's ``max_concurrent_runs`` slots, held until the answer is sent.
SLOT = Depends(_run_slot, scope="request")


def _choose(catalog: Catalog, name: str | None, kind: str) -> str:
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


async def _agent_for(body: m.RunRequest, request: Request) -> Target[m.RunRequest, Agent]:
    catalog = server(request).catalog
    name = _choose(catalog, body.agent, "agent")
    return Target(body, name, await catalog.agent(name))


async def _team_for(
    body: m.TeamRunRequest, request: Request
) -> Target[m.TeamRunRequest, AgentTeam]:
    catalog = server(request).catalog
    name = _choose(catalog, body.team, "team")
    return Target(body, name, await catalog.team(name))


async def _workflow_for(
    body: m.WorkflowRunRequest, request: Request
) -> Target[m.WorkflowRunRequest, Agent]:
    from ..workflows import list_workflows

    known = list_workflows()
    if body.workflow not in known:
        raise Problem(
            404,
            "No such workflow",
            f"no workflow named {body.workflow!r}.{did_you_mean(body.workflow, known)} "
            f"Workflows: {', '.join(known)}",
        )
    catalog = server(request).catalog
    name = _choose(catalog, body.agent, "agent")
    return Target(body, name, await catalog.agent(name))


async def _conversation_for(
    body: m.ChatRequest, request: Request
) -> AsyncIterator[Target[m.ChatRequest, Conversation]]:
    state = server(request)
    if body.conversation_id is None:
        name = _choose(state.catalog, body.agent, "agent")
        conversation = Conversation(new_id("conv"), name, await state.catalog.agent(name))
    else:
        conversation = find_conversation(state, body.conversation_id)
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


def find_conversation(state: ServerState, conversation_id: str) -> Conversation:
    """The conversation ``conversation_id`` (now the most recent), or a 404 problem."""
    conversation = state.conversations.get(conversation_id)
    if conversation is None:
        raise Problem(
            404,
            "No such conversation",
            f"no conversation {conversation_id!r} (it may have been forgotten: this server "
            f"keeps the {state.settings.max_conversations} most recent); start a new one",
        )
    state.conversations.move_to_end(conversation_id)
    return conversation


AgentTarget = Annotated[Target[m.RunRequest, Agent], Depends(_agent_for)]
TeamTarget = Annotated[Target[m.TeamRunRequest, AgentTeam], Depends(_team_for)]
WorkflowTarget = Annotated[Target[m.WorkflowRunRequest, Agent], Depends(_workflow_for)]
ConversationTarget = Annotated[
    Target[m.ChatRequest, Conversation], Depends(_conversation_for, scope="request")
]
