"""Issue 17 benchmark: `cgcalc batch` in pipelines — streaming to a pipe, bad rows — and, with --against, this
tree's `cgcalc batch` against another checkout's (before/after a change), interleaved.

    python tests/benchmarks/bench_pipes.py [--quick] [--runs N] [--keep] [--against DIR]

Targets (graphs/apple_orange.yaml, price and its 5 gradients; 2,000,000 rows, --quick 400,000):
  1. `cgcalc batch g.yaml big.csv | head -1` (a real shell pipeline): the first row arrives, and the pipeline
     ends, in <= 0.2x the time of the full run to a pipe (its reader reading everything); cgcalc's exit code
     is 141 and its stderr empty;
  2. 100 bad rows spread through the file, `--skip-bad-rows`: <= 1.1x the time of the same file without them
     (bad rows cost about what good rows cost), without pyarrow and with it; and `--bad-rows FILE` likewise;
  3. with --against DIR: the CSV -> CSV (without and with pyarrow) and Parquet -> Parquet runs of
     bench_batch.py, 1,000,000 rows (--quick 200,000), this tree against DIR's `cgcalc batch` (its source tree,
     run with PYTHONPATH=DIR), within 10% (<= 1.1x), and their outputs the same bytes.
Every command runs as `python -m cgcalc` with PYTHONPATH set to its tree, so no install is needed.
Reports; always exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import GRAPHS, ROOT, Report, attempt, fmt_s, interleaved, median, run_child, work_dir  # noqa: E402

GRAPH = GRAPHS / "apple_orange.yaml"
HEADER = "apple,apple_num,orange,orange_num,tax"
BAD_ROWS = 100


class PipesReport(Report):
    WIDTHS = (66, *Report.WIDTHS[1:])


def env_for(tree: Path, arrow: bool = True) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("CGCALC_DEBUG", None)
    if not arrow:
        env["CGCALC_ARROW"] = "0"
    return env


def cgcalc(*args) -> list[str]:
    return [sys.executable, "-m", "cgcalc", "batch", *map(str, args)]


def write_rows(path: Path, n: int, bad: int = 0, seed: int = 0) -> None:
    """n rows of prices (cents), counts and a tax rate; `bad` of them, spread by a fixed seed, with a bad cell."""
    rng = np.random.default_rng(seed)
    block = 100_000
    spots = set(np.random.default_rng(seed + 1).choice(n, bad, replace=False).tolist()) if bad else set()
    with open(path, "w") as f:
        f.write(HEADER + "\n")
        for start in range(0, n, block):
            m = min(block, n - start)
            cols = [
                np.round(rng.uniform(50, 150, m), 2),
                rng.integers(1, 11, m),
                np.round(rng.uniform(50, 200, m), 2),
                rng.integers(1, 11, m),
                np.round(rng.uniform(1.0, 1.2, m), 3),
            ]
            lines = [f"{a:.2f},{b},{c:.2f},{d},{e:.3f}" for a, b, c, d, e in zip(*(c.tolist() for c in cols))]
            for i in sorted(s - start for s in spots if start <= s < start + m):
                lines[i] = lines[i].replace(",", ",x", 1)  # apple_num: a bad number
            f.write("\n".join(lines) + "\n")


def full_to_pipe(rows: Path, env: dict) -> float:
    """The whole run, its stdout a pipe read to the end."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cgcalc(GRAPH, rows), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    while p.stdout.read(1 << 20):
        pass
    p.wait()
    return time.perf_counter() - t0


def head_1(rows: Path, env: dict, tmp: Path) -> tuple[float, float, int, str]:
    """`cgcalc batch ... | head -1` in a shell: (time to the first row, time to the pipeline's end, cgcalc's exit
    code, cgcalc's stderr)."""
    import shlex

    err, code = tmp / "head_stderr.txt", tmp / "head_code.txt"
    line = " ".join(map(shlex.quote, cgcalc(GRAPH, rows)))
    script = f"{line} 2>{shlex.quote(str(err))} | head -1; echo ${{PIPESTATUS[0]}} > {shlex.quote(str(code))}"
    t0 = time.perf_counter()
    p = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, env=env)
    p.stdout.readline()
    first = time.perf_counter() - t0
    p.stdout.read()
    p.wait()
    end = time.perf_counter() - t0
    return first, end, int(code.read_text()), err.read_text()


def bench_head(rep: Report, tmp: Path, n: int, runs: int) -> None:
    rows = tmp / f"head_{n}.csv"
    write_rows(rows, n)
    env = env_for(ROOT)
    heads: list[tuple] = []
    full, _ = interleaved(lambda: full_to_pipe(rows, env), lambda: heads.append(head_1(rows, env, tmp)) or 0.0, runs)
    first, end = median([h[0] for h in heads]), median([h[1] for h in heads])
    codes, errs = {h[2] for h in heads}, {h[3] for h in heads}
    label = f"`cgcalc batch g.yaml big.csv | head -1`, {n:,} rows"
    rep.row(
        f"{label}: first row",
        fmt_s(first),
        fmt_s(median(full)),
        first / median(full),
        "<= 0.2x",
        first <= 0.2 * median(full),
    )
    ok = end <= 0.2 * median(full) and codes == {141} and errs == {""}
    rep.row(f"{label}: pipeline ends", fmt_s(end), fmt_s(median(full)), end / median(full), "<= 0.2x", ok)
    rep.note(
        f"head -1: baseline is the full run to a pipe read to its end; cgcalc's exit codes {sorted(codes)} "
        f"(141: SIGPIPE's), its stderr {sorted(errs)!r}; runs: first row {', '.join(fmt_s(h[0]) for h in heads)}; "
        f"end {', '.join(fmt_s(h[1]) for h in heads)}; full {', '.join(fmt_s(x) for x in full)}"
    )


def bench_bad_rows(rep: Report, tmp: Path, n: int, runs: int, arrow: bool) -> None:
    clean, bad = tmp / f"clean_{n}.csv", tmp / f"bad_{n}.csv"
    write_rows(clean, n, seed=3)
    write_rows(bad, n, bad=BAD_ROWS, seed=3)
    out, bad_out = tmp / "out_bad.csv", tmp / "bad_rows.csv"
    modes = [("without pyarrow", False)] + ([("with pyarrow", True)] if arrow else [])
    for name, on in modes:
        env = env_for(ROOT, on)

        def run(rows: Path, *extra, env=env) -> float:
            c = run_child(cgcalc(GRAPH, rows, "-o", out, "--skip-bad-rows", *extra), env=env)
            if c.code != 0:
                raise RuntimeError(f"cgcalc batch exited {c.code}: {c.stderr.strip()[-300:]}")
            return c.seconds

        a, b = interleaved(lambda: run(bad), lambda: run(clean), runs)
        rep.row(f"{BAD_ROWS} bad rows in {n:,}, --skip-bad-rows, {name}", fmt_s(median(a)), fmt_s(median(b)),
                median(a) / median(b), "<= 1.1x", median(a) <= 1.1 * median(b))  # fmt: skip
        a, b = interleaved(lambda: run(bad, "--bad-rows", bad_out), lambda: run(clean), runs)
        written = len(bad_out.read_text().splitlines()) - 1
        rep.row(f"{BAD_ROWS} bad rows in {n:,}, --bad-rows FILE, {name}", fmt_s(median(a)), fmt_s(median(b)),
                median(a) / median(b), "<= 1.1x", median(a) <= 1.1 * median(b) and written == BAD_ROWS)  # fmt: skip
        rep.note(f"bad rows, {name}: {written} rows in the --bad-rows file; runs {', '.join(fmt_s(x) for x in a)}")


def bench_against(rep: Report, tmp: Path, other: Path, n: int, runs: int, arrow: bool) -> None:
    """This tree's batch against another checkout's, on bench_batch.py's CSV and Parquet runs."""
    rows = tmp / f"ab_{n}.csv"
    write_rows(rows, n, seed=7)
    cases = [("CSV -> CSV, without pyarrow", rows, "csv", False)]
    if arrow:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        pq.write_table(pcsv.read_csv(rows), tmp / f"ab_{n}.parquet")
        cases += [("CSV -> CSV, with pyarrow", rows, "csv", True), ("Parquet -> Parquet", tmp / f"ab_{n}.parquet", "parquet", True)]  # fmt: skip
    for name, src, ext, on in cases:
        outs = {tree: tmp / f"ab_out_{i}.{ext}" for i, tree in enumerate((ROOT, other))}

        def run(tree: Path, src=src, on=on, outs=outs) -> float:
            c = run_child(cgcalc(GRAPH, src, "-o", outs[tree]), env=env_for(tree, on))
            if c.code != 0:
                raise RuntimeError(f"cgcalc batch ({tree}) exited {c.code}: {c.stderr.strip()[-300:]}")
            return c.seconds

        a, b = interleaved(lambda: run(ROOT), lambda: run(other), runs)
        same = outs[ROOT].read_bytes() == outs[other].read_bytes()
        ratio = median(a) / median(b)
        rep.row(f"{name}, {n:,} rows: this tree vs --against", fmt_s(median(a)), fmt_s(median(b)), ratio, "<= 1.1x",
                ratio <= 1.1 and (same or ext == "parquet"))  # fmt: skip
        rep.note(
            f"{name}: outputs {'the same bytes' if same else 'DIFFERENT'}; runs this tree "
            f"{', '.join(fmt_s(x) for x in a)}; --against {', '.join(fmt_s(x) for x in b)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller files")
    ap.add_argument("--runs", type=int, help="runs per measurement (default 5, 3 with --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--against", type=Path, help="another checkout's source tree, to compare batch with")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    rep = PipesReport(f"bench_pipes ({'quick, ' if args.quick else ''}median of interleaved runs: {runs})")
    arrow = importlib.util.find_spec("pyarrow") is not None
    n = 400_000 if args.quick else 2_000_000
    with work_dir(rep, "cgcalc-bench-pipes-", args.keep) as tmp:
        attempt(rep, "head -1", bench_head, rep, tmp, n, runs)
        attempt(rep, "bad rows", bench_bad_rows, rep, tmp, n, runs, arrow)
        if args.against is not None:
            n_ab = 200_000 if args.quick else 1_000_000
            attempt(rep, "against", bench_against, rep, tmp, args.against.resolve(), n_ab, runs, arrow)
    rep.finish()


if __name__ == "__main__":
    main()
    sys.exit(0)
