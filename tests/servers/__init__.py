"""Loopback fake LLM servers (Anthropic, OpenAI, Ollama) for tests, driven by scripted replies."""

from .anthropic import AnthropicServer
from .base import Frames, Request, ScriptedServer
from .ollama import OllamaServer
from .openai import OpenAIServer
from .replies import Call, Hang, Json, Reply, Slow, Status, Text, ToolCalls, Truncate

__all__ = [
    "AnthropicServer",
    "Call",
    "Frames",
    "Hang",
    "Json",
    "OllamaServer",
    "OpenAIServer",
    "Reply",
    "Request",
    "ScriptedServer",
    "Slow",
    "Status",
    "Text",
    "ToolCalls",
    "Truncate",
]
