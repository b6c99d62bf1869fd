"""Task lifecycle hooks: ``on_start``, ``on_complete`` and ``on_error`` callbacks for a Task.

Pass them as ``Task(..., hooks={"on_start": ..., ...})``. A hook may be a plain function
or a coroutine function::

    on_start(task)
    on_complete(task, result)
    on_error(task, error)

``logging_hooks()`` gives a ready-made set that logs each transition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from .._secrets import get_logger
from .._util import did_you_mean, maybe_await
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .task import Task

__all__ = ["HOOK_NAMES", "Hooks", "validate_hooks", "call_hook", "logging_hooks"]

HOOK_NAMES: tuple[str, ...] = ("on_start", "on_complete", "on_error")


class Hooks(TypedDict, total=False):
    """The hooks a Task accepts; each may return a value or an awaitable (ignored)."""

    on_start: Callable[[Task], Any]
    on_complete: Callable[[Task, Any], Any]
    on_error: Callable[[Task, BaseException], Any]


def validate_hooks(hooks: Mapping[str, Any] | None) -> dict[str, Callable[..., Any]]:
    """Check hook names and values up front, so a typo fails at ``Task(...)``, not silently.

    ``None`` values are dropped (handy for ``{"on_error": handler if debug else None}``).
    """
    if hooks is None:
        return {}
    if not isinstance(hooks, Mapping):
        raise ConfigurationError(
            f"hooks must be a dict such as {{'on_start': fn}}, not {type(hooks).__name__}"
        )
    checked: dict[str, Callable[..., Any]] = {}
    for name, hook in hooks.items():
        if name not in HOOK_NAMES:
            hint = did_you_mean(str(name), HOOK_NAMES)
            raise ConfigurationError(
                f"Unknown hook {name!r}.{hint} Valid hooks: {', '.join(HOOK_NAMES)}"
            )
        if hook is None:
            continue
        if not callable(hook):
            raise ConfigurationError(
                f"Hook {name!r} must be a function (sync or async), "
                f"not {type(hook).__name__} ({hook!r})"
            )
        checked[name] = hook
    return checked


async def call_hook(hooks: Mapping[str, Any] | None, name: str, *args: Any) -> Any:
    """Call hook ``name`` with ``args`` if it is set, awaiting it when it is async.

    Errors raised by the hook propagate; the caller decides whether they matter.
    """
    if name not in HOOK_NAMES:
        raise ConfigurationError(f"Unknown hook {name!r}. Valid hooks: {', '.join(HOOK_NAMES)}")
    hook = hooks.get(name) if hooks else None
    if hook is None:
        return None
    return await maybe_await(hook(*args))


def logging_hooks(logger: logging.Logger | None = None) -> Hooks:
    """Hooks that log each task's start (INFO), completion (INFO) and failure (ERROR)."""
    log = logger if logger is not None else get_logger("victor.task")

    def on_start(task: Task) -> None:
        log.info("Task %s started", task.name)

    def on_complete(task: Task, result: Any) -> None:
        duration = task.duration
        took = f" in {duration:.2f}s" if duration is not None else ""
        log.info("Task %s completed%s (%d chars)", task.name, took, len(str(result)))

    def on_error(task: Task, error: BaseException) -> None:
        log.error("Task %s failed: %s: %s", task.name, type(error).__name__, error)

    return {"on_start": on_start, "on_complete": on_complete, "on_error": on_error}
