"""`cgcalc batch`: the command line of batch/ (the local runner, its worker pool, the dask client) and io/arrow.py
(registered on the app when cli/app.py imports this module)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError, clean
from .common import GraphArg, OutputOpt, _compile, _errors, _outputs, _read_graph, _warn, app
from .progress import partition_progress, rows_progress

if TYPE_CHECKING:
    from ..api import Graph
    from ..batch.runner import Summary
    from ..core.compiler import Plan
    from ..errors import RowsError
    from ..io.arrow import ParquetRows, ParquetSink
    from ..io.rows import CsvRows, JsonlRows


class RowsFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"  # needs pyarrow


class Engine(StrEnum):
    local = "local"
    dask = "dask"


# the options of `cgcalc batch`, as --help lists them
RowsArg = Annotated[
    str, typer.Argument(help="Rows: CSV (header = input names), JSON Lines or Parquet; - for stdin.", metavar="ROWS")
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        help="Write here (CSV; JSON Lines for .jsonl; Parquet for .parquet), atomically; default: stdout.",
    ),
]
RowsFormatOpt = Annotated[
    RowsFormat | None, typer.Option("--rows-format", help="csv, jsonl or parquet (default: from ROWS' extension).")
]
OutFormatOpt = Annotated[
    RowsFormat | None,
    typer.Option("--out-format", help="csv, jsonl or parquet (default: from OUT's extension, else csv)."),
]
ChunkRowsOpt = Annotated[
    int | None,
    typer.Option("--chunk-rows", min=1, help="Rows evaluated together (default 16,384; with Parquet 131,072)."),
]
SkipBadRowsOpt = Annotated[bool, typer.Option("--skip-bad-rows", help="Report bad rows on stderr and go on.")]
FastMathOpt = Annotated[
    bool,
    typer.Option(
        "--fast-math",
        help="numpy's exp/log/tanh/pow/sin/cos for graphs of scalars (faster; may differ from `run` in the last bit).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Say how rows were grouped.")]
EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="local, or dask: a dataset of Parquet/CSV files on a "
        "dask.distributed cluster (pip install 'cgcalc\\[dask]').",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="dask: the scheduler to connect to (default: a LocalCluster on this machine)."),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=1, help="dask: workers of the LocalCluster (default: one per core).")
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Worker processes for CSV rows, or JSON Lines "
        "to JSON Lines (default: one per core for files over 8 MB; 1: none).",
    ),
]


@app.command()
def batch(
    graph: GraphArg,
    rows: RowsArg,
    out: OutOpt = None,
    output: OutputOpt = None,
    rows_format: RowsFormatOpt = None,
    out_format: OutFormatOpt = None,
    chunk_rows: ChunkRowsOpt = None,
    skip_bad_rows: SkipBadRowsOpt = False,
    fast_math: FastMathOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    engine: EngineOpt = Engine.local,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    jobs: JobsOpt = None,
) -> None:
    """Evaluate many rows: per row, its input columns, every output, and dO/dX for every input X."""
    with _errors():
        if graph == "-" and rows == "-":
            raise UsageError("the graph and the rows cannot both come from stdin (-): give one of them as a file")
        graph_text, graph_label = _read_graph(graph)  # once: it may be a pipe, and the workers get this text
        g = _compile(graph_text, graph_label)
        if engine is Engine.dask:
            _batch_dask(
                graph_text,
                graph_label,
                g,
                rows,
                out,
                output=output,
                rows_format=rows_format,
                out_format=out_format,
                skip_bad_rows=skip_bad_rows,
                fast_math=fast_math,
                quiet=quiet,
                scheduler=scheduler,
                workers=workers,
            )
        else:
            _batch_local(
                graph,
                graph_text,
                graph_label,
                g,
                rows,
                None if out == "-" else out,
                output=output,
                rows_format=rows_format,
                out_format=out_format,
                chunk_rows=chunk_rows,
                skip_bad_rows=skip_bad_rows,
                fast_math=fast_math,
                quiet=quiet,
                verbose=verbose,
                jobs=jobs,
            )


def _batch_local(
    graph: str,
    text: bytes,
    graph_label: str,
    g: Graph,
    rows: str,
    out: str | None,
    *,
    output: str | None,
    rows_format: RowsFormat | None,
    out_format: RowsFormat | None,
    chunk_rows: int | None,
    skip_bad_rows: bool,
    fast_math: bool,
    quiet: bool,
    verbose: bool,
    jobs: int | None,
) -> None:
    """cgcalc batch (the local engine): the rows through run_rows, in this process or its worker processes, into
    OUT (atomically; None: stdout); then what the run counted, on stderr."""
    from ..batch.runner import run_rows
    from ..io.atomic import output as output_file

    fmt_in, fmt_out, arrow = _formats(rows, out, rows_format, out_format)
    label = "<stdin>" if rows == "-" else rows
    with _rows_reader(rows, label, fmt_in, g.plan) as (reader, total, done):
        processes = _jobs(jobs, fmt_in, fmt_out, total)
        with (
            rows_progress(quiet, total) as advance,
            output_file(
                out,
                prefix=".cgcalc-batch-",
                name_only=fmt_out == "parquet",
                inputs=[("graph file", graph), ("rows file", rows)],
            ) as f,
        ):
            try:
                summary = run_rows(
                    g.plan,
                    reader,
                    _sink(f, fmt_out),
                    fmt_out,
                    _outputs(g, output),
                    _chunk_rows(chunk_rows, fmt_in, fmt_out),
                    _skipped if skip_bad_rows else None,
                    lambda n: advance(done(n)),
                    exact=not fast_math,
                    jobs=processes,
                    graph_text=text,
                    graph_file=graph_label,
                    arrow=arrow,
                )
            except UnicodeDecodeError:
                raise UsageError(f"{label}: not UTF-8 text") from None
    _summarize(summary, label, out, quiet, verbose)


def _formats(
    rows: str, out: str | None, rows_format: RowsFormat | None, out_format: RowsFormat | None
) -> tuple[str, str, bool]:
    """The rows' format and the output's (as given, else from the extensions, else CSV), and whether pyarrow is
    there (it reads and writes CSV faster; Parquet needs it)."""
    from ..io.arrow import why_not

    fmt_in = rows_format.value if rows_format else _format_of(rows, "csv")
    fmt_out = out_format.value if out_format else _format_of(out or "", "csv")
    no_arrow = why_not()
    if "parquet" in (fmt_in, fmt_out) and no_arrow is not None:
        raise UsageError(f"Parquet needs pyarrow ({no_arrow})")
    if fmt_out == "parquet" and not out and sys.stdout.isatty():
        raise UsageError("Parquet is binary: write it to a file with -o OUT.parquet (or pipe it)")
    return fmt_in, fmt_out, no_arrow is None


def _jobs(jobs: int | None, fmt_in: str, fmt_out: str, size: int | None) -> int:
    """Worker processes: as asked; else, for the rows they can take (CSV, or JSON Lines written as JSON Lines), as
    many as a rows file of `size` bytes is worth; else none (1)."""
    if jobs is None and (fmt_in == "csv" or (fmt_in == "jsonl" and fmt_out == "jsonl")):
        from ..batch.pool import auto_jobs

        return auto_jobs(size)
    return jobs or 1


def _chunk_rows(chunk_rows: int | None, fmt_in: str, fmt_out: str) -> int:
    """Rows evaluated together: as asked; else larger blocks when Parquet is read or written (its row groups)."""
    if chunk_rows is not None:
        return chunk_rows
    from ..batch.job import DEFAULT_CHUNK_ROWS
    from ..io.arrow import PARQUET_CHUNK_ROWS

    return PARQUET_CHUNK_ROWS if "parquet" in (fmt_in, fmt_out) else DEFAULT_CHUNK_ROWS


def _sink(f: IO[str] | str, fmt_out: str) -> IO[str] | ParquetSink:
    """Where run_rows writes: the output file; for Parquet, a ParquetSink given the file's name (Arrow writes the
    file itself: through a Python file object it takes 1.3x the time)."""
    if fmt_out != "parquet":
        return f
    from ..io.arrow import ParquetSink

    return ParquetSink(f)


def _skipped(e: RowsError) -> None:
    """A bad row skipped (--skip-bad-rows), on stderr."""
    _warn(f"{e} (row skipped)")


def _summarize(summary: Summary, label: str, out: str | None, quiet: bool, verbose: bool) -> None:
    """What a local batch run says at the end, on stderr."""
    _counts(summary, label)
    if verbose:
        for note in summary.notes:
            sys.stderr.write(f"note: {note}\n")
    if not quiet and sys.stderr.isatty():
        sys.stderr.write(clean(f"{summary.written:,} rows -> {out or 'stdout'}") + "\n")


def _counts(summary: Summary, file: str | None) -> None:
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
    g: Graph,
    rows: str,
    out: str | None,
    *,
    output: str | None,
    rows_format: RowsFormat | None,
    out_format: RowsFormat | None,
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
    with partition_progress(quiet) as progress:
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
        _skipped(e)
    _counts(summary, summary.first_nonfinite_file)
    if not quiet and sys.stderr.isatty():
        sys.stderr.write(
            clean(f"{summary.written:,} rows -> {out} ({summary.partitions} partitions, {summary.workers} workers)")
            + "\n"
        )


def _format_of(path: str, default: str) -> str:
    from ..io.arrow import PARQUET_EXTS

    p = path.lower()
    return "jsonl" if p.endswith((".jsonl", ".ndjson")) else "parquet" if p.endswith(PARQUET_EXTS) else default


@contextmanager
def _rows_reader(
    rows: str, label: str, fmt: str, plan: Plan
) -> Iterator[tuple[CsvRows | JsonlRows | ParquetRows, int | None, Callable[[int], int]]]:
    """The reader of a rows file, its size for the progress bar, and a function from rows done (in the
    last block) to progress done (bytes read, or rows for Parquet); the file is closed at the end (stdin is not)."""
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

        yield reader, reader.total or None, rows_done
        return
    with _open_rows(rows) as f:
        text = rows_text(f, label)
        counter = text.buffer.raw
        try:
            reader = (
                CsvRows(text, label, names)
                if fmt == "csv"
                else JsonlRows(text, label, names, dict(zip(names, plan.shapes)))
            )
        except UnicodeDecodeError:
            raise UsageError(f"{label}: not UTF-8 text") from None
        yield reader, counter.total, lambda n: counter.bytes_read


@contextmanager
def _open_rows(path: str) -> Iterator[IO[bytes]]:
    """The rows file, opened for reading and closed at the end; `-` is stdin, which stays open."""
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"{path}: cannot read the file: {e.strerror or e}") from None
    with f:
        yield f
