"""Small helpers shared across victor (no public API)."""

from __future__ import annotations

import contextvars
import inspect
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable, so callers accept sync and async callbacks alike."""
    if inspect.isawaitable(value):
        return await value
    return value


def new_id(prefix: str) -> str:
    """A short unique id such as ``run_1f3a9c2b7d4e``."""
    return f"{prefix}_{os.urandom(6).hex()}"


def did_you_mean(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to a mistyped ``name``, or ""."""
    import difflib  # only an error message needs it

    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


@contextmanager
def bound(var: contextvars.ContextVar[T], value: T) -> Iterator[T]:
    """Set ``var`` to ``value`` for the code inside the block, then restore it."""
    token = var.set(value)
    try:
        yield value
    finally:
        try:
            var.reset(token)
        except ValueError:  # an async generator closed from another context (e.g. by GC)
            pass
