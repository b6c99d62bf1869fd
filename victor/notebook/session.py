"""What ``%%victor`` cells share in one notebook: the ``%victor config`` settings, the agent
they make, and one conversation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.agent import Agent
from ..core.messages import Message
from ..errors import ConfigurationError

__all__ = ["NotebookSession", "CONFIG_KEYS"]


#: ``%victor config`` keys and how each value is read.
CONFIG_KEYS: dict[str, Any] = {
    "provider": str,
    "model": str,
    "temperature": float,
    "max_tokens": int,
    "max_iterations": int,
    "base_url": str,
    "system_prompt": str,
    "tools": lambda value: [t.strip() for t in value.split(",") if t.strip()],
    "format": str,
    "stream": lambda value: _to_bool(value),
    "approval": lambda value: _approval(value),
}
#: Keys that shape the agent (the rest shape the display).
_AGENT_KEYS = (
    "temperature",
    "max_tokens",
    "max_iterations",
    "base_url",
    "system_prompt",
    "tools",
    "approval",
)


@dataclass
class NotebookSession:
    """What ``%%victor`` cells share in one notebook: settings and one conversation."""

    config: dict[str, Any] = field(default_factory=dict)
    #: The conversation consecutive cells continue (until ``--new`` or ``%victor reset``).
    history: list[Message] = field(default_factory=list)
    _agents: dict[tuple[Any, ...], Agent] = field(default_factory=dict)
    #: The cassette ``%victor cassette FILE`` started (records or replays the rest).
    cassette: Any = None

    def agent(self, provider: str | None = None, model: str | None = None) -> Agent:
        """The agent for these settings (``%victor config`` + per-cell overrides), reused."""
        from ..config import settings

        configured = self.config.get("provider") or settings().provider
        same_provider = provider is None or provider == configured
        options = {k: self.config[k] for k in _AGENT_KEYS if k in self.config}
        if not same_provider:
            options.pop("base_url", None)  # the configured endpoint belongs to the other provider
        chosen_model = model or (
            self.config.get("model") or settings().model if same_provider else None
        )
        key = (provider or configured, chosen_model, repr(sorted(options.items())))
        agent = self._agents.get(key)
        if agent is None:
            agent = self._agents[key] = Agent(
                provider=provider or configured, model=chosen_model, **options
            )
        return agent

    def configure(self, pairs: list[str]) -> dict[str, Any]:
        """Apply ``%victor config key=value ...`` (an empty value unsets the key); return
        the settings now in force. ``ConfigurationError`` names a bad key or value (and
        refuses keys: they would be saved with the notebook)."""
        for pair in pairs:
            key, _, raw = pair.partition("=")
            key = key.strip().lower()
            if key == "api_key" or key.endswith("_key"):
                raise ConfigurationError(
                    f"{key!r} does not belong in a notebook (it would be saved with it): set the "
                    f"provider's environment variable instead, e.g. ANTHROPIC_API_KEY"
                )
            if key not in CONFIG_KEYS:
                raise ConfigurationError(
                    f"unknown setting {key!r}: use one of {', '.join(CONFIG_KEYS)}"
                )
            if not raw.strip():
                self.config.pop(key, None)
                continue
            try:
                value = CONFIG_KEYS[key](raw.strip())
            except ValueError:
                raise ConfigurationError(f"{key}={raw!r} is not a valid {key} value") from None
            if key == "format" and value not in _formats():
                raise ConfigurationError(
                    f"format={value!r} is unknown: use one of {', '.join(_formats())}"
                )
            if key == "provider":
                from ..providers.registry import get_provider_class

                get_provider_class(value)  # unknown names fail here, with suggestions
            if key == "tools":
                from ..tools.registry import registry

                registry.resolve(value)
            self.config[key] = value
        from ..config import settings

        env = settings()
        return {"provider": env.provider, "model": env.model, **self.config}

    def reset(self) -> int:
        """Forget the conversation; return how many messages it held."""
        count, self.history = len(self.history), []
        return count


def _formats() -> tuple[str, ...]:
    from .stream import FORMATS

    return FORMATS


def _approval(value: str) -> str:
    """An approval policy by name, checked as ``Agent(approval=...)`` checks it."""
    from ..tools.approval import check_policy

    try:
        return check_policy(value)  # type: ignore[return-value]
    except ConfigurationError:
        raise ConfigurationError(
            f"approval={value!r} is invalid: use ask (a card in the cell, the default), auto "
            f"(allow every tool call) or never (refuse them); in Python, Agent(approval=...) "
            f"also takes Ask(timeout=...) or a function"
        ) from None


def _to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)
