"""Rows in, rows out: chunked, vectorized, streaming. `cgcalc batch` is a loop over blocks of a rows file
(read by io/rows.py); each block runs through `run_batch` once (one numpy call per node, not one per row), in
this process or in a worker process (pool.py), and its output rows are written in order."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..core.compiler import Plan
from ..core.vectorized import run_batch
from ..errors import CgcalcError, RowsError
from ..io.columns import ROW_NUMBER, Chunk, as_read
from ..io.jsonl import JsonlRows
from ..io.rows import CsvSpec, parse_csv
from . import rowtext
from .cells import csv_line
from .options import Options, result_names

DEFAULT_CHUNK_ROWS = 16384  # small enough that memory stays flat (measured: 10M rows ~ 100k rows)


class Block(NamedTuple):
    """A block of rows evaluated: its output text and what the summary counts."""

    text: str
    rows: int  # rows read, good and bad
    written: int
    nonfinite: int  # written rows with a NaN or inf among their results
    first_nonfinite_line: int | None
    errors: list[RowsError]  # the bad rows, in line order (without skip: only the first, and no text)
    data: dict | None = None  # Parquet output: the columns (given inputs, then results) instead of text
    notes: tuple[str, ...] = ()  # for --verbose (JSON Lines rows grouped in a worker process)


@dataclass
class Job:
    """What turns chunks of rows into output text: the same in this process and in a worker process."""

    plan: Plan
    outputs: list[str]
    out_format: str  # "csv", "jsonl" or "parquet"
    file: str  # the rows file, for messages
    skip: bool = False  # --skip-bad-rows
    exact: bool = True
    echo_names: list[str] | None = None  # CSV output: the input columns copied in front (None: not known yet)
    arrow: bool = False  # parse and write CSV with pyarrow (the same bytes, faster)
    options: Options = field(default_factory=Options)
    kept_names: list[str] | None = None  # the kept columns, in front of the inputs (None: not known yet)

    def _fast(self):
        """pyarrow's reader of CSV cells, when the Arrow path is on (the same values; see io/arrow.py)."""
        if not self.arrow:
            return None
        from ..io.arrow import csv_floats

        return csv_floats

    def csv_block(self, first: int, text: str, spec: CsvSpec) -> Block:
        """CSV lines (the first is line `first`) -> their output rows."""
        errors: list[RowsError] = []
        try:
            chunk = parse_csv(text, first, spec, self.file, errors.append if self.skip else None, self._fast())
        except RowsError as e:
            return Block("", 0, 0, 0, None, [e])
        if chunk is None:
            return Block("", len(errors), 0, 0, None, errors)
        b = self.block(chunk)
        if not errors:
            return b
        return b._replace(rows=b.rows + len(errors), errors=sorted(errors + b.errors, key=_line))

    def jsonl_block(self, first: int, text: str, inputs: list[str], shapes: dict, rules=None) -> Block:
        """JSON Lines (the first is line `first`) -> their output rows (JSON Lines: no columns to agree on)."""
        rows = JsonlRows(io.StringIO(text), self.file, inputs, shapes, rules)
        rows.line = first - 1
        unread: list[RowsError] = []
        try:
            blocks = [
                self.blocks(groups, unread) for groups in rows.runs(len(text) + 1, unread.append if self.skip else None)
            ]
        except RowsError as e:
            return Block("", 0, 0, 0, None, [e])
        b = self.merge(blocks + [Block("", len(unread), 0, 0, None, unread)] if unread else blocks)
        return b._replace(notes=tuple(rows.notes))

    def blocks(self, groups: list[Chunk], unread: list[RowsError]) -> Block:
        """The groups of rows read together, run; with the rows that could not be read meanwhile (taken from
        `unread`): one Block, its bad rows in line order."""
        done = [self.block(c) for c in groups]
        if unread:
            done.append(Block("", len(unread), 0, 0, None, list(unread)))
            unread.clear()
        return self.merge(done)

    def merge(self, blocks: list[Block]) -> Block:
        """Blocks of consecutive rows as one: texts in order, counts summed, bad rows in line order (without
        --skip-bad-rows: only the first of them, and no text)."""
        if len(blocks) == 1:
            return blocks[0]
        errors = sorted([e for b in blocks for e in b.errors], key=_line)
        if errors and not self.skip:
            return Block("", 0, 0, 0, None, errors[:1])
        lines = [b.first_nonfinite_line for b in blocks if b.first_nonfinite_line is not None]
        parts = [b.data for b in blocks if b.data is not None]
        return Block(
            "".join(b.text for b in blocks),
            sum(b.rows for b in blocks),
            sum(b.written for b in blocks),
            sum(b.nonfinite for b in blocks),
            min(lines) if lines else None,
            errors,
            {k: _concat([d[k] for d in parts]) for k in parts[0]} if parts else None,
            tuple(n for b in blocks for n in b.notes),
        )

    def block(self, chunk: Chunk) -> Block:
        """One chunk of good rows, evaluated together -> their output rows."""
        n = len(chunk.lines)
        opts = self.options
        try:
            res = run_batch(
                self.plan,
                self.given(chunk, n),
                self.outputs,
                exact=self.exact,
                rows=n,
                nodes=opts.nodes,
                node_grads=opts.node_grads,
            )
        except CgcalcError as e:
            # rows whose arrays do not fit the graph (a chunk shares its shapes: all of them are bad)
            errors = [_bad_row(e.message, self.file, chunk, i) for i in range(n)]
            return Block("", n, 0, 0, None, errors if self.skip else errors[:1])
        cols = res.columns()
        nonfinite, first_bad = _nonfinite(cols, chunk.lines, n)
        if self.echo_names is None:
            self.echo_names = list(chunk.columns)
        if self.kept_names is None:
            self.kept_names = list(chunk.kept or ())
        if self.out_format == "parquet":
            return Block("", n, n, nonfinite, first_bad, [], rowtext.parquet_data(self, chunk, cols, n))
        text = (
            rowtext.csv_text(self, chunk, cols, n)
            if self.out_format == "csv"
            else rowtext.jsonl_text(self, chunk, cols, n)
        )
        return Block(text, n, n, nonfinite, first_bad, [])

    def given(self, chunk: Chunk, n: int) -> dict:
        """The inputs of a chunk's rows: their own columns, and --set's values for the inputs they leave out."""
        sets = self.options.sets
        if not sets:
            return chunk.columns
        import numpy as np

        extra = {k: np.broadcast_to(v, (n, *np.shape(v))) for k, v in sets.items() if k not in chunk.columns}
        return {**extra, **chunk.columns}

    def header(self, names: list[str]) -> str:
        """The CSV output's header line: the row number, the kept and the given input columns, the results."""
        self.echo_names = list(names)
        return csv_line(self.lead_names() + result_names(self.plan, self.outputs, self.options), self.options.delimiter)

    def lead_names(self) -> list[str]:
        """The output's columns before the results: the row number, the kept columns, the given inputs."""
        return [ROW_NUMBER] * self.options.row_number + list(self.kept_names or ()) + list(self.echo_names or ())


def _line(e: RowsError) -> int:
    return e.line or 0


def _nonfinite(cols: dict, lines, n: int) -> tuple[int, int | None]:
    """How many rows have a NaN or inf among their results, and the line of the first."""
    import numpy as np

    bad = np.zeros(n, dtype=bool)
    for a in cols.values():
        fin = np.isfinite(a)
        if not fin.all():
            bad |= ~fin.reshape(n, -1).all(axis=1)
    count = int(bad.sum())
    return count, (lines[int(np.argmax(bad))] if count else None)


def _bad_row(message: str, file: str, chunk: Chunk, i: int) -> RowsError:
    """Row i of a chunk that cannot run, as read (its text; Parquet: its values)."""
    e = RowsError(message, file=file, line=int(chunk.lines[i]))
    if chunk.raw is not None:
        return as_read(e, chunk.raw[i])
    row = {k: v[i].tolist() for k, v in chunk.columns.items()}
    for k, v in (chunk.kept or {}).items():
        row[k] = v[i] if isinstance(v, list) else v[i].as_py()
    return as_read(e, row=row)


def _concat(parts: list) -> Any:
    """Columns of consecutive blocks as one: numpy arrays, lists, or Arrow arrays."""
    if isinstance(parts[0], list):
        return [x for p in parts for x in p]
    if hasattr(parts[0], "type"):  # Arrow arrays (kept Parquet columns)
        from ..io.arrow_out import concat_arrays

        return concat_arrays(parts)
    import numpy as np

    return np.concatenate(parts)
