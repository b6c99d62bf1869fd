"""Small helpers shared across victor (no public API)."""

from __future__ import annotations

import inspect
import uuid
from typing import Any


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable, so callers accept sync and async callbacks alike."""
    if inspect.isawaitable(value):
        return await value
    return value


def new_id(prefix: str) -> str:
    """A short unique id such as ``run_1f3a9c2b7d4e``."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
