"""The pytest plugin: a cassette per test, --victor-record, and CI=true replaying only.
Each case runs pytest in a child process on a small test module of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULE = """
import os
import pytest
from tests.servers import OllamaServer, Text
from victor import Agent


@pytest.fixture(scope="module")
def server():
    with OllamaServer() as server:
        server.default_reply = Text(os.environ.get("ANSWER", "recorded answer"))
        yield server
    print("SERVER REQUESTS", len(server.requests))


async def ask(server, question):
    agent = await Agent.create(provider="ollama", base_url=server.url, max_retries=0)
    answer = await agent.run(question)
    await agent.cleanup()
    return answer


async def test_ask(victor_cassette, server):
    assert await ask(server, os.environ.get("QUESTION", "question")) == "recorded answer"


@pytest.mark.victor_cassette("shared.json")
async def test_marked(server):
    assert await ask(server, "marked question") == "recorded answer"
"""


def run_pytest(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "ANSWER", "QUESTION")}
    environ.update(env, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
               # the installed entry point, or this checkout's module when it is not installed
               "-p", "no:victor", "-p", "victor.pytest_plugin",
               "-o", "asyncio_mode=auto", "-W", "ignore::DeprecationWarning", *args]  # fmt: skip
    return subprocess.run(
        command, cwd=folder, env=environ, capture_output=True, text=True, timeout=120
    )


def test_record_then_replay_in_ci_then_miss_then_rerecord(tmp_path):
    (tmp_path / "test_mod.py").write_text(MODULE)
    first = run_pytest(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "SERVER REQUESTS 2" in first.stdout
    recorded = tmp_path / "cassettes" / "test_mod" / "test_ask.json"
    assert json.loads(recorded.read_text())["interactions"][0]["request"]["path"] == "/api/chat"
    assert (tmp_path / "cassettes" / "shared.json").exists()

    # CI replays only: the server would now answer differently and is never asked.
    replay = run_pytest(tmp_path, CI="true", ANSWER="live answer")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "SERVER REQUESTS 0" in replay.stdout

    # A changed question in CI is a miss, not a live request.
    miss = run_pytest(tmp_path, "-k", "test_ask", CI="true", QUESTION="another question")
    assert miss.returncode == 1
    assert "CassetteMiss" in miss.stdout and "differs at messages[0].content" in miss.stdout
    assert "SERVER REQUESTS 0" in miss.stdout

    # --victor-record wins over CI=true: re-recording asks the server again.
    again = run_pytest(tmp_path, "--victor-record=all", "-k", "test_ask", CI="true",
                       ANSWER="live answer")  # fmt: skip
    assert again.returncode == 1 and "SERVER REQUESTS 1" in again.stdout
    assert "live answer" in recorded.read_text()


def test_the_plugin_is_registered_by_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nvictor = "victor.pytest_plugin"' in text
