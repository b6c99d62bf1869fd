"""The interactive timeline's Python side: bars built from the same Layout as the static
chart, each with its detail (scrubbed, cut short), and live batches that carry only what
changed. In a real kernel (nbclient): the widget and the static form in one output, live
batches as comm messages, and nbconvert's HTML showing the static chart."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
from comm import DummyComm

from victor import Agent, AgentTeam
from victor.notebook.timeline import WIDGET_VIEW, TeamTimeline
from victor.notebook.timeline_layout import Layout
from victor.notebook.timeline_widget import DETAIL_LIMIT, TimelineWidget, bar_dicts, esm_path
from victor.testing import FunctionProvider, call
from victor.tools import tool

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-0123456789abcdefghijklmnop"


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"found {query}: " + "x" * (DETAIL_LIMIT + 500)


def tool_team() -> AgentTeam:
    def reply(messages, tools):
        if len(messages) <= 2 and tools:
            return call("lookup", query="haiku rules")
        return "Five seven five."

    provider = FunctionProvider(reply)
    members = [Agent(provider=provider, tools=[lookup], name=n) for n in ("writer", "editor")]
    return AgentTeam.pipeline(members)


class RecordingComm(DummyComm):
    """Where the widget's messages go (a kernel's comm in a notebook): kept as sent."""

    def __init__(self) -> None:
        super().__init__(target_name="jupyter.widget")
        self.sent: list[dict] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if msg_type == "comm_msg":
            self.sent.append(data)


def test_bars_carry_the_calls_text_scrubbed_and_cut_short(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    result = asyncio.run(tool_team().run(f"Write a haiku (key {SECRET})"))
    bars = bar_dicts(Layout(result.events, deterministic=False))
    runs = [b for b in bars if b["kind"] == "run"]
    models = [b for b in bars if b["kind"] == "model"]
    tools = [b for b in bars if b["kind"] == "tool"]
    assert [b["lane"] for b in runs] == ["writer", "editor"]
    assert "Write a haiku" in runs[0]["detail"]["prompt"]
    assert SECRET not in json.dumps(bars)  # scrubbed everywhere
    assert runs[0]["detail"]["answer"] == "Five seven five."
    # A model call gets its run's prompt; the last one also the answer it gave.
    assert models[-1]["detail"]["answer"] == "Five seven five."
    assert "Write a haiku" in models[0]["detail"]["prompt"] and models[0]["tokens"] > 0
    assert json.loads(tools[0]["detail"]["arguments"]) == {"query": "haiku rules"}
    cut = tools[0]["detail"]["result"]
    assert cut.startswith("found haiku rules") and cut.endswith("more characters)")
    assert len(cut) < DETAIL_LIMIT + 40
    assert len({b["id"] for b in bars}) == len(bars)
    assert all(b["end"] is not None and b["end"] >= b["start"] for b in bars)


def test_live_batches_send_only_new_and_changed_bars_and_the_end_syncs_all():
    team = tool_team()
    timeline = TeamTimeline(team)  # follows the team's bus, as display=True does
    widget = TimelineWidget(Layout([], False))
    widget.comm = RecordingComm()
    # The harshest batching: one batch after every event the timeline draws from.
    for pattern in ("agent.start", "agent.complete", "provider.*", "tool.*", "team.*"):
        team.bus.subscribe(pattern, lambda event: widget.push(timeline._build()))
    asyncio.run(team.run("Write a haiku"))
    batches = [m["content"] for m in widget.comm.sent if m.get("method") == "custom"]
    assert batches and all(b["type"] == "bars" for b in batches)
    assert [b["seq"] for b in batches] == list(range(1, len(batches) + 1))
    final = bar_dicts(timeline._build())
    # Each batch holds what changed (a bar that began, or ended), never the whole chart.
    assert max(len(b["bars"]) for b in batches) <= 2 < len(final)
    replay: dict = {}
    for b in batches:
        replay.update((bar["id"], bar) for bar in b["bars"])
    assert [replay[b["id"]] for b in final] == final  # the batches add up to the chart
    assert widget.messages == len(batches) and widget.bytes > 0
    widget.comm.sent.clear()
    widget.sync(timeline._build())
    assert [m["method"] for m in widget.comm.sent] == ["update"]  # one state sync at the end
    assert widget.bars == final and widget.seq == len(batches)


def test_the_front_end_ships_inside_the_wheel(tmp_path):
    """The wheel maps widgets/ to victor/widgets/ (hatch force-include); from such an
    installed layout, esm_path() finds timeline.js inside the package."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include == {"widgets": "victor/widgets"}
    assert esm_path() == REPO / "widgets" / "timeline.js"  # the source checkout
    assert "anywidget>=0.9" in config["project"]["optional-dependencies"]["notebook"]
    try:
        from hatchling.builders.wheel import WheelBuilder
    except ImportError:  # no hatchling here: lay out the wheel's files as it would
        site = tmp_path / "site"
        site.mkdir()
        subprocess.run(["cp", "-r", str(REPO / "victor"), str(site)], check=True)
        subprocess.run(["cp", "-r", str(REPO / "widgets"), str(site / "victor")], check=True)
    else:  # pragma: no cover - where hatchling is installed, the real wheel
        wheel = WheelBuilder(str(REPO)).build_standard(str(tmp_path))
        site = tmp_path / "site"
        zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from victor.notebook.timeline_widget import esm_path; print(esm_path())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(site)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert out.stdout.strip() == str(site / "victor" / "widgets" / "timeline.js")


LIVE_CELLS = [
    """
    from victor import Agent, AgentTeam
    from victor.testing import FunctionProvider
    import json, time
    def reply(messages, tools):
        time.sleep(0.05)
        if "Vote for" in messages[-1].content:
            return json.dumps({"vote": "A", "reason": "best"})
        return "42"
    team = AgentTeam.consensus([f"m{i}" for i in range(6)], provider=FunctionProvider(reply))
    %load_ext victor
    """,
    "result = await team.run('Pick a number', display=True)",
    "team.run_sync('Pick a number', display=True);",
    "result.timeline()",
    "%%victor --agent team -o picked\nPick a number",
    "print(type(picked).__name__, picked.answer)",
]
#: The cells that run the team live: with ``await``, ``run_sync`` and from ``%%victor``.
LIVE = (1, 2, 4)


def test_in_a_real_kernel_the_widget_shows_beside_its_static_form(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in LIVE_CELLS]
    messages: dict[int, list] = {}

    class Recording(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            messages.setdefault(cell_index, []).append(msg)
            return super().process_message(msg, cell, cell_index)

    Recording(nb, timeout=60, kernel_name="python3").execute()
    for index in (1, 2, 3, 4):
        # Two outputs: the static form (kept, and shown wherever the widget is not), then
        # the widget's view (whose front end hides the static one while it lives).
        static, view, *answer = (
            o.data for o in nb.cells[index].outputs if o.output_type == "display_data"
        )
        assert set(static) == {"text/html", "text/plain"} and WIDGET_VIEW in view, index
        data = static
        assert "consensus team" in data["text/plain"] and "completed" in data["text/plain"]
        assert "data:image/svg+xml;base64" in data["text/html"]
    # %%victor then shows the team's answer, and -o keeps the TeamResult.
    assert answer == [{"text/markdown": "42", "text/plain": "42"}]
    assert nb.cells[5].outputs[0]["text"] == "TeamResult 42\n"
    for index in LIVE:  # live: batches of bars as custom comm messages, far fewer than events
        custom = [
            m["content"]["data"]["content"]
            for m in messages[index]
            if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "custom"
        ]
        assert custom and all(c["type"] == "bars" for c in custom), index
        sent = sum(len(c["bars"]) for c in custom)
        assert sent < 3 * 6 * 4, sent  # each bar a few times at most, never the whole chart
        updates = [m for m in messages[index] if m["msg_type"] == "update_display_data"]
        assert len(updates) == 1  # the final state, once: its static form is the saved one
        assert "completed" in updates[0]["content"]["data"]["text/plain"]
    # JupyterLab saves no widget state by default (saveState: false): nbconvert's HTML then
    # shows the static chart, once per output, and no widget placeholder.
    nb.metadata.pop("widgets", None)
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert html.count('<img alt="consensus team') == 4
    assert WIDGET_VIEW not in html
    (tmp_path / "exported.html").write_text(html)
