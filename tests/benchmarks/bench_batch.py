"""Issue 4 benchmark: `Graph.run_batch` and `cgcalc batch` against hand-written numpy, side by side.

    .venv/bin/python tests/benchmarks/bench_batch.py [--quick] [--runs N] [--keep]

Targets (graphs/apple_orange.yaml: price and its gradients with respect to all 5 inputs):
  1. in memory, 1,000,000 rows: run_batch <= 1.2x the same formulas hand-written in numpy;
  2. CSV -> CSV, default install (no pyarrow: run with CGCALC_ARROW=0), 1,000,000 rows: `cgcalc batch`
     <= 0.5x a script doing np.loadtxt + formulas + np.savetxt('%.17g');
  3. CSV -> CSV with pyarrow (cgcalc's Arrow path on), 1,000,000 rows: `cgcalc batch` <= 1.3x a script doing
     pyarrow.csv.read_csv + numpy formulas + pyarrow.csv.write_csv;
  4. Parquet -> Parquet, 1,000,000 rows: `cgcalc batch rows.parquet -o out.parquet` <= 1.3x a script doing
     pyarrow.parquet.read_table + numpy formulas + pyarrow.parquet.write_table;
  5. peak RSS of `cgcalc batch` on 10,000,000 rows <= 1.2x its peak on 100,000 rows.
In 2-4 both sides run as subprocesses, and the values of our output are checked once, before timing, to equal
the baseline's (CSV: every cell as float(text); Parquet: every column, np.array_equal). 3 and 4 are skipped,
with a note, when pyarrow is not importable.
--quick: 3 runs instead of 5; targets 2-4 on 200,000 rows; memory on 1,000,000 vs 100,000 rows.
Reports; always exits 0.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CGCALC,
    GRAPHS,
    PYTHON,
    Report,
    attempt,
    fmt_bytes,
    fmt_s,
    interleaved,
    median,
    run_child,
    timed,
    work_dir,
)


class BatchReport(Report):
    WIDTHS = (68, *Report.WIDTHS[1:])  # room for the longer target names of this script


GRAPH = GRAPHS / "apple_orange.yaml"
INPUTS = ("apple", "apple_num", "orange", "orange_num", "tax")
HEADER = ",".join(INPUTS)
OUT_HEADER = ",".join([*INPUTS, "price", *(f"dprice/d{x}" for x in INPUTS)])
BLOCK = 100_000  # rows generated at a time


def columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """A price list: prices with cents, whole counts, a tax rate with three decimals."""
    rng = np.random.default_rng(seed)
    return {
        "apple": np.round(rng.uniform(50, 150, n), 2),
        "apple_num": rng.integers(1, 11, n).astype(np.float64),
        "orange": np.round(rng.uniform(50, 200, n), 2),
        "orange_num": rng.integers(1, 11, n).astype(np.float64),
        "tax": np.round(rng.uniform(1.0, 1.2, n), 3),
    }


def block_text(n: int, seed: int) -> str:
    import io

    c = columns(n, seed)
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([c[x] for x in INPUTS]), fmt="%.2f,%d,%.2f,%d,%.3f")
    return buf.getvalue()


def write_rows(path: Path, n: int, blocks: dict[int, str]) -> None:
    """n rows, written in blocks of BLOCK; at most 10 distinct blocks are made and then repeated, so that
    10 million rows take seconds to write (the content does not matter to the memory target)."""
    with open(path, "w") as f:
        f.write(HEADER + "\n")
        done, i = 0, 0
        while done < n:
            m = min(BLOCK, n - done)
            key = i % 10
            if m == BLOCK:
                if key not in blocks:
                    blocks[key] = block_text(BLOCK, seed=key)
                f.write(blocks[key])
            else:
                f.write(block_text(m, seed=1000 + i))
            done += m
            i += 1


BASELINE_SCRIPT = textwrap.dedent(f"""\
    # hand-written baseline of `cgcalc batch graphs/apple_orange.yaml ROWS -o OUT`
    import sys
    import numpy as np

    src, dst = sys.argv[1], sys.argv[2]
    d = np.loadtxt(src, delimiter=",", skiprows=1, ndmin=2)
    apple, apple_num, orange, orange_num, tax = d.T
    all_price = apple * apple_num + orange * orange_num
    price = all_price * tax
    out = np.column_stack([d, price, apple_num * tax, apple * tax, orange_num * tax, orange * tax, all_price])
    np.savetxt(dst, out, fmt="%.17g", delimiter=",", header="{OUT_HEADER}", comments="")
    """)


# The two pyarrow baselines share this: the columns of table `t` -> numpy float64 -> the formulas of
# BASELINE_SCRIPT / numpy_formulas -> a table `out` of the 5 inputs, price and its 5 gradients.
_ARROW_FORMULAS = f"""\
apple, apple_num, orange, orange_num, tax = (t.column(x).to_numpy().astype(np.float64, copy=False) for x in {INPUTS!r})
all_price = apple * apple_num + orange * orange_num
out = pa.table({{
    "apple": apple, "apple_num": apple_num, "orange": orange, "orange_num": orange_num, "tax": tax,
    "price": all_price * tax,
    "dprice/dapple": apple_num * tax, "dprice/dapple_num": apple * tax,
    "dprice/dorange": orange_num * tax, "dprice/dorange_num": orange * tax,
    "dprice/dtax": all_price,
}})
assert out.column_names == {OUT_HEADER.split(",")!r}
"""

ARROW_CSV_SCRIPT = f"""\
# hand-written baseline of `cgcalc batch graphs/apple_orange.yaml ROWS.csv -o OUT.csv`, with pyarrow's CSV
import sys
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

src, dst = sys.argv[1], sys.argv[2]
t = pcsv.read_csv(src)
{_ARROW_FORMULAS}pcsv.write_csv(out, dst)
"""

PARQUET_SCRIPT = f"""\
# hand-written baseline of `cgcalc batch graphs/apple_orange.yaml ROWS.parquet -o OUT.parquet`
import sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

src, dst = sys.argv[1], sys.argv[2]
t = pq.read_table(src)
{_ARROW_FORMULAS}pq.write_table(out, dst)
"""


def numpy_formulas(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    apple, apple_num, orange, orange_num, tax = (c[x] for x in INPUTS)
    all_price = apple * apple_num + orange * orange_num
    return {
        "price": all_price * tax,
        "apple": apple_num * tax,
        "apple_num": apple * tax,
        "orange": orange_num * tax,
        "orange_num": orange * tax,
        "tax": all_price,
    }


def short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def bench_memory(rep: Report, runs: int) -> None:
    import cgcalc

    n = 1_000_000
    cols = columns(n, seed=42)
    g = cgcalc.load(GRAPH)

    def ours():
        r = g.run_batch(cols)
        return r

    # the results once, for correctness, before timing
    r = ours()
    want = numpy_formulas(cols)
    got = {"price": r.outputs["price"], **r.grads["price"]}
    bad = [k for k in want if not np.array_equal(got[k], want[k])]
    if bad:
        rep.note(f"in memory: run_batch differs from the numpy formulas in {', '.join(bad)} (not bit for bit)")
    else:
        rep.note("in memory: run_batch's price and 5 gradients equal the numpy formulas bit for bit")
    del r, got, want
    gc.collect()
    a, b = interleaved(timed(ours), timed(lambda: numpy_formulas(cols)), runs, warmup=1)
    ratio = median(a) / median(b)
    rep.row(
        f"in memory, run_batch, {short(n)} rows (fwd + 5 grads)",
        fmt_s(median(a)),
        fmt_s(median(b)),
        ratio,
        "<= 1.2x",
        ratio <= 1.2,
    )
    a2, _ = interleaved(timed(lambda: g.run_batch(cols, exact=False)), timed(lambda: numpy_formulas(cols)), runs)
    rep.row("  (info) run_batch(exact=False)", fmt_s(median(a2)), fmt_s(median(b)), median(a2) / median(b), "-", None)


def compare_outputs(ours: Path, base: Path) -> tuple[int, str | None]:
    """(rows compared, first difference) comparing every cell as float(text), and the header's names with
    their quotes stripped (pyarrow's writer quotes them; it also writes `3` for 3.0, the same float)."""
    with open(ours) as fa, open(base) as fb:
        ha, hb = fa.readline().strip(), fb.readline().strip()
        if [h.strip('"') for h in ha.split(",")] != [h.strip('"') for h in hb.split(",")]:
            return 0, f"headers differ: ours {ha!r}, baseline {hb!r}"
        ha = ",".join(h.strip('"') for h in ha.split(","))
        n = 0
        for la, lb in zip(fa, fb):
            n += 1
            if la == lb:
                continue
            xa, xb = la.rstrip("\n").split(","), lb.rstrip("\n").split(",")
            if len(xa) != len(xb):
                return n, f"data row {n}: {len(xa)} cells in ours, {len(xb)} in the baseline"
            for j, (ta, tb) in enumerate(zip(xa, xb)):
                va, vb = float(ta), float(tb)
                if va != vb and not (va != va and vb != vb):
                    return n, f"data row {n}, column {ha.split(',')[j]!r}: ours {ta!r}, baseline {tb!r}"
        rest_a, rest_b = fa.readline(), fb.readline()
        if rest_a or rest_b:
            return n, f"row counts differ after {n} rows ({'ours' if rest_a else 'the baseline'} has more)"
    return n, None


def compare_parquet(ours: Path, base: Path) -> tuple[int, str | None]:
    """(rows compared, first difference) comparing the two files' column names and every column's values."""
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(ours), pq.read_table(base)
    if ta.column_names != tb.column_names:
        return 0, f"columns differ: ours {ta.column_names}, baseline {tb.column_names}"
    if ta.num_rows != tb.num_rows:
        return 0, f"row counts differ: ours {ta.num_rows:,}, baseline {tb.num_rows:,}"
    for name in ta.column_names:
        a, b = ta.column(name).to_numpy(), tb.column(name).to_numpy()
        if a.dtype != b.dtype:
            return ta.num_rows, f"column {name!r}: ours {a.dtype}, baseline {b.dtype}"
        if not np.array_equal(a, b, equal_nan=True):
            i = int(np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))[0])
            return ta.num_rows, f"data row {i + 1}, column {name!r}: ours {a[i]!r}, baseline {b[i]!r}"
    return ta.num_rows, None


def bench_pair(
    rep: Report,
    tmp: Path,
    rows: Path,
    n: int,
    runs: int,
    quick: bool,
    *,
    label: str,
    key: str,
    script: str,
    ext: str,
    limit: float,
    env: dict | None = None,
) -> None:
    """`cgcalc batch GRAPH rows -o out` against `python script rows out`, both as subprocesses: their
    outputs compared once (also warms the page cache), then interleaved timed runs."""
    script_path = tmp / f"baseline_{key}.py"
    script_path.write_text(script)
    out_ours, out_base = tmp / f"out_ours_{key}.{ext}", tmp / f"out_base_{key}.{ext}"
    cmd_ours = [CGCALC, "batch", str(GRAPH), str(rows), "-o", str(out_ours)]
    cmd_base = [PYTHON, str(script_path), str(rows), str(out_base)]
    label = f"{label}, {short(n)} rows" + (" [quick: scaled]" if quick else "")
    try:
        co, cb = run_child(cmd_ours, env=env), run_child(cmd_base)
        if co.code != 0:
            rep.error(label, f"cgcalc batch exited {co.code}: {co.stderr.strip()[-500:]}")
            return
        if cb.code != 0:
            rep.error(label, f"baseline script exited {cb.code}: {cb.stderr.strip()[-500:]}")
            return
        if ext == "parquet":
            compared, diff = compare_parquet(out_ours, out_base)
            how = "columns equal the baseline's (np.array_equal, float64)"
        else:
            compared, diff = compare_outputs(out_ours, out_base)
            how = "cells parse (float(text)) to the baseline's values"
        if diff:
            rep.note(f"{key}: output MISMATCH with the baseline: {diff}")
        else:
            rep.note(f"{key}: all {compared:,} rows x 11 {how}")
        size_ours, size_base = out_ours.stat().st_size, out_base.stat().st_size
        a, b = interleaved(lambda: run_child(cmd_ours, env=env).seconds, lambda: run_child(cmd_base).seconds, runs)
        ratio = median(a) / median(b)
        rep.row(label, fmt_s(median(a)), fmt_s(median(b)), ratio, f"<= {limit}x", ratio <= limit)
        rep.note(
            f"{key}: output sizes ours {fmt_bytes(size_ours)}, baseline {fmt_bytes(size_base)}; "
            f"ours {n / median(a):,.0f} rows/s; runs ours {', '.join(fmt_s(x) for x in a)}; "
            f"baseline {', '.join(fmt_s(x) for x in b)}"
        )
    finally:
        out_ours.unlink(missing_ok=True)
        out_base.unlink(missing_ok=True)


def bench_csv(rep: Report, tmp: Path, n: int, runs: int, quick: bool, blocks: dict, arrow: bool) -> None:
    """Targets 2 (default install) and, when `arrow`, 3 (pyarrow) on the same CSV file."""
    rows = tmp / f"rows_{n}.csv"
    write_rows(rows, n, blocks)
    if quick:
        rep.note(
            f"--quick: CSV -> CSV on {n:,} rows instead of 1,000,000 (a file under 8 MB: cgcalc starts no "
            "worker processes for it, so the default-install row is one process; the full run is not)"
        )
    try:
        # the default install: cgcalc without its Arrow path, as if pyarrow were not installed
        bench_pair(
            rep,
            tmp,
            rows,
            n,
            runs,
            quick,
            label="CSV -> CSV, default install (no pyarrow)",
            key="CSV -> CSV, default install",
            script=BASELINE_SCRIPT,
            ext="csv",
            limit=0.5,
            env={**os.environ, "CGCALC_ARROW": "0"},
        )
        if arrow:
            bench_pair(
                rep,
                tmp,
                rows,
                n,
                runs,
                quick,
                label="CSV -> CSV with pyarrow",
                key="CSV -> CSV with pyarrow",
                script=ARROW_CSV_SCRIPT,
                ext="csv",
                limit=1.3,
            )
    finally:
        rows.unlink(missing_ok=True)


def bench_parquet(rep: Report, tmp: Path, n: int, runs: int, quick: bool) -> None:
    """Target 4: Parquet in and out, the input made from the same generated columns as the CSV files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = tmp / f"rows_{n}.parquet"
    pq.write_table(pa.table(columns(n, seed=7)), rows)
    if quick:
        rep.note(f"--quick: Parquet -> Parquet on {n:,} rows instead of 1,000,000")
    try:
        bench_pair(
            rep,
            tmp,
            rows,
            n,
            runs,
            quick,
            label="Parquet -> Parquet",
            key="Parquet -> Parquet",
            script=PARQUET_SCRIPT,
            ext="parquet",
            limit=1.3,
        )
    finally:
        rows.unlink(missing_ok=True)


def bench_peak(rep: Report, tmp: Path, big: int, small: int, runs: int, quick: bool, blocks: dict) -> None:
    rows_big, rows_small = tmp / f"rows_{big}.csv", tmp / f"rows_{small}.csv"
    write_rows(rows_small, small, blocks)
    write_rows(rows_big, big, blocks)
    out = tmp / "out_peak.csv"

    def child(rows: Path):
        # --jobs 1: every row in the one measured process (with workers, each worker streams the same way,
        # but a worker's peak is not this process's peak: RUSAGE counts only waited-for children)
        c = run_child([CGCALC, "batch", str(GRAPH), str(rows), "-o", str(out), "--jobs", "1"])
        out.unlink(missing_ok=True)
        if c.code != 0:
            raise RuntimeError(f"cgcalc batch exited {c.code}: {c.stderr.strip()[-500:]}")
        return c

    label = f"peak RSS, batch --jobs 1, {short(big)} vs {short(small)} rows" + (" [quick: scaled]" if quick else "")
    if quick:
        rep.note(f"--quick: peak memory on {big:,} rows instead of 10,000,000 (vs {small:,})")
    big_runs, small_runs = [], []
    try:
        interleaved(
            lambda: big_runs.append(child(rows_big)) or 0.0, lambda: small_runs.append(child(rows_small)) or 0.0, runs
        )
    except RuntimeError as e:
        rep.error(label, str(e))
        return
    pa, pb = median([c.maxrss for c in big_runs]), median([c.maxrss for c in small_runs])
    ratio = pa / pb
    rep.row(label, fmt_bytes(pa), fmt_bytes(pb), ratio, "<= 1.2x", ratio <= 1.2)
    rep.note(
        f"peak RSS: {big:,} rows took {fmt_s(median([c.seconds for c in big_runs]))} "
        f"({big / median([c.seconds for c in big_runs]):,.0f} rows/s), peaks (KiB) "
        f"{', '.join(str(c.maxrss >> 10) for c in big_runs)}; {small:,} rows took "
        f"{fmt_s(median([c.seconds for c in small_runs]))}, peaks (KiB) "
        f"{', '.join(str(c.maxrss >> 10) for c in small_runs)}"
    )
    rows_big.unlink()
    rows_small.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller files")
    ap.add_argument("--runs", type=int, help="runs per measurement (default 5, 3 with --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    rep = BatchReport(
        f"bench_batch ({'quick, ' if args.quick else ''}median of interleaved runs: {runs}, in memory {9 if args.quick else 21})"
    )
    blocks: dict[int, str] = {}
    n_io = 200_000 if args.quick else 1_000_000
    arrow = importlib.util.find_spec("pyarrow") is not None
    if not arrow:
        rep.note(
            "pyarrow is not importable: skipping 'CSV -> CSV with pyarrow' and 'Parquet -> Parquet' "
            "(pip install 'cgcalc[arrow]' to run them)"
        )
    with work_dir(rep, "cgcalc-bench-batch-", args.keep) as tmp:
        attempt(rep, "in memory", bench_memory, rep, 9 if args.quick else 21)  # cheap: more runs
        attempt(rep, "CSV", bench_csv, rep, tmp, n_io, runs, args.quick, blocks, arrow)
        if arrow:
            attempt(rep, "Parquet", bench_parquet, rep, tmp, n_io, runs, args.quick)
        attempt(
            rep,
            "peak",
            bench_peak,
            rep,
            tmp,
            1_000_000 if args.quick else 10_000_000,
            100_000,
            runs,
            args.quick,
            blocks,
        )
    rep.finish()


if __name__ == "__main__":
    main()
    sys.exit(0)
