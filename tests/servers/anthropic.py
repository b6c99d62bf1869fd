"""Fake Anthropic Messages API (``POST /v1/messages``, JSON and SSE) for the official SDK.

Point ``anthropic.AsyncAnthropic(base_url=server.url)`` at it (no ``/v1``: the SDK adds it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .base import Frames, Request, ScriptedServer
from .replies import Call, Json, Text, ToolCalls, split_json

_STOP = {"end": "end_turn", "length": "max_tokens"}

# Status -> error.type, as documented at docs.anthropic.com/en/api/errors.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def sse(event: str, **fields: Any) -> bytes:
    """One SSE event: ``event:`` and ``data:`` lines and a blank line. Anthropic repeats
    the event name as the data's ``type``."""
    data = json.dumps({"type": event, **fields})
    return f"event: {event}\ndata: {data}\n\n".encode()


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


class AnthropicServer(ScriptedServer):
    """Scripted server speaking the Anthropic Messages API wire format."""

    chat_path = "/v1/messages"
    stream_content_type = "text/event-stream; charset=utf-8"

    def __init__(self, models: list[str] | None = None) -> None:
        super().__init__()
        self.models = models or ["claude-sonnet-4-5", "claude-haiku-4-5"]
        # Anthropic returns one id per response; the SDK exposes it as `_request_id`
        # and on errors as `.request_id`.
        self.last_request_id: str | None = None

    def response_headers(self) -> dict[str, str]:
        self.last_request_id = self.next_id("req_")
        return {"request-id": self.last_request_id}

    def error_body(self, code: int, message: str | None = None) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(code, "api_error" if code >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message or f"scripted {kind} (HTTP {code})"},
        }

    def get_routes(self) -> dict[str, Callable[[Request], Any]]:
        return {"/v1/models": self._models}

    def check_request(self, body: Any) -> str | None:
        """The API's checks on ``tools`` and ``tool_choice`` (how typed answers are asked for)."""
        if not isinstance(body, dict):
            return None
        tools = body.get("tools") or []
        names = [t.get("name") for t in tools]
        for tool in tools:
            if (tool.get("input_schema") or {}).get("type") != "object":
                return f"tools.{names.index(tool.get('name'))}.input_schema.type: Field required"
        if len(set(names)) != len(names):
            return "tools: Tool names must be unique."
        choice = body.get("tool_choice")
        if choice is None:
            return None
        kind = choice.get("type")
        if kind not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if kind in ("any", "tool") and not tools:
            return f"tool_choice.type '{kind}' requires tools"
        if kind == "tool" and choice.get("name") not in names:
            return f"tool_choice: Tool '{choice.get('name')}' not found in the provided tools"
        return None

    def structured(self, reply: Json, request: Request) -> ToolCalls:
        """A typed answer is a call to the output tool: the one ``tool_choice`` forces."""
        choice = (request.body or {}).get("tool_choice") or {}
        name = reply.tool or choice.get("name")
        if name is None:
            raise ValueError("Json reply: tool_choice names no tool; script Json(..., tool=NAME)")
        return ToolCalls([Call(name, raw_arguments=reply.text())], input_tokens=reply.input_tokens)

    def _models(self, _request: Request) -> dict[str, Any]:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in self.models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": self.models[0],
            "last_id": self.models[-1],
        }

    # -- encoders -------------------------------------------------------------------

    def _blocks(self, reply: Text | ToolCalls) -> list[dict[str, Any]]:
        """Content blocks of the complete message (tool ids assigned here, once)."""
        if isinstance(reply, Text):
            return [{"type": "text", "text": reply.text}]
        blocks: list[dict[str, Any]] = []
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for call in reply.normalized():
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.id or self.next_id("toolu_"),
                    "name": call.name,
                    "input": call.arguments_value(),
                    "_json": call.arguments_json(),  # streamed verbatim, even when malformed
                }
            )
        return blocks

    @staticmethod
    def _stop_reason(reply: Text | ToolCalls) -> str:
        if isinstance(reply, ToolCalls):
            return "tool_use"
        return _STOP.get(reply.stop_reason, reply.stop_reason)

    def encode_response(self, reply: Text | ToolCalls, request: Request) -> dict[str, Any]:
        content = [{k: v for k, v in b.items() if k != "_json"} for b in self._blocks(reply)]
        return {
            "id": self.next_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": (request.body or {}).get("model", "claude"),
            "content": content,
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": None,
            "usage": _usage(reply.input_tokens, reply.usage_out()),
        }

    def encode_stream(self, reply: Text | ToolCalls, request: Request) -> Frames:
        message = self.encode_response(Text(""), request) | {
            "content": [],
            "stop_reason": None,
            "usage": _usage(reply.input_tokens, 1),  # the real API reports 1 here
        }
        frames = Frames(body=[sse("message_start", message=message)])
        blocks = self._blocks(reply)
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                pieces = reply.pieces() if isinstance(reply, Text) else Text(block["text"]).pieces()
                deltas = [{"type": "text_delta", "text": t} for t in pieces]
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                # The API opens with an empty partial_json, then token-sized fragments.
                fragments = ["", *split_json(block["_json"])]
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in fragments]
            frames.body.append(sse("content_block_start", index=index, content_block=start))
            if index == 0:
                frames.body.append(sse("ping"))
            frames.body += [sse("content_block_delta", index=index, delta=d) for d in deltas]
            # The last block's stop belongs to the closing events, so Truncate/Hang cut
            # inside an open block, as a dropped connection would.
            stop = sse("content_block_stop", index=index)
            (frames.end if index == len(blocks) - 1 else frames.body).append(stop)
        frames.end += [
            sse(
                "message_delta",
                delta={"stop_reason": self._stop_reason(reply), "stop_sequence": None},
                usage={"output_tokens": reply.usage_out()},
            ),
            sse("message_stop"),
        ]
        return frames
