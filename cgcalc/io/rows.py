"""Rows files in: CSV (blocks of lines, parsed by numpy or Arrow; cell by cell when a block has a bad cell,
to name it) and JSON Lines (one object per line). Each yields Chunks of good rows with their line numbers."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

from ..errors import RowsError, suggest


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
                raise RowsError(
                    f"unknown column '{name}': not an input of the graph{suggest(name, inputs)}",
                    file=file,
                    line=self.line,
                    col=col,
                )
            col += len(name) + 1
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise RowsError(f"column '{dup}' appears twice", file=file, line=self.line)

    def blocks(self, size: int) -> Iterator[tuple[int, str]]:
        """The text after the header, `size` lines at a time: (line number of the block's first line, text)."""
        return _blocks(self, size)

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        for first, text in self.blocks(size):
            chunk = parse_csv(text, first, self.names, self.file, on_bad)
            if chunk is not None:
                yield chunk


def _blocks(rows, size: int) -> Iterator[tuple[int, str]]:
    """`size` lines of rows.f at a time, counted in rows.line: (line number of the first, their text)."""
    while True:
        raw = list(islice(rows.f, size))
        if not raw:
            return
        first = rows.line + 1
        rows.line += len(raw)
        yield first, "".join(raw)


_NEWLINE = re.compile(r"\r\n|\r|\n")


def parse_csv(
    text: str,
    first: int,
    names: list[str],
    file: str,
    on_bad: Callable[[RowsError], None] | None,
    fast: Callable | None = None,
) -> Chunk | None:
    """A block of CSV lines (the first is line `first` of `file`) -> a Chunk of its good rows, or None.
    A bad cell raises RowsError, or with `on_bad` is passed to it and its row left out. `arrow`: read
    `fast(text, names, n)`: another reader of the cells (arrow.csv_floats: pyarrow's), giving the same values or
    None for a block it cannot read, which then goes the usual way."""
    import numpy as np

    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = _NEWLINE.split(text) if "\r" in text else text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    numbers: range | list[int] = range(first, first + len(lines))
    columns = None
    if lines and all(lines) and "_" not in text:  # blank lines; numpy takes 1_000, cgcalc does not
        if fast is not None:
            columns = fast(text, names, len(lines))
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
        raise RowsError(
            f"row has {len(cells)} cell{'s' * (len(cells) != 1)}, the header has {len(names)}",
            file=file,
            line=line,
            col=1,
        )
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

    def blocks(self, size: int) -> Iterator[tuple[int, str]]:
        """`size` lines at a time, for worker processes: (line number of the block's first line, text)."""
        return _blocks(self, size)

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        for group in self.runs(size, on_bad):
            yield from group

    def runs(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[list[Chunk]]:
        """Up to `size` good rows at a time, as the groups they run in (alike rows: the same inputs and shapes);
        a bad row is passed to on_bad (or raised) before the groups of the rows read with it."""
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
                yield list(self._groups(pending, np))
                pending = []
        if pending:
            yield list(self._groups(pending, np))

    def _row(self, line: int, text: str) -> dict:
        try:
            # integers as floats (a huge one is inf, as in --set); a key twice is an error, not the last one
            obj = _DECODER.decode(text)
        except ValueError as e:
            col = getattr(e, "colno", None)
            raise RowsError(f"not a JSON object: {getattr(e, 'msg', e)}", file=self.file, line=line, col=col) from None
        except RecursionError:  # json's reader recurses once per [ or {
            raise RowsError("the row is nested too deep", file=self.file, line=line, col=1) from None
        if not isinstance(obj, dict):
            raise RowsError("a row must be a JSON object {input: value, ...}", file=self.file, line=line, col=1)
        row = {}
        for name, v in obj.items():
            if name not in self.inputs:
                raise RowsError(
                    f"unknown column '{name}': not an input of the graph{suggest(name, self.inputs)}",
                    file=self.file,
                    line=line,
                    col=text.find(f'"{name}"') + 1 or None,
                )
            try:
                row[name] = v if type(v) is float else self._value(v, name, line)  # a number: the usual cell
            except RowsError as e:
                e.col = text.find(f'"{name}"') + 1 or None
                raise
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
        except (ValueError, TypeError, RecursionError):
            raise bad("not a number or a rectangular list of numbers") from None
        if a.dtype != np.float64 or a.ndim == 0:
            raise bad("not a number or a rectangular list of numbers")
        return a

    def _groups(self, pending, np) -> Iterator[Chunk]:
        """Consecutive rows that set the same inputs with the same shapes run together."""

        def signature(row):
            return tuple((k, () if type(v) is float else v.shape) for k, v in row.items())

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
            self.notes.append(
                f"lines {pending[0][0]}-{pending[-1][0]}: rows set different inputs or shapes, so they "
                f"ran in {groups} groups (each group vectorized)"
            )


def _unique_pairs(items):
    d = dict(items)
    if len(d) != len(items):
        seen = set()
        dup = next(k for k, _ in items if k in seen or seen.add(k))
        raise ValueError(f"key '{dup}' appears twice")
    return d


_DECODER = json.JSONDecoder(parse_int=float, object_pairs_hook=_unique_pairs)  # one, not one per row


def strict_in(v: Any) -> Any:
    """JSON input values: the strings our own output writes for non-finite numbers become floats."""
    if isinstance(v, list):
        return [strict_in(x) for x in v]
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v)
    return v


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
        data = self.f.read(len(b))
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
