"""How a command runs: ``Executor`` (the seam), ``SubprocessExecutor`` (a child process of
this one, bounded in time and output, stopping what it started) and ``CommandResult``.

A ``Workspace`` (sandbox.py) decides the command's directory, environment, timeout and
output limit; an executor only runs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

from ..errors import ToolError
from .base import ToolResult

if TYPE_CHECKING:
    import asyncio

__all__ = ["CommandResult", "Executor", "SubprocessExecutor", "cap_text", "MARKER_VAR"]


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
