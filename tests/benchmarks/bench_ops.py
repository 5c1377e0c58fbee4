"""Issue 13 benchmark: each new elementwise op in a 1,000,000-row `Graph.run_batch` against hand-written numpy.

    .venv/bin/python tests/benchmarks/bench_ops.py [--quick] [--runs N] [--rows N]

For each op a graph of one node (`y: sin(x)`, `y: maximum(a, b)`, `y: where(c, a, b)`, ...) is run on N rows
(forward and the gradient of y with respect to every input) and timed against the same value and gradients
written directly in numpy, as a user would write them; the interleaved medians are compared (target: <= 1.2x).
The results are checked once, before timing, to equal the numpy formulas (bit for bit where the formula is the
same arithmetic, else to 1e-15).

run_batch's default for a graph of scalars is exact=True: sin and cos element by element with the C library,
so that each row equals its single run bit for bit (as exp, log, tanh, pow and sigmoid already are; `cgcalc
batch --fast-math` is exact=False). That mode cannot come near numpy's vectorized sin and cos; its figure is
reported as info, and the target row is exact=False. The other ops compute the same bits either way.
--quick: 200,000 rows and 5 runs. Reports; always exits 0.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Report, attempt, fmt_s, interleaved, median, timed  # noqa: E402


def _sign_diff(a, b):
    return (a > b) + 0.5 * (a == b)  # 1 where a wins, 0.5 at a tie, 0 where b wins


# op -> (the graph's node, its inputs and their values' generator, the numpy formulas: {"y": ..., input: grad})
CASES = {
    "sin": ("sin(x)", lambda r, n: {"x": r.uniform(-10, 10, n)}, lambda c: {"y": np.sin(c["x"]), "x": np.cos(c["x"])}),
    "cos": ("cos(x)", lambda r, n: {"x": r.uniform(-10, 10, n)}, lambda c: {"y": np.cos(c["x"]), "x": -np.sin(c["x"])}),
    "sqrt": (
        "sqrt(x)",
        lambda r, n: {"x": r.uniform(0.1, 100, n)},
        lambda c: (lambda y: {"y": y, "x": 0.5 / y})(np.sqrt(c["x"])),
    ),
    "abs": ("abs(x)", lambda r, n: {"x": r.uniform(-10, 10, n)}, lambda c: {"y": np.abs(c["x"]), "x": np.sign(c["x"])}),
    "square": (
        "square(x)",
        lambda r, n: {"x": r.uniform(-10, 10, n)},
        lambda c: {"y": c["x"] * c["x"], "x": 2 * c["x"]},
    ),
    "leaky_relu": (
        "leaky_relu(x)",
        lambda r, n: {"x": r.uniform(-10, 10, n)},
        lambda c: {"y": np.where(c["x"] > 0, c["x"], 0.01 * c["x"]), "x": np.where(c["x"] > 0, 1.0, 0.01)},
    ),
    "clip": (
        "clip(x, lo=-1, hi=1)",
        lambda r, n: {"x": r.uniform(-3, 3, n)},
        lambda c: {"y": np.clip(c["x"], -1.0, 1.0), "x": ((c["x"] >= -1.0) & (c["x"] <= 1.0)).astype(np.float64)},
    ),
    "maximum": (
        "maximum(a, b)",
        lambda r, n: {"a": r.integers(0, 100, n) * 0.5, "b": r.integers(0, 100, n) * 0.5},  # ties: 1 in 100
        lambda c: (lambda w: {"y": np.maximum(c["a"], c["b"]), "a": w, "b": 1.0 - w})(_sign_diff(c["a"], c["b"])),
    ),
    "minimum": (
        "minimum(a, b)",
        lambda r, n: {"a": r.integers(0, 100, n) * 0.5, "b": r.integers(0, 100, n) * 0.5},
        lambda c: (lambda w: {"y": np.minimum(c["a"], c["b"]), "a": w, "b": 1.0 - w})(_sign_diff(c["b"], c["a"])),
    ),
    "where": (
        "where(c, a, b)",
        lambda r, n: {"c": r.integers(0, 2, n).astype(np.float64), "a": r.uniform(-1, 1, n), "b": r.uniform(-1, 1, n)},
        lambda c: (lambda m: {"y": np.where(m, c["a"], c["b"]), "a": m * 1.0, "b": 1.0 - m})(c["c"] != 0),
    ),
}


def graph_text(op: str) -> str:
    node, make, _ = CASES[op]
    names = list(make(np.random.default_rng(0), 1))
    inputs = ", ".join(f"{k}: {{value: 1, grad: false}}" if op == "where" and k == "c" else f"{k}: 1" for k in names)
    return f"inputs: {{{inputs}}}\nnodes:\n  y: {node}\n"


def check(rep: Report, op: str, res, want: dict) -> None:
    got = {"y": res.outputs["y"], **res.grads["y"]}
    exact = all(np.array_equal(got[k], want[k]) for k in want)
    close = all(np.allclose(got[k], want[k], rtol=1e-15, atol=0) for k in want)
    if not close:
        rep.note(f"{op}: run_batch differs from the numpy formulas beyond 1e-15 in {[k for k in want]}")
    elif not exact:
        rep.note(f"{op}: run_batch equals the numpy formulas to 1e-15 (not bit for bit: another order of operations)")


def bench_op(rep: Report, op: str, n: int, runs: int) -> None:
    import cgcalc

    _, make, formulas = CASES[op]
    cols = make(np.random.default_rng(42), n)
    g = cgcalc.loads(graph_text(op))
    transcendental = op in ("sin", "cos")
    check(rep, op, g.run_batch(cols, exact=False), formulas(cols))
    gc.collect()
    a, b = interleaved(timed(lambda: g.run_batch(cols, exact=False)), timed(lambda: formulas(cols)), runs, warmup=1)
    ratio = median(a) / median(b)
    what = "exact=False" if transcendental else "fwd + grads"
    rep.row(f"{op}, {n:,} rows ({what})", fmt_s(median(a)), fmt_s(median(b)), ratio, "<= 1.2x", ratio <= 1.2)
    if transcendental:
        a2, b2 = interleaved(timed(lambda: g.run_batch(cols)), timed(lambda: formulas(cols)), max(3, runs // 3))
        rep.row(f"  (info) {op}, exact=True (the C library per row)", fmt_s(median(a2)), fmt_s(median(b2)),
                median(a2) / median(b2), "-", None)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200,000 rows, 5 runs")
    ap.add_argument("--runs", type=int, help="runs per measurement (default 11, 5 with --quick)")
    ap.add_argument("--rows", type=int, help="rows (default 1,000,000)")
    ap.add_argument("ops", nargs="*", help="only these ops")
    args = ap.parse_args()
    runs = args.runs or (5 if args.quick else 11)
    n = args.rows or (200_000 if args.quick else 1_000_000)
    rep = Report(f"bench_ops (median of {runs} interleaved runs; run_batch against hand-written numpy)")
    for op in args.ops or CASES:
        attempt(rep, op, bench_op, rep, op, n, runs)
    rep.finish()


if __name__ == "__main__":
    main()
    sys.exit(0)
