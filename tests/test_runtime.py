"""The runtime through the Python API: accumulation, deep graphs, repeatability, to_dict, the book's numbers.

Expected numbers are worked out by hand (or by a closed form computed here), never taken from a run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import cgcalc

# --- gradients accumulate where a value is used more than once -----------------------------------


def test_node_used_twice_gets_both_contributions():
    text = """
inputs:
  a: 3.0
nodes:
  b: {op: add, in: [a, a]}
  c: {op: add, in: [b, b]}
"""
    r = cgcalc.loads(text).run()
    assert r.value("c") == 12.0
    assert r.grad("c") == 1.0
    assert r.grad("b") == 2.0
    assert r.grad("a") == 4.0  # c = 4a


@pytest.mark.parametrize("a", [3.0, -1.5])
def test_square_by_multiplying_a_value_with_itself(a):
    r = cgcalc.loads(f"inputs:\n  a: {a}\nnodes:\n  d: {{op: mul, in: [a, a]}}\n").run()
    assert r.value("d") == a * a
    assert r.grad("a") == 2 * a


def test_reuse_in_expression_form_and_arrays():
    text = """
inputs:
  a: [1.0, -2.0, 3.0]
nodes:
  b: a + a
  c: b + b
  d: a * a
  out: c + d
"""
    r = cgcalc.loads(text).run()
    a = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(r.value("out"), 4 * a + a * a)
    np.testing.assert_array_equal(r.grad("a"), 4 + 2 * a)


def test_example_reuse_graph(graphs_dir):
    # graphs/reuse.yaml: out = (a + a) + (a + a) + a * a at a = 3: 21, d/da = 4 + 2a = 10
    r = cgcalc.load(graphs_dir / "reuse.yaml").run()
    assert r.value("out") == 21.0
    assert r.grad("a") == 10.0
    assert r.grad("c") == 1.0
    assert r.grad("b") == 2.0


# --- deep graphs ---------------------------------------------------------------------------------

N_PAIRS = 50_000  # 100,000 nodes
RATE = 1.0000001


def chain_text(pairs: int, reverse: bool = False) -> str:
    """v0 = x;  n(2k+1) = v + 1;  n(2k+2) = that * RATE."""
    lines = []
    prev = "x"
    for k in range(pairs):
        lines.append(f"  n{2 * k + 1}: {{op: add, in: [{prev}, 1]}}")
        lines.append(f"  n{2 * k + 2}: {{op: mul, in: [n{2 * k + 1}, {RATE!r}]}}")
        prev = f"n{2 * k + 2}"
    if reverse:
        lines.reverse()
    return "inputs:\n  x: 0.5\nnodes:\n" + "\n".join(lines) + f"\noutputs: [{prev}]\n"


def chain_closed_form(pairs: int, x: float) -> tuple[float, float]:
    # v(k+1) = (v(k) + 1) r  =>  v(K) = r^K x + r (r^K - 1) / (r - 1);  dv(K)/dx = r^K
    # r^K - 1 by expm1/log1p: r - 1 is exact, and no cancellation loses the small difference
    rk1 = math.expm1(pairs * math.log1p(RATE - 1))
    rk = 1 + rk1
    return rk * x + RATE * rk1 / (RATE - 1), rk


def test_hundred_thousand_node_chain():
    limit = sys.getrecursionlimit()
    g = cgcalc.loads(chain_text(N_PAIRS))
    assert len(g.plan.steps) == 2 * N_PAIRS
    r = g.run()
    value, grad = chain_closed_form(N_PAIRS, 0.5)
    assert r.value(f"n{2 * N_PAIRS}") == pytest.approx(value, rel=1e-9)
    assert r.grad("x") == pytest.approx(grad, rel=1e-9)
    # the first node's gradient: everything after it, r^K again
    assert r.grad("n1") == pytest.approx(grad, rel=1e-9)
    assert sys.getrecursionlimit() == limit  # nothing raised the limit to get through


def test_chain_listed_in_reverse_order_runs_in_data_order():
    pairs = 1000
    r = cgcalc.loads(chain_text(pairs, reverse=True)).run()
    value, grad = chain_closed_form(pairs, 0.5)
    assert r.value(f"n{2 * pairs}") == pytest.approx(value, rel=1e-12)
    assert r.grad("x") == pytest.approx(grad, rel=1e-12)
    names = [row["name"] for row in r.to_dict()["nodes"]]
    assert names == ["x"] + [f"n{i}" for i in range(1, 2 * pairs + 1)]


def test_long_expression_chain():
    # a + a + ... + a, 5000 terms, is a left-leaning tree 5000 deep: d/da = 5000
    terms = 5000
    r = cgcalc.loads("inputs:\n  a: 0.5\nnodes:\n  s: " + " + ".join(["a"] * terms) + "\n").run()
    assert r.value("s") == terms * 0.5
    assert r.grad("a") == terms


# --- repeatability and independence of runs --------------------------------------------------------


def test_same_scalar_graph_twice_gives_identical_results(graphs_dir):
    g = cgcalc.load(graphs_dir / "apple_orange.yaml")
    r1 = g.run()
    r2 = g.run()
    assert r1.to_dict() == r2.to_dict()
    assert json.dumps(r1.to_dict()) == json.dumps(r2.to_dict())


@pytest.mark.parametrize("name", ["two_layer_net.yaml", "neuron.yaml"])
def test_same_array_graph_twice_gives_identical_results(graphs_dir, name):
    g = cgcalc.load(graphs_dir / name)
    r1 = g.run()
    r2 = g.run()
    assert json.dumps(r1.to_dict()) == json.dumps(r2.to_dict())
    for n in g.plan.names:
        v1, v2 = np.asarray(r1.value(n)), np.asarray(r2.value(n))
        assert v1.tobytes() == v2.tobytes()
        g1, g2 = r1.grad(n), r2.grad(n)
        assert (g1 is None) == (g2 is None)
        if g1 is not None:
            assert np.asarray(g1).tobytes() == np.asarray(g2).tobytes()


def test_a_later_run_does_not_change_an_earlier_result():
    g = cgcalc.loads("inputs:\n  x: [1.0, 2.0]\n  w: [3.0, 4.0]\nnodes:\n  y: sum(x * w)\n")
    r1 = g.run()
    r2 = g.run(x=[10.0, 20.0])
    r3 = g.run()
    assert r1.value("y") == 11.0
    np.testing.assert_array_equal(r1.grad("w"), [1.0, 2.0])
    assert r2.value("y") == 110.0
    np.testing.assert_array_equal(r2.grad("w"), [10.0, 20.0])
    assert r3.value("y") == 11.0
    np.testing.assert_array_equal(r1.value("x"), [1.0, 2.0])


def test_overriding_with_an_array_does_not_write_into_the_callers_array():
    x = np.array([1.0, -2.0, 3.0])
    saved = x.copy()
    g = cgcalc.loads("inputs:\n  x: [0.0, 0.0, 0.0]\nnodes:\n  y: relu(x)\n  z: sum(y * y)\n")
    r = g.run(x=x)
    np.testing.assert_array_equal(x, saved)
    assert r.value("z") == 10.0
    np.testing.assert_array_equal(r.grad("x"), [2.0, 0.0, 6.0])


# --- gradients of unrelated nodes, constants ---------------------------------------------------------


def test_node_the_output_does_not_depend_on_has_gradient_zero():
    text = """
inputs:
  x: 2.0
  unused: 5.0
nodes:
  side: x * 3
  y: x * x
outputs: [y]
"""
    r = cgcalc.loads(text).run()
    assert r.value("side") == 6.0
    assert r.grad("side") == 0.0
    assert r.grad("unused") == 0.0
    assert r.grad("x") == 4.0  # only through y


def test_node_the_output_does_not_depend_on_has_zero_gradient_of_its_shape():
    text = "inputs:\n  x: [1.0, 2.0]\n  m: [[1.0, 2.0], [3.0, 4.0]]\nnodes:\n  side: m * 2\n  y: sum(x)\noutputs: [y]\n"
    r = cgcalc.loads(text).run()
    np.testing.assert_array_equal(r.grad("side"), np.zeros((2, 2)))
    np.testing.assert_array_equal(r.grad("m"), np.zeros((2, 2)))
    np.testing.assert_array_equal(r.grad("x"), [1.0, 1.0])


def test_grad_false_input_has_no_gradient():
    text = """
inputs:
  x: 2.0
  k: {value: 3.0, grad: false}
nodes:
  y: x * k
"""
    r = cgcalc.loads(text).run()
    assert r.value("y") == 6.0
    assert r.value("k") == 3.0
    assert r.grad("k") is None
    assert r.grad("x") == 3.0
    rows = {row["name"]: row for row in r.to_dict()["nodes"]}
    assert rows["k"]["grad"] is None
    assert rows["k"]["value"] == 3.0


def test_grad_false_array_input_has_no_gradient(graphs_dir):
    r = cgcalc.load(graphs_dir / "two_layer_net.yaml").run()
    assert r.grad("t") is None
    assert np.shape(r.grad("W1")) == (3, 4)


# --- Result.to_dict ----------------------------------------------------------------------------------


def test_to_dict_has_the_json_shape_of_the_spec(graphs_dir):
    d = cgcalc.load(graphs_dir / "apple.yaml").run().to_dict()
    assert list(d) == ["graph", "output", "outputs", "nodes"]
    assert d["graph"] == "apple"
    assert d["output"] == "price"
    assert list(d["outputs"]) == ["price"]
    assert d["outputs"]["price"] == pytest.approx(220.0, rel=1e-12)
    expected = [
        ("apple", "input", [], 100.0, 2.2),
        ("apple_num", "input", [], 2.0, 110.0),
        ("tax", "input", [], 1.1, 200.0),
        ("apple_price", "mul", ["apple", "apple_num"], 200.0, 1.1),
        ("price", "mul", ["apple_price", "tax"], 220.0, 1.0),
    ]
    assert len(d["nodes"]) == len(expected)
    for row, (name, op, ins, value, grad) in zip(d["nodes"], expected):
        assert set(row) == {"name", "op", "inputs", "value", "grad"}
        assert (row["name"], row["op"], row["inputs"]) == (name, op, ins)
        assert type(row["value"]) is float and type(row["grad"]) is float
        assert row["value"] == pytest.approx(value, rel=1e-12)
        assert row["grad"] == pytest.approx(grad, rel=1e-12)
    # plain data: it survives a strict JSON round trip unchanged
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_to_dict_lists_inputs_in_file_order_then_nodes_in_execution_order():
    text = """
inputs:
  tax: 1.1
  apple: 100
  apple_num: 2
nodes:
  price: {op: mul, in: [apple_price, tax]}
  apple_price: {op: mul, in: [apple, apple_num]}
outputs: price
"""
    d = cgcalc.loads(text, name="shop").run().to_dict()
    assert d["graph"] == "shop"
    assert [row["name"] for row in d["nodes"]] == ["tax", "apple", "apple_num", "apple_price", "price"]
    assert d["outputs"]["price"] == pytest.approx(220.0, rel=1e-12)


def test_to_dict_names_expression_nodes_and_constants():
    d = cgcalc.loads("inputs:\n  x: 1.5\nnodes:\n  y: 2 * x + 1\n").run().to_dict()
    rows = d["nodes"]
    assert [row["name"] for row in rows] == ["x", "y.1", "y"]
    assert [row["op"] for row in rows] == ["input", "mul", "add"]
    assert rows[1]["inputs"] == ["2", "x"]
    assert rows[2]["inputs"] == ["y.1", "1"]
    assert [row["value"] for row in rows] == [1.5, 3.0, 4.0]
    assert [row["grad"] for row in rows] == [2.0, 1.0, 1.0]


def test_to_dict_writes_arrays_as_nested_lists():
    text = "inputs:\n  x: [[1, 2], [3, 4]]\n  w: [1, -1]\nnodes:\n  y: x @ w\n  s: sum(y)\n"
    d = cgcalc.loads(text).run().to_dict()
    rows = {row["name"]: row for row in d["nodes"]}
    assert rows["x"]["value"] == [[1.0, 2.0], [3.0, 4.0]]
    assert rows["x"]["grad"] == [[1.0, -1.0], [1.0, -1.0]]
    assert rows["w"]["grad"] == [4.0, 6.0]
    assert rows["y"]["value"] == [-1.0, -1.0]
    assert rows["s"]["value"] == -2.0
    assert d["outputs"] == {"s": -2.0}
    assert json.loads(json.dumps(d, allow_nan=False)) == d


# --- the Python API ----------------------------------------------------------------------------------


def test_run_with_keyword_overrides(graphs_dir):
    g = cgcalc.load(graphs_dir / "apple.yaml")
    r = g.run(apple=120)
    assert r.value("price") == pytest.approx(264.0, rel=1e-12)  # 120 * 2 * 1.1
    assert r.value("apple") == 120.0
    assert r.grad("apple") == pytest.approx(2.2, rel=1e-12)
    assert r.grad("tax") == pytest.approx(240.0, rel=1e-12)
    # the graph keeps its file values for the next run
    assert g.run().value("price") == pytest.approx(220.0, rel=1e-12)


def test_run_with_a_mapping_and_another_output(graphs_dir):
    g = cgcalc.load(graphs_dir / "apple.yaml")
    r = g.run({"apple": 120}, output="apple_price")
    assert r.output == "apple_price"
    assert r.value("apple_price") == 240.0
    assert r.grad("apple") == 2.0
    assert r.grad("apple_num") == 120.0
    assert r.grad("tax") == 0.0  # apple_price does not depend on tax
    assert r.grad("price") == 0.0
    assert r.to_dict()["output"] == "apple_price"


def test_an_input_as_the_selected_output(graphs_dir):
    g = cgcalc.load(graphs_dir / "apple.yaml")
    r = g.run(output="apple")
    assert r.grad("apple") == 1.0
    for name in ["apple_num", "tax", "apple_price", "price"]:
        assert r.grad(name) == 0.0, name


def test_gradients_of_several_outputs():
    g = cgcalc.loads("inputs:\n  a: 2\nnodes:\n  y: a * a\n  z: y * 3\noutputs: [z, y]\n")
    r = g.run(output=["z", "y"])
    assert r.output == "z"
    assert r.grad("a") == 12.0  # z = 3 a^2
    assert r.grad("a", output="y") == 4.0  # y = a^2
    assert r.grad("z", output="y") == 0.0
    assert r.outputs == {"z": 12.0, "y": 4.0}


def test_mapping_and_keywords_together(graphs_dir):
    g = cgcalc.load(graphs_dir / "apple.yaml")
    r = g.run({"apple": 120}, tax=1.0)
    assert r.value("price") == 240.0
    assert r.grad("tax") == 240.0


def test_book_apple(graphs_dir):
    r = cgcalc.load(graphs_dir / "apple.yaml").run()
    assert r.value("price") == pytest.approx(220.0, rel=1e-12)
    assert r.grad("apple") == pytest.approx(2.2, rel=1e-12)
    assert r.grad("apple_num") == pytest.approx(110.0, rel=1e-12)
    assert r.grad("tax") == pytest.approx(200.0, rel=1e-12)
    assert r.grad("apple_price") == pytest.approx(1.1, rel=1e-12)
    assert r.grad("price") == 1.0


def test_book_apple_orange(graphs_dir):
    r = cgcalc.load(graphs_dir / "apple_orange.yaml").run()
    assert r.value("price") == pytest.approx(715.0, rel=1e-12)
    expected = {
        "apple": 2.2,
        "apple_num": 110.0,
        "orange": 3.3,
        "orange_num": 165.0,
        "tax": 650.0,
        "apple_price": 1.1,
        "orange_price": 1.1,
        "all_price": 1.1,
        "price": 1.0,
    }
    for name, grad in expected.items():
        assert r.grad(name) == pytest.approx(grad, rel=1e-12), name


# --- what gets imported ---------------------------------------------------------------------------------


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_importing_layers_does_not_import_the_cli_stack():
    loaded = top_level(modules_after("import cgcalc.core.layers"))
    assert "cgcalc" in loaded
    assert not loaded & {"rich", "typer", "yaml", "click"}


def test_a_scalar_run_does_not_import_numpy():
    code = (
        "import cgcalc\n"
        "r = cgcalc.loads('inputs:\\n  a: 2\\n  b: 3\\nnodes:\\n  c: exp(a) * b + sigmoid(a) / b\\n').run()\n"
        "assert r.grad('b') != 0\n"
    )
    loaded = top_level(modules_after(code))
    assert "cgcalc" in loaded
    assert "numpy" not in loaded


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_a_reduction_of_a_scalar_in_a_graph_with_arrays(op):
    # found by test_json_plain: the numpy kernel gave backward a float where it expected an array
    g = cgcalc.loads(
        f"inputs:\n  v: {{value: [1.0, 2.0], grad: false}}\n  x: 3.0\nnodes:\n  r: {{op: {op}, in: [x]}}\n  y: r * x\n"
    )
    r = g.run()
    assert float(r.value("y")) == 9.0
    assert float(r.grad("x")) == 6.0  # d(x * x)/dx at 3, by hand


# --- numpy's warnings never reach the caller ------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.run(x=np.array([1 + 2j, 3])),
        lambda g: g.run(x=np.complex128(1)),
        lambda g: g.run(x=1 + 2j),
        lambda g: g.run({"x": [1 + 0j, 2]}),
        lambda g: g.run_batch({"x": np.array([[1 + 2j, 3]])}),
        lambda g: g.run_batch({"x": np.ones((3, 2), dtype=np.complex64)}),
    ],
    ids=["array", "numpy-scalar", "python-complex", "list", "batch", "batch-complex64"],
)
def test_a_complex_input_is_a_usage_error_not_a_complex_warning(call):
    import warnings

    from cgcalc.errors import UsageError

    g = cgcalc.loads("inputs:\n  x: [1, 2]\nnodes:\n  y: x * 2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning would be raised here
        with pytest.raises(UsageError, match="is complex: cgcalc computes with real numbers"):
            call(g)


@pytest.mark.parametrize("shape, axis", [((0,), None), ((2, 0), 1), ((0, 3), 0), ((0, 3), None)])
def test_mean_of_an_empty_slice_is_nan_without_a_numpy_warning(shape, axis):
    import warnings

    attrs = "" if axis is None else f", axis={axis}"
    g = cgcalc.loads(f"inputs:\n  x: {np.ones((1,) * len(shape)).tolist()}\nnodes:\n  y: mean(x{attrs})\n")
    x = np.zeros(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = g.run(x=x)
        b = g.run_batch({"x": np.stack([x, x])})
    expected = np.full(np.sum(x, axis=axis).shape, np.nan)  # NaN where the slice is empty
    np.testing.assert_array_equal(r.value("y"), expected)
    np.testing.assert_array_equal(b.outputs["y"], np.stack([expected, expected]))
    assert r.grad("x").shape == shape
    assert r.warnings and "NaN first produced by node 'y'" in r.warnings[0]


def test_mean_is_still_numpys_mean_bit_for_bit():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 13, 5)) * 10.0 ** rng.integers(-300, 300, (7, 13, 5))
    for axis in (None, 0, 1, 2, [0, 2]):
        attrs = "" if axis is None else f", axis={axis}"
        g = cgcalc.loads(f"inputs:\n  x: [[[1]]]\nnodes:\n  y: mean(x{attrs})\n")
        np_axis = tuple(axis) if isinstance(axis, list) else axis
        assert np.array_equal(g.run(x=x).value("y"), np.mean(x, axis=np_axis)), axis
