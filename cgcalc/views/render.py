"""Rich renderables for the terminal. Builds, never prints and never exits."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..core.runtime import Result
from ..errors import clean
from ..numbers import fmt_value

if TYPE_CHECKING:
    from ..core.spec import GraphSpec

# like box.SIMPLE_HEAD, plus a rule between sections (inputs | nodes)
BOX = box.Box("    \n    \n ── \n    \n ── \n ── \n    \n    \n")
MAX_ROWS = 40  # a larger graph's table shows a selection (--all shows every row)


def literal(text: str, style: str = "") -> Text:
    """Text shown as it is: never read as Rich markup (a value `[inf, 1]` is not a style), with the control
    characters of a file's text escaped (errors.clean): a graph's name may hold any escape sequence."""
    return Text(clean(text), style=style)


def text_cells(*cells) -> list:
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
    labels = ["value"] + [f"grad of {o}" for o in result.grads]
    labels += [f"elasticity of {result.output}"] if elasticity is not None else []
    # each row's formula under its own label, ∂price/∂apple = (the table's column says ∂name): aligned with the
    # others unless longer than half the width (then on a line of its own, the formula under it)
    d_labels = {s: f"∂{result.output}/∂{plan.names[s]} =" for s in slots} if formulas is not None else {}
    label_width = max(len(x) for x in labels + [x for x in d_labels.values() if len(x) <= width // 2])
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
            fields.append((d_labels[slot], formulas.get(name) or "—", "magenta"))
        if elasticity is not None:
            fields.append((labels[-1], fmt_value(elasticity[slot], precision, full), "yellow"))
        for label, text, style in fields:
            if "\n" in text or len(label) > label_width or 2 + label_width + 2 + len(text) > width:
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
            table.add_row(Text("⋮", style="dim"), *text_cells("", "", *blank, ""))
        previous = slot
        table.add_row(*text_cells(*_result_row(result, slot, marked, precision, full, formulas, inputs, elasticity)))
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
