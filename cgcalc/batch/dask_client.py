"""`cgcalc batch --engine dask`: the same compiled graph over a partitioned Parquet or CSV dataset, on a
dask.distributed cluster.

Three stages per partition, fused by dask into one task: read a file (or a run of a Parquet file's row
groups) into float64 columns indexed by source line; evaluate it with `run_batch` (`map_partitions`, the
output schema declared up front); write it as one part file and return a one-row report. Parts are written
into a temporary directory next to OUT, renamed into place when every part is done: OUT is complete or
absent. A part's file name is its partition number, so a task that dask runs again after a worker died
rewrites the same file: no row lost, none duplicated.

The graph travels to the workers as its file text; each worker process compiles it once (dask_worker.py).
Unlike the rest of the library this module opens files: the workers read and write them where they run.
Nothing here imports dask, pandas or pyarrow at import time: the core install never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..api import Graph, is_json, loads
from ..core.runtime import check_outputs
from ..core.spec import Limits
from ..core.vectorized import run_batch
from ..errors import RowsError, UsageError
from ..io.atomic import new_directory
from .dask_cluster import CONNECT_TIMEOUT, INSTALL, RESUBMITS, client, compute, require_dask  # noqa: F401
from .dask_dataset import FORMATS, check_out, csv_parts, files, first_layout, parquet_parts
from .dask_worker import (  # noqa: F401 - graph_key, _COMPILED and the stages: used by the tests and benchmarks
    _COMPILED,
    BAD,
    Part,
    Reading,
    Writing,
    _evaluate,
    _read_csv,
    _read_parquet,
    _same_columns,
    _write,
    graph_key,
)
from .options import Options, check_options, rules_for
from .runner import Summary

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class DaskSummary(Summary):
    """`runner.Summary` (rows, written, bad, nonfinite, first_nonfinite_line) and where the run went."""

    out: str = ""
    out_format: str = ""
    files: int = 0
    partitions: int = 0
    workers: int = 0
    first_nonfinite_file: str | None = None
    errors: list[RowsError] = field(default_factory=list)  # the bad rows skipped, in file and line order
    rows_format: str = ""  # the dataset's: csv or parquet
    header: str = ""  # the first CSV file's header, as read
    columns: dict = field(default_factory=dict)  # Parquet: the input and kept columns' Arrow types


def run_dask(
    graph_text: str | bytes,
    graph_file: str,
    rows: str,
    out: str,
    *,
    output: list[str] | None = None,
    scheduler: str | None = None,
    rows_format: str | None = None,
    out_format: str | None = None,
    skip_bad_rows: bool = False,
    exact: bool = True,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    options: Options | None = None,
) -> DaskSummary:
    """Evaluate every row of a Parquet or CSV dataset on a dask cluster; write a partitioned dataset to `out`.

    Parameters
    ----------
    graph_text, graph_file : str or bytes, str
        The graph file's content and its name (for messages; ``.json`` tries the JSON reader first).
    rows : str
        A file, a glob (``'data/*.parquet'``) or a directory (its ``.parquet``/``.csv`` files, recursively).
    out : str
        A directory that does not exist yet (or is empty): ``part-00000.parquet``, ... one per partition.
    output : list of str, optional
        The outputs whose gradients are written (default: the graph's first output).
    scheduler : str, optional
        A running scheduler (``tcp://host:8786``); default: a LocalCluster on 127.0.0.1, closed at the end.
    rows_format, out_format : {"parquet", "csv"}, optional
        Default: from the files' extensions; the output's, the rows' format.
    skip_bad_rows : bool
        Skip a bad row instead of failing on it.
    exact : bool
        As in `Graph.run_batch`: every row equal to `cgcalc run` bit for bit (default).
    workers : int, optional
        Worker processes of the LocalCluster (default: the number of cores).
    progress : callable, optional
        Called on this process as ``progress(partitions_done, partitions)``.
    options : Options, optional
        As local batch's (kept columns, row numbers, --set, --nodes, CSV delimiter, float format; see Options).

    Returns
    -------
    DaskSummary

    Raises
    ------
    GraphError, RowsError, UsageError
        With file, line and column where known (for Parquet, the line is the 1-based row in the file).
    CgcalcError
        The cluster failed (cannot connect, a partition killed its workers again and again, ...).
    """
    require_dask()
    out_abs = check_out(out)
    run = _prepare(graph_text, graph_file, rows, output, rows_format, out_format, options or Options())
    reports, n_workers = _on_cluster(run, out_abs, scheduler, workers, skip_bad_rows, exact, progress)
    return _summary(run, out, reports, n_workers)


@dataclass
class _Run:
    """A run as this process works it out before any task runs (every error of the graph, of the files and of
    their columns is raised here): what the tasks of each partition are given."""

    graph_text: str | bytes
    graph_file: str
    limits: Limits
    outputs: list[str]  # the outputs whose gradients are written
    fmt: str  # the rows' format
    out_format: str
    files: int  # how many rows files
    inputs: list[str]  # the graph's
    names: list[str]  # the dataset's input columns
    parts: list[Part]  # the partitions
    results: list[str]  # the columns run_batch adds
    options: Options
    reading: Reading
    writing: Writing
    header: str  # the first CSV file's header, as read (for --bad-rows)
    types: dict  # Parquet: the Arrow types of the input and kept columns (for --bad-rows)


def _prepare(
    graph_text: str | bytes,
    graph_file: str,
    rows: str,
    output: list[str] | None,
    rows_format: str | None,
    out_format: str | None,
    options: Options,
) -> _Run:
    """The graph compiled, the rows files found, their headers (or footers) read and the partitions cut."""
    limits = Limits.from_env()
    g = loads(graph_text, file=graph_file, limits=limits, json=is_json(graph_text, graph_file))
    outputs = check_outputs(g.plan, output)
    check_options(g.plan, outputs, options)
    found, fmt = files(rows, rows_format)
    out_format = out_format or fmt
    if out_format not in FORMATS:
        raise UsageError(f"--out-format {out_format}: the dask engine writes parquet or csv")
    if options.float_format is not None and out_format == "parquet":
        raise UsageError("--precision and --float-format are for text output (CSV), not Parquet")
    inputs = list(g.inputs)
    rules = rules_for(g.plan, outputs, options)
    layout, header, types = first_layout(found[0], fmt, inputs, rules, options.delimiter)
    reading = Reading(rules, options.delimiter, layout.names, tuple(layout.kept_names))
    names, parts = (csv_parts if fmt == "csv" else parquet_parts)(found, inputs, reading)
    results = _result_names(g, names, outputs, options)
    kept_types = {k: types[k] for k in layout.kept_names if k in types}
    writing = Writing(options.float_format, options.delimiter, options.row_number, kept_types)
    return _Run(
        graph_text, graph_file, limits, outputs, fmt, out_format, len(found), inputs, names, parts, results, options,
        reading, writing, header, types,
    )  # fmt: skip


def _on_cluster(
    run: _Run,
    out_abs: str,
    scheduler: str | None,
    workers: int | None,
    skip_bad_rows: bool,
    exact: bool,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[pd.DataFrame], int]:
    """Every partition's task run on the cluster, writing its part into a new directory that becomes OUT when
    all are done: the partitions' reports, in order, and how many workers the cluster had."""
    import dask

    # object columns stay objects (a bad row's RowsError); dask would turn them into strings
    with (
        new_directory(out_abs) as tmp,
        dask.config.set({"dataframe.convert-string": False}),
        client(scheduler, workers) as cluster,
    ):
        reports = compute(cluster, _tasks(run, tmp, skip_bad_rows, exact), run.parts, progress)
        n_workers = len(cluster.nthreads())
    return reports, n_workers


def _tasks(run: _Run, tmp: str, skip: bool, exact: bool) -> list:
    """One delayed task per partition, its three stages fused by dask: read the partition, evaluate it, write it
    into `tmp` as a part file; each returns the partition's one-row report."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    read = _read_csv if run.fmt == "csv" else _read_parquet
    kept = run.reading.kept
    data = dd.from_map(
        read,
        run.parts,
        names=run.names,
        inputs=run.inputs,
        skip=skip,
        reading=run.reading,
        meta=_meta(run.names, skip, kept),
        label="cgcalc-read",
        enforce_metadata=False,
    )
    key = graph_key(run.graph_text, run.graph_file)
    # the text is one key of the task graph: sent to each worker once, not with every partition
    text = dask.delayed(run.graph_text, name=f"cgcalc-graph-{key}")
    evaluated = data.map_partitions(
        _evaluate,
        key,
        text,
        run.graph_file,
        run.limits,
        run.names,
        run.outputs,
        exact,
        run.options,
        kept,
        meta=_meta(run.names + run.results, skip, kept),
    )
    width = max(5, len(str(len(run.parts) - 1)))  # of the part number in a part file's name
    stats_meta = pd.DataFrame({c: pd.Series(dtype="int64") for c in _STATS} | {"errors": pd.Series(dtype=object)})
    stats = evaluated.map_partitions(
        _write,
        tmp,
        run.out_format,
        width,
        len(kept) + len(run.names),
        writing=run.writing,
        meta=stats_meta,
        enforce_metadata=False,
    )
    return stats.to_delayed()


def _summary(run: _Run, out: str, reports: list[pd.DataFrame], n_workers: int) -> DaskSummary:
    """The partitions' reports added up; the first non-finite row is that of the first partition with one."""
    summary = DaskSummary(
        out=out,
        out_format=run.out_format,
        files=run.files,
        partitions=len(run.parts),
        workers=n_workers,
        rows_format=run.fmt,
        header=run.header,
        columns=run.types,
    )
    for part, rep in zip(run.parts, reports):
        r = rep.iloc[0]
        summary.rows += int(r["rows"])
        summary.written += int(r["written"])
        summary.bad += int(r["bad"])
        summary.nonfinite += int(r["nonfinite"])
        if r["first_nonfinite"] >= 0 and summary.first_nonfinite_line is None:
            summary.first_nonfinite_file, summary.first_nonfinite_line = part.label, int(r["first_nonfinite"])
        summary.errors.extend(r["errors"])
    return summary


_STATS = ("rows", "written", "bad", "nonfinite", "first_nonfinite")  # a partition's report, with its errors


def _meta(columns: list[str], bad: bool, kept: tuple[str, ...] = ()) -> pd.DataFrame:
    """The empty frame dask is given for a stage's output: the kept columns (objects), then float64 ones,
    indexed by source line."""
    import pandas as pd

    index = pd.Index([], dtype="int64")
    meta = pd.DataFrame(
        {k: pd.Series(dtype=object) for k in kept} | {c: pd.Series(dtype="float64") for c in columns}, index=index
    )
    if bad:
        meta[BAD] = pd.Series(dtype=object)
    return meta


def _result_names(g: Graph, names: list[str], outputs: list[str], options: Options | None = None) -> list[str]:
    """The columns `run_batch` adds (every output, the --nodes, then dO/dX), from a one-row run; each must be one
    number."""
    import numpy as np

    options = options or Options()
    given = {n: np.zeros(1) for n in names} | {
        k: np.broadcast_to(v, (1, *np.shape(v))) for k, v in options.sets.items() if k not in names
    }
    res = run_batch(g.plan, given, outputs, rows=1, nodes=options.nodes, node_grads=options.node_grads).columns()
    for name, a in res.items():
        if a.shape[1:]:
            raise UsageError(
                f"'{name}' is an array ({'x'.join(map(str, a.shape[1:]))}) in every row: the dask "
                "engine writes one number per cell (use `cgcalc batch` with a .jsonl output)"
            )
        if name in names:
            raise UsageError(f"'{name}' is both a rows column and a result column")
    return list(res)
