"""``AgentTeam``, the base of every formation, and the helpers formations share.

A formation subclasses ``AgentTeam`` and implements ``_coordinate(run)``: it asks members
through ``run.ask`` / ``run.ask_json`` (``TeamRun``, in run.py: each a normal
``agent.events`` run, so every member's ``agent.*``/``provider.*``/``tool.*`` events are
emitted as usual) and returns the final answer. Member events go to the run's own bus (a
child of ``team.bus``, which forwards to the default bus), with ``agent`` = the member and
``parent`` = the team run. What a run leaves (``TeamResult``, ``Turn``) and the team
errors are in result.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from contextlib import aclosing, suppress
from typing import TYPE_CHECKING, Any, ClassVar

from .._util import did_you_mean
from ..core.agent import Agent
from ..core.events import Event, EventBus
from ..errors import ConfigurationError
from ..providers.base import Provider, get_provider_class
from .result import StructuredOutputError, TeamError, TeamResult, Turn
from .run import TeamRun, parse_json_object

if TYPE_CHECKING:
    from .consensus import ConsensusTeam
    from .debate import DebateTeam
    from .flat import FlatTeam
    from .hierarchical import HierarchicalTeam
    from .pipeline import PipelineTeam

# The run and its result (run.py, result.py) are importable from here, as they always were.
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
        **unknown: Any,
    ) -> None:
        if unknown:
            raise _unknown_setting(type(self), next(iter(unknown)))
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
            from ..core import seams

            timeline = seams.front_end("team_view")(run.bus)
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
        from .._sync import run_sync

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


def _unknown_setting(team: type[AgentTeam], name: str) -> ConfigurationError:
    """The error for a keyword no team formation takes: the closest that it does, or where
    a provider's setting goes."""
    import inspect  # only an error message needs it

    from ..providers.base import PROVIDER_SETTINGS

    taken = [
        p
        for cls in (team, AgentTeam)
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", "unknown")
    ]
    if name in PROVIDER_SETTINGS:
        fix = f" A provider setting goes in provider_options={{{name!r}: ...}}."
    else:
        fix = did_you_mean(name, taken) or f" It takes: {', '.join(sorted(set(taken)))}."
    return ConfigurationError(f"{team.__name__} takes no setting {name!r}.{fix}")


def fill(template: str, **values: Any) -> str:
    """Fill ``{name}`` placeholders in a prompt; other braces (JSON examples) stay as written."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
        template,
    )


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
