"""`cgcalc batch` on several cores: worker processes parse, evaluate and format blocks of CSV lines (or of JSON
Lines written as JSON Lines).

Writing a float in its shortest round-trip form (`repr`) costs more than everything else a row needs, and it
runs under the GIL: so the blocks go to worker processes, and this process only reads the file, hands out
blocks and writes the results back in their order. Each worker compiles the graph once, from the graph
file's text, and exits when this process does (SIGKILL included: see `_watch`). A block's output does not depend on which process made it: the output is the same, byte for
byte, as with one process. At most two blocks per worker are in flight, so memory stays flat.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from ..api import is_json
from ..core.spec import Limits
from ..errors import CgcalcError
from ..io.rows import CsvRows, JsonlRows
from .job import Block, Job

AUTO_MIN_BYTES = 8 << 20  # a rows file smaller than this runs in this process: workers take ~0.2 s to start
MAX_AUTO_JOBS = 8

_JOB: Job | None = None
_ROWS: tuple = ("csv", None, None, None)  # the rows' kind, their CsvSpec (or the inputs, input shapes, column rules)


def auto_jobs(size: int | None) -> int:
    """Worker processes for a rows file of `size` bytes (None: unknown, e.g. a pipe): 1 means none."""
    if size is None or size < AUTO_MIN_BYTES:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_JOBS))


def pool_blocks(
    job: Job,
    rows: CsvRows | JsonlRows,
    chunk_rows: int,
    jobs: int,
    graph_text: str | bytes,
    graph_file: str,
    first_here: bool = False,
) -> Iterator[Block]:
    """`job.csv_block` (or `job.jsonl_block`) over the blocks of `rows`, computed by `jobs` worker processes,
    yielded in order. The graph goes to the workers as its text (read once, here: it may have come through a
    pipe); a worker never outlives this process. first_here: the first block is done in this process, at once
    (the output is a pipe, whose reader waits for it), before the workers start."""
    # the workers hold the reading end of a pipe whose only writing end is this process's: when this process
    # ends, however it ends (SIGKILL included), they read end-of-file and exit
    lifeline, alive = multiprocessing.Pipe(duplex=False)
    args = _worker_args(job, rows, graph_text, graph_file, lifeline)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(), initializer=_start, initargs=args)
    pending: deque[Future] = deque()
    blocks = rows.blocks(chunk_rows)
    try:
        if first_here:
            head = next(blocks, None)
            if head is None:
                return
            # the workers take a while to start (0.2 s; seconds on a loaded machine: the first submit waits for
            # the forkserver): this process does the very first block itself, before any, so that the first rows
            # come out at once (a reader of `| head` waits for nothing more). Without pyarrow, whose import would
            # take as long: the same bytes (see io/arrow.py)
            yield _here(replace(job, arrow=False), rows, *head)
        for first, text in blocks:
            pending.append(_submit(pool, first, text))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise CgcalcError(
            "a worker process stopped abruptly (killed, or out of memory?); nothing was written "
            "(run again, or with --jobs 1)",
            file=job.file,
        ) from None
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        alive.close()
        lifeline.close()


def _worker_args(job: Job, rows: CsvRows | JsonlRows, graph_text: str | bytes, graph_file: str, lifeline) -> tuple:
    """What each worker starts with: the lifeline, the graph's text, the job as it is here (outputs, options, the
    columns echoed) but for its plan (each worker compiles its own), and how to read its rows."""
    if isinstance(rows, CsvRows):
        rows_args = ("csv", rows.spec, None, None)
    else:
        rows_args = ("jsonl", rows.inputs, rows.shapes, rows.rules)
    graph = (graph_text, graph_file, is_json(graph_text, graph_file))
    return (lifeline, *graph, Limits.from_env(), replace(job, plan=None), *rows_args)


def _here(job: Job, rows: CsvRows | JsonlRows, first: int, text: str) -> Block:
    """A block done in this process, as a worker does it (the same bytes)."""
    if isinstance(rows, CsvRows):
        return job.csv_block(first, text, rows.spec)
    return job.jsonl_block(first, text, rows.inputs, rows.shapes, rows.rules)


_STOP = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _submit(pool: ProcessPoolExecutor, first: int, text: str) -> Future:
    """pool.submit, with Ctrl-C, SIGTERM and SIGHUP held back meanwhile: submit may be starting a worker, and a
    stop that lands between its start and its registration leaves a child that shutdown() does not wait for
    (it then prints a traceback as this process's semaphores vanish). Held back, the stop lands just after.
    (By Python-level handlers, not the signal mask, which the workers would inherit.)"""
    if threading.current_thread() is not threading.main_thread():
        return pool.submit(_work, first, text)
    caught: list[int] = []
    handlers = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in _STOP}
    try:
        return pool.submit(_work, first, text)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


def _context():
    methods = multiprocessing.get_all_start_methods()
    # forkserver: workers start from a clean process (this one may have threads: the progress bar's)
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _start(lifeline, graph_text, graph_file, graph_json, limits, job, kind, names, shapes, rules) -> None:
    global _JOB, _ROWS
    # Ctrl-C, SIGTERM and SIGHUP are the main process's to handle: it stops the pool (and a shell's Ctrl-C or a
    # `kill` of the process group reaches the workers too)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(lifeline,), daemon=True, name="cgcalc-lifeline").start()
    from ..api import loads

    g = loads(graph_text, file=graph_file, limits=limits, json=graph_json)
    _JOB = replace(job, plan=g.plan)
    _ROWS = (kind, names, shapes, rules)


def _watch(lifeline) -> None:
    """Exit as soon as the main process is gone (nothing is ever sent: end-of-file is the message)."""
    try:
        lifeline.recv_bytes()
    except (EOFError, OSError):
        pass
    os._exit(1)


def _work(first: int, text: str) -> Block:
    assert _JOB is not None
    kind, names, shapes, rules = _ROWS
    if kind == "csv":
        return _JOB.csv_block(first, text, names)
    return _JOB.jsonl_block(first, text, names, shapes, rules)
