"""The progress bars of `cgcalc batch`: Rich, on stderr, and only when it is a terminal (stdout may be the
output itself)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .common import _console


@contextmanager
def rows_progress(quiet: bool, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr, only on a terminal; yields a function taking the progress so far (bytes
    read; rows for Parquet)."""
    if quiet or not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("batch"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def partition_progress(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar of partitions done, on stderr when it is a terminal; else no callback."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("batch (dask)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("partitions", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
