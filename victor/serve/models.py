"""The request and response bodies of the HTTP API (they make its OpenAPI description)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "RunRequest",
    "RunResponse",
    "ChatRequest",
    "ChatResponse",
    "ConversationOut",
    "TeamRunRequest",
    "TeamRunResponse",
    "WorkflowRunRequest",
    "WorkflowRunResponse",
    "Served",
    "Health",
    "TokenUsage",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenUsage(BaseModel):
    """Tokens a run (or a member's runs) used."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class RunRequest(_Body):
    """A task for an agent (``POST /v1/runs`` and ``/v1/runs/stream``)."""

    agent: str | None = Field(None, description="Which agent (optional when one is served).")
    task: str = Field(min_length=1, description="What to do.")
    context: dict[str, Any] | None = Field(
        None, description="Named pieces of context (code, data) the task refers to."
    )


class RunResponse(BaseModel):
    """An agent's answer and what it cost."""

    agent: str
    content: str = Field(description="The answer.")
    output: Any = Field(None, description="The typed answer, for agents with an output_type.")
    usage: TokenUsage
    model: str
    provider: str
    iterations: int = Field(description="Model requests the run made.")
    duration_ms: float


class ChatRequest(_Body):
    """A message in a conversation (``POST /v1/chat`` and ``/v1/chat/stream``)."""

    agent: str | None = Field(None, description="Which agent (for a new conversation).")
    message: str = Field(min_length=1)
    conversation_id: str | None = Field(
        None, description="Continue this conversation; omit to start one."
    )


class ChatResponse(RunResponse):
    """The agent's reply, and the conversation to continue."""

    conversation_id: str


class ConversationOut(BaseModel):
    """A conversation's messages so far."""

    id: str
    agent: str
    messages: list[dict[str, Any]]


class TeamRunRequest(_Body):
    """A task for a team (``POST /v1/teams/runs`` and ``/v1/teams/runs/stream``)."""

    team: str | None = Field(None, description="Which team (optional when one is served).")
    task: str = Field(min_length=1)
    context: dict[str, Any] | None = None


class TeamRunResponse(BaseModel):
    """A team's answer, its formation, and what each member used."""

    team: str
    content: str
    formation: str
    usage: TokenUsage
    usage_by_agent: dict[str, TokenUsage]
    requests: int
    duration_ms: float


class WorkflowRunRequest(_Body):
    """A workflow to run on an agent (``POST /v1/workflows/runs`` and its stream)."""

    workflow: str = Field(description="A built-in workflow or one in $VICTOR_HOME/workflows.")
    agent: str | None = Field(None, description="The agent that runs the steps.")
    input: dict[str, Any] | None = None


class WorkflowRunResponse(BaseModel):
    """A workflow's outcome: the last step's output and every step's."""

    workflow: str
    agent: str
    content: str = Field(description="The last step's output.")
    steps: dict[str, str] = Field(description="Every step's output, by step name.")
    usage: TokenUsage


class Served(BaseModel):
    """What the server offers: agents (each under its name, with any ``aliases``),
    teams (with their members' names) and workflows.
    """

    agents: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    workflows: list[str]


class Health(BaseModel):
    """Whether the server is up, its version and how busy it is."""

    status: str
    version: str
    runs_in_progress: int
