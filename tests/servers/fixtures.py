"""Pytest fixtures yielding a started fake server per test; load with
``pytest_plugins = ["tests.servers.fixtures"]`` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic import AnthropicServer
from .ollama import OllamaServer
from .openai import OpenAIServer


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as server:
        yield server


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server
