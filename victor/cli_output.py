"""What the ``victor`` command writes to stderr besides the answer: errors in the command's
own words, one line per notice (a retry, a first use) and per tool call, and the usage line.

Messages are written once, for the Python API (``provider="local"``, ``approval='auto'``);
``in_cli_words`` is the one place that says them with the command's options instead.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.events import Event, EventBus
    from .messages import RunFinished

__all__ = ["RunLines", "in_cli_words", "terminal_logging", "write_line"]

#: Python-API wording -> the command's: (pattern, replacement), applied in order.
_CLI_WORDS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"([cC])reate the agent with approval='auto' or approval=<callback>"),
        lambda m: f"{'R' if m[1] == 'C' else 'r'}un with --approval auto",
    ),
    (re.compile(r"""approval=(["'])(\w+)\1"""), r"--approval \2"),
    (re.compile(r"""provider=(["'])(\w+)\1"""), r"-p \2"),
    (re.compile(r" or pass api_key=\.\.\. to Agent\.create\(\)"), ""),
    (re.compile(r" \(or pass api_key= to Agent\.create\)"), ""),
    (re.compile(r" or api_key=(\.\.\.)?"), ""),
    (re.compile(r"check api_key=\.\.\."), "check the API key"),
    (re.compile(r" or base_url= "), " "),
    (re.compile(r"\btemperature=(\S+) is invalid"), r"-t \1 is invalid"),
    (re.compile(r"\bmax_tokens=(\S+) is invalid"), r"--max-tokens \1 is invalid"),
    (re.compile(r"\bpass model= "), "pass -m "),
]


def in_cli_words(text: str) -> str:
    """``text`` (written for the Python API) with the command's options for the settings it
    names: ``provider="local"`` -> ``-p local``, ``approval='auto'`` -> ``--approval auto``,
    ``api_key=`` -> only the environment variable."""
    for pattern, replacement in _CLI_WORDS:
        text = pattern.sub(replacement, text)
    return text


# -- lines on stderr ---------------------------------------------------------------------


def write_line(text: str) -> None:
    """One line on stderr, above a batch's live progress line if one is on the terminal."""
    progress = sys.modules.get("victor.batch.progress")  # no batch, no live line
    if progress is not None:
        progress.write_line(text)
    else:
        sys.stderr.write(f"{text}\n")
        sys.stderr.flush()


class _Terminal(logging.Handler):
    """victor's log records as lines on stderr: warnings and errors always, notices (a
    retry, a first use: records logged with ``extra={"notice": True}``) unless ``quiet``;
    everything at the level ``VICTOR_LOG_LEVEL`` asks for when it is set."""

    def __init__(self, quiet: bool, verbose: bool) -> None:
        super().__init__()
        self.quiet = quiet
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "notice", False):
            return not self.quiet
        return record.levelno >= logging.WARNING or self.verbose

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = in_cli_words(record.getMessage())
            if self.verbose:
                text = f"{record.levelname} {record.name}: {text}"
            if record.exc_info and self.verbose:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            write_line(f"victor: {text}")
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


@contextmanager
def terminal_logging(*, quiet: bool = False) -> Iterator[None]:
    """While the command runs, victor's log records are lines on stderr (see ``_Terminal``),
    written once each: nothing else writes them (logging's last resort included). With
    ``VICTOR_LOG_LEVEL`` set, the first agent sets that level (and finds this handler)."""
    import os

    victor_logger = logging.getLogger("victor")
    verbose = bool(os.environ.get("VICTOR_LOG_LEVEL", "").strip())
    handler = _Terminal(quiet, verbose)
    level = victor_logger.level
    victor_logger.addHandler(handler)
    if not verbose and victor_logger.getEffectiveLevel() > logging.INFO:
        victor_logger.setLevel(logging.INFO)  # notices are INFO
    try:
        yield
    finally:
        victor_logger.removeHandler(handler)
        victor_logger.setLevel(level)


# -- what a run does ---------------------------------------------------------------------


class RunLines:
    """Follows one run on its agent's bus: a line per tool call on stderr (unless
    ``quiet``), and the counts and stop reason the end of the run reports."""

    def __init__(self, bus: EventBus, *, quiet: bool = False) -> None:
        self.bus = bus
        self.quiet = quiet
        self.model_calls = 0
        self.tool_calls = 0
        self.stop_reason: str | None = None
        #: Whether answer text went to stdout since its last newline.
        self.open_line = False
        bus.subscribe("tool.execution", self._tool)
        bus.subscribe("tool.error", self._tool)
        bus.subscribe("provider.response", self._response)

    def close(self) -> None:
        for pattern, handler in (
            ("tool.execution", self._tool),
            ("tool.error", self._tool),
            ("provider.response", self._response),
        ):
            self.bus.unsubscribe(pattern, handler)

    def text(self, text: str) -> None:
        """Answer text as it streams, to stdout."""
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            self.open_line = not text.endswith("\n")

    def _response(self, event: Event) -> None:
        self.model_calls += 1
        self.stop_reason = event.data.get("stop_reason")

    def _tool(self, event: Event) -> None:
        self.tool_calls += 1
        if self.quiet:
            return
        data = event.data
        took = f"{data.get('duration_ms') or 0:,.0f} ms"
        if event.type == "tool.execution":
            outcome = f"ok ({len(str(data.get('result', ''))):,} chars, {took})"
        else:
            error = in_cli_words(str(data.get("error") or "").strip()).splitlines()
            outcome = f"failed: {_short(error[0], 300)} ({took})" if error else f"failed ({took})"
        if self.open_line and _isatty(sys.stdout):
            sys.stderr.write("\n")  # the answer so far ends its line on the terminal
            self.open_line = False
        write_line(f"→ {_call(data.get('tool_name', '?'), data.get('arguments'))} → {outcome}")

    def usage(self, run: RunFinished) -> str:
        """``[provider/model: 10 in, 5 out, 2 model calls, 1 tool call, 0.42 s]``."""
        return (
            f"[{run.provider}/{run.model}: {run.usage.input_tokens} in, "
            f"{run.usage.output_tokens} out, {_count(self.model_calls, 'model call')}, "
            f"{_count(self.tool_calls, 'tool call')}, {run.duration_ms / 1000:.2f} s]"
        )

    def empty(self, run: RunFinished) -> str | None:
        """What to say instead of an answer that is empty (None if it is not)."""
        if run.content.strip():
            return None
        how = "stopped at once" if run.usage.output_tokens <= 1 else "wrote only white space"
        return (
            f"(empty answer: the model {how}; stop reason {self.stop_reason or 'unknown'}, "
            f"{run.usage.output_tokens} token(s) out)"
        )


def _call(name: str, arguments: Any) -> str:
    if not isinstance(arguments, dict):
        return f"{name}()"
    shown = ", ".join(f"{key}={_short(repr(value), 40)}" for key, value in arguments.items())
    return f"{name}({_short(shown, 120)})"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
