"""What a team run leaves: ``TeamResult`` (prints as the answer), one ``Turn`` per member
run, and the errors a team raises when it cannot finish."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.events import Event
from ..core.messages import Usage
from ..errors import VictorError

if TYPE_CHECKING:
    from ..core.seams import TeamView

__all__ = ["StructuredOutputError", "TeamError", "TeamResult", "Turn"]


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
    #: Why the last model response stopped ("end", "length": cut off by max_tokens, ...).
    stop_reason: str | None = None
    #: A structured reply as the object it was validated into (``ask_json``).
    output: Any = field(default=None, repr=False)

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

    def timeline(self, *, deterministic: bool = False) -> TeamView:
        """The run's ``TeamTimeline`` (``deterministic=True``: logical clock, for docs)."""
        from ..core import seams

        return seams.front_end("team_view")(self.events, deterministic=deterministic)
