"""Every ``Agent.create``/``Agent(...)`` setting is checked at construction.

The table of bad values below must cover every setting victor declares (``SETTINGS`` in
``victor.core.agent``, ``PROVIDER_SETTINGS`` and ``PASS_THROUGH_SETTINGS`` in
``victor.providers.base``), and the declarations must cover every parameter of
``Agent.__init__`` and ``Provider.__init__``: a new setting that is not declared, or has
no bad values here, fails these tests before it can skip validation.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest

from victor import Agent, AgentTeam, ConfigurationError, VictorError
from victor.config import Profile
from victor.core.events import EventBus
from victor.core.settings import SETTINGS
from victor.providers.base import Provider
from victor.providers.settings import PASS_THROUGH_SETTINGS, PROVIDER_SETTINGS
from victor.testing import ScriptedProvider
from victor.tools import Workspace

from .servers.replies import Text

#: For every setting: values that must be refused, each for a wrong type or a bad range.
BAD: dict[str, list[object]] = {
    "role": [123, ["reviewer"]],
    "provider": [123, object(), "antropic"],
    "model": [123, ["gpt-4o"]],
    "tools": ["read_file", 42, {"read_file": True}],
    "name": [42, b"bytes"],
    "system_prompt": [42, ["Be brief."]],
    "temperature": [-0.1, 2.5, "0.7", True, math.nan, None],
    "max_tokens": [0, -1, 1.5, "4096", True, None],
    "max_iterations": [0, -1, 2.5, "10", True, None],
    "tool_timeout": [0, -5, "soon", True, math.inf, math.nan],
    "bus": ["default", 1],
    "workspace": [123, 1.5, ["."]],
    "approval": ["sometimes", 1],
    "max_tool_errors": [-1, 1.5, "3", True],
    "output_type": ["int", 42],
    "output_retries": [-1, 1.5, "2", True, None],
    "api_key": [123, b"sk-key"],
    "base_url": [123, ["http://127.0.0.1"]],
    "timeout": [0, -1, "30", True, math.nan],
    "max_retries": [-1, 1.5, "2", True, None],
    "extra_body": [[("top_k", 40)], "top_k=40"],
    "extra_headers": ["x-trace: 1", 1],
    "extra_query": ["a=b", 1],
}

#: For every setting: values that must be accepted.
GOOD: dict[str, list[object]] = {
    "role": ["reviewer", None],
    "provider": ["openai", None],
    "model": ["gpt-4o-mini", None],
    "tools": [["read_file"], ("read_file", "list_files"), [], None],
    "name": ["alice", None],
    "system_prompt": ["Be brief.", None],
    "temperature": [0, 0.0, 1, 0.3, 1.5, 2],
    "max_tokens": [1, 8192],
    "max_iterations": [1, 50],
    "tool_timeout": [0.5, 30, None],
    "bus": [EventBus(), None],
    "workspace": [".", Path("."), None],
    "approval": ["auto", "never", None, lambda request: True],
    "max_tool_errors": [0, 5, None],
    "output_type": [int, list[str], None],
    "output_retries": [0, 3],
    "api_key": ["sk-test", None],
    "base_url": ["http://127.0.0.1:8000/v1", None],
    "timeout": [0.5, 30, None],
    "max_retries": [0, 5],
    "extra_body": [{"top_k": 40}, None],
    "extra_headers": [{"x-trace": "1"}],
    "extra_query": [{"api-version": "1"}],
}

ALL_SETTINGS = {**SETTINGS, **PROVIDER_SETTINGS, **PASS_THROUGH_SETTINGS}


def _parameters(function) -> set[str]:
    return {
        name
        for name, p in inspect.signature(function).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def test_every_parameter_is_declared_in_one_place():
    assert _parameters(Agent.__init__) == set(SETTINGS)
    assert _parameters(Agent.create) <= set(SETTINGS)
    assert _parameters(Provider.__init__) - {"model"} == set(PROVIDER_SETTINGS)


def test_every_declared_setting_has_bad_and_good_values_here():
    assert set(BAD) == set(ALL_SETTINGS), "add bad values for the new setting to BAD"
    assert set(GOOD) == set(ALL_SETTINGS), "add good values for the new setting to GOOD"


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in BAD.items() for value in values],
    ids=lambda item: item if isinstance(item, str) else repr(item)[:20],
)
async def test_a_bad_value_is_refused_at_once_naming_the_setting(name, value):
    settings = {"provider": "openai", name: value}  # openai: takes the pass-through dicts
    with pytest.raises(ConfigurationError) as refused:
        await Agent.create(**settings)
    message = str(refused.value)
    if name == "provider" and isinstance(value, str):
        assert "Did you mean 'anthropic'" in message
        return
    assert name in message
    if name == "api_key":
        assert str(value) not in message  # never echo what may be a key
    else:
        assert repr(value)[:40] in message  # the value, so the user sees what was wrong


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in GOOD.items() for value in values],
    ids=lambda item: item if isinstance(item, str) else repr(item)[:20],
)
async def test_a_good_value_is_accepted(name, value):
    agent = await Agent.create(**{"provider": "openai", name: value})
    await agent.cleanup()


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({"sytem_prompt": "Be brief."}, "Did you mean 'system_prompt'?"),
        ({"tool": ["read_file"]}, "Did you mean 'tools'?"),
        ({"top_pp": 0.9}, "Did you mean 'top_p'?"),
        ({"max_iteration": 3}, "Did you mean 'max_iterations'?"),
    ],
)
@pytest.mark.parametrize("provider", ["anthropic", "openai", "ollama"])
async def test_a_misspelt_setting_is_refused_with_the_closest_name(provider, settings, hint):
    with pytest.raises(ConfigurationError, match="unknown setting") as refused:
        await Agent.create(provider=provider, **settings)
    assert hint in str(refused.value)
    assert "extra_body=" in str(refused.value)  # how to send an unlisted field on purpose


async def test_with_a_provider_instance_options_are_refused_and_typos_named():
    with pytest.raises(ConfigurationError, match="Did you mean 'system_prompt'") as refused:
        await Agent.create(provider=ScriptedProvider(["hi"]), sytem_prompt="Be brief.")
    assert "ScriptedProvider(..., sytem_prompt=...)" in str(refused.value)


def test_the_error_is_a_victor_error():
    assert issubclass(ConfigurationError, VictorError)


def test_typos_in_profiles_and_team_provider_options_are_refused_too():
    with pytest.raises(ConfigurationError, match="Did you mean 'top_p'"):
        Agent(**Profile(name="p", provider="openai", options={"top_pp": 0.9}).options)
    with pytest.raises(ConfigurationError, match="Did you mean 'top_p'"):
        AgentTeam.pipeline(["writer"], provider="openai", provider_options={"top_pp": 0.9})


async def test_api_parameters_and_extra_body_reach_the_request(openai_server):
    openai_server.script(Text("ok"))
    agent = await Agent.create(
        provider="openai",
        base_url=openai_server.url + "/v1",
        api_key="sk-test",
        top_p=0.5,
        extra_body={"repetition_penalty": 1.1},
    )
    assert await agent.run("hi") == "ok"
    body = openai_server.requests[-1].body
    assert body["top_p"] == 0.5 and body["repetition_penalty"] == 1.1
    await agent.cleanup()


async def test_ollama_extra_body_fields_are_top_level(ollama_server):
    ollama_server.script(Text("ok"))
    agent = await Agent.create(
        provider="ollama", base_url=ollama_server.url, top_k=5, extra_body={"keep_alive": "1m"}
    )
    assert await agent.run("hi") == "ok"
    body = ollama_server.requests[-1].body
    assert body["keep_alive"] == "1m" and body["options"]["top_k"] == 5
    assert "extra_body" not in body
    await agent.cleanup()


def test_workspace_settings_are_checked_too(tmp_path):
    from victor import ToolError

    for kwargs in ({"timeout": "soon"}, {"timeout": -1}, {"max_output": "big"}):
        with pytest.raises(ToolError, match="invalid"):
            Workspace(tmp_path, **kwargs)
    with pytest.raises(ToolError, match="123"):
        Workspace(123)
