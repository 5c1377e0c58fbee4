"""The worker side of `cgcalc batch --engine dask` (dask_client.py): read one partition, evaluate it, write it.

Each worker process compiles the graph once, from its text (`_graph`). Like dask_client.py, this module opens
files (where the workers run them), and imports dask, pandas or pyarrow only when a partition is handled.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ..api import Graph, is_json, loads
from ..core.spec import Limits
from ..core.vectorized import run_batch
from ..errors import RowsError
from ..io.arrow import parquet_columns
from ..io.atomic import replacing
from ..io.columns import ROW_NUMBER, ColumnRules
from ..io.rows import CsvRows, rows_text
from .cells import csv_line
from .options import Options

if TYPE_CHECKING:
    import pandas as pd

CSV_CHUNK_ROWS = 65536
BAD = "__cgcalc_bad__"  # with skip_bad_rows: the RowsError of a bad row (None for a good one)


@dataclass(frozen=True)
class Reading:
    """How every partition's rows are read, besides their inputs (`--keep`, `--ignore-outputs`, `--delimiter`)."""

    rules: ColumnRules | None = None
    delimiter: str = ","
    columns: tuple[str, ...] | None = None  # the first file's columns, all of them (None: the inputs only)
    kept: tuple[str, ...] = ()  # the kept columns, in output order


@dataclass(frozen=True)
class Writing:
    """How every part file is written, besides its floats' columns (`--row-number`, `--float-format`, ...)."""

    float_format: str | None = None
    delimiter: str = ","
    row_number: bool = False
    kept_types: dict[str, Any] = field(default_factory=dict)  # kept column -> its Arrow type (Parquet rows)


class Part(NamedTuple):
    """One partition: a whole file, or a run of a Parquet file's row groups."""

    path: str  # absolute, for the workers
    label: str  # as the user named it, for messages
    row_groups: tuple[int, ...] | None = None
    first_row: int = 0  # rows of the file before this run


def _same_columns(names: list[str], first: list[str], first_label: str, file: str, line: int | None) -> None:
    if set(names) != set(first):
        missing = [n for n in first if n not in names]
        what = f"no column '{missing[0]}'" if missing else f"column '{next(n for n in names if n not in first)}'"
        raise RowsError(
            f"{what}, unlike {first_label}: every file of a dataset needs the same columns", file=file, line=line
        )


# -- the worker side: read, evaluate, write one partition ---------------------------------------------------

_GRAPHS: dict[str, Graph] = {}
_COMPILED: dict[str, int] = {}  # key -> times compiled in this process (the tests check it stays 1)
_LOCK = threading.Lock()


def graph_key(text: str | bytes, file: str) -> str:
    """What a worker's compiled graph is cached by: the text, and the file name its messages show."""
    data = text if isinstance(text, bytes) else text.encode()
    return hashlib.sha256(file.encode() + b"\0" + data).hexdigest()


def _graph(key: str, text: str | bytes, file: str, limits: Limits) -> Graph:
    """The compiled graph, once per worker process (a worker runs many partitions, maybe on several threads)."""
    with _LOCK:
        g = _GRAPHS.get(key)
        if g is None:
            if len(_GRAPHS) >= 8:  # a long-lived worker sees many graphs: keep the 8 compiled last
                del _GRAPHS[next(iter(_GRAPHS))]
            g = _GRAPHS[key] = loads(text, file=file, limits=limits, json=is_json(text, file))
            _COMPILED[key] = _COMPILED.get(key, 0) + 1
        return g


def _frame(
    names: list[str], columns: dict, lines, errors: list[RowsError] | None, kept: dict | None = None
) -> pd.DataFrame:
    """Good rows indexed by line (the kept columns, as Python values, then the inputs); with skip_bad_rows, then
    the bad rows (NaN cells, None kept, their error in BAD)."""
    import numpy as np
    import pandas as pd

    kept = kept or {}
    index = pd.Index(lines, dtype="int64")
    data = {k: pd.Series(v, index=index, dtype=object) for k, v in kept.items()}
    # copy=False: a block per column, no 2-D copy (the columns are fresh arrays, nobody else holds them)
    df = pd.DataFrame(data | {n: columns[n] for n in names}, index=index, copy=False)
    if errors is None:
        return df
    df[BAD] = None
    if errors:
        at = pd.Index([e.line or 0 for e in errors], dtype="int64")
        bad = pd.DataFrame({k: pd.Series([None] * len(errors), index=at, dtype=object) for k in kept}, index=at)
        for n in names:
            bad[n] = np.full(len(errors), np.nan)
        bad[BAD] = pd.Series(errors, index=at, dtype=object)
        df = pd.concat([df, bad])
    return df


def _read_csv(
    part: Part, names: list[str], inputs: list[str], skip: bool, reading: Reading | None = None
) -> pd.DataFrame:
    """One CSV file, parsed by `io.rows.CsvRows` as local `cgcalc batch` does: same cells accepted, same lines."""
    import numpy as np

    reading = reading or Reading()
    errors: list[RowsError] | None = [] if skip else None
    lines: list = []
    cols: dict[str, list] = {n: [] for n in names}
    kept: dict[str, list] = {k: [] for k in reading.kept}
    try:
        with open(part.path, "rb") as raw, rows_text(raw, part.label) as f:
            reader = CsvRows(f, part.label, inputs, reading.rules, reading.delimiter)
            _same_columns(reader.names, list(reading.columns or names), "the first file", part.label, reader.line)
            for chunk in reader.chunks(CSV_CHUNK_ROWS, None if errors is None else errors.append):
                lines.append(chunk.lines)
                for n in names:
                    cols[n].append(chunk.columns[n])
                for k in kept:
                    kept[k] += chunk.kept[k]
    except UnicodeDecodeError:
        raise RowsError("not UTF-8 text", file=part.label) from None
    except OSError as e:
        raise RowsError(f"cannot read the file: {e.strerror or e}", file=part.label) from None
    if errors and reader.names != list(reading.columns or names):
        _in_first_order(errors, reader.names, list(reading.columns or names), reading.delimiter)
    columns = {n: np.concatenate(c) if c else np.zeros(0) for n, c in cols.items()}
    line_numbers = np.concatenate([np.asarray(x, dtype=np.int64) for x in lines]) if lines else np.zeros(0, np.int64)
    return _frame(names, columns, line_numbers, errors, kept)


def _in_first_order(errors: list[RowsError], names: list[str], first: list[str], delimiter: str) -> None:
    """Bad rows of a file whose columns are in another order than the first file's, which the --bad-rows file's
    header has: each row's cells put in that order (a row of another number of cells than its header, which
    cannot be, as read)."""
    import csv

    for e in errors:
        text = getattr(e, "text", None)
        if not text:
            continue
        try:
            cells = next(csv.reader([text], delimiter=delimiter, strict=True))
        except (csv.Error, StopIteration):
            continue
        if len(cells) == len(names):
            by_name = dict(zip(names, cells))
            e.text = csv_line([by_name[n] for n in first], delimiter).rstrip("\n")


def _read_parquet(
    part: Part, names: list[str], inputs: list[str], skip: bool, reading: Reading | None = None
) -> pd.DataFrame:
    """One Parquet file or run of row groups; a null is a bad cell at its row (1-based, in the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reading = reading or Reading()
    try:
        pf = pq.ParquetFile(part.path)
        read = [*names, *reading.kept]
        table = pf.read_row_groups(part.row_groups, columns=read) if part.row_groups is not None else pf.read(read)
    except (OSError, pa.ArrowException) as e:
        raise RowsError(f"cannot read as Parquet: {e}", file=part.label) from None
    lines, columns, found, kept = parquet_columns(table, names, part.first_row, part.label, reading.kept)
    errors: list[RowsError] | None = [] if skip else None
    if found:
        if errors is None:
            raise found[0]
        errors.extend(found)
    return _frame(names, columns, lines, errors, {k: v.to_pylist() for k, v in kept.items()})


def _evaluate(
    df: pd.DataFrame,
    key: str,
    text: str | bytes,
    file: str,
    limits: Limits,
    names: list[str],
    outputs: list[str],
    exact: bool,
    options: Options | None = None,
    kept: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The kept and given columns, then `run_batch`'s (every output O, the --nodes, then dO/dX) — the columns local
    batch writes."""
    import numpy as np
    import pandas as pd

    options = options or Options()
    g = _graph(key, text, file, limits)
    bad = None
    if BAD in df.columns:
        is_bad = df[BAD].notna().to_numpy()
        bad, df = df[is_bad], df[~is_bad]
    rows = len(df)
    cols = {n: df[n].to_numpy(dtype=np.float64) for n in names}
    given = {k: np.broadcast_to(v, (rows, *np.shape(v))) for k, v in options.sets.items() if k not in cols} | cols
    res = run_batch(
        g.plan, given, outputs, exact=exact, rows=rows, nodes=options.nodes, node_grads=options.node_grads
    ).columns()
    out = pd.DataFrame({k: df[k] for k in kept} | cols | res, index=df.index, copy=False)
    if bad is not None:
        out[BAD] = None
        out = pd.concat([out, bad[[*kept, BAD]]]) if len(bad) else out
    return out


def _write(
    df: pd.DataFrame,
    tmp: str,
    fmt: str,
    width: int,
    n_given: int,
    partition_info: dict | None = None,
    writing: Writing | None = None,
) -> pd.DataFrame:
    """Write one part file (to a temporary name, then renamed: a retried task replaces it whole); report on it.
    `n_given`: the columns before the results (kept and given ones)."""
    import numpy as np
    import pandas as pd

    writing = writing or Writing()
    errors: tuple = ()
    if BAD in df.columns:
        is_bad = df[BAD].notna().to_numpy()
        errors = tuple(sorted(df[BAD][is_bad], key=lambda e: e.line or 0))
        df = df[~is_bad].drop(columns=BAD)
    if partition_info is None:  # never guess a name: two partitions writing one file would lose rows
        raise RuntimeError("dask did not say which partition this is (partition_info)")
    number = partition_info["number"]
    columns = _part_columns(df, writing)
    with replacing(os.path.join(tmp, f"part-{number:0{width}d}.{fmt}")) as part:
        (_write_parquet if fmt == "parquet" else _write_csv)(part, columns, writing)
    first, nonfinite = -1, 0
    results = [df[c].to_numpy(dtype=np.float64) for c in list(df.columns)[n_given:]]
    if len(df) and results:
        finite = np.logical_and.reduce([np.isfinite(a) for a in results])
        nonfinite = int((~finite).sum())
        if nonfinite:
            first = int(df.index[int(np.argmin(finite))])
    return pd.DataFrame(
        {
            "rows": [len(df) + len(errors)],
            "written": [len(df)],
            "bad": [len(errors)],
            "nonfinite": [nonfinite],
            "first_nonfinite": [first],
            "errors": pd.Series([errors], dtype=object),
        }
    )


def _part_columns(df: pd.DataFrame, writing: Writing) -> dict[str, Any]:
    """A part's columns: the row number (int64), the kept ones (Arrow arrays of their type, or lists of text),
    then float64 arrays."""
    import numpy as np

    out: dict[str, Any] = {}
    if writing.row_number:
        out[ROW_NUMBER] = df.index.to_numpy(dtype=np.int64)
    for c in df.columns:
        if df[c].dtype == object:
            values = df[c].tolist()
            t = writing.kept_types.get(c)
            if t is not None:
                import pyarrow as pa

                values = pa.array(values, type=t)
            out[c] = values
        else:
            out[c] = df[c].to_numpy(dtype=np.float64)
    return out


def _write_parquet(path: str, columns: dict, writing: Writing) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io.arrow_out import arrow_column

    pq.write_table(pa.Table.from_arrays([arrow_column(v) for v in columns.values()], names=list(columns)), path)


def _write_csv(path: str, columns: dict, writing: Writing) -> None:
    import numpy as np

    from ..io.arrow import csv_rows, float_texts  # pyarrow comes with the dask extra: repr()'s text, in C++
    from .cells import csv_line, float_cells, kept_csv

    d, fmt = writing.delimiter, writing.float_format
    cells = []
    for v in columns.values():
        if not isinstance(v, np.ndarray):
            cells.append(kept_csv(v, d))
        elif v.dtype == np.int64:
            cells.append(list(map(str, v.tolist())))
        else:
            cells.append(float_texts(v) if fmt is None else float_cells(v, fmt))
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_line(list(columns), d))
        if cells and len(cells[0]):
            f.write(csv_rows(cells, d))
