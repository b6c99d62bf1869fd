"""Shared test setup: loopback protocol servers, no real model requests, a clean event bus."""

from __future__ import annotations

import pytest

from victor.core.events import EventBus
from victor.testing import block_requests

pytest_plugins = ["tests.servers.fixtures", "tests.must_run"]

# Tests talk to servers on 127.0.0.1 or to victor.testing providers, never to a real API.
block_requests()


@pytest.fixture(autouse=True)
def _fresh_default_bus():
    """Each test gets an empty default EventBus, so subscriptions never leak between tests."""
    previous, EventBus._default = EventBus._default, None
    yield
    EventBus._default = previous


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch):
    """Tests must not pick up a developer's real keys, hosts or defaults."""
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OLLAMA_HOST",
        "VICTOR_PROVIDER",
        "VICTOR_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
