"""What a running tool can know about its run: the agent, the workspace, the approval policy.

The loop (and ``pipe``/``parallel``/``branch``) set a ``ToolContext`` while tools run;
a tool reads it with ``current_context()``::

    @tool
    def where_am_i() -> str:
        '''Say which directory the tools work in.'''
        return str(current_context().workspace.root)

Outside a run the context has no agent and the current directory as workspace.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._util import bound
from ..errors import ToolError
from .sandbox import Workspace

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["ToolContext", "current_context", "using_context"]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """The agent a tool runs under (if any), its workspace and its approval policy."""

    agent: Agent | None = None
    workspace: Workspace = field(default_factory=Workspace)
    #: ``None`` (no handler: tools needing approval are refused), ``"auto"``, ``"never"``
    #: or a callback; see ``victor.tools.approval``.
    approval: Any = None

    def require_agent(self, tool_name: str) -> Agent:
        """The agent, or a ``ToolError`` telling how to give the tool one."""
        if self.agent is None:
            raise ToolError(
                f"{tool_name} asks a model, so it needs an agent: let an agent call it, or run "
                f"a pipeline with one: await pipe(...)(agent, ...)"
            )
        return self.agent

    async def ask(self, prompt: str, *, system: str | None = None, purpose: str = "tool") -> str:
        """Ask the agent's model one question (no tools) and return its answer.

        The question is a run of its own, nested under the current one: it uses the
        provider the agent's own run uses (its own; the one a team lends to members built
        without one; or the one ``victor.testing.override`` swaps in) and emits the usual
        events, tagged ``"<agent>:<purpose>"``.
        """
        from ..agent import Agent, _default_provider  # the agent module imports this one

        agent = self.require_agent(purpose)
        provider = agent.provider
        if not agent._provider_given:  # a team member: the team's provider, as its run has
            provider = _default_provider.get() or provider
        helper = Agent(provider=provider, name=f"{agent.name}:{purpose}", system_prompt=system)
        return await helper.run(prompt)


_current: contextvars.ContextVar[ToolContext | None] = contextvars.ContextVar(
    "victor_tool_context", default=None
)


def current_context() -> ToolContext:
    """The context of the tool call in progress (outside a run: the current directory)."""
    return _current.get() or ToolContext()


@contextmanager
def using_context(context: ToolContext) -> Iterator[ToolContext]:
    """Make ``context`` current for tools run inside the block."""
    with bound(_current, context):
        yield context
