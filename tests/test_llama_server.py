"""The OpenAI provider against a real OpenAI-compatible model server: llama-cpp-python's
own ``llama_cpp.server`` on 127.0.0.1, serving the bundled Gemma 3 270M model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from victor import Agent
from victor.providers.local.model import bundled_model_path

MODEL = "gemma3-270m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """One server for the module: its base URL, once it answers."""
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
        "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        # A base model has no chat template; the Alpaca layout gets sensible replies from it.
        "--chat_format", "alpaca",
    ]  # fmt: skip
    # A file, not a pipe: the server logs ~150 kB while loading, more than a pipe holds.
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    output = log.open("w")
    proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 60 s")
            time.sleep(0.2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()


async def test_openai_provider_runs_against_llama_server(llama_server):
    agent = await Agent.create(
        provider="openai", base_url=llama_server, model=MODEL, temperature=0.0, max_tokens=12
    )
    answer = await agent.run("What is the capital of France?")
    run = agent.last_run
    assert "Paris" in answer
    assert run.provider == "openai" and run.model == MODEL
    assert run.usage.input_tokens > 5 and 0 < run.usage.output_tokens <= 12
    await agent.cleanup()


async def test_openai_provider_streams_from_llama_server(llama_server):
    agent = await Agent.create(
        provider="openai", base_url=llama_server, model=MODEL, temperature=0.0, max_tokens=12
    )
    deltas = [text async for text in agent.astream("Count from one to ten.")]
    assert len(deltas) >= 2 and "".join(deltas).strip()  # token by token over SSE
    assert agent.last_run.content == "".join(deltas)
    assert agent.last_run.usage.output_tokens <= 12
    await agent.cleanup()
