"""The timeline widget at scale: a consensus of 50 members making 1,000 calls (model and
tool), followed live. Not a test.

    python bench/timeline.py [--delay 0.02]

Measures what the kernel sends the front end (live batches: messages and bytes, and the one
state sync at the end) against redrawing the static chart at each update as before, then
replays the recorded messages into widgets/timeline.js in Debian's Chromium (Playwright),
through the model interface anywidget gives it, and reads the browser's time per update and
per paint from performance.measure. Needs the notebook and browser extras and
/usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMBERS, TOOL_CALLS = 50, 9  # per member: 10 model + 9 tool calls, then a vote: 1,000 calls


def team(delay: float):
    from victor import Agent, AgentTeam
    from victor.testing import FunctionProvider, call
    from victor.tools import tool

    @tool
    def lookup(query: str) -> str:
        """Look something up."""
        return f"{query}: " + "fact " * 40

    async def reply(messages, tools):
        await asyncio.sleep(delay)
        if "Vote for" in messages[-1].content:
            return json.dumps({"vote": "A", "reason": "best"})
        done = sum(1 for m in messages if m.role == "tool")
        return call("lookup", query=f"q{done}") if done < TOOL_CALLS else "42"

    provider = FunctionProvider(reply)
    members = [Agent(provider=provider, tools=[lookup], name=f"m{i}") for i in range(MEMBERS)]
    return AgentTeam.consensus(members)


class Comm:
    """The widget's comm: what it would send to the front end, recorded."""

    def __init__(self) -> None:
        from comm import DummyComm

        class Recording(DummyComm):
            sent: list = []

            def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
                if msg_type == "comm_msg":
                    self.sent.append(data)

        self.comm = Recording(target_name="jupyter.widget")


class Handle:
    """A display handle (IPython's), counting the bytes of each update."""

    def __init__(self) -> None:
        self.bytes = 0
        self.updates = 0

    def update(self, bundle, raw=True):
        self.updates += 1
        self.bytes += sum(len(v) for v in bundle.values())


def run(delay: float) -> dict:
    from victor.notebook.timeline import TeamTimeline
    from victor.notebook.timeline_layout import Layout
    from victor.notebook.timeline_render import render_html
    from victor.notebook.timeline_widget import TimelineWidget

    the_team = team(delay)
    timeline = TeamTimeline(the_team)
    widget = timeline.widget = TimelineWidget(Layout([], False))
    recording = Comm().comm
    widget.comm = recording
    timeline._handles = [Handle()]
    result = asyncio.run(the_team.run("Pick a number"))
    timeline.close()
    layout = Layout(result.events, False)
    calls = sum(1 for b in layout.bars if b.kind in ("model", "tool"))
    custom = [m["content"] for m in recording.sent if m.get("method") == "custom"]
    state = [m for m in recording.sent if m.get("method") == "update"]
    static = len(render_html(layout, 900))
    return {
        "calls": calls,
        "events": len(result.events),
        "batches": len(custom),
        "batch_bytes": sum(len(json.dumps(m)) for m in custom),
        "largest_batch_bytes": max(len(json.dumps(m)) for m in custom),
        "final_sync_bytes": sum(len(json.dumps(m)) for m in state),
        "static_chart_bytes": static,
        "redraw_everything_bytes": static * len(custom),
        "messages": recording.sent,
        "initial": {"lanes": [], "bars": [], "title": "", "seq": 0, "deterministic": False},
    }


PAGE = """<!doctype html><meta charset="utf-8"><body><div id="out" style="width:1200px"></div>
<script type="module">
import widget from "./timeline.js";
const listeners = {};
const values = INITIAL;
const model = {
  get: (k) => values[k],
  set: (k, v) => { values[k] = v; },
  on: (name, fn) => { (listeners[name] ||= []).push(fn); },
  off: (name, fn) => { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); },
  send: () => {},
  save_changes: () => {},
};
window.deliver = (message) => {
  const custom = listeners["msg:custom"] || [];
  if (message.method === "custom") custom.forEach((f) => f(message.content));
  else for (const [k, v] of Object.entries(message.state)) {
    values[k] = v; (listeners["change:" + k] || []).forEach((f) => f());
  }
};
widget.initialize({ model });
widget.render({ model, el: document.getElementById("out") });
window.ready = true;
</script>"""


def browse(data: dict) -> dict:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="victor-timeline-bench-"))
    (folder / "timeline.js").write_text((ROOT / "widgets" / "timeline.js").read_text())
    page_html = PAGE.replace("INITIAL", json.dumps(data["initial"]))
    (folder / "index.html").write_text(page_html)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.route(
            "**/*", lambda route: route.fulfill(path=str(folder / route.request.url.split("/")[-1]))
        )
        page.goto("http://bench.invalid/index.html")
        page.wait_for_function("window.ready === true")
        for message in data["messages"]:
            page.evaluate("m => window.deliver(m)", message)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        measures = page.evaluate(
            "() => performance.getEntriesByType('measure').map(m => [m.name, m.duration])"
        )
        drawn = page.locator("svg").first.get_attribute("data-drawn")
        # Interaction at full size: a wheel zoom, timed to the next painted frame.
        box = page.locator("svg").first.bounding_box()
        page.mouse.move(box["x"] + 600, box["y"] + 100)
        zoom_ms = page.evaluate(
            "() => new Promise(r => { const t = performance.now();"
            " document.querySelector('.vtl-chart').dispatchEvent(new WheelEvent('wheel',"
            " {deltaY: -300, clientX: 600, clientY: 100, bubbles: true, cancelable: true}));"
            " requestAnimationFrame(() => requestAnimationFrame("
            " () => r(performance.now() - t))); })"
        )
        page.screenshot(path=str(folder / "timeline-1000.png"))
        browser.close()
    paints = [d for name, d in measures if name == "victor-timeline-paint"]
    updates = [d for name, d in measures if name == "victor-timeline-update"]
    return {
        "bars_drawn_at_the_end": int(drawn or 0),
        "paint_ms_median": statistics.median(paints),
        "paint_ms_max": max(paints),
        "update_ms_median": statistics.median(updates) if updates else 0.0,
        "zoom_to_frame_ms": zoom_ms,
        "screenshot": str(folder / "timeline-1000.png"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per model reply")
    args = parser.parse_args()
    data = run(args.delay)
    report = {k: v for k, v in data.items() if k not in ("messages", "initial")}
    report.update(browse(data))
    for key, value in report.items():
        print(f"{key:>26}: {value:.1f}" if isinstance(value, float) else f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
