"""The cassette file: one JSON document a reviewer can read and diff, and what goes in it.

Bodies are stored as data: a JSON body under ``json``, other text under ``text``, bytes
that are not text under ``base64``. A streamed response is a list of the chunks as the
client received them, each with the seconds since the one before (``after``) and its
server-sent or newline-delimited events parsed (``events``), or its ``text`` where a chunk
does not end on an event boundary. Secrets are masked before anything is written.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from .._secrets import MASK, scrub
from ..errors import CassetteError

__all__ = ["load", "save", "encode_body", "decode_body", "encode_chunk", "decode_chunk"]

VERSION = 1
#: Every cassette file written in this process (a test suite scans them for secrets).
written: set[Path] = set()
#: Headers whose whole value is a credential: masked, whatever their value looks like.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
     "cookie", "set-cookie", "openai-organization", "openai-project"}
)  # fmt: skip


# -- the file ---------------------------------------------------------------------------


def load(path: Path) -> list[dict[str, Any]]:
    """The interactions recorded in ``path``; ``CassetteError`` naming the file and line of
    what is wrong with it."""
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CassetteError(
            f"{path}:{exc.lineno}:{exc.colno}: the cassette is not valid JSON ({exc.msg}); "
            f"fix that line, or delete the file to record it again"
        ) from None
    interactions = document.get("interactions") if isinstance(document, dict) else None
    if not isinstance(interactions, list):
        raise CassetteError(
            f'{path}:1: not a victor cassette (no "interactions" list); delete it to record '
            f"it again"
        )
    for number, interaction in enumerate(interactions, 1):
        request = interaction.get("request") if isinstance(interaction, dict) else None
        response = interaction.get("response") if isinstance(interaction, dict) else None
        if not (
            isinstance(request, dict)
            and isinstance(request.get("method"), str)
            and isinstance(request.get("path"), str)
            and isinstance(response, dict)
            and (request["method"] == "CALL" or isinstance(response.get("status"), int))
        ):
            line = _line_of(text, number)
            raise CassetteError(
                f'{path}:{line}: interaction {number} needs a "request" with "method" and '
                f'"path", and a "response" (with its "status", for HTTP); fix it, or delete '
                f"the file to record it again"
            )
    return interactions


def save(path: Path, interactions: list[dict[str, Any]]) -> None:
    """Write the cassette whole (to a temporary file, then renamed: never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"version": VERSION, "interactions": interactions}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(_format(document) + "\n", "utf-8")
    os.replace(temporary, path)
    written.add(path.resolve())


def _format(value: Any, depth: int = 0, key: str | None = None) -> str:
    """JSON indented by one space a level, except that each chunk of a stream is one line:
    a diff shows chunks, and the C encoder writes them (indented JSON is pure Python)."""
    pad = " " * depth
    if isinstance(value, dict) and value:
        items = (f"{pad} {_compact(k)}: {_format(v, depth + 1, k)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        line = _compact if key == "stream" else lambda item: _format(item, depth + 1)
        return "[\n" + ",\n".join(f"{pad} {line(item)}" for item in value) + f"\n{pad}]"
    return _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _line_of(text: str, number: int) -> int:
    """The line where interaction ``number`` starts (its ``"request"`` key), best effort."""
    position = -1
    for _ in range(number):
        position = text.find('"request"', position + 1)
        if position < 0:
            return 1
    return text.count("\n", 0, position) + 1


# -- scrubbing --------------------------------------------------------------------------


def scrub_headers(headers: Any, secrets: tuple[str, ...]) -> dict[str, str]:
    """Headers as a dict of lower-case names, credentials masked."""
    clean: dict[str, str] = {}
    for name, value in headers.items():
        name = name.lower()
        clean[name] = MASK if name in SECRET_HEADERS else scrub(value, secrets)
    return clean


def scrub_data(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (parsed JSON) with secrets masked, by the one scrubber: it reads the JSON
    text, so ``"api_key": "..."`` fields are masked by their label as in any text."""
    text = json.dumps(value, ensure_ascii=False)
    clean = scrub(text, secrets)
    if clean == text:
        return value
    try:
        return json.loads(clean)
    except ValueError:  # a mask that broke the JSON: mask string by string instead
        return _scrub_strings(value, secrets)


def _scrub_strings(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [_scrub_strings(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_strings(item, secrets) for key, item in value.items()}
    return value


# -- bodies -----------------------------------------------------------------------------


def encode_body(data: bytes, secrets: tuple[str, ...]) -> dict[str, Any]:
    """``{"json": ...}``, ``{"text": ...}`` or ``{"base64": ...}`` for a body (``{}``: none)."""
    if not data:
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    try:
        return {"json": scrub_data(json.loads(text), secrets)}
    except ValueError:
        return {"text": scrub(text, secrets)}


def decode_body(record: dict[str, Any]) -> bytes:
    """The bytes of a body ``encode_body`` stored."""
    if "json" in record:
        return _dumps(record["json"]).encode("utf-8")
    if "text" in record:
        return record["text"].encode("utf-8")
    if "base64" in record:
        return base64.b64decode(record["base64"])
    return b""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- stream chunks ----------------------------------------------------------------------


def encode_chunk(data: bytes, kind: str, secrets: tuple[str, ...]) -> dict[str, Any]:
    """One received chunk: its events (``kind`` "sse" or "ndjson") when it holds whole
    events, else its text (or base64)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    events = _parse_sse(text) if kind == "sse" else _parse_ndjson(text)
    if events is None:
        return {"text": scrub(text, secrets)}
    return {"events": scrub_data(events, secrets)}


def decode_chunk(record: dict[str, Any], kind: str) -> bytes:
    """The bytes of a chunk ``encode_chunk`` stored."""
    if "events" in record:
        encode = _encode_sse if kind == "sse" else _encode_ndjson
        return "".join(encode(event) for event in record["events"]).encode("utf-8")
    return decode_body(record)


def _parse_sse(text: str) -> list[dict[str, Any]] | None:
    """Server-sent events, each a dict of its fields in order (``data`` parsed when it is
    a JSON object or array); None if ``text`` is not whole events."""
    if not text.endswith("\n\n") or "\r" in text:
        return None
    events = []
    for block in text[:-2].split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            name, colon, value = line.partition(":")
            if not colon or not name or name in event:  # comments, repeated fields: as text
                return None
            event[name] = value[1:] if value.startswith(" ") else value
        data = event.get("data")
        if isinstance(data, str) and data[:1] in ("{", "["):
            try:
                event["data"] = json.loads(data)
            except ValueError:
                pass
        events.append(event)
    return events


def _encode_sse(event: dict[str, Any]) -> str:
    lines = (
        f"{name}: {value if isinstance(value, str) else _dumps(value)}"
        for name, value in event.items()
    )
    return "\n".join(lines) + "\n\n"


def _parse_ndjson(text: str) -> list[Any] | None:
    if not text.endswith("\n"):
        return None
    try:
        return [json.loads(line) for line in text[:-1].split("\n")]
    except ValueError:
        return None


def _encode_ndjson(event: Any) -> str:
    return _dumps(event) + "\n"


def stream_kind(content_type: str) -> str | None:
    """ "sse", "ndjson" or None (not a stream) from a response's content type."""
    media = content_type.split(";")[0].strip().lower()
    if media == "text/event-stream":
        return "sse"
    if media in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        return "ndjson"
    return None
