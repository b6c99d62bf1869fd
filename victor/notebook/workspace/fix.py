"""``%victor fix`` and ``%victor explain``: after a cell fails, the model on the error.

Both send the failing cell, its error and the variables the cell names, described as the
context mode allows (``schema``, the default: types, shapes, column names and dtypes, no
values; ``values``: a short repr too; ``none``: no variables). The cell and its error are
what you ask about, so they are always sent.

``fix`` shows the proposed cell as a diff against the failing one, with Apply and Dismiss.
Apply asks the front end for a new cell below (``set_next_input``); nothing runs. The
payload only reaches the front end in the reply to the running cell, so the ``%victor fix``
cell waits for the click, reading the shell channel itself as an approval card does
(``victor.notebook.approval.ShellInbox``). Headless (nbclient, nbval) the diff is shown,
with no buttons.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import html
import keyword
import linecache
import re
import sys
import threading
import traceback
from concurrent.futures import Future
from typing import Any

from ..._sync import run_sync
from ...errors import ConfigurationError
from ..approval import ShellInbox, _diff_html, _pre, _settle, widgets_work
from .actions import _safe_repr, describe
from .tools import default_context

__all__ = ["after_error", "failure", "variables"]

#: Characters of the error's traceback sent to the model.
ERROR_LIMIT = 4000
#: Characters of a variable's repr sent in ``values`` mode.
VALUE_LIMIT = 600
#: Variables described, at most.
VARIABLE_LIMIT = 30

FIX_SYSTEM = (
    "You fix failing Jupyter notebook cells. Reply with the whole corrected cell in one "
    "```python block, then at most two sentences saying what you changed. Keep the user's "
    "code, names and style; change only what the error needs."
)
EXPLAIN_SYSTEM = (
    "You explain errors in Jupyter notebook cells to the person who ran them: what went "
    "wrong and why, in plain words, in a few sentences, and how to fix it."
)


def after_error(magics: Any, command: str, args: argparse.Namespace) -> None:
    """``%victor fix`` or ``%victor explain`` (``command``) for the last failing cell.

    Raises ``ConfigurationError`` when there is nothing to work on, ``VictorError`` when the
    model fails (the magic shows either as one line)."""
    shell = magics.shell
    found = failure(shell)
    if found is None:
        raise ConfigurationError(
            f"%victor {command} works on the last error, and no cell has failed yet: run the "
            f"failing cell, then %victor {command}"
        )
    exc, source, number = found
    if not source.strip():
        raise ConfigurationError(
            f"the last error ({type(exc).__name__}: {exc}) was not raised by a cell's own code, "
            f"so there is no cell to {command}"
        )
    agent, shared = magics._agent_for(args)
    mode = (None if args.agent else magics.session.config.get("context")) or default_context()
    prompt = _prompt(exc, source, number, shell.user_ns, mode)
    if command == "explain":
        _explain(magics, agent, shared, prompt)
    else:
        _fix(shell, agent, prompt, source, number)


def failure(shell: Any) -> tuple[BaseException, str, int | None] | None:
    """The last exception raised in a cell, that cell's source and number (None: none)."""
    exc = getattr(sys, "last_value", None)
    if exc is None:
        return None
    known = getattr(shell.compile, "_filename_map", {})
    files = [frame.filename for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        files.insert(0, exc.filename)
    cells = [f for f in files if f in known]
    if not cells:  # not raised by a cell's own code (a magic's error, say)
        return exc, "", None
    code = "".join(linecache.getlines(cells[0]))
    number = known[cells[0]]
    history = shell.history_manager
    # The cell as typed (magics and all) when the history holds it: a cell run without
    # history (as nbclient may) leaves a stale number, so the parsed text must match.
    if (
        number < len(history.input_hist_parsed)
        and history.input_hist_parsed[number].rstrip() == code.rstrip()
    ):
        return exc, history.input_hist_raw[number], number
    return exc, code, None


def variables(source: str, namespace: dict[str, Any], mode: str) -> list[str]:
    """Lines describing the notebook variables ``source`` names, as ``mode`` allows."""
    if mode == "none":
        return []
    try:
        names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    except SyntaxError:
        names = set(re.findall(r"\b[A-Za-z_]\w*\b", source)) - set(keyword.kwlist)
    lines = []
    for name in sorted(names):
        if name.startswith("_") or name in ("In", "Out", "get_ipython", "exit", "quit"):
            continue
        if name not in namespace or type(namespace[name]).__name__ == "module":
            continue
        value = namespace[name]
        line = f"- {name}: {_schema(value)}"
        if mode == "values":
            line += f"\n  value: {_safe_repr(value)[:VALUE_LIMIT]}"
        lines.append(line)
        if len(lines) == VARIABLE_LIMIT:
            break
    return lines


def _schema(value: Any) -> str:
    """Type, shape and, for tables, column names and dtypes: never values."""
    text = describe(value)
    dtypes = getattr(value, "dtypes", None)
    if hasattr(value, "columns") and hasattr(dtypes, "items"):
        columns = [f"{c} ({t})" for c, t in list(dtypes.items())[:50]]
        text += "; columns: " + ", ".join(columns)
    elif dtypes is None and getattr(value, "dtype", None) is not None:
        text += f"; dtype: {value.dtype}"
    return text


def _prompt(exc: BaseException, source: str, number: int | None, ns: dict, mode: str) -> str:
    error = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(error) > ERROR_LIMIT:
        error = "…" + error[-ERROR_LIMIT:]
    described = variables(source, ns, mode)
    what = {
        "schema": "types and shapes only, no values",
        "values": "with short values",
    }.get(mode, "")
    parts = [
        f"This notebook cell{f' [{number}]' if number else ''} failed:",
        f"```python\n{source.rstrip()}\n```",
        f"The error:\n```\n{error.rstrip()}\n```",
    ]
    if described:
        parts.append(f"Variables the cell uses ({what}):\n" + "\n".join(described))
    return "\n\n".join(parts)


# -- explain ------------------------------------------------------------------------------


def _explain(magics: Any, agent: Any, shared: bool, prompt: str) -> None:
    """Stream the model's explanation, as a ``%%victor`` cell streams its answer."""
    from ..stream import StreamView

    if shared:
        agent.history = list(magics.session.history)
    live = False if magics.session.config.get("stream") is False else None
    view = StreamView(format="markdown", live=live)
    task = f"{EXPLAIN_SYSTEM}\n\n{prompt}\n\nWhat went wrong?"
    try:
        run_sync(view.consume(agent.events(task, remember=True)))
    finally:
        if shared:
            magics.session.history = list(agent.history)


# -- fix ----------------------------------------------------------------------------------


def _fix(shell: Any, agent: Any, prompt: str, source: str, number: int | None) -> None:
    from IPython.display import display

    from ..stream_render import extract_code

    kernel = getattr(shell, "kernel", None)
    person = kernel is not None and getattr(kernel, "_allow_stdin", False)
    handle = None
    if person:  # (headless runs keep no display updates: the card is shown once, below)
        who = f"{agent.provider.name}/{agent.provider.model}"
        handle = display(
            {"text/plain": f"Asking {who} for a fixed cell…"}, raw=True, display_id=True
        )
    answer = run_sync(agent.ask_once(prompt, system=FIX_SYSTEM, purpose="fix"))
    fixed, _ = extract_code(answer)
    note = _FENCE_BLOCK.sub("", answer).strip()
    card = FixCard(source.rstrip("\n"), fixed.rstrip("\n"), number, note, handle)
    if not card.changed or not person:
        return card.show("shown" if card.changed else "same")
    if not widgets_work(kernel) or threading.current_thread() is not threading.main_thread():
        return card.ask_with_input(shell)
    card.ask_with_buttons(shell)


_FENCE_BLOCK = re.compile(r"```[\w+-]*\n.*?```", re.DOTALL)

_LOOKS = {
    # state: (colour, title, status)
    "pending": ("#0969da", "Proposed fix", "Apply inserts the fixed cell below (nothing runs)."),
    "applied": ("#1a7f37", "✔ Fix applied", "The fixed cell is below: read it, then run it."),
    "dismissed": ("#6e7781", "Fix dismissed", ""),
    "shown": ("#0969da", "Proposed fix", "Run %victor fix in a notebook front end to apply it."),
    "same": ("#6e7781", "No fix proposed", "The model's cell is the failing cell unchanged."),
}


class FixCard:
    """The proposed cell as a diff against the failing one, and what became of it."""

    def __init__(self, old: str, new: str, number: int | None, note: str, handle: Any):
        self.old, self.new, self.number, self.note, self.handle = old, new, number, note, handle
        self.diff = "".join(
            line if line.endswith("\n") else line + "\n"
            for line in difflib.unified_diff(
                (old + "\n").splitlines(keepends=True),
                (new + "\n").splitlines(keepends=True),
                fromfile="failing cell",
                tofile="fixed cell",
            )
        )

    @property
    def changed(self) -> bool:
        return self.old.strip() != self.new.strip()

    def bundle(self, state: str) -> dict[str, str]:
        colour, title, status = _LOOKS[state]
        parts = [
            f'<div class="victor-fix" style="border:1px solid {colour};border-left:5px solid '
            f'{colour};border-radius:4px;padding:6px 12px;margin:2px 0;max-width:60rem">',
            f'<div style="color:{colour};font-weight:bold">{html.escape(title)}</div>',
        ]
        if self.note:
            parts.append(f'<div style="margin:4px 0">{html.escape(self.note)}</div>')
        if self.changed:
            parts.append(_pre(_diff_html(self.diff), escaped=True))
        if status:
            parts.append(f'<div style="font-style:italic">{html.escape(status)}</div>')
        parts.append("</div>")
        plain = "\n".join(
            filter(
                None,
                [f"[{title}]", self.note, self.diff.rstrip("\n") if self.changed else "", status],
            )
        )
        return {"text/html": "\n".join(parts), "text/plain": plain}

    def show(self, state: str) -> None:
        if self.handle is None:
            from IPython.display import display

            self.handle = display(self.bundle(state), raw=True, display_id=True)
        else:
            self.handle.update(self.bundle(state), raw=True)

    def apply(self, shell: Any) -> None:
        shell.set_next_input(self.new, replace=False)
        self.show("applied")

    def ask_with_buttons(self, shell: Any) -> None:
        """Show Apply and Dismiss; wait here for a click, reading the shell channel."""
        import ipywidgets as widgets
        from IPython.display import display

        answer: Future[str] = Future()
        buttons = []
        for label, style, icon in (("Apply", "success", "check"), ("Dismiss", "", "times")):
            button = widgets.Button(
                description=label, button_style=style, icon=icon, tooltip=f"{label} the fix"
            )
            button.on_click(lambda _b, label=label: _settle(answer, label))
            buttons.append(button)
        row = widgets.HBox(buttons)
        self.show("pending")
        row_handle = display(row, display_id=True)
        inbox = ShellInbox(shell.kernel)
        try:
            while not answer.done():
                inbox.pump(0.1)
        finally:  # the stop button too: the buttons go, the diff stays
            inbox.release()
            row_handle.update({"text/plain": ""}, raw=True)
            for widget in (*buttons, row):
                widget.close()
            if not answer.done():
                self.show("dismissed")
        if answer.result() == "Apply":
            self.apply(shell)
        else:
            self.show("dismissed")

    def ask_with_input(self, shell: Any) -> None:
        """Without widgets: ask through the stdin channel."""
        self.show("pending")
        try:
            reply = input("Apply this fix? [y]es / [n]o: ").strip().lower()
        except (EOFError, RuntimeError):
            reply = "n"
        if reply in ("y", "yes"):
            self.apply(shell)
        else:
            self.show("dismissed")
