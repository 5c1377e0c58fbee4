"""The client side of `cgcalc batch --engine dask` (dask_client.py) before any task runs: the rows files found (a
glob, a directory), every file's header or footer checked, the partitions cut (a file, or a run of a large Parquet
file's row groups), and the output directory checked.

Like dask_client.py this module opens files; it imports pyarrow only for Parquet datasets.
"""

from __future__ import annotations

import glob
import os
import re

from ..errors import RowsError, UsageError
from ..io.arrow import check_parquet_schema
from ..io.columns import ColumnRules, Layout
from ..io.rows import CsvRows, rows_text
from .dask_worker import Part, Reading, _same_columns

FORMATS = {"parquet": (".parquet", ".parq", ".pq"), "csv": (".csv",)}
PARQUET_PART_ROWS = 1 << 20  # a large Parquet file is split into runs of row groups of about this many rows


def _natural(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def files(rows: str, rows_format: str | None) -> tuple[list[tuple[str, str]], str]:
    """(absolute path, label) of every rows file, in natural order (part.2 before part.10), and the format."""
    if rows_format is not None and rows_format not in FORMATS:
        raise UsageError(f"--rows-format {rows_format}: the dask engine reads parquet or csv")
    exts = FORMATS[rows_format] if rows_format else FORMATS["parquet"] + FORMATS["csv"]
    if os.path.isdir(rows):
        found = []
        for root, dirs, names in os.walk(rows):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))  # _temporary, .ipynb_checkpoints
            found += [os.path.join(root, n) for n in names if not n.startswith((".", "_")) and n.lower().endswith(exts)]
        if not found:
            raise UsageError(f"{rows}: no {' or '.join(exts)} files in this directory")
    elif any(c in rows for c in "*?["):
        found = [p for p in glob.glob(rows, recursive=True) if os.path.isfile(p)]
        if not found:
            raise UsageError(f"no files match '{rows}'")
    elif os.path.isfile(rows):
        found = [rows]
    else:
        raise UsageError(f"{rows}: no such file or directory")
    found.sort(key=_natural)
    fmt = rows_format
    if fmt is None:
        kinds = {p: next((k for k, e in FORMATS.items() if p.lower().endswith(e)), None) for p in found}
        odd = next((p for p, k in kinds.items() if k is None), None)
        if odd is not None:
            raise UsageError(f"{odd}: neither .parquet nor .csv (give --rows-format)")
        if len(set(kinds.values())) > 1:
            raise UsageError(f"{rows}: both Parquet and CSV files match (give --rows-format, or a narrower glob)")
        fmt = kinds[found[0]]
    return [(os.path.abspath(p), p) for p in found], fmt


def check_out(out: str) -> str:
    """OUT's absolute path, refusing one that holds anything: a run never writes over earlier results."""
    path = os.path.abspath(out)
    if os.path.isdir(path):
        if os.listdir(path):
            raise UsageError(f"{out}: the directory exists and is not empty (remove it, or choose another -o)")
    elif os.path.lexists(path):
        raise UsageError(f"{out}: exists and is not a directory (the dask engine writes a directory of parts)")
    elif not os.path.isdir(os.path.dirname(path)):
        raise UsageError(f"{out}: the directory {os.path.dirname(out) or '.'} does not exist")
    return path


def first_layout(
    first: tuple[str, str], fmt: str, inputs: list[str], rules: ColumnRules, delimiter: str
) -> tuple[Layout, str, dict]:
    """The first file's columns (every other file must have the same), its header as read (CSV), and the Arrow
    types of its input and kept columns (Parquet)."""
    path, label = first
    if fmt == "csv":
        header = _csv_header(path, label, inputs, rules, delimiter)
        return header.layout, header.header, {}
    schema = _parquet_file(path, label).schema_arrow
    layout = check_parquet_schema(schema, inputs, label, rules)
    return layout, "", {k: schema.field(k).type for k in [*layout.input_names, *layout.kept_names]}


def _csv_header(
    path: str, label: str, inputs: list[str], rules: ColumnRules | None = None, delimiter: str = ","
) -> CsvRows:
    try:
        with open(path, "rb") as raw, rows_text(raw, label) as f:
            return CsvRows(f, label, inputs, rules, delimiter)
    except UnicodeDecodeError:
        raise RowsError("not UTF-8 text", file=label) from None
    except OSError as e:
        raise RowsError(f"cannot read the file: {e.strerror or e}", file=label) from None


def _parquet_file(path: str, label: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise RowsError(f"cannot read as Parquet: {e}", file=label) from None


def csv_parts(
    files: list[tuple[str, str]], inputs: list[str], reading: Reading | None = None
) -> tuple[list[str], list[Part]]:
    """The first file's header is the dataset's columns; every file's header is checked here, before a task runs.
    Returns the input columns and the partitions (a file each)."""
    reading = reading or Reading()
    first: list[str] | None = None
    names: list[str] = []
    for path, label in files:
        header = _csv_header(path, label, inputs, reading.rules, reading.delimiter)
        if first is None:
            first, names = header.names, header.layout.input_names
        _same_columns(header.names, first, files[0][1], label, header.line)
    return names, [Part(path, label) for path, label in files]


def parquet_parts(
    files: list[tuple[str, str]], inputs: list[str], reading: Reading | None = None
) -> tuple[list[str], list[Part]]:
    """Reads every file's footer: the columns and their types are checked here; a large file becomes runs
    of row groups (a partition never splits a row group). Returns the input columns and the partitions."""
    reading = reading or Reading()
    first: list[str] | None = None
    names: list[str] = []
    parts = []
    for path, label in files:
        pf = _parquet_file(path, label)
        schema = pf.schema_arrow
        layout = check_parquet_schema(schema, inputs, label, reading.rules)
        if first is None:
            first, names = list(schema.names), layout.input_names
        _same_columns(list(schema.names), first, files[0][1], label, None)
        parts += _row_group_runs(pf, path, label)
    return names, parts


def _row_group_runs(pf, path: str, label: str) -> list[Part]:
    """A file's partitions: the whole file, or runs of its row groups of about PARQUET_PART_ROWS rows."""
    md = pf.metadata
    if md.num_row_groups <= 1 or md.num_rows <= PARQUET_PART_ROWS:
        return [Part(path, label)]
    parts = []
    run: list[int] = []
    first = rows = 0
    for i in range(md.num_row_groups):
        run.append(i)
        rows += md.row_group(i).num_rows
        if rows - first >= PARQUET_PART_ROWS or i == md.num_row_groups - 1:
            parts.append(Part(path, label, tuple(run), first))
            run, first = [], rows
    return parts
