"""The local model cannot take the process down: the AMX guard (with a faked llama.cpp
build report, and for real on this machine's build) and the first use in a child process."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

import pytest

from victor import Agent, ConfigurationError
from victor._machine import available_cpus
from victor.providers.local import guard as local_guard
from victor.providers.local.guard import (
    build_features,
    check_first_use,
    llama_class,
    needs_amx_guard,
)
from victor.providers.local.model import bundled_model_path
from victor.providers.local.provider import LocalProvider

#: llama_print_system_info() of a native build on a Sapphire Rapids Xeon.
AMX_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
    "BMI2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | "
    "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
PORTABLE_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
FRANCE = "What is the capital of France?"


@pytest.fixture
def checks(tmp_path, monkeypatch):
    """First-use verdicts in a fresh folder (the model itself stays where it is)."""
    folder = tmp_path / "llama-checks"
    monkeypatch.setattr(local_guard, "checks_dir", lambda: folder)
    return folder


@pytest.fixture
def amx_build(monkeypatch):
    """This process's llama.cpp reports AMX, as a native build on an AMX Xeon does."""
    monkeypatch.setattr(local_guard, "system_info", lambda: AMX_BUILD)
    monkeypatch.setattr(local_guard, "_guard_logged", False)


def test_the_guard_engages_exactly_when_the_build_has_amx():
    assert build_features(AMX_BUILD)["AMX_INT8"] == "1"
    assert needs_amx_guard(build_features(AMX_BUILD))
    assert not needs_amx_guard(build_features(PORTABLE_BUILD))
    assert not needs_amx_guard(build_features("CPU : NEON = 1 | ARM_FMA = 1 |"))
    assert not needs_amx_guard({})


def test_this_machines_build_is_portable():
    # What make install built: no AMX path to guard against, whatever this CPU has.
    assert not needs_amx_guard(build_features(local_guard.system_info()))
    assert not local_guard.guard_active()


def test_an_amx_build_is_guarded_and_says_why_once(amx_build, caplog):
    with caplog.at_level(logging.INFO, logger="victor.providers.local"):
        assert local_guard.guard_active()
        assert local_guard.guard_active()
    notes = [r for r in caplog.records if "AMX" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert "use_extra_bufts=false" in notes[0].getMessage()
    assert "GGML_NATIVE=OFF" in notes[0].getMessage()


def test_the_guarded_loader_turns_off_extra_buffer_types_for_real():
    path = str(bundled_model_path())
    guarded = llama_class(True)(model_path=path, n_ctx=256, verbose=False)
    plain = llama_class(False)(model_path=path, n_ctx=256, verbose=False)
    try:
        assert guarded.model_params.use_extra_bufts is False
        assert plain.model_params.use_extra_bufts is True  # llama.cpp's default
        text = guarded.create_completion("The capital of France is", max_tokens=3, temperature=0)
        assert text["choices"][0]["text"].strip()
    finally:
        guarded.close()
        plain.close()


async def test_an_agent_on_an_amx_build_loads_guarded_and_answers(amx_build, checks):
    # n_ctx unlike other tests' so this is a load of its own, under the faked report.
    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=8, n_ctx=1536)
    try:
        assert "Paris" in await agent.run(FRANCE)
        assert agent.provider.client().llama.model_params.use_extra_bufts is False
    finally:
        await agent.cleanup()


def test_threads_follow_the_cpu_budget(monkeypatch):
    expected = available_cpus().count
    assert LocalProvider().load_settings["n_threads"] == expected
    assert LocalProvider().load_settings["n_threads_batch"] == expected
    monkeypatch.setenv("CPU_LIMIT", "1")
    assert LocalProvider().load_settings["n_threads"] == 1
    assert LocalProvider(n_threads=3).load_settings["n_threads"] == 3


# -- the first use in a child process ---------------------------------------------------------


def test_first_use_is_tried_once_then_remembered(checks, monkeypatch):
    path = bundled_model_path()
    load = LocalProvider(n_ctx=512).load_settings
    check_first_use(path, load)
    [record] = checks.glob("*.json")
    assert "ok (AMX guard off)" in record.read_text()

    def no_child(*args, **kwargs):
        raise AssertionError("the verdict is cached: no child process")

    monkeypatch.setattr(subprocess, "run", no_child)
    check_first_use(path, load)
    # Other settings are another first use.
    with pytest.raises(AssertionError, match="no child process"):
        check_first_use(path, {**load, "n_threads": 1})


def crashing_child(signum: int):
    def command(spec):
        return [sys.executable, "-c", f"import os; os.kill(os.getpid(), {signum})"]

    return command


@pytest.mark.parametrize("signum", [signal.SIGSEGV, signal.SIGILL])
async def test_a_crash_becomes_a_configuration_error_not_a_dead_process(
    checks, monkeypatch, signum
):
    monkeypatch.setattr(local_guard, "_child_command", crashing_child(signum))
    agent = await Agent.create(provider="local", temperature=0.0, max_tokens=8, n_ctx=640)
    with pytest.raises(ConfigurationError) as caught:
        await agent.run(FRANCE)
    message = str(caught.value)
    assert f"llama.cpp crashed ({signal.Signals(signum).name})" in message
    assert "this process is unharmed" in message
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF' in message and "--force-reinstall" in message
    assert not list(checks.glob("*.json"))  # a crash is never remembered as a pass
    # Once the cause is gone (a rebuild), the same agent works.
    monkeypatch.undo()
    monkeypatch.setattr(local_guard, "checks_dir", lambda: checks)
    assert "Paris" in await agent.run(FRANCE)
    assert len(list(checks.glob("*.json"))) == 1
    await agent.cleanup()


def test_a_python_error_in_the_child_leaves_the_verdict_to_the_real_load(checks, monkeypatch):
    monkeypatch.setattr(
        local_guard, "_child_command", lambda spec: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    check_first_use(bundled_model_path(), {"n_ctx": 512})  # no error: the load will say
    assert not list(checks.glob("*.json"))
