"""What ``Agent(...)`` and ``Agent.create(...)`` accept: every keyword declared once, with
what it takes and how to fix a bad value (checked by ``Agent.__init__`` before anything
is built)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .._util import Setting, did_you_mean, instance_setting, number_setting
from ..errors import ConfigurationError
from ..providers.base import PROVIDER_SETTINGS, Provider, check_options, get_provider_class
from .events import EventBus

__all__ = ["SETTINGS", "AGENT_ONLY", "provider_for", "apply_log_level_once"]


def _is_workspace(value: Any) -> bool:
    if value is None or isinstance(value, (str, os.PathLike)):
        return True
    from ..tools.sandbox import Workspace  # the tool machinery comes with the first agent

    return isinstance(value, Workspace)


def _is_tool_list(value: Any) -> bool:
    return value is None or (
        isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))
    )


def _check_approval(value: Any) -> None:
    from ..tools.approval import check_policy

    check_policy(value)


def _check_output_type(value: Any) -> None:
    if value is not None:
        from .output import output_type_for

        output_type_for(value)


#: Every keyword ``Agent(...)`` and ``Agent.create(...)`` take, in one place: what each
#: accepts and how to fix a bad value. ``Agent.__init__`` checks them all before doing
#: anything; other keywords are the provider's (``PROVIDER_SETTINGS``, its API parameters).
SETTINGS: dict[str, Setting] = {
    "role": instance_setting("use a string such as 'code reviewer', or None", str),
    "provider": instance_setting(
        "use a provider name ('anthropic', 'openai', 'ollama', 'local') or a Provider instance",
        str,
        Provider,
    ),
    "model": instance_setting(
        "use a model name (a string such as 'gpt-4o'), or None for the provider's default",
        str,
        os.PathLike,
    ),
    "tools": Setting(
        _is_tool_list,
        "use a list of tool names, toolset names or tools, e.g. tools=['read_file', 'pytest']",
    ),
    "name": instance_setting("use a string, or None to take the role's", str),
    "system_prompt": instance_setting("use a string, or None", str),
    "temperature": PROVIDER_SETTINGS["temperature"],
    "max_tokens": PROVIDER_SETTINGS["max_tokens"],
    "max_iterations": number_setting(
        "use a whole number of model calls per run, 1 or more (e.g. max_iterations=10)",
        whole=True,
        at_least=1,
    ),
    "tool_timeout": number_setting(
        "use a positive number of seconds a tool call may take (e.g. tool_timeout=30), or "
        "None for no limit",
        above=0,
        optional=True,
    ),
    "bus": instance_setting("use an EventBus, or None for the default bus", EventBus),
    "workspace": Setting(
        _is_workspace, "use a directory (a str or pathlib.Path) or a Workspace, or None for cwd"
    ),
    "approval": Setting(validate=_check_approval),
    "max_tool_errors": number_setting(
        "use a whole number of failed tool calls a run may make, 0 or more (e.g. "
        "max_tool_errors=20), or None for no limit",
        whole=True,
        at_least=0,
        optional=True,
    ),
    "output_type": Setting(validate=_check_output_type),
    "output_retries": number_setting(
        "use a whole number, 0 or more: how many times an invalid typed answer is sent back",
        whole=True,
        at_least=0,
    ),
}
#: The Agent's own settings (not the provider's), as unknown-name messages list them.
AGENT_ONLY = {"Agent settings": [n for n in SETTINGS if n not in PROVIDER_SETTINGS]}


def provider_for(
    provider: str | Provider | None,
    model: str | None,
    temperature: float,
    max_tokens: int,
    options: dict[str, Any],
) -> Provider:
    """The provider an agent's settings name: the instance given, or one built from the
    name (default ``$VICTOR_PROVIDER``) with the model, sampling and provider ``options``."""
    if isinstance(provider, Provider):
        for option in options:  # a misspelt Agent setting is said to be one
            raise ConfigurationError(
                f"Agent got {option}=..., which is not an Agent setting."
                f"{did_you_mean(option, SETTINGS)} With a Provider instance, provider "
                f"options (API parameters, api_key, base_url, timeout, ...) go to the "
                f"instance itself: {type(provider).__name__}(..., {option}=...)"
            )
        if model is not None:
            raise ConfigurationError(
                "model and provider options go to the Provider instance itself when you "
                "pass one; drop them from Agent(...)"
            )
        return provider
    from ..config import settings  # deferred: profiles and TOML are not needed at import

    env = settings()
    cls = get_provider_class(provider or env.provider)
    check_options(cls, options, AGENT_ONLY, "Agent")
    return cls(
        model or (env.model if provider is None else None),
        temperature=temperature,
        max_tokens=max_tokens,
        **options,
    )


_log_level_applied = False


def apply_log_level_once() -> None:
    """Honour ``VICTOR_LOG_LEVEL`` once per process, when the first agent is made."""
    global _log_level_applied
    if not _log_level_applied:
        _log_level_applied = True
        if os.environ.get("VICTOR_LOG_LEVEL"):
            from ..config import configure_logging

            configure_logging()
