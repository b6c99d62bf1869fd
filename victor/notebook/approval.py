"""Approval cards: a tool call waiting for a person, in the output of the cell that runs it.

The card is an HTML output (the tool, its arguments, a diff for file writes and edits) that
stays in the saved notebook with the decision, above a row of ipywidgets buttons:
Approve, Deny, Always for this tool in this run.

The trap: a button click is a ``comm_msg`` on the kernel's shell channel, and a kernel busy
running the cell reads that channel only when the cell is done. What reaches a busy kernel:

- ipykernel >= 7.4 dispatches comm messages while an *async* cell awaits (the cell holds
  the shell's lock; comms skip it). A run started with top-level ``await`` just waits.
- A *sync* cell (``%%victor``, ``agent.run_sync``) blocks the kernel's loop in
  ``run_sync``, so nothing is read. While such a card waits, victor reads the main shell's
  inbox itself (``ShellInbox``): comm messages are handled at once, anything else
  (the next cell of "Run all", a completion request) is set aside and handed back to the
  kernel, in order, to run after the cell. This is what ``jupyter-ui-poll`` does on
  ipykernel 6; its 1.1 release calls ``kernel.do_one_iteration()``, which ipykernel 7.1
  removed, so it cannot be used here. The mechanism is on the kernel side, so it works
  with any front end that sends widget messages on the shell channel: JupyterLab,
  Notebook 7, VS Code.
- ipykernel 7 subshells would let a front end send comms to another thread, but no front
  end's widget manager targets a subshell; the stdin channel (``input()``) reaches a busy
  kernel in every front end and is the fallback where widgets cannot work (no ipywidgets,
  ipykernel 6).
"""

from __future__ import annotations

import functools
import html
import json
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal

from .._sync import call_in_main, in_run_sync

if TYPE_CHECKING:
    from ..tools.approval import ApprovalRequest
    from ..tools.approval_prompt import Answer

__all__ = ["ShellInbox", "ask_in_notebook", "card_bundle", "widgets_work"]

State = Literal["pending", "yes", "no", "always", "timeout", "cancelled"]
_COMM_MESSAGES = ("comm_open", "comm_msg", "comm_close")
#: Longest argument value a card shows.
ARGUMENT_LIMIT = 500


def widgets_work(kernel: Any) -> bool:
    """Whether a card's buttons can reach ``kernel`` while a cell runs: ipywidgets is
    installed and the kernel is ipykernel 7 (a main-shell inbox victor can read)."""
    thread = getattr(kernel, "shell_channel_thread", None)
    if thread is None or not hasattr(thread.manager, "get_shell_channel_to_subshell_pair"):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _comms_reach_awaiting_cells() -> bool:
    """ipykernel >= 7.4 handles comm messages while an async cell awaits."""
    try:
        from ipykernel import version_info
    except ImportError:  # pragma: no cover - widgets_work said ipykernel is there
        return False
    return tuple(int(part) for part in version_info[:2]) >= (7, 4)  # type: ignore[arg-type]


async def ask_in_notebook(request: ApprovalRequest, channel: str, timeout: float | None) -> Answer:
    """Put ``request`` to the person at the notebook; their answer (``"timeout"`` if none).

    Display and waiting happen on the kernel's main thread (``call_in_main``), where the
    cell's output goes and where the shell channel may be read.
    """
    import asyncio

    answer: Future[Answer] = Future()
    if channel == "input":
        call_in_main(lambda: _ask_with_input(request, answer))
        return await asyncio.wrap_future(answer)
    card = Card(request, answer, timeout)
    # Who reads the click: the kernel itself (an awaiting async cell on ipykernel >= 7.4,
    # or an idle kernel for a run in a thread), or victor, blocking the main thread.
    on_main = threading.current_thread() is threading.main_thread()
    pump = in_run_sync() or (on_main and not _comms_reach_awaiting_cells())
    call_in_main(lambda: card.show(pump=pump))
    try:
        done, _ = await asyncio.wait({asyncio.wrap_future(answer)}, timeout=timeout)
    except BaseException:  # the run was cancelled: so is the question
        answer.cancel()
        call_in_main(lambda: card.finish("cancelled"))
        raise
    if not done:
        _settle(answer, "timeout")
    if answer.cancelled():  # the stop button, seen by the main thread while it waited
        raise asyncio.CancelledError
    outcome = answer.result()
    call_in_main(lambda: card.finish(outcome))
    return outcome


class Card:
    """One pending call on screen: the HTML card and its buttons, on the main thread."""

    def __init__(self, request: ApprovalRequest, answer: Future[Answer], timeout: float | None):
        self.request = request
        self.answer = answer
        self.timeout = timeout
        self._card: Any = None
        self._buttons: Any = None
        self._buttons_handle: Any = None
        self._finished = False

    def show(self, *, pump: bool) -> None:
        """Display the card; with ``pump``, also wait here, reading the shell channel."""
        from IPython.display import display

        if self.answer.done():  # the run was cancelled before the card got its turn
            return self.finish("cancelled" if self.answer.cancelled() else self.answer.result())
        started = time.monotonic()
        self._card = display(
            card_bundle(self.request, "pending", timeout=self.timeout), raw=True, display_id=True
        )
        self._buttons = _buttons(self.request.tool_name, self._click)
        self._buttons_handle = display(self._buttons, display_id=True)
        if not pump or threading.current_thread() is not threading.main_thread():
            return
        from IPython import get_ipython

        inbox = ShellInbox(get_ipython().kernel)
        deadline = None if self.timeout is None else started + self.timeout
        try:
            while not self.answer.done():
                if deadline is not None and time.monotonic() >= deadline:
                    _settle(self.answer, "timeout")
                    break
                inbox.pump(0.1 if deadline is None else min(0.1, deadline - time.monotonic()))
        except BaseException:  # the stop button: the run is cancelled, the card says so
            self.answer.cancel()
            self.finish("cancelled")
            raise
        finally:
            inbox.release()
        self.finish("cancelled" if self.answer.cancelled() else self.answer.result())

    def _click(self, answer: Answer) -> None:
        # Runs while a comm message is handled: only settle here; rendering happens with
        # the cell's own parent message, in show() or finish().
        _settle(self.answer, answer)

    def finish(self, outcome: State) -> None:
        """Show the decision; remove the buttons (once)."""
        if self._finished or self._card is None:
            return
        self._finished = True
        self._card.update(card_bundle(self.request, outcome, timeout=self.timeout), raw=True)
        self._buttons_handle.update({"text/plain": ""}, raw=True)
        for widget in (*self._buttons.children, self._buttons):
            widget.close()


class ShellInbox:
    """The main shell's inbox on ipykernel 7, read from inside a running cell.

    ipykernel 7's shell-channel thread forwards each message for the main shell over an
    in-process socket that the kernel's (now blocked) loop would read. ``pump`` reads it:
    comm messages are handled now, as the kernel would with the parent message restored
    afterwards; the rest are set aside, and ``release`` hands them back to the kernel's
    loop in arrival order, to run after the cell (execute requests wait for its lock).
    Call both on the main thread, while the cell runs.
    """

    def __init__(self, kernel: Any) -> None:
        pair = kernel.shell_channel_thread.manager.get_shell_channel_to_subshell_pair(None)
        self.kernel = kernel
        self.socket = pair.to_socket
        self.stream = pair.to_stream
        self.set_aside: list[Any] = []

    def pump(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for messages; handle comms. Returns how many."""
        import zmq

        handled = 0
        if not self.socket.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
            return handled
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return handled
            if self._handle(frames):
                handled += 1
            else:
                self.set_aside.append(frames)

    def release(self) -> None:
        """Hand set-aside messages back to the kernel's loop, in the order they came."""
        stream, self.set_aside, waiting = self.stream, [], self.set_aside
        for frames in waiting:
            # Exactly what the socket's own ZMQStream does with a message it reads.
            self.kernel.io_loop.add_callback(stream._run_callback, stream._recv_callback, frames)

    def _handle(self, frames: list[Any]) -> bool:
        session, kernel = self.kernel.session, self.kernel
        try:
            idents, parts = session.feed_identities(frames, copy=False)
            # Peek at the header only: a full read records the signature, and the kernel
            # would reject a message set aside now as a replay later.
            kind = session.deserialize(parts, content=False, copy=False)["header"]["msg_type"]
        except Exception:  # noqa: BLE001 - not ours to judge (e.g. ipykernel's own markers)
            return False
        if kind not in _COMM_MESSAGES:
            return False
        message = session.deserialize(parts, content=True, copy=False)
        ident = kernel._get_shell_context_var(kernel._shell_parent_ident)
        parent = kernel.get_parent("shell")
        try:
            kernel.set_parent(idents, message, channel="shell")
            getattr(kernel.comm_manager, kind)(None, idents, message)
        except Exception:  # noqa: BLE001 - as the kernel does: log, keep serving
            kernel.log.error("Exception in %s handler", kind, exc_info=True)
        finally:
            kernel.set_parent(ident, parent, channel="shell")  # output stays in the cell
        return True


# -- rendering -----------------------------------------------------------------------------

_LOOKS: dict[str, tuple[str, str, str]] = {
    # state: (colour, icon, title)
    "pending": ("#b26b00", "⚠", "Approval needed"),
    "yes": ("#1a7f37", "✔", "Approved"),
    "always": ("#1a7f37", "✔", "Approved for every {tool} call in this run"),
    "no": ("#cf222e", "✘", "Denied"),
    "timeout": ("#cf222e", "✘", "Denied: no answer within {timeout:g} s"),
    "cancelled": ("#6e7781", "■", "Not run: the run was interrupted"),
}


def card_bundle(
    request: ApprovalRequest, state: State = "pending", *, timeout: float | None = None
) -> dict[str, str]:
    """The card as HTML and plain text (no JavaScript, so saved notebooks show it)."""
    colour, icon, title = _LOOKS[state]
    title = title.format(tool=request.tool_name, timeout=timeout or 0)
    if state == "pending":
        status = "Waiting for your answer" + (
            f" (denied if there is none within {timeout:g} s)" if timeout else ""
        )
    else:
        status = ""
    who = html.escape(request.agent or "The model")
    parts = [
        f'<div class="victor-approval" style="border:1px solid {colour};'
        f"border-left:5px solid {colour};border-radius:4px;padding:6px 12px;margin:2px 0;"
        f'max-width:60rem">',
        f'<div style="color:{colour};font-weight:bold">{icon} {html.escape(title)}</div>',
        f'<div style="margin:4px 0"><b>{who}</b> wants to call '
        f"<code>{html.escape(request.tool_name)}</code></div>",
    ]
    arguments = {
        key: value
        for key, value in request.arguments.items()
        if (request.preview is None or key not in ("content", "old_text", "new_text", "patch"))
        and key != request.code_argument
    }
    if arguments:
        parts.append(_pre(_arguments_text(arguments)))
    if request.code_argument in request.arguments:  # code shown as code, not a JSON string
        code = html.escape(str(request.arguments[request.code_argument]))
        parts.append(_pre(f'<code class="language-python">{code}</code>', escaped=True))
    if request.preview:
        parts.append(_pre(_diff_html(request.preview), escaped=True))
    if request.note:
        parts.append(f'<div style="margin:4px 0"><b>Note:</b> {html.escape(request.note)}</div>')
    if status:
        parts.append(f'<div style="font-style:italic">{html.escape(status)}…</div>')
    parts.append("</div>")
    plain = f"[{title}] {request.describe()}" + (f"\n{status}…" if status else "")
    return {"text/html": "\n".join(parts), "text/plain": plain}


def _arguments_text(arguments: dict[str, Any]) -> str:
    lines = []
    for key, value in arguments.items():
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > ARGUMENT_LIMIT:
            text = text[: ARGUMENT_LIMIT - 1] + "…"
        lines.append(f"{key} = {text}")
    return "\n".join(lines)


def _pre(text: str, *, escaped: bool = False) -> str:
    body = text if escaped else html.escape(text)
    return (
        '<pre style="margin:4px 0;padding:4px 8px;white-space:pre-wrap;'
        f'background:rgba(127,127,127,0.08)">{body}</pre>'
    )


def _diff_html(diff: str) -> str:
    colours = {"+": "#1a7f37", "-": "#cf222e", "@": "#0969da"}
    lines = []
    for line in diff.splitlines():
        colour = None if line.startswith(("+++", "---")) else colours.get(line[:1])
        text = html.escape(line)
        lines.append(f'<span style="color:{colour}">{text}</span>' if colour else text)
    return "\n".join(lines)


def _buttons(tool_name: str, click: Any) -> Any:
    import ipywidgets as widgets

    choices = [
        ("Approve", "success", "check", "yes"),
        ("Deny", "danger", "times", "no"),
        (f"Always for {tool_name} in this run", "", "check-double", "always"),
    ]
    buttons = []
    for label, style, icon, answer in choices:
        button = widgets.Button(
            description=label,
            button_style=style,
            icon=icon,
            layout=widgets.Layout(width="auto"),
            tooltip=f"{label}: {tool_name}",
        )
        button.on_click(lambda _button, answer=answer: click(answer))
        buttons.append(button)
    return _button_row_class()(buttons)


@functools.cache
def _button_row_class() -> type:
    import ipywidgets as widgets

    class ButtonRow(widgets.HBox):  # type: ignore[misc]
        """The buttons; in a front end without widgets, one honest line of text."""

        def __repr__(self) -> str:
            return "(Approve / Deny / Always buttons: this front end does not show widgets)"

    return ButtonRow


# -- the input box ---------------------------------------------------------------------------


def _ask_with_input(request: ApprovalRequest, answer: Future[Answer]) -> None:
    """On the main thread: show the card, ask through the stdin channel (``input()``)."""
    from IPython.display import display

    from ..tools.approval_prompt import ANSWERS

    if answer.done():
        return
    handle = display(card_bundle(request, "pending"), raw=True, display_id=True)
    name = request.tool_name
    question = f"Allow {name}? [y]es / [n]o / [a]lways for {name} in this run: "
    outcome: State = "no"
    try:
        while True:
            reply = input(question).strip().lower()
            if reply in ANSWERS:
                outcome = ANSWERS[reply]
                break
            print("Please answer y (yes), n (no) or a (always for this tool in this run).")
    except KeyboardInterrupt:
        outcome = "cancelled"
        answer.cancel()
        raise
    except Exception:  # noqa: BLE001 - no input possible (EOF, no stdin): fail closed
        outcome = "no"
    finally:
        _settle(answer, outcome)  # type: ignore[arg-type]
        handle.update(card_bundle(request, outcome), raw=True)


def _settle(answer: Future[Any], value: Any) -> None:
    """Give ``answer`` its value unless it has one (two clicks, a click and a timeout)."""
    try:
        answer.set_result(value)
    except Exception:  # noqa: BLE001 - InvalidStateError: the first answer stands
        pass
