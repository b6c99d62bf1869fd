"""Tools an agent can call: ``BaseTool``, ``ToolResult``, ``@tool``, the registry (with the
built-in tools and toolsets), composition (``pipe``, ``parallel``, ``branch``), the
workspace sandbox and approval."""

from .approval import ApprovalDecision, ApprovalRequest
from .base import BaseTool, FunctionTool, ToolResult, tool
from .compose import Composition, CompositionResult, branch, parallel, pipe
from .context import ToolContext, current_context
from .registry import ToolRegistry, registry
from .sandbox import CommandResult, Executor, SubprocessExecutor, Workspace

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "BaseTool",
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
