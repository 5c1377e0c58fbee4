"""The cluster side of `cgcalc batch --engine dask` (dask_client.py): a LocalCluster started and stopped for a
run, or a running scheduler connected to (its workers checked: cgcalc there, the same version); and the
partitions' tasks run on it, resubmitted after a cluster restart.

Nothing here imports dask or distributed at import time: the core install never needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import CgcalcError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from .dask_worker import Part

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


def local_cluster(n_workers: int):
    """A LocalCluster as the dask engine starts one (the tests and bench_dask too): a process a worker, one thread
    each, loopback only; no dashboard, and the scheduler's small HTTP server (health, metrics) on a free port
    rather than 8787, which another cluster may hold; logs off (a bad cell fails its task, and a worker would
    log "Compute Failed" and a traceback on our stderr)."""
    import logging

    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    )


@contextmanager
def client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    from distributed import Client

    if scheduler is None:
        n = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        with (
            _started(lambda: local_cluster(n)) as cluster,
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


def compute(client, tasks: list, parts: list[Part], progress) -> list[pd.DataFrame]:
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
