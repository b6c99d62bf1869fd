"""search_code: a regular expression over the workspace's text files, with line numbers."""

from __future__ import annotations

import re

from ...errors import ToolError
from ..base import tool
from ..context import current_context
from .files import iter_files

__all__ = ["search_code"]

_MAX_FILE_BYTES = 2_000_000  # larger files are data, not code


@tool
def search_code(
    pattern: str,
    directory: str = ".",
    glob: str = "*",
    ignore_case: bool = False,
    max_results: int = 200,
) -> str:
    """Search the workspace's text files for a regular expression.

    Returns one line per match as 'path:line: text', like grep -n. Binary files, caches,
    virtualenvs and .git are skipped.

    Args:
        pattern: A Python regular expression, e.g. 'def \\w+_test' or 'TODO'.
        directory: Directory to search, relative to the workspace root.
        glob: Only files whose names match this glob, e.g. '*.py' or 'src/**/*.ts'.
        ignore_case: Match regardless of case.
        max_results: At most this many matching lines are returned.
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    workspace = current_context().workspace
    hits: list[str] = []
    for path in iter_files(workspace, directory, glob):
        if path.stat().st_size > _MAX_FILE_BYTES:
            continue
        data = path.read_bytes()
        if b"\x00" in data[:8192]:
            continue
        shown = workspace.relative(path)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if regex.search(line):
                hits.append(f"{shown}:{number}: {line.strip()[:300]}")
                if len(hits) >= max_results:
                    return "\n".join(hits) + f"\n... (stopped at max_results={max_results})"
    return "\n".join(hits) if hits else f"no matches for {pattern!r}"
