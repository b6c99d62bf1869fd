"""Composition: pipe, parallel and branch, their data flow, failures and events, in both
of the seed's forms (bare await, and a pipeline called with an agent and inputs)."""

from __future__ import annotations

import asyncio

import pytest

from tests.timing import Rendezvous
from victor import Agent, ToolError
from victor.core.events import EventBus
from victor.testing import ScriptedProvider, call
from victor.tools import CompositionResult, Workspace, branch, current_context, parallel, pipe, tool

AUTH = "def login(user, password):\n    # TODO: hash passwords\n    return password == 'secret'\n"
IMPROVED = "def login(user: str, password: str) -> bool:\n    return check_hash(user, password)\n"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "auth.py").write_text(AUTH)
    return tmp_path


def agent_in(path, *replies, **kwargs):
    return Agent(provider=ScriptedProvider(list(replies)), workspace=path, **kwargs)


async def test_seed_pipeline_reads_analyzes_suggests_and_writes(project):
    reply = f"- hash the password\n```python\n{IMPROVED}```"
    provider = ScriptedProvider([reply])
    agent = await Agent.create(provider=provider, workspace=project)
    pipeline = pipe("read_file", "analyze_code", "suggest_improvements", "write_file")
    with EventBus.capture("compose.*") as events:
        result = await pipeline(agent, file_path="auth.py")
    assert isinstance(result, CompositionResult) and result.success, result.error
    assert (project / "auth.py").read_text() == IMPROVED
    assert list(result.steps) == ["read_file", "analyze_code", "suggest_improvements", "write_file"]
    assert result["read_file"].output == AUTH
    assert result["analyze_code"].output["todos"][0]["text"] == "hash passwords"
    assert result["suggest_improvements"].output["suggestions"] == "- hash the password"
    assert (
        result.output == "Replaced auth.py (2 lines, 83 characters)"
        and str(result) == result.output
    )
    prompt = provider.requests[0][-1].content  # the analysis and the code reached the model
    assert '"todos"' in prompt and "return password == 'secret'" in prompt
    assert [e.type for e in events] == ["compose.start", *["compose.step"] * 4, "compose.complete"]
    assert [e.data["step"] for e in events[1:5]] == list(result.steps)
    assert all(e.agent == agent.name for e in events)


async def test_bare_await_runs_without_agent_or_inputs(project, monkeypatch):
    monkeypatch.chdir(project)
    result = await pipe("list_files", lambda files: len(files))
    assert result.output == 1


async def test_bare_await_missing_input_says_how_to_pass_it():
    with pytest.raises(
        ToolError, match=r"read_file, needs file_path: .*pipe\(\.\.\.\)\(agent, file_path="
    ):
        await pipe("read_file", "analyze_code", "suggest_improvements")


async def test_inputs_reach_every_step_that_takes_them_and_typos_are_errors(project):
    agent = agent_in(project)
    with pytest.raises(ToolError, match=r"takes the input\(s\) encoding; .*file_path"):
        await pipe("read_file", "analyze_code")(agent, file_path="auth.py", encoding="utf8")
    ok = await pipe("read_file", "analyze_code")(agent, file_path="auth.py")
    assert ok.success and ok.output["file"] == "auth.py"  # file_path reached analyze_code too


async def test_data_flow_spreads_dicts_and_binds_by_type():
    @tool
    def make(n: int) -> dict:
        """Make a record."""
        return {"name": "x" * n, "size": n}

    @tool
    def describe(size: int, name: str, label: str = "") -> str:
        """Describe a record."""
        return f"{label}{name}:{size}"

    @tool
    def shout(count: int = 1, text: str = "") -> str:
        """Shout text."""
        return text.upper() * count

    result = await pipe(make, describe, shout)(n=3, label="L-")
    assert result.output == "L-XXX:3"  # dict spread by name; str went to the first str param


async def test_callables_sync_and_async_get_the_previous_output():
    async def double(x):
        await asyncio.sleep(0)
        return x * 2

    result = await pipe(lambda a, b: a + b, double, str)(a=2, b=3)
    assert result.output == "10" and list(result.steps) == ["<lambda>", "double", "str"]


async def test_a_failing_step_stops_the_pipe_and_is_named(project):
    ran = []
    result = await pipe("read_file", lambda text: 1 / 0, ran.append)(
        agent_in(project), file_path="auth.py"
    )
    assert not result.success and ran == []
    assert (
        result.error
        == "pipe step 2 (<lambda>) failed: <lambda> raised ZeroDivisionError: division by zero"
    )
    assert result.metadata["failed_step"] == "<lambda>" and result["read_file"].success


async def test_parallel_runs_concurrently_and_reports_every_failure():
    together = Rendezvous(3)

    @tool
    async def nap() -> str:
        """Rest once all three naps are running."""
        await together.meet()
        return "rested"

    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    result = await parallel(nap, nap, nap, explode)  # the naps meet: they run concurrently
    assert not result.success and result.error.startswith("1 of 4 parallel steps failed: explode:")
    assert "kaboom" in result.error and result.metadata["failed_steps"] == ["explode"]
    assert result.output == {"nap": "rested", "nap#2": "rested", "nap#3": "rested"}
    assert not result["explode"].success


async def test_seed_parallel_checks_on_a_real_project(project):
    (project / "test_auth.py").write_text(
        "from auth import login\n\ndef test_login():\n    assert login('a', 'secret')\n"
    )
    (project / "ruff.toml").write_text(
        '[lint]\nselect = ["F"]\n'
    )  # the project's own settings apply
    ws = Workspace(project, env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})  # see test_builtin_tools
    results = await parallel("run_tests", "run_linter", "run_coverage")(agent_in(ws))
    assert results.success, results.error
    assert results.output["run_tests"]["passed"] == 1
    assert results.output["run_linter"]["count"] == 0
    assert results.output["run_coverage"]["files"]["auth.py"]["percent"] == 100.0


@pytest.mark.parametrize("has_tests, expected", [(True, "tests ran"), (False, "tests written")])
async def test_branch_with_the_seeds_zero_argument_condition(has_tests, expected):
    result = await branch(
        condition=lambda: has_tests,
        if_true=lambda **_: "tests ran",
        if_false=lambda **_: "tests written",
    )
    assert result.output == expected and result.metadata["condition"] is has_tests


async def test_branch_async_condition_on_the_input_inside_a_pipe():
    async def is_big(n):
        return n > 10

    decide = branch(is_big, if_true=lambda n: f"big {n}", if_false=lambda n: f"small {n}")
    assert (await pipe(lambda x: x * 4, decide)(x=3)).output == "big 12"
    assert (await pipe(lambda x: x, decide)(x=3)).output == "small 3"
    skip = await pipe(lambda x: x, branch(False, if_true=lambda n: "never"))(x=7)
    assert skip.success and skip.output == 7  # no if_false: the input passes through


async def test_branch_condition_failure_is_reported():
    def broken():
        raise ValueError("cannot tell")

    result = await pipe(lambda: 1, branch(broken, if_true=str))()
    assert (
        not result.success and "the branch condition raised ValueError: cannot tell" in result.error
    )


async def test_seed_branch_with_tool_names(project):
    (project / "test_auth.py").write_text(
        "from auth import login\n\ndef test_login():\n    assert login('a', 'secret')\n"
    )
    ws = Workspace(project, env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    result = await branch(
        condition=lambda: any(project.glob("test_*.py")),
        if_true="run_tests",
        if_false="write_tests",
    )(agent_in(ws))
    assert result.success and list(result.steps) == ["run_tests"] and result.output["passed"] == 1


async def test_nested_compositions_and_events():
    inner = parallel(lambda **kw: kw["n"] + 1, lambda **kw: kw["n"] * 10)
    with EventBus.capture("compose.*") as events:
        result = await pipe(inner, lambda outputs: sorted(outputs.values()))(n=4)
    assert result.output == [5, 40]
    starts = [e for e in events if e.type == "compose.start"]
    assert [e.data["kind"] for e in starts] == ["pipe", "parallel"]
    assert starts[1].parent == starts[0].run_id


async def test_bad_compositions_are_clear_errors(project):
    with pytest.raises(ToolError, match="at least one step"):
        pipe()
    with pytest.raises(ToolError, match="cannot be a composition step"):
        pipe(42)
    with pytest.raises(ToolError, match="Did you mean 'read_file'"):
        await pipe("read_fil")(file_path="x")
    with pytest.raises(ToolError, match="'pytest' is a toolset"):
        await pipe("pytest")
    with pytest.raises(ToolError, match="pass an Agent"):
        await pipe("read_file")("auth.py")
    with pytest.raises(ToolError, match="bool or a function"):
        branch("yes", if_true=str)


async def test_steps_prefer_the_agents_own_tools(project):
    @tool(name="read_file")
    def fake_read(file_path: str) -> str:
        """A read_file of the agent's own."""
        return f"own:{file_path}"

    agent = agent_in(project, tools=[fake_read])
    assert (await pipe("read_file")(agent, file_path="auth.py")).output == "own:auth.py"


async def test_a_tool_can_run_a_pipeline_under_its_agent(project):
    @tool
    async def summarize(file_path: str) -> str:
        """Summarise a file's functions."""
        analysis = await pipe("read_file", "analyze_code")(file_path=file_path)
        assert current_context().agent is not None
        return ", ".join(f["name"] for f in analysis.output["functions"])

    provider = ScriptedProvider([call("summarize", file_path="auth.py"), "It has login."])
    agent = await Agent.create(provider=provider, tools=[summarize], workspace=project)
    assert await agent.run("Summarise auth.py") == "It has login."
    assert provider.requests[1][-1].content == "login"
