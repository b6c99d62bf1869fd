"""The local guard's first-use cache, its hung check and its refusal of an old binding.

Faked inputs (a model file in tmp_path, a llama.cpp "library", the CPU's name and flags,
the binding's version) and a tiny child command stand in for llama.cpp: what is tested is
the key and the verdict, not the model. Checked against deliberate breaks: each part of
the key dropped in turn, a hung child not killed, the old-binding refusal removed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from victor import ConfigurationError
from victor.providers.local import guard as local_guard

pytestmark = pytest.mark.timeout(60)


class Machine:
    """Everything the first-use key reads, faked, and a child that counts its runs."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.model = tmp_path / "model.gguf"
        self.model.write_bytes(b"GGUF v1")
        self.library = tmp_path / "llama_cpp" / "lib" / "libllama.so"
        self.library.parent.mkdir(parents=True)
        self.library.write_bytes(b"build 1")
        self.version, self.cpu, self.flags = "0.3.36", "Test CPU", {"avx2", "fma"}
        self.runs = tmp_path / "runs"
        monkeypatch.setattr(local_guard, "checks_dir", lambda: tmp_path / "checks")
        monkeypatch.setattr(local_guard, "_llama_version", lambda: self.version)
        monkeypatch.setattr(local_guard, "cpu_name", lambda: self.cpu)
        monkeypatch.setattr(local_guard, "cpu_flags", lambda: set(self.flags))
        monkeypatch.setattr(
            local_guard, "_library_files", lambda: sorted(self.library.parent.iterdir())
        )
        code = f"open({str(self.runs)!r}, 'a').write('run\\n'); print('ok')"
        monkeypatch.setattr(
            local_guard, "_child_command", lambda spec: [sys.executable, "-c", code]
        )

    def check(self, load: dict | None = None) -> int:
        """Run the first-use check; how many children have run so far."""
        local_guard.check_first_use(self.model, load or {"n_ctx": 512})
        return len(self.runs.read_text().splitlines()) if self.runs.exists() else 0


def touch_later(path: Path, data: bytes) -> None:
    """Rewrite ``path`` with a later mtime (a rebuild; a downloaded model of the same name)."""
    stat = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def same_mtime(path: Path, data: bytes) -> None:
    """Rewrite ``path`` keeping its mtime (a copy made with ``cp -p``, ``rsync -t``, tar)."""
    stat = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


CHANGES = {
    "llama-cpp-python version": lambda m: setattr(m, "version", "0.3.37"),
    "rebuilt library, same size": lambda m: touch_later(m.library, b"build 2"),
    "rebuilt library, new size": lambda m: same_mtime(m.library, b"build 2, larger"),
    "another library file": lambda m: (m.library.parent / "libggml.so").write_bytes(b"g"),
    "CPU name": lambda m: setattr(m, "cpu", "Other CPU"),
    "CPU flags": lambda m: m.flags.add("amx_int8"),
    "model file, same size": lambda m: touch_later(m.model, b"GGUF v2"),
    "model file, new size": lambda m: same_mtime(m.model, b"GGUF version 2"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_each_part_of_the_key_makes_a_new_first_use(tmp_path, monkeypatch, change):
    machine = Machine(tmp_path, monkeypatch)
    assert machine.check() == 1
    assert machine.check() == 1  # remembered
    change(machine)
    assert machine.check() == 2  # an old "ok" is not reused
    assert machine.check() == 2


def test_the_model_path_and_the_load_settings_are_part_of_the_key(tmp_path, monkeypatch):
    machine = Machine(tmp_path, monkeypatch)
    assert machine.check({"n_ctx": 512}) == 1
    assert machine.check({"n_ctx": 1024}) == 2
    assert machine.check({"n_ctx": 512, "n_threads": 1}) == 3
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(machine.model.read_bytes())
    os.utime(copy, ns=(machine.model.stat().st_atime_ns, machine.model.stat().st_mtime_ns))
    machine.model = copy  # the same bytes and mtime elsewhere: another file
    assert machine.check({"n_ctx": 512}) == 4


def test_a_hung_check_is_killed_and_reported(tmp_path, monkeypatch, caplog):
    machine = Machine(tmp_path, monkeypatch)
    pid_file = tmp_path / "child.pid"
    hang = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    monkeypatch.setattr(local_guard, "_child_command", lambda spec: [sys.executable, "-c", hang])
    # Long enough for a loaded machine to start Python and write the pid (well under 1 s
    # when idle); the child sleeps for 120 s, so only the kill ends it sooner.
    monkeypatch.setattr(local_guard, "CHECK_TIMEOUT", 5.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="victor.providers.local"):
        local_guard.check_first_use(machine.model, {"n_ctx": 512})
    assert time.monotonic() - started < 60  # the timeout ended it, not the child's sleep
    assert "took over 5 s" in caplog.text and str(machine.model) in caplog.text
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)
    assert not list((tmp_path / "checks").glob("*.json"))  # a hang is not an "ok"


class OldParams(ctypes.Structure):
    """llama_model_params of a binding that predates use_extra_bufts."""

    _fields_ = [("n_gpu_layers", ctypes.c_int32), ("use_mmap", ctypes.c_bool)]


class NewParams(ctypes.Structure):
    _fields_ = [("use_mmap", ctypes.c_bool), ("use_extra_bufts", ctypes.c_bool)]


def binding(params: type) -> type:
    class Llama:
        def __init__(self) -> None:
            # As llama_cpp.Llama does: assign the defaults (extra buffers on), once.
            defaults = params(use_mmap=True)
            if hasattr(defaults, "use_extra_bufts"):
                defaults.use_extra_bufts = True
            self.model_params = defaults

    return Llama


def test_an_old_binding_is_refused_with_the_rebuild_command():
    with pytest.raises(ConfigurationError) as caught:
        local_guard._guarded_class(binding(OldParams))()
    message = str(caught.value)
    assert "cannot turn off llama.cpp's AMX path (no use_extra_bufts)" in message
    assert "pip install" in message and "llama-cpp-python" in message


def test_a_binding_with_the_field_loads_with_it_off():
    llama = local_guard._guarded_class(binding(NewParams))()
    assert llama.model_params.use_extra_bufts is False
    assert binding(NewParams)().model_params.use_extra_bufts is True  # unguarded: on
