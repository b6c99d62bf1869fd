"""Approval: asking before a model-requested tool call writes files or runs commands.

A tool says whether a call needs approval with ``requires_approval`` (a bool, or a
callable on the validated arguments). An agent's ``approval`` policy decides:

- ``"ask"`` (the default): ask the person in front of the agent. In a notebook front end
  (JupyterLab, Notebook 7, VS Code) the call appears in the cell as a card with the
  arguments, a diff for file writes and edits, and Approve / Deny / Always buttons; in a
  terminal, a prompt on stderr. Where no one can answer (no terminal, a headless notebook
  run, CI) the call is refused, saying why. ``Ask(timeout=60)`` refuses after a minute;
- ``"auto"``: approve every call; ``"never"``: refuse every call;
- ``None``: refuse every call, telling the model how to allow them;
- a callback, sync or async, receiving an ``ApprovalRequest`` and returning ``True``
  to allow (or an ``ApprovalDecision``); anything else refuses.

Arguments are validated before anyone is asked, and every doubt fails closed: invalid
arguments, a ``requires_approval`` callable that raises, a callback that raises or
returns something other than ``True``, no answer in time. The loop calls ``gate`` in one
place, between validation and execution, and emits ``tool.approval_requested`` and
``tool.approval_decided``. The terminal prompt is in approval_prompt.py; the notebook's card
is plugged in by the notebook front end (victor.core.seams).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .._util import maybe_await
from ..core.events import EventScope
from ..errors import ConfigurationError, ToolError
from .approval_prompt import ask_in_terminal, stdin_is_tty
from .base import BaseTool, ToolResult

__all__ = [
    "Ask",
    "ApprovalRequest",
    "ApprovalDecision",
    "ApprovalPolicy",
    "check_policy",
    "gate",
    "needs_approval",
]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A tool call waiting for a yes or no."""

    tool_name: str
    arguments: dict[str, Any]
    description: str = ""
    call_id: str | None = None
    agent: str | None = None
    #: The run asking (an "always" answer holds for the rest of this run).
    run_id: str | None = None
    #: For file writes and edits: a unified diff of what the call would change.
    preview: str | None = None
    #: The argument that is code the call would run (``run_code``'s): shown as code.
    code_argument: str | None = None
    #: What the person should know before answering (e.g. what cannot be undone).
    note: str | None = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        return f"{self.tool_name}({args})"

    def describe(self) -> str:
        """The request as plain text: who wants to call what, the arguments, the diff."""
        import json

        who = f"{self.agent} wants" if self.agent else "the model wants"
        lines = [f"{who} to call {self.tool_name}:"]
        for key, value in self.arguments.items():
            if self.preview is not None and key in ("content", "old_text", "new_text", "patch"):
                continue  # the diff shows these
            if key == self.code_argument:
                lines += [f"  {key}:", *(f"    {line}" for line in str(value).splitlines())]
                continue
            text = json.dumps(value, ensure_ascii=False, default=str)
            lines.append(f"  {key} = {text if len(text) <= 300 else text[:299] + '…'}")
        if self.preview:
            lines += ["", self.preview.rstrip("\n")]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """In a notebook: the approval card as it looks while it waits (no buttons)."""
        from ..core import seams

        return seams.front_end("kernel_approval").card_bundle(self)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """A callback's answer with a reason the model will read when it is a no."""

    approved: bool
    reason: str | None = field(default=None)


ApprovalCallback = Callable[[ApprovalRequest], "bool | ApprovalDecision | Awaitable[Any]"]
#: Where ``Ask`` puts the question: ``auto`` picks the card in a notebook front end (an
#: input box where widgets cannot work), the prompt in a terminal.
Channel = Literal["auto", "widget", "input", "terminal"]
_CHANNELS = ("auto", "widget", "input", "terminal")


class Ask:
    """Ask the person in front of the agent, where they are.

    - In a Jupyter front end (JupyterLab, Notebook 7, VS Code): a card in the running
      cell's output (tool, arguments, a diff for ``write_file``/``edit_file``) with
      Approve, Deny and "Always for this tool in this run" buttons. It works while the
      cell runs: while a card waits, victor reads the button clicks from the kernel's
      shell channel itself (see ``victor.notebook.approval``). Without ipywidgets or on
      ipykernel 6, an input box (``input()``) asks instead.
    - In a terminal (stdin is a TTY): a prompt on stderr; answer y, n or a (always).
    - Nowhere else: the call is refused with the reason (no terminal, a notebook run
      headless by nbclient/nbval/papermill, a service).

    ``timeout`` (seconds) refuses a call no one answered in time (the input box cannot
    time out). ``channel`` forces one way of asking: ``"widget"``, ``"input"`` or
    ``"terminal"``. ``approval="ask"`` is ``Ask()``.
    """

    #: Runs whose "always" answers are remembered (the oldest are forgotten first).
    MEMORY = 256

    def __init__(self, timeout: float | None = None, *, channel: Channel = "auto") -> None:
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(
                f"Ask(timeout={timeout!r}) is invalid: use seconds > 0, or None to wait"
            )
        if channel not in _CHANNELS:
            raise ConfigurationError(
                f"Ask(channel={channel!r}) is unknown: use one of {', '.join(_CHANNELS)}"
            )
        self.timeout = timeout
        self.channel: Channel = channel
        self._always: OrderedDict[str | None, set[str]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ask(timeout={self.timeout!r}, channel={self.channel!r})"

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        """Ask about ``request`` (so a callback can hand some calls to a person)."""
        approved, reason, _ = await self.decide(request)
        return ApprovalDecision(approved, None if approved else reason)

    async def decide(self, request: ApprovalRequest) -> tuple[bool, str, str]:
        """``(approved, reason, via)``: via is the channel that answered, ``"always"`` or
        ``"nobody"``."""
        name = request.tool_name
        if self._remembers(request):
            return True, f"approved: you allowed every {name} call in this run", "always"
        channel, why_not = self.where()
        if channel is None:
            return (
                False,
                f"{name} needs approval and no one can answer here ({why_not}), so the call "
                f"was not run. Run it where you can answer, or create the agent with "
                f"approval='auto' or approval=<callback> to allow it",
                "nobody",
            )
        try:
            if channel == "terminal":
                answer = await ask_in_terminal(name, request.describe(), self.timeout)
            else:
                from ..core import seams

                notebook = seams.front_end("kernel_approval")
                answer = await notebook.ask_in_notebook(request, channel, self.timeout)
        except Exception as exc:  # fail closed
            return (
                False,
                f"the call to {name} was refused: asking for approval failed "
                f"({type(exc).__name__}: {exc})",
                channel,
            )
        if answer == "always":
            self._remember(request)
            return True, f"approved by the user for every {name} call in this run", channel
        if answer == "yes":
            return True, "approved by the user", channel
        if answer == "timeout":
            return (
                False,
                f"no one answered within {self.timeout:g} s, so the call to {name} was refused; "
                f"do not retry it, say what you wanted to do instead",
                channel,
            )
        return (
            False,
            f"the user refused the call to {name}; do not retry it, say what you wanted to "
            f"do instead",
            channel,
        )

    def where(self) -> tuple[Channel | None, str]:
        """The channel that can reach a person now, or ``None`` and why not."""
        kernel = _ipython_kernel()
        if self.channel == "widget":
            return ("widget", "") if kernel is not None else (None, "not in a Jupyter kernel")
        if self.channel == "input" and kernel is None:
            return None, "not in a Jupyter kernel"
        if self.channel == "terminal":
            return ("terminal", "") if stdin_is_tty() else (None, "stdin is not a terminal")
        if kernel is not None:
            if not getattr(kernel, "_allow_stdin", False):  # set for each cell run
                return None, (
                    "the notebook runs without a person: its front end takes no input, as "
                    "under nbclient, nbval or papermill"
                )
            if self.channel == "input":
                return "input", ""
            from ..core import seams

            widgets = seams.front_end("kernel_approval").widgets_work(kernel)
            return ("widget" if widgets else "input"), ""
        if stdin_is_tty():
            return "terminal", ""
        return None, "not in a notebook, and stdin is not a terminal"

    def _remembers(self, request: ApprovalRequest) -> bool:
        with self._lock:
            return request.tool_name in self._always.get(request.run_id, ())

    def _remember(self, request: ApprovalRequest) -> None:
        with self._lock:
            self._always.setdefault(request.run_id, set()).add(request.tool_name)
            self._always.move_to_end(request.run_id)
            while len(self._always) > self.MEMORY:
                self._always.popitem(last=False)


ApprovalPolicy = Literal["ask", "auto", "never"] | Ask | ApprovalCallback | None

#: What ``approval="ask"`` means: one shared ``Ask()``.
_ASK = Ask()


def check_policy(policy: Any) -> ApprovalPolicy:
    """``policy`` if it is a valid approval policy, else a ``ConfigurationError``."""
    if (
        policy is None
        or policy in ("ask", "auto", "never")
        or (callable(policy) and not isinstance(policy, str))
    ):
        return policy  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"approval={policy!r} is invalid: use 'ask', 'auto', 'never', None, Ask(timeout=...), "
        f"or a function (sync or async) that takes an ApprovalRequest and returns True to "
        f"allow the call"
    )


def needs_approval(tool: BaseTool, arguments: dict[str, Any]) -> bool:
    """Whether this call of ``tool`` needs approval (a failing check counts as yes)."""
    rule = getattr(tool, "requires_approval", False)
    if not callable(rule):
        return bool(rule)
    try:
        return bool(rule(arguments))
    except Exception:  # fail closed: unsure means ask
        return True


async def gate(
    tool: BaseTool,
    arguments: dict[str, Any],
    policy: ApprovalPolicy,
    scope: EventScope,
    *,
    call_id: str | None = None,
) -> ToolResult | None:
    """``None`` if the call may run; otherwise the tool result that refuses it."""
    if getattr(tool, "requires_approval", False) is False:
        return None
    try:
        valid = tool.validate(dict(arguments))
    except ToolError as exc:  # malformed calls are never put to anyone
        return ToolResult.fail(str(exc))
    if not needs_approval(tool, valid):
        return None
    request = ApprovalRequest(
        tool.name,
        valid,
        tool.description,
        call_id,
        scope.agent,
        scope.run_id,
        change_preview(tool.name, valid) if policy not in ("auto", "never", None) else None,
        getattr(tool, "code_argument", None),
        getattr(tool, "approval_note", None),
    )
    await scope.emit(
        "tool.approval_requested", {"tool_name": tool.name, "arguments": valid, "call_id": call_id}
    )
    approved, reason, via = await _decide(policy, request)
    await scope.emit(
        "tool.approval_decided",
        {
            "tool_name": tool.name,
            "call_id": call_id,
            "approved": approved,
            "policy": _policy_name(policy),
            "via": via,
            "reason": reason,
        },
    )
    if approved:
        return None
    return ToolResult.fail(reason, approved=False)


async def _decide(policy: ApprovalPolicy, request: ApprovalRequest) -> tuple[bool, str, str]:
    """``(approved, reason, via)``."""
    name = request.tool_name
    if policy == "auto":
        return True, "approved by policy 'auto'", "policy"
    if policy == "never":
        return (
            False,
            f"the call to {name} was refused: this agent's approval policy is 'never'",
            "policy",
        )
    if policy is None:
        return (
            False,
            f"{name} needs approval and this agent has no approval policy, so the call was "
            f"not run. Create the agent with approval='auto' or approval=<callback> to allow it",
            "policy",
        )
    if policy == "ask" or isinstance(policy, Ask):
        return await (_ASK if policy == "ask" else policy).decide(request)  # type: ignore[union-attr]
    try:
        answer = await maybe_await(policy(request))  # type: ignore[operator]
    except Exception as exc:  # fail closed
        return (
            False,
            f"the call to {name} was refused: the approval callback failed "
            f"({type(exc).__name__}: {exc})",
            "callback",
        )
    if isinstance(answer, ApprovalDecision):
        if answer.approved:
            return True, answer.reason or "approved", "callback"
        return (
            False,
            f"the user refused the call to {name}"
            + (f": {answer.reason}" if answer.reason else ""),
            "callback",
        )
    if answer is True:
        return True, "approved", "callback"
    return (
        False,
        f"the user refused the call to {name}; do not retry it, say what you wanted to do instead",
        "callback",
    )


def _policy_name(policy: ApprovalPolicy) -> str:
    if policy is None or isinstance(policy, str):
        return str(policy)
    if isinstance(policy, Ask):
        return "ask"
    return getattr(policy, "__name__", type(policy).__name__)


# -- what a call would change ---------------------------------------------------------------

#: Longest diff a card or prompt shows (in lines); the rest is summarised.
PREVIEW_LINES = 400


def change_preview(tool_name: str, arguments: dict[str, Any]) -> str | None:
    """A unified diff of what a ``write_file``/``edit_file`` call would change, else None.

    Read from the workspace of the run in progress; an edit that would fail says why.
    """
    if tool_name not in ("write_file", "edit_file"):
        return None
    import difflib

    from .builtin.files import _replace_exact, apply_unified_diff
    from .context import current_context

    shown = str(arguments.get("file_path", ""))
    try:
        path = current_context().workspace.resolve(shown)
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if tool_name == "write_file":
            new = str(arguments["content"])
        elif old is None:
            return f"{shown} does not exist, so this edit would fail"
        elif arguments.get("patch") is not None:
            new = apply_unified_diff(old, arguments["patch"])
        else:
            new = _replace_exact(
                old,
                arguments.get("old_text") or "",
                arguments.get("new_text") or "",
                bool(arguments.get("replace_all")),
                shown,
            )[0]
    except (ToolError, OSError, UnicodeDecodeError) as exc:
        return f"(no preview: {exc})"
    if old == new:
        return f"(no change to {shown})"
    lines = [
        line if line.endswith("\n") else line + "\n"
        for line in difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile="/dev/null" if old is None else f"a/{shown}",
            tofile=f"b/{shown}",
        )
    ]
    if len(lines) > PREVIEW_LINES:
        lines = [*lines[:PREVIEW_LINES], f"… {len(lines) - PREVIEW_LINES} more lines\n"]
    return "".join(lines)


# -- who can answer ---------------------------------------------------------------------------


def _ipython_kernel() -> Any:
    """The Jupyter kernel this code runs in, if any (IPython is never imported here)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None)
