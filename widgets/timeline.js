// victor's team timeline: an anywidget front end (plain ES module, no build step, no
// dependencies, no network). The Python side is victor/notebook/timeline_widget.py.
//
// Model: `lanes` (agent names), `bars` (every bar: id, lane, kind, start, end, tokens,
// label, error, detail), `deterministic`, `title`. During a run the kernel sends batches of
// new and changed bars as custom messages {type: "bars", seq, lanes, bars} (never the whole
// chart); when the run ends it syncs `bars` in full once. Drawing is SVG with culling: only
// the bars inside the visible time range and in shown lanes become elements.

const KINDS = { run: "member run", model: "model call", tool: "tool call", step: "team step" };
const COLORS = { run: "#b9c8e0", model: "#4c78a8", tool: "#f58518", step: "#54a24b" };
const NS = "http://www.w3.org/2000/svg";
const LABEL_W = 130;
const AXIS_H = 24;
const STYLE = `
.vtl{font:12px system-ui,sans-serif;color:#222;position:relative;border:1px solid #ddd;border-radius:4px;padding:6px;background:#fff}
.vtl-bar{display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin-bottom:4px}
.vtl-title{font-weight:600;margin-right:auto}
.vtl button{font:inherit;border:1px solid #bbb;background:#f6f6f6;border-radius:3px;padding:1px 6px;cursor:pointer}
.vtl button[aria-pressed=false]{opacity:.45;text-decoration:line-through}
.vtl-sw{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:-1px}
.vtl-main{display:flex;gap:6px}
.vtl-chart{flex:1;min-width:0;max-height:560px;overflow-y:auto;overflow-x:hidden;cursor:grab;user-select:none}
.vtl-chart svg{display:block}
.vtl-chart rect.b:focus{outline:none;stroke:#000;stroke-width:2}
.vtl-lane{cursor:pointer}
.vtl-lane:hover{text-decoration:underline}
.vtl-panel{width:320px;max-height:560px;overflow:auto;border-left:1px solid #ddd;padding-left:8px}
.vtl-panel pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:4px;margin:2px 0 6px;max-height:220px;overflow:auto}
.vtl-panel h4{margin:6px 0 2px;font-size:12px}
.vtl-tip{position:absolute;pointer-events:none;background:#222;color:#fff;padding:4px 6px;border-radius:3px;white-space:pre;z-index:10;font-size:11px}
.vtl-hidden{font-size:11px;color:#666}
`;

// -- time axis ------------------------------------------------------------------------

/** Unit for a visible span (seconds): µs, ms, s or min. */
export function unitFor(span) {
  if (span < 2e-3) return ["µs", 1e-6];
  if (span < 2) return ["ms", 1e-3];
  if (span < 180) return ["s", 1];
  return ["min", 60];
}

/** Ticks for [t0, t1] about `px` pixels apart: nice steps (1, 2, 5 × 10^k in the unit). */
export function ticks(t0, t1, width, deterministic, px = 90) {
  const span = Math.max(t1 - t0, 1e-12);
  const [unit, scale] = deterministic ? ["step", 1] : unitFor(span);
  const rough = span / scale / Math.max(1, width / px);
  const p = Math.pow(10, Math.floor(Math.log10(rough)));
  let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= rough) || 10 * p;
  if (deterministic) step = Math.max(1, Math.round(step));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const out = [];
  for (let v = Math.ceil(t0 / scale / step) * step; v * scale <= t1 + 1e-12; v += step) {
    const text = deterministic ? `step ${Math.round(v)}` : `${v.toFixed(decimals)} ${unit}`;
    out.push({ t: v * scale, text });
    if (out.length > 200) break;
  }
  return out;
}

export function duration(seconds, deterministic) {
  if (deterministic) return `${Math.round(seconds)} steps`;
  const [unit, scale] = unitFor(seconds * 1.5);
  return `${(seconds / scale).toPrecision(3)} ${unit}`;
}

// -- the view ---------------------------------------------------------------------------

function h(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function s(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// -- the model's data, shared by its views ---------------------------------------------
// Kept per model from the moment anywidget creates it (initialize), so batches that arrive
// before a view is on screen are not lost; a gap in the batch numbers (a batch missed all
// the same) asks the kernel for the current state once.

const stores = new WeakMap();

function storeOf(model) {
  let data = stores.get(model);
  if (data) return data;
  data = { bars: new Map(), lanes: [], title: "", seq: 0, views: new Set(), asked: false };
  const load = () => {
    data.bars = new Map(model.get("bars").map((b) => [b.id, b]));
    data.lanes = model.get("lanes").slice();
    data.title = model.get("title");
    data.seq = Math.max(data.seq, model.get("seq"));
    data.views.forEach((draw) => draw());
  };
  const onMsg = (msg) => {
    if (!msg || msg.type !== "bars") return;
    performance.mark("victor-timeline-update-start");
    if (msg.reset) data.bars.clear();
    else if (msg.seq !== data.seq + 1 && !data.asked) {
      data.asked = true; // one request: the answer (a reset) brings everything
      model.send({ type: "resync" });
    }
    if (msg.reset) data.asked = false;
    for (const b of msg.bars) data.bars.set(b.id, b);
    if (msg.lanes) data.lanes = msg.lanes;
    if (msg.title) data.title = msg.title;
    data.seq = msg.seq;
    data.views.forEach((draw) => draw());
    performance.mark("victor-timeline-update-end");
    performance.measure("victor-timeline-update", "victor-timeline-update-start", "victor-timeline-update-end");
  };
  model.on("change:bars", load);
  model.on("change:lanes", load);
  model.on("change:title", load);
  model.on("msg:custom", onMsg);
  load();
  stores.set(model, data);
  return data;
}

function initialize({ model }) {
  storeOf(model);
}

function render({ model, el }) {
  const data = storeOf(model);
  const state = {
    view: null, // [t0, t1] or null: fit (follows a live run)
    hiddenLanes: new Set(),
    hiddenKinds: new Set(),
    highlight: null,
    selected: null,
    focusId: null,
  };
  const det = () => model.get("deterministic");

  if (!document.getElementById("vtl-style")) {
    const style = h("style", { id: "vtl-style" });
    style.textContent = STYLE;
    document.head.appendChild(style);
  }
  const root = h("div", { class: "vtl", tabindex: "-1" });
  const bar = h("div", { class: "vtl-bar" });
  const title = h("span", { class: "vtl-title" });
  const fit = h("button", { class: "vtl-fit", title: "Show the whole run" }, "fit");
  bar.append(title);
  const legend = {};
  for (const [kind, name] of Object.entries(KINDS)) {
    const b = h("button", { class: "vtl-kind", "data-kind": kind, "aria-pressed": "true" });
    const sw = h("span", { class: "vtl-sw" });
    sw.style.background = COLORS[kind];
    b.append(sw, document.createTextNode(name));
    b.onclick = () => {
      state.hiddenKinds.has(kind) ? state.hiddenKinds.delete(kind) : state.hiddenKinds.add(kind);
      b.setAttribute("aria-pressed", String(!state.hiddenKinds.has(kind)));
      draw();
    };
    legend[kind] = b;
    bar.append(b);
  }
  bar.append(fit);
  const hiddenList = h("div", { class: "vtl-hidden" });
  const main = h("div", { class: "vtl-main" });
  const chart = h("div", { class: "vtl-chart" });
  const panel = h("div", { class: "vtl-panel", hidden: "" });
  const tip = h("div", { class: "vtl-tip", hidden: "" });
  const svg = s("svg", {});
  chart.append(svg);
  main.append(chart, panel);
  root.append(bar, hiddenList, main, tip);
  el.append(root);

  // -- data -----------------------------------------------------------------------------
  function span() {
    let lo = Infinity, hi = -Infinity;
    for (const b of data.bars.values()) {
      lo = Math.min(lo, b.start);
      hi = Math.max(hi, b.end ?? b.start);
    }
    if (!isFinite(lo)) return [0, 1];
    if (hi - lo < 1e-9) hi = lo + (det() ? 1 : 1e-3);
    return [lo, hi];
  }
  function visible() {
    return state.view || span();
  }

  // -- drawing (batched to one per animation frame) -------------------------------------
  let frame = 0;
  function draw() {
    if (!frame) frame = requestAnimationFrame(paint);
  }
  function paint() {
    frame = 0;
    hideStatic();
    performance.mark("victor-timeline-paint-start");
    const width = Math.max(300, chart.clientWidth || el.clientWidth || 800);
    const plotW = width - LABEL_W - 8;
    const lanes = data.lanes.filter((l) => !state.hiddenLanes.has(l));
    const laneH = lanes.length > 20 ? 16 : 24;
    const height = AXIS_H + lanes.length * laneH + 4;
    const [t0, t1] = visible();
    const x = (t) => LABEL_W + ((t - t0) / (t1 - t0)) * plotW;
    const row = new Map(lanes.map((l, i) => [l, i]));
    title.textContent = data.title;
    // Asked before the bars are replaced: a removed bar is no longer the active element.
    const hadFocus = svg.contains(document.activeElement);
    svg.replaceChildren();
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("data-t0", t0);
    svg.setAttribute("data-t1", t1);
    for (const tick of ticks(t0, t1, plotW, det())) {
      const tx = x(tick.t);
      svg.append(s("line", { x1: tx, x2: tx, y1: AXIS_H - 4, y2: height, stroke: "#eee" }));
      const label = s("text", { x: tx, y: AXIS_H - 8, "text-anchor": "middle", fill: "#666", class: "vtl-tick" });
      label.textContent = tick.text;
      svg.append(label);
    }
    lanes.forEach((lane, i) => {
      const y = AXIS_H + i * laneH;
      if (i % 2) svg.append(s("rect", { x: 0, y, width, height: laneH, fill: "#fafafa" }));
      const label = s("text", { x: 4, y: y + laneH * 0.7, class: "vtl-lane", "data-lane": lane,
        "font-weight": state.highlight === lane ? "700" : "400" });
      label.textContent = lane.length > 18 ? lane.slice(0, 17) + "…" : lane;
      const t = s("title", {});
      t.textContent = `${lane}: click to highlight, shift-click (or alt) to hide`;
      label.append(t);
      label.addEventListener("click", (ev) => {
        if (ev.shiftKey || ev.altKey) state.hiddenLanes.add(lane);
        else state.highlight = state.highlight === lane ? null : lane;
        draw();
      });
      svg.append(label);
    });
    let drawn = 0;
    const order = [...data.bars.values()].sort((a, b) => (a.kind === "run" ? -1 : 0) - (b.kind === "run" ? -1 : 0));
    for (const b of order) {
      const i = row.get(b.lane);
      const end = b.end ?? span()[1];
      if (i === undefined || state.hiddenKinds.has(b.kind) || end < t0 || b.start > t1) continue;
      const x0 = Math.max(LABEL_W, x(b.start));
      const x1 = Math.min(width, Math.max(x(end), x(b.start) + 3));
      const inset = b.kind === "run" ? 2 : b.kind === "tool" ? 7 : 5;
      const rect = s("rect", {
        class: "b", "data-id": b.id, "data-kind": b.kind, "data-lane": b.lane, tabindex: "0",
        x: x0, y: AXIS_H + i * laneH + inset * (laneH / 24), width: Math.max(3, x1 - x0),
        height: Math.max(3, laneH - 2 * inset * (laneH / 24)), rx: 2,
        fill: b.error ? "#d62728" : COLORS[b.kind] || "#999",
        opacity: state.highlight && state.highlight !== b.lane ? 0.2 : 1,
        role: "button", "aria-label": `${b.lane} ${b.label}`,
      });
      rect.addEventListener("mouseenter", (ev) => showTip(b, ev.offsetX, ev.offsetY));
      rect.addEventListener("mousemove", (ev) => moveTip(ev));
      rect.addEventListener("mouseleave", hideTip);
      rect.addEventListener("focus", () => { state.focusId = b.id; showTip(b, x0, AXIS_H + i * laneH); });
      rect.addEventListener("blur", hideTip);
      rect.addEventListener("click", (ev) => { ev.stopPropagation(); open(b.id); });
      rect.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(b.id); } });
      svg.append(rect);
      drawn++;
    }
    svg.setAttribute("data-drawn", drawn);
    hiddenList.replaceChildren();
    if (state.hiddenLanes.size) {
      hiddenList.append("hidden: ");
      for (const lane of state.hiddenLanes) {
        const b = h("button", { class: "vtl-show-lane", "data-lane": lane }, `${lane} ✕`);
        b.onclick = () => { state.hiddenLanes.delete(lane); draw(); };
        hiddenList.append(b);
      }
    }
    if (state.focusId !== null) {
      const again = svg.querySelector(`rect.b[data-id="${state.focusId}"]`);
      if (again && hadFocus) again.focus({ preventScroll: true });
    }
    if (state.selected !== null) fillPanel(data.bars.get(state.selected));
    performance.mark("victor-timeline-paint-end");
    performance.measure("victor-timeline-paint", "victor-timeline-paint-start", "victor-timeline-paint-end");
  }

  // The static chart victor displays beside the widget (for reopened and exported
  // notebooks) is hidden while the widget lives: same cell, our own marker class.
  function hideStatic() {
    const area = el.closest(".jp-OutputArea, .output_area, .output");
    if (!area) return;
    for (const node of area.querySelectorAll(".victor-timeline")) {
      (node.closest(".jp-OutputArea-child") || node).style.display = "none";
    }
  }

  // -- tooltip and side panel -------------------------------------------------------------
  function tipText(b) {
    const d = det();
    const lines = [`${b.lane} · ${KINDS[b.kind] || b.kind}: ${b.label}`,
      `start ${d ? "step " + Math.round(b.start) : duration(b.start, false)}`];
    if (b.end !== null && b.end !== undefined && !d) lines.push(`duration ${duration(b.end - b.start, false)}`);
    if (b.end === null || b.end === undefined) lines.push("running…");
    if (b.tokens) lines.push(`${b.tokens} tokens`);
    if (b.error) lines.push(`error: ${b.error.slice(0, 80)}`);
    return lines.join("\n");
  }
  function showTip(b, px, py) {
    tip.textContent = tipText(b);
    tip.hidden = false;
    tip.style.left = `${px + 14}px`;
    tip.style.top = `${py + 40}px`;
  }
  function moveTip(ev) {
    const box = root.getBoundingClientRect();
    tip.style.left = `${ev.clientX - box.left + 14}px`;
    tip.style.top = `${ev.clientY - box.top + 14}px`;
  }
  function hideTip() { tip.hidden = true; }
  function open(id) {
    state.selected = id;
    fillPanel(data.bars.get(id));
  }
  function fillPanel(b) {
    if (!b) return;
    panel.hidden = false;
    const close = h("button", { class: "vtl-close", style: "float:right" }, "✕");
    close.onclick = () => { state.selected = null; panel.hidden = true; };
    const head = h("h4", {}, `${b.lane} · ${b.label}`);
    const meta = h("div", {}, tipText(b).split("\n").slice(1).join(" · "));
    panel.replaceChildren(close, head, meta);
    const detail = b.detail || {};
    for (const [key, name] of [["prompt", "Prompt"], ["answer", "Answer"], ["arguments", "Arguments"],
      ["result", "Result"], ["error", "Error"], ["info", "Details"]]) {
      if (!detail[key]) continue;
      panel.append(h("h4", {}, name), h("pre", { "data-field": key }, detail[key]));
    }
  }

  // -- zoom and pan ----------------------------------------------------------------------
  function timeAt(clientX) {
    const box = svg.getBoundingClientRect();
    const [t0, t1] = visible();
    const plotW = box.width - LABEL_W - 8;
    return t0 + ((clientX - box.left - LABEL_W) / plotW) * (t1 - t0);
  }
  chart.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const [t0, t1] = visible();
    const at = Math.min(t1, Math.max(t0, timeAt(ev.clientX)));
    const k = Math.exp(Math.max(-1, Math.min(1, ev.deltaY * 0.002)));
    const min = det() ? 2 : 1e-7;
    const width = Math.max(min, (t1 - t0) * k);
    const left = at - ((at - t0) / (t1 - t0)) * width;
    state.view = [left, left + width];
    draw();
  }, { passive: false });
  let drag = null;
  chart.addEventListener("mousedown", (ev) => {
    if (ev.target.classList && ev.target.classList.contains("vtl-lane")) return;
    drag = { x: ev.clientX, view: visible(), moved: false };
  });
  window.addEventListener("mousemove", onDrag);
  window.addEventListener("mouseup", onUp);
  function onDrag(ev) {
    if (!drag) return;
    const plotW = svg.getBoundingClientRect().width - LABEL_W - 8;
    const dt = ((ev.clientX - drag.x) / plotW) * (drag.view[1] - drag.view[0]);
    if (Math.abs(ev.clientX - drag.x) > 2) drag.moved = true;
    if (drag.moved) { state.view = [drag.view[0] - dt, drag.view[1] - dt]; draw(); }
  }
  function onUp() { drag = null; }
  fit.onclick = () => { state.view = null; draw(); };
  root.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { state.selected = null; panel.hidden = true; }
  });

  // -- the model's data: full state, then batches of changes (storeOf) --------------------
  const onData = () => { el.dataset.seq = data.seq; draw(); };
  data.views.add(onData);
  const resize = new ResizeObserver(draw);
  resize.observe(chart);
  paint();
  return () => {
    data.views.delete(onData);
    window.removeEventListener("mousemove", onDrag);
    window.removeEventListener("mouseup", onUp);
    resize.disconnect();
    if (frame) cancelAnimationFrame(frame);
  };
}

export default { initialize, render };
