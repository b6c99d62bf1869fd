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
    input_tokens: int
    output_tokens: int
    total_tokens: int


class RunRequest(_Body):
    agent: str | None = Field(None, description="Which agent (optional when one is served).")
    task: str = Field(min_length=1, description="What to do.")
    context: dict[str, Any] | None = Field(
        None, description="Named pieces of context (code, data) the task refers to."
    )


class RunResponse(BaseModel):
    agent: str
    content: str = Field(description="The answer.")
    output: Any = Field(None, description="The typed answer, for agents with an output_type.")
    usage: TokenUsage
    model: str
    provider: str
    iterations: int = Field(description="Model requests the run made.")
    duration_ms: float


class ChatRequest(_Body):
    agent: str | None = Field(None, description="Which agent (for a new conversation).")
    message: str = Field(min_length=1)
    conversation_id: str | None = Field(
        None, description="Continue this conversation; omit to start one."
    )


class ChatResponse(RunResponse):
    conversation_id: str


class ConversationOut(BaseModel):
    id: str
    agent: str
    messages: list[dict[str, Any]]


class TeamRunRequest(_Body):
    team: str | None = Field(None, description="Which team (optional when one is served).")
    task: str = Field(min_length=1)
    context: dict[str, Any] | None = None


class TeamRunResponse(BaseModel):
    team: str
    content: str
    formation: str
    usage: TokenUsage
    usage_by_agent: dict[str, TokenUsage]
    requests: int
    duration_ms: float


class WorkflowRunRequest(_Body):
    workflow: str = Field(description="A built-in workflow or one in $VICTOR_HOME/workflows.")
    agent: str | None = Field(None, description="The agent that runs the steps.")
    input: dict[str, Any] | None = None


class WorkflowRunResponse(BaseModel):
    workflow: str
    agent: str
    content: str = Field(description="The last step's output.")
    steps: dict[str, str] = Field(description="Every step's output, by step name.")
    usage: TokenUsage


class Served(BaseModel):
    agents: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    workflows: list[str]


class Health(BaseModel):
    status: str
    version: str
    runs_in_progress: int
