"""Git tools: git_status, git_diff, git_log (read-only) in the workspace's repository."""

from __future__ import annotations

import shutil

from ...errors import ToolError
from ..base import ToolResult, tool
from ..context import current_context

__all__ = ["git_status", "git_diff", "git_log"]

_FIELD = "\x1f"  # separates fields in git log's output: never appears in a commit message


async def _git(*args: str) -> str:
    if shutil.which("git") is None:
        raise ToolError("git is not installed or not on PATH: install git to use the git tools")
    workspace = current_context().workspace
    result = await workspace.run(["git", "--no-pager", "-c", "core.quotepath=off", *args])
    if not result.ok:
        raise ToolError(f"git {args[0]} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def _pathspec(path: str | None) -> list[str]:
    if not path:
        return []
    current_context().workspace.resolve(path)  # a path outside the workspace is refused
    return ["--", path]


@tool
async def git_status() -> dict:
    """Show the current branch and which files are staged, changed or untracked.

    Returns {"branch", "staged", "unstaged", "untracked"}; each change is
    {"path", "status"} with git's one-letter status (M modified, A added, D deleted, R renamed).
    """
    out = await _git("status", "--porcelain=v1", "--branch", "--untracked-files=all")
    branch, staged, unstaged, untracked = None, [], [], []
    for line in out.splitlines():
        if line.startswith("## "):
            branch = line[3:].split("...", 1)[0].replace("No commits yet on ", "")
            continue
        code, path = line[:2], line[3:]
        if code == "??":
            untracked.append(path)
            continue
        if code[0] != " ":
            staged.append({"path": path, "status": code[0]})
        if code[1] != " ":
            unstaged.append({"path": path, "status": code[1]})
    return {"branch": branch, "staged": staged, "unstaged": unstaged, "untracked": untracked}


@tool
async def git_diff(
    path: str | None = None, staged: bool = False, ref: str | None = None
) -> ToolResult:
    """Show changes as a unified diff: the work tree against the index, the index
    against HEAD (staged), or the work tree against a commit (ref).

    Args:
        path: Only changes to this file or directory.
        staged: Show staged changes (what the next commit would contain).
        ref: Compare the work tree with this commit or branch, e.g. 'HEAD~1' or 'main'.
    """
    if ref is not None and ref.startswith("-"):
        raise ToolError(f"ref {ref!r} is not a commit or branch name")
    args = ["diff", "--no-color", "--no-ext-diff"]
    if staged:
        args.append("--cached")
    if ref:
        args.append(ref)
    diff = await _git(*args, *_pathspec(path))
    return ToolResult(success=True, output=diff or "(no changes)", metadata={"empty": not diff})


@tool
async def git_log(max_count: int = 10, path: str | None = None) -> list[dict]:
    """List recent commits, newest first: {"commit", "author", "date", "subject"}.

    Args:
        max_count: At most this many commits.
        path: Only commits that touched this file or directory.
    """
    if max_count < 1:
        raise ToolError(f"max_count={max_count} must be at least 1")
    fmt = _FIELD.join(["%H", "%an", "%aI", "%s"])
    out = await _git("log", f"--max-count={max_count}", f"--pretty=format:{fmt}", *_pathspec(path))
    keys = ("commit", "author", "date", "subject")
    return [dict(zip(keys, line.split(_FIELD), strict=False)) for line in out.splitlines() if line]
