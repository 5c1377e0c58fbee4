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
) -> Table:
    """Inputs first, then each node in execution order: op, inputs, value, gradient; outputs marked.
    A large graph shows a bounded selection (see select_rows) and a line saying how many rows it left out."""
    plan = result.plan
    spec = plan.spec
    outs = list(result.grads)
    slots, hidden = select_rows(result, max_rows, sort)
    table = Table(
        title=literal(graph_title(spec, " — ")),
        box=BOX,
        header_style="bold",
        title_style="bold",
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("name", no_wrap=True, min_width=min(24, max(len(plan.names[s]) for s in slots)))
    table.add_column("op", style="cyan", no_wrap=True, min_width=5)
    table.add_column("inputs")
    table.add_column("value", justify="right")
    for o in outs:
        table.add_column(f"grad of {o}", justify="right", style="magenta")
    if formulas is not None:
        table.add_column(f"∂{result.output}/∂name =", style="magenta")
    table.add_column("", no_wrap=True, min_width=8)  # the output mark

    n_in = len(plan.inputs)
    marked = set(plan.outputs) | set(outs)
    differentiated = set(outs)
    previous = -1
    for slot in slots:
        if slot >= n_in > previous:
            table.add_section()
        elif sort != "grad" and slot > previous + 1 and previous >= n_in:
            blank = [""] * (len(outs) + (formulas is not None))
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
        if formulas is not None:
            cells.append(formulas.get(name) or "—")
        if name in differentiated:
            cells.append(Text("◀ output", style="bold green"))
        else:  # an output of the graph, not differentiated in this run
            cells.append(Text("◁ output", style="dim") if is_out else "")
        table.add_row(*_cells(*cells))
    if hidden:
        table.caption = f"{hidden:,} of {plan.n_named:,} rows not shown: --all shows them" + (
            "" if sort == "grad" else ", --sort grad ranks by |gradient|"
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
