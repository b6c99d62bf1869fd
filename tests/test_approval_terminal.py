"""approval="ask" in a terminal: a prompt on stderr, the answer read from the TTY.

Each test runs a child process whose stdin, stdout and stderr are a pseudo-terminal, reads
the prompt from the master side and types the answer, as a person would. Where stdin is
not a terminal, the call is refused with the reason.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.servers import Text, ToolCalls
from victor import Agent
from victor.cli import main
from victor.core.events import EventBus
from victor.testing import ScriptedProvider, call
from victor.tools import Ask

REPO = Path(__file__).resolve().parents[1]
PROMPT = b"[a]lways for write_file in this run"

pytestmark = pytest.mark.timeout(60)


class Terminal:
    """A child process on a pseudo-terminal; ``expect`` reads, ``type`` answers."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        child_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        }
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=child_env
        )
        os.close(slave)
        self.output = b""

    def expect(self, text: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"{text!r} not seen; output: {self.output!r}"
            if not self._read(0.1) and self.process.poll() is not None:
                raise AssertionError(f"exited before {text!r}; output: {self.output!r}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None or self._read(0.05):
            assert time.monotonic() < deadline, f"still running; output: {self.output!r}"
        os.close(self.master)
        return self.process.returncode, self.output.decode(errors="replace").replace("\r\n", "\n")

    def _read(self, wait: float) -> bool:
        if not select.select([self.master], [], [], wait)[0]:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed its side
            return False
        self.output += data
        return bool(data)


def victor_run(tmp_path: Path, server, *extra: str) -> Terminal:
    """``victor run`` in ``tmp_path`` (its workspace) against the Anthropic protocol server."""
    return Terminal(
        [
            sys.executable,
            "-m",
            "victor.cli",
            "run",
            "-p",
            "anthropic",
            "--tools",
            "write_file",
            *extra,
            "Write",
            "the",
            "notes",
        ],  # fmt: skip
        tmp_path,
        {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-pty-test"},
    )


def script_write(server) -> None:
    server.script(
        ToolCalls([("write_file", {"file_path": "notes.md", "content": "# Notes\n"})]),
        Text("Wrote the notes."),
    )


def test_victor_run_asks_on_the_terminal_and_y_runs_the_tool(anthropic_server, tmp_path):
    (tmp_path / "notes.md").write_text("# Old\n")
    script_write(anthropic_server)
    terminal = victor_run(tmp_path, anthropic_server)
    terminal.expect(PROMPT)
    terminal.type("y")
    code, output = terminal.finish()
    assert code == 0, output
    assert (tmp_path / "notes.md").read_text() == "# Notes\n"
    assert "agent wants to call write_file:" in output  # not the provider's name
    assert "-# Old\n+# Notes" in output  # the diff of what would change
    assert output.rstrip().endswith("Wrote the notes.")
    tool_result = anthropic_server.requests[-1].body["messages"][-1]["content"][0]
    assert "Replaced notes.md" in tool_result["content"]


def script(tmp_path: Path, body: str) -> Terminal:
    """A Python script on the terminal, with ``workspace`` set to ``tmp_path``."""
    code = textwrap.dedent(
        """
        import asyncio, sys
        from victor import Agent
        from victor.testing import ScriptedProvider, call
        from victor.tools import Ask
        workspace = sys.argv[1]
        """
    ) + textwrap.dedent(body)
    return Terminal([sys.executable, "-c", code, str(tmp_path)], tmp_path)


def test_n_refuses_and_the_model_reads_why(tmp_path):
    terminal = script(
        tmp_path,
        """
        agent = Agent(provider=ScriptedProvider([call("write_file", file_path="x", content="x"),
                      "done"]), tools=["write_file"], workspace=workspace)
        asyncio.run(agent.run("write"))
        print("model read:", agent.last_run.messages[-2].content)
        """,
    )
    terminal.expect(PROMPT)
    terminal.type("maybe")  # not an answer: asked again
    terminal.expect(b"Please answer y (yes), n (no) or a (always")
    terminal.type("n")
    code, output = terminal.finish()
    assert code == 0, output
    assert not (tmp_path / "x").exists()
    assert "model read: Error: the user refused the call to write_file" in output


def test_a_script_with_run_sync_asks_always_once(tmp_path):
    """agent.run_sync in a plain script: the run is on victor's loop thread, the prompt too."""
    terminal = script(
        tmp_path,
        """
        turns = [[call("write_file", file_path=n, content=n) for n in names]
                 for names in (["a.txt"], ["b.txt", "c.txt"])]
        agent = Agent(provider=ScriptedProvider([*turns, "done"]), tools=["write_file"],
                      workspace=workspace)
        print("answer:", agent.run_sync("write three files"))
        """,
    )
    terminal.expect(PROMPT)
    terminal.type("a")
    code, output = terminal.finish()
    assert code == 0, output
    assert output.count("Allow write_file?") == 1  # the later calls were allowed by "always"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "c.txt"]
    assert "answer: done" in output


def test_no_answer_in_time_is_a_no(tmp_path):
    terminal = script(
        tmp_path,
        """
        agent = Agent(provider=ScriptedProvider([call("write_file", file_path="x", content="x"),
                      "done"]), tools=["write_file"], workspace=workspace,
                      approval=Ask(timeout=0.5))
        asyncio.run(agent.run("write"))
        print("model read:", agent.last_run.messages[-2].content)
        """,
    )
    code, output = terminal.finish()
    assert code == 0, output
    assert "(no answer in 0.5 s: no)" in output and "(no answer: refused)" in output
    assert "model read: Error: no one answered within 0.5 s" in output
    assert not (tmp_path / "x").exists()


def test_without_a_terminal_victor_run_refuses_and_says_why(
    anthropic_server, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-cli-test")
    monkeypatch.chdir(tmp_path)  # the workspace
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - not a terminal
    script_write(anthropic_server)
    assert main(["run", "-p", "anthropic", "--tools", "write_file", "Write"]) == 0
    assert capsys.readouterr().out == "Wrote the notes.\n"
    assert not (tmp_path / "notes.md").exists()
    tool_result = str(anthropic_server.requests[-1].body["messages"][-1]["content"][0]["content"])
    assert "no one can answer here (not in a notebook, and stdin is not a terminal)" in tool_result
    # --approval auto: the same run writes the file.
    script_write(anthropic_server)
    assert main(["run", "-p", "anthropic", "--tools", "write_file", "--approval", "auto", "W"]) == 0
    assert (tmp_path / "notes.md").read_text() == "# Notes\n"


async def test_in_process_without_a_tty_the_refusal_names_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - closed by pytest
    agent = await Agent.create(
        provider=ScriptedProvider([call("write_file", file_path="f", content="x"), "done"] * 2),
        tools=["write_file"],
        workspace=tmp_path,
    )
    assert agent.approval == "ask"  # the default
    with EventBus.capture("tool.approval_decided") as decided:
        await agent.run("write")
    assert decided[0].data["approved"] is False
    assert (decided[0].data["policy"], decided[0].data["via"]) == ("ask", "nobody")
    assert "stdin is not a terminal" in decided[0].data["reason"]
    assert not (tmp_path / "f").exists()
    # Forcing a channel that cannot work here refuses too, saying which.
    agent.approval = Ask(channel="widget")
    with EventBus.capture("tool.approval_decided") as decided:
        await agent.run("write")
    assert "not in a Jupyter kernel" in decided[0].data["reason"]
