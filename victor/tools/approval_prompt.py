"""An approval request as a person reads it, and the answer they type: the request as
plain text (``describe``), the words that answer it (``ANSWERS``), and the prompt on a
terminal (``ask_in_terminal``). The notebook's input box reads the same words.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .approval import Answer, ApprovalRequest

__all__ = ["ANSWERS", "ask_in_terminal", "describe", "stdin_is_tty"]

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


def describe(request: ApprovalRequest) -> str:
    """The request as plain text: who wants to call what, the arguments, the diff."""
    import json

    who = f"{request.agent} wants" if request.agent else "the model wants"
    lines = [f"{who} to call {request.tool_name}:"]
    for key, value in request.arguments.items():
        if request.preview is not None and key in ("content", "old_text", "new_text", "patch"):
            continue  # the diff shows these
        text = json.dumps(value, ensure_ascii=False, default=str)
        lines.append(f"  {key} = {text if len(text) <= 300 else text[:299] + '…'}")
    if request.preview:
        lines += ["", request.preview.rstrip("\n")]
    return "\n".join(lines)


async def ask_in_terminal(request: ApprovalRequest, timeout: float | None) -> Answer:
    """Ask on stderr and read the answer from stdin (a TTY), in a worker thread."""
    import asyncio

    stop = threading.Event()
    try:
        return await asyncio.to_thread(_prompt, request, timeout, stop)
    finally:
        stop.set()  # a cancelled run stops the reader thread within a tenth of a second


def _prompt(request: ApprovalRequest, timeout: float | None, stop: threading.Event) -> Answer:
    import time

    question = (
        f"Allow {request.tool_name}? [y]es / [n]o / [a]lways for {request.tool_name} in this run"
        + (f" (no answer in {timeout:g} s: no)" if timeout else "")
        + ": "
    )
    with _terminal:
        deadline = None if timeout is None else time.monotonic() + timeout
        _say(f"\n{describe(request)}\n")
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
