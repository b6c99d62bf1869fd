"""Model-backed tools: suggest_improvements and write_tests ask the agent they run under.

They reach the model through ``current_context().ask(...)``: a nested, tool-less run on
the agent's provider. Called with no agent (a bare pipeline), they fail with a message
saying how to pass one.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

from ...errors import ToolError
from ..base import tool
from ..context import current_context
from .analysis import analyze_source

__all__ = ["suggest_improvements", "write_tests", "extract_code"]

_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

_REVIEWER = (
    "You are a senior Python reviewer. Be concrete and brief: name the function or line "
    "each point is about."
)
_TEST_WRITER = (
    "You write pytest tests. Reply with one complete test module in a single ```python "
    "block: imports, plain test functions, no explanations outside the block."
)


def extract_code(reply: str) -> str | None:
    """The longest fenced code block of a model's reply, or ``None`` if it has none."""
    blocks = _FENCE.findall(reply)
    return max(blocks, key=len).rstrip() + "\n" if blocks else None


def _source(code: str | None, file_path: str | None, tool_name: str) -> str:
    if code is not None:
        return code
    if file_path is None:
        raise ToolError(f"{tool_name} needs code or file_path")
    path = current_context().workspace.resolve(file_path)
    if not path.is_file():
        raise ToolError(f"there is no file {file_path!r} in the workspace")
    return path.read_text(encoding="utf-8", errors="replace")


@tool
async def suggest_improvements(
    analysis: dict[str, Any] | None = None,
    code: str | None = None,
    file_path: str | None = None,
    focus: str | None = None,
) -> dict[str, Any]:
    """Ask the model for concrete improvements to Python code, and an improved version.

    Returns {"suggestions": text, "content": the improved file} ("content" only when
    the model gave code), so a pipeline can hand "content" to write_file.

    Args:
        analysis: Output of analyze_code for this code (computed when omitted).
        code: The source to improve.
        file_path: A file in the workspace to improve, when code is not given.
        focus: What to concentrate on, e.g. 'security' or 'performance'.
    """
    source = _source(code, file_path, "suggest_improvements")
    if analysis is None:
        try:
            analysis = analyze_source(source, file_path)
        except SyntaxError:
            analysis = None
    summary = {
        k: analysis[k]
        for k in ("complexity", "long_functions", "complex_functions", "undocumented", "todos")
        if analysis and k in analysis
    }
    prompt = (
        f"Suggest improvements to {file_path or 'this code'}"
        + (f", focusing on {focus}" if focus else "")
        + ". List the most valuable ones as short bullet points, then give the complete "
        "improved file in one ```python block.\n\n"
        + (f"Static analysis:\n{json.dumps(summary, indent=1)}\n\n" if summary else "")
        + f"Code:\n```python\n{source}\n```"
    )
    reply = await current_context().ask(prompt, system=_REVIEWER, purpose="suggest_improvements")
    improved = extract_code(reply)
    result: dict[str, Any] = {"suggestions": _FENCE.sub("", reply).strip()}
    if improved is not None:
        result["content"] = improved
    return result


@tool(requires_approval=True)
async def write_tests(
    file_path: str, code: str | None = None, test_path: str | None = None
) -> dict[str, Any]:
    """Ask the model to write pytest tests for a Python file and save them in the workspace.

    Returns {"test_path", "content"}. Run them with run_tests.

    Args:
        file_path: The module to test, relative to the workspace root.
        code: Its source, if already at hand (read from file_path otherwise).
        test_path: Where to write the tests (default: tests/test_<module>.py).
    """
    source = _source(code, file_path, "write_tests")
    module = PurePosixPath(file_path)
    target = test_path or f"tests/test_{module.stem}.py"
    import_name = ".".join(module.with_suffix("").parts)
    prompt = (
        f"Write pytest tests for the module {file_path} (import it as `{import_name}`; the "
        f"tests run from the project root and will be saved as {target}).\n\n"
        f"```python\n{source}\n```"
    )
    reply = await current_context().ask(prompt, system=_TEST_WRITER, purpose="write_tests")
    content = extract_code(reply)
    if content is None:
        raise ToolError("the model's reply held no ```python block of tests; ask again")
    workspace = current_context().workspace
    path = workspace.write_text(target, content)
    return {"test_path": workspace.relative(path), "content": content}
