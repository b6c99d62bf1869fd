"""The workspace sandbox: path confinement (traversal, absolute, symlinks, globs), argv-only
commands, timeouts, output caps and a scrubbed environment, through the built-in tools."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from victor import ToolError
from victor.tools import ToolContext, Workspace, registry
from victor.tools.context import using_context


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("top secret\n")
    return Workspace(root)


async def use(ws: Workspace, name: str, **arguments):
    with using_context(ToolContext(workspace=ws)):
        return await registry.get(name).run(arguments)


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "src/../../secret.txt", "/etc/passwd", "~/.bashrc", "src/\x00x"],
)
async def test_paths_leading_out_are_refused(ws, path):
    with pytest.raises(ToolError):
        ws.resolve(path)
    for tool, extra in (("read_file", {}), ("write_file", {"content": "x"})):
        result = await use(ws, tool, file_path=path, **extra)
        assert not result.success and (
            "outside the workspace" in result.error or "NUL" in result.error
        )
    assert (ws.root.parent / "secret.txt").read_text() == "top secret\n"


async def test_absolute_path_inside_is_allowed(ws):
    result = await use(ws, "read_file", file_path=str(ws.root / "src" / "app.py"))
    assert result.success and result.output == "print('hi')\n"


async def test_symlinks_that_escape_are_refused(ws):
    (ws.root / "link.txt").symlink_to(ws.root.parent / "secret.txt")
    (ws.root / "outside").symlink_to(ws.root.parent, target_is_directory=True)
    (ws.root / "inside.py").symlink_to(ws.root / "src" / "app.py")
    for path in ("link.txt", "outside/secret.txt"):
        result = await use(ws, "read_file", file_path=path)
        assert not result.success and "outside the workspace" in result.error
    written = await use(ws, "write_file", file_path="outside/new.txt", content="x")
    assert not written.success and not (ws.root.parent / "new.txt").exists()
    assert (await use(ws, "read_file", file_path="inside.py")).output == "print('hi')\n"
    listed = (await use(ws, "list_files", pattern="*")).output
    assert "inside.py" in listed and "link.txt" not in listed
    assert not any("secret" in p for p in listed)
    found = await use(ws, "search_code", pattern="secret")
    assert found.output == "no matches for 'secret'"


@pytest.mark.parametrize("pattern", ["../*", "**/../*", "src/../../*", "/etc/*"])
async def test_dotdot_and_absolute_globs_are_refused(ws, pattern):
    result = await use(ws, "list_files", pattern=pattern)
    assert not result.success and "may not be absolute or contain '..'" in result.error
    result = await use(ws, "search_code", pattern="x", glob=pattern)
    assert not result.success


async def test_directory_argument_cannot_leave(ws):
    result = await use(ws, "list_files", directory="..")
    assert not result.success and "outside the workspace" in result.error


INJECTIONS = [
    "; touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "| touch pwned",
    "&& touch pwned",
    "> pwned",
]


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_shell_metacharacters_stay_arguments(ws, payload):
    listed = await use(ws, "run_shell", command=["echo", "hello", payload])
    assert listed.success and f"hello {payload}" in listed.output
    as_string = await use(ws, "run_shell", command=f"echo hello {payload}")
    assert as_string.success
    assert not (ws.root / "pwned").exists()


async def test_only_allowlisted_commands_run(ws):
    for command in (
        ["rm", "-rf", "src"],
        ["/bin/rm", "src/app.py"],
        ["sh", "-c", "echo x"],
        "bash -c ls",
    ):
        result = await use(ws, "run_shell", command=command)
        assert not result.success and "not an allowed command" in result.error
    assert (ws.root / "src" / "app.py").exists()
    node = registry.get("run_node")
    assert "git" not in node.allow and "npm" in node.allow


async def test_commands_run_in_the_workspace_with_exit_codes(ws):
    result = await use(ws, "run_shell", command=["ls", "src"])
    assert result.success and "app.py" in result.output and result.metadata["exit_code"] == 0
    failed = await use(ws, "run_shell", command=["ls", "does-not-exist"])
    assert not failed.success and failed.metadata["exit_code"] != 0 and "exit code" in failed.error


async def test_child_environment_is_scrubbed(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak-me")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-leak-me")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    code = "import os; print(sorted(os.environ))"
    result = await use(ws, "run_python", code=code)
    assert result.success and "PATH" in result.output and "LC_ALL" in result.output
    assert "OPENAI_API_KEY" not in result.output and "MY_SERVICE_TOKEN" not in result.output
    passing = Workspace(ws.root, pass_env=["MY_SERVICE_TOKEN"], env={"EXTRA": "1"})
    result = await use(passing, "run_python", code=code)
    assert "MY_SERVICE_TOKEN" in result.output and "EXTRA" in result.output
    assert "OPENAI_API_KEY" not in result.output


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper that is not ours counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
async def test_timeout_kills_the_command_and_its_children(ws):
    code = (
        "import os, subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "open('pids', 'w').write(f'{os.getpid()} {child.pid}'); time.sleep(60)"
    )
    # 3 s: time for a loaded machine to start Python and the child (0.1 s when idle);
    # both would sleep for 60 s, so only the kill ends them.
    result = await use(ws, "run_python", code=code, timeout=3)
    assert not result.success and result.metadata["timed_out"] and "timed out" in result.error
    pids = [int(pid) for pid in (ws.root / "pids").read_text().split()]
    for _ in range(100):  # SIGKILL is delivered at once; the states follow within moments
        if not any(alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    assert [alive(pid) for pid in pids] == [False, False]


async def test_output_is_capped_with_a_marker(ws):
    small = Workspace(ws.root, max_output=1000)
    result = await use(small, "run_python", code="print('x' * 100_000)")
    assert result.success and result.metadata["truncated"]
    assert "[output truncated: 99001 more characters]" in result.output
    (ws.root / "big.txt").write_text("y" * 5000)
    read = await use(small, "read_file", file_path="big.txt")
    assert read.output.startswith("y" * 1000) and "4000 more characters" in read.output


async def test_workspace_validation_and_executor_seam(tmp_path):
    with pytest.raises(ToolError, match="is not a directory"):
        Workspace(tmp_path / "missing")
    with pytest.raises(ToolError, match="argv must be a non-empty list"):
        await Workspace(tmp_path).run("echo hi")  # a shell string is never run

    class Recording:
        def __init__(self):
            self.calls = []

        async def run(self, argv, *, cwd, env, timeout, max_output, stdin=None):
            from victor.tools import CommandResult

            self.calls.append((list(argv), cwd, dict(env)))
            return CommandResult(tuple(argv), 0, "from the executor", "", 1.0)

    executor = Recording()
    ws = Workspace(tmp_path, executor=executor)
    result = await use(ws, "run_shell", command=["git", "status"])
    assert result.output.endswith("from the executor")
    argv, cwd, env = executor.calls[0]
    assert argv == ["git", "status"] and cwd == ws.root and env["NO_COLOR"] == "1"
    assert os.path.realpath(tmp_path) == str(ws.root)


def test_python_commands_use_this_interpreter():
    shell = registry.get("run_shell")
    assert shell.argv(["python", "-V"])[0] == sys.executable
    assert shell.argv("pytest -q") == [sys.executable, "-m", "pytest", "-q"]


def test_the_root_and_its_paths_are_reported_relative_to_it(ws, tmp_path):
    assert ws.resolve() == ws.root and ws.relative(ws.root) == "."
    assert repr(ws) == f"Workspace({str(ws.root)!r})"
    # A path reached through a link outside the workspace that leads into it: its real name.
    (tmp_path / "shortcut").symlink_to(ws.root / "src")
    assert ws.relative(tmp_path / "shortcut" / "app.py") == "src/app.py"


def test_writing_makes_parents_and_refuses_a_directory(ws):
    assert ws.write_text("new/deep/a.txt", "ü\n") == ws.root / "new" / "deep" / "a.txt"
    assert (ws.root / "new" / "deep" / "a.txt").read_bytes() == "ü\n".encode()
    with pytest.raises(ToolError) as caught:
        ws.write_text("src", "x")
    assert str(caught.value) == "'src' is a directory; give a file path"


def test_a_failed_write_leaves_no_temporary_file_and_says_why(ws, monkeypatch):
    with pytest.raises(UnicodeEncodeError):
        ws.write_text("src/app.py", "\ud800")  # not encodable: nothing is replaced
    assert (ws.root / "src" / "app.py").read_text() == "print('hi')\n"

    def replace_after_the_temp_vanished(source, target):
        os.unlink(source)  # say, a cleaner took it: the clean-up has nothing to remove
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", replace_after_the_temp_vanished)
    with pytest.raises(OSError, match="disk gone"):  # the cause, not the clean-up's error
        ws.write_text("src/app.py", "new")
    monkeypatch.undo()
    assert sorted(p.name for p in (ws.root / "src").iterdir()) == ["app.py"]
