"""The house's shape, read from the code's own imports (module and function level, the
``TYPE_CHECKING`` block included, relative imports resolved): the core never imports a
front end or an upper part, and no import cycle crosses a folder."""

from __future__ import annotations

import ast
from pathlib import Path

import victor

PACKAGE = Path(victor.__file__).parent
#: Front ends and upper parts: they stand on the core and may import it, never the reverse.
UPPER = (
    "notebook",
    "serve",
    "mcp",
    "acp",
    "hosting",
    "batch",
    "cli",
    "doctor",
    "telemetry",
    "__main__",
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["victor", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def imports_of(name: str, path: Path) -> set[str]:
    """The victor modules ``name`` imports anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for end in range(len(parts), 0, -1):  # the longest module the target names
                candidate = ".".join(parts[:end])
                if candidate in MODULES and candidate != name:
                    found.add(candidate)
                    break
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def is_upper(name: str) -> bool:
    parts = name.split(".")
    return len(parts) > 1 and parts[1] in UPPER


def test_the_reader_sees_function_level_and_relative_imports(tmp_path):
    """The check itself: a deliberate front-end import deep in a function is found."""
    source = "def f():\n    if True:\n        from ..notebook import stream\n"
    probe = tmp_path / "agent.py"
    probe.write_text(source)
    assert "victor.notebook.stream" in imports_of("victor.core.agent", probe)


def test_the_core_never_imports_a_front_end_or_an_upper_part():
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name != "victor" and not is_upper(name)
        for target in targets
        if is_upper(target)
    )
    assert offenders == [], "the core asks front ends through victor.core.seams instead"


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(component)
    return out


def test_no_import_cycle_crosses_a_folder():
    # The package's face hands out names lazily by design: its imports make no cycle.
    graph = {name: (set() if name == "victor" else targets) for name, targets in GRAPH.items()}
    crossing = [
        sorted(component)
        for component in _cycles(graph)
        if len({MODULES[name].parent for name in component}) > 1
    ]
    assert crossing == []


def test_the_cycle_finder_finds_a_cycle_across_folders():
    graph = {"a.x": {"b.y"}, "b.y": {"a.x"}, "c": set()}
    assert _cycles(graph) == [{"a.x", "b.y"}]


def test_what_serve_and_mcp_share_lives_in_hosting():
    """The catalog of agents, the bind and token rules and the guard are in victor.hosting,
    which both servers import: MCP imports nothing of serve, hosting neither of them."""

    def imports(source: str, target: str) -> list[str]:
        return sorted(
            f"{name} -> {to}"
            for name, targets in GRAPH.items()
            if name.startswith(f"victor.{source}")
            for to in targets
            if to.startswith(f"victor.{target}")
        )

    assert imports("mcp", "serve") == []
    assert imports("hosting", "serve") == imports("hosting", "mcp") == []
