"""File tools: read_file, write_file, edit_file, list_files, all confined to the workspace."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..._util import did_you_mean
from ...errors import ToolError
from ..base import tool
from ..context import current_context
from ..executor import cap_text
from ..sandbox import Workspace

__all__ = ["read_file", "write_file", "edit_file", "list_files", "iter_files", "IGNORED_DIRS"]

#: Directories no file tool walks into: VCS data, caches, virtualenvs, build output.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        "dist",
        "build",
        ".eggs",
        ".idea",
        ".vscode",
    }
)


@tool
def read_file(file_path: str, start_line: int = 1, end_line: int | None = None) -> str:
    """Read a text file from the workspace.

    Returns the file's text (or the lines asked for). Paths are relative to the
    workspace root; paths outside it are refused.

    Args:
        file_path: Path of the file, relative to the workspace root.
        start_line: First line to return (1-based).
        end_line: Last line to return (inclusive); omit for the end of the file.
    """
    workspace = current_context().workspace
    path = _existing_file(workspace, file_path)
    text = _read_text(path, file_path)
    if start_line != 1 or end_line is not None:
        if start_line < 1 or (end_line is not None and end_line < start_line):
            raise ToolError(
                f"lines {start_line}..{end_line} are not a valid range: "
                f"use 1 <= start_line <= end_line"
            )
        text = "".join(text.splitlines(keepends=True)[start_line - 1 : end_line])
    return cap_text(text, workspace.max_output)[0]


@tool(requires_approval=True)
def write_file(file_path: str, content: str) -> str:
    """Write a text file in the workspace, replacing it if it exists.

    Parent directories are created. Use edit_file to change part of a file.

    Args:
        file_path: Path of the file, relative to the workspace root.
        content: The complete new text of the file.
    """
    workspace = current_context().workspace
    existed = workspace.resolve(file_path).exists()
    path = workspace.write_text(file_path, content)
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    verb = "Replaced" if existed else "Created"
    plural = "s" if lines != 1 else ""
    return f"{verb} {workspace.relative(path)} ({lines} line{plural}, {len(content)} characters)"


@tool(requires_approval=True)
def edit_file(
    file_path: str,
    old_text: str | None = None,
    new_text: str | None = None,
    patch: str | None = None,
    replace_all: bool = False,
) -> str:
    """Change part of a text file: replace an exact piece of text, or apply a unified diff.

    Give old_text and new_text to replace old_text, which must occur exactly once (copy it
    from the file with enough surrounding lines to be unique, or set replace_all).
    Or give patch: a unified diff (as from `diff -u`/`git diff`) for this one file; every
    hunk's context must match the file exactly.

    Args:
        file_path: Path of the file, relative to the workspace root.
        old_text: The exact text to replace, including whitespace and indentation.
        new_text: The text to put in its place.
        patch: A unified diff to apply instead of old_text/new_text.
        replace_all: Replace every occurrence of old_text instead of requiring exactly one.
    """
    workspace = current_context().workspace
    path = _existing_file(workspace, file_path)
    text = _read_text(path, file_path)
    if patch is not None:
        if old_text is not None or new_text is not None:
            raise ToolError("give either patch or old_text/new_text, not both")
        updated, summary = apply_unified_diff(text, patch), "applied the patch"
    else:
        if old_text is None or new_text is None:
            raise ToolError("give old_text and new_text (or a unified diff as patch)")
        updated, count = _replace_exact(text, old_text, new_text, replace_all, file_path)
        summary = f"replaced {count} occurrence{'s' if count != 1 else ''}"
    workspace.write_text(path, updated)
    return f"Edited {workspace.relative(path)}: {summary}"


@tool
def list_files(pattern: str = "**/*", directory: str = ".", max_results: int = 500) -> list[str]:
    """List files in the workspace whose paths match a glob pattern, sorted.

    A pattern without '/' matches file names at any depth ('*.py'); with '/' it matches
    the path relative to the directory, where '**' spans directories ('src/**/*.py').
    Version-control data, caches, virtualenvs and node_modules are skipped.

    Args:
        pattern: Glob pattern, e.g. '*.py', 'tests/test_*.py', '**/*.md'.
        directory: Directory to search, relative to the workspace root.
        max_results: At most this many paths are returned.
    """
    workspace = current_context().workspace
    found = []
    for path in iter_files(workspace, directory, pattern):
        found.append(workspace.relative(path))
        if len(found) >= max_results:
            break
    return sorted(found)


def iter_files(workspace: Workspace, directory: str = ".", pattern: str = "**/*") -> Iterator[Path]:
    """Files under ``directory`` matching ``pattern``, never leaving the workspace."""
    if Path(pattern).is_absolute() or ".." in re.split(r"[\\/]", pattern):
        raise ToolError(
            f"pattern {pattern!r} may not be absolute or contain '..': patterns match paths "
            f"inside the directory searched"
        )
    base = workspace.resolve(directory)
    if not base.is_dir():
        raise ToolError(f"{directory!r} is not a directory in the workspace")
    matches = _glob_matcher(pattern)
    for dirpath, dirnames, filenames in os.walk(base):  # does not follow symlinked dirs
        dirnames[:] = sorted(
            d for d in dirnames if d not in IGNORED_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if matches(path.relative_to(base).as_posix()) and workspace.contains(path):
                yield path  # a symlink leading out of the workspace is left out


def _glob_matcher(pattern: str):  # type: ignore[no-untyped-def]
    """A predicate on relative posix paths for a glob with ``**`` support."""
    if "/" not in pattern:
        regex = re.compile(_glob_to_regex(pattern))
        return lambda rel: bool(regex.fullmatch(rel.rsplit("/", 1)[-1]))
    regex = re.compile(_glob_to_regex(pattern[2:] if pattern.startswith("./") else pattern))
    return lambda rel: bool(regex.fullmatch(rel))


def _glob_to_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            body = pattern[i + 1 : end]
            out.append(
                "[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]"
            )
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _existing_file(workspace: Workspace, file_path: str) -> Path:
    path = workspace.resolve(file_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise ToolError(f"{file_path!r} is a directory; use list_files to see what it holds")
    names = [workspace.relative(p) for p in itertools.islice(iter_files(workspace), 5000)]
    hint = did_you_mean(file_path, names, n=3, cutoff=0.5) or " Use list_files to see what exists."
    raise ToolError(f"there is no file {file_path!r} in the workspace.{hint}")


def _read_text(path: Path, shown: str) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ToolError(f"{shown!r} is a binary file; only text files can be read")
    return data.decode("utf-8", errors="replace")


def _replace_exact(text: str, old: str, new: str, replace_all: bool, shown: str) -> tuple[str, int]:
    if not old:
        raise ToolError("old_text is empty: give the exact text to replace")
    count = text.count(old)
    if count == 0:
        first = old.strip().splitlines()[0].strip() if old.strip() else old
        near = [i + 1 for i, line in enumerate(text.splitlines()) if first and first in line]
        hint = (
            f" Its first line appears on line(s) {near[:5]}: check whitespace and indentation."
            if near
            else " Read the file again and copy the text exactly."
        )
        raise ToolError(f"old_text was not found in {shown!r}.{hint}")
    if count > 1 and not replace_all:
        lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(re.escape(old), text)]
        raise ToolError(
            f"old_text occurs {count} times in {shown!r} (lines {lines[:10]}): include more "
            f"surrounding text so it matches exactly once, or set replace_all=true"
        )
    return text.replace(old, new), count


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_unified_diff(text: str, patch: str) -> str:
    """Apply a one-file unified diff to ``text``; ``ToolError`` if any hunk does not fit."""
    lines = text.splitlines(keepends=True)
    hunks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for raw in patch.splitlines():
        if raw.startswith(("--- ", "+++ ", "diff ", "index ")) and current is None:
            continue
        match = _HUNK.match(raw)
        if match:
            current = []
            hunks.append((int(match.group(1)), current))
        elif current is not None and raw.startswith((" ", "-", "+")):
            current.append(raw)
        elif current is not None and raw == "":
            current.append(" ")  # an empty context line whose leading space was stripped
        elif raw.startswith("\\"):
            continue  # "\ No newline at end of file"
        elif raw.startswith(("--- ", "+++ ")):
            raise ToolError("the patch changes more than one file: send one file's diff per call")
    if not hunks:
        raise ToolError("the patch has no hunks: give a unified diff with '@@ -a,b +c,d @@' lines")
    offset = 0
    for start, body in hunks:
        old = [line[1:] for line in body if line[0] in " -"]
        new = [line[1:] for line in body if line[0] in " +"]
        at = _find_block(lines, old, max(start - 1 + offset, 0), start)
        eol = "\n"
        replacement = [line + eol for line in new]
        end = at + len(old)
        if end == len(lines) and lines and not lines[-1].endswith("\n") and replacement:
            replacement[-1] = replacement[-1][:-1]  # keep a missing final newline missing
        lines[at:end] = replacement
        offset += len(new) - len(old)
    return "".join(lines)


def _find_block(lines: list[str], block: list[str], expected: int, stated: int) -> int:
    bare = [line.rstrip("\r\n") for line in lines]
    if not block:
        return min(expected, len(lines))
    positions = [i for i in range(len(bare) - len(block) + 1) if bare[i : i + len(block)] == block]
    if expected in positions:
        return expected
    if len(positions) == 1:
        return positions[0]
    if not positions:
        raise ToolError(
            f"the hunk at line {stated} does not match the file: its context and removed lines "
            f"must be copied exactly (read the file again and rebuild the diff)"
        )
    raise ToolError(
        f"the hunk at line {stated} matches {len(positions)} places and none at that line: "
        f"add context lines so it matches exactly once"
    )
