"""The notebook toolset's eyes in a real ipykernel, driven through the agent loop over the
Anthropic protocol server (and the OpenAI and Ollama ones): every tool, its bad input, and
what leaves the machine.

The planted values ("SECRET-CELL-VALUE-1234", 987654.321) are computed in the cells, never
written in their source: read_cells and last_error send code in schema mode, and the test
is about values, which only ``context="values"`` may send.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.servers import Call, Text, ToolCalls
from tests.test_approval_kernel import KernelDriver

pytestmark = pytest.mark.timeout(180)

SECRET = "SECRET-CELL-VALUE-1234"
NUMBER = "987654.321"

SETUP = """
import os
os.environ["ANTHROPIC_API_KEY"] = "sk-ant-workspace-test"
from victor import Agent
early = Agent(provider="anthropic", model="claude-test", tools=["notebook"])
print("before load_ext:", sorted(t.name for t in early.tools))
%load_ext victor
import numpy as np, pandas as pd
secret = "SECRET-CELL-" + "VALUE-" + str(1000 + 234)
number = 1975308.642 / 2
sales = pd.DataFrame({"city": [secret, "Lyon", None], "revenue": [number, 2.5, 3.5]})
readings = np.array([number, 1.0, 2.0])
note = secret + " in a string"

class Hangs:
    def __repr__(self):
        import time
        time.sleep(30)
        return "never"

stuck = Hangs()

def scale(x, factor=2):
    '''Multiply x by factor.'''
    return x * factor / (factor - 2)
"""

#: One turn asking for every tool (and their bad input), then an answer.
EVERY_TOOL = [
    Call("list_variables", {}, id="list"),
    Call("inspect_variable", {"name": "sales"}, id="frame"),
    Call("inspect_variable", {"name": "readings"}, id="array"),
    Call("inspect_variable", {"name": "note"}, id="string"),
    Call("inspect_variable", {"name": "scale"}, id="function"),
    Call("inspect_variable", {"name": "sale"}, id="unknown"),
    Call("inspect_variable", {"name": "stuck"}, id="hangs"),
    Call("last_error", {}, id="error"),
    Call("read_cells", {"last": 3}, id="cells"),
]


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelDriver]:
    driver = KernelDriver()
    try:
        setup = driver.run(SETUP)
        assert not setup.errors, setup.errors
        assert (
            "before load_ext: ['insert_cell', 'inspect_variable', 'last_error', "
            "'list_variables', 'read_cells', 'run_code']" in setup.stdout
        ), setup.stdout
        failed = driver.run("scale(number)")  # a ZeroDivisionError for last_error
        assert failed.errors == ["ZeroDivisionError: float division by zero"]
        yield driver
    finally:
        driver.close()


def ask(kernel: KernelDriver, server, options: str, calls: list[Call]) -> dict[str, str]:
    """Run a %%victor cell whose model calls ``calls``, then answers; the tool results the
    server received, by call id."""
    server.script(ToolCalls(calls), Text("done"))
    execution = kernel.run(
        f"""
        %victor config provider=anthropic model=claude-test base_url={server.url}
        """
    )
    assert not execution.errors, execution.errors
    execution = kernel.run(f"%%victor --new {options}\nlook at my data\n")
    assert not execution.errors, execution.errors
    last = server.requests[-1].body
    return {
        block["tool_use_id"]: _text(block["content"])
        for message in last["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    }


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def everything_sent(server) -> str:
    return "\n".join(r.raw.decode() for r in server.requests)


def test_schema_mode_sends_no_values_and_every_tool_answers(kernel, anthropic_server):
    results = ask(kernel, anthropic_server, "--tools notebook", EVERY_TOOL)

    sent = everything_sent(anthropic_server)
    assert SECRET not in sent and NUMBER not in sent and "987654" not in sent
    assert "sales: pandas.DataFrame, shape 3x2" in results["list"]
    assert "readings: numpy.ndarray, shape 3, 24 B" in results["list"]
    assert "np" not in results["list"].split() and "In:" not in results["list"]
    assert "city: " in results["frame"] and "revenue: float64" in results["frame"]
    assert "shape (3,), dtype float64" in results["array"]
    assert "length 34" in results["string"]  # len(secret) + 12
    assert "signature: scale(x, factor=2)" in results["function"]
    assert "Multiply x by factor." in results["function"]
    assert (
        "no variable 'sale' in the notebook. Did you mean 'scale', 'sales'?" in results["unknown"]
    )
    assert "stuck: Hangs" in results["hangs"]  # schema mode never calls the repr
    assert "ZeroDivisionError: float division by zero" in results["error"]
    assert "return x * factor / (factor - 2)" in results["error"]  # the line, with source
    assert "the cell that raised it (cell In[2]):\nscale(number)" in results["error"]
    assert "the kernel's input history In/Out" in results["cells"]
    assert "scale(number)" in results["cells"] and "output:" not in results["cells"]


def test_values_mode_sends_samples_and_a_hanging_repr_is_bounded(kernel, anthropic_server):
    results = ask(kernel, anthropic_server, "--context values", EVERY_TOOL)

    assert SECRET in results["frame"] and NUMBER in results["frame"]
    assert "nulls: city=1" in results["frame"]
    assert "max 987654.321" in results["array"]
    assert f"{SECRET} in a string" in results["string"]
    assert "repr: <__main__.Hangs: repr timed out after 1 s>" in results["hangs"] or (
        "repr timed out after 1 s" in results["hangs"]
    )
    assert f"x = {NUMBER}" in results["error"]  # the failing frame's locals
    sent = everything_sent(anthropic_server)
    assert SECRET in sent and NUMBER in sent  # the same check as above can fail
    alive = kernel.run("print(len(sales))")  # the hanging repr did not take the kernel
    assert alive.stdout == "3\n"


def test_none_mode_refuses_to_describe(kernel, anthropic_server):
    results = ask(kernel, anthropic_server, "--context none", EVERY_TOOL[:2])
    assert all("context='none'" in text for text in results.values()), results
    assert SECRET not in everything_sent(anthropic_server)


def test_read_cells_reads_the_saved_notebook(kernel, anthropic_server, tmp_path: Path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Sales"), nbformat.v4.new_code_cell("sales.head()")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="the saved output\n")]
    path = tmp_path / "analysis.ipynb"
    nbformat.write(nb, path)
    setup = kernel.run(f"os.environ['JPY_SESSION_NAME'] = {str(path)!r}")
    assert not setup.errors
    try:
        schema = ask(kernel, anthropic_server, "--tools notebook", [Call("read_cells", {}, "c")])
        values = ask(kernel, anthropic_server, "--context values", [Call("read_cells", {}, "c")])
    finally:
        kernel.run("del os.environ['JPY_SESSION_NAME']")
    assert "the saved notebook analysis.ipynb (unsaved edits" in schema["c"]
    assert "[0] markdown:\n# Sales" in schema["c"] and "saved output" not in schema["c"]
    assert "output: the saved output" in values["c"]


def test_a_thousand_variables_list_in_under_100_ms(kernel):
    execution = kernel.run(
        """
        import time
        from victor.tools.registry import registry
        from victor import run_sync
        for i in range(1000):
            globals()[f"v{i}"] = list(range(i % 50)) if i % 3 else f"text {i}"
        tool = registry.get("list_variables")
        run_sync(tool.run({}))  # the first call starts victor's loop thread, loads jsonschema
        started = time.perf_counter()
        listed = run_sync(tool.run({}))
        took = time.perf_counter() - started
        assert listed.output.endswith("more (inspect_variable takes any name)"), listed
        print(listed.output.count("\\n") + 1, round(took * 1000, 1))
        for i in range(1000):
            del globals()[f"v{i}"]
        """
    )
    assert not execution.errors, execution.errors
    lines, took_ms = execution.stdout.split()
    assert 200 < int(lines) < 1000  # bounded: the rest is counted, not listed
    assert float(took_ms) < 100, f"{took_ms} ms"  # typically ~5 ms: a 20x margin


def test_outside_a_kernel_the_tools_say_so(monkeypatch):
    import asyncio

    from victor.notebook.workspace import notebook_tools

    # Another test in this process may have made an IPython shell: none here.
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        monkeypatch.setattr(ipython, "get_ipython", lambda: None)

    arguments = {"inspect_variable": {"name": "x"}, "insert_cell": {"code": "1"}}
    arguments["run_code"] = arguments["insert_cell"]
    for tool in notebook_tools().tools:
        result = asyncio.run(tool.run(arguments.get(tool.name, {})))
        assert not result.success
        assert "not in a Jupyter kernel" in result.error, result.error


def test_a_bad_context_is_named():
    from victor.errors import ConfigurationError
    from victor.notebook.workspace import notebook_tools

    with pytest.raises(ConfigurationError, match="context='value' is unknown: use 'schema'"):
        notebook_tools(context="value")


def test_the_embedded_model_calls_list_variables_in_the_kernel(kernel):
    execution = kernel.run(
        """
        local = Agent(
            provider="local", tools=["list_variables"], tool_choice="required",
            temperature=0.0, max_tokens=32,
        )
        local.run_sync("Which variables does my notebook hold?")
        for m in local.last_run.messages:
            if m.role == "tool":
                print(m.name, m.is_error, m.content.splitlines()[0])
        """
    )
    assert not execution.errors, execution.errors
    first = execution.stdout.splitlines()[0]
    assert first.startswith("list_variables False "), execution.stdout


def test_a_ten_million_row_frame_is_described_in_under_200_ms():
    import time

    import numpy as np
    import pandas as pd

    from victor.notebook.workspace.describe import describe

    # 1.6 GB of zero pages the kernel maps on first touch: made at once, and a description
    # that copied or scanned it all would still pay for every row (~1 s for isna().sum()).
    data = np.zeros((10_000_000, 20))
    data[0, 0] = float(NUMBER)
    frame = pd.DataFrame(data, columns=[f"c{i}" for i in range(20)], copy=False)
    for mode in ("schema", "values"):
        describe(frame, "frame", mode, 6000)  # pandas' first-call set-up is not the point
        started = time.perf_counter()
        text = describe(frame, "frame", mode, 6000)
        took = time.perf_counter() - started
        assert took < 0.2, f"{mode}: {took * 1000:.0f} ms"  # ~40 ms in values mode
        assert "shape 10000000x20" in text and "c19: float64" in text
        assert (NUMBER in text) == (mode == "values")  # the first row, in values mode only


def test_set_context_sets_the_mode_of_the_tools_named_notebook():
    from victor.notebook.workspace import set_context
    from victor.tools.registry import registry

    inspect = {t.name: t for t in registry.resolve(["notebook"])}["inspect_variable"]
    assert inspect.mode == "schema"
    set_context("values")
    try:
        assert inspect.mode == "values"
    finally:
        set_context("schema")


def test_per_agent_context_over_the_openai_protocol(kernel, openai_server):
    """Agent(tools=[notebook_tools(context=...)]) in Python, on another provider's protocol:
    the same variable sent as schema by one agent and with its value by the other."""
    look = [Call("inspect_variable", {"name": "note"}, id="n")]
    openai_server.script(ToolCalls(look), Text("done"), ToolCalls(look), Text("done"))
    execution = kernel.run(
        f"""
        from victor.notebook.workspace import notebook_tools
        os.environ["OPENAI_API_KEY"] = "sk-workspace-test"
        for tools in (["notebook"], [notebook_tools(context="values")]):
            Agent(
                provider="openai", model="gpt-test", base_url={openai_server.url + "/v1"!r},
                tools=tools,
            ).run_sync("what is in note?")
        """
    )
    assert not execution.errors, execution.errors
    chats = [r.raw.decode() for r in openai_server.requests]
    assert len(chats) == 4
    assert "note: str" in chats[1] and SECRET not in chats[1]  # the schema agent's result
    assert f"{SECRET} in a string" in chats[3]  # the values agent's


def test_the_notebook_tools_over_the_ollama_protocol(kernel, ollama_server):
    """An agent on Ollama's wire protocol (NDJSON stream, tool calls as objects, results by
    tool name) explores the kernel with the notebook toolset; schema mode holds there too."""
    calls = [
        Call("list_variables", {}),
        Call("inspect_variable", {"name": "sales"}),
        Call("inspect_variable", {"name": "sale"}),
        Call("last_error", {}),
        Call("read_cells", {"last": 2}),
    ]
    ollama_server.script(ToolCalls(calls), Text("done"))
    execution = kernel.run(
        f"""
        agent = Agent(
            provider="ollama", model="llama3.2:latest", base_url={ollama_server.url!r},
            tools=["notebook"],
        )
        print(agent.run_sync("look at my data"))
        """
    )
    assert not execution.errors, execution.errors
    assert execution.stdout == "done\n"
    first, last = (request.body for request in ollama_server.requests)
    offered = {spec["function"]["name"] for spec in first["tools"]}
    assert {"list_variables", "inspect_variable", "last_error", "read_cells"} <= offered
    results = [m for m in last["messages"] if m["role"] == "tool"]
    assert [m["tool_name"] for m in results] == [call.name for call in calls]
    listed, frame, unknown, error, cells = (m["content"] for m in results)
    assert "sales: pandas.DataFrame, shape 3x2" in listed
    assert "city: " in frame and "revenue: float64" in frame
    assert "Did you mean 'scale', 'sales'?" in unknown
    assert "ZeroDivisionError: float division by zero" in error
    assert "the kernel's input history In/Out" in cells
    sent = everything_sent(ollama_server)
    assert SECRET not in sent and NUMBER not in sent and "987654" not in sent
