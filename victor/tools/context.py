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
from typing import Any, Protocol, runtime_checkable

from .._util import bound
from ..errors import ToolError
from .sandbox import Workspace

__all__ = ["AgentLike", "ToolContext", "current_context", "using_context"]


@runtime_checkable
class AgentLike(Protocol):
    """What a tool sees of the agent it runs under (a ``victor.Agent``)."""

    name: str
    workspace: Workspace
    approval: Any

    async def ask_once(self, prompt: str, *, system: str | None = None, purpose: str) -> str:
        """One question to the agent's model, no tools (see ``ToolContext.ask``)."""
        ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    """The agent a tool runs under (if any), its workspace and its approval policy."""

    agent: AgentLike | None = None
    workspace: Workspace = field(default_factory=Workspace)
    #: ``None`` (no handler: tools needing approval are refused), ``"auto"``, ``"never"``
    #: or a callback; see ``victor.tools.approval``.
    approval: Any = None

    def require_agent(self, tool_name: str) -> AgentLike:
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
        return await self.require_agent(purpose).ask_once(prompt, system=system, purpose=purpose)


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
