"""Issue 6 benchmark: `run_dask` (the engine of `cgcalc batch --engine dask`) against the local engine.

    .venv/bin/python tests/benchmarks/bench_dask.py [--quick] [--rows N] [--files N] [--workers N] [--keep]

1. graphs/apple_orange.yaml on 10,000,000 rows in 20 Parquet files (price and its 5 gradients), Parquet out:
   a 2-worker LocalCluster (started beforehand; its start-up is reported apart) against one process that
   reads each file with pyarrow, runs `Graph.run_batch` and writes the results with pyarrow. Medians of
   --runs interleaved runs (the page cache flushed before each), the workers' first run apart, the ratio,
   and a check that the two outputs are equal bit for bit.
2. Scheduler overhead per partition: runs over P one-row Parquet files (P = 1 and P = 200); the marginal
   wall time per partition, less the work of one partition (its read, evaluation and write, timed in this
   process) shared among the workers, is what dask adds per partition.
--quick: 1,000,000 rows, 50 tiny partitions. Prints the figures; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench_batch import columns  # noqa: E402  (the same price list as the local benchmark)

from cgcalc.api import load  # noqa: E402
from cgcalc.batch import dask_client as dask_engine  # noqa: E402
from cgcalc.core.spec import Limits  # noqa: E402

GRAPH = ROOT / "graphs" / "apple_orange.yaml"
INPUTS = ("apple", "apple_num", "orange", "orange_num", "tax")


def make_dataset(d: Path, rows: int, files: int) -> list[Path]:
    d.mkdir()
    paths = []
    for i in range(files):
        n = rows // files + (1 if i < rows % files else 0)
        p = d / f"part.{i}.parquet"
        pq.write_table(pa.table(columns(n, seed=i)), p)
        paths.append(p)
    return paths


def local_run(paths: list[Path], out: Path) -> float:
    """The same work in one process: pyarrow read, run_batch, pyarrow write, file by file."""
    t = time.perf_counter()
    g = load(GRAPH)
    out.mkdir()
    for i, p in enumerate(paths):
        table = pq.read_table(p)
        cols = {n: table.column(n).to_numpy() for n in table.column_names}
        res = g.run_batch(cols).columns()
        both = cols | res
        pq.write_table(pa.table({k: np.ascontiguousarray(v) for k, v in both.items()}), out / f"part-{i:05d}.parquet")
    return time.perf_counter() - t


def dask_run(data: Path, out: Path, address: str) -> tuple[float, dask_engine.DaskSummary]:
    t = time.perf_counter()
    s = dask_engine.run_dask(GRAPH.read_text(), str(GRAPH), str(data), str(out), scheduler=address)
    return time.perf_counter() - t, s


def same_outputs(a: Path, b: Path) -> bool:
    fa, fb = sorted(a.iterdir()), sorted(b.iterdir())
    if [f.name for f in fa] != [f.name for f in fb]:
        return False
    for x, y in zip(fa, fb):
        tx, ty = pq.read_table(x), pq.read_table(y)
        if tx.column_names != ty.column_names:
            return False
        for n in tx.column_names:
            if not np.array_equal(tx.column(n).to_numpy().view(np.int64), ty.column(n).to_numpy().view(np.int64)):
                return False
    return True


def partition_work(paths: list[Path], tmp: Path) -> float:
    """Seconds for one tiny partition's read, evaluation and write, in this process (the stage functions the
    workers run), the graph already compiled: a median over the partitions."""
    g = load(GRAPH)
    text = GRAPH.read_text()
    key = dask_engine.graph_key(text, str(GRAPH))
    limits = Limits.from_env()
    names, parts = dask_engine.parquet_parts([(str(p), str(p)) for p in paths], list(g.inputs))
    outputs = [g.outputs[0]]
    tmp.mkdir()
    times = []
    for i, part in enumerate(parts):
        t = time.perf_counter()
        df = dask_engine._read_parquet(part, names, list(g.inputs), False)
        df = dask_engine._evaluate(df, key, text, str(GRAPH), limits, names, outputs, True)
        dask_engine._write(df, str(tmp), "parquet", 5, len(names), partition_info={"number": i})
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:] if len(times) > 1 else times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--tiny", type=int, help="one-row partitions for the overhead figure (default 200)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each engine (the median is reported)")
    ap.add_argument("--keep", action="store_true", help="keep the data and outputs (their directory is printed)")
    args = ap.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    tiny = args.tiny or (50 if args.quick else 200)

    from cgcalc.batch.dask_cluster import local_cluster

    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    try:
        print(
            f"cores: {os.cpu_count()}; {rows:,} rows of {GRAPH.name} in {args.files} Parquet files; "
            f"{args.workers} dask workers"
        )
        t = time.perf_counter()
        paths = make_dataset(tmp / "data", rows, args.files)
        print(f"data written in {time.perf_counter() - t:.1f} s ({sum(p.stat().st_size for p in paths) / 1e6:.0f} MB)")
        tiny_paths = []
        (tmp / "tiny").mkdir()
        for i in range(tiny):
            p = tmp / "tiny" / f"t.{i}.parquet"
            pq.write_table(pa.table(columns(1, seed=10_000 + i)), p)
            tiny_paths.append(p)
        (tmp / "one").mkdir()
        shutil.copy(tiny_paths[0], tmp / "one" / "t.0.parquet")

        t = time.perf_counter()
        with local_cluster(args.workers) as cluster:  # as the engine starts one
            startup = time.perf_counter() - t
            address = cluster.scheduler_address
            dask_run(tmp / "tiny", tmp / "warm", address)  # every worker imports pandas and pyarrow once

            def timed_local() -> float:
                shutil.rmtree(tmp / "out-local", ignore_errors=True)
                os.sync()  # neither engine pays for the other's dirty pages being written back
                return local_run(paths, tmp / "out-local")

            def timed_dask() -> float:
                shutil.rmtree(tmp / "out-dask", ignore_errors=True)
                os.sync()
                wall, s = dask_run(tmp / "data", tmp / "out-dask", address)
                assert s.written == rows and s.partitions == args.files, s
                return wall

            cold = timed_dask()  # the workers' first large partitions (what a one-off `cgcalc batch` pays)
            local_t, dask_t = [], []
            for i in range(args.runs):  # interleaved, alternating which goes first
                if i % 2 == 0:
                    local_t.append(timed_local())
                    dask_t.append(timed_dask())
                else:
                    dask_t.append(timed_dask())
                    local_t.append(timed_local())
            local, wall = statistics.median(local_t), statistics.median(dask_t)
            equal = same_outputs(tmp / "out-local", tmp / "out-dask")

            one = statistics.median(dask_run(tmp / "one", tmp / f"one-{i}", address)[0] for i in range(3))
            many = statistics.median(dask_run(tmp / "tiny", tmp / f"tiny-{i}", address)[0] for i in range(3))
        work = partition_work(tiny_paths, tmp / "work")
        marginal = (many - one) / (tiny - 1)
        overhead = marginal - work / args.workers

        print()
        print(f"{'LocalCluster start-up (not in the dask time)':<52} {startup:8.2f} s")
        print(
            f"{'local: pyarrow read + run_batch + pyarrow write':<52} {local:8.2f} s   "
            f"(median of {args.runs}: {', '.join(f'{x:.2f}' for x in local_t)})"
        )
        print(
            f"{f'dask: run_dask, {args.workers} workers, {args.files} partitions':<52} {wall:8.2f} s   "
            f"(median of {args.runs}: {', '.join(f'{x:.2f}' for x in dask_t)})"
        )
        print(f"{'dask, first run on fresh workers':<52} {cold:8.2f} s")
        print(f"{'ratio dask / local (medians)':<52} {wall / local:8.2f} x   (speed-up {local / wall:.2f}x)")
        print(f"{'outputs equal bit for bit':<52} {'yes' if equal else 'NO':>8}")
        print()
        print(f"{'run_dask on 1 one-row partition (fixed cost)':<52} {one * 1e3:8.1f} ms")
        print(f"{f'run_dask on {tiny} one-row partitions':<52} {many * 1e3:8.1f} ms")
        print(f"{'marginal wall time per partition':<52} {marginal * 1e3:8.2f} ms")
        print(f"{'work of one partition (read+evaluate+write, local)':<52} {work * 1e3:8.2f} ms")
        print(
            f"{'scheduler overhead per partition':<52} {overhead * 1e3:8.2f} ms   "
            f"(marginal - work / {args.workers} workers)"
        )
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
