"""Flat formation: peers take turns on the task, as equals.

Each round every agent takes one turn, in order. With ``shared_memory=True`` the team
keeps a ``State`` that all of them read and write: every turn is added to its ``notes``,
each agent sees the whole memory in its prompt, and a ``remember(key, value)`` tool
stores named partial results. Without shared memory an agent sees only the previous
speaker's turn (a baton passed around the table).

The run ends when an agent starts a line with ``FINAL ANSWER:`` (what follows is the
team's answer) or after ``max_rounds`` rounds (the last turn is the answer).
``result.details``: ``ended_by`` (``"completion"``/``"round_limit"``), ``rounds``,
``finished_by`` and, with shared memory, ``memory`` (the State's contents).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..core.state import State
from ..tools.base import BaseTool, tool
from .base import AgentTeam, MemberLike, TeamError, TeamRun, Turn, check_count, check_positive, fill

__all__ = ["FlatTeam", "TURN_PROMPT", "SHARED_MEMORY_NOTE", "BATON_NOTE", "FINAL_MARKER"]

#: A line starting with this ends the run; the rest of the reply is the answer.
FINAL_MARKER = "FINAL ANSWER:"

#: Each turn's prompt. ``{memory_note}`` is one of the two notes below.
TURN_PROMPT = """You are one of {count} peers ({peers}) working on a task together, taking turns.
Round {round} of at most {max_rounds}. {memory_note}
Add the next useful step: build on what is there, do not repeat it.
When the task is fully done, start a line with "FINAL ANSWER:" followed by the complete answer.

Task: {task}"""

SHARED_MEMORY_NOTE = (
    "The team's shared memory (notes from every turn, and named results saved with the "
    "remember tool) is in the context; save partial results there for the others."
)
BATON_NOTE = "The previous peer's turn, if any, is in the context."

_FINAL = re.compile(r"^[ \t>*_#]*final answer[*_]*\s*:[*_]*\s*", re.I | re.M)


class FlatTeam(AgentTeam):
    """Peers taking turns until one declares the task done."""

    formation = "flat"
    turn_prompt = TURN_PROMPT

    def __init__(
        self,
        agents: Sequence[MemberLike],
        *,
        shared_memory: bool = True,
        max_rounds: int = 3,
        memory: State | None = None,
        **options: Any,
    ) -> None:
        check_count(list(agents), 1, "flat")
        super().__init__(agents, **options)
        self.shared_memory = shared_memory
        self.max_rounds = check_positive(max_rounds, "max_rounds")
        #: The shared memory every run uses; None: a fresh ``State`` per run.
        self.memory = memory

    async def _coordinate(self, run: TeamRun) -> str:
        memory = self.memory if self.memory is not None else State()
        memory.setdefault("notes", [])
        tools = [_remember_tool(memory)] if self.shared_memory else None
        peers = ", ".join(m.name for m in self.members)
        note = SHARED_MEMORY_NOTE if self.shared_memory else BATON_NOTE
        last: Turn | None = None
        run.details.update(rounds=0, ended_by="round_limit", finished_by=None)
        for round in range(1, self.max_rounds + 1):
            run.details["rounds"] = round
            await run.emit("team.round", {"round": round, "phase": "turns"})
            succeeded = 0
            for agent in self.members:
                if self.shared_memory:
                    context = {"shared_memory": json.dumps(memory.to_dict(), indent=2, default=str)}
                else:
                    context = {"previous_turn": f"{last.agent}: {last.content}"} if last else {}
                prompt = fill(
                    self.turn_prompt,
                    count=len(self.members),
                    peers=peers,
                    round=round,
                    max_rounds=self.max_rounds,
                    memory_note=note,
                    task=run.task,
                )
                turn = await run.ask(
                    agent, prompt, kind="turn", context=context, round=round, tools=tools
                )
                if not turn.ok:
                    continue  # a failed peer skips its turn; the others carry on
                succeeded += 1
                last = turn
                if self.shared_memory:
                    memory["notes"].append({"by": agent.name, "round": round, "text": turn.content})
                answer = final_answer(turn.content)
                if answer is not None:
                    run.details.update(ended_by="completion", finished_by=agent.name)
                    return self._finish(run, memory, answer)
            if not succeeded:
                raise TeamError(f"every member failed in round {round}", errors=run.failures())
        assert last is not None
        return self._finish(run, memory, last.content)

    def _finish(self, run: TeamRun, memory: State, answer: str) -> str:
        if self.shared_memory:
            run.details["memory"] = memory.to_dict()
        return answer


def final_answer(text: str) -> str | None:
    """The answer after a ``FINAL ANSWER:`` line start, or None if there is none."""
    match = _FINAL.search(text)
    return text[match.end() :].strip() if match else None


def _remember_tool(memory: State) -> BaseTool:
    @tool(name="remember")
    def remember(key: str, value: str) -> str:
        """Save a named partial result in the team's shared memory, visible to every peer.

        Args:
            key: A short name for the result, e.g. "outline".
            value: The result to save (replaces an earlier value under the same key).
        """
        if key == "notes":
            return "'notes' is kept by the team; choose another key"
        memory[key] = value
        return f"saved {key!r} in shared memory"

    return remember
