"""The built-in tools and toolsets, registered in the default registry on its first lookup.

Tools (approval: whether a model's call waits for the agent's approval policy)::

    read_file, list_files, search_code          read the workspace
    write_file*, edit_file*                     change files
    run_shell*, run_node*                       allowlisted commands (argv, no shell)
    run_python*, run_tests*, run_coverage*      Python, pytest, coverage.py
    run_linter (* with fix=true)                ruff
    analyze_code                                ast-based static analysis
    git_status, git_diff, git_log               read-only git
    suggest_improvements, write_tests*          ask the agent's model

Toolsets are in ``TOOLSETS`` below, each with what it is for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..base import BaseTool

__all__ = ["TOOLSETS", "builtin_tools"]

_READ = ["read_file", "list_files", "search_code"]
_EDIT = [*_READ, "write_file", "edit_file"]
_PYTHON = [*_EDIT, "run_python", "run_tests", "run_linter", "analyze_code"]

#: Toolset name -> (description, tool names).
TOOLSETS: dict[str, tuple[str, list[str]]] = {
    "files": ("Read, search and change files in the workspace.", _EDIT),
    "shell": ("Allowlisted commands (run_shell), plus reading files.", [*_READ, "run_shell"]),
    "git": ("Read-only git: status, diff, log.", ["git_status", "git_diff", "git_log"]),
    "python": ("Write, run, test and lint Python code.", _PYTHON),
    "pytest": (
        "Run and write pytest tests.",
        ["run_tests", "write_tests", "read_file", "list_files", "search_code"],
    ),
    "coverage": (
        "Measure test coverage with coverage.py.",
        ["run_coverage", "run_tests", "read_file", "list_files"],
    ),
    "code_review": (
        "Review code: static analysis, lint, model suggestions, git changes.",
        [*_READ, "analyze_code", "run_linter", "suggest_improvements", "git_diff"],
    ),
    "react": ("React front ends: files plus node/npm/npx (run_node).", [*_EDIT, "run_node"]),
    "typescript": ("TypeScript: files plus node/npm/npx/tsc (run_node).", [*_EDIT, "run_node"]),
    "fastapi": ("FastAPI services: the python toolset (apps, pytest tests, ruff).", _PYTHON),
    "sqlalchemy": ("SQLAlchemy models and queries: the python toolset.", _PYTHON),
    "selenium": (
        "Browser tests written with selenium and run by pytest (selenium and a browser "
        "driver must be installed in the workspace's Python).",
        [*_EDIT, "run_tests", "run_python", "write_tests"],
    ),
}


def builtin_tools() -> list[BaseTool]:
    """Every built-in tool (their toolsets are ``TOOLSETS``); the registry adds them."""
    from .analysis import analyze_code
    from .files import edit_file, list_files, read_file, write_file
    from .git import git_diff, git_log, git_status
    from .lint import run_linter
    from .model import suggest_improvements, write_tests
    from .python import run_coverage, run_python, run_tests
    from .search import search_code
    from .shell import run_node, run_shell

    return [
        read_file,
        write_file,
        edit_file,
        list_files,
        search_code,
        run_shell,
        run_node,
        run_python,
        run_tests,
        run_coverage,
        run_linter,
        analyze_code,
        git_status,
        git_diff,
        git_log,
        suggest_improvements,
        write_tests,
    ]
