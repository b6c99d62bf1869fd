"""TeamTimeline: built from events alone, static SVG/HTML and text, deterministic mode,
live batched updates in an IPython shell."""

from __future__ import annotations

import base64
import json
import re
import sys
from types import SimpleNamespace

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from victor import Agent, AgentTeam
from victor.core.events import EventBus
from victor.notebook.timeline import WIDGET_VIEW, TeamTimeline
from victor.testing import FunctionProvider, ScriptedProvider, call
from victor.tools import tool
from victor.tools.approval import Ask


def by_role(routes):
    def reply(messages, tools):
        role = messages[0].content.removeprefix("Your role: ").split(".")[0]
        answer = routes[role]
        return answer(messages[-1].content) if callable(answer) else answer

    return FunctionProvider(reply)


def consensus_team(**options):
    def voter(answer, choice):
        return lambda p: (
            json.dumps({"vote": choice, "reason": "best"}) if "Vote for" in p else answer
        )

    provider = by_role({"a": voter("42", "A"), "b": voter("42", "A"), "c": voter("41", "B")})
    return AgentTeam.consensus(["a", "b", "c"], provider=provider, **options)


def hierarchical_team():
    plan = {
        "subtasks": [
            {"id": 1, "assignee": "dev", "task": "code"},
            {"id": 2, "assignee": "qa", "task": "tests"},
        ]
    }

    def lead(prompt):
        if "Plan how" in prompt:
            return json.dumps(plan)
        return '{"decision": "accept"}' if "Decide" in prompt else "Shipped."

    provider = by_role({"lead": lead, "dev": "code done", "qa": lambda p: ValueError("qa is down")})
    return AgentTeam.hierarchical("lead", ["dev", "qa"], provider=provider, review=False)


@pytest.fixture
def shell():
    """A real in-process IPython shell, so display handles exist; removed afterwards."""
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


async def test_lanes_bars_and_markers_come_from_the_events():
    result = await consensus_team().run("6 * 7?")
    timeline = TeamTimeline(result.events)
    assert timeline.lanes == ["a", "b", "c"]
    kinds = [m.kind for m in timeline.markers]
    assert kinds.count("round") == 2 and kinds.count("vote") == 3
    votes = sorted((m.lane, m.label) for m in timeline.markers if m.kind == "vote")
    assert votes == [("a", "A"), ("b", "A"), ("c", "B")]
    models = [b for b in timeline.bars if b.kind == "model"]
    assert len(models) == result.requests == 6
    assert sum(b.tokens for b in models) == result.usage.total_tokens
    assert all(b.end is not None and b.end >= b.start for b in timeline.bars)


async def test_the_timeline_rebuilt_from_events_equals_the_transcript():
    team = AgentTeam.pipeline(["a", "b"], provider=by_role({"a": "first", "b": "second"}))
    result = await team.run("Go")
    runs = result.timeline().runs
    assert [(r.lane, r.result, r.run_id) for r in runs] == [
        (t.agent, t.content, t.run_id) for t in result.transcript
    ]
    # also with a failed member: the error is on the run bar
    team = hierarchical_team()
    with pytest.raises(Exception, match="qa is down") as err:
        await team.run("Ship it")
    partial = err.value.result
    runs = TeamTimeline(partial.events).runs
    assert [(r.lane, r.error) for r in runs] == [
        (t.agent, None if t.ok else str(t.error)) for t in partial.transcript
    ]
    assert "failed: the team could not finish" in TeamTimeline(partial.events).summary()


def chart_svg(page: str) -> str:
    """The SVG inside the page's chart image."""
    match = re.search(r"<img src='data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)'", page)
    assert match, "the chart is an <img> of an SVG"
    return base64.b64decode(match.group(1)).decode()


async def test_static_bundle_is_an_svg_image_html_and_text_without_script():
    result = await consensus_team(name="<b>voters</b>").run("6 * 7?")
    bundle = TeamTimeline(result)._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    page = bundle["text/html"]
    # No inline <svg>: JupyterLab strips it from reopened (untrusted) notebooks, and
    # keeps <img> data URIs, tables and <details>.
    assert "<svg" not in page and "<details>" in page
    svg = chart_svg(page)
    assert svg.startswith("<svg") and "<title>" in svg
    for text in (page, svg):
        assert "<script" not in text.lower()
        assert "http://" not in text.replace("http://www.w3.org", "")
    assert "&lt;b&gt;voters&lt;/b&gt;" in page and "<b>voters</b>" not in page
    assert bundle["text/plain"].startswith(
        "TeamTimeline: consensus team '<b>voters</b>' · completed"
    )
    assert re.search(r"\d+\.\d\ds", svg)  # real relative times on the axis


async def test_deterministic_mode_gives_the_same_output_every_run():
    outputs = []
    for _ in range(2):
        result = await consensus_team().run("6 * 7?")
        timeline = result.timeline(deterministic=True)
        outputs.append((timeline.summary(), timeline.to_html()))
    assert outputs[0] == outputs[1]
    summary, page = outputs[0]
    assert "run_" not in page and "team_" not in page and "evt_" not in page
    assert " s<" not in page and "steps" in summary
    assert summary.splitlines()[1].startswith("  a |")


async def test_tool_calls_and_errors_are_bars():
    @tool
    def fetch(url: str) -> str:
        """Fetch a URL.

        Args:
            url: The URL.
        """
        raise ConnectionError("host unreachable")

    scout = Agent(
        role="scout",
        tools=[fetch],
        provider=ScriptedProvider([call("fetch", url="http://x"), "could not fetch"]),
    )
    team = AgentTeam.pipeline([scout])
    result = await team.run("Look")
    timeline = result.timeline()
    tools = [b for b in timeline.bars if b.kind == "tool"]
    assert [(b.lane, b.label) for b in tools] == [("scout", "tool fetch")]
    assert "host unreachable" in tools[0].error
    assert "1 tool call" in timeline.summary() and "1 error" in timeline.summary()


async def test_live_timeline_follows_a_team_with_batched_updates(shell):
    # two stages streaming slowly: ~80 chunks over ~0.8 s
    team = AgentTeam.pipeline(
        [
            Agent(name=name, provider=ScriptedProvider(["word " * 40], chunk_delay=0.01))
            for name in ("a", "b")
        ]
    )
    timeline = TeamTimeline(team)
    with capture_output() as captured, EventBus.capture() as events:
        timeline.show()
        await team.run("Write")
        timeline.close()
    assert len(captured.outputs) == timeline.updates_sent  # the first display + updates
    assert 2 <= timeline.updates_sent < len(events) / 2
    assert "completed" in captured.outputs[-1].data["text/plain"]
    assert chart_svg(captured.outputs[-1].data["text/html"]).startswith("<svg")


async def test_a_live_timeline_shown_twice_updates_both_outputs(shell):
    team = AgentTeam.pipeline([Agent(name="a", provider=ScriptedProvider(["done"]))])
    timeline = TeamTimeline(team)
    with capture_output() as captured:
        timeline.show()
        timeline.show()  # another cell shows the same live timeline
        await team.run("Write")
        timeline.close()
    first, second = captured.outputs[:2]
    assert "completed" not in first.data["text/plain"]
    # every update goes to both outputs, in pairs, and both end on the finished run
    updates = captured.outputs[2:]
    assert updates and len(updates) % 2 == 0 and len(captured.outputs) == timeline.updates_sent
    assert updates[-1].data == updates[-2].data
    assert "completed" in updates[-1].data["text/plain"]


async def test_run_with_display_shows_a_live_timeline(shell):
    team = consensus_team()
    with capture_output() as captured:
        result = await team.run("6 * 7?", display=True)
    assert result.answer == "42"
    assert "completed" in captured.outputs[-1].data["text/plain"]


async def test_run_with_display_outside_a_notebook_prints_the_summary(capsys):
    await consensus_team().run("6 * 7?", display=True)
    printed = capsys.readouterr().out
    assert printed.startswith("TeamTimeline: consensus team 'consensus' · completed")


class Ipykernel7Shells:
    """ipykernel 7's shell-channel manager: the main-shell inbox the approval card reads."""

    def get_shell_channel_to_subshell_pair(self, subshell_id):
        raise AssertionError("only looked for, never called here")


#: What each front end's kernel sees in its environment (VS Code's Jupyter extension starts
#: the kernel from its extension host). None of it decides: the kernel and the packages do.
FRONT_ENDS = {
    "jupyterlab": {"JPY_PARENT_PID": "4242", "JPY_SESSION_NAME": "/home/u/team.ipynb"},
    "vscode": {
        "VSCODE_PID": "4242",
        "VSCODE_CWD": "/home/u",
        "VSCODE_IPC_HOOK_CLI": "/tmp/vscode-ipc.sock",
        "ELECTRON_RUN_AS_NODE": "1",
        "PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING": "1",
    },
}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize(
    "kernel, missing, card, widget",
    [
        ("ipykernel 7", None, "widget", True),
        ("ipykernel 7", "ipywidgets", "input", False),
        ("ipykernel 6", None, "input", False),
        # The one difference: the timeline's front end is an anywidget.
        ("ipykernel 7", "anywidget", "widget", False),
    ],
)
async def test_the_widget_shows_where_the_approval_card_has_buttons(
    shell, monkeypatch, front_end, kernel, missing, card, widget
):
    """Where widgets work is decided once, for the approval card (approval.widgets_work: the
    kernel reads its main shell's inbox, ipywidgets installed), and the timeline follows it
    in JupyterLab, Notebook 7 and VS Code alike."""
    result = await consensus_team().run("6 * 7?")
    for name, value in FRONT_ENDS[front_end].items():
        monkeypatch.setenv(name, value)
    thread = SimpleNamespace(manager=Ipykernel7Shells())
    fake = SimpleNamespace(_allow_stdin=True)
    if kernel == "ipykernel 7":
        fake.shell_channel_thread = thread
    monkeypatch.setattr(shell, "kernel", fake, raising=False)
    if missing:
        monkeypatch.setitem(sys.modules, missing, None)
    assert Ask().where() == (card, "")
    with capture_output() as captured:
        TeamTimeline(result).show()
    shown = [output.data for output in captured.outputs]
    assert "consensus team" in shown[0]["text/plain"]  # the static form, always
    assert [WIDGET_VIEW in data for data in shown[1:]] == ([True] if widget else [])
