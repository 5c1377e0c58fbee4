"""Rows files in: CSV (blocks of lines, parsed by numpy or Arrow; a block with a bad cell is cut into smaller
pieces until the bad rows are found and named, so that a few bad rows cost about what good rows cost) and, in
io/jsonl.py, JSON Lines. Each yields Chunks of good rows with their line numbers."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from ..errors import RowsError
from .columns import Chunk, ColumnRules, Layout, as_read, line_blocks, plain_rules
from .jsonl import JsonlRows, strict_in  # noqa: F401 - the rows readers, from one module

SPLIT = 16  # a block with a bad cell is read again in this many pieces, each piece that has one too likewise...
SLOW_LINES = 64  # ...down to this many lines, read cell by cell (which names the bad cell)


def _cell(text: str) -> float:
    t = text.strip()
    if not t or "_" in t or not t.isascii():  # as numpy's reader: no 1_000, no non-ASCII digits
        raise ValueError(t)
    return float(t)


def _cell_starts(text: str, delimiter: str = ",") -> list[int]:
    """1-based column where each CSV cell of a line starts (delimiters inside quotes do not count)."""
    starts, quoted = [1], False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            starts.append(i + 2)
    return starts


@dataclass(frozen=True)
class CsvSpec:
    """How the lines of a CSV rows file are read: its columns, its delimiter, and which columns are inputs."""

    names: tuple[str, ...]
    delimiter: str = ","
    layout: Layout | None = None  # None: every column is an input

    @property
    def input_names(self) -> list[str]:
        return list(self.names) if self.layout is None else self.layout.input_names


class CsvRows:
    """A CSV rows file: a header of column names (the graph's inputs, and kept or ignored ones), then rows."""

    def __init__(
        self, f: IO[str], file: str, inputs: list[str], rules: ColumnRules | None = None, delimiter: str = ","
    ) -> None:
        self.f, self.file = f, file
        self.line = 0
        header = ""
        while not header.strip():
            header = f.readline()
            self.line += 1
            if not header:
                raise RowsError("the rows file is empty (expected a header of input names)", file=file)
        self.header = header.rstrip("\r\n")  # as read, for --bad-rows
        self.names = [c.strip() for c in next(csv.reader([self.header], delimiter=delimiter))]
        try:
            layout = (rules or plain_rules(inputs)).layout(self.names, file, self.line, _cell_starts(header, delimiter))
        except RowsError as e:
            other = [d for d in ",;\t|" if d != delimiter and d in self.header]
            if len(self.names) == 1 and other:
                shown = "tab" if other[0] == "\t" else other[0]
                e.message = (
                    f"the header is one column, '{self.names[0]}': are its cells separated by '{shown}'? "
                    f"(give --delimiter '{shown}')"
                )
            raise
        self.spec = CsvSpec(tuple(self.names), delimiter, None if layout.plain else layout)
        self.layout = layout

    def blocks(self, size: int) -> Iterator[tuple[int, str]]:
        """The text after the header, `size` lines at a time: (line number of the block's first line, text)."""
        return line_blocks(self, size)

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        for first, text in self.blocks(size):
            chunk = parse_csv(text, first, self.spec, self.file, on_bad)
            if chunk is not None:
                yield chunk


_NEWLINE = re.compile(r"\r\n|\r|\n")
_Part = tuple  # (line numbers, lines, input columns, kept columns or None, echo texts)


def parse_csv(
    text: str,
    first: int,
    spec: CsvSpec,
    file: str,
    on_bad: Callable[[RowsError], None] | None,
    fast: Callable | None = None,
) -> Chunk | None:
    """A block of CSV lines (the first is line `first` of `file`) -> a Chunk of its good rows, or None.
    A bad cell raises RowsError, or with `on_bad` is passed to it and its row left out. `fast(text, names, n,
    delimiter)`: another reader of the cells (arrow.csv_floats: pyarrow's), giving the same values or None for
    lines it cannot read, which then go the usual way."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = _NEWLINE.split(text) if "\r" in text else text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    parts = _parse(range(first, first + len(lines)), lines, spec, file, on_bad, fast, text)
    parts = [p for p in parts if len(p[1])]
    if not parts:
        return None
    if len(parts) == 1:
        numbers, lines, columns, kept, echo = parts[0]
        return Chunk(numbers, columns, echo, kept, lines)
    return _joined(parts)


def _parse(numbers, lines: list[str], spec: CsvSpec, file, on_bad, fast, text: str | None = None) -> list[_Part]:
    """The good rows of these lines, as parts in line order: read whole when they can be (by `fast`, if given),
    else in SPLIT pieces (each read whole by numpy if it can be), down to SLOW_LINES lines read cell by cell."""
    if lines and all(lines):  # a blank line is never read whole: numpy and Arrow would skip it silently
        got = _whole(lines, spec, fast, text)
        if got is not None:
            return [(numbers, lines, *got)]
    if len(lines) <= SLOW_LINES:
        return [_slow(numbers, lines, spec, file, on_bad)]
    step = -(-len(lines) // SPLIT)
    parts = []
    for i in range(0, len(lines), step):
        # the pieces by numpy: the same values as Arrow's (see io/arrow.py), and 0.03 ms a call, not 0.5
        parts += _parse(numbers[i : i + step], lines[i : i + step], spec, file, on_bad, None)
    return parts


def _whole(lines: list[str], spec: CsvSpec, fast, text: str | None) -> tuple | None:
    """(input columns, kept columns, echo) of lines that are all good, read at once; None when one is not."""
    import numpy as np

    if spec.layout is not None:
        return _whole_cells(lines, spec)
    if text is None or "\r" in text:
        text = "\n".join(lines)
    if "_" in text:  # numpy takes 1_000, cgcalc does not
        return None
    names = list(spec.names)
    if fast is not None:
        columns = fast(text, names, len(lines), spec.delimiter)
        return None if columns is None else (columns, None, lines)
    try:
        data = np.loadtxt(lines, delimiter=spec.delimiter, dtype=np.float64, ndmin=2, comments=None, quotechar='"')
    except ValueError:
        return None
    if data.shape != (len(lines), len(names)):
        return None
    return {n: data[:, j] for j, n in enumerate(names)}, None, lines


def _whole_cells(lines: list[str], spec: CsvSpec) -> tuple | None:
    """Lines with kept (or ignored) columns: split into cells by the csv module, the inputs' cells read as
    numbers by float()'s rules (as _cell reads them)."""
    import numpy as np

    layout = spec.layout
    rows = list(csv.reader(lines, delimiter=spec.delimiter))
    n = len(spec.names)
    if len(rows) != len(lines) or any(len(r) != n for r in rows):  # (a quote left open joins two lines)
        return None
    columns = {}
    for j in layout.inputs:
        cells = [r[j] for r in rows]
        joined = "".join(cells)
        if "_" in joined or not joined.isascii():
            return None
        try:
            columns[spec.names[j]] = np.array(cells, dtype=np.float64)
        except ValueError:
            return None
    kept = {spec.names[j]: [r[j] for r in rows] for j in layout.kept}
    return columns, kept or None, lines if layout.in_order else _echo(rows, layout, spec.delimiter)


def _echo(rows: list[list[str]], layout: Layout, delimiter: str) -> list[str]:
    """Each row's kept cells, then its input cells, as CSV text (the lead of its output line)."""
    order = layout.kept + layout.inputs
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows([[r[j] for j in order] for r in rows])
    return buf.getvalue().split("\n")[:-1]


def _slow(numbers, texts, spec: CsvSpec, file, on_bad) -> _Part:
    """Cell by cell, to name the bad one (and skip its row with --skip-bad-rows)."""
    import numpy as np

    good_lines, good_texts, values, kept_rows = [], [], [], []
    for line, text in zip(numbers, texts):
        if not text.strip():
            continue
        try:
            row, kept = _row(line, text, spec, file)
        except RowsError as e:
            if on_bad is None:
                raise
            on_bad(as_read(e, text))
            continue
        good_lines.append(line)
        good_texts.append(text)
        values.append(row)
        kept_rows.append(kept)
    inputs = spec.input_names
    data = np.array(values, dtype=np.float64).reshape(len(values), len(inputs))
    columns = {n: data[:, j] for j, n in enumerate(inputs)}
    layout = spec.layout
    if layout is None:
        return good_lines, good_texts, columns, None, good_texts
    kept_cols = {spec.names[j]: [k[i] for k in kept_rows] for i, j in enumerate(layout.kept)}
    echo = good_texts
    if not layout.in_order:
        echo = _echo(list(csv.reader(good_texts, delimiter=spec.delimiter)), layout, spec.delimiter)
    return good_lines, good_texts, columns, kept_cols or None, echo


def _row(line: int, text: str, spec: CsvSpec | list[str], file: str) -> tuple[list[float], list[str]]:
    """One line's input values (in file order) and kept cells (in output order), or a RowsError naming the cell."""
    if not isinstance(spec, CsvSpec):
        spec = CsvSpec(tuple(spec))
    cells = next(csv.reader([text], delimiter=spec.delimiter))
    names = spec.names
    if len(cells) != len(names):
        raise RowsError(
            f"row has {len(cells)} cell{'s' * (len(cells) != 1)}, the header has {len(names)}",
            file=file,
            line=line,
            col=1,
        )
    layout = spec.layout
    wanted = range(len(names)) if layout is None else layout.inputs
    starts = None
    out = []
    for j in wanted:
        try:
            out.append(_cell(cells[j]))
        except ValueError:
            starts = starts or _cell_starts(text, spec.delimiter)
            cell = cells[j].strip()
            why = f"bad number '{cell}'" if cell else "empty cell"
            raise RowsError(f"column '{names[j]}': {why}", file=file, line=line, col=starts[j]) from None
    return out, [] if layout is None else [cells[j] for j in layout.kept]


def _joined(parts: list[_Part]) -> Chunk:
    """Parts of one block (in line order) as one Chunk."""
    import numpy as np

    numbers = [x for p in parts for x in p[0]]
    lines = [x for p in parts for x in p[1]]
    columns = {n: np.concatenate([p[2][n] for p in parts]) for n in parts[0][2]}
    kept = None
    if parts[0][3] is not None:
        kept = {n: [x for p in parts for x in p[3][n]] for n in parts[0][3]}
    echo = [x for p in parts for x in p[4]]
    return Chunk(numbers, columns, echo, kept, lines)


def sniff(text: io.TextIOWrapper) -> str | None:
    """'jsonl' when a rows file (stdin, say) starts with '{', 'csv' when it starts otherwise, None when it is
    empty; read without consuming anything."""
    try:
        head = text.buffer.peek(1 << 16)
    except (AttributeError, OSError, ValueError):
        return None
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return None if not head else "jsonl" if head.startswith(b"{") else "csv"


def rows_text(f: IO[bytes], file: str, limit: int | None = None) -> io.TextIOWrapper:
    """A rows file's text (UTF-8, a byte-order mark dropped, line ends kept as they are), read through a LineLimit
    of `limit` bytes (default: CGCALC_MAX_FILE_BYTES); the LineLimit is `.buffer.raw`."""
    if limit is None:
        from ..core.spec import Limits

        limit = Limits.from_env().max_file_bytes
    return io.TextIOWrapper(io.BufferedReader(LineLimit(f, file, limit), 1 << 20), encoding="utf-8-sig", newline="")


class LineLimit(io.RawIOBase):
    """A binary rows file read through this refuses a line longer than `limit` bytes as soon as that much of it is
    read (a rows file with one endless line, /dev/zero, a FIFO that never ends a line), before it is all in
    memory; and counts the bytes read, for a progress bar."""

    def __init__(self, f: IO[bytes], file: str, limit: int) -> None:
        self.f, self.file, self.limit = f, file, limit
        self.bytes_read = 0
        self.lines = 0  # line ends read so far
        self.run = 0  # bytes read since the last line end
        try:
            self.total = os.fstat(f.fileno()).st_size or None
        except (OSError, ValueError, io.UnsupportedOperation):
            self.total = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:
        # read1: what is there (a pipe's reader must not wait for a whole buffer's worth: rows stream in too)
        data = self._read_some(len(b))
        n = len(data)
        b[:n] = data
        self.bytes_read += n
        if self.run + n > self.limit:
            self._check_lines(data)  # a line may be too long: look at each
        else:
            last = max(data.rfind(b"\n"), data.rfind(b"\r"))
            self.lines += data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
            self.run = self.run + n if last < 0 else n - last - 1
        return n

    def _read_some(self, n: int) -> bytes:
        read1 = getattr(self.f, "read1", None)
        return read1(n) if read1 is not None else self.f.read(n)

    def _check_lines(self, data: bytes) -> None:
        start = 0
        for m in _LINE_END.finditer(data):
            if self.run + m.start() - start > self.limit:
                break
            self.lines += 1
            self.run, start = 0, m.end()
        else:
            self.run += len(data) - start
            if self.run <= self.limit:
                return
        raise RowsError(
            f"the line is over the limit of {self.limit:,} bytes (a row is read whole; raise the limit "
            "with CGCALC_MAX_FILE_BYTES)",
            file=self.file,
            line=self.lines + 1,
        )


_LINE_END = re.compile(rb"\r\n|\r|\n")
