"""Asking a person about a tool call on a terminal, and the words that answer it
(``ANSWERS``; the notebook's input box reads the same words)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Literal

__all__ = ["Answer", "ANSWERS", "ask_in_terminal", "stdin_is_tty"]

#: What a person answered: allow once, refuse, allow this tool for the rest of the run,
#: or nothing before the timeout.
Answer = Literal["yes", "no", "always", "timeout"]

#: One question on the terminal at a time, whichever loop or thread asks.
_terminal = threading.Lock()
#: What a person may type, and what it means.
ANSWERS: dict[str, Answer] = {
    "y": "yes",
    "yes": "yes",
    "n": "no",
    "no": "no",
    "a": "always",
    "always": "always",
}


async def ask_in_terminal(tool_name: str, request: str, timeout: float | None) -> Answer:
    """Ask about a call of ``tool_name`` (``request``: the request as text) on stderr and
    read the answer from stdin (a TTY), in a worker thread."""
    import asyncio

    stop = threading.Event()
    try:
        return await asyncio.to_thread(_prompt, tool_name, request, timeout, stop)
    finally:
        stop.set()  # a cancelled run stops the reader thread within a tenth of a second


def _prompt(tool_name: str, request: str, timeout: float | None, stop: threading.Event) -> Answer:
    import time

    question = (
        f"Allow {tool_name}? [y]es / [n]o / [a]lways for {tool_name} in this run"
        + (f" (no answer in {timeout:g} s: no)" if timeout else "")
        + ": "
    )
    with _terminal:
        deadline = None if timeout is None else time.monotonic() + timeout
        _say(f"\n{request}\n")
        while True:
            _say(question)
            line = _read_line(deadline, stop)
            if line is None:
                _say("\n(no answer: refused)\n" if not stop.is_set() else "\n")
                return "timeout" if not stop.is_set() else "no"
            if line == "":  # end of input (Ctrl-D)
                _say("\n")
                return "no"
            answer = ANSWERS.get(line.strip().lower())
            if answer is not None:
                return answer
            _say("Please answer y (yes), n (no) or a (always for this tool in this run).\n")


def _say(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _read_line(deadline: float | None, stop: threading.Event) -> str | None:
    """One line from stdin; ``""`` at end of input, ``None`` at the deadline or on stop."""
    import time

    if os.name != "posix":  # no select() on a console: wait without a timeout
        return sys.stdin.readline()
    import select

    fd = sys.stdin.fileno()
    while not stop.is_set():
        wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
        if wait <= 0:
            return None
        if select.select([fd], [], [], wait)[0]:
            # A terminal in canonical mode hands over one whole line per read.
            return os.read(fd, 4096).decode(errors="replace")
    return None


def stdin_is_tty() -> bool:
    """Whether a person can answer on stdin (a terminal)."""
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False
