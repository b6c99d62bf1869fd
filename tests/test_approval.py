"""Approval: tools that write or run ask the agent's policy first, after validation, and a
refusal is a tool result the model reads. Also the run-wide budget of failed tool calls."""

from __future__ import annotations

import asyncio

import pytest

from victor import Agent, ConfigurationError, LimitExceededError, ToolError
from victor.core.events import EventBus
from victor.testing import ScriptedProvider, call
from victor.tools import ApprovalDecision, ApprovalRequest, Ask, tool
from victor.tools.builtin.python import require_module


def write_call(content: str = "hello\n"):
    return call("write_file", file_path="out.txt", content=content)


async def run_agent(tmp_path, approval, *replies, tools=("write_file",)):
    provider = ScriptedProvider([*replies, "done"])
    agent = await Agent.create(
        provider=provider, tools=list(tools), workspace=tmp_path, approval=approval
    )
    with EventBus.capture("tool.*") as events:
        await agent.run("write it")
    results = [m for request in provider.requests[1:] for m in request[-1:] if m.role == "tool"]
    return results, events


async def test_without_a_policy_the_call_is_refused_with_a_clear_result(tmp_path):
    results, events = await run_agent(tmp_path, None, write_call())
    assert not (tmp_path / "out.txt").exists()
    assert results[0].is_error and "write_file needs approval" in results[0].content
    assert "approval='auto'" in results[0].content
    assert [e.type for e in events] == [
        "tool.approval_requested",
        "tool.approval_decided",
        "tool.error",
    ]
    decided = events[1].data
    assert (decided["approved"], decided["policy"], decided["tool_name"]) == (
        False,
        "None",
        "write_file",
    )


async def test_auto_approves_and_never_refuses(tmp_path):
    results, events = await run_agent(tmp_path, "auto", write_call())
    assert (tmp_path / "out.txt").read_text() == "hello\n" and not results[0].is_error
    assert events[1].data["approved"] is True and events[-1].type == "tool.execution"
    (tmp_path / "out.txt").unlink()
    results, _ = await run_agent(tmp_path, "never", write_call())
    assert not (tmp_path / "out.txt").exists() and "policy is 'never'" in results[0].content


async def test_sync_callback_sees_validated_arguments(tmp_path):
    seen: list[ApprovalRequest] = []

    def approve_small_files(request: ApprovalRequest) -> bool:
        seen.append(request)
        return len(request.arguments["content"]) < 10

    results, _ = await run_agent(
        tmp_path, approve_small_files, write_call("tiny"), write_call("x" * 50)
    )
    assert [r.is_error for r in results] == [False, True]
    assert (tmp_path / "out.txt").read_text() == "tiny"
    assert [r.tool_name for r in seen] == ["write_file", "write_file"]
    assert (
        seen[0].arguments == {"file_path": "out.txt", "content": "tiny"}
        and seen[0].agent == "agent"  # no name, no role: not the provider's name
    )
    assert str(seen[0]) == "write_file(file_path='out.txt', content='tiny')"
    assert "the user refused the call to write_file" in results[1].content


async def test_async_callback_and_decision_with_reason(tmp_path):
    async def reviewer(request):
        await asyncio.sleep(0)
        return ApprovalDecision(False, "not on Fridays")

    results, events = await run_agent(tmp_path, reviewer, write_call())
    assert "refused the call to write_file: not on Fridays" in results[0].content
    assert events[1].data["policy"] == "reviewer"


@pytest.mark.parametrize("answer", [None, "yes", 1, []])
async def test_anything_but_true_refuses(tmp_path, answer):
    results, _ = await run_agent(tmp_path, lambda request: answer, write_call())
    assert results[0].is_error and not (tmp_path / "out.txt").exists()


async def test_a_failing_callback_fails_closed(tmp_path):
    def broken(request):
        raise RuntimeError("approval service down")

    results, _ = await run_agent(tmp_path, broken, write_call())
    assert "approval callback failed (RuntimeError: approval service down)" in results[0].content
    assert not (tmp_path / "out.txt").exists()


async def test_malformed_calls_are_never_put_to_the_policy(tmp_path):
    asked = []
    bad_types = call("write_file", file_path="out.txt", content=42)
    missing = call("write_file", file_path="out.txt")
    results, events = await run_agent(tmp_path, asked.append, bad_types, missing)
    assert asked == []
    assert (
        "invalid arguments for tool 'write_file'" in results[0].content
        and "content" in results[0].content
    )
    assert "content" in results[1].content
    assert "tool.approval_requested" not in [e.type for e in events]


async def test_approval_can_depend_on_the_arguments(tmp_path):
    (tmp_path / "m.py").write_text("import os\n")
    asked = []
    results, _ = await run_agent(
        tmp_path,
        lambda r: asked.append(r.arguments) or False,
        call("run_linter", select=["F401"]),
        call("run_linter", select=["F401"], fix=True),
        tools=["run_linter"],
    )
    assert '"count": 1' in results[0].content  # a plain lint needs no approval
    assert asked == [{"path": ".", "select": ["F401"], "fix": True}] and results[1].is_error
    assert (tmp_path / "m.py").read_text() == "import os\n"


async def test_a_failing_requires_approval_rule_asks(tmp_path):
    @tool(requires_approval=lambda args: args["target"].startswith("prod"))
    def deploy(target: str | None = None) -> str:
        """Deploy somewhere."""
        return f"deployed {target}"

    provider = ScriptedProvider([call("deploy", target="staging"), call("deploy"), "done"])
    agent = await Agent.create(provider=provider, tools=[deploy], approval="never")
    await agent.run("deploy")
    assert provider.requests[1][-1].content == "deployed staging"
    assert (
        "refused" in provider.requests[2][-1].content
    )  # None.startswith raised: ask, and never says no


async def test_tools_that_only_read_never_ask(tmp_path):
    (tmp_path / "a.txt").write_text("A")
    results, events = await run_agent(
        tmp_path, None, call("read_file", file_path="a.txt"), tools=["read_file"]
    )
    assert results[0].content == "A" and [e.type for e in events] == ["tool.execution"]


def test_invalid_policy_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="approval='sometimes' is invalid: use 'ask'"):
        Agent(provider=ScriptedProvider([]), approval="sometimes")
    with pytest.raises(ConfigurationError, match=r"Ask\(timeout=0\) is invalid"):
        Ask(timeout=0)
    with pytest.raises(ConfigurationError, match="Ask.channel='email'. is unknown: use one of"):
        Ask(channel="email")  # type: ignore[arg-type]
    assert Agent(provider=ScriptedProvider([])).approval == "ask"  # the default
    assert repr(Ask(30, channel="input")) == "Ask(timeout=30, channel='input')"


async def test_callbacks_see_what_a_write_or_edit_would_change(tmp_path):
    (tmp_path / "notes.md").write_text("# Notes\n- milk\n")
    seen: list[ApprovalRequest] = []
    results, _ = await run_agent(
        tmp_path,
        lambda request: seen.append(request) or True,
        call("edit_file", file_path="notes.md", old_text="milk", new_text="oat milk"),
        call("write_file", file_path="new/a.py", content="print('hi')"),
        call("edit_file", file_path="notes.md", old_text="bread", new_text="rye"),
        call("edit_file", file_path="../outside.txt", old_text="a", new_text="b"),
        tools=["files"],
    )
    previews = [r.preview for r in seen]
    assert previews[0].splitlines()[:2] == ["--- a/notes.md", "+++ b/notes.md"]
    assert "-- milk\n+- oat milk\n" in previews[0]
    assert previews[1].startswith("--- /dev/null\n+++ b/new/a.py\n@@ -0,0 +1 @@\n+print('hi')")
    assert "no preview" in previews[2] and "old_text" in previews[2]  # the edit would fail
    assert "no preview" in previews[3] and "outside" in previews[3]
    assert [r.run_id for r in seen] == [seen[0].run_id] * 4 and seen[0].run_id.startswith("run_")
    # The first preview was made before its edit ran, which then did what it showed.
    assert (tmp_path / "notes.md").read_text() == "# Notes\n- oat milk\n"
    assert [r.is_error for r in results] == [False, False, True, True]


def test_a_request_displays_as_the_card_without_buttons():
    request = ApprovalRequest(
        "write_file",
        {"file_path": "x.html", "content": "<script>alert(1)</script>"},
        agent="writer",
        preview="--- /dev/null\n+++ b/x.html\n@@ -0,0 +1 @@\n+<script>alert(1)</script>\n",
    )
    bundle = request._repr_mimebundle_()
    html = bundle["text/html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>writer</b> wants to call <code>write_file</code>" in html
    assert '<span style="color:#1a7f37">+&lt;script&gt;' in html  # an added line, in green
    assert "button" not in html.lower()
    plain = bundle["text/plain"]
    assert plain.startswith("[Approval needed] writer wants to call write_file:")
    assert 'file_path = "x.html"' in plain and "content =" not in plain  # the diff shows it


async def test_failed_tool_calls_have_a_run_wide_budget(tmp_path):
    provider = ScriptedProvider([write_call(), write_call(), write_call(), "never reached"])
    agent = await Agent.create(
        provider=provider,
        tools=["write_file"],
        workspace=tmp_path,
        max_tool_errors=2,
        approval="never",
    )
    with pytest.raises(LimitExceededError, match="after 3 failed tool calls"):
        await agent.run("keep trying")
    assert provider.remaining == 1


def test_missing_runtime_tools_name_the_package():
    with pytest.raises(ToolError, match="pip install no-such-linter"):
        require_module("no_such_linter_module", "no-such-linter")
