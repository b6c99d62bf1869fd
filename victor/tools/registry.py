"""The tool registry: tools by name, named toolsets, and resolving what an agent asks for."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from ..errors import ToolError
from .base import BaseTool

__all__ = ["ToolRegistry", "registry"]

ToolLike = str | BaseTool | type[BaseTool]


class ToolRegistry:
    """Tools by name, plus toolsets: names that stand for several tools."""

    def __init__(self) -> None:
        self._tools: dict[str, BaseTool] = {}
        self._toolsets: dict[str, list[str]] = {}

    def register(self, tool: BaseTool | type[BaseTool]) -> BaseTool:
        """Add a tool (an instance, or a class to instantiate); a same-named one is replaced."""
        if isinstance(tool, type) and issubclass(tool, BaseTool):
            tool = tool()
        if not isinstance(tool, BaseTool):
            raise ToolError(f"cannot register {tool!r}: expected a BaseTool instance or subclass")
        if not tool.name or not tool.name.replace("_", "").replace("-", "").isalnum():
            raise ToolError(
                f"tool name {tool.name!r} is invalid: use letters, digits, '_' or '-' "
                f"(set the class attribute `name`)"
            )
        self._tools[tool.name] = tool
        return tool

    def register_toolset(self, name: str, tools: Iterable[str]) -> None:
        """Make ``name`` stand for several tool names."""
        self._toolsets[name] = list(tools)

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> BaseTool:
        """The tool called ``name``; ``ToolError`` with close matches if there is none."""
        try:
            return self._tools[name]
        except KeyError:
            raise self._unknown(name) from None

    def resolve(self, items: Iterable[ToolLike] | None) -> list[BaseTool]:
        """Tools for names, toolset names, tool instances or classes; duplicates dropped."""
        resolved: dict[str, BaseTool] = {}
        for item in items or ():
            if isinstance(item, str):
                if item in self._toolsets:
                    tools = [self.get(n) for n in self._toolsets[item]]
                else:
                    tools = [self.get(item)]
            elif isinstance(item, type) and issubclass(item, BaseTool):
                tools = [item()]
            elif isinstance(item, BaseTool):
                tools = [item]
            else:
                raise ToolError(f"{item!r} is not a tool: pass a tool name or a BaseTool")
            for tool in tools:
                resolved[tool.name] = tool
        return list(resolved.values())

    def list(self) -> list[str]:
        """Names of all registered tools, sorted."""
        return sorted(self._tools)

    def toolsets(self) -> dict[str, list[str]]:
        """Toolset names and the tool names each stands for."""
        return {name: list(tools) for name, tools in self._toolsets.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._tools or name in self._toolsets

    def __iter__(self) -> Iterator[BaseTool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def _unknown(self, name: str) -> ToolError:
        known = [*self._tools, *self._toolsets]
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        listing = ", ".join(sorted(known)) or "none registered"
        return ToolError(
            f"Unknown tool {name!r}.{hint} Available: {listing}. "
            f"Register your own with victor.tools.registry.register(MyTool())"
        )


#: The default registry that ``Agent.create(tools=[...])`` resolves names against.
registry = ToolRegistry()
