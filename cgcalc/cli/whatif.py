"""The what-if commands: sweep (a data table and its chart), tornado (which input matters most) and solve
(goal seek). The numbers come from cgcalc/whatif.py, the text and charts from views."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ExitCode
from .common import Format, GraphArg, OutputOpt, SetOpt, _err, _errors, _load, _overrides, _print, _warn, app

PrecisionOpt = Annotated[
    int,
    typer.Option("--precision", "-p", min=1, max=17, help="Significant digits in the table (JSON and CSV are exact)."),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")]


@app.command()
def sweep(
    graph: GraphArg,
    ranges: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME=START:STOP:N...",
            help="One or two scalar inputs, each at N evenly spaced values from START to STOP (two make a grid).",
            show_default=False,
        ),
    ],
    set_: SetOpt = None,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.table,
    plot: Annotated[
        str | None,
        typer.Option(
            "--plot", metavar="FILE", help="Also draw it to FILE.png, .svg or .pdf (needs matplotlib, the plot extra)."
        ),
    ] = None,
    precision: PrecisionOpt = 6,
    all_rows: Annotated[bool, typer.Option("--all", help="Every point in the table, however many.")] = False,
) -> None:
    """The output and its derivative at evenly spaced values of one or two inputs, as one vectorized run; in
    the table format, a chart of them (with the tangent at the file's value), or a heat map for two inputs."""
    from .. import whatif

    with _errors():
        if plot is not None:
            from ..views.plot import picture_format, require

            picture = picture_format(plot)
            require()  # before anything is computed: a missing extra is said at once
        axes = [whatif.parse_axis(text) for text in ranges]
        g = _load(graph)
        sw = whatif.sweep(g.plan, axes, _overrides(set_), output)
        if fmt is Format.json:
            from ..views.whatif import sweep_json

            sys.stdout.write(sweep_json(sw))
        elif fmt is Format.csv:
            from ..views.whatif import sweep_csv

            sys.stdout.write(sweep_csv(sw))
        else:
            from ..views.render_analysis import SWEEP_ROWS, sweep_view

            _print(sweep_view(sw, precision, None if all_rows else SWEEP_ROWS))
        if plot is not None:
            from ..io.atomic import write
            from ..views.plot import picture as draw

            write(plot, draw(sw, picture), inputs=[("graph file", graph)])
        for w in sw.warnings:
            _warn(w)


@app.command()
def tornado(
    graph: GraphArg,
    by: Annotated[
        str, typer.Option("--by", metavar="PERCENT", help="Move each input down and up by this much (10% or 10).")
    ] = "10%",
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range", "-r", metavar="NAME=LO:HI", help="Move this input to these bounds instead. Repeatable."
        ),
    ] = None,
    set_: SetOpt = None,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.table,
    precision: PrecisionOpt = 6,
) -> None:
    """Each scalar input moved down and up with the others fixed: the output there (computed exactly, in one
    vectorized run, with the gradient's linear estimate beside it), sorted by swing, as horizontal bars."""
    from .. import whatif

    with _errors():
        fraction = whatif.parse_percent(by)
        bounds = {}
        for text in range_ or []:
            name, lo_hi = whatif.parse_range(text)
            if name in bounds:
                from ..errors import UsageError

                raise UsageError(f"--range {name} is given twice")
            bounds[name] = lo_hi
        g = _load(graph)
        t = whatif.tornado(g.plan, _overrides(set_), fraction, bounds, output)
        if fmt is Format.json:
            from ..views.whatif import tornado_json

            sys.stdout.write(tornado_json(t))
        elif fmt is Format.csv:
            from ..views.whatif import tornado_csv

            sys.stdout.write(tornado_csv(t))
        else:
            from ..views.render_analysis import tornado_view

            _print(tornado_view(t, precision))
        for w in t.warnings:
            _warn(w)


@app.command()
def solve(
    graph: GraphArg,
    target: Annotated[
        str,
        typer.Option(
            "--target", "-t", metavar="OUTPUT=VALUE", help="The value the output should take (OUTPUT= may be left out)."
        ),
    ],
    vary: Annotated[str, typer.Option("--vary", "-x", metavar="NAME", help="The scalar input to change.")],
    within: Annotated[
        str | None, typer.Option("--within", metavar="LO:HI", help="Look for the input's value only here.")
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(
            "--tol", help="Accept |output − target| ≤ this (default 1e-9 × max(1, |target|)).", show_default=False
        ),
    ] = None,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1, help="Give up after this many steps.")] = 100,
    set_: SetOpt = None,
    fmt: FormatOpt = Format.table,
    precision: PrecisionOpt = 6,
) -> None:
    """Goal seek: the value of one input that makes the output equal the target, by Newton steps with the exact
    gradient (bisection where the gradient is zero or a step leaves the bounds). Exit 1 if there is none."""
    from .. import whatif

    with _errors():
        g = _load(graph)
        out, value = whatif.parse_target(target, g.outputs[0])
        bounds = whatif.parse_bounds(within, "--within") if within is not None else None
        try:
            s = whatif.solve(g.plan, vary, value, _overrides(set_), out, bounds, tol, max_iter)
        except whatif.NoSolution as e:
            _err(str(e))
            raise typer.Exit(ExitCode.CHECK_FAILED) from None
        if fmt is Format.json:
            from ..views.whatif import solve_json

            sys.stdout.write(solve_json(s))
        elif fmt is Format.csv:
            from ..views.whatif import solve_csv

            sys.stdout.write(solve_csv(s))
        else:
            from ..views.render_analysis import solve_view

            _print(solve_view(s, precision))
