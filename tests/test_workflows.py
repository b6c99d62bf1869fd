"""agent.run_workflow: built-in and user workflows, step data flow, clear errors."""

from __future__ import annotations

import pytest

from victor import Agent, ConfigurationError
from victor.core.events import EventBus
from victor.testing import ScriptedProvider
from victor.workflows import list_workflows


async def test_builtin_code_review_runs_each_step_with_the_input_as_context():
    provider = ScriptedProvider(
        ["It adds login.", "Bug: no rate limit on line 3.", "- fix rate limit\nrequest changes"]
    )
    agent = await Agent.create(provider=provider)
    with EventBus.capture("workflow.step") as steps:
        result = await agent.run_workflow(workflow="code-review", input={"pr_number": 123})
    assert f"Review complete: {result}" == "Review complete: - fix rate limit\nrequest changes"
    assert list(result.steps) == ["understand", "review", "summary"]
    assert [e.data["step"] for e in steps] == ["understand", "review", "summary"]
    first, second = provider.requests[0][-1].content, provider.requests[1][-1].content
    assert '<context name="pr_number">\n123' in first
    assert "It adds login." in second  # an earlier step's output feeds the next prompt


async def test_user_workflow_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "haiku.toml").write_text(
        'description = "two steps"\n'
        '[[steps]]\nname = "draft"\nprompt = "Write a haiku about {topic}. Keep {this: as is}"\n'
        '[[steps]]\nname = "polish"\nprompt = "Polish: {previous}"\n'
    )
    assert "haiku" in list_workflows()
    provider = ScriptedProvider(["rough", "smooth"])
    agent = await Agent.create(provider=provider)
    assert await agent.run_workflow("haiku", {"topic": "tests"}) == "smooth"
    assert provider.requests[0][-1].content.startswith(
        "Write a haiku about tests. Keep {this: as is}"
    )
    assert provider.requests[1][-1].content.startswith("Polish: rough")


async def test_unknown_workflow_names_the_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    agent = await Agent.create(provider=ScriptedProvider([]))
    with pytest.raises(ConfigurationError, match="Unknown workflow 'nope'.*code-review"):
        await agent.run_workflow("nope")
