"""What a notebook shows of cgcalc's objects: a Result as its table, a Graph (and `g.draw()`) as its picture, a
Trace as its step list. The objects' `_repr_*_` methods come here (the one import from the API up to the views,
inside those methods only: a notebook asks the object itself how to show it)."""

from __future__ import annotations

from html import escape
from weakref import WeakKeyDictionary

from ..core.runtime import Result
from ..errors import CgcalcError, clean
from ..numbers import fmt_value
from .render import graph_title, select_rows
from .steps import trace_html, trace_text
from .trace import Trace, trace

__all__ = ["Picture", "Trace", "draw", "graph_picture", "result_html", "trace", "trace_html", "trace_text"]

GRID_ELEMENTS = 100  # an array up to this size is shown in full in the table, as a grid; larger, its preview
STYLE = (
    "<style>.cgcalc-result td.num,.cgcalc-result th.num{text-align:right;font-family:monospace;white-space:pre}"
    ".cgcalc-result td{vertical-align:top}.cgcalc-result tr.out td:first-child{font-weight:bold;color:#2a7d2a}"
    ".cgcalc-result caption{font-weight:bold;text-align:left}</style>"
)


class Picture:
    """A drawing of a run, with values above its edges and gradients below: SVG text (`.svg`), shown by a notebook
    as SVG when Graphviz drew it, as HTML (the built-in layout) otherwise; `.save(path)` writes the SVG."""

    def __init__(self, svg: str, graphviz: bool, name: str) -> None:
        self.svg, self.graphviz, self.name = svg, graphviz, name

    def _repr_svg_(self) -> str | None:
        return self.svg if self.graphviz else None

    def _repr_html_(self) -> str | None:
        return None if self.graphviz else f'<div class="cgcalc-figure">{self.svg}</div>'

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def __repr__(self) -> str:
        by = "Graphviz" if self.graphviz else "the built-in layout"
        return f"<cgcalc.Picture of {self.name!r}, drawn by {by}: .svg, .save(path)>"


def draw(result: Result, precision: int = 6, graphviz: bool | None = None) -> Picture:
    """The run's figure: by Graphviz when it is installed (and the graph small enough for it), else the built-in
    layered layout."""
    from ..io import graphviz as gv
    from . import layout
    from .export import _figure_parts, to_dot

    plan = result.plan
    if graphviz is None:
        graphviz = gv.installed() and gv.small_enough(plan)
    if graphviz:
        svg = gv.draw(to_dot(result, precision, ids=True), "svg", "<picture>").decode()
        return Picture(svg[svg.find("<svg") :], True, plan.spec.name)
    nodes, edges = _figure_parts(result, precision)
    return Picture(layout.svg(nodes, edges, graph_title(plan.spec, ": ")), False, plan.spec.name)


_PICTURES: WeakKeyDictionary = WeakKeyDictionary()  # Graph -> its picture: a notebook asks for SVG, then HTML


def graph_picture(g) -> Picture | None:
    """A Graph as a notebook shows it: the picture of a run at the file's values; none for a graph too large to
    draw quickly, or one that cannot run (the text repr is shown then)."""
    from ..io import graphviz as gv

    if g in _PICTURES:
        return _PICTURES[g]
    picture = None
    if gv.small_enough(g.plan):
        try:
            picture = draw(g.run())
        except CgcalcError:
            pass
    _PICTURES[g] = picture
    return picture


def _cell(v, precision: int) -> str:
    if v is not None and getattr(v, "ndim", 0) and v.size <= GRID_ELEMENTS:
        return escape(fmt_value(v, precision, full=True))
    return escape(fmt_value(v, precision))


def result_html(result: Result, precision: int = 6) -> str:
    """The table `cgcalc run` prints, as HTML: inputs, then nodes; value and gradient of each; the output marked."""
    plan = result.plan
    outs = list(result.grads)
    slots, hidden = select_rows(result)
    n_in = len(plan.inputs)
    head = "".join(f'<th class="num">grad of {escape(o)}</th>' for o in outs)
    rows = []
    for slot in slots:
        name = plan.names[slot]
        if slot < n_in:
            op, ins = "input", ""
        else:
            st = plan.steps[slot - n_in]
            op, ins = st.op, ", ".join(plan.label(a) for a in st.args)
        grads = "".join(f'<td class="num">{_cell(result.grads[o][slot], precision)}</td>' for o in outs)
        mark = "◀ output" if name in outs else ("◁ output" if name in plan.outputs else "")
        cls = ' class="out"' if name in outs else ""
        rows.append(
            f"<tr{cls}><td>{escape(name)}</td><td>{op}</td><td>{escape(ins)}</td>"
            f'<td class="num">{_cell(result.values[slot], precision)}</td>{grads}<td>{mark}</td></tr>'
        )
    foot = f"<p>{hidden:,} of {plan.n_named:,} rows not shown</p>" if hidden else ""
    return (
        f'{STYLE}<table class="cgcalc-result"><caption>{escape(clean(graph_title(plan.spec, " — ")))}</caption>'
        f'<thead><tr><th>name</th><th>op</th><th>inputs</th><th class="num">value</th>{head}<th></th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{foot}"
    )
