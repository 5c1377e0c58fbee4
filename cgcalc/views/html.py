"""`cgcalc export --format html`: one self-contained page that steps through backprop on the user's own graph.

The page holds the figure (Graphviz's SVG when the caller has it, else layout.py's), the run's numbers as JSON,
and page.js / page.css inline: no network at all (a Content-Security-Policy forbids any fetch, and lets only
the page's own script run). Everything from the file (the graph's name, its description) is data, escaped for
the place it lands in: HTML text, an attribute, or the JSON inside a <script> element (where `</script>` or
`<!--` could otherwise end or bend it), and the script writes it with textContent, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import Any

from ..core.runtime import Result, to_plain
from ..errors import clean
from ..numbers import fmt_num, fmt_value, strict
from .export import _figure_parts
from .render import graph_title
from .render_trace import trace_steps
from .trace import trace

EXACT_ELEMENTS = 400  # an array's exact numbers are in the page up to this many elements (else its preview)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _e(text: str) -> str:
    """A file's text as HTML text or an attribute value: control characters escaped (as everywhere), markup too."""
    return escape(clean(text), quote=True)


def script_json(data: Any) -> str:
    """JSON that cannot end or alter the <script> element it sits in: <, > and & (and the line separators some
    parsers stop at) as \\u escapes, which JSON reads back as the same characters."""
    text = json.dumps(strict(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _magnitude(g) -> float | None:
    if g is None:
        return None
    if type(g) is float:
        return abs(g) if g == g else math.inf
    a = abs(g)
    return float(a.max()) if a.size and not (a != a).any() else (math.inf if a.size else 0.0)


def _heat(mags: dict[str, float | None]) -> tuple[dict[str, float | None], float, float]:
    """Each node's |gradient| on a log scale from the smallest nonzero to the largest, as 0..1 (0: zero; None: no
    gradient); and that smallest and largest."""
    finite = [m for m in mags.values() if m is not None and 0 < m < math.inf]
    lo, hi = (min(finite), max(finite)) if finite else (1.0, 1.0)
    out: dict[str, float | None] = {}
    for n, m in mags.items():
        if m is None:
            out[n] = None
        elif m == 0:
            out[n] = 0.0
        elif m == math.inf or hi == lo:
            out[n] = 1.0
        else:
            out[n] = 0.08 + 0.92 * (math.log(m) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return out, lo, hi


def _exact(v) -> Any:
    """A value as the page carries it exactly: a float, nested lists (up to EXACT_ELEMENTS elements), or None."""
    if v is None or type(v) is float:
        return v
    return to_plain(v) if v.size <= EXACT_ELEMENTS else None


def _shown(v, precision: int) -> str:
    """A value as the page shows it: rounded, an array in full up to EXACT_ELEMENTS (a matrix as a grid, its lines
    of one length, for the right-aligned table), else its preview."""
    if _exact(v) is None:
        return fmt_value(v, precision)
    text = fmt_value(v, precision, full=True)
    lines = text.split("\n")
    n = max(len(line) for line in lines)
    return "\n".join(line.ljust(n) for line in lines)


def page_data(result: Result, precision: int = 6, formulas: dict[str, str | None] | None = None) -> dict:
    """Everything the page shows, as plain data: nodes, edges, and the steps (forward, then backward, then the
    gradients of the inputs), each with what it highlights and, from step k on, what it shows."""
    plan = result.plan
    t = trace(plan, {plan.names[i]: result.values[i] for i in range(len(plan.inputs))}, result.output)
    blocks = trace_steps(t, precision, formulas)
    nodes, edges = _figure_parts(result, precision)
    index = _Index.of(plan, t)
    grads = result.grads[result.output]
    heat, lo, hi = _heat({nid: _magnitude(grads[index.slot[nid]]) for nid, *_ in nodes if nid in index.slot})
    return {
        "graph": clean(plan.spec.name),
        "output": result.output,
        "precision": precision,
        "nodes": [_node_data(node, result, index, heat.get(node[0]), precision, formulas) for node in nodes],
        "edges": [_edge_data(k, edge, result, index) for k, edge in enumerate(edges)],
        "steps": _steps(result, t, blocks, edges, index),
        "forward": len(t.forward),
        "backward": len(t.backward),
        "heat": {"lo": fmt_num(lo, 3), "hi": fmt_num(hi, 3)},
    }


@dataclass(frozen=True)
class _Index:
    """The lookups the page's data is made with: each figure node's slot in the run, the step that computes each
    node, and the step from which each gradient is complete."""

    slot: dict[str, int]  # a figure node's id (n3) -> its slot in the run
    computed: dict[str, int]  # a node's name -> the step that computes it
    backward: dict[str, int]  # a node's name -> its backward step (0: the first)
    last_pass: dict[str, int]  # a name -> the backward step that last adds to its gradient
    n_fwd: int  # the forward steps (the backward steps follow them)
    done: int  # the last step: the gradients of the inputs

    @classmethod
    def of(cls, plan, t) -> _Index:
        """The lookups of a plan and its trace."""
        last_pass = {p.to: b for b, s in enumerate(t.backward) for p in s.passes}
        return cls(
            slot={f"n{s}": s for s in range(plan.n_named)},
            computed={st.name: i for i, st in enumerate(plan.steps)},
            backward={s.name: b for b, s in enumerate(t.backward)},
            last_pass=last_pass,
            n_fwd=len(t.forward),
            done=len(t.forward) + len(t.backward),
        )

    def final(self, name: str) -> int:
        """The step from which name's gradient is complete: its own backward step, or the last that adds to it."""
        if name in self.backward:
            return self.n_fwd + self.backward[name]
        return self.n_fwd + self.last_pass[name] if name in self.last_pass else self.done


def _steps(result: Result, t, blocks: list, edges: list[tuple], index: _Index) -> list[dict]:
    """The page's steps: each forward step, each backward step, then the gradients of the inputs; each with the
    node and the edges it highlights and its lines of the trace."""
    plan = result.plan
    into: dict[int, list[int]] = {}  # step index -> its input edges
    out_box: dict[str, list[int]] = {}  # output name -> the edge to its box
    for k, e in enumerate(edges):
        if isinstance(e[4], tuple):
            into.setdefault(e[4][0], []).append(k)
        else:
            out_box.setdefault(e[4], []).append(k)
    steps: list[dict] = []
    for i, st in enumerate(plan.steps):
        edge_ids = into.get(i, []) + out_box.get(st.name, [])
        _, lines = blocks[i]
        steps.append({"phase": "forward", "node": f"n{st.slot}", "edges": edge_ids, "lines": _plain(lines)})
    for b, s in enumerate(t.backward):
        i = index.computed[s.name]
        edge_ids = [k for k in into.get(i, []) if edges[k][3]]  # those a gradient flows back along
        if b == 0:  # the seed flows in along the output's edge
            edge_ids = out_box.get(result.output, []) + edge_ids
        _, lines = blocks[index.n_fwd + b]
        steps.append({"phase": "backward", "node": f"n{plan.steps[i].slot}", "edges": edge_ids, "lines": _plain(lines)})
    tail, _ = blocks[-1]
    steps.append({"phase": "done", "node": None, "edges": [], "lines": _plain([x for x in tail if x.plain.strip()])})
    return steps


def _node_data(
    node: tuple, result: Result, index: _Index, heat: float | None, precision: int, formulas: dict | None
) -> dict:
    """A node of the figure as the page knows it: its op and inputs, its value and gradient (shown and exact), its
    formula and heat, and the steps from which it is computed and its gradient complete."""
    nid, kind, _label, name, total = node
    d: dict[str, Any] = {"id": nid, "kind": kind, "name": clean(name), "total": total}
    slot = index.slot.get(nid)
    if slot is None:
        if kind == "output":
            d.update(op="output", computed=index.computed.get(name, -1), final=index.done)
        else:
            d.update(op="constant", computed=-1, final=index.done)
        return d
    plan, n_in = result.plan, len(result.plan.inputs)
    v, g = result.values[slot], result.grads[result.output][slot]
    st = plan.steps[slot - n_in] if slot >= n_in else None
    d.update(
        op=st.op if st else "input",
        inputs=[plan.label(a) for a in st.args] if st else [],
        shape=list(getattr(v, "shape", ())),
        value=_shown(v, precision),
        grad=_shown(g, precision),
        value_exact=_exact(v),
        grad_exact=_exact(g),
        formula=(formulas or {}).get(name),
        heat=heat,
        computed=index.computed[name] if st else -1,
        final=index.final(name),
    )
    return d


def _edge_data(k: int, edge: tuple, result: Result, index: _Index) -> dict:
    """An edge of the figure as the page knows it: its ends and labels, the step from which its value is shown
    (-1: from the start) and the step from which its gradient is (None: it has none)."""
    src, dst, value, grad, key = edge
    plan = result.plan
    src_slot = index.slot.get(src)
    shown_from = index.computed[plan.names[src_slot]] if src_slot is not None and src_slot >= len(plan.inputs) else -1
    if not grad:
        grad_from = None
    elif key == result.output:
        grad_from = index.n_fwd
    else:
        grad_from = index.n_fwd + index.backward[plan.steps[key[0]].name]
    return {"k": k, "src": src, "dst": dst, "value": value, "grad": grad, "shown": shown_from, "grad_from": grad_from}


def _plain(lines: list) -> list[str]:
    return [clean(line.plain) for line in lines]


def _row(d: dict, output: str) -> str:
    cells = [d["name"], d["op"], ", ".join(d["inputs"]), d["value"], d["grad"]]
    # names are the file's text (control characters escaped); values are cgcalc's (a grid keeps its newlines)
    tds = "".join(f"<td>{_e(c)}</td>" if i < 3 else f'<td class="num">{escape(c)}</td>' for i, c in enumerate(cells))
    return f'<tr data-node="{_e(d["id"])}">{tds}</tr>'


def page(
    result: Result, precision: int = 6, svg: str | None = None, formulas: dict[str, str | None] | None = None
) -> str:
    """The HTML page: `svg` is Graphviz's drawing of to_dot(result, precision, ids=True), or None for the built-in
    layered layout."""
    data = page_data(result, precision, formulas)
    spec = result.plan.spec
    figure, drawn = _figure(result, precision, svg)
    script = _asset("page.js")
    return PAGE.format(
        csp=_policy(script),
        style=_asset("page.css"),
        name=_e(spec.name),
        description=_e(" ".join(spec.description.split())),
        drawn=drawn,
        svg=figure,
        output=_e(result.output),
        lo=_e(data["heat"]["lo"]),
        hi=_e(data["heat"]["hi"]),
        rows="\n".join(_row(d, result.output) for d in data["nodes"] if "inputs" in d),
        data=script_json(data),
        script=script,
    )


def _figure(result: Result, precision: int, svg: str | None) -> tuple[str, str]:
    """The figure as an element of the page, and who drew it: Graphviz's `svg`, or the built-in layout's."""
    from . import layout

    if svg is None:
        nodes, edges = _figure_parts(result, precision)
        return layout.svg(nodes, edges, graph_title(result.plan.spec, ": ")), "built-in layout"
    return _embeddable(svg), "Graphviz"


def _embeddable(svg: str) -> str:
    """Graphviz's SVG document as an element of the page: from <svg> on, without its comments (which repeat the
    graph's name)."""
    start = svg.find("<svg")
    body = svg[start:] if start >= 0 else svg
    return re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL)


def _policy(script: str) -> str:
    """The Content-Security-Policy: nothing fetched, and no script run but this one (by its hash)."""
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:"


# the page, for page() to fill (str.format: a brace of its own would be written twice); every field is escaped for
# where it lands, or is cgcalc's own text (its script and style, the figure, the data as script_json writes it)
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{name} — cgcalc</title>
<style>
{style}</style>
</head>
<body data-step="-1" data-layout="{drawn}">
<header>
<h1 id="graph-name">{name}</h1>
<p id="graph-description">{description}</p>
</header>
<nav id="controls" aria-label="steps">
<button id="first" title="the whole graph (Home)">|◀</button>
<button id="prev" title="the step before (← or k)">◀</button>
<button id="play" title="play / pause (space)">▶ play</button>
<button id="next" title="the next step (→ or j)">▶</button>
<button id="last" title="the last step (End)">▶|</button>
<span id="counter" aria-live="polite"></span>
<label><input type="checkbox" id="heat"> colour by |gradient| (h)</label>
</nav>
<section id="step" aria-live="polite"><h2 id="step-title"></h2><pre id="step-lines"></pre></section>
<div id="main">
<div id="figure">
{svg}
</div>
<aside id="details"><p class="hint">Point at a node (or click it, to keep it here) to see its value, its gradient and
the gradient's formula.</p></aside>
</div>
<div id="legend" hidden><span>|∂{output}/∂node|</span><span id="legend-lo">{lo}</span>
<span id="legend-bar"></span><span id="legend-hi">{hi}</span><span class="zero">0 or none</span></div>
<table id="values">
<thead><tr><th>name</th><th>op</th><th>inputs</th><th>value</th><th>grad of {output}</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<footer>Made by <code>cgcalc export --format html</code> ({drawn}). Above each edge the value flowing forward; below
it, in red, the gradient flowing back; ∂ beside a node: its total gradient. Keys: → and ← step, space plays, Home
and End jump, h colours by |gradient|, Esc lets go of a node.</footer>
<script type="application/json" id="cgcalc-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
