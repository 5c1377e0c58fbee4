"""The local runner of `cgcalc batch`: every chunk of a rows file through a Job (in this process, or in worker
processes), written in order, counted in a Summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from ..core.compiler import Plan
from ..core.runtime import check_outputs
from ..errors import RowsError
from ..io.columns import ROW_NUMBER
from ..io.rows import CsvRows, JsonlRows
from .job import DEFAULT_CHUNK_ROWS, Block, Job
from .options import Options, result_names

if TYPE_CHECKING:
    from ..io.arrow import ParquetRows
    from ..io.arrow_out import ParquetSink


@dataclass
class Summary:
    rows: int = 0  # rows read (good and bad)
    written: int = 0
    bad: int = 0  # rows skipped with --skip-bad-rows
    nonfinite: int = 0  # written rows with a NaN or inf among their results
    first_nonfinite_line: int | None = None
    notes: list[str] = field(default_factory=list)  # for --verbose

    def add(self, b: Block) -> None:
        """A Block's rows counted, and its notes kept."""
        self.notes.extend(b.notes)
        self.rows += b.rows
        self.bad += len(b.errors)
        self.written += b.written
        self.nonfinite += b.nonfinite
        if self.first_nonfinite_line is None:
            self.first_nonfinite_line = b.first_nonfinite_line


def run_rows(
    plan: Plan,
    rows: CsvRows | JsonlRows | ParquetRows,
    out: IO[str] | ParquetSink,
    out_format: str,
    outputs: list[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_bad: Callable[[RowsError], None] | None = None,
    progress: Callable[[int], None] | None = None,
    exact: bool = True,
    jobs: int = 1,
    graph_text: str | bytes | None = None,
    graph_file: str = "",
    arrow: bool = False,
    options: Options | None = None,
    stream: bool = False,
) -> Summary:
    """Evaluate every row of `rows` (CsvRows, JsonlRows or io.arrow.ParquetRows) and write one output row each
    to `out` (a text file; for out_format "parquet", an io.arrow_out.ParquetSink).

    With jobs > 1 (CSV rows, or JSON Lines written as JSON Lines; and `graph_text`, the graph file's content,
    given), blocks of rows are parsed, evaluated and formatted by that many worker processes; the output is the
    same, byte for byte.
    `arrow`: CSV cells read and written by pyarrow (see io/arrow.py; the same output, byte for byte).
    `options`: --set, --nodes, --float-format, --delimiter, --row-number (see Options); the kept columns are the
    rows reader's (its column rules). `stream`: `out` is flushed after each block (a pipe: rows as they come).
    """
    outputs = check_outputs(plan, outputs)
    options = options or Options()
    job = Job(plan, outputs, out_format, rows.file, skip=on_bad is not None, exact=exact, arrow=arrow, options=options)
    if not isinstance(rows, JsonlRows):
        job.kept_names = rows.layout.kept_names  # known before any row is read
    writer = _Writer(out, job, header_done=out_format != "csv", stream=stream)  # JSON Lines: no header
    if isinstance(rows, CsvRows):
        writer.header(rows.layout.input_names)  # known before any row is read (and the workers need it)
    pool = jobs > 1 and graph_text is not None and (isinstance(rows, CsvRows) or out_format == "jsonl")
    if pool:
        from .pool import pool_blocks

        blocks = pool_blocks(job, rows, chunk_rows, jobs, graph_text, graph_file, first_here=stream)
    else:
        blocks = _blocks(job, rows, chunk_rows)
    summary = _write_blocks(blocks, writer, on_bad, progress)
    summary.notes.extend(getattr(rows, "notes", []))
    summary.notes.append(
        f"{summary.rows:,} rows read in chunks of up to {chunk_rows:,}"
        + (f", by {jobs} worker processes" if pool else "")
        + (", CSV read and written with pyarrow" if arrow and isinstance(rows, CsvRows) else "")
    )
    if job.kept_names is None:  # JSON Lines of no rows: --keep's columns
        job.kept_names = list(getattr(rows, "kept_names", None) or options.keep)
    writer.finish(_given_names(rows))  # a CSV of no rows still has its header
    if out_format == "parquet":
        _close_parquet(out, job, rows)
    return summary


def _close_parquet(out: ParquetSink, job: Job, rows) -> None:
    """The Parquet file finished: with its columns' types when no row was written."""
    if job.echo_names is None:
        job.echo_names = _given_names(rows)
    schema = getattr(rows, "schema", None)
    types = {k: schema.field(k).type if schema is not None else "string" for k in job.kept_names or ()}
    types[ROW_NUMBER] = "int64"
    out.close(job.lead_names() + result_names(job.plan, job.outputs, job.options), types)


def _given_names(rows) -> list[str]:
    """The input columns of the rows (a CSV's, a Parquet file's; JSON Lines: the first row's)."""
    return rows.layout.input_names if isinstance(rows, CsvRows) else list(rows.names or [])


class _Writer:
    """The output file, and its CSV header written once: with the first rows (their input columns are known then,
    and a run whose first rows fail writes nothing, to a pipe too), or at the end when there are none."""

    def __init__(self, out: IO[str] | ParquetSink, job: Job, header_done: bool, stream: bool = False) -> None:
        self.out, self.job, self.header_done, self.stream = out, job, header_done, stream
        self.pending = ""  # the header line, once known, until the first rows go with it

    def header(self, names: list[str]) -> None:
        """The header's columns are known (the echoed input columns: `names`)."""
        if not self.header_done and not self.pending:
            self.pending = self.job.header(names)

    def block(self, b: Block) -> None:
        if b.data is not None:  # columns, for a ParquetSink
            self.out.write(b.data)
        if b.text:
            self.header(self.job.echo_names or [])
            self.out.write(self.pending + b.text if self.pending else b.text)
            self.pending, self.header_done = "", True
            if self.stream:
                self.out.flush()  # a pipe's reader gets the rows now, not at the end

    def finish(self, names: list[str]) -> None:
        """The end: a CSV of no rows still has its header."""
        self.header(names)
        if self.pending:
            self.out.write(self.pending)
            self.pending, self.header_done = "", True


def _blocks(job: Job, rows: CsvRows | JsonlRows | ParquetRows, chunk_rows: int) -> Iterator[Block]:
    """The rows, evaluated in this process, as Blocks in file order."""
    if isinstance(rows, CsvRows):
        return (job.csv_block(first, text, rows.spec) for first, text in rows.blocks(chunk_rows))
    return _parsed_blocks(job, rows, chunk_rows)


def _parsed_blocks(job: Job, rows: JsonlRows | ParquetRows, chunk_rows: int) -> Iterator[Block]:
    """JSON Lines and Parquet rows: chunks already parsed, as Blocks. A row that cannot be read goes with the
    Block read meanwhile (those after the last one, in a Block of their own)."""
    errors: list[RowsError] = []
    on_bad = errors.append if job.skip else None
    if isinstance(rows, JsonlRows):
        # the groups of rows read together as one Block: bad rows in line order, as workers report them
        for groups in rows.runs(chunk_rows, on_bad):
            if job.kept_names is None:
                job.kept_names = rows.kept_names  # the first row's kept keys (and --keep's others)
            yield job.blocks(groups, errors)
    else:
        for chunk in rows.chunks(chunk_rows, on_bad):
            yield job.blocks([chunk], errors)
    yield Block("", len(errors), 0, 0, None, list(errors))


def _write_blocks(
    blocks: Iterator[Block],
    writer: _Writer,
    on_bad: Callable[[RowsError], None] | None,
    progress: Callable[[int], None] | None,
) -> Summary:
    """Every Block written in order and counted; its bad rows raised (the first), or reported to `on_bad`.
    The blocks are closed at the end, also on an error (worker processes stopped)."""
    summary = Summary()
    try:
        for b in blocks:
            if b.errors and on_bad is None:
                raise b.errors[0]
            for e in b.errors:
                on_bad(e)
            summary.add(b)
            writer.block(b)
            if progress is not None and b.rows:
                progress(b.rows)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return summary
