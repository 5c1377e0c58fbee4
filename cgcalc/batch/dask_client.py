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

import glob
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api import Graph, is_json, loads
from ..core.runtime import check_outputs
from ..core.spec import Limits
from ..core.vectorized import run_batch
from ..errors import CgcalcError, RowsError, UsageError
from ..io.arrow import check_parquet_schema
from ..io.atomic import new_directory
from ..io.rows import CsvRows, rows_text
from .dask_worker import (  # noqa: F401 - graph_key, _COMPILED and the stages: used by the tests and benchmarks
    _COMPILED,
    BAD,
    Part,
    _evaluate,
    _read_csv,
    _read_parquet,
    _same_columns,
    _write,
    graph_key,
)
from .runner import Summary

if TYPE_CHECKING:
    import pandas as pd

FORMATS = {"parquet": (".parquet", ".parq", ".pq"), "csv": (".csv",)}
PARQUET_PART_ROWS = 1 << 20  # a large Parquet file is split into runs of row groups of about this many rows
RESUBMITS = 3  # times the partitions cancelled by a cluster restart are submitted again
CONNECT_TIMEOUT = 10  # seconds; distributed would retry a refused connection for 30
INSTALL = "pip install 'cgcalc[dask]'"


def require_dask() -> None:
    """Raise UsageError saying what to install when dask, distributed or pyarrow is missing."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as e:
        raise UsageError(f"--engine dask needs {e.name or 'dask'}, which is not installed: {INSTALL}") from None


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
        Address of a running scheduler (``tcp://host:8786``); default: a LocalCluster with one worker
        process per core on 127.0.0.1, closed at the end.
    rows_format, out_format : {"parquet", "csv"}, optional
        Default: from the files' extensions; the output defaults to the rows' format.
    skip_bad_rows : bool
        Skip a bad row (reported in ``summary.errors``) instead of failing on it.
    exact : bool
        As in `Graph.run_batch`: every row equal to `cgcalc run` bit for bit (default).
    workers : int, optional
        Worker processes of the LocalCluster (default: the number of cores).
    progress : callable, optional
        Called on this process as ``progress(partitions_done, partitions)``.

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
    out_abs = _check_out(out)
    run = _prepare(graph_text, graph_file, rows, output, rows_format, out_format)
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
    names: list[str]  # the dataset's columns
    parts: list[Part]  # the partitions
    results: list[str]  # the columns run_batch adds


def _prepare(
    graph_text: str | bytes,
    graph_file: str,
    rows: str,
    output: list[str] | None,
    rows_format: str | None,
    out_format: str | None,
) -> _Run:
    """The graph compiled, the rows files found, their headers (or footers) read and the partitions cut."""
    limits = Limits.from_env()
    g = loads(graph_text, file=graph_file, limits=limits, json=is_json(graph_text, graph_file))
    outputs = check_outputs(g.plan, output)
    files, fmt = _files(rows, rows_format)
    out_format = out_format or fmt
    if out_format not in FORMATS:
        raise UsageError(f"--out-format {out_format}: the dask engine writes parquet or csv")
    inputs = list(g.inputs)
    names, parts = (_csv_parts if fmt == "csv" else _parquet_parts)(files, inputs)
    results = _result_names(g, names, outputs)
    return _Run(graph_text, graph_file, limits, outputs, fmt, out_format, len(files), inputs, names, parts, results)


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
        _client(scheduler, workers) as client,
    ):
        reports = _compute(client, _tasks(run, tmp, skip_bad_rows, exact), run.parts, progress)
        n_workers = len(client.nthreads())
    return reports, n_workers


def _tasks(run: _Run, tmp: str, skip: bool, exact: bool) -> list:
    """One delayed task per partition, its three stages fused by dask: read the partition, evaluate it, write it
    into `tmp` as a part file; each returns the partition's one-row report."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    read = _read_csv if run.fmt == "csv" else _read_parquet
    data = dd.from_map(
        read,
        run.parts,
        names=run.names,
        inputs=run.inputs,
        skip=skip,
        meta=_meta(run.names, skip),
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
        meta=_meta(run.names + run.results, skip),
    )
    width = max(5, len(str(len(run.parts) - 1)))  # of the part number in a part file's name
    stats_meta = pd.DataFrame({c: pd.Series(dtype="int64") for c in _STATS} | {"errors": pd.Series(dtype=object)})
    stats = evaluated.map_partitions(
        _write, tmp, run.out_format, width, len(run.names), meta=stats_meta, enforce_metadata=False
    )
    return stats.to_delayed()


def _summary(run: _Run, out: str, reports: list[pd.DataFrame], n_workers: int) -> DaskSummary:
    """The partitions' reports added up; the first non-finite row is that of the first partition with one."""
    summary = DaskSummary(
        out=out, out_format=run.out_format, files=run.files, partitions=len(run.parts), workers=n_workers
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


def _meta(columns: list[str], bad: bool) -> pd.DataFrame:
    """The empty frame dask is given for a stage's output: float64 columns, indexed by source line."""
    import pandas as pd

    meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns}, index=pd.Index([], dtype="int64"))
    if bad:
        meta[BAD] = pd.Series(dtype=object)
    return meta


# -- the client side: files, partitions, schema -------------------------------------------------------------


def _natural(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _files(rows: str, rows_format: str | None) -> tuple[list[tuple[str, str]], str]:
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


def _check_out(out: str) -> str:
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


def _csv_parts(files: list[tuple[str, str]], inputs: list[str]) -> tuple[list[str], list[Part]]:
    """The first file's header is the dataset's columns; every file's header is checked here, before a task runs."""
    names: list[str] | None = None
    for path, label in files:
        try:
            with open(path, "rb") as raw, rows_text(raw, label) as f:
                header = CsvRows(f, label, inputs)
        except UnicodeDecodeError:
            raise RowsError("not UTF-8 text", file=label) from None
        except OSError as e:
            raise RowsError(f"cannot read the file: {e.strerror or e}", file=label) from None
        if names is None:
            names = header.names
        _same_columns(header.names, names, files[0][1], label, header.line)
    return names or [], [Part(path, label) for path, label in files]


def _parquet_parts(files: list[tuple[str, str]], inputs: list[str]) -> tuple[list[str], list[Part]]:
    """Reads every file's footer: the columns and their types are checked here; a large file becomes runs
    of row groups (a partition never splits a row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names: list[str] | None = None
    parts = []
    for path, label in files:
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as e:
            raise RowsError(f"cannot read as Parquet: {e}", file=label) from None
        schema = pf.schema_arrow
        check_parquet_schema(schema, inputs, label)
        if names is None:
            names = list(schema.names)
        _same_columns(list(schema.names), names, files[0][1], label, None)
        md = pf.metadata
        if md.num_row_groups <= 1 or md.num_rows <= PARQUET_PART_ROWS:
            parts.append(Part(path, label))
            continue
        run: list[int] = []
        first = rows = 0
        for i in range(md.num_row_groups):
            run.append(i)
            rows += md.row_group(i).num_rows
            if rows - first >= PARQUET_PART_ROWS or i == md.num_row_groups - 1:
                parts.append(Part(path, label, tuple(run), first))
                run, first = [], rows
    return names or [], parts


def _result_names(g: Graph, names: list[str], outputs: list[str]) -> list[str]:
    """The columns `run_batch` adds (every output, then dO/dX), from a one-row run; each must be one number."""
    import numpy as np

    res = run_batch(g.plan, {n: np.zeros(1) for n in names}, outputs, rows=1).columns()
    for name, a in res.items():
        if a.shape[1:]:
            raise UsageError(
                f"'{name}' is an array ({'x'.join(map(str, a.shape[1:]))}) in every row: the dask "
                "engine writes one number per cell (use `cgcalc batch` with a .jsonl output)"
            )
        if name in names:
            raise UsageError(f"'{name}' is both a rows column and a result column")
    return list(res)


# -- the cluster --------------------------------------------------------------------------------------------


@contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    import logging

    from distributed import Client, LocalCluster

    if scheduler is None:
        n = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        # loopback only; no dashboard, and the scheduler's small HTTP server (health, metrics) on a free port
        # rather than 8787, which another cluster may hold; a bad cell fails its task, and a worker would
        # log "Compute Failed" and a traceback on our stderr: logs off
        with (
            _started(
                lambda: LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.CRITICAL,
                )
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as e:
        raise UsageError(f"cannot connect to the dask scheduler at {scheduler}: {e}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=30)
            versions = client.run(_version)
        except TimeoutError:
            raise UsageError(f"the dask scheduler at {scheduler} has no workers") from None
        except Exception as e:
            raise UsageError(
                f"the dask workers at {scheduler} cannot run cgcalc (install cgcalc {_version()} "
                f"and {INSTALL} on every worker): {e}"
            ) from None
        odd = {w: v for w, v in versions.items() if v != _version()}
        if odd:
            w, v = next(iter(odd.items()))
            raise UsageError(
                f"the dask worker {w} has cgcalc {v}, this is cgcalc {_version()}: results could "
                "differ; install the same version everywhere"
            )
        yield client


def _started(make: Callable[[], Any]) -> Any:
    """make(), a LocalCluster; when it is interrupted while starting (Ctrl-C, SIGTERM), what it started is closed
    here, quietly, rather than by distributed's exit hook, which prints a traceback about a half-made cluster."""
    from distributed.deploy.spec import SpecCluster

    before = set(SpecCluster._instances)
    try:
        return make()
    except BaseException:
        for cluster in set(SpecCluster._instances) - before:
            try:
                cluster.close(timeout=10)
            except Exception:  # it was never up: nothing more to do
                pass
            SpecCluster._instances.discard(cluster)
        raise


def _version() -> str:
    from importlib.metadata import version

    return version("cgcalc")


def _compute(client, tasks: list, parts: list[Part], progress) -> list[pd.DataFrame]:
    """Run every partition's task and return their reports, in partition order.

    A task whose worker dies is run again by dask itself. A restart of the cluster (`client.restart()`, by
    anyone) cancels every future instead: the partitions not done yet are submitted again (their part files
    are rewritten whole, so this is safe). A bad cell, or any other failure, cancels the rest and is raised.
    """
    from distributed import CancelledError, as_completed

    reports: list = [None] * len(tasks)
    todo = list(range(len(tasks)))
    done = 0
    if progress is not None:
        progress(0, len(tasks))
    for _ in range(1 + RESUBMITS):
        futures = client.compute([tasks[i] for i in todo])
        index = {f.key: i for f, i in zip(futures, todo)}
        cancelled = []
        try:
            # the reports of all the partitions finished meanwhile in one round trip, not one each
            for batch in as_completed(futures, loop=client.loop).batches():
                try:
                    # a failed task raises its own exception here: a RowsError keeps file, line and column
                    got = client.gather(batch)
                except CancelledError:  # a restart: see which ones, one by one
                    got = []
                    for f in list(batch):
                        try:
                            got.append(f.result())
                        except CancelledError:
                            cancelled.append(index[f.key])
                            batch.remove(f)
                for f, report in zip(batch, got):
                    reports[index[f.key]] = report
                done += len(batch)
                if progress is not None and batch:
                    progress(done, len(tasks))
        except (CgcalcError, KeyboardInterrupt, SystemExit):
            client.cancel(futures)
            raise
        except Exception as e:
            client.cancel(futures)
            i = next((index[f.key] for f in futures if f.status == "error"), None)
            where = f" on {parts[i].label}" if i is not None else ""
            raise CgcalcError(f"the dask run failed{where}: {type(e).__name__}: {e}") from e
        if not cancelled:
            return reports
        todo = sorted(cancelled)
    raise CgcalcError(f"the dask run was cancelled {1 + RESUBMITS} times (is the cluster restarting again and again?)")
