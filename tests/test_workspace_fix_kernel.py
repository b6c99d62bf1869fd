"""``%victor fix`` and ``%victor explain`` in a real ipykernel, over the Jupyter protocol.

The model is the Anthropic protocol server on 127.0.0.1 (every request captured, to see
what left the kernel) or a ``victor.testing`` model; the Apply and Dismiss buttons are
clicked with the comm message a front end sends, while the ``%victor fix`` cell waits.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator

import pytest

from tests.servers import Text
from tests.test_approval_kernel import Execution, KernelDriver

pytestmark = pytest.mark.timeout(180)

SETUP = """
%load_ext victor
import pandas as pd
from victor import Agent
from victor.testing import FunctionProvider

asked = []

def fixer_reply(answer):
    def reply(messages, tools):
        asked.append(messages[-1].content)
        return answer
    return reply

FIXED = "```python\\ntotal = sum(int(p) for p in prices)\\n```\\nThe prices are strings."
fixer = Agent(provider=FunctionProvider(fixer_reply(FIXED)))
"""

FAILING = "prices = ['3', '4', 'SECRET-5']\ntotal = sum(prices)"


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelDriver]:
    with KernelDriver.started(SETUP) as driver:
        yield driver


def run_clicking(kernel: KernelDriver, code: str, label: str | None) -> Execution:
    """Run ``code``; click the button called ``label`` when it appears."""
    execution = kernel.send(code)
    deadline = time.monotonic() + 60
    idle = False
    while not idle:
        assert time.monotonic() < deadline, execution.messages
        try:
            msg = kernel.kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != execution.msg_id:
            continue
        execution.messages.append(msg)
        content = msg["content"]
        if msg["msg_type"] == "comm_open":
            state = content["data"].get("state", {})
            if state.get("_model_name") == "ButtonModel" and state["description"] == label:
                kernel.click(content["comm_id"])
        idle = msg["msg_type"] == "status" and content["execution_state"] == "idle"
    while execution.reply is None:
        reply = kernel.kc.get_shell_msg(timeout=10)
        if reply["parent_header"].get("msg_id") == execution.msg_id:
            execution.reply = reply
    return execution


def fix_card(execution: Execution) -> dict[str, str]:
    """The fix card as last shown."""
    shown = [
        m["content"]["data"]
        for m in execution.of_type("display_data", "update_display_data")
        if "victor-fix" in m["content"]["data"].get("text/html", "")
    ]
    assert shown, execution.messages
    return shown[-1]


def fail(kernel: KernelDriver) -> None:
    failed = kernel.run(FAILING)
    assert failed.errors == ["TypeError: unsupported operand type(s) for +: 'int' and 'str'"]


def test_fix_shows_a_diff_and_apply_inserts_the_fixed_cell(kernel):
    fail(kernel)
    execution = run_clicking(kernel, "%victor --agent fixer fix", "Apply")
    assert not execution.errors, execution.errors
    card = fix_card(execution)
    assert card["text/plain"].startswith("[✔ Fix applied]")
    assert "-total = sum(prices)" in card["text/plain"]
    assert "+total = sum(int(p) for p in prices)" in card["text/plain"]
    assert "The prices are strings." in card["text/plain"]
    assert execution.reply["content"]["payload"] == [
        {
            "source": "set_next_input",
            "text": "total = sum(int(p) for p in prices)",
            "replace": False,
        }
    ]
    # What the model was sent: the cell, the error, the variables as schema only.
    asked = kernel.run("print(asked[-1])").stdout
    assert FAILING in asked and "TypeError: unsupported operand" in asked
    assert "- prices: list of 3" in asked
    assert "SECRET-5" not in asked.replace(FAILING, "")  # only in the cell's own text
    # Nothing ran: total is still undefined.
    assert kernel.run("print('total' in globals())").stdout == "False\n"


def test_dismiss_inserts_nothing(kernel):
    fail(kernel)
    execution = run_clicking(kernel, "%victor --agent fixer fix", "Dismiss")
    assert fix_card(execution)["text/plain"].startswith("[Fix dismissed]")
    assert execution.reply["content"]["payload"] == []


def test_headless_fix_shows_the_diff_without_buttons(kernel):
    fail(kernel)
    execution = kernel.run("%victor --agent fixer fix", allow_stdin=False)
    assert not execution.errors, execution.errors
    assert not [m for m in execution.of_type("comm_open")]
    card = fix_card(execution)
    assert "+total = sum(int(p) for p in prices)" in card["text/plain"]
    assert "Run %victor fix in a notebook front end" in card["text/plain"]
    assert execution.reply["content"]["payload"] == []


def test_values_mode_sends_the_values(kernel):
    fail(kernel)
    kernel.run("from victor.notebook.workspace import set_context; set_context('values')")
    try:
        run_clicking(kernel, "%victor --agent fixer fix", "Dismiss")
        asked = kernel.run("print(asked[-1])").stdout
    finally:
        kernel.run("set_context('schema')")
    assert "value: ['3', '4', 'SECRET-5']" in asked


def test_fix_without_a_failure_says_so(kernel):
    execution = kernel.run(
        "import sys\nsys.last_value = None\n%victor --agent fixer fix", allow_stdin=False
    )
    assert execution.errors == [
        "MagicUsageError: %victor fix works on the last error, and no cell has failed yet: "
        "run the failing cell, then %victor fix"
    ]


def test_fix_and_explain_over_http_send_no_dataframe_values(kernel, anthropic_server):
    """The session's agent (provider=anthropic on the protocol server), schema mode: the
    DataFrame's columns and dtypes reach the server, its cells do not."""
    anthropic_server.script(
        Text("```python\nby_city = sales.groupby('city')['amount'].sum()\n```\nUse `amount`."),
        Text("The column is called `amount`, not `amout`: pandas raised a KeyError."),
    )
    setup = kernel.run(
        f"""
        import os
        os.environ["ANTHROPIC_API_KEY"] = "sk-ant-kernel-test"
        sales = pd.DataFrame({{"city": ["Oslo-SECRET", "Lima"], "amount": [101.25, 202.5]}})
        %victor config provider=anthropic model=claude-test base_url={anthropic_server.url}
        """
    )
    assert not setup.errors, setup.errors
    failed = kernel.run("by_city = sales.groupby('city')['amout'].sum()")
    assert failed.errors and failed.errors[0].startswith("KeyError")
    fixed = run_clicking(kernel, "%victor fix", "Apply")
    assert not fixed.errors, fixed.errors
    assert fixed.reply["content"]["payload"][0]["text"] == (
        "by_city = sales.groupby('city')['amount'].sum()"
    )
    explained = kernel.run("%victor explain")
    assert not explained.errors, explained.errors
    shown = explained.of_type("display_data", "update_display_data")[-1]["content"]["data"]
    assert "not `amout`" in shown["text/markdown"]

    bodies = [json.dumps(r.body, ensure_ascii=False) for r in anthropic_server.requests]
    assert len(bodies) == 2
    for body in bodies:
        assert "sales: DataFrame 2×2; columns: city (" in body  # object, or str on pandas 3
        assert "), amount (float64)" in body
        assert "KeyError" in body
        for value in ("Oslo-SECRET", "Lima", "101.25", "202.5"):
            assert value not in body
    # explain joined the session's conversation; fix did not
    assert "What went wrong?" in bodies[1] and "What went wrong?" not in bodies[0]
