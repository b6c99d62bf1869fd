"""Recording and replaying an in-process model (the embedded one) at the provider
boundary: its conversation in, its ``AgentResponse`` or stream events out."""

from __future__ import annotations

import json
from typing import Any

from ..core.messages import AgentResponse, ResponseComplete, StreamEvent, TextDelta
from ..errors import CassetteError
from .store import scrub_data

__all__ = ["request_record", "response_record", "replay_response", "event_record", "event"]


def request_record(
    provider: Any, call: str, arguments: tuple[Any, ...], secrets: tuple[str, ...]
) -> dict[str, Any]:
    """A call as stored: ``CALL <provider>/<chat|stream>`` and what the model was given."""
    messages, tools, *output = arguments
    body: dict[str, Any] = {
        "model": provider.model,
        "temperature": provider.temperature,
        "max_tokens": provider.max_tokens,
        "messages": [m.model_dump(mode="json", exclude_defaults=True) for m in messages],
    }
    if tools:
        body["tools"] = [t.model_dump(mode="json") for t in tools]
    if output and output[0] is not None:
        body["output"] = output[0].model_dump(mode="json")
    if provider.options:  # sampling and load settings; as JSON, whatever their type
        body["options"] = json.loads(json.dumps(provider.options, default=str))
    return {"method": "CALL", "path": f"{provider.name}/{call}", "json": scrub_data(body, secrets)}


def response_record(response: AgentResponse, secrets: tuple[str, ...]) -> dict[str, Any]:
    return {"result": scrub_data(response.model_dump(mode="json"), secrets)}


def replay_response(stored: dict[str, Any]) -> AgentResponse:
    if "result" not in stored:
        raise CassetteError('a recorded chat call has no "result"; record it again')
    return AgentResponse.model_validate(stored["result"])


def event_record(item: StreamEvent, after: float, secrets: tuple[str, ...]) -> dict[str, Any]:
    """One stream event as stored: ``{"after": s, "text": ...}`` or ``{"response": ...}``."""
    if isinstance(item, TextDelta):
        return {"after": round(after, 4), "text": scrub_data(item.text, secrets)}
    if isinstance(item, ResponseComplete):
        return {"after": round(after, 4), **response_record(item.response, secrets)}
    raise CassetteError(f"cannot record stream event {type(item).__name__}")


def event(stored: dict[str, Any]) -> StreamEvent:
    if "text" in stored:
        return TextDelta(stored["text"])
    return ResponseComplete(replay_response(stored))
