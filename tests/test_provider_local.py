"""The local provider on the real bundled model (Gemma 3 270M via llama-cpp-python)."""

from __future__ import annotations

import asyncio
import sys
import threading

import jsonschema
import pytest

from victor import Agent, ConfigurationError
from victor.core.messages import Message, ResponseComplete, TextDelta, ToolSpec
from victor.providers.local.model import GGUF_MAGIC, bundled_model_path
from victor.providers.local.provider import LocalProvider, loaded_models, tool_schema
from victor.tools import tool

FRANCE = "What is the capital of France?"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture(scope="module")
def keep_loaded():
    """Holds one reference to the bundled model, so the tests share a single load."""
    provider = LocalProvider()
    shared = provider.client()  # the loaded model, shared by every local provider
    yield shared
    asyncio.run(provider.close())


async def test_answers_a_simple_question(keep_loaded):
    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=16)
    answer = await agent.run(FRANCE)
    assert "Paris" in answer
    run = agent.last_run
    assert run.provider == "local" and run.model == "gemma3-270m"
    assert run.usage.input_tokens > 10 and 0 < run.usage.output_tokens <= 16
    await agent.cleanup()


async def test_stream_gives_the_same_answer_token_by_token(keep_loaded):
    agent = await Agent.create(provider="llamacpp", temperature=0.0, max_tokens=16)
    assert isinstance(agent.provider, LocalProvider)
    deltas = [text async for text in agent.astream(FRANCE)]
    assert len(deltas) >= 2  # streamed, not delivered in one piece
    assert "".join(deltas).strip() == await agent.run(FRANCE)
    await agent.cleanup()


async def test_max_tokens_stops_with_reason_length_and_counts_tokens(keep_loaded):
    provider = LocalProvider(temperature=0.0, max_tokens=3)
    story = [Message.user("Write a long story about a dragon.")]
    events = [e async for e in provider.stream(story)]
    response = events[-1].response
    assert isinstance(events[-1], ResponseComplete)
    assert response.stop_reason == "length"
    assert response.usage.output_tokens == 3
    assert response.content == "".join(e.text for e in events if type(e) is TextDelta).strip()
    await provider.close()


async def test_a_seed_makes_sampling_repeatable(keep_loaded):
    messages = [Message.user("Tell me about cats.")]
    answers = set()
    for _ in range(2):
        provider = LocalProvider(temperature=1.0, max_tokens=12, seed=1234)
        answers.add((await provider.chat(messages)).content)
        await provider.close()
    other = LocalProvider(temperature=1.0, max_tokens=12, seed=99)
    answers.add((await other.chat(messages)).content)
    await other.close()
    assert len(answers) == 2  # same seed, same text; another seed, another text


async def test_tool_round_trip_completes_with_a_valid_call(keep_loaded):
    agent = await Agent.create(
        provider="local", temperature=0.0, max_tokens=32, tools=[add], tool_choice="required"
    )
    answer = await agent.run("What is 2 plus 3?")
    transcript = agent.last_run.messages
    calls = [c for m in transcript if m.role == "assistant" for c in m.tool_calls]
    assert calls and calls[0].name == "add"
    jsonschema.validate(calls[0].arguments, add.spec().parameters)
    result = next(m for m in transcript if m.role == "tool")
    assert not result.is_error and result.content == str(add.fn(**calls[0].arguments))
    assert agent.last_run.iterations == 2 and isinstance(answer, str)
    await agent.cleanup()


async def test_replies_with_tools_always_match_the_schema(keep_loaded):
    spec = add.spec()
    schema = tool_schema([spec])
    for seed in (1, 2):
        provider = LocalProvider(temperature=1.0, max_tokens=40, seed=seed)
        response = await provider.chat([Message.user("Add 40 and 2, or answer.")], [spec])
        await provider.close()
        if response.tool_calls:
            (call,) = response.tool_calls
            reply = {"tool": call.name, "arguments": call.arguments}
            assert response.stop_reason == "tool_calls"
        else:
            reply = {"answer": response.content}
            assert response.stop_reason == "end" and response.content
        jsonschema.validate(reply, schema)


async def test_with_tools_the_answer_text_streams(keep_loaded):
    provider = LocalProvider(temperature=0.0, max_tokens=24)
    events = [e async for e in provider.stream([Message.user(FRANCE)], [add.spec()])]
    text = "".join(e.text for e in events if type(e) is TextDelta)
    assert "Paris" in text and "{" not in text  # the answer, not the JSON around it
    assert events[-1].response.content == text.strip()
    await provider.close()


async def test_a_team_of_agents_shares_one_model(keep_loaded):
    path = str(keep_loaded.path)
    before = loaded_models()[path]
    agents = [Agent(role=f"member {i}", provider="local", max_tokens=2) for i in range(5)]
    answers = await asyncio.gather(*(a.run("Say hi.") for a in agents))
    assert len(answers) == 5
    assert loaded_models() == {path: before + 5}  # five users, one loaded copy
    for agent in agents:
        await agent.cleanup()
    assert loaded_models() == {path: before}


async def test_a_gguf_path_loads_that_file_and_shares_it(keep_loaded):
    path = str(keep_loaded.path)
    before = loaded_models()[path]
    agent = await Agent.create(provider="local", model=path, temperature=0.0, max_tokens=8)
    assert "Paris" in await agent.run(FRANCE)
    assert loaded_models()[path] == before + 1
    await agent.cleanup()


async def test_abandoning_a_stream_stops_generation(keep_loaded):
    provider = LocalProvider(temperature=1.0, max_tokens=2000, stop=[])
    stream = provider.stream([Message.user("Write a very long story about a dragon.")])
    async for event in stream:
        assert type(event) is TextDelta
        break
    await stream.aclose()
    # Closing waited for the worker: the model is free, not busy with 2000 more tokens.
    assert not keep_loaded.lock.locked()
    await provider.close()


async def test_generation_does_not_block_the_event_loop(keep_loaded):
    ticks = 0
    done = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    provider = LocalProvider(temperature=1.0, max_tokens=24, stop=[])
    task = asyncio.create_task(ticker())
    await provider.chat([Message.user("Write a story.")])
    done.set()
    await task
    await provider.close()
    # The loop ran while the model generated: a loop blocked by the generation would tick
    # at most once (at the chat's first await). 2, not more: how many 10 ms ticks fit in
    # the generation depends on the machine's speed, fast or loaded.
    assert ticks >= 2


async def test_a_chat_format_prompts_through_the_template_and_unloads_on_cleanup(keep_loaded):
    path = str(keep_loaded.path)
    # Other load settings are another model instance, here with this agent its only user.
    agent = await Agent.create(
        provider="local", chat_format="chatml", temperature=0.0, max_tokens=6
    )
    await agent.run(FRANCE)
    response = agent.last_run
    assert response.usage.input_tokens > 10 and response.usage.output_tokens > 0
    assert loaded_models()[path] == 2
    await agent.cleanup()
    assert loaded_models()[path] == 1  # the chatml instance is gone; the shared one stays


# -- errors ----------------------------------------------------------------------------


async def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    # The portable build's line: a native build can crash on this CPU or another.
    portable = r'CMAKE_ARGS="-DGGML_NATIVE=OFF.*" pip install --no-cache-dir "victor-ai\[local\]"'
    with pytest.raises(ConfigurationError, match=portable):
        await Agent.create(provider="local")


async def test_missing_model_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        await Agent.create(provider="local", model=str(missing))
    assert str(missing) in str(info.value)


async def test_a_file_that_is_not_gguf_names_the_path(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ConfigurationError, match="not a GGUF file") as info:
        await Agent.create(provider="local", model=str(fake))
    assert str(fake) in str(info.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bogus": 1}, "unknown setting.*bogus"),
        ({"n_thread": 2}, r"Did you mean 'n_threads'\?[^{]*$"),
        ({"extra_body": {"top_k": 5}}, "unknown setting.*extra_body"),
        ({"tool_choice": "always"}, "tool_choice='always' is invalid"),
        ({"base_url": "http://127.0.0.1:8080"}, "does not apply to the local provider"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        LocalProvider(**settings)


def test_repr_shows_model_and_no_url():
    assert repr(LocalProvider()) == "LocalProvider(model='gemma3-270m', base_url=None)"


def test_bundled_model_is_assembled_once_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    results: list[object] = []

    def assemble():
        results.append(bundled_model_path())

    # Two at once: the file lock makes one wait for the other's assembly.
    threads = [threading.Thread(target=assemble) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (path,) = set(results)
    assert path.parent == tmp_path / "models"
    assert path.read_bytes()[:4] == GGUF_MAGIC
    assert [p.name for p in path.parent.iterdir() if "partial" in p.name] == []
    mtime = path.stat().st_mtime_ns
    assert bundled_model_path() == path and path.stat().st_mtime_ns == mtime  # reused

    path.write_bytes(b"GGUF truncated")  # a damaged file is detected and replaced
    assert bundled_model_path().stat().st_size > 100_000_000


def test_tool_schema_rejects_malformed_replies():
    schema = tool_schema([ToolSpec(name="add", parameters=add.spec().parameters)])
    jsonschema.validate({"tool": "add", "arguments": {"a": 1, "b": 2}}, schema)
    jsonschema.validate({"answer": "3"}, schema)
    for bad in ({"tool": "sub", "arguments": {}}, {"tool": "add"}, {"text": "3"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.timeout(240)  # assembling 250 MB, a child process and two loads, on a busy machine
def test_a_script_s_first_use_says_what_it_is_doing(tmp_path):
    """Not only the CLI: a script (the README's quickstart) or a notebook cell, where nobody
    configured logging, says once why its first run is silent for some seconds."""
    import os
    import subprocess
    from pathlib import Path

    script = (
        "import asyncio\nfrom victor import Agent\n"
        "agent = Agent(provider='local', temperature=0, max_tokens=4)\n"
        f"print(asyncio.run(agent.run({FRANCE!r})))\n"
    )
    env = {**os.environ, "VICTOR_HOME": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    env.pop("VICTOR_LOG_LEVEL", None)

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=200
        )
        assert done.returncode == 0 and "Paris" in done.stdout, done.stderr
        return done.stderr

    [line] = run().splitlines()
    assert line.startswith("first use of the bundled model: assembling gemma3-270m (")
    assert f"into {tmp_path / 'models'}, then trying it once in a child process" in line
    assert run() == ""
