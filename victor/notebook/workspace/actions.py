"""The workspace's hands: ``insert_cell`` proposes code, ``run_code`` runs it once approved.

``insert_cell`` never runs anything: it asks the front end for a new cell below the running
one (the kernel's ``set_next_input`` payload, honoured by JupyterLab, Notebook 7 and
VS Code). ``run_code`` changes the kernel, so every call waits for the agent's approval
policy (``"ask"``: the card in the cell, showing the code; nobody to ask: refused).

Where the code runs: in the user's namespace, on the kernel's main thread. With top-level
``await`` the agent's loop *is* the main thread's; under ``%%victor``/``run_sync`` the agent
runs on victor's loop thread, which hands the code to the main thread (``call_in_main``)
and waits. ``tool_timeout`` is enforced by interrupting the code (a ``KeyboardInterrupt``
raised in that thread), so an endless loop ends and the kernel lives on.
"""

from __future__ import annotations

import ast
import io
import linecache
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import redirect_stderr, redirect_stdout
from itertools import count
from typing import Any, ClassVar

from ..._sync import call_in_main, in_run_sync
from ...errors import ToolError
from ...tools.base import BaseTool, ToolResult
from . import kernel as _kernel
from . import undo
from .tools import check_context, default_context

__all__ = ["InsertCell", "RunCode", "action_tools"]

#: Characters of stdout, stderr and the result's repr the model reads (each).
OUTPUT_LIMIT = 4000
_runs = count(1)


def action_tools(context: str | None = None) -> list[BaseTool]:
    """The tools that act on the notebook: ``insert_cell`` and ``run_code`` (whose report
    of output follows ``context``; None: the process's mode, see ``set_context``)."""
    return [InsertCell(), RunCode(context)]


class _CodeTool(BaseTool):
    """A tool taking one argument, ``code``: checked here, without loading jsonschema
    (whose first import takes seconds: it builds a URI grammar)."""

    parameters: ClassVar[dict[str, Any]] = {}

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(arguments.get("code"), str) or set(arguments) != {"code"}:
            raise ToolError(
                f"invalid arguments for tool {self.name!r}: pass one argument, code (a string "
                f"of Python), not {sorted(arguments)}"
            )
        return arguments


class InsertCell(_CodeTool):
    name = "insert_cell"
    description = (
        "Propose code to the user as a new code cell below the current one. The cell is not "
        "run: the user reads it and runs it. Use it for code the user should keep or check."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "code": {"type": "string", "description": "The cell's Python code.", "required": True}
    }

    async def execute(self, code: str) -> ToolResult:  # type: ignore[override]
        shell = _kernel.shell()
        kernel = getattr(shell, "kernel", None)
        # Where no person is at a front end (nbclient, nbval, papermill) nobody inserts the
        # payload's cell: show the code instead, to copy.
        headless = kernel is not None and not getattr(kernel, "_allow_stdin", False)
        joined = _propose(shell, code)
        if headless:
            call_in_main(lambda: _show_code(code))
            return ToolResult(
                success=True,
                output="This front end cannot insert cells: the code is shown in the cell's "
                "output for the user to copy. It was not run.",
            )
        where = "added to the new cell below (after the code you proposed before)"
        return ToolResult(
            success=True,
            output=f"The code was {where if joined else 'put in a new cell below the current one'}"
            f". It was not run: the user decides.",
        )


class RunCode(_CodeTool):
    name = "run_code"
    description = (
        "Run Python code in the user's notebook kernel, in their namespace, after the user "
        "approves it. Returns what it printed, the value of its last expression and the "
        "variables it created or rebound. Prefer insert_cell for code the user should keep."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "code": {"type": "string", "description": "The Python code to run.", "required": True}
    }
    requires_approval = True
    #: The approval card shows this argument as code, and this line before the buttons.
    code_argument: ClassVar[str] = "code"
    approval_note: ClassVar[str] = (
        "Undo (%victor undo) restores the names this code creates or rebinds; changes it "
        "makes inside existing objects (in-place edits) cannot be undone."
    )

    def __init__(self, context: str | None = None) -> None:
        self.context = None if context is None else check_context(context)

    async def run(self, arguments: dict[str, Any], *, timeout: float | None = None) -> ToolResult:
        # The limit is enforced by interrupting the code, not by abandoning the call: an
        # abandoned call would keep running in the kernel.
        limit = self.timeout if self.timeout is not None else timeout
        try:
            code = self.validate(arguments)["code"]
        except ToolError as exc:
            return ToolResult.fail(str(exc))
        try:
            shell = _kernel.shell()
            ast.parse(code)
        except ToolError as exc:
            return ToolResult.fail(str(exc))
        except SyntaxError as exc:
            return ToolResult.fail(f"the code was not run: SyntaxError: {exc}")
        mode = self.context or default_context()
        report = await _in_kernel_thread(lambda: _run(shell, code, limit, mode))
        return ToolResult(success=report.error is None, output=report.text(), error=report.text())

    async def execute(self, code: str) -> ToolResult:  # type: ignore[override]
        return await self.run({"code": code})


# -- running code ------------------------------------------------------------------------


class _Report:
    """What a run did, as the model reads it (bounded, in the context mode)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seconds = 0.0
        self.change: undo.Change | None = None
        self.stdout = _Bounded()
        self.stderr = _Bounded()
        self.result: str | None = None
        self.error: str | None = None

    def text(self) -> str:
        lines = [self.error or f"Ran in {self.seconds:.2f} s."]
        change = self.change
        if change is not None and change.names and self.mode == "none":
            lines.append(f"{len(change.names)} name(s) changed (context='none': not shown).")
        elif change is not None:
            for label, names in (
                ("new", change.created),
                ("rebound", change.rebound),
                ("deleted", change.deleted),
            ):
                if names:
                    shown = [
                        f"{n} ({describe(change.namespace[n])})" if label != "deleted" else n
                        for n in names
                    ]
                    lines.append(f"{label}: {', '.join(shown)}")
        outputs = [("stdout", self.stdout), ("stderr", self.stderr)]
        for label, stream in outputs:
            if stream.size:
                if self.mode == "values":
                    lines.append(f"{label}:\n{stream.text()}")
                else:
                    lines.append(
                        f"{label}: {stream.size} characters, not shown (context={self.mode!r}: "
                        f"only context='values' sends outputs to the model)"
                    )
        if self.result is not None:
            lines.append(
                f"value of the last expression: {self.result}"
                if self.mode == "values"
                else f"value of the last expression: not shown (context={self.mode!r})"
            )
        return "\n".join(lines)


def _run(shell: Any, code: str, limit: float | None, mode: str) -> _Report:
    """On the kernel thread: run ``code`` in the user's namespace, within ``limit`` s."""
    namespace = shell.user_ns
    report = _Report(mode)
    filename = f"<run_code #{next(_runs)}>"
    # Tracebacks show the lines, as for a cell.
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    tree = ast.parse(code, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = compile(tree, filename, "exec")
    tail = compile(ast.Expression(last.value), filename, "eval") if last is not None else None
    before = dict(namespace)  # references only: nothing is copied
    started = time.perf_counter()
    deadline = _Deadline(limit)
    try:
        with redirect_stdout(report.stdout), redirect_stderr(report.stderr), deadline:
            try:
                exec(body, namespace)
                if tail is not None:
                    value = eval(tail, namespace)
                    if value is not None:
                        report.result = _safe_repr(value)
            except Exception as exc:  # noqa: BLE001 - the model reads it
                report.error = "The code raised an exception:\n" + _traceback(exc, filename)
    except KeyboardInterrupt:
        if not deadline.fired:
            raise  # the user's stop button: the cell stops
        report.error = (
            f"Interrupted after {time.perf_counter() - started:.1f} s (tool_timeout={limit:g} s)"
            f": the code did not finish. The kernel is alive; names it set before the "
            f"interrupt are listed below."
        )
    report.seconds = time.perf_counter() - started
    report.change = undo.changes(namespace, before)
    undo.record(report.change)
    return report


class _Deadline:
    """Interrupt the thread that enters this block once ``seconds`` have passed."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._thread = threading.current_thread()
        self._timer: threading.Timer | None = None
        self._previous: Any = None

    def __enter__(self) -> _Deadline:
        if self.seconds is None:
            return self
        if self._thread is threading.main_thread():
            # An async cell's SIGINT handler cancels the cell's task, which cannot happen
            # while this code holds the loop: raise in the code instead.
            self._previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _fire(self) -> None:
        with self._lock:  # never after the block is left
            if self._done:
                return
            self.fired = True
            _interrupt(self._thread)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _interrupt(thread: threading.Thread) -> None:
    """Raise ``KeyboardInterrupt`` in ``thread`` (at its next Python instruction)."""
    if thread is threading.main_thread():
        import _thread

        _thread.interrupt_main()  # also ends a sleep or a blocking wait
        return
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident or 0), ctypes.py_object(KeyboardInterrupt)
    )


async def _in_kernel_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` on the thread whose cell runs the agent: the main thread blocked in
    ``run_sync`` (posted there), or this one (the cell's own loop)."""
    if not in_run_sync():
        return fn()
    import asyncio

    done: Future[Any] = Future()

    def job() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            done.set_result(fn())
        except Exception as exc:  # noqa: BLE001 - handed to the waiting tool call
            done.set_exception(exc)
        except BaseException:  # the stop button: run_sync cancels the run
            done.set_exception(ToolError("run_code was interrupted by the user"))
            raise

    call_in_main(job)
    return await asyncio.wrap_future(done)


class _Bounded(io.TextIOBase):
    """A text stream keeping the first and last characters written, counting the rest."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.size = 0
        self._head: list[str] = []
        self._head_size = 0
        self._tail = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.size += len(text)
        room = self.limit // 2 - self._head_size
        if room > 0:
            self._head.append(text[:room])
            self._head_size += len(text[:room])
            text = text[room:]
        if text:
            self._tail = (self._tail + text)[-(self.limit // 2) :]
        return len(text)

    def text(self) -> str:
        head = "".join(self._head)
        dropped = self.size - len(head) - len(self._tail)
        if dropped <= 0:
            return head + self._tail
        return f"{head}\n… ({dropped} characters left out) …\n{self._tail}"


def _traceback(exc: BaseException, filename: str) -> str:
    """The exception with the frames of the code run (victor's own left out)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    text = "".join(lines)
    return text if len(text) <= OUTPUT_LIMIT else "…" + text[-OUTPUT_LIMIT:]


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ is reported, not raised
        return f"<{type(value).__name__}: repr failed with {type(exc).__name__}>"
    return text if len(text) <= OUTPUT_LIMIT else text[: OUTPUT_LIMIT - 1] + "…"


# -- the kernel ---------------------------------------------------------------------------


def describe(value: Any) -> str:
    """A value's type and size, no contents: ``DataFrame 100×3``, ``list of 5``, ``int``."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return f"{kind} {'×'.join(map(str, shape))}"
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return f"{kind} of {len(value)}"
    return kind


def _propose(shell: Any, code: str) -> bool:
    """Ask the front end for a new cell holding ``code`` below the running one; a second
    proposal in the same cell joins the first (front ends insert one). True if joined."""
    manager = getattr(shell, "payload_manager", None)
    earlier = [
        p
        for p in (manager.read_payload() if manager is not None else [])
        if p.get("source") == "set_next_input"
    ]
    if earlier:
        code = f"{earlier[0]['text'].rstrip()}\n\n{code}"
    shell.set_next_input(code, replace=False)
    return bool(earlier)


#: The copy button's handler: it copies the text of the ``<code>`` beside it, so the code
#: itself is only ever escaped HTML text, never part of a script. (Front ends drop the
#: handler from untrusted outputs; the code stays there to select.)
_COPY_HANDLER = (
    "navigator.clipboard.writeText(this.parentElement.querySelector('code').textContent)"
    ".then(() => { this.textContent = 'Copied'; })"
)


def _show_code(code: str) -> None:
    """Show ``code`` in the cell's output, with a button to copy it (saved notebooks show
    the code; the button works where the output is trusted)."""
    import html

    from IPython.display import display

    bundle = {
        "text/html": '<div class="victor-proposed-cell"><div style="font-style:italic">'
        "Proposed cell (copy it into a new cell):</div>"
        f'<button type="button" class="victor-copy" onclick="{html.escape(_COPY_HANDLER)}">'
        "Copy</button>"
        '<pre style="padding:4px 8px;background:rgba(127,127,127,0.08)">'
        f'<code class="language-python">{html.escape(code)}</code></pre></div>',
        "text/plain": f"Proposed cell (copy it into a new cell):\n{code}",
    }
    display(bundle, raw=True)
