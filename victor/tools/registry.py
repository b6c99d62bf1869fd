"""The tool registry: tools by name, named toolsets, and resolving what an agent asks for."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Protocol

from .._util import did_you_mean
from ..errors import ToolError
from .base import BaseTool

__all__ = ["ToolRegistry", "registry"]


class ToolSource(Protocol):
    """Something that gives several tools at once, e.g. an MCP server's
    (``tools=[victor.mcp.server(...)]``)."""

    def __victor_tools__(self) -> Iterable[BaseTool]: ...


ToolLike = str | BaseTool | type[BaseTool] | ToolSource


class ToolRegistry:
    """Tools by name, plus toolsets: names that stand for several tools.

    ``ToolRegistry(builtins=True)`` (the default ``registry``) adds victor's built-in
    tools and toolsets on its first lookup, so ``import victor`` does not load them.
    """

    def __init__(self, *, builtins: bool = False) -> None:
        self._tools: dict[str, BaseTool] = {}
        self._toolsets: dict[str, list[str]] = {}
        self._toolset_descriptions: dict[str, str] = {}
        self._builtins_pending = builtins
        self._provided = builtins  # the default registry also asks the tool_provider seam

    def _load_builtins(self) -> None:
        if self._builtins_pending:
            self._builtins_pending = False  # first, so the registrations below do not recurse
            from .builtin import TOOLSETS, builtin_tools

            # Without replacing a name registered before the first lookup.
            for tool in builtin_tools():
                if tool.name not in self:
                    self.register(tool)
            for name, (description, tools) in TOOLSETS.items():
                if name not in self:
                    self.register_toolset(name, tools, description=description)

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

    def register_toolset(self, name: str, tools: Iterable[str], *, description: str = "") -> None:
        """Make ``name`` stand for several tool names (checked when the toolset is used)."""
        self._toolsets[name] = list(tools)
        self._toolset_descriptions[name] = description

    def unregister(self, name: str) -> None:
        """Remove the tool or toolset called ``name`` (if there is one)."""
        self._load_builtins()  # or a built-in of that name would come back on first lookup
        self._tools.pop(name, None)
        self._toolsets.pop(name, None)

    def _provide(self, name: str) -> None:
        """Let the front end plugged in as ``tool_provider`` register ``name`` (the
        default registry only): ``tools=["notebook"]`` works before ``%load_ext victor``."""
        if not self._provided or name in self._tools or name in self._toolsets:
            return
        from ..core import seams
        from ..errors import ConfigurationError

        try:
            provider = seams.front_end("tool_provider")
        except ConfigurationError:  # nothing plugged in: a program without victor's face
            return
        provider(self, name)

    def get(self, name: str) -> BaseTool:
        """The tool called ``name``; ``ToolError`` with close matches if there is none."""
        self._load_builtins()
        self._provide(name)
        try:
            return self._tools[name]
        except KeyError:
            raise self._unknown(name) from None

    def resolve(self, items: Iterable[ToolLike] | None) -> list[BaseTool]:
        """Tools for names, toolset names, tool instances or classes and tool sources;
        duplicates dropped, but a tool source's name clash is an error."""
        resolved: dict[str, BaseTool] = {}
        sourced: set[str] = set()  # names from tool sources: a clash there is an error
        for item in items or ():
            if isinstance(item, str):
                self._load_builtins()
                self._provide(item)
                if item in self._toolsets:
                    tools = [self.get(n) for n in self._toolsets[item]]
                else:
                    tools = [self.get(item)]
            elif isinstance(item, type) and issubclass(item, BaseTool):
                tools = [item()]
            elif isinstance(item, BaseTool):
                tools = [item]
            elif hasattr(item, "__victor_tools__"):
                tools = list(item.__victor_tools__())
                sourced.update(tool.name for tool in tools)
            else:
                raise ToolError(f"{item!r} is not a tool: pass a tool name or a BaseTool")
            for tool in tools:
                other = resolved.get(tool.name)
                if other is not None and other is not tool and tool.name in sourced:
                    raise ToolError(
                        f"two tools are named {tool.name!r} ({other!r} and {tool!r}); rename "
                        f"one (an MCP server takes prefix=...)"
                    )
                resolved[tool.name] = tool
        return list(resolved.values())

    def list(self) -> list[str]:
        """Names of all registered tools, sorted."""
        self._load_builtins()
        return sorted(self._tools)

    def toolsets(self) -> dict[str, list[str]]:
        """Toolset names and the tool names each stands for."""
        self._load_builtins()
        return {name: list(tools) for name, tools in self._toolsets.items()}

    def describe_toolset(self, name: str) -> str:
        """What the toolset ``name`` is for and the tools it holds."""
        self._load_builtins()
        if name not in self._toolsets:
            raise self._unknown(name)
        what = self._toolset_descriptions.get(name) or "Toolset."
        return f"{what} Tools: {', '.join(self._toolsets[name])}."

    def table(self) -> ToolTable:
        """Every tool and toolset with its description; shows as a table in a notebook."""
        self._load_builtins()
        rows = [
            ("tool", t.name, _first_sentence(t.description), _approval_note(t))
            for t in sorted(self._tools.values(), key=lambda t: t.name)
        ]
        # In a toolset's list, * marks the tools that need approval (always or sometimes).
        marked = {t.name: t.name + ("*" if _approval_note(t) else "") for t in self._tools.values()}
        rows += [
            (
                "toolset",
                name,
                self._toolset_descriptions.get(name, ""),
                ", ".join(marked.get(tool, tool) for tool in tools),
            )
            for name, tools in sorted(self._toolsets.items())
        ]
        return ToolTable(rows)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._tools or name in self._toolsets

    def __iter__(self) -> Iterator[BaseTool]:
        self._load_builtins()
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        self._load_builtins()
        return len(self._tools)

    def _unknown(self, name: str) -> ToolError:
        known = [*self._tools, *self._toolsets]
        hint = did_you_mean(name, known, n=3)
        listing = ", ".join(sorted(known)) or "none registered"
        return ToolError(
            f"Unknown tool {name!r}.{hint} Available: {listing}. "
            f"Register your own with victor.tools.registry.register(MyTool())"
        )


class ToolTable:
    """Rows of ``(kind, name, description, notes)``: plain text in a terminal, a table
    in a notebook."""

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        self.rows = rows

    def __str__(self) -> str:
        width = max((len(name) for _, name, _, _ in self.rows), default=4)
        return "\n".join(
            f"{kind:<8}{name:<{width + 2}}{description}" + (f"  [{notes}]" if notes else "")
            for kind, name, description, notes in self.rows
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        cells = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in self.rows
        )
        head = "".join(f"<th>{h}</th>" for h in ("kind", "name", "description", "approval / tools"))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


def _first_sentence(text: str) -> str:
    return re.split(r"\.\s+(?=[A-Z])", (text or "").strip(), maxsplit=1)[0].rstrip(".") + "."


def _approval_note(tool: BaseTool) -> str:
    rule = getattr(tool, "requires_approval", False)
    if callable(rule):
        return "approval: depends on arguments"
    return "approval" if rule else ""


#: The default registry that ``Agent.create(tools=[...])`` resolves names against; the
#: built-in tools and toolsets (``victor.tools.builtin``) join it on first lookup.
registry = ToolRegistry(builtins=True)
