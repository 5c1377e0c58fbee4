"use strict";
// cgcalc's step-through of backprop: the figure's nodes and edges are found by id (node_ID, edge_K, in Graphviz's
// SVG and in the built-in layout alike); every text from the graph file is written with textContent.
(function () {
  const data = JSON.parse(document.getElementById("cgcalc-data").textContent);
  const steps = data.steps;
  const byId = (id) => document.getElementById(id);
  const RED = /^(red|#ff0000)$/i;
  const RAMP = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"];
  const nodes = {};
  const rows = {};
  for (const n of data.nodes) {
    const el = byId("node_" + n.id);
    if (!el) continue;
    const texts = Array.from(el.querySelectorAll("text"));
    nodes[n.id] = {
      data: n,
      el: el,
      shape: el.querySelector("ellipse, polygon"),
      total: texts.filter((t) => (t.textContent || "").startsWith("∂")),
      label: texts.filter((t) => !(t.textContent || "").startsWith("∂")),
    };
    if (nodes[n.id].shape && nodes[n.id].shape.getAttribute("fill") === "none") nodes[n.id].shape.style.fill = "#ffffff";
    el.querySelectorAll("title").forEach((t) => t.remove()); // the details panel says more than a tooltip
  }
  const edges = data.edges.map((e) => {
    const el = byId("edge_" + e.k);
    const texts = el ? Array.from(el.querySelectorAll("text")) : [];
    return {
      data: e,
      el: el,
      value: texts.filter((t) => !RED.test(t.getAttribute("fill") || "")),
      grad: texts.filter((t) => RED.test(t.getAttribute("fill") || "")),
    };
  });
  document.querySelectorAll("#values tbody tr").forEach((tr) => { rows[tr.dataset.node] = tr; });

  const state = { k: -1, heat: false, pinned: null, timer: null };

  function heatColour(t) {
    if (t === null || t === undefined) return "#eeeeee";
    if (t <= 0) return "#ffffff";
    const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(x));
    const f = x - i;
    const rgb = (c) => [1, 3, 5].map((j) => parseInt(c.slice(j, j + 2), 16));
    const [a, b] = [rgb(RAMP[i]), rgb(RAMP[i + 1])];
    return "rgb(" + a.map((v, j) => Math.round(v + (b[j] - v) * f)).join(", ") + ")";
  }

  function show(list, visible) {
    for (const t of list) t.classList.toggle("unseen", !visible);
  }

  function render() {
    const k = state.k;
    const all = k < 0;
    const step = all ? null : steps[k];
    const phase = step ? step.phase : "overview";
    document.body.dataset.step = String(k);
    document.body.classList.toggle("backward", phase === "backward");
    const current = new Set(step ? step.edges : []);
    for (const e of edges) {
      if (!e.el) continue;
      show(e.value, all || e.data.shown <= k);
      show(e.grad, all || (e.data.grad_from !== null && e.data.grad_from <= k));
      e.el.classList.toggle("current", current.has(e.data.k));
    }
    for (const id in nodes) {
      const n = nodes[id];
      n.el.classList.toggle("current", !!step && step.node === id);
      n.el.classList.toggle("pending", !all && n.data.computed > k);
      show(n.total, all || n.data.final <= k);
      const heated = state.heat && n.data.kind !== "output" && n.data.kind !== "const";
      if (n.shape) n.shape.style.fill = heated ? heatColour(n.data.heat) : "#ffffff";
      for (const t of n.label) t.style.fill = heated && n.data.heat > 0.7 ? "#ffffff" : "";
    }
    for (const id in rows) rows[id].classList.toggle("current", !!step && step.node === id);
    const box = byId("step");
    box.className = phase;
    const title = byId("step-title");
    const lines = byId("step-lines");
    if (!step) {
      title.textContent = "The whole graph: every value (above each edge) and gradient (below, in red)";
      lines.textContent = "Press → (or ▶) to step forward node by node, then backward.";
    } else {
      const n = k + 1;
      const what = { forward: "forward", backward: "backward: the chain rule", done: "done" }[phase];
      title.textContent = `step ${n} of ${steps.length} · ${what}`;
      lines.textContent = step.lines.join("\n");
    }
    byId("counter").textContent = all ? `${steps.length} steps: ${data.forward} forward, ${data.backward} backward` : `step ${k + 1} of ${steps.length}`;
    byId("first").disabled = all;
    byId("prev").disabled = all;
    byId("next").disabled = k >= steps.length - 1;
    byId("last").disabled = k >= steps.length - 1;
    byId("legend").hidden = !state.heat;
    byId("heat").checked = state.heat;
  }

  function go(k) {
    state.k = Math.max(-1, Math.min(steps.length - 1, k));
    if (state.k >= steps.length - 1) stop();
    render();
  }

  function stop() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
    byId("play").textContent = "▶ play";
  }

  function play() {
    if (state.timer !== null) return stop();
    if (state.k >= steps.length - 1) go(-1);
    byId("play").textContent = "❚❚ pause";
    state.timer = setInterval(() => go(state.k + 1), 1200);
  }

  function text(tag, content, cls) {
    const el = document.createElement(tag);
    el.textContent = content;
    if (cls) el.className = cls;
    return el;
  }

  function exact(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "number" ? String(v) : JSON.stringify(v);
  }

  function details(id) {
    const panel = byId("details");
    const n = nodes[id] ? nodes[id].data : null;
    if (!n) return;
    panel.replaceChildren();
    panel.appendChild(text("h2", n.name));
    const dl = document.createElement("dl");
    const add = (term, value, cls) => {
      dl.appendChild(text("dt", term));
      const dd = document.createElement("dd");
      if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
      if (cls) dd.className = cls;
      dl.appendChild(dd);
    };
    if (n.op === "input") add("an input", n.shape.length ? "of shape (" + n.shape.join(", ") + ")" : "a number");
    else if (n.inputs) add("op", `${n.op}(${n.inputs.join(", ")})`);
    else add(n.op === "output" ? "an output of the graph" : "a constant", n.name);
    if (n.value !== undefined) {
      const v = document.createElement("div");
      v.appendChild(text("pre", n.value, "value"));
      if (n.value_exact !== null) v.appendChild(text("div", "exactly " + exact(n.value_exact), "exact value-exact"));
      add("value", v);
      const g = document.createElement("div");
      g.appendChild(text("pre", n.grad, "grad"));
      if (n.grad_exact !== null) g.appendChild(text("div", "exactly " + exact(n.grad_exact), "exact grad-exact"));
      add(`∂${data.output}/∂${n.name}`, g);
      if (n.formula) add("formula", `∂${data.output}/∂${n.name} = ${n.formula}`);
    }
    panel.appendChild(dl);
    panel.dataset.node = id;
  }

  function pin(id) {
    if (state.pinned) {
      nodes[state.pinned].el.classList.remove("pinned");
      if (rows[state.pinned]) rows[state.pinned].classList.remove("pinned");
    }
    state.pinned = state.pinned === id ? null : id;
    if (state.pinned) {
      nodes[id].el.classList.add("pinned");
      if (rows[id]) rows[id].classList.add("pinned");
      details(id);
    }
  }

  for (const id in nodes) {
    nodes[id].el.addEventListener("mouseenter", () => { if (!state.pinned) details(id); });
    nodes[id].el.addEventListener("click", (ev) => { ev.preventDefault(); pin(id); });
  }
  for (const id in rows) {
    rows[id].addEventListener("mouseenter", () => { if (!state.pinned) details(id); });
    rows[id].addEventListener("click", () => { if (nodes[id]) pin(id); });
  }
  byId("first").addEventListener("click", () => { stop(); go(-1); });
  byId("prev").addEventListener("click", () => { stop(); go(state.k - 1); });
  byId("next").addEventListener("click", () => { stop(); go(state.k + 1); });
  byId("last").addEventListener("click", () => { stop(); go(steps.length - 1); });
  byId("play").addEventListener("click", play);
  byId("heat").addEventListener("change", (ev) => { state.heat = ev.target.checked; render(); });
  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const keys = {
      ArrowRight: () => { stop(); go(state.k + 1); },
      j: () => { stop(); go(state.k + 1); },
      ArrowLeft: () => { stop(); go(state.k - 1); },
      k: () => { stop(); go(state.k - 1); },
      Home: () => { stop(); go(-1); },
      End: () => { stop(); go(steps.length - 1); },
      " ": play,
      h: () => { state.heat = !state.heat; render(); },
      Escape: () => { if (state.pinned) pin(state.pinned); },
    };
    const f = keys[ev.key];
    if (f) { ev.preventDefault(); f(); }
  });
  render();
})();
