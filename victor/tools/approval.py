"""Approval: asking before a model-requested tool call writes files or runs commands.

A tool says whether a call needs approval with ``requires_approval`` (a bool, or a
callable on the validated arguments). An agent's ``approval`` policy decides:

- ``None`` (the default): no one to ask, so such calls are refused with a tool result
  telling the model (and you) how to allow them;
- ``"auto"``: approve every call; ``"never"``: refuse every call;
- a callback, sync or async, receiving an ``ApprovalRequest`` and returning ``True``
  to allow (or an ``ApprovalDecision``); anything else refuses.

Arguments are validated before anyone is asked, and every doubt fails closed: invalid
arguments, a ``requires_approval`` callable that raises, a callback that raises or
returns something other than ``True``. The loop calls ``gate`` in one place, between
validation and execution, and emits ``tool.approval_requested`` and
``tool.approval_decided``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .._util import maybe_await
from ..core.events import EventScope
from ..errors import ConfigurationError, ToolError
from .base import BaseTool, ToolResult

__all__ = [
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

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        return f"{self.tool_name}({args})"


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """A callback's answer with a reason the model will read when it is a no."""

    approved: bool
    reason: str | None = field(default=None)


ApprovalCallback = Callable[[ApprovalRequest], "bool | ApprovalDecision | Awaitable[Any]"]
ApprovalPolicy = Literal["auto", "never"] | ApprovalCallback | None


def check_policy(policy: Any) -> ApprovalPolicy:
    """``policy`` if it is a valid approval policy, else a ``ConfigurationError``."""
    if (
        policy is None
        or policy in ("auto", "never")
        or (callable(policy) and not isinstance(policy, str))
    ):
        return policy  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"approval={policy!r} is invalid: use 'auto', 'never', None, or a function "
        f"(sync or async) that takes an ApprovalRequest and returns True to allow the call"
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
    request = ApprovalRequest(tool.name, valid, tool.description, call_id, scope.agent)
    await scope.emit(
        "tool.approval_requested", {"tool_name": tool.name, "arguments": valid, "call_id": call_id}
    )
    approved, reason = await _decide(policy, request)
    await scope.emit(
        "tool.approval_decided",
        {
            "tool_name": tool.name,
            "call_id": call_id,
            "approved": approved,
            "policy": _policy_name(policy),
            "reason": reason,
        },
    )
    if approved:
        return None
    return ToolResult.fail(reason, approved=False)


async def _decide(policy: ApprovalPolicy, request: ApprovalRequest) -> tuple[bool, str]:
    name = request.tool_name
    if policy == "auto":
        return True, "approved by policy 'auto'"
    if policy == "never":
        return False, f"the call to {name} was refused: this agent's approval policy is 'never'"
    if policy is None:
        return False, (
            f"{name} needs approval and this agent has no approval policy, so the call was "
            f"not run. Create the agent with approval='auto' or approval=<callback> to allow it"
        )
    try:
        answer = await maybe_await(policy(request))  # type: ignore[operator]
    except Exception as exc:  # fail closed
        return (
            False,
            f"the call to {name} was refused: the approval callback failed "
            f"({type(exc).__name__}: {exc})",
        )
    if isinstance(answer, ApprovalDecision):
        if answer.approved:
            return True, answer.reason or "approved"
        return False, f"the user refused the call to {name}" + (
            f": {answer.reason}" if answer.reason else ""
        )
    if answer is True:
        return True, "approved"
    return (
        False,
        f"the user refused the call to {name}; do not retry it, say what you wanted to do instead",
    )


def _policy_name(policy: ApprovalPolicy) -> str:
    if policy is None or isinstance(policy, str):
        return str(policy)
    return getattr(policy, "__name__", type(policy).__name__)
