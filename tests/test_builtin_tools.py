"""Each built-in tool on real files in a temporary workspace, the seed's tool and toolset
names, fuzzed argument validation, and agents driving real tool round trips."""

from __future__ import annotations

import difflib
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import Call, Text, ToolCalls
from victor import Agent, ToolError
from victor.core.events import EventBus
from victor.testing import ScriptedProvider, call
from victor.tools import BaseTool, ToolContext, Workspace, registry
from victor.tools.context import using_context

CALC = '''"""A tiny calculator."""
import os
import sys


def add(a, b):
    # TODO: accept more than two numbers
    return a + b


def classify(n):
    if n < 0 and n != -1:
        return "negative"
    for _ in range(3):
        if n == 0:
            return "zero"
    return "positive"


class Calculator:
    def total(self, *values):
        return sum(values)
'''

TESTS = """from calc import add


def test_add():
    assert add(2, 3) == 5


def test_add_strings():
    assert add("a", "b") == "ab"


def test_add_is_wrong():
    assert add(1, 1) == 3, "one and one"
"""


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "calc.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TESTS)
    for junk in (".git/objects", "__pycache__", "node_modules/pkg"):
        (tmp_path / junk).mkdir(parents=True, exist_ok=True)
        (tmp_path / junk / "junk.py").write_text("x = 1\n")
    # The sample project needs no pytest plugins; this dev environment's (nbval imports
    # nbformat) would cost seconds per child pytest run.
    return Workspace(tmp_path, env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})


async def use(ws: Workspace, name: str, **arguments):
    with using_context(ToolContext(workspace=ws)):
        return await registry.get(name).run(arguments)


# -- files ---------------------------------------------------------------------------


async def test_read_file_whole_and_lines(ws):
    assert (await use(ws, "read_file", file_path="calc.py")).output == CALC
    lines = await use(ws, "read_file", file_path="calc.py", start_line=6, end_line=7)
    assert lines.output == "def add(a, b):\n    # TODO: accept more than two numbers\n"


async def test_read_file_errors_say_what_to_do(ws):
    missing = await use(ws, "read_file", file_path="calcs.py")
    assert not missing.success and "Did you mean 'calc.py'" in missing.error
    assert "is a directory" in (await use(ws, "read_file", file_path="tests")).error
    (ws.root / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert "binary" in (await use(ws, "read_file", file_path="blob.bin")).error
    bad = await use(ws, "read_file", file_path="calc.py", start_line=5, end_line=2)
    assert not bad.success and "not a valid range" in bad.error


async def test_write_file_creates_directories_and_reports(ws):
    result = await use(ws, "write_file", file_path="pkg/sub/mod.py", content="a = 1\nb = 2\n")
    assert result.output == "Created pkg/sub/mod.py (2 lines, 12 characters)"
    assert (ws.root / "pkg" / "sub" / "mod.py").read_text() == "a = 1\nb = 2\n"
    again = await use(ws, "write_file", file_path="pkg/sub/mod.py", content="c = 3")
    assert (
        again.output.startswith("Replaced") and (ws.root / "pkg/sub/mod.py").read_text() == "c = 3"
    )


async def test_edit_file_exact_replace_and_ambiguity(ws):
    (ws.root / "dup.py").write_text("x = 1\ny = 2\nx = 1\n")
    ambiguous = await use(ws, "edit_file", file_path="dup.py", old_text="x = 1", new_text="x = 9")
    assert (
        not ambiguous.success
        and "occurs 2 times" in ambiguous.error
        and "[1, 3]" in ambiguous.error
    )
    assert (ws.root / "dup.py").read_text() == "x = 1\ny = 2\nx = 1\n"  # untouched
    once = await use(ws, "edit_file", file_path="dup.py", old_text="x = 1\ny", new_text="x = 5\ny")
    assert once.success and (ws.root / "dup.py").read_text() == "x = 5\ny = 2\nx = 1\n"
    every = await use(
        ws, "edit_file", file_path="dup.py", old_text="= ", new_text="== ", replace_all=True
    )
    assert every.output.endswith("replaced 3 occurrences")
    missing = await use(ws, "edit_file", file_path="dup.py", old_text="z = 0", new_text="")
    assert not missing.success and "not found" in missing.error
    neither = await use(ws, "edit_file", file_path="dup.py")
    assert not neither.success and "old_text and new_text" in neither.error


async def test_edit_file_applies_a_unified_diff(ws):
    new = CALC.replace("return a + b", "return sum((a, b))").replace('"negative"', '"neg"')
    patch = "".join(
        difflib.unified_diff(CALC.splitlines(True), new.splitlines(True), "a/calc.py", "b/calc.py")
    )
    result = await use(ws, "edit_file", file_path="calc.py", patch=patch)
    assert result.success, result.error
    assert (ws.root / "calc.py").read_text() == new
    stale = await use(
        ws, "edit_file", file_path="calc.py", patch=patch
    )  # context no longer matches
    assert not stale.success and "does not match the file" in stale.error
    assert (ws.root / "calc.py").read_text() == new
    garbage = await use(ws, "edit_file", file_path="calc.py", patch="not a diff")
    assert not garbage.success and "no hunks" in garbage.error


async def test_list_files_globs_and_skips_junk(ws):
    everything = (await use(ws, "list_files")).output
    assert everything == ["calc.py", "tests/test_calc.py"]
    assert (await use(ws, "list_files", pattern="test_*.py")).output == ["tests/test_calc.py"]
    assert (await use(ws, "list_files", pattern="tests/**/*.py")).output == ["tests/test_calc.py"]
    assert (await use(ws, "list_files", pattern="*.py", directory="tests")).output == [
        "tests/test_calc.py"
    ]
    assert (await use(ws, "list_files", pattern="*.[pP][yY]", max_results=1)).output == ["calc.py"]


async def test_search_code_regex_with_line_numbers(ws):
    found = await use(ws, "search_code", pattern=r"def \w+\(")
    assert found.output.splitlines()[:3] == [
        "calc.py:6: def add(a, b):",
        "calc.py:11: def classify(n):",
        "calc.py:21: def total(self, *values):",
    ]
    assert "junk" not in found.output
    assert (
        await use(ws, "search_code", pattern="TODO", glob="test_*.py")
    ).output == "no matches for 'TODO'"
    assert "calc.py:7:" in (await use(ws, "search_code", pattern="todo", ignore_case=True)).output
    bad = await use(ws, "search_code", pattern="(unclosed")
    assert not bad.success and "not a valid regular expression" in bad.error


# -- python, tests, coverage, lint -----------------------------------------------------


async def test_run_python_code_script_and_failure(ws):
    (ws.root / "script.py").write_text("import sys; print('args', sys.argv[1:])")
    assert (
        "args ['a', 'b']"
        in (await use(ws, "run_python", file_path="script.py", args=["a", "b"])).output
    )
    ok = await use(ws, "run_python", code="import calc; print(calc.add(20, 22))")
    assert ok.success and "42" in ok.output  # runs in the workspace: calc is importable
    failed = await use(ws, "run_python", code="raise SystemExit('boom')")
    assert not failed.success and "exit code 1" in failed.error and "boom" in failed.error
    both = await use(ws, "run_python", code="1", file_path="script.py")
    assert not both.success and "exactly one" in both.error


async def test_run_tests_counts_and_failures(ws):
    result = await use(ws, "run_tests")
    out = result.output
    assert result.success and (out["passed"], out["failed"], out["total"], out["ok"]) == (
        2,
        1,
        3,
        False,
    )
    failure = out["failures"][0]
    assert failure["test"] == "tests/test_calc.py::test_add_is_wrong"
    assert "one and one" in failure["message"] and "assert 2 == 3" in failure["details"]
    only = (await use(ws, "run_tests", keyword="strings")).output
    assert (only["passed"], only["failed"], only["ok"]) == (1, 0, True)
    node = (await use(ws, "run_tests", path="tests/test_calc.py::test_add")).output
    assert node["total"] == 1
    outside = await use(ws, "run_tests", path="../elsewhere")
    assert not outside.success and "outside the workspace" in outside.error


async def test_run_coverage_per_file(ws):
    result = await use(ws, "run_coverage", path="tests")
    assert result.success, result.error
    files = result.output["files"]
    assert files["calc.py"]["statements"] == 14
    assert 0 < files["calc.py"]["percent"] < 100 and 13 in files["calc.py"]["missing_lines"]
    assert result.output["tests"]["failed"] == 1 and 0 < result.output["total_percent"] < 100
    assert not list(ws.root.glob(".coverage*"))  # coverage's data file stays out of the workspace


async def test_run_linter_findings_and_fix(ws):
    result = await use(ws, "run_linter", select=["F401"])
    assert result.success and result.output["count"] == 2
    first = result.output["findings"][0]
    assert first == {
        "file": "calc.py",
        "line": 2,
        "column": 8,
        "code": "F401",
        "message": first["message"],
        "fixable": True,
    }
    assert "os" in first["message"]
    registry_linter = registry.get("run_linter")
    assert registry_linter.requires_approval(
        {"fix": True}
    ) and not registry_linter.requires_approval({})
    fixed = await use(ws, "run_linter", select=["F401"], fix=True)
    assert fixed.output["count"] == 0 and "import os" not in (ws.root / "calc.py").read_text()


# -- analysis and git ------------------------------------------------------------------


async def test_analyze_code_structure_complexity_and_todos(ws):
    out = (await use(ws, "analyze_code", file_path="calc.py")).output
    by_name = {f["name"]: f for f in out["functions"]}
    assert set(by_name) == {"add", "classify", "Calculator.total"}
    assert by_name["add"]["complexity"] == 1
    assert by_name["classify"]["complexity"] == 5  # if + and + for + if, plus one
    assert by_name["Calculator.total"]["args"] == ["self", "*values"]
    assert out["classes"] == [
        {"name": "Calculator", "line": 20, "bases": [], "methods": ["total"], "docstring": False}
    ]
    assert out["imports"] == ["os", "sys"] and out["docstring"] is True
    assert out["todos"] == [{"line": 7, "tag": "TODO", "text": "accept more than two numbers"}]
    assert out["complexity"]["max"] == 5 and out["long_functions"] == []
    long_fn = "def big():\n" + "    x = 1\n" * 60
    assert (await use(ws, "analyze_code", code=long_fn)).output["long_functions"] == ["big"]
    broken = await use(ws, "analyze_code", code="def f(:\n")
    assert not broken.success and "syntax error" in broken.error and "line 1" in broken.error


def git(ws: Workspace, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        cwd=ws.root,
        check=True,
        capture_output=True,
    )


async def test_git_status_diff_log(ws):
    not_repo = await use(ws, "git_status")
    assert not not_repo.success and "not a git repository" in not_repo.error
    import shutil

    shutil.rmtree(ws.root / ".git")
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "calc.py")
    git(ws, "commit", "-q", "-m", "Add the calculator")
    (ws.root / "calc.py").write_text(CALC.replace("a + b", "b + a"))
    status = (await use(ws, "git_status")).output
    assert status["branch"] == "main"
    assert status["unstaged"] == [{"path": "calc.py", "status": "M"}]
    assert "tests/test_calc.py" in status["untracked"]
    diff = (await use(ws, "git_diff", path="calc.py")).output
    assert "-    return a + b" in diff and "+    return b + a" in diff
    assert (await use(ws, "git_diff", staged=True)).output == "(no changes)"
    log = (await use(ws, "git_log")).output
    assert [(c["author"], c["subject"]) for c in log] == [("Ada", "Add the calculator")]
    assert len(log[0]["commit"]) == 40
    outside = await use(ws, "git_diff", path="../x")
    assert not outside.success and "outside the workspace" in outside.error
    option = await use(ws, "git_diff", ref="--output=/tmp/x")
    assert not option.success and "not a commit" in option.error


# -- the registry: seed names ------------------------------------------------------------

SEED_TOOLSETS = [
    "pytest",
    "coverage",
    "python",
    "react",
    "typescript",
    "fastapi",
    "sqlalchemy",
    "selenium",
]
SEED_TOOLS = [
    "read_file",
    "analyze_code",
    "suggest_improvements",
    "write_file",
    "run_tests",
    "run_linter",
    "run_coverage",
    "write_tests",
]


def test_seed_names_resolve():
    for name in SEED_TOOLS:
        assert registry.get(name).name == name
    sets = registry.toolsets()
    for name in SEED_TOOLSETS:
        tools = registry.resolve([name])
        assert tools and [t.name for t in tools] == sets[name]
        assert "Tools:" in registry.describe_toolset(name)
    assert "run_tests" in sets["pytest"] and "run_coverage" in sets["coverage"]
    assert "run_node" in sets["react"] and "run_node" in sets["typescript"]
    table = registry.table()
    assert "toolset selenium" in str(table) and "<td>read_file</td>" in table._repr_html_()


def test_unknown_names_suggest_close_matches():
    with pytest.raises(ToolError, match="Did you mean 'read_file'"):
        registry.resolve(["read_fil"])
    with pytest.raises(ToolError, match="Did you mean 'pytest'"):
        registry.resolve(["pytset"])


async def test_agent_created_with_seed_toolsets():
    agent = await Agent.create(provider=ScriptedProvider(["ok"]), tools=["pytest", "coverage"])
    assert {"run_tests", "run_coverage", "write_tests"} <= {t.name for t in agent.tools}


# -- fuzzed validation ------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.parametrize(
    "name", sorted(set(SEED_TOOLS) | {"edit_file", "run_shell", "git_log", "list_files"})
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_validation_never_crashes_and_never_lets_bad_types_through(name, data):
    tool: BaseTool = registry.get(name)
    properties = tool.schema["properties"]
    keys = st.sampled_from([*properties, "unexpected"])
    arguments = data.draw(st.dictionaries(keys, JSON, max_size=4))
    try:
        valid = tool.validate(arguments)
    except ToolError as exc:
        assert f"invalid arguments for tool {name!r}" in str(exc)
        return
    assert set(valid) <= set(properties)
    for required in tool.schema.get("required", []):
        assert valid.get(required) is not None


# -- agents driving real tools -------------------------------------------------------------


async def test_scripted_agent_reads_edits_and_tests(ws):
    provider = ScriptedProvider(
        [
            call("read_file", file_path="calc.py"),
            call("edit_file", file_path="tests/test_calc.py", old_text="== 3, ", new_text="== 2, "),
            call("run_tests"),
            "All 3 tests pass now.",
        ]
    )
    agent = await Agent.create(provider=provider, tools=["python"], workspace=ws, approval="auto")
    with EventBus.capture("tool.*") as events:
        assert await agent.run("Fix the failing test") == "All 3 tests pass now."
    assert "def add(a, b):" in provider.requests[1][-1].content
    report = provider.requests[3][-1].content
    assert '"passed": 3' in report and '"failed": 0' in report
    assert [e.type for e in events if e.type == "tool.execution"] == ["tool.execution"] * 3


async def test_model_tools_use_the_agent_they_run_under(ws):
    provider = ScriptedProvider(
        [
            call("write_tests", file_path="calc.py"),
            "```python\nfrom calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n```",
            call("suggest_improvements", file_path="calc.py", focus="naming"),
            "- rename `add`\n```python\ndef add_numbers(a, b):\n    return a + b\n```",
            "Wrote tests and reviewed.",
        ]
    )
    agent = await Agent.create(
        provider=provider,
        tools=["write_tests", "suggest_improvements"],
        workspace=ws,
        approval="auto",
    )
    with EventBus.capture("agent.start") as starts:
        assert await agent.run("Test and review calc.py") == "Wrote tests and reviewed."
    assert (
        (ws.root / "tests" / "test_calc.py")
        .read_text()
        .startswith("from calc import add\n\n\ndef test_add")
    )
    nested = [e for e in starts if e.agent and ":" in e.agent]
    assert [e.agent for e in nested] == ["agent:write_tests", "agent:suggest_improvements"]
    assert all(e.parent == starts[0].run_id for e in nested)
    asked = provider.requests[3][-1].content
    assert "focusing on naming" in asked and "def classify(n):" in asked and '"todos"' in asked
    review = provider.requests[4][-1].content
    assert "rename `add`" in review and "def add_numbers" in review


async def test_model_tool_without_an_agent_says_how_to_give_one(ws):
    result = await use(ws, "suggest_improvements", code="x = 1")
    assert (
        not result.success
        and "needs an agent" in result.error
        and "pipe(...)(agent" in result.error
    )


async def test_openai_protocol_agent_edits_a_real_file(ws, openai_server):
    openai_server.script(
        ToolCalls(
            [Call("write_file", {"file_path": "notes/todo.md", "content": "- ship it\n"}, id="c1")]
        ),
        ToolCalls([Call("read_file", {"file_path": "notes/todo.md"}, id="c2")]),
        Text("Saved the note."),
    )
    agent = await Agent.create(
        provider="openai",
        base_url=openai_server.url + "/v1",
        api_key="sk-test",
        max_retries=0,
        tools=["files"],
        workspace=ws.root,
        approval=lambda request: request.tool_name == "write_file",
    )
    assert await agent.run("Write a note") == "Saved the note."
    assert (ws.root / "notes" / "todo.md").read_text() == "- ship it\n"
    messages = openai_server.requests[-1].body["messages"]
    assert messages[-1] == {"role": "tool", "tool_call_id": "c2", "content": "- ship it\n"}
    tool_names = {t["function"]["name"] for t in openai_server.requests[0].body["tools"]}
    assert tool_names == {"read_file", "write_file", "edit_file", "list_files", "search_code"}
    await agent.cleanup()
