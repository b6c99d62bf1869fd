"""How runs look on the wire: stream events as SSE payloads, results and errors as JSON.

Errors are RFC 9457 problem details (victor.hosting.problem, shared with the MCP server): a
status, a title, a detail a person can act on; never a traceback, and never a secret (the
detail is scrubbed by ``victor._secrets``, as logs, errors and spans are).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._secrets import get_logger
from .._util import jsonable, new_id
from ..core.messages import TextDelta, Usage
from ..errors import (
    ConfigurationError,
    LimitExceededError,
    ProviderError,
    ToolError,
    VictorError,
)
from ..hosting.problem import PROBLEM_TYPE, Problem

if TYPE_CHECKING:
    from ..core.events import Event
    from ..core.messages import RunFinished, StreamEvent

__all__ = [
    "Problem",
    "problem_for",
    "encode_bus_event",
    "event_frame",
    "sse",
    "to_json",
    "finished",
    "usage",
    "PROBLEM_TYPE",
    "AGENT_STREAM",
    "MEMBER_STREAM",
    "BUS_EVENT_NAMES",
    "UNSENT_BUS_EVENTS",
]

logger = get_logger("victor.serve")


def problem_for(exc: BaseException) -> Problem:
    """The problem details for an exception raised by a run."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ProviderError):
        headers = {"Retry-After": str(int(exc.retry_after))} if exc.retry_after else None
        return Problem(502, "The model provider failed", str(exc), headers=headers)
    if isinstance(exc, LimitExceededError):
        return Problem(422, "The run hit a limit", str(exc))
    if isinstance(exc, ConfigurationError):
        return Problem(500, "The server is misconfigured", str(exc))
    if isinstance(exc, ToolError):
        return Problem(500, "A tool could not be used", str(exc))
    if isinstance(exc, VictorError):
        return Problem(500, f"The run failed ({type(exc).__name__})", str(exc))
    # Anything else is a bug: the details go to the server log, not to the client.
    incident = new_id("err")
    logger.error("unexpected error %s", incident, exc_info=exc)
    return Problem(
        500,
        "Internal server error",
        f"an unexpected error occurred; the server log has the details under {incident}",
    )


# -- payloads --------------------------------------------------------------------------


def usage(value: Usage) -> dict[str, int]:
    return {
        "input_tokens": value.input_tokens,
        "output_tokens": value.output_tokens,
        "total_tokens": value.total_tokens,
    }


def finished(run: RunFinished) -> dict[str, Any]:
    """The end of an agent run: the answer and what it cost."""
    body = {
        "content": run.content,
        "usage": usage(run.usage),
        "model": run.model,
        "provider": run.provider,
        "iterations": run.iterations,
        "duration_ms": round(run.duration_ms, 3),
    }
    output = getattr(run, "output", None)
    if output is not None:
        body["output"] = jsonable(output)
    return body


#: ``json.dumps(value, ensure_ascii=False, default=str)``, without the new encoder that
#: json.dumps makes on every call given any option (most of the cost of a short string).
to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


def sse(kind: str, data: str) -> bytes:
    """One Server-Sent Event: ``event:`` its name, one ``data:`` line (JSON text has no
    raw newline, so one line is enough)."""
    return f"event: {kind}\ndata: {data}\n\n".encode()


def event_frame(event: StreamEvent, extra: Mapping[str, Any] | None = None) -> bytes:
    """One stream event as an SSE frame, ``extra`` added to ``run_finished``. Text, nearly
    every event of a run, takes the short way."""
    if type(event) is TextDelta:
        return b'event: text\ndata: {"text":' + to_json(event.text).encode() + b"}\n\n"
    data = _event_data(event)
    if extra and event.kind == "run_finished":
        data.update(extra)
    return sse(event.kind, to_json(data))


def _event_data(event: StreamEvent) -> dict[str, Any]:
    """The JSON fields of a stream event other than text."""
    kind = event.kind
    if kind == "response":
        response = event.response  # type: ignore[union-attr]
        data: dict[str, Any] = {
            "content": response.content,
            "tool_calls": [_call(c) for c in response.tool_calls],
            "usage": usage(response.usage),
            "model": response.model,
            "stop_reason": response.stop_reason,
        }
    elif kind == "tool_started":
        data = _call(event.call)  # type: ignore[union-attr]
    elif kind == "tool_finished":
        result = event.result  # type: ignore[union-attr]
        data = {
            **_call(event.call),  # type: ignore[union-attr]
            "success": result.success,
            "output": result.to_text() if result.success else None,
            "error": None if result.success else result.error,
            "duration_ms": round(event.duration_ms, 3),  # type: ignore[union-attr]
        }
    elif kind == "run_finished":
        data = finished(event)  # type: ignore[arg-type]
    else:  # a kind added later: its fields as they are
        data = {"kind": kind}
    return data


def _call(call: Any) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


#: What an agent's stream sends (the response description of its routes, in OpenAPI).
AGENT_STREAM = """Server-Sent Events, one per event of the run: `event:` its name, `data:`
its JSON. `run_started` comes first, at once (`run_id` and who runs it); then `text` (a piece
of the answer: `text`), `response` (a model response complete: `usage`, `model`,
`stop_reason`), `tool_started` (`id`, `name`, `arguments`) and `tool_finished` (the same and
`success`, `output` or `error`, `duration_ms`); the last is `run_finished` (the answer,
`usage`, the `run_id` again) or `error` (problem details). A `: ping` comment line comes
after 15 s without an event."""

#: What a team's or workflow's stream sends: the same events, and who did what.
MEMBER_STREAM = (
    AGENT_STREAM
    + """

The same names for what the members do, with `agent` (the member), `run_id` (its run) and
`parent` (the run it is part of) in each; a member's tool calls come as `tool_finished`.
Added: `agent_started` (`task`), `agent_finished` (`content`, `usage`) and `agent_failed`
(`error`) for each member run, `request` for each model request, and the team's
`round_started`, `delegated` and `voted`, or the workflow's `step_started`. Any other event
of victor's event bus comes under its type with `_` for `.` (`provider_error`: a retry;
`tool_approval_requested`, `tool_approval_decided`)."""
)

#: Bus events (team and workflow streams) under the names agent streams use, or new names
#: in their style; any other ``a.b`` is sent as ``a_b``.
BUS_EVENT_NAMES = {
    "team.start": "run_started",
    "agent.token": "text",
    "provider.request": "request",
    "provider.response": "response",
    "tool.execution": "tool_finished",
    "tool.error": "tool_finished",
    "agent.start": "agent_started",
    "agent.complete": "agent_finished",
    "agent.error": "agent_failed",
    "team.round": "round_started",
    "team.delegate": "delegated",
    "team.vote": "voted",
    "workflow.step": "step_started",
}
#: Left out of streams: what their last event (``run_finished`` or ``error``) says again.
UNSENT_BUS_EVENTS = frozenset({"team.complete", "team.error"})


def encode_bus_event(event: Event) -> tuple[str, str]:
    """(SSE event name, JSON data) for an ``EventBus`` event (team and workflow streams):
    the fields agent streams send for the same event, and who sent it (``agent``: the
    member or the team; ``run_id``, ``parent``: its run and the run it is part of)."""
    kind = event.type
    data = event.data
    if kind == "agent.token":
        fields: dict[str, Any] = {"text": data.get("text", "")}
    elif kind in ("tool.execution", "tool.error"):
        ok = kind == "tool.execution"
        fields = {
            "id": data.get("call_id"),
            "name": data.get("tool_name"),
            "arguments": data.get("arguments"),
            "success": ok,
            "output": data.get("result") if ok else None,
            "error": None if ok else data.get("error"),
            "duration_ms": round(data.get("duration_ms", 0.0), 3),
        }
    elif kind in ("provider.response", "agent.complete"):
        fields = dict(data)
        fields["usage"] = _usage_data(data.get("usage"))
        if "result" in fields:  # agent.complete: the member's answer, as run_finished has it
            fields["content"] = fields.pop("result")
    else:
        fields = dict(data)
    fields.update(agent=event.agent, run_id=event.run_id, parent=event.parent)
    fields["timestamp"] = event.timestamp
    return BUS_EVENT_NAMES.get(kind) or kind.replace(".", "_"), to_json(fields)


def _usage_data(value: Any) -> dict[str, int]:
    """A usage dump (``Usage.model_dump()``) with ``total_tokens``, as everywhere else."""
    return usage(Usage(**(value or {})))
