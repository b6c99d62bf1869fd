"""What every team formation shares: members, one run's bus and scope, member runs, the
transcript and usage, limits, cancellation, structured (JSON) replies, and ``TeamResult``.

A formation subclasses ``AgentTeam`` and implements ``_coordinate(run)``: it asks members
through ``run.ask`` / ``run.ask_json`` (each a normal ``agent.events`` run, so every
member's ``agent.*``/``provider.*``/``tool.*`` events are emitted as usual) and returns
the final answer. Member events go to the run's own bus (a child of ``team.bus``, which
forwards to the default bus), with ``agent`` = the member and ``parent`` = the team run.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing, nullcontext, suppress
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from .._util import bound, new_id
from ..agent import Agent, _default_provider
from ..core.events import Event, EventBus, EventScope, current_scope, scope
from ..errors import ConfigurationError, LimitExceededError, VictorError
from ..messages import RunFinished, TextDelta, Usage
from ..providers.base import Provider, get_provider_class
from ..tools.registry import ToolLike

if TYPE_CHECKING:
    from ..notebook.timeline import TeamTimeline
    from .consensus import ConsensusTeam
    from .debate import DebateTeam
    from .flat import FlatTeam
    from .hierarchical import HierarchicalTeam
    from .pipeline import PipelineTeam

__all__ = [
    "AgentTeam",
    "TeamResult",
    "Turn",
    "TeamRun",
    "TeamError",
    "StructuredOutputError",
    "MemberLike",
    "parse_json_object",
]

#: A team member: an ``Agent``, or a role string that becomes ``Agent(role=...)``.
MemberLike = Agent | str

M = TypeVar("M", bound=BaseModel)

#: Events a team run records for its result and timeline (``agent.token`` is left out:
#: one event per token would cost more than it tells).
RECORDED_EVENTS = ("team.*", "agent.start", "agent.complete", "agent.error", "provider.*", "tool.*")

#: Appended to a prompt when a member's structured reply could not be used.
RETRY_NOTE = (
    "Your previous reply (in the context block) could not be used: {problem}\n"
    "Reply again with only the JSON object, nothing else."
)


class TeamError(VictorError):
    """A team could not finish: a member failed and the formation could not recover.

    ``errors`` maps member names to the exceptions they raised; ``result`` is the partial
    ``TeamResult`` (transcript and usage so far).
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Mapping[str, BaseException] | None = None,
        result: TeamResult | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})
        self.result = result


class StructuredOutputError(TeamError):
    """A member did not reply with valid JSON of the expected shape, even after a retry."""


# -- the record of a run -------------------------------------------------------------


@dataclass
class Turn:
    """One member run inside a team run: who was asked what, and what they answered."""

    agent: str
    kind: str
    prompt: str
    content: str = ""
    round: int | None = None
    usage: Usage = field(default_factory=Usage)
    #: Model requests the run made.
    requests: int = 0
    duration_ms: float = 0.0
    #: The member run's id in events (``agent.start``/``agent.complete``).
    run_id: str | None = None
    #: The exception the member run raised, if it failed.
    error: BaseException | None = None
    #: Why a structured reply was rejected (the member was asked again).
    rejected: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        said = self.content if self.ok else f"[failed: {self.error}]"
        return f"{self.agent} ({self.kind}): {said}"


@dataclass
class TeamResult:
    """The outcome of ``team.run``: prints as the final answer, carries everything else."""

    answer: str
    task: str
    team: str
    formation: str
    run_id: str
    #: Every member run, in the order they started.
    transcript: list[Turn]
    usage: Usage
    usage_by_agent: dict[str, Usage]
    requests: int
    duration_ms: float
    #: Formation details: ``plan``, ``votes``, ``rounds``, ``stages`` ... (see each formation).
    details: dict[str, Any] = field(default_factory=dict)
    #: The run's events (``agent.token`` excluded): enough to rebuild its timeline.
    events: list[Event] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        return self.answer

    def __repr__(self) -> str:
        answer = self.answer if len(self.answer) <= 60 else self.answer[:57] + "..."
        return (
            f"TeamResult(formation={self.formation!r}, turns={len(self.transcript)}, "
            f"requests={self.requests}, tokens={self.usage.total_tokens}, answer={answer!r})"
        )

    def timeline(self, *, deterministic: bool = False) -> TeamTimeline:
        """The run's ``TeamTimeline`` (``deterministic=True``: logical clock, for docs)."""
        from ..notebook.timeline import TeamTimeline

        return TeamTimeline(self.events, deterministic=deterministic)


# -- one run ---------------------------------------------------------------------------


class TeamRun:
    """One execution of a team: its bus and scope, transcript, usage, limits and output."""

    def __init__(self, team: AgentTeam, task: str, context: Mapping[str, Any] | None) -> None:
        self.team = team
        self.task = task
        self.context = dict(context or {})
        self.run_id = new_id("team")
        #: This run's bus: team events and all member events, forwarded to ``team.bus``.
        self.bus = EventBus(parent=team.bus)
        outer = current_scope()
        self.scope = EventScope(self.bus, run_id=self.run_id, agent=team.name, parent=outer.run_id)
        self.transcript: list[Turn] = []
        #: Formation details, copied into ``TeamResult.details``.
        self.details: dict[str, Any] = {}
        self.events: list[Event] = []
        for pattern in RECORDED_EVENTS:
            self.bus.subscribe(pattern, self.events.append)
        #: Model requests made or reserved so far (the ``max_requests`` budget).
        self.requests = 0
        #: Set by ``astream``: text of the final answer's member run goes here.
        self.tokens: asyncio.Queue[str] | None = None
        self.streamed = False
        self.result: TeamResult | None = None
        self._slots = asyncio.Semaphore(team.max_concurrency) if team.max_concurrency else None
        self._started = perf_counter()

    async def emit(self, type: str, data: dict[str, Any]) -> None:
        """Emit a team event, tagged with the team and this run."""
        await self.scope.emit(type, {"team": self.team.name, **data})

    async def ask(
        self,
        member: Agent,
        prompt: str,
        *,
        kind: str,
        context: Mapping[str, Any] | None = None,
        round: int | None = None,
        tools: Iterable[ToolLike] | None = None,
        final: bool = False,
    ) -> Turn:
        """Run ``member`` on ``prompt`` and record the turn. A member failure is returned
        in ``turn.error`` (the formation decides); team limits and cancellation raise.

        ``final=True`` marks the run whose text is the team's answer: ``astream`` yields it.
        """
        limit = self.team.max_requests
        if limit is not None and self.requests >= limit:
            raise LimitExceededError(
                f"the team used its max_requests={limit} model requests before finishing; "
                f"raise the limit (AgentTeam.<formation>(..., max_requests=N)) or lower the "
                f"formation's rounds"
            )
        self.requests += 1  # reserved now, so concurrent asks see the budget shrink
        turn = Turn(agent=member.name, kind=kind, prompt=prompt, round=round)
        self.transcript.append(turn)
        member_bus = EventBus(parent=self.bus)

        def observe(event: Event) -> None:
            if event.type == "agent.start":
                turn.run_id = turn.run_id or event.run_id
            elif event.type == "provider.request":
                turn.requests += 1
            elif event.type == "provider.response":
                turn.usage += Usage(**event.data.get("usage", {}))

        for pattern in ("agent.start", "provider.request", "provider.response"):
            member_bus.subscribe(pattern, observe)
        member_scope = EventScope(
            member_bus, run_id=self.run_id, agent=member.name, parent=self.run_id
        )
        context = {**self.context, **(context or {})} or None
        started = perf_counter()
        try:
            async with self._slot():
                lend = self.team.provider
                lent = bound(_default_provider, lend) if lend else nullcontext()
                with lent, scope(member_scope):
                    async with aclosing(member.events(prompt, context, tools)) as events:
                        async for event in events:
                            if type(event) is TextDelta:
                                if final and self.tokens is not None:
                                    self.tokens.put_nowait(event.text)
                                    self.streamed = True
                            elif type(event) is RunFinished:
                                turn.content = event.content
        except asyncio.CancelledError as exc:
            turn.error = exc
            raise
        except Exception as exc:
            turn.error = exc
        finally:
            turn.duration_ms = (perf_counter() - started) * 1000
            self.requests += turn.requests - 1
        return turn

    async def ask_json(
        self,
        member: Agent,
        prompt: str,
        schema: type[M],
        *,
        kind: str,
        what: str,
        context: Mapping[str, Any] | None = None,
        round: int | None = None,
        check: Callable[[M], None] | None = None,
        retries: int = 1,
    ) -> tuple[M | None, Turn]:
        """Ask for a JSON reply and parse it into ``schema``; ``check`` may raise
        ``ValueError`` to reject it. A rejected reply is sent back with the problem, up to
        ``retries`` times, then ``StructuredOutputError``. A member failure returns
        ``(None, turn)`` with ``turn.error`` set.
        """
        attempt_prompt, attempt_context = prompt, dict(context or {})
        for _ in range(retries + 1):
            turn = await self.ask(
                member, attempt_prompt, kind=kind, context=attempt_context, round=round
            )
            if not turn.ok:
                return None, turn
            try:
                value = schema.model_validate(parse_json_object(turn.content))
                if check is not None:
                    check(value)
                return value, turn
            except ValueError as exc:  # pydantic's ValidationError is a ValueError too
                turn.rejected = describe_problem(exc)
            attempt_prompt = f"{prompt}\n\n{RETRY_NOTE.format(problem=turn.rejected)}"
            attempt_context = {**(context or {}), "your_previous_reply": turn.content}
        excerpt = turn.content if len(turn.content) <= 200 else turn.content[:200] + "..."
        raise StructuredOutputError(
            f"{member.name} did not reply with a valid {what} after {retries + 1} attempt(s): "
            f"{turn.rejected}. Its last reply: {excerpt!r}. A model that follows JSON "
            f"instructions more reliably (or a lower temperature) usually fixes this"
        )

    def require(self, turn: Turn, doing: str) -> Turn:
        """Raise ``TeamError`` carrying the member's error if ``turn`` failed."""
        if turn.error is not None:
            raise TeamError(
                f"{turn.agent} failed while {doing}: {turn.error}",
                errors={turn.agent: turn.error},
            )
        return turn

    def failures(self) -> dict[str, BaseException]:
        """Errors of failed member runs so far, by member (the latest per member)."""
        return {t.agent: t.error for t in self.transcript if t.error is not None}

    def _slot(self) -> Any:
        return self._slots if self._slots is not None else nullcontext()

    async def execute(self) -> TeamResult:
        """Run the formation from ``team.start`` to ``team.complete`` (or ``team.error``)."""
        team = self.team
        self._started = perf_counter()
        await self.emit(
            "team.start",
            {
                "formation": team.formation,
                "task": self.task,
                "members": [m.name for m in team.members],
            },
        )
        try:
            coordination = team._coordinate(self)
            if team.timeout is None:
                answer = await coordination
            else:
                try:
                    answer = await asyncio.wait_for(coordination, team.timeout)
                except asyncio.TimeoutError:
                    raise LimitExceededError(
                        f"the team run took longer than timeout={team.timeout} s and every "
                        f"member was stopped; raise the limit with timeout=... or simplify the task"
                    ) from None
        except asyncio.CancelledError:
            await self.emit("team.error", {"error": "cancelled", "error_type": "CancelledError"})
            raise
        except Exception as exc:
            if isinstance(exc, TeamError) and exc.result is None:
                exc.result = self._result("")
            await self.emit("team.error", {"error": str(exc), "error_type": type(exc).__name__})
            raise
        result = self.result = self._result(answer)
        await self.emit(
            "team.complete",
            {
                "result": answer,
                "usage": result.usage.model_dump(),
                "duration_ms": result.duration_ms,
            },
        )
        return result

    def _result(self, answer: str) -> TeamResult:
        by_agent = {m.name: Usage() for m in self.team.members}
        for turn in self.transcript:
            by_agent[turn.agent] = by_agent.get(turn.agent, Usage()) + turn.usage
        total = Usage()
        for usage in by_agent.values():
            total += usage
        return TeamResult(
            answer=answer,
            task=self.task,
            team=self.team.name,
            formation=self.team.formation,
            run_id=self.run_id,
            transcript=list(self.transcript),
            usage=total,
            usage_by_agent=by_agent,
            requests=sum(t.requests for t in self.transcript),
            duration_ms=(perf_counter() - self._started) * 1000,
            details=self.details,
            events=self.events,
        )


# -- the team --------------------------------------------------------------------------


class AgentTeam:
    """Several agents coordinating on one task. Build one with a formation:

    ``AgentTeam.hierarchical(lead, subagents)``, ``.flat(agents, shared_memory=True)``,
    ``.pipeline(agents)``, ``.consensus(agents, min_agreement=2)``,
    ``.debate(agents, rounds=3)``. Members are ``Agent`` objects or role strings.

    Options every formation takes:

    - ``provider`` / ``model`` / ``api_key`` / ``base_url`` / ``provider_options`` (a dict,
      e.g. ``{"temperature": 0.2}``): the model for members built without an explicit
      provider (``Agent(role=...)`` and role strings). A ``Provider`` instance is shared
      by those members; a name builds one provider they share.
    - ``max_requests``: model requests for the whole run (checked before each member run).
    - ``timeout``: seconds for the whole run; every member is stopped when it passes.
    - ``max_concurrency``: member runs at the same time (default: unlimited).
    - ``name``, ``bus``: the team's name in events, and its ``EventBus``.
    """

    formation: ClassVar[str] = "team"

    def __init__(
        self,
        members: Sequence[MemberLike],
        *,
        name: str | None = None,
        provider: str | Provider | None = None,
        model: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
        max_requests: int | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.members: list[Agent] = []
        for member in members:
            self._adopt(member, "member")
        for value, label in ((max_requests, "max_requests"), (max_concurrency, "max_concurrency")):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"{label}={value!r} is invalid: use a positive integer or None"
                )
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigurationError(
                f"timeout={timeout!r} is invalid: use a positive number of seconds"
            )
        self.name = name or self.formation
        options = {**(provider_options or {})}
        options.update({k: v for k, v in (("api_key", api_key), ("base_url", base_url)) if v})
        self.provider = _team_provider(provider, model, options)
        self.max_requests = max_requests
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        #: Every run's events pass through here on their way to the default bus.
        self.bus = bus or EventBus(parent=EventBus.default())
        #: The result of the latest successful run.
        self.last_result: TeamResult | None = None

    def _adopt(self, member: MemberLike, what: str) -> Agent:
        """Make ``member`` an Agent on this team; names must be unique within a team."""
        agent = as_agent(member, what)
        for existing in self.members:
            if existing is agent:
                return agent
            if existing.name.lower() == agent.name.lower():
                raise ConfigurationError(
                    f"two team members are named {agent.name!r}; events, usage and plans tell "
                    f"members apart by name, so give each a distinct name=... (or role)"
                )
        self.members.append(agent)
        return agent

    # -- formations ------------------------------------------------------------------

    @classmethod
    def hierarchical(
        cls, lead: MemberLike, subagents: Sequence[MemberLike], **options: Any
    ) -> HierarchicalTeam:
        """The lead plans (subtasks assigned to members), members execute (independent
        subtasks at once), the lead reviews and writes the answer."""
        from .hierarchical import HierarchicalTeam

        return HierarchicalTeam(lead, subagents, **options)

    @classmethod
    def flat(
        cls, agents: Sequence[MemberLike], shared_memory: bool = True, **options: Any
    ) -> FlatTeam:
        """Peers take turns on the task until one declares completion or rounds run out."""
        from .flat import FlatTeam

        return FlatTeam(agents, shared_memory=shared_memory, **options)

    @classmethod
    def pipeline(cls, agents: Sequence[MemberLike], **options: Any) -> PipelineTeam:
        """Each stage gets the task and the previous stage's output; ``check=`` gates stages."""
        from .pipeline import PipelineTeam

        return PipelineTeam(agents, **options)

    @classmethod
    def consensus(
        cls, agents: Sequence[MemberLike], min_agreement: int = 2, **options: Any
    ) -> ConsensusTeam:
        """Independent answers, then votes; ``min_agreement`` votes win, else revise."""
        from .consensus import ConsensusTeam

        return ConsensusTeam(agents, min_agreement=min_agreement, **options)

    @classmethod
    def debate(cls, agents: Sequence[MemberLike], rounds: int = 3, **options: Any) -> DebateTeam:
        """Agents argue in rounds seeing each other's positions; a judge gives the verdict."""
        from .debate import DebateTeam

        return DebateTeam(agents, rounds=rounds, **options)

    # -- running ---------------------------------------------------------------------

    async def run(
        self, task: str, context: Mapping[str, Any] | None = None, *, display: bool = False
    ) -> TeamResult:
        """Do ``task`` as a team and return the ``TeamResult`` (prints as the answer).

        ``display=True`` shows a live ``TeamTimeline`` while the team works (in a notebook;
        elsewhere its text summary is printed at the end).
        """
        run = self._new_run(task, context)
        timeline = None
        if display:
            from ..notebook.timeline import TeamTimeline

            timeline = TeamTimeline(run.bus)
            timeline.show()
        try:
            result = await run.execute()
        finally:
            if timeline is not None:
                timeline.close()
        self.last_result = result
        return result

    def run_sync(
        self, task: str, context: Mapping[str, Any] | None = None, *, display: bool = False
    ) -> TeamResult:
        """``run`` from sync code (a script, a notebook cell, a thread, inside a running
        event loop), on victor's private loop thread as ``Agent.run_sync`` does."""
        from ..notebook.runner import run_sync

        return run_sync(self.run(task, context, display=display))

    async def astream(
        self, task: str, context: Mapping[str, Any] | None = None
    ) -> AsyncIterator[str]:
        """Do ``task`` and yield the final answer's text as it is generated.

        Formations whose answer comes from one member run (hierarchical synthesis, debate
        verdict, the last pipeline stage without ``check``) stream it token by token; the
        others yield the answer in one piece when it is decided. ``team.last_result``
        holds the ``TeamResult`` afterwards; ``team.events(task)`` yields typed events.
        """
        run = self._new_run(task, context)
        run.tokens = asyncio.Queue()
        async with aclosing(_follow(run, run.tokens)) as items:
            async for text in items:
                yield text
        assert run.result is not None
        self.last_result = run.result
        if not run.streamed and run.result.answer:
            yield run.result.answer

    async def events(
        self, task: str, context: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        """Do ``task`` and yield every event of the run as it happens: ``team.*`` and each
        member's ``agent.*`` (tokens included), ``provider.*`` and ``tool.*``. The last is
        ``team.complete``; ``team.last_result`` holds the ``TeamResult`` afterwards."""
        run = self._new_run(task, context)
        queue: asyncio.Queue[Event] = asyncio.Queue()
        run.bus.subscribe("*", queue.put_nowait)
        async with aclosing(_follow(run, queue)) as items:
            async for event in items:
                yield event
        self.last_result = run.result

    async def cleanup(self) -> None:
        """Release the connections of every member's provider and the team's."""
        closers = [m.cleanup() for m in self.members]
        if self.provider is not None:
            closers.append(self.provider.close())
        await asyncio.gather(*closers)

    async def __aenter__(self) -> AgentTeam:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cleanup()

    def member(self, name: str) -> Agent:
        """The member called ``name`` (its name or role, any case)."""
        found = find_member(self.members, name)
        if found is None:
            raise ConfigurationError(
                f"no member named {name!r} in team {self.name!r}; members: "
                f"{', '.join(m.name for m in self.members)}"
            )
        return found

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, members={[m.name for m in self.members]})"
        )

    # -- for formations --------------------------------------------------------------

    async def _coordinate(self, run: TeamRun) -> str:
        """Coordinate the members on ``run.task`` and return the final answer."""
        raise NotImplementedError

    def _new_run(self, task: str, context: Mapping[str, Any] | None) -> TeamRun:
        if not isinstance(task, str) or not task.strip():
            raise ConfigurationError(f"task={task!r} is empty: give the team something to do")
        if context is not None and not isinstance(context, Mapping):
            raise ConfigurationError(
                f"context must be a dict of name -> value, got {type(context).__name__}"
            )
        return TeamRun(self, task, context)


# -- helpers ---------------------------------------------------------------------------


def as_agent(member: MemberLike, what: str) -> Agent:
    """An ``Agent`` for a member: agents as they are, role strings as ``Agent(role=...)``."""
    if isinstance(member, Agent):
        return member
    if isinstance(member, str) and member.strip():
        return Agent(role=member.strip())
    raise ConfigurationError(
        f"{what}={member!r} is not a team member: pass an Agent or a role string such as 'reviewer'"
    )


def find_member(members: Iterable[Agent], name: str) -> Agent | None:
    """The member whose name or role is ``name`` (case and surrounding space ignored)."""
    wanted = " ".join(str(name).split()).lower()
    for member in members:
        if member.name.lower() == wanted or (member.role or "").lower() == wanted:
            return member
    return None


def check_count(agents: Sequence[Any], minimum: int, formation: str) -> None:
    if len(agents) < minimum:
        raise ConfigurationError(
            f"a {formation} team needs at least {minimum} agent(s), got {len(agents)}"
        )


def check_positive(value: Any, label: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{label}={value!r} is invalid: use an integer >= {minimum}")
    return value


def fill(template: str, **values: Any) -> str:
    """Fill ``{name}`` placeholders in a prompt; other braces (JSON examples) stay as written."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
        template,
    )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model reply: bare, in a ```json fence, or inside prose."""
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("the reply contains no JSON object")


def describe_problem(exc: ValueError) -> str:
    """A short description of why a structured reply was rejected, for the model to fix."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"]) or "the object"
            parts.append(f"{where}: {error['msg']}")
        return "; ".join(parts)
    return str(exc)


async def gather_all(aws: Iterable[Awaitable[Any]]) -> list[Any]:
    """Await all at once; if one raises or the caller is cancelled, cancel the rest."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _follow(run: TeamRun, queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """Execute ``run`` in the background, yielding what arrives on ``queue`` until it ends.
    Closing the iterator early cancels the run (and so every member)."""
    done = object()
    job = asyncio.ensure_future(run.execute())
    job.add_done_callback(lambda _: queue.put_nowait(done))
    try:
        while (item := await queue.get()) is not done:
            yield item
        job.result()  # re-raise the run's error
    finally:
        if not job.done():
            job.cancel()
            with suppress(asyncio.CancelledError):
                await job


def _team_provider(
    provider: str | Provider | None, model: str | None, options: dict[str, Any]
) -> Provider | None:
    """The provider for members made without one, or None to leave them on their own."""
    if isinstance(provider, Provider):
        if model is not None or options:
            raise ConfigurationError(
                "model and provider options go to the Provider instance itself when you pass "
                "one; drop them from the team"
            )
        return provider
    if provider is None and model is None and not options:
        return None
    if provider is None:
        from ..config import settings

        provider = settings().provider
    return get_provider_class(provider)(model, **options)
