"""Agent: the main interface. Create one, then ``run``, ``astream``, ``chat`` or ``events``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from .._util import check_settings, new_id
from ..providers.base import Provider
from . import seams
from .events import EventBus, scope
from .loop import Limits
from .messages import Message, ResponseComplete, RunFinished, StreamEvent, TextDelta
from .run import run_provider, start_run
from .settings import SETTINGS, apply_log_level_once, provider_for

if TYPE_CHECKING:
    from ..config import Profile
    from ..tools.approval import ApprovalPolicy
    from ..tools.context import ToolContext
    from ..tools.registry import ToolLike
    from ..tools.sandbox import Workspace
    from ..workflows import Workflow, WorkflowResult
    from .output import OutputType

__all__ = ["Agent"]

#: The name of an agent given neither a name nor a role.
DEFAULT_NAME = "agent"


class Agent:
    """An AI agent: a model provider, a system prompt, tools, and a conversation.

    ``await Agent.create(...)`` is the usual way in; ``Agent(role=..., tools=...)`` builds
    one synchronously (team members, notebooks). No network request is made until the
    first run, so a missing API key is reported then, naming the variable to set.
    """

    def __init__(
        self,
        role: str | None = None,
        *,
        provider: str | Provider | None = None,
        model: str | None = None,
        tools: Iterable[ToolLike] | None = None,
        name: str | None = None,
        system_prompt: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        max_iterations: int = 10,
        tool_timeout: float | None = 120.0,
        bus: EventBus | None = None,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        approval: ApprovalPolicy = "ask",
        max_tool_errors: int | None = 20,
        output_type: Any = None,
        output_retries: int = 2,
        **provider_options: Any,
    ) -> None:
        check_settings(SETTINGS, locals())  # every setting, before anything is built
        # The tool machinery is imported by the first agent, not by `import victor`.
        from ..tools.approval import check_policy
        from ..tools.registry import registry
        from ..tools.sandbox import Workspace

        apply_log_level_once()
        self.provider = provider_for(provider, model, temperature, max_tokens, provider_options)
        self.role = role
        #: Who the agent is in events, approval prompts, progress bars, teams and servers:
        #: ``name``, else the role, else ``"agent"`` (``victor serve app.py`` gives such an
        #: agent its variable's name).
        self.name = name or role or DEFAULT_NAME
        self._name_given = name is not None  # victor serve also serves it under this name
        self.system_prompt = system_prompt
        self.tools = registry.resolve(tools)
        self.limits = Limits(
            max_iterations=max_iterations,
            tool_timeout=tool_timeout,
            max_tool_errors=max_tool_errors,
        )
        #: The directory file tools are confined to and commands run in (default: cwd).
        self.workspace = Workspace.coerce(workspace)
        #: Who approves tool calls that write files or run commands (victor.tools.approval).
        self.approval = check_policy(approval)
        #: What ``run``/``chat`` return unless a call says otherwise: None (or ``str``) for
        #: text, else a type the answer is validated as (see ``victor.core.output``).
        self.output_type = output_type
        #: How many times an invalid typed answer is sent back to the model with the errors.
        self.output_retries = output_retries
        if output_type is not None or output_retries != 2:
            self._output(None, None)  # a bad type fails here, not mid-run
        self.bus = bus or EventBus.default()
        # Without an explicit provider/bus, an agent running inside a team takes the
        # team's (see victor.teams): members can be built before their team exists.
        self._provider_given = provider is not None
        self._bus_given = bus is not None
        #: The conversation ``chat()`` continues (system prompt excluded).
        self.history: list[Message] = []
        #: The id of that conversation (telemetry's ``gen_ai.conversation.id``).
        self.conversation_id = new_id("conv")
        #: The outcome of the latest run: answer, usage, transcript, timing.
        self.last_run: RunFinished | None = None
        self._context: ToolContext | None = None  # see _tool_context

    # -- construction ----------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        provider: str | Provider | None = None,
        model: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        **kwargs: Any,
    ) -> Agent:
        """Create an agent. ``provider`` defaults to ``$VICTOR_PROVIDER``, else ``"ollama"``.

        Keyword arguments: ``tools``, ``role``, ``name`` (who the agent is in events,
        approval prompts and servers; default the role, else ``"agent"``), ``system_prompt``,
        ``max_iterations``, ``tool_timeout``, ``max_tool_errors``, ``bus``, ``workspace``
        (a directory or ``Workspace``: where tools read, write and run; default the current
        directory), ``approval`` (who allows tool calls that write files or run commands:
        ``"ask"``, the default, asks the person at the notebook or terminal and refuses
        where no one can answer; ``"auto"``, ``"never"``, ``Ask(timeout=...)`` or a callback),
        ``output_type`` (what ``run`` and ``chat`` return by default: a pydantic model, a
        dataclass, ``int``, ``list[str]``, ...; see ``run``) and ``output_retries``;
        anything else (``api_key``,
        ``base_url``, ``timeout``, ``max_retries``, API parameters such as ``top_p``) goes
        to the provider.

        Every setting is checked here (``SETTINGS``; the provider's in ``PROVIDER_SETTINGS``):
        a bad value or a name nobody takes is a ``ConfigurationError`` naming it and the fix.
        API parameters pass by name only if the provider lists them (``api_options``); send
        any other field to the API on purpose with ``extra_body={...}``.
        """
        return cls(
            provider=provider, model=model, temperature=temperature, max_tokens=max_tokens, **kwargs
        )

    @classmethod
    async def from_profile(cls, profile: Profile, **overrides: Any) -> Agent:
        """Create an agent from a ``Profile`` (see ``victor.load_profile``)."""
        settings: dict[str, Any] = {
            "provider": profile.provider,
            "model": profile.model,
            "temperature": profile.temperature,
            "max_tokens": profile.max_tokens,
            "system_prompt": profile.system_prompt,
            "tools": profile.tools,
            **profile.options,
        }
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    async def from_profile_name(cls, name: str, **overrides: Any) -> Agent:
        """Create an agent from the profile called ``name``."""
        from ..config import load_profile

        return await cls.from_profile(load_profile(name), **overrides)

    # -- running ---------------------------------------------------------------------

    async def run(
        self,
        task: str,
        context: Mapping[str, Any] | None = None,
        tools: Iterable[ToolLike] | None = None,
        *,
        display: bool = False,
        output_type: Any = None,
        output_retries: int | None = None,
    ) -> Any:
        """Do ``task`` (one-shot: no conversation memory) and return the final answer.

        The answer is text, or with ``output_type`` (default: the agent's) an object of
        that type: a pydantic model, a dataclass, ``int``, ``list[str]``,
        ``Literal["yes", "no"]``... The provider is asked for it in its own way (a JSON
        schema response format, a tool, a grammar) and tools still work before the
        answer. An invalid answer is sent back with the errors ``output_retries`` times
        (default 2), then ``OutputValidationError``. ``output_type=str`` means text.

        ``display=True`` streams the answer into the notebook cell (or the terminal) as it
        is generated, with tool calls as cards; see ``victor.notebook.StreamView``.
        """
        if display:
            return await self._shown(task, context, tools, output_type, output_retries)
        return await self._answer(
            task, context, tools, output=self._output(output_type, output_retries)
        )

    async def _shown(
        self,
        task: str,
        context: Mapping[str, Any] | None,
        tools: Iterable[ToolLike] | None,
        output_type: Any,
        output_retries: int | None,
    ) -> Any:
        """``run`` with the front end's live view attached to the run's events."""
        output = self._output(output_type, output_retries)
        view = seams.front_end("run_view")(format="markdown" if output is None else "json")
        events = self.events(
            task, context, tools, output_type=output_type, output_retries=output_retries
        )
        finished = await view.consume(events)
        return finished.content if output is None else finished.output

    async def astream(
        self,
        task: str,
        context: Mapping[str, Any] | None = None,
        *,
        output_type: Any = None,
        output_retries: int | None = None,
    ) -> AsyncIterator[Any]:
        """Do ``task`` and yield the answer's text as it is generated, across tool turns.

        With an ``output_type`` (default: the agent's) it yields objects of that type
        instead: each partial object as soon as the JSON written so far validates (an
        unfinished string counts as what it says so far; a model once every required
        field has begun), and last the complete, validated answer. Partial objects of an
        answer that turns out invalid may come before the retried one's.
        """
        output = self._output(output_type, output_retries)
        # The loop is read here, not through events(): one generator less for every chunk.
        run_scope, loop, start = start_run(
            self, task, context, None, stream=True, remember=False, output=output
        )
        with scope(run_scope):
            async with aclosing(loop):
                if output is None:
                    async for event in loop:
                        if type(event) is TextDelta:
                            yield event.text
                        elif type(event) is RunFinished:
                            self._finished(event, False, start)
                    return
                text, last = "", None
                async for event in loop:
                    kind = type(event)
                    if kind is TextDelta:
                        text += event.text
                        value = output.partial(text)
                        if value is not None and value != last:
                            last = value
                            yield value
                    elif kind is ResponseComplete:
                        text = ""  # the next response (after tools, or a retry) starts afresh
                    elif kind is RunFinished:
                        self._finished(event, False, start)
                        if last is None or event.output != last:
                            yield event.output

    async def chat(
        self, message: str, *, output_type: Any = None, output_retries: int | None = None
    ) -> Any:
        """Continue the conversation with ``message`` and return the reply (an object of
        ``output_type`` when there is one, as in ``run``)."""
        output = self._output(output_type, output_retries)
        return await self._answer(message, None, None, remember=True, output=output)

    async def ask_once(self, prompt: str, *, system: str | None = None, purpose: str) -> str:
        """Ask this agent's model one question, with no tools and no memory, and return the
        answer (what ``ToolContext.ask`` does for a tool).

        The question is a run of its own, nested under the current one, tagged
        ``"<agent>:<purpose>"``, on the provider a run of this agent would use now.
        """
        helper = Agent(
            provider=self._run_provider(), name=f"{self.name}:{purpose}", system_prompt=system
        )
        return await helper.run(prompt)  # type: ignore[no-any-return]

    def run_sync(
        self,
        task: str,
        context: Mapping[str, Any] | None = None,
        tools: Iterable[ToolLike] | None = None,
        **options: Any,
    ) -> Any:
        """``run`` from sync code: a script, a notebook cell, a thread, even inside a
        running event loop (an async web handler), without deadlock.

        The run happens on victor's private event loop thread while this thread waits
        (an event loop running here is blocked meanwhile; prefer ``await agent.run`` there).
        Ctrl-C or the kernel's stop button cancels it. Options are ``run``'s.
        """
        from .._sync import run_sync

        return run_sync(self.run(task, context, tools, **options))

    def chat_sync(self, message: str, **options: Any) -> Any:
        """``chat`` from sync code, as ``run_sync`` runs ``run``."""
        from .._sync import run_sync

        return run_sync(self.chat(message, **options))

    async def events(
        self,
        task: str | None,
        context: Mapping[str, Any] | None = None,
        tools: Iterable[ToolLike] | None = None,
        *,
        remember: bool = False,
        output_type: Any = None,
        output_retries: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Do ``task`` and yield typed events: text deltas, responses, tool calls, the end.

        With ``remember=True`` the task continues the ``chat()`` conversation; ``task=None``
        continues it from tool results the caller added to ``history`` (the results of a
        ``ClientTool``'s calls). With an ``output_type`` the text deltas are the answer's
        JSON and ``RunFinished.output`` is the validated object.
        """
        output = self._output(output_type, output_retries)
        # The loop is read here, not through another generator: one layer less per event.
        run_scope, loop, start = start_run(
            self, task, context, tools, stream=True, remember=remember, output=output
        )
        with scope(run_scope):
            async with aclosing(loop):
                async for event in loop:
                    if type(event) is RunFinished:
                        self._finished(event, remember, start)
                    yield event

    async def run_workflow(
        self, workflow: str | Workflow, input: Mapping[str, Any] | None = None
    ) -> WorkflowResult:
        """Run a named workflow (built in, or ``$VICTOR_HOME/workflows/NAME.toml``) step by
        step; returns the last step's output, with every step's in ``.steps``."""
        from ..workflows import run_workflow

        return await run_workflow(self, workflow, dict(input or {}))

    def reset(self) -> None:
        """Forget the conversation ``chat()`` keeps."""
        self.history = []
        self.conversation_id = new_id("conv")

    async def cleanup(self) -> None:
        """Release the provider's connections. The agent can still be used afterwards."""
        await self.provider.close()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cleanup()

    def __repr__(self) -> str:
        tools = [t.name for t in self.tools]
        return (
            f"Agent(name={self.name!r}, provider={self.provider.name!r}, "
            f"model={self.provider.model!r}, tools={tools})"
        )

    # -- the one path every run takes ------------------------------------------------

    async def _answer(
        self,
        task: str,
        context: Mapping[str, Any] | None,
        tools: Iterable[ToolLike] | None,
        *,
        remember: bool = False,
        output: OutputType | None = None,
    ) -> Any:
        """Run without streaming and return the answer: the text, or the typed output."""
        run_scope, loop, start = start_run(
            self, task, context, tools, stream=False, remember=remember, output=output
        )
        # Read to the end (RunFinished is last) so the loop finishes rather than being
        # closed early, which would look like a cancellation.
        finished = None
        with scope(run_scope), seams.traced("run", run_scope):
            async with aclosing(loop):
                async for event in loop:
                    if type(event) is RunFinished:
                        finished = event
                        self._finished(event, remember, start)
        if finished is None:  # pragma: no cover - the loop always ends with RunFinished or raises
            raise AssertionError("the loop ended without RunFinished")
        return finished.content if output is None else finished.output

    def _output(self, output_type: Any, output_retries: int | None) -> OutputType | None:
        """The run's output type: the call's, else the agent's; None for text."""
        chosen = self.output_type if output_type is None else output_type
        if chosen is None or chosen is str:  # text, as output_type_for says: the common case
            return None
        from .output import output_type_for

        retries = self.output_retries if output_retries is None else output_retries
        return output_type_for(chosen, retries)

    def _run_provider(self) -> Provider:
        """The provider a run started here would use (see ``victor.core.run``)."""
        return run_provider(self)

    def _finished(self, event: RunFinished, remember: bool, start: int) -> None:
        """Keep what a finished run leaves: ``last_run`` and, for ``chat``, the conversation
        (only a finished turn joins it; the system prompt is not part of it)."""
        self.last_run = event
        if remember:
            self.history = event.messages[start:]

    def _tool_context(self) -> ToolContext:
        """What tools see during a run; made again only when the workspace or policy changed."""
        context = self._context
        if (
            context is None
            or context.agent is not self  # a copied agent
            or context.workspace is not self.workspace
            or context.approval is not self.approval
        ):
            from ..tools.context import ToolContext

            context = ToolContext(agent=self, workspace=self.workspace, approval=self.approval)
            self._context = context
        return context
