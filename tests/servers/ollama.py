"""Fake Ollama chat API (``POST /api/chat``, JSON and NDJSON stream), plus tags and version.

Ollama streams unless the request says ``"stream": false``, and sends tool calls whole
(arguments as an object) in one message chunk rather than fragmented.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .base import Frames, Request, ScriptedServer
from .replies import Text, ToolCalls

_DONE = {"end": "stop", "length": "length"}


def ndjson(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _now() -> str:
    # Ollama reports RFC 3339 UTC with fractional seconds and a "Z".
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class OllamaServer(ScriptedServer):
    """Scripted server speaking the Ollama ``/api/chat`` wire format."""

    chat_path = "/api/chat"
    stream_content_type = "application/x-ndjson"
    stream_by_default = True  # as the real Ollama
    version = "0.6.5"

    def __init__(self, models: list[str] | None = None) -> None:
        super().__init__()
        self.models = models or ["llama3.2:latest", "qwen2.5:0.5b"]

    def error_body(self, code: int, message: str | None = None) -> dict[str, Any]:
        return {"error": message or f"HTTP {code}"}

    def get_routes(self) -> dict[str, Callable[[Request], Any]]:
        return {"/api/tags": self._tags, "/api/version": lambda _r: {"version": self.version}}

    def check_request(self, body: Any) -> str | None:
        """Ollama's check on ``format``: "json" or a JSON schema object."""
        fmt = body.get("format") if isinstance(body, dict) else None
        if fmt is None or fmt == "" or fmt == "json" or isinstance(fmt, dict):
            return None
        return f'invalid format: "{fmt}"; expected "json" or a valid JSON Schema'

    def _tags(self, _request: Request) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": m,
                    "model": m,
                    "modified_at": "2025-01-01T00:00:00Z",
                    "size": 1_000_000,
                    "digest": f"{i:064x}",
                    "details": {
                        "format": "gguf",
                        "family": "llama",
                        "parameter_size": "1B",
                        "quantization_level": "Q4_K_M",
                    },
                }
                for i, m in enumerate(self.models)
            ]
        }

    # -- encoders -------------------------------------------------------------------

    def _head(self, request: Request) -> dict[str, Any]:
        return {"model": (request.body or {}).get("model", "llama3.2"), "created_at": _now()}

    @staticmethod
    def _done(reply: Text | ToolCalls) -> dict[str, Any]:
        out = reply.usage_out()
        reason = (
            "stop"
            if isinstance(reply, ToolCalls)
            else _DONE.get(reply.stop_reason, reply.stop_reason)
        )
        return {
            "done": True,
            "done_reason": reason,
            "total_duration": 1_000_000 * (out + 10),  # nanoseconds, plausible not real
            "load_duration": 1_000_000,
            "prompt_eval_count": reply.input_tokens,
            "prompt_eval_duration": 1_000_000,
            "eval_count": out,
            "eval_duration": 1_000_000 * out,
        }

    @staticmethod
    def _tool_calls(reply: ToolCalls) -> list[dict[str, Any]]:
        return [
            {"function": {"name": c.name, "arguments": c.arguments_value()}}
            for c in reply.normalized()
        ]

    def encode_response(self, reply: Text | ToolCalls, request: Request) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if isinstance(reply, ToolCalls):
            message["tool_calls"] = self._tool_calls(reply)
        return self._head(request) | {"message": message} | self._done(reply)

    def encode_stream(self, reply: Text | ToolCalls, request: Request) -> Frames:
        def line(message: dict[str, Any]) -> bytes:
            return ndjson(
                self._head(request) | {"message": {"role": "assistant", **message}, "done": False}
            )

        text = reply.pieces() if isinstance(reply, Text) else Text(reply.text).pieces()
        frames = Frames(body=[line({"content": piece}) for piece in text])
        if isinstance(reply, ToolCalls):
            frames.body.append(line({"content": "", "tool_calls": self._tool_calls(reply)}))
        final = self._head(request) | {"message": {"role": "assistant", "content": ""}}
        frames.end.append(ndjson(final | self._done(reply)))
        return frames
