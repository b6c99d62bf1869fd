"""Undo's bookkeeping on a plain namespace (the kernel tests drive it through run_code)."""

from __future__ import annotations

from victor.notebook.workspace import undo


class Ambiguous:
    """Like a DataFrame: comparing it with == gives something with no truth value."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("The truth value is ambiguous")

    __hash__ = object.__hash__


def test_a_rebound_object_without_a_truth_value_is_undone():
    old, new = Ambiguous(), Ambiguous()
    namespace = {"frame": old, "kept": 1}
    before = dict(namespace)
    namespace["frame"] = new
    namespace["made"] = Ambiguous()
    change = undo.changes(namespace, before)
    assert (change.created, change.rebound, change.deleted) == (["made"], ["frame"], [])
    undo.record(change)
    done = undo.undo()
    assert (done.removed, done.restored) == (("made",), ("frame",))
    assert namespace["frame"] is old
    assert set(namespace) == {"frame", "kept"}
    assert str(undo.undo()).startswith("Nothing to undo")
