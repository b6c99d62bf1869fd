"""Tools core: BaseTool in the seed's form, @tool schemas from type hints, the registry."""

from __future__ import annotations

from typing import Literal

import pytest

from victor import ToolError
from victor.tools import BaseTool, ToolRegistry, ToolResult, tool


class MyTool(BaseTool):
    name = "my_tool"
    description = "Does something useful"

    parameters = {
        "input": {
            "type": "string",
            "description": "Input to process",
            "required": True,
        }
    }

    async def execute(self, **kwargs) -> ToolResult:
        return ToolResult(success=True, output=kwargs["input"][::-1])


def test_short_parameter_form_becomes_json_schema():
    assert MyTool().schema == {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "Input to process"}},
        "required": ["input"],
    }


async def test_run_validates_then_executes():
    assert (await MyTool().run({"input": "abc"})).output == "cba"
    failed = await MyTool().run({"input": 3})
    assert not failed.success and "input: 3 is not of type 'string'" in failed.error


def test_tool_decorator_reads_hints_defaults_and_docstring():
    @tool
    def search(query: str, limit: int = 10, mode: Literal["fast", "full"] = "fast") -> list[str]:
        """Search the code base.

        Args:
            query: A regular expression.
            limit: At most this many hits.
        """
        return []

    schema = search.spec().parameters
    assert search.name == "search" and search.description == "Search the code base."
    assert schema["required"] == ["query"]
    assert schema["properties"]["query"] == {
        "type": "string",
        "description": "A regular expression.",
    }
    assert schema["properties"]["limit"]["default"] == 10
    assert schema["properties"]["mode"]["enum"] == ["fast", "full"]


async def test_tool_decorator_validates_and_coerces_with_pydantic():
    @tool(name="scale", description="Multiply")
    async def multiply(x: float, factor: int = 2) -> float:
        return x * factor

    assert multiply.name == "scale"
    assert (await multiply.run({"x": "1.5"})).output == 3.0
    bad = await multiply.run({"x": 1, "extra": True})
    assert not bad.success and "extra" in bad.error
    assert await multiply(2.0, 3) == 6.0  # still callable as the function


def test_tool_rejects_var_args():
    with pytest.raises(ToolError, match="args"):

        @tool
        def bad(*args: int) -> None: ...


def test_registry_register_resolve_toolsets_and_errors():
    reg = ToolRegistry()
    reg.register(MyTool)  # a class is instantiated
    reg.register_toolset("text", ["my_tool"])
    assert reg.list() == ["my_tool"] and "text" in reg and len(reg) == 1
    assert [t.name for t in reg.resolve(["text", "my_tool"])] == ["my_tool"]
    with pytest.raises(ToolError, match="Did you mean 'my_tool'"):
        reg.resolve(["my_tol"])
    with pytest.raises(ToolError, match="invalid"):
        reg.register(type("Nameless", (BaseTool,), {})())


def test_tool_result_text_for_the_model():
    assert ToolResult(success=True, output={"a": 1}).to_text() == '{"a": 1}'
    assert ToolResult.fail("nope").to_text() == "Error: nope"
