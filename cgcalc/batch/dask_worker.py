"""The worker side of `cgcalc batch --engine dask` (dask_client.py): read one partition, evaluate it, write it.

Each worker process compiles the graph once, from its text (`_graph`). Like dask_client.py, this module opens
files (where the workers run them), and imports dask, pandas or pyarrow only when a partition is handled.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, NamedTuple

from ..api import Graph, is_json, loads
from ..core.spec import Limits
from ..core.vectorized import run_batch
from ..errors import RowsError
from ..io.arrow import parquet_columns
from ..io.atomic import replacing
from ..io.rows import CsvRows, rows_text

if TYPE_CHECKING:
    import pandas as pd

CSV_CHUNK_ROWS = 65536
BAD = "__cgcalc_bad__"  # with skip_bad_rows: the RowsError of a bad row (None for a good one)


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


def _frame(names: list[str], columns: dict, lines, errors: list[RowsError] | None) -> pd.DataFrame:
    """Good rows indexed by line; with skip_bad_rows, then the bad rows (NaN cells, their error in BAD)."""
    import numpy as np
    import pandas as pd

    # copy=False: a block per column, no 2-D copy (the columns are fresh arrays, nobody else holds them)
    df = pd.DataFrame({n: columns[n] for n in names}, index=pd.Index(lines, dtype="int64"), copy=False)
    if errors is None:
        return df
    df[BAD] = None
    if errors:
        bad = pd.DataFrame(
            {n: np.full(len(errors), np.nan) for n in names},
            index=pd.Index([e.line or 0 for e in errors], dtype="int64"),
        )
        bad[BAD] = pd.Series(errors, index=bad.index, dtype=object)
        df = pd.concat([df, bad])
    return df


def _read_csv(part: Part, names: list[str], inputs: list[str], skip: bool) -> pd.DataFrame:
    """One CSV file, parsed by `io.rows.CsvRows` as local `cgcalc batch` does: same cells accepted, same lines."""
    import numpy as np

    errors: list[RowsError] | None = [] if skip else None
    lines: list[list[int]] = []
    cols: dict[str, list] = {n: [] for n in names}
    try:
        with open(part.path, "rb") as raw, rows_text(raw, part.label) as f:
            reader = CsvRows(f, part.label, inputs)
            _same_columns(reader.names, names, "the first file", part.label, reader.line)
            for chunk in reader.chunks(CSV_CHUNK_ROWS, None if errors is None else errors.append):
                lines.append(chunk.lines)
                for n in names:
                    cols[n].append(chunk.columns[n])
    except UnicodeDecodeError:
        raise RowsError("not UTF-8 text", file=part.label) from None
    except OSError as e:
        raise RowsError(f"cannot read the file: {e.strerror or e}", file=part.label) from None
    columns = {n: np.concatenate(c) if c else np.zeros(0) for n, c in cols.items()}
    return _frame(names, columns, np.concatenate(lines) if lines else np.zeros(0, dtype=np.int64), errors)


def _read_parquet(part: Part, names: list[str], inputs: list[str], skip: bool) -> pd.DataFrame:
    """One Parquet file or run of row groups; a null is a bad cell at its row (1-based, in the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(part.path)
        table = pf.read_row_groups(part.row_groups) if part.row_groups is not None else pf.read()
    except (OSError, pa.ArrowException) as e:
        raise RowsError(f"cannot read as Parquet: {e}", file=part.label) from None
    lines, columns, found = parquet_columns(table, names, part.first_row, part.label)
    errors: list[RowsError] | None = [] if skip else None
    if found:
        if errors is None:
            raise found[0]
        errors.extend(found)
    return _frame(names, columns, lines, errors)


def _evaluate(
    df: pd.DataFrame,
    key: str,
    text: str | bytes,
    file: str,
    limits: Limits,
    names: list[str],
    outputs: list[str],
    exact: bool,
) -> pd.DataFrame:
    """The given columns, then `run_batch`'s (every output O, then dO/dX) — the columns local batch writes."""
    import numpy as np
    import pandas as pd

    g = _graph(key, text, file, limits)
    bad = None
    if BAD in df.columns:
        is_bad = df[BAD].notna().to_numpy()
        bad, df = df[is_bad], df[~is_bad]
    cols = {n: df[n].to_numpy(dtype=np.float64) for n in names}
    res = run_batch(g.plan, cols, outputs, exact=exact, rows=len(df)).columns()
    out = pd.DataFrame(cols | res, index=df.index, copy=False)
    if bad is not None:
        out[BAD] = None
        out = pd.concat([out, bad[[BAD]]]) if len(bad) else out
    return out


def _write(
    df: pd.DataFrame, tmp: str, fmt: str, width: int, n_given: int, partition_info: dict | None = None
) -> pd.DataFrame:
    """Write one part file (to a temporary name, then renamed: a retried task replaces it whole); report on it."""
    import numpy as np
    import pandas as pd

    errors: tuple = ()
    if BAD in df.columns:
        is_bad = df[BAD].notna().to_numpy()
        errors = tuple(sorted(df[BAD][is_bad], key=lambda e: e.line or 0))
        df = df[~is_bad].drop(columns=BAD)
    if partition_info is None:  # never guess a name: two partitions writing one file would lose rows
        raise RuntimeError("dask did not say which partition this is (partition_info)")
    number = partition_info["number"]
    final = os.path.join(tmp, f"part-{number:0{width}d}.{fmt}")
    names = list(df.columns)
    arrays = [df[c].to_numpy(dtype=np.float64) for c in names]
    with replacing(final) as part:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_arrays([pa.array(a) for a in arrays], names=names), part)
        else:
            import csv

            from ..io.arrow import csv_rows, float_texts  # pyarrow comes with the dask extra: repr()'s text, in C++

            with open(part, "w", encoding="utf-8", newline="") as f:
                csv.writer(f, lineterminator="\n").writerow(names)
                if len(df):
                    f.write(csv_rows([float_texts(a) for a in arrays]))

    first, nonfinite = -1, 0
    if len(df) and len(names) > n_given:
        finite = np.isfinite(arrays[n_given])
        for a in arrays[n_given + 1 :]:
            finite &= np.isfinite(a)
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
