"""Configuration: built-in and file profiles, environment settings, logging level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from victor import Agent
from victor.config import (
    Profile,
    configure_logging,
    list_profiles,
    load_profile,
    profiles_path,
    settings,
    victor_home,
)
from victor.errors import ConfigurationError

ENV_VARS = ("VICTOR_PROVIDER", "VICTOR_MODEL", "VICTOR_LOG_LEVEL")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Each test gets its own VICTOR_HOME and none of the developer's VICTOR_* settings."""
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def victor_logger():
    """The victor logger, restored to its original level and handlers afterwards."""
    logger = logging.getLogger("victor")
    level, handlers = logger.level, list(logger.handlers)
    logger.handlers.clear()
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def write_profiles(home: Path, text: str) -> Path:
    path = home / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_home_and_profiles_path(isolated_env, monkeypatch):
    assert victor_home() == isolated_env
    assert profiles_path() == isolated_env / "profiles.toml"
    monkeypatch.delenv("VICTOR_HOME")
    assert victor_home() == Path.home() / ".victor"


def test_builtin_profiles():
    profiles = list_profiles()
    assert set(profiles) == {"default", "development", "production", "local", "deterministic"}
    assert all(isinstance(p, Profile) and p.name == name for name, p in profiles.items())

    production = load_profile("production")
    assert (production.provider, production.model, production.temperature) == (
        "anthropic",
        "claude-sonnet-4-20250514",
        0.3,
    )
    development = load_profile("development")
    assert (development.provider, development.temperature) == ("ollama", 0.7)
    assert load_profile("local").provider == "local"
    assert load_profile("deterministic").temperature == 0.0
    default = load_profile("default")
    assert (default.provider, default.model, default.max_tokens) == ("ollama", None, 4096)
    assert default.tools == [] and default.options == {}


def test_default_profile_follows_environment(monkeypatch):
    monkeypatch.setenv("VICTOR_PROVIDER", "Anthropic")
    monkeypatch.setenv("VICTOR_MODEL", "claude-3-5-haiku-latest")
    default = load_profile("default")
    assert (default.provider, default.model) == ("anthropic", "claude-3-5-haiku-latest")


def test_file_overrides_and_extends_builtins(isolated_env):
    write_profiles(
        isolated_env,
        """
[profiles.production]
model = "claude-opus-4-20250514"

[profiles.reviewer]
provider = "openai"
model = "gpt-4o-mini"
temperature = 0.2
max_tokens = 1024
system_prompt = "You review Python code."
tools = ["read_file", "git_diff"]
options = { base_url = "http://127.0.0.1:8000/v1", top_p = 0.9 }
""",
    )
    production = load_profile("production")
    # Only the field the file sets changes; the rest stays built in.
    assert production.model == "claude-opus-4-20250514"
    assert (production.provider, production.temperature) == ("anthropic", 0.3)

    reviewer = load_profile("reviewer")
    assert reviewer == Profile(
        name="reviewer",
        provider="openai",
        model="gpt-4o-mini",
        temperature=0.2,
        max_tokens=1024,
        system_prompt="You review Python code.",
        tools=["read_file", "git_diff"],
        options={"base_url": "http://127.0.0.1:8000/v1", "top_p": 0.9},
    )
    assert set(list_profiles()) >= {"default", "production", "reviewer"}


def test_malformed_file_names_path_and_toml_error(isolated_env):
    path = write_profiles(isolated_env, "[profiles.broken\nprovider = 'x'\n")
    with pytest.raises(ConfigurationError) as info:
        load_profile("default")
    message = str(info.value)
    assert str(path) in message and "line 1" in message


def test_profile_that_is_not_a_table(isolated_env):
    write_profiles(isolated_env, 'profiles = { fast = "yes" }\n')
    with pytest.raises(ConfigurationError, match=r"profiles\.fast must be a table"):
        list_profiles()


def test_bad_temperature_in_file_names_profile_field_and_path(isolated_env):
    path = write_profiles(isolated_env, "[profiles.hot]\ntemperature = -1.5\n")
    with pytest.raises(ConfigurationError) as info:
        load_profile("hot")
    message = str(info.value)
    assert "'hot'" in message and "'temperature'" in message and str(path) in message
    assert "-1.5" in message


async def test_the_temperature_range_is_the_providers(isolated_env):
    write_profiles(
        isolated_env,
        "[profiles.warm]\nprovider = 'openai'\ntemperature = 1.5\n"
        "[profiles.hot]\nprovider = 'anthropic'\ntemperature = 1.5\n",
    )
    assert (await Agent.from_profile_name("warm")).provider.temperature == 1.5
    with pytest.raises(ConfigurationError, match="1.5 is invalid: anthropic takes 0.0 to 1.0"):
        await Agent.from_profile_name("hot")


def test_unknown_field_in_file_suggests_the_right_one(isolated_env):
    write_profiles(isolated_env, "[profiles.typo]\ntemprature = 0.1\n")
    with pytest.raises(ConfigurationError, match=r"'temprature'.*did you mean 'temperature'"):
        load_profile("typo")


def test_unknown_profile_lists_names_and_file():
    with pytest.raises(ConfigurationError) as info:
        load_profile("developement")
    message = str(info.value)
    assert "Did you mean 'development'" in message
    for name in ("default", "development", "production", "local", "deterministic"):
        assert name in message
    assert str(profiles_path()) in message and "[profiles.developement]" in message


def test_profile_validation_errors_are_configuration_errors():
    with pytest.raises(ConfigurationError, match=r"'mine'.*'temperature'"):
        Profile(name="mine", temperature=-0.1)
    with pytest.raises(ConfigurationError, match=r"'mine'.*'max_tokens'"):
        Profile(name="mine", max_tokens=0)
    profile = Profile(name="mine")
    with pytest.raises(ConfigurationError, match="'temperature'"):
        profile.temperature = -2
    assert profile.temperature == 0.7


def test_settings_read_from_environment_each_call(isolated_env, monkeypatch):
    first = settings()
    assert (first.provider, first.model, first.log_level, first.home) == (
        "ollama",
        None,
        "WARNING",
        isolated_env,
    )
    monkeypatch.setenv("VICTOR_PROVIDER", "openai")
    monkeypatch.setenv("VICTOR_MODEL", "gpt-4o")
    monkeypatch.setenv("VICTOR_LOG_LEVEL", "debug")
    second = settings()
    assert (second.provider, second.model, second.log_level) == ("openai", "gpt-4o", "DEBUG")
    with pytest.raises(AttributeError):
        second.provider = "x"  # frozen


def test_configure_logging_from_env_adds_one_handler(monkeypatch, victor_logger):
    monkeypatch.setenv("VICTOR_LOG_LEVEL", "DEBUG")
    assert configure_logging() is victor_logger
    assert victor_logger.level == logging.DEBUG
    assert len(victor_logger.handlers) == 1

    monkeypatch.setenv("VICTOR_LOG_LEVEL", "error")
    configure_logging()
    assert victor_logger.level == logging.ERROR
    assert len(victor_logger.handlers) == 1  # not duplicated


def test_configure_logging_keeps_existing_handler(victor_logger):
    mine = logging.NullHandler()
    victor_logger.addHandler(mine)
    configure_logging("info")
    assert victor_logger.handlers == [mine]
    assert victor_logger.level == logging.INFO


def test_invalid_log_level(monkeypatch, victor_logger):
    monkeypatch.setenv("VICTOR_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigurationError, match=r"'LOUD'.*DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        configure_logging()
    assert victor_logger.handlers == []


async def test_victor_log_level_is_applied_when_the_first_agent_is_made(monkeypatch):
    import victor.core.settings
    from victor import Agent
    from victor.testing import ScriptedProvider

    monkeypatch.setenv("VICTOR_LOG_LEVEL", "DEBUG")
    monkeypatch.setattr(victor.core.settings, "_log_level_applied", False)
    victor_logger = logging.getLogger("victor")
    monkeypatch.setattr(victor_logger, "level", logging.NOTSET)
    monkeypatch.setattr(victor_logger, "handlers", [])
    Agent(provider=ScriptedProvider([]))
    assert victor_logger.level == logging.DEBUG
