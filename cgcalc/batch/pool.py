"""`cgcalc batch` on several cores: worker processes parse, evaluate and format blocks of CSV lines (or of JSON
Lines written as JSON Lines).

Writing a float in its shortest round-trip form (`repr`) costs more than everything else a row needs, and it
runs under the GIL: so the blocks go to worker processes, and this process only reads the file, hands out
blocks and writes the results back in their order. Each worker compiles the graph once, from the graph
file's text. A block's output does not depend on which process made it: the output is the same, byte for
byte, as with one process. At most two blocks per worker are in flight, so memory stays flat.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from ..core.spec import Limits
from ..io.rows import CsvRows, JsonlRows
from .job import Block, Job

AUTO_MIN_BYTES = 8 << 20  # a rows file smaller than this runs in this process: workers take ~0.2 s to start
MAX_AUTO_JOBS = 8

_JOB: Job | None = None
_ROWS: tuple = ("csv", [], None)  # the rows' kind, their columns (CSV) or the graph's inputs, and input shapes


def auto_jobs(size: int | None) -> int:
    """Worker processes for a rows file of `size` bytes (None: unknown, e.g. a pipe): 1 means none."""
    if size is None or size < AUTO_MIN_BYTES:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_JOBS))


def pool_blocks(job: Job, rows: CsvRows | JsonlRows, chunk_rows: int, jobs: int, graph_text: str | bytes,
                graph_file: str) -> Iterator[Block]:
    """`job.csv_block` (or `job.jsonl_block`) over the blocks of `rows`, computed by `jobs` worker processes,
    yielded in order."""
    if isinstance(rows, CsvRows):
        rows_args = ("csv", rows.names, None)
    else:
        rows_args = ("jsonl", rows.inputs, rows.shapes)
    args = (graph_text, graph_file, Limits.from_env(), job.outputs, job.out_format, job.file, job.skip,
            job.exact, job.echo_names, job.arrow, *rows_args)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(), initializer=_start, initargs=args)
    pending: deque[Future] = deque()
    try:
        for first, text in rows.blocks(chunk_rows):
            pending.append(pool.submit(_work, first, text))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _context():
    methods = multiprocessing.get_all_start_methods()
    # forkserver: workers start from a clean process (this one may have threads: the progress bar's)
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _start(graph_text, graph_file, limits, outputs, out_format, file, skip, exact, echo_names, arrow,
           kind, names, shapes) -> None:
    global _JOB, _ROWS
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle: it stops the pool
    from ..api import loads

    g = loads(graph_text, file=graph_file, limits=limits, json=graph_file.lower().endswith(".json"))
    _JOB = Job(g.plan, outputs, out_format, file, skip=skip, exact=exact, echo_names=echo_names, arrow=arrow)
    _ROWS = (kind, names, shapes)


def _work(first: int, text: str) -> Block:
    assert _JOB is not None
    kind, names, shapes = _ROWS
    if kind == "csv":
        return _JOB.csv_block(first, text, names)
    return _JOB.jsonl_block(first, text, names, shapes)
