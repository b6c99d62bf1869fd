"""The workspace's hands in a real browser, in JupyterLab and in Notebook 7 (Debian's Chromium
driven by Playwright): insert_cell puts a cell below, run_code's card Approve runs the code
and the variable appears, ``%victor fix`` shows the diff and Apply inserts the fixed cell;
where the front end cannot insert a cell, the code's Copy button copies it and none of it
runs. Screenshots are saved in the test's temp dir.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _free_port

sync_playwright = pytest.importorskip(
    "playwright.sync_api", reason='needs the browser extra: pip install "victor-ai[browser]"'
).sync_playwright

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)

SETUP = """\
%load_ext victor
from victor import Agent
from victor.notebook.workspace.actions import action_tools
from victor.testing import ScriptedProvider, call

inserter = Agent(
    provider=ScriptedProvider([call("insert_cell", code="inserted_by_agent = 7"), "Proposed."]),
    tools=action_tools(),
)
runner = Agent(
    provider=ScriptedProvider([call("run_code", code="approved_value = 6 * 7"), "Ran it."]),
    tools=action_tools(),
)
fixer = Agent(provider=ScriptedProvider(["```python\\nresult = 10 / 2\\n```\\nDivide by two."]))
copier = Agent(
    provider=ScriptedProvider([call("insert_cell", code=EVIL), "Shown."]), tools=action_tools()
)
print("ready")
"""

#: Proposed code that would run script if it reached the page as HTML or inside a handler.
EVIL = (
    "s = '</code></pre></script><script>window.pwned = 1</script>'\n"
    "print(\"<img src=x onerror='window.pwned = 2'>\", s)"
)
COPY_CELL = (
    "get_ipython().kernel._allow_stdin = False  # as under nbclient: nobody to insert cells\n"
    "print(await copier.run('Propose it.'))"
)

CELLS = [
    f"EVIL = {EVIL!r}\n" + SETUP,
    "%%victor --agent inserter\nPropose a cell.",
    "%%victor --agent runner\nCompute it.",
    "print('value:', approved_value)",
    "result = 10 / 0",
    "%victor --agent fixer fix",
    COPY_CELL,
]


@pytest.fixture(params=["jupyterlab", "notebook"])
def front_end(request, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab or Notebook 7 on 127.0.0.1 serving a notebook; yields (app, its URL)."""
    app = request.param
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    env.pop("VICTOR_STREAM", None)
    root = tmp_path / "notebooks"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, root / "workspace.ipynb")
    log = (tmp_path / f"{app}.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            app,
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--{'LabApp' if app == 'jupyterlab' else 'JupyterNotebookApp'}.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / f"{app}.log").read_text()
            try:
                status = httpx.get(f"{base}/api/status", params={"token": token}, timeout=2)
                if status.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{app} did not start in 90 s"
            time.sleep(0.25)
        path = "lab/tree" if app == "jupyterlab" else "notebooks"
        yield app, f"{base}/{path}/workspace.ipynb?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_insert_run_code_and_fix_in_a_real_front_end(front_end, tmp_path):
    app, url = front_end
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1200})
            origin = url.split("/lab/")[0].split("/notebooks/")[0]
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(url)
            cells = page.locator(".jp-Notebook .jp-Cell")
            cells.nth(len(CELLS) - 1).wait_for(timeout=60_000)

            def cell(text: str):
                return cells.filter(has=page.locator(".jp-InputArea-editor", has_text=text)).first

            def run(text: str) -> None:
                cell(text).locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Enter")

            def sources() -> list[str]:
                return [c.locator(".jp-InputArea-editor").inner_text().strip() for c in cells.all()]

            # Cells run before the kernel is connected would be dropped: retry the setup.
            for _ in range(20):
                run('print("ready")')
                try:
                    cell('print("ready")').get_by_text("ready", exact=True).wait_for(timeout=5_000)
                    break
                except Exception:  # noqa: BLE001 - not connected yet
                    continue
            else:
                raise AssertionError("the kernel never ran the setup cell")

            # 1. insert_cell: a new cell right below, not run.
            run("Propose a cell.")
            cell("Propose a cell.").get_by_text("Proposed.").wait_for(timeout=30_000)
            page.wait_for_function(
                "n => document.querySelectorAll('.jp-Notebook .jp-Cell').length > n",
                arg=len(CELLS),
                timeout=10_000,
            )
            after_insert = sources()
            page.screenshot(path=str(tmp_path / f"{app}-insert-cell.png"))

            # 2. run_code: the card waits; Approve runs the code in the kernel.
            run("Compute it.")
            output = cell("Compute it.").locator(".jp-OutputArea")
            approve = output.locator("button", has_text="Approve")
            approve.wait_for(timeout=30_000)
            card = output.locator(".victor-approval").inner_text()
            page.screenshot(path=str(tmp_path / f"{app}-run-code-card.png"))
            approve.click()
            output.get_by_text("Ran it.").wait_for(timeout=30_000)
            run("print('value:', approved_value)")
            cell("print('value:', approved_value)").get_by_text("value: 42").wait_for(
                timeout=30_000
            )

            # 3. %victor fix: the diff, then Apply inserts the fixed cell below.
            run("result = 10 / 0")
            cell("result = 10 / 0").get_by_text("ZeroDivisionError").first.wait_for(timeout=30_000)
            run("%victor --agent fixer fix")
            fix_output = cell("%victor --agent fixer fix").locator(".jp-OutputArea")
            apply = fix_output.locator("button", has_text="Apply")
            apply.wait_for(timeout=30_000)
            diff = fix_output.locator(".victor-fix").inner_text()
            page.screenshot(path=str(tmp_path / f"{app}-fix-diff.png"))
            apply.click()
            fix_output.get_by_text("Fix applied").wait_for(timeout=30_000)
            page.wait_for_function(
                "n => document.querySelectorAll('.jp-Notebook .jp-Cell').length > n",
                arg=len(CELLS) + 1,
                timeout=10_000,
            )
            after_fix = sources()
            page.screenshot(path=str(tmp_path / f"{app}-fix-applied.png"))

            # 4. Where the front end cannot insert a cell: the code, and a button to copy it.
            run("print(await copier.run('Propose it.'))")
            copy_output = cell("copier.run('Propose it.')").locator(".jp-OutputArea")
            copy_output.get_by_text("Shown.", exact=True).wait_for(timeout=30_000)
            shown = copy_output.locator(".victor-proposed-cell code").inner_text()
            copy_output.locator("button.victor-copy").click()
            copy_output.locator("button.victor-copy", has_text="Copied").wait_for(timeout=10_000)
            copied = page.evaluate("navigator.clipboard.readText()")
            pwned = page.evaluate("window.pwned === undefined ? null : window.pwned")
            page.screenshot(path=str(tmp_path / f"{app}-copy-code.png"))
        finally:
            browser.close()

    below = after_insert.index("%%victor --agent inserter\nPropose a cell.") + 1
    assert after_insert[below] == "inserted_by_agent = 7"
    assert "approved_value = 6 * 7" in card and "cannot be undone" in card
    assert "-result = 10 / 0" in diff and "+result = 10 / 2" in diff
    fix_at = after_fix.index("%victor --agent fixer fix")
    assert after_fix[fix_at + 1] == "result = 10 / 2"
    assert (tmp_path / f"{app}-fix-applied.png").stat().st_size > 10_000
    # The copy button copies the code exactly, and none of it ran as script.
    assert shown == EVIL and copied == EVIL
    assert pwned is None and dialogs == []
