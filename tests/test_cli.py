"""The `victor` command: a real run over the Anthropic protocol, options, and errors."""

from __future__ import annotations

import inspect
import io
import re
import socket
import subprocess
import sys

import pytest

from tests.servers import Status, Text, ToolCalls
from victor import Agent
from victor.cli import main
from victor.providers import get_provider_class

#: What the Python API uses when max_tokens is not given; the command uses the same.
API_MAX_TOKENS = inspect.signature(Agent.create).parameters["max_tokens"].default


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
    assert body["stream"] is True and body["max_tokens"] == API_MAX_TOKENS == 4096
    assert body["messages"][-1]["content"] == "Explain recursion"
    assert err.startswith("[anthropic/claude-sonnet-4-20250514: 10 in, 5 out,")
    assert body["temperature"] == 0


def test_max_tokens_default_is_the_apis_and_help_says_it(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert f"(default {API_MAX_TOKENS}, as in Python)" in usage
    most = {name: get_provider_class(name).max_temperature for name in ("anthropic", "openai")}
    assert f"provider's maximum (anthropic {most['anthropic']}, openai {most['openai']})" in usage


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
        "parts = ('victor.mcp', 'victor.serve', 'victor.telemetry', 'mcp', 'fastapi',\n"
        "         'victor.acp', 'acp')\n"
        "assert not any(p in sys.modules for p in parts)\n"
        "print(victor.mcp.server.__name__, victor.serve.create_app.__name__)\n"
        "assert 'victor.mcp' in sys.modules and 'victor.telemetry' not in sys.modules\n"
        "print(victor.acp.serve_stdio.__name__, 'acp' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "server create_app\nserve_stdio False\n"


# -- errors: once, in the command's words (issue 25, item 3) -----------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retry_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("victor: retrying ")]


def test_no_server_the_error_once_retries_as_short_lines(monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    assert main(["run", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("is not reachable") == 1, err
    assert retry_lines(err) == [
        line for line in err.splitlines() if "retrying" in line
    ]  # no other line mentions retrying
    pattern = r"victor: retrying ollama \(([12])/2\) in \d\.\d s after connection refused"
    assert [re.fullmatch(pattern, line)[1] for line in retry_lines(err)] == ["1", "2"]
    last = err.splitlines()[-1]
    assert last.startswith("victor: [ollama] Ollama is not reachable at http://127.0.0.1:")
    assert last.endswith(
        "-p local runs an embedded model with no server; -p anthropic or "
        "-p openai use a hosted API (after 3 attempts)"
    )
    assert "provider=" not in err and "Traceback" not in err
    assert main(["run", "--quiet", "hi"]) == 1
    assert capsys.readouterr().err.splitlines() == [last]  # the error alone


def test_server_errors_500_and_429_once(ollama_server, openai_server, monkeypatch, capsys):
    now = {"retry-after": "0"}
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    ollama_server.script(*[Status(500, body={"error": "runner crashed"}, headers=now)] * 3)
    assert main(["run", "-p", "ollama", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("runner crashed") == 1, err
    assert [line.split(" s after ")[-1] for line in retry_lines(err)] == ["HTTP 500"] * 2

    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    openai_server.script(
        Status(429, headers=now), Status(500, headers=now), Status(500, headers=now)
    )
    assert main(["run", "-p", "openai", "--no-stream", "hi"]) == 1
    err = capsys.readouterr().err
    assert [line.split(" s after ")[-1] for line in retry_lines(err)] == ["HTTP 429", "HTTP 500"]
    [error] = [line for line in err.splitlines() if not line.startswith("victor: retrying")]
    assert error.startswith("victor: [openai] server error: the service failed: ")
    assert error.endswith("(HTTP 500) (request id req_3) (after 3 attempts)")
    assert "retrying may help" not in err and "api_key=" not in err


def test_settings_errors_use_the_options(monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert main(["run", "-p", "anthropic", "hi"]) == 1
    assert capsys.readouterr().err == (
        "victor: No API key for provider 'anthropic': set the ANTHROPIC_API_KEY environment "
        "variable\n"
    )
    assert main(["run", "-p", "ollama", "--max-tokens", "0", "hi"]) == 1
    assert capsys.readouterr().err.startswith("victor: --max-tokens 0 is invalid: ")


# -- temperature: the provider's range (item 8) -------------------------------------------


def test_temperature_limits_are_the_providers(openai_server, anthropic_server, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    openai_server.script(Text("warm"))
    assert main(["run", "-p", "openai", "-t", "1.5", "hi"]) == 0
    assert capsys.readouterr().out == "warm\n"
    assert openai_server.requests[-1].body["temperature"] == 1.5

    use_server(monkeypatch, anthropic_server)
    assert main(["run", "-p", "anthropic", "-t", "1.5", "hi"]) == 1
    assert capsys.readouterr().err == "victor: -t 1.5 is invalid: anthropic takes 0.0 to 1.0\n"
    assert anthropic_server.requests == []
    assert main(["run", "-p", "openai", "-t", "2.5", "hi"]) == 1
    assert "-t 2.5 is invalid: openai takes 0.0 to 2.0" in capsys.readouterr().err


# -- what the agent does, on the terminal (item 6) -----------------------------------------


def test_tool_calls_are_lines_on_stderr(anthropic_server, monkeypatch, capsys, tmp_path):
    use_server(monkeypatch, anthropic_server)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("remember the milk\n")
    anthropic_server.script(
        ToolCalls([("read_file", {"file_path": "notes.txt"})], text="Let me look."),
        ToolCalls([("write_file", {"file_path": "todo.txt", "content": "milk"})]),
        Text("Milk."),
    )
    code = main(
        ["run", "-p", "anthropic", "--tools", "files", "--approval", "never", "--usage", "todo"]
    )
    out, err = capsys.readouterr()
    assert code == 0 and out == "Let me look.Milk.\n"
    lines = err.splitlines()
    assert lines[0].startswith("→ read_file(file_path='notes.txt') → ok (")
    assert lines[0].endswith(" ms)") and "chars, " in lines[0]
    assert lines[1].startswith(
        "→ write_file(file_path='todo.txt', content='milk') → failed: the call to write_file was "
        "refused: this agent's approval policy is 'never' ("
    )
    assert lines[2].startswith("[anthropic/claude-sonnet-4-20250514: 30 in, ")
    assert ", 3 model calls, 2 tool calls, " in lines[2]
    assert len(lines) == 3 and not (tmp_path / "todo.txt").exists()

    anthropic_server.script(ToolCalls([("read_file", {"file_path": "notes.txt"})]), Text("Milk."))
    assert main(["run", "-p", "anthropic", "--tools", "read_file", "--quiet", "todo"]) == 0
    assert capsys.readouterr() == ("Milk.\n", "")


def test_a_refusal_for_want_of_a_terminal_names_the_option(anthropic_server, monkeypatch, capsys):
    use_server(monkeypatch, anthropic_server)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal: nobody to ask
    write = ToolCalls([("write_file", {"file_path": "x", "content": "y"})])
    anthropic_server.script(write, Text("ok"))
    assert main(["run", "-p", "anthropic", "--tools", "write_file", "go"]) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert "or run with --approval auto to allow it" in line and "approval=" not in line


def test_victor_tools_lists_tools_toolsets_and_approval(capsys):
    assert main(["tools"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [read] = [line for line in lines if line.startswith("tool    read_file ")]
    [write] = [line for line in lines if line.startswith("tool    write_file ")]
    [files] = [line for line in lines if line.startswith("toolset files ")]
    assert "[approval" not in read and write.endswith("[approval]")
    assert files.endswith("[read_file, list_files, search_code, write_file*, edit_file*]")
    assert "run_linter" in "".join(lines) and "approval: depends on arguments" in "".join(lines)
    assert lines[-1].startswith("[approval]: each call waits for what --approval says")


def test_an_empty_answer_is_said_to_be_one(anthropic_server, monkeypatch, capsys):
    use_server(monkeypatch, anthropic_server)
    anthropic_server.script(Text("", output_tokens=0))
    assert main(["run", "-p", "anthropic", "hi"]) == 0
    out, err = capsys.readouterr()
    said = "(empty answer: the model stopped at once; stop reason end, 0 token(s) out)\n"
    assert (out, err) == ("", said)
    anthropic_server.script(Text("", output_tokens=0))
    assert main(["run", "-p", "anthropic", "--no-stream", "hi"]) == 0
    assert capsys.readouterr() == ("", said)


# -- batch --agent in the forms serve takes (item 8) ---------------------------------------


def on_a_terminal(monkeypatch) -> None:
    """Batch progress as on a terminal, whatever shell an earlier test left behind."""
    from victor.batch import progress

    monkeypatch.setattr(progress, "detect_target", lambda: "print")


def test_batch_agent_as_serve_takes_it(anthropic_server, monkeypatch, capsys, tmp_path):
    use_server(monkeypatch, anthropic_server)
    on_a_terminal(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(
        "from victor import Agent\n"
        "helper = Agent(role='helper', provider='anthropic')\n"
        "def shout(item):\n"
        "    return item.upper()\n"
    )
    (tmp_path / "items.jsonl").write_text('"one"\n"two"\n')
    anthropic_server.default_reply = Text("answer")
    for spec, outputs in (
        ("app.py:helper", ["answer", "answer"]),
        ("app.py", ["answer", "answer"]),  # the file's one agent
        ("app.py:shout", ["ONE", "TWO"]),
    ):
        assert main(["batch", "items.jsonl", "--agent", spec, "-c", "1"]) == 0, spec
        out = capsys.readouterr().out
        assert [line.split('"output": ')[1].split('"')[1] for line in out.splitlines()] == outputs
    assert main(["batch", "items.jsonl", "--agent", "app.py:nobody"]) == 1
    assert "has no 'nobody'" in capsys.readouterr().err


def test_batch_agent_is_named_as_serve_names_it(anthropic_server, monkeypatch, capsys, tmp_path):
    """An agent given no name or role is "tutor" under `victor serve app.py:tutor`: the
    batch's summary line says the same, not the default "agent"."""
    use_server(monkeypatch, anthropic_server)
    on_a_terminal(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(
        "from victor import Agent\ntutor = Agent(provider='anthropic')\n"
    )
    (tmp_path / "items.jsonl").write_text('"one"\n')
    assert main(["batch", "items.jsonl", "--agent", "app.py:tutor"]) == 0
    assert capsys.readouterr().err.startswith("tutor: 1/1 done")


def test_a_failed_batch_says_why_on_the_terminal(monkeypatch, capsys, tmp_path):
    """With -o the results go to the file: the terminal still says why items failed, once,
    in the command's words."""
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")  # nobody there
    on_a_terminal(monkeypatch)
    (tmp_path / "items.jsonl").write_text('"one"\n"two"\n')
    out = tmp_path / "out.jsonl"
    argv = ["batch", str(tmp_path / "items.jsonl"), "-p", "ollama", "-o", str(out)]
    assert main(argv) == 1
    [line] = [line for line in capsys.readouterr().err.splitlines() if "items failed" in line]
    assert line.startswith(f"victor: 2 of 2 items failed (each error is in {out}); item 0: ")
    assert "Ollama is not reachable" in line and "-p local" in line
    assert 'provider="local"' not in line


# -- first use of the embedded model (item 9) -----------------------------------------------


@pytest.mark.timeout(240)  # assembling 250 MB and a child process, on a busy machine too
def test_the_first_local_run_says_what_it_is_doing(monkeypatch, capsys, tmp_path):
    """A fresh VICTOR_HOME: the bundled model is assembled there and tried in a child
    process, some seconds of silence otherwise; the next run has nothing to say."""
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path))
    task = ["run", "-p", "local", "-t", "0", "--max-tokens", "8", "What is the capital of France?"]
    assert main(task) == 0
    out, err = capsys.readouterr()
    assert "Paris" in out
    [model] = (tmp_path / "models").glob("*.gguf")
    assert err.splitlines() == [
        f"victor: first use of the bundled model: assembling gemma3-270m "
        f"({model.stat().st_size / 1e6:.0f} MB) into {model.parent}, then trying it once in a "
        f"child process (~10 s)"
    ]
    assert main(task) == 0
    assert capsys.readouterr().err == ""
