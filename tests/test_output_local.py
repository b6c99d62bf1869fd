"""Typed results from the real bundled model (Gemma 3 270M via llama-cpp-python): the
grammar built from the output schema makes even a 270M model answer with a valid object."""

from __future__ import annotations

import asyncio
import json
from time import perf_counter

import pytest
from pydantic import BaseModel

from victor import Agent, AgentTeam
from victor.providers.local.provider import LocalProvider
from victor.teams import StructuredOutputError, TeamError
from victor.tools import tool

FRANCE = "What is the capital of France?"


class Capital(BaseModel):
    city: str


@tool
def capital_of(country: str) -> str:
    """The capital city of a country."""
    return {"France": "Paris"}.get(country, "unknown")


@pytest.fixture(scope="module")
def keep_loaded():
    """One load of the bundled model for the module (providers share a loaded model)."""
    provider = LocalProvider()
    yield provider.client()
    asyncio.run(provider.close())


async def test_the_answer_is_a_valid_object_under_the_grammar(keep_loaded):
    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=24)
    # It streams as partial objects; the last is the validated answer.
    seen = [value async for value in agent.astream(FRANCE, output_type=Capital)]
    assert all(isinstance(value, Capital) for value in seen)
    assert "Paris" in seen[-1].city and seen[-1] == agent.last_run.output
    assert agent.last_run.iterations == 1  # valid at the first attempt: the grammar held it
    await agent.cleanup()


async def test_a_tool_first_then_the_typed_answer(keep_loaded):
    # tool_choice="required": a tool before answering; then the grammar's answer branch
    # is the output schema.
    agent = await Agent.create(
        provider="local",
        temperature=0.0,
        max_tokens=40,
        tool_choice="required",
        tools=[capital_of],
    )
    capital = await agent.run(FRANCE, output_type=Capital)
    assert capital == Capital(city="Paris")
    calls = [c for m in agent.last_run.messages for c in m.tool_calls]
    assert [(c.name, c.arguments) for c in calls] == [("capital_of", {"country": "France"})]
    await agent.cleanup()


def test_with_tools_the_answer_branch_is_the_output_schema():
    # Compiles as a llama.cpp grammar, nested models' $defs moved to the root (no model run).
    import jsonschema
    from llama_cpp import LlamaGrammar

    from victor.core.output import output_type_for
    from victor.providers.local.provider import tool_schema

    class Trip(BaseModel):
        capital: Capital
        alternative: Capital | None = None

    schema = tool_schema([capital_of.spec()], answer=output_type_for(Trip).schema.json_schema)
    LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    jsonschema.validate({"answer": {"capital": {"city": "Paris"}, "alternative": None}}, schema)
    jsonschema.validate({"tool": "capital_of", "arguments": {"country": "France"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"answer": {"capital": {"town": "Paris"}}}, schema)


async def test_a_team_on_the_local_model_votes_with_valid_ballots(keep_loaded):
    # A team's structured steps are typed runs: the grammar holds a 270M model to the vote
    # schema, labels included, so no ballot is rejected or asked again.
    from victor import AgentTeam

    team = AgentTeam.consensus(
        ["first", "second"],
        min_agreement=1,
        max_revisions=0,
        provider="local",
        provider_options={"temperature": 0.0, "max_tokens": 24},
    )
    try:
        result = await team.run(FRANCE)
    finally:
        await team.cleanup()
    votes = [t for t in result.transcript if t.kind == "vote"]
    labels = set(result.details["rounds"][0]["candidates"])
    assert len(votes) == 2 and all(t.ok and t.rejected is None for t in votes)
    assert {v["choice"] for v in result.details["votes"]} <= labels
    assert all(json.loads(t.content)["vote"] in labels for t in votes)


@pytest.mark.timeout(180)  # the assertion below says how long it took
async def test_a_hierarchical_team_on_the_local_model_is_bounded(keep_loaded):
    # Issue 25: this team ran for minutes: at temperature 0 the plan repeated
    # "depends_on": ["France", ...] to max_tokens, at 0.7 it listed 57 subtasks for
    # "<member role>"; a member's reply repeated "Answer:" to max_tokens. The plan's schema
    # now bounds it (members' roles, at most max_subtasks, ids), the plan and the review
    # have plan_max_tokens, and a new "Answer:" line ends a local reply.
    lead, researcher, writer = [
        await Agent.create(provider="local", name=name, temperature=0.0)
        for name in ("lead", "researcher", "writer")
    ]
    team = AgentTeam.hierarchical(lead, [researcher, writer])
    started = perf_counter()
    try:
        result = await team.run(FRANCE)
    except StructuredOutputError as exc:  # no valid plan: a clear error, quickly
        assert "lead did not reply with a valid plan" in str(exc) or "cut off" in str(exc)
        result = exc.result
    except TeamError as exc:  # a valid plan, then a member failed or the lead gave up
        result = exc.result
    finally:
        await team.cleanup()
    elapsed = perf_counter() - started
    turns = ", ".join(
        f"{t.agent} {t.kind} {t.duration_ms / 1000:.0f} s {t.usage.output_tokens} tokens"
        for t in result.transcript
    )
    assert elapsed < 60, f"the team took {elapsed:.0f} s: {turns}"
    plans = [t for t in result.transcript if t.kind == "plan"]
    assert 1 <= len(plans) <= 2 and all(t.usage.output_tokens <= 1024 for t in plans)
    plan = result.details.get("plan")
    if plan is not None:
        assert 1 <= len(plan) <= team.max_subtasks
        ids = [s["id"] for s in plan]
        for index, subtask in enumerate(plan):
            assert subtask["assignee"] in ("researcher", "writer")
            assert set(subtask["depends_on"]) <= set(ids[:index])


async def test_a_judge_on_the_local_model_gives_a_typed_verdict(keep_loaded):
    from victor.batch import evaluate, llm_judge

    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=96)
    answers = Agent(provider="local", max_tokens=8)
    judge = llm_judge(agent)
    report = await evaluate(
        [{"input": "What is the capital of France?", "expected": "Paris"}],
        answers,
        [judge],
        progress=False,
    )
    [variant] = report.variants
    score = report.scores[variant][0]["judge"]
    # A grade the grammar held to 0..10, or an error that says what went wrong.
    assert score in [g / 10 for g in range(11)] or report.score_errors[variant][0]["judge"]
    # The verdict's fields in the schema's order: the reason, then the grade.
    assert list(json.loads(agent.last_run.content)) == ["reason", "grade"]
    await agent.cleanup()
    await answers.cleanup()
