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


def test_the_code_tools_check_their_argument_without_jsonschema():
    import subprocess
    import sys

    from victor.notebook.workspace.actions import RunCode

    tool = RunCode()
    assert tool.validate({"code": "x = 1"}) == {"code": "x = 1"}
    for bad in ({}, {"code": 1}, {"code": "x", "other": 2}):
        try:
            tool.validate(bad)
        except Exception as exc:  # noqa: BLE001
            assert "pass one argument, code" in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    assert tool.schema["required"] == ["code"]
    # (in a fresh process: pytest's own plugins load jsonschema here)
    check = (
        "import sys; from victor.notebook.workspace.actions import RunCode; "
        "RunCode().validate({'code': 'x'}); print('jsonschema' in sys.modules)"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", check], capture_output=True, text=True, check=True
        ).stdout
        == "False\n"
    )
