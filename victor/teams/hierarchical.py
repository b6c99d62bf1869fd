"""Hierarchical formation: a lead plans, members execute, the lead reviews and answers.

1. The lead writes a plan: at most ``max_subtasks`` JSON subtasks, each assigned to one
   member by role (never to itself or to anyone outside the team), with ``depends_on``
   naming earlier subtasks. A malformed or invalid plan is sent back with the problem
   (``plan_retries`` times). The plan's schema says all this (the members' roles, the
   most subtasks, the ids), so a model held to it (structured outputs, the local model's
   grammar) cannot write anything else; the plan and the review are capped at
   ``plan_max_tokens`` tokens, and one the limit cut off is an error that says so.
2. Subtasks run as soon as their dependencies are done, so independent ones run at the
   same time; each gets the results of its dependencies. A ``team.delegate`` event marks
   each hand-off, a ``team.round`` event each execution round.
3. With ``review=True`` the lead reviews the results (including member failures) and
   decides: accept, redo some subtasks (optionally with another member: retry or
   reassign), or fail. Redo rounds are bounded by ``max_replans``.
4. The lead writes the final answer from the results (streamed by ``team.astream``).

``result.details``: ``plan`` (the subtasks), ``reviews`` (each decision), ``replans``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema, create_model

from ..core.agent import Agent
from .base import (
    AgentTeam,
    MemberLike,
    TeamError,
    TeamRun,
    Turn,
    check_count,
    check_positive,
    fill,
    find_member,
    gather_all,
)

__all__ = ["HierarchicalTeam", "PLAN_PROMPT", "SUBTASK_PROMPT", "REVIEW_PROMPT", "SYNTHESIS_PROMPT"]

#: The lead's planning prompt. ``{members}`` lists the members' roles.
PLAN_PROMPT = """You lead a team. Plan how your team members will do the task below.
Your members (assign work only to them, by role): {members}.

Break the task into at most {max_subtasks} subtasks (a simple task needs one), numbered
1, 2, 3 ..., and assign each to exactly one member. Subtasks that do not depend on each
other run at the same time; list in depends_on the ids of earlier subtasks it needs.
Reply with only a JSON object, no other text:
{"subtasks": [{"id": 1, "assignee": "<member role>", "task": "<what to do>", "depends_on": []}]}

Task: {task}"""

#: What a member is asked to do for one subtask.
SUBTASK_PROMPT = """You are part of a team working on: {task}

Your lead assigned you this subtask: {subtask}
Do it and reply with your result. Results of earlier subtasks, if any, are in the context."""

#: The lead's review of the members' results.
REVIEW_PROMPT = """You lead a team working on: {task}
Your members' results for your plan are in the context (FAILED marks a member's error).
Decide, replying with only a JSON object:
- {"decision": "accept"} if the results are enough to write the final answer;
- {"decision": "redo", "subtasks": [{"id": 2, "assignee": "<role>", "feedback": "<what to fix>"}]}
  to redo some subtasks (give another member's role to reassign one);
- {"decision": "fail", "reason": "<why>"} if the task cannot be done.
Members: {members}."""

#: The lead's final answer.
SYNTHESIS_PROMPT = """You lead a team working on: {task}
Your members' results are in the context. Write the final answer to the task for the user,
combining the results. Do not mention the team or the plan."""


class Subtask(BaseModel):
    id: int | str
    assignee: str
    task: str
    depends_on: list[int | str] = Field(default_factory=list)


class Plan(BaseModel):
    subtasks: list[Subtask] = Field(min_length=1)


class Redo(BaseModel):
    id: int | str
    assignee: str | None = None
    feedback: str = ""


class Review(BaseModel):
    decision: Literal["accept", "redo", "fail"]
    subtasks: list[Redo] = Field(default_factory=list)
    reason: str = ""


@lru_cache(maxsize=64)
def plan_type(assignees: tuple[str, ...], max_subtasks: int) -> type[Plan]:
    """``Plan`` whose schema bounds what a plan can be: 1 to ``max_subtasks`` subtasks with
    ids 1, 2, 3 ..., each assigned to one of ``assignees``, depending on other ids (the
    schema cannot say "earlier": ``HierarchicalTeam._check_plan`` does). Validation stays
    lenient (ids as strings, a role in another case) for replies parsed from words; the
    check says what is wrong with those."""
    ids = list(range(1, max_subtasks + 1))
    earlier: dict[str, Any] = {"type": "array", "maxItems": max_subtasks - 1}
    if max_subtasks > 1:
        earlier["items"] = _enum(ids[:-1])
    subtask = create_model(
        "Subtask",
        __base__=Subtask,
        id=(Annotated[int | str, WithJsonSchema(_enum(ids))], ...),
        assignee=(Annotated[str, WithJsonSchema(_enum(assignees))], ...),
        depends_on=(
            Annotated[list[int | str], WithJsonSchema(earlier)],
            Field(default_factory=list),
        ),
    )
    bounded = Field(min_length=1, json_schema_extra={"maxItems": max_subtasks})
    return create_model("Plan", __base__=Plan, subtasks=(list[subtask], bounded))


@lru_cache(maxsize=64)
def review_type(ids: tuple[int | str, ...], assignees: tuple[str, ...]) -> type[Review]:
    """``Review`` whose schema names only the plan's subtasks and the members' roles."""
    someone = {"anyOf": [_enum(assignees), {"type": "null"}]}
    redo = create_model(
        "Redo",
        __base__=Redo,
        id=(Annotated[int | str, WithJsonSchema(_enum(ids))], ...),
        assignee=(Annotated[str | None, WithJsonSchema(someone)], None),
    )
    bounded = Field(default_factory=list, json_schema_extra={"maxItems": len(ids)})
    return create_model("Review", __base__=Review, subtasks=(list[redo], bounded))


def _enum(values: Sequence[Any]) -> dict[str, Any]:
    """A JSON schema allowing only ``values`` (typed, for grammars that need a type)."""
    kind = "integer" if all(isinstance(v, int) for v in values) else "string"
    allowed = [v if kind == "integer" else str(v) for v in values]
    return {"type": kind, "enum": list(dict.fromkeys(allowed))}


class HierarchicalTeam(AgentTeam):
    """A lead that plans, delegates to its members, reviews and writes the answer.

    ``max_subtasks``: the most subtasks a plan may have. ``plan_max_tokens``: the most
    tokens the plan and each review may take (below the lead's own ``max_tokens``).
    """

    formation = "hierarchical"
    plan_prompt = PLAN_PROMPT
    subtask_prompt = SUBTASK_PROMPT
    review_prompt = REVIEW_PROMPT
    synthesis_prompt = SYNTHESIS_PROMPT

    def __init__(
        self,
        lead: MemberLike,
        subagents: Sequence[MemberLike],
        *,
        review: bool = True,
        max_replans: int = 1,
        plan_retries: int = 1,
        max_subtasks: int = 8,
        plan_max_tokens: int = 1024,
        **options: Any,
    ) -> None:
        check_count(list(subagents), 1, "hierarchical")
        super().__init__([lead, *subagents], **options)
        self.lead = self.members[0]
        self.subagents = self.members[1:]
        self.review = review
        self.max_replans = check_positive(max_replans, "max_replans", 0)
        self.plan_retries = check_positive(plan_retries, "plan_retries", 0)
        self.max_subtasks = check_positive(max_subtasks, "max_subtasks")
        self.plan_max_tokens = check_positive(plan_max_tokens, "plan_max_tokens")

    async def _coordinate(self, run: TeamRun) -> str:
        labels = tuple(_role(m) for m in self.subagents)
        roles = ", ".join(labels)
        plan, turn = await run.ask_json(
            self.lead,
            fill(self.plan_prompt, task=run.task, members=roles, max_subtasks=self.max_subtasks),
            plan_type(labels, self.max_subtasks),
            kind="plan",
            what="plan",
            check=self._check_plan,
            retries=self.plan_retries,
            max_tokens=self.plan_max_tokens,
            limit_setting="plan_max_tokens",
        )
        run.require(turn, "planning")
        assert plan is not None
        subtasks = {str(s.id): s for s in plan.subtasks}
        assignees = {key: self._assignee(s.assignee) for key, s in subtasks.items()}
        run.details.update(
            plan=[
                {
                    "id": key,
                    "assignee": assignees[key].name,
                    "task": s.task,
                    "depends_on": list(dict.fromkeys(str(d) for d in s.depends_on)),
                }
                for key, s in subtasks.items()
            ],
            reviews=[],
            replans=0,
        )
        results = await self._execute(run, subtasks, assignees, list(subtasks), {}, round=1)
        reviewed = review_type(tuple(s.id for s in plan.subtasks), labels)
        for replan in range(1, self.max_replans + 2):
            if not self.review:
                break
            review, turn = await run.ask_json(
                self.lead,
                fill(self.review_prompt, task=run.task, members=roles),
                reviewed,
                kind="review",
                what="review decision",
                context={"results": _report(subtasks, assignees, results)},
                round=replan,
                check=lambda r: self._check_review(r, subtasks),
                max_tokens=self.plan_max_tokens,
                limit_setting="plan_max_tokens",
            )
            run.require(turn, "reviewing")
            assert review is not None
            run.details["reviews"].append(review.model_dump())
            if review.decision == "accept":
                break
            if review.decision == "fail":
                raise TeamError(
                    f"the lead ({self.lead.name}) gave up: {review.reason or 'no reason given'}",
                    errors=_errors(results),
                )
            if replan > self.max_replans:
                break  # the re-plan limit: go on with what there is
            run.details["replans"] = replan
            feedback = {}
            for redo in review.subtasks:
                key = str(redo.id)
                if redo.assignee:
                    assignees[key] = self._assignee(redo.assignee)
                feedback[key] = redo.feedback
            # Subtasks that could not run for want of a redone one get their turn now.
            failed = {k for k, turn in results.items() if not turn.ok}
            keys = _with_dependents(subtasks, list(feedback), failed.__contains__)
            results = await self._execute(
                run,
                subtasks,
                assignees,
                keys,
                feedback,
                round=replan + 1,
                previous=results,
            )
        failed = _errors(results)
        if failed:
            names = ", ".join(
                f"subtask {k} ({results[k].agent}: {results[k].error})"
                for k in results
                if not results[k].ok
            )
            raise TeamError(f"the team could not finish; failed: {names}", errors=failed)
        answer = await run.ask(
            self.lead,
            fill(self.synthesis_prompt, task=run.task),
            kind="answer",
            context={"results": _report(subtasks, assignees, results)},
            final=True,
        )
        return run.require(answer, "writing the final answer").content

    async def _execute(
        self,
        run: TeamRun,
        subtasks: dict[str, Subtask],
        assignees: dict[str, Agent],
        keys: list[str],
        feedback: dict[str, str],
        *,
        round: int,
        previous: dict[str, Turn] | None = None,
    ) -> dict[str, Turn]:
        """Run the subtasks in ``keys``, each once its dependencies are done."""
        await run.emit("team.round", {"round": round, "phase": "execute", "subtasks": keys})
        results = dict(previous or {})
        jobs: dict[str, asyncio.Future[Turn]] = {}

        async def do(key: str) -> Turn:
            sub = subtasks[key]
            deps = [str(d) for d in sub.depends_on]
            for dep in deps:
                if dep in jobs:
                    await asyncio.shield(jobs[dep])  # shielded: one waiter must not cancel it
            broken = [dep for dep in deps if not results[dep].ok]
            if broken:  # no point running on missing input; the review sees why
                failed = Turn(
                    agent=assignees[key].name, kind="subtask", prompt=sub.task, round=round
                )
                failed.error = TeamError(f"not run: subtask {broken[0]} it depends on failed")
                results[key] = failed
                return failed
            context: dict[str, Any] = {
                f"subtask {dep} result": results[dep].content for dep in deps if results[dep].ok
            }
            if key in feedback:
                context["your previous result"] = results[key].content if key in results else ""
                context["lead's feedback"] = feedback[key]
            agent = assignees[key]
            await run.emit(
                "team.delegate",
                {
                    "from": self.lead.name,
                    "to": agent.name,
                    "task": sub.task,
                    "subtask": key,
                    "round": round,
                },
            )
            turn = await run.ask(
                agent,
                fill(self.subtask_prompt, task=run.task, subtask=sub.task),
                kind="subtask",
                context=context,
                round=round,
            )
            results[key] = turn
            return turn

        # Plan order: a subtask depends only on earlier ones (see _check_plan).
        for key in [k for k in subtasks if k in keys]:
            jobs[key] = asyncio.ensure_future(do(key))
        await gather_all(jobs.values())
        return results

    def _assignee(self, name: str) -> Agent:
        member = find_member(self.subagents, name)
        if member is None:
            raise ValueError(
                f"{name!r} is not one of your members; assign work only to: "
                f"{', '.join(_role(m) for m in self.subagents)}"
            )
        return member

    def _check_plan(self, plan: Plan) -> None:
        if len(plan.subtasks) > self.max_subtasks:
            raise ValueError(
                f"the plan has {len(plan.subtasks)} subtasks; plan at most {self.max_subtasks}"
            )
        keys = [str(s.id) for s in plan.subtasks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"subtask ids must be unique, got {keys}")
        for index, sub in enumerate(plan.subtasks):
            self._assignee(sub.assignee)
            earlier = keys[:index]
            for dep in sub.depends_on:
                if str(dep) not in earlier:
                    raise ValueError(
                        f"subtask {sub.id} depends on {dep!r}, which is not an earlier subtask; "
                        f"depends_on lists only ids of subtasks before it "
                        f"({', '.join(earlier) or 'none here'})"
                    )

    def _check_review(self, review: Review, subtasks: dict[str, Subtask]) -> None:
        if review.decision != "redo":
            return
        if not review.subtasks:
            raise ValueError("a redo decision must list the subtasks to redo")
        for redo in review.subtasks:
            if str(redo.id) not in subtasks:
                raise ValueError(f"there is no subtask {redo.id!r}; ids: {', '.join(subtasks)}")
            if redo.assignee:
                self._assignee(redo.assignee)


def _role(member: Agent) -> str:
    return member.role or member.name


def _with_dependents(
    subtasks: dict[str, Subtask], keys: list[str], include: Callable[[str], bool]
) -> list[str]:
    """``keys`` plus the subtasks depending on them (transitively) that ``include`` accepts."""
    chosen = list(keys)
    changed = True
    while changed:
        changed = False
        for key, sub in subtasks.items():
            if key not in chosen and include(key) and any(str(d) in chosen for d in sub.depends_on):
                chosen.append(key)
                changed = True
    return chosen


def _report(
    subtasks: dict[str, Subtask], assignees: dict[str, Agent], results: dict[str, Turn]
) -> str:
    lines = []
    for key, sub in subtasks.items():
        turn = results.get(key)
        if turn is None:
            outcome = "NOT RUN"
        elif turn.ok:
            outcome = turn.content
        else:
            outcome = f"FAILED: {turn.error}"
        lines.append(f"Subtask {key} ({assignees[key].name}): {sub.task}\n{outcome}")
    return "\n\n".join(lines)


def _errors(results: dict[str, Turn]) -> dict[str, BaseException]:
    return {t.agent: t.error for t in results.values() if t.error is not None}
