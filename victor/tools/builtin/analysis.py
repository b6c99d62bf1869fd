"""analyze_code: static analysis of Python source with ``ast`` and ``tokenize`` (no model)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Any

from ...errors import ToolError
from ..base import ToolResult, tool
from ..context import current_context

__all__ = ["analyze_code", "analyze_source"]

#: A function longer than this many lines is reported in ``long_functions``.
LONG_FUNCTION_LINES = 50
#: A function whose cyclomatic complexity is above this is reported in ``complex_functions``.
COMPLEX_FUNCTION = 10

_TODO = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b[:\s]*(.*)", re.IGNORECASE)
# Each of these adds one path through a function (cyclomatic complexity, counted as radon does).
_BRANCHES = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.IfExp,
    ast.ExceptHandler,
    ast.With,
    ast.AsyncWith,
    ast.Assert,
    ast.comprehension,
    ast.match_case,
)


@tool
def analyze_code(code: str | None = None, file_path: str | None = None) -> ToolResult:
    """Analyse Python source without running it: functions (arguments, length, cyclomatic
    complexity, docstring), classes, imports, long or complex functions, and TODO comments.

    Give code, or file_path to analyse a file in the workspace (with both, code is
    analysed and file_path only names it).

    Args:
        code: Python source text.
        file_path: A Python file in the workspace.
    """
    if code is None:
        if file_path is None:
            raise ToolError("give code or file_path to analyse")
        path = current_context().workspace.resolve(file_path)
        if not path.is_file():
            raise ToolError(f"there is no file {file_path!r} in the workspace")
        code = path.read_text(encoding="utf-8", errors="replace")
    try:
        return ToolResult(success=True, output=analyze_source(code, file_path))
    except SyntaxError as exc:
        where = f"{file_path or '<code>'}, line {exc.lineno}, column {exc.offset}"
        return ToolResult.fail(f"cannot analyse: syntax error at {where}: {exc.msg}")


def analyze_source(code: str, name: str | None = None) -> dict[str, Any]:
    """The analysis ``analyze_code`` returns, for source text (``SyntaxError`` if invalid)."""
    tree = ast.parse(code, filename=name or "<code>")
    functions = [
        _function_info(node, qualname)
        for node, qualname in _walk_defs(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    classes = [
        {
            "name": qualname,
            "line": node.lineno,
            "bases": [ast.unparse(b) for b in node.bases],
            "methods": [
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            ],
            "docstring": ast.get_docstring(node) is not None,
        }
        for node, qualname in _walk_defs(tree)
        if isinstance(node, ast.ClassDef)
    ]
    lines = code.splitlines()
    return {
        "file": name,
        "lines": len(lines),
        "code_lines": sum(1 for line in lines if line.strip() and not line.strip().startswith("#")),
        "docstring": ast.get_docstring(tree) is not None,
        "imports": _imports(tree),
        "functions": functions,
        "classes": classes,
        "complexity": {
            "total": sum(f["complexity"] for f in functions),
            "max": max((f["complexity"] for f in functions), default=0),
            "average": round(sum(f["complexity"] for f in functions) / len(functions), 2)
            if functions
            else 0,
        },
        "long_functions": [f["name"] for f in functions if f["length"] > LONG_FUNCTION_LINES],
        "complex_functions": [f["name"] for f in functions if f["complexity"] > COMPLEX_FUNCTION],
        "undocumented": [
            f["name"]
            for f in functions
            if not f["docstring"] and not f["name"].split(".")[-1].startswith("_")
        ],
        "todos": _todos(code),
    }


def _walk_defs(node: ast.AST, prefix: str = ""):  # type: ignore[no-untyped-def]
    """Every function and class with its dotted name (``Class.method``, ``outer.inner``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qualname = f"{prefix}{child.name}"
            yield child, qualname
            yield from _walk_defs(child, qualname + ".")
        else:
            yield from _walk_defs(child, prefix)


def _function_info(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> dict[str, Any]:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if args.vararg:
        names.append("*" + args.vararg.arg)
    if args.kwarg:
        names.append("**" + args.kwarg.arg)
    end = node.end_lineno or node.lineno
    return {
        "name": qualname,
        "line": node.lineno,
        "end_line": end,
        "length": end - node.lineno + 1,
        "args": names,
        "async": isinstance(node, ast.AsyncFunctionDef),
        "complexity": _complexity(node),
        "docstring": ast.get_docstring(node) is not None,
        "returns": ast.unparse(node.returns) if node.returns else None,
    }


def _complexity(function: ast.AST) -> int:
    """McCabe complexity of one function body; nested functions and classes count on their own."""
    score = 1
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, _BRANCHES):
            score += 1
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
        elif isinstance(node, ast.Try):
            score += bool(node.orelse)
        stack.extend(ast.iter_child_nodes(node))
    return score


def _imports(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            found += [
                f"{module}.{alias.name}" if module.strip(".") else f"{module}{alias.name}"
                for alias in node.names
            ]
    return sorted(set(found))


def _todos(code: str) -> list[dict[str, Any]]:
    todos = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT and (match := _TODO.search(token.string)):
                todos.append(
                    {
                        "line": token.start[0],
                        "tag": match.group(1).upper(),
                        "text": match.group(2).strip(),
                    }
                )
    except (tokenize.TokenError, IndentationError):  # already parsed by ast, so rare
        pass
    return todos
