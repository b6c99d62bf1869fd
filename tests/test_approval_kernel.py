"""approval="ask" in a real ipykernel, driven over the Jupyter protocol as a front end would.

A button click is a ``comm_msg`` on the shell channel; these tests send exactly that (the
message JupyterLab's widget manager sends for a click) while the cell is still running, on
both ways a run happens in a notebook: a sync cell (``agent.run_sync``, ``%%victor``: the
main thread blocked in ``run_sync``) and top-level ``await`` (the cell awaiting on the
kernel's loop). The input-box fallback is answered on the stdin channel, and a cell run
headless (``allow_stdin`` off, as under nbclient and nbval) is refused with the reason.
"""

from __future__ import annotations

import os
import queue
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

from victor.notebook.approval import _comms_reach_awaiting_cells

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)

SETUP = """
%load_ext victor
from pathlib import Path
from victor import Agent
from victor.core.events import EventBus
from victor.testing import ScriptedProvider, call
from victor.tools import Ask

def writer(workspace, *turns, **options):
    '''An agent whose model asks for the given write_file calls (a list: one turn), then ends.'''
    replies = [
        [call("write_file", file_path=f, content=f"{f} text\\n") for f in turn] for turn in turns
    ]
    return Agent(
        provider=ScriptedProvider([*replies, "done"]),
        tools=["write_file"],
        workspace=workspace,
        **options,
    )

def results(agent):
    return [m.content for m in agent.last_run.messages if m.role == "tool"]
"""


@dataclass
class Execution:
    """What one execute request produced, as a front end saw it."""

    msg_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream"))

    @property
    def errors(self) -> list[str]:
        return [f"{m['content']['ename']}: {m['content']['evalue']}" for m in self.of_type("error")]

    def cards(self) -> list[str]:
        """The approval card's plain text as last shown (display updates applied)."""
        shown: dict[str, str] = {}
        for m in self.of_type("display_data", "update_display_data"):
            data, transient = m["content"]["data"], m["content"].get("transient", {})
            if "victor-approval" in data.get("text/html", ""):
                shown[transient.get("display_id", m["header"]["msg_id"])] = data["text/plain"]
        return list(shown.values())


class KernelDriver:
    """A kernel and a client; ``execute`` plays the front end: it clicks buttons as they
    appear and answers input requests."""

    def __init__(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        env.pop("VICTOR_STREAM", None)
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(REPO))

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    @classmethod
    @contextmanager
    def started(cls, setup: str) -> Iterator[KernelDriver]:
        """A kernel that has run ``setup`` without an error; shut down afterwards."""
        driver = cls()
        try:
            ran = driver.run(setup)
            assert not ran.errors, ran.errors
            yield driver
        finally:
            driver.close()

    def send(self, code: str, *, allow_stdin: bool = True) -> Execution:
        return Execution(self.kc.execute(textwrap.dedent(code), allow_stdin=allow_stdin))

    def click(self, comm_id: str) -> None:
        """What the widget manager sends when a Button is clicked."""
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", content))

    def wait(
        self,
        *executions: Execution,
        press: Callable[[dict[str, str]], str | None] | None = None,
        answer: str | None = None,
        timeout: float = 60,
    ) -> None:
        """Read until every execution is idle. ``press`` gets the buttons shown so far
        (label -> comm id) and returns the label to click (once per button row);
        ``answer`` replies to an input request."""
        by_id = {e.msg_id: e for e in executions}
        pending = set(by_id)
        buttons: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"no idle in {timeout} s: {executions}"
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                msg = None
            if msg is not None:
                parent = msg["parent_header"].get("msg_id")
                if parent in by_id:
                    by_id[parent].messages.append(msg)
                content = msg["content"]
                if msg["msg_type"] == "comm_open":
                    state = content["data"].get("state", {})
                    if state.get("_model_name") == "ButtonModel":
                        buttons[state["description"]] = content["comm_id"]
                        if press is not None and len(buttons) == 3:
                            choice = press(buttons)
                            if choice is not None:
                                self.click(buttons[choice])
                            buttons = {}
                if (
                    msg["msg_type"] == "status"
                    and content["execution_state"] == "idle"
                    and parent in pending
                ):
                    pending.discard(parent)
            try:
                request = self.kc.get_stdin_msg(timeout=0.01)
            except queue.Empty:
                pass
            else:
                assert answer is not None, f"unexpected input request: {request['content']}"
                self.kc.input(answer)
        for execution in executions:
            while execution.reply is None:
                reply = self.kc.get_shell_msg(timeout=10)
                if reply["parent_header"].get("msg_id") in by_id:
                    by_id[reply["parent_header"]["msg_id"]].reply = reply

    def run(self, code: str, **options: Any) -> Execution:
        allow_stdin = options.pop("allow_stdin", True)
        execution = self.send(code, allow_stdin=allow_stdin)
        self.wait(execution, **options)
        return execution


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelDriver]:
    with KernelDriver.started(SETUP) as driver:
        yield driver


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path


def test_a_sync_cell_waits_for_the_approve_click(kernel, workspace):
    """agent.run_sync blocks the kernel's main thread: the click still gets through."""
    seen: list[dict[str, str]] = []
    execution = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["notes.md"])
        with EventBus.capture("tool.approval_decided") as decided:
            print(agent.run_sync("write the notes"))
        print(results(agent), decided[0].data["policy"], decided[0].data["via"])
        """,
        press=lambda buttons: seen.append(dict(buttons)) or "Approve",
    )
    assert not execution.errors, execution.errors
    assert list(seen[0]) == ["Approve", "Deny", "Always for write_file in this run"]
    assert (workspace / "notes.md").read_text() == "notes.md text\n"
    assert "Created notes.md" in execution.stdout and "ask widget" in execution.stdout
    (card,) = execution.cards()
    assert card.startswith("[Approved]") and "+notes.md text" in card  # the diff was shown


@pytest.mark.parametrize(
    "kernel_reads_comms",
    [
        pytest.param(
            True,
            marks=pytest.mark.skipif(
                not _comms_reach_awaiting_cells(),  # the kernel runs this test's ipykernel
                reason="ipykernel < 7.4 (the newest for Python 3.10) cannot hand an awaiting "
                "cell a comm message; forcing it would hang the module's kernel",
            ),
        ),
        False,
    ],
)
def test_an_awaiting_cell_gets_the_deny_click(kernel, workspace, kernel_reads_comms):
    """Top-level await: the cell awaits on the kernel's loop. ipykernel 7.4+ hands it the
    comm message itself; before 7.4 (simulated here) victor blocks the loop and reads it."""
    execution = kernel.run(
        f"""
        import victor.notebook.approval as approval
        original = approval._comms_reach_awaiting_cells
        approval._comms_reach_awaiting_cells = lambda: {kernel_reads_comms}
        try:
            agent = writer({str(workspace)!r}, ["evil.py"])
            print(await agent.run("write it"))
            print(results(agent))
        finally:
            approval._comms_reach_awaiting_cells = original
        """,
        press=lambda buttons: "Deny",
    )
    assert not execution.errors, execution.errors
    assert not (workspace / "evil.py").exists()
    assert "the user refused the call to write_file" in execution.stdout
    (card,) = execution.cards()
    assert card.startswith("[Denied]")


def test_always_approves_the_rest_of_the_run_and_only_that_run(kernel, workspace):
    clicks = []
    execution = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["a.txt"], ["b.txt", "c.txt"])
        agent.run_sync("write three files")
        print(results(agent))
        """,
        press=lambda buttons: clicks.append(1) or "Always for write_file in this run",
    )
    assert not execution.errors, execution.errors
    assert len(clicks) == 1  # asked once; the next turn's two calls were allowed by "always"
    assert sorted(p.name for p in workspace.iterdir()) == ["a.txt", "b.txt", "c.txt"]
    assert execution.cards()[0].startswith("[Approved for every write_file call in this run]")
    # A new run asks again.
    again = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["d.txt"])
        agent.run_sync("one more")
        """,
        press=lambda buttons: clicks.append(1) or "Deny",
    )
    assert len(clicks) == 2 and not (workspace / "d.txt").exists(), again.errors


def test_cells_queued_behind_a_waiting_card_run_after_it_in_order(kernel, workspace):
    """Run all: the next cells' execute requests arrive while the card waits. They are set
    aside, not run inside the waiting cell, and run afterwards, in order."""
    first = kernel.send(
        f"""
        agent = writer({str(workspace)!r}, ["x.txt"])
        agent.run_sync("write x")
        print("first done")
        """
    )
    second = third = None

    def press(buttons):
        nonlocal second, third
        second = kernel.send(f"print('second', Path({str(workspace / 'x.txt')!r}).exists())")
        third = kernel.send("print('third')")
        # Sent on the same shell socket before the click, so they reach the waiting
        # kernel before it: the click cannot overtake them.
        return "Approve"

    kernel.wait(first, press=press)
    kernel.wait(second, third)
    assert first.stdout == "first done\n"
    assert second.stdout == "second True\n" and third.stdout == "third\n"
    counts = [e.reply["content"]["execution_count"] for e in (first, second, third)]
    assert counts == sorted(counts) and len(set(counts)) == 3, counts


def test_a_victor_cell_asks_too(kernel, workspace):
    kernel.run(f"agent = writer({str(workspace)!r}, ['m.txt'])")
    execution = kernel.run("%%victor --agent agent -o reply\nwrite m", press=lambda b: "Approve")
    assert not execution.errors, execution.errors
    assert (workspace / "m.txt").read_text() == "m.txt text\n"
    assert execution.cards()[0].startswith("[Approved]")


def test_no_answer_within_the_timeout_is_a_no(kernel, workspace):
    execution = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["late.txt"], approval=Ask(timeout=0.5))
        agent.run_sync("write late")
        print(results(agent))
        """,
        press=lambda buttons: None,  # nobody clicks
    )
    assert not execution.errors, execution.errors
    assert not (workspace / "late.txt").exists()
    assert "no one answered within 0.5 s" in execution.stdout
    (card,) = execution.cards()
    assert card.startswith("[Denied: no answer within 0.5 s]")


@pytest.mark.parametrize("reply, written", [("y", True), ("n", False)])
def test_the_input_box_fallback(kernel, workspace, reply, written):
    execution = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["in.txt"], approval=Ask(channel="input"))
        agent.run_sync("write it")
        print(results(agent))
        """,
        answer=reply,
    )
    assert not execution.errors, execution.errors
    assert (workspace / "in.txt").exists() is written
    assert not execution.of_type("comm_open")  # no widgets
    (card,) = execution.cards()
    assert card.startswith("[Approved]" if written else "[Denied]")


def test_a_headless_run_is_refused_with_the_reason(kernel, workspace):
    """nbclient, nbval and papermill run cells with allow_stdin off: no one can answer."""
    execution = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["ci.txt"])
        agent.run_sync("write it")
        print(results(agent))
        """,
        allow_stdin=False,
    )
    assert not execution.errors, execution.errors
    assert not (workspace / "ci.txt").exists() and not execution.of_type("comm_open")
    assert "no one can answer here (the notebook runs without a person" in execution.stdout
    assert "nbclient, nbval or papermill" in execution.stdout


def test_an_interrupt_while_the_card_waits_refuses_and_stops_the_cell(kernel, workspace):
    """The stop button (SIGINT) while a sync cell's card waits: the call is not run, the
    card says so, and the interrupt reaches the cell (it is not swallowed as an answer)."""
    execution = kernel.run(
        f"""
        agent = writer({str(workspace)!r}, ["stopped.txt"])
        agent.run_sync("write it")
        print("after the run")
        """,
        press=lambda buttons: kernel.km.interrupt_kernel(),  # instead of a click
    )
    assert any(error.startswith("KeyboardInterrupt") for error in execution.errors), execution
    assert "after the run" not in execution.stdout
    assert not (workspace / "stopped.txt").exists()
    (card,) = execution.cards()
    assert card.startswith("[Not run: the run was interrupted]")
