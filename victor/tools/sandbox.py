"""The workspace sandbox: where file tools may read and write, and how commands run.

A ``Workspace`` confines every path a tool touches to one root directory (``..``,
absolute paths outside it and symlinks that lead out are refused with ``ToolError``;
files are written by replacing them, so a hard link inside the workspace to a file
elsewhere is never written through, while reading one shows that file's content, which
is also this name's: a hard link is the file itself, not a pointer that could be checked)
and runs commands through a pluggable ``Executor``: argv only (never a shell), the root
as working directory, a timeout that bounds the call whatever the command does (what it
started is stopped with it, see ``SubprocessExecutor``), capped output, and a scrubbed
environment that passes no API keys or tokens to child processes.

This guards against a *confused* model: a wrong path, a runaway command, a leaked key.
It is not a security boundary against a hostile one: a command the workspace runs has
the permissions of this process, and code it executes (tests, scripts) can do anything
that process can. Use a container executor (``Executor`` is the seam) or a VM for
untrusted work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

from .._util import is_number, is_whole
from ..errors import ToolError
from .base import ToolResult

if TYPE_CHECKING:
    import asyncio

__all__ = ["Workspace", "Executor", "SubprocessExecutor", "CommandResult", "SAFE_ENV_VARS"]

#: Environment variables a child process inherits; everything else (API keys, tokens,
#: cloud credentials) is dropped. Add more with ``Workspace(pass_env=[...])``.
SAFE_ENV_VARS = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "SYSTEMROOT",
        "COMSPEC",
        "PATHEXT",
        "WINDIR",  # Windows needs these to start anything
    }
)
_SAFE_ENV_PREFIXES = ("LC_",)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: exit code, (capped) output, and whether it was cut short."""

    argv: tuple[str, ...]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_tool_result(self) -> ToolResult:
        """Success with the text if the command exited 0, else a failure with the same text."""
        meta = {
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "truncated": self.truncated,
        }
        if self.ok:
            return ToolResult(success=True, output=self.to_text(), metadata=meta)
        return ToolResult.fail(self.to_text(), **meta)

    def to_text(self) -> str:
        """The result as a model reads it."""
        status = (
            f"timed out after {self.duration_ms / 1000:.1f} s"
            if self.timed_out
            else f"exit code {self.exit_code}"
        )
        parts = [status]
        if self.stdout:
            parts.append(f"--- stdout ---\n{self.stdout.rstrip()}")
        if self.stderr:
            parts.append(f"--- stderr ---\n{self.stderr.rstrip()}")
        return "\n".join(parts)


class Executor(Protocol):
    """Runs one command. ``SubprocessExecutor`` runs it on this machine; a container
    executor can implement the same method."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout: float,
        max_output: int,
        stdin: str | None = None,
    ) -> CommandResult: ...


class SubprocessExecutor:
    """Runs commands as child processes of this one (argv, no shell).

    Every call is bounded: it returns by its ``timeout`` whatever the command does. On
    timeout or cancellation, the command's process group and every process it started
    (found by a marker in their environment, also those that left the group with
    ``setsid``/``start_new_session``) are killed, and output pipes still held open are
    closed. When the command exits but something it started keeps its output open (a
    server started in the background), the output is read for ``output_grace`` seconds
    more, then those processes are stopped the same way and the call returns the exit
    code and the output so far. Background processes that let go of the output (redirected
    to a file or ``/dev/null``) are left running. Finding processes that left the group
    needs ``/proc`` (Linux); elsewhere only the process group is killed, and pipes still
    held open are closed all the same.
    """

    #: Seconds to keep reading after the command exited while its output is still open.
    output_grace: float = 2.0

    def __init__(self, *, output_grace: float | None = None) -> None:
        if output_grace is not None:
            if isinstance(output_grace, bool) or not isinstance(output_grace, (int, float)):
                raise ToolError(f"output_grace={output_grace!r} is invalid: use seconds (>= 0)")
            if output_grace < 0:
                raise ToolError(f"output_grace={output_grace!r} is invalid: use seconds (>= 0)")
            self.output_grace = float(output_grace)

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout: float,
        max_output: int,
        stdin: str | None = None,
    ) -> CommandResult:
        import asyncio  # imported when used: see victor/__init__.py

        started = perf_counter()
        marker = os.urandom(8).hex()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env={**env, MARKER_VAR: marker},
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own process group, so a timeout kills the children it started too.
                start_new_session=sys.platform != "win32",
            )
        except FileNotFoundError:
            raise ToolError(
                f"command {argv[0]!r} was not found on PATH: install it or fix the name"
            ) from None
        except PermissionError:
            raise ToolError(f"command {argv[0]!r} is not executable") from None
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        assert process.stdout is not None and process.stderr is not None
        out, err = _Capture(max_output), _Capture(max_output)
        reading = asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
        # process.wait() also waits for the pipes to close (Python 3.11), which a process
        # the command started may hold: its exit is watched through returncode instead.
        exited = asyncio.ensure_future(process.wait())
        deadline = started + timeout
        timed_out = lingered = False
        try:
            while not reading.done() and process.returncode is None:
                left = deadline - perf_counter()
                if left <= 0:
                    break
                await asyncio.wait([reading], timeout=min(_POLL, left))
            if not reading.done() and process.returncode is not None:
                # Exited, but something it started still holds the output open.
                left = deadline - perf_counter()
                await asyncio.wait([reading], timeout=max(0.0, min(self.output_grace, left)))
                lingered = not reading.done()
            if not reading.done():
                timed_out = not lingered
            else:
                await asyncio.wait([exited], timeout=max(0.0, deadline - perf_counter()))
                timed_out = not exited.done()
        except asyncio.CancelledError:
            await _stop(process, marker, reading, exited)
            raise
        if timed_out or lingered:
            await _stop(process, marker, reading, exited)
        if lingered:
            err.note(
                f"[victor: the command exited, but processes it started kept its output open "
                f"for {self.output_grace:g} s more; they were stopped]"
            )
        stdout, cut_out = out.text()
        stderr, cut_err = err.text()
        return CommandResult(
            argv=tuple(argv),
            exit_code=None if timed_out else process.returncode,
            stdout=stdout,
            stderr=stderr,
            duration_ms=(perf_counter() - started) * 1000,
            timed_out=timed_out,
            truncated=cut_out or cut_err,
        )


#: Set in every command's environment, so the processes a command started can be found
#: (and stopped) even after they left its process group.
MARKER_VAR = "VICTOR_COMMAND_ID"
#: Seconds between looks at whether the command exited while its output is still open.
_POLL = 0.1
#: Seconds to wait, once everything is killed, for the output pipes to reach their end,
#: and for the killed command to be reaped.
_SETTLE = 1.0


async def _stop(
    process: asyncio.subprocess.Process,
    marker: str,
    reading: asyncio.Future[object],
    exited: asyncio.Future[int],
) -> None:
    """Kill what is left of a command, close its pipes and reap it, in bounded time."""
    import asyncio  # imported when used: see victor/__init__.py

    _kill(process, marker)
    # With every holder dead the pipes end at once; a holder that could not be found
    # (no /proc) still cannot keep the call waiting: the pipes are closed.
    await asyncio.wait([reading], timeout=_SETTLE)
    if not reading.done():
        transport = getattr(process, "_transport", None)  # asyncio's: no public close()
        if transport is not None:
            transport.close()  # the readers see the end of their streams
        await asyncio.wait([reading], timeout=_SETTLE)
        if not reading.done():  # pragma: no cover - defensive: closing ends the readers
            reading.cancel()
    await asyncio.wait([exited], timeout=_SETTLE)
    if not exited.done():  # pragma: no cover - SIGKILLed processes are reaped at once
        exited.cancel()
    if reading.done() and not reading.cancelled():
        reading.exception()  # retrieved, so asyncio does not log it as never retrieved


def _kill(process: asyncio.subprocess.Process, marker: str) -> None:
    """SIGKILL the command's process group and every process carrying its marker."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    # A process may start another while we look: look again until none is left.
    for _ in range(5):
        found = _marked_processes(marker)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _marked_processes(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (Linux ``/proc``; else none)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                environ = file.read()
            with open(f"/proc/{entry}/stat", "rb") as file:
                state = file.read().rpartition(b")")[2].split()[:1]
        except OSError:  # gone already, or not ours to read
            continue
        if state != [b"Z"] and needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


class _Capture:
    """One output stream as it arrives: the first ``limit`` bytes kept, the rest counted,
    so what was read survives a command that is stopped before its streams end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0
        self.notes: list[str] = []

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def text(self) -> tuple[str, bool]:
        text, cut = cap_text(self.kept.decode(errors="replace"), self.limit, self.dropped)
        if self.notes:
            text = "\n".join([text.rstrip("\n"), *self.notes]) if text else "\n".join(self.notes)
        return text, cut


def cap_text(text: str, limit: int, already_dropped: int = 0) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, with a marker saying how much was left out."""
    dropped = already_dropped + max(0, len(text) - limit)
    if not dropped:
        return text, False
    return f"{text[:limit]}\n... [output truncated: {dropped} more characters]", True


class Workspace:
    """The directory an agent's tools work in, and the rules for running commands there.

    Args:
        root: The directory (default: the current directory). It must exist.
        timeout: Default seconds a command may run before it is killed.
        max_output: Characters of stdout (and of stderr) kept per command, and of a file
            a tool reads; the rest is replaced by a truncation marker.
        pass_env: Extra environment variable names children may inherit.
        env: Variables set for every child process (after scrubbing).
        executor: How commands run (default: ``SubprocessExecutor``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 120.0,
        max_output: int = 50_000,
        pass_env: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        executor: Executor | None = None,
    ) -> None:
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise ToolError(f"workspace root={root!r} is invalid: use a directory path")
        path = Path(root if root is not None else os.getcwd()).expanduser()
        if not path.is_dir():
            raise ToolError(
                f"workspace {str(path)!r} is not a directory: create it or pass another root"
            )
        if not is_number(timeout) or timeout <= 0:
            raise ToolError(f"timeout={timeout!r} is invalid: use a positive number of seconds")
        if not is_whole(max_output) or max_output <= 0:
            raise ToolError(f"max_output={max_output!r} is invalid: use a positive integer")
        self.root = Path(os.path.realpath(path))
        self.timeout = timeout
        self.max_output = max_output
        self.pass_env = frozenset(pass_env)
        self.env = dict(env or {})
        self.executor: Executor = executor or SubprocessExecutor()

    @classmethod
    def coerce(cls, value: Workspace | str | os.PathLike[str] | None) -> Workspace:
        """A ``Workspace`` from a workspace, a path, or ``None`` (the current directory)."""
        return value if isinstance(value, Workspace) else cls(value)

    # -- paths ----------------------------------------------------------------------

    def resolve(self, path: str | os.PathLike[str] = ".") -> Path:
        """The real path of ``path`` (relative to the root); ``ToolError`` if it leads out.

        Symlinks are followed before checking, so a link inside the workspace that points
        outside it is refused like ``../`` is.
        """
        raw = os.fspath(path)
        if "\x00" in raw:
            raise ToolError(f"path {raw!r} contains a NUL byte")
        candidate = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
        full = candidate if candidate.is_absolute() else self.root / candidate
        real = Path(os.path.realpath(full))
        if real != self.root and not real.is_relative_to(self.root):
            raise ToolError(
                f"path {raw!r} is outside the workspace {str(self.root)!r}: tools may only "
                f"touch files under the workspace root (use a path relative to it)"
            )
        return real

    def write_text(self, path: str | os.PathLike[str], text: str) -> Path:
        """Write ``text`` (UTF-8) to ``path`` in the workspace, atomically; return the real path.

        The file is replaced, never written through: the text goes to a temporary file in
        the same directory, which then takes the name in one ``os.replace``. A reader sees
        the old file or the new one, never half of it; the file's permission bits are kept;
        and a name that is a hard link to a file elsewhere (uv and pnpm hard-link package
        files from a shared cache) gets a file of its own, leaving the other copy as it was.
        Parent directories are created.
        """
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{os.fspath(path)!r} is a directory; give a file path")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = None  # a new file: the process's umask decides, as for any new file
        temp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                if mode is not None:
                    os.chmod(file.fileno(), mode)
                file.write(text)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return target

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` resolves inside the workspace."""
        try:
            self.resolve(path)
        except ToolError:
            return False
        return True

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the root, with ``/`` separators (how tools report paths).

        A symlink inside the workspace is reported by its own name, not its target's."""
        full = Path(os.path.abspath(path))
        if not full.is_relative_to(self.root):
            full = Path(os.path.realpath(full))
        return full.relative_to(self.root).as_posix() or "."

    # -- commands -------------------------------------------------------------------

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a child process: safe variables only, plus ``env``/``extra``."""
        keep = SAFE_ENV_VARS | self.pass_env
        env = {k: v for k, v in os.environ.items() if k in keep or k.startswith(_SAFE_ENV_PREFIXES)}
        # Plain, uncoloured output is what a model reads best.
        env.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", "GIT_TERMINAL_PROMPT": "0"})
        env.update(self.env)
        env.update(extra or {})
        return env

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` (a list, never a shell string) in the root with this workspace's rules."""
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ToolError(f"argv must be a non-empty list of strings, got {argv!r}")
        return await self.executor.run(
            list(argv),
            cwd=self.root,
            env=self.child_env(env),
            timeout=timeout or self.timeout,
            max_output=self.max_output,
            stdin=stdin,
        )

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
