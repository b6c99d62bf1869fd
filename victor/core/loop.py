"""The agent loop: ask the model, run the tools it calls, feed results back, until it answers.

One path for every run: ``Agent.run``, ``astream``, ``chat``, ``events`` and the team
formations all come through ``run_loop``, so events are emitted at the same points
every time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .._secrets import get_logger
from ..errors import LimitExceededError, OutputValidationError, ProviderError
from ..providers.base import Provider
from .events import EventScope
from .messages import (
    AgentResponse,
    Message,
    ResponseComplete,
    RunFinished,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
)
from .seams import traced, traced_stream

if TYPE_CHECKING:
    from ..tools.base import BaseTool, ToolResult
    from ..tools.context import ToolContext
    from .output import OutputType

__all__ = ["Limits", "run_loop", "run_tool_call"]

logger = get_logger("victor.loop")

#: Stop reasons of a response the token limit cut off ("length" is victor's word for it;
#: "max_tokens" is Anthropic's, as a test provider may give it).
CUT_OFF = frozenset({"length", "max_tokens"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one run."""

    #: Model calls per run. A run that still wants tools after this many stops with
    #: ``LimitExceededError``.
    max_iterations: int = 10
    #: Seconds one tool call may take (a tool's own ``timeout`` wins).
    tool_timeout: float | None = 120.0
    #: Failed tool calls (errors, invalid arguments, refusals) a run may make before it
    #: stops with ``LimitExceededError``: the model's budget of retries. ``None``: no limit.
    max_tool_errors: int | None = 20


async def run_loop(
    messages: list[Message],
    provider: Provider,
    tools: Sequence[BaseTool],
    *,
    scope: EventScope,
    task: str,
    stream: bool = True,
    limits: Limits = Limits(),
    tool_context: ToolContext | None = None,
    output: OutputType | None = None,
    conversation: str | None = None,
) -> AsyncIterator[StreamEvent]:
    """Drive one run, appending to ``messages`` and yielding what happens as it happens.

    The last event is a ``RunFinished`` carrying the answer and the transcript. Errors are
    reported as ``agent.error`` events and raised. ``tool_context`` (agent, workspace,
    approval policy) is what the tools see while they run. With ``output`` the answer must
    validate as that type: an invalid one is sent back with the errors, up to
    ``output.retries`` times, then ``OutputValidationError``; retries do not count against
    ``max_iterations``. ``conversation``: the id of the conversation the run belongs to.
    """
    import asyncio  # imported when used: see victor/__init__.py

    started = perf_counter()
    by_name = {t.name: t for t in tools}
    specs = [t.spec() for t in tools] or None
    wanted = output.schema if output is not None else None
    if wanted is not None:
        provider.check_tools(by_name, wanted)
    retries = 0  # invalid answers sent back so far
    usage: Usage | None = None  # summed over the run's responses
    if tool_context is None:
        from ..tools.context import ToolContext  # imported when used: see victor/__init__.py

        tool_context = ToolContext()
    context = tool_context
    tool_errors = 0
    finished = False
    # Event data is built only for events someone listens to: the common case is nobody,
    # and the dicts (usage dumps especially) are a good part of a run's own cost.
    listening = scope.bus.has_listeners
    if listening("agent.start"):
        await scope.emit("agent.start", {"task": task, "conversation": conversation})
    try:
        iteration = 0
        while iteration < limits.max_iterations + retries:
            iteration += 1
            if listening("provider.request"):
                await scope.emit(
                    "provider.request",
                    {
                        "provider": provider.name,
                        "system": provider.system,
                        "in_process": provider.in_process,
                        "model": provider.model,
                        "iteration": iteration,
                        "messages": len(messages),
                        "temperature": provider.temperature,
                        "max_tokens": provider.max_tokens,
                    },
                )
            requested, first_chunk = perf_counter(), None
            if stream:
                response = None
                # Checked once per response, not per token: the token path stays cheap.
                tokens_observed = scope.bus.has_listeners("agent.token")
                chunks = traced_stream(provider.stream(messages, specs, wanted), scope, messages)
                async with aclosing(chunks) as events:
                    async for event in events:
                        if type(event) is TextDelta:
                            first_chunk = first_chunk or perf_counter()
                            if tokens_observed:
                                await scope.emit("agent.token", {"text": event.text})
                            yield event
                        elif type(event) is ResponseComplete:
                            response = event.response
                if response is None:
                    raise ProviderError(
                        "the stream ended without a final response", provider=provider.name
                    )
            else:
                with traced("chat", scope, messages) as call:  # its span current meanwhile
                    response = await provider.chat(messages, specs, wanted)
                    if call is not None:
                        call.answered(response)
            usage = response.usage if usage is None else usage + response.usage
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s/%s answered in %.0f ms: %d tool call(s), %s tokens, stop=%s",
                    provider.name,
                    provider.model,
                    (perf_counter() - requested) * 1000,
                    len(response.tool_calls),
                    response.usage.total_tokens,
                    response.stop_reason,
                )
            if listening("provider.response"):
                await scope.emit(
                    "provider.response",
                    {
                        "provider": provider.name,
                        "model": response.model or provider.model,
                        "duration_ms": (perf_counter() - requested) * 1000,
                        "usage": response.usage.model_dump(),
                        "stop_reason": response.stop_reason,
                        "first_chunk_ms": first_chunk and (first_chunk - requested) * 1000,
                    },
                )
            yield ResponseComplete(response)
            messages.append(Message.assistant(response.content, response.tool_calls))
            handed_over = False  # calls of tools the caller runs (``BaseTool.client_side``)
            if response.tool_calls:
                async for event in _run_tools(response, by_name, scope, limits, messages, context):
                    if type(event) is ToolCallFinished and not event.result.success:
                        tool_errors += 1
                    yield event
                if limits.max_tool_errors is not None and tool_errors > limits.max_tool_errors:
                    raise LimitExceededError(
                        f"the run stopped after {tool_errors} failed tool calls "
                        f"(max_tool_errors={limits.max_tool_errors}); the last: "
                        f"{messages[-1].content[:300]}. Raise the budget with "
                        f"Agent.create(..., max_tool_errors=N) or fix the tools"
                    )
                handed_over = any(_client_side(call, by_name) for call in response.tool_calls)
                if not handed_over:
                    continue
            # The answer, or (handed_over) the caller's turn: the run ends either way.
            value = None
            if output is not None and not handed_over:
                if response.stop_reason == "refusal":
                    raise _refused(output, response.content)
                try:
                    value = output.validate(response.content)
                except ValidationError as exc:
                    if response.stop_reason in CUT_OFF:  # asking again would end the same way
                        raise _cut_off(output, response, provider.max_tokens) from None
                    if retries == output.retries:
                        raise _invalid_output(output, response.content, exc) from None
                    retries += 1
                    logger.debug("invalid output, asking again: %s", exc)
                    messages.append(Message.user(output.retry_message(exc)))
                    continue
            duration_ms = (perf_counter() - started) * 1000
            if listening("agent.complete"):
                complete = {
                    "result": response.content,
                    "usage": usage.model_dump(),
                    "duration_ms": duration_ms,
                }
                if output is not None and not handed_over:
                    complete["output"] = output.to_data(value)
                await scope.emit("agent.complete", complete)
            finished = True  # closing the generator after this is not a cancellation
            yield RunFinished(
                content=response.content,
                usage=usage,
                messages=messages,
                iterations=iteration,
                duration_ms=duration_ms,
                model=response.model or provider.model,
                provider=provider.name,
                output=value,
            )
            return
        pending = ", ".join(call.name for call in response.tool_calls)
        raise LimitExceededError(
            f"the run stopped after max_iterations={limits.max_iterations} model calls and the "
            f"model still asked for tools ({pending}). Raise the limit with "
            f"Agent.create(..., max_iterations=N) or simplify the task"
        )
    except (asyncio.CancelledError, GeneratorExit):
        # Cancelled, or the caller stopped reading (closing the provider's stream too).
        if not finished:
            await scope.emit("agent.error", {"error": "cancelled", "error_type": "CancelledError"})
        raise
    except Exception as exc:
        await scope.emit("agent.error", {"error": str(exc), "error_type": type(exc).__name__})
        raise


def _cut_off(output: OutputType, response: AgentResponse, limit: int) -> OutputValidationError:
    """A typed answer the token limit stopped before it was complete."""
    raw = response.content
    tail = raw if len(raw) <= 160 else "…" + raw[-160:]
    return OutputValidationError(
        f"the model's answer was cut off by max_tokens={limit} before the "
        f"{output.schema.name} was complete, so it is not valid JSON; it ends: {tail!r}. "
        f"Raise max_tokens, or ask for less (a smaller type, a shorter task)",
        raw=raw,
        errors=[],
    )


def _excerpt(raw: str, limit: int = 300) -> str:
    return raw if len(raw) <= limit else raw[:limit] + "…"


def _invalid_output(output: OutputType, raw: str, exc: ValidationError) -> OutputValidationError:
    from .output import describe_errors

    attempts = output.retries + 1
    return OutputValidationError(
        f"the model's answer is not a valid {output.schema.name} after {attempts} "
        f"attempt(s):\n{describe_errors(exc, wrapped=output.wrapped)}\nIts last answer: "
        f"{_excerpt(raw)!r}. Raise output_retries=..., simplify the type, or use a stronger model",
        raw=raw,
        errors=exc.errors(include_url=False),
    )


def _refused(output: OutputType, raw: str) -> OutputValidationError:
    """A model that declines to answer gives no value of the type; asking again rarely helps."""
    return OutputValidationError(
        f"the model refused to give a {output.schema.name}: {_excerpt(raw)!r}. Rephrase the task "
        f"or use another model",
        raw=raw,
        errors=[],
    )


async def _run_tools(
    response: AgentResponse,
    tools: dict[str, BaseTool],
    scope: EventScope,
    limits: Limits,
    messages: list[Message],
    context: ToolContext,
) -> AsyncIterator[StreamEvent]:
    """Run the response's tool calls concurrently; append their results in call order."""
    from asyncio import gather  # imported when used: see victor/__init__.py

    for call in response.tool_calls:
        yield ToolCallStarted(call)
    # Calls of client-side tools are the caller's to run: started, not run here.
    ours = [call for call in response.tool_calls if not _client_side(call, tools)]
    outcomes = await gather(
        *(run_tool_call(call, tools, scope, limits.tool_timeout, context) for call in ours)
    )
    for call, (result, duration_ms) in zip(ours, outcomes, strict=True):
        messages.append(Message.tool(call, result.to_text(), is_error=not result.success))
        yield ToolCallFinished(call, result, duration_ms)


def _client_side(call: ToolCall, tools: dict[str, BaseTool]) -> bool:
    tool = tools.get(call.name)
    return tool is not None and tool.client_side


async def run_tool_call(
    call: ToolCall,
    tools: Mapping[str, BaseTool],
    scope: EventScope,
    timeout: float | None,
    context: ToolContext,
) -> tuple[ToolResult, float]:
    """Run one call of one of ``tools``: the result and its milliseconds. The one path of a
    tool call, for the loop and the MCP server alike: an unknown tool or malformed arguments,
    the approval gate's refusal, a failure or a timeout become a failed ``ToolResult`` the
    caller can read; ``tool.execution`` or ``tool.error`` is emitted on ``scope``."""
    with traced("tool", scope, call):  # the tool call's span current while it runs
        result, duration_ms = await _run_call(call, tools, scope, timeout, context)
    data = {"tool_name": call.name, "arguments": call.arguments, "duration_ms": duration_ms}
    data["call_id"] = call.id
    if result.success:
        await scope.emit("tool.execution", {**data, "result": result.to_text()})
    else:
        await scope.emit("tool.error", {**data, "error": result.error})
    return result, duration_ms


async def _run_call(
    call: ToolCall,
    tools: Mapping[str, BaseTool],
    scope: EventScope,
    timeout: float | None,
    context: ToolContext,
) -> tuple[ToolResult, float]:
    """The call itself (checked, approved, run), without its event."""
    from ..tools.approval import gate as approval_gate  # imported when used: see victor/__init__.py
    from ..tools.base import ToolResult
    from ..tools.context import using_context

    started = perf_counter()
    tool = tools.get(call.name)
    if tool is None:
        available = ", ".join(sorted(tools)) or "none"
        result = ToolResult.fail(
            f"there is no tool named {call.name!r}; available tools: {available}"
        )
    elif call.invalid_arguments is not None:
        result = ToolResult.fail(
            f"the arguments for {call.name!r} are not a valid JSON object "
            f"({call.invalid_arguments}); call the tool again with a JSON object matching "
            f"its schema"
        )
    else:
        with using_context(context):
            # Validated and approved (or refused, as a result the model reads) before it runs.
            refusal = await approval_gate(
                tool, call.arguments, context.approval, scope, call_id=call.id
            )
            result = refusal or await tool.run(call.arguments, timeout=timeout)
    return result, (perf_counter() - started) * 1000
