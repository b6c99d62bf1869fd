"""Fake OpenAI Chat Completions API (``POST /v1/chat/completions``, JSON and SSE chunks).

Point ``openai.AsyncOpenAI(base_url=server.url + "/v1")`` at it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from .base import Frames, Request, ScriptedServer
from .replies import Call, Text, ToolCalls, split_json

_FINISH = {"end": "stop", "length": "length"}

# Status -> (error.type, error.code) as the real API sends them.
_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def sse_data(payload: dict[str, Any] | str) -> bytes:
    """One SSE event with only a ``data:`` line (OpenAI sends no ``event:`` names)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {text}\n\n".encode()


def strict_schema_problem(schema: dict[str, Any]) -> str | None:
    """Why strict Structured Outputs would refuse ``schema`` (the documented rules: an
    object root, every object closed and listing every property as required, nothing
    beside a ``$ref``), or None."""
    if schema.get("type") != "object":
        got = json.dumps(schema.get("type"))
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: {got}'."

    def visit(node: Any, where: str) -> str | None:
        if not isinstance(node, dict):
            return None
        if "$ref" in node and len(node) > 1:
            return (
                f"In context=({where}), $ref cannot have keywords {sorted(set(node) - {'$ref'})}."
            )
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                return (
                    f"In context=({where}), 'additionalProperties' is required to be supplied "
                    f"and to be false."
                )
            properties = node.get("properties") or {}
            missing = [key for key in properties if key not in (node.get("required") or [])]
            if missing:
                return (
                    f"In context=({where}), 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'."
                )
        children: list[tuple[Any, str]] = []
        for key in ("properties", "$defs"):
            children += [(v, f"{where}, '{key}', '{k}'") for k, v in (node.get(key) or {}).items()]
        for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
            children += [(v, f"{where}, '{key}', '{i}'") for i, v in enumerate(node.get(key) or [])]
        if isinstance(node.get("items"), dict):
            children.append((node["items"], f"{where}, 'items'"))
        for child, place in children:
            problem = visit(child, place.lstrip(", "))
            if problem is not None:
                return problem
        return None

    return visit(schema, "")


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


class OpenAIServer(ScriptedServer):
    """Scripted server speaking the OpenAI Chat Completions wire format."""

    chat_path = "/v1/chat/completions"
    stream_content_type = "text/event-stream; charset=utf-8"

    def __init__(self, models: list[str] | None = None) -> None:
        super().__init__()
        self.models = models or ["gpt-4o-mini", "gpt-4o"]

    def response_headers(self) -> dict[str, str]:
        return {"x-request-id": self.next_id("req_")}

    def error_body(self, code: int, message: str | None = None) -> dict[str, Any]:
        kind, err_code = _ERRORS.get(
            code, ("server_error" if code >= 500 else "invalid_request_error", None)
        )
        return {
            "error": {
                "message": message or f"{kind} ({code})",
                "type": kind,
                "param": None,
                "code": err_code,
            }
        }

    def get_routes(self) -> dict[str, Callable[[Request], Any]]:
        return {"/v1/models": self._models}

    def check_request(self, body: Any) -> str | None:
        """The API's checks on ``response_format`` (Structured Outputs)."""
        fmt = body.get("response_format") if isinstance(body, dict) else None
        if fmt is None:
            return None
        kind = fmt.get("type")
        if kind in ("text", "json_object"):
            return None
        if kind != "json_schema":
            return (
                f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', "
                f"and 'text'."
            )
        spec = fmt.get("json_schema") or {}
        name = spec.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            return (
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            )
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            return "Missing required parameter: 'response_format.json_schema.schema'."
        if spec.get("strict"):
            problem = strict_schema_problem(schema)
            if problem is not None:
                return f"Invalid schema for response_format '{name}': {problem}"
        return None

    def _models(self, _request: Request) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"}
                for m in self.models
            ],
        }

    # -- encoders -------------------------------------------------------------------

    def _calls(self, reply: Text | ToolCalls) -> list[tuple[str, Call]]:
        if isinstance(reply, Text):
            return []
        return [(c.id or self.next_id("call_"), c) for c in reply.normalized()]

    @staticmethod
    def _finish(reply: Text | ToolCalls) -> str:
        if isinstance(reply, ToolCalls):
            return "tool_calls"
        return _FINISH.get(reply.stop_reason, reply.stop_reason)

    def _envelope(self, obj: str, request: Request) -> dict[str, Any]:
        return {
            "id": self.next_id("chatcmpl-"),
            "object": obj,
            "created": int(time.time()),
            "model": (request.body or {}).get("model", "gpt"),
            "system_fingerprint": "fp_scripted",
        }

    def encode_response(self, reply: Text | ToolCalls, request: Request) -> dict[str, Any]:
        refused = isinstance(reply, Text) and reply.refusal
        message: dict[str, Any] = {
            "role": "assistant",
            # The API sends null, not "", when a tool-call turn has no text.
            "content": None
            if refused
            else reply.text or (None if isinstance(reply, ToolCalls) else ""),
            "refusal": reply.text if refused else None,
        }
        calls = self._calls(reply)
        if calls:
            message["tool_calls"] = [
                {
                    "id": cid,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments_json()},
                }
                for cid, c in calls
            ]
        return self._envelope("chat.completion", request) | {
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(reply),
                }
            ],
            "usage": _usage(reply.input_tokens, reply.usage_out()),
        }

    def encode_stream(self, reply: Text | ToolCalls, request: Request) -> Frames:
        base = self._envelope("chat.completion.chunk", request)  # one id for all chunks
        opts = (request.body or {}).get("stream_options") or {}
        include_usage = bool(opts.get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj = base | {
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            }
            if include_usage:
                obj["usage"] = None  # every chunk carries the key; only the last a value
            return sse_data(obj)

        text = reply.pieces() if isinstance(reply, Text) else Text(reply.text).pieces()
        frames = Frames(
            body=[chunk({"role": "assistant", "content": "" if text else None, "refusal": None})]
        )
        field = "refusal" if isinstance(reply, Text) and reply.refusal else "content"
        frames.body += [chunk({field: piece}) for piece in text]
        for index, (cid, call) in enumerate(self._calls(reply)):
            # First fragment names the call; the rest carry only index + argument text.
            frames.body.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": cid,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            frames.body += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
                for part in split_json(call.arguments_json())
            ]
        frames.end.append(chunk({}, self._finish(reply)))
        if include_usage:
            frames.end.append(
                sse_data(
                    base | {"choices": [], "usage": _usage(reply.input_tokens, reply.usage_out())}
                )
            )
        frames.end.append(sse_data("[DONE]"))
        return frames
