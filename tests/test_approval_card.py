"""The notebook's approval card, in this process: what each state looks like and says, what
it shows of a call, its buttons, and the card's life (shown, clicked, finished once).

IPython's ``display`` is faked (no kernel here); the buttons are real ipywidgets.
tests/test_approval_kernel.py drives the card in a real kernel. Written against mutation
testing (bench/mutation.py): each assertion fails on a deliberate break of what it names.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest

from victor.notebook import approval as cards
from victor.tools import ApprovalRequest

pytestmark = pytest.mark.timeout(30)
widgets = pytest.importorskip("ipywidgets")


def request(**changes) -> ApprovalRequest:
    fields = {"tool_name": "run_python", "arguments": {"code": "print(1)"}, "agent": "helper"}
    return ApprovalRequest(**{**fields, **changes})


GREEN, RED, AMBER, GREY = "#1a7f37", "#cf222e", "#b26b00", "#6e7781"
LOOKS = {
    "pending": (AMBER, "⚠ Approval needed"),
    "yes": (GREEN, "✔ Approved"),
    "always": (GREEN, "✔ Approved for every run_python call in this run"),
    "no": (RED, "✘ Denied"),
    "timeout": (RED, "✘ Denied: no answer within 7.5 s"),
    "cancelled": (GREY, "■ Not run: the run was interrupted"),
}


@pytest.mark.parametrize("state", LOOKS)
def test_each_state_looks_like_what_it_means(state):
    colour, title = LOOKS[state]
    page = cards.card_bundle(request(), state, timeout=7.5)["text/html"]
    lines = page.split("\n")
    assert lines[0] == (
        f'<div class="victor-approval" style="border:1px solid {colour};border-left:5px solid '
        f'{colour};border-radius:4px;padding:6px 12px;margin:2px 0;max-width:60rem">'
    )
    assert lines[1] == f'<div style="color:{colour};font-weight:bold">{title}</div>'
    assert lines[-1] == "</div>"
    plain = cards.card_bundle(request(), state, timeout=7.5)["text/plain"]
    assert plain.startswith(f"[{title[2:]}] helper wants to call run_python:")


def test_a_pending_card_says_how_long_it_waits():
    waiting = cards.card_bundle(request(), "pending", timeout=5)
    assert (
        '<div style="font-style:italic">Waiting for your answer (denied if there is none '
        "within 5 s)…</div>" in waiting["text/html"]
    )
    assert waiting["text/plain"].endswith(
        "\nWaiting for your answer (denied if there is none within 5 s)…"
    )
    forever = cards.card_bundle(request(), "pending")
    assert '<div style="font-style:italic">Waiting for your answer…</div>' in forever["text/html"]
    assert forever["text/plain"].endswith("\nWaiting for your answer…")
    decided = cards.card_bundle(request(), "yes", timeout=5)
    assert "Waiting" not in decided["text/html"] and "Waiting" not in decided["text/plain"]
    assert cards.card_bundle(request(), "timeout")["text/plain"].startswith(
        "[Denied: no answer within 0 s]"
    )


PRE = (
    '<pre style="margin:4px 0;padding:4px 8px;white-space:pre-wrap;'
    'background:rgba(127,127,127,0.08)">'
)


def test_the_card_shows_the_arguments_the_code_and_the_note():
    page = cards.card_bundle(
        request(
            arguments={"code": "x = 1 < 2", "label": "é" * 498, "long": "z" * 499},
            code_argument="code",
            note="Cannot be undone & final.",
        )
    )["text/html"]
    assert page.split("\n")[2] == (
        '<div style="margin:4px 0"><b>helper</b> wants to call <code>run_python</code></div>'
    )
    # 500 characters of JSON: whole; 501 cut to 499 and an ellipsis (500 shown).
    assert f"{PRE}label = &quot;{'é' * 498}&quot;\nlong = &quot;{'z' * 498}…</pre>" in page
    assert f'{PRE}<code class="language-python">x = 1 &lt; 2</code></pre>' in page
    assert '<div style="margin:4px 0"><b>Note:</b> Cannot be undone &amp; final.</div>' in page
    anonymous = cards.card_bundle(request(agent=None, arguments={}))["text/html"]
    assert "<b>The model</b> wants to call" in anonymous and "<pre" not in anonymous


def test_with_a_diff_the_card_shows_the_changed_text_only_in_the_diff():
    page = cards.card_bundle(
        request(
            tool_name="edit_file",
            arguments={"file_path": "a.txt", "old_text": "o", "new_text": "n", "patch": "p"}
            | {"content": "c", "replace_all": True},
            preview="--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old <b>\n+new\n same",
        )
    )["text/html"]
    assert f"{PRE}file_path = &quot;a.txt&quot;\nreplace_all = true</pre>" in page
    assert (
        f"{PRE}--- a/a.txt\n+++ b/a.txt\n"
        f'<span style="color:#0969da">@@ -1 +1 @@</span>\n'
        f'<span style="color:{RED}">-old &lt;b&gt;</span>\n'
        f'<span style="color:{GREEN}">+new</span>\n same</pre>'
    ) in page


class Screen:
    """IPython's display, faked: what is on screen, by display id."""

    def __init__(self, monkeypatch) -> None:
        self.outputs: list[Output] = []
        monkeypatch.setattr("IPython.display.display", self.display)

    def display(self, obj, raw=False, display_id=False):
        assert display_id is True  # every output is updated later
        self.outputs.append(Output(obj, raw))
        return self.outputs[-1]


class Output:
    def __init__(self, obj, raw) -> None:
        self.shown, self.raw = [obj], raw

    def update(self, obj, raw=False):
        assert raw
        self.shown.append(obj)


def test_the_buttons_answer_and_say_what_they_do():
    clicked = []
    row = cards._buttons("deploy", clicked.append)
    approve, deny, always = row.children
    assert [(b.description, b.button_style, b.icon, b.tooltip) for b in row.children] == [
        ("Approve", "success", "check", "Approve: deploy"),
        ("Deny", "danger", "times", "Deny: deploy"),
        (
            "Always for deploy in this run",
            "",
            "check-double",
            "Always for deploy in this run: deploy",
        ),
    ]
    assert all(b.layout.width == "auto" for b in row.children)
    for button in (deny, always, approve):
        button.click()
    assert clicked == ["no", "always", "yes"]
    assert repr(row) == "(Approve / Deny / Always buttons: this front end does not show widgets)"


def test_a_card_is_shown_answered_by_a_click_and_finished_once(monkeypatch):
    screen = Screen(monkeypatch)
    answer: Future = Future()
    card = cards.Card(request(), answer, 30)
    card.show(pump=False)  # the kernel reads the click itself
    shown, buttons = screen.outputs
    assert shown.raw and shown.shown == [cards.card_bundle(request(), "pending", timeout=30)]
    assert not answer.done()
    buttons.shown[0].children[2].click()  # Always
    buttons.shown[0].children[0].click()  # a second click: the first answer stands
    assert answer.result(timeout=0) == "always"
    card.finish("always")
    assert shown.shown[-1] == cards.card_bundle(request(), "always", timeout=30)
    assert buttons.shown[-1] == {"text/plain": ""}  # the buttons are gone
    row = buttons.shown[0]
    assert row.comm is None and all(b.comm is None for b in row.children)  # closed
    card.finish("no")
    assert len(shown.shown) == 2  # finished once: the decision stays


def test_a_card_whose_question_was_answered_before_its_turn_shows_nothing(monkeypatch):
    screen = Screen(monkeypatch)
    answer: Future = Future()
    answer.set_result("yes")
    cards.Card(request(), answer, None).show(pump=True)
    cancelled: Future = Future()
    cancelled.cancel()
    cards.Card(request(), cancelled, None).show(pump=True)
    assert screen.outputs == []


def kernel(manager) -> SimpleNamespace:
    return SimpleNamespace(shell_channel_thread=SimpleNamespace(manager=manager))


def test_widgets_work_only_on_a_kernel_with_a_main_shell_inbox():
    seven = SimpleNamespace(get_shell_channel_to_subshell_pair=lambda ident: None)
    assert cards.widgets_work(kernel(seven)) is True
    assert cards.widgets_work(kernel(SimpleNamespace())) is False  # ipykernel 6
    assert cards.widgets_work(SimpleNamespace()) is False  # no shell-channel thread


@pytest.mark.parametrize(
    "version, reach", [((7, 4, 0), True), ((8, 0), True), ((7, 3, 9), False), ((6, 29), False)]
)
def test_comms_reach_an_awaiting_cell_from_ipykernel_7_4(monkeypatch, version, reach):
    import ipykernel

    monkeypatch.setattr(ipykernel, "version_info", version)
    assert cards._comms_reach_awaiting_cells() is reach


class Shown:
    """Card.show and finish, recorded (what ask_in_notebook asks of the main thread)."""

    def __init__(self, monkeypatch, click=None) -> None:
        self.pumps, self.finished, self.cards = [], [], []
        monkeypatch.setattr(cards, "call_in_main", lambda function: function())
        monkeypatch.setattr(cards.Card, "show", lambda card, pump: self.show(card, pump))
        monkeypatch.setattr(
            cards.Card, "finish", lambda card, outcome: self.finished.append(outcome)
        )
        self.click = click

    def show(self, card, pump):
        self.pumps.append(pump)
        self.cards.append(card)
        if self.click:
            card._click(self.click)


async def test_a_click_is_the_answer_and_the_card_shows_it(monkeypatch):
    shown = Shown(monkeypatch, click="yes")
    assert await cards.ask_in_notebook(request(), "widget", 30) == "yes"
    assert shown.finished == ["yes"] and shown.cards[0].timeout == 30
    assert shown.cards[0].request == request()


async def test_no_click_in_time_is_a_timeout(monkeypatch):
    shown = Shown(monkeypatch)
    assert await cards.ask_in_notebook(request(), "widget", 0.05) == "timeout"
    assert shown.finished == ["timeout"]


@pytest.mark.parametrize("version, pump", [((7, 4), False), ((7, 3), True)])
async def test_victor_reads_the_clicks_only_where_the_kernel_cannot(monkeypatch, version, pump):
    import ipykernel

    monkeypatch.setattr(ipykernel, "version_info", version)
    shown = Shown(monkeypatch, click="no")
    assert await cards.ask_in_notebook(request(), "widget", None) == "no"
    assert shown.pumps == [pump]  # on the main thread: only where the kernel cannot read


async def test_a_run_in_a_thread_leaves_the_clicks_to_the_kernel(monkeypatch):
    import ipykernel

    monkeypatch.setattr(ipykernel, "version_info", (7, 3))
    shown = Shown(monkeypatch, click="yes")
    thread_answer = await asyncio.to_thread(
        asyncio.run, cards.ask_in_notebook(request(), "widget", None)
    )
    assert thread_answer == "yes" and shown.pumps == [False]  # the idle kernel reads them


async def test_the_input_channel_asks_with_input(monkeypatch):
    monkeypatch.setattr(cards, "call_in_main", lambda function: function())
    Screen(monkeypatch)
    replies = iter(["maybe", " Y "])
    asked, said = [], []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or next(replies))
    monkeypatch.setattr("builtins.print", lambda *args, **kw: said.append(" ".join(args)))
    assert await cards.ask_in_notebook(request(), "input", None) == "yes"
    assert asked == ["Allow run_python? [y]es / [n]o / [a]lways for run_python in this run: "] * 2
    assert said == ["Please answer y (yes), n (no) or a (always for this tool in this run)."]


def test_the_input_box_shows_the_card_and_its_decision(monkeypatch):
    screen = Screen(monkeypatch)
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    answer: Future = Future()
    cards._ask_with_input(request(), answer)
    assert answer.result(timeout=0) == "no"
    [card] = screen.outputs
    assert card.raw and card.shown == [
        cards.card_bundle(request(), "pending"),
        cards.card_bundle(request(), "no"),
    ]
    done: Future = Future()
    done.set_result("yes")
    cards._ask_with_input(request(), done)  # already answered: nothing shown, nothing asked
    assert len(screen.outputs) == 1


# -- a card that waits on the main thread, reading the shell channel itself -------------------


class Inbox:
    """ShellInbox, faked: each pump is a tick of a fake clock; ``on_pump`` may click."""

    def __init__(self, monkeypatch, clock: list[float], on_pump=None) -> None:
        self.kernel = object()
        self.timeouts: list[float] = []
        self.released = 0
        self.on_pump = on_pump
        monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace(kernel=self.kernel))
        monkeypatch.setattr(cards, "ShellInbox", self.open)
        monkeypatch.setattr(cards, "time", SimpleNamespace(monotonic=lambda: clock[0]))
        self.clock = clock

    def open(self, kernel):
        assert kernel is self.kernel  # the running kernel's inbox
        return self

    def pump(self, timeout: float) -> int:
        self.timeouts.append(timeout)
        self.clock[0] += timeout
        if self.on_pump:
            self.on_pump(len(self.timeouts))
        return 0

    def release(self) -> None:
        self.released += 1


def waiting_card(monkeypatch, timeout, on_pump=None):
    screen = Screen(monkeypatch)
    inbox = Inbox(monkeypatch, [100.0], on_pump)
    card = cards.Card(request(), Future(), timeout)
    return card, inbox, screen


def test_a_waiting_card_reads_clicks_until_one_comes(monkeypatch):
    card, inbox, screen = waiting_card(monkeypatch, None, lambda n: n == 3 and card._click("no"))
    card.show(pump=True)
    assert card.answer.result(timeout=0) == "no"
    assert inbox.timeouts == [0.1, 0.1, 0.1] and inbox.released == 1
    assert screen.outputs[0].shown[-1] == cards.card_bundle(request(), "no")


def test_a_waiting_card_denies_at_its_deadline(monkeypatch):
    card, inbox, screen = waiting_card(monkeypatch, 0.25)
    card.show(pump=True)
    assert card.answer.result(timeout=0) == "timeout"
    assert inbox.timeouts == pytest.approx([0.1, 0.1, 0.05])  # up to the deadline, no further
    assert inbox.released == 1
    assert screen.outputs[0].shown[-1] == cards.card_bundle(request(), "timeout", timeout=0.25)
    assert "Denied: no answer within 0.25 s" in screen.outputs[0].shown[-1]["text/plain"]


def test_an_interrupt_while_the_card_waits_cancels_it(monkeypatch):
    def stop(n):
        raise KeyboardInterrupt

    card, inbox, screen = waiting_card(monkeypatch, 5, stop)
    with pytest.raises(KeyboardInterrupt):
        card.show(pump=True)
    assert card.answer.cancelled() and inbox.released == 1
    assert screen.outputs[0].shown[-1] == cards.card_bundle(request(), "cancelled", timeout=5)


def test_a_card_shown_from_another_thread_does_not_read_the_shell(monkeypatch):
    card, inbox, screen = waiting_card(monkeypatch, 5)
    thread = threading.Thread(target=card.show, kwargs={"pump": True})
    thread.start()
    thread.join(10)
    assert inbox.timeouts == [] and not card.answer.done()  # the kernel reads the clicks
    assert len(screen.outputs) == 2  # the card and its buttons are shown
    assert screen.outputs[1].shown[0].children[2].description == "Always for run_python in this run"


def test_without_ipywidgets_or_ipykernel_there_are_no_buttons(monkeypatch):
    seven = SimpleNamespace(get_shell_channel_to_subshell_pair=lambda ident: None)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed
    assert cards.widgets_work(kernel(seven)) is False
    monkeypatch.setitem(sys.modules, "ipykernel", None)
    assert cards._comms_reach_awaiting_cells() is False


def test_a_decided_card_says_nothing_more_and_keeps_its_timeout(monkeypatch):
    decided = cards.card_bundle(request(arguments={"where": Path("/srv")}), "yes", timeout=5)
    assert "font-style:italic" not in decided["text/html"]
    assert decided["text/plain"] == "[Approved] " + request(arguments={"where": "/srv"}).describe()
    assert "where = &quot;/srv&quot;" in decided["text/html"]  # any value, as text
    screen = Screen(monkeypatch)
    card = cards.Card(request(), Future(), 30)
    card.show(pump=False)
    card.finish("timeout")
    assert screen.outputs[0].shown[-1]["text/plain"].startswith("[Denied: no answer within 30 s]")


def test_the_input_box_refuses_when_the_process_is_leaving(monkeypatch):
    Screen(monkeypatch)

    def leaving(prompt=""):
        raise SystemExit(1)

    monkeypatch.setattr("builtins.input", leaving)
    answer: Future = Future()
    with pytest.raises(SystemExit):
        cards._ask_with_input(request(), answer)
    assert answer.result(timeout=0) == "no"


# -- the main shell's inbox, over real zmq sockets and a real jupyter session ------------------


class Kernel:
    """What ShellInbox uses of an ipykernel 7 kernel: its session, its shell-channel pair,
    the comm manager, the parent message and the loop (the rest of the kernel is not here)."""

    def __init__(self, socket, failing: str | None = None) -> None:
        from jupyter_client.session import Session

        self.session = Session(key=b"kernel key")
        self.stream = SimpleNamespace(_run_callback=object(), _recv_callback=object())
        pair = SimpleNamespace(to_socket=socket, to_stream=self.stream)

        def get_pair(ident):
            assert ident is None  # the main shell's
            return pair

        self.shell_channel_thread = SimpleNamespace(
            manager=SimpleNamespace(get_shell_channel_to_subshell_pair=get_pair)
        )
        self.handled: list[tuple] = []
        self.parents: list[tuple] = []
        self.errors: list[tuple] = []
        self.callbacks: list[tuple] = []
        self._shell_parent_ident = "the ident variable"
        self.ident, self.parent = [b"cell"], {"header": {"msg_id": "the cell"}}
        self.io_loop = SimpleNamespace(add_callback=lambda *args: self.callbacks.append(args))
        self.log = SimpleNamespace(error=lambda *args, **kw: self.errors.append((args, kw)))
        self.failing = failing

        def handler(kind):
            def handle(stream, idents, message):
                self.handled.append((kind, stream, idents, message["content"], self.parent))
                if kind == self.failing:
                    raise ValueError("a broken widget")

            return handle

        self.comm_manager = SimpleNamespace(**{k: handler(k) for k in cards._COMM_MESSAGES})

    def _get_shell_context_var(self, var):
        assert var == "the ident variable"
        return self.ident

    def get_parent(self, channel):
        assert channel == "shell"
        return self.parent

    def set_parent(self, ident, parent, channel):
        assert channel == "shell"
        self.parents.append((ident, parent["header"]["msg_id"]))
        self.ident, self.parent = ident, parent


@pytest.fixture
def shell():
    zmq = pytest.importorskip("zmq")
    context = zmq.Context()
    kernel_side, front_end = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    kernel_side.bind("inproc://shell")
    front_end.connect("inproc://shell")
    yield kernel_side, front_end
    kernel_side.close(0)
    front_end.close(0)
    context.term()


def send(kernel: Kernel, socket, kind: str, content: dict) -> str:
    return kernel.session.send(socket, kind, content, ident=[b"front end"])["header"]["msg_id"]


def test_the_inbox_handles_comms_now_and_hands_the_rest_back_in_order(shell):
    kernel_side, front_end = shell
    kernel = Kernel(kernel_side)
    inbox = cards.ShellInbox(kernel)
    click = send(kernel, front_end, "comm_msg", {"comm_id": "b1", "data": {"event": "click"}})
    run = send(kernel, front_end, "execute_request", {"code": "next cell"})
    front_end.send_multipart([b"not a message"])
    opened = send(kernel, front_end, "comm_open", {"comm_id": "b2"})
    assert inbox.pump(2.0) == 2
    assert [
        (kind, stream, idents, content) for kind, stream, idents, content, _ in kernel.handled
    ] == [
        ("comm_msg", None, [b"front end"], {"comm_id": "b1", "data": {"event": "click"}}),
        ("comm_open", None, [b"front end"], {"comm_id": "b2"}),
    ]
    # Each comm is handled as its own message, and the cell's parent is restored after it.
    assert [parent["header"]["msg_id"] for *_, parent in kernel.handled] == [click, opened]
    assert kernel.parents == [
        ([b"front end"], click),
        ([b"cell"], "the cell"),
        ([b"front end"], opened),
        ([b"cell"], "the cell"),
    ]
    assert kernel.callbacks == []  # nothing handed back while the cell runs
    inbox.release()
    assert [args[:2] for args in kernel.callbacks] == [
        (kernel.stream._run_callback, kernel.stream._recv_callback)
    ] * 2
    handed_back = [[bytes(f.buffer) for f in args[2]] for args in kernel.callbacks]
    assert handed_back[1] == [b"not a message"]
    # The kernel reads the next cell later as if fresh: peeking did not record its signature.
    idents, parts = kernel.session.feed_identities(handed_back[0])
    message = kernel.session.deserialize(parts)
    assert (message["header"]["msg_id"], message["content"]) == (run, {"code": "next cell"})
    inbox.release()
    assert len(kernel.callbacks) == 2  # handed back once


def test_a_failing_comm_handler_is_logged_and_the_inbox_keeps_serving(shell):
    kernel_side, front_end = shell
    kernel = Kernel(kernel_side, failing="comm_msg")
    inbox = cards.ShellInbox(kernel)
    send(kernel, front_end, "comm_msg", {"comm_id": "b1"})
    send(kernel, front_end, "comm_close", {"comm_id": "b1"})
    assert inbox.pump(2.0) == 2
    assert [h[0] for h in kernel.handled] == ["comm_msg", "comm_close"]
    assert kernel.errors == [(("Exception in %s handler", "comm_msg"), {"exc_info": True})]
    assert kernel.ident == [b"cell"] and kernel.parent["header"]["msg_id"] == "the cell"


def test_an_empty_inbox_waits_only_as_long_as_asked(shell):
    kernel_side, _ = shell
    inbox = cards.ShellInbox(Kernel(kernel_side))
    started = time.monotonic()
    assert inbox.pump(-0.5) == 0  # a deadline just past: no wait, never "wait forever"
    assert inbox.pump(0.2) == 0
    assert 0.15 <= time.monotonic() - started < 10


def test_a_question_cancelled_by_the_run_while_the_card_waits_ends_the_wait(monkeypatch):
    # ask_in_notebook cancels the answer when the run is cancelled (from the run's thread).
    card, inbox, screen = waiting_card(monkeypatch, None, lambda n: n == 2 and card.answer.cancel())
    card.show(pump=True)  # no error: the wait ends and the card says why
    assert inbox.timeouts == [0.1, 0.1] and inbox.released == 1
    assert screen.outputs[0].shown[-1] == cards.card_bundle(request(), "cancelled")
