"""A victor run as ACP session updates: text as message chunks, tool calls as ``tool_call``
and ``tool_call_update`` (kind, status, a diff for file writes and edits), a team's member
runs and a workflow's steps as a plan."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    ContentToolCallContent,
    FileEditToolCallContent,
    PlanEntry,
    TextContentBlock,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
)

from ..core.messages import TextDelta, ToolCallFinished, ToolCallStarted
from ..errors import ToolError
from ..tools.approval import needs_approval

if TYPE_CHECKING:
    from ..core.events import Event
    from ..core.messages import StreamEvent, ToolCall, ToolResult
    from ..tools.approval import ApprovalRequest
    from ..tools.base import BaseTool
    from .files import ClientFiles

__all__ = ["Updates", "kind_of"]

#: ACP tool kinds of victor's built-in tools; any other tool (an MCP server's, the app's
#: own) is "other": it may do anything.
KINDS: dict[str, str] = {
    "read_file": "read",
    "list_files": "search",
    "search_code": "search",
    "git_status": "read",
    "git_diff": "read",
    "git_log": "read",
    "analyze_code": "read",
    "write_file": "edit",
    "edit_file": "edit",
    "write_tests": "edit",
    "run_python": "execute",
    "run_shell": "execute",
    "run_node": "execute",
    "run_tests": "execute",
    "run_coverage": "execute",
    "run_linter": "execute",
    "suggest_improvements": "think",
}

#: Longest tool output shown in a tool call's content (the model reads all of it).
SHOWN = 4000


def kind_of(tool_name: str) -> str:
    return KINDS.get(tool_name, "other")


class Updates:
    """Sends one session's updates to the client (``session/update`` notifications), in
    order, from a task of their own.

    The run does not wait for each text delta to be written: it reads on while a pump
    writes, and text that arrives while a write is under way goes out as one chunk with
    the text after it. A model's stream comes a few network reads at a time, each holding
    many deltas; one JSON-RPC message per delta cost 0.17-0.47 ms a delta in all (pydantic,
    the pipe, the client's parsing), 2.7-5.3 times the in-process stream (bench/acp.py).
    Everything else waits for its turn (``send``), so the client sees what happened in the
    order it happened; ``flush`` waits until all is written.
    """

    def __init__(self, client: Any, session_id: str, files: ClientFiles) -> None:
        self.client = client
        self.session_id = session_id
        self.files = files
        self.tools: dict[str, BaseTool] = {}
        self._plan: list[PlanEntry] = []
        self._members: dict[str, int] = {}  # run id -> plan entry
        self._started: set[str] = set()  # tool calls the client has seen start
        self._waiting: deque[Any] = deque()  # updates, and text (a str) to go as one chunk
        self._pump: asyncio.Task[None] | None = None

    def _post(self, update: Any) -> None:
        waiting = self._waiting
        if type(update) is str and waiting and type(waiting[-1]) is str:
            waiting[-1] += update
        else:
            waiting.append(update)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        waiting, send, session_id = self._waiting, self.client.session_update, self.session_id
        while waiting:
            update = waiting.popleft()
            if type(update) is str:
                update = AgentMessageChunk(
                    session_update="agent_message_chunk",
                    content=TextContentBlock(type="text", text=update),
                )
            await send(session_id=session_id, update=update)

    async def flush(self) -> None:
        """Wait until every update posted so far is written (a failed write raises here)."""
        pump = self._pump
        if pump is not None:
            await asyncio.shield(pump)  # a cancelled prompt still sends what it said

    async def send(self, update: Any) -> None:
        """Send ``update`` after what is waiting, and wait until it is written."""
        self._post(update)
        await self.flush()

    async def text(self, text: str) -> None:
        """Send ``text`` as (part of) a message chunk, without waiting for the write."""
        idle = self._pump is None or self._pump.done()
        self._post(text)
        if idle:
            # A burst of deltas (one network read) is read without the loop turning, so a
            # pump started now would write only after all of it: let it put this first
            # text on the pipe now (its task, then the SDK's writer: two turns).
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def event(self, event: StreamEvent) -> None:
        """Send what ``event`` (from ``agent.events``) shows the person, if anything."""
        kind = type(event)
        if kind is TextDelta:
            await self.text(event.text)  # type: ignore[union-attr]
        elif kind is ToolCallStarted:
            await self.tool_started(event.call)  # type: ignore[union-attr]
        elif kind is ToolCallFinished:
            await self.tool_finished(event.call, event.result)  # type: ignore[union-attr]

    # -- tool calls --------------------------------------------------------------------

    async def tool_started(self, call: ToolCall) -> None:
        await self._start(call.id, call.name, call.arguments)

    async def _start(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        self._started.add(call_id)
        tool = self.tools.get(name)
        asks = tool is not None and needs_approval(tool, arguments)
        diff, locations = await self._change(name, arguments)
        await self.send(
            ToolCallStart(
                session_update="tool_call",
                tool_call_id=call_id,
                title=_title(name, arguments),
                kind=kind_of(name),  # type: ignore[arg-type]
                status="pending" if asks else "in_progress",
                content=diff,
                locations=locations,
                raw_input=arguments,
            )
        )

    async def tool_running(self, call_id: str | None) -> None:
        """An approved call is running."""
        if call_id is not None:
            await self.send(
                ToolCallProgress(
                    session_update="tool_call_update", tool_call_id=call_id, status="in_progress"
                )
            )

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        await self._finish(call.id, result.to_text(), result.success)

    async def _finish(self, call_id: str, text: str, success: bool) -> None:
        if len(text) > SHOWN:
            text = text[:SHOWN] + f"\n… ({len(text) - SHOWN} more characters)"
        await self.send(
            ToolCallProgress(
                session_update="tool_call_update",
                tool_call_id=call_id,
                status="completed" if success else "failed",
                content=[
                    ContentToolCallContent(
                        type="content", content=TextContentBlock(type="text", text=text)
                    )
                ],
            )
        )

    async def asked(self, request: ApprovalRequest) -> ToolCallUpdate:
        """The tool call a permission request is about; started first where the client has
        not seen it start (a team member's: the plan stands for its run)."""
        call_id = request.call_id or request.tool_name
        if call_id not in self._started:
            await self._start(call_id, request.tool_name, request.arguments)
        return ToolCallUpdate(
            tool_call_id=call_id,
            title=_title(request.tool_name, request.arguments),
            kind=kind_of(request.tool_name),  # type: ignore[arg-type]
            status="pending",
            raw_input=request.arguments,
        )

    async def _change(
        self, name: str, arguments: dict[str, Any]
    ) -> tuple[list[Any] | None, list[ToolCallLocation] | None]:
        """A write's or an edit's diff and the file it touches (None where there is none)."""
        shown = arguments.get("file_path")
        if not isinstance(shown, str):
            return None, None
        try:
            path = str(self.files.workspace.resolve(shown))
        except ToolError:
            return None, None
        locations = [ToolCallLocation(path=path)]
        if name not in ("write_file", "edit_file"):
            return None, locations
        from .files import edited

        try:
            old: str | None = await self.files.read(shown)
        except ToolError:
            old = None
        try:
            new = (
                str(arguments["content"]) if name == "write_file" else edited(old or "", arguments)
            )
        except (ToolError, KeyError):
            return None, locations
        return [
            FileEditToolCallContent(type="diff", path=path, old_text=old, new_text=new)
        ], locations

    # -- plans: a team's member runs, a workflow's steps ---------------------------------

    async def plan(self, entries: list[str]) -> None:
        """Start a plan of ``entries``, all pending."""
        self._plan = [PlanEntry(content=e, priority="medium", status="pending") for e in entries]
        await self._send_plan()

    async def step(self, index: int, status: str) -> None:
        """Set the plan's entry ``index`` to ``status`` (in_progress, completed)."""
        if 0 <= index < len(self._plan):
            self._plan[index] = self._plan[index].model_copy(update={"status": status})
            await self._send_plan()

    async def team_event(self, event: Event) -> None:
        """A team run's event: member runs become plan entries, their tool calls tool calls
        (those that need approval from the moment the client is asked, the others when
        they end: a team's events say so then); the answer, text."""
        if event.type == "agent.start" and event.run_id is not None:
            task = str(event.data.get("task", ""))
            task = task if len(task) <= 80 else task[:79] + "…"
            self._members[event.run_id] = len(self._plan)
            self._plan.append(
                PlanEntry(content=f"{event.agent}: {task}", priority="medium", status="in_progress")
            )
            await self._send_plan()
        elif event.type in ("agent.complete", "agent.error") and event.run_id in self._members:
            await self.step(self._members.pop(event.run_id), "completed")
        elif event.type in ("tool.execution", "tool.error") and event.data.get("call_id"):
            data, failed = event.data, event.type == "tool.error"
            if data["call_id"] not in self._started:  # not asked about: shown as it ends
                await self._start(data["call_id"], data["tool_name"], data.get("arguments") or {})
            said = data.get("error" if failed else "result")
            await self._finish(
                data["call_id"], f"Error: {said}" if failed else str(said), not failed
            )
        elif event.type == "team.complete":
            await self.text(str(event.data.get("result", "")))

    async def _send_plan(self) -> None:
        await self.send(AgentPlanUpdate(session_update="plan", entries=list(self._plan)))


def _title(name: str, arguments: dict[str, Any]) -> str:
    """``write_file notes.md``, ``run_shell ls -la``: the tool and its main argument."""
    for key in ("file_path", "command", "pattern", "path", "code"):
        value = arguments.get(key)
        if isinstance(value, list):
            value = " ".join(map(str, value))
        if isinstance(value, str) and value:
            first = value.splitlines()[0]
            return f"{name} {first if len(first) <= 60 else first[:59] + '…'}"
    return name
