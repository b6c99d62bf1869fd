"""Tools an agent can call: ``BaseTool``, ``ToolResult``, ``@tool``, the registry (with the
built-in tools and toolsets), composition (``pipe``, ``parallel``, ``branch``), the
workspace sandbox and approval."""

from typing import TYPE_CHECKING

from .approval import ApprovalDecision, ApprovalRequest, Ask
from .base import BaseTool, ClientTool, FunctionTool, ToolResult, tool
from .context import ToolContext, current_context
from .executor import CommandResult, Executor, SubprocessExecutor
from .registry import ToolRegistry, registry
from .sandbox import Workspace

if TYPE_CHECKING:
    from .compose import Composition, CompositionResult, branch, parallel, pipe

# Composition is imported on first use: an agent that never composes tools never pays for it.
_LAZY = {
    name: ".compose" for name in ("Composition", "CompositionResult", "branch", "parallel", "pipe")
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'victor.tools' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "Ask",
    "BaseTool",
    "ClientTool",
    "CommandResult",
    "Composition",
    "CompositionResult",
    "Executor",
    "FunctionTool",
    "SubprocessExecutor",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "Workspace",
    "branch",
    "current_context",
    "parallel",
    "pipe",
    "registry",
    "tool",
]
