"""The notebook as the agent's workspace: the ``notebook`` toolset.

``Agent(tools=["notebook"])`` or ``%%victor --tools notebook`` gives a model eyes on the
kernel (``list_variables``, ``inspect_variable``, ``last_error``, ``read_cells``) and
hands (``insert_cell``, ``run_code``: approved first). What of the kernel leaves the
machine is the user's choice, the context mode:

- ``"schema"`` (the default): names, types, shapes, column names and dtypes; no values,
  rows, reprs, string contents or statistics;
- ``"values"``: samples, numeric summaries, reprs and cell outputs too;
- ``"none"``: the tools describe nothing.

Per agent: ``Agent(tools=[notebook_tools(context="values")])``; per cell:
``%%victor --context values``; for the name ``"notebook"`` in this process:
``victor.notebook.workspace.set_context("values")``.

Importable without IPython: outside a kernel each tool answers with a ``ToolError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .actions import action_tools
from .tools import CONTEXTS, EYES, Context, check_context, set_context

if TYPE_CHECKING:
    from ...tools.base import BaseTool
    from ...tools.registry import ToolRegistry

__all__ = ["CONTEXTS", "NotebookTools", "notebook_tools", "provide", "register", "set_context"]

TOOLSET = "notebook"
DESCRIPTION = (
    "The notebook's kernel as a workspace: its variables, last error and cells "
    "(context: schema by default), and changes only with approval."
)


class NotebookTools:
    """The notebook toolset in one context mode: pass it in ``tools=[...]``."""

    def __init__(self, context: Context | None = "schema") -> None:
        self.context = None if context is None else check_context(context)
        self.tools: list[BaseTool] = [kind(self.context) for kind in EYES]
        self.tools += action_tools(self.context)

    def __victor_tools__(self) -> Iterator[BaseTool]:
        return iter(self.tools)

    def __repr__(self) -> str:
        return f"notebook_tools(context={self.context!r})"


def notebook_tools(context: Context = "schema") -> NotebookTools:
    """The notebook toolset with its own context mode, for ``Agent(tools=[...])``."""
    return NotebookTools(context)


def register(registry: ToolRegistry) -> None:
    """Add the toolset ``notebook`` (and its tools, following ``set_context``) to ``registry``."""
    tools = NotebookTools(None).tools
    for tool in tools:
        registry.register(tool)
    registry.register_toolset(TOOLSET, [t.name for t in tools], description=DESCRIPTION)


def provide(registry: ToolRegistry, name: str) -> bool:
    """The registry's hook for a name it does not know: registers the notebook toolset
    when ``name`` is one of its names (no IPython imported: the tools look for a kernel
    when they run)."""
    names = {TOOLSET, *(kind.name for kind in EYES), *(t.name for t in action_tools())}
    if name not in names:
        return False
    register(registry)
    return True
