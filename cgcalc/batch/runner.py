"""The local runner of `cgcalc batch`: every chunk of a rows file through a Job (in this process, or in worker
processes), written in order, counted in a Summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from ..core.compiler import Plan
from ..core.runtime import check_outputs
from ..errors import RowsError
from ..io.rows import CsvRows, JsonlRows
from .job import DEFAULT_CHUNK_ROWS, Block, Job, _result_names


@dataclass
class Summary:
    rows: int = 0  # rows read (good and bad)
    written: int = 0
    bad: int = 0  # rows skipped with --skip-bad-rows
    nonfinite: int = 0  # written rows with a NaN or inf among their results
    first_nonfinite_line: int | None = None
    notes: list[str] = field(default_factory=list)  # for --verbose


def run_rows(
    plan: Plan,
    rows,
    out: IO[str],
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
) -> Summary:
    """Evaluate every row of `rows` (CsvRows, JsonlRows or arrow_io.ParquetRows) and write one output row each
    to `out` (a text file; for out_format "parquet", an arrow_io.ParquetSink).

    With jobs > 1 (CSV rows, or JSON Lines written as JSON Lines; and `graph_text`, the graph file's content,
    given), blocks of rows are parsed, evaluated and formatted by that many worker processes; the output is the
    same, byte for byte.
    `arrow`: CSV cells read and written by pyarrow (see arrow_io; the same output, byte for byte).
    """
    outputs = check_outputs(plan, outputs)
    job = Job(plan, outputs, out_format, rows.file, skip=on_bad is not None, exact=exact, arrow=arrow)
    summary = Summary()
    header_done = out_format != "csv"  # JSON Lines has none; Parquet has its schema (ParquetSink)
    if not header_done and isinstance(rows, CsvRows):
        out.write(job.header(rows.names))
        header_done = True
    pool = jobs > 1 and graph_text is not None and (isinstance(rows, CsvRows) or out_format == "jsonl")
    if pool:
        from .pool import pool_blocks

        blocks = pool_blocks(job, rows, chunk_rows, jobs, graph_text, graph_file)
    elif isinstance(rows, CsvRows):
        blocks = (job.csv_block(first, text, rows.names) for first, text in rows.blocks(chunk_rows))
    else:
        errors: list[RowsError] = []

        def chunk_blocks() -> Iterator[Block]:  # JSON Lines and Parquet rows: chunks already parsed
            on_bad = errors.append if job.skip else None
            if isinstance(rows, JsonlRows):
                # the groups of rows read together as one Block: bad rows in line order, as workers report them
                for groups in rows.runs(chunk_rows, on_bad):
                    yield job.blocks(groups, errors)
            else:
                for chunk in rows.chunks(chunk_rows, on_bad):
                    yield job.blocks([chunk], errors)
            yield Block("", len(errors), 0, 0, None, list(errors))

        blocks = chunk_blocks()
    try:
        for b in blocks:
            if b.errors and not job.skip:
                raise b.errors[0]
            for e in b.errors:
                on_bad(e)
            summary.notes.extend(b.notes)
            summary.rows += b.rows
            summary.bad += len(b.errors)
            summary.written += b.written
            summary.nonfinite += b.nonfinite
            if summary.first_nonfinite_line is None:
                summary.first_nonfinite_line = b.first_nonfinite_line
            if b.data is not None:
                out.write(b.data)
            if b.text:
                if not header_done:
                    out.write(job.header(job.echo_names or []))
                    header_done = True
                out.write(b.text)
            if progress is not None and b.rows:
                progress(b.rows)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    summary.notes.extend(getattr(rows, "notes", []))
    summary.notes.append(
        f"{summary.rows:,} rows read in chunks of up to {chunk_rows:,}"
        + (f", by {jobs} worker processes" if pool else "")
        + (", CSV read and written with pyarrow" if arrow and isinstance(rows, CsvRows) else "")
    )
    if out_format == "csv" and not header_done:
        out.write(job.header(list(rows.names or [])))
    if out_format == "parquet":
        names = job.echo_names if job.echo_names is not None else list(rows.names or [])
        out.close(names + _result_names(plan, outputs))
    return summary
