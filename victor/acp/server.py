"""A victor agent or team as an ACP agent: sessions, prompts, cancellation, modes.

Each ACP session has its own view of the served agent (``Catalog.agent``: the same
provider, its own conversation), working in the client's ``cwd``, with the MCP servers the
client passed and, when the client offers them, file tools that go through the client. A
prompt runs as one task per session, so sessions run at once and ``session/cancel`` cancels
the run (closing the model's stream) and ends the prompt with ``cancelled``.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from acp import PROTOCOL_VERSION, RequestError
from acp.schema import (
    AgentCapabilities,
    AvailableCommand,
    AvailableCommandInput,
    AvailableCommandsUpdate,
    Implementation,
    InitializeResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionMode,
    SessionModeState,
    UnstructuredCommandInput,
    Usage,
)

from .. import __version__
from .._secrets import get_logger, scrub
from .._util import new_id
from ..core.messages import ResponseComplete, RunFinished
from ..core.messages import Usage as VictorUsage
from ..errors import LimitExceededError, VictorError
from . import views
from .files import ClientFiles
from .permissions import MODES, current_session
from .updates import Updates

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..hosting.catalog import Catalog
    from ..teams import AgentTeam

__all__ = ["Session", "VictorACPAgent"]

log = get_logger("victor.acp")

#: victor's stop reasons (``AgentResponse.stop_reason``) in ACP's words; others: end_turn.
STOP_REASONS = {"length": "max_tokens", "refusal": "refusal"}


@dataclass(eq=False)
class Session:
    """One ACP session: the served agent's (or team's) view and what the client set up."""

    id: str
    target: Any  # an Agent or AgentTeam view of this session's own
    client: Any
    updates: Updates
    mode: str = next(iter(MODES))
    always: set[str] = field(default_factory=set)  # tools allowed for the rest of the session
    toolsets: list[Any] = field(default_factory=list)  # MCP connections, closed at the end
    task: asyncio.Task[PromptResponse] | None = None
    cancelled: bool = False


class VictorACPAgent:
    """The ACP ``Agent`` side for the agent or team ``name`` of ``catalog``."""

    def __init__(self, catalog: Catalog, name: str) -> None:
        self.catalog = catalog
        self.name = name
        self.client: Any = None
        self.can_read = self.can_write = False
        self.sessions: dict[str, Session] = {}

    def on_connect(self, conn: Any) -> None:
        self.client = conn

    # -- the protocol's methods ----------------------------------------------------------

    async def initialize(
        self, protocol_version: int, client_capabilities: Any = None, **_: Any
    ) -> InitializeResponse:
        fs = getattr(client_capabilities, "fs", None)
        self.can_read = bool(getattr(fs, "read_text_file", False))
        self.can_write = bool(getattr(fs, "write_text_file", False))
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=False,
                prompt_capabilities=PromptCapabilities(
                    image=False, audio=False, embedded_context=True
                ),
                mcp_capabilities=McpCapabilities(http=True, sse=False),
            ),
            agent_info=Implementation(name="victor", title="victor", version=__version__),
            auth_methods=[],
        )

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> NewSessionResponse:
        workspace = views.workspace(cwd)
        session_id = new_id("sess")
        files = ClientFiles(
            self.client, session_id, workspace, read=self.can_read, write=self.can_write
        )
        toolsets = await views.connect(mcp_servers or [], cwd)
        try:
            if self.catalog.kind(self.name) == "team":
                target: Any = views.team_view(
                    await self.catalog.team(self.name), workspace, files, toolsets
                )
            else:
                target = views.agent_view(
                    await self.catalog.agent(self.name), workspace, files, toolsets
                )
        except BaseException as exc:
            await views.close(toolsets)
            if isinstance(exc, VictorError):  # a profile's agent that cannot be made
                raise acp_error(exc) from None
            raise
        updates = Updates(self.client, session_id, files)
        for agent in views.agents(target):
            updates.tools.update((t.name, t) for t in agent.tools)
        session = Session(session_id, target, self.client, updates, toolsets=toolsets)
        self.sessions[session_id] = session
        # After the response (the client knows the session then): what "/" offers.
        asyncio.get_running_loop().create_task(self._announce(session))
        return NewSessionResponse(
            session_id=session_id,
            modes=SessionModeState(
                current_mode_id=session.mode,
                available_modes=[
                    SessionMode(id=mode, name=name, description=about)
                    for mode, (name, about) in MODES.items()
                ],
            ),
        )

    async def set_session_mode(self, session_id: str, mode_id: str, **_: Any) -> None:
        session = self._session(session_id)
        if mode_id not in MODES:
            raise RequestError(
                -32602, f"there is no session mode {mode_id!r}: use one of {', '.join(MODES)}"
            )
        session.mode = mode_id

    async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> PromptResponse:
        session = self._session(session_id)
        if session.task is not None and not session.task.done():
            raise RequestError(
                -32600,
                f"session {session_id} is still answering a prompt: wait for it, or send "
                f"session/cancel first",
            )
        text, context = read_prompt(prompt)
        session.cancelled = False
        session.task = asyncio.create_task(self._answer(session, text, context))
        try:
            return await session.task
        except asyncio.CancelledError:
            if not session.cancelled:
                raise  # the connection is closing, not a cancel from the client
            await session.updates.flush()  # what was said before the cancel, first
            return PromptResponse(stop_reason="cancelled")
        except VictorError as exc:
            raise acp_error(exc) from None
        except Exception as exc:  # a bug, e.g. in a user's tool or provider function
            log.error("the prompt failed", exc_info=True)  # the traceback, on stderr
            raise acp_error(exc) from None

    async def cancel(self, session_id: str, **_: Any) -> None:
        session = self.sessions.get(session_id)
        if session is not None and session.task is not None and not session.task.done():
            session.cancelled = True
            session.task.cancel()

    # -- running a prompt ----------------------------------------------------------------

    async def _answer(self, session: Session, text: str, context: dict[str, str]) -> PromptResponse:
        current_session.set(session)  # this task's own context: its approvals ask this client
        command, *rest = text[1:].split(None, 1) if text.startswith("/") else ("",)
        if command and command in self._commands():
            usage, stop = await self._workflow(session, command, "".join(rest).strip(), context)
        elif self.catalog.kind(self.name) == "team":
            usage, stop = await self._team(session, text, context), "end_turn"
        else:
            usage, stop = await self._stream(session, text, context)
        await session.updates.flush()  # every update before the prompt's answer
        return PromptResponse(
            stop_reason=stop,  # type: ignore[arg-type]
            usage=Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
            ),
        )

    async def _stream(
        self, session: Session, text: str, context: dict[str, str] | None, tools: Any = None
    ) -> tuple[VictorUsage, str]:
        """Run the session's agent on ``text``, its events sent as updates."""
        agent: Agent = session.target
        updates, reason = session.updates, None
        usage = VictorUsage()
        try:
            async with aclosing(agent.events(text, context or None, tools, remember=True)) as run:
                async for event in run:
                    kind = type(event)
                    if kind is ResponseComplete:
                        reason = event.response.stop_reason  # type: ignore[union-attr]
                    elif kind is RunFinished:
                        usage = event.usage  # type: ignore[union-attr]
                    else:
                        await updates.event(event)
        except LimitExceededError as exc:
            await updates.text(f"\n\n{exc}")
            return usage, "max_turn_requests"
        return usage, STOP_REASONS.get(reason or "", "end_turn")

    async def _team(self, session: Session, text: str, context: dict[str, str]) -> VictorUsage:
        team: AgentTeam = session.target
        async with aclosing(team.events(text, context or None)) as run:
            async for event in run:
                await session.updates.team_event(event)
        result = team.last_result
        return result.usage if result is not None else VictorUsage()

    async def _workflow(
        self, session: Session, name: str, request: str, context: dict[str, str]
    ) -> tuple[VictorUsage, str]:
        """A slash command: the workflow ``name``, its steps as a plan, each step streamed."""
        from ..workflows import load_workflow, run_workflow

        flow = load_workflow(name)
        await session.updates.plan([step.name for step in flow.steps])
        steps = _Steps(self, session)
        await run_workflow(steps, flow, {**({"request": request} if request else {}), **context})
        return steps.usage, steps.stop

    # -- helpers ---------------------------------------------------------------------------

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError(
                -32602,
                f"there is no session {session_id!r} (sessions do not outlive the process): "
                f"start one with session/new",
            )
        return session

    def _commands(self) -> list[str]:
        """Workflows offered as slash commands: to an agent (a team has no workflows)."""
        from ..workflows import list_workflows

        return list_workflows() if self.catalog.kind(self.name) == "agent" else []

    async def _announce(self, session: Session) -> None:
        from ..workflows import load_workflow

        commands = []
        for name in self._commands():
            try:
                about = load_workflow(name).description or f"the {name} workflow"
            except VictorError as exc:  # a broken workflow file: say so, offer the rest
                log.warning("workflow %s is not offered: %s", name, exc)
                continue
            commands.append(
                AvailableCommand(
                    name=name,
                    description=about,
                    input=AvailableCommandInput(
                        root=UnstructuredCommandInput(hint="what to work on (optional)")
                    ),
                )
            )
        try:
            await session.updates.send(
                AvailableCommandsUpdate(
                    session_update="available_commands_update", available_commands=commands
                )
            )
        except Exception as exc:  # the client went away
            log.debug("could not send the available commands: %s", exc)

    async def close(self) -> None:
        """Stop what runs and close every session's MCP connections."""
        for session in self.sessions.values():
            if session.task is not None and not session.task.done():
                session.task.cancel()
        await asyncio.gather(*(views.close(s.toolsets) for s in self.sessions.values()))
        self.sessions.clear()


class _Steps:
    """What a workflow runs its steps on: the session's agent, each step streamed and
    marked in the plan."""

    def __init__(self, server: VictorACPAgent, session: Session) -> None:
        self.server, self.session = server, session
        self.index = 0
        self.usage = VictorUsage()
        self.stop = "end_turn"

    async def run(self, task: str, context: Any = None, tools: Any = None) -> str:
        updates, index = self.session.updates, self.index
        self.index += 1
        await updates.step(index, "in_progress")
        if index:
            await updates.text("\n\n")
        usage, self.stop = await self.server._stream(self.session, task, context, tools)
        self.usage = self.usage + usage
        await updates.step(index, "completed")
        run = self.session.target.last_run
        return run.content if run is not None else ""


def acp_error(exc: Exception) -> RequestError:
    """An error as the ACP (JSON-RPC) error the client shows: its message (a victor error's
    says what to do; another's is named by its type), its kind; secrets masked."""
    message = str(exc) if isinstance(exc, VictorError) else f"{type(exc).__name__}: {exc}"
    return RequestError(-32603, scrub(message), {"error": type(exc).__name__})


def read_prompt(blocks: list[Any]) -> tuple[str, dict[str, str]]:
    """A prompt's text, and its embedded resources as the run's context (by URI)."""
    texts: list[str] = []
    context: dict[str, str] = {}
    for block in blocks:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "resource" and hasattr(block.resource, "text"):
            context[block.resource.uri] = block.resource.text
        elif kind == "resource_link":
            texts.append(f"(see {block.uri})")
        else:
            what = "binary resource" if kind == "resource" else f"{kind}"
            raise RequestError(
                -32602,
                f"victor's agents take text and text resources in a prompt, not a {what} "
                f"block (initialize says so: image and audio are false)",
            )
    text = "\n".join(texts).strip()
    if not text and not context:
        raise RequestError(-32602, "the prompt is empty: send a text block")
    return text, context
