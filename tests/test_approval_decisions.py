"""Approval's decisions, in this process: what the gate asks and emits, what each policy
answers and why, what a person is shown, and what ``Ask`` does on each channel.

The terminal and the notebook card are faked at their boundary (``ask_in_terminal``, the
kernel and the notebook's ``ask_in_notebook``); tests/test_approval_terminal.py and
tests/test_approval_kernel.py drive the real ones. Written against mutation testing
(bench/mutation.py): each assertion fails on a deliberate break of the rule it names.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import pytest

from victor import ConfigurationError
from victor.core import seams
from victor.core.events import EventBus, EventScope
from victor.tools import ApprovalDecision, ApprovalRequest, Ask, approval, tool
from victor.tools.context import ToolContext, using_context
from victor.tools.sandbox import Workspace

pytestmark = pytest.mark.timeout(30)


@tool(requires_approval=True)
def deploy(code: str, target: str = "staging") -> str:
    """Deploy code somewhere."""
    return "deployed"


deploy.code_argument = "code"  # type: ignore[attr-defined]
deploy.approval_note = "This cannot be undone."  # type: ignore[attr-defined]


async def gate(policy, arguments=None, the_tool=deploy):
    """Run the gate as the loop does; the result and the two events' data."""
    bus = EventBus()
    scope = EventScope(bus, run_id="run_7", agent="writer")
    with bus.capture("tool.*") as events:
        result = await approval.gate(
            the_tool, arguments or {"code": "print(1)"}, policy, scope, call_id="call_1"
        )
    return result, [(e.type, e.data) for e in events]


async def test_the_gate_asks_with_everything_and_says_what_it_decided():
    seen: list[ApprovalRequest] = []

    def reviewer(request):
        seen.append(request)
        return ApprovalDecision(False, "not today")

    result, events = await gate(reviewer)
    [request] = seen
    assert request == ApprovalRequest(
        "deploy",
        {"code": "print(1)", "target": "staging"},  # validated: defaults filled in
        "Deploy code somewhere.",
        "call_1",
        "writer",
        "run_7",
        None,  # no file change to preview
        "code",
        "This cannot be undone.",
    )
    assert events == [
        (
            "tool.approval_requested",
            {
                "tool_name": "deploy",
                "arguments": {"code": "print(1)", "target": "staging"},
                "call_id": "call_1",
            },
        ),
        (
            "tool.approval_decided",
            {
                "tool_name": "deploy",
                "call_id": "call_1",
                "approved": False,
                "policy": "reviewer",
                "via": "callback",
                "reason": "the user refused the call to deploy: not today",
            },
        ),
    ]
    assert not result.success and result.metadata == {"approved": False}
    assert result.error == "the user refused the call to deploy: not today"


def decided(events) -> tuple:
    data = events[-1][1]
    return data["approved"], data["reason"], data["via"], data["policy"]


async def test_each_policy_answers_with_its_reason_and_channel():
    def yes(request):
        return True

    def decision_yes(request):
        return ApprovalDecision(True)

    def decision_yes_why(request):
        return ApprovalDecision(True, "looks fine")

    def decision_no(request):
        return ApprovalDecision(False)

    def other(request):
        return "yes"

    class Reviewer:  # a callable object without a __name__
        def __call__(self, request):
            raise RuntimeError("down")

    assert decided((await gate("auto"))[1]) == (True, "approved by policy 'auto'", "policy", "auto")
    assert decided((await gate("never"))[1]) == (
        False,
        "the call to deploy was refused: this agent's approval policy is 'never'",
        "policy",
        "never",
    )
    assert decided((await gate(None))[1])[2:] == ("policy", "None")
    assert decided((await gate(yes))[1]) == (True, "approved", "callback", "yes")
    assert decided((await gate(decision_yes))[1])[:3] == (True, "approved", "callback")
    assert decided((await gate(decision_yes_why))[1])[:3] == (True, "looks fine", "callback")
    assert decided((await gate(decision_no))[1])[:3] == (
        False,
        "the user refused the call to deploy",
        "callback",
    )
    assert decided((await gate(other))[1])[:3] == (
        False,
        "the user refused the call to deploy; do not retry it, say what you wanted to do instead",
        "callback",
    )
    assert decided((await gate(Reviewer()))[1]) == (
        False,
        "the call to deploy was refused: the approval callback failed (RuntimeError: down)",
        "callback",
        "Reviewer",
    )
    assert decided((await gate(functools.partial(yes)))[1])[3] == "partial"
    for approved in ("auto", yes, decision_yes):
        assert (await gate(approved))[0] is None  # the call may run


@pytest.fixture
def nobody(monkeypatch):
    """No kernel and no terminal: no one can answer here."""
    monkeypatch.setattr(approval, "_ipython_kernel", lambda: None)
    monkeypatch.setattr(approval, "stdin_is_tty", lambda: False)


async def test_ask_as_a_string_and_as_an_object_asks_with_its_own_settings(nobody):
    assert decided((await gate("ask"))[1]) == (
        False,
        "deploy needs approval and no one can answer here (not in a notebook, and stdin is "
        "not a terminal), so the call was not run. Run it where you can answer, or create the "
        "agent with approval='auto' or approval=<callback> to allow it",
        "nobody",
        "ask",
    )
    # An Ask of one's own is the one asked (its channel, not the shared default's).
    assert "(not in a Jupyter kernel)" in decided((await gate(Ask(channel="widget")))[1])[1]
    assert decided((await gate(Ask(channel="terminal")))[1])[1:] == (
        "deploy needs approval and no one can answer here (stdin is not a terminal), so the "
        "call was not run. Run it where you can answer, or create the agent with "
        "approval='auto' or approval=<callback> to allow it",
        "nobody",
        "ask",
    )


async def test_only_a_person_is_shown_the_change_preview(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(approval, "change_preview", lambda *a: made.append(a) or "the diff")
    write = tool(requires_approval=True, name="write_file")(lambda file_path, content: "")
    args = {"file_path": "a.txt", "content": "x"}
    for policy in ("auto", "never", None):
        await gate(policy, args, write)
    assert made == []  # no one reads it: the file is not read
    seen = []
    await gate(lambda r: seen.append(r.preview), args, write)
    assert seen == ["the diff"] and made == [("write_file", args)]


async def test_a_tool_that_never_asks_is_not_validated_or_gated():
    @tool
    def read(path: str) -> str:
        """Read."""
        return ""

    assert (await gate("never", {"path": 42}, read)) == (None, [])


def test_only_real_policies_pass():
    assert approval.check_policy(print) is print
    for bad in (42, 1.5, ["auto"], "sometimes"):
        with pytest.raises(ConfigurationError, match="is invalid: use 'ask'"):
            approval.check_policy(bad)


def test_ask_checks_its_settings():
    assert repr(Ask()) == "Ask(timeout=None, channel='auto')"
    assert Ask(timeout=0.5).timeout == 0.5  # under a second is a timeout too
    with pytest.raises(ConfigurationError) as caught:
        Ask(channel="email")  # type: ignore[arg-type]
    assert str(caught.value).endswith("use one of auto, widget, input, terminal")


# -- what the person reads --------------------------------------------------------------------


def test_the_request_as_text_shows_each_argument_once():
    request = ApprovalRequest(
        "deploy",
        {
            "code": "import os\nos.remove('x')",
            "target": "café",
            "where": Path("/srv"),
            "exact": "y" * 298,
            "long": "z" * 299,
        },
        code_argument="code",
        note="This cannot be undone.",
    )
    assert request.describe() == "\n".join(
        [
            "the model wants to call deploy:",
            "  code:",
            "    import os",
            "    os.remove('x')",
            '  target = "café"',  # as written, not \\u escapes
            '  where = "/srv"',
            f'  exact = "{"y" * 298}"',  # 300 characters: whole
            f'  long = "{"z" * 298}…',  # 301: cut to 299 and an ellipsis
            "",
            "This cannot be undone.",
        ]
    )


def test_with_a_diff_the_changed_text_is_shown_only_by_the_diff():
    request = ApprovalRequest(
        "edit_file",
        {"file_path": "a.txt", "old_text": "o", "new_text": "n", "patch": "p", "content": "c"}
        | {"replace_all": True},  # after the diff's keys: still shown
        agent="writer",
        preview="--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x\n \n\n",  # ends with a blank line
    )
    assert request.describe() == (
        'writer wants to call edit_file:\n  file_path = "a.txt"\n  replace_all = true\n\n'
        "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x\n "
    )
    ends_in_x = ApprovalRequest("write_file", {}, preview="+X\n")
    assert ends_in_x.describe().endswith("\n\n+X")
    plain = ApprovalRequest("write_file", {"content": "c"})  # no preview: the text itself
    assert plain.describe() == 'the model wants to call write_file:\n  content = "c"'


def preview(tmp_path: Path, name: str, **arguments) -> str | None:
    with using_context(ToolContext(workspace=Workspace(tmp_path))):
        return approval.change_preview(name, arguments)


def test_the_preview_of_a_patch_a_replace_all_and_a_deletion(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\none\n")
    patch = "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n one\n"
    assert preview(tmp_path, "edit_file", file_path="a.txt", patch=patch) == (
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n one\n"
    )
    every = preview(
        tmp_path, "edit_file", file_path="a.txt", old_text="one", new_text="1", replace_all=True
    )
    assert every.count("-one\n") == 2 and every.count("+1\n") == 2
    gone = preview(tmp_path, "edit_file", file_path="a.txt", old_text="two\n", new_text=None)
    assert gone.endswith(" one\n-two\n one\n")
    assert preview(tmp_path, "read_file", file_path="a.txt") is None
    missing = preview(tmp_path, "edit_file", file_path="a.txt", old_text="six", new_text="6")
    assert missing.startswith("(no preview: old_text was not found in 'a.txt'.")
    empty = preview(tmp_path, "edit_file", file_path="a.txt", old_text=None, new_text="6")
    assert empty == "(no preview: old_text is empty: give the exact text to replace)"
    assert (tmp_path / "a.txt").read_text() == "one\ntwo\none\n"  # only shown, not done


def test_a_file_without_a_last_newline_previews_line_by_line(tmp_path):
    (tmp_path / "a.txt").write_text("a\nb")
    shown = preview(tmp_path, "write_file", file_path="a.txt", content="a\nc")
    assert shown.endswith("@@ -1,2 +1,2 @@\n a\n-b\n+c\n")


def test_a_long_preview_is_cut_at_its_limit(tmp_path):
    limit = approval.PREVIEW_LINES
    exact = preview(tmp_path, "write_file", file_path="new.txt", content="x\n" * (limit - 3))
    assert len(exact.splitlines()) == limit and "more lines" not in exact  # 3 header lines
    cut = preview(tmp_path, "write_file", file_path="new.txt", content="x\n" * (limit + 7))
    assert cut.splitlines()[limit:] == ["… 10 more lines"]


# -- Ask on each channel ----------------------------------------------------------------------


class Terminal:
    """The terminal prompt, faked: the answers a person types, and what they were shown."""

    def __init__(self, monkeypatch, *answers: str) -> None:
        self.answers, self.asked = list(answers), []
        monkeypatch.setattr(approval, "_ipython_kernel", lambda: None)
        monkeypatch.setattr(approval, "stdin_is_tty", lambda: True)
        monkeypatch.setattr(approval, "ask_in_terminal", self.ask)

    async def ask(self, name, text, timeout):
        self.asked.append((name, text, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def request(tool_name="deploy", run_id="run_1") -> ApprovalRequest:
    return ApprovalRequest(tool_name, {"code": "x"}, run_id=run_id)


async def test_ask_on_the_terminal_yes_no_and_timeout(monkeypatch):
    terminal = Terminal(monkeypatch, "yes", "no", "timeout", OSError("tty gone"))
    ask = Ask(timeout=2.5)
    assert await ask.decide(request()) == (True, "approved by the user", "terminal")
    assert await ask.decide(request()) == (
        False,
        "the user refused the call to deploy; do not retry it, say what you wanted to do instead",
        "terminal",
    )
    assert await ask.decide(request()) == (
        False,
        "no one answered within 2.5 s, so the call to deploy was refused; do not retry it, "
        "say what you wanted to do instead",
        "terminal",
    )
    assert await ask.decide(request()) == (
        False,
        "the call to deploy was refused: asking for approval failed (OSError: tty gone)",
        "terminal",
    )
    assert terminal.asked[0] == ("deploy", request().describe(), 2.5)


async def test_always_holds_for_that_tool_in_that_run_only(monkeypatch):
    terminal = Terminal(monkeypatch, "always", "no", "no")
    ask = Ask()
    assert await ask.decide(request()) == (
        True,
        "approved by the user for every deploy call in this run",
        "terminal",
    )
    assert await ask.decide(request()) == (
        True,
        "approved: you allowed every deploy call in this run",
        "always",
    )
    assert len(terminal.asked) == 1
    assert (await ask.decide(request(run_id="run_2")))[0] is False  # another run asks
    assert (await ask.decide(request(tool_name="other")))[0] is False  # another tool asks
    assert len(terminal.asked) == 3


async def test_always_is_remembered_for_the_most_recent_runs(monkeypatch):
    monkeypatch.setattr(Ask, "MEMORY", 2)
    terminal = Terminal(monkeypatch, "always", "always", "always", "always", "no")
    ask = Ask()
    await ask.decide(request(run_id="run_1"))
    await ask.decide(request(run_id="run_2"))
    await ask.decide(request("other", run_id="run_1"))  # run_1 is the most recent again
    await ask.decide(request(run_id="run_3"))  # one run too many: run_2 is forgotten
    assert len(terminal.asked) == 4
    assert (await ask.decide(request(run_id="run_1")))[2] == "always"
    assert (await ask.decide(request("other", run_id="run_1")))[2] == "always"
    assert (await ask.decide(request(run_id="run_3")))[2] == "always"
    assert (await ask.decide(request(run_id="run_2")))[2] == "terminal"  # asked again
    assert len(terminal.asked) == 5


async def test_ask_as_a_callback_gives_a_decision(monkeypatch):
    Terminal(monkeypatch, "yes", "no")
    assert await Ask()(request()) == ApprovalDecision(True, None)
    refused = await Ask()(request())
    assert refused.approved is False and refused.reason.startswith("the user refused")


class Notebook:
    """The notebook front end, faked: whether widgets work, and the answers given."""

    def __init__(self, monkeypatch, kernel, widgets=True, *answers: str) -> None:
        self.widgets, self.answers, self.asked = widgets, list(answers), []
        monkeypatch.setattr(approval, "_ipython_kernel", lambda: kernel)
        monkeypatch.setattr(approval, "stdin_is_tty", lambda: True)
        self.kernel = kernel
        monkeypatch.setattr(seams, "front_end", self.front_end)

    def front_end(self, name: str) -> Notebook:
        assert name == "kernel_approval", name
        return self

    def widgets_work(self, kernel) -> bool:
        assert kernel is self.kernel  # this kernel's widgets, asked of it
        return self.widgets

    async def ask_in_notebook(self, request, channel, timeout):
        self.asked.append((request.tool_name, channel, timeout))
        return self.answers.pop(0)


PERSON = SimpleNamespace(_allow_stdin=True)  # a cell run from a front end that takes input
HEADLESS = SimpleNamespace(_allow_stdin=False)  # nbclient, nbval, papermill


def test_where_in_a_kernel(monkeypatch):
    Notebook(monkeypatch, PERSON, True)
    assert Ask().where() == ("widget", "")
    assert Ask(channel="input").where() == ("input", "")
    assert Ask(channel="widget").where() == ("widget", "")
    assert Ask(channel="terminal").where() == ("terminal", "")  # stdin is a TTY here
    Notebook(monkeypatch, PERSON, False)
    assert Ask().where() == ("input", "")  # no widgets: the input box
    Notebook(monkeypatch, HEADLESS, True)
    assert Ask().where() == (
        None,
        "the notebook runs without a person: its front end takes no input, as under "
        "nbclient, nbval or papermill",
    )
    assert Ask(channel="input").where()[0] is None
    Notebook(monkeypatch, SimpleNamespace(), True)  # a kernel that does not say: nobody
    assert Ask().where()[0] is None


def test_where_outside_a_kernel(monkeypatch):
    Notebook(monkeypatch, None, True)
    assert Ask().where() == ("terminal", "")
    assert Ask(channel="widget").where() == (None, "not in a Jupyter kernel")
    assert Ask(channel="input").where() == (None, "not in a Jupyter kernel")
    monkeypatch.setattr(approval, "stdin_is_tty", lambda: False)
    assert Ask(channel="terminal").where() == (None, "stdin is not a terminal")
    assert Ask().where() == (None, "not in a notebook, and stdin is not a terminal")


async def test_ask_in_a_notebook_uses_the_card_with_its_timeout(monkeypatch):
    notebook = Notebook(monkeypatch, PERSON, True, "always", "yes")
    ask = Ask(timeout=9)
    assert await ask.decide(request()) == (
        True,
        "approved by the user for every deploy call in this run",
        "widget",
    )
    assert (await ask.decide(request(run_id="run_2"))) == (True, "approved by the user", "widget")
    assert notebook.asked == [("deploy", "widget", 9), ("deploy", "widget", 9)]


def test_the_kernel_is_found_only_through_a_loaded_ipython(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert approval._ipython_kernel() is None
    kernel = object()
    shell = SimpleNamespace(kernel=kernel)
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    assert approval._ipython_kernel() is kernel
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    assert approval._ipython_kernel() is None  # IPython, but not running
