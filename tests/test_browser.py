"""A real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

Opens a notebook, runs a ``%%victor`` cell, watches the output grow while the answer
streams, checks the final Markdown render, and saves screenshots in the test's temp dir.
Needs ``chromium`` from apt (``/usr/bin/chromium``) and the ``browser`` extra.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest

# The browser extra (and Debian's chromium) are what CI installs for this test (make test);
# without playwright the file is skipped, so the dev extra alone still collects the suite.
sync_playwright = pytest.importorskip(
    "playwright.sync_api", reason='needs the browser extra: pip install "victor-ai[browser]"'
).sync_playwright

REPO = Path(__file__).resolve().parents[1]
# CHROMIUM overrides the path (a missing file makes the tests skip, which `make test`'s
# group summary turns into a failure in CI: see tests/must_run.py).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
if not os.path.isfile(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium", allow_module_level=True)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ANSWER = (
    "## Streaming works\n\n"
    + " ".join(f"word{i}" for i in range(60))
    + "\n\n```python\ndef greet(name):\n    return f'Hello, {name}!'\n```"
)

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on 127.0.0.1 serving ``tmp_path``; yields (base URL with token, dir)."""
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        # Keep the user's Jupyter settings and workspaces out of the test.
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    env.pop("VICTOR_STREAM", None)
    root = tmp_path / "notebooks"
    root.mkdir()
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",  # no PyPI queries from the test
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "jupyterlab.log").read_text()
            try:
                if (
                    httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not start in 90 s"
            time.sleep(0.25)
        yield f"{base}/lab/tree/stream.ipynb?token={token}", root
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_victor_cell_streams_in_jupyterlab(jupyterlab, tmp_path):
    url, root = jupyterlab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "%load_ext victor\n"
            "from victor import Agent\n"
            "from victor.testing import ScriptedProvider\n"
            f"agent = Agent(provider=ScriptedProvider([{ANSWER!r}], chunk_delay=0.05))"
        ),
        nbformat.v4.new_code_cell("%%victor --agent agent\nShow me streaming."),
    ]
    nbformat.write(nb, root / "stream.ipynb")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            cells = page.locator(".jp-NotebookPanel .jp-Cell")
            cells.nth(1).wait_for(timeout=60_000)
            # Cells run before the kernel is connected would be dropped: wait for it.
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            # Run both cells: the first one, then the %%victor cell.
            cells.nth(0).locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            page.keyboard.press("Shift+Enter")

            output = cells.nth(1).locator(".jp-OutputArea-output")
            lengths: list[int] = []
            deadline = time.monotonic() + 90
            while True:
                text = output.first.inner_text() if output.count() else ""
                if "word" in text and (not lengths or len(text) != lengths[-1]):
                    lengths.append(len(text))
                    if len(lengths) == 3:
                        page.screenshot(path=str(tmp_path / "victor-streaming.png"))
                if "scripted/test-model" in text:  # the footer: the final render
                    break
                if time.monotonic() > deadline:
                    page.screenshot(path=str(tmp_path / "victor-timeout.png"))
                    raise AssertionError(f"no final render in 90 s; output so far: {text!r}")
                time.sleep(0.05)

            rendered = cells.nth(1).locator(".jp-RenderedMarkdown")
            heading = rendered.locator("h2")
            heading.wait_for()
            assert heading.inner_text().strip() == "Streaming works"
            code = rendered.locator("pre").first.inner_text()
            assert "def greet(name):" in code
            assert rendered.locator("sub").inner_text().startswith("scripted/test-model")
            assert "▍" not in rendered.inner_text()  # the streaming cursor is gone
            page.screenshot(path=str(tmp_path / "victor-final.png"))
        finally:
            browser.close()

    # The text grew while streaming: several partial renders, each longer than the last.
    assert len(lengths) >= 3, lengths
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths), lengths
    assert (tmp_path / "victor-final.png").stat().st_size > 10_000
    assert (tmp_path / "victor-streaming.png").exists()


def test_a_saved_team_timeline_is_still_a_picture_when_reopened(jupyterlab, tmp_path):
    """A reopened notebook is untrusted, so JupyterLab sanitises its HTML outputs: an inline
    <svg> would be stripped to its text. The timeline must still show as a picture."""
    import asyncio

    from victor import AgentTeam
    from victor.testing import FunctionProvider

    team = AgentTeam.pipeline(
        ["writer", "editor"], provider=FunctionProvider(lambda messages, tools: "done")
    )
    result = asyncio.run(team.run("Write a haiku"))
    bundle = result.timeline(deterministic=True)._repr_mimebundle_()

    url, root = jupyterlab
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("result.timeline(deterministic=True)")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    nbformat.write(nb, root / "timeline.ipynb")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url.replace("stream.ipynb", "timeline.ipynb"))
            output = page.locator(".jp-OutputArea-output").first
            chart = output.locator("img").first
            chart.wait_for(timeout=60_000)
            page.wait_for_function("img => img.complete", arg=chart.element_handle())
            width = chart.evaluate("img => img.naturalWidth")
            text = output.inner_text()
            page.screenshot(path=str(tmp_path / "victor-timeline.png"))
        finally:
            browser.close()

    assert width > 300, "the chart image did not render"
    assert "pipeline team" in text and "2 calls" in text  # the title and the table
    assert "event order" not in text  # the chart's own labels were not dumped as text


APPROVAL_SETUP = """\
%load_ext victor
from pathlib import Path
from victor import Agent
from victor.testing import FunctionProvider, call

workspace = Path({root!r})
(workspace / "notes.md").write_text("# Notes\\n- old line\\n")

def writer(name, path, content):
    '''A model that asks to write one file, then reports what the tool said.'''
    def reply(messages, tools):
        if len(messages) == 1:
            return call("write_file", file_path=path, content=content)
        return f"The tool said: {{messages[-1].content}}"
    return Agent(
        provider=FunctionProvider(reply), tools=["write_file"], workspace=workspace, name=name
    )

approve_me = writer("note-taker", "notes.md", "# Notes\\n- new line\\n")
deny_me = writer("cleaner", "evil.py", "import shutil\\nshutil.rmtree('/')\\n")
"""


def test_approval_cards_in_jupyterlab(jupyterlab, tmp_path):
    """approval="ask" (the default) in a real front end: Run all queues both cells; the
    first (%%victor: a sync cell) waits on its card until Approve is clicked, the second
    (top-level await) runs after it, waits on its own card, and Deny refuses the call."""
    url, root = jupyterlab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(APPROVAL_SETUP.format(root=str(root))),
        nbformat.v4.new_code_cell("%%victor --agent approve_me\nAdd a line to the notes."),
        nbformat.v4.new_code_cell('print(await deny_me.run("Write a cleanup script."))'),
    ]
    nbformat.write(nb, root / "approval.ipynb")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url.replace("stream.ipynb", "approval.ipynb"))
            cells = page.locator(".jp-NotebookPanel .jp-Cell")
            cells.nth(2).wait_for(timeout=60_000)
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            cells.nth(0).locator(".jp-InputArea-editor").click()
            for _ in range(3):  # run all three: the later requests queue behind the card
                page.keyboard.press("Shift+Enter")

            first = cells.nth(1).locator(".jp-OutputArea")
            # (Button names also hold the icon's glyph: match on the text.)
            approve = first.locator("button", has_text="Approve")
            approve.wait_for(timeout=60_000)
            card = first.locator(".victor-approval")
            pending = card.inner_text()
            buttons = first.locator("button").all_inner_texts()
            cells.nth(1).screenshot(path="/tmp/approval-card.png")
            page.screenshot(path=str(tmp_path / "approval-pending.png"))
            assert cells.nth(2).locator(".jp-OutputArea-output").count() == 0  # still queued
            approve.click()
            first.get_by_text("The tool said: Replaced notes.md").wait_for(timeout=30_000)
            approved = card.inner_text()
            assert first.locator("button").count() == 0  # the buttons are gone

            second = cells.nth(2).locator(".jp-OutputArea")
            deny = second.locator("button", has_text="Deny")
            deny.wait_for(timeout=30_000)
            second_pending = second.locator(".victor-approval").inner_text()
            deny.click()
            second.get_by_text("The tool said: Error: the user refused").wait_for(timeout=30_000)
            denied = second.locator(".victor-approval").inner_text()
            page.screenshot(path=str(tmp_path / "approval-decided.png"))
        finally:
            browser.close()

    assert (
        pending.startswith("⚠ Approval needed") and "note-taker wants to call write_file" in pending
    )
    assert "-- old line" in pending and "+- new line" in pending  # the diff of notes.md
    assert "Waiting for your answer" in pending
    assert [b.strip() for b in buttons] == ["Approve", "Deny", "Always for write_file in this run"]
    assert approved.startswith("✔ Approved") and "Waiting" not in approved
    assert (root / "notes.md").read_text() == "# Notes\n- new line\n"
    assert "+shutil.rmtree('/')" in second_pending  # a new file: all lines added
    assert denied.startswith("✘ Denied")
    assert not (root / "evil.py").exists()
