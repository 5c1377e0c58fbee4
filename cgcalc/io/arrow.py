"""The optional Arrow path (`pip install 'cgcalc[arrow]'`): pyarrow's C++ in place of Python's per-cell work.

- CSV cells are parsed by Arrow's reader; a block it cannot read exactly as cgcalc's own reader does (a
  blank line, an empty or bad cell, a NaN whose sign would be lost, a byte-order mark) returns None and goes
  the Python way, which names the bad cell. Arrow accepts a subset of what Python's float() accepts, to the same value (tested).
- Floats are written by Arrow, then patched to be `repr()`'s text exactly: Arrow's shortest round-trip digits
  are the same, but it writes `3` for `3.0` and picks exponent notation at other magnitudes; those few
  cells get `repr()` itself (tested against repr on random bit patterns). So the output is the same, byte
  for byte, with or without pyarrow.
- Parquet rows in and out.

Nothing here is imported unless pyarrow is installed and a batch runs; CGCALC_ARROW=0 turns it off.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..numbers import NONFINITE

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from ..errors import RowsError
    from .columns import Chunk, ColumnRules, Layout

INSTALL = "pip install 'cgcalc[arrow]'"


def why_not() -> str | None:
    """Why the Arrow path is not available (pyarrow not installed, or CGCALC_ARROW=0), or None when it is."""
    if os.environ.get("CGCALC_ARROW", "1").strip().lower() in ("0", "false", "no", "off"):
        return "turned off by CGCALC_ARROW=0"
    if importlib.util.find_spec("pyarrow") is None:
        return f"not installed: {INSTALL}"
    return None


# pa.array() and pa.scalar() import pandas, when it is installed, the first time they are called (0.2 s, and in
# every worker process); these build Arrow arrays from numpy's buffers instead.


def _floats(a):
    """A float64 Arrow array over a 1-D numpy array (no copy)."""
    import numpy as np
    import pyarrow as pa

    a = np.ascontiguousarray(a, dtype=np.float64)
    return pa.Array.from_buffers(pa.float64(), len(a), [None, pa.py_buffer(a)])


def _bools(mask):
    """A boolean Arrow array from a 1-D numpy bool array."""
    import numpy as np
    import pyarrow as pa

    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(np.packbits(mask, bitorder="little"))])


def _strings(texts: list):
    """A string Arrow array from a list of str (None: null), from the lengths and the bytes."""
    import numpy as np
    import pyarrow as pa

    nulls = None
    if None in texts:
        valid = np.fromiter((t is not None for t in texts), dtype=bool, count=len(texts))
        nulls = pa.py_buffer(np.packbits(valid, bitorder="little"))
        texts = [t or "" for t in texts]
    data = "".join(texts)
    if data.isascii():
        raw, lengths = data.encode(), map(len, texts)
    else:
        encoded = [t.encode() for t in texts]
        raw, lengths = b"".join(encoded), map(len, encoded)
    if len(raw) >= 1 << 31:
        return pa.array(texts, pa.large_string())
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(lengths, dtype=np.int32, count=len(texts)), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(texts), [nulls, pa.py_buffer(offsets), pa.py_buffer(raw)])


def csv_floats(text: str, names: list[str], n_lines: int, delimiter: str = ",") -> dict[str, Any] | None:
    """The columns of CSV lines (no header, `n_lines` of them, no blank line) as float64 arrays, or None when
    Arrow cannot read them exactly as cgcalc's Python reader would."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if "\ufeff" in text:  # Arrow skips a byte-order mark at the start of the block: a cell that float() refuses
        return None
    try:
        table = pcsv.read_csv(
            pa.py_buffer(text.encode()),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.float64() for n in names},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeError):
        return None
    if table.num_rows != n_lines:
        return None
    cols = {}
    for n in names:
        a = _numpy(table.column(n))
        if np.isnan(a).any():  # Arrow reads -nan as nan: the sign bit that float() keeps would be lost
            return None
        cols[n] = a
    return cols


def _numpy(col):
    """A float64 numpy array of an Arrow column without nulls, read from its buffer (to_numpy() imports
    pandas); other number types are converted by Arrow as float() would."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for c in getattr(col, "chunks", [col]):
        if c.type != pa.float64():
            c = pc.cast(c, pa.float64(), safe=False)
        if len(c):
            parts.append(np.frombuffer(c.buffers()[1], dtype=np.float64, count=len(c), offset=c.offset * 8))
    if not parts:
        return np.zeros(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _texts(*texts: str) -> list:
    """Arrow string scalars (a str passed to a compute function becomes one through pa.scalar: pandas)."""
    a = _strings(list(texts))
    return [a[i] for i in range(len(texts))]


def _numpy_bools(b):
    """A numpy bool array of an Arrow boolean array without nulls (bit-packed), read from its buffer."""
    import numpy as np

    bits = np.unpackbits(np.frombuffer(b.buffers()[1], dtype=np.uint8), bitorder="little")
    return bits[b.offset : b.offset + len(b)].astype(bool)


def float_texts(a: np.ndarray) -> Any:
    """repr() of each float of a 1-D float64 array (NaN and infinities as in JSON output), as an Arrow array."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    s = pc.cast(_floats(a), pa.string())
    mag = np.abs(a)
    with np.errstate(invalid="ignore"):
        # where repr() writes an exponent (or nan/inf): repr itself; Arrow's text is positional in between
        odd = ~((mag >= 1e-4) & (mag < 1e16)) & (a != 0)
    odd |= _numpy_bools(pc.match_substring(s, "e"))
    dot0, empty = _texts(".0", "")
    s = pc.if_else(pc.match_substring(s, "."), s, pc.binary_join_element_wise(s, dot0, empty))  # 3 -> 3.0
    at = np.flatnonzero(odd)
    if len(at):
        texts = [NONFINITE.get(t, t) for t in map(float.__repr__, a[at].tolist())]
        s = pc.replace_with_mask(s, _bools(odd), _strings(texts))
    return s


def csv_rows(cells: list, delimiter: str = ",") -> str:
    """CSV lines from columns of cell texts (Arrow string arrays or lists of str), joined by the delimiter."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = [c if isinstance(c, (pa.Array, pa.ChunkedArray)) else _strings(c) for c in cells]
    comma, newline, empty = _texts(delimiter, "\n", "")
    rows = pc.binary_join_element_wise(*cols, comma)
    rows = pc.binary_join_element_wise(rows, newline, empty)
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    if len(rows) == 0:
        return ""
    _, offsets, data = rows.buffers()
    off = np.frombuffer(offsets, dtype=np.int32)
    start, end = int(off[rows.offset]), int(off[rows.offset + len(rows)])
    return data.to_pybytes()[start:end].decode()


PARQUET_EXTS = (".parquet", ".parq", ".pq")
PARQUET_CHUNK_ROWS = 1 << 17  # rows per block (and row group) when Parquet is read or written: fewer, larger
# row groups read and write faster (16,384-row groups: 1.3x the time, 1.3x the size)


def check_parquet_schema(schema: pa.Schema, inputs: list[str], label: str, rules: ColumnRules | None = None) -> Layout:
    """The layout of a Parquet file's columns: the inputs (holding numbers), the kept ones (any type)."""
    import pyarrow as pa

    from ..errors import RowsError
    from .columns import plain_rules

    layout = (rules or plain_rules(inputs)).layout(list(schema.names), label)
    for name in layout.input_names:
        t = schema.field(name).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)):
            raise RowsError(f"column '{name}' holds {t}, not numbers", file=label)
    return layout


def parquet_columns(
    table: pa.Table | pa.RecordBatch, names: list[str], first_row: int, label: str, kept: Sequence[str] = ()
) -> tuple[np.ndarray, dict[str, np.ndarray], list[RowsError], dict[str, Any]]:
    """float64 columns of a Parquet table (integers converted as float() would); a null is a bad cell at its
    row (1-based in the file). Returns (row numbers, columns, errors, kept columns), only the good rows in the
    columns; each error has its row's values (as read)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..errors import RowsError
    from .columns import as_read

    n = table.num_rows
    lines = np.arange(first_row + 1, first_row + n + 1, dtype=np.int64)
    first_bad = np.full(n, -1)  # per row, the first column holding a null
    columns = {}
    for j, name in enumerate(names):
        col = table.column(name)
        if pa.types.is_null(col.type):
            col = col.cast(pa.float64())
        if col.null_count:
            first_bad[np.asarray(col.is_null()) & (first_bad < 0)] = j
            col = pc.fill_null(col, 0)
        columns[name] = _numpy(col)
    kept_cols = {k: _combined(table.column(k)) for k in kept}
    bad = np.flatnonzero(first_bad >= 0)
    errors = [
        as_read(
            RowsError(f"column '{names[first_bad[i]]}': empty cell (null)", file=label, line=int(lines[i])),
            row={k: table.column(k)[int(i)].as_py() for k in [*names, *kept]},
        )
        for i in bad
    ]
    if len(bad):
        good = first_bad < 0
        columns = {k: v[good] for k, v in columns.items()}
        kept_cols = {k: v.filter(_bools(good)) for k, v in kept_cols.items()}
        lines = lines[good]
    return lines, columns, errors, kept_cols


def _combined(col):
    """One Arrow array of a column (a table's column may come in chunks)."""
    return col.combine_chunks() if hasattr(col, "combine_chunks") else col


class ParquetRows:
    """A Parquet rows file, read a batch of rows at a time (the same interface as io.rows.CsvRows)."""

    def __init__(self, path: str, label: str, inputs: list[str], rules: ColumnRules | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..errors import RowsError

        self.file = label
        try:
            self.pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as e:
            raise RowsError(f"cannot read as Parquet: {e}", file=label) from None
        self.schema = self.pf.schema_arrow
        self.layout = check_parquet_schema(self.schema, inputs, label, rules)
        self.names = self.layout.input_names
        self.kept_names = self.layout.kept_names
        self.total = self.pf.metadata.num_rows

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        import pyarrow as pa

        from ..errors import RowsError
        from .columns import Chunk

        first = 0
        read = [*self.names, *self.kept_names]
        try:
            for batch in self.pf.iter_batches(batch_size=size, columns=read):
                lines, columns, errors, kept = parquet_columns(batch, self.names, first, self.file, self.kept_names)
                first += batch.num_rows
                for e in errors:
                    if on_bad is None:
                        raise e
                    on_bad(e)
                if len(lines):
                    yield Chunk(lines, columns, None, kept or None)
        except (OSError, pa.ArrowException) as e:
            raise RowsError(f"cannot read as Parquet: {e}", file=self.file) from None
