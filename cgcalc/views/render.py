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


def select_rows(result: Result, max_rows: int | None = MAX_ROWS, sort: str | None = None) -> tuple[list, int]:
    """The slots to show and how many were left out: every input, then nodes in execution order — or,
    past max_rows, the first and last nodes and the outputs (or, with sort='grad', the largest |gradient|)."""
    plan = result.plan
    n_in, n = len(plan.inputs), plan.n_named
    nodes = list(range(n_in, n))
    grads = result.grads[result.output]
    if sort == "grad":
        nodes.sort(key=lambda s: -_magnitude(grads[s]))  # stable: ties stay in execution order
    inputs = list(range(n_in))
    if max_rows is None or n <= max_rows:
        return inputs + nodes, 0
    keep_in = inputs[: max_rows // 2]
    room = max(max_rows - len(keep_in), 4)
    outs = {plan.index[o] for o in list(plan.outputs) + list(result.grads)}
    if sort == "grad":
        chosen = nodes[:room]
    else:
        head, tail = nodes[: room // 2], nodes[len(nodes) - room // 2 :]
        chosen = head + [s for s in nodes if s in outs and s not in head and s not in tail] + tail
    chosen_in_outs = [s for s in outs if s >= n_in and s not in chosen]
    chosen += sorted(chosen_in_outs)
    return keep_in + chosen, n - len(keep_in) - len(chosen)


def result_table(
    result: Result,
    precision: int = 6,
    full: bool = False,
    max_rows: int | None = MAX_ROWS,
    sort: str | None = None,
    formulas: dict[str, str | None] | None = None,
    width: int | None = None,
) -> Table | Group:
    """Inputs first, then each node in execution order: op, inputs, value, gradient; outputs marked.
    A large graph shows a bounded selection (see select_rows) and a line saying how many rows it left out.
    Given the terminal's width, a table too wide for it drops the inputs column, and if that is not enough each
    row is stacked (its value and gradients under its name), so that no number is cut."""
    args = (result, precision, full, max_rows, sort, formulas)
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


def _result_stacked(result, precision, full, max_rows, sort, formulas, width: int) -> Group:
    """The run table for a narrow terminal: each row's name, op and inputs on a line, then its value and each
    gradient (and formula) on lines of their own; a grid under its label, its rows wrapped to the width."""
    plan = result.plan
    slots, hidden = select_rows(result, max_rows, sort)
    marked = set(plan.outputs) | set(result.grads)
    labels = ["value"] + [f"grad of {o}" for o in result.grads] + ([f"∂{result.output}/∂name ="] if formulas else [])
    label_width = max(len(x) for x in labels)
    name_width = min(24, max(len(plan.names[s]) for s in slots))
    lines: list = [literal(graph_title(plan.spec, " — "), style="bold")]
    n_in = len(plan.inputs)
    rule = Text("─" * min(width, 60), style="dim")
    previous = -1
    for slot in slots:
        if slot >= n_in > previous or previous < 0:
            lines.append(rule)
        elif sort != "grad" and slot > previous + 1 and previous >= n_in:
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
            fields.append((labels[-1], formulas.get(name) or "—", "magenta"))
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
    inputs: bool = True,
) -> Table:
    plan = result.plan
    outs = list(result.grads)
    slots, hidden = select_rows(result, max_rows, sort)
    table = _result_columns(result, slots, formulas is not None, inputs)
    n_in = len(plan.inputs)
    marked = set(plan.outputs) | set(outs)
    previous = -1
    for slot in slots:
        if slot >= n_in > previous:
            table.add_section()
        elif sort != "grad" and slot > previous + 1 and previous >= n_in:
            blank = [""] * (len(outs) + (formulas is not None) + inputs)
            table.add_row(Text("⋮", style="dim"), *_cells("", "", *blank, ""))
        previous = slot
        table.add_row(*_cells(*_result_row(result, slot, marked, precision, full, formulas, inputs)))
    if hidden:
        table.caption = f"{hidden:,} of {plan.n_named:,} rows not shown: --all shows them" + (
            "" if sort == "grad" else ", --sort grad ranks by |gradient|"
        )
        table.caption_justify = "left"
    return table


def _result_columns(result: Result, slots: list[int], formulas: bool, inputs: bool = True) -> Table:
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
    table.add_column("name", no_wrap=True, min_width=min(24, max(len(plan.names[s]) for s in slots)))
    table.add_column("op", style="cyan", no_wrap=True, min_width=5)
    if inputs:
        table.add_column("inputs")
    table.add_column("value", justify="right")
    for o in result.grads:
        table.add_column(f"grad of {o}", justify="right", style="magenta")
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
        table.add_row(name, cls.__name__, str(cls.arity), cls.forward_rule, cls.backward_rule)
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
