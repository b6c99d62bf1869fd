"""How one run is put together before its loop starts: the provider it uses, the messages
it begins with, and its event scope. ``Agent.run``, ``astream``, ``chat`` and ``events``
all start here, so every run is assembled the same way."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._util import new_id
from ..errors import ConfigurationError
from ..providers.base import Provider
from .events import EventScope, current_scope
from .loop import run_loop
from .messages import Message, StreamEvent

if TYPE_CHECKING:
    from ..tools.registry import ToolLike
    from .agent import Agent
    from .output import OutputType

__all__ = ["start_run", "run_provider", "render_task"]

#: Set by ``victor.testing.override``: a provider that replaces every agent's own.
provider_override: contextvars.ContextVar[Provider | None] = contextvars.ContextVar(
    "victor_provider_override", default=None
)
#: Set by a team around its members' runs: the provider for agents built without one.
lent_provider: contextvars.ContextVar[Provider | None] = contextvars.ContextVar(
    "victor_default_provider", default=None
)


def run_provider(agent: Agent) -> Provider:
    """The provider a run of ``agent`` started now uses: an override (``victor.testing``),
    the one a team lends to members that were given none, or the agent's own."""
    return (
        provider_override.get()
        or (None if agent._provider_given else lent_provider.get())
        or agent.provider
    )


def start_run(
    agent: Agent,
    task: str | None,
    context: Mapping[str, Any] | None,
    tools: Iterable[ToolLike] | None,
    *,
    stream: bool,
    remember: bool,
    output: OutputType | None,
) -> tuple[EventScope, AsyncIterator[StreamEvent], int]:
    """The run's event scope, its loop (not started yet), and where the conversation
    begins in its transcript (after the system message, if any)."""
    resumed = task is None  # the conversation goes on from tool results the caller ran
    if resumed:
        task = _resumed_task(agent.history, remember)
    elif not isinstance(task, str) or not task.strip():
        raise ConfigurationError(f"task={task!r} is empty: give the agent something to do")
    if tools:
        from ..tools.registry import registry

        run_tools = registry.resolve([*agent.tools, *tools])
    else:
        run_tools = agent.tools
    system = system_message(agent.role, agent.system_prompt)
    messages = [system] if system else []
    if remember:
        messages += agent.history
    if not resumed:
        messages.append(Message.user(render_task(task, context)))
    parent = current_scope()
    # Inside another run's scope (a team's), events go where that run's events go.
    bus = parent.bus if parent.run_id is not None and not agent._bus_given else agent.bus
    run_scope = EventScope(bus, run_id=new_id("run"), agent=agent.name, parent=parent.run_id)
    loop = run_loop(
        messages,
        run_provider(agent),
        run_tools,
        scope=run_scope,
        task=task,
        stream=stream,
        limits=agent.limits,
        tool_context=agent._tool_context(),
        output=output,
        # A one-shot run is a conversation of its own; chat() continues the agent's.
        conversation=agent.conversation_id if remember else run_scope.run_id,
    )
    return run_scope, loop, 1 if system else 0


def system_message(role: str | None, system_prompt: str | None) -> Message | None:
    """The system message of an agent with this role and prompt (None without either)."""
    parts = []
    if role:
        parts.append(f"Your role: {role}.")
    if system_prompt:
        parts.append(system_prompt)
    return Message.system("\n\n".join(parts)) if parts else None


def render_task(task: str, context: Mapping[str, Any] | None) -> str:
    """The user message for ``task``, with each ``context`` item in a tagged block."""
    if not context:
        return task
    if not isinstance(context, Mapping):
        raise ConfigurationError(
            f"context must be a dict of name -> value, got {type(context).__name__}"
        )
    blocks = "\n".join(
        f'<context name="{key}">\n{value}\n</context>' for key, value in context.items()
    )
    return f"{task}\n\n{blocks}"


def _resumed_task(history: list[Message], remember: bool) -> str:
    """The task of a conversation continued from tool results (``events(None, ...)``)."""
    if not remember or not history or history[-1].role != "tool":
        raise ConfigurationError(
            "task=None continues a conversation from tool results: use remember=True, "
            "with history ending in the results (Message.tool) of the last tool calls"
        )
    return next((m.content for m in reversed(history) if m.role == "user"), "")
