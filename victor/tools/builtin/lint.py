"""run_linter: ruff over the workspace, findings as structured data."""

from __future__ import annotations

import json
import sys

from ..base import ToolResult, tool
from ..context import current_context
from .python import require_module

__all__ = ["run_linter"]


@tool(requires_approval=lambda args: bool(args.get("fix")))  # only fixing writes files
async def run_linter(
    path: str = ".", select: list[str] | None = None, fix: bool = False
) -> ToolResult:
    """Lint Python code with ruff and return each finding (file, line, column, code, message).

    The project's own ruff settings (pyproject.toml, ruff.toml) apply.

    Args:
        path: File or directory to lint, relative to the workspace root.
        select: Only these rule codes or prefixes, e.g. ['E', 'F401'].
        fix: Let ruff fix what it can (this changes files).
    """
    require_module("ruff")
    workspace = current_context().workspace
    target = workspace.resolve(path)
    argv = [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "--output-format=json",
        "--no-cache",
        "--exit-zero",
    ]
    if select:
        argv.append(f"--select={','.join(select)}")
    if fix:
        argv.append("--fix")
    result = await workspace.run([*argv, str(target)])
    try:
        raw = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return ToolResult.fail(f"ruff could not lint {path!r}\n{result.to_text()}")
    if not result.ok:
        return ToolResult.fail(f"ruff could not lint {path!r}\n{result.to_text()}")
    findings = [
        {
            "file": workspace.relative(item["filename"])
            if workspace.contains(item["filename"])
            else item["filename"],
            "line": item["location"]["row"],
            "column": item["location"]["column"],
            "code": item.get("code") or "syntax-error",
            "message": item["message"],
            "fixable": item.get("fix") is not None,
        }
        for item in raw
    ]
    findings.sort(key=lambda f: (f["file"], f["line"], f["column"]))
    return ToolResult(success=True, output={"count": len(findings), "findings": findings})
