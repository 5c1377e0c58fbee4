"""The numbers of issue 15 through the Python API: elasticities, Graph.sweep, Graph.tornado, Graph.solve.

Expected values are the issue's apple-orange oracles, worked out by hand from price = (apple · apple_num +
orange · orange_num) · tax (elasticities 200/650 and 450/650; tornado 693/737, 665.5/764.5, 643.5/786.5;
apple = (800/1.1 − 450)/2), or sympy's own evaluation of a nonlinear graph written twice (as cgcalc text and as
a sympy expression), or a single `run` at the same point.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import cgcalc
from cgcalc.errors import CgcalcError, UsageError
from cgcalc.whatif import NoSolution, elasticities

ROOT = Path(__file__).resolve().parent.parent
APPLE_ORANGE = cgcalc.load(ROOT / "graphs" / "apple_orange.yaml")

# a nonlinear graph, and the same function for sympy
X, Y = sympy.symbols("x y", real=True)
NONLINEAR_TEXT = """\
name: nonlinear
inputs: {x: 0.7, y: 1.3}
nodes:
  f: tanh(x * y) + sigmoid(x - y) * x ** 3 + exp(-x) / y
"""
NONLINEAR_SYM = sympy.tanh(X * Y) + X**3 / (1 + sympy.exp(-(X - Y))) + sympy.exp(-X) / Y
NONLINEAR = cgcalc.loads(NONLINEAR_TEXT)


def sym(expr, **at) -> float:
    return float(expr.subs({X: sympy.Float(at["x"], 30), Y: sympy.Float(at["y"], 30)}).evalf(30))


def close(got: float, want: float, rtol: float = 1e-12, atol: float = 1e-13) -> bool:
    return abs(got - want) <= atol + rtol * abs(want)


# --- elasticity ----------------------------------------------------------------------------------------------


def test_apple_orange_elasticities():
    r = APPLE_ORANGE.run()
    e = dict(zip(r.plan.names, elasticities(r)))
    for name, want in [("apple", 200 / 650), ("apple_num", 200 / 650), ("orange", 450 / 650)]:
        assert e[name] == pytest.approx(want, rel=1e-15), name
    assert e["orange_num"] == pytest.approx(450 / 650, rel=1e-15)
    assert e["tax"] == pytest.approx(1.0, rel=1e-15)
    assert round(e["apple"], 4) == 0.3077 and round(e["orange"], 4) == 0.6923
    # the nodes too: a share of the price, and the output's own is 1
    assert e["apple_price"] == pytest.approx(200 / 650) and e["all_price"] == e["price"] == pytest.approx(1.0)


def test_elasticity_is_undefined_where_the_output_is_zero():
    g = cgcalc.loads("inputs: {x: 1.0, y: 3.0}\nnodes:\n  f: (x - 1) * y\n")
    assert elasticities(g.run()) == [None] * 4


def test_elasticity_of_arrays_is_elementwise_and_of_the_outputs_sum():
    g = cgcalc.load(ROOT / "graphs" / "relu.yaml")
    r = g.run()
    e = dict(zip(r.plan.names, elasticities(r)))
    y = r.value("y")
    np.testing.assert_array_equal(e["x"], np.asarray(r.grad("x")) * r.value("x") / y)
    np.testing.assert_array_equal(e["w"], np.asarray(r.grad("w")) * r.value("w") / y)
    # y = sum(relu(x) * w) is linear in w: the elasticities of its elements add up to 1
    assert e["w"].sum() == pytest.approx(1.0)


def test_a_constant_has_no_elasticity():
    r = cgcalc.load(ROOT / "graphs" / "two_layer_net.yaml").run()
    e = dict(zip(r.plan.names, elasticities(r)))
    assert e["t"] is None and e["loss"] == 1.0


# --- sweep ---------------------------------------------------------------------------------------------------


def test_sweep_of_apple_orange_is_the_line_it_should_be():
    d = APPLE_ORANGE.sweep({"apple": (0, 200, 11)})
    assert set(d) == {"graph", "output", "inputs", "points"}
    assert (d["graph"], d["output"], d["inputs"]) == ("apple-orange", "price", ["apple"])
    assert [p["apple"] for p in d["points"]] == [20.0 * i for i in range(11)]
    for p in d["points"]:
        assert set(p) == {"apple", "value", "grad"}
        assert p["value"] == pytest.approx((2 * p["apple"] + 450) * 1.1, rel=1e-15)
        assert p["grad"] == {"apple": pytest.approx(2.2, rel=1e-15)}


def test_every_point_is_the_run_at_that_point_bit_for_bit():
    d = NONLINEAR.sweep({"x": (-2.0, 3.0, 26), "y": (0.5, 2.0, 7)})
    assert len(d["points"]) == 26 * 7
    for p in d["points"][::5]:
        r = NONLINEAR.run(x=p["x"], y=p["y"])
        assert p["value"] == r.value("f")
        assert p["grad"] == {"x": r.grad("x"), "y": r.grad("y")}


def test_a_grid_varies_the_first_input_slowest():
    d = APPLE_ORANGE.sweep({"apple": (0, 100, 3), "tax": (1.0, 1.2, 2)})
    assert [(p["apple"], p["tax"]) for p in d["points"]] == [
        (0.0, 1.0),
        (0.0, 1.2),
        (50.0, 1.0),
        (50.0, 1.2),
        (100.0, 1.0),
        (100.0, 1.2),
    ]
    # price = (2 apple + 450) tax: d/dapple = 2 tax, d/dtax = 2 apple + 450
    for p in d["points"]:
        assert p["grad"]["apple"] == pytest.approx(2 * p["tax"])
        assert p["grad"]["tax"] == pytest.approx(2 * p["apple"] + 450)


def test_sweep_keeps_the_set_inputs_and_the_file_values():
    d = APPLE_ORANGE.sweep({"apple": (0, 10, 2)}, {"tax": 2.0, "orange_num": 0})
    assert [p["value"] for p in d["points"]] == [0.0, 40.0]  # (2 apple + 0) * 2
    assert [p["grad"]["apple"] for p in d["points"]] == [4.0, 4.0]


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(-3, 3),
    width=st.floats(0.01, 4),
    n=st.integers(2, 40),
    y=st.floats(0.2, 3),
    which=st.sampled_from(["x", "y"]),
)
def test_a_sweep_of_a_nonlinear_graph_matches_sympy(start, width, n, y, which):
    if which == "y":
        start = abs(start) + 0.1  # f divides by y
    d = NONLINEAR.sweep({which: (start, start + width, n)}, {"y": y} if which == "x" else {})
    assert len(d["points"]) == n
    xs = np.linspace(start, start + width, n)
    for p, v in zip(d["points"], xs):
        assert p[which] == v
        at = {"x": p["x"] if which == "x" else 0.7, "y": p["y"] if which == "y" else y}
        assert close(p["value"], sym(NONLINEAR_SYM, **at))
        assert close(p["grad"][which], sym(sympy.diff(NONLINEAR_SYM, X if which == "x" else Y), **at), atol=1e-12)


def test_a_sweep_of_a_graph_with_arrays_moves_its_scalar():
    g = cgcalc.load(ROOT / "graphs" / "neuron.yaml")
    d = g.sweep({"b": (-1.0, 1.0, 5)})
    for p in d["points"]:
        r = g.run(b=p["b"])
        assert p["value"] == pytest.approx(r.value("y"), rel=1e-15)
        assert p["grad"]["b"] == pytest.approx(r.grad("b"), rel=1e-15)


@pytest.mark.parametrize(
    "ranges, overrides, output, fragments",
    [
        ({"appel": (0, 1, 3)}, None, None, ["'appel' is not an input", "did you mean 'apple'"]),
        ({"price": (0, 1, 3)}, None, None, ["'price' is a node, not an input"]),
        ({"apple": (0, 1, 1)}, None, None, ["N must be a whole number of at least 2"]),
        ({"apple": (0, 1, 2.5)}, None, None, ["expected (start, stop, n) with a whole n"]),
        ({"apple": ("a", 1, 3)}, None, None, ["expected (start, stop, n)"]),
        ({"apple": (0, 1)}, None, None, ["expected (start, stop, n)"]),
        ({"apple": (1, 1, 3)}, None, None, ["START and STOP must be finite and different"]),
        ({"apple": (0, math.inf, 3)}, None, None, ["must be finite"]),
        ({}, None, None, ["one or two"]),
        ({"apple": (0, 1, 2), "tax": (0, 1, 2), "orange": (0, 1, 2)}, None, None, ["one or two"]),
        ({"apple": (0, 1, 3)}, {"apple": 3}, None, ["both swept and set"]),
        ({"apple": (0, 1, 3)}, None, "prise", ["'prise'", "did you mean 'price'"]),
        ({"apple": (0, 1, 5000), "tax": (0, 1, 5000)}, None, None, ["25,000,000 points", "over the limit"]),
    ],
)
def test_sweep_errors(ranges, overrides, output, fragments):
    with pytest.raises(UsageError) as e:
        APPLE_ORANGE.sweep(ranges, overrides, output=output)
    for f in fragments:
        assert f in str(e.value), str(e.value)


def test_sweep_refuses_arrays_constants_and_array_outputs():
    net = cgcalc.load(ROOT / "graphs" / "two_layer_net.yaml")
    with pytest.raises(UsageError, match=r"'x' is an array of shape \(2, 3\)"):
        net.sweep({"x": (0, 1, 3)})
    with pytest.raises(UsageError, match=r"'t' is a constant \(grad: false\)"):
        net.sweep({"t": (0, 1, 3)})
    with pytest.raises(UsageError, match=r"needs a scalar output; 'a1' has shape \(2, 4\)"):
        net.sweep({"x": (0, 1, 3)}, output="a1")


def test_sweep_says_where_the_output_is_not_finite():
    from cgcalc.whatif import Axis, sweep

    g = cgcalc.loads("inputs: {x: 1.0}\nnodes:\n  f: log(x)\n")
    sw = sweep(g.plan, [Axis("x", -1.0, 1.0, 5)])
    assert sw.warnings[0] == "f is not finite at 3 of 5 points (the first: x = -1)"
    assert math.isnan(sw.to_dict()["points"][0]["value"])


# --- tornado -------------------------------------------------------------------------------------------------

APPLE_ORANGE_TORNADO = {
    "apple": (693.0, 737.0),
    "apple_num": (693.0, 737.0),
    "orange": (665.5, 764.5),
    "orange_num": (665.5, 764.5),
    "tax": (643.5, 786.5),
}


def test_tornado_of_apple_orange_at_ten_percent():
    d = APPLE_ORANGE.tornado()
    assert set(d) == {"graph", "output", "base", "rows"}
    assert (d["graph"], d["output"]) == ("apple-orange", "price")
    assert d["base"] == pytest.approx(715.0, rel=1e-15)
    assert [r["input"] for r in d["rows"]] == ["tax", "orange", "orange_num", "apple", "apple_num"]  # by swing
    for r in d["rows"]:
        assert set(r) == {"input", "low_input", "high_input", "low", "high", "swing"}
        low, high = APPLE_ORANGE_TORNADO[r["input"]]
        assert (r["low"], r["high"]) == (pytest.approx(low, rel=1e-14), pytest.approx(high, rel=1e-14))
        assert r["swing"] == pytest.approx(high - low, rel=1e-13)
    values = dict(zip(APPLE_ORANGE.inputs, (100.0, 2.0, 150.0, 3.0, 1.1)))
    for r in d["rows"]:
        x = values[r["input"]]
        assert (r["low_input"], r["high_input"]) == (pytest.approx(0.9 * x), pytest.approx(1.1 * x))


def test_tornado_ranges_and_by():
    d = APPLE_ORANGE.tornado(by=0.5, ranges={"tax": (1.0, 1.2)})
    rows = {r["input"]: r for r in d["rows"]}
    assert (rows["tax"]["low_input"], rows["tax"]["high_input"]) == (1.0, 1.2)
    assert (rows["tax"]["low"], rows["tax"]["high"]) == (pytest.approx(650.0), pytest.approx(780.0))
    assert (rows["apple"]["low_input"], rows["apple"]["high_input"]) == (50.0, 150.0)
    assert rows["apple"]["low"] == pytest.approx(605.0)


def test_tornado_computes_the_output_and_shows_the_linear_estimate_beside_it():
    """f is nonlinear: the exact ends (sympy) differ from the gradient's linear estimate (also from sympy)."""
    from cgcalc.whatif import tornado

    t = tornado(NONLINEAR.plan, by=0.2)
    f0 = sym(NONLINEAR_SYM, x=0.7, y=1.3)
    assert close(t.base, f0)
    for r in t.rows:
        d = sympy.diff(NONLINEAR_SYM, X if r.input == "x" else Y)
        at = {"x": 0.7, "y": 1.3}
        slope = sym(d, **at)
        for moved, got, linear in ((r.low_input, r.low, r.linear_low), (r.high_input, r.high, r.linear_high)):
            assert close(got, sym(NONLINEAR_SYM, **{**at, r.input: moved}))
            assert close(linear, f0 + slope * (moved - at[r.input]), atol=1e-12)
            assert abs(got - linear) > 1e-4  # curved: the estimate is not the value
    assert [r.input for r in t.rows] == sorted(["x", "y"], key=lambda n: -next(r.swing for r in t.rows if r.input == n))


def test_tornado_with_arrays_moves_only_the_scalars():
    from cgcalc.whatif import tornado

    t = tornado(cgcalc.load(ROOT / "graphs" / "neuron.yaml").plan)
    assert [r.input for r in t.rows] == ["b"] and t.skipped == ["x", "w"]
    with pytest.raises(UsageError, match="has none"):
        cgcalc.load(ROOT / "graphs" / "two_layer_net.yaml").tornado()


def test_tornado_warns_about_a_zero_input():
    from cgcalc.whatif import tornado

    t = tornado(APPLE_ORANGE.plan, {"apple": 0.0})
    assert t.warnings == ["'apple' is 0: moving it by ±10% leaves it at 0 (give --range apple=LO:HI)"]


# --- solve ---------------------------------------------------------------------------------------------------


def test_solve_apple_orange_for_a_price_of_800():
    d = APPLE_ORANGE.solve("apple", 800)
    assert set(d) == {"graph", "output", "target", "input", "value", "residual", "iterations"}
    assert d["value"] == pytest.approx((800 / 1.1 - 450) / 2, rel=1e-14)
    assert (d["output"], d["input"], d["target"], d["iterations"]) == ("price", "apple", 800.0, 1)  # linear: 1 step
    assert abs(d["residual"]) <= 1e-9 * 800
    assert APPLE_ORANGE.run(apple=d["value"]).value("price") - 800 == d["residual"]


def test_solve_within_bounds_and_by_another_input():
    assert APPLE_ORANGE.solve("tax", 800)["value"] == pytest.approx(800 / 650, rel=1e-14)
    d = APPLE_ORANGE.solve("apple", 800, within=(0, 1000))
    assert d["value"] == pytest.approx((800 / 1.1 - 450) / 2, rel=1e-14)
    with pytest.raises(NoSolution, match=r"price does not reach 800 for apple in \[200, 1000\]"):
        APPLE_ORANGE.solve("apple", 800, within=(200, 1000))


@settings(max_examples=60, deadline=None)
@given(root=st.floats(-2.5, 2.5), y=st.floats(0.3, 2.0), bounded=st.booleans())
def test_solve_a_nonlinear_graph_finds_the_value_sympy_gives_back(root, y, bounded):
    """g = x^3 + x + tanh(x y) rises with x: one root, whatever the target f(root) is."""
    g = cgcalc.loads("inputs: {x: 0.5, y: 1.0}\nnodes:\n  g: x ** 3 + x + tanh(x * y)\n")
    expr = X**3 + X + sympy.tanh(X * Y)
    target = sym(expr, x=root, y=y)
    d = g.solve("x", target, {"y": y}, within=(-3.0, 3.0) if bounded else None)
    assert abs(d["residual"]) <= 1e-9 * max(1, abs(target))
    assert close(sym(expr, x=d["value"], y=y) - target, d["residual"], rtol=1e-6, atol=1e-12)
    assert d["value"] == pytest.approx(root, rel=1e-8, abs=1e-9)  # slope >= 1: |dx| <= |residual|


def test_solve_where_the_gradient_is_zero_brackets_instead():
    g = cgcalc.loads("inputs: {x: 0.0}\nnodes:\n  f: x * x\n")
    d = g.solve("x", 2.0)  # f'(0) = 0: no Newton step, a scan finds a bracket around ±sqrt(2)
    assert abs(d["value"]) == pytest.approx(math.sqrt(2), rel=1e-9)
    d = g.solve("x", 2.0, within=(0.0, 10.0))
    assert d["value"] == pytest.approx(math.sqrt(2), rel=1e-9)


def test_solve_when_a_newton_step_leaves_the_bounds():
    """tanh flattens out: from x = 3 the first Newton step for 0.1 lands far outside [-1, 5]."""
    from cgcalc.whatif import solve

    g = cgcalc.loads("inputs: {x: 3.0}\nnodes:\n  f: tanh(x)\n")
    s = solve(g.plan, "x", 0.1, within=(-1.0, 5.0), tol=1e-15)
    assert s.value == pytest.approx(math.atanh(0.1), rel=1e-14)
    assert abs(s.residual) <= 1e-15
    assert s.method == "Newton and bisection"


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("f: x * x", {"target": -1.0}, "does not reach -1 for x from"),
        (
            "f: x * x",
            {"target": -1.0, "within": (1.0, 2.0)},
            r"does not reach -1 for x in \[1, 2\]: it stays between 1 and 4",
        ),
        ("f: step(x)", {"target": 0.5, "within": (-1.0, 1.0)}, "f jumps across 0.5 at x = 0"),
        ("f: 0 * x + 3", {"target": 1.0}, "it stays at 3"),
        ("f: log(x - 10)", {"target": 1.0, "within": (0.0, 5.0)}, "not finite anywhere"),
    ],
)
def test_no_solution(text, kwargs, match):
    g = cgcalc.loads(f"inputs: {{x: 0.3}}\nnodes:\n  {text}\n")
    with pytest.raises(NoSolution, match=match):
        g.solve("x", **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("appel", 800), {}, "did you mean 'apple'"),
        (("apple", 800), {"output": "prise"}, "did you mean 'price'"),
        (("apple", math.nan), {}, "finite number"),
        (("apple", 800), {"tol": 0.0}, "--tol must be a number above 0"),
        (("apple", 800), {"within": (5.0, 1.0)}, "LO below HI"),
        (("apple", 800, {"apple": 3}), {}, "both varied and set"),
    ],
)
def test_solve_usage_errors(args, kwargs, match):
    with pytest.raises(UsageError, match=match):
        APPLE_ORANGE.solve(*args, **kwargs)


def test_no_solution_is_a_cgcalc_error_but_not_a_usage_error():
    assert issubclass(NoSolution, CgcalcError) and not issubclass(NoSolution, UsageError)


@settings(max_examples=40, deadline=None)
@given(target=st.floats(-5000, 5000), tax=st.floats(0.5, 2.0))
def test_solve_apple_orange_for_any_price(target, tax):
    # price = (2 apple + 450) tax: apple = (target / tax - 450) / 2, reached by one Newton step
    d = APPLE_ORANGE.solve("apple", target, {"tax": tax})
    assert d["value"] == pytest.approx((target / tax - 450) / 2, rel=1e-9, abs=1e-9)
    assert abs(d["residual"]) <= 1e-9 * max(1.0, abs(target))
