"""Rows in, rows out: chunked, vectorized, streaming. `cgcalc batch` is a loop over chunks of a rows
file; each chunk runs through `run_batch` once (one numpy call per node, not one per row)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

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
    lines: list[int]  # line number of each row in the rows file
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

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        import numpy as np

        while True:
            lines, texts = [], []
            for text in self.f:
                self.line += 1
                text = text.rstrip("\r\n")
                if text.strip():
                    lines.append(self.line)
                    texts.append(text)
                    if len(texts) >= size:
                        break
            if not texts:
                return
            try:
                data = np.loadtxt(texts, delimiter=",", dtype=np.float64, ndmin=2, comments=None, quotechar='"')
                if data.shape[1] != len(self.names):
                    raise ValueError
                if any("_" in t for t in texts):  # numpy takes 1_000; cgcalc does not (as in graph files)
                    raise ValueError
            except ValueError:
                lines, texts, data = self._slow(lines, texts, on_bad)
            if texts:
                yield Chunk(lines, {n: data[:, j] for j, n in enumerate(self.names)}, texts)

    def _slow(self, lines, texts, on_bad):
        """Cell by cell, to name the bad one (and skip its row with --skip-bad-rows)."""
        import numpy as np

        good_lines, good_texts, values = [], [], []
        for line, text in zip(lines, texts):
            try:
                values.append(self._row(line, text))
            except RowsError as e:
                if on_bad is None:
                    raise
                on_bad(e)
                continue
            good_lines.append(line)
            good_texts.append(text)
        data = np.array(values, dtype=np.float64).reshape(len(values), len(self.names))
        return good_lines, good_texts, data

    def _row(self, line: int, text: str) -> list[float]:
        cells = next(csv.reader([text]))
        if len(cells) != len(self.names):
            raise RowsError(f"row has {len(cells)} cell{'s' * (len(cells) != 1)}, the header has "
                            f"{len(self.names)}", file=self.file, line=line, col=1)
        out = []
        for name, cell, col in zip(self.names, cells, _cell_starts(text)):
            try:
                out.append(_cell(cell))
            except ValueError:
                why = f"bad number '{cell.strip()}'" if cell.strip() else "empty cell"
                raise RowsError(f"column '{name}': {why}", file=self.file, line=line,
                                col=col) from None
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


def run_rows(plan: Plan, rows, out: IO[str], out_format: str, outputs: list[str] | None = None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS, on_bad: Callable[[RowsError], None] | None = None,
             progress: Callable[[int], None] | None = None, exact: bool = True) -> Summary:
    """Evaluate every row of `rows` (CsvRows or JsonlRows) and write one output row each to `out`."""
    import numpy as np

    outputs = check_outputs(plan, outputs)
    summary = Summary()
    counted_bad = on_bad

    if on_bad is not None:
        def counted_bad(e: RowsError) -> None:
            summary.bad += 1
            summary.rows += 1
            on_bad(e)

    header_written = False
    echo_names: list[str] = []
    for chunk in rows.chunks(chunk_rows, counted_bad):
        try:
            res = run_batch(plan, chunk.columns, outputs, exact=exact, rows=len(chunk.lines))
        except CgcalcError as e:
            # rows whose arrays do not fit the graph (a group shares its shapes: all of them are bad)
            errors = [RowsError(e.message, file=rows.file, line=line) for line in chunk.lines]
            if counted_bad is None:
                raise errors[0] from None
            for err in errors:
                counted_bad(err)
            continue
        cols = res.columns()
        n = len(chunk.lines)
        summary.rows += n
        summary.written += n
        bad = np.zeros(n, dtype=bool)
        for a in cols.values():
            fin = np.isfinite(a)
            if not fin.all():
                bad |= ~fin.reshape(n, -1).all(axis=1)
        if bad.any():
            summary.nonfinite += int(bad.sum())
            if summary.first_nonfinite_line is None:
                summary.first_nonfinite_line = chunk.lines[int(np.argmax(bad))]
        if out_format == "csv":
            if not header_written:
                echo_names = list(rows.names or chunk.columns)
                w = csv.writer(out, lineterminator="\n")
                w.writerow(echo_names + list(cols))
                header_written = True
            parts = [cell_texts(a, quote=True) for a in cols.values()]
            if chunk.echo is not None:
                lead = chunk.echo
            else:
                lead = _echo_csv(plan, chunk, echo_names, n, rows.file)
            text_cols = ([lead] if echo_names else []) + parts
            # row by row, not one joined string: chunk-sized strings fragment the heap and memory creeps up
            out.writelines([",".join(cells) + "\n" for cells in zip(*text_cols)])
        else:
            given = {k: strict(v.tolist()) for k, v in chunk.columns.items()}
            results = {k: strict(v.tolist()) for k, v in cols.items()}
            lines = []
            for i in range(n):
                obj = {k: v[i] for k, v in given.items()}
                obj.update({k: v[i] for k, v in results.items()})
                lines.append(json.dumps(obj, allow_nan=False))
            out.write("\n".join(lines))
            out.write("\n")
        if progress is not None:
            progress(n)
    summary.notes.extend(getattr(rows, "notes", []))
    summary.notes.append(f"{summary.rows:,} rows read in chunks of up to {chunk_rows:,}")
    if out_format == "csv" and not header_written:
        names = list(rows.names or [])
        csv.writer(out, lineterminator="\n").writerow(names + _result_names(plan, outputs))
    return summary


def _result_names(plan: Plan, outputs: list[str]) -> list[str]:
    outs = list(dict.fromkeys(list(plan.outputs) + outputs))
    return outs + [f"d{o}/d{i.name}" for o in outputs for i in plan.inputs if i.grad]


def _echo_csv(plan: Plan, chunk: Chunk, names: list[str], n: int, file: str) -> list[str]:
    """The input cells of a CSV row written from JSON Lines: the value each input had in that row."""
    import numpy as np

    cols = []
    for name in names:
        if name in chunk.columns:
            a = chunk.columns[name]
        else:
            inp = plan.inputs[plan.index[name]]
            a = np.broadcast_to(np.asarray(inp.value, dtype=np.float64).reshape(inp.shape), (n, *inp.shape))
        cols.append(cell_texts(np.asarray(a), quote=True))
    extra = [k for k in chunk.columns if k not in names]
    if extra:
        raise RowsError(f"this row sets '{extra[0]}', which the first row did not: a CSV output needs the same "
                        "columns in every row (write JSON Lines: -o OUT.jsonl)", file=file, line=chunk.lines[0])
    return [",".join(cells) for cells in zip(*cols)] if cols else [""] * n


