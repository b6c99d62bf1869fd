"""Undo for ``run_code``: the names the last approved run created or rebound, put back.

Before approved code runs, ``run_code`` keeps a shallow copy of the namespace (references,
no data copied); afterwards the names that differ are the change. ``undo()`` removes the
names it created and binds the old objects back to the names it rebound or deleted. What
the code changed *inside* an object (``df.drop(..., inplace=True)``, ``items.append(x)``)
is not a rebinding and cannot be undone; the approval card says so before you approve.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "Undone", "changes", "record", "undo"]

_MISSING: Any = object()
#: Names that belong to the interpreter, never reported or restored.
_SKIP = frozenset({"__builtins__", "__name__", "__doc__", "__package__", "__loader__", "__spec__"})


@dataclass(slots=True)
class Change:
    """What one run did to a namespace: each changed name with its old and new object."""

    namespace: dict[str, Any]
    #: name -> (object before, object after); ``_MISSING`` for "not bound".
    names: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def created(self) -> list[str]:
        return [n for n, (old, _) in self.names.items() if old is _MISSING]

    @property
    def rebound(self) -> list[str]:
        # (identity only: == on a DataFrame has no truth value)
        return [
            n for n, (old, new) in self.names.items() if old is not _MISSING and new is not _MISSING
        ]

    @property
    def deleted(self) -> list[str]:
        return [n for n, (_, new) in self.names.items() if new is _MISSING]


def changes(namespace: dict[str, Any], before: dict[str, Any]) -> Change:
    """The names of ``namespace`` bound to other objects than in ``before`` (a copy)."""
    names: dict[str, tuple[Any, Any]] = {}
    for name in before.keys() | namespace.keys():
        if name in _SKIP:
            continue
        old, new = before.get(name, _MISSING), namespace.get(name, _MISSING)
        if old is not new:
            names[name] = (old, new)
    return Change(namespace, dict(sorted(names.items())))


_lock = threading.Lock()
_last: Change | None = None


def record(change: Change) -> None:
    """Remember ``change`` as the one ``undo()`` reverts (the last approved run's)."""
    global _last
    with _lock:
        _last = change


@dataclass(frozen=True, slots=True)
class Undone:
    """What ``undo()`` did: names removed, names given their old object back, and names
    left alone because they changed again since the run."""

    removed: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    nothing: bool = False

    def __str__(self) -> str:
        if self.nothing:
            return (
                "Nothing to undo: no approved run_code has run in this kernel since the last undo."
            )
        parts = []
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if self.restored:
            parts.append(f"restored {', '.join(self.restored)}")
        text = "Undid the last run_code: " + ("; ".join(parts) if parts else "it bound no names")
        if self.kept:
            text += (
                f". Kept {', '.join(self.kept)}: changed again since the run, so the newer "
                f"value stays"
            )
        return text + "."

    __repr__ = __str__


def undo() -> Undone:
    """Revert the names the last approved ``run_code`` created or rebound (once).

    New names are removed and old objects bound back. A name changed again after the run
    keeps its newer value (and is listed as kept). Changes made in place inside objects
    cannot be undone.
    """
    global _last
    with _lock:
        change, _last = _last, None
    if change is None:
        return Undone(nothing=True)
    namespace, removed, restored, kept = change.namespace, [], [], []
    for name, (old, new) in change.names.items():
        if namespace.get(name, _MISSING) is not new:
            kept.append(name)
        elif old is _MISSING:
            del namespace[name]
            removed.append(name)
        else:
            namespace[name] = old
            restored.append(name)
    return Undone(tuple(removed), tuple(restored), tuple(kept))
