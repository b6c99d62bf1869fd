"""Debate formation: agents argue in rounds, then a judge gives the verdict.

Round 1: every agent states its position, at the same time. Each later round: every
agent sees its own latest position and the others' latest positions (from the round
before: nobody sees a position written in the same round) and rebuts, concedes or
refines. An agent that fails drops out of the later rounds. After the last round the
judge (``judge=``, a member or an outside agent; by default the first agent) reads the
final positions and gives the verdict with its reasons: that is the team's answer.

``result.details``: ``rounds`` (a list of {agent: position} per round), ``judge``,
``verdict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.agent import Agent
from .base import (
    AgentTeam,
    MemberLike,
    TeamError,
    TeamRun,
    as_agent,
    check_count,
    check_positive,
    fill,
    gather_all,
)

__all__ = ["DebateTeam", "OPENING_PROMPT", "REBUTTAL_PROMPT", "VERDICT_PROMPT"]

#: Round 1.
OPENING_PROMPT = """You are debating the question below with {others}.
State your position and your strongest arguments for it, briefly.

Question: {task}"""

#: Rounds 2 and later. Positions are in the context.
REBUTTAL_PROMPT = """Round {round} of {rounds} of a debate on the question below.
Your latest position and the other participants' latest positions are in the context.
Answer their arguments: rebut, concede or refine. End with your current position.

Question: {task}"""

#: The judge, after the last round.
VERDICT_PROMPT = """You judge a debate on the question below. The participants' final
positions are in the context. Give your verdict on the question in the first line,
then the reasons for it, citing the arguments that decided it.

Question: {task}"""


class DebateTeam(AgentTeam):
    """Agents that argue for ``rounds`` rounds, and a judge who decides."""

    formation = "debate"
    opening_prompt = OPENING_PROMPT
    rebuttal_prompt = REBUTTAL_PROMPT
    verdict_prompt = VERDICT_PROMPT

    def __init__(
        self,
        agents: Sequence[MemberLike],
        *,
        rounds: int = 3,
        judge: MemberLike | None = None,
        **options: Any,
    ) -> None:
        check_count(list(agents), 2, "debate")
        super().__init__(agents, **options)
        self.debaters = list(self.members)
        self.rounds = check_positive(rounds, "rounds")
        self.judge = (
            self.debaters[0] if judge is None else self._adopt(as_agent(judge, "judge"), "judge")
        )

    async def _coordinate(self, run: TeamRun) -> str:
        active = list(self.debaters)
        positions: dict[str, str] = {}
        history: list[dict[str, str]] = []
        run.details.update(rounds=history, judge=self.judge.name)
        for round in range(1, self.rounds + 1):
            await run.emit("team.round", {"round": round, "phase": "argue"})
            seen = dict(positions)  # everyone answers the previous round, not each other
            asks = []
            for agent in active:
                prompt, context = self._prompt(run, agent, round, seen)
                asks.append(run.ask(agent, prompt, kind="position", context=context, round=round))
            turns = await gather_all(asks)
            this_round = {}
            for agent, turn in zip(list(active), turns, strict=True):
                if turn.ok:
                    positions[agent.name] = this_round[agent.name] = turn.content
                else:
                    active.remove(agent)
            history.append(this_round)
            if not active:
                raise TeamError(f"every debater failed in round {round}", errors=run.failures())
        await run.emit("team.round", {"round": self.rounds, "phase": "verdict"})
        final = "\n\n".join(f"{name}:\n{text}" for name, text in positions.items())
        verdict = await run.ask(
            self.judge,
            fill(self.verdict_prompt, task=run.task),
            kind="verdict",
            context={"final_positions": final},
            round=self.rounds,
            final=True,
        )
        run.require(verdict, "judging")
        run.details["verdict"] = verdict.content
        return verdict.content

    def _prompt(
        self, run: TeamRun, agent: Agent, round: int, seen: dict[str, str]
    ) -> tuple[str, dict[str, Any] | None]:
        others = [m.name for m in self.debaters if m is not agent]
        if round == 1:
            return fill(self.opening_prompt, task=run.task, others=", ".join(others)), None
        context = {
            "your_latest_position": seen.get(agent.name, ""),
            "other_positions": "\n\n".join(
                f"{name}:\n{seen[name]}" for name in others if name in seen
            ),
        }
        return fill(self.rebuttal_prompt, task=run.task, round=round, rounds=self.rounds), context
