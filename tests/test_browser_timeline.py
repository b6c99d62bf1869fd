"""The interactive team timeline in a real browser: JupyterLab on 127.0.0.1, Debian's
Chromium driven by Playwright (the setup of tests/test_browser.py).

A team runs live with ``display=True``: the chart grows while it runs; then hover, click,
zoom, fit, hide a lane, toggle a kind and the keyboard are tried on the finished widget.
The same team runs live again from a ``%%victor --agent team`` cell.
The saved notebook, reopened untrusted in the same front end, and its nbconvert HTML show
the static chart. Screenshots are kept in the test's temp dir (``timeline-*.png``), for
JupyterLab and Notebook 7 each.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import nbformat
import pytest

from tests import test_browser
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, sync_playwright

#: The JupyterLab server fixture of test_browser.py.
lab_server = test_browser.jupyterlab

pytestmark = pytest.mark.timeout(300)

SETUP = """\
import asyncio, itertools, json
from victor import AgentTeam
from victor.testing import FunctionProvider
calls = itertools.count()

async def reply(messages, tools):
    # Staggered, slow enough to watch the chart grow (about 3 s in all).
    await asyncio.sleep(0.3 * (next(calls) % 5 + 1))
    if "Vote for" in messages[-1].content:
        return json.dumps({"vote": "A", "reason": "it is prime"})
    return "7"

team = AgentTeam.consensus([f"m{i}" for i in range(5)], provider=FunctionProvider(reply))
%load_ext victor
"""
TASK = "Pick a number between 1 and 9"


def _open(page, url: str):
    page.goto(url)
    # (The workspace may restore an earlier tab: only the notebook on show counts.)
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    cells.first.wait_for(timeout=60_000)
    return cells


def _run_all(page, cells, count: int, url: str) -> None:
    # Cells run before the kernel is connected would be dropped: wait for an idle kernel.
    base, token = url.split("/lab/")[0], url.split("token=")[1]
    deadline = time.monotonic() + 60
    while True:
        kernels = httpx.get(f"{base}/api/kernels", params={"token": token}).json()
        # (While a kernel starts, the server may answer with an error object.)
        if isinstance(kernels, list) and any(k["execution_state"] == "idle" for k in kernels):
            break
        assert time.monotonic() < deadline, "no idle kernel in 60 s"
        time.sleep(0.25)
    time.sleep(1)
    cells.nth(0).locator(".jp-InputArea-editor").click()
    for _ in range(count):
        page.keyboard.press("Shift+Enter")


def _watch(page, cell, shot: Path) -> list[int]:
    """The number of bars the cell's widget draws, each time it changes, until the run
    completes; a screenshot at the third."""
    widget = cell.locator(".vtl")
    widget.wait_for(timeout=60_000)
    svg = widget.locator("svg").first
    counts: list[int] = []
    deadline = time.monotonic() + 90
    while "completed" not in (widget.locator(".vtl-title").inner_text() or ""):
        drawn = int(svg.get_attribute("data-drawn") or 0)
        if not counts or drawn != counts[-1]:
            counts.append(drawn)
            if len(counts) == 3:
                page.screenshot(path=str(shot))
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)
    return counts


def _range(svg) -> tuple[float, float]:
    return float(svg.get_attribute("data-t0")), float(svg.get_attribute("data-t1"))


@pytest.mark.parametrize("front_end", ["jupyterlab", "notebook7"])
def test_the_timeline_widget_live_and_interactive(lab_server, tmp_path, front_end):
    """The same server serves JupyterLab (/lab/tree/...) and Notebook 7 (/notebooks/...)."""
    url, root = lab_server
    page_url = url.replace("stream.ipynb", "team.ipynb")
    if front_end == "notebook7":
        page_url = page_url.replace("/lab/tree/", "/notebooks/")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell(f"result = await team.run({TASK!r}, display=True)"),
        nbformat.v4.new_code_cell(f"%%victor --agent team\n{TASK}"),
    ]
    nbformat.write(nb, root / "team.ipynb")
    shots = tmp_path

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            cells = _open(page, page_url)
            _run_all(page, cells, 2, url)
            # Live: the number of bars drawn grows while the team works.
            counts = _watch(page, cells.nth(1), shots / "timeline-live.png")
            widget = cells.nth(1).locator(".vtl")  # the final update may render it anew
            svg = widget.locator("svg").first
            page.wait_for_function(
                "el => el.querySelectorAll('rect.b').length > 20", arg=svg.element_handle()
            )
            page.screenshot(path=str(shots / "timeline-final.png"))
            static_hidden = not cells.nth(1).locator(".victor-timeline").first.is_visible()

            # Hover a model call: the tooltip names agent, kind, start, duration, tokens.
            bar = widget.locator('rect.b[data-kind="model"][data-lane="m0"]').first
            bar.hover()
            tip = widget.locator(".vtl-tip")
            tip.wait_for(state="visible")
            tooltip = tip.inner_text()
            page.screenshot(path=str(shots / "timeline-hover.png"))

            # Click it: the side panel holds the prompt it was given and its answer.
            bar.click()
            panel = widget.locator(".vtl-panel")
            panel.wait_for(state="visible")
            prompt = panel.locator('pre[data-field="prompt"]').inner_text()
            page.screenshot(path=str(shots / "timeline-panel.png"))

            # Zoom with the wheel: the visible range narrows; "fit" brings it all back.
            whole = _range(svg)
            box = svg.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
            for _ in range(4):
                page.mouse.wheel(0, -200)
                time.sleep(0.05)
            page.wait_for_function(
                "([el, t1]) => parseFloat(el.getAttribute('data-t1')) < t1",
                arg=[svg.element_handle(), whole[1]],
            )
            zoomed = _range(svg)
            # Drag pans: the range moves, its width stays.
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40, steps=5)
            page.mouse.up()
            time.sleep(0.1)
            panned = _range(svg)
            page.screenshot(path=str(shots / "timeline-zoomed.png"))
            widget.locator(".vtl-fit").click()
            time.sleep(0.1)
            fitted = _range(svg)

            # Hide a lane (shift-click its label), then a kind (the legend).
            before_m1 = widget.locator('rect.b[data-lane="m1"]').count()
            widget.locator('text.vtl-lane[data-lane="m1"]').click(modifiers=["Shift"])
            page.wait_for_function(
                "el => !el.querySelector('rect.b[data-lane=\"m1\"]')", arg=svg.element_handle()
            )
            hidden_lane_labels = widget.locator('text.vtl-lane[data-lane="m1"]').count()
            widget.locator('.vtl-kind[data-kind="model"]').click()
            time.sleep(0.1)
            models_shown = widget.locator('rect.b[data-kind="model"]').count()
            page.screenshot(path=str(shots / "timeline-filtered.png"))
            widget.locator('.vtl-kind[data-kind="model"]').click()
            widget.locator('.vtl-show-lane[data-lane="m1"]').click()
            time.sleep(0.1)
            restored = widget.locator('rect.b[data-lane="m1"]').count()
            # A plain click on a lane's name highlights it: the other lanes fade.
            widget.locator('text.vtl-lane[data-lane="m2"]').click()
            time.sleep(0.1)
            faded = widget.locator('rect.b[data-lane="m3"]').first.get_attribute("opacity")
            kept = widget.locator('rect.b[data-lane="m2"]').first.get_attribute("opacity")
            widget.locator('text.vtl-lane[data-lane="m2"]').click()

            # Keyboard: Tab moves from bar to bar, Enter opens the focused one. The bars'
            # order is read once the chart has settled after the clicks above (a redraw
            # between reading it and the Tab made this flaky), then the next one is expected.
            time.sleep(0.3)
            widget.locator("rect.b").first.focus()
            order = page.evaluate(
                "el => [...el.querySelectorAll('rect.b')].map(r => r.getAttribute('data-id'))",
                svg.element_handle(),
            )
            start = page.evaluate("document.activeElement.getAttribute('data-id')")
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.getAttribute('data-id')")
            # A redraw (a zoom out: every bar stays drawn) keeps the keyboard's place.
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
            page.mouse.wheel(0, 200)
            page.wait_for_function(
                "([el, t1]) => parseFloat(el.getAttribute('data-t1')) > t1",
                arg=[svg.element_handle(), whole[1]],
            )
            kept_focus = page.evaluate("document.activeElement.getAttribute('data-id')")
            page.keyboard.press("Enter")
            opened = panel.locator("h4").first.inner_text()
            first_id = order[order.index(start) + 1]

            # Live from a %%victor cell too: run_sync underneath, the cell's thread blocked.
            cells.nth(2).locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            magic_counts = _watch(page, cells.nth(2), shots / "timeline-live-magic.png")
            magic = cells.nth(2).locator(".jp-OutputArea")
            answer = magic.locator(".jp-RenderedMarkdown").last  # then the answer
            answer.wait_for(timeout=30_000)
            magic_answer = answer.inner_text().strip()
            page.wait_for_function(
                "el => el.querySelectorAll('rect.b').length > 20",
                arg=magic.locator(".vtl svg").first.element_handle(),
            )

            page.keyboard.press("Control+s")
            time.sleep(2)
        finally:
            browser.close()

    # Live: several partial charts, each bigger than the last (await, and %%victor).
    assert len(counts) >= 3 and counts == sorted(counts), counts
    assert len(magic_counts) >= 3 and magic_counts == sorted(magic_counts), magic_counts
    assert magic_answer == "7"
    assert tooltip.startswith("m0 · model call") and "tokens" in tooltip and "start" in tooltip
    assert "duration" in tooltip
    assert TASK in prompt
    assert zoomed[1] - zoomed[0] < (whole[1] - whole[0]) * 0.7, (whole, zoomed)
    assert panned[0] > zoomed[0] and abs((panned[1] - panned[0]) - (zoomed[1] - zoomed[0])) < 1e-6
    assert fitted == pytest.approx(whole)
    assert before_m1 > 0 and hidden_lane_labels == 0 and restored == before_m1
    assert models_shown == 0
    assert float(faded) < 0.5 and float(kept) == 1
    assert focused == first_id and opened
    assert kept_focus == focused, "a redraw lost the focused bar"
    for name in ("live", "live-magic", "final", "hover", "panel", "zoomed", "filtered"):
        assert (shots / f"timeline-{name}.png").stat().st_size > 5_000, name

    # The saved notebook: the static chart, then the widget's view.
    saved = nbformat.read(root / "team.ipynb", as_version=4)
    static, view = (output["data"] for output in saved.cells[1].outputs)
    assert "victor-timeline" in static["text/html"] and "completed" in static["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in view
    assert static_hidden  # while the widget lives, its static twin is not shown
    reopened_url = page_url.replace("team.ipynb", "reopened.ipynb")
    _static_chart_when_reopened(saved, reopened_url, root, tmp_path)


def _static_chart_when_reopened(saved, page_url: str, root: Path, tmp_path: Path) -> None:
    """The notebook the front end saved, reopened untrusted (no signature) in the same front
    end, and converted by nbconvert: the static chart, without a kernel or the network."""
    from nbconvert import HTMLExporter

    copy = nbformat.reads(nbformat.writes(saved), as_version=4)
    copy.metadata.pop("widgets", None)
    # The server signed the notebook it saved (the user ran it): a copy with the very same
    # content would open trusted. Any change voids the signature, as for a notebook that
    # comes from elsewhere: this one opens untrusted (checked below).
    copy.metadata["reopened"] = "elsewhere"
    nbformat.write(copy, root / "reopened.ipynb")
    html, _ = HTMLExporter().from_notebook_node(copy)
    (tmp_path / "timeline-export.html").write_text(html)
    assert html.count('<img alt="consensus team') == 2 and "widget-view+json" not in html

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # (JupyterLab: a fresh workspace, or it restores the live notebook's tab.)
            cells = _open(page, page_url + ("&reset" if "/lab/" in page_url else ""))
            # The front end says so: Notebook 7's toolbar, JupyterLab's status bar.
            untrusted = page.locator(
                'button.jp-NotebookTrustedStatus:text-is("Not Trusted"), '
                '[title^="Notebook not trusted"]'
            )
            untrusted.first.wait_for(state="attached", timeout=30_000)
            output = cells.nth(1).locator(".jp-OutputArea-output").first
            chart = output.locator("img").first
            chart.wait_for(timeout=60_000)
            page.wait_for_function("img => img.complete", arg=chart.element_handle())
            width = chart.evaluate("img => img.naturalWidth")
            text = output.inner_text()
            page.screenshot(path=str(tmp_path / "timeline-reopened.png"))
            # nbconvert's page, opened from disk: the chart is there without a kernel or network.
            page.goto((tmp_path / "timeline-export.html").as_uri())
            exported = page.locator('img[alt^="consensus team"]').first
            exported.wait_for()
            page.wait_for_function("img => img.complete", arg=exported.element_handle())
            exported_width = exported.evaluate("img => img.naturalWidth")
            page.screenshot(path=str(tmp_path / "timeline-nbconvert.png"))
        finally:
            browser.close()
    assert width > 300 and "consensus team" in text and "model not found" not in text
    assert exported_width > 300
    for name in ("reopened", "nbconvert"):
        assert (tmp_path / f"timeline-{name}.png").stat().st_size > 5_000, name
