"""Commands in the workspace: stdin reaches them, bad arguments and unknown commands are
clear errors. Checked against deliberate breaks (stdin dropped in Workspace.run or in the
executor, a validation removed, command-not-found turned into a crash)."""

from __future__ import annotations

import os
import sys

import pytest

from victor import ToolError
from victor.tools import SubprocessExecutor, ToolContext, Workspace, registry
from victor.tools.context import using_context

pytestmark = pytest.mark.timeout(60)
REVERSE = [sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"]


async def test_stdin_reaches_the_command(tmp_path):
    result = await Workspace(tmp_path).run(REVERSE, stdin="hello\nworld")
    assert result.ok and result.stdout == "dlrow\nolleh\n"


async def test_without_stdin_the_command_reads_end_of_input_at_once(tmp_path):
    result = await Workspace(tmp_path).run(REVERSE, timeout=30)
    assert result.ok and result.stdout == "\n" and not result.timed_out


async def test_run_shell_passes_stdin(tmp_path):
    with using_context(ToolContext(workspace=Workspace(tmp_path))):
        result = await registry.get("run_shell").run(
            {
                "command": ["python", "-c", "import sys; print(sys.stdin.read().upper())"],
                "stdin": "piped text",
            }
        )
    assert result.success and result.output.endswith("PIPED TEXT")


@pytest.mark.parametrize("argv", ["echo hi", [], ["echo", 1], None, ("echo", None)])
async def test_bad_argv_is_a_clear_error(tmp_path, argv):
    with pytest.raises(ToolError, match="argv must be a non-empty list of strings, got"):
        await Workspace(tmp_path).run(argv)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"timeout": 0}, "timeout=0 is invalid: use a positive number of seconds"),
        ({"timeout": -1.5}, "timeout=-1.5 is invalid"),
        ({"timeout": "5"}, "timeout='5' is invalid"),
        ({"max_output": 0}, "max_output=0 is invalid: use a positive integer"),
        ({"max_output": 1.5}, "max_output=1.5 is invalid"),
        ({"max_output": True}, "max_output=True is invalid"),
    ],
)
def test_bad_workspace_settings_are_clear_errors(tmp_path, options, message):
    with pytest.raises(ToolError, match=message.replace("(", r"\(")):
        Workspace(tmp_path, **options)


def test_a_root_that_is_not_a_path_or_not_a_directory_is_named(tmp_path):
    with pytest.raises(ToolError, match=r"workspace root=42 is invalid: use a directory path"):
        Workspace(42)  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ToolError, match="is not a directory: create it or pass another root"):
        Workspace(tmp_path / "file")


@pytest.mark.parametrize("grace", [-1, "2", True])
def test_a_bad_output_grace_is_a_clear_error(grace):
    with pytest.raises(ToolError, match=f"output_grace={grace!r} is invalid: use seconds"):
        SubprocessExecutor(output_grace=grace)


async def test_a_missing_command_is_named(tmp_path):
    with pytest.raises(ToolError) as caught:
        await Workspace(tmp_path).run(["victor-no-such-command", "--flag"])
    assert str(caught.value) == (
        "command 'victor-no-such-command' was not found on PATH: install it or fix the name"
    )


async def test_a_file_that_is_not_executable_is_named(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o644)
    with pytest.raises(ToolError, match=r"command '.*script.sh' is not executable"):
        await Workspace(tmp_path).run([str(script)])


def test_the_defaults_and_the_smallest_settings(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    assert (ws.timeout, ws.max_output) == (120.0, 50_000)  # two minutes, 50,000 characters
    small = Workspace(tmp_path, timeout=0.5, max_output=1)  # under a second is a timeout
    assert (small.timeout, small.max_output) == (0.5, 1)
    assert Workspace.coerce(ws) is ws
    assert Workspace.coerce(str(tmp_path)).root == ws.root
    monkeypatch.chdir(tmp_path)
    assert Workspace.coerce(None).root == ws.root  # the current directory
    with pytest.raises(ToolError) as caught:
        Workspace(tmp_path / "missing")
    assert str(caught.value) == (
        f"workspace {str(tmp_path / 'missing')!r} is not a directory: create it or pass "
        "another root"
    )


def test_a_refused_path_names_the_workspace(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(ToolError) as caught:
        ws.resolve("../x")
    assert str(caught.value) == (
        f"path '../x' is outside the workspace {str(ws.root)!r}: tools may only touch files "
        "under the workspace root (use a path relative to it)"
    )


async def test_a_commands_own_variables_reach_it_after_the_workspaces(tmp_path, monkeypatch):
    ws = Workspace(tmp_path, env={"MODE": "workspace", "KEEP": "k"})
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "1")  # this process's setting is not passed on
    show = "import os; print(os.environ['MODE'], os.environ['KEEP'], os.environ['EXTRA'])"
    result = await ws.run([sys.executable, "-c", show], env={"MODE": "call", "EXTRA": "e"})
    assert result.stdout == "call k e\n"
    env = ws.child_env()
    # git never waits for a password; Python children write UTF-8 whatever the locale.
    assert (env["GIT_TERMINAL_PROMPT"], env["PYTHONIOENCODING"], env["NO_COLOR"]) == (
        "0",
        "utf-8",
        "1",
    )
