"""Rich renderables for the terminal. Builds, never prints and never exits."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..core.runtime import Result
from ..errors import clean
from ..numbers import fmt_num, fmt_value

if TYPE_CHECKING:
    from ..core.spec import GraphSpec
    from .check import CheckReport
    from .hessian import Hessian

# like box.SIMPLE_HEAD, plus a rule between sections (inputs | nodes)
BOX = box.Box("    \n    \n ── \n    \n ── \n ── \n    \n    \n")
MAX_ROWS = 40  # a larger graph's table shows a selection (--all shows every row)


def literal(text: str, style: str = "") -> Text:
    """Text shown as it is: never read as Rich markup (a value `[inf, 1]` is not a style), with the control
    characters of a file's text escaped (errors.clean): a graph's name may hold any escape sequence."""
    return Text(clean(text), style=style)


def _cells(*cells) -> list:
    return [c if isinstance(c, Text) else literal(c) for c in cells]


def graph_title(spec: GraphSpec, sep: str) -> str:
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
    width: int | None = None,
) -> Table | Group:
    """Inputs first, then each node in execution order: op, inputs, value, gradient; outputs marked.
    A large graph shows a bounded selection (see select_rows) and a line saying how many rows it left out.
    Given the terminal's width, a table too wide for it drops the inputs column, and if that is not enough each
    row is stacked (its value and gradients under its name), so that no number is cut. With elasticity (by slot,
    see whatif.elasticities), a column of them; `only` selects inputs or nodes (see select_rows)."""
    args = (result, precision, full, max_rows, sort, formulas, only, elasticity)
    table = _result_table(*args)
    if width is None or table_width(table) <= width:
        return table
    narrower = _result_table(*args, inputs=False)
    if table_width(narrower) <= width:
        return narrower
    return _result_stacked(*args, width)


def table_width(table: Table) -> int:
    """The width a table takes when nothing in it wraps (cgcalc's tables: no outer edge, one space of padding
    and a one-character divider between columns)."""
    widths = []
    for column in table.columns:
        cells = [column.header, *column.cells]
        widths.append(max([column.min_width or 0] + [_text_width(c) for c in cells]))
    return sum(widths) + 3 * (len(widths) - 1)


def _text_width(cell) -> int:
    from rich.cells import cell_len

    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _block(text: str) -> str:
    """A grid's lines made equally long, so that a right-justified cell keeps its columns aligned."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    n = max(len(line) for line in lines)
    return "\n".join(line.ljust(n) for line in lines)


def _row_cells(result: Result, slot: int, precision: int, full: bool, width: int | None = None, block: bool = True):
    """(name, op, inputs, value text, [(output, grad text, dim)]) of one row; with block, a grid's lines padded
    to one length (for a right-justified table cell)."""
    pad = _block if block else str
    plan = result.plan
    n_in = len(plan.inputs)
    if slot < n_in:
        op, ins = "input", ""
    else:
        st = plan.steps[slot - n_in]
        op, ins = st.op, ", ".join(plan.label(a) for a in st.args)
    value = pad(fmt_value(result.values[slot], precision, full, width))
    grads = []
    for o in result.grads:
        g = result.grads[o][slot]
        grads.append((o, pad(fmt_value(g, precision, full, width)), g is None or (type(g) is float and g == 0)))
    return plan.names[slot], op, ins, value, grads


def _result_stacked(result, precision, full, max_rows, sort, formulas, only, elasticity, width: int) -> Group:
    """The run table for a narrow terminal: each row's name, op and inputs on a line, then its value and each
    gradient (and formula) on lines of their own; a grid under its label, its rows wrapped to the width."""
    plan = result.plan
    slots, hidden = select_rows(result, max_rows, sort, only, elasticity)
    marked = set(plan.outputs) | set(result.grads)
    labels = ["value"] + [f"grad of {o}" for o in result.grads] + ([f"∂{result.output}/∂name ="] if formulas else [])
    labels += [f"elasticity of {result.output}"] if elasticity is not None else []
    label_width = max(len(x) for x in labels)
    name_width = min(24, max(len(plan.names[s]) for s in slots))
    lines: list = [literal(graph_title(plan.spec, " — "), style="bold")]
    n_in = len(plan.inputs)
    rule = Text("─" * min(width, 60), style="dim")
    previous = -1
    for slot in slots:
        if slot >= n_in > previous or previous < 0:
            lines.append(rule)
        elif sort is None and slot > previous + 1 and previous >= n_in:
            lines.append(Text("⋮", style="dim"))
        previous = slot
        name, op, ins, value, grads = _row_cells(result, slot, precision, full, max(width - 4, 20), block=False)
        head = Text()
        head.append(name.ljust(name_width), style="bold green" if name in marked else "bold")
        head.append("   ")
        head.append(op if slot < n_in else f"{op}({ins})", style="cyan")
        if name in result.grads:
            head.append("   ◀ output", style="bold green")
        elif name in marked:
            head.append("   ◁ output", style="dim")
        lines.append(head)
        fields = [("value", value, "")] + [(f"grad of {o}", g, "dim" if dim else "magenta") for o, g, dim in grads]
        if formulas is not None:
            fields.append((f"∂{result.output}/∂name =", formulas.get(name) or "—", "magenta"))
        if elasticity is not None:
            fields.append((labels[-1], fmt_value(elasticity[slot], precision, full), "yellow"))
        for label, text, style in fields:
            if "\n" in text or 2 + label_width + 2 + len(text) > width:
                lines.append(literal(f"  {label}"))
                lines += [Text("    " + line, style=style) for line in _wrapped(text, width - 4)]
            else:
                line = literal(f"  {label.ljust(label_width)}  ")
                line.append(text, style=style)
                lines.append(line)
    if hidden:
        lines.append(literal(f"{hidden:,} of {plan.n_named:,} rows not shown: --all shows them", style="dim"))
    return Group(*lines)


def _wrapped(text: str, width: int) -> list[str]:
    """A value's text in lines of at most `width`: a grid as it is (its rows are wrapped already), a preview or a
    vector broken after a comma, never inside a number."""
    if "\n" in text or len(text) <= width:
        return text.split("\n")
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = " " + word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return out


def _result_table(
    result: Result,
    precision: int = 6,
    full: bool = False,
    max_rows: int | None = MAX_ROWS,
    sort: str | None = None,
    formulas: dict[str, str | None] | None = None,
    only: str = "all",
    elasticity: list | None = None,
    inputs: bool = True,
) -> Table:
    plan = result.plan
    outs = list(result.grads)
    slots, hidden = select_rows(result, max_rows, sort, only, elasticity)
    table = _result_columns(result, slots, formulas is not None, inputs, elasticity is not None)
    n_in = len(plan.inputs)
    marked = set(plan.outputs) | set(outs)
    previous = -1
    for slot in slots:
        if slot >= n_in > previous and previous >= 0:
            table.add_section()
        elif sort is None and slot > previous + 1 and previous >= n_in:
            blank = [""] * (len(outs) + (formulas is not None) + (elasticity is not None) + inputs)
            table.add_row(Text("⋮", style="dim"), *_cells("", "", *blank, ""))
        previous = slot
        table.add_row(*_cells(*_result_row(result, slot, marked, precision, full, formulas, inputs, elasticity)))
    if hidden:
        table.caption = f"{hidden:,} of {len(slots) + hidden:,} rows not shown: --all shows them" + (
            "" if sort is not None else ", --sort grad ranks by |gradient|"
        )
        table.caption_justify = "left"
    return table


def _result_columns(
    result: Result, slots: list[int], formulas: bool, inputs: bool = True, elasticity: bool = False
) -> Table:
    """The result table with its title and columns, and no rows yet: a gradient column per output differentiated
    (and one of formulas); the inputs column unless `inputs` is False (a narrow terminal)."""
    plan = result.plan
    table = Table(
        title=literal(graph_title(plan.spec, " — ")),
        box=BOX,
        header_style="bold",
        title_style="bold",
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("name", no_wrap=True, min_width=min(24, max((len(plan.names[s]) for s in slots), default=4)))
    table.add_column("op", style="cyan", no_wrap=True, min_width=5)
    if inputs:
        table.add_column("inputs")
    table.add_column("value", justify="right")
    for o in result.grads:
        table.add_column(f"grad of {o}", justify="right", style="magenta")
    if elasticity:
        table.add_column(f"elasticity of {result.output}", justify="right", style="yellow")
    if formulas:
        table.add_column(f"∂{result.output}/∂name =", style="magenta")
    table.add_column("", no_wrap=True, min_width=8)  # the output mark
    return table


def _result_row(
    result: Result,
    slot: int,
    marked: set[str],
    precision: int,
    full: bool,
    formulas: dict[str, str | None] | None,
    inputs: bool = True,
    elasticity: list | None = None,
) -> list:
    """The cells of one input or node: name, op, inputs, value, its gradients (0 and none dimmed), its formula,
    output mark."""
    name, op, ins, value, grads = _row_cells(result, slot, precision, full)
    is_out = name in marked
    cells = [Text(name, style="bold green" if is_out else ("bold" if slot < len(result.plan.inputs) else "")), op]
    if inputs:
        cells.append(ins)
    cells.append(value)
    for _, text, dim in grads:
        cells.append(Text(text, style="dim") if dim else text)
    if elasticity is not None:
        e = elasticity[slot]
        text = fmt_value(e, precision, full)
        cells.append(Text(text, style="dim") if e is None or (type(e) is float and e == 0) else text)
    if formulas is not None:
        cells.append(formulas.get(name) or "—")
    if name in result.grads:
        cells.append(Text("◀ output", style="bold green"))
    else:  # an output of the graph, not differentiated in this run
        cells.append(Text("◁ output", style="dim") if is_out else "")
    return cells


def ops_table(layers: dict) -> Table:
    table = Table(title="cgcalc ops", box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("op", style="cyan", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    table.add_column("in", justify="right")
    table.add_column("forward", max_width=48)
    table.add_column("backward", max_width=56)
    for name, cls in layers.items():
        arity = f"{cls.arity}+" if cls.variadic else str(cls.arity)  # concat, stack: any number, at least arity
        table.add_row(name, cls.__name__, arity, cls.forward_rule, cls.backward_rule)
    return table


def trace_view(
    t: Any, precision: int = 6, formulas: dict[str, str | None] | None = None, width: int | None = None
) -> Group:
    """The book's walk through backprop: forward steps, then backward steps with their local derivatives;
    with formulas, each gradient's formula beside it. A matrix (up to GRID_ELEMENTS numbers) that a step computes
    or passes on is shown as a grid under its line; `width` wraps a grid's long rows."""
    return Group(*(line for heading, lines in trace_steps(t, precision, formulas, width) for line in heading + lines))


GRID_ELEMENTS = 100  # a matrix up to this size is shown in the trace as a grid; larger, by its preview


def trace_steps(
    t: Any, precision: int = 6, formulas: dict[str, str | None] | None = None, width: int | None = None
) -> list[tuple[list, list]]:
    """The trace as steps, for `trace --step`: (heading, lines) of each forward step and each backward step,
    then (heading, []) of the gradients of the inputs. A heading is what comes before the step (a section's
    title); a step's first line is its own, indented by two spaces."""

    def v(x) -> str:
        return fmt_value(x, precision)

    def gridded(x) -> bool:
        return x is not None and getattr(x, "ndim", 0) >= 2 and 0 < x.size <= GRID_ELEMENTS

    def value(line: Text, x, indent: int, style: str = "") -> list:
        """The line ending in x: its text on the line, or, for a matrix, '=' ending the line and the grid under it."""
        if not gridded(x):
            line.append(v(x), style=style)
            return [line]
        line.plain = line.plain.rstrip()  # (keeps the styles: only the trailing space goes)
        rows = fmt_value(x, precision, True, None if width is None else max(width - indent, 20))
        return [line] + [Text(" " * indent + row, style=style) for row in rows.split("\n")]

    steps: list[tuple[list, list]] = []
    heading: list = [literal(f"{t.graph}: forward, in execution order", style="bold")]
    name_width = max((len(s.name) for s in t.forward), default=0)
    for s in t.forward:
        args = ", ".join(f"{label}={v(x)}" if label else v(x) for label, x in s.args)
        line = Text("  ")
        line.append(s.name.ljust(name_width), style="bold")
        line.append(f" = {s.op}({args}) = ")
        steps.append((heading, value(line, s.value, 6, "bold")))
        heading = []
    heading.append(Text(""))
    heading.append(
        Text(
            f"backward, in reverse order: ∂x stands for ∂{t.output}/∂x; seeded with ∂{t.output} = {v(t.seed)}",
            style="bold",
        )
    )
    for s in t.backward:
        head = Text("  ")
        head.append(f"{s.name}", style="bold")
        head.append(f" ({s.op})   upstream ∂{s.name} = ")
        if formulas and formulas.get(s.name) and not gridded(s.upstream):
            head.append(v(s.upstream), style="magenta")
            head.append(f"   = {formulas[s.name]}", style="dim")
            lines = [head]
        else:
            lines = value(head, s.upstream, 6, "magenta")
        for p in s.passes:
            line = Text("      ")
            line.append(f"∂{p.to} ")
            line.append("+= " if p.accumulated else "= ")
            if p.local is not None:
                local = f"{p.via}({v(p.local)})" if p.via else v(p.local)
                line.append(f"{v(s.upstream)} × {local} = ")
            lines += value(line, p.grad, 10, "magenta")
            if p.accumulated:
                lines[-1].append(f"   (total ∂{p.to} = {v(p.total)})", style="dim")
        if s.passes and s.passes[0].local is None:
            lines.append(Text(f"      rule: {s.rule}", style="dim"))
        steps.append((heading, lines))
        heading = []
    heading.append(Text(""))
    heading.append(Text(f"gradients of the inputs: ∂{t.output}/∂x", style="bold"))
    for name, g in t.grads:
        formula = f" = {formulas[name]}" if formulas and formulas.get(name) else ""
        heading += value(Text(f"  ∂{name}{formula} = "), g, 6)
    steps.append((heading, []))
    return steps


def check_table(report: CheckReport, full: bool = False, width: int | None = None) -> Table | Group:
    """One row per input (its worst element), or per element with full: analytic vs numeric, the two columns of
    numbers aligned on the decimal point. Given the terminal's width, a table too wide for it puts '(worst of N)'
    under the element, and if that is not enough stacks each row (its numbers under its input and element)."""
    what = "backprop" if report.order == 1 else "the Hessian vs central differences of the gradient"
    title = (
        f"{report.graph}: {what} (eps {report.eps:g}, rtol {report.rtol:g}, atol {report.atol:g})"
        if report.order != 1
        else f"{report.graph}: backprop vs central differences (eps {report.eps:g}, rtol {report.rtol:g}, "
        f"atol {report.atol:g})"
    )
    multi = len({c.output for c in report.inputs}) > 1
    style = {"pass": "green", "FAIL": "bold red", "kink": "yellow", "undefined": "yellow"}
    rows = []  # (output, input, element, backprop, numeric, abs err, rel err, status Text)
    for c in report.inputs:
        if not c.elements:
            rows.append([c.output, c.name, "(no elements)", "", "", "", "", Text("")])
            continue
        elements = c.elements if full else (c.worst,)
        sampled = f", a sample of {c.total:,}" if len(c.elements) < c.total else ""
        for e in elements:
            where = "" if not c.shape else str(list(e.index))
            if c.shape and not full and len(c.elements) > 1:
                where += f" (worst of {len(c.elements):,}{sampled})"
            rows.append(
                [
                    c.output,
                    c.name,
                    where,
                    fmt_num(e.analytic, 10),
                    fmt_num(e.numeric, 10),
                    f"{e.abs_err:.1e}",
                    f"{e.rel_err:.1e}",
                    Text(_status_text(e.status), style=style[e.status]),
                ]
            )
    for k in (3, 4):  # backprop, numeric: aligned on the decimal point
        for row, text in zip(rows, decimal_aligned([row[k] for row in rows])):
            row[k] = text
    table = _check_table(title, rows, multi, wrap=False)
    if width is None or table_width(table) <= width:
        return table
    wrapped = _check_table(title, rows, multi, wrap=True)
    if table_width(wrapped) <= width:
        return wrapped
    lines: list = [literal(title, style="bold"), Text("─" * min(width, 60), style="dim")]
    for output, name, where, analytic, numeric, abs_err, rel_err, status in rows:
        head = literal(f"{output}   " if multi else "", style="bold")
        head.append_text(literal(name, style="bold"))
        head.append_text(literal(f"   {where}" if where else ""))
        head.append("   ")
        head.append_text(status)
        lines.append(head)
        if analytic or numeric:
            lines.append(literal(f"  backprop  {analytic.strip()}"))
            lines.append(literal(f"  numeric   {numeric.strip()}"))
            lines.append(literal(f"  abs err   {abs_err}   rel err {rel_err}", style="dim"))
    return Group(*lines)


def decimal_aligned(texts: list[str]) -> list[str]:
    """Numbers' texts padded so that their decimal points line up (as the columns of a grid)."""
    from ..numbers import _halves

    halves = [_halves(t) for t in texts]
    left = max((len(a) for a, _ in halves), default=0)
    right = max((len(b) for _, b in halves), default=0)
    return [a.rjust(left) + b.ljust(right) if t else t for t, (a, b) in zip(texts, halves)]


def _check_table(title: str, rows: list, multi: bool, wrap: bool) -> Table:
    table = Table(
        title=literal(title), box=BOX, header_style="bold", title_style="bold", pad_edge=False, show_edge=False
    )
    if multi:
        table.add_column("output", no_wrap=True)
    for name, justify in (
        ("input", "left"),
        ("element", "left"),
        ("backprop", "aligned"),
        ("numeric", "aligned"),
        ("abs err", "right"),
        ("rel err", "right"),
        ("", "left"),
    ):
        # the numbers come padded to one length (decimal_aligned): left-justified, as right-justifying drops the
        # padding on their right; their header still on the right
        header = Text(name, justify="right") if justify == "aligned" else name
        justify = "left" if justify == "aligned" else justify
        table.add_column(header, justify=justify, no_wrap=not (wrap and name == "element"))
    for output, *cells in rows:
        if wrap and " (" in cells[1]:
            at = cells[1].index(" (")
            cells[1] = cells[1][:at] + "\n" + cells[1][at + 1 :]  # the index, then (worst of N) under it
        table.add_row(*_cells(*([output] if multi else []), *cells))
    return table


def _status_text(status: str) -> str:
    return {"pass": "ok", "FAIL": "FAIL", "kink": "kink (no derivative here)", "undefined": "undefined at x ± eps"}[
        status
    ]


def hessian_table(h: Hessian, precision: int) -> Group:
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
