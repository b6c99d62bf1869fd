"""victor.testing.cassette on the embedded model (recorded at the provider boundary): the
replay answers with the recorded text and events, and the model is never loaded."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from tests.test_cassette import add, no_connections
from victor import Agent
from victor.errors import CassetteMiss
from victor.providers.local.runtime import loaded_models
from victor.testing import cassette

FRANCE = "What is the capital of France?"


class Capital(BaseModel):
    country: str
    city: str


async def session() -> dict:
    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=24, tools=[add])
    seen = {
        "run": await agent.run(FRANCE),
        "stream": [token async for token in agent.astream(FRANCE)],
    }
    capital = await agent.run("France's capital, as JSON.", output_type=Capital)
    seen["typed"] = capital.model_dump()
    calculator = await Agent.create(
        provider="local", temperature=0.0, max_tokens=32, tools=[add], tool_choice="required"
    )
    seen["tool"] = await calculator.run("What is 2 plus 3?")
    seen["calls"] = [
        (call.name, call.arguments)
        for message in calculator.last_run.messages
        for call in message.tool_calls
    ]
    for each in (agent, calculator):
        await each.cleanup()
    return seen


def seen_a_tool_call(seen: dict) -> bool:
    return seen["calls"] == [("add", {"a": 2, "b": 3})] and "5" in seen["tool"]


async def test_the_local_model_round_trip(tmp_path):
    path = tmp_path / "local.json"
    with cassette(path):
        recorded = await session()
    assert "Paris" in recorded["run"] and len(recorded["stream"]) >= 2
    assert loaded_models() == {}, "the recording run released the model"
    stored = json.loads(path.read_text())["interactions"]
    assert seen_a_tool_call(recorded)
    paths = [i["request"]["path"] for i in stored]
    assert paths[:3] == ["local/chat", "local/stream", "local/chat"] and len(paths) >= 5
    assert stored[0]["request"]["json"]["messages"][-1] == {"role": "user", "content": FRANCE}
    assert stored[1]["response"]["stream"][0]["text"] == recorded["stream"][0]

    with no_connections(), cassette(path, "none"):
        replayed = await session()
        assert loaded_models() == {}, "a replay never loads the model"
    assert replayed == recorded

    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=24, tools=[add])
    with cassette(path, "none"), pytest.raises(CassetteMiss) as info:
        await agent.run("What is the capital of Spain?")
    assert "Nearest: recording #1, which differs at messages[0].content" in str(info.value)
    assert loaded_models() == {}
