"""State: a dict of plain data an agent keeps between runs, saved to JSON atomically.

``state.save(path)`` never leaves a half-written file: the data is serialised first,
written to a temporary file beside the target, flushed to disk and then renamed over the
target in one step. A save killed half-way leaves its temporary file behind; the next
save or load of the same path removes such leftovers (see ``STALE_AFTER``).
``State.load(path)`` reads it back and names the file (and the line and column) when
something is wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import StateError

__all__ = ["State", "STATE_FORMAT_VERSION", "STALE_AFTER"]

#: The ``victor_state`` number written into every state file; bumped if the format changes.
STATE_FORMAT_VERSION = 1

#: When the next save or load of a path removes a temporary file an earlier save left.
#: Each save names its file after its process id and holds an advisory lock (``flock``) on
#: it while it writes, so a slow or paused save is never taken for a dead one. A file no
#: one holds locked goes at once when its process is gone (killed mid-save). When that
#: process still runs (or the name has no pid), it may be a writer in the instant between
#: creating its file and locking it, or the pid was reused, or the system has no ``flock``:
#: only the age tells then, and a save takes milliseconds, so after this many seconds it
#: counts as left behind. (A directory shared with another machine: a pid of there looks
#: gone here, but its writer's lock still keeps the file, all but that first instant.)
STALE_AFTER = 60.0


class _Unserialisable(Exception):
    """Raised from ``json.dumps(default=...)`` to report the exact object json refused."""

    def __init__(self, obj: Any) -> None:
        super().__init__(type(obj).__name__)
        self.obj = obj


def _refuse(obj: Any) -> Any:
    raise _Unserialisable(obj)


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _position(text: str) -> tuple[int, int]:
    """Line and column (1-based) of the first non-blank character: where the value starts."""
    offset = len(text) - len(text.lstrip())
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class State(MutableMapping[str, Any]):
    """A dict-like store of JSON-compatible values with ``save`` and ``load``.

    >>> state = State(user="Alice")
    >>> state["context"] = "Building a REST API"
    >>> sorted(state)
    ['context', 'user']
    """

    def __init__(self, data: Mapping[str, Any] | None = None, /, **values: Any) -> None:
        self._data: dict[str, Any] = {}
        if data is not None:
            self.update(data)
        self.update(values)

    # -- the mapping protocol ------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        # JSON object keys are strings; refusing others here keeps save/load a true round trip.
        if not isinstance(key, str):
            raise TypeError(f"State keys must be str, not {type(key).__name__} ({key!r})")
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def clear(self) -> None:
        """Remove every key."""
        self._data.clear()

    def to_dict(self) -> dict[str, Any]:
        """A plain ``dict`` copy of the state (top level copied, values shared)."""
        return dict(self._data)

    def __repr__(self) -> str:
        return f"State(keys={list(self._data)!r})"

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> str:
        """The file contents ``save`` writes; raises ``StateError`` for non-JSON values."""
        payload = {"victor_state": STATE_FORMAT_VERSION, "data": self._data}
        try:
            return json.dumps(payload, indent=2, ensure_ascii=False, default=_refuse) + "\n"
        except (_Unserialisable, TypeError, ValueError):
            # Only now pay for a per-key pass, to name the key the user has to fix.
            self._raise_for_bad_value()
            raise  # pragma: no cover - the scan always finds the culprit

    def _raise_for_bad_value(self) -> None:
        for key, value in self._data.items():
            try:
                json.dumps(value, default=_refuse)
            except _Unserialisable as exc:
                where = "" if exc.obj is value else f" (inside its {_type_name(value)})"
                raise StateError(
                    f"Cannot save state: key {key!r} holds a {_type_name(exc.obj)}{where}, "
                    "which is not JSON-serialisable. Store plain data instead: convert it to "
                    f"a str, dict or list, e.g. state[{key!r}] = str(value)."
                ) from None
            except ValueError as exc:  # circular reference, e.g. a list that contains itself
                raise StateError(
                    f"Cannot save state: key {key!r} holds a {_type_name(value)} that cannot "
                    f"be written as JSON ({exc}). Store a copy without the cycle."
                ) from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state to ``path`` as JSON, atomically.

        Serialisation happens before any file is touched, and the target is replaced in a
        single rename, so a failure at any point leaves the previous file as it was.
        """
        target = Path(path)
        text = self.to_json()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Same directory as the target: os.replace is only atomic within one filesystem.
            tmp = tempfile.NamedTemporaryFile(
                "w",
                encoding="utf-8",
                newline="\n",
                dir=target.parent,
                prefix=f".{target.name}.{os.getpid()}.",
                suffix=".tmp",
                delete=False,
            )
        except OSError as exc:
            raise StateError(f"Cannot save state to {target}: {exc}") from exc
        try:
            with tmp:
                _lock(tmp.fileno())  # released when the file closes, live or killed
                tmp.write(text)
                tmp.flush()
                # Without fsync a crash right after the rename can leave an empty file.
                os.fsync(tmp.fileno())
            os.replace(tmp.name, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp.name)
            if isinstance(exc, OSError):
                raise StateError(f"Cannot save state to {target}: {exc}") from exc
            raise
        _fsync_directory(target.parent)
        _remove_stale_temporaries(target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> State:
        """Read a state file written by ``save``."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StateError(
                f"no state file at {source}; save one first with state.save()"
            ) from None
        except UnicodeDecodeError as exc:
            raise StateError(f"State file {source} is not UTF-8 text: {exc}") from None
        except OSError as exc:
            raise StateError(f"Cannot read state file {source}: {exc}") from exc
        _remove_stale_temporaries(source)
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"State file {source} is not valid JSON: {exc.msg} "
                f"at line {exc.lineno}, column {exc.colno}"
            ) from None
        if (
            not isinstance(payload, dict)
            or "victor_state" not in payload
            or not isinstance(payload.get("data"), dict)
        ):
            line, column = _position(text)
            raise StateError(
                f"State file {source} has the wrong shape at line {line}, column {column}: "
                'expected an object {"victor_state": 1, "data": {...}} as written by State.save()'
            )
        if payload["victor_state"] != STATE_FORMAT_VERSION:
            line, column = _position(text)
            raise StateError(
                f"State file {source} (line {line}, column {column}) has format version "
                f"{payload['victor_state']!r}; this victor reads version {STATE_FORMAT_VERSION}"
            )
        return cls(payload["data"])


def _lock(fd: int) -> None:
    """Hold an exclusive advisory lock on ``fd`` (best effort: not every system has flock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: an open file cannot be deleted there
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _is_locked(path: str) -> bool:
    """Whether a live writer holds ``path``'s lock (False where flock does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    with open(path, "rb") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # a filesystem without locks: fall back on the age alone
            return False
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        return False


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (False when it cannot be told)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: another user's process, alive
        return False
    return False


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary files of earlier saves of ``target`` whose writer is gone (see
    ``STALE_AFTER``). Only names ``save`` itself makes are touched; a locked file never."""
    # ".<name>.<pid>.<8 random>.tmp"; before saves named their pid: ".<name>.<8 random>.tmp"
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp")
    cutoff = time.time() - STALE_AFTER
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            if not entry.is_file(follow_symlinks=False):
                continue
            pid = match.group(1)
            gone = pid is not None and _process_gone(int(pid))
            old = entry.stat(follow_symlinks=False).st_mtime < cutoff
            if (gone or old) and not _is_locked(entry.path):
                os.unlink(entry.path)


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself; best effort, as not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
