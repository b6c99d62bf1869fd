"""File tools that read and write through the ACP client: edits land in the editor's buffers.

When the client offers ``fs.readTextFile``/``fs.writeTextFile``, a session's
``read_file``, ``write_file`` and ``edit_file`` are these: the same names, descriptions,
arguments and approval rules as victor's own (the model sees no difference), each path
checked against the session's workspace before the client is asked, as victor's own check
it before touching the disk. What the client cannot do, the disk does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ToolError
from ..tools.base import BaseTool, ToolResult
from ..tools.builtin.files import _replace_exact, apply_unified_diff
from ..tools.builtin.files import edit_file as disk_edit
from ..tools.builtin.files import read_file as disk_read
from ..tools.builtin.files import write_file as disk_write
from ..tools.executor import cap_text
from ..tools.sandbox import Workspace

__all__ = ["ClientFiles", "client_file_tools", "edited"]


class ClientFiles:
    """Reads and writes of one session's files, through the client where it can."""

    def __init__(
        self, client: Any, session_id: str, workspace: Workspace, *, read: bool, write: bool
    ) -> None:
        self.client = client
        self.session_id = session_id
        self.workspace = workspace
        self.can_read = read
        self.can_write = write

    async def read(self, file_path: str, line: int | None = None, limit: int | None = None) -> str:
        """The text of ``file_path`` (as the editor holds it, where it can say)."""
        path = self.workspace.resolve(file_path)
        if not self.can_read:
            if not path.is_file():
                raise ToolError(f"there is no file {file_path!r} in the workspace")
            text = path.read_text(encoding="utf-8", errors="replace")
            if line is not None or limit is not None:
                start = (line or 1) - 1
                text = "".join(
                    text.splitlines(keepends=True)[start : start + limit if limit else None]
                )
            return text
        try:
            answer = await self.client.read_text_file(
                session_id=self.session_id, path=str(path), line=line, limit=limit
            )
        except Exception as exc:
            raise ToolError(f"the editor could not read {file_path!r}: {_said(exc)}") from None
        return str(answer.content)

    async def write(self, file_path: str, content: str) -> str:
        """Write ``content`` to ``file_path``; returns the path relative to the workspace."""
        path = self.workspace.resolve(file_path)
        if not self.can_write:
            return self.workspace.relative(self.workspace.write_text(path, content))
        if path.is_dir():
            raise ToolError(f"{file_path!r} is a directory; give a file path")
        try:
            await self.client.write_text_file(
                session_id=self.session_id, path=str(path), content=content
            )
        except Exception as exc:
            raise ToolError(f"the editor could not write {file_path!r}: {_said(exc)}") from None
        return self.workspace.relative(path)


def _said(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    return f"{exc} ({data})" if data else str(exc) or type(exc).__name__


class _ThroughClient(BaseTool):
    """One of victor's file tools, run through ``ClientFiles``: the original's name,
    description, schema, validation and approval rule; ``run`` is the client's."""

    def __init__(self, original: Any, run: Callable[..., Awaitable[str]]) -> None:
        self.original = original
        self.name = original.name  # type: ignore[misc]
        self.description = original.description  # type: ignore[misc]
        self.requires_approval = original.requires_approval  # type: ignore[misc]
        self._run = run

    @property
    def schema(self) -> dict[str, Any]:
        return self.original.schema  # type: ignore[no-any-return]

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.original.validate(arguments)  # type: ignore[no-any-return]

    async def execute(self, **kwargs: Any) -> ToolResult:
        return ToolResult(success=True, output=await self._run(**kwargs))


def edited(text: str, arguments: dict[str, Any]) -> str:
    """``text`` as ``edit_file`` with ``arguments`` would leave it (``ToolError`` if it
    cannot)."""
    shown = arguments["file_path"]
    patch, old, new = arguments.get("patch"), arguments.get("old_text"), arguments.get("new_text")
    if patch is not None:
        if old is not None or new is not None:
            raise ToolError("give either patch or old_text/new_text, not both")
        return apply_unified_diff(text, patch)
    if old is None or new is None:
        raise ToolError("give old_text and new_text (or a unified diff as patch)")
    return _replace_exact(text, old, new, bool(arguments.get("replace_all")), shown)[0]


def client_file_tools(files: ClientFiles) -> list[BaseTool]:
    """``read_file``, ``write_file`` and ``edit_file`` through ``files``."""

    async def read(file_path: str, start_line: int = 1, end_line: int | None = None) -> str:
        if start_line < 1 or (end_line is not None and end_line < start_line):
            raise ToolError(
                f"lines {start_line}..{end_line} are not a valid range: "
                f"use 1 <= start_line <= end_line"
            )
        limit = None if end_line is None else end_line - start_line + 1
        text = await files.read(file_path, None if start_line == 1 else start_line, limit)
        return cap_text(text, files.workspace.max_output)[0]

    async def write(file_path: str, content: str) -> str:
        where = await files.write(file_path, content)
        lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
        return f"Wrote {where} ({lines} line{'s' if lines != 1 else ''}, {len(content)} characters)"

    async def edit(**arguments: Any) -> str:
        text = await files.read(arguments["file_path"])
        where = await files.write(arguments["file_path"], edited(text, arguments))
        return f"Edited {where}"

    return [
        _ThroughClient(disk_read, read),
        _ThroughClient(disk_write, write),
        _ThroughClient(disk_edit, edit),
    ]
