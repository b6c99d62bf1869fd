"""Pipeline formation: stages in order, each building on the previous stage's output.

Every stage gets the task and the previous stage's output. An optional ``check`` (a
function, sync or async, given a ``Stage``) gates each stage's output:

- ``True`` or ``None``: pass it on to the next stage;
- ``False``: stop the pipeline here; this stage's output is the answer;
- a string: retry the stage with the string as feedback (``max_retries`` times, then
  ``TeamError``).

A stage whose member fails is retried the same way, except when part of its answer has
already been streamed to the caller (the last stage under ``team.astream``): then the
failure is raised, never followed by a second answer. ``team.delegate`` marks each hand-off.
``result.details``: ``stages`` (agent, output, attempts per stage), ``stopped_at``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._util import maybe_await
from ..errors import ConfigurationError
from .base import AgentTeam, MemberLike, TeamError, TeamRun, check_count, check_positive, fill

__all__ = ["PipelineTeam", "Stage", "STAGE_PROMPT"]

#: Each stage's prompt.
STAGE_PROMPT = """You are stage {index} of {count} in a pipeline: {stages}.
Do your stage's part of the task below. {previous_note}
Reply with your stage's output only; the next stage works from it.

Task: {task}"""

_FIRST = "You are the first stage."
_NEXT = "The previous stage's output is in the context."


@dataclass(frozen=True)
class Stage:
    """One stage's output, as the ``check`` gate sees it."""

    index: int
    agent: str
    output: str
    attempt: int
    task: str


Check = Callable[[Stage], bool | str | None | Awaitable[bool | str | None]]


class PipelineTeam(AgentTeam):
    """Agents in sequence: analyse -> implement -> test, say."""

    formation = "pipeline"
    stage_prompt = STAGE_PROMPT

    def __init__(
        self,
        agents: Sequence[MemberLike],
        *,
        check: Check | None = None,
        max_retries: int = 1,
        **options: Any,
    ) -> None:
        check_count(list(agents), 1, "pipeline")
        super().__init__(agents, **options)
        if check is not None and not callable(check):
            raise ConfigurationError(f"check={check!r} is not callable: pass a function of a Stage")
        self.check = check
        self.max_retries = check_positive(max_retries, "max_retries", 0)

    async def _coordinate(self, run: TeamRun) -> str:
        names = " -> ".join(m.name for m in self.members)
        previous: str | None = None
        sender = self.name
        stages: list[dict[str, Any]] = []
        run.details.update(stages=stages, stopped_at=None)
        for index, agent in enumerate(self.members, 1):
            last_stage = index == len(self.members)
            feedback: str | None = None
            for attempt in range(1, self.max_retries + 2):
                await run.emit(
                    "team.delegate",
                    {
                        "from": sender,
                        "to": agent.name,
                        "task": run.task,
                        "subtask": f"stage {index}",
                        "attempt": attempt,
                    },
                )
                context: dict[str, Any] = {}
                if previous is not None:
                    context["previous_stage_output"] = previous
                if feedback is not None:
                    context["feedback_on_your_last_attempt"] = feedback
                prompt = fill(
                    self.stage_prompt,
                    index=index,
                    count=len(self.members),
                    stages=names,
                    previous_note=_NEXT if previous is not None else _FIRST,
                    task=run.task,
                )
                turn = await run.ask(
                    agent,
                    prompt,
                    kind="stage",
                    context=context,
                    round=index,
                    final=last_stage and self.check is None,
                )
                if not turn.ok:
                    if run.streamed:
                        # Part of the answer already went to team.astream's caller: a retry
                        # would stream a second answer after it (the providers' rule too).
                        raise TeamError(
                            f"stage {index} ({agent.name}) failed after part of its answer "
                            f"was streamed, so it was not retried: {turn.error}",
                            errors={agent.name: turn.error},
                        )
                    feedback = f"your last attempt failed with an error: {turn.error}"
                    continue
                verdict = True
                if self.check is not None:
                    verdict = await maybe_await(
                        self.check(Stage(index, agent.name, turn.content, attempt, run.task))
                    )
                if verdict is None or verdict is True:
                    break
                if verdict is False:
                    stages.append(
                        {"agent": agent.name, "output": turn.content, "attempts": attempt}
                    )
                    run.details["stopped_at"] = agent.name
                    return turn.content
                if not isinstance(verdict, str):
                    raise ConfigurationError(
                        f"check returned {verdict!r}; return True (pass), False (stop) or a "
                        f"string of feedback (retry the stage)"
                    )
                feedback = verdict
            else:
                raise TeamError(
                    f"stage {index} ({agent.name}) did not succeed in {self.max_retries + 1} "
                    f"attempt(s): {feedback}",
                    errors={agent.name: turn.error} if turn.error is not None else None,
                )
            stages.append({"agent": agent.name, "output": turn.content, "attempts": attempt})
            previous, sender = turn.content, agent.name
        assert previous is not None
        return previous
