"""What StreamView draws an answer with: its segments (text, tool-call cards), cards as
Markdown ``<details>`` or one line of text, and code and JSON answers (extracted, shown as
the value they are becoming while they stream, fenced).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import VictorError

__all__ = [
    "CARD_TEXT_LIMIT",
    "Card",
    "TextPart",
    "card_line",
    "card_markdown",
    "extract_code",
    "fence",
    "growing_json",
    "one_paragraph",
    "parse_json_answer",
]

#: Longest tool argument/result text a card shows (the model saw all of it).
CARD_TEXT_LIMIT = 2000


@dataclass
class Card:
    """One tool call as the view shows it."""

    key: str
    name: str
    arguments: dict[str, Any]
    state: Literal["running", "ok", "error"] = "running"
    output: str = ""
    duration_ms: float = 0.0


@dataclass
class TextPart:
    """Answer text of one model response, in the pieces it arrived in."""

    parts: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(self.parts)


_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def extract_code(answer: str) -> tuple[str, str | None]:
    """The first fenced code block of ``answer`` and its language, else the whole answer."""
    match = _FENCE.search(answer)
    if match is None:
        return answer.strip("\n"), None
    return match.group(2).strip("\n"), (match.group(1) or None)


def parse_json_answer(answer: str) -> Any:
    """The JSON value in ``answer`` (bare, or in a fenced block); ``VictorError`` if none."""
    text = answer.strip()
    if text.startswith("```"):
        text = extract_code(text)[0]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VictorError(
            f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"{answer[:200]!r}. Ask for JSON only, or use --format markdown"
        ) from None


def growing_json(text: str) -> str:
    """JSON being written, shown as the value so far (open strings, lists and objects
    closed, indented); the text as it is while it is not JSON (yet)."""
    from pydantic_core import from_json

    body = text.strip()
    if body.startswith("```"):
        body = extract_code(body)[0]
    if not body.startswith(("{", "[")):
        return text
    try:
        value = from_json(body, allow_partial="trailing-strings")
    except ValueError:
        return text
    return fence(json.dumps(value, indent=2, ensure_ascii=False), "json")


def fence(text: str, language: str = "") -> str:
    """A fenced block that survives backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


def clip(text: str, limit: int = CARD_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def _call_signature(card: Card, limit: int = 80) -> str:
    args = ", ".join(f"{key}={value!r}" for key, value in card.arguments.items())
    if len(args) > limit:
        args = args[: limit - 1] + "…"
    return f"{card.name}({args})"


def _card_status(card: Card) -> str:
    if card.state == "running":
        return "running…"
    mark = "✓" if card.state == "ok" else "✗ error"
    return f"{mark} · {card.duration_ms:.0f} ms"


def card_markdown(card: Card) -> str:
    summary = f"🔧 <code>{html.escape(_call_signature(card))}</code> · {_card_status(card)}"
    parts = [f"<details><summary>{summary}</summary>", ""]
    arguments = json.dumps(card.arguments, indent=2, ensure_ascii=False, default=str)
    parts += ["**Arguments**", "", fence(clip(arguments), "json"), ""]
    if card.state != "running":
        parts += [
            f"**{'Result' if card.state == 'ok' else 'Error'}**",
            "",
            fence(clip(card.output)),
            "",
        ]
    parts.append("</details>")
    return "\n".join(parts)


def card_line(card: Card) -> str:
    outcome = "" if card.state == "running" else f" -> {clip(card.output, 200)!r}"
    return f"[tool {_call_signature(card)} {_card_status(card)}{outcome}]"


def one_paragraph(text: str) -> str:
    return " ".join(text.split())
