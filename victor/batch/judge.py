"""``llm_judge``: a scorer that asks an agent for a grade, and reads only a grade it gave.

A judge whose provider holds answers to a schema (structured outputs, the local model's
grammar; the test the teams use for typed plans and votes) answers with a typed
``Verdict``; any other is asked to end its reply with the line ``GRADE: <0-10>``, and only
that line is read. A reply without a grade is an ``OutputValidationError``, which
``evaluate`` records as a score error: a grade is never guessed from other numbers or
words in the reply.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import ConfigurationError, OutputValidationError
from .items import task_for

__all__ = ["llm_judge", "parse_grade", "Verdict"]

JUDGE_PROMPT = """You are grading an answer.

Criteria: {criteria}

Question:
{question}

Reference answer:
{expected}

Answer to grade:
{output}

{how}"""

#: How a judge whose provider holds answers to a schema is asked (the schema is ``Verdict``).
TYPED_VERDICT = "Give your verdict: one sentence saying why, then a grade from 0 (fails the \
criteria) to 10 (meets them fully)."

#: How any other judge is asked; ``parse_grade`` reads the last line.
WORDS_VERDICT = """Write one sentence saying why, then end your reply with a last line
GRADE: <a whole number from 0 (fails the criteria) to 10 (meets them fully)>"""


class Verdict(BaseModel):
    """A judge's verdict on one answer."""

    reason: str = Field(description="One sentence: why this grade.")
    grade: Literal[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] = Field(
        description="0: fails the criteria; 10: meets them fully."
    )


def llm_judge(
    agent: Any, criteria: str = "Is the answer correct and complete?", *, name: str = "judge"
) -> Callable[[Any, Any, Any], Awaitable[float]]:
    """A scorer that asks ``agent`` (an ``Agent``) to grade each output from 0 to 10 against
    ``criteria`` and the expected answer; the score is the grade / 10.

    A judge whose provider holds answers to a schema (structured outputs, the local model's
    grammar) gives a typed ``Verdict``; any other is asked to end its reply with the line
    ``GRADE: <0-10>``. A reply without one is a score error, never a guessed number.
    """

    async def judge(output: Any, expected: Any, item: Any) -> float:
        try:
            question = task_for(item, None)[0]
        except ConfigurationError:
            question = str(item)
        typed = _holds_schemas(agent)
        prompt = JUDGE_PROMPT.format(
            criteria=criteria,
            question=question,
            expected="(none given)" if expected is None else expected,
            output=output,
            how=TYPED_VERDICT if typed else WORDS_VERDICT,
        )
        if typed:
            verdict = await agent.run(prompt, output_type=Verdict)
            return verdict.grade / 10
        return parse_grade(await agent.run(prompt))

    judge.__name__ = judge.__qualname__ = name
    return judge


def _holds_schemas(agent: Any) -> bool:
    """Whether the provider ``agent`` would run on constrains answers to a schema (the test
    the teams use to ask for typed plans and votes)."""
    provider = getattr(agent, "_run_provider", None)
    return bool(provider is not None and provider().native_output)


# "GRADE: 7", also "**Grade:** 7/10." (markdown emphasis, "/10", a full stop).
_GRADE_LINE = re.compile(
    r"[*_\s]*GRADE[*_\s]*:[*_\s]*(10(?:\.0+)?|\d(?:\.\d+)?)\s*(?:/\s*10)?[*_.\s]*",
    re.IGNORECASE,
)


def parse_grade(reply: str) -> float:
    """A judge's reply as a score from 0 to 1: its last line must be ``GRADE: <0-10>``
    (markdown emphasis and "/10" allowed). Anything else is an ``OutputValidationError``:
    a grade is never guessed from other numbers or words in the reply."""
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    match = _GRADE_LINE.fullmatch(lines[-1]) if lines else None
    if match is None:
        excerpt = reply if len(reply) <= 120 else "..." + reply[-117:]  # where a grade goes
        raise OutputValidationError(
            f"the judge's reply does not end with a line 'GRADE: <0-10>', so it has no "
            f"grade: {excerpt!r}. Use a judge model that follows the format, or one whose "
            f"provider holds answers to a schema (typed verdicts)",
            raw=reply,
            errors=[],
        )
    return float(match.group(1)) / 10
