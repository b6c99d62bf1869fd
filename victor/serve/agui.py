"""AG-UI over victor's event stream, so AG-UI front ends (CopilotKit and others) can drive
a victor agent.

The front end posts a ``RunAgentInput`` (the whole conversation, context, state); the
last user message is the task, the messages before it are the conversation so far. The
agent's ``events()`` become AG-UI events: ``RUN_STARTED``, ``TEXT_MESSAGE_START/CONTENT/
END`` per model response, ``TOOL_CALL_START/ARGS/END`` and ``TOOL_CALL_RESULT`` per tool
call (run on the server), ``RUN_FINISHED`` with the answer and token usage, or
``RUN_ERROR``. Tools the front end declares are not called (victor runs its own).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from .._util import new_id
from ..errors import ConfigurationError
from ..messages import Message, ToolCall
from .wire import problem_for

if TYPE_CHECKING:
    from ag_ui.core import BaseEvent, RunAgentInput

    from ..agent import Agent

__all__ = ["split_input", "agui_events"]


def split_input(run: RunAgentInput) -> tuple[str, list[Message], dict[str, Any]]:
    """(task, the conversation before it, context) from an AG-UI run input."""
    history: list[Message] = []
    names: dict[str, str] = {}  # tool call id -> tool name, for the results that follow
    for message in run.messages:
        role = message.role
        if role == "user":
            history.append(Message.user(_text(message.content)))
        elif role == "assistant":
            calls = [
                ToolCall.from_json(c.id, c.function.name, c.function.arguments)
                for c in message.tool_calls or ()
            ]
            names.update((c.id, c.name) for c in calls)
            history.append(Message.assistant(message.content or "", calls))
        elif role == "tool":
            call = ToolCall(id=message.tool_call_id, name=names.get(message.tool_call_id, ""))
            history.append(Message.tool(call, _text(message.content)))
        # system/developer messages: the agent keeps its own system prompt; activity and
        # reasoning messages are for display only.
    if not history or history[-1].role != "user" or not history[-1].content.strip():
        raise ConfigurationError(
            "the AG-UI run input must end with a user message: it is the task to do"
        )
    context = {item.description: item.value for item in run.context or ()}
    return history[-1].content, history[:-1], context


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(getattr(part, "text", "") for part in content or () if part.type == "text")


async def agui_events(agent: Agent, run: RunAgentInput) -> AsyncIterator[BaseEvent]:
    """The AG-UI events of ``agent`` doing the run (``agent`` is a per-request view)."""
    from ag_ui.core import (
        RunErrorEvent,
        RunFinishedEvent,
        RunStartedEvent,
        TextMessageContentEvent,
        TextMessageEndEvent,
        TextMessageStartEvent,
        TokenUsage,
        ToolCallArgsEvent,
        ToolCallEndEvent,
        ToolCallResultEvent,
        ToolCallStartEvent,
    )

    ids = {"thread_id": run.thread_id, "run_id": run.run_id}
    yield RunStartedEvent(**ids)
    try:
        task, history, context = split_input(run)
        agent.history = history
        message_id: str | None = None
        last_message: str | None = None
        events = agent.events(task, context or None, remember=True)
        async with aclosing(events):
            async for event in events:
                kind = event.kind
                if kind == "text":
                    if message_id is None:
                        message_id = new_id("msg")
                        yield TextMessageStartEvent(message_id=message_id, role="assistant")
                    yield TextMessageContentEvent(message_id=message_id, delta=event.text)  # type: ignore[union-attr]
                elif kind == "response":
                    if message_id is not None:
                        yield TextMessageEndEvent(message_id=message_id)
                    last_message, message_id = message_id, None
                elif kind == "tool_started":
                    call = event.call  # type: ignore[union-attr]
                    yield ToolCallStartEvent(
                        tool_call_id=call.id,
                        tool_call_name=call.name,
                        parent_message_id=last_message,
                    )
                    yield ToolCallArgsEvent(tool_call_id=call.id, delta=json.dumps(call.arguments))
                    yield ToolCallEndEvent(tool_call_id=call.id)
                elif kind == "tool_finished":
                    yield ToolCallResultEvent(
                        message_id=new_id("msg"),
                        tool_call_id=event.call.id,  # type: ignore[union-attr]
                        content=event.result.to_text(),  # type: ignore[union-attr]
                        role="tool",
                    )
                elif kind == "run_finished":
                    spent = event.usage  # type: ignore[union-attr]
                    yield RunFinishedEvent(
                        **ids,
                        result=event.content,  # type: ignore[union-attr]
                        usage=[
                            TokenUsage(
                                provider=event.provider,  # type: ignore[union-attr]
                                model=event.model,  # type: ignore[union-attr]
                                input_tokens=spent.input_tokens,
                                output_tokens=spent.output_tokens,
                                total_tokens=spent.total_tokens,
                            )
                        ],
                    )
    except Exception as exc:
        problem = problem_for(exc)
        yield RunErrorEvent(message=problem.body()["detail"], code=str(problem.status))
