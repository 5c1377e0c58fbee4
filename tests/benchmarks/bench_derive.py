"""Issue 12 benchmark: derivative graphs, Hessians and Hessian-vector products, against plain runs side by side.

    python tests/benchmarks/bench_derive.py [--quick] [--runs N]

Targets (medians of interleaved runs, in this process):
  - `cgcalc derive` of a 10,000-node graph (the chain and the tree of bench_scale, as a JSON file and as the
    YAML file cgcalc writes) < 2x loading it (`Graph.derive_text()` against `cgcalc.loads(text)` of the
    original); and, as information, loading the derivative file against loading the original;
  - `g.hessian()` of a scalar graph with n inputs <= (n + 2)x one `g.run()` (graphs of n = 2, 5, 20, 100
    inputs: the jax docstring's g, the apple-orange graph, and the tree of bench_scale with 20 and 100 inputs);
  - `g.hvp(v)` <= 4x one `g.run()` (the HVP graph built once, as `hessian` and `check --order 2` do).
Reports; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import GRAPHS, Report, fmt_s, interleaved, median, timed  # noqa: E402
from bench_scale import chain_graph, tree_graph  # noqa: E402

import cgcalc  # noqa: E402
from cgcalc.io.graph_text import to_text  # noqa: E402


def tree_with_inputs(n_nodes: int, n_inputs: int) -> str:
    g = tree_graph(n_nodes)
    keep = [f"x{j}" for j in range(n_inputs)]
    g["inputs"] = {k: v for k, v in g["inputs"].items() if not k.startswith("x") or k in keep}
    for node in g["nodes"].values():
        node["in"] = [f"x{int(r[1:]) % n_inputs}" if r.startswith("x") and r[1:].isdigit() else r for r in node["in"]]
    return json.dumps(g)


def add(report: Report, target: str, ours: list[float], base: list[float], limit: float) -> None:
    ratio = median(ours) / median(base)
    report.row(target, fmt_s(median(ours)), fmt_s(median(base)), ratio, f"<= {limit:g}x", ratio <= limit)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    report = Report("issue 12: derive, hessian, hvp")

    for label, doc in (("chain", chain_graph(10_000)), ("tree", tree_graph(10_000))):
        for fmt in ("JSON", "YAML"):  # the same graph as a JSON file (read by json.loads) and a YAML one
            text = json.dumps(doc) if fmt == "JSON" else to_text(doc)
            g = cgcalc.loads(text, json=fmt == "JSON")
            ours, base = interleaved(
                timed(g.derive_text), timed(lambda text=text, fmt=fmt: cgcalc.loads(text, json=fmt == "JSON")), runs
            )
            add(report, f"derive, 10,000-node {label}, {fmt} file", ours, base, 2.0)
        derived = g.derive_text()  # the derivative file (YAML, 3.4 nodes a node): read back, against the file
        ours, base = interleaved(
            timed(lambda derived=derived: cgcalc.loads(derived)), timed(lambda text=text: cgcalc.loads(text)), runs
        )
        report.info(f"loading derive's file of the {label} (info)", ours, base)

    graphs = [
        ("jax g, n = 2", cgcalc.loads("inputs: {x0: 1.0, x1: 2.0}\nnodes:\n  g: x0**3 - 2*x0*x1 - x1**6\n")),
        ("apple-orange, n = 5", cgcalc.load(GRAPHS / "apple_orange.yaml")),
        ("tree of 300 nodes, n = 20", cgcalc.loads(tree_with_inputs(300, 20), json=True)),
        ("tree of 1,000 nodes, n = 100", cgcalc.loads(tree_with_inputs(1000, 100), json=True)),
    ]
    for label, g in graphs:
        n = len(g.inputs)
        t0 = time.perf_counter()
        g.hessian()  # the first call builds the derivative graph: shown as info, then cached
        first = time.perf_counter() - t0
        ours, base = interleaved(timed(g.hessian), timed(g.run), runs, warmup=1)
        report.row(
            f"hessian, {label}, first call (info)", fmt_s(first), fmt_s(median(base)), first / median(base), "-", None
        )
        add(report, f"hessian, {label}", ours, base, n + 2.0)
        vector = dict.fromkeys(g.inputs, 1.0)
        g.hvp(vector)
        ours, base = interleaved(timed(lambda g=g, vector=vector: g.hvp(vector)), timed(g.run), runs, warmup=1)
        add(report, f"hvp, {label}", ours, base, 4.0)


if __name__ == "__main__":
    main()
