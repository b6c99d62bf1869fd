"""A batch's checkpoint: a JSONL log with one line per finished item, appended, flushed and
fsynced as each item finishes, and read first by a rerun so finished items are skipped.

A process killed mid-write leaves at most one torn last line; reading drops it (and cuts it
off the file, so the next line starts clean). The latest line of a key wins: an item that
failed and succeeded on a rerun counts as succeeded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .items import BatchResult

__all__ = ["Checkpoint"]


class Checkpoint:
    """The log at ``path`` (created with its directory on first write)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def read(self) -> dict[str, dict[str, Any]]:
        """The latest record of each key in the log ({} if there is no log yet)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigurationError(f"cannot read the checkpoint {self.path}: {exc}") from None
        complete = data.rfind(b"\n") + 1
        if complete < len(data):  # a line cut off by a crash: drop it, and off the file
            with open(self.path, "r+b") as file:
                file.truncate(complete)
        records: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(data[:complete].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(
                    f"line {number} of the checkpoint {self.path} is not JSON ({exc.msg}); it "
                    f"was not written by victor.batch. Fix or remove that line, or use another "
                    f"checkpoint file"
                ) from None
            if not isinstance(record, dict) or "key" not in record:
                raise ConfigurationError(
                    f"line {number} of the checkpoint {self.path} is not a batch result (no "
                    f"'key'); use a file that only victor.batch writes"
                )
            records[str(record["key"])] = record
        return records

    def append(self, result: BatchResult) -> None:
        """Write ``result`` as one line and make it durable before returning."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = json.dumps(result.to_record(), ensure_ascii=False, default=str) + "\n"
        data = line.encode()
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r})"
