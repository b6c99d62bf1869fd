"""Tools an agent can call: ``BaseTool``, ``ToolResult``, ``@tool`` and the registry."""

from .base import BaseTool, FunctionTool, ToolResult, tool
from .registry import ToolRegistry, registry

__all__ = ["BaseTool", "FunctionTool", "ToolResult", "ToolRegistry", "registry", "tool"]
