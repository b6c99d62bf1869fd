"""How the local provider talks to a small model: the prompt (a completion-style transcript,
or the model's own chat template), the JSON schema a grammar holds replies to when tools or
a typed answer are asked for, and replies read back (also while they stream).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from ..._util import new_id
from ...core.messages import Message, ToolCall, ToolSpec

__all__ = [
    "STOP_SEQUENCES",
    "parse_reply",
    "partial_answer",
    "partial_typed_answer",
    "render_prompt",
    "template_messages",
    "tool_schema",
]

#: Completion-format pieces for models without a chat template.
QUESTION, ANSWER, RESULT = "Question:", "Answer:", "Result:"
DEFAULT_INSTRUCTIONS = "Answer each question briefly and correctly."
EXAMPLE_QUESTION = "What is the largest planet in the solar system?"
EXAMPLE_ANSWER = "Jupiter."
TOOL_EXAMPLE = (
    "Question: How many legs does a spider have?",
    'Answer: {"tool": "lookup", "arguments": {"query": "spider legs"}}',
    "Result: Spiders have eight legs.",
    'Answer: {"answer": "Eight."}',
)
# A new "Answer:" line ends a reply too: given a multi-line task, the small model otherwise
# wrote "Answer:" lines until max_tokens (4,013 tokens, 356 s, measured).
STOP_SEQUENCES = ["\nQuestion:", "\nResult:", "\nAnswer:", "\n\n"]
TOOL_INSTRUCTIONS = (
    "You can call these tools:\n{tools}\n"
    'To call a tool, answer with {{"tool": <name>, "arguments": {{...}}}}; its result follows '
    'as "Result:". When you know the answer, reply {{"answer": <text>}}.'
)


def tool_schema(
    tools: list[ToolSpec], *, allow_answer: bool = True, answer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON schema every reply must match when ``tools`` are offered: one tool call,
    or (with ``allow_answer``) a final answer: text, or an object matching ``answer``."""
    answer = dict(answer) if answer is not None else {"type": "string"}
    definitions = answer.pop("$defs", None)  # references point at the root: move them there
    calls = [
        {
            "type": "object",
            "properties": {"tool": {"const": t.name}, "arguments": _arguments_schema(t)},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    final = {
        "type": "object",
        "properties": {"answer": answer},
        "required": ["answer"],
        "additionalProperties": False,
    }
    schema: dict[str, Any] = {"oneOf": [*calls, final] if allow_answer else calls}
    if definitions:
        schema["$defs"] = definitions
    return schema


def _arguments_schema(tool: ToolSpec) -> dict[str, Any]:
    schema = dict(tool.parameters or {"type": "object", "properties": {}})
    schema.setdefault("type", "object")
    # Every declared argument, in order: a small model otherwise tends to stop early.
    schema.setdefault("additionalProperties", False)
    return schema


def render_prompt(
    messages: list[Message], tools: list[ToolSpec] | None = None, *, typed: bool = False
) -> str:
    """A conversation as a completion-style transcript for a model without a chat template.

    One worked example shows a base model the format (it answers far more sensibly with
    it than without); the prompt ends with ``Answer:``, where the model continues.
    """
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system" and m.content)
    lines = [system or DEFAULT_INSTRUCTIONS]
    if tools:
        listing = _tool_listing(tools)
        lines.append(TOOL_INSTRUCTIONS.format(tools=listing))
    example = Message.assistant(EXAMPLE_ANSWER)
    lines += ["", f"{QUESTION} {EXAMPLE_QUESTION}", f"{ANSWER} {_assistant_text(example, tools)}"]
    if tools:  # and how a tool's result becomes the answer
        lines += ["", *TOOL_EXAMPLE]
    for m in messages:
        if m.role == "user":
            lines += ["", f"{QUESTION} {m.content.strip()}"]
        elif m.role == "assistant":
            lines.append(f"{ANSWER} {_assistant_text(m, tools, typed)}")
        elif m.role == "tool":
            lines.append(f"{RESULT} {m.content.strip()}")
    return "\n".join(lines) + f"\n{ANSWER}"


def _assistant_text(message: Message, tools: list[ToolSpec] | None, typed: bool = False) -> str:
    """An earlier assistant turn, in the JSON form the grammar asks for when tools are on
    (``typed``: the answer is JSON text, shown as the object it is)."""
    if message.tool_calls:
        return "\n".join(
            json.dumps({"tool": c.name, "arguments": c.arguments}) for c in message.tool_calls
        )
    if tools:
        answer: Any = message.content
        if typed:
            with contextlib.suppress(json.JSONDecodeError):
                answer = json.loads(message.content)
        return json.dumps({"answer": answer})
    return message.content.strip()


def template_messages(
    messages: list[Message], tools: list[ToolSpec], *, typed: bool = False
) -> list[dict[str, Any]]:
    """Messages for a model's own chat template; tool turns become plain text turns,
    since templates differ in (or lack) tool support."""
    wire: list[dict[str, Any]] = []
    if tools:
        listing = _tool_listing(tools)
        wire.append({"role": "system", "content": TOOL_INSTRUCTIONS.format(tools=listing)})
    for m in messages:
        if m.role == "tool":
            wire.append({"role": "user", "content": f"{RESULT} {m.content}"})
        elif m.role == "assistant":
            wire.append({"role": "assistant", "content": _assistant_text(m, tools, typed)})
        else:
            wire.append({"role": m.role, "content": m.content})
    return wire


def _tool_listing(tools: list[ToolSpec]) -> str:
    """One line per tool: ``- add(a: integer, b: integer): Add two integers.``"""
    lines = []
    for t in tools:
        properties = (t.parameters or {}).get("properties") or {}
        signature = ", ".join(
            f"{name}: {spec.get('type', 'any')}" if isinstance(spec, dict) else name
            for name, spec in properties.items()
        )
        lines.append(f"- {t.name}({signature}): {t.description or t.name}")
    return "\n".join(lines)


_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*"')


def partial_answer(text: str) -> str | None:
    """The answer text so far of a JSON reply ``{"answer": "..."}`` that may be incomplete;
    None while it is not (yet) recognisably an answer."""
    start = _ANSWER_START.match(text)
    if start is None:
        return None
    body = text[start.end() :]
    end = _STRING_END.search(body)
    if end is not None:
        body = body[: end.end() - 1]
    # Drop an escape sequence cut in half (at most "\uXXX") so the rest decodes.
    for cut in range(min(6, len(body)) + 1):
        try:
            return json.loads(f'"{body[: len(body) - cut]}"')
        except json.JSONDecodeError:
            continue
    return None


_TYPED_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*')
_CLOSING = re.compile(r"[\s}]+\Z")


def partial_typed_answer(text: str) -> str | None:
    """The answer's JSON so far of a reply ``{"answer": {...}}`` that may be incomplete;
    None while it is not (yet) recognisably an answer. Closing braces at the end are held
    back: until the reply is complete, one may be the wrapper's."""
    start = _TYPED_ANSWER_START.match(text)
    if start is None:
        return None
    return _CLOSING.sub("", text[start.end() :])


#: The closing quote of a JSON string: one preceded by an even number of backslashes.
_STRING_END = re.compile(r'(?<!\\)(?:\\\\)*"')


def parse_reply(text: str, *, typed: bool = False) -> tuple[str, list[ToolCall]]:
    """A grammar-constrained reply as (answer, tool calls); ``typed``: the answer is an
    object, returned as JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Only a reply cut off by max_tokens can be incomplete: keep the answer so far.
        answer = partial_typed_answer(text) if typed else partial_answer(text)
        return (answer if answer is not None else text).strip(), []
    if "tool" in data:
        return "", [ToolCall(id=new_id("call"), name=data["tool"], arguments=data["arguments"])]
    if typed:
        return json.dumps(data.get("answer")), []
    return str(data.get("answer", "")).strip(), []
