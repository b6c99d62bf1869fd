"""One item of a batch: its key, the task it becomes, how it runs (retries, timeout), and
the ``BatchResult`` it ends as. Both backends run items through ``run_item``."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .._util import bound, jsonable
from ..core.events import EventScope, scope
from ..core.messages import Usage
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..core.events import Event

__all__ = [
    "BatchResult",
    "Work",
    "ItemContext",
    "attribute",
    "current_item",
    "item_keys",
    "make_call",
]

#: What turns an item into the agent's task: a ``str.format`` template over the item's
#: fields (``{item}`` is the whole item), or a function of the item.
Prompt = str | Callable[[Any], str] | None

#: Keys of a dict item that hold the task when no ``prompt=`` is given, in order.
TASK_FIELDS = ("task", "input")


@dataclass(slots=True)
class BatchResult:
    """The outcome of one item: ``output`` when it worked, else ``error`` (a message) and
    ``error_type`` (the exception's class name). ``usage`` counts every attempt's tokens."""

    index: int
    item: Any
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    duration_ms: float = 0.0
    #: The item's identity in a checkpoint (see ``batch(key=...)``).
    key: str = ""
    #: True when the result was read from the checkpoint instead of being run again.
    resumed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        what = f"output={_short(self.output)}" if self.ok else f"error={self.error_type}"
        return f"BatchResult(index={self.index}, {what}, tokens={self.usage.total_tokens})"

    def to_record(self) -> dict[str, Any]:
        """The result as one JSON-ready checkpoint line."""
        return {
            "key": self.key,
            "index": self.index,
            "item": jsonable(self.item),
            "output": jsonable(self.output),
            "error": self.error,
            "error_type": self.error_type,
            "usage": self.usage.model_dump(),
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 3),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], index: int, item: Any) -> BatchResult:
        """A result read back from a checkpoint line, for the item now at ``index``."""
        return cls(
            index=index,
            item=item,
            output=record.get("output"),
            error=record.get("error"),
            error_type=record.get("error_type"),
            usage=Usage(**(record.get("usage") or {})),
            attempts=int(record.get("attempts") or 0),
            duration_ms=float(record.get("duration_ms") or 0.0),
            key=str(record.get("key", "")),
            resumed=True,
        )


@dataclass(frozen=True, slots=True)
class Work:
    """An item waiting to run: its position in the input, its key, the item itself."""

    index: int
    key: str
    item: Any


@dataclass(slots=True)
class ItemContext:
    """What the code running one item reports to: set in a context variable, so every event
    emitted inside the item (by agents, team members, tools) is attributed to it."""

    #: The batch (or Ray actor) observing the item; other observers ignore it.
    owner: object
    #: The item's position in the batch's input.
    index: int
    usage: Usage = field(default_factory=Usage)
    #: Model responses seen (their usage is in ``usage``).
    responses: int = 0


current_item: contextvars.ContextVar[ItemContext | None] = contextvars.ContextVar(
    "victor_batch_item", default=None
)


def attribute(owner: object, event: Event) -> ItemContext | None:
    """The item of ``owner`` that emitted ``event`` (None: not one of its items), with a
    model response's usage counted."""
    context = current_item.get()
    if context is None or context.owner is not owner:
        return None
    if event.type == "provider.response":
        context.responses += 1
        context.usage += Usage(**(event.data.get("usage") or {}))
    return context


# -- keys ----------------------------------------------------------------------------------


def item_keys(items: Sequence[Any], key: Callable[[Any], Any] | None = None) -> list[str]:
    """Each item's identity in a checkpoint: ``key(item)``, else a hash of its JSON form.

    Identical items get ``#2``, ``#3``... so each still runs once, and keys survive items
    being added or removed around them.
    """
    keys: list[str] = []
    if key is not None:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            value = str(key(item))
            if value in seen:
                raise ConfigurationError(
                    f"key= gives {value!r} for items {seen[value]} and {index}; each item "
                    f"needs its own key, or a checkpoint cannot tell them apart"
                )
            seen[value] = index
            keys.append(value)
        return keys
    counts: dict[str, int] = {}
    for item in items:
        text = json.dumps(jsonable(item), sort_keys=True, ensure_ascii=False, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        counts[digest] = counts.get(digest, 0) + 1
        keys.append(digest if counts[digest] == 1 else f"{digest}#{counts[digest]}")
    return keys


# -- what an item asks ---------------------------------------------------------------------


def task_for(item: Any, prompt: Prompt) -> tuple[str, Mapping[str, Any] | None]:
    """The task (and context) the agent gets for ``item``."""
    if callable(prompt):
        return _checked(prompt(item), item), None
    if isinstance(prompt, str):
        fields = {**item, "item": item} if isinstance(item, Mapping) else {"item": item}
        try:
            return prompt.format_map(fields), None
        except KeyError as exc:
            raise ConfigurationError(
                f"prompt={prompt!r} names {{{exc.args[0]}}}, which the item does not have "
                f"(fields: {', '.join(sorted(map(str, fields)))})"
            ) from None
        except (IndexError, ValueError) as exc:
            raise ConfigurationError(
                f"prompt={prompt!r} is not a valid template ({exc}): name fields as "
                f"{{field}}, the whole item as {{item}}, and double literal braces {{{{ }}}}"
            ) from None
    if isinstance(item, str):
        return _checked(item, item), None
    if isinstance(item, Mapping):
        for name in TASK_FIELDS:
            if name in item:
                context = item.get("context")
                return _checked(item[name], item), context if isinstance(context, Mapping) else None
    raise ConfigurationError(
        f"cannot tell what to ask for the item {_short(item)}: give items as strings or as "
        f"dicts with a 'task' or 'input' field, or pass prompt='...{{field}}...' or "
        f"prompt=lambda item: ..."
    )


def _checked(task: Any, item: Any) -> str:
    if not isinstance(task, str) or not task.strip():
        raise ConfigurationError(f"the task for the item {_short(item)} is empty or not text")
    return task


def make_call(target: Any, prompt: Prompt, workflow: str | None) -> Callable[[Any], Awaitable[Any]]:
    """A coroutine function running ``target`` on one item and returning its output.

    ``target`` is an ``Agent`` (run on the item's task, or on ``workflow`` with the item as
    input), an ``AgentTeam`` (its answer is the output) or a function of the item: what it
    returns (awaited if need be) is the output, unless it is an agent or team made for the
    item, which is then run like one and cleaned up.
    """
    from ..core.agent import Agent
    from ..teams.base import AgentTeam

    async def run(runner: Any, item: Any) -> Any:
        if workflow is not None:
            if not isinstance(runner, Agent):
                raise ConfigurationError(
                    f"workflow={workflow!r} needs an Agent to run it, got {type(runner).__name__}"
                )
            data = dict(item) if isinstance(item, Mapping) else {"input": item}
            return await runner.run_workflow(workflow, input=data)
        task, context = task_for(item, prompt)
        if isinstance(runner, AgentTeam):
            return _TeamOutput(await runner.run(task, context))
        return await runner.run(task, context)

    if isinstance(target, (Agent, AgentTeam)):
        return lambda item: run(target, item)
    if not callable(target):
        raise ConfigurationError(
            f"agent={target!r} cannot run items: pass an Agent, an AgentTeam, or a function "
            f"of the item (sync or async) that returns the output or an agent to run"
        )

    async def call(item: Any) -> Any:
        value = target(item)
        if inspect.isawaitable(value):
            value = await value
        if isinstance(value, (Agent, AgentTeam)):
            try:
                return await run(value, item)
            finally:
                await value.cleanup()
        return value

    return call


class _TeamOutput:
    """A team's result on its way out of ``run_item``: the answer is the output, the
    team's usage the fallback usage."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result


# -- running one item ----------------------------------------------------------------------


async def run_item(
    call: Callable[[Any], Awaitable[Any]],
    work: Work,
    *,
    owner: object,
    run_scope: EventScope,
    retries: int = 0,
    timeout: float | None = None,
    retry_delay: float = 1.0,
) -> BatchResult:
    """Run one item to a result: an exception is the result's error (after ``retries``
    more attempts, backing off from ``retry_delay`` seconds), never raised; cancellation
    is. A ``ConfigurationError`` is not retried: trying again cannot fix a setting."""
    context = ItemContext(owner=owner, index=work.index)
    started = perf_counter()
    attempts = 0
    with bound(current_item, context), scope(run_scope):
        while True:
            attempts += 1
            try:
                output = await _within(call(work.item), timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed item is a result
                if attempts <= retries and not isinstance(exc, ConfigurationError):
                    await asyncio.sleep(retry_delay * 2 ** (attempts - 1))
                    continue
                return BatchResult(
                    index=work.index,
                    item=work.item,
                    error=_message(exc, timeout),
                    error_type=type(exc).__name__,
                    usage=context.usage,
                    attempts=attempts,
                    duration_ms=(perf_counter() - started) * 1000,
                    key=work.key,
                )
            break
    usage = context.usage
    if isinstance(output, _TeamOutput):
        if not context.responses:  # the team's events did not reach our observer
            usage = output.result.usage
        output = output.result.answer
    return BatchResult(
        index=work.index,
        item=work.item,
        output=output,
        usage=usage,
        attempts=attempts,
        duration_ms=(perf_counter() - started) * 1000,
        key=work.key,
    )


async def _within(awaitable: Awaitable[Any], timeout: float | None) -> Any:
    if timeout is None:
        return await awaitable
    if hasattr(asyncio, "timeout"):  # 3.11+: no extra task per item
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)  # pragma: no cover - Python 3.10


def _message(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) and not str(exc):  # 3.10: distinct
        return f"the item took longer than timeout={timeout} s"
    return str(exc) or type(exc).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
