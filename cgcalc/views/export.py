"""Pure string producers for machine-readable output: JSON (strict RFC 8259) and CSV."""

from __future__ import annotations

import csv
import io

from ..core.attr_values import file_attrs
from ..core.index_layers import index_text
from ..core.runtime import Result, Value, to_plain
from ..errors import clean
from ..numbers import dumps, fmt_float, fmt_value


def _rows(result: Result, formulas: dict[str, str | None] | None, only: str, elasticity: list | None) -> list[dict]:
    """The rows of to_dict(), with their formula and elasticity fields, those `only` selects."""
    d = result.to_dict()
    n_in = len(result.plan.inputs)
    rows = []
    for slot, n in enumerate(d["nodes"]):
        if (only == "inputs" and slot >= n_in) or (only == "nodes" and slot < n_in):
            continue
        if elasticity is not None:
            n["elasticity"] = to_plain(elasticity[slot])
        if formulas is not None:
            n["formula"] = formulas.get(n["name"])
        rows.append(n)
    return rows


def to_json(
    result: Result,
    formulas: dict[str, str | None] | None = None,
    only: str = "all",
    elasticity: list | None = None,
) -> str:
    """One JSON object; one line per node so that it also reads well without jq. With formulas, each node's
    gradient formula as its "formula" field (null for none); with elasticity (by slot), an "elasticity" field;
    only ('inputs', 'nodes' or 'all') chooses the rows."""
    d = result.to_dict()
    head = {k: d[k] for k in ("graph", "output", "outputs")}
    text = dumps(head)[:-1]
    nodes = ",\n  ".join(dumps(n) for n in _rows(result, formulas, only, elasticity))
    return f'{text},\n "nodes": [\n  {nodes}]}}\n'


def cell(v: Value | None) -> str:
    """A CSV cell: a number in round-trip form, an array as JSON, nothing for no value."""
    if v is None:
        return ""
    if type(v) is float:
        return fmt_float(v)
    return dumps(v)


def csv_text(header: list[str], rows: list[list]) -> str:
    """CSV of plain rows: text as it is, numbers and arrays as `cell` writes them."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([x if isinstance(x, str) else cell(_plain(x)) for x in row])
    return buf.getvalue()


def _plain(v):
    return v.tolist() if hasattr(v, "tolist") and getattr(v, "ndim", 0) else (None if v is None else float(v))


def to_csv(
    result: Result,
    formulas: dict[str, str | None] | None = None,
    only: str = "all",
    elasticity: list | None = None,
) -> str:
    outs = list(result.grads)
    multi = len(outs) > 1
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    extra = (["elasticity"] if elasticity is not None else []) + (["formula"] if formulas is not None else [])
    w.writerow(["name", "op", "inputs", "value", "grad"] + [f"d{o}" for o in outs if multi] + extra)
    for n in _rows(result, formulas, only, elasticity):
        row = [n["name"], n["op"], " ".join(n["inputs"]), cell(n["value"]), cell(n["grad"])]
        if multi:
            row += [cell(n["grads"][o]) for o in outs]
        if elasticity is not None:
            row.append(cell(n["elasticity"]))
        if formulas is not None:
            row.append(formulas.get(n["name"]) or "")
        w.writerow(row)
    return buf.getvalue()


# --- figures: the graph with values and gradients on its edges, as in the book ---------------------


def _figure_parts(result: Result, precision: int):
    """(nodes, edges) of the figure: inputs and outputs as boxes, ops as circles, constants as text.
    A node carries its total gradient; an edge the value flowing along it and the gradient flowing back
    along it (at a fan-out, each edge its own share; off the path to the selected output, none)."""
    from ..core.runtime import edge_flows

    plan = result.plan
    grads = result.grads[result.output]
    flows = edge_flows(result)
    n_in = len(plan.inputs)

    def num(v) -> str:
        if v is not None and getattr(v, "ndim", 0):
            return "×".join(map(str, v.shape)) + " array"
        return fmt_value(v, precision)

    nodes = []  # (id, kind, label, name, total gradient text or "")
    edges = []  # (src id, dst id, value text, grad text or "" for none, (step index, input index) or the output)
    ids = {}
    for slot in range(n_in):
        ids[slot] = f"n{slot}"
        g = grads[slot]
        nodes.append((ids[slot], "input", plan.names[slot], plan.names[slot], "" if g is None else num(g)))
    const_ids = {}
    for st in plan.steps:
        ids[st.slot] = f"n{st.slot}"
        nodes.append((ids[st.slot], "op", _symbol(st), st.name, num(grads[st.slot])))
    for i, st in enumerate(plan.steps):
        for j, a in enumerate(st.args):
            if a >= plan.n_named:
                if a not in const_ids:
                    const_ids[a] = f"c{a - plan.n_named}"
                    nodes.append((const_ids[a], "const", plan.label(a), plan.label(a), ""))
                edges.append((const_ids[a], ids[st.slot], plan.label(a), "", (i, j)))
            else:
                d = flows.get((i, j))
                edges.append((ids[a], ids[st.slot], num(result.values[a]), "" if d is None else num(d), (i, j)))
    for o in plan.outputs:
        slot = plan.index[o]
        oid = f"out{slot}"
        nodes.append((oid, "output", o, o, ""))
        edges.append((ids[slot], oid, num(result.values[slot]), "1" if o == result.output else "", o))
    return nodes, edges


def _symbol(st) -> str:
    """An op's label in the picture: its symbol; getitem's, its index as Python writes it (`[:, 1]`) when that
    fits in the op's circle (the tooltip names the node)."""
    if st.op == "getitem":
        label = f"[{index_text(file_attrs(st.cls, st.attrs)['index'])}]"
        if len(label) <= 7:
            return label
    return st.cls.symbol


def _q(text: str) -> str:
    """A dot string's text: control characters escaped (a NUL makes Graphviz refuse the file), then quoted."""
    return clean(text).replace("\\", "\\\\").replace('"', '\\"')


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_dot(result: Result, precision: int = 6, ids: bool = False) -> str:
    """Graphviz: values above each edge (black), gradients below (red), as in the book's figures. With ids, each
    node and edge gets an id (node_ID, edge_K) that the SVG keeps, for the HTML page to find them by."""
    nodes, edges = _figure_parts(result, precision)
    from .render import graph_title

    spec = result.plan.spec
    title = graph_title(spec, ": ")
    out = [
        f'digraph "{_q(spec.name)}" {{',
        "  rankdir=LR;",
        f'  label="{_q(title)}\\n(value above each edge, gradient of {_q(result.output)} flowing back along it below, in red; ∂ beside a node: its total)";',
        '  labelloc=t; fontname="Helvetica";',
        '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=11];',
    ]
    shapes = {
        "input": "shape=box",
        "output": "shape=box, style=bold",
        "op": "shape=circle, width=0.6, fixedsize=true",
        "const": "shape=plaintext",
    }
    for nid, kind, label, name, total in nodes:
        xlabel = f', xlabel=<<font color="red" point-size="11">∂ {_html(total)}</font>>' if total else ""
        nid_attr = f'id="node_{nid}", ' if ids else ""
        out.append(f'  {nid} [{nid_attr}{shapes[kind]}, label="{_q(label)}", tooltip="{_q(name)}"{xlabel}];')
    for k, (src, dst, value, grad, _) in enumerate(edges):
        if grad:
            label = f'<{_html(value)}<br/><font color="red">{_html(grad)}</font>>'
        elif src.startswith("c"):  # a constant: a value, and no gradient to speak of
            label = f'"{_q(value)}"'
        else:  # off the path to the selected output: no gradient flows here
            label = f'"{_q(value)}", color="gray", fontcolor="gray"'
        out.append(f"  {src} -> {dst} [{f'id=edge_{k}, ' if ids else ''}label={label}];")
    out.append("}")
    return "\n".join(out) + "\n"


def to_mermaid(result: Result, precision: int = 6) -> str:
    """Mermaid flowchart: each edge labelled 'value / ∂ gradient'."""
    nodes, edges = _figure_parts(result, precision)
    shapes = {"input": ('["', '"]'), "output": ('[["', '"]]'), "op": ('(("', '"))'), "const": ('>"', '"]')}
    out = ["flowchart LR"]
    for nid, kind, label, _name, total in nodes:
        left, right = shapes[kind]
        text = f"{label} · ∂ {total}" if total else label
        out.append(f"  {nid}{left}{_mq(text)}{right}")
    grey = []
    for i, (src, dst, value, grad, _) in enumerate(edges):
        text = f"{value} / ∂ {grad}" if grad else value
        out.append(f'  {src} -->|"{_mq(text)}"| {dst}')
        if not grad and not src.startswith("c"):
            grey.append(str(i))  # off the path to the selected output: no gradient flows here
    if grey:
        out.append(f"  linkStyle {','.join(grey)} stroke:gray,color:gray")
    return "\n".join(out) + "\n"


def _mq(text: str) -> str:
    return clean(text.replace("\n", " ")).replace('"', "#quot;")
