"""The notebook toolset's eyes: list_variables, inspect_variable, last_error, read_cells.

Each tool holds a context mode, which decides what of the kernel may leave the machine:
``schema`` (names, types, shapes, column names and dtypes: no values), ``values``
(samples, summaries and reprs too) or ``none`` (the tools describe nothing). A tool whose
mode is None follows the process default (``set_context``).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from ..._util import did_you_mean
from ...errors import ConfigurationError, ToolError
from ...tools.base import BaseTool, ToolResult
from . import describe as _describe
from . import kernel as _kernel

__all__ = [
    "CONTEXTS",
    "InspectVariable",
    "LastError",
    "ListVariables",
    "ReadCells",
    "check_context",
    "set_context",
]

Context = Literal["schema", "values", "none"]
CONTEXTS: dict[str, str] = {
    "schema": "names, types, shapes, column names and dtypes: no values leave the kernel",
    "values": "also samples, summaries, reprs and outputs",
    "none": "the notebook tools describe nothing of the kernel",
}
_default: list[str] = ["schema"]
#: Seconds a whole description may take (its reprs have REPR_SECONDS each).
DESCRIBE_SECONDS = 5.0


def check_context(context: str) -> Context:
    """``context`` if it is a mode, else a ``ConfigurationError`` listing them."""
    if context not in CONTEXTS:
        modes = "; ".join(f"{k!r} ({v})" for k, v in CONTEXTS.items())
        raise ConfigurationError(f"context={context!r} is unknown: use {modes}")
    return context  # type: ignore[return-value]


def default_context() -> Context:
    """The mode of the notebook tools asked for by name in this process (see ``set_context``)."""
    return _default[0]


def set_context(context: Context) -> None:
    """The mode of the notebook tools asked for by name (``tools=["notebook"]``) in this
    process; ``notebook_tools(context=...)`` gives one agent its own."""
    _default[0] = check_context(context)


class _NotebookTool(BaseTool):
    timeout: ClassVar[float | None] = 30.0

    def __init__(self, context: Context | None = None) -> None:
        self.context = None if context is None else check_context(context)

    @property
    def mode(self) -> str:
        return self.context or _default[0]

    async def execute(self, **kwargs: Any) -> ToolResult:
        ip = _kernel.shell()
        if self.mode == "none":
            raise ToolError(
                "the user chose context='none': the notebook tools describe nothing of this "
                "kernel; ask the user for what you need"
            )
        # A worker thread: a kernel's loop (top-level await) keeps serving while we read.
        text = await asyncio.to_thread(self.read, ip, **kwargs)
        return ToolResult(success=True, output=text, metadata={"context": self.mode})

    def read(self, ip: Any, **kwargs: Any) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<tool {self.name} (context={self.mode})>"


class ListVariables(_NotebookTool):
    name: ClassVar[str] = "list_variables"
    description: ClassVar[str] = (
        "List the user's variables in the notebook's kernel: name, type, shape or length, "
        "memory size. Start here to see what data the notebook holds."
    )
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def read(self, ip: Any) -> str:
        return _describe.list_rows(ip.user_ns, getattr(ip, "user_ns_hidden", None))


class InspectVariable(_NotebookTool):
    name: ClassVar[str] = "inspect_variable"
    description: ClassVar[str] = (
        "Describe one notebook variable compactly: a DataFrame's shape, columns and dtypes; "
        "an array's shape and dtype; a container's length; a function's signature and "
        "source. Samples and statistics only if the user allows values."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "name": {"type": "string", "description": "the variable's name", "required": True},
        "max_tokens": {
            "type": "integer",
            "minimum": 50,
            "maximum": 20000,
            "description": "about how long the description may be (default 1500)",
        },
    }

    def read(self, ip: Any, name: str, max_tokens: int = 1500) -> str:
        ns = ip.user_ns
        known = _describe.user_names(ns, getattr(ip, "user_ns_hidden", None))
        if name not in ns:
            raise ToolError(
                f"no variable {name!r} in the notebook.{did_you_mean(name, known, n=3)} "
                f"list_variables shows them all"
            )
        value = ns[name]
        try:
            return _describe.bounded(
                lambda: _describe.describe(value, name, self.mode, max_tokens * 4),
                DESCRIBE_SECONDS,
                what=f"describing {name!r}",
            )
        except TimeoutError as exc:
            raise ToolError(f"{exc}: something in it hangs (a __repr__ or a property)") from None


class LastError(_NotebookTool):
    name: ClassVar[str] = "last_error"
    description: ClassVar[str] = (
        "The last exception raised in the notebook: its message, the traceback with source "
        "lines, and the cell that raised it."
    )
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def read(self, ip: Any) -> str:
        return _kernel.last_error(ip, self.mode == "values", 6000)


class ReadCells(_NotebookTool):
    name: ClassVar[str] = "read_cells"
    description: ClassVar[str] = (
        "The notebook's cells (the last N) and, if the user allows values, their text "
        "outputs; says whether they come from the saved file or the kernel's history."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "last": {
            "type": "integer",
            "minimum": 1,
            "maximum": 200,
            "description": "how many of the last cells (default 20)",
        },
    }

    def read(self, ip: Any, last: int = 20) -> str:
        return _kernel.read_cells(ip, self.mode == "values", last, 8000)


EYES: tuple[type[_NotebookTool], ...] = (ListVariables, InspectVariable, LastError, ReadCells)
