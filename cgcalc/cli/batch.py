"""`cgcalc batch`: the command line of batch.py, parallel.py, arrow_io.py and dask_engine.py (registered on
cli.app when cli.py imports this module)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer

from ..errors import UsageError, clean
from .common import GraphArg, OutputOpt, _compile, _console, _errors, _outputs, _read_graph, _warn, app


class RowsFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"  # needs pyarrow


class Engine(StrEnum):
    local = "local"
    dask = "dask"


@app.command()
def batch(
    graph: GraphArg,
    rows: Annotated[
        str,
        typer.Argument(help="Rows: CSV (header = input names), JSON Lines or Parquet; - for stdin.", metavar="ROWS"),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write here (CSV; JSON Lines for .jsonl; Parquet for .parquet), atomically; default: stdout.",
        ),
    ] = None,
    output: OutputOpt = None,
    rows_format: Annotated[
        RowsFormat | None, typer.Option("--rows-format", help="csv, jsonl or parquet (default: from ROWS' extension).")
    ] = None,
    out_format: Annotated[
        RowsFormat | None,
        typer.Option("--out-format", help="csv, jsonl or parquet (default: from OUT's extension, else csv)."),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option("--chunk-rows", min=1, help="Rows evaluated together (default 16,384; with Parquet 131,072)."),
    ] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option("--skip-bad-rows", help="Report bad rows on stderr and go on.")
    ] = False,
    fast_math: Annotated[
        bool,
        typer.Option(
            "--fast-math",
            help="numpy's exp/log/tanh/pow/sin/cos for graphs of scalars (faster; may differ from `run` in the last bit).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say how rows were grouped.")] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local, or dask: a dataset of Parquet/CSV files on a "
            "dask.distributed cluster (pip install 'cgcalc\\[dask]').",
        ),
    ] = Engine.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="dask: the scheduler to connect to (default: a LocalCluster on this machine)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="dask: workers of the LocalCluster (default: one per core).")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes for CSV rows, or JSON Lines "
            "to JSON Lines (default: one per core for files over 8 MB; 1: none).",
        ),
    ] = None,
) -> None:
    """Evaluate many rows: per row, its input columns, every output, and dO/dX for every input X."""
    from ..batch.job import DEFAULT_CHUNK_ROWS
    from ..batch.runner import run_rows
    from ..io.arrow import why_not
    from ..io.atomic import output as output_file

    with _errors():
        if graph == "-" and rows == "-":
            raise UsageError("the graph and the rows cannot both come from stdin (-): give one of them as a file")
        graph_text, graph_label = _read_graph(graph)  # once: it may be a pipe, and the workers get this text
        g = _compile(graph_text, graph_label)
        plan = g.plan
        if engine is Engine.dask:
            _batch_dask(
                graph_text,
                graph_label,
                g,
                rows,
                out,
                output,
                rows_format,
                out_format,
                skip_bad_rows,
                fast_math,
                quiet,
                scheduler,
                workers,
            )
            return
        if out == "-":
            out = None
        fmt_in = rows_format.value if rows_format else _format_of(rows, "csv")
        fmt_out = out_format.value if out_format else _format_of(out or "", "csv")
        no_arrow = why_not()
        arrow = no_arrow is None
        if "parquet" in (fmt_in, fmt_out) and not arrow:
            raise UsageError(f"Parquet needs pyarrow ({no_arrow})")
        if fmt_out == "parquet" and not out and sys.stdout.isatty():
            raise UsageError("Parquet is binary: write it to a file with -o OUT.parquet (or pipe it)")
        label = "<stdin>" if rows == "-" else rows
        reader, total, done = _rows_reader(rows, label, fmt_in, plan)

        def on_bad(e) -> None:
            _warn(f"{e} (row skipped)")

        if fmt_in == "csv" or (fmt_in == "jsonl" and fmt_out == "jsonl"):
            from ..batch.pool import auto_jobs

            jobs = jobs or auto_jobs(total)
        with (
            _progress(quiet, total) as advance,
            output_file(
                out,
                prefix=".cgcalc-batch-",
                name_only=fmt_out == "parquet",
                inputs=[("graph file", graph), ("rows file", rows)],
            ) as f,
        ):
            try:
                sink = f
                if fmt_out == "parquet":  # Arrow writes the file itself (a Python file object: 1.3x the time)
                    from ..io.arrow import ParquetSink

                    sink = ParquetSink(f)
                if chunk_rows is None:
                    from ..io.arrow import PARQUET_CHUNK_ROWS

                    chunk_rows = PARQUET_CHUNK_ROWS if "parquet" in (fmt_in, fmt_out) else DEFAULT_CHUNK_ROWS
                summary = run_rows(
                    plan,
                    reader,
                    sink,
                    fmt_out,
                    _outputs(g, output),
                    chunk_rows,
                    on_bad if skip_bad_rows else None,
                    lambda n: advance(done(n)),
                    exact=not fast_math,
                    jobs=jobs or 1,
                    graph_text=graph_text,
                    graph_file=graph_label,
                    arrow=arrow,
                )
            except UnicodeDecodeError:
                raise UsageError(f"{label}: not UTF-8 text") from None
        _summarize(summary, label, out, quiet, verbose)


def _summarize(summary, label: str, out: str | None, quiet: bool, verbose: bool) -> None:
    """What a local batch run says at the end, on stderr."""
    _counts(summary, label)
    if verbose:
        for note in summary.notes:
            sys.stderr.write(f"note: {note}\n")
    if not quiet and sys.stderr.isatty():
        sys.stderr.write(clean(f"{summary.written:,} rows -> {out or 'stdout'}") + "\n")


def _counts(summary, file: str | None) -> None:
    """The bad and the non-finite rows a batch run counted, on stderr (local and dask alike)."""
    if summary.bad:
        _warn(
            f"{summary.bad:,} bad row{'s' if summary.bad > 1 else ''} skipped of {summary.rows:,} "
            f"(each reported above); {summary.written:,} written"
        )
    if summary.nonfinite:
        _warn(
            f"{summary.nonfinite:,} row{'s' if summary.nonfinite > 1 else ''} with NaN or inf in their "
            f"results, first at {file}:{summary.first_nonfinite_line} "
            f"(run that row alone with `cgcalc run --set` to see which node produced it)"
        )


def _batch_dask(
    text: bytes,
    graph: str,
    g,
    rows: str,
    out: str | None,
    output,
    rows_format,
    out_format,
    skip_bad_rows: bool,
    fast_math: bool,
    quiet: bool,
    scheduler: str | None,
    workers: int | None,
) -> None:
    """cgcalc batch --engine dask: the same rows -> results, as a partitioned dataset written by a cluster."""
    from ..batch.dask_client import require_dask, run_dask

    require_dask()
    if not out:
        raise UsageError("--engine dask writes a dataset: give its directory with -o OUT")
    with _partition_progress(quiet) as progress:
        summary = run_dask(
            text,
            graph,
            rows,
            out,
            output=_outputs(g, output),
            scheduler=scheduler,
            rows_format=rows_format.value if rows_format else None,
            out_format=out_format.value if out_format else None,
            skip_bad_rows=skip_bad_rows,
            exact=not fast_math,
            workers=workers,
            progress=progress,
        )
    for e in summary.errors:
        _warn(f"{e} (row skipped)")
    _counts(summary, summary.first_nonfinite_file)
    if not quiet and sys.stderr.isatty():
        sys.stderr.write(
            clean(f"{summary.written:,} rows -> {out} ({summary.partitions} partitions, {summary.workers} workers)")
            + "\n"
        )


@contextmanager
def _partition_progress(quiet: bool):
    """A Rich progress bar of partitions done, on stderr when it is a terminal; else no callback."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("batch (dask)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("partitions", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _format_of(path: str, default: str) -> str:
    from ..io.arrow import PARQUET_EXTS

    p = path.lower()
    return "jsonl" if p.endswith((".jsonl", ".ndjson")) else "parquet" if p.endswith(PARQUET_EXTS) else default


def _rows_reader(rows: str, label: str, fmt: str, plan):
    """The reader of a rows file, its size for the progress bar, and a function from rows done (in the
    last block) to progress done (bytes read, or rows for Parquet)."""
    from ..io.rows import CsvRows, JsonlRows, rows_text

    names = [i.name for i in plan.inputs]
    if fmt == "parquet":
        from ..io.arrow import ParquetRows

        if rows == "-":
            raise UsageError("Parquet rows must be a file, not stdin")
        if not os.path.isfile(rows):
            raise UsageError(f"{rows}: no such file")
        reader = ParquetRows(rows, label, names)
        count = [0]

        def rows_done(n: int) -> int:
            count[0] += n
            return count[0]

        return reader, reader.total or None, rows_done
    text = rows_text(_open_rows(rows), label)
    counter = text.buffer.raw
    try:
        reader = (
            CsvRows(text, label, names)
            if fmt == "csv"
            else JsonlRows(text, label, names, dict(zip(names, plan.shapes)))
        )
    except UnicodeDecodeError:
        raise UsageError(f"{label}: not UTF-8 text") from None
    return reader, counter.total, lambda n: counter.bytes_read


def _open_rows(path: str):
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed with the process; read to the end
    except OSError as e:
        raise UsageError(f"{path}: cannot read the file: {e.strerror or e}") from None


@contextmanager
def _progress(quiet: bool, total: int | None):
    """A Rich progress bar on stderr, only on a terminal; yields a function taking bytes read so far."""
    if quiet or not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("batch"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda done: bar.update(task, completed=done)
