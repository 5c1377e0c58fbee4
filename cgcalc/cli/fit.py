"""`cgcalc fit`: minimize a graph's scalar output over some of its inputs, with the book's optimizers or Newton's
method; a progress bar while it runs (a terminal only), then the loss curve and the parameters before and after,
and the trained graph with -o."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer

from ..errors import ExitCode, UsageError
from .common import GraphArg, SetOpt, _console, _err, _errors, _load, _overrides, _print, app


class Optimizer(StrEnum):
    sgd = "sgd"
    momentum = "momentum"
    nesterov = "nesterov"
    adagrad = "adagrad"
    rmsprop = "rmsprop"
    adam = "adam"
    newton = "newton"


class Gradient(StrEnum):
    backprop = "backprop"
    numerical = "numerical"


class FitFormat(StrEnum):
    table = "table"
    json = "json"


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise UsageError(f"--params takes NAME,NAME,..., got {text!r}")
    return names


ParamsOpt = Annotated[str, typer.Option("--params", metavar="NAME,...", help="The inputs to change (the parameters).")]
RowsOpt = Annotated[
    str | None,
    typer.Option(
        "--rows", "-r", metavar="DATA", help="Samples, one a row: CSV, JSON Lines or Parquet (as batch reads)."
    ),
]
OptimizerOpt = Annotated[Optimizer, typer.Option("--optimizer", help="The update rule.")]
LrOpt = Annotated[
    float | None,
    typer.Option("--lr", help="Learning rate (default: the book's: 0.01; adam 0.001; newton 1, a full step)."),
]
MomentumOpt = Annotated[float, typer.Option("--momentum", help="momentum and nesterov.")]
Beta1Opt = Annotated[float, typer.Option("--beta1", help="adam.")]
Beta2Opt = Annotated[float, typer.Option("--beta2", help="adam.")]
DecayRateOpt = Annotated[float, typer.Option("--decay-rate", help="rmsprop.")]
StepsOpt = Annotated[
    int | None, typer.Option("--steps", "-n", min=1, help="Updates to make (default 100 without --rows).")
]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", "-e", min=1, help="Passes over the rows (default 10).")]
BatchSizeOpt = Annotated[
    int | None, typer.Option("--batch-size", "-b", min=1, help="Rows per step (default 100, or all).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the shuffle of the rows.")]
GradientOpt = Annotated[
    Gradient,
    typer.Option("--gradient", help="backprop, or numerical: central differences (h = 1e-4) as the book's ch. 4."),
]
TrainedOpt = Annotated[
    str | None,
    typer.Option("--out", "-o", help="Write the trained graph here (.json: JSON; -: stdout), atomically."),
]
LogOpt = Annotated[
    str | None, typer.Option("--log", metavar="LOG.csv", help="Write step (or epoch), loss and every output.")
]
FitFormatOpt = Annotated[FitFormat, typer.Option("--format", "-f", help="table or json.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
MinimizedOpt = Annotated[
    str | None, typer.Option("--output", "-O", help="The output to minimize (default: the first listed).")
]
PrecisionOpt = Annotated[int, typer.Option("--precision", "-p", min=1, max=17)]


@app.command()
def fit(
    graph: GraphArg,
    params: ParamsOpt,
    rows: RowsOpt = None,
    optimizer: OptimizerOpt = Optimizer.sgd,
    lr: LrOpt = None,
    momentum: MomentumOpt = 0.9,
    beta1: Beta1Opt = 0.9,
    beta2: Beta2Opt = 0.999,
    decay_rate: DecayRateOpt = 0.99,
    steps: StepsOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    seed: SeedOpt = 0,
    gradient: GradientOpt = Gradient.backprop,
    out: TrainedOpt = None,
    log: LogOpt = None,
    fmt: FitFormatOpt = FitFormat.table,
    quiet: QuietOpt = False,
    output: MinimizedOpt = None,
    set_: SetOpt = None,
    precision: PrecisionOpt = 6,
) -> None:
    """Minimize a scalar output over the --params inputs, at the graph's own inputs or over --rows (one sample a
    row, in shuffled minibatches), with the book's optimizers (common/optimizer.py) or Newton's method."""
    with _errors():
        if steps is not None and epochs is not None:
            raise UsageError("give --steps or --epochs, not both")
        g = _load(graph)
        inputs = _checked_targets(graph, rows, out, log, fmt)
        options = {
            "optimizer": optimizer.value,
            "lr": lr,
            "steps": steps,
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "output": output,
            "overrides": _overrides(set_),
            "momentum": momentum,
            "beta1": beta1,
            "beta2": beta2,
            "decay_rate": decay_rate,
            "log_outputs": log is not None,
            "gradient": gradient.value,
        }
        r = _train(g, _names(params), rows, options, quiet, (graph, out, log, inputs))
        _save(r, graph, out, log, inputs)
        if out != "-":
            _report(r, fmt, precision)


def _checked_targets(graph: str, rows: str | None, out: str | None, log: str | None, fmt: FitFormat) -> list:
    """The files read (to refuse writing over them), once -o and --log are known to be writable where asked."""
    from ..io.atomic import refuse_inputs, target

    inputs = [("graph file", graph)] + ([("rows file", rows)] if rows else [])
    for path in (out, log):
        if path is not None and path != "-":
            refuse_inputs(target(path), inputs)  # now, not after the training
    if out and log and out != "-" and os.path.abspath(out) == os.path.abspath(log):
        raise UsageError("-o and --log name the same file: give each its own")
    if out == "-" and fmt is FitFormat.json:
        raise UsageError("-o - writes the trained graph to stdout: the JSON report cannot go there too")
    return inputs


def _train(g, params: list[str], rows: str | None, options: dict, quiet: bool, files: tuple):
    """g.fit with a progress bar; a divergence said (exit 1) with the log written; on Ctrl-C, what was done
    saved (the parameters after the last whole step), then the interrupt goes on."""
    from ..fit import Diverged

    graph, out, log, inputs = files
    try:
        with _progress(quiet) as callback:
            return g.fit(params, rows, callback=callback, **options)
    except Diverged as e:
        if log:
            _write_log(log, e.result, inputs)
        _err(str(e) + (f"; nothing written to {out}" if out else ""))
        raise typer.Exit(ExitCode.CHECK_FAILED) from None
    except KeyboardInterrupt as e:
        partial = getattr(e, "fit_result", None)
        if partial is not None and partial.steps:
            _save(partial, graph, out, log, inputs)
            if out:
                sys.stderr.write(f"saved the parameters after step {partial.steps:,} to {out}\n")
        raise


def _report(r, fmt: FitFormat, precision: int) -> None:
    """The JSON report, or the loss curve and the table of the parameters before and after."""
    if fmt is FitFormat.json:
        from ..numbers import dumps

        sys.stdout.write(dumps(r.to_dict()) + "\n")
    else:
        from ..views.render_analysis import fit_view

        _print(fit_view(r, precision))


def _save(r, graph: str, out: str | None, log: str | None, inputs) -> None:
    """The trained graph (-o) and the log, each complete or absent."""
    from ..io.atomic import write

    if log:
        _write_log(log, r, inputs)
    if out:
        fmt = "json" if out.lower().endswith(".json") else "yaml"
        how = f"{r.optimizer}, {r.steps:,} steps" + (", interrupted" if r.interrupted else "")
        last = f", {r.output} {r.losses[-1]!r} at the last step" if r.losses else ""
        source = "<stdin>" if graph == "-" else graph
        write(out, r.to_text(fmt, f"cgcalc fit of {source} ({how}{last})"), inputs=inputs)


def _write_log(path: str, r, inputs) -> None:
    from ..io.atomic import write
    from ..views.export import csv_text

    rows = [[_cell(v) for v in row] for row in r.log]
    write(path, csv_text(r.log_names, rows), inputs=inputs)


def _cell(v):
    return str(v) if isinstance(v, int) else v  # the step number as written; numbers and arrays as csv_text does


@contextmanager
def _progress(quiet: bool):
    """A Rich progress bar with the loss on stderr, only on a terminal; yields the fit's callback (or None)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("fit"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("steps", total=None, loss="")
        last = [0.0]

        def callback(step: int, total: int, loss: float) -> None:
            now = time.monotonic()
            if now - last[0] > 0.05 or step == total:  # Rich redraws 10 times a second: more updates are waste
                last[0] = now
                bar.update(task, completed=step, total=total, loss=f"{loss:.6g}")

        yield callback
