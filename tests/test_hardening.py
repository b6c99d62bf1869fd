"""Issue 10's hardening: bounded tool calls, writes that never go through a hard link,
and the smaller bugs, each shown the way a user would meet it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.timing import PROMPTLY
from victor import Agent, AgentTeam, ProviderError
from victor.core.messages import TextDelta
from victor.providers.base import Provider
from victor.teams import TeamError
from victor.testing import ScriptedProvider, call
from victor.tools import SubprocessExecutor, ToolContext, Workspace, registry
from victor.tools.context import using_context

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="process groups and sessions")


async def use(ws: Workspace, name: str, **arguments):
    with using_context(ToolContext(workspace=ws)):
        return await registry.get(name).run(arguments)


# -- 1. a tool call never outlives its bound -------------------------------------------


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@contextlib.contextmanager
def grandchild_pid(path: Path):
    """Yields a function reading the detached grandchild's pid; kills it at the end
    whatever the test did, so a failing test leaves no ``sleep 1000`` behind."""

    def read() -> int:
        for _ in range(100):
            if path.exists() and path.read_text().strip():
                return int(path.read_text())
            time.sleep(0.05)
        raise AssertionError("the command never started its grandchild")

    try:
        yield read
    finally:
        if path.exists() and path.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(path.read_text()), signal.SIGKILL)


def _detach(pidfile: Path, then: str = "") -> str:
    """Python code that starts ``sleep 1000`` in a session of its own (holding our
    pipes, as a background server would), writes its pid, then runs ``then``."""
    return (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n" + then
    )


@posix_only
@pytest.mark.timeout(30)
async def test_tool_timeout_bounds_a_command_whose_grandchild_detached(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    provider = ScriptedProvider([call("run_python", code=_detach(pidfile)), "done"])
    agent = await Agent.create(
        provider=provider, tools=["run_python"], workspace=tmp_path, approval="auto", tool_timeout=2
    )
    with grandchild_pid(pidfile) as pid:
        started = time.monotonic()
        assert await asyncio.wait_for(agent.run("start a server"), 20) == "done"
        # Bounded by the 2 s tool timeout plus PROMPTLY for a loaded machine to start Python
        # and stop it; the grandchild would sleep 1000 s.
        assert time.monotonic() - started < 2 + PROMPTLY
        assert not _alive(pid())


@posix_only
@pytest.mark.timeout(30)
async def test_timeout_kills_a_session_the_command_started(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    ws = Workspace(tmp_path)
    with grandchild_pid(pidfile) as pid:
        started = time.monotonic()
        result = await use(
            ws,
            "run_shell",
            command=["python", "-c", _detach(pidfile, "time.sleep(1000)")],
            timeout=1,
        )
        assert time.monotonic() - started < 1 + PROMPTLY  # the timeout, not the 1000 s sleep
        assert not result.success and result.metadata["timed_out"]
        assert "started" in result.error  # the output read before the timeout is kept
        assert not _alive(pid())


@posix_only
@pytest.mark.timeout(30)
async def test_exited_command_whose_output_stays_open_returns_after_the_grace(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    ws = Workspace(tmp_path)
    with grandchild_pid(pidfile) as pid:
        started = time.monotonic()
        result = await use(ws, "run_python", code=_detach(pidfile))
        # The 2 s output grace plus PROMPTLY for a loaded machine (Python's start, the kill);
        # the grandchild holding the output would sleep 1000 s.
        assert time.monotonic() - started < SubprocessExecutor.output_grace + PROMPTLY
        assert result.success and result.metadata["exit_code"] == 0  # the command's own code
        assert "started" in result.output and "kept its output open" in result.output
        assert not _alive(pid())


@posix_only
@pytest.mark.timeout(30)
async def test_background_process_that_let_go_of_the_output_is_left_running(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '1000'], start_new_session=True,\n"
        "    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
    )
    with grandchild_pid(pidfile) as pid:
        started = time.monotonic()
        result = await use(Workspace(tmp_path), "run_python", code=code)
        assert result.success and time.monotonic() - started < PROMPTLY  # no grace waited
        assert _alive(pid())  # deliberately detached: not the call's to stop


@posix_only
@pytest.mark.timeout(30)
async def test_cancelling_a_command_stops_it_and_its_sessions(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    ws = Workspace(tmp_path)
    with grandchild_pid(pidfile) as pid:
        task = asyncio.ensure_future(
            use(ws, "run_python", code=_detach(pidfile, "time.sleep(1000)"))
        )
        while not (pidfile.exists() and pidfile.read_text()):
            await asyncio.sleep(0.05)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert time.monotonic() - started < PROMPTLY
        assert not _alive(pid())


# -- 2. writes replace the file, never write through a hard link -----------------------


@pytest.fixture
def linked(tmp_path):
    """A workspace whose ``shared.py`` is a hard link to a file outside it (as uv and pnpm
    link package files from their cache)."""
    outside = tmp_path / "cache" / "shared.py"
    outside.parent.mkdir()
    outside.write_text("ORIGINAL = 1\n")
    outside.chmod(0o754)
    root = tmp_path / "project"
    root.mkdir()
    os.link(outside, root / "shared.py")
    return Workspace(root), outside


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("write_file", {"content": "CHANGED = 2\n"}),
        ("edit_file", {"old_text": "ORIGINAL = 1", "new_text": "CHANGED = 2"}),
        ("edit_file", {"patch": "@@ -1 +1 @@\n-ORIGINAL = 1\n+CHANGED = 2\n"}),
    ],
)
async def test_writes_through_a_hard_link_leave_the_outside_file_alone(linked, tool, arguments):
    ws, outside = linked
    result = await use(ws, tool, file_path="shared.py", **arguments)
    assert result.success, result.error
    assert outside.read_text() == "ORIGINAL = 1\n"  # the shared copy is untouched
    inside = ws.root / "shared.py"
    assert inside.read_text() == "CHANGED = 2\n"
    assert inside.stat().st_nlink == 1 and outside.stat().st_nlink == 1
    assert oct(inside.stat().st_mode & 0o777) == oct(0o754)  # the mode is kept
    assert sorted(p.name for p in ws.root.iterdir()) == ["shared.py"]  # no temp file left


async def test_reads_through_a_hard_link_show_the_files_content(linked):
    # The documented policy: a hard link is the file itself, so reading it is reading the
    # workspace's file (there is no "outside" copy to tell apart); only writes are kept in.
    ws, _ = linked
    assert (await use(ws, "read_file", file_path="shared.py")).output == "ORIGINAL = 1\n"
    assert "shared.py:1:" in (await use(ws, "search_code", pattern="ORIGINAL")).output


async def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    (tmp_path / "app.py").write_text("old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    result = await use(ws, "write_file", file_path="app.py", content="new\n")
    assert not result.success and "disk full" in result.error
    assert (tmp_path / "app.py").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.py"]


async def test_new_files_get_the_usual_permissions(tmp_path):
    ws = Workspace(tmp_path)
    assert (await use(ws, "write_file", file_path="pkg/new.py", content="x = 1\n")).success
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "pkg" / "new.py").stat().st_mode & 0o777 == 0o666 & ~umask


# -- 4. smaller bugs ---------------------------------------------------------------------


async def test_a_model_backed_tool_of_a_team_member_asks_the_teams_provider(tmp_path):
    lent = ScriptedProvider(
        [
            call("suggest_improvements", code="x=1\n"),
            "Name it.\n```python\nvalue = 1\n```",  # the tool's own question, answered
            "Rename x to value.",
        ]
    )
    member = Agent(role="reviewer", tools=["suggest_improvements"], workspace=tmp_path)
    team = AgentTeam.pipeline([member], provider=lent)
    result = await team.run("Improve x=1")
    assert result.answer == "Rename x to value."
    assert len(lent.requests) == 3  # the member's two requests and the tool's one
    assert "value = 1" in lent.requests[2][-1].content  # the tool result the member read


def _workflow_file(home: Path, name: str, text: str) -> None:
    folder = home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text)


STEPS = '[[steps]]\nname = "only"\nprompt = "Say hi."\n'


def test_a_workflow_file_with_its_own_name_key_is_a_configuration_error(tmp_path, monkeypatch):
    from victor import ConfigurationError
    from victor.workflows import load_workflow

    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    _workflow_file(tmp_path, "review", 'name = "code-review"\n' + STEPS)
    with pytest.raises(ConfigurationError, match="named by its file") as refused:
        load_workflow("review")
    assert "review.toml" in str(refused.value) and "code-review" in str(refused.value)
    _workflow_file(tmp_path, "same", 'name = "same"\n' + STEPS)  # agreeing is harmless
    assert load_workflow("same").name == "same"


class CutMidAnswer(ScriptedProvider):
    """Streams the first answer's first words, then the connection drops for good."""

    def __init__(self, replies):
        super().__init__(replies)
        self.cut = True

    async def _stream(self, messages, tools):
        async for event in super()._stream(messages, tools):
            yield event
            if self.cut and type(event) is TextDelta:
                self.cut = False
                raise ProviderError("the connection dropped mid-answer", provider=self.name)


def _two_stages(writer: Provider) -> AgentTeam:
    analyst = Agent(name="analyst", provider=ScriptedProvider(["notes"]))
    return AgentTeam.pipeline([analyst, Agent(name="writer", provider=writer)])


async def test_a_streamed_last_stage_is_not_retried_after_text_reached_the_caller():
    writer = CutMidAnswer(["First attempt words", "Second attempt words"])
    streamed: list[str] = []
    with pytest.raises(TeamError, match="not retried") as failed:
        async for text in _two_stages(writer).astream("Write it up"):
            streamed.append(text)
    assert "".join(streamed) == "First"  # what reached the caller, and nothing after it
    assert "connection dropped" in str(failed.value)
    assert writer.remaining == 1  # no second attempt was made


async def test_without_streaming_the_failed_last_stage_is_still_retried():
    writer = CutMidAnswer(["First attempt words", "Second attempt words"])
    result = await _two_stages(writer).run("Write it up")
    assert result.answer == "Second attempt words"
    assert result.details["stages"][-1]["attempts"] == 2


async def test_a_streamed_pipeline_answer_is_the_result_answer():
    writer = ScriptedProvider(["The whole answer, in words."])
    team = _two_stages(writer)
    streamed = "".join([text async for text in team.astream("Write it up")])
    assert streamed == team.last_result.answer == "The whole answer, in words."


def _killed_save(path: Path) -> None:
    """Run ``State.save(path)`` in a child process killed (SIGKILL) in the middle."""
    code = (
        "import os, signal, sys\n"
        "from victor import State\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        "State(data='x' * 10000).save(sys.argv[1])\n"
    )
    process = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60)
    assert process.returncode == -signal.SIGKILL


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@posix_only
def test_a_killed_save_leaves_a_temporary_file_the_next_save_removes(tmp_path):
    from victor import State

    target = tmp_path / "state.json"
    State(step=1).save(target)
    _killed_save(target)
    assert len(_temporaries(tmp_path)) == 1
    State(step=2).save(target)
    assert _temporaries(tmp_path) == []  # its process is gone: no need to wait for an age
    assert State.load(target)["step"] == 2


@posix_only
def test_the_next_load_removes_what_killed_saves_left(tmp_path):
    from victor import State

    target = tmp_path / "state.json"
    State(step=1).save(target)
    for _ in range(3):
        _killed_save(target)
    assert len(_temporaries(tmp_path)) == 3
    assert State.load(target)["step"] == 1  # the previous file is whole
    assert _temporaries(tmp_path) == []


@posix_only
def test_a_concurrent_live_save_keeps_its_temporary_file(tmp_path):
    from victor import State

    target = tmp_path / "state.json"
    State(step=1).save(target)
    # A save in another process, paused after writing (its file locked, its pid alive).
    code = (
        "import os, sys\n"
        "from victor import State\n"
        "fsync = os.fsync\n"
        "def pause(fd):\n"
        "    os.fsync = fsync\n"
        "    print('paused', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    fsync(fd)\n"
        "os.fsync = pause\n"
        "State(step=2).save(sys.argv[1])\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline() == "paused\n"
        (live,) = _temporaries(tmp_path)
        assert f".{writer.pid}." in live
        # And one of this process's saves in the instant before it locks its file.
        unlocked = tmp_path / f".state.json.{os.getpid()}.abcd1234.tmp"
        unlocked.write_text("{")
        State(step=3).save(target)
        assert State.load(target)["step"] == 3
        assert _temporaries(tmp_path) == sorted([live, unlocked.name])
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=30) == 0
    finally:
        writer.kill()
        writer.wait()
    assert State.load(target)["step"] == 2  # the paused save completed, its file renamed
    assert _temporaries(tmp_path) == [unlocked.name]


@posix_only
def test_a_live_writers_temporary_file_is_never_removed(tmp_path):
    import fcntl

    from victor import State
    from victor.core.state import STALE_AFTER

    target = tmp_path / "state.json"
    live = tmp_path / ".state.json.abcd1234.tmp"  # a concurrent save, paused mid-write
    other = tmp_path / ".state.json.bak.abcd1234.tmp"  # another file's leftover
    for path in (live, other):
        path.write_text("{")
        _age(path, STALE_AFTER * 10)
    with open(live, "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        State(step=1).save(target)
        assert live.exists() and other.exists()
    State(step=2).save(target)  # its writer is gone now: stale
    assert not live.exists() and other.exists()
