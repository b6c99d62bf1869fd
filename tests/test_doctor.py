"""`victor doctor` and `%victor doctor`: what this machine can do, on real parts."""

from __future__ import annotations

import asyncio
import sys

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from victor.cli import main
from victor.doctor import Report, build_checks, diagnose
from victor.notebook.magics import VictorMagics

SECRET = "sk-ant-doctor-secret-1234"


def test_the_embedded_model_as_default_provider_passes(monkeypatch, capsys):
    monkeypatch.setenv("VICTOR_PROVIDER", "local")
    code = main(["doctor", "--offline"])
    out = capsys.readouterr().out
    assert code == 0, out
    for section in ("System", 'Local model (provider "local")', "Providers", "Default provider"):
        assert f"\n{section}\n" in out
    assert "usable CPU(s), from " in out
    # What make install built: no AVX-512 or AMX whatever this CPU has (the instruction
    # sets listed depend on the architecture: AVX... on x86-64, NEON on ARM).
    build = next(line for line in out.splitlines() if "llama-cpp-python " in line)
    assert "portable build: " in build, build
    assert "AVX512" not in build and "AMX" not in build, build
    assert "amx guard    not needed" in out
    assert "sha256 " in out and "(verified)" in out
    assert "first use    loads and generates" in out
    assert "local        local can work; from VICTOR_PROVIDER" in out


def test_a_working_native_build_is_information_not_a_warning():
    """llama.cpp's own report of a build made with -march=native on an AMX Xeon (the format
    of llama_print_system_info): it works here, guarded, so nothing is marked as a problem."""
    native = (
        "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
        "AVX512 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
    )
    report = Report()
    for check in build_checks(native):
        report.add("Local model", check)
    lines = str(report).splitlines()
    build = next(line for line in lines if "llama-cpp-python " in line)
    assert build.startswith("  · llama.cpp    llama-cpp-python ")
    assert build.endswith("machine-specific build: AVX AVX2 FMA F16C AVX512 AMX_INT8")
    assert any(line.startswith("  · amx guard    active: ") for line in lines)
    assert not any(line.lstrip().startswith(("!", "✗")) for line in lines)
    portable = build_checks("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 |")
    assert [c.status for c in portable] == ["ok", "ok"]


def test_unreachable_default_provider_fails_with_what_to_do(monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens on the discard port
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    assert "✗ ollama       no key needed; http://127.0.0.1:9 cannot be reached" in out
    assert "-> start it (`ollama serve`) or set OLLAMA_HOST" in out
    assert "ollama cannot work (see above); VICTOR_PROVIDER is unset" in out
    assert "-> set VICTOR_PROVIDER=local to use the embedded model" in out


def test_reachable_servers_and_keys_never_shown(
    monkeypatch, capsys, ollama_server, anthropic_server
):
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("VICTOR_PROVIDER", "anthropic")
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"✓ ollama       no key needed; {ollama_server.url} answers, " in out
    assert f"✓ anthropic    ANTHROPIC_API_KEY is set; {anthropic_server.url} answers" in out
    assert "! openai       not configured: OPENAI_API_KEY is not set" in out
    assert SECRET not in out


def test_missing_key_for_the_default_provider(monkeypatch, capsys):
    monkeypatch.setenv("VICTOR_PROVIDER", "openai")
    assert main(["doctor", "--offline"]) == 1
    out = capsys.readouterr().out
    assert "-> export OPENAI_API_KEY=...\n" in out  # the command has no api_key=
    assert "openai cannot work (see above); from VICTOR_PROVIDER" in out


async def test_offline_the_default_provider_is_not_said_to_work(monkeypatch):
    # --offline does not reach servers: a configured Ollama is "not tried", not "can work".
    monkeypatch.setenv("VICTOR_PROVIDER", "ollama")
    report = await diagnose(network=False)
    [default] = report.sections["Default provider"]
    assert default.status == "info", default
    assert default.detail.startswith("ollama is configured, not tried (--offline)"), default
    assert "can work" not in default.detail
    assert report.ok  # nothing found wrong: the exit status stays 0


async def test_without_llama_cpp_it_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    monkeypatch.setenv("VICTOR_PROVIDER", "local")
    report = await diagnose(network=False)
    assert not report.ok
    [llama] = report.sections['Local model (provider "local")']
    assert (llama.status, llama.detail) == ("fail", "llama-cpp-python is not installed")
    assert 'pip install --no-cache-dir "victor-ai[local]"' in llama.fix
    assert "CMAKE_ARGS=" in llama.fix


def test_in_a_notebook(monkeypatch):
    monkeypatch.setenv("VICTOR_PROVIDER", "local")
    monkeypatch.setenv("VICTOR_NESTED_LOOPS", "0")
    shell = InteractiveShell.instance()
    shell.register_magics(VictorMagics(shell))
    with capture_output() as captured:
        result = shell.run_cell("%victor doctor")
    assert result.success
    [shown] = [o.data for o in captured.outputs]
    assert "first use    loads and generates" in shown["text/plain"]
    assert "<table>" in shown["text/html"] and "Default provider" in shown["text/html"]


def test_providers_of_your_own_are_checked_without_hiding_the_others(monkeypatch):
    """An in-process provider registered by the user needs no server; one that cannot be
    made without arguments is reported, and the rest are still checked."""
    from victor.doctor import provider_checks
    from victor.providers import registry
    from victor.testing import FunctionProvider, ScriptedProvider

    class Echo(FunctionProvider):
        def __init__(self, **settings):
            super().__init__(lambda messages: messages[-1].content, **settings)

    monkeypatch.setitem(registry._registry, "echo", Echo)
    monkeypatch.setitem(registry._registry, "scripted", ScriptedProvider)  # needs its replies
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    checks = asyncio.run(provider_checks(network=False))
    assert checks["echo"][0] and checks["echo"][1].detail == "no key needed; runs in this process"
    works, check = checks["scripted"]
    assert not works and check.status == "fail" and check.detail.startswith("unavailable (")
    assert checks["anthropic"][1].detail == "not configured: ANTHROPIC_API_KEY is not set"
    assert "local" not in checks and "llamacpp" not in checks


def test_a_provider_that_runs_in_this_process_has_no_server_to_check(monkeypatch):
    """In-process is the provider's own fact (``in_process``), also with a base URL."""
    from victor.doctor import provider_checks
    from victor.providers import registry
    from victor.testing import FunctionProvider

    class Embedded(FunctionProvider):
        def __init__(self, **settings):
            settings.setdefault("base_url", "http://192.0.2.1:9")  # where its weights come from
            super().__init__(lambda messages: "hi", **settings)

    monkeypatch.setitem(registry._registry, "embedded", Embedded)
    works, check = asyncio.run(provider_checks(network=False))["embedded"]
    assert works and (check.status, check.detail) == ("ok", "no key needed; runs in this process")


def test_a_first_use_says_what_the_silent_seconds_are_for(monkeypatch, capsys, tmp_path):
    """A fresh VICTOR_HOME: doctor assembles the bundled model and tries it in a child
    process (some seconds) before its report; it says so first, as `victor run` does."""
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    main(["doctor", "--offline"])
    err = capsys.readouterr().err
    assert err.startswith("victor: first use of the bundled model: assembling "), err
    assert f"into {tmp_path / 'models'}, then trying it once in a child process" in err
    main(["doctor", "--offline"])
    assert capsys.readouterr().err == ""
