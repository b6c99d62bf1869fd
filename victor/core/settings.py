"""What ``Agent(...)`` and ``Agent.create(...)`` accept: every keyword declared once, with
what it takes and how to fix a bad value (checked by ``Agent.__init__`` before anything
is built)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .._util import Setting, instance_setting, number_setting
from ..providers.base import PROVIDER_SETTINGS, Provider
from .events import EventBus

__all__ = ["SETTINGS", "AGENT_ONLY"]


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
