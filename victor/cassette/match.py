"""Which recording answers a request, and, when none does, what the nearest one differs in.

A request matches a recording on its method, its path (not the host: a loopback server's
port changes from run to run) and its JSON body, compared as data with volatile fields
left out. A user's matcher replaces the body comparison.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["VOLATILE", "Matcher", "key", "differences", "describe_miss"]

#: Top-level body fields that change from run to run without changing the question.
VOLATILE = frozenset({"metadata", "user"})

#: ``match(request, recorded) -> bool``: both as ``key`` makes them.
Matcher = Callable[[dict[str, Any], dict[str, Any]], bool]

_short = reprlib.Repr()
_short.maxstring = 120
_short.maxother = 120
_short.maxlist = _short.maxdict = 6
_short.maxlevel = 3


def key(request: dict[str, Any], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """What is compared of a stored request: method, path, body (volatile fields out)."""
    body = request.get("json", request.get("text"))
    if isinstance(body, dict):
        dropped = VOLATILE.union(ignore)
        body = {name: value for name, value in body.items() if name not in dropped}
    return {"method": request["method"], "path": request["path"], "body": body}


def differences(recorded: Any, live: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Where two parsed bodies differ, in document order: ``(path, recorded, live)``."""
    if isinstance(recorded, dict) and isinstance(live, dict):
        found = []
        for name in [*recorded, *(n for n in live if n not in recorded)]:
            path = f"{where}.{name}" if where else str(name)
            if name not in live:
                found.append((path, recorded[name], "(missing)"))
            elif name not in recorded:
                found.append((path, "(missing)", live[name]))
            else:
                found += differences(recorded[name], live[name], path)
        return found
    if isinstance(recorded, list) and isinstance(live, list):
        found = []
        for index in range(max(len(recorded), len(live))):
            path = f"{where}[{index}]"
            if index >= len(live):
                found.append((path, recorded[index], "(missing)"))
            elif index >= len(recorded):
                found.append((path, "(missing)", live[index]))
            else:
                found += differences(recorded[index], live[index], path)
        return found
    return [] if recorded == live else [(where or "body", recorded, live)]


def describe_miss(
    live: dict[str, Any],
    recorded: list[dict[str, Any]],
    used: list[bool],
    where: str,
    why: str,
) -> str:
    """The message of a ``CassetteMiss``: the request beside the nearest recording and the
    first field that differs."""
    request = f"{live['method']} {live['path']}"
    lines = [f"no recording in {where} answers {request} ({why})."]
    nearest, found = None, None
    for index, candidate in enumerate(recorded):
        if (candidate["method"], candidate["path"]) != (live["method"], live["path"]):
            continue
        diffs = differences(candidate["body"], live["body"])
        rank = (len(diffs), used[index])  # fewest differences; an unused one first
        if found is None or rank < found[0]:
            nearest, found = index, (rank, diffs)
    if nearest is None or found is None:
        paths = sorted({f"{r['method']} {r['path']}" for r in recorded}) or ["none"]
        lines.append(f"No recording has {request}; recorded: {', '.join(paths)}.")
    elif not found[1]:
        lines.append(
            f"Recording #{nearest + 1} is this very request, but it was already replayed: "
            f"this run sends it more often than the recorded one did."
        )
    else:
        path, was, now = found[1][0]
        count = len(found[1])
        lines.append(
            f"Nearest: recording #{nearest + 1}, which differs at {path}"
            + (f" (and {count - 1} more field(s))" if count > 1 else "")
            + ":"
        )
        lines.append(f"  recorded: {_short.repr(was)}")
        lines.append(f"  this run: {_short.repr(now)}")
    lines.append(
        'Record it with record="new_episodes" (pytest: --victor-record=new_episodes), '
        're-record all with record="all", or change the request back.'
    )
    return "\n".join(lines)
