"""Approval through the ACP client: a tool call that needs approval becomes
``session/request_permission`` (allow once, allow always, reject), and the session's mode
decides what is asked at all.

The served agents' approval policy is ``ask_client``, one victor approval callback (the
catalog puts it on every served agent and team member) that finds the session of the run it
is called from: a context variable each prompt's task sets. Every doubt refuses, as the
approval gate does everywhere: no session, a client that cannot or does not answer, a
cancelled prompt.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from ..errors import ToolError
from ..tools.approval import ApprovalDecision, ApprovalRequest

if TYPE_CHECKING:
    from .server import Session

__all__ = ["MODES", "ask_client", "current_session"]

#: Session modes: id -> (name, description). The first is a new session's.
MODES: dict[str, tuple[str, str]] = {
    "ask": ("Ask", "Ask before each tool call that writes files or runs commands"),
    "auto-edits": (
        "Auto-approve edits",
        "Allow file writes and edits without asking; ask before running commands",
    ),
    "read-only": ("Read-only", "Refuse every tool call that writes files or runs commands"),
}

#: Tools whose calls the ``auto-edits`` mode allows without asking.
EDITS = frozenset({"write_file", "edit_file"})

current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "victor_acp_session", default=None
)

_ALLOW_ONCE, _ALLOW_ALWAYS, _REJECT = "allow_once", "allow_always", "reject_once"


async def ask_client(request: ApprovalRequest) -> ApprovalDecision:
    """The approval of ``request`` by the person at the ACP client of the current session."""
    session = current_session.get()
    name = request.tool_name
    if session is None:  # the gate refuses, saying why
        raise ToolError(f"{name} needs approval and no ACP session is asking for this run")
    if session.mode == "read-only":
        return ApprovalDecision(
            False,
            "the session is read-only (the person chose that mode); say what you "
            "wanted to do instead",
        )
    if name in session.always or (session.mode == "auto-edits" and name in EDITS):
        await session.updates.tool_running(request.call_id)
        return ApprovalDecision(True)
    try:
        response = await session.client.request_permission(
            session_id=session.id,
            tool_call=await session.updates.asked(request),
            options=_options(name),
        )
        outcome = response.outcome
    except Exception as exc:  # fail closed: the gate refuses, saying why
        raise ToolError(f"the ACP client could not be asked about {name}: {_said(exc)}") from None
    chosen = getattr(outcome, "option_id", None)
    if chosen == _ALLOW_ALWAYS:
        session.always.add(name)
    if chosen in (_ALLOW_ONCE, _ALLOW_ALWAYS):
        await session.updates.tool_running(request.call_id)
        return ApprovalDecision(True)
    if outcome.outcome == "cancelled":
        return ApprovalDecision(False, f"the prompt was cancelled before {name} was approved")
    return ApprovalDecision(False, "do not retry it, say what you wanted to do instead")


def _options(name: str) -> list[Any]:
    from acp.schema import PermissionOption

    return [
        PermissionOption(option_id=_ALLOW_ONCE, name="Allow once", kind="allow_once"),
        PermissionOption(
            option_id=_ALLOW_ALWAYS,
            name=f"Always allow {name} in this session",
            kind="allow_always",
        ),
        PermissionOption(option_id=_REJECT, name="Reject", kind="reject_once"),
    ]


def _said(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    data = getattr(exc, "data", None)
    return f"{text}: {data}" if data else text
