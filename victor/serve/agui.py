"""AG-UI over victor's event stream, so AG-UI front ends (CopilotKit and others) can drive
a victor agent.

The front end posts a ``RunAgentInput`` (the whole conversation, context, state); the
last user message is the task, the messages before it are the conversation so far. The
agent's ``events()`` become AG-UI events: ``RUN_STARTED``, ``TEXT_MESSAGE_START/CONTENT/
END`` per model response, ``TOOL_CALL_START/ARGS/END`` and ``TOOL_CALL_RESULT`` per tool
call (run on the server), ``RUN_FINISHED`` with the answer and token usage, or
``RUN_ERROR``. The front end's own tools are offered to the model too: a call to one
ends the run after its ``TOOL_CALL_START/ARGS/END``; the front end runs it and posts the
conversation again with the result, and the agent goes on from there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from .._util import new_id
from ..core.messages import Message, ToolCall
from ..errors import ConfigurationError
from .wire import problem_for

if TYPE_CHECKING:
    from ag_ui.core import BaseEvent, RunAgentInput

    from ..core.agent import Agent
    from ..tools import ClientTool

__all__ = ["split_input", "front_end_tools", "agui_events"]


def split_input(run: RunAgentInput) -> tuple[str | None, list[Message], dict[str, Any]]:
    """(task, the conversation before it, context) from an AG-UI run input. A run that
    brings the results of front-end tool calls has no new task (None): the conversation,
    ending with those results, goes on."""
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
    context = {item.description: item.value for item in run.context or ()}
    if history and history[-1].role == "tool":
        return None, history, context
    if not history or history[-1].role != "user" or not history[-1].content.strip():
        raise ConfigurationError(
            "the AG-UI run input must end with a user message (the task to do) or with the "
            "results of front-end tool calls"
        )
    return history[-1].content, history[:-1], context


def front_end_tools(run: RunAgentInput, agent: Agent) -> list[ClientTool]:
    """The front end's tools, for the model to call and the front end to run."""
    from ..tools import ClientTool

    served = {tool.name for tool in agent.tools}
    tools = []
    for spec in run.tools or ():
        if spec.name in served:
            raise ConfigurationError(
                f"the front end's tool {spec.name!r} has the name of one of the agent's own "
                f"tools: rename it"
            )
        tools.append(ClientTool(spec.name, spec.description, spec.parameters))
    return tools


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
        tools = front_end_tools(run, agent)
        events = agent.events(task, context or None, tools, remember=True)
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
