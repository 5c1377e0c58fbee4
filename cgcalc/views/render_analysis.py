"""Rich renderables of the what-if and training views: charts, sweep, tornado, solve and fit. Builds, never
prints and never exits."""

from __future__ import annotations

import math
from functools import partial

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import clean
from ..numbers import fmt_num
from .render import BOX, literal

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
    span = " × ".join(
        f"{a.name} from {fmt_num(a.start, precision)} to {fmt_num(a.stop, precision)} ({a.n:,} points)" for a in sw.axes
    )
    drawn = _sweep_charts(sw, precision) if len(sw.inputs) == 1 else _sweep_heat_map(sw, precision)
    title = literal(f"{sw.graph}: {sw.output} for {span}", "bold")
    return Group(title, *drawn, Text(""), sweep_table(sw, precision, max_rows))


def _sweep_charts(sw, precision: int) -> list:
    """A sweep of one input: the output's line chart, with its tangent at the file's value when that is inside the
    sweep, and its derivative's, each with its legend."""
    from . import charts

    out, name = sw.output, sw.inputs[0]
    x0, y0, g0 = sw.at["inputs"][name], sw.at["value"], sw.at["grad"][name]
    xs, ys, ds = sw.columns[name], sw.values, sw.grads[name]
    lo, hi = min(sw.axes[0].start, sw.axes[0].stop), max(sw.axes[0].start, sw.axes[0].stop)
    inside = lo <= x0 <= hi and math.isfinite(y0) and math.isfinite(g0)
    v = partial(fmt_num, precision=precision)
    tangent, mark = ((x0, y0, g0), (x0, y0)) if inside else (None, None)
    parts: list = [chart_text(charts.line_chart(xs, ys, x_label=name, y_label=out, tangent=tangent, mark=mark))]
    if inside:
        parts.append(
            _legend(
                ("⠉⠉ ", "curve"),
                (f"{out}    ", ""),
                ("·· ", "tangent"),
                (f"its tangent at {name} = {v(x0)}, slope {v(g0)}    ", ""),
                ("● ", "mark"),
                (f"{out} = {v(y0)} there (the file's value)", ""),
            )
        )
    else:
        parts.append(literal(f"(the file's value, {name} = {v(x0)}, is outside the sweep: no tangent drawn)"))
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
                (f"{v(g0)} at {name} = {v(x0)}", ""),
            )
        )
    return parts


def _sweep_heat_map(sw, precision: int) -> list:
    """A sweep of two inputs: the output's heat map, its legend, and the file's values marked when inside it."""
    from . import charts

    out, (a, b) = sw.output, sw.inputs
    x0s = [sw.at["inputs"][n] for n in sw.inputs]
    xs, ys = sw.axes[0].values().tolist(), sw.axes[1].values().tolist()
    grid = sw.values.reshape(sw.axes[0].n, sw.axes[1].n)
    inside = all(min(ax.start, ax.stop) <= x <= max(ax.start, ax.stop) for ax, x in zip(sw.axes, x0s))
    lines, (lo, hi) = charts.heat_map(xs, ys, grid, x_label=a, y_label=b, mark=(x0s[0], x0s[1]) if inside else None)
    v = partial(fmt_num, precision=precision)
    legend = [(ch, f"heat{i}") for i, ch in enumerate(charts.SHADES)]
    legend.append((f"  {out} from {v(lo)} to {v(hi)}, in five equal steps", ""))
    parts = [chart_text(lines), _legend(*legend)]
    if inside:
        at = f"{a} = {v(x0s[0])}, {b} = {v(x0s[1])}: {out} = {v(sw.at['value'])}"
        parts.append(_legend(("●     ", "mark"), (f"the file's values, {at}", "")))
    return parts


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


def fit_view(result, precision: int = 6) -> Group:
    """A fit: what ran, the loss curve, the outputs at the trained parameters, the parameters before and after."""
    from .fit import loss_chart, param_rows, summary

    head, *rest = summary(result, precision)
    chart = loss_chart(result.losses, result.per)
    t = Table(box=BOX, pad_edge=False, show_edge=False)
    t.add_column("param")
    t.add_column("before", justify="right")
    t.add_column("after", justify="right")
    for name, before, after in param_rows(result, precision):
        t.add_row(literal(name, "bold"), literal(before), literal(after))
    return Group(literal(head), *[literal(line) for line in chart + rest], t)
