"""victor: an async Python toolkit for AI agents that is at home in Jupyter.

    from victor import Agent
    agent = await Agent.create(provider="anthropic")
    print(await agent.run("Explain recursion"))

Heavy modules load on first use, so importing victor is cheap: provider SDKs when a
provider first sends a request, IPython with the notebook extension, and even asyncio
(about 40 ms) in the functions that run something — which is why victor's modules import
it locally instead of at the top.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .core import seams as _seams
from .errors import (
    ConfigurationError,
    LimitExceededError,
    OutputValidationError,
    ProviderError,
    StateError,
    ToolError,
    VictorError,
)

__version__ = "0.1.0"

# Public names and the module each lives in, imported when first touched (PEP 562).
_LAZY = {
    "Agent": "victor.core.agent",
    "AgentResponse": "victor.core.messages",
    "Task": "victor.core.task",
    "TaskStatus": "victor.core.task",
    "State": "victor.core.state",
    "AgentTeam": "victor.teams",
    "TeamResult": "victor.teams",
    "Profile": "victor.config",
    "load_profile": "victor.config",
    "EventBus": "victor.core.events",
    "Event": "victor.core.events",
    "Message": "victor.core.messages",
    "ToolCall": "victor.core.messages",
    "Usage": "victor.core.messages",
    "hooks": "victor.core.hooks",
    "run_sync": "victor._sync",
    "batch": "victor.batch",
    "evaluate": "victor.batch",
    "undo": "victor.notebook.workspace.undo",
}
#: Subpackages reachable as ``victor.mcp.server(...)`` after ``import victor`` alone, each
#: imported (with its extra's dependencies) only when first touched.
_SUBPACKAGES = {"acp", "mcp", "serve", "telemetry"}

__all__ = [
    "Agent",
    "AgentResponse",
    "AgentTeam",
    "ConfigurationError",
    "Event",
    "EventBus",
    "LimitExceededError",
    "Message",
    "OutputValidationError",
    "Profile",
    "ProviderError",
    "State",
    "StateError",
    "Task",
    "TaskStatus",
    "TeamResult",
    "ToolCall",
    "ToolError",
    "Usage",
    "VictorError",
    "batch",
    "evaluate",
    "hooks",
    "load_ipython_extension",
    "load_profile",
    "run_sync",
    "undo",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f"victor.{name}")  # sets victor.<name> itself
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'victor' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    # A module exported under its own name (hooks) is the module itself, unless it holds
    # a namesake (victor.batch holds batch()).
    itself = module_name.endswith("." + name) and not hasattr(module, name)
    value = module if itself else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBPACKAGES})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext victor``: register the ``%%victor`` magics."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)


# The front ends victor brings, plugged into the core's seams by path: imported only when
# the core first asks (display=True, a timeline, an approval card in a kernel).
_seams.plug("run_view", "victor.notebook.stream:StreamView")
_seams.plug("team_view", "victor.notebook.timeline:TeamTimeline")
_seams.plug("kernel_approval", "victor.notebook.approval")
_seams.plug("tool_provider", "victor.notebook.workspace:provide")  # tools=["notebook"]

if os.environ.get("VICTOR_OTEL"):  # tracing from the start (extra otel)
    from .telemetry import instrument_from_env

    instrument_from_env()

if TYPE_CHECKING:
    from . import acp as acp
    from . import hooks
    from . import mcp as mcp
    from . import serve as serve
    from . import telemetry as telemetry
    from ._sync import run_sync
    from .batch import batch, evaluate
    from .config import Profile, load_profile
    from .core.agent import Agent
    from .core.events import Event, EventBus
    from .core.messages import AgentResponse, Message, ToolCall, Usage
    from .core.state import State
    from .core.task import Task, TaskStatus
    from .notebook.workspace.undo import undo
    from .teams import AgentTeam, TeamResult
