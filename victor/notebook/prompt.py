"""From what is typed in a cell to the prompt an agent gets: ``{name}`` placeholders filled
from the notebook's variables (``{err}``: the last error), the prompt part of a
``%victor`` line, and ``%victor ...?`` lines kept from IPython's help syntax."""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

__all__ = [
    "interpolate",
    "keep_question_marks",
    "find",
    "last_error_text",
    "prompt_part",
    "MISSING",
]

_QUESTION_LINE = re.compile(r"^(?P<indent>[ \t]*)%victor[ \t]+(?P<rest>\S.*?\?)[ \t]*$")


def keep_question_marks(lines: list[str]) -> list[str]:
    """Input transformer: ``%victor what is a monad?`` is a prompt, not a help request.

    IPython reads a line ending in ``?`` as "show help for the last name" before any magic
    runs; rewriting such ``%victor`` lines into the magic call they stand for comes first.
    ``%victor?`` alone still shows the magic's help.
    """
    if lines and lines[0].lstrip().startswith("%%"):
        return lines  # a cell magic's body is its own business
    out = []
    for line in lines:
        match = _QUESTION_LINE.match(line.rstrip("\n"))
        if match is None:
            out.append(line)
        else:
            call = f"get_ipython().run_line_magic('victor', {match.group('rest')!r})"
            out.append(f"{match.group('indent')}{call}\n")
    return out


_PLACEHOLDER = re.compile(
    r"\{\{|\}\}|\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\s*-?\d+\s*\]|\[\s*'[^'\]]*'\s*\]|\[\s*\"[^\"\]]*\"\s*\])*)\}"
)
_STEP = re.compile(
    r"\.([A-Za-z_]\w*)|\[\s*(-?\d+)\s*\]|\[\s*'([^'\]]*)'\s*\]|\[\s*\"([^\"\]]*)\"\s*\]"
)
#: What ``find`` returns for a name that is not there.
MISSING = object()
_NAME_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def interpolate(text: str, namespace: Mapping[str, Any], *, last_error: str | None = None) -> str:
    """Replace ``{name}`` (with ``.attr``/``[index]``/``['key']`` steps) by values from
    ``namespace``; ``{err}`` falls back to ``last_error``. Unknown names stay as written,
    ``{{``/``}}`` become literal braces. Nothing is evaluated: only lookups happen."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        value = _lookup(match.group(1), namespace)
        if value is MISSING and match.group(1) == "err" and last_error is not None:
            return last_error
        return token if value is MISSING else str(value)

    return _PLACEHOLDER.sub(replace, text)


def find(path: str, namespace: Mapping[str, Any]) -> Any:
    """The value of ``name`` (or ``module.Type``) in ``namespace``, or ``MISSING``."""
    return _lookup(path, namespace) if _NAME_PATH.fullmatch(path) else MISSING


def _lookup(expression: str, namespace: Mapping[str, Any]) -> Any:
    name = re.match(r"[A-Za-z_]\w*", expression).group(0)  # type: ignore[union-attr]
    if name not in namespace:
        return MISSING
    value = namespace[name]
    for step in _STEP.finditer(expression, len(name)):
        attr, index, key1, key2 = step.groups()
        try:
            if attr is not None:
                value = getattr(value, attr)
            elif index is not None:
                value = value[int(index)]
            else:
                value = value[key1 if key1 is not None else key2]
        except (AttributeError, LookupError, TypeError):
            return MISSING
    return value


def last_error_text() -> str | None:
    """The last exception raised in the shell, with its traceback (for ``{err}``)."""
    value = getattr(sys, "last_value", None)
    if value is None:
        return None
    text = "".join(
        traceback.format_exception(type(value), value, getattr(sys, "last_traceback", None))
    )
    return text if len(text) <= 4000 else "…" + text[-4000:]


_TOKEN = re.compile(r"\s*(\"[^\"]*\"|'[^']*'|\S+)")


def prompt_part(line: str, word_count: int) -> str:
    """The prompt as typed: ``line`` without its leading option tokens (quotes kept)."""
    from IPython.utils._process_common import arg_split

    skip = len(arg_split(line, strict=False)) - word_count
    position = 0
    for _ in range(skip):
        match = _TOKEN.match(line, position)
        if match is None:
            break
        position = match.end()
    return line[position:].strip()
