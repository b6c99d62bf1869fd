"""The README's ACP section is true: its transcript is a real session, re-recorded on
every run, and the Zed and marimo set-ups start commands victor accepts.

``victor acp`` serves the README's ``notes_app.py`` in a subprocess; a client of a few
lines writes JSON-RPC to its stdin, reads its stdout, and answers the permission request
with the "allow once" option it offers. The lines that crossed (``->`` to the agent, ``<-``
from it), with the session id and the project's path made stable, must be the README's.
``python -m tests.test_acp_transcript`` rewrites the README's copy after a change.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.test_readme import README, ROOT, Block, blocks
from victor.cli import build_parser

pytest.importorskip("acp", reason="needs the acp extra")

#: The project's path as the transcript shows it.
PROJECT = "/home/me/project"


def app_block() -> Block:
    (app,) = [b for b in blocks("python") if b.code.startswith("# notes_app.py")]
    return app


def transcript_block() -> Block:
    (transcript,) = [b for b in blocks("text") if b.code.startswith("-> ")]
    return transcript


class Wire:
    """A minimal ACP client on a ``victor acp`` subprocess, recording every line."""

    def __init__(self, agent: subprocess.Popen[str]) -> None:
        self.agent = agent
        self.lines: list[str] = []

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        self.lines.append("-> " + line)
        self.agent.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.agent.stdin.flush()  # type: ignore[union-attr]

    def request(self, id: int, method: str, params: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": id, "method": method, "params": params})

    def receive(self) -> dict[str, Any]:
        line = self.agent.stdout.readline()  # type: ignore[union-attr]
        assert line, "victor acp closed its stdout"
        self.lines.append("<- " + line.rstrip("\n"))
        return json.loads(line)

    def until(self, done: Any) -> dict[str, Any]:
        """Read until ``done(message)``; answer permission requests as a person would who
        picks "allow once"."""
        while True:
            message = self.receive()
            if message.get("method") == "session/request_permission":
                (allow,) = [
                    option
                    for option in message["params"]["options"]
                    if option["kind"] == "allow_once"
                ]
                outcome = {"outcome": "selected", "optionId": allow["optionId"]}
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": {"outcome": outcome}})
            elif done(message):
                return message


def record(app: str, workdir: Path) -> str:
    """One session with ``victor acp notes_app.py``, as the transcript shows it."""
    (workdir / "notes_app.py").write_text(app)
    project = workdir / "project"
    project.mkdir()
    with (workdir / "stderr.txt").open("w+") as stderr:
        agent = subprocess.Popen(
            [sys.executable, "-m", "victor", "acp", "notes_app.py"],
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        wire = Wire(agent)
        try:
            capabilities = {"fs": {"readTextFile": False, "writeTextFile": False}}
            wire.request(
                0, "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
            )
            wire.until(lambda m: m.get("id") == 0)
            wire.request(1, "session/new", {"cwd": str(project), "mcpServers": []})
            session = wire.until(lambda m: m.get("id") == 1)["result"]["sessionId"]
            wire.until(lambda m: _update(m) == "available_commands_update")
            prompt = [{"type": "text", "text": "Save a note that says hello."}]
            wire.request(2, "session/prompt", {"sessionId": session, "prompt": prompt})
            end = wire.until(lambda m: m.get("id") == 2)
        finally:
            agent.stdin.close()  # type: ignore[union-attr]
            agent.wait(timeout=30)
            stderr.seek(0)
            said = stderr.read()
        assert end.get("result", {}).get("stopReason") == "end_turn", (end, said)
    assert (project / "notes.txt").read_text() == "hello\n"  # the session really wrote it
    text = "\n".join(wire.lines)
    return text.replace(session, "sess_1").replace(json.dumps(str(project))[1:-1], PROJECT)


def _update(message: dict[str, Any]) -> str | None:
    return message.get("params", {}).get("update", {}).get("sessionUpdate")


@pytest.mark.timeout(120)
def test_the_readme_transcript_is_what_victor_acp_says(tmp_path):
    recorded = record(app_block().code, tmp_path)
    assert recorded == transcript_block().code.rstrip("\n"), (
        "the README's ACP transcript is out of date: `python -m tests.test_acp_transcript` "
        "rewrites it"
    )


def test_the_transcript_shows_a_whole_session():
    methods = [json.loads(line[3:]).get("method") for line in transcript_block().code.splitlines()]
    for method in ("initialize", "session/new", "session/prompt", "session/request_permission"):
        assert method in methods
    last = json.loads(transcript_block().code.splitlines()[-1][3:])
    assert last["result"]["stopReason"] == "end_turn"


def test_the_zed_and_marimo_set_ups_start_commands_victor_accepts():
    section = README[README.index("## victor in chat panels") : README.index("### A session on")]
    parser = build_parser()
    (zed,) = blocks("json", section)
    victor = json.loads(zed.code)["agent_servers"]["Victor"]
    assert victor["type"] == "custom" and victor["command"] == "victor"
    assert parser.parse_args(victor["args"]).command == "acp"
    (marimo,) = [
        shlex.split(line, comments=True)
        for block in blocks("bash", section)
        for line in block.code.splitlines()
        if line.startswith("npx stdio-to-ws ")
    ]
    program, *arguments = shlex.split(marimo[2])  # the stdio command stdio-to-ws runs
    assert program == "victor" and parser.parse_args(arguments).command == "acp"
    assert marimo[3:] == ["--port", "3017"]  # the port of marimo's first listed agent


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as workdir:
        fresh = record(app_block().code, Path(workdir))
    old = transcript_block().code.rstrip("\n")
    (ROOT / "README.md").write_text(README.replace(old, fresh, 1))
    print(f"README.md: the transcript has {len(fresh.splitlines())} lines")
