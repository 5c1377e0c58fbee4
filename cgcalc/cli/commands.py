"""The commands on one graph: run, check, trace, export, validate, ops."""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from typing import Annotated

import typer

from ..errors import ExitCode, UsageError
from ..errors import clean as _clean
from .common import (
    Format,
    GraphArg,
    Only,
    OutputOpt,
    SetOpt,
    SortBy,
    _console,
    _err,
    _errors,
    _load,
    _outputs,
    _overrides,
    _print,
    _report,
    _warn,
    app,
)


@app.command()
def run(
    graph: GraphArg,
    set_: SetOpt = None,
    output: OutputOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")] = Format.table,
    precision: Annotated[
        int,
        typer.Option(
            "--precision", "-p", min=1, max=17, help="Significant digits in the table (JSON and CSV are always exact)."
        ),
    ] = 6,
    full: Annotated[bool, typer.Option("--full", help="Show arrays in full in the table.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if a NaN or inf appears.")] = False,
    all_rows: Annotated[bool, typer.Option("--all", help="Every row in the table, however large the graph.")] = False,
    sort: Annotated[
        SortBy,
        typer.Option(
            "--sort",
            help="Table order: execution order, or by |gradient| or |elasticity| (inputs and nodes, the most "
            "sensitive first).",
        ),
    ] = SortBy.order,
    only: Annotated[Only, typer.Option("--only", help="The rows to show: inputs, nodes, or all.")] = Only.all,
    elasticity: Annotated[
        bool,
        typer.Option("--elasticity", help="Add each row's elasticity, ∂O/∂x · x/O (undefined, —, where O = 0)."),
    ] = False,
    formulas: Annotated[
        bool, typer.Option("--formulas", help="Each gradient's formula, from the simplified derivative graph.")
    ] = False,
) -> None:
    """Forward values and gradients of every input and node."""
    with _errors():
        g = _load(graph)
        r = g.run(_overrides(set_), output=_outputs(g, output))
        texts = _formulas(g, r.output, graph) if formulas else None
        elasticities = None
        if elasticity or sort is SortBy.elasticity:
            from ..whatif import elasticities as _elasticities

            elasticities = _elasticities(r)
        if fmt is Format.json:
            from ..views.export import to_json

            sys.stdout.write(to_json(r, texts, only.value, elasticities))
        elif fmt is Format.csv:
            from ..views.export import to_csv

            sys.stdout.write(to_csv(r, texts, only.value, elasticities))
        else:
            from ..views.render import MAX_ROWS, result_table

            max_rows = None if all_rows else MAX_ROWS
            order = None if sort is SortBy.order else sort.value
            _print(result_table(r, precision, full, max_rows, order, texts, only.value, elasticities, _width()))
        _report(r)
        if strict and r.warnings:
            raise typer.Exit(ExitCode.CHECK_FAILED)


def _width() -> int | None:
    """The terminal's width, when stdout is one (a table then fits it); None when piped (the natural width)."""
    console = _console()
    return console.width if console.is_terminal else None


def _formulas(g, output: str, graph: str) -> dict[str, str | None]:
    """Each input's and node's gradient formula; past the length limit, the derive command that shows it."""
    from ..views.formulas import TOO_LONG, formulas

    texts = formulas(g.plan, output)
    inputs = set(g.inputs)
    for name, text in texts.items():
        if text == TOO_LONG:
            wrt = f" --wrt {name}" if name in inputs else ""
            texts[name] = f"too long to show: cgcalc derive {graph}{wrt} --output {output}"
    return texts


@app.command()
def check(
    graph: GraphArg,
    set_: SetOpt = None,
    output: OutputOpt = None,
    eps: Annotated[float, typer.Option("--eps", help="Step of the central difference.")] = 1e-6,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance.")] = 1e-5,
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance.")] = 1e-6,
    full: Annotated[bool, typer.Option("--full", help="List every element, not just the worst of each input.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    max_elements: Annotated[
        int,
        typer.Option(
            "--max-elements",
            min=1,
            help="Check at most this many elements of each input (a fixed random sample beyond it).",
        ),
    ] = 1000,
    order: Annotated[
        int,
        typer.Option("--order", min=1, max=2, help="2: the Hessian against central differences of the gradient."),
    ] = 1,
) -> None:
    """Backprop vs central differences (f(x+eps) - f(x-eps)) / 2eps for every input: exit 1 on a mismatch."""
    from ..views.check import check as gradcheck

    with _errors():
        if not (
            math.isfinite(eps) and eps > 0 and math.isfinite(rtol) and rtol >= 0 and math.isfinite(atol) and atol >= 0
        ):
            raise UsageError("--eps must be a positive number, --rtol and --atol numbers not below 0")
        g = _load(graph)
        if order == 2:
            from ..views.check import check_hessian

            if output == "all":
                raise UsageError("check --order 2 takes one output at a time")
            report = check_hessian(g, _overrides(set_), output, eps, rtol, atol, max_elements)
        else:
            report = gradcheck(g.plan, _overrides(set_), _outputs(g, output), eps, rtol, atol, max_elements)
        if fmt is Format.table:
            from ..views.render_trace import check_table

            _print(check_table(report, full, _width()))
        elif fmt is Format.json:
            from ..numbers import dumps

            sys.stdout.write(dumps(report.to_dict()) + "\n")
        else:
            raise UsageError("check writes a table or json")
        for w in report.warnings:
            _warn(w)
        fails = sum(e.status == "FAIL" for c in report.inputs for e in c.elements)
        if fails:
            _err(f"{fails} gradient element{'s disagree' if fails > 1 else ' disagrees'} with central differences")
            raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command()
def trace(
    graph: GraphArg,
    set_: SetOpt = None,
    output: OutputOpt = None,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17)] = 6,
    step: Annotated[
        bool,
        typer.Option("--step", help="One numbered step at a time, in a terminal: Enter steps, b goes back, q quits."),
    ] = False,
    formulas: Annotated[
        bool, typer.Option("--formulas", help="Each gradient's formula, from the simplified derivative graph.")
    ] = False,
) -> None:
    """Forward step by step, then backward: each node's upstream gradient, local derivatives, and what it passes on."""
    from ..views.render_trace import trace_steps, trace_view
    from ..views.trace import trace as make_trace
    from . import stepper

    with _errors():
        g = _load(graph)
        if output == "all" and "all" not in g.plan.index:
            raise UsageError(f"trace follows one output at a time: choose one of {', '.join(g.outputs)}")
        t = make_trace(g.plan, _overrides(set_), output)
        texts = _formulas(g, t.output, graph) if formulas else None
        if step and stepper.interactive():
            stepper.step_through(_console(), trace_steps(t, precision, texts, _width()))
        elif _console().is_terminal:
            _print(trace_view(t, precision, texts, _width()))
        else:  # piped: the lines' text as it is (no colour, no width to fit), without Rich's measuring and
            # wrapping of every line (2 s for a 2,000-node graph's 7,000 lines)
            steps = trace_steps(t, precision, texts, None)
            sys.stdout.write("".join(line.plain + "\n" for heading, lines in steps for line in heading + lines))
        for w in t.warnings:
            _warn(w)


class FigureFormat(StrEnum):
    dot = "dot"
    mermaid = "mermaid"
    html = "html"


@app.command()
def export(
    graph: GraphArg,
    fmt: Annotated[
        FigureFormat | None,
        typer.Option("--format", "-f", help="dot, mermaid or html (a step-through page; default: from -o, else dot)."),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write here: .dot/.gv or .mmd text, .html (the step-through page); .svg, .png or .pdf is drawn by "
            "Graphviz's dot.",
        ),
    ] = None,
    set_: SetOpt = None,
    output: OutputOpt = None,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17)] = 6,
    force: Annotated[
        bool, typer.Option("--force", help="Draw a picture of a graph however large (Graphviz may take minutes).")
    ] = False,
) -> None:
    """The graph with values and gradients on its edges, like the book's figures."""
    from ..io import graphviz
    from ..views.export import to_dot, to_mermaid

    with _errors():
        text_format, picture = graphviz.choose(out, fmt.value if fmt else None)
        g = _load(graph)
        if picture and not force:
            graphviz.check_size(g.plan, out)
        r = g.run(_overrides(set_), output=_outputs(g, output))
        if text_format == "html":
            text = _html_page(g, r, graph, precision, force, out)
        else:
            text = to_dot(r, precision) if text_format == "dot" else to_mermaid(r, precision)
        if out:
            from ..io.atomic import write

            write(out, graphviz.draw(text, picture, out) if picture else text, inputs=[("graph file", graph)])
        else:
            sys.stdout.write(text)
        _report(r)


def _html_page(g, r, graph: str, precision: int, force: bool, out: str | None) -> str:
    """The step-through page: Graphviz's layout when it is installed and the graph small enough for it (or
    --force), else the built-in one."""
    from ..io import graphviz
    from ..views.export import to_dot
    from ..views.html import page

    svg = None
    if graphviz.installed() and (force or graphviz.small_enough(g.plan)):
        svg = graphviz.draw(to_dot(r, precision, ids=True), "svg", out or "<stdout>").decode()
    return page(r, precision, svg, _formulas(g, r.output, graph))


@app.command()
def validate(
    graphs: Annotated[list[str], typer.Argument(help="Graph files to check.", metavar="GRAPH...")],
) -> None:
    """Check graph files without running them: exit 0 when all are valid, 2 otherwise."""
    bad = 0
    worst = ExitCode.USAGE
    if graphs.count("-") > 1:
        with _errors():
            raise UsageError("stdin (-) can be read only once: give the other graphs as files")
    for path in graphs:
        try:
            with _errors():
                g = _load(path)
        except typer.Exit as e:
            bad += 1
            worst = max(worst, e.exit_code)  # an internal error stays visible
            continue
        n_in, n_nodes = len(g.plan.inputs), len(g.plan.steps)
        typer.echo(_clean(f"ok: {path} ({n_in} input{'s' * (n_in != 1)}, {n_nodes} node{'s' * (n_nodes != 1)})"))
    if bad:
        raise typer.Exit(worst)


@app.command()
def ops(
    op: Annotated[str | None, typer.Argument(help="One op: its rules, attributes and their form.")] = None,
) -> None:
    """Every op with its layer class, forward rule and backward rule; or one op's page (cgcalc ops getitem)."""
    from ..core.registry import LAYERS

    if op is None:
        from ..views.render import ops_table

        _print(ops_table(LAYERS))
        return
    from ..errors import suggest
    from ..views.op_doc import op_text

    with _errors():
        if op not in LAYERS:
            raise UsageError(f"unknown op '{op}'{suggest(op, LAYERS)} (see: cgcalc ops)")
    typer.echo("\n".join(map(_clean, op_text(op, LAYERS[op], _width() or 100).splitlines())))
