"""Approval fails closed: no input, an interrupt, or hostile text never turns into a yes.

Each test here was checked against a deliberate break of the property it names (an EOF
read as "yes", an interrupt approved and swallowed, an argument or agent name rendered
unescaped): the break fails it.
"""

from __future__ import annotations

import asyncio
import html
import os
import sys
import threading
from concurrent.futures import Future

import pytest

from victor.notebook import approval as cards
from victor.tools import ApprovalRequest, approval_prompt

pytestmark = pytest.mark.timeout(30)

SCRIPT = "<script>alert(1)</script>"
IMAGE = '<img src=x onerror="alert(2)">'


def request(**changes) -> ApprovalRequest:
    fields = {"tool_name": "run_python", "arguments": {"code": "print(1)"}, "agent": "helper"}
    return ApprovalRequest(**{**fields, **changes})


@pytest.mark.parametrize("payload", [SCRIPT, IMAGE])
def test_the_card_escapes_the_arguments_and_the_agent_name(payload):
    """The card is trusted HTML: a model-chosen argument or an agent's name is text in it."""
    hostile = request(arguments={"code": payload, payload: "key"}, agent=payload, preview=None)
    for state in ("pending", "yes", "no", "cancelled"):
        page = cards.card_bundle(hostile, state, timeout=5)["text/html"]
        assert "<script" not in page and "<img" not in page, page
        assert f"<b>{html.escape(payload)}</b> wants to call" in page  # the agent's name, as text
        assert "&lt;" in page.split("<pre", 1)[1]  # the arguments, as text


def test_the_card_escapes_a_hostile_tool_name_in_the_title():
    page = cards.card_bundle(request(tool_name=SCRIPT), "always")["text/html"]
    assert "<script" not in page


# -- the notebook's input box (the stdin channel) -------------------------------------------


class Shown:
    """What IPython's ``display`` showed: the card's states in order (no kernel here)."""

    def __init__(self, monkeypatch) -> None:
        self.states: list[str] = []
        monkeypatch.setattr("IPython.display.display", self.display)

    def display(self, bundle, raw=False, display_id=False):
        self.states.append(bundle["text/plain"].split("]", 1)[0] + "]")
        return self

    def update(self, bundle, raw=False):
        self.display(bundle)


def ask_with_input(monkeypatch, reply) -> Future:
    """``_ask_with_input`` with ``input()`` doing ``reply`` (raise it if an exception)."""

    def fake_input(prompt=""):
        if isinstance(reply, BaseException) or (
            isinstance(reply, type) and issubclass(reply, BaseException)
        ):
            raise reply
        return reply

    monkeypatch.setattr("builtins.input", fake_input)
    Shown(monkeypatch)
    answer: Future = Future()
    cards._ask_with_input(request(), answer)
    return answer


@pytest.mark.parametrize("failure", [EOFError, RuntimeError("no stdin"), OSError])
def test_the_input_box_refuses_when_no_input_is_possible(monkeypatch, failure):
    """EOF or a front end without stdin (input() raises): the answer is no, never yes."""
    answer = ask_with_input(monkeypatch, failure)
    assert answer.result(timeout=0) == "no"


def test_an_interrupt_at_the_input_box_refuses_and_propagates(monkeypatch):
    answer: Future = Future()
    shown = Shown(monkeypatch)

    def interrupted(prompt=""):
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cards._ask_with_input(request(), answer)
    assert answer.cancelled()  # not an answer, and certainly not "yes"
    assert shown.states == ["[Approval needed]", "[Not run: the run was interrupted]"]


def test_the_input_box_takes_a_real_answer(monkeypatch):
    assert ask_with_input(monkeypatch, "a").result(timeout=0) == "always"


async def test_an_interrupt_while_a_card_waits_cancels_the_question(monkeypatch):
    """ask_in_notebook cancelled while the card waits: the run is cancelled, not approved."""
    shown: list[cards.Card] = []
    monkeypatch.setattr(cards, "call_in_main", lambda function: function())
    monkeypatch.setattr(cards.Card, "show", lambda self, pump: shown.append(self))
    finished: list[str] = []
    monkeypatch.setattr(cards.Card, "finish", lambda self, outcome: finished.append(outcome))
    task = asyncio.create_task(cards.ask_in_notebook(request(), "widget", None))
    while not shown:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert shown[0].answer.cancelled() and finished == ["cancelled"]


# -- the terminal prompt ----------------------------------------------------------------------


#: What the terminal prompt is asked: the tool's name and the request as text.
ASKED = ("write_file", "agent wants to call write_file")


@pytest.fixture
def stdin_pipe(monkeypatch):
    """stdin is a pipe; yields its write end."""
    read, write = os.pipe()
    reader = os.fdopen(read, "r")
    monkeypatch.setattr(sys, "stdin", reader)
    writer = os.fdopen(write, "w")
    yield writer
    reader.close()
    if not writer.closed:
        writer.close()


def test_end_of_input_at_the_terminal_is_a_no(stdin_pipe):
    stdin_pipe.close()  # Ctrl-D: end of input
    assert approval_prompt._prompt(*ASKED, None, threading.Event()) == "no"


def test_the_terminal_takes_a_real_answer(stdin_pipe):
    stdin_pipe.write("y\n")
    stdin_pipe.flush()
    assert approval_prompt._prompt(*ASKED, None, threading.Event()) == "yes"


def test_a_stopped_prompt_is_a_no(stdin_pipe):
    stop = threading.Event()
    stop.set()
    assert approval_prompt._read_line(None, stop) is None
    assert approval_prompt._prompt(*ASKED, None, stop) == "no"


def test_no_answer_before_the_deadline_is_a_timeout(stdin_pipe):
    assert approval_prompt._prompt(*ASKED, 0.2, threading.Event()) == "timeout"


async def test_an_interrupt_while_the_terminal_asks_propagates_and_refuses(stdin_pipe):
    """Cancelling the run (Ctrl-C in asyncio.run) while the prompt waits: the cancellation
    propagates and the reader thread stops with a no; nothing is approved."""
    answers: list[str] = []
    original = approval_prompt._prompt

    def prompt(*args):
        answers.append(original(*args))
        return answers[-1]

    patch = pytest.MonkeyPatch()
    patch.setattr(approval_prompt, "_prompt", prompt)
    try:
        task = asyncio.create_task(approval_prompt.ask_in_terminal(*ASKED, None))
        await asyncio.sleep(0.3)  # the prompt is waiting for a line
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the worker thread ends within a tenth of a second
            if answers:
                break
            await asyncio.sleep(0.05)
    finally:
        patch.undo()
    assert answers == ["no"]
