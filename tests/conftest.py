"""Shared test setup: loopback protocol servers, no real model requests, a clean event bus."""

from __future__ import annotations

import sys

import pytest

from victor.core.events import EventBus
from victor.testing import block_requests

pytest_plugins = ["tests.servers.fixtures", "tests.must_run"]

# Tests talk to servers on 127.0.0.1 or to victor.testing providers, never to a real API.
block_requests()


@pytest.fixture(scope="session", autouse=True)
def _cassettes_hold_no_secrets():
    """After the suite: every cassette file it wrote is scanned for secrets."""
    yield
    store = sys.modules.get("victor.cassette.store")
    if store is not None:
        from tests.cassette_scan import secrets_in

        found = [
            line for path in sorted(store.written) if path.exists() for line in secrets_in(path)
        ]
        assert not found, "secrets in cassettes:\n" + "\n".join(found)


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
