"""The workspace sandbox: where file tools may read and write, and how commands run.

A ``Workspace`` confines every path a tool touches to one root directory (``..``,
absolute paths outside it and symlinks that lead out are refused with ``ToolError``;
files are written by replacing them, so a hard link inside the workspace to a file
elsewhere is never written through, while reading one shows that file's content, which
is also this name's: a hard link is the file itself, not a pointer that could be checked)
and runs commands through a pluggable ``Executor`` (executor.py): argv only (never a
shell), the root as working directory, a timeout that bounds the call whatever the command
does (what it started is stopped with it, see ``SubprocessExecutor``), capped output, and a
scrubbed environment that passes no API keys or tokens to child processes.

This guards against a *confused* model: a wrong path, a runaway command, a leaked key.
It is not a security boundary against a hostile one: a command the workspace runs has
the permissions of this process, and code it executes (tests, scripts) can do anything
that process can. Use a container executor (``Executor`` is the seam) or a VM for
untrusted work.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .._util import is_number, is_whole
from ..errors import ToolError
from .executor import CommandResult, Executor, SubprocessExecutor

__all__ = ["Workspace", "SAFE_ENV_VARS"]

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
