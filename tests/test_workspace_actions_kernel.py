"""The workspace's hands in a real ipykernel: insert_cell, run_code behind the approval card,
its timeout, bounded output, undo. Driven over the Jupyter protocol as a front end would
(buttons clicked with the comm message JupyterLab sends), the agent run by the loop with a
``victor.testing`` model that asks for the calls.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from tests.test_approval_kernel import KernelDriver

pytestmark = pytest.mark.timeout(180)

SETUP = """
%load_ext victor
import victor
from victor import Agent
from victor.testing import ScriptedProvider, call
from victor.notebook.workspace.actions import action_tools

def coder(*codes, tool="run_code", context=None, **options):
    '''An agent whose model asks for one call per code, then says "done".'''
    agent = Agent(
        provider=ScriptedProvider([*(call(tool, code=c) for c in codes), "done"]),
        tools=action_tools(context),
        **options,
    )
    return agent

def results(agent):
    return [m.content for m in agent.last_run.messages if m.role == "tool"]
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelDriver]:
    with KernelDriver.started(SETUP) as driver:
        yield driver


def payloads(execution) -> list[dict]:
    return execution.reply["content"].get("payload", [])


# -- insert_cell --------------------------------------------------------------------------


def test_insert_cell_asks_the_front_end_for_a_cell_below_and_runs_nothing(kernel):
    execution = kernel.run(
        """
        agent = coder("inserted_value = 42", tool="insert_cell")
        agent.run_sync("put that in a cell")
        print(results(agent))
        """
    )
    assert not execution.errors, execution.errors
    assert payloads(execution) == [
        {"source": "set_next_input", "text": "inserted_value = 42", "replace": False}
    ]
    assert "put in a new cell below" in execution.stdout
    check = kernel.run("print('inserted_value' in globals())")
    assert check.stdout == "False\n"


def test_two_insert_cells_in_one_run_make_one_cell(kernel):
    """Front ends insert one set_next_input per reply: the second joins the first."""
    execution = kernel.run(
        """
        agent = coder("a = 1", "b = 2", tool="insert_cell")
        await agent.run("two cells")
        """
    )
    assert not execution.errors, execution.errors
    assert [p["text"] for p in payloads(execution)] == ["a = 1\n\nb = 2"]


def test_insert_cell_headless_shows_the_code_to_copy(kernel):
    execution = kernel.run(
        """
        agent = coder("headless_value = 1", tool="insert_cell")
        agent.run_sync("put that in a cell")
        print(results(agent))
        """,
        allow_stdin=False,
    )
    shown = [m["content"]["data"] for m in execution.of_type("display_data")]
    proposed = [d for d in shown if "victor-proposed-cell" in d.get("text/html", "")]
    assert proposed and "headless_value = 1" in proposed[0]["text/plain"]
    assert "cannot insert cells" in execution.stdout


#: Code that would run script if it reached the page as HTML (or inside the handler).
EVIL_CODE = (
    "s = '</code></pre></script><script>window.pwned = 1</script>'\n"
    'print("<img src=x onerror=\\"window.pwned = 2\\">", s)  # "quotes" \'too\''
)


class Page(HTMLParser):
    """The elements of an HTML fragment, their attributes, and the text of <code>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.code, self._in_code = "", False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_code = self._in_code or tag == "code"

    def handle_endtag(self, tag):
        self._in_code = self._in_code and tag != "code"

    def handle_data(self, data):
        if self._in_code:
            self.code += data


def test_the_code_to_copy_stays_inert_text_beside_a_copy_button():
    """The fallback where the front end cannot insert a cell (no kernel needed)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from victor.notebook.workspace.actions import _COPY_HANDLER, _show_code

    InteractiveShell.instance()  # where display() sends the bundle
    try:
        with capture_output() as captured:
            _show_code(EVIL_CODE)
    finally:
        InteractiveShell.clear_instance()
    (data,) = (output.data for output in captured.outputs)
    page = Page(data["text/html"])
    assert page.code == EVIL_CODE  # all of it, as text
    assert [tag for tag, _ in page.tags] == ["div", "div", "button", "pre", "code"]
    handlers = [
        (tag, name, value)
        for tag, attrs in page.tags
        for name, value in attrs.items()
        if name.startswith("on") or name in ("src", "href")
    ]
    # The one script is the button's own, fixed: it copies the <code> element's text.
    assert handlers == [("button", "onclick", _COPY_HANDLER)]
    assert "querySelector('code').textContent" in _COPY_HANDLER
    assert data["text/plain"].endswith(EVIL_CODE)


# -- run_code -----------------------------------------------------------------------------


def test_an_approved_run_code_runs_in_the_namespace_and_reports_the_names(kernel):
    """A sync cell waits on the card; Approve runs the code on the kernel's main thread."""
    seen: list[dict[str, str]] = []
    execution = kernel.run(
        """
        rebound_me = "old"
        code = "total = sum(range(10))\\nrebound_me = [1, 2]\\nprint('secret', total)\\ntotal * 2"
        agent = coder(code)
        agent.run_sync("compute it")
        print(results(agent))
        print(total, rebound_me)
        """,
        press=lambda buttons: seen.append(dict(buttons)) or "Approve",
    )
    assert not execution.errors, execution.errors
    assert list(seen[0]) == ["Approve", "Deny", "Always for run_code in this run"]
    (card,) = execution.cards()
    assert card.startswith("[Approved]")
    assert "    total = sum(range(10))" in card  # the code, as lines, not a JSON string
    assert "in-place edits) cannot be undone" in card
    html = [
        m["content"]["data"]["text/html"]
        for m in execution.of_type("display_data")
        if "victor-approval" in m["content"]["data"].get("text/html", "")
    ][0]
    assert '<code class="language-python">total = sum(range(10))\nrebound_me' in html
    assert "cannot be undone" in html  # before the answer: on the pending card
    assert "new: total (int)" in execution.stdout
    assert "rebound: rebound_me (list of 2)" in execution.stdout
    # schema mode (the default): outputs and values do not go to the model
    assert "secret" not in execution.stdout.splitlines()[0]
    assert "stdout: 10 characters, not shown" in execution.stdout
    assert execution.stdout.splitlines()[-1] == "45 [1, 2]"


def test_run_code_from_top_level_await_waits_for_the_card(kernel):
    """An awaiting cell: ipykernel (>= 7.4) hands the click over; the code runs on its loop."""
    execution = kernel.run(
        """
        agent = coder("awaited_value = 'set'")
        await agent.run("set it")
        print(results(agent)[0].splitlines()[1], awaited_value)
        """,
        press=lambda buttons: "Approve",
    )
    assert not execution.errors, execution.errors
    assert execution.stdout == "new: awaited_value (str of 3) set\n"


def test_values_mode_sends_the_output_and_the_last_value(kernel):
    execution = kernel.run(
        """
        agent = coder("print('hello')\\n6 * 7", context="values", approval="auto")
        await agent.run("compute")
        print(results(agent))
        """
    )
    assert not execution.errors, execution.errors
    assert "stdout:\\nhello\\n" in execution.stdout
    assert "value of the last expression: 42" in execution.stdout


def test_a_denied_run_code_changes_nothing(kernel):
    execution = kernel.run(
        """
        keep = "original"
        doomed = [1, 2, 3]
        agent = coder("keep = 'changed'\\ndel doomed\\nfresh = 1")
        before = {k: id(v) for k, v in globals().items() if not k.startswith("_")}
        agent.run_sync("change things")
        print(results(agent))
        after = {k: id(v) for k, v in globals().items() if not k.startswith("_")}
        print(keep, doomed, sorted(after.keys() ^ before.keys() ^ {"before"}))
        print([k for k in before if k != "agent" and after[k] != before[k]])
        """,
        press=lambda buttons: "Deny",
    )
    assert not execution.errors, execution.errors
    assert "the user refused the call to run_code" in execution.stdout
    assert execution.stdout.splitlines()[-2:] == ["original [1, 2, 3] []", "[]"]


def test_headless_run_code_is_refused(kernel):
    execution = kernel.run(
        """
        agent = coder("headless_ran = True")
        agent.run_sync("run it")
        print(results(agent), 'headless_ran' in globals())
        """,
        allow_stdin=False,
    )
    assert "no one can answer here" in execution.stdout
    assert execution.stdout.rstrip().endswith("False")


RUNS = {
    "sync": 'agent.run_sync("loop")',  # on the main thread, fed by victor's loop thread
    "await": 'await agent.run("loop")',  # on the kernel's own loop
    # run_sync in another thread: the code runs there, interrupted by an async exception
    "thread": "import threading\n"
    'worker = threading.Thread(target=agent.run_sync, args=("loop",))\n'
    "worker.start(); worker.join(30)",
}


@pytest.mark.parametrize("how", list(RUNS))
def test_an_endless_loop_is_interrupted_and_the_kernel_lives(kernel, how):
    code = f"before_loop_{how} = 1\\nwhile True:\\n    pass"
    run = textwrap.indent(RUNS[how], " " * 8).lstrip()
    execution = kernel.run(
        f"""
        agent = coder("{code}", approval="auto", tool_timeout=1)
        {run}
        print(results(agent))
        """,
        timeout=60,
    )
    assert not execution.errors, execution.errors
    interrupted = re.search(r"Interrupted after ([\d.]+) s \(tool_timeout=1 s\)", execution.stdout)
    seconds = float(interrupted[1])
    assert 0.9 <= seconds < 3
    assert f"new: before_loop_{how} (int)" in execution.stdout
    alive = kernel.run(f"print(before_loop_{how} + 1)")
    assert alive.stdout == "2\n" and not alive.errors


def test_output_is_bounded(kernel):
    execution = kernel.run(
        """
        agent = coder("for i in range(200_000):\\n    print(i)", approval="auto", context="values")
        agent.run_sync("print a lot")
        (result,) = results(agent)
        print(len(result), "characters left out" in result, result.rstrip().endswith("199999"))
        """
    )
    assert not execution.errors, execution.errors
    size, left_out, tail = execution.stdout.split()
    assert int(size) < 10_000 and left_out == "True" and tail == "True"


def test_an_exception_is_reported_with_its_line(kernel):
    execution = kernel.run(
        """
        agent = coder("half_done = 1\\n1 / 0", approval="auto")
        agent.run_sync("divide")
        print(results(agent))
        """
    )
    assert "ZeroDivisionError: division by zero" in execution.stdout
    assert "1 / 0" in execution.stdout and "new: half_done (int)" in execution.stdout
    assert "Error: The code raised" in execution.stdout


# -- undo ---------------------------------------------------------------------------------


def test_undo_restores_the_names_of_the_last_approved_run(kernel):
    execution = kernel.run(
        """
        x = "x before"
        gone = "gone before"
        agent = coder("x = 'x after'\\ny = 'new'\\ndel gone\\nz = 1", approval="auto")
        agent.run_sync("change")
        z = "changed by the user since"
        print(x, y, 'gone' in globals())
        %victor undo
        print(x, 'y' in globals(), gone, z)
        print(victor.undo())
        """
    )
    assert not execution.errors, execution.errors
    lines = execution.stdout.splitlines()
    assert lines[0] == "x after new False"
    assert lines[1].startswith("Undid the last run_code: removed y; restored gone, x.")
    assert "Kept z: changed again since the run" in lines[1]
    assert lines[2] == "x before False gone before changed by the user since"
    assert lines[3].startswith("Nothing to undo")
