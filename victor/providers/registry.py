"""The registry of provider names: ``Agent.create(provider="openai")`` finds the class here,
importing its module on first use, so ``import victor`` loads no SDK."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .._util import did_you_mean
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .base import Provider

__all__ = ["available_providers", "get_provider_class", "register_provider"]

_registry: dict[str, str | type[Provider]] = {
    "anthropic": "victor.providers.anthropic:AnthropicProvider",
    "openai": "victor.providers.openai:OpenAIProvider",
    "ollama": "victor.providers.ollama:OllamaProvider",
    "local": "victor.providers.local:LocalProvider",
    "llamacpp": "victor.providers.local:LocalProvider",
}


def register_provider(name: str, provider: type[Provider] | str) -> None:
    """Make ``Agent.create(provider=name)`` use ``provider`` (a class or "module:Class")."""
    _registry[name.lower()] = provider


def available_providers() -> list[str]:
    """The provider names ``Agent.create`` accepts."""
    return sorted(_registry)


def get_provider_class(name: str) -> type[Provider]:
    """Resolve a provider name, importing its module on first use."""
    entry = _registry.get(name.lower()) if isinstance(name, str) else None
    if entry is None:
        hint = did_you_mean(str(name).lower(), _registry)
        raise ConfigurationError(
            f"Unknown provider {name!r}.{hint} Available: {', '.join(available_providers())}; "
            f"register your own with victor.providers.register_provider()"
        )
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), class_name)
        _registry[name.lower()] = entry
    return entry  # type: ignore[return-value]
