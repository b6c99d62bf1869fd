"""One execution of a team: its bus and scope, member runs (``ask``, and ``ask_json`` for
structured replies), the transcript, usage, the request budget, and the ``TeamResult``.

Formations drive a ``TeamRun`` from ``AgentTeam._coordinate``; each member run is a normal
``agent.events`` run whose events go to the run's bus, tagged with the member and the team.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from contextlib import aclosing, nullcontext
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from .._util import bound, new_id
from ..core import seams
from ..core.agent import Agent
from ..core.events import Event, EventBus, EventScope, current_scope, scope
from ..core.loop import CUT_OFF
from ..core.messages import RunFinished, TextDelta, Usage
from ..core.output import json_object_in, output_type_for
from ..core.run import lent_provider
from ..errors import LimitExceededError, OutputValidationError
from ..providers.base import max_tokens_cap
from ..tools.registry import ToolLike
from .result import StructuredOutputError, TeamError, TeamResult, Turn

if TYPE_CHECKING:
    from .base import AgentTeam

__all__ = ["TeamRun", "parse_json_object"]

M = TypeVar("M", bound=BaseModel)

#: Events a team run records for its result and timeline (``agent.token`` is left out:
#: one event per token would cost more than it tells).
RECORDED_EVENTS = ("team.*", "agent.start", "agent.complete", "agent.error", "provider.*", "tool.*")

#: Appended to a prompt when a member's structured reply could not be used.
RETRY_NOTE = (
    "Your previous reply (in the context block) could not be used: {problem}\n"
    "Reply again with only the JSON object, nothing else."
)


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
        output_type: Any = None,
        output_retries: int | None = None,
        max_tokens: int | None = None,
    ) -> Turn:
        """Run ``member`` on ``prompt`` and record the turn. A member failure is returned
        in ``turn.error`` (the formation decides); team limits and cancellation raise.

        ``final=True`` marks the run whose text is the team's answer: ``astream`` yields it.
        With ``output_type`` the run is typed and ``turn.output`` is the validated answer.
        ``max_tokens`` caps each response of this run below the member's own limit.
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
                turn.stop_reason = event.data.get("stop_reason")

        for pattern in ("agent.start", "provider.request", "provider.response"):
            member_bus.subscribe(pattern, observe)
        member_scope = EventScope(
            member_bus, run_id=self.run_id, agent=member.name, parent=self.run_id
        )
        context = {**self.context, **(context or {})} or None
        started = perf_counter()
        try:
            async with self._slot():
                with self._lent(), scope(member_scope), _capped(max_tokens):
                    run = member.events(
                        prompt,
                        context,
                        tools,
                        output_type=output_type,
                        output_retries=output_retries,
                    )
                    async with aclosing(run) as events:
                        async for event in events:
                            if type(event) is TextDelta:
                                if final and self.tokens is not None:
                                    self.tokens.put_nowait(event.text)
                                    self.streamed = True
                            elif type(event) is RunFinished:
                                turn.content, turn.output = event.content, event.output
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
        max_tokens: int | None = None,
        limit_setting: str = "max_tokens",
    ) -> tuple[M | None, Turn]:
        """Ask for a JSON reply and parse it into ``schema``; ``check`` may raise
        ``ValueError`` to reject it. A rejected reply is sent back with the problem, up to
        ``retries`` times, then ``StructuredOutputError``. A member failure returns
        ``(None, turn)`` with ``turn.error`` set.

        ``max_tokens`` caps the reply (``limit_setting`` names the setting that gave it);
        a reply the limit cut off is a ``StructuredOutputError`` saying so at once, since
        asking again would end the same way.

        A member whose provider constrains answers to a schema (the APIs' structured
        outputs, the local model's grammar) is asked a typed run: its reply is valid JSON
        of ``schema`` by construction, or sent back by the run itself. Others (test
        providers, your own) are asked in words, and their reply is read by the same
        output type (``victor.core.output``), its JSON found in the prose.
        """
        typed = self._native_output(member)
        output = None if typed else output_type_for(schema)
        attempt_prompt, attempt_context = prompt, dict(context or {})
        for _ in range(retries + 1):
            turn = await self.ask(
                member,
                attempt_prompt,
                kind=kind,
                context=attempt_context,
                round=round,
                output_type=schema if typed else None,
                output_retries=retries if typed else None,
                max_tokens=max_tokens,
            )
            cut_off = turn.stop_reason in CUT_OFF
            if isinstance(turn.error, OutputValidationError):  # sent back ``retries`` times
                turn.rejected = str(turn.error)
                if cut_off:
                    error = self._cut_off(member, what, turn, max_tokens, limit_setting)
                    raise error from turn.error
                raise StructuredOutputError(
                    f"{member.name} did not reply with a valid {what}: {turn.error}"
                ) from turn.error
            if not turn.ok:
                return None, turn
            try:
                if output is not None:  # asked in words: read as a typed run reads its answer
                    turn.output = output.validate(turn.content, in_prose=True)
                if check is not None:
                    check(turn.output)
                return turn.output, turn
            except ValidationError as exc:
                turn.rejected = f"it {output.problem(exc)}" if output is not None else str(exc)
                if cut_off:
                    raise self._cut_off(member, what, turn, max_tokens, limit_setting) from exc
            except ValueError as exc:  # the formation's check refused it
                turn.rejected = str(exc)
            attempt_prompt = f"{prompt}\n\n{RETRY_NOTE.format(problem=turn.rejected)}"
            attempt_context = {**(context or {}), "your_previous_reply": turn.content}
        excerpt = turn.content if len(turn.content) <= 200 else turn.content[:200] + "..."
        raise StructuredOutputError(
            f"{member.name} did not reply with a valid {what} after {retries + 1} attempt(s): "
            f"{turn.rejected}\nIts last reply: {excerpt!r}. A model that follows JSON "
            f"instructions more reliably (or a lower temperature) usually fixes this"
        )

    def _cut_off(
        self, member: Agent, what: str, turn: Turn, cap: int | None, setting: str
    ) -> StructuredOutputError:
        """The error for a structured reply the token limit stopped before it was complete."""
        with self._lent():
            own = member._run_provider().max_tokens
        if cap is not None and cap < own:
            limit, fix = cap, f"raise {setting}= (now {cap}) or give the team a smaller task"
        else:
            limit, fix = own, f"raise {member.name}'s max_tokens= (now {own})"
        error = turn.error
        text = error.raw if isinstance(error, OutputValidationError) else turn.content
        tail = text if len(text) <= 160 else "..." + text[-160:]
        return StructuredOutputError(
            f"{member.name}'s {what} was cut off by max_tokens={limit} before it was complete "
            f"(it ends: {tail!r}); {fix}"
        )

    def _native_output(self, member: Agent) -> bool:
        """Whether ``member``'s provider in this team (its own, or the one the team lends)
        constrains answers to a schema itself."""
        with self._lent():
            return member._run_provider().native_output

    def _lent(self) -> Any:
        """The team's provider lent to members given none, while the block runs."""
        lend = self.team.provider
        return bound(lent_provider, lend) if lend else nullcontext()

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
            with seams.traced("run", self.scope):  # the team's span over its members' runs
                if team.timeout is None:
                    answer = await coordination
                else:
                    try:
                        answer = await asyncio.wait_for(coordination, team.timeout)
                    except asyncio.TimeoutError:
                        raise LimitExceededError(
                            f"the team run took longer than timeout={team.timeout} s and "
                            f"every member was stopped; raise the limit with timeout=... or "
                            f"simplify the task"
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


def _capped(max_tokens: int | None) -> Any:
    """``max_tokens_cap`` lowered to ``max_tokens`` for the block (if given)."""
    if max_tokens is None:
        return nullcontext()
    outer = max_tokens_cap.get()
    return bound(max_tokens_cap, max_tokens if outer is None else min(outer, max_tokens))


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model reply: bare, in a ```json fence, or inside prose."""
    found = json_object_in(text)
    if found is None:
        raise ValueError("the reply contains no JSON object")
    return json.loads(found)
