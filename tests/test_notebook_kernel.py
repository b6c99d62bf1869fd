"""Notebooks executed on a real ipykernel with nbclient: streaming display messages,
saved outputs, interrupting a running cell, and asyncio.run() inside a cell.

Every message the kernel publishes is recorded as the front end receives it, so the
throttle is checked on the wire, not inside victor.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.servers import Hang, Text
from tests.timing import PROMPTLY, STALL

REPO = Path(__file__).resolve().parents[1]
LONG_ANSWER = "## Streaming\n\n" + " ".join(f"word{i}" for i in range(300))


class RecordingClient(NotebookClient):
    """nbclient's client, keeping every IOPub message per cell index."""

    def __init__(self, nb, **kwargs):
        super().__init__(nb, timeout=60, kernel_name="python3", **kwargs)
        self.messages: dict[int, list[dict]] = {}

    def process_message(self, msg, cell, cell_index):
        self.messages.setdefault(cell_index, []).append(msg)
        return super().process_message(msg, cell, cell_index)

    def of_type(self, cell_index, *types):
        return [m for m in self.messages.get(cell_index, []) if m["msg_type"] in types]


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(s).strip()) for s in sources]
    return nb


@pytest.fixture(autouse=True)
def kernel_env(monkeypatch):
    """The kernel is a child process: it inherits this environment."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv("VICTOR_STREAM", raising=False)


def _sent_at(msg) -> float:
    date = msg["header"]["date"]
    return (date if isinstance(date, datetime) else datetime.fromisoformat(str(date))).timestamp()


def test_streaming_cell_in_a_real_kernel():
    nb = notebook(
        f"""
        %load_ext victor
        from victor import Agent
        from victor.testing import ScriptedProvider
        LONG = {LONG_ANSWER!r}
        provider = ScriptedProvider([LONG, "Short follow-up."], chunk_delay=0.005)
        agent = await Agent.create(provider=provider)
        """,
        """
        %%victor --agent agent -o reply
        Write a long answer
        """,
        """
        import asyncio

        async def main():
            helper = await Agent.create(provider=ScriptedProvider(["nested loops work"]))
            return await helper.run("hello")

        print(asyncio.run(main()))
        """,
        """
        print(reply == LONG, [m.role for m in agent.history])
        """,
        """
        answer = await agent.run("and now?", display=True)
        """,
    )
    client = RecordingClient(nb, resources={"metadata": {"path": str(REPO)}})
    client.execute()

    # 1. Several in-place updates while streaming, but no more than ~10 a second.
    first = client.of_type(1, "display_data")
    updates = client.of_type(1, "update_display_data")
    assert len(first) == 1
    assert len(updates) >= 3, "the text should grow visibly while it streams"
    # Coalesced, not one per token (~300): a rate measured against the stream's own span,
    # so a slow machine that stretches the stream does not break it.
    span = _sent_at(updates[-1]) - _sent_at(first[0])
    assert len(updates) <= 10 * span + 3, f"{len(updates)} updates in {span:.2f} s"
    display_id = first[0]["content"]["transient"]["display_id"]
    assert {u["content"]["transient"]["display_id"] for u in updates} == {display_id}
    partial = [u["content"]["data"]["text/plain"] for u in updates[:-1]]
    assert any(len(LONG_ANSWER) // 4 < len(p) < len(LONG_ANSWER) for p in partial)

    # 2. The saved notebook holds the final render: the whole answer and the footer.
    (saved,) = nb.cells[1].outputs
    assert saved.output_type == "display_data"
    final = saved.data["text/markdown"]
    assert final.startswith(LONG_ANSWER)
    assert "scripted/test-model" in final and "tokens" in final

    # 3. asyncio.run() inside a cell works once the extension is loaded.
    assert nb.cells[2].outputs[0].text == "nested loops work\n"

    # 4. The cell's answer landed in the variable and the agent's conversation.
    assert nb.cells[3].outputs[0].text == "True ['user', 'assistant']\n"

    # 5. agent.run(display=True) with top-level await, on the kernel's own loop.
    shown = client.of_type(4, "display_data", "update_display_data")
    assert shown and shown[-1]["content"]["data"]["text/markdown"].startswith("Short follow-up.")


async def test_interrupt_cancels_the_request_on_the_server(anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-kernel-test")
    anthropic_server.script(
        Text("First answer."),
        Hang(seconds=STALL, text="I am thinking about this for a very long time"),
        Text("Third answer."),
    )
    nb = notebook(
        f"""
        %load_ext victor
        %victor config provider=anthropic model=claude-test base_url={anthropic_server.url}
        """,
        """
        %%victor
        first question
        """,
        """
        %%victor
        second question, which hangs
        """,
        """
        %%victor
        third question
        """,
    )
    client = RecordingClient(nb, resources={"metadata": {"path": str(REPO)}})
    async with client.async_setup_kernel():
        await client.async_execute_cell(nb.cells[0], 0)
        await client.async_execute_cell(nb.cells[1], 1)
        running = asyncio.create_task(client.async_execute_cell(nb.cells[2], 2))
        deadline = time.monotonic() + 20
        shown = ("display_data", "update_display_data")
        while not any("thinking" in str(m["content"]) for m in client.of_type(2, *shown)):
            assert time.monotonic() < deadline, "the hanging reply never started streaming"
            assert not running.done(), running
            await asyncio.sleep(0.05)
        started = time.monotonic()
        await client.km.interrupt_kernel()
        with pytest.raises(CellExecutionError) as failure:
            await running
        assert time.monotonic() - started < PROMPTLY  # not the STALL of the server
        assert "KeyboardInterrupt" in str(failure.value)
        assert await asyncio.to_thread(anthropic_server.wait_disconnects, 1, PROMPTLY)

        final = nb.cells[2].outputs[0].data["text/markdown"]
        assert "I am thinking" in final and "**Interrupted:**" in final

        # The conversation stayed consistent: the third turn follows the first.
        await client.async_execute_cell(nb.cells[3], 3)
    third = anthropic_server.requests[-1].body
    assert [(m["role"]) for m in third["messages"]] == ["user", "assistant", "user"]
    assert "Third answer." in nb.cells[3].outputs[0].data["text/markdown"]
    assert "sk-ant-kernel-test" not in nbformat.writes(nb)


def test_team_run_sync_shows_its_timeline_in_its_own_cell():
    # run_sync works on victor's loop thread; the timeline must still be displayed (and
    # updated) by the cell's own thread, so its output belongs to that cell.
    nb = notebook(
        """
        import asyncio
        from victor import AgentTeam, run_sync
        from victor.testing import ScriptedProvider
        run_sync(asyncio.sleep(0))  # victor's loop thread starts in this cell
        """,
        """
        team = AgentTeam.pipeline(["writer", "editor"], name="desk")
        team.provider = ScriptedProvider(["draft", "final text"], chunk_delay=0.01)
        result = team.run_sync("Write", display=True)
        """,
        """
        print(result.answer)
        """,
    )
    client = RecordingClient(nb, resources={"metadata": {"path": str(REPO)}})
    client.execute()
    # The static form (followed by display id), then the widget's view (batches by comm).
    shown, view = client.of_type(1, "display_data")
    assert "application/vnd.jupyter.widget-view+json" in view["content"]["data"]
    assert client.of_type(1, "comm_open"), "the widget's state reaches it from this cell"
    updates = client.of_type(1, "update_display_data")
    assert updates, "the timeline follows the run"
    display_id = shown["content"]["transient"]["display_id"]
    assert {u["content"]["transient"]["display_id"] for u in updates} == {display_id}
    assert "team 'desk' · completed" in updates[-1]["content"]["data"]["text/plain"]
    for other in (0, 2):
        assert not client.of_type(
            other, "display_data", "update_display_data", "comm_open", "comm_msg"
        )
    saved, _view = nb.cells[1].outputs
    assert "team 'desk' · completed" in saved.data["text/plain"]
    assert nb.cells[2].outputs[0].text == "final text\n"
