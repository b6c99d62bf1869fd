"""Batch runs and evaluations: one agent per item, N at a time, resumable, on this machine
or on a Ray cluster.

    from victor import batch, evaluate

    results = await batch(questions, agent, concurrency=16, checkpoint="answers.jsonl")
    report = await evaluate(dataset, {"v1": agent_v1, "v2": agent_v2}, [exact_match])

``victor.batch`` is also callable itself, so ``victor.batch(...)`` works whether it names
this package or the function (``import victor.batch`` makes it name the package).
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from .core import BACKENDS, Batch, batch
from .evaluate import Evaluation, contains, evaluate, exact_match, llm_judge
from .items import BatchResult
from .results import BatchResults, BatchSummary

__all__ = [
    "BACKENDS",
    "Batch",
    "BatchResult",
    "BatchResults",
    "BatchSummary",
    "Evaluation",
    "batch",
    "contains",
    "evaluate",
    "exact_match",
    "llm_judge",
]


class _CallableModule(types.ModuleType):
    """``victor.batch(...)`` calls ``batch(...)`` even when the name is bound to this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> Batch:
        return batch(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # what help() and inspect show: batch()'s
        return inspect.signature(batch)


sys.modules[__name__].__class__ = _CallableModule
