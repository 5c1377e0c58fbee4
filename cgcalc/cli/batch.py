"""`cgcalc batch`: the command line of batch/ (the local runner, its worker pool, the dask client) and io/arrow.py
(registered on the app when cli/app.py imports this module). Its options are in cli/batch_options.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from ..errors import UsageError, clean
from .batch_options import (
    BadRowsOpt,
    BatchArgs,
    ChunkRowsOpt,
    DelimiterOpt,
    Engine,
    EngineOpt,
    FastMathOpt,
    FloatFormatOpt,
    IgnoreOutputsOpt,
    JobsOpt,
    KeepAllOpt,
    KeepOpt,
    NodesGradOpt,
    NodesOpt,
    OutFormatOpt,
    OutOpt,
    PrecisionOpt,
    QuietOpt,
    RowNumberOpt,
    RowsArg,
    RowsFormatOpt,
    SchedulerOpt,
    SkipBadRowsOpt,
    VerboseOpt,
    WorkersOpt,
    check_output_name,
    format_of,
    options,
    out_format,
)
from .common import GraphArg, OutputOpt, SetOpt, _compile, _errors, _outputs, _read_graph, _warn, app
from .progress import partition_progress, rows_progress

if TYPE_CHECKING:
    from ..api import Graph
    from ..batch.bad_rows import BadRows
    from ..batch.options import Options
    from ..batch.runner import Summary
    from ..errors import RowsError


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
    bad_rows: BadRowsOpt = None,
    keep: KeepOpt = None,
    keep_all: KeepAllOpt = False,
    row_number: RowNumberOpt = False,
    ignore_outputs: IgnoreOutputsOpt = False,
    set_: SetOpt = None,
    nodes: NodesOpt = None,
    nodes_grad: NodesGradOpt = False,
    precision: PrecisionOpt = None,
    float_format: FloatFormatOpt = None,
    delimiter: DelimiterOpt = None,
    fast_math: FastMathOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    engine: EngineOpt = Engine.local,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = None,
    jobs: JobsOpt = None,
) -> None:
    """Evaluate many rows: per row, its input columns, every output, and dO/dX for every input X."""
    args = BatchArgs(**locals())  # every option, as given
    with _errors():
        if graph == "-" and rows == "-":
            raise UsageError("the graph and the rows cannot both come from stdin (-): give one of them as a file")
        graph_text, graph_label = _read_graph(graph)  # once: it may be a pipe, and the workers get this text
        g = _compile(graph_text, graph_label)
        check_output_name(g, output)
        (_batch_dask if engine is Engine.dask else _batch_local)(args, graph_text, graph_label, g)


def _batch_local(args: BatchArgs, text: bytes, graph_label: str, g: Graph) -> None:
    """cgcalc batch (the local engine): the rows through run_rows, in this process or its worker processes, into
    OUT (a file: atomically; stdout or a pipe: streamed); then what the run counted, on stderr."""
    from ..batch.runner import run_rows
    from ..io.atomic import output as output_file
    from ..io.atomic import target

    out = None if args.out == "-" else args.out
    fmt_out, arrow = out_format(args, out)
    label = "<stdin>" if args.rows == "-" else args.rows
    outputs = _outputs(g, args.output)
    with _rows_reader(args, label, g, outputs, fmt_out) as (reader, fmt_in, opts, total, done):
        inputs = [("graph file", args.graph), ("rows file", args.rows)]
        with (
            rows_progress(args.quiet, total) as advance,
            output_file(out, prefix=".cgcalc-batch-", name_only=fmt_out == "parquet", inputs=inputs, stream=True) as f,
            _bad_rows_file(args, reader, fmt_in, opts, inputs) as bad,
        ):
            try:
                summary = run_rows(
                    g.plan,
                    reader,
                    _sink(f, fmt_out),
                    fmt_out,
                    outputs,
                    _chunk_rows(args.chunk_rows, fmt_in, fmt_out),
                    bad.add if bad is not None else _skipped if args.skip else None,
                    lambda n: advance(done(n)),
                    exact=not args.fast_math,
                    jobs=_jobs(args.jobs, fmt_in, fmt_out, total),
                    graph_text=text,
                    graph_file=graph_label,
                    arrow=arrow,
                    options=opts,
                    stream=target(out).replace is None,
                )
            except UnicodeDecodeError:
                raise UsageError(f"{label}: not UTF-8 text") from None
    _summarize(summary, label, out, args)


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


def _sink(f: IO[str] | str, fmt_out: str):
    """Where run_rows writes: the output file; for Parquet, a ParquetSink given the file's name (Arrow writes the
    file itself: through a Python file object it takes 1.3x the time)."""
    if fmt_out != "parquet":
        return f
    from ..io.arrow_out import ParquetSink

    return ParquetSink(f)


def _skipped(e: RowsError) -> None:
    """A bad row skipped (--skip-bad-rows), on stderr."""
    _warn(f"{e} (row skipped)")


@contextmanager
def _bad_rows_file(args: BatchArgs, reader, fmt_in: str, opts: Options, inputs) -> Iterator[BadRows | None]:
    """--bad-rows FILE: a BadRows writer in the rows' format, its file complete at the end (or absent)."""
    if args.bad_rows is None:
        yield None
        return
    from ..batch.bad_rows import BadRows
    from ..io.atomic import output as output_file

    said = format_of(args.bad_rows, fmt_in)
    if said != fmt_in:
        raise UsageError(f"--bad-rows {args.bad_rows}: the bad rows are written as the rows are read, as {fmt_in}")
    schema = getattr(reader, "schema", None)
    columns = {n: schema.field(n).type for n in [*reader.names, *reader.kept_names]} if schema is not None else None
    with output_file(args.bad_rows, prefix=".cgcalc-bad-", name_only=fmt_in == "parquet", inputs=inputs) as f:
        bad = BadRows(f, fmt_in, header=getattr(reader, "header", ""), delimiter=opts.delimiter, columns=columns)
        yield bad
        bad.close()


def _summarize(summary: Summary, label: str, out: str | None, args: BatchArgs) -> None:
    """What a local batch run says at the end, on stderr."""
    _counts(summary, label, args.bad_rows)
    if args.verbose:
        for note in summary.notes:
            sys.stderr.write(f"note: {note}\n")
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write(clean(f"{summary.written:,} rows -> {out or 'stdout'}") + "\n")


def _counts(summary: Summary, file: str | None, bad_rows: str | None = None) -> None:
    """The bad and the non-finite rows a batch run counted, on stderr (local and dask alike)."""
    if summary.bad:
        where = f"written to {bad_rows}" if bad_rows is not None else "each reported above"
        _warn(
            f"{summary.bad:,} bad row{'s' if summary.bad > 1 else ''} skipped of {summary.rows:,} "
            f"({where}); {summary.written:,} written"
        )
    if summary.nonfinite:
        _warn(
            f"{summary.nonfinite:,} row{'s' if summary.nonfinite > 1 else ''} with NaN or inf in their "
            f"results, first at {file}:{summary.first_nonfinite_line} "
            f"(run that row alone with `cgcalc run --set` to see which node produced it)"
        )


def _batch_dask(args: BatchArgs, text: bytes, graph: str, g: Graph) -> None:
    """cgcalc batch --engine dask: the same rows -> results, as a partitioned dataset written by a cluster."""
    from ..batch.dask_client import require_dask, run_dask

    require_dask()
    if not args.out:
        raise UsageError("--engine dask writes a dataset: give its directory with -o OUT")
    fmt_in = args.rows_format.value if args.rows_format else None
    fmt_out = args.out_format.value if args.out_format else None
    opts = options(args, g, fmt_in or "csv", fmt_out or "csv")
    with partition_progress(args.quiet) as progress:
        summary = run_dask(
            text,
            graph,
            args.rows,
            args.out,
            output=_outputs(g, args.output),
            scheduler=args.scheduler,
            rows_format=fmt_in,
            out_format=fmt_out,
            skip_bad_rows=args.skip,
            exact=not args.fast_math,
            workers=args.workers,
            progress=progress,
            options=opts,
        )
    if args.bad_rows is not None:
        _dask_bad_rows(args, summary, opts)
    else:
        for e in summary.errors:
            _skipped(e)
    _counts(summary, summary.first_nonfinite_file, args.bad_rows)
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write(
            clean(
                f"{summary.written:,} rows -> {args.out} ({summary.partitions} partitions, {summary.workers} workers)"
            )
            + "\n"
        )


def _dask_bad_rows(args: BatchArgs, summary, opts: Options) -> None:
    """The dask run's bad rows (from every file: a `file` column first), written by this process at the end."""
    from ..batch.bad_rows import BadRows
    from ..io.atomic import output as output_file

    fmt = summary.rows_format
    if format_of(args.bad_rows, fmt) != fmt:
        raise UsageError(f"--bad-rows {args.bad_rows}: the bad rows are written as the rows are read, as {fmt}")
    with output_file(args.bad_rows, prefix=".cgcalc-bad-", name_only=fmt == "parquet") as f:
        bad = BadRows(f, fmt, header=summary.header, delimiter=opts.delimiter, columns=summary.columns, with_file=True)
        for e in summary.errors:
            bad.add(e)
        bad.close()


@contextmanager
def _rows_reader(
    args: BatchArgs, label: str, g: Graph, outputs: list[str] | None, fmt_out: str
) -> Iterator[tuple[object, str, Options, int | None, Callable[[int], int]]]:
    """The reader of the rows file (its format as given, else from its extension, else from its first bytes), the
    format, the run's Options, the file's size for the progress bar, and a function from rows done (in the last
    block) to progress done (bytes read, or rows for Parquet); the file is closed at the end (stdin is not)."""
    from ..batch.options import check_options, rules_for
    from ..core.runtime import check_outputs
    from ..io.rows import CsvRows, JsonlRows, rows_text, sniff

    plan, rows = g.plan, args.rows
    names = [i.name for i in plan.inputs]
    fmt = args.rows_format.value if args.rows_format else format_of(rows, None) if rows != "-" else None
    if fmt is None and os.path.isfile(rows) and _is_parquet(rows):
        fmt = "parquet"
    if fmt == "parquet":
        yield _parquet_reader(args, label, g, outputs, fmt_out)
        return
    with _open_rows(rows) as f:
        text = rows_text(f, label)
        fmt = fmt or sniff(text) or "csv"
        opts = options(args, g, fmt, fmt_out)
        checked = check_outputs(plan, outputs)
        check_options(plan, checked, opts)
        rules = rules_for(plan, checked, opts)
        try:
            if fmt == "csv":
                reader = CsvRows(text, label, names, rules, opts.delimiter)
            else:
                reader = JsonlRows(text, label, names, dict(zip(names, plan.shapes)), rules)
        except UnicodeDecodeError:
            raise UsageError(f"{label}: not UTF-8 text") from None
        counter = text.buffer.raw
        yield reader, fmt, opts, counter.total, lambda n: counter.bytes_read


def _parquet_reader(args: BatchArgs, label: str, g: Graph, outputs, fmt_out: str) -> tuple:
    """A Parquet rows file's reader (the same tuple as _rows_reader's): progress in rows."""
    from ..batch.options import check_options, rules_for
    from ..core.runtime import check_outputs
    from ..io.arrow import ParquetRows, why_not

    no_arrow = why_not()
    if no_arrow is not None:
        raise UsageError(f"Parquet needs pyarrow ({no_arrow})")
    if args.rows == "-":
        raise UsageError("Parquet rows must be a file, not stdin")
    if not os.path.isfile(args.rows):
        raise UsageError(f"{args.rows}: no such file")
    opts = options(args, g, "parquet", fmt_out)
    checked = check_outputs(g.plan, outputs)
    check_options(g.plan, checked, opts)
    reader = ParquetRows(args.rows, label, [i.name for i in g.plan.inputs], rules_for(g.plan, checked, opts))
    count = [0]

    def rows_done(n: int) -> int:
        count[0] += n
        return count[0]

    return reader, "parquet", opts, reader.total or None, rows_done


def _is_parquet(path: str) -> bool:
    """A file that starts with Parquet's magic bytes (a rows file whose name says nothing)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


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
