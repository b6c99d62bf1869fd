"""Typed results from the real bundled model (Gemma 3 270M via llama-cpp-python): the
grammar built from the output schema makes even a 270M model answer with a valid object."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from victor import Agent
from victor.providers.local.provider import LocalProvider
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
