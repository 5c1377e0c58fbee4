"""Batch evaluation: `Graph.run_batch` and `cgcalc batch` against single runs, row by row.

Every expected value comes from a single run (`Graph.run`, or `cgcalc run --set ... --format json`) or from
a hand formula; nothing here is computed by the batch code it checks.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import proc_helpers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proc_helpers import Run, apple_lines, needs_proc
from typer.testing import CliRunner

import cgcalc
from cgcalc.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
GRAPH_FILES = sorted(p for p in GRAPHS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
CGCALC = [sys.executable, "-m", "cgcalc"]
TMP_PREFIX = ".cgcalc-batch-"
csv_path = proc_helpers.csv_path  # an autouse fixture: every test with pyarrow and without it

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RTOL = 1e-12


# --- helpers -------------------------------------------------------------------------------------


def load(name: str) -> cgcalc.Graph:
    return cgcalc.load(GRAPHS / name)


def file_value(g: cgcalc.Graph, name: str) -> np.ndarray:
    inp = g.plan.inputs[g.plan.index[name]]
    return np.array(inp.value, dtype=np.float64).reshape(inp.shape)


def has_grad(g: cgcalc.Graph, name: str) -> bool:
    return g.plan.inputs[g.plan.index[name]].grad


def grad_inputs(g: cgcalc.Graph) -> list[str]:
    return [x for x in g.inputs if has_grad(g, x)]


def is_scalar_graph(g: cgcalc.Graph) -> bool:
    return all(file_value(g, x).ndim == 0 for x in g.inputs)


def bit_equal(got, expected) -> bool:
    """Same shape and the same float64 values; NaN equals NaN; 0.0 and -0.0 are told apart."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
        return False
    zero = (a == 0) & (b == 0)
    return bool((np.signbit(a[zero]) == np.signbit(b[zero])).all())


def assert_same(got, expected, what: str, exact: bool) -> None:
    got_a, exp_a = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if exact:
        assert bit_equal(got_a, exp_a), f"{what}: batch {got_a!r} != single run {exp_a!r}"
    else:
        assert got_a.shape == exp_a.shape, f"{what}: shape {got_a.shape} != {exp_a.shape}"
        np.testing.assert_allclose(got_a, exp_a, rtol=RTOL, atol=1e-15, err_msg=what)


def check_rows_against_single_runs(g: cgcalc.Graph, columns: dict, exact: bool, output=None) -> None:
    """Row i of run_batch(columns) equals run(**row_i): every output and every dO/dX."""
    outputs = list(g.outputs) if output is None else output
    res = g.run_batch(columns, output=outputs)
    n = len(next(iter(columns.values())))
    assert res.rows == n
    assert list(res.grads) == outputs
    for o in outputs:
        assert list(res.grads[o]) == grad_inputs(g), "dO/dX for every input with a gradient, in file order"
        assert res.outputs[o].shape[0] == n
    for i in range(n):
        row = {k: np.asarray(v)[i] for k, v in columns.items()}
        row = {k: float(v) if v.ndim == 0 else v for k, v in row.items()}
        single = g.run(row, output=outputs)
        for o in outputs:
            assert_same(res.outputs[o][i], single.value(o), f"row {i} {o} {row}", exact)
            for x in grad_inputs(g):
                assert_same(res.grads[o][x][i], single.grad(x, o), f"row {i} d{o}/d{x} {row}", exact)


runner = CliRunner()


def cli(*args, input: str | bytes | None = None, code: int | None = 0):
    r = runner.invoke(app, [str(a) for a in args], input=input)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    if code is not None:
        assert r.exit_code == code, f"exit {r.exit_code}, stderr: {r.stderr!r}, stdout: {r.stdout[:500]!r}"
    return r


def set_args(row: dict) -> list[str]:
    out = []
    for k, v in row.items():
        out += ["--set", f"{k}={json.dumps(v) if isinstance(v, list) else repr(float(v))}"]
    return out


def strict_float(v):
    """Our JSON's non-finite strings back to floats, in nested lists too."""
    if isinstance(v, list):
        return [strict_float(x) for x in v]
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return v


def single_run_json(graph: Path, row: dict, output: str | None = None) -> dict:
    """`cgcalc run --set ... --format json` for one row: {column name: value} as batch would name them."""
    args = ["run", graph, *set_args(row), "--format", "json"]
    if output:
        args += ["--output", output]
    d = json.loads(cli(*args).stdout)
    cols = {o: strict_float(v) for o, v in d["outputs"].items()}
    by_name = {n["name"]: n for n in d["nodes"]}
    g = cgcalc.load(graph)
    outs = list(g.outputs) if output == "all" else [output or g.outputs[0]]
    for o in outs:
        for x in grad_inputs(g):
            node = by_name[x]
            cols[f"d{o}/d{x}"] = strict_float(node["grads"][o] if "grads" in node else node["grad"])
    return cols


def parse_cell(text: str):
    """A CSV cell of the output: a number (repr or NaN/Infinity) or a JSON array."""
    t = text.strip()
    if t.startswith("["):
        return strict_float(json.loads(t))
    return float(t)


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def expected_columns(g: cgcalc.Graph, given: list[str], outputs: list[str] | None = None) -> list[str]:
    outs = outputs or [g.outputs[0]]
    names = list(dict.fromkeys(list(g.outputs) + outs))
    return given + names + [f"d{o}/d{x}" for o in outs for x in grad_inputs(g)]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(c if isinstance(c, str) else repr(float(c)) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(TMP_PREFIX))


def apple_rows(n: int, bad_line: int | None = None) -> str:
    """An apple.yaml CSV of n rows; the row on line `bad_line` (header is line 1) has a bad tax cell."""
    lines = ["apple,apple_num,tax"]
    for i in range(n):
        line = i + 2
        tax = "1.x" if line == bad_line else repr(1.0 + i / 100)
        lines.append(f"{100 + i},{i % 5 + 1},{tax}")
    return "\n".join(lines) + "\n"


def apple_hand(apple: float, num: float, tax: float) -> dict[str, float]:
    """The book's formulas: price = apple * apple_num * tax and its three partial derivatives."""
    return {
        "price": apple * num * tax,
        "dprice/dapple": num * tax,
        "dprice/dapple_num": apple * tax,
        "dprice/dtax": apple * num,
    }


# --- strategies: per-row values in safe domains, around the file's values ------------------------


def one_hot_rows(draw, shape: tuple[int, ...]) -> np.ndarray:
    classes = shape[-1]
    idx = draw(
        st.lists(st.integers(0, classes - 1), min_size=int(np.prod(shape[:-1])), max_size=int(np.prod(shape[:-1])))
    )
    return np.eye(classes)[idx].reshape(shape)


def perturbed(draw, base: np.ndarray) -> np.ndarray:
    """The file value scaled by [0.5, 1.5] and moved by [-0.25, 0.25]: positive values stay positive
    enough for log, and signs of mid-sized values can flip (relu's both sides)."""
    scale = draw(st.lists(st.floats(0.5, 1.5), min_size=base.size, max_size=base.size))
    shift = draw(st.lists(st.floats(-0.25, 0.25), min_size=base.size, max_size=base.size))
    return base * np.array(scale).reshape(base.shape) + np.array(shift).reshape(base.shape)


@st.composite
def batch_columns(draw, g: cgcalc.Graph) -> dict[str, np.ndarray]:
    """A random non-empty subset of the inputs, each with a column of 1..6 per-row values."""
    n = draw(st.integers(1, 6))
    names = draw(st.lists(st.sampled_from(g.inputs), min_size=1, unique=True))
    cols = {}
    for name in [x for x in g.inputs if x in names]:
        base = file_value(g, name)
        rows = []
        for _ in range(n):
            if not has_grad(g, name):
                # labels (t of softmax_with_loss, cross_entropy_error) as one-hot rows; a flag (pricing's member) 0 or 1
                rows.append(one_hot_rows(draw, base.shape) if base.shape else float(draw(st.integers(0, 1))))
            else:
                rows.append(perturbed(draw, base))
        cols[name] = np.array(rows, dtype=np.float64).reshape((n, *base.shape))
    return cols


# --- Graph.run_batch == Graph.run, row by row, for every example graph ---------------------------


def test_the_example_graphs_are_the_ones_these_tests_know():
    names = {p.name for p in GRAPH_FILES}
    assert {
        "apple.yaml",
        "apple_orange.yaml",
        "expressions.yaml",
        "neuron.yaml",
        "relu.yaml",
        "reuse.yaml",
        "sigmoid.yaml",
        "simple_conv_net.yaml",
        "two_layer_net.yaml",
    } <= names
    arrays = {p.name for p in GRAPH_FILES if not is_scalar_graph(cgcalc.load(p))}
    assert arrays == {
        "two_layer_net.yaml",
        "neuron.yaml",
        "relu.yaml",
        "simple_conv_net.yaml",
        "softmax_cross_entropy.yaml",
        "iris_net.yaml",
        "line_fit.yaml",
    }


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
@PROPERTY
@given(data=st.data())
def test_run_batch_rows_equal_single_runs(path, data):
    g = cgcalc.load(path)
    columns = data.draw(batch_columns(g), label="columns")
    snapshot = {k: v.copy() for k, v in columns.items()}
    # a graph of scalars: bit for bit; with arrays (BLAS sums) to 1e-12 relative
    check_rows_against_single_runs(g, columns, exact=is_scalar_graph(g))
    for k, v in columns.items():
        assert bit_equal(v, snapshot[k]), f"run_batch wrote into the column '{k}' it was handed"


# line_fit's design matrix is made in each row (concat of a column of P): its matmul then multiplies a (rows,
# 4, 2) stack, whose products numpy adds in another order than a single run's BLAS (an ulp apart; the 1e-12
# contract above holds), where the others' matmuls take a matrix every row shares
ROW_MADE_MATMUL = {"line_fit.yaml"}


@pytest.mark.parametrize("path", [p for p in GRAPH_FILES if p.name not in ROW_MADE_MATMUL], ids=lambda p: p.name)
def test_run_batch_of_array_graphs_is_bit_exact_today(path):
    """Beyond the 1e-12 contract: the vectorized array graphs currently agree bit for bit too."""
    g = cgcalc.load(path)
    rng = np.random.default_rng(7)
    cols = {}
    for x in g.inputs:
        base = file_value(g, x)
        if has_grad(g, x):
            cols[x] = base * rng.uniform(0.5, 1.5, (5, *base.shape)) + rng.uniform(-0.25, 0.25, (5, *base.shape))
    check_rows_against_single_runs(g, cols, exact=True)


@pytest.mark.parametrize(
    "name, columns",
    [
        ("apple.yaml", {"apple": [math.inf, math.nan, 1e308, -0.0, -5.0], "tax": [0.0, 1.0, 1e308, 5.0, -0.0]}),
        ("apple_orange.yaml", {"orange_num": [math.inf, -math.inf, 0.0, -0.0, 1e-320]}),
        ("reuse.yaml", {"a": [math.inf, math.nan, 1e308, -0.0, -3.0, 1e-320]}),
        (
            "sigmoid.yaml",
            {"x": [-1000.0, -800.0, -40.0, -0.0, 1e-300, 40.0, 800.0, 1000.0, math.nan, math.inf, -math.inf]},
        ),
        (
            "expressions.yaml",
            {
                "x": [-1000.0, -800.0, 0.0, 700.0, math.nan, 1e308, -1e308, 3.0, 3.0, 0.0, 1.0],
                "y": [1.0, 2.0, 0.0, -1.0, 1.0, 1.0, 1.0, math.inf, -0.0, 1e-320, 1e-320],
            },
        ),
    ],
)
def test_run_batch_is_bit_exact_at_overflow_poles_and_nan(name, columns):
    g = load(name)
    check_rows_against_single_runs(g, {k: np.array(v) for k, v in columns.items()}, exact=True)


def test_run_batch_apple_matches_the_hand_formulas():
    g = load("apple.yaml")
    apple, num = np.array([100.0, 120.0, 3.5]), np.array([2.0, 1.0, 4.0])
    res = g.run_batch({"apple": apple, "apple_num": num})  # tax keeps the file's 1.1
    for i in range(3):
        hand = apple_hand(apple[i], num[i], 1.1)
        assert res.outputs["price"][i] == hand["price"]
        for x in ("apple", "apple_num", "tax"):
            assert res.grads["price"][x][i] == hand[f"dprice/d{x}"]
    assert list(res.columns()) == ["price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"]


def test_run_batch_several_outputs_gives_every_do_dx():
    g = load("expressions.yaml")
    x, y = np.array([1.5, -0.5, 2.0]), np.array([2.0, 0.7, 3.0])
    res = g.run_batch({"x": x, "y": y}, output=["f", "g"])
    assert list(res.columns()) == ["f", "g", "df/dx", "df/dy", "dg/dx", "dg/dy"]
    for i in range(3):
        # g = -x**2: dg/dx = -2x, dg/dy = 0 (g does not depend on y)
        assert res.grads["g"]["x"][i] == -2 * x[i]
        assert res.grads["g"]["y"][i] == 0.0
        assert res.outputs["g"][i] == -(x[i] ** 2)
    check_rows_against_single_runs(g, {"x": x, "y": y}, exact=True, output=["g", "f"])


# --- per-row gradients are not summed across rows -------------------------------------------------

MEAN_GRAPH = """
inputs:
  x: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
  s: 2.0
nodes:
  m: {op: mean, in: [x], axis: 1}
  q: m * m
  k: {op: sum, in: [q], keepdims: true}
  p: m * s
  out: {op: mean, in: [p]}
outputs: [out, k]
"""

INDEX_LABEL_GRAPH = """
inputs:
  x: [[0.2, 0.9, -0.3], [1.1, -0.4, 0.3]]
  W: [[0.5, -0.2], [0.1, 0.3], [-0.6, 0.4]]
  b: [0.1, -0.1]
  t: {value: [1, 0], grad: false}
nodes:
  a: {op: affine, in: [x, W, b]}
  loss: {op: softmax_with_loss, in: [a, t]}
"""


def two_different_rows(g: cgcalc.Graph, names: list[str], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {}
    for x in names:
        base = file_value(g, x)
        cols[x] = np.stack([base, base * 1.7 + rng.uniform(-0.5, 0.5, base.shape)])
    return cols


@pytest.mark.parametrize(
    "graph, names",
    [
        (lambda: load("two_layer_net.yaml"), ["x", "W1", "b1", "W2", "b2"]),  # affine, relu, softmax_with_loss
        (lambda: load("two_layer_net.yaml"), ["x"]),  # only x varies: dW1 still differs per row
        (lambda: load("neuron.yaml"), ["x", "w", "b"]),  # matmul 1-D @ 1-D, scalar bias
        (lambda: load("neuron.yaml"), ["x"]),
        (lambda: load("relu.yaml"), ["x", "w"]),  # sum
        (lambda: cgcalc.loads(MEAN_GRAPH), ["x", "s"]),  # mean over an axis and over all, sum with keepdims
        (lambda: cgcalc.loads(MEAN_GRAPH), ["x"]),
        (lambda: cgcalc.loads(INDEX_LABEL_GRAPH), ["x", "W"]),  # class-index labels
    ],
    ids=[
        "two_layer_net-all",
        "two_layer_net-x",
        "neuron-all",
        "neuron-x",
        "relu",
        "mean-all",
        "mean-x",
        "class-indices",
    ],
)
def test_per_row_gradients_are_not_summed_across_rows(graph, names):
    g = graph()
    cols = two_different_rows(g, names, seed=3)
    res = g.run_batch(cols, output=list(g.outputs))
    singles = [g.run({k: v[i] for k, v in cols.items()}, output=list(g.outputs)) for i in range(2)]
    for o in g.outputs:
        for x in grad_inputs(g):
            got = res.grads[o][x]
            assert got.shape == (2, *file_value(g, x).shape), f"d{o}/d{x} keeps one gradient per row"
            for i in range(2):
                assert_same(got[i], singles[i].grad(x, o), f"row {i} d{o}/d{x}", exact=False)
        # the two rows differ, and so do their gradients: a sum over rows would give both the same
        differing = [x for x in grad_inputs(g) if not np.array_equal(singles[0].grad(x, o), singles[1].grad(x, o))]
        assert differing, f"the two rows should give different gradients of {o}"
        for x in differing:
            assert not np.array_equal(res.grads[o][x][0], res.grads[o][x][1]), f"d{o}/d{x}"


def test_two_layer_net_weight_gradients_are_per_sample_batch_not_summed():
    """One row = one whole mini-batch of the file: dW1 of the batch of 2 is dW1 of each row, not their sum."""
    g = load("two_layer_net.yaml")
    x0 = file_value(g, "x")
    x1 = -x0[::-1]
    res = g.run_batch({"x": np.stack([x0, x1])})
    r0, r1 = g.run(x=x0), g.run(x=x1)
    assert not np.allclose(r0.grad("W1"), r1.grad("W1"))
    np.testing.assert_allclose(res.grads["loss"]["W1"][0], r0.grad("W1"), rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(res.grads["loss"]["W1"][1], r1.grad("W1"), rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(res.outputs["loss"], [r0.value("loss"), r1.value("loss")], rtol=RTOL)
    assert "t" not in res.grads["loss"], "t is grad: false: no dloss/dt"


def test_scalar_input_broadcast_within_a_row_sums_only_within_that_row():
    g = cgcalc.loads("inputs:\n  v: [1.0, 2.0, 3.0]\n  s: 2.0\nnodes:\n  y: sum(v * s)\n")
    res = g.run_batch({"s": np.array([1.0, 10.0]), "v": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])})
    # y = s * sum(v): dy/ds = sum(v) of that row, dy/dv = s of that row (each element)
    assert res.grads["y"]["s"].tolist() == [6.0, 15.0]
    assert res.grads["y"]["v"].tolist() == [[1.0] * 3, [10.0] * 3]
    assert res.outputs["y"].tolist() == [6.0, 150.0]


def test_run_batch_left_out_inputs_keep_the_file_values():
    g = load("neuron.yaml")
    b = np.array([0.2, -3.0, 5.0])
    res = g.run_batch({"b": b})
    x, w = file_value(g, "x"), file_value(g, "w")
    for i in range(3):
        single = g.run(b=b[i])
        assert res.outputs["y"][i] == single.value("y")
        z = x @ w + b[i]
        y = 1 / (1 + math.exp(-z))
        assert math.isclose(res.outputs["y"][i], y, rel_tol=1e-14)
        np.testing.assert_allclose(res.grads["y"]["w"][i], y * (1 - y) * x, rtol=1e-13)


# --- the CLI: CSV and JSON Lines round trips -----------------------------------------------------


SCALAR_CASES = [
    ("apple.yaml", ["apple", "tax"]),
    ("apple.yaml", ["tax", "apple_num", "apple"]),  # header order is the echo order
    ("apple_orange.yaml", ["orange", "orange_num", "tax"]),
    ("expressions.yaml", ["x", "y"]),
    ("reuse.yaml", ["a"]),
    ("sigmoid.yaml", ["x"]),
    ("neuron.yaml", ["b"]),  # a scalar input of an array graph: array results as JSON cells
]


def random_rows(g: cgcalc.Graph, names: list[str], n: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        rows.append([float(file_value(g, x)) * rng.uniform(0.5, 1.5) + rng.uniform(-0.25, 0.25) for x in names])
    return rows


@pytest.mark.parametrize("name, names", SCALAR_CASES, ids=[f"{n}-{'+'.join(c)}" for n, c in SCALAR_CASES])
def test_cli_csv_to_csv_equals_cgcalc_run_for_each_row(tmp_path, name, names):
    graph = GRAPHS / name
    g = cgcalc.load(graph)
    rows = random_rows(g, names, 4, seed=len(names))
    src = write_csv(tmp_path / "rows.csv", names, rows)
    r = cli("batch", graph, src, "-q")
    header, out_rows = read_csv(r.stdout)
    assert header == expected_columns(g, names)
    assert len(out_rows) == len(rows)
    for values, cells in zip(rows, out_rows):
        got = dict(zip(header, cells))
        for x, v in zip(names, values):
            assert float(got[x]) == v, "the input cells are the row's own values"
        expected = single_run_json(graph, dict(zip(names, values)))
        assert set(expected) == set(header) - set(names)
        for col, v in expected.items():
            assert bit_equal(parse_cell(got[col]), v), f"{col}: batch {got[col]} != run {v}"


def test_cli_csv_left_out_inputs_keep_the_file_values_and_hand_formulas(tmp_path):
    src = write_csv(tmp_path / "r.csv", ["apple"], [[100.0], [150.0], [0.5]])
    header, rows = read_csv(cli("batch", GRAPHS / "apple.yaml", src).stdout)
    assert header == ["apple", "price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"]
    for (apple,), cells in zip([[100.0], [150.0], [0.5]], rows):
        got = dict(zip(header, map(float, cells)))
        hand = apple_hand(apple, 2.0, 1.1)  # apple_num = 2 and tax = 1.1 from the file
        for col, v in hand.items():
            assert got[col] == v, col


def test_cli_the_book_example_through_batch(tmp_path):
    src = write_csv(tmp_path / "r.csv", ["apple", "tax"], [["100", "1.1"]])
    r = cli("batch", GRAPHS / "apple.yaml", src)
    assert r.stdout == (
        "apple,tax,price,dprice/dapple,dprice/dapple_num,dprice/dtax\n"
        "100,1.1,220.00000000000003,2.2,110.00000000000001,200.0\n"
    )


@pytest.mark.parametrize("name", ["expressions.yaml", "sigmoid.yaml", "apple.yaml"])
def test_cli_output_all_gives_every_do_dx(tmp_path, name):
    graph = GRAPHS / name
    g = cgcalc.load(graph)
    names = list(g.inputs)
    rows = random_rows(g, names, 3, seed=11)
    src = write_csv(tmp_path / "r.csv", names, rows)
    header, out_rows = read_csv(cli("batch", graph, src, "--output", "all").stdout)
    outs = list(g.outputs)
    assert header == names + outs + [f"d{o}/d{x}" for o in outs for x in grad_inputs(g)]
    for values, cells in zip(rows, out_rows):
        got = dict(zip(header, cells))
        expected = single_run_json(graph, dict(zip(names, values)), output="all")
        assert set(expected) == set(header) - set(names)
        for col, v in expected.items():
            assert bit_equal(float(got[col]), v), f"{col}: batch {got[col]} != run {v}"


def test_cli_output_selects_another_output(tmp_path):
    src = write_csv(tmp_path / "r.csv", ["x"], [[1.5], [-2.0]])
    header, rows = read_csv(cli("batch", GRAPHS / "expressions.yaml", src, "--output", "g").stdout)
    assert header == ["x", "f", "g", "dg/dx", "dg/dy"]
    for x, cells in zip([1.5, -2.0], rows):
        got = dict(zip(header, map(float, cells)))
        assert got["g"] == -(x**2) and got["dg/dx"] == -2 * x and got["dg/dy"] == 0.0


@pytest.mark.parametrize("name, names", SCALAR_CASES[:5], ids=[n for n, _ in SCALAR_CASES[:5]])
def test_cli_csv_to_jsonl_equals_cgcalc_run(tmp_path, name, names):
    graph = GRAPHS / name
    g = cgcalc.load(graph)
    rows = random_rows(g, names, 3, seed=5)
    src = write_csv(tmp_path / "rows.csv", names, rows)
    out = tmp_path / "out.jsonl"
    r = cli("batch", graph, src, "-o", out)
    assert r.stdout == ""
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(objs) == len(rows)
    for values, obj in zip(rows, objs):
        assert list(obj) == expected_columns(g, names)
        assert [obj[x] for x in names] == values
        for col, v in single_run_json(graph, dict(zip(names, values))).items():
            assert bit_equal(strict_float(obj[col]), v), col


JSONL_CASES = [
    (
        "neuron.yaml",
        [
            {"x": [1.0, 2.0, 3.0]},
            {"x": [0.25, -1.5, 2.0], "b": 0.5},
            {"w": [1.0, -1.0, 0.5], "b": -0.75},
            {"b": 3.0, "x": [-1.0, 0.0, 1.0], "w": [0.3, 0.2, 0.1]},
        ],
    ),
    (
        "relu.yaml",
        [
            {"x": [-1.0, 2.0, -3.0, 4.0]},
            {"x": [0.5, 0.5, -0.5, -0.5], "w": [2.0, 3.0, 4.0, 5.0]},
            {"w": [-1.0, -2.0, -3.0, -4.0]},
        ],
    ),
    (
        "two_layer_net.yaml",
        [
            {"x": [[0.3, 0.1, -0.2], [1.0, 1.0, 1.0]]},
            {"b1": [0.5, -0.5, 0.25, 0.0], "t": [[0, 1], [1, 0]]},
            {"W2": [[1.0, -1.0], [0.5, 0.5], [-0.2, 0.3], [0.0, 1.0]], "x": [[2.0, -1.0, 0.5], [0.0, 0.5, 1.0]]},
        ],
    ),
    ("apple_orange.yaml", [{"apple": 1.0}, {"orange": 2.5, "tax": 1.2}, {"orange_num": 0.0}]),
    (
        "expressions.yaml",
        [
            {"x": [1.5, -0.5, 2.0]},
            {"x": 0.3, "y": [1.0, 2.0, 3.0]},
            {"y": 0.5},
            {"x": [[0.1, 0.2], [0.3, 0.4]], "y": [2.0, 3.0]},
        ],
    ),
]


@pytest.mark.parametrize("name, rows", JSONL_CASES, ids=[n for n, _ in JSONL_CASES])
def test_cli_jsonl_to_jsonl_arrays_and_different_key_sets(tmp_path, name, rows):
    graph = GRAPHS / name
    g = cgcalc.load(graph)
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out.jsonl"
    cli("batch", graph, src, "-o", out, "--chunk-rows", "2")
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(objs) == len(rows)
    for row, obj in zip(rows, objs):
        assert list(obj) == expected_columns(g, list(row)), "the row's own keys, then outputs, then dO/dX"
        for k, v in row.items():
            assert obj[k] == v
        for col, v in single_run_json(graph, row).items():
            assert bit_equal(strict_float(obj[col]), v), f"{col}: batch {obj[col]} != run {v}"


def test_cli_jsonl_to_jsonl_on_stdout_and_out_format(tmp_path):
    src = write_jsonl(tmp_path / "rows.jsonl", [{"apple": 3.0}])
    r = cli("batch", GRAPHS / "apple.yaml", src, "--out-format", "jsonl")
    obj = json.loads(r.stdout)
    assert obj == {"apple": 3.0, **apple_hand(3.0, 2.0, 1.1)}


def test_cli_jsonl_to_csv_arrays_as_json_cells(tmp_path):
    rows = [{"x": [1.0, 2.0, 3.0], "b": 0.5}, {"x": [0.0, -1.0, 0.5], "b": -0.5}]
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    header, out_rows = read_csv(cli("batch", GRAPHS / "neuron.yaml", src).stdout)
    assert header == ["x", "b", "y", "dy/dx", "dy/dw", "dy/db"]
    for row, cells in zip(rows, out_rows):
        got = {k: parse_cell(c) for k, c in zip(header, cells)}
        assert got["x"] == row["x"] and got["b"] == row["b"]
        for col, v in single_run_json(GRAPHS / "neuron.yaml", row).items():
            assert bit_equal(got[col], v), col


def test_cli_jsonl_nan_as_string_and_infinities(tmp_path):
    rows = [{"b": "NaN"}, {"b": "Infinity"}, {"x": ["NaN", 1.0, 2.0]}, {"b": 1.0}]
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out.jsonl"
    r = cli("batch", GRAPHS / "neuron.yaml", src, "-o", out, "-q")
    text = out.read_text()
    assert "NaN" in text and "nan" not in text.replace("NaN", "")
    objs = [json.loads(line) for line in text.splitlines()]  # strict JSON: json.loads would take bare NaN too
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON output"))
    assert objs[0]["y"] == "NaN" and objs[0]["b"] == "NaN"
    assert objs[1]["b"] == "Infinity" and objs[1]["y"] == 1.0
    assert objs[2]["x"] == ["NaN", 1.0, 2.0] and objs[2]["y"] == "NaN"
    assert objs[3]["y"] == cgcalc.load(GRAPHS / "neuron.yaml").run(b=1.0).value("y")
    for row, obj in zip(rows[1:], objs[1:]):
        plain = {k: strict_float(v) for k, v in row.items()}
        single = cgcalc.load(GRAPHS / "neuron.yaml").run(plain)
        assert bit_equal(strict_float(obj["y"]), single.value("y"))
        assert bit_equal(strict_float(obj["dy/dw"]), single.grad("w"))
    assert "NaN or inf" in r.stderr  # no row is non-finite silently


@pytest.mark.parametrize(
    "name, rows",
    [
        (
            "neuron.yaml",
            [
                {"x": [1.0, 2.0, 3.0]},
                {"x": [[1.0, 2.0, 3.0], [0.5, 0.5, -1.0]]},
                {"x": [3.0, 2.0, 1.0]},
                {"x": [[1.0, 0.0, 0.0]]},
                {"x": [0.0, 1.0, 0.0]},
            ],
        ),
        ("relu.yaml", [{"x": [1.5]}, {"x": [-1.5]}, {"x": [1.0, -2.0, 3.0, 4.0]}, {"x": [3.0, 5.0], "w": [2.0, 1.0]}]),
        (
            "two_layer_net.yaml",
            [
                {"x": [[1.0, 2.0, 3.0]], "t": [[0, 1]]},
                {"x": [[1.0, 2.0, 3.0], [0.5, -0.5, 0.0], [2.0, 0.0, -1.0]], "t": [[1, 0], [0, 1], [1, 0]]},
                {"x": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]},
            ],
        ),
    ],
    ids=["neuron", "relu", "two_layer_net"],
)
def test_cli_jsonl_rows_of_different_shapes_are_grouped_correctly(tmp_path, name, rows):
    graph = GRAPHS / name
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out.jsonl"
    cli("batch", graph, src, "-o", out)
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(objs) == len(rows)
    for row, obj in zip(rows, objs):
        for col, v in single_run_json(graph, row).items():
            assert bit_equal(strict_float(obj[col]), v), f"{row}: {col}: batch {obj[col]} != run {v}"


def test_cli_header_only_csv_gives_a_header_only_output(tmp_path):
    src = tmp_path / "h.csv"
    src.write_text("apple,tax\n")
    r = cli("batch", GRAPHS / "apple.yaml", src)
    assert r.stdout == "apple,tax,price,dprice/dapple,dprice/dapple_num,dprice/dtax\n"
    r = cli("batch", GRAPHS / "expressions.yaml", write_csv(tmp_path / "x.csv", ["y"], []), "--output", "all")
    assert r.stdout == "y,f,g,df/dx,df/dy,dg/dx,dg/dy\n"
    out = tmp_path / "h.jsonl"
    cli("batch", GRAPHS / "apple.yaml", src, "-o", out)
    assert out.read_text() == ""


def test_cli_csv_from_stdin(tmp_path):
    r = cli("batch", GRAPHS / "apple.yaml", "-", input="apple\n100\n")
    assert r.stdout.splitlines()[1] == "100,220.00000000000003,2.2,110.00000000000001,200.0"


def test_cli_jsonl_from_stdin_with_rows_format():
    r = cli(
        "batch",
        GRAPHS / "apple.yaml",
        "-",
        "--rows-format",
        "jsonl",
        "--out-format",
        "jsonl",
        input='{"apple": 10}\n\n{"tax": 2}\n',
    )
    assert [json.loads(line) for line in r.stdout.splitlines()] == [
        {"apple": 10.0, **apple_hand(10.0, 2.0, 1.1)},
        {"tax": 2.0, **apple_hand(100.0, 2.0, 2.0)},
    ]


def test_cli_csv_crlf_bom_blank_lines_and_quotes(tmp_path):
    src = tmp_path / "r.csv"
    src.write_bytes(b'\xef\xbb\xbfapple,tax\r\n100,1.1\r\n\r\n"50",2\r\n')
    header, rows = read_csv(cli("batch", GRAPHS / "apple.yaml", src).stdout)
    assert header[:2] == ["apple", "tax"]
    assert [[float(c) for c in r] for r in rows] == [
        [100.0, 1.1, *apple_hand(100.0, 2.0, 1.1).values()],
        [50.0, 2.0, *apple_hand(50.0, 2.0, 2.0).values()],
    ]


# --- errors: unknown columns, bad cells ----------------------------------------------------------


def one_error_line(r) -> str:
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"one line on stderr, got {lines!r}"
    assert "Traceback" not in r.stderr
    return lines[0]


def test_cli_unknown_csv_column_is_an_error_naming_it(tmp_path):
    src = write_csv(tmp_path / "r.csv", ["apple", "taxx"], [[1.0, 2.0]])
    r = cli("batch", GRAPHS / "apple.yaml", src, code=2)
    line = one_error_line(r)
    assert line.startswith(f"error: {src}:1:")
    assert "'taxx'" in line and "did you mean 'tax'" in line
    assert r.stdout == ""


def test_cli_unknown_jsonl_key_is_an_error_naming_it(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [{"apple": 1.0}, {"apple": 2.0, "bananas": 3.0}])
    r = cli("batch", GRAPHS / "apple.yaml", src, code=2)
    line = one_error_line(r)
    assert line.startswith(f"error: {src}:2:") and "'bananas'" in line
    assert r.stdout == ""


@pytest.mark.parametrize(
    "cells, line_no, column, why",
    [
        (["100", "abc"], 4, "tax", "bad number 'abc'"),
        (["1_000", "1.1"], 3, "apple", "bad number '1_000'"),
        (["", "1.1"], 5, "apple", "empty cell"),
        (["100", "  "], 2, "tax", "empty cell"),
        (["0x10", "1.1"], 6, "apple", "bad number '0x10'"),
    ],
)
def test_cli_bad_cell_exits_2_with_file_line_and_column(tmp_path, cells, line_no, column, why):
    good = [["100", "1.1"]] * 5
    rows = good[: line_no - 2] + [cells] + good[line_no - 1 :]
    src = write_csv(tmp_path / "r.csv", ["apple", "tax"], rows)
    r = cli("batch", GRAPHS / "apple.yaml", src, code=2)
    line = one_error_line(r)
    m = re.fullmatch(rf"error: {re.escape(str(src))}:(\d+):(\d+): column '(\w+)': (.*)", line)
    assert m, line
    assert int(m[1]) == line_no and m[3] == column and m[4] == why
    assert int(m[2]) == (1 if column == "apple" else len(cells[0]) + 2)
    assert r.stdout == ""


def test_cli_bad_cell_line_number_counts_blank_lines_and_later_chunks(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("apple,tax\n1,2\n\n3,4\n\n\n5,6\n7,oops\n")
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, "--chunk-rows", "2", code=2))
    assert line == f"error: {src}:8:3: column 'tax': bad number 'oops'"


def test_cli_row_with_too_few_or_too_many_cells(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("apple,tax\n1,2\n3\n")
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, code=2))
    assert line.startswith(f"error: {src}:3:") and "1 cell" in line and "2" in line
    src.write_text("apple,tax\n1,2,3\n")
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, code=2))
    assert line.startswith(f"error: {src}:2:") and "3 cells" in line


def test_cli_jsonl_line_that_is_not_json(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [{"apple": 1.0}, {"apple": 2.0}, '{"apple": 3.0,', {"apple": 4.0}])
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, code=2))
    assert re.match(rf"error: {re.escape(str(src))}:3(:\d+)?: ", line), line
    assert "JSON" in line


@pytest.mark.parametrize(
    "row, why",
    [
        ({"apple": "abc"}, "bad number"),
        ({"apple": None}, "bad number"),
        ({"apple": True}, "bad number"),
        ({"x": [1, 2]}, None),
        ([1, 2], "object"),
    ],
)
def test_cli_jsonl_bad_values(tmp_path, row, why):
    src = write_jsonl(tmp_path / "r.jsonl", [{"apple": 1.0}, row])
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, code=2))
    assert line.startswith(f"error: {src}:2"), line
    if why:
        assert why in line


def test_cli_skip_bad_rows_reports_each_counts_them_and_writes_the_good_ones(tmp_path):
    src = tmp_path / "r.csv"
    lines = ["apple,tax"]
    bad = {4: "1,zz", 7: ",2", 9: "5", 12: "1,2,3", 13: "nope,1"}
    good = []
    for line_no in range(2, 15):
        if line_no in bad:
            lines.append(bad[line_no])
        else:
            lines.append(f"{line_no},{line_no / 10}")
            good.append((float(line_no), line_no / 10))
    src.write_text("\n".join(lines) + "\n")
    r = cli("batch", GRAPHS / "apple.yaml", src, "--skip-bad-rows", "--chunk-rows", "3")
    header, rows = read_csv(r.stdout)
    assert len(rows) == len(good) == 8
    for (apple, tax), cells in zip(good, rows):
        got = dict(zip(header, map(float, cells)))
        assert got["apple"] == apple and got["tax"] == tax
        for col, v in apple_hand(apple, 2.0, tax).items():
            assert got[col] == v
    err = r.stderr.splitlines()
    reported = [int(m[1]) for m in (re.search(rf"{re.escape(str(src))}:(\d+)", e) for e in err) if m]
    assert reported == sorted(bad), err
    assert "5 bad rows skipped of 13" in r.stderr and "8 written" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_skip_bad_rows_jsonl(tmp_path):
    src = write_jsonl(
        tmp_path / "r.jsonl", [{"apple": 1.0}, "not json", {"apple": "x"}, {"bananas": 1}, {"apple": 2.0}]
    )
    out = tmp_path / "o.jsonl"
    r = cli("batch", GRAPHS / "apple.yaml", src, "--skip-bad-rows", "-o", out)
    assert [json.loads(s)["apple"] for s in out.read_text().splitlines()] == [1.0, 2.0]
    for line_no in (2, 3, 4):
        assert f"{src}:{line_no}" in r.stderr
    assert "3 bad rows skipped of 5" in r.stderr


def test_cli_skip_bad_rows_jsonl_to_csv_first_row_has_unknown_key(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [{"applx": 1.0}, {"apple": 2.0}])
    r = cli("batch", GRAPHS / "apple.yaml", src, "--skip-bad-rows", code=None)
    assert r.exit_code == 0, r.stderr
    header, rows = read_csv(r.stdout)
    assert header[0] == "apple" and len(rows) == 1


@pytest.mark.parametrize("out_name", ["o.jsonl", "o.csv"])
def test_cli_jsonl_empty_object_row_runs_the_file_values(tmp_path, out_name):
    src = write_jsonl(tmp_path / "r.jsonl", [{"apple": 1.0}, {}, {}, {"apple": 3.0}])
    out = tmp_path / out_name
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", out, code=None)
    assert r.exit_code == 0, r.stderr
    text = out.read_text()
    if out_name.endswith(".jsonl"):
        objs = [json.loads(line) for line in text.splitlines()]
    else:
        header, rows = read_csv(text)
        objs = [dict(zip(header, row)) for row in rows]
    assert len(objs) == 4 and all(objs), f"every row written: {text!r}"
    prices = [float(o["price"]) for o in objs]
    assert prices == [apple_hand(a, 2.0, 1.1)["price"] for a in (1.0, 100.0, 100.0, 3.0)]


def test_cli_jsonl_to_csv_row_leaving_out_a_key_shows_the_file_value(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [{"apple": 1.0, "tax": 2.0}, {"apple": 3.0}])
    header, rows = read_csv(cli("batch", GRAPHS / "apple.yaml", src).stdout)
    assert header == ["apple", "tax", "price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"]
    assert [list(map(float, r)) for r in rows] == [
        [1.0, 2.0, *apple_hand(1.0, 2.0, 2.0).values()],
        [3.0, 1.1, *apple_hand(3.0, 2.0, 1.1).values()],
    ]


def test_cli_csv_scalar_cells_for_an_array_input_broadcast_like_a_single_run(tmp_path):
    """relu.yaml's x is (4,) in the file; a CSV cell makes it a scalar, as `--set x=0.5` does."""
    src = write_csv(tmp_path / "r.csv", ["x"], [[0.5], [-1.0], [2.0]])
    header, rows = read_csv(cli("batch", GRAPHS / "relu.yaml", src).stdout)
    assert header == ["x", "y", "dy/dx", "dy/dw"]
    for (x,), cells in zip([[0.5], [-1.0], [2.0]], rows):
        got = {k: parse_cell(c) for k, c in zip(header, cells)}
        # y = sum(relu(x) * w) with w = [1, 2, 3, 4]: y = 10 relu(x), dy/dx = 10 [x > 0], dy/dw = relu(x)
        assert got["y"] == 10 * max(x, 0.0) and got["dy/dx"] == (10.0 if x > 0 else 0.0)
        assert got["dy/dw"] == [max(x, 0.0)] * 4
        for col, v in single_run_json(GRAPHS / "relu.yaml", {"x": x}).items():
            assert bit_equal(got[col], v), col


def test_cli_csv_nan_and_inf_cells_equal_single_runs_and_warn_with_the_first_line(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("apple,tax\n1,2\n2,1\nnan,1\n4,inf\n-inf,0\n")
    r = cli("batch", GRAPHS / "apple.yaml", src)
    header, rows = read_csv(r.stdout)
    assert [c[0] for c in rows] == ["1", "2", "nan", "4", "-inf"], "input cells copied as given"
    for cells in rows:
        got = dict(zip(header, cells))
        row = {"apple": float(got["apple"]), "tax": float(got["tax"])}
        single = cgcalc.load(GRAPHS / "apple.yaml").run(row)
        assert bit_equal(float(got["price"]), single.value("price"))
        for x in ("apple", "apple_num", "tax"):
            assert bit_equal(float(got[f"dprice/d{x}"]), single.grad(x)), x
        assert all(c not in ("nan", "inf", "-inf") for c in cells[2:]), "results say NaN / Infinity"
    warning = [line for line in r.stderr.splitlines() if "NaN or inf" in line]
    assert len(warning) == 1 and "3 rows" in warning[0] and f"{src}:4" in warning[0]


def test_cli_fast_math_is_close_to_the_exact_default(tmp_path):
    rng = np.random.default_rng(4)
    src = write_csv(
        tmp_path / "r.csv", ["x", "y"], [[x, y] for x, y in zip(rng.uniform(-3, 3, 40), rng.uniform(0.1, 4, 40))]
    )
    exact = read_csv(cli("batch", GRAPHS / "expressions.yaml", src, "--output", "all").stdout)
    fast = read_csv(cli("batch", GRAPHS / "expressions.yaml", src, "--output", "all", "--fast-math").stdout)
    assert exact[0] == fast[0]
    np.testing.assert_allclose(np.array(fast[1], dtype=float), np.array(exact[1], dtype=float), rtol=1e-13)


def test_cli_duplicate_column_missing_rows_file_and_unknown_output(tmp_path):
    src = write_csv(tmp_path / "r.csv", ["apple", "apple"], [[1.0, 2.0]])
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, code=2))
    assert line.startswith(f"error: {src}:1") and "'apple'" in line and "twice" in line
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", tmp_path / "nope.csv", code=2))
    assert "nope.csv" in line
    src = write_csv(tmp_path / "ok.csv", ["apple"], [[1.0]])
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, "--output", "prize", code=2))
    assert "'prize'" in line and "price" in line


def test_run_batch_api_errors():
    from cgcalc.errors import CgcalcError

    g = load("apple.yaml")
    with pytest.raises(CgcalcError, match="'bananas'"):
        g.run_batch({"bananas": np.ones(2)})
    with pytest.raises(CgcalcError, match="'apple_price'"):
        g.run_batch({"apple_price": np.ones(2)})  # a node, not an input
    with pytest.raises(CgcalcError, match="rows"):
        g.run_batch({"apple": np.ones(2), "tax": np.ones(3)})
    with pytest.raises(CgcalcError, match="row axis"):
        g.run_batch({"apple": 3.0})
    with pytest.raises(CgcalcError):
        load("neuron.yaml").run_batch({"x": np.ones((2, 4))})  # (4,) @ (3,)


def test_cli_jsonl_huge_integer_is_inf_like_run_or_a_bad_number(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text('{"apple": 1' + "0" * 400 + "}\n")
    r = cli("batch", GRAPHS / "apple.yaml", src, "--out-format", "jsonl", code=None)
    assert r.exit_code in (0, 2), r.stderr
    if r.exit_code == 0:
        assert json.loads(r.stdout)["price"] == "Infinity"
    else:
        assert one_error_line(r).startswith(f"error: {src}:1")


@pytest.mark.parametrize(
    "depth, col, why",
    [
        (100_000, 1, "the row is nested too deep"),
        (2_000, 1, "the row is nested too deep"),
        (900, 2, "column 'apple': not a number or a rectangular list"),  # read, but numpy takes at most 64 dimensions
    ],
)
@pytest.mark.parametrize("skip", [False, True])
def test_cli_jsonl_row_nested_too_deep_is_a_bad_row(tmp_path, depth, col, why, skip):
    src = write_jsonl(
        tmp_path / "r.jsonl", [{"apple": 1.0}, '{"apple": ' + "[" * depth + "]" * depth + "}", {"apple": 2.0}]
    )
    r = cli("batch", GRAPHS / "apple.yaml", src, *(["--skip-bad-rows"] if skip else []), code=0 if skip else 2)
    report = r.stderr.splitlines()[0]
    assert re.fullmatch(rf"(error|warning): {re.escape(str(src))}:2:{col}: {why}.*", report), report
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    if skip:
        assert [row[0] for row in read_csv(r.stdout)[1]] == ["1.0", "2.0"]
        assert "1 bad row skipped of 3" in r.stderr
    else:
        assert r.stdout == "" and len(r.stderr.splitlines()) == 1


def test_cli_out_in_a_missing_directory_is_a_usage_error(tmp_path):
    src = write_csv(tmp_path / "r.csv", ["apple"], [[1.0]])
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "missing" / "out.csv", code=None)
    assert r.exit_code == 2
    line = one_error_line(r)
    assert "internal error" not in line and TMP_PREFIX not in line and "out.csv" in line


def test_cli_skip_bad_rows_skips_a_row_of_the_wrong_shape(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [{"x": [1.0, 2.0, 3.0]}, {"x": [1.0, 2.0]}, {"x": [3.0, 2.0, 1.0]}])
    out = tmp_path / "o.jsonl"
    r = cli("batch", GRAPHS / "neuron.yaml", src, "--skip-bad-rows", "-o", out, code=None)
    assert r.exit_code == 0, r.stderr
    assert [json.loads(line)["x"] for line in out.read_text().splitlines()] == [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]
    assert f"{src}:2" in r.stderr and "1 bad row skipped of 3" in r.stderr


def test_cli_bad_cell_column_counts_quotes(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text('apple,tax\n"1",x\n')
    line = one_error_line(cli("batch", GRAPHS / "apple.yaml", src, code=2))
    assert line == f"error: {src}:2:5: column 'tax': bad number 'x'"


# --- nothing lost: atomic output, chunking ------------------------------------------------------


def test_failing_run_leaves_no_out_file_and_no_temporary_file(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text(apple_rows(50, bad_line=51))
    out = tmp_path / "out.csv"
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", out, "--chunk-rows", "10", code=2)
    assert f"{src}:51:" in one_error_line(r)
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_failing_run_leaves_an_existing_out_file_untouched(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text(apple_rows(50, bad_line=51))
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    cli("batch", GRAPHS / "apple.yaml", src, "-o", out, "--chunk-rows", "10", code=2)
    assert out.read_text() == "precious\n"
    assert leftovers(tmp_path) == []


def test_failing_run_to_stdout_has_streamed_the_rows_before_the_failing_block(tmp_path, monkeypatch):
    # stdout is a stream (a pipe cannot be all-or-nothing): the blocks before the bad one were written, whole
    # lines and the header once; the failing block and what follows it were not; no temporary file anywhere
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    src = tmp_path / "rows.csv"
    src.write_text(apple_rows(50, bad_line=51))  # line 51 is row 50: the 5th block of 10 rows
    r = cli("batch", GRAPHS / "apple.yaml", src, "--chunk-rows", "10", code=2)
    assert f"{src}:51:" in r.stderr
    header, rows = read_csv(r.stdout)
    assert header == expected_columns(load("apple.yaml"), ["apple", "apple_num", "tax"])
    assert len(rows) == 40 and r.stdout.endswith("\n")
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]
    r = cli("batch", GRAPHS / "apple.yaml", src, "--chunk-rows", "10", "--out-format", "jsonl", code=2)
    assert len(r.stdout.splitlines()) == 40 and all(json.loads(line) for line in r.stdout.splitlines())


def test_failing_first_block_writes_nothing_to_stdout_not_even_the_header(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text(apple_rows(50, bad_line=5))
    r = cli("batch", GRAPHS / "apple.yaml", src, "--chunk-rows", "10", code=2)
    assert r.stdout == ""


def test_successful_run_replaces_out_and_leaves_no_temporary_file(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text(apple_rows(50))
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", out, "--chunk-rows", "10")
    assert r.stdout == ""
    assert len(out.read_text().splitlines()) == 51
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("rows.csv", apple_rows(50), 0),
        ("rows.csv", apple_rows(50, bad_line=41), 2),
        ("rows.csv", "apples\n1\n", 2),
        ("rows.jsonl", '{"apple": 1}\n{"apple": 2}\n', 0),
        ("rows.jsonl", '{"apple": 1}\n{"apple": "x"}\n', 2),
    ],
    ids=["csv", "csv-bad-cell", "csv-unknown-column", "jsonl", "jsonl-bad-value"],
)
def test_the_rows_file_is_closed_when_the_command_ends(tmp_path, name, text, code):
    import gc
    import warnings

    src = tmp_path / name
    src.write_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "out.csv", "--chunk-rows", "10", code=code)
        gc.collect()  # an unclosed file left in a reference cycle warns only when it is collected
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize(
    "rows_file, out_name", [("csv", "o.csv"), ("csv", "o.jsonl"), ("jsonl", "o.jsonl"), ("jsonl", "o.csv")]
)
def test_chunking_does_not_change_the_output(tmp_path, rows_file, out_name):
    g = load("expressions.yaml")
    rng = np.random.default_rng(1)
    xs, ys = rng.uniform(-3, 3, 50), rng.uniform(0.1, 4, 50)
    if rows_file == "csv":
        src = write_csv(tmp_path / "r.csv", ["x", "y"], [[x, y] for x, y in zip(xs, ys)])
    else:
        src = write_jsonl(tmp_path / "r.jsonl", [{"x": x, "y": y} for x, y in zip(xs, ys)])
    outputs = []
    for chunk in (["--chunk-rows", "1"], ["--chunk-rows", "7"], []):
        out = tmp_path / f"{len(outputs)}{out_name}"
        cli("batch", GRAPHS / "expressions.yaml", src, "-o", out, "--output", "all", *chunk)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 50 + (out_name.endswith(".csv"))
    # and the results are the single runs'
    single = g.run(x=xs[17], y=ys[17], output=["f", "g"])
    text = outputs[0].decode().splitlines()
    if out_name.endswith(".csv"):
        got = dict(zip(text[0].split(","), map(float, text[18].split(","))))
    else:
        got = json.loads(text[17])
    assert got["f"] == single.value("f") and got["df/dy"] == single.grad("y", "f")


def test_chunking_does_not_change_jsonl_rows_with_arrays(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for i in range(23):
        row = {"x": rng.normal(size=3).tolist()}
        if i % 3 == 0:
            row["b"] = float(rng.normal())
        if i % 5 == 0:
            row["x"] = rng.normal(size=(2, 3)).tolist()
        rows.append(row)
    src = write_jsonl(tmp_path / "r.jsonl", rows)
    outputs = []
    for chunk in (["--chunk-rows", "1"], ["--chunk-rows", "7"], []):
        out = tmp_path / f"{len(outputs)}.jsonl"
        cli("batch", GRAPHS / "neuron.yaml", src, "-o", out, *chunk)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    g = load("neuron.yaml")
    for row, line in zip(rows, outputs[0].decode().splitlines()):
        obj = json.loads(line)
        single = g.run(row)
        assert bit_equal(obj["y"], single.value("y")) and bit_equal(obj["dy/dw"], single.grad("w"))


# --- worker processes (--jobs): the same output, byte for byte ------------------------------------


def awkward_csv(path: Path) -> Path:
    """Rows that take every path of the CSV reader: CRLF and blank lines, quoted cells, spaces, NaN and
    infinities, exponents, a huge value that overflows, negative zero."""
    rng = np.random.default_rng(5)
    lines = ["x,y"]
    for i in range(300):
        x, y = rng.uniform(-3, 3), rng.uniform(0.1, 4)
        cell = [repr(x), repr(y)]
        if i % 17 == 0:
            cell[0] = f'"{x!r}"'
        if i % 23 == 0:
            cell[1] = f" {y:.3e} "
        if i % 41 == 0:
            cell[0] = ["nan", "inf", "-inf", "1e308", "-0.0"][i // 41 % 5]
        lines.append(",".join(cell) + ("\r" if i % 13 == 0 else ""))
        if i % 29 == 0:
            lines.append("")
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path


@pytest.mark.parametrize("out_name", ["o.csv", "o.jsonl"])
def test_jobs_give_the_same_bytes_as_one_process(tmp_path, out_name):
    src = awkward_csv(tmp_path / "r.csv")
    outs, errs = [], []
    for jobs in ("1", "3"):
        out = tmp_path / f"{jobs}{out_name}"
        r = cli(
            "batch", GRAPHS / "expressions.yaml", src, "-o", out, "--output", "all", "--chunk-rows", "7", "--jobs", jobs
        )
        outs.append(out.read_bytes())
        errs.append(r.stderr)
    assert outs[0] == outs[1]
    assert errs[0] == errs[1] and "first at" in errs[0], "the NaN/inf warning names the same first line"
    n = 300 + (out_name.endswith(".csv"))
    assert len(outs[0].splitlines()) == n
    # and a row from a later block is the single run's
    g = load("expressions.yaml")
    rows = list(csv.reader(io.StringIO(src.read_text())))
    rows = [r for r in rows[1:] if r]
    x, y = (float(c) for c in rows[250])
    single = g.run(x=x, y=y, output=["f", "g"])
    text = outs[1].decode().splitlines()
    if out_name.endswith(".csv"):
        got = dict(zip(text[0].split(","), (c for c in next(csv.reader([text[251]])))))
        got = {k: float(v) for k, v in got.items()}
    else:
        got = json.loads(text[250])
    assert got["f"] == single.value("f") and got["dg/dx"] == single.grad("x", "g")


def test_jobs_skip_bad_rows_reports_the_same_rows_in_order(tmp_path):
    lines = apple_rows(500).splitlines()
    for i in (3, 40, 41, 250, 499):
        lines[i] = lines[i].replace(",", ",x", 1)
    src = tmp_path / "r.csv"
    src.write_text("\n".join(lines) + "\n")
    results = []
    for jobs in ("1", "2"):
        out = tmp_path / f"{jobs}.csv"
        r = cli("batch", GRAPHS / "apple.yaml", src, "-o", out, "--skip-bad-rows", "--chunk-rows", "16", "--jobs", jobs)
        results.append((out.read_bytes(), r.stderr))
    assert results[0] == results[1]
    reported = re.findall(r":(\d+):\d+: column 'apple_num'", results[0][1])
    assert reported == ["4", "41", "42", "251", "500"]
    assert "5 bad rows skipped of 500" in results[0][1]
    assert len(results[0][0].splitlines()) == 1 + 495


def test_jobs_a_bad_cell_in_a_later_block_is_the_same_error(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text(apple_rows(400, bad_line=333))  # line 333 is "431,2,1.x": tax starts at column 7
    for jobs in ("1", "2"):
        r = cli(
            "batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.csv", "--chunk-rows", "10", "--jobs", jobs, code=2
        )
        assert r.stderr == f"error: {src}:333:7: column 'tax': bad number '1.x'\n"
        assert not (tmp_path / "o.csv").exists() and leftovers(tmp_path) == []


def jsonl_mix(path: Path) -> Path:
    """neuron.yaml rows: vectors and matrices for x, some rows setting b, NaN as a string, and bad rows: not
    JSON, an unknown key, a key twice, and an x of a shape the graph refuses."""
    rng = np.random.default_rng(3)
    lines = []
    for i in range(120):
        row: dict = {"x": rng.normal(size=3).tolist()}
        if i % 4 == 0:
            row["b"] = float(rng.normal())
        if i % 9 == 0:
            row["x"] = rng.normal(size=(2, 3)).tolist()
        if i % 31 == 0:
            row["b"] = "NaN"
        lines.append(json.dumps(row))
    lines[10] = '{"x": [1, 2, 3'
    lines[50] = '{"x": [1, 2, 3], "bb": 1}'
    lines[70] = '{"x": [1, 2, 3], "x": [4, 5, 6]}'
    lines[90] = '{"x": [1, 2, 3, 4]}'
    lines.insert(60, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jobs_report_bad_json_lines_in_line_order_like_one_process(tmp_path):
    # a row of the wrong shape (found when its group runs) before a line that is not JSON (found when read)
    lines = [json.dumps({"x": [1.0, 2.0, 3.0]})] * 6
    lines[1] = json.dumps({"x": [1.0, 2.0, 3.0, 4.0]})
    lines[4] = '{"x": '
    src = tmp_path / "r.jsonl"
    src.write_text("\n".join(lines) + "\n")
    reports = []
    for jobs in ("1", "2"):
        r = cli(
            "batch", GRAPHS / "neuron.yaml", src, "-o", tmp_path / f"{jobs}.jsonl", "--skip-bad-rows", "--jobs", jobs
        )
        reports.append(r.stderr)
    assert reports[0] == reports[1]
    assert re.findall(r"r\.jsonl:(\d+)", reports[0]) == ["2", "5"]


@pytest.mark.parametrize("skip", [True, False])
def test_jobs_give_the_same_json_lines_as_one_process(tmp_path, skip):
    src = jsonl_mix(tmp_path / "r.jsonl")
    results = []
    for jobs in ("1", "3"):
        out = tmp_path / f"{jobs}.jsonl"
        r = cli(
            "batch",
            GRAPHS / "neuron.yaml",
            src,
            "-o",
            out,
            "--chunk-rows",
            "8",
            "--jobs",
            jobs,
            *(["--skip-bad-rows"] if skip else []),
            code=0 if skip else 2,
        )
        results.append((out.read_bytes() if out.exists() else None, r.stderr))
    assert results[0] == results[1]
    if skip:
        reported = re.findall(r"r\.jsonl:(\d+)", results[0][1])
        assert reported[:4] == ["11", "51", "72", "92"], results[0][1]  # lines, counting the blank one
        assert "4 bad rows skipped of 120" in results[0][1]
        assert len(results[0][0].splitlines()) == 116
    else:
        assert results[0][0] is None and results[0][1].startswith(f"error: {src}:11:")


def test_auto_jobs_only_for_files_worth_the_start_up():
    from cgcalc.batch.pool import AUTO_MIN_BYTES, auto_jobs

    assert auto_jobs(None) == 1 and auto_jobs(0) == 1 and auto_jobs(AUTO_MIN_BYTES - 1) == 1
    assert auto_jobs(AUTO_MIN_BYTES) == min(len(os.sched_getaffinity(0)), 8)


def test_verbose_says_how_many_worker_processes(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text(apple_rows(20))
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.csv", "-v", "-j", "2", "--chunk-rows", "5")
    assert "20 rows read in chunks of up to 5, by 2 worker processes" in r.stderr


# --- subprocess: progress bar on a terminal, Ctrl-C -----------------------------------------------


def big_apple_csv(path: Path, rows: int) -> Path:
    with open(path, "w") as f:
        f.write("apple,apple_num,tax\n")
        block = "".join(f"{i % 997 + 0.5},{i % 7 + 1},1.1\n" for i in range(10_000))
        for _ in range(rows // 10_000):
            f.write(block)
    return path


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_progress_bar_on_a_terminal_never_writes_to_stdout(tmp_path, jobs):
    src = big_apple_csv(tmp_path / "rows.csv", 200_000)
    plain = subprocess.run(
        [*CGCALC, "batch", GRAPHS / "apple.yaml", src, "--chunk-rows", "5000", "--jobs", jobs],
        capture_output=True,
        check=True,
    )
    master, slave = pty.openpty()
    seen = bytearray()

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [*CGCALC, "batch", GRAPHS / "apple.yaml", src, "--chunk-rows", "5000", "--jobs", jobs],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            check=False,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            timeout=60,
        )
    finally:
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)
    assert proc.returncode == 0
    assert proc.stdout == plain.stdout, "stdout is exactly the CSV, with or without a terminal on stderr"
    assert proc.stdout.count(b"\n") == 200_001
    assert b"\x1b" not in proc.stdout
    assert b"batch" in bytes(seen) and b"100%" in bytes(seen), "the bar was drawn, on the terminal (stderr)"
    assert b"200,000 rows -> stdout" in bytes(seen)


@needs_proc
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_leaves_no_out_file_and_no_temporary_file(tmp_path, jobs):
    out = tmp_path / "out.csv"
    run = Run(["-o", out, "--chunk-rows", "1000", "--jobs", jobs], apple_lines(5000))
    run.wait_for_output_file(tmp_path)
    stdout, stderr = run.stop(signal.SIGINT)
    assert run.proc.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    assert stdout == b""
    assert list(tmp_path.iterdir()) == []


@needs_proc
def test_ctrl_c_writing_to_stdout_stops_after_whole_lines_and_leaves_no_temporary_file(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = Run(["--chunk-rows", "1000"], apple_lines(5000), env={**os.environ, "TMPDIR": str(tmpdir)})
    # streamed: every row read so far is out while stdin is still open (the run waits for more rows)
    lines = [run.proc.stdout.readline() for _ in range(1 + 5000)]
    assert lines[0].startswith(b"apple,apple_num,tax,price,") and all(line.endswith(b"\n") for line in lines)
    stdout, stderr = run.stop(signal.SIGINT)
    assert run.proc.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    assert stdout == b""
    assert list(tmpdir.iterdir()) == []


def test_a_second_keyboard_interrupt_while_the_first_ends_the_run_still_exits_130():
    # pyarrow reports one Ctrl-C twice (its KeyboardInterrupt, then Python's pending signal): the second could land
    # as the process exited, after the first was reported, outside every command: Python then printed a traceback
    # and killed the process by SIGINT (-2; 1 of 30 batch runs Ctrl-C'd at a random time). Simulated: the app
    # reports a Ctrl-C and exits, and a KeyboardInterrupt lands on its way out.
    code = textwrap.dedent(
        """
        import sys
        import cgcalc.cli.app as a
        import cgcalc.cli.common as c

        class App:
            registered_commands = []

            def __call__(self):
                try:
                    sys.exit(c._stopped(KeyboardInterrupt()))
                finally:
                    raise KeyboardInterrupt

        a.app = App()
        sys.argv = ["cgcalc", "run", "g.yaml"]
        a.main()
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert (r.returncode, r.stderr) == (130, b"error: interrupted\n")


def test_jsonl_output_is_json_dumps_text_exactly(tmp_path):
    # numbers-only rows are written with a %-template: the text must be json.dumps's own
    rng = np.random.default_rng(9)
    xs = np.concatenate([rng.normal(size=40) * 10.0 ** rng.integers(-30, 30, 40), [0.0, -0.0, 1e16, 1e-5, 3.0]])
    src = write_csv(tmp_path / "r.csv", ["x", "y"], [[x, 1.5] for x in xs])
    out = tmp_path / "o.jsonl"
    cli("batch", GRAPHS / "expressions.yaml", src, "-o", out, "--output", "all")
    lines = out.read_text().splitlines()
    assert len(lines) == len(xs)
    for line, x in zip(lines, xs):
        obj = json.loads(line)
        assert line == json.dumps(obj, allow_nan=False)
        assert list(obj)[:2] == ["x", "y"] and bit_equal(obj["x"], x)
