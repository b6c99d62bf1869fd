"""Typed results: an ``output_type`` as the JSON schema a provider asks for, validation of
the answer, the feedback a retry sends, and partial objects while the answer streams.

    city = await agent.run("Capital of France?", output_type=City)

Any type pydantic validates works: a model, a dataclass, a ``TypedDict``, ``int``,
``list[str]``, ``Literal["yes", "no"]``. Providers are asked for a JSON *object*, so a
type whose schema is not an object with properties is wrapped: the model answers
``{"result": ...}`` and the run returns the inner value. ``str`` means plain text.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import ConfigurationError
from .messages import Message, OutputSchema

__all__ = [
    "OutputType",
    "output_type_for",
    "strict_schema",
    "output_instructions",
    "prompted",
    "json_object_in",
]

#: Where a non-object answer goes inside the object the model writes.
WRAPPER_KEY = "result"
#: How many of pydantic's errors the retry message lists (the rest are counted).
ERRORS_SHOWN = 8

_NUMBER_END = frozenset("0123456789.-+")
_NAME = re.compile(r"[^A-Za-z0-9_-]")
_FENCED = re.compile(r"\A```[\w-]*\s*\n(.*?)\n?```\Z", re.DOTALL)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class OutputType:
    """An output type ready for a run: what to ask for, how to check and read the answer."""

    #: The type the caller asked for.
    type: Any
    #: What the provider sends (name, description, JSON schema, strictness).
    schema: OutputSchema
    #: Answers that come back after an invalid one, at most.
    retries: int
    #: Whether the answer is ``{"result": ...}`` around the value.
    wrapped: bool
    _adapter: TypeAdapter[Any]

    def validate(self, text: str, *, in_prose: bool = False) -> Any:
        """The answer as an object of the output type; ``ValidationError`` if it is not one.

        ``in_prose``: the answer was asked for in words, so its JSON may sit in prose or a
        code fence; the first JSON object in it is read when the whole text is not one.
        """
        try:
            value = self._adapter.validate_json(_unfence(text))
        except ValidationError:
            found = json_object_in(text) if in_prose else None
            if found is None:
                raise
            value = self._adapter.validate_json(found)
        return value[WRAPPER_KEY] if self.wrapped else value

    def partial(self, text: str) -> Any | None:
        """The object an incomplete answer already describes, or None while it is not valid.

        Uses pydantic's partial JSON validation: an unfinished last string counts as what
        it says so far; a model is valid once every required field has begun. A number at
        the very end may be incomplete, so no object is made until something follows it.
        """
        text = _unfence(text).rstrip()
        if text[-1:] in _NUMBER_END:
            return None  # a number may be cut short ("21" of "2100"): wait for what follows
        try:
            value = self._adapter.validate_json(text, experimental_allow_partial="trailing-strings")
        except ValidationError:
            return None
        if self.wrapped:
            return value.get(WRAPPER_KEY) if WRAPPER_KEY in value else None
        return value

    def retry_message(self, error: ValidationError) -> str:
        """What the model is told when its answer was invalid: each error, and the ask."""
        ask = "Answer again with only the corrected JSON object."
        return f"Your answer {self.problem(error)}\n{ask}"

    def problem(self, error: ValidationError) -> str:
        """Why an answer is not a value of the type: the schema's name, then each error."""
        return (
            f"does not match the required {self.schema.name} schema:\n"
            f"{describe_errors(error, wrapped=self.wrapped)}"
        )

    def to_data(self, value: Any) -> Any:
        """``value`` as plain JSON data (dicts, lists, strings, numbers), e.g. for events."""
        data = self._adapter.dump_python(
            {WRAPPER_KEY: value} if self.wrapped else value, mode="json"
        )
        return data[WRAPPER_KEY] if self.wrapped else data


def output_type_for(output_type: Any, retries: int = 2) -> OutputType | None:
    """An ``OutputType`` for ``output_type``; None for plain text (``None`` or ``str``).

    A type pydantic cannot validate, or a bad ``retries``, is a ``ConfigurationError``.
    """
    if output_type is None or output_type is str:
        return None
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(
            f"output_retries={retries!r} is invalid: use 0 or more (how many times an invalid "
            f"answer is sent back to the model)"
        )
    try:
        adapter, schema, wrapped = _prepare(output_type)
    except TypeError:  # unhashable (e.g. an Annotated with a dict in it): not cached
        adapter, schema, wrapped = _prepare.__wrapped__(output_type)
    return OutputType(output_type, schema, retries, wrapped, adapter)


@lru_cache(maxsize=256)
def _prepare(output_type: Any) -> tuple[TypeAdapter[Any], OutputSchema, bool]:
    """The adapter and wire schema of a type: building them costs milliseconds, so once."""
    from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

    if isinstance(output_type, str) or output_type is ... or inspect.isroutine(output_type):
        raise ConfigurationError(
            f"output_type={output_type!r} is not a type: pass a class such as a pydantic "
            f"model or dataclass, or a type such as int, list[str] or Literal['a', 'b']"
        )
    try:
        inner = TypeAdapter(output_type).json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"output_type={output_type!r} cannot be used: pydantic cannot make a JSON schema "
            f"for it ({str(exc).splitlines()[0]}). Use a pydantic model, a dataclass, a "
            f"TypedDict or a plain type such as int, list[str] or Literal['a', 'b']"
        ) from None
    wrapped = not (inner.get("type") == "object" and inner.get("properties"))
    if wrapped:
        from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

        envelope = TypedDict("Result", {WRAPPER_KEY: output_type})  # type: ignore[operator]
        adapter: TypeAdapter[Any] = TypeAdapter(envelope)
        schema = adapter.json_schema()
        schema.pop("title", None)
    else:
        adapter, schema = TypeAdapter(output_type), inner
    # A class of the user's own names the answer ("City"); int, list[str], ... do not.
    own_class = isinstance(output_type, type) and output_type.__module__ != "builtins"
    name = _NAME.sub("_", output_type.__name__)[:64] if own_class else "result"
    description = (schema.get("description") or "").strip()
    strict, ok = strict_schema(schema)
    return (
        adapter,
        OutputSchema(name=name, description=description, json_schema=strict, strict=ok),
        wrapped,
    )


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A copy of ``schema`` made to the strict structured-output rules (OpenAI's ``strict``
    mode): every object closed (``additionalProperties: false``), every property required,
    nothing beside a ``$ref``. Closed objects with every field present also keep a small
    model under a grammar from stopping early.

    Returns the schema and whether it fully complies: an object with open-ended keys
    (``dict[str, int]``) cannot, and is left open.
    """
    complies = True
    definitions = schema.get("$defs") or {}

    def visit(node: Any) -> Any:
        nonlocal complies
        if not isinstance(node, dict):
            return node
        node = dict(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and len(node) > 1 and ref.startswith("#/$defs/"):
            # Keywords beside a $ref (a field's description) are not allowed: inline it.
            target = definitions.get(ref.removeprefix("#/$defs/"), {})
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        for key in ("properties", "$defs"):
            if isinstance(node.get(key), dict):
                node[key] = {name: visit(sub) for name, sub in node[key].items()}
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            if isinstance(node.get(key), list):
                node[key] = [visit(sub) for sub in node[key]]
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                node[key] = visit(node[key])
        if node.get("type") == "object" or "properties" in node:
            extra = node.get("additionalProperties")
            if extra in (None, False):
                node["additionalProperties"] = False
                node["properties"] = node.get("properties") or {}
                node["required"] = list(node["properties"])
            else:
                complies = False
        if "default" in node and node["default"] is None:
            del node["default"]  # an optional field is nullable already; None adds nothing
        return node

    return visit(schema), complies


def output_instructions(output: OutputSchema) -> str:
    """The request in words, for a provider with no native structured output."""
    schema = json.dumps(output.json_schema, separators=(",", ":"))
    return (
        f"Give your final answer as one JSON object matching this JSON schema, and nothing "
        f"else (no prose, no code fence):\n{schema}"
    )


def prompted(messages: list[Message], output: OutputSchema) -> list[Message]:
    """``messages`` with the request in words after the system prompt, for a provider with
    no native structured output (test providers, your own)."""
    system = 0
    while system < len(messages) and messages[system].role == "system":
        system += 1
    request = Message.system(output_instructions(output))
    return [*messages[:system], request, *messages[system:]]


def describe_errors(error: ValidationError, *, wrapped: bool = False) -> str:
    """One line per validation error: where (``field.sub[0]``), what was wrong, the input."""
    lines = []
    errors = error.errors(include_url=False)
    for item in errors[:ERRORS_SHOWN]:
        loc = list(item["loc"])
        if wrapped and loc[:1] == [WRAPPER_KEY]:
            loc = loc[1:]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        got = item.get("input")
        shown = "" if item["type"] in ("missing", "json_invalid") else f" (got {got!r:.80})"
        lines.append(f"- {where or 'the answer'}: {item['msg']}{shown}")
    if len(errors) > ERRORS_SHOWN:
        lines.append(f"- and {len(errors) - ERRORS_SHOWN} more")
    return "\n".join(lines)


def json_object_in(text: str) -> str | None:
    """The JSON text of the first object in a reply asked for in words: the whole reply,
    else the first code fence holding one, else the first one inside the prose."""
    for candidate in (text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))):
        try:
            if isinstance(json.loads(candidate), dict):
                return candidate
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            return text[start : decoder.raw_decode(text, start)[1]]  # "{" starts an object
        except ValueError:
            start = text.find("{", start + 1)
    return None


def _unfence(text: str) -> str:
    """The JSON inside a whole-answer code fence (prompted models add them), else ``text``."""
    stripped = text.strip()
    if stripped.startswith("```"):
        match = _FENCED.match(stripped)
        if match is not None:
            return match.group(1)
    return text
