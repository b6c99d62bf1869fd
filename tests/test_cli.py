"""The `victor` command: a real run over the Anthropic protocol, options, and errors."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import Text
from victor.cli import main


def use_server(monkeypatch, server) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-cli-test")


def test_run_streams_the_answer(anthropic_server, monkeypatch, capsys):
    use_server(monkeypatch, anthropic_server)
    anthropic_server.script(Text("Recursion is a function calling itself.", chunks=5))
    code = main(["run", "-p", "anthropic", "-t", "0", "--usage", "Explain", "recursion"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "Recursion is a function calling itself.\n"
    body = anthropic_server.requests[-1].body
    assert body["stream"] is True and body["max_tokens"] == 1024
    assert body["messages"][-1]["content"] == "Explain recursion"
    assert err.startswith("[anthropic/claude-sonnet-4-20250514: 10 in, 5 out,")


def test_no_stream_model_and_max_tokens(anthropic_server, monkeypatch, capsys):
    use_server(monkeypatch, anthropic_server)
    anthropic_server.script(Text("done"))
    code = main(
        ["run", "-p", "anthropic", "-m", "claude-x", "--max-tokens", "64", "--no-stream", "go"]
    )
    assert (code, capsys.readouterr().out) == (0, "done\n")
    body = anthropic_server.requests[-1].body
    assert (body["model"], body["max_tokens"], body.get("stream", False)) == ("claude-x", 64, False)


def test_a_profile_with_overrides(anthropic_server, monkeypatch, capsys, tmp_path):
    use_server(monkeypatch, anthropic_server)
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    anthropic_server.script(Text("ok"))
    assert main(["run", "--profile", "production", "-m", "claude-y", "hi"]) == 0
    assert anthropic_server.requests[-1].body["model"] == "claude-y"
    assert main(["profiles"]) == 0
    assert "production     anthropic/" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_1(capsys):
    assert main(["run", "-p", "antropic", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("victor: Unknown provider 'antropic'. Did you mean 'anthropic'?")
    assert "Traceback" not in err


def test_missing_key_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert main(["run", "-p", "anthropic", "hi"]) == 1
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_the_installed_command_lists_providers():
    out = subprocess.run(
        [sys.executable, "-m", "victor.cli", "providers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"anthropic", "openai", "ollama", "local"} <= set(out)


def test_python_dash_m_victor_is_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "victor", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("victor ")


def test_optional_parts_load_on_first_touch_only():
    code = (
        "import sys, victor\n"
        "parts = ('victor.mcp', 'victor.serve', 'victor.telemetry', 'mcp', 'fastapi')\n"
        "assert not any(p in sys.modules for p in parts)\n"
        "print(victor.mcp.server.__name__, victor.serve.create_app.__name__)\n"
        "assert 'victor.mcp' in sys.modules and 'victor.telemetry' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "server create_app\n"
