"""Rows in, rows out: chunked, vectorized, streaming. `cgcalc batch` is a loop over blocks of a rows file
(read by io/rows.py); each block runs through `run_batch` once (one numpy call per node, not one per row), in
this process or in a worker process (pool.py), and its output rows are written in order."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from ..core.compiler import Plan
from ..core.vectorized import run_batch
from ..errors import CgcalcError, RowsError
from ..io.rows import Chunk, JsonlRows, parse_csv
from ..numbers import NONFINITE, strict

if TYPE_CHECKING:
    import numpy as np

_JSON = json.JSONEncoder(allow_nan=False)  # json.dumps(x, allow_nan=False), without a new encoder per row
DEFAULT_CHUNK_ROWS = 16384  # small enough that memory stays flat (measured: 10M rows ~ 100k rows)


def cell_texts(a: np.ndarray, quote: bool = False) -> list[str]:
    """Each row's cell text: shortest round-trip floats; arrays as JSON (CSV-quoted when quote)."""
    if a.ndim == 1:
        out = list(map(float.__repr__, a.tolist()))  # repr(), without the dispatch: ~10% faster
        import numpy as np

        if not np.isfinite(a).all():
            out = [NONFINITE.get(t, t) for t in out]
        return out
    texts = [json.dumps(strict(x), allow_nan=False) for x in a.tolist()]
    return ['"' + t.replace('"', '""') + '"' for t in texts] if quote else texts


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

    def _fast(self):
        """pyarrow's reader of CSV cells, when the Arrow path is on (the same values; see io/arrow.py)."""
        if not self.arrow:
            return None
        from ..io.arrow import csv_floats

        return csv_floats

    def csv_block(self, first: int, text: str, names: list[str]) -> Block:
        """CSV lines (the first is line `first`) -> their output rows."""
        errors: list[RowsError] = []
        try:
            chunk = parse_csv(text, first, names, self.file, errors.append if self.skip else None, self._fast())
        except RowsError as e:
            return Block("", 0, 0, 0, None, [e])
        if chunk is None:
            return Block("", len(errors), 0, 0, None, errors)
        b = self.block(chunk)
        return b._replace(rows=b.rows + len(errors), errors=errors + b.errors)

    def jsonl_block(self, first: int, text: str, inputs: list[str], shapes: dict) -> Block:
        """JSON Lines (the first is line `first`) -> their output rows (JSON Lines: no columns to agree on)."""
        rows = JsonlRows(io.StringIO(text), self.file, inputs, shapes)
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
        data = None
        if any(b.data is not None for b in blocks):
            import numpy as np

            parts = [b.data for b in blocks if b.data is not None]
            data = {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}
        return Block(
            "".join(b.text for b in blocks),
            sum(b.rows for b in blocks),
            sum(b.written for b in blocks),
            sum(b.nonfinite for b in blocks),
            min(lines) if lines else None,
            errors,
            data,
            tuple(n for b in blocks for n in b.notes),
        )

    def block(self, chunk: Chunk) -> Block:
        """One chunk of good rows, evaluated together -> their output rows."""
        import numpy as np

        n = len(chunk.lines)
        try:
            res = run_batch(self.plan, chunk.columns, self.outputs, exact=self.exact, rows=n)
        except CgcalcError as e:
            # rows whose arrays do not fit the graph (a chunk shares its shapes: all of them are bad)
            errors = [RowsError(e.message, file=self.file, line=line) for line in chunk.lines]
            return Block("", n, 0, 0, None, errors if self.skip else errors[:1])
        cols = res.columns()
        bad = np.zeros(n, dtype=bool)
        for a in cols.values():
            fin = np.isfinite(a)
            if not fin.all():
                bad |= ~fin.reshape(n, -1).all(axis=1)
        nonfinite = int(bad.sum())
        first_bad = chunk.lines[int(np.argmax(bad))] if nonfinite else None
        if self.echo_names is None:
            self.echo_names = list(chunk.columns)
        if self.out_format == "parquet":
            given = _echo_arrays(self.plan, chunk, self.echo_names, n, self.file)
            data = dict(zip(self.echo_names, given)) | cols
            return Block("", n, n, nonfinite, first_bad, [], data)
        text = self._csv(chunk, cols, n) if self.out_format == "csv" else self._jsonl(chunk, cols, n)
        return Block(text, n, n, nonfinite, first_bad, [])

    def _csv(self, chunk: Chunk, cols: dict, n: int) -> str:
        if self.arrow:
            from ..io.arrow import csv_rows, float_texts

            def texts(a):
                return float_texts(a) if a.ndim == 1 else cell_texts(a, quote=True)

            if chunk.echo is not None:
                cells = [chunk.echo] if self.echo_names else []
            else:
                cells = [texts(a) for a in _echo_arrays(self.plan, chunk, self.echo_names, n, self.file)]
            return csv_rows(cells + [texts(a) for a in cols.values()])
        lead = chunk.echo if chunk.echo is not None else _echo_csv(self.plan, chunk, self.echo_names, n, self.file)
        # one %-template per row: repr() of the floats straight into the line (no list of cell strings)
        specs, parts = [], []
        if self.echo_names:
            specs.append("%s")
            parts.append(lead)
        for a in cols.values():
            if a.ndim == 1 and np_isfinite_all(a):
                specs.append("%r")
                parts.append(a.tolist())
            else:
                specs.append("%s")
                parts.append(cell_texts(a, quote=True))
        template = ",".join(specs) + "\n"
        return "".join([template % row for row in zip(*parts)])

    def _jsonl(self, chunk: Chunk, cols: dict, n: int) -> str:
        columns = {**chunk.columns, **cols}  # the row's inputs, then the results (names never clash)
        if all(a.ndim == 1 for a in columns.values()) and all(map(np_isfinite_all, columns.values())):
            # numbers only: one %-template per row; json writes a float as repr() does, so the text is
            # json.dumps's, byte for byte (tested)
            keys = ", ".join(json.dumps(k).replace("%", "%%") + ": %r" for k in columns)
            template = "{" + keys + "}\n"
            return "".join([template % row for row in zip(*[a.tolist() for a in columns.values()])])
        values = [strict(a.tolist()) for a in columns.values()]
        encode = _JSON.encode
        return "".join([encode(dict(zip(columns, row))) + "\n" for row in zip(*values)])

    def header(self, names: list[str]) -> str:
        """The CSV output's header line: the echoed input columns, the outputs, the gradients."""
        self.echo_names = list(names)
        return _csv_line(names + _result_names(self.plan, self.outputs))


def _line(e: RowsError) -> int:
    return e.line or 0


def np_isfinite_all(a: np.ndarray) -> bool:
    import numpy as np

    return bool(np.isfinite(a).all())


def _csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _result_names(plan: Plan, outputs: list[str]) -> list[str]:
    outs = list(dict.fromkeys(list(plan.outputs) + outputs))
    return outs + [f"d{o}/d{i.name}" for o in outputs for i in plan.inputs if i.grad]


def _echo_arrays(plan: Plan, chunk: Chunk, names: list[str], n: int, file: str) -> list:
    """The given input columns of rows from JSON Lines or Parquet, in the first row's order: the value each
    input had in that row (the file's value where the row left it out)."""
    import numpy as np

    cols = []
    for name in names:
        if name in chunk.columns:
            a = chunk.columns[name]
        else:
            inp = plan.inputs[plan.index[name]]
            a = np.broadcast_to(np.asarray(inp.value, dtype=np.float64).reshape(inp.shape), (n, *inp.shape))
        cols.append(np.asarray(a, dtype=np.float64))
    extra = [k for k in chunk.columns if k not in names]
    if extra:
        raise RowsError(
            f"this row sets '{extra[0]}', which the first row did not: a CSV or Parquet output needs "
            "the same columns in every row (write JSON Lines: -o OUT.jsonl)",
            file=file,
            line=chunk.lines[0],
        )
    return cols


def _echo_csv(plan: Plan, chunk: Chunk, names: list[str], n: int, file: str) -> list[str]:
    """The input cells of a CSV row written from JSON Lines or Parquet."""
    cols = [cell_texts(a, quote=True) for a in _echo_arrays(plan, chunk, names, n, file)]
    return [",".join(cells) for cells in zip(*cols)] if cols else [""] * n
