"""Rich renderables for the terminal. Builds, never prints and never exits."""

from __future__ import annotations

import math

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..core.runtime import Result
from ..errors import clean
from ..numbers import fmt_num, fmt_value

# like box.SIMPLE_HEAD, plus a rule between sections (inputs | nodes)
BOX = box.Box("    \n    \n ── \n    \n ── \n ── \n    \n    \n")
MAX_ROWS = 40  # a larger graph's table shows a selection (--all shows every row)


def literal(text: str, style: str = "") -> Text:
    """Text shown as it is: never read as Rich markup (a value `[inf, 1]` is not a style), with the control
    characters of a file's text escaped (errors.clean): a graph's name may hold any escape sequence."""
    return Text(clean(text), style=style)


def _cells(*cells) -> list:
    return [c if isinstance(c, Text) else literal(c) for c in cells]


def graph_title(spec, sep: str) -> str:
    """The graph's name and its description, on one line."""
    description = " ".join(spec.description.split("\n")).strip()
    return spec.name + (f"{sep}{description}" if description else "")


def _magnitude(g) -> float:
    if g is None:
        return -1.0
    if type(g) is float:
        return abs(g) if g == g else math.inf
    a = abs(g)
    return float(a.max()) if a.size and not (a != a).any() else (math.inf if a.size else 0.0)


def select_rows(
    result: Result,
    max_rows: int | None = MAX_ROWS,
    sort: str | None = None,
    only: str = "all",
    ranks: list | None = None,
) -> tuple[list, int]:
    """The slots to show and how many were left out: every input, then nodes in execution order — or,
    past max_rows, the first and last nodes and the outputs. sort='grad' ranks inputs and nodes by |gradient|,
    sort='elasticity' by |ranks| (the elasticities), the most sensitive first; only='inputs' or 'nodes'
    shows those rows alone."""
    plan = result.plan
    n_in, n = len(plan.inputs), plan.n_named
    inputs = list(range(n_in)) if only != "nodes" else []
    nodes = list(range(n_in, n)) if only != "inputs" else []
    if sort in ("grad", "elasticity"):
        by = result.grads[result.output] if sort == "grad" else ranks
        inputs.sort(key=lambda s: -_magnitude(by[s]))  # stable: ties stay in file order
        nodes.sort(key=lambda s: -_magnitude(by[s]))  # and in execution order
    total = len(inputs) + len(nodes)
    if max_rows is None or total <= max_rows:
        return inputs + nodes, 0
    keep_in = inputs[: max_rows // 2] if nodes else inputs[:max_rows]
    room = max(max_rows - len(keep_in), 4) if nodes else 0
    outs = {plan.index[o] for o in list(plan.outputs) + list(result.grads)}
    if sort is not None:
        chosen = nodes[:room]
    else:
        head, tail = nodes[: room // 2], nodes[len(nodes) - room // 2 :]
        chosen = head + [s for s in nodes if s in outs and s not in head and s not in tail] + tail
    chosen += sorted(s for s in outs if s in nodes and s not in chosen)
    return keep_in + chosen, total - len(keep_in) - len(chosen)


def result_table(
    result: Result,
    precision: int = 6,
    full: bool = False,
    max_rows: int | None = MAX_ROWS,
    sort: str | None = None,
    formulas: dict[str, str | None] | None = None,
    only: str = "all",
    elasticity: list | None = None,
) -> Table:
    """Inputs first, then each node in execution order: op, inputs, value, gradient; outputs marked.
    A large graph shows a bounded selection (see select_rows) and a line saying how many rows it left out.
    With elasticity (by slot, see whatif.elasticities), a column of them."""
    plan = result.plan
    spec = plan.spec
    outs = list(result.grads)
    slots, hidden = select_rows(result, max_rows, sort, only, elasticity)
    table = Table(
        title=literal(graph_title(spec, " — ")),
        box=BOX,
        header_style="bold",
        title_style="bold",
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("name", no_wrap=True, min_width=min(24, max((len(plan.names[s]) for s in slots), default=4)))
    table.add_column("op", style="cyan", no_wrap=True, min_width=5)
    table.add_column("inputs")
    table.add_column("value", justify="right")
    for o in outs:
        table.add_column(f"grad of {o}", justify="right", style="magenta")
    if elasticity is not None:
        table.add_column(f"elasticity of {result.output}", justify="right", style="yellow")
    if formulas is not None:
        table.add_column(f"∂{result.output}/∂name =", style="magenta")
    table.add_column("", no_wrap=True, min_width=8)  # the output mark

    n_in = len(plan.inputs)
    marked = set(plan.outputs) | set(outs)
    differentiated = set(outs)
    previous = -1
    extra = (elasticity is not None) + (formulas is not None)
    for slot in slots:
        if slot >= n_in > previous and previous >= 0:
            table.add_section()
        elif sort is None and slot > previous + 1 and previous >= n_in:
            blank = [""] * (len(outs) + extra)
            table.add_row(Text("⋮", style="dim"), *_cells("", "", "", *blank, ""))
        previous = slot
        name = plan.names[slot]
        if slot < n_in:
            op, ins = "input", ""
        else:
            st = plan.steps[slot - n_in]
            op, ins = st.op, ", ".join(plan.label(a) for a in st.args)
        is_out = name in marked
        cells = [
            Text(name, style="bold green" if is_out else ("bold" if slot < n_in else "")),
            op,
            ins,
            fmt_value(result.values[slot], precision, full),
        ]
        for o in outs:
            g = result.grads[o][slot]
            text = fmt_value(g, precision, full)
            cells.append(Text(text, style="dim") if g is None or (type(g) is float and g == 0) else text)
        if elasticity is not None:
            e = elasticity[slot]
            text = fmt_value(e, precision, full)
            cells.append(Text(text, style="dim") if e is None or (type(e) is float and e == 0) else text)
        if formulas is not None:
            cells.append(formulas.get(name) or "—")
        if name in differentiated:
            cells.append(Text("◀ output", style="bold green"))
        else:  # an output of the graph, not differentiated in this run
            cells.append(Text("◁ output", style="dim") if is_out else "")
        table.add_row(*_cells(*cells))
    if hidden:
        table.caption = f"{hidden:,} of {len(slots) + hidden:,} rows not shown: --all shows them" + (
            "" if sort is not None else ", --sort grad ranks by |gradient|"
        )
        table.caption_justify = "left"
    return table


def ops_table(layers: dict) -> Table:
    table = Table(title="cgcalc ops", box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("op", style="cyan", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    table.add_column("in", justify="right")
    table.add_column("forward", max_width=48)
    table.add_column("backward", max_width=56)
    for name, cls in layers.items():
        table.add_row(name, cls.__name__, str(cls.arity), cls.forward_rule, cls.backward_rule)
    return table


def trace_view(t, precision: int = 6, formulas: dict[str, str | None] | None = None):
    """The book's walk through backprop: forward steps, then backward steps with their local derivatives;
    with formulas, each gradient's formula beside it."""
    from rich.console import Group

    def v(x) -> str:
        return fmt_value(x, precision)

    lines: list = [literal(f"{t.graph}: forward, in execution order", style="bold")]
    width = max((len(s.name) for s in t.forward), default=0)
    for s in t.forward:
        args = ", ".join(f"{label}={v(x)}" if label else v(x) for label, x in s.args)
        line = Text("  ")
        line.append(s.name.ljust(width), style="bold")
        line.append(f" = {s.op}({args}) = ")
        line.append(v(s.value), style="bold")
        lines.append(line)
    lines.append(Text(""))
    lines.append(
        Text(
            f"backward, in reverse order: ∂x stands for ∂{t.output}/∂x; seeded with ∂{t.output} = {v(t.seed)}",
            style="bold",
        )
    )
    for s in t.backward:
        head = Text("  ")
        head.append(f"{s.name}", style="bold")
        head.append(f" ({s.op})   upstream ∂{s.name} = ")
        head.append(v(s.upstream), style="magenta")
        if formulas and formulas.get(s.name):
            head.append(f"   = {formulas[s.name]}", style="dim")
        lines.append(head)
        for p in s.passes:
            line = Text("      ")
            line.append(f"∂{p.to} ")
            line.append("+= " if p.accumulated else "= ")
            if p.local is not None:
                local = f"{p.via}({v(p.local)})" if p.via else v(p.local)
                line.append(f"{v(s.upstream)} × {local} = ")
            line.append(v(p.grad), style="magenta")
            if p.accumulated:
                line.append(f"   (total ∂{p.to} = {v(p.total)})", style="dim")
            lines.append(line)
        if s.passes and s.passes[0].local is None:
            lines.append(Text(f"      rule: {s.rule}", style="dim"))
    lines.append(Text(""))
    lines.append(Text(f"gradients of the inputs: ∂{t.output}/∂x", style="bold"))
    for name, g in t.grads:
        formula = f" = {formulas[name]}" if formulas and formulas.get(name) else ""
        lines.append(Text(f"  ∂{name}{formula} = {v(g)}"))
    return Group(*lines)


def check_table(report, full: bool = False) -> Table:
    """One row per input (its worst element), or per element with full: analytic vs numeric."""
    what = "backprop" if report.order == 1 else "the Hessian vs central differences of the gradient"
    title = (
        f"{report.graph}: {what} (eps {report.eps:g}, rtol {report.rtol:g}, atol {report.atol:g})"
        if report.order != 1
        else f"{report.graph}: backprop vs central differences (eps {report.eps:g}, rtol {report.rtol:g}, "
        f"atol {report.atol:g})"
    )
    table = Table(
        title=literal(title), box=BOX, header_style="bold", title_style="bold", pad_edge=False, show_edge=False
    )
    multi = len({c.output for c in report.inputs}) > 1
    if multi:
        table.add_column("output", no_wrap=True)
    for name, justify in (
        ("input", "left"),
        ("element", "left"),
        ("backprop", "right"),
        ("numeric", "right"),
        ("abs err", "right"),
        ("rel err", "right"),
        ("", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)
    style = {"pass": "green", "FAIL": "bold red", "kink": "yellow", "undefined": "yellow"}
    for c in report.inputs:
        if not c.elements:
            table.add_row(*_cells(*([c.output] if multi else []), c.name, "(no elements)", "", "", "", "", ""))
            continue
        elements = c.elements if full else (c.worst,)
        sampled = f", a sample of {c.total:,}" if len(c.elements) < c.total else ""
        for e in elements:
            where = "" if not c.shape else str(list(e.index))
            if c.shape and not full and len(c.elements) > 1:
                where += f" (worst of {len(c.elements):,}{sampled})"
            row = [
                c.name,
                where,
                fmt_num(e.analytic, 10),
                fmt_num(e.numeric, 10),
                f"{e.abs_err:.1e}",
                f"{e.rel_err:.1e}",
                Text(_status_text(e.status), style=style[e.status]),
            ]
            table.add_row(*_cells(*([c.output] if multi else []), *row))
    return table


def _status_text(status: str) -> str:
    return {"pass": "ok", "FAIL": "FAIL", "kink": "kink (no derivative here)", "undefined": "undefined at x ± eps"}[
        status
    ]


def hessian_table(h, precision: int) -> Group:
    """The Hessian with its row and column labels (inputs, or array elements such as W[0,1])."""
    t = Table(box=BOX, pad_edge=False, show_edge=False)
    t.add_column("")
    for label in h.labels:
        t.add_column(literal(label), justify="right")
    for label, row in zip(h.labels, h.matrix.tolist()):
        t.add_row(literal(label, "bold"), *[literal(fmt_num(x, precision)) for x in row])
    return Group(literal(f"{h.graph}: ∂²{h.output} / ∂row ∂column"), t)


def hvp_table(graph: str, output: str, hv: dict, precision: int) -> Group:
    t = Table(box=BOX, pad_edge=False, show_edge=False)
    t.add_column("input")
    t.add_column("(H v)", justify="right")
    for name, v in hv.items():
        t.add_row(literal(name, "bold"), literal(fmt_value(v, precision)))
    return Group(literal(f"{graph}: the Hessian of {output} times the vector v"), t)


# --- what-if: sweep, tornado, solve ---------------------------------------------------------------------------

# the style of each name charts.py gives its segments (colourless consoles see the characters alone)
CHART_STYLES = {
    "": "",
    "curve": "cyan",
    "deriv": "magenta",
    "tangent": "yellow",
    "mark": "bold red",
    "axis": "dim",
    "label": "dim",
    "name": "bold",
    "low": "cyan",
    "high": "magenta",
    # a heat map's five shades, low to high (viridis)
    "heat0": "#440154",
    "heat1": "#3b528b",
    "heat2": "#21918c",
    "heat3": "#5ec962",
    "heat4": "#fde725",
}


def chart_text(lines: list) -> Group:
    """The lines of a chart (charts.py: (text, style name) segments) as Rich Text, one per line."""
    out = []
    for line in lines:
        t = Text(no_wrap=True, overflow="crop")
        for text, style in line:
            t.append(clean(text), style=CHART_STYLES[style])
        out.append(t)
    return Group(*out)


def _legend(*parts: tuple[str, str]) -> Text:
    t = Text()
    for text, style in parts:
        t.append(clean(text), style=CHART_STYLES.get(style, style))
    return t


def _spread(n: int, k: int) -> list[int]:
    """k indices of n, evenly spread, the first and the last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


SWEEP_ROWS = 21  # a sweep's table shows every point up to this many, else a spread of SWEEP_SPREAD
SWEEP_SPREAD = 11  # the first, the last, and every tenth of the way between


def sweep_view(sw, precision: int = 6, max_rows: int | None = SWEEP_ROWS) -> Group:
    """A sweep in the terminal: for one input, line charts of the output (with its tangent at the file's value)
    and of its derivative; for two, a heat map of the output; then the table of points (a spread of them past
    max_rows)."""
    from . import charts

    out, names = sw.output, sw.inputs
    v = fmt_num
    parts: list = []
    span = " × ".join(
        f"{a.name} from {v(a.start, precision)} to {v(a.stop, precision)} ({a.n:,} points)" for a in sw.axes
    )
    parts.append(literal(f"{sw.graph}: {out} for {span}", "bold"))
    x0s = [sw.at["inputs"][n] for n in names]
    y0 = sw.at["value"]
    if len(names) == 1:
        name, x0, g0 = names[0], x0s[0], sw.at["grad"][names[0]]
        xs, ys, ds = sw.columns[name], sw.values, sw.grads[name]
        lo, hi = min(sw.axes[0].start, sw.axes[0].stop), max(sw.axes[0].start, sw.axes[0].stop)
        inside = lo <= x0 <= hi and math.isfinite(y0) and math.isfinite(g0)
        tangent = (x0, y0, g0) if inside else None
        mark = (x0, y0) if inside else None
        parts.append(chart_text(charts.line_chart(xs, ys, x_label=name, y_label=out, tangent=tangent, mark=mark)))
        if inside:
            parts.append(
                _legend(
                    ("⠉⠉ ", "curve"),
                    (f"{out}    ", ""),
                    ("·· ", "tangent"),
                    (f"its tangent at {name} = {v(x0, precision)}, slope {v(g0, precision)}    ", ""),
                    ("● ", "mark"),
                    (f"{out} = {v(y0, precision)} there (the file's value)", ""),
                )
            )
        else:
            parts.append(
                literal(f"(the file's value, {name} = {v(x0, precision)}, is outside the sweep: no tangent drawn)")
            )
        parts.append(Text(""))
        deriv = f"∂{out}/∂{name}"
        marks = (x0, g0) if inside else None
        parts.append(chart_text(charts.line_chart(xs, ds, x_label=name, y_label=deriv, style="deriv", mark=marks)))
        if inside:
            parts.append(
                _legend(
                    ("⠉⠉ ", "deriv"),
                    (f"{deriv}, the slope of {out}    ", ""),
                    ("● ", "mark"),
                    (f"{v(g0, precision)} at {name} = {v(x0, precision)}", ""),
                )
            )
    else:
        (a, b), (na, nb) = names, (sw.axes[0].n, sw.axes[1].n)
        xs, ys = sw.axes[0].values().tolist(), sw.axes[1].values().tolist()
        grid = sw.values.reshape(na, nb)
        inside = all(min(ax.start, ax.stop) <= x <= max(ax.start, ax.stop) for ax, x in zip(sw.axes, x0s))
        lines, (lo, hi) = charts.heat_map(xs, ys, grid, x_label=a, y_label=b, mark=(x0s[0], x0s[1]) if inside else None)
        parts.append(chart_text(lines))
        legend = [(ch, f"heat{i}") for i, ch in enumerate(charts.SHADES)]
        legend.append((f"  {out} from {v(lo, precision)} to {v(hi, precision)}, in five equal steps", ""))
        parts.append(_legend(*legend))
        if inside:
            at = f"{a} = {v(x0s[0], precision)}, {b} = {v(x0s[1], precision)}: {out} = {v(y0, precision)}"
            parts.append(_legend(("●     ", "mark"), (f"the file's values, {at}", "")))
    parts.append(Text(""))
    parts.append(sweep_table(sw, precision, max_rows))
    return Group(*parts)


def sweep_table(sw, precision: int = 6, max_rows: int | None = SWEEP_ROWS) -> Table | Group:
    names, out = sw.inputs, sw.output
    table = Table(box=BOX, header_style="bold", pad_edge=False, show_edge=False)
    for n in names:
        table.add_column(literal(n), justify="right")
    table.add_column(literal(out), justify="right", style="bold")
    for n in names:
        table.add_column(literal(f"∂{out}/∂{n}"), justify="right", style="magenta")
    total = len(sw.values)
    shown = list(range(total)) if max_rows is None or total <= max_rows else _spread(total, SWEEP_SPREAD)
    cols = [sw.columns[n] for n in names] + [sw.values] + [sw.grads[n] for n in names]
    for i in shown:
        table.add_row(*[literal(fmt_num(float(c[i]), precision)) for c in cols])
    if len(shown) < total:
        note = f"{len(shown)} of {total:,} points shown: --all shows every one, --format csv writes them"
        return Group(table, Text(note, style="dim"))
    return table


def tornado_view(t, precision: int = 6, width: int = 25) -> Group:
    """The tornado: each input's range, the output at its ends (computed) and the gradient's linear estimate
    beside them, sorted by swing, with horizontal bars about the base value."""
    from . import charts

    v = fmt_num
    by = f"±{v(t.by * 100, precision)}%"
    if t.ranged:
        by = "to its --range" if len(t.ranged) == len(t.rows) else f"{by} ({', '.join(t.ranged)}: to its --range)"
    title = f"{t.graph}: {t.output} = {v(t.base, precision)}; each input moved {by}, the others fixed"
    table = Table(box=BOX, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("input", no_wrap=True)
    table.add_column("moved to", justify="right", no_wrap=True)
    table.add_column(literal(f"{t.output} there"), justify="right", no_wrap=True)
    table.add_column("linear estimate", justify="right", no_wrap=True, style="dim")
    table.add_column("swing", justify="right", no_wrap=True, style="bold")
    table.add_column("", no_wrap=True)
    bars = charts.bars([(r.low, r.high) for r in t.rows], t.base, width)
    for r, bar in zip(t.rows, bars):
        table.add_row(
            literal(r.input, "bold"),
            literal(f"{v(r.low_input, precision)} → {v(r.high_input, precision)}"),
            literal(f"{v(r.low, precision)} → {v(r.high, precision)}"),
            literal(f"{v(r.linear_low, precision)} → {v(r.linear_high, precision)}"),
            literal(v(r.swing, precision)),
            chart_text([bar]),
        )
    legend = [("░ ", "low"), ("the input moved down, ", ""), ("█ ", "high"), ("up; ", ""), ("│ ", "axis")]
    legend.append((f"{t.output} = {v(t.base, precision)}", ""))
    if t.skipped:
        legend.append((f"; not moved (not scalars with a gradient): {', '.join(t.skipped)}", ""))
    return Group(literal(title, "bold"), table, _legend(*legend))


def solve_view(s, precision: int = 6) -> Group:
    v = fmt_num
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 3, 0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(no_wrap=True)
    table.add_row(literal(s.input), literal(f"{v(s.value, precision)}   (Newton started at {v(s.start, precision)})"))
    table.add_row(literal(s.output), literal(v(s.target + s.residual, precision)))
    table.add_row("residual", literal(f"{s.residual:.3g}   ({s.output} − {v(s.target, precision)})"))
    table.add_row("iterations", literal(f"{s.iterations} ({s.method})"))
    head = f"{s.graph}: {s.output} = {v(s.target, precision)} at {s.input} = {v(s.value, precision)}"
    return Group(literal(head, "bold"), table)
