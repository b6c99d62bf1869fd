"""Provider facts live on the provider: the tool names a run may offer, the name telemetry
reports, in-process or remote, and the one function where a provider maps its SDK's errors.
The loop and telemetry ask the provider; they name none."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel

import victor
from victor import Agent, ConfigurationError
from victor.providers import available_providers
from victor.testing import ScriptedProvider
from victor.tools import tool

PACKAGE = Path(victor.__file__).parent


class City(BaseModel):
    name: str


@tool(name="City")
def city_tool(name: str) -> str:
    """A tool that shares the output type's name."""
    return name


async def test_the_loop_asks_the_provider_which_tool_names_a_typed_run_may_offer():
    class Lenient(ScriptedProvider):
        def check_tools(self, names, output):
            """This provider's typed answers are no tool call: any names will do."""

    class Strict(ScriptedProvider):
        def check_tools(self, names, output):
            raise ConfigurationError(f"{sorted(names)} and {output.name}: not with this one")

    agent = await Agent.create(provider=Lenient(['{"name": "Paris"}']), tools=[city_tool])
    assert await agent.run("Capital?", output_type=City) == City(name="Paris")
    agent = await Agent.create(provider=Strict(['{"name": "Paris"}']), tools=[city_tool])
    with pytest.raises(ConfigurationError, match=r"\['City'\] and City: not with this one"):
        await agent.run("Capital?", output_type=City)
    # The default: the strictest provider's rule, so a run set up with one works with all.
    agent = await Agent.create(provider=ScriptedProvider(["{}"]), tools=[city_tool])
    with pytest.raises(ConfigurationError, match="'City' is also the name of a tool"):
        await agent.run("Capital?", output_type=City)


def test_each_provider_states_its_facts_and_yours_have_defaults():
    from victor.providers.anthropic import AnthropicProvider
    from victor.providers.base import Provider
    from victor.providers.local.provider import LocalProvider
    from victor.providers.ollama import OllamaProvider
    from victor.providers.openai import OpenAIProvider

    assert [p.system for p in (AnthropicProvider, OpenAIProvider, OllamaProvider)] == [
        "anthropic",
        "openai",
        "ollama",
    ]
    assert LocalProvider.in_process and ScriptedProvider.in_process
    assert not any(p.in_process for p in (AnthropicProvider, OpenAIProvider, OllamaProvider))

    class Yours(Provider):
        name = "yours"

    class Compatible(OpenAIProvider):  # an OpenAI-compatible server under its own name
        name = "compatible"

    assert (Yours.system, Yours.in_process) == ("yours", False)
    assert Compatible.system == "compatible"


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }


@pytest.mark.parametrize("module", ["core/loop.py", "telemetry.py"])
def test_the_loop_and_telemetry_name_no_provider(module):
    named = _string_constants(PACKAGE / module) & set(available_providers())
    assert not named, f"{module} names providers {sorted(named)}: ask the provider instead"


#: What a provider module may catch outside its mapping function: its own errors, and
#: builtins that are not a library's (a failure after a whole answer is caught as Exception).
_NOT_SDK = {"Exception", "ValueError", "AttributeError", "ConfigurationError", "ProviderError"}


@pytest.mark.parametrize("module", ["anthropic.py", "openai.py", "ollama.py"])
def test_sdk_errors_are_mapped_in_one_function(module):
    """Each provider maps its SDK's errors to ``ProviderError`` in ``_map_error``; nothing
    else in its module catches an SDK exception."""
    tree = ast.parse((PACKAGE / "providers" / module).read_text(encoding="utf-8"))
    mapping = [n for n in ast.walk(tree) if getattr(n, "name", None) == "_map_error"]
    inside = {id(n) for function in mapping for n in ast.walk(function)}
    caught = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None and id(node) not in inside:
            types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            names = {ast.unparse(t).rsplit(".", 1)[-1] for t in types}
            caught += [f"line {node.lineno}: {n}" for n in sorted(names - _NOT_SDK)]
    assert mapping and not caught, f"{module} catches SDK errors outside _map_error: {caught}"
