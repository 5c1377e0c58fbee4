"""Rich renderables of the teaching views: the trace (and its steps), the check table, the Hessian and
Hessian-vector product tables. Builds, never prints and never exits."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..numbers import fmt_num, fmt_value
from .render import BOX, literal, table_width, text_cells

if TYPE_CHECKING:
    from .check import CheckReport
    from .hessian import Hessian


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
    forward = _forward_lines(t, precision, width)
    backward = [_backward_lines(s, precision, formulas, width) for s in t.backward]
    inputs = _gradient_lines(t, precision, formulas, width)
    seeded = f"∂x stands for ∂{t.output}/∂x; seeded with ∂{t.output} = {fmt_value(t.seed, precision)}"
    sections = [  # (a section's heading, its steps' lines)
        ([literal(f"{t.graph}: forward, in execution order", style="bold")], forward),
        ([Text(""), Text(f"backward, in reverse order: {seeded}", style="bold")], backward),
        ([Text(""), Text(f"gradients of the inputs: ∂{t.output}/∂x", style="bold"), *inputs], []),
    ]
    steps: list[tuple[list, list]] = []
    heading: list = []  # a section's heading goes before its first step (a section without steps, before the next)
    for head, blocks in sections:
        heading += head
        for lines in blocks:
            steps.append((heading, lines))
            heading = []
    steps.append((heading, []))
    return steps


def _gridded(x) -> bool:
    """Whether the trace shows x as a grid under its line: a matrix of up to GRID_ELEMENTS numbers."""
    return x is not None and getattr(x, "ndim", 0) >= 2 and 0 < x.size <= GRID_ELEMENTS


def _ending(line: Text, x, indent: int, precision: int, width: int | None, style: str = "") -> list[Text]:
    """The line ending in x: its text on the line, or, for a matrix, '=' ending the line and the grid under it."""
    if not _gridded(x):
        line.append(fmt_value(x, precision), style=style)
        return [line]
    line.plain = line.plain.rstrip()  # (keeps the styles: only the trailing space goes)
    rows = fmt_value(x, precision, True, None if width is None else max(width - indent, 20))
    return [line] + [Text(" " * indent + row, style=style) for row in rows.split("\n")]


def _forward_lines(t: Any, precision: int, width: int | None) -> list[list[Text]]:
    """Each forward step's lines: `name = op(args) = value`, the names padded to one width."""
    v = partial(fmt_value, precision=precision)
    name_width = max((len(s.name) for s in t.forward), default=0)
    blocks = []
    for s in t.forward:
        args = ", ".join(f"{label}={v(x)}" if label else v(x) for label, x in s.args)
        line = Text("  ")
        line.append(s.name.ljust(name_width), style="bold")
        line.append(f" = {s.op}({args}{', ' + s.attrs if s.attrs else ''}) = ")
        blocks.append(_ending(line, s.value, 6, precision, width, "bold"))
    return blocks


def _backward_lines(s: Any, precision: int, formulas: dict[str, str | None] | None, width: int | None) -> list[Text]:
    """One backward step's lines: the node's upstream gradient (and its formula), then what it passes to each
    input, upstream × local derivative (or, for an op without local derivatives, its rule)."""
    v = partial(fmt_value, precision=precision)
    head = Text("  ")
    head.append(f"{s.name}", style="bold")
    head.append(f" ({s.op})   upstream ∂{s.name} = ")
    if formulas and formulas.get(s.name) and not _gridded(s.upstream):
        head.append(v(s.upstream), style="magenta")
        head.append(f"   = {formulas[s.name]}", style="dim")
        lines = [head]
    else:
        lines = _ending(head, s.upstream, 6, precision, width, "magenta")
    for p in s.passes:
        line = Text("      ")
        line.append(f"∂{p.to} ")
        line.append("+= " if p.accumulated else "= ")
        if p.local is not None:
            local = f"{p.via}({v(p.local)})" if p.via else v(p.local)
            line.append(f"{v(s.upstream)} × {local} = ")
        lines += _ending(line, p.grad, 10, precision, width, "magenta")
        if p.accumulated:
            lines[-1].append(f"   (total ∂{p.to} = {v(p.total)})", style="dim")
    if s.passes and s.passes[0].local is None:
        lines.append(Text(f"      rule: {s.rule}", style="dim"))
    return lines


def _gradient_lines(t: Any, precision: int, formulas: dict[str, str | None] | None, width: int | None) -> list[Text]:
    """The gradient of each input (with its formula)."""
    lines = []
    for name, g in t.grads:
        formula = f" = {formulas[name]}" if formulas and formulas.get(name) else ""
        lines += _ending(Text(f"  ∂{name}{formula} = "), g, 6, precision, width)
    return lines


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
        table.add_row(*text_cells(*([output] if multi else []), *cells))
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
