"""Tool composition: ``pipe`` (one after another), ``parallel`` (all at once), ``branch`` (either).

Each builds a ``Composition`` you call with an agent and keyword inputs, or await bare::

    pipeline = pipe("read_file", "analyze_code", "suggest_improvements", "write_file")
    result = await pipeline(agent, file_path="auth.py")   # with an agent and inputs
    status = await pipe("git_status")                     # bare: no agent, no inputs

Steps are tool names (the agent's own tools first, then the registry), tool objects,
other compositions, or plain callables (sync or async).

How data flows
--------------
- The keyword inputs given at call time go to every tool step that has a parameter of
  that name: ``file_path`` above reaches ``read_file``, ``analyze_code``,
  ``suggest_improvements`` and ``write_file``. An input no step takes is a ``ToolError``
  (so typos show), and so is a first step's required parameter left without input.
- A step's ``ToolResult.output`` feeds the next step. A dict output whose keys name the
  next tool's parameters is spread into them (``{"content": ...}`` -> ``content=``);
  any other output goes whole to the next tool's first parameter, in declared order,
  that is still unset and whose JSON type accepts it (text -> the first string
  parameter, a dict -> the first object parameter). If none fits, the step runs without it.
- A callable step receives the previous output as its one argument (a first step: the
  inputs as keyword arguments); what it returns is its output.
- ``parallel`` gives every branch the same input and returns when all are done;
  ``branch`` passes its input to the step it chooses.

Every composition returns a ``CompositionResult`` (a ``ToolResult``): ``output`` is the
last step's output (``parallel``: a dict of each step's output), ``steps`` holds every
step's own result by name, and a failure is reported, never hidden: ``pipe`` stops at
the first failing step, ``parallel`` runs all and fails if any failed, naming which.
Unknown tool names and a first step that is missing its required inputs raise
``ToolError``. Events: ``compose.start``, ``compose.step`` (per step), ``compose.complete``.

Approval asks about calls a *model* makes; a composition is code you wrote and called,
so its steps run without asking.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Union

from pydantic import Field

from .._util import maybe_await, new_id
from ..core.events import EventScope, current_scope, scope
from ..errors import ToolError
from .base import BaseTool, ToolResult
from .context import AgentLike, ToolContext, current_context, using_context
from .registry import registry

__all__ = ["pipe", "parallel", "branch", "Composition", "CompositionResult"]

Step = Union[str, BaseTool, type[BaseTool], "Composition", Callable[..., Any]]


class CompositionResult(ToolResult):
    """A composition's result; ``steps`` holds each step's own ``ToolResult`` by name
    (a repeated name gets ``#2``, ``#3``)."""

    steps: dict[str, ToolResult] = Field(default_factory=dict)

    def __getitem__(self, name: str) -> ToolResult:
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError(f"no step {name!r}; steps: {', '.join(self.steps)}") from None


@dataclass(slots=True)
class _Input:
    """What a step receives: the call-time inputs and (after the first step) an output."""

    inputs: dict[str, Any]
    previous: Any = None
    has_previous: bool = False
    #: The first step of a pipe: its required parameters must come from the inputs.
    first: bool = True


class Composition:
    """Steps combined by ``pipe``, ``parallel`` or ``branch``. Call it with an optional
    agent and keyword inputs, or await it bare."""

    kind = "composition"

    def __init__(self, steps: list[Step]) -> None:
        self.steps = [_check_step(s) for s in steps]

    async def __call__(
        self, agent: AgentLike | None = None, /, **inputs: Any
    ) -> CompositionResult:
        """Run with ``agent`` (its tools, workspace and model) and ``inputs`` for the first step."""
        context = _context_for(agent, self)
        parent = current_scope()
        if agent is not None:
            parent = EventScope(
                agent.bus, run_id=parent.run_id, agent=agent.name, parent=parent.parent
            )
        with using_context(context):
            _check_inputs(self, inputs, context)
            return await self._execute(_Input(inputs), parent)

    def __await__(self) -> Generator[Any, None, CompositionResult]:
        return self().__await__()

    async def _execute(self, given: _Input, parent: EventScope) -> CompositionResult:
        own = EventScope(
            parent.bus, run_id=new_id("compose"), agent=parent.agent, parent=parent.run_id
        )
        started = perf_counter()
        await own.emit(
            "compose.start", {"kind": self.kind, "steps": [_name(s) for s in self.steps]}
        )
        with scope(own):
            result = await self._run(given, own)
        await own.emit(
            "compose.complete",
            {
                "kind": self.kind,
                "success": result.success,
                "error": result.error,
                "duration_ms": (perf_counter() - started) * 1000,
            },
        )
        return result

    async def _run(self, given: _Input, own: EventScope) -> CompositionResult:
        raise NotImplementedError

    async def _step(self, index: int, step: Step, given: _Input, own: EventScope) -> ToolResult:
        """Run one step and report it with a ``compose.step`` event."""
        started = perf_counter()
        result = await _run_step(step, given, own)
        await own.emit(
            "compose.step",
            {
                "kind": self.kind,
                "index": index,
                "step": _name(step),
                "success": result.success,
                "error": result.error,
                "duration_ms": (perf_counter() - started) * 1000,
            },
        )
        return result

    def __repr__(self) -> str:
        return f"{self.kind}({', '.join(_name(s) for s in self.steps)})"


class Pipe(Composition):
    kind = "pipe"

    async def _run(self, given: _Input, own: EventScope) -> CompositionResult:
        steps: dict[str, ToolResult] = {}
        current = given
        for index, step in enumerate(self.steps):
            result = await self._step(index, step, current, own)
            name = _unique(steps, _name(step))
            steps[name] = result
            if not result.success:
                return CompositionResult(
                    success=False,
                    error=f"pipe step {index + 1} ({name}) failed: {result.error}",
                    steps=steps,
                    metadata={"failed_step": name},
                )
            current = _Input(given.inputs, result.output, True, first=False)
        return CompositionResult(success=True, output=current.previous, steps=steps)


class Parallel(Composition):
    kind = "parallel"

    async def _run(self, given: _Input, own: EventScope) -> CompositionResult:
        shared = _Input(given.inputs, given.previous, given.has_previous, first=given.first)
        results = await asyncio.gather(
            *(self._step(i, step, shared, own) for i, step in enumerate(self.steps))
        )
        steps: dict[str, ToolResult] = {}
        for step, result in zip(self.steps, results, strict=True):
            steps[_unique(steps, _name(step))] = result
        failed = {name: r.error for name, r in steps.items() if not r.success}
        output = {name: r.output for name, r in steps.items() if r.success}
        if failed:
            details = "; ".join(f"{name}: {error}" for name, error in failed.items())
            return CompositionResult(
                success=False,
                output=output,
                error=f"{len(failed)} of {len(steps)} parallel steps failed: {details}",
                steps=steps,
                metadata={"failed_steps": list(failed)},
            )
        return CompositionResult(success=True, output=output, steps=steps)


class Branch(Composition):
    kind = "branch"

    def __init__(self, condition: Any, if_true: Step, if_false: Step | None) -> None:
        if not (isinstance(condition, bool) or callable(condition)):
            raise ToolError(
                f"branch condition must be a bool or a function (sync or async), got {condition!r}"
            )
        self.condition = condition
        super().__init__([if_true] if if_false is None else [if_true, if_false])
        self.if_true, self.if_false = (
            self.steps[0],
            (self.steps[1] if if_false is not None else None),
        )

    async def _run(self, given: _Input, own: EventScope) -> CompositionResult:
        try:
            chosen = bool(await _evaluate(self.condition, given))
        except Exception as exc:  # reported like a failing step, not raised mid-pipeline
            return CompositionResult.fail(
                f"the branch condition raised {type(exc).__name__}: {exc}"
            )
        step = self.if_true if chosen else self.if_false
        meta = {"condition": chosen}
        if step is None:  # nothing to do on this side: the input passes through
            return CompositionResult(success=True, output=given.previous, metadata=meta)
        result = await self._step(0 if chosen else 1, step, given, own)
        return CompositionResult(
            success=result.success,
            output=result.output,
            error=result.error,
            steps={_name(step): result},
            metadata=meta,
        )

    def __repr__(self) -> str:
        no = _name(self.if_false) if self.if_false is not None else "None"
        return f"branch(if_true={_name(self.if_true)}, if_false={no})"


def pipe(*steps: Step) -> Composition:
    """Run ``steps`` one after another, each step's output feeding the next."""
    if not steps:
        raise ToolError("pipe() needs at least one step: pipe('read_file', 'analyze_code')")
    return Pipe(list(steps))


def parallel(*steps: Step) -> Composition:
    """Run ``steps`` concurrently on the same input; the result holds all their results."""
    if not steps:
        raise ToolError("parallel() needs at least one step: parallel('run_tests', 'run_linter')")
    return Parallel(list(steps))


def branch(
    condition: bool | Callable[..., bool | Awaitable[bool]],
    if_true: Step,
    if_false: Step | None = None,
) -> Composition:
    """Run ``if_true`` when ``condition`` holds, else ``if_false`` (if given).

    ``condition`` is a bool or a function, sync or async, taking no argument or the
    input (the previous step's output; as a first step, the dict of inputs).
    """
    return Branch(condition, if_true, if_false)


# -- running one step ----------------------------------------------------------------


async def _run_step(step: Step, given: _Input, own: EventScope) -> ToolResult:
    if isinstance(step, Composition):
        return await step._execute(given, own)
    context = current_context()
    if callable(step) and not isinstance(step, BaseTool):
        try:
            value = step(given.previous) if given.has_previous else step(**given.inputs)
            value = await maybe_await(value)
        except Exception as exc:  # like a tool: the failure becomes the step's result
            return ToolResult.fail(f"{_name(step)} raised {type(exc).__name__}: {exc}")
        return value if isinstance(value, ToolResult) else ToolResult(success=True, output=value)
    tool = _resolve(step, context)
    arguments = _bind(tool, given)
    timeout = context.agent.limits.tool_timeout if context.agent is not None else None
    return await tool.run(arguments, timeout=timeout)


def _resolve(step: str | BaseTool, context: ToolContext) -> BaseTool:
    if isinstance(step, BaseTool):
        return step
    if context.agent is not None:
        for tool in context.agent.tools:
            if tool.name == step:
                return tool
    if step in registry.toolsets():
        raise ToolError(
            f"{step!r} is a toolset ({', '.join(registry.toolsets()[step])}), not one tool: "
            f"name the tool a composition step should run"
        )
    return registry.get(step)


def _bind(tool: BaseTool, given: _Input) -> dict[str, Any]:
    """The arguments for ``tool``, following the data-flow rules in the module docstring."""
    properties: dict[str, Any] = tool.schema.get("properties", {})
    if given.first and not given.has_previous:
        missing = [p for p in tool.schema.get("required", []) if p not in given.inputs]
        if missing:
            raise ToolError(
                f"the first step, {tool.name}, needs {', '.join(missing)}: pass inputs when "
                f"calling the composition, e.g. await pipe(...)(agent, {missing[0]}=...)"
            )
    arguments = {k: v for k, v in given.inputs.items() if k in properties}
    if given.has_previous and given.previous is not None:
        previous = given.previous
        spread = (
            {k: v for k, v in previous.items() if k in properties}
            if isinstance(previous, dict)
            else {}
        )
        if spread:
            arguments.update(spread)
        else:
            for name, schema in properties.items():
                if name not in arguments and _accepts(schema, previous):
                    arguments[name] = previous
                    break
    return arguments


_JSON_TYPES: list[tuple[type, str]] = [
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (dict, "object"),
    (list, "array"),
    (tuple, "array"),
    (type(None), "null"),
]


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    """Whether a JSON-schema property could take ``value`` (by JSON type only)."""
    kind = next((name for cls, name in _JSON_TYPES if isinstance(value, cls)), None)
    allowed = _schema_types(schema)
    if allowed is None:
        return True
    return kind in allowed or (kind == "integer" and "number" in allowed)


def _schema_types(schema: dict[str, Any]) -> set[str] | None:
    if "type" in schema:
        kinds = schema["type"]
        return set(kinds if isinstance(kinds, list) else [kinds])
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        found: set[str] = set()
        for option in options:
            kinds = _schema_types(option)
            if kinds is None:
                return None
            found |= kinds
        return found
    return None  # no type constraint: anything goes


async def _evaluate(condition: Any, given: _Input) -> Any:
    if isinstance(condition, bool):
        return condition
    try:
        parameters = inspect.signature(condition).parameters.values()
        wants_input = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in parameters
        )
    except (TypeError, ValueError):  # a builtin without a signature: give it the input
        wants_input = True
    if not wants_input:
        return await maybe_await(condition())
    return await maybe_await(condition(given.previous if given.has_previous else given.inputs))


def _check_inputs(composition: Composition, inputs: dict[str, Any], context: ToolContext) -> None:
    """``ToolError`` for an input that no step takes (unknowable if a step is a function)."""
    taken: set[str] = set()
    pending: list[Step] = list(composition.steps)
    while pending:
        step = pending.pop()
        if isinstance(step, Composition):
            pending.extend(step.steps)
        elif isinstance(step, (str, BaseTool)):
            taken |= set(_resolve(step, context).schema.get("properties", {}))
        else:
            return  # a function may take anything
    unknown = sorted(set(inputs) - taken)
    if unknown:
        raise ToolError(
            f"no step of {composition!r} takes the input(s) {', '.join(unknown)}; "
            f"the steps' parameters are: {', '.join(sorted(taken)) or 'none'}"
        )


# -- helpers -------------------------------------------------------------------------


def _check_step(step: Any) -> Step:
    if isinstance(step, type) and issubclass(step, BaseTool):
        return step()
    if isinstance(step, (str, BaseTool, Composition)) or callable(step):
        return step  # type: ignore[no-any-return]
    raise ToolError(
        f"{step!r} cannot be a composition step: use a tool name, a tool, a composition "
        f"or a function"
    )


def _name(step: Step) -> str:
    if isinstance(step, str):
        return step
    if isinstance(step, BaseTool):
        return step.name
    if isinstance(step, Composition):
        return step.kind
    return getattr(step, "__name__", type(step).__name__)


def _unique(taken: dict[str, Any], name: str) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}#{n}" in taken:
        n += 1
    return f"{name}#{n}"


def _context_for(agent: Any, composition: Composition) -> ToolContext:
    if agent is None:
        return current_context()  # inside a run: that run's agent and workspace
    if not isinstance(agent, AgentLike):
        raise ToolError(
            f"{composition!r} was called with {agent!r} as its first argument: pass an Agent "
            f"(or nothing), and inputs as keywords, e.g. (agent, file_path='auth.py')"
        )
    return ToolContext(agent=agent, workspace=agent.workspace, approval=agent.approval)
