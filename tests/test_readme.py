"""The README's examples run as written.

- Every ```python block runs, offline: on the embedded model (``provider="local"``), on
  ``victor.testing`` providers, or, when it starts with ``# needs: ANTHROPIC_API_KEY`` (or
  ``OPENAI_API_KEY``, ``OLLAMA_HOST``), against the loopback protocol server for that API,
  through the base-URL variables. A block with top-level ``await`` runs in an event loop,
  as in a notebook cell.
- The ```ipython cells run in a real IPython shell, in order, as a notebook would.
- Every ``victor ...`` line of a ```bash block is a command the CLI accepts; the quickstart's
  run for real, and ``app.py`` under ``victor serve`` answers the README's ``curl``.
- The install table names every extra of pyproject.toml and the packages each brings;
  "The two commands" are ``make demo`` and ``make test``, the command CI runs.

Blocks that need the local model are skipped where llama-cpp-python is not installed (the
core suite on other Pythons); the whole suite runs them.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import AnthropicServer, OllamaServer, OpenAIServer
from victor.cli import build_parser

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
HAS_LOCAL_MODEL = importlib.util.find_spec("llama_cpp") is not None
#: The model server each "# needs: VARIABLE" marker stands for: the server, the variable
#: that points victor at it, and the URL to put there.
SERVERS = {
    "ANTHROPIC_API_KEY": (AnthropicServer, "ANTHROPIC_BASE_URL", "{url}"),
    "OPENAI_API_KEY": (OpenAIServer, "OPENAI_BASE_URL", "{url}/v1"),
    "OLLAMA_HOST": (OllamaServer, "OLLAMA_HOST", "{url}"),
}
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<language>\w*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S
)


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # where the block starts in README.md

    def __str__(self) -> str:
        return f"README.md line {self.line}"

    @property
    def needs(self) -> list[str]:
        return re.findall(r"^# needs: (\S+)", self.code, re.M)

    @property
    def needs_local_model(self) -> bool:
        return bool(re.search(r"""provider="local"|-p local\b""", self.code))


def blocks(language: str, text: str = README) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        if match["language"] == language:
            body = textwrap.dedent(match["body"])
            found.append(Block(language, body, text.count("\n", 0, match.start()) + 1))
    return found


def commands(program: str) -> list[list[str]]:
    """The ``program ...`` lines of the README's bash blocks, as argument lists."""
    return [
        shlex.split(line, comments=True)
        for block in blocks("bash")
        for line in block.code.splitlines()
        if line.startswith(program + " ")
    ]


def run_python(block: Block) -> None:
    """Run a block as a notebook cell would: top-level ``await`` runs in an event loop."""
    code = compile(block.code, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, {"__name__": "__readme__"})
    if inspect.iscoroutine(result):
        asyncio.run(result)


@pytest.fixture(scope="module")
def local_model():
    """One reference to the embedded model for the whole module, so blocks share one load
    (the last agent's cleanup would otherwise unload it)."""
    from victor.providers.local import LocalProvider

    provider = LocalProvider()
    yield provider.client()
    asyncio.run(provider.close())


def offline(block: Block, monkeypatch, request=None) -> list:
    """Point the block's ``# needs:`` at loopback servers; skip it without the local model."""
    if block.needs_local_model:
        if not HAS_LOCAL_MODEL:
            pytest.skip("needs the local model (extra local)")
        if request is not None:
            request.getfixturevalue("local_model")
    started = []
    for variable in block.needs:
        assert variable in SERVERS, f"{block}: unknown marker '# needs: {variable}'"
        server_class, url_variable, url = SERVERS[variable]
        server = server_class().start()
        started.append(server)
        monkeypatch.setenv(url_variable, url.format(url=server.url))
        if variable.endswith("_KEY"):
            monkeypatch.setenv(variable, "sk-readme-test")
    return started


# -- ```python ----------------------------------------------------------------------------


@pytest.mark.timeout(300)  # the first local-model block loads the model, on a busy machine
@pytest.mark.parametrize("block", blocks("python"), ids=lambda block: f"line{block.line}")
def test_python_block_runs(block, monkeypatch, tmp_path, request, capsys):
    monkeypatch.chdir(tmp_path)  # files a block writes (checkpoints) land here
    servers = offline(block, monkeypatch, request)
    try:
        run_python(block)
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert server.requests, f"{block} is marked '# needs:' but made no request"
    printed = capsys.readouterr().out
    assert printed.endswith("\n") or not printed, f"{block} leaves its last line open"


def test_a_displayed_answer_is_not_shown_twice():
    """A cell's last expression is shown again as its output: after ``display=True`` has
    shown the answer, the block keeps it in a variable instead."""
    for block in blocks("python"):
        last = ast.parse(block.code).body[-1]
        if isinstance(last, ast.Expr) and "display=True" in ast.unparse(last):
            pytest.fail(f"{block}: the answer would show twice; assign it (answer = ...)")


def test_the_readme_has_python_blocks_of_every_kind():
    found = blocks("python")
    assert len(found) >= 8
    assert any(block.needs for block in found)
    assert any(block.needs_local_model for block in found)
    assert any("asyncio.run(main())" in block.code for block in found)


def test_a_broken_block_fails_the_test(monkeypatch):
    """The runner reports what a block raises, top-level await or not."""
    broken = Block("python", "from victor import Agent\nawait Agent.create(temprature=0)\n", 1)
    with pytest.raises(Exception, match="Did you mean 'temperature'"):
        run_python(broken)
    with pytest.raises(NameError):
        run_python(Block("python", "print(undefined_name)\n", 1))
    with pytest.raises(AssertionError):
        offline(Block("python", "# needs: NO_SUCH_KEY\n", 1), monkeypatch)


def test_a_marked_block_talks_to_the_loopback_server(monkeypatch):
    block = Block(
        "python",
        "# needs: OPENAI_API_KEY\nfrom victor import Agent\n"
        'assert await (await Agent.create(provider="openai")).run("hi") == "ok"\n',
        1,
    )
    (server,) = offline(block, monkeypatch)
    try:
        run_python(block)
    finally:
        server.stop()
    assert len(server.requests) == 1


# -- ```ipython ---------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_ipython_cells_run_in_a_shell(monkeypatch, request):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cells = blocks("ipython")
    assert cells and cells[0].code.startswith("%load_ext victor")
    if not HAS_LOCAL_MODEL:
        pytest.skip("the cells use the local model (extra local)")
    request.getfixturevalue("local_model")
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    # Patching asyncio for nested loops is process-wide: not in the test process.
    monkeypatch.setenv("VICTOR_NESTED_LOOPS", "0")
    for cell in cells:
        result = shell.run_cell(cell.code)
        assert result.success, f"{cell}: {result.error_before_exec or result.error_in_exec!r}"
    assert isinstance(shell.user_ns["answer"], str) and shell.user_ns["answer"].strip()


# -- ```bash ------------------------------------------------------------------------------


def test_every_victor_command_is_one_the_cli_accepts(capsys):
    found = commands("victor")
    assert len(found) >= 4
    parser = build_parser()
    for argv in found:
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"the README's `{shlex.join(argv)}`: {capsys.readouterr().err}")


def environment() -> dict[str, str]:
    """This environment, with the `victor` of this Python first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.timeout(300)
@pytest.mark.skipif(not HAS_LOCAL_MODEL, reason="needs the local model (extra local)")
def test_the_quickstart_commands_run(ollama_server, tmp_path):
    quickstart = README[README.index("**The terminal:**") : README.index("**A hosted model**")]
    env = environment() | {"OLLAMA_HOST": ollama_server.url}  # the default provider answers
    for block in blocks("bash", quickstart):
        for line in block.code.splitlines():
            done = subprocess.run(
                shlex.split(line, comments=True),
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert done.returncode == 0, f"`{line}`: {done.stderr}"
            assert done.stdout.strip(), f"`{line}` printed nothing"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.timeout(300)
@pytest.mark.skipif(not HAS_LOCAL_MODEL, reason="app.py serves the local model (extra local)")
def test_app_py_under_victor_serve_answers_the_curl(tmp_path):
    (app,) = [block for block in blocks("python") if block.code.startswith("# app.py")]
    (tmp_path / "app.py").write_text(app.code)
    (serve,) = [argv for argv in commands("victor") if argv[:2] == ["victor", "serve"]]
    (curl,) = commands("curl")
    port = free_port()
    server = subprocess.Popen(
        [*serve, "--port", str(port)],
        env=environment(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"`{shlex.join(serve)}` exited: {server.stderr.read()}"
            try:
                if httpx.get(url + "/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "victor serve did not start in 60 s"
            time.sleep(0.2)
        curl = [part.replace("http://127.0.0.1:8000", url) for part in curl]
        if shutil.which("curl"):
            done = subprocess.run(curl, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, done.stderr
            answer = httpx.Response(200, content=done.stdout).json()
        else:  # the same request
            body = curl[curl.index("-d") + 1]
            answer = httpx.post(curl[2], content=body, timeout=240).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer["agent"] == "helper" and answer["content"].strip(), answer


# -- install and the two commands ------------------------------------------------------------


def test_the_install_table_names_every_extra_and_what_it_brings():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    install = README[README.index("## Install") : README.index("## Quickstart")]
    rows = dict(re.findall(r"^\| `([\w-]+)` \| (.*)$", install, re.M))
    assert set(rows) == set(extras)
    for extra, requirements in extras.items():
        for requirement in requirements:
            package = re.match(r"[\w.-]+", requirement)[0]
            if package != "victor-ai" and extra != "dev":
                assert f"`{package}`" in rows[extra], f"extra {extra}: {package} is not named"
    for argv in commands("pip"):
        for named in re.findall(r"victor-ai\[([\w,]+)\]", " ".join(argv)):
            assert set(named.split(",")) <= set(extras), named


def test_the_two_commands_are_make_demo_and_make_test():
    section = README[README.index("## The two commands") :]
    first = blocks("bash", section)[0]
    lines = [line for line in first.code.splitlines() if line and not line.startswith("#")]
    assert lines == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test"  # CI runs the README's test command
