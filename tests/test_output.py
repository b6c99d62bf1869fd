"""Typed results (``output_type=``) through the official SDKs against the loopback servers,
and through ``victor.testing`` providers: the wire shape each API is asked with, tools
before the answer, retries with the validation errors, the final error, partial objects."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel, Field, ValidationError

from tests.servers import Call, Json, Text, ToolCalls
from tests.servers.openai import strict_schema_problem
from victor import Agent, ConfigurationError, OutputValidationError
from victor.core.events import EventBus
from victor.core.output import json_object_in, output_type_for, strict_schema
from victor.testing import ScriptedProvider, call
from victor.tools import tool

SECRET = "sk-test-secret-4242"


class City(BaseModel):
    """A city and the country it is in."""

    city: str
    country: str


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Inner(BaseModel):
    name: str


class Report(BaseModel):
    title: str
    author: Inner = Field(description="who wrote it")
    reviewer: Inner | None = None
    tags: list[str] = []
    counts: dict[str, int] = {}


class Opaque:
    """Not something pydantic can describe."""


@tool
def capital_of(country: str) -> str:
    """The capital city of a country."""
    return {"France": "Paris"}.get(country, "unknown")


PARIS = {"city": "Paris", "country": "France"}


@pytest.fixture(params=["anthropic", "openai", "ollama"])
def served(request):
    """(provider name, server, keyword arguments for Agent.create)."""
    server = request.getfixturevalue(f"{request.param}_server")
    base_url = server.url + "/v1" if request.param == "openai" else server.url
    kwargs = {"base_url": base_url, "max_retries": 0, "timeout": 5.0}
    if request.param != "ollama":
        kwargs["api_key"] = SECRET
    return request.param, server, kwargs


def asked_schema(name: str, body: dict) -> dict:
    """The JSON schema a request asks the answer to match, read the way each API reads it."""
    if name == "anthropic":
        (tool,) = [t for t in body["tools"] if t["name"] == body["tool_choice"].get("name", "City")]
        return tool["input_schema"]
    if name == "openai":
        return body["response_format"]["json_schema"]["schema"]
    return body["format"]


# -- the wire shape, per provider ---------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["run", "astream"])
async def test_each_api_is_asked_in_its_own_way(served, streaming):
    name, server, kwargs = served
    server.script(Json(PARIS))
    agent = await Agent.create(provider=name, **kwargs)
    if streaming:
        *_, answer = [
            value async for value in agent.astream("Capital of France?", output_type=City)
        ]
    else:
        answer = await agent.run("Capital of France?", output_type=City)
    assert answer == City(city="Paris", country="France")
    body = server.requests[-1].body
    schema = {
        "type": "object",
        "title": "City",
        "description": "A city and the country it is in.",
        "properties": {
            "city": {"title": "City", "type": "string"},
            "country": {"title": "Country", "type": "string"},
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    if name == "anthropic":
        # A forced call to the output tool, whose input schema is the type.
        assert body["tool_choice"] == {"type": "tool", "name": "City"}
        assert body["tools"] == [
            {
                "name": "City",
                "description": "Give your final answer: A city and the country it is in. "
                "Call this once, when you have it.",
                "input_schema": schema,
            }
        ]
    elif name == "openai":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {
                "name": "City",
                "description": "A city and the country it is in.",
                "schema": schema,
                "strict": True,
            },
        }
    else:
        assert body["format"] == schema
    assert agent.last_run.output == answer
    assert json.loads(agent.last_run.content) == PARIS
    await agent.cleanup()


async def test_events_carry_the_parsed_output(served):
    name, server, kwargs = served
    server.script(Json(PARIS))
    bus = EventBus()
    completed = []
    bus.subscribe("agent.complete", completed.append)
    agent = await Agent.create(provider=name, bus=bus, output_type=City, **kwargs)
    assert await agent.run("Capital of France?") == City(**PARIS)  # the agent's default
    (event,) = completed
    assert event.data["output"] == PARIS  # plain data: any subscriber can serialise it
    assert json.loads(event.data["result"]) == PARIS
    await agent.cleanup()


async def test_tools_run_before_the_typed_answer(served):
    name, server, kwargs = served
    server.script(
        ToolCalls([("capital_of", {"country": "France"})]),
        Json(PARIS, tool="City"),
    )
    agent = await Agent.create(provider=name, tools=[capital_of], **kwargs)
    assert await agent.run("Capital of France?", output_type=City) == City(**PARIS)
    first, second = (r.body for r in server.requests)
    assert "Paris" in json.dumps(second["messages"])  # the tool's result went back
    if name == "anthropic":
        # Beside real tools the model must call *a* tool: a tool, or the answer.
        assert first["tool_choice"] == {"type": "any"}
        assert [t["name"] for t in first["tools"]] == ["capital_of", "City"]
    else:
        assert [t["function"]["name"] for t in first["tools"]] == ["capital_of"]
        assert asked_schema(name, first) == asked_schema(name, second)
    assert agent.last_run.iterations == 2
    await agent.cleanup()


async def test_an_invalid_answer_is_sent_back_with_the_errors(served):
    name, server, kwargs = served
    server.script(Json({"city": 75}), Json(PARIS))
    agent = await Agent.create(provider=name, **kwargs)
    assert await agent.run("Capital of France?", output_type=City) == City(**PARIS)
    retry = json.dumps(server.requests[1].body["messages"][-1])
    assert "city: Input should be a valid string (got 75)" in retry
    assert "country: Field required" in retry
    assert len(server.requests) == 2
    await agent.cleanup()


async def test_still_invalid_after_the_retries_is_an_output_validation_error(served):
    name, server, kwargs = served
    server.script(Json({"city": 75}), Json(raw='{"city": "Paris", "country": '))
    bus = EventBus()
    errors = []
    bus.subscribe("agent.error", errors.append)
    agent = await Agent.create(provider=name, bus=bus, output_retries=1, **kwargs)
    with pytest.raises(OutputValidationError) as caught:
        await agent.run("Capital of France?", output_type=City)
    error = caught.value
    assert error.raw == '{"city": "Paris", "country": '
    assert [e["type"] for e in error.errors] == ["json_invalid"]
    assert "not a valid City after 2 attempt(s)" in str(error)
    assert len(server.requests) == 2 and server.pending == 0
    assert errors[0].data["error_type"] == "OutputValidationError"
    await agent.cleanup()


@pytest.mark.parametrize("streaming", [False, True], ids=["run", "astream"])
async def test_an_answer_cut_off_by_max_tokens_says_so_at_once(openai_server, streaming):
    # Asking again would end the same way: the error names the limit, not "Invalid JSON".
    openai_server.script(Text('{"city": "Paris", "country": "Fra', stop_reason="length"))
    agent = await Agent.create(
        provider="openai", base_url=openai_server.url + "/v1", api_key=SECRET, max_tokens=12
    )
    with pytest.raises(OutputValidationError) as caught:
        if streaming:
            [_ async for _ in agent.astream("Capital of France?", output_type=City)]
        else:
            await agent.run("Capital of France?", output_type=City)
    message = str(caught.value)
    assert message.startswith("the model's answer was cut off by max_tokens=12 before the City")
    assert caught.value.raw == '{"city": "Paris", "country": "Fra'
    assert f"it ends: {caught.value.raw!r}" in message
    assert "Raise max_tokens" in message and "Invalid JSON" not in message
    assert len(openai_server.requests) == 1
    await agent.cleanup()


@pytest.mark.parametrize("streaming", [False, True], ids=["run", "astream"])
@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_refusal_is_an_output_validation_error_at_once(request, name, streaming):
    """OpenAI's Structured Outputs refusal and Anthropic's ``refusal`` stop reason give no
    value of the type: the run says the model refused, and does not ask again."""
    server = request.getfixturevalue(f"{name}_server")
    words = "I can't help with that request."
    server.script(
        Text(words, refusal=True) if name == "openai" else Text(words, stop_reason="refusal")
    )
    base_url = server.url + "/v1" if name == "openai" else server.url
    agent = await Agent.create(provider=name, base_url=base_url, api_key=SECRET, max_retries=0)
    with pytest.raises(OutputValidationError) as caught:
        if streaming:
            [value async for value in agent.astream("Capital of France?", output_type=City)]
        else:
            await agent.run("Capital of France?", output_type=City)
    assert f"the model refused to give a City: {words!r}" in str(caught.value)
    assert caught.value.raw == words and caught.value.errors == []
    assert len(server.requests) == 1 and server.pending == 0  # not asked again
    await agent.cleanup()


async def test_astream_yields_partial_objects_as_they_become_valid(served):
    name, server, kwargs = served
    server.script(Json({"city": "Paris", "country": "France", "population": 2100000}, chunks=16))

    class Town(BaseModel):
        city: str
        country: str = ""
        population: int = 0

    agent = await Agent.create(provider=name, **kwargs)
    seen = [value async for value in agent.astream("Capital of France?", output_type=Town)]
    assert all(isinstance(value, Town) for value in seen)
    assert seen[-1] == Town(city="Paris", country="France", population=2100000)
    assert len(seen) >= 3, seen  # it grew, field by field and string by string
    assert len(set(map(repr, seen))) == len(seen)  # only changes are yielded
    countries = [value.country for value in seen]
    assert countries == sorted(countries, key=len)
    # No number is shown before it is complete.
    assert {value.population for value in seen} <= {0, 2100000}
    await agent.cleanup()


@pytest.mark.parametrize(
    ("output_type", "answer", "expected"),
    [
        (list[str], ["red", "green"], ["red", "green"]),
        (int, 42, 42),
        (Literal["yes", "no"], "no", "no"),
    ],
)
async def test_non_object_types_are_wrapped_in_a_result_object(
    openai_server, output_type, answer, expected
):
    openai_server.script(Json({"result": answer}))
    agent = await Agent.create(
        provider="openai", base_url=openai_server.url + "/v1", api_key=SECRET
    )
    assert await agent.run("Answer", output_type=output_type) == expected
    spec = openai_server.requests[-1].body["response_format"]["json_schema"]
    assert spec["name"] == "result" and spec["strict"] is True
    assert spec["schema"]["required"] == ["result"]
    await agent.cleanup()


async def test_nested_models_are_strict_and_open_maps_are_not(openai_server):
    # The server refuses a strict schema that breaks the rules, as the real API does: a
    # request it accepted followed them.
    answer = {"title": "T", "author": {"name": "A"}, "reviewer": None, "tags": [], "counts": {}}
    openai_server.script(Json(answer))
    agent = await Agent.create(
        provider="openai", base_url=openai_server.url + "/v1", api_key=SECRET
    )
    assert await agent.run("Report", output_type=Report) == Report(**answer)
    spec = openai_server.requests[-1].body["response_format"]["json_schema"]
    # dict[str, int] cannot be strict: sent non-strict, checked by victor instead.
    assert spec["strict"] is False
    schema, complies = strict_schema(Report.model_json_schema())
    assert not complies
    del schema["properties"]["counts"], schema["required"][-1]
    assert strict_schema_problem(schema) is None
    assert schema["properties"]["author"]["description"] == "who wrote it"  # $ref inlined
    await agent.cleanup()


async def test_the_output_call_ends_the_run_and_calls_beside_it_do_not_run(anthropic_server):
    anthropic_server.script(
        ToolCalls([("capital_of", {"country": "France"}), Call("City", PARIS)]),
    )
    bus = EventBus()
    ran = []
    bus.subscribe("tool.*", ran.append)
    agent = await Agent.create(
        provider="anthropic",
        base_url=anthropic_server.url,
        api_key=SECRET,
        tools=[capital_of],
        bus=bus,
    )
    assert await agent.run("Capital?", output_type=City) == City(**PARIS)
    assert ran == [] and len(anthropic_server.requests) == 1
    await agent.cleanup()


@pytest.mark.parametrize(
    ("name", "request_body", "problem"),
    [
        (
            "openai",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True,
             "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}},
            "'additionalProperties' is required to be supplied and to be false",
        ),
        (
            "anthropic",
            {"tools": [{"name": "a", "input_schema": {"type": "object"}}],
             "tool_choice": {"type": "tool", "name": "b"}},
            "Tool 'b' not found",
        ),
        ("ollama", {"format": "yaml"}, 'expected "json" or a valid JSON Schema'),
    ],
)  # fmt: skip
def test_the_servers_refuse_what_the_real_apis_refuse(request, name, request_body, problem):
    server = request.getfixturevalue(f"{name}_server")
    assert problem in server.check_request(request_body)
    assert server.check_request({}) is None


async def test_the_openai_sdk_sees_the_servers_refusal(openai_server):
    client = openai.AsyncOpenAI(base_url=openai_server.url + "/v1", api_key=SECRET, max_retries=0)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    with pytest.raises(openai.BadRequestError, match="Missing 'a'"):
        await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {**schema, "additionalProperties": False},
                                "strict": True},
            },
        )  # fmt: skip
    assert openai_server.pending == 0 and len(openai_server.requests) == 1
    await client.close()


# -- through victor.testing providers -------------------------------------------------------


async def test_a_provider_without_native_support_is_asked_in_words():
    provider = ScriptedProvider(['```json\n{"x": 1, "y": 2}\n```'])
    agent = await Agent.create(provider=provider, system_prompt="Be exact.")
    assert await agent.run("Where?", output_type=Point) == Point(x=1, y=2)
    system, request, user = provider.requests[0]
    assert (system.content, user.content) == ("Be exact.", "Where?")
    assert request.role == "system" and '"required":["x","y"]' in request.content


async def test_the_agents_default_and_a_call_that_wants_text():
    provider = ScriptedProvider(['{"x": 1, "y": 2}', "just text"])
    agent = await Agent.create(provider=provider, output_type=Point)
    assert await agent.run("Where?") == Point(1, 2)
    assert await agent.run("Say something", output_type=str) == "just text"
    assert agent.last_run.output is None


async def test_chat_returns_objects_and_remembers_the_json():
    provider = ScriptedProvider(['{"x": 1, "y": 2}', '{"x": 3, "y": 4}'])
    agent = await Agent.create(provider=provider)
    assert await agent.chat("A point", output_type=Point) == Point(1, 2)
    assert await agent.chat("Another", output_type=Point) == Point(3, 4)
    assert [m.content for m in agent.history if m.role == "assistant"] == [
        '{"x": 1, "y": 2}',
        '{"x": 3, "y": 4}',
    ]


async def test_retries_do_not_use_up_max_iterations():
    provider = ScriptedProvider(
        [call("capital_of", country="France"), '{"x": "?"}', '{"x": 1, "y": 2}']
    )
    agent = await Agent.create(provider=provider, tools=[capital_of], max_iterations=2)
    assert await agent.run("Where?", output_type=Point) == Point(1, 2)
    assert agent.last_run.iterations == 3


async def test_run_with_display_returns_the_object(capsys):
    agent = await Agent.create(provider=ScriptedProvider(['{"x": 1, "y": 2}']))
    assert await agent.run("Where?", output_type=Point, display=True) == Point(1, 2)
    printed = capsys.readouterr().out
    assert '"x": 1' in printed and "scripted/test-model" in printed


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"output_type": "City"}, "is not a type"),
        ({"output_type": lambda: None}, "is not a type"),
        ({"output_type": Opaque}, "cannot be used"),
        ({"output_type": City, "output_retries": -1}, "output_retries=-1 is invalid"),
    ],
)
async def test_bad_settings_are_named_at_create(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        await Agent.create(provider=ScriptedProvider([]), **settings)


async def test_an_output_name_that_is_a_tool_name_is_refused():
    @tool
    def City(name: str) -> str:  # noqa: N802 - the clash is the point
        """A tool that shares the output type's name."""
        return name

    agent = await Agent.create(provider=ScriptedProvider(["{}"]), tools=[City])
    with pytest.raises(ConfigurationError, match="'City' is also the name of a tool"):
        await agent.run("x", output_type=globals()["City"])


def test_output_types_are_prepared_once():
    first, second = output_type_for(City), output_type_for(City, retries=5)
    assert first.schema is second.schema and second.retries == 5
    assert output_type_for(None) is None and output_type_for(str) is None


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        ('{"x": 1, "y": 2}', '{"x": 1, "y": 2}'),
        ('Here:\n```json\n{"x": 1, "y": 2}\n```\nDone.', '{"x": 1, "y": 2}'),
        ('Use {braces} sparingly; the point is {"x": 1, "y": 2} here.', '{"x": 1, "y": 2}'),
        ("[1, 2]", None),
        ('{"x": 1, "y": ', None),
        ("no JSON at all", None),
    ],
)
def test_the_json_object_in_a_reply_asked_for_in_words(reply, found):
    assert json_object_in(reply) == found


def test_a_reply_in_prose_is_read_only_when_asked_in_words():
    point = output_type_for(Point)
    reply = 'My answer: {"x": 1, "y": 2}, as asked.'
    assert point.validate(reply, in_prose=True) == Point(1, 2)
    with pytest.raises(ValidationError):  # a run's own answer: the whole text, or a fence
        point.validate(reply)
    with pytest.raises(ValidationError, match="y\n  Field required"):  # found, but not a Point
        point.validate('So: {"x": 1}', in_prose=True)
