"""State: the mapping behaviour, and save/load that never corrupts an existing file."""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping

import pytest

from victor.core.state import State
from victor.errors import StateError, VictorError


def leftovers(directory) -> list[str]:
    """Files in ``directory`` other than the state file itself: stray temp files."""
    return sorted(p.name for p in directory.iterdir() if p.name != "state.json")


def test_state_behaves_like_a_dict():
    state = State()
    assert isinstance(state, MutableMapping)
    state["user"] = "Alice"
    state["context"] = "Building a REST API"
    assert state["user"] == "Alice"
    assert "context" in state and "missing" not in state
    assert len(state) == 2
    assert list(state) == ["user", "context"]
    assert state.get("missing", "fallback") == "fallback"
    state.update({"n": 1}, m=2)
    assert state.to_dict() == {"user": "Alice", "context": "Building a REST API", "n": 1, "m": 2}
    del state["n"]
    assert "n" not in state
    assert repr(state) == "State(keys=['user', 'context', 'm'])"
    assert state == {"user": "Alice", "context": "Building a REST API", "m": 2}
    state.clear()
    assert len(state) == 0 and state.to_dict() == {}
    with pytest.raises(KeyError):
        state["user"]


def test_constructor_and_to_dict_copy():
    state = State({"a": 1}, b=2)
    snapshot = state.to_dict()
    snapshot["c"] = 3
    assert dict(state) == {"a": 1, "b": 2}


def test_keys_must_be_strings():
    with pytest.raises(TypeError, match="keys must be str"):
        State()[1] = "one"


def test_round_trip_with_unicode_and_nested_values(tmp_path):
    state = State()
    state["user"] = "Zoë 🚀 日本"
    state["nested"] = {"list": [1, 2.5, None, True], "deep": {"x": ["y", {"z": "ünï"}]}}
    state["empty"] = {}
    path = tmp_path / "sub" / "dir" / "state.json"  # parent directories do not exist yet

    state.save(path)
    loaded = State.load(path)

    assert isinstance(loaded, State)
    assert loaded.to_dict() == state.to_dict()
    raw = path.read_text(encoding="utf-8")
    assert "Zoë 🚀 日本" in raw  # written as readable UTF-8, not \u escapes
    assert json.loads(raw)["victor_state"] == 1
    assert raw.startswith("{\n")  # pretty-printed
    assert leftovers(path.parent) == []


def test_save_accepts_str_path_and_overwrites(tmp_path):
    path = tmp_path / "state.json"
    State(v=1).save(str(path))
    State(v=2).save(str(path))
    assert State.load(str(path))["v"] == 2
    assert leftovers(tmp_path) == []


def test_unserialisable_value_names_key_and_type_and_leaves_file_alone(tmp_path):
    path = tmp_path / "state.json"
    State(data="important data").save(path)
    before = path.read_bytes()

    state = State(data="new", handle=object())
    with pytest.raises(StateError) as info:
        state.save(path)

    message = str(info.value)
    assert "'handle'" in message and "object" in message
    assert "str, dict or list" in message
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_nested_unserialisable_value_is_reported_with_its_container(tmp_path):
    state = State(tags={"ok": [1, {2, 3}]})
    with pytest.raises(StateError, match=r"'tags' holds a set \(inside its dict\)"):
        state.save(tmp_path / "state.json")
    assert not (tmp_path / "state.json").exists()
    assert leftovers(tmp_path) == []


def test_circular_value_is_a_state_error(tmp_path):
    loop: list = []
    loop.append(loop)
    with pytest.raises(StateError, match="'loop'"):
        State(loop=loop).save(tmp_path / "state.json")


def test_crash_before_rename_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    State(version="old").save(path)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StateError, match="disk on fire") as info:
        State(version="new").save(path)

    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_crash_while_writing_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    State(version="old").save(path)
    before = path.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt  # not an OSError: must propagate as is, still cleaned up

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        State(version="new").save(path)

    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(StateError, match="no state file at") as info:
        State.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, VictorError)


def test_load_invalid_json_names_path_line_and_column(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{\n  "victor_state": 1,\n  "data": {"a": }\n}\n', encoding="utf-8")
    with pytest.raises(StateError) as info:
        State.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3, column 17" in message


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2, 3]",
        '{"data": {}}',
        '{"victor_state": 1, "data": [1]}',
        '\n\n  "just a string"',
    ],
)
def test_load_wrong_shape_names_path_and_position(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StateError, match="wrong shape") as info:
        State.load(path)
    assert str(path) in str(info.value)
    assert "line " in str(info.value) and "column " in str(info.value)


def test_load_wrong_shape_reports_where_the_value_starts(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('\n\n   "just a string"', encoding="utf-8")
    with pytest.raises(StateError, match="line 3, column 4"):
        State.load(path)


def test_load_unknown_format_version(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"victor_state": 2, "data": {}}', encoding="utf-8")
    with pytest.raises(StateError, match="version 2"):
        State.load(path)
