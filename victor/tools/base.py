"""BaseTool, ToolResult and the ``@tool`` decorator: what a tool is and how it is called."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, ClassVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..core.messages import ToolResult, ToolSpec
from ..errors import ToolError

__all__ = ["BaseTool", "ClientTool", "ToolResult", "FunctionTool", "tool"]


class BaseTool:
    """A tool a model can call. Subclasses set ``name``, ``description``, ``parameters``
    and implement ``async execute(**kwargs) -> ToolResult``.

    ``parameters`` takes the short form ``{"arg": {"type": "string", "required": True}}``
    or a full JSON schema (``{"type": "object", "properties": ...}``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    #: Seconds a call may take before it is cancelled and reported as an error.
    timeout: ClassVar[float | None] = None
    #: Whether a model's call must be approved first (see ``victor.tools.approval``):
    #: a bool, or a callable on the validated arguments.
    requires_approval: ClassVar[bool | Callable[[dict[str, Any]], bool]] = False
    #: Whether the caller runs this tool, not the agent (``ClientTool``): a model's call
    #: to it ends the run, and the caller sends the result with the next one.
    client_side: ClassVar[bool] = False

    async def execute(self, **kwargs: Any) -> ToolResult:
        raise NotImplementedError(f"{type(self).__name__} must implement async execute(**kwargs)")

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments object."""
        return to_json_schema(self.parameters)

    def spec(self) -> ToolSpec:
        """How this tool is described to a model."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.schema)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check ``arguments`` against the schema; raise ``ToolError`` saying what is wrong."""
        validator = self.__dict__.get("_validator")
        if validator is None:
            import jsonschema  # loaded on first validation: keeps `import victor` light

            validator = jsonschema.validators.validator_for(self.schema)(self.schema)
            self.__dict__["_validator"] = validator
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            details = "; ".join(
                f"{'.'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors
            )
            raise ToolError(f"invalid arguments for tool {self.name!r}: {details}")
        return arguments

    async def run(self, arguments: dict[str, Any], *, timeout: float | None = None) -> ToolResult:
        """Validate and execute; every failure becomes a ``ToolResult`` the model can read."""
        try:
            valid = self.validate(arguments)
        except ToolError as exc:
            return ToolResult.fail(str(exc))
        import asyncio  # imported when used: see victor/__init__.py

        limit = self.timeout if self.timeout is not None else timeout
        try:
            result = await asyncio.wait_for(self.execute(**valid), limit)
        except asyncio.TimeoutError:
            return ToolResult.fail(f"tool {self.name!r} timed out after {limit} s")
        except Exception as exc:  # the model gets to read and react to the failure
            return ToolResult.fail(f"{type(exc).__name__}: {exc}")
        return result if isinstance(result, ToolResult) else ToolResult(success=True, output=result)

    def __repr__(self) -> str:
        return f"<tool {self.name}: {self.description.splitlines()[0] if self.description else ''}>"


class ClientTool(BaseTool):
    """A tool the caller runs, described by name, description and JSON schema: an AG-UI
    front end's tools (a confirmation dialog, a page action). When the model calls one,
    ``events()`` yields its ``ToolCallStarted`` and the run ends there; the caller runs it
    and continues the conversation with the result (``events(None, remember=True)`` after
    appending ``Message.tool(call, result)`` to ``agent.history``).
    """

    client_side = True

    def __init__(self, name: str, description: str = "", parameters: dict[str, Any] | None = None):
        self.name = name  # type: ignore[misc]  # per instance: each front end names its own
        self.description = description  # type: ignore[misc]
        self.parameters = parameters or {"type": "object", "properties": {}}  # type: ignore[misc]

    async def execute(self, **kwargs: Any) -> ToolResult:
        return ToolResult.fail(f"{self.name!r} is run by the caller, not by the agent")

    def __repr__(self) -> str:
        return f"ClientTool({self.name!r})"


def to_json_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """Turn the short parameter form into a JSON schema (a full schema passes through)."""
    if parameters.get("type") == "object" or "properties" in parameters:
        return parameters
    properties = {
        name: {k: v for k, v in spec.items() if k != "required"}
        for name, spec in parameters.items()
    }
    required = [name for name, spec in parameters.items() if spec.get("required")]
    return {"type": "object", "properties": properties, "required": required}


class FunctionTool(BaseTool):
    """A tool made from a Python function by ``@tool``; arguments validated by pydantic."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_approval: bool | Callable[[dict[str, Any]], bool] = False,
        timeout: float | None = None,
    ):
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.fn = fn
        self.name = name or fn.__name__  # type: ignore[misc]
        self.description = description or summary  # type: ignore[misc]
        self.requires_approval = requires_approval  # type: ignore[misc]
        self.timeout = timeout  # type: ignore[misc]
        self._model = _arguments_model(fn, arg_docs)
        self.__doc__ = fn.__doc__

    @property
    def schema(self) -> dict[str, Any]:
        schema = self._model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            model = self._model.model_validate(arguments)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for tool {self.name!r}: {details}") from None
        return {field: getattr(model, field) for field in type(model).model_fields}

    async def execute(self, **kwargs: Any) -> ToolResult:
        if inspect.iscoroutinefunction(self.fn):
            output = await self.fn(**kwargs)
        else:  # a plain function may block (files, subprocesses): keep it off the event loop
            from asyncio import to_thread  # imported when used: see victor/__init__.py

            output = await to_thread(self.fn, **kwargs)
        return output if isinstance(output, ToolResult) else ToolResult(success=True, output=output)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as if it were not decorated."""
        return self.fn(*args, **kwargs)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool | Callable[[dict[str, Any]], bool] = False,
    timeout: float | None = None,
) -> Any:
    """Make a tool from a function: the schema comes from its type hints, the description
    and argument help from its docstring (Google style ``Args:``)::

        @tool
        async def add(a: int, b: int) -> int:
            '''Add two integers.

            Args:
                a: The first number.
                b: The second number.
            '''
            return a + b

    ``requires_approval`` (a bool, or a callable on the validated arguments) makes a
    model's calls wait for the agent's approval policy; ``timeout`` bounds each call.
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            f,
            name=name,
            description=description,
            requires_approval=requires_approval,
            timeout=timeout,
        )

    return wrap(fn) if fn is not None else wrap


def _arguments_model(fn: Callable[..., Any], arg_docs: dict[str, str]) -> type[BaseModel]:
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolError(f"@tool {fn.__name__}: *args/**kwargs cannot be described to a model")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name)))
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{fn.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary paragraph and the ``Args:`` descriptions of a Google-style docstring."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    lines = doc.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip():
        summary_lines.append(lines[i].strip())
        i += 1
    current: str | None = None
    in_args = False
    for line in lines[i:]:
        if _ARGS_HEADER.match(line):
            in_args, current = True, None
            continue
        if in_args:
            if line.strip() and not line.startswith((" ", "\t")):
                in_args = False  # the next section starts
                continue
            match = _ARG_LINE.match(line)
            if match and (current is None or len(line) - len(line.lstrip()) <= 4):
                current = match.group(1).lstrip("*")
                args[current] = match.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return " ".join(summary_lines), args
