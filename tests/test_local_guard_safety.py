"""The local guard's first-use cache, its hung check and its refusal of an old binding.

Faked inputs (a model file in tmp_path, a llama.cpp "library", the CPU's name and flags,
the binding's version) and a tiny child command stand in for llama.cpp: what is tested is
the key and the verdict, not the model. Checked against deliberate breaks: each part of
the key dropped in turn, a hung child not killed, the old-binding refusal removed.
"""

from __future__ import annotations

import ctypes
import importlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from victor import ConfigurationError
from victor.providers.local import guard as local_guard
from victor.providers.local.build import rebuild_command

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


# -- what the child is given, what it answers, and how it is reported -------------------------


def recording_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A child that saves the spec and environment it was given, then runs ``body``."""
    seen = tmp_path / "seen.json"
    code = (
        "import json, os, sys; "
        f"open({str(seen)!r}, 'w').write(json.dumps({{'spec': json.loads(sys.argv[1]), "
        "'PYTHONPATH': os.environ.get('PYTHONPATH'), 'MARK': os.environ.get('VICTOR_MARK')})); "
        + body
    )
    monkeypatch.setattr(
        local_guard, "_child_command", lambda spec: [sys.executable, "-c", code, json.dumps(spec)]
    )
    return seen


def test_the_child_gets_the_model_the_settings_and_this_process_path(tmp_path, monkeypatch):
    machine = Machine(tmp_path, monkeypatch)
    seen = recording_child(tmp_path, monkeypatch, "print('ok (AMX guard off)')")
    monkeypatch.setenv("VICTOR_MARK", "inherited")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    load = {"n_ctx": 512, "n_threads": 2}
    assert not local_guard.first_use_checked(machine.model, load)
    local_guard.check_first_use(machine.model, load)
    given = json.loads(seen.read_text())
    assert given["spec"] == {"path": str(machine.model), "load": load}
    # The child imports victor from wherever this process found it, with the rest of the env.
    assert given["PYTHONPATH"] == os.pathsep.join(p for p in sys.path if p)
    assert given["MARK"] == "inherited"
    # The verdict names the model, the settings and what the child reported.
    assert local_guard.first_use_checked(machine.model, load)
    [record] = (tmp_path / "checks").glob("*.json")
    assert json.loads(record.read_text()) == {
        "model": str(machine.model),
        "load": load,
        "report": "ok (AMX guard off)",
    }


def test_a_crash_names_the_signal_the_model_the_build_and_the_childs_last_words(
    tmp_path, monkeypatch
):
    machine = Machine(tmp_path, monkeypatch)
    said = "".join(f"line {i:02d}\\n" for i in range(1, 21))
    recording_child(
        tmp_path,
        monkeypatch,
        f"sys.stderr.write('{said}'); sys.stderr.flush(); os.kill(os.getpid(), 11)",
    )
    with pytest.raises(ConfigurationError) as caught:
        machine.check()
    message = str(caught.value)
    assert message.startswith(
        f"llama.cpp crashed (SIGSEGV) loading and running the model {str(machine.model)!r} "
        "with llama-cpp-python 0.3.36 on this CPU (Test CPU). It was tried in a child "
        "process, so this process is unharmed."
    )
    assert "rebuild it portably:\n    CMAKE_ARGS=" in message
    tail = "\n".join(f"line {i:02d}" for i in range(6, 21))  # the last 15 lines
    assert message.endswith(f"\nThe child process said:\n{tail}")
    assert "line 05" not in message
    assert not local_guard.first_use_checked(machine.model, {"n_ctx": 512})


def test_a_signal_without_a_name_and_a_silent_child(tmp_path, monkeypatch):
    machine = Machine(tmp_path, monkeypatch)
    number = signal.SIGRTMIN + 2  # real-time signals end a process and have no name
    recording_child(tmp_path, monkeypatch, f"os.kill(os.getpid(), {number})")
    with pytest.raises(ConfigurationError) as caught:
        machine.check()
    assert f"llama.cpp crashed (signal {number})" in str(caught.value)
    assert str(caught.value).endswith(rebuild_command())  # nothing after: the child was silent


def test_a_python_error_in_the_child_is_logged_and_not_remembered(tmp_path, monkeypatch, caplog):
    machine = Machine(tmp_path, monkeypatch)
    recording_child(
        tmp_path,
        monkeypatch,
        "sys.stderr.write('x' * 3000 + 'ValueError: bad file\\n'); sys.exit(1)",
    )
    with caplog.at_level(logging.DEBUG, logger="victor.providers.local"):
        local_guard.check_first_use(machine.model, {"n_ctx": 512})  # the real load will say
    tail = ("x" * 3000 + "ValueError: bad file")[-2000:]  # the last 2,000 characters
    assert caplog.messages == [f"llama.cpp check of {machine.model} failed: {tail}"]
    assert not local_guard.first_use_checked(machine.model, {"n_ctx": 512})


def test_a_hung_check_says_what_it_does_next(tmp_path, monkeypatch, caplog):
    machine = Machine(tmp_path, monkeypatch)
    recording_child(tmp_path, monkeypatch, "import time; time.sleep(120)")
    monkeypatch.setattr(local_guard, "CHECK_TIMEOUT", 3.0)
    with caplog.at_level(logging.WARNING, logger="victor.providers.local"):
        local_guard.check_first_use(machine.model, {"n_ctx": 512})
    assert caplog.messages == [
        f"trying {machine.model} in a child process took over 3 s; "
        "loading it here without the check"
    ]


def test_the_verdicts_folder_is_made_and_an_unwritable_one_only_costs_a_check(
    tmp_path, monkeypatch, caplog
):
    machine = Machine(tmp_path, monkeypatch)
    deep = tmp_path / "home" / "cache" / "llama-checks"
    monkeypatch.setattr(local_guard, "checks_dir", lambda: deep)
    assert machine.check() == 1 and machine.check() == 1  # parents made, verdict kept
    assert [p.name for p in deep.iterdir() if p.name.startswith(".")] == []  # no partial left
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(local_guard, "checks_dir", lambda: blocked / "llama-checks")
    with caplog.at_level(logging.DEBUG, logger="victor.providers.local"):
        assert machine.check() == 2  # no error: the check passed, it is just not recorded
    assert machine.check() == 3
    [note, *_] = caplog.messages
    assert re.fullmatch(
        rf"cannot record the llama\.cpp check in {re.escape(str(blocked))}/llama-checks/"
        r"\w{24}\.json: \[Errno 20\] Not a directory: .*",
        note,
    ), note


def test_the_verdicts_live_in_victor_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path / "vh"))
    assert local_guard.checks_dir() == tmp_path / "vh" / "cache" / "llama-checks"


class FakeSys:
    """``sys`` with another Python version (the guard's key reads ``sys.version_info``)."""

    def __init__(self, version: tuple[int, ...]) -> None:
        self.version_info = version

    def __getattr__(self, name: str) -> Any:
        return getattr(sys, name)


def test_a_python_patch_release_keeps_the_verdict_a_minor_release_does_not(tmp_path, monkeypatch):
    machine = Machine(tmp_path, monkeypatch)
    monkeypatch.setattr(local_guard, "sys", FakeSys((3, 12, 1, "final", 0)))
    assert machine.check() == 1
    monkeypatch.setattr(local_guard, "sys", FakeSys((3, 12, 2, "final", 0)))
    assert machine.check() == 1  # the same build, ABI and CPU
    monkeypatch.setattr(local_guard, "sys", FakeSys((3, 13, 0, "final", 0)))
    assert machine.check() == 2


# -- the child's own work, in this process, with llama.cpp faked -------------------------------


class FakeLlama:
    made: list[FakeLlama] = []
    fail = False

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self.calls, self.closed = kwargs, [], False
        FakeLlama.made.append(self)

    def create_completion(self, prompt: str, **kwargs: Any) -> dict:
        self.calls.append((prompt, kwargs))
        if FakeLlama.fail:
            raise RuntimeError("generation failed")
        return {}

    def close(self) -> None:
        self.closed = True


AMX_INFO = "CPU : AVX2 = 1 | AMX_INT8 = 1 |"
PORTABLE_INFO = "CPU : AVX2 = 1 | AMX_INT8 = 0 |"


@pytest.mark.parametrize("info, guard", [(AMX_INFO, True), (PORTABLE_INFO, False)])
def test_the_child_loads_as_the_parent_will_and_generates(monkeypatch, capsys, info, guard):
    classes = []
    monkeypatch.setattr(local_guard, "system_info", lambda: info)
    monkeypatch.setattr(local_guard, "llama_class", lambda g: classes.append(g) or FakeLlama)
    monkeypatch.setattr(FakeLlama, "made", [])
    local_guard._child({"path": "/models/m.gguf", "load": {"n_ctx": 512, "n_threads": 2}})
    assert classes == [guard]
    [llama] = FakeLlama.made
    assert llama.kwargs == {"model_path": "/models/m.gguf", "n_ctx": 512, "n_threads": 2}
    [(prompt, settings)] = llama.calls
    assert len(prompt.split()) >= 4 and settings["max_tokens"] > 0  # a batch, then tokens
    assert settings["temperature"] == 0.0  # greedy: the same check gives the same report
    assert llama.closed
    assert capsys.readouterr().out == f"{info}\nok (AMX guard {'on' if guard else 'off'})\n"


def test_the_child_reports_the_build_before_a_failure_and_closes_the_model(monkeypatch, capsys):
    monkeypatch.setattr(local_guard, "system_info", lambda: PORTABLE_INFO)
    monkeypatch.setattr(local_guard, "llama_class", lambda g: FakeLlama)
    monkeypatch.setattr(FakeLlama, "made", [])
    monkeypatch.setattr(FakeLlama, "fail", True)
    with pytest.raises(RuntimeError, match="generation failed"):
        local_guard._child({"path": "/models/m.gguf", "load": {}})
    assert FakeLlama.made[0].closed
    assert capsys.readouterr().out == f"{PORTABLE_INFO}\n"  # printed before, no "ok"


def test_the_childs_reports_reach_the_parent_even_if_it_dies_right_after(monkeypatch):
    # stdout to a pipe is block-buffered: what is not flushed is lost when llama.cpp crashes.
    sent = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(sent), "utf-8"))
    seen_at_load = []

    class Llama(FakeLlama):
        def __init__(self, **kwargs: Any) -> None:
            seen_at_load.append(sent.getvalue().decode())
            super().__init__(**kwargs)

    monkeypatch.setattr(local_guard, "system_info", lambda: PORTABLE_INFO)
    monkeypatch.setattr(local_guard, "llama_class", lambda g: Llama)
    local_guard._child({"path": "/models/m.gguf", "load": {}})
    assert seen_at_load == [f"{PORTABLE_INFO}\n"]  # the build's report, before the load
    assert sent.getvalue().decode() == f"{PORTABLE_INFO}\nok (AMX guard off)\n"


def test_an_amx_build_says_what_it_does_and_how_to_avoid_it(monkeypatch, caplog):
    monkeypatch.setattr(local_guard, "system_info", lambda: AMX_INFO)
    monkeypatch.setattr(local_guard, "_guard_logged", False)
    with caplog.at_level(logging.INFO, logger="victor.providers.local"):
        assert local_guard.guard_active()
    assert caplog.messages == [
        "llama.cpp was built with AMX (system info reports AMX_INT8 = 1), whose matrix "
        "multiply can crash; loading models without extra buffer types "
        "(use_extra_bufts=false) so that path is never taken. A portable build avoids "
        f"this: {rebuild_command()}"
    ]


def test_the_child_command_runs_this_module_on_the_spec(tmp_path):
    pytest.importorskip("llama_cpp")  # the child reports the build first
    missing = tmp_path / "missing.gguf"
    spec = {"path": str(missing), "load": {"n_ctx": 64, "verbose": False}}
    child = subprocess.run(
        local_guard._child_command(spec), capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 1  # llama-cpp-python refuses the path: a Python error
    assert child.stdout.startswith("CPU :")  # the build's report came first
    assert str(missing) in child.stderr


# -- the parts that read this machine ----------------------------------------------------------


def fake_package(root: Path, files: list[str]) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")


def test_the_library_files_are_the_packages_shared_libraries(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "llama_cpp", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_package(
        tmp_path / "llama_cpp",
        ["__init__.py", "lib/libllama.so", "lib/libggml.dylib", "ggml.dll", "lib/notes.txt"],
    )
    found = sorted(
        p.relative_to(tmp_path / "llama_cpp").as_posix() for p in local_guard._library_files()
    )
    assert found == ["ggml.dll", "lib/libggml.dylib", "lib/libllama.so"]


def test_no_package_means_no_library_files(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "llama_cpp", raising=False)
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert local_guard._library_files() == []  # not installed
    (tmp_path / "llama_cpp.py").write_text("")
    importlib.invalidate_caches()
    assert local_guard._library_files() == []  # a module, not a package


def test_the_binding_version_is_read_without_importing_it(monkeypatch):
    llama_cpp = pytest.importorskip("llama_cpp")
    assert local_guard._llama_version() == llama_cpp.__version__

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert local_guard._llama_version() == "(not installed)"


def test_the_guarded_class_is_chosen_only_with_the_guard():
    llama_cpp = pytest.importorskip("llama_cpp")
    assert local_guard.llama_class(False) is llama_cpp.Llama
    guarded = local_guard.llama_class(True)
    assert guarded is not llama_cpp.Llama and issubclass(guarded, llama_cpp.Llama)
