"""A block's output rows, once evaluated: CSV or JSON Lines text, or the columns of a Parquet row group. Each row
is its row number (--row-number), its kept columns, its given inputs, then the results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import RowsError
from ..io.columns import MISSING, ROW_NUMBER, Chunk
from ..numbers import NONFINITE, strict
from .cells import cell_texts, float_cells, json_texts, kept_csv, kept_json, kept_value
from .options import Options

if TYPE_CHECKING:
    import numpy as np

    from ..core.compiler import Plan


class Job(Protocol):
    """What a block's text needs of its batch.job.Job."""

    plan: Plan
    file: str
    arrow: bool
    options: Options
    echo_names: list[str] | None
    kept_names: list[str] | None


_JSON = json.JSONEncoder(allow_nan=False)  # json.dumps(x, allow_nan=False), without a new encoder per row


def _ints(lines) -> list[int]:
    return lines.tolist() if hasattr(lines, "tolist") else list(lines)


def _kept_column(chunk: Chunk, name: str, n: int) -> Any:
    """A kept column of a chunk (all MISSING when none of its rows has it)."""
    kept = chunk.kept or {}
    return kept[name] if name in kept else [MISSING] * n


def _lead_cells(job: Job, chunk: Chunk, n: int, arrow: bool) -> list:
    """The CSV cells before the results, as columns of cell texts: the row number, the kept columns, the inputs
    (a CSV row's own cells are one column: its text as read)."""
    d = job.options.delimiter
    cells: list = [list(map(str, _ints(chunk.lines)))] if job.options.row_number else []
    _same_kept(job, chunk)
    if chunk.echo is not None:
        return cells + ([chunk.echo] if job.echo_names or job.kept_names else [])
    cells += [kept_csv(_kept_column(chunk, k, n), d) for k in job.kept_names or ()]
    if arrow:
        from ..io.arrow import float_texts

        return cells + [
            float_texts(a) if a.ndim == 1 else cell_texts(a, quote=True) for a in echo_arrays(job, chunk, n)
        ]
    return cells + [cell_texts(a, quote=True) for a in echo_arrays(job, chunk, n)]


def _same_kept(job: Job, chunk: Chunk) -> None:
    """A CSV or Parquet output has the columns of its first row: a later JSON Lines row with another kept key
    is an error (as one with another input is), not a key silently dropped."""
    extra = [k for k in chunk.kept or () if k not in (job.kept_names or ())]
    if extra:
        at = next(i for i, v in enumerate(chunk.kept[extra[0]]) if v is not MISSING)
        raise RowsError(
            f"this row has '{extra[0]}', which the first row did not: a CSV or Parquet output needs the same "
            "columns in every row (write JSON Lines: -o OUT.jsonl, or name the columns: --keep COL,...)",
            file=job.file,
            line=int(chunk.lines[at]),
        )


def csv_text(job: Job, chunk: Chunk, cols: dict, n: int) -> str:
    """The block's rows as CSV lines."""
    import numpy as np

    opts = job.options
    fmt, d = opts.float_format, opts.delimiter
    if job.arrow and fmt is None:
        from ..io.arrow import csv_rows, float_texts

        def texts(a):
            return float_texts(a) if a.ndim == 1 else cell_texts(a, quote=True)

        return csv_rows(_lead_cells(job, chunk, n, True) + [texts(a) for a in cols.values()], d)
    lead = _lead_cells(job, chunk, n, False)
    # one %-template per row: repr() (or --float-format) of the floats straight into the line, no list of cells
    specs, parts = ["%s"] * len(lead), lead
    for a in cols.values():
        if a.ndim == 1 and bool(np.isfinite(a).all()):
            specs.append("%r" if fmt is None else fmt)
            parts.append(a.tolist())
        else:
            specs.append("%s")
            parts.append(cell_texts(a, quote=True, fmt=fmt))
    template = d.replace("%", "%%").join(specs) + "\n"
    return "".join([template % row for row in zip(*parts)])


def jsonl_text(job: Job, chunk: Chunk, cols: dict, n: int) -> str:
    """The block's rows as JSON Lines: one object per row (the row's own inputs, then the results)."""
    opts = job.options
    columns = {**chunk.columns, **cols}  # the row's inputs, then the results (names never clash)
    if chunk.kept or opts.row_number or opts.float_format:
        return _jsonl_keyed(job, chunk, cols, n)
    import numpy as np

    if all(a.ndim == 1 for a in columns.values()) and all(bool(np.isfinite(a).all()) for a in columns.values()):
        # numbers only: one %-template per row; json writes a float as repr() does, so the text is
        # json.dumps's, byte for byte (tested)
        keys = ", ".join(json.dumps(k).replace("%", "%%") + ": %r" for k in columns)
        template = "{" + keys + "}\n"
        return "".join([template % row for row in zip(*[a.tolist() for a in columns.values()])])
    values = [strict(a.tolist()) for a in columns.values()]
    encode = _JSON.encode
    return "".join([encode(dict(zip(columns, row))) + "\n" for row in zip(*values)])


def _json_cells(a: np.ndarray, fmt: str | None) -> list[str]:
    """Each row's value as JSON text (a non-finite number as a JSON string)."""
    if a.ndim != 1:
        return json_texts(a, fmt)
    texts = float_cells(a, fmt)
    quoted = set(NONFINITE.values())
    return [f'"{t}"' if t in quoted else t for t in texts]


def _jsonl_keyed(job: Job, chunk: Chunk, cols: dict, n: int) -> str:
    """JSON Lines with a row number, kept keys or formatted floats: each row's "key": value texts, joined."""
    fmt = job.options.float_format
    fields: list[list[str | None]] = []
    if job.options.row_number:
        fields.append([f'"{ROW_NUMBER}": {x}' for x in _ints(chunk.lines)])
    for k, values in (chunk.kept or {}).items():
        key = json.dumps(k) + ": "
        fields.append([None if t is None else key + t for t in kept_json(values)])
    for k, a in chunk.columns.items():
        key = json.dumps(k) + ": "
        fields.append([key + t for t in _json_cells(a, None)])  # the given inputs as they were
    for k, a in cols.items():
        key = json.dumps(k) + ": "
        fields.append([key + t for t in _json_cells(a, fmt)])
    rows = zip(*fields)
    if any(t is None for f in fields for t in f):
        return "".join(["{" + ", ".join([t for t in row if t is not None]) + "}\n" for row in rows])
    return "".join(["{" + ", ".join(row) + "}\n" for row in rows])


def parquet_data(job: Job, chunk: Chunk, cols: dict, n: int) -> dict:
    """The block's rows as the columns of a Parquet row group."""
    import numpy as np

    _same_kept(job, chunk)
    data: dict[str, Any] = {}
    if job.options.row_number:
        data[ROW_NUMBER] = np.asarray(_ints(chunk.lines), dtype=np.int64)
    for k in job.kept_names or ():
        v = _kept_column(chunk, k, n)
        data[k] = [None if x is MISSING or x is None else kept_value(x) for x in v] if isinstance(v, list) else v
    data.update(zip(job.echo_names or [], echo_arrays(job, chunk, n)))
    return data | cols


def echo_arrays(job: Job, chunk: Chunk, n: int) -> list[np.ndarray]:
    """The given input columns of rows from JSON Lines or Parquet, in the first row's order: the value each
    input had in that row (--set's, or the file's, where the row left it out)."""
    import numpy as np

    plan, names = job.plan, job.echo_names or []
    cols = []
    for name in names:
        if name in chunk.columns:
            a = chunk.columns[name]
        elif name in job.options.sets:
            v = job.options.sets[name]
            a = np.broadcast_to(v, (n, *np.shape(v)))
        else:
            inp = plan.inputs[plan.index[name]]
            a = np.broadcast_to(np.asarray(inp.value, dtype=np.float64).reshape(inp.shape), (n, *inp.shape))
        cols.append(np.asarray(a, dtype=np.float64))
    extra = [k for k in chunk.columns if k not in names]
    if extra:
        raise RowsError(
            f"this row sets '{extra[0]}', which the first row did not: a CSV or Parquet output needs "
            "the same columns in every row (write JSON Lines: -o OUT.jsonl)",
            file=job.file,
            line=chunk.lines[0],
        )
    return cols
