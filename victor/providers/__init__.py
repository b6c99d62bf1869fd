"""Model providers: Anthropic, OpenAI (and compatible servers), Ollama; register your own."""

from .base import (
    AgentResponse,
    Provider,
    available_providers,
    get_provider_class,
    register_provider,
)

__all__ = [
    "AgentResponse",
    "Provider",
    "available_providers",
    "get_provider_class",
    "register_provider",
]
