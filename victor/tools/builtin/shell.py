"""run_shell and run_node: commands from an allowlist, as argv (no shell), in the workspace.

Each command tool carries its own allowlist, so a toolset gets the commands it needs and
no more: ``run_shell`` (the ``shell`` toolset) allows common read-only utilities, git and
Python; ``run_node`` (``react``, ``typescript``) allows node and its package tools. Make
your own with ``RunShell(name="run_make", allow=["make"], description=...)``.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from ...errors import ToolError
from ..base import BaseTool, ToolResult
from ..context import current_context

__all__ = ["RunShell", "run_shell", "run_node", "SHELL_COMMANDS", "NODE_COMMANDS"]

#: What ``run_shell`` may start: inspection utilities, git, and this Python's tools.
SHELL_COMMANDS = frozenset(
    {
        "ls",
        "cat",
        "head",
        "tail",
        "wc",
        "grep",
        "diff",
        "echo",
        "pwd",
        "sort",
        "uniq",
        "cut",
        "tr",
        "true",
        "false",
        "date",
        "which",
        "tree",
        "file",
        "stat",
        "git",
        "python",
        "python3",
        "pytest",
        "ruff",
        "coverage",
    }
)
#: What ``run_node`` may start.
NODE_COMMANDS = frozenset({"node", "npm", "npx", "tsc", "yarn", "pnpm"})

_PYTHON_NAMES = {"python", "python3"}
_PYTHON_MODULES = {"pytest", "ruff", "coverage"}  # run with this interpreter: `python -m name`


class RunShell(BaseTool):
    """Runs one command from an allowlist, as an argument list, with the workspace as cwd."""

    timeout = None
    requires_approval = True
    parameters = {
        "type": "object",
        "properties": {
            "command": {
                "description": (
                    'The command as a list of arguments, e.g. ["git", "log", "-3"], or a '
                    "string split like a shell would split words. No shell runs it: pipes, "
                    "redirections, ';' and '$()' are passed as plain arguments."
                ),
                "anyOf": [
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    {"type": "string", "minLength": 1},
                ],
            },
            "stdin": {
                "type": "string",
                "description": "Text to send to the command's standard input.",
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Seconds before the command is killed (default: the workspace's).",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    def __init__(
        self,
        name: str = "run_shell",
        allow: Iterable[str] = SHELL_COMMANDS,
        description: str | None = None,
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.allow = frozenset(allow)
        self.description = description or (  # type: ignore[misc]
            "Run a command in the workspace and return its exit code and output. Allowed "
            f"commands: {', '.join(sorted(self.allow))}. Output is capped; long runs time out."
        )

    def argv(self, command: list[str] | str) -> list[str]:
        """The argv to run for ``command``; ``ToolError`` if it is not allowed."""
        try:
            argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:
            raise ToolError(f"cannot split {command!r} into arguments: {exc}") from None
        if not argv:
            raise ToolError("the command is empty")
        program = argv[0]
        if PurePath(program).name != program or program not in self.allow:
            raise ToolError(
                f"{program!r} is not an allowed command for {self.name}; allowed: "
                f"{', '.join(sorted(self.allow))}"
            )
        if program in _PYTHON_NAMES:  # the interpreter victor runs in, with its packages
            return [sys.executable, *argv[1:]]
        if program in _PYTHON_MODULES:
            return [sys.executable, "-m", program, *argv[1:]]
        return argv

    async def execute(self, **kwargs: Any) -> ToolResult:
        argv = self.argv(kwargs["command"])
        result = await current_context().workspace.run(
            argv, stdin=kwargs.get("stdin"), timeout=kwargs.get("timeout")
        )
        return result.to_tool_result()


run_shell = RunShell()
run_node = RunShell(
    "run_node",
    NODE_COMMANDS,
    "Run a Node.js command in the workspace (node, npm, npx, tsc, yarn, pnpm), e.g. "
    '["npx", "tsc", "--noEmit"] or ["npm", "test"]. Returns exit code and output.',
)
