"""What a finished batch hands back: its results in input order, and a summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..core.messages import Usage
from ..errors import ConfigurationError
from .items import BatchResult

__all__ = ["BatchResults", "BatchSummary"]


@dataclass
class BatchSummary:
    """Counts of one batch run: items done and failed, resumed from the checkpoint, tokens,
    time, and the failures by error type."""

    name: str
    total: int
    ok: int = 0
    failed: int = 0
    resumed: int = 0
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    #: ``done`` when every item ended, ``interrupted`` when the batch was cancelled.
    status: str = "done"

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second by this run (resumed ones excluded)."""
        ran = self.done - self.resumed
        return ran / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        head = (
            f"{self.name}: {self.done}/{self.total} done in {self.seconds:.1f} s"
            if self.status == "done"
            else f"{self.name}: {self.status} after {self.done}/{self.total}"
        )
        parts = [head, f"{self.ok} ok"]
        failed = f"{self.failed} failed"
        if self.errors:
            failed += " (" + ", ".join(f"{k} {n}" for k, n in self.errors.most_common()) + ")"
        parts.append(failed)
        if self.seconds > 0 and self.done > self.resumed:
            parts.append(f"{self.rate:.1f} items/s")
        usage = self.usage
        parts.append(
            f"{usage.total_tokens:,} tokens ({usage.input_tokens:,} in, "
            f"{usage.output_tokens:,} out)"
        )
        if self.resumed:
            parts.append(f"{self.resumed} resumed from the checkpoint")
        return " · ".join(parts)


class BatchResults(list[BatchResult]):
    """Every item's ``BatchResult``, in input order, with the batch's ``summary``."""

    def __init__(self, results: list[BatchResult], summary: BatchSummary) -> None:
        super().__init__(results)
        self.summary = summary

    @property
    def outputs(self) -> list[Any]:
        """Each item's output (None where it failed), in input order."""
        return [r.output for r in self]

    @property
    def failed(self) -> list[BatchResult]:
        return [r for r in self if not r.ok]

    @property
    def usage(self) -> Usage:
        return self.summary.usage

    def to_pandas(self) -> Any:
        """The results as a pandas DataFrame: one row per item."""
        pandas = _pandas()
        rows = [
            {
                "index": r.index,
                "item": r.item,
                "output": r.output,
                "error": r.error,
                "error_type": r.error_type,
                "input_tokens": r.usage.input_tokens,
                "output_tokens": r.usage.output_tokens,
                "attempts": r.attempts,
                "duration_ms": r.duration_ms,
                "resumed": r.resumed,
            }
            for r in self
        ]
        return pandas.DataFrame(rows).set_index("index")

    def __repr__(self) -> str:
        return f"BatchResults({self.summary})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .progress import render_summary

        return render_summary(self.summary)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ConfigurationError("a DataFrame needs pandas: pip install pandas") from None
    return pandas
