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

