"""Consensus formation: independent answers, a vote, and revision until enough agree.

1. Every agent answers on its own, at the same time (``team.round`` phase ``answer``).
   Identical answers (ignoring case and spacing) become one candidate.
2. Every agent votes for one candidate, labelled A, B, C ... (its own is allowed; the
   authors are not shown): JSON ``{"vote": "B", "reason": "..."}``. Each vote is a
   ``team.vote`` event. A malformed vote is asked again once, then counts as an abstention.
3. A candidate with at least ``min_agreement`` votes and more than any other wins. If none
   does (too few votes, or a tie), every agent sees the candidates and the votes and
   revises its answer, then all vote again: at most ``max_revisions`` times. After that
   the team raises ``NoConsensusError`` (catchable, with the votes attached).

``result.details``: ``winner`` (label), ``winning_authors``, ``votes`` (the deciding
round's votes), ``breakdown`` (label -> votes), ``dissent`` (who voted otherwise, and
why), ``rounds`` (every round's candidates, votes and breakdown).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, create_model

from ..core.agent import Agent
from ..errors import ConfigurationError
from .base import (
    AgentTeam,
    MemberLike,
    StructuredOutputError,
    TeamError,
    TeamRun,
    check_count,
    check_positive,
    fill,
    gather_all,
)

__all__ = ["ConsensusTeam", "NoConsensusError", "ANSWER_PROMPT", "VOTE_PROMPT", "REVISE_PROMPT"]

#: The first, independent answer.
ANSWER_PROMPT = """Answer the task below on your own. Other agents answer it too and then
everyone votes for the best answer, so be correct, complete and concise.

Task: {task}"""

#: The vote. The candidates are in the context, labelled.
VOTE_PROMPT = """Several agents answered the task below; their answers are in the context,
labelled {labels}. Vote for the best answer (it may be your own).
Reply with only a JSON object: {"vote": "<label>", "reason": "<one sentence>"}

Task: {task}"""

#: Revision after a vote without agreement.
REVISE_PROMPT = """No answer to the task below got {min_agreement} votes. The candidate answers
and the votes are in the context, with your previous answer. Write your revised answer:
keep yours if you still think it best, or adopt or merge others if they convinced you.

Task: {task}"""


class NoConsensusError(TeamError):
    """The agents did not agree on an answer within the allowed revisions.

    ``breakdown`` maps candidate labels to votes in the last round, ``candidates`` maps
    labels to answers, ``rounds`` has every round's details.
    """

    def __init__(self, message: str, *, rounds: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.rounds = rounds
        last = rounds[-1] if rounds else {}
        self.breakdown: dict[str, int] = last.get("breakdown", {})
        self.candidates: dict[str, str] = {
            k: v["answer"] for k, v in last.get("candidates", {}).items()
        }


class Vote(BaseModel):
    # The reason first: a model held to the schema writes the fields in this order, and
    # on the bundled 270M model a reason after the vote ran on to max_tokens; before it,
    # it ended in a sentence.
    reason: str = ""
    vote: str


@lru_cache(maxsize=64)
def _ballot_type(labels: tuple[str, ...]) -> type[Vote]:
    """``Vote`` whose schema lists the labels: a model held to the schema (structured
    outputs, the local model's grammar) can only name one. Validation stays lenient
    ("Candidate B" is matched by the vote's check), for replies parsed from words."""
    label = Field(json_schema_extra={"enum": list(labels)})
    return create_model("Vote", __base__=Vote, vote=(str, label))


class ConsensusTeam(AgentTeam):
    """Agents that answer independently and vote until ``min_agreement`` agree."""

    formation = "consensus"
    answer_prompt = ANSWER_PROMPT
    vote_prompt = VOTE_PROMPT
    revise_prompt = REVISE_PROMPT

    def __init__(
        self,
        agents: Sequence[MemberLike],
        *,
        min_agreement: int = 2,
        max_revisions: int = 1,
        **options: Any,
    ) -> None:
        check_count(list(agents), 2, "consensus")
        super().__init__(agents, **options)
        self.min_agreement = check_positive(min_agreement, "min_agreement")
        if min_agreement > len(self.members):
            raise ConfigurationError(
                f"min_agreement={min_agreement} cannot be reached by {len(self.members)} agents; "
                f"use at most {len(self.members)}"
            )
        self.max_revisions = check_positive(max_revisions, "max_revisions", 0)

    async def _coordinate(self, run: TeamRun) -> str:
        active = list(self.members)
        answers: dict[str, str] = {}
        rounds: list[dict[str, Any]] = []
        run.details["rounds"] = rounds
        for round in range(1, self.max_revisions + 2):
            phase = "answer" if round == 1 else "revise"
            await run.emit("team.round", {"round": round, "phase": phase})
            asks = []
            for agent in active:
                prompt, context = self._answer_prompt(run, agent, round, answers, rounds)
                asks.append(run.ask(agent, prompt, kind=phase, context=context, round=round))
            turns = await gather_all(asks)
            for agent, turn in zip(list(active), turns, strict=True):
                if turn.ok:
                    answers[agent.name] = turn.content
                else:  # a failed member leaves the vote; the rest carry on
                    active.remove(agent)
            if len(active) < self.min_agreement:
                raise TeamError(
                    f"only {len(active)} agent(s) still working, fewer than min_agreement="
                    f"{self.min_agreement}",
                    errors=run.failures(),
                )
            candidates = _candidates(active, answers)
            await run.emit(
                "team.round", {"round": round, "phase": "vote", "candidates": list(candidates)}
            )
            votes = await gather_all(self._vote(run, agent, candidates, round) for agent in active)
            breakdown = {label: 0 for label in candidates}
            for vote in votes:
                if vote["choice"] is not None:
                    breakdown[vote["choice"]] += 1
            rounds.append(
                {"round": round, "candidates": candidates, "votes": votes, "breakdown": breakdown}
            )
            winner = _winner(breakdown, self.min_agreement)
            if winner is not None:
                run.details.update(
                    winner=winner,
                    winning_authors=candidates[winner]["authors"],
                    votes=votes,
                    breakdown=breakdown,
                    dissent=[v for v in votes if v["choice"] != winner],
                )
                return candidates[winner]["answer"]
        tally = ", ".join(f"{label} {n}" for label, n in rounds[-1]["breakdown"].items())
        raise NoConsensusError(
            f"no answer reached min_agreement={self.min_agreement} votes (or it was a tie) after "
            f"{len(rounds)} round(s); last votes: {tally}",
            rounds=rounds,
            errors=run.failures(),
        )

    def _answer_prompt(
        self,
        run: TeamRun,
        agent: Agent,
        round: int,
        answers: dict[str, str],
        rounds: list[dict[str, Any]],
    ) -> tuple[str, dict[str, Any] | None]:
        if round == 1:
            return fill(self.answer_prompt, task=run.task), None
        last = rounds[-1]
        context = {
            "candidates": _ballot(last["candidates"]),
            "votes": "\n".join(
                f"{v['voter']} voted {v['choice'] or 'nothing'}: {v['reason']}"
                for v in last["votes"]
            ),
            "your_previous_answer": answers.get(agent.name, ""),
        }
        return fill(self.revise_prompt, task=run.task, min_agreement=self.min_agreement), context

    async def _vote(
        self, run: TeamRun, agent: Agent, candidates: dict[str, dict[str, Any]], round: int
    ) -> dict[str, Any]:
        labels = list(candidates)

        def check(vote: Vote) -> None:
            vote.vote = _label_of(vote.vote, labels)

        try:
            vote, turn = await run.ask_json(
                agent,
                fill(self.vote_prompt, task=run.task, labels=", ".join(labels)),
                _ballot_type(tuple(labels)),
                kind="vote",
                what="vote",
                context={"candidates": _ballot(candidates)},
                round=round,
                check=check,
            )
            choice = vote.vote if vote else None
            reason = vote.reason if vote else f"failed: {turn.error}"
        except StructuredOutputError as exc:  # an unusable ballot is an abstention
            choice, reason = None, f"abstained: {exc}"
        record = {"voter": agent.name, "choice": choice, "reason": reason}
        await run.emit(
            "team.vote",
            {**record, "round": round, "authors": candidates[choice]["authors"] if choice else []},
        )
        return record


def _candidates(active: list[Agent], answers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Distinct answers, labelled A, B, ... in member order; identical ones merged."""
    candidates: dict[str, dict[str, Any]] = {}
    by_text: dict[str, str] = {}
    for agent in active:
        text = answers[agent.name]
        key = " ".join(text.split()).lower()
        if key in by_text:
            candidates[by_text[key]]["authors"].append(agent.name)
            continue
        label = by_text[key] = _label(len(candidates))
        candidates[label] = {"answer": text, "authors": [agent.name]}
    return candidates


def _label(index: int) -> str:
    """A, B, ..., Z, AA, AB, ..."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(65 + rest) + label
    return label


def _label_of(raw: str, labels: list[str]) -> str:
    match = re.fullmatch(
        r"\s*(?:candidate|answer|option)?\s*\(?([A-Za-z]{1,2})\)?[.\s]*", raw, re.I
    )
    label = match.group(1).upper() if match else None
    if label not in labels:
        raise ValueError(f"vote {raw!r} is not one of the labels {', '.join(labels)}")
    return label


def _ballot(candidates: dict[str, dict[str, Any]]) -> str:
    return "\n\n".join(f"Candidate {label}:\n{c['answer']}" for label, c in candidates.items())


def _winner(breakdown: dict[str, int], min_agreement: int) -> str | None:
    """The label with the most votes, if it has ``min_agreement`` and no tie."""
    if not breakdown:
        return None
    top = max(breakdown.values())
    leaders = [label for label, n in breakdown.items() if n == top]
    return leaders[0] if top >= min_agreement and len(leaders) == 1 else None
