"""Issue 15 benchmark: a sweep of 100,000 points against one `batch` of 100,000 rows.

    python tests/benchmarks/bench_whatif.py [--quick] [--runs N]

Targets (medians of interleaved runs):
  - `cgcalc sweep graphs/apple_orange.yaml apple=0:200:100000 -f csv` <= 1.2x `cgcalc batch` of a CSV file of the
    same 100,000 apple values (both whole processes, output to a file: start-up, load, the vectorized run, CSV);
  - the same in-process: `whatif.sweep` (the run behind `cgcalc sweep`) <= 1.5x `np.linspace` + `Graph.run_batch`
    (what a sweep takes in Python without it; no file read, no text written). The sweep does that work and a
    little more, ~0.2 ms whatever its length: one `run` at the file's values (the tangent's point) and a
    finiteness check of each result column (its warnings);
  - a grid, 317 x 316 = 100,172 points of apple x tax, <= 1.5x `np.meshgrid` + `run_batch` of those rows.
Shown as info: `Graph.sweep` (the points as plain dicts: JSON's shape), the table and chart of a 100,000-point
sweep, and `tornado` and `solve` against one `run`. Reports; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import GRAPHS, PYTHON, ROOT, Report, attempt, fmt_s, interleaved, median, run_child, timed, work_dir  # noqa: E402

sys.path.insert(0, str(ROOT))  # this checkout's cgcalc, as the child processes get it (PYTHONPATH)
import cgcalc  # noqa: E402
from cgcalc import whatif  # noqa: E402

GRAPH = GRAPHS / "apple_orange.yaml"
POINTS = 100_000


def add(report: Report, target: str, ours: list[float], base: list[float], limit: float | None) -> None:
    ratio = median(ours) / median(base)
    shown = f"<= {limit:g}x" if limit is not None else "-"
    report.row(
        target, fmt_s(median(ours)), fmt_s(median(base)), ratio, shown, None if limit is None else ratio <= limit
    )


def cli_target(report: Report, tmp: Path, runs: int) -> None:
    import numpy as np

    rows = tmp / "rows.csv"
    xs = np.linspace(0, 200, POINTS)
    rows.write_text("apple\n" + "".join(f"{x!r}\n" for x in xs.tolist()))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CGCALC_ARROW": "0"}  # this checkout's cgcalc, no pyarrow
    sweep = [PYTHON, "-m", "cgcalc", "sweep", str(GRAPH), f"apple=0:200:{POINTS}", "-f", "csv"]
    batch = [PYTHON, "-m", "cgcalc", "batch", str(GRAPH), str(rows), "--jobs", "1"]
    for cmd in (sweep, batch):
        c = run_child(cmd, env=env)
        if c.code != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {c.code}: {c.stderr[-500:]}")
    ours, base = interleaved(lambda: run_child(sweep, env=env).seconds, lambda: run_child(batch, env=env).seconds, runs)
    add(report, f"cgcalc sweep of {POINTS:,} points vs cgcalc batch of {POINTS:,} rows", ours, base, 1.2)
    report.note(
        "both print CSV to stdout (/dev/null), one process (--jobs 1), without pyarrow; batch reads its 100,000 rows "
        "and writes all 5 gradients, sweep makes its points and writes the one of the swept input"
    )


def api_targets(report: Report, runs: int) -> None:
    import numpy as np

    g = cgcalc.load(GRAPH)
    xs = np.linspace(0, 200, POINTS)
    axis = whatif.Axis("apple", 0.0, 200.0, POINTS)
    ours, base = interleaved(
        timed(lambda: whatif.sweep(g.plan, [axis])),
        timed(lambda: g.run_batch({"apple": np.linspace(0, 200, POINTS)})),
        runs * 10,
        warmup=3,
    )
    add(report, f"whatif.sweep, {POINTS:,} points vs linspace + run_batch", ours, base, 1.5)

    grid = [whatif.Axis("apple", 0.0, 200.0, 317), whatif.Axis("tax", 1.0, 1.2, 316)]

    def grid_batch():
        a, t = (m.ravel() for m in np.meshgrid(grid[0].values(), grid[1].values(), indexing="ij"))
        return g.run_batch({"apple": a, "tax": t})

    ours, base = interleaved(timed(lambda: whatif.sweep(g.plan, grid)), timed(grid_batch), runs * 10, warmup=3)
    add(report, "whatif.sweep, 317 x 316 grid vs meshgrid + run_batch", ours, base, 1.5)

    ours, base = interleaved(
        timed(lambda: g.sweep({"apple": (0, 200, POINTS)})), timed(lambda: g.run_batch({"apple": xs})), runs
    )
    add(report, f"Graph.sweep (plain dicts), {POINTS:,} points (info)", ours, base, None)

    from cgcalc.views.render_analysis import sweep_view
    from cgcalc.views.whatif import sweep_csv

    sw = whatif.sweep(g.plan, [axis])
    ours, base = interleaved(timed(lambda: _render(sweep_view(sw))), timed(lambda: sweep_csv(sw)), runs)
    report.info(f"chart and table of {POINTS:,} points vs their CSV text (info)", ours, base)
    for label, f in (
        ("tornado of apple-orange (10 rows, one run_batch) vs one run (info)", lambda: whatif.tornado(g.plan)),
        ("solve apple for price = 800 vs one run (info)", lambda: whatif.solve(g.plan, "apple", 800.0)),
    ):
        ours, base = interleaved(timed(f), timed(g.run), runs * 5, warmup=2)
        add(report, label, ours, base, None)


def _render(renderable) -> None:
    import io

    from rich.console import Console

    Console(file=io.StringIO(), width=100, color_system=None).print(renderable)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="Keep the temporary directory.")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    report = Report(f"issue 15: sweep of {POINTS:,} points vs batch of {POINTS:,} rows")
    with work_dir(report, "cgcalc-bench-whatif-", args.keep) as tmp:
        attempt(report, "cgcalc sweep vs cgcalc batch", cli_target, report, tmp, runs)
    attempt(report, "whatif.sweep vs run_batch", api_targets, report, runs)
    report.finish()


if __name__ == "__main__":
    main()
