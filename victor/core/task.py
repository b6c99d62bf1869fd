"""Task: one named piece of work for an agent, with a status and lifecycle hooks.

A task moves ``pending -> running -> completed | failed | cancelled`` exactly once;
``reset()`` puts a finished task back to ``pending`` so it can run again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from .._secrets import get_logger
from .._util import new_id
from ..errors import VictorError
from .hooks import Hooks, call_hook, validate_hooks

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["Task", "TaskStatus"]

logger = get_logger("victor.task")


class TaskStatus(str, Enum):
    """Where a task is in its lifecycle; compares and prints as its plain string value."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        # So ``print(task.status)`` shows "pending", not "TaskStatus.PENDING".
        return self.value


class Task:
    """A named task run by an agent: ``result = await Task(name, description, agent).execute()``.

    ``hooks`` (see ``victor.core.hooks``) are called on start, completion and error; a hook
    that raises is logged and never changes the task's outcome. ``context`` and ``tools``
    are passed through to ``agent.run``.
    """

    def __init__(
        self,
        name: str,
        description: str,
        agent: Agent,
        hooks: Hooks | Mapping[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        tools: list[str] | None = None,
    ) -> None:
        self.id = new_id("task")
        self.name = name
        self.description = description
        self.agent = agent
        self.hooks = validate_hooks(hooks)
        self.context = context
        self.tools = tools
        self.status = TaskStatus.PENDING
        self.result: str | None = None
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or until now while running); None before start."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return end - self.started_at

    async def execute(self) -> str:
        """Run the task once with its agent and return the agent's answer.

        Raises whatever the agent raised (after ``on_error``), and ``VictorError`` if the
        task is not pending.
        """
        if self.status is not TaskStatus.PENDING:
            raise VictorError(
                f"Task {self.name!r} is already {self.status}; a task runs once. "
                "Create a new Task, or call task.reset() to run this one again."
            )
        # Set synchronously, before any await, so a concurrent second execute() is refused.
        self.status = TaskStatus.RUNNING
        self.started_at = time.time()
        try:
            await self._call_hook("on_start", self)
            result = await self.agent.run(self.description, context=self.context, tools=self.tools)
        except Exception as exc:
            self.error = exc
            self._finish(TaskStatus.FAILED)
            await self._call_hook("on_error", self, exc)
            raise
        except BaseException:
            # CancelledError, KeyboardInterrupt: the run was stopped, it did not fail.
            self._finish(TaskStatus.CANCELLED)
            raise
        self.result = result
        self._finish(TaskStatus.COMPLETED)
        await self._call_hook("on_complete", self, result)
        return result

    def reset(self) -> None:
        """Put a finished task back to pending, forgetting its result, error and timings."""
        if self.status is TaskStatus.RUNNING:
            raise VictorError(f"Task {self.name!r} is running; it cannot be reset until it ends")
        self.status = TaskStatus.PENDING
        self.result = None
        self.error = None
        self.started_at = None
        self.finished_at = None

    def _finish(self, status: TaskStatus) -> None:
        self.status = status
        self.finished_at = time.time()

    async def _call_hook(self, name: str, *args: Any) -> None:
        # A hook observes the task; letting its bug fail (or rescue) the task would be worse.
        try:
            await call_hook(self.hooks, name, *args)
        except Exception:
            logger.exception(
                "Hook %s of task %r raised; the task's outcome is unchanged", name, self.name
            )

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, status={self.status.value!r})"
