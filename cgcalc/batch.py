"""Rows in, rows out: chunked, vectorized, streaming. `cgcalc batch` is a loop over chunks of a rows
file; each chunk runs through `run_batch` once (one numpy call per node, not one per row)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, NamedTuple

from .compiler import Plan
from .errors import CgcalcError, RowsError, suggest
from .export import NONFINITE, strict
from .runtime import check_outputs, run_batch

DEFAULT_CHUNK_ROWS = 16384  # small enough that memory stays flat (measured: 10M rows ~ 100k rows)


@dataclass
class Summary:
    rows: int = 0  # rows read (good and bad)
    written: int = 0
    bad: int = 0  # rows skipped with --skip-bad-rows
    nonfinite: int = 0  # written rows with a NaN or inf among their results
    first_nonfinite_line: int | None = None
    notes: list[str] = field(default_factory=list)  # for --verbose


@dataclass
class Chunk:
    lines: Sequence[int]  # line number of each row in the rows file
    columns: dict[str, Any]  # input name -> array (rows, *shape)
    echo: list[str] | None  # CSV: each row's own text, to copy to the output as it was


def _cell(text: str) -> float:
    t = text.strip()
    if not t or "_" in t or not t.isascii():  # as numpy's reader: no 1_000, no non-ASCII digits
        raise ValueError(t)
    return float(t)


def _cell_starts(text: str) -> list[int]:
    """1-based column where each CSV cell of a line starts (commas inside quotes do not count)."""
    starts, quoted = [1], False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            starts.append(i + 2)
    return starts


class CsvRows:
    """A CSV rows file: a header of input names, then one number per cell."""

    def __init__(self, f: IO[str], file: str, inputs: list[str]) -> None:
        self.f, self.file = f, file
        self.line = 0
        header = ""
        while not header.strip():
            header = f.readline()
            self.line += 1
            if not header:
                raise RowsError("the rows file is empty (expected a header of input names)", file=file)
        self.names = [c.strip() for c in next(csv.reader([header]))]
        col = 1
        for name in self.names:
            if name not in inputs:
                raise RowsError(f"unknown column '{name}': not an input of the graph{suggest(name, inputs)}",
                                file=file, line=self.line, col=col)
            col += len(name) + 1
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise RowsError(f"column '{dup}' appears twice", file=file, line=self.line)

    def blocks(self, size: int) -> Iterator[tuple[int, str]]:
        """The text after the header, `size` lines at a time: (line number of the block's first line, text)."""
        while True:
            raw = list(islice(self.f, size))
            if not raw:
                return
            first = self.line + 1
            self.line += len(raw)
            yield first, "".join(raw)

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        for first, text in self.blocks(size):
            chunk = parse_csv(text, first, self.names, self.file, on_bad)
            if chunk is not None:
                yield chunk


_NEWLINE = re.compile(r"\r\n|\r|\n")


def parse_csv(text: str, first: int, names: list[str], file: str,
              on_bad: Callable[[RowsError], None] | None, arrow: bool = False) -> Chunk | None:
    """A block of CSV lines (the first is line `first` of `file`) -> a Chunk of its good rows, or None.
    A bad cell raises RowsError, or with `on_bad` is passed to it and its row left out. `arrow`: read
    the cells with pyarrow (the same values; a block it cannot read goes the usual way)."""
    import numpy as np

    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = _NEWLINE.split(text) if "\r" in text else text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    numbers: range | list[int] = range(first, first + len(lines))
    columns = None
    if lines and all(lines) and "_" not in text:  # blank lines; numpy takes 1_000, cgcalc does not
        if arrow:
            from .arrow_io import csv_floats

            columns = csv_floats(text, names, len(lines))
        else:
            try:
                data = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, comments=None, quotechar='"')
            except ValueError:
                data = None
            if data is not None and data.shape == (len(lines), len(names)):
                columns = {n: data[:, j] for j, n in enumerate(names)}
    if columns is None:  # find the bad cells (and the blank lines) one by one
        numbers, lines, data = _slow(numbers, lines, names, file, on_bad)
        columns = {n: data[:, j] for j, n in enumerate(names)}
    if not lines:
        return None
    return Chunk(numbers, columns, lines)


def _slow(numbers, texts, names, file, on_bad):
    """Cell by cell, to name the bad one (and skip its row with --skip-bad-rows)."""
    import numpy as np

    good_lines, good_texts, values = [], [], []
    for line, text in zip(numbers, texts):
        if not text.strip():
            continue
        try:
            values.append(_row(line, text, names, file))
        except RowsError as e:
            if on_bad is None:
                raise
            on_bad(e)
            continue
        good_lines.append(line)
        good_texts.append(text)
    data = np.array(values, dtype=np.float64).reshape(len(values), len(names))
    return good_lines, good_texts, data


def _row(line: int, text: str, names: list[str], file: str) -> list[float]:
    cells = next(csv.reader([text]))
    if len(cells) != len(names):
        raise RowsError(f"row has {len(cells)} cell{'s' * (len(cells) != 1)}, the header has "
                        f"{len(names)}", file=file, line=line, col=1)
    out = []
    for name, cell, col in zip(names, cells, _cell_starts(text)):
        try:
            out.append(_cell(cell))
        except ValueError:
            why = f"bad number '{cell.strip()}'" if cell.strip() else "empty cell"
            raise RowsError(f"column '{name}': {why}", file=file, line=line, col=col) from None
    return out


class JsonlRows:
    """JSON Lines: one object per line, input name -> number or (nested) list."""

    def __init__(self, f: IO[str], file: str, inputs: list[str], shapes: dict[str, tuple]) -> None:
        self.f, self.file, self.inputs, self.shapes = f, file, inputs, shapes
        self.line = 0
        self.names: list[str] | None = None  # the first row's keys: the echo columns of a CSV output
        self.notes: list[str] = []  # for --verbose: where rows could not all run together

    def chunks(self, size: int, on_bad) -> Iterator[Chunk]:
        import numpy as np

        pending: list[tuple[int, dict]] = []
        for text in self.f:
            self.line += 1
            if not text.strip():
                continue
            try:
                row = self._row(self.line, text)
            except RowsError as e:
                if on_bad is None:
                    raise
                on_bad(e)
                continue
            pending.append((self.line, row))
            if len(pending) >= size:
                yield from self._groups(pending, np)
                pending = []
        if pending:
            yield from self._groups(pending, np)

    def _row(self, line: int, text: str) -> dict:
        try:
            # integers as floats (a huge one is inf, as in --set); a key twice is an error, not the last one
            obj = json.loads(text, parse_int=float, object_pairs_hook=_unique_pairs)
        except ValueError as e:
            col = getattr(e, "colno", None)
            raise RowsError(f"not a JSON object: {getattr(e, 'msg', e)}", file=self.file, line=line,
                            col=col) from None
        if not isinstance(obj, dict):
            raise RowsError("a row must be a JSON object {input: value, ...}", file=self.file, line=line, col=1)
        row = {}
        for name, v in obj.items():
            if name not in self.inputs:
                raise RowsError(f"unknown column '{name}': not an input of the graph{suggest(name, self.inputs)}",
                                file=self.file, line=line, col=text.find(f'"{name}"') + 1 or None)
            row[name] = self._value(v, name, line)
        if self.names is None:
            self.names = list(obj)  # the first good row's keys
        return row

    def _value(self, v, name: str, line: int):
        import numpy as np

        def bad(why: str) -> RowsError:
            return RowsError(f"column '{name}': {why}", file=self.file, line=line)

        if isinstance(v, bool) or v is None:
            raise bad(f"bad number {json.dumps(v)}")
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            if v in ("NaN", "Infinity", "-Infinity"):
                return float(v)
            raise bad(f"bad number {json.dumps(v)}")
        try:
            a = np.array(strict_in(v), dtype=np.float64)
        except (ValueError, TypeError):
            raise bad("not a number or a rectangular list of numbers") from None
        if a.dtype != np.float64 or a.ndim == 0:
            raise bad("not a number or a rectangular list of numbers")
        return a

    def _groups(self, pending, np) -> Iterator[Chunk]:
        """Consecutive rows that set the same inputs with the same shapes run together."""
        def signature(row):
            return tuple((k, np.shape(v)) for k, v in row.items())

        start = 0
        groups = 0
        while start < len(pending):
            sig = signature(pending[start][1])
            end = start + 1
            while end < len(pending) and signature(pending[end][1]) == sig:
                end += 1
            group = pending[start:end]
            cols = {k: np.array([r[k] for _, r in group], dtype=np.float64) for k, _ in sig}
            yield Chunk([ln for ln, _ in group], cols, None)
            groups += 1
            start = end
        if groups > 1:
            self.notes.append(f"lines {pending[0][0]}-{pending[-1][0]}: rows set different inputs or shapes, so they "
                              f"ran in {groups} groups (each group vectorized)")


def _unique_pairs(items):
    d = dict(items)
    if len(d) != len(items):
        seen = set()
        dup = next(k for k, _ in items if k in seen or seen.add(k))
        raise ValueError(f"key '{dup}' appears twice")
    return d


def strict_in(v):
    """JSON input values: the strings our own output writes for non-finite numbers become floats."""
    if isinstance(v, list):
        return [strict_in(x) for x in v]
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v)
    return v


def cell_texts(a, quote: bool = False) -> list[str]:
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


@dataclass
class Job:
    """What turns chunks of rows into output text: the same in this process and in a worker process."""

    plan: Plan
    outputs: list[str]
    out_format: str  # "csv" or "jsonl"
    file: str  # the rows file, for messages
    skip: bool = False  # --skip-bad-rows
    exact: bool = True
    echo_names: list[str] | None = None  # CSV output: the input columns copied in front (None: not known yet)
    arrow: bool = False  # parse and write CSV with pyarrow (the same bytes, faster)

    def csv_block(self, first: int, text: str, names: list[str]) -> Block:
        """CSV lines (the first is line `first`) -> their output rows."""
        errors: list[RowsError] = []
        try:
            chunk = parse_csv(text, first, names, self.file, errors.append if self.skip else None, self.arrow)
        except RowsError as e:
            return Block("", 0, 0, 0, None, [e])
        if chunk is None:
            return Block("", len(errors), 0, 0, None, errors)
        b = self.block(chunk)
        return b._replace(rows=b.rows + len(errors), errors=errors + b.errors)

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
            from .arrow_io import csv_rows, float_texts

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
        given = {k: strict(v.tolist()) for k, v in chunk.columns.items()}
        results = {k: strict(v.tolist()) for k, v in cols.items()}
        lines = []
        for i in range(n):
            obj = {k: v[i] for k, v in given.items()}
            obj.update({k: v[i] for k, v in results.items()})
            lines.append(json.dumps(obj, allow_nan=False))
        lines.append("")
        return "\n".join(lines)

    def header(self, names: list[str]) -> str:
        """The CSV output's header line: the echoed input columns, the outputs, the gradients."""
        self.echo_names = list(names)
        return _csv_line(names + _result_names(self.plan, self.outputs))


def np_isfinite_all(a) -> bool:
    import numpy as np

    return bool(np.isfinite(a).all())


def _csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def run_rows(plan: Plan, rows, out: IO[str], out_format: str, outputs: list[str] | None = None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS, on_bad: Callable[[RowsError], None] | None = None,
             progress: Callable[[int], None] | None = None, exact: bool = True, jobs: int = 1,
             graph_text: str | bytes | None = None, graph_file: str = "", arrow: bool = False) -> Summary:
    """Evaluate every row of `rows` (CsvRows, JsonlRows or arrow_io.ParquetRows) and write one output row each
    to `out` (a text file; for out_format "parquet", an arrow_io.ParquetSink).

    With jobs > 1 (CSV rows only, and `graph_text`, the graph file's content, given), blocks of rows are
    parsed, evaluated and formatted by that many worker processes; the output is the same, byte for byte.
    `arrow`: CSV cells read and written by pyarrow (see arrow_io; the same output, byte for byte).
    """
    outputs = check_outputs(plan, outputs)
    job = Job(plan, outputs, out_format, rows.file, skip=on_bad is not None, exact=exact, arrow=arrow)
    summary = Summary()
    header_done = out_format != "csv"  # JSON Lines has none
    if not header_done and isinstance(rows, CsvRows):
        out.write(job.header(rows.names))
        header_done = True
    if isinstance(rows, CsvRows):
        if jobs > 1 and graph_text is not None:
            from .parallel import csv_blocks

            blocks = csv_blocks(job, rows, chunk_rows, jobs, graph_text, graph_file)
        else:
            blocks = (job.csv_block(first, text, rows.names) for first, text in rows.blocks(chunk_rows))
    else:
        errors: list[RowsError] = []

        def jsonl_blocks() -> Iterator[Block]:
            for chunk in rows.chunks(chunk_rows, errors.append if job.skip else None):
                b = job.block(chunk)
                yield b._replace(rows=b.rows + len(errors), errors=errors + b.errors)
                errors.clear()
            yield Block("", len(errors), 0, 0, None, list(errors))

        blocks = jsonl_blocks()
    try:
        for b in blocks:
            if b.errors and not job.skip:
                raise b.errors[0]
            for e in b.errors:
                on_bad(e)
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
    summary.notes.append(f"{summary.rows:,} rows read in chunks of up to {chunk_rows:,}"
                         + (f", by {jobs} worker processes" if jobs > 1 and isinstance(rows, CsvRows) else ""))
    if out_format == "csv" and not header_done:
        out.write(job.header(list(rows.names or [])))
    if out_format == "parquet":
        names = job.echo_names if job.echo_names is not None else list(rows.names or [])
        out.close(names + _result_names(plan, outputs))
    return summary


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
        raise RowsError(f"this row sets '{extra[0]}', which the first row did not: a CSV or Parquet output needs "
                        "the same columns in every row (write JSON Lines: -o OUT.jsonl)", file=file,
                        line=chunk.lines[0])
    return cols


def _echo_csv(plan: Plan, chunk: Chunk, names: list[str], n: int, file: str) -> list[str]:
    """The input cells of a CSV row written from JSON Lines or Parquet."""
    cols = [cell_texts(a, quote=True) for a in _echo_arrays(plan, chunk, names, n, file)]
    return [",".join(cells) for cells in zip(*cols)] if cols else [""] * n
