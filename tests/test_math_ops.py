"""Issue 13's elementwise ops, reductions, losses, argmax and accuracy: sin cos sqrt abs square leaky_relu clip
maximum minimum where; max min logsumexp argmax; softmax log_softmax cross_entropy_error mean_squared_error
accuracy.

Forward values against numpy formulas written here (and the book's printed values); backward against float64
central differences (test_layers' `check_gradients`: the layer driven as the runtime drives it, the reference
d/dx sum(dout * f(x)) by central differences); ties, kinks and the ops without a gradient; the derivative
graph (`Graph.derive`) against the numeric backward and central differences; batch == single runs; errors
named before anything runs. The generic tests over every elementwise op (float path, exact arrays, purity,
broadcasting) are in test_layers.py; the random graphs of test_batch_props.py use these ops too.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import randgraphs as rg
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes
from test_layers import SEEDS, Node, check_gradients, reductions, same

import cgcalc
from cgcalc.core.base import sum_to
from cgcalc.core.kernels import exact_arrays
from cgcalc.core.registry import LAYERS
from cgcalc.errors import GraphError, ShapeError

SETTINGS = settings(max_examples=25, deadline=None)
INF, NAN = math.inf, math.nan


def loads(text: str) -> cgcalc.Graph:
    return cgcalc.loads(textwrap.dedent(text))


def graph(inputs: dict, nodes: dict, outputs=None) -> cgcalc.Graph:
    """A graph from values: inputs name -> number, list, array or ("const", value) for `grad: false`."""
    doc: dict = {"inputs": {}, "nodes": nodes}
    for k, v in inputs.items():
        if isinstance(v, tuple):
            doc["inputs"][k] = {"value": np.asarray(v[1]).tolist(), "grad": False}
        else:
            doc["inputs"][k] = np.asarray(v, dtype=float).tolist()
    if outputs:
        doc["outputs"] = outputs
    return cgcalc.loads(json.dumps(doc), json=True)


# --- the book's values -------------------------------------------------------------------------------------

BOOK_Y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]  # chapter 4: 0.6 on class 2, the correct one
BOOK_Y_WRONG = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]  # 0.6 on class 7
BOOK_T = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_softmax_of_the_book():
    r = graph({"a": [0.3, 2.9, 4.0]}, {"y": "softmax(a)"}).run()
    assert r.value("y").tolist() == [0.01821127329554753, 0.24519181293507392, 0.7365969137693786]


@pytest.mark.parametrize("x", [[1000.0, 1010.0, 990.0], [-1000.0, -1010.0, -990.0], [1000.0, -1000.0, 0.0]])
def test_softmax_and_log_softmax_are_stable_at_1000(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = graph({"a": x}, {"y": "softmax(a)", "ly": "log_softmax(a)", "s": "sum(y * ly)"}).run()
    a = np.array(x)
    z = a - a.max()
    expected_log = z - math.log(sum(math.exp(v) for v in z))
    np.testing.assert_allclose(r.value("ly"), expected_log, rtol=1e-15, atol=0)
    e = np.array([math.exp(v) for v in z])
    np.testing.assert_allclose(r.value("y"), e / math.fsum(e), rtol=1e-15, atol=0)
    assert r.value("y").sum() == pytest.approx(1.0, rel=1e-15)
    assert np.isfinite(r.grad("a")).all()
    assert r.warnings == ()


@pytest.mark.parametrize(
    "y, t, expected",
    [
        (BOOK_Y, BOOK_T, 0.510825457099338),
        (BOOK_Y_WRONG, BOOK_T, 2.302584092994546),
        (BOOK_Y, 2, 0.510825457099338),  # a class index
        (BOOK_Y_WRONG, 2, 2.302584092994546),
    ],
)
def test_cross_entropy_error_of_the_book(y, t, expected):
    r = graph({"y": y, "t": ("const", t)}, {"e": "cross_entropy_error(y, t)"}).run()
    assert r.value("e") == expected
    # the book's gradient: -t / (y + 1e-7)
    onehot = np.asarray(BOOK_T, dtype=float)
    np.testing.assert_allclose(r.grad("y"), -onehot / (np.asarray(y) + 1e-7), rtol=1e-15)


def book_cross_entropy_error(y, t):
    """common/functions.py's cross_entropy_error, as the book prints it."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


@pytest.mark.parametrize("labels", ["onehot", "indices"])
def test_cross_entropy_error_of_a_batch_is_the_books(labels):
    y = np.array([BOOK_Y, BOOK_Y_WRONG, BOOK_Y_WRONG[::-1]])
    idx = np.array([2, 2, 2])
    t = np.eye(10)[idx] if labels == "onehot" else idx.astype(float)
    r = graph({"y": y, "t": ("const", t)}, {"e": "cross_entropy_error(y, t)"}).run()
    want = book_cross_entropy_error(y, np.eye(10)[idx].astype(int) if labels == "onehot" else idx)
    assert r.value("e") == pytest.approx(want, rel=1e-15)
    assert r.value("e") == pytest.approx((2 * 0.510825457099338 + 2.302584092994546) / 3, rel=1e-15)
    np.testing.assert_allclose(r.grad("y"), -np.eye(10)[idx] / (y + 1e-7) / 3, rtol=1e-15)


@pytest.mark.parametrize("y, expected", [(BOOK_Y, 0.09750000000000003), (BOOK_Y_WRONG, 0.5975)])
def test_mean_squared_error_of_the_book(y, expected):
    r = graph({"y": y, "t": ("const", BOOK_T)}, {"e": "mean_squared_error(y, t)"}).run()
    assert r.value("e") == expected
    np.testing.assert_array_equal(r.grad("y"), np.asarray(y) - np.asarray(BOOK_T))


def test_accuracy_of_the_book():
    # chapter 4's: argmax of each row against the label; 2 of 3 right
    y = [[0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.2, 0.5, 0.3]]
    for t in ([1, 2, 0], [[0, 1, 0], [0, 0, 1], [1, 0, 0]]):
        r = graph({"y": y, "t": ("const", t)}, {"acc": "accuracy(y, t)"}).run()
        assert r.value("acc") == 2 / 3
    one = graph({"y": [0.1, 0.8, 0.1]}, {"hit": "accuracy(y, 1)", "miss": "accuracy(y, 2)"}, ["hit", "miss"]).run()
    assert (one.value("hit"), one.value("miss")) == (1.0, 0.0)


# --- forward against numpy, backward against central differences ------------------------------------------


def away_from(x, points, gap=1e-3, step=0.01):
    """x with every element within `gap` of one of `points` moved `step` off it (central differences would
    straddle a kink there)."""
    x = np.array(x, dtype=float, copy=True)
    for p in points:
        x = np.where(np.abs(x - p) < gap, x + step, x)
    return x


@SETTINGS
@given(
    shape=array_shapes(min_dims=0, max_dims=3, max_side=4),
    bounds=st.sampled_from([(-0.5, 0.5), (None, 0.0), (0.25, None), (-1.0, -1.0), (0, 1)]),
    seed=SEEDS,
)
def test_clip_forward_and_gradient(shape, bounds, seed):
    lo, hi = bounds
    rng = np.random.default_rng(seed)
    x = away_from(rng.uniform(-2, 2, shape), [b for b in bounds if b is not None])
    attrs = {k: v for k, v in (("lo", lo), ("hi", hi)) if v is not None}
    y = check_gradients("clip", [x], rng, attrs=attrs)
    want = np.minimum(np.maximum(x, -INF if lo is None else lo), INF if hi is None else hi)
    np.testing.assert_array_equal(y, want)


def test_clip_passes_the_gradient_at_a_bound_and_not_beyond():
    node = Node("clip", [np.array([-1.0, 0.0, 0.5, 1.0, 2.0, NAN])], {"lo": 0, "hi": 1})
    np.testing.assert_array_equal(node.y, [0.0, 0.0, 0.5, 1.0, 1.0, NAN])
    (dx,) = node.backward(np.full(6, 3.0))
    np.testing.assert_array_equal(dx, [0.0, 3.0, 3.0, 3.0, 0.0, 0.0])


@SETTINGS
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3).map(
        lambda s: s.input_shapes
    ),
    seed=SEEDS,
)
@example(shapes=((3, 1), (4,), ()), seed=1)
@example(shapes=((), (2, 3), (3,)), seed=2)
@example(shapes=((2, 1, 3), (1,), (4, 1)), seed=3)
def test_where_forward_and_gradient(shapes, seed):
    rng = np.random.default_rng(seed)
    cond = rng.choice([0.0, 1.0, -2.5, 0.0], size=shapes[0])
    a, b = rng.uniform(-2, 2, shapes[1]), rng.uniform(-2, 2, shapes[2])
    y = check_gradients("where", [cond, a, b], rng, no_grad=(0,))
    np.testing.assert_array_equal(y, np.where(cond != 0, a, b))


@pytest.mark.parametrize("op", ["max", "min", "logsumexp"])
@settings(max_examples=30, deadline=None)
@given(case=reductions(), seed=SEEDS)
@example(case=((2, 3, 4), {"axis": 1}), seed=1)
@example(case=((2, 3, 4), {"axis": [0, -1], "keepdims": True}), seed=2)
@example(case=((3, 1), {"axis": -1}), seed=3)
@example(case=((), {}), seed=4)
def test_reduction_forward_and_gradient(op, case, seed):
    shape, attrs = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shape)  # continuous: no ties (they are tested below)
    y = check_gradients(op, [x], rng, attrs=attrs)
    axis = attrs.get("axis")
    axis = tuple(axis) if isinstance(axis, list) else axis
    keep = attrs.get("keepdims", False)
    if op == "logsumexp":
        m = np.max(x, axis=axis, keepdims=True)
        want = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        want = want if keep else np.squeeze(want, axis=axis) if shape else want.reshape(())
    else:
        want = getattr(np, op)(x, axis=axis, keepdims=keep)
    np.testing.assert_allclose(y, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "op, x, attrs, dx",
    [
        ("max", [1.0, 3.0, 3.0, 2.0], {}, [0.0, 0.5, 0.5, 0.0]),
        ("max", [[2.0, 2.0, 2.0], [1.0, 5.0, 4.0]], {"axis": 1}, [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]]),
        ("max", [[2.0, 7.0], [2.0, 1.0]], {"axis": 0, "keepdims": True}, [[0.5, 1.0], [0.5, 0.0]]),
        ("min", [4.0, -1.0, 0.0, -1.0, -1.0], {}, [0.0, 1 / 3, 0.0, 1 / 3, 1 / 3]),
        ("min", [[0.0, -0.0]], {"axis": -1}, [[0.5, 0.5]]),  # -0.0 == 0.0: a tie
    ],
)
def test_tied_extremes_share_the_gradient_evenly(op, x, attrs, dx):
    text = f"inputs: {{x: {json.dumps(x)}}}\nnodes:\n  m: {{op: {op}, in: [x]{''.join(f', {k}: {json.dumps(v)}' for k, v in attrs.items())}}}\n"
    g = cgcalc.loads(text)
    r = g.run()
    np.testing.assert_allclose(r.grad("x"), dx, rtol=1e-15, atol=0)
    assert np.asarray(r.grad("x")).sum() == pytest.approx(np.size(r.value("m")), rel=1e-15)  # all of dout arrives
    # and the derivative graph says the same
    d = g.derive().run()
    np.testing.assert_allclose(d.value("d_m_d_x"), dx, rtol=1e-15, atol=0)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_and_minimum_split_a_tie_evenly(op):
    g = loads(
        f"""\
        inputs: {{a: [1.0, 2.0, 3.0, 0.0], b: [1.0, 5.0, -1.0, -0.0]}}
        nodes:
          y: {op}(a, b)
          same: {op}(a, a)
        outputs: [y, same]
        """
    )
    r = g.run(output=["y", "same"])
    a, b = np.array([1.0, 2.0, 3.0, 0.0]), np.array([1.0, 5.0, -1.0, -0.0])
    np.testing.assert_array_equal(r.value("y"), (np.maximum if op == "maximum" else np.minimum)(a, b))
    wins = a > b if op == "maximum" else a < b
    np.testing.assert_array_equal(r.grad("a", "y"), np.where(a == b, 0.5, np.where(wins, 1.0, 0.0)))
    np.testing.assert_array_equal(r.grad("b", "y"), np.where(a == b, 0.5, np.where(wins, 0.0, 1.0)))
    np.testing.assert_array_equal(r.grad("a", "same"), np.ones(4))  # 0.5 + 0.5: max(a, a) = a
    d = g.derive(output="y").run()
    np.testing.assert_array_equal(d.value("d_y_d_a"), r.grad("a", "y"))
    np.testing.assert_array_equal(d.value("d_y_d_b"), r.grad("b", "y"))


def test_maximum_with_zero_at_zero_splits_as_the_cap_at_a_price_tier():
    r = loads("inputs: {x: 0.0}\nnodes:\n  y: maximum(x, 0)\n").run()
    assert (r.value("y"), r.grad("x")) == (0.0, 0.5)
    assert math.copysign(1.0, loads("inputs: {x: -0.0}\nnodes:\n  y: maximum(x, 0)\n").run().value("y")) == 1.0


@pytest.mark.parametrize("x, dx", [([-2.0, 0.0, 3.0], [-1.0, 0.0, 1.0]), ([-0.0], [0.0])])
def test_abs_gradient_is_the_sign_and_0_at_0(x, dx):
    r = graph({"x": x}, {"y": "sum(abs(x))"}).run()
    np.testing.assert_array_equal(r.grad("x"), dx)


@pytest.mark.parametrize("alpha", [0.01, 0.2, 0.0])
def test_leaky_relu_with_alpha(alpha):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    node = Node("leaky_relu", [x], {"alpha": alpha})
    np.testing.assert_array_equal(node.y, np.where(x > 0, x, alpha * x))
    (dx,) = node.backward(np.full(5, 2.0))
    np.testing.assert_array_equal(dx, np.where(x > 0, 2.0, 2.0 * alpha))  # alpha * dout at x = 0, as relu's 0


def test_sqrt_of_zero_and_negative():
    r = graph({"x": [0.0, -1.0, 4.0]}, {"y": "sqrt(x)"}).run()
    np.testing.assert_array_equal(r.value("y")[[0, 2]], [0.0, 2.0])
    assert math.isnan(r.value("y")[1])
    assert r.grad("x")[0] == INF and r.grad("x")[2] == 0.25
    assert r.warnings and "'y'" in r.warnings[0]


@st.composite
def argmax_cases(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    return shape, axis


@SETTINGS
@given(case=argmax_cases(), seed=SEEDS)
def test_argmax_forward_and_no_gradient(case, seed):
    shape, axis = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(float)  # ties: the first wins, as numpy's argmax
    attrs = {} if axis is None else {"axis": axis}
    node = Node("argmax", [x], attrs)
    np.testing.assert_array_equal(node.y, np.argmax(x, axis=axis).astype(float))
    assert node.backward(np.ones(np.shape(node.y))) == [None]


def labelled(rng, shape, target):
    """Scores y in (0.05, 1], and t one-hot, a distribution or class indices."""
    y = rng.uniform(0.05, 1.0, shape)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    if target == "indices":
        t = np.asarray(labels, dtype=float)
        return y, float(t) if t.shape == () else t, np.eye(shape[-1])[labels]
    if target == "soft":
        p = rng.uniform(0.1, 1.0, shape)
        onehot = p / p.sum(axis=-1, keepdims=True)
    else:
        onehot = np.eye(shape[-1])[labels]
    return y, onehot, onehot


@settings(max_examples=25, deadline=None)
@given(
    batch=st.sampled_from([None, 1, 2, 5]),
    classes=st.integers(1, 5),
    target=st.sampled_from(["onehot", "soft", "indices"]),
    seed=SEEDS,
)
@example(batch=None, classes=3, target="indices", seed=1)
@example(batch=4, classes=3, target="onehot", seed=2)
def test_cross_entropy_error_forward_and_gradient(batch, classes, target, seed):
    rng = np.random.default_rng(seed)
    shape = (classes,) if batch is None else (batch, classes)
    y, t, onehot = labelled(rng, shape, target)
    loss = check_gradients("cross_entropy_error", [y, t], rng, no_grad=(1,) if target == "indices" else ())
    n = 1 if batch is None else batch
    assert float(loss) == pytest.approx(-np.sum(onehot * np.log(y + 1e-7)) / n, rel=1e-14)


@SETTINGS
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4).map(
        lambda s: s.input_shapes
    ),
    seed=SEEDS,
)
@example(shapes=((3, 1), (4,)), seed=1)
@example(shapes=((), ()), seed=2)
def test_mean_squared_error_forward_and_gradient(shapes, seed):
    rng = np.random.default_rng(seed)
    y, t = rng.uniform(-2, 2, shapes[0]), rng.uniform(-2, 2, shapes[1])
    loss = check_gradients("mean_squared_error", [y, t], rng)
    assert np.shape(loss) == ()
    assert float(loss) == pytest.approx(0.5 * np.sum((y - t) ** 2), rel=1e-14)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.sampled_from([None, 1, 3]),
    classes=st.integers(1, 4),
    target=st.sampled_from(["onehot", "indices"]),
    seed=SEEDS,
)
def test_accuracy_forward_and_no_gradient(batch, classes, target, seed):
    rng = np.random.default_rng(seed)
    shape = (classes,) if batch is None else (batch, classes)
    y, t, onehot = labelled(rng, shape, target)
    node = Node("accuracy", [y, t])
    hits = np.argmax(y, axis=-1) == np.argmax(onehot, axis=-1)
    assert float(node.y) == np.mean(hits)
    assert node.backward(1.0) == [None, None]


@pytest.mark.parametrize(
    "inputs, expr",
    [
        ("x: 0.0", "clip(x, lo=0, hi=1)"),  # passed at the bound (1); central differences straddle it (0.5)
        ("x: 1.0", "clip(x, hi=1)"),
        ("x: 0.0", "leaky_relu(x)"),
        ("x: 0.0", "sign(x)"),
        ("x: [0.0, 2.0], w: [1.0, 3.0]", "sum(abs(x) * w + sign(x))"),
        ("x: [1.0, 1.0, 1.0]", "max(x)"),  # a third each; +-h moves one of three: 0.5
        ("x: [[2.0, 2.0, 2.0]]", "sum(min(x, axis=1, keepdims=true))"),
        ("x: [1.0, 1.0]", "argmax(x) + sum(x)"),  # another index chosen: a jump
        ("x: [1.0, 1.0]", "accuracy(x, 1) + sum(x)"),
        ("x: 1.0", "maximum(x, 1) + 2 * minimum(x, 1) + maximum(3 * x - 2, x)"),
    ],
)
def test_check_tells_the_kinks_of_the_new_ops_from_wrong_gradients(inputs, expr, tmp_path):
    from cli_helpers import cli

    path = tmp_path / "kink.yaml"
    path.write_text(f"inputs: {{{inputs}}}\nnodes:\n  y: {expr}\n")
    r = cli("check", path)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout


def test_a_wrong_gradient_at_no_kink_still_fails(monkeypatch, tmp_path):
    from cli_helpers import cli

    from cgcalc.core.math_layers import ClipLayer

    path = tmp_path / "g.yaml"
    path.write_text("inputs: {x: 0.25}\nnodes:\n  y: clip(x, lo=0, hi=1)\n")
    assert cli("check", path).exit_code == 0
    monkeypatch.setattr(ClipLayer, "backward", lambda self, dout: (2.0 * dout,))
    r = cli("check", path)
    assert r.exit_code == 1 and "FAIL" in r.stdout


# --- ops without a gradient: argmax and accuracy --------------------------------------------------------------


ARGMAX_GRAPH = """\
inputs:
  x: [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]
  t: {value: [1, 2], grad: false}
nodes:
  loss: cross_entropy_error(softmax(x), t)
  pred: argmax(x, axis=1)
  acc: accuracy(x, t)
  twice: pred * 2
outputs: [loss, pred, acc, twice]
"""


def test_argmax_and_accuracy_outputs_take_no_gradient_like_a_grad_false_input():
    g = loads(ARGMAX_GRAPH)
    r = g.run(output=["loss", "pred", "acc", "twice"])
    assert r.value("pred").tolist() == [1.0, 0.0]
    assert r.value("acc") == 0.5
    for o in ("loss", "pred", "acc", "twice"):
        assert r.grad("pred", o) is None and r.grad("acc", o) is None and r.grad("t", o) is None
    # nothing flows back through them: x's gradient is the loss's alone, and 0 for argmax or accuracy
    assert not np.asarray(r.grad("x", "pred")).any() and not np.asarray(r.grad("x", "acc")).any()
    assert not np.asarray(r.grad("x", "twice")).any()
    assert r.grad("twice", "twice") == pytest.approx(np.ones(2))  # a node after argmax takes its own
    rows = {n["name"]: n for n in r.to_dict()["nodes"]}
    assert rows["pred"]["grad"] is None and rows["acc"]["grad"] is None
    # derive: 0, never a gradient through the index
    d = g.derive(output="acc").run()
    assert not np.asarray(d.value("d_acc_d_x")).any()


@pytest.mark.parametrize(
    "command", [["run"], ["run", "-f", "json"], ["check"], ["trace"], ["export"], ["run", "--formulas"]]
)
def test_argmax_graph_through_every_command(command, tmp_path):
    from cli_helpers import cli

    path = tmp_path / "g.yaml"
    path.write_text(ARGMAX_GRAPH)
    for output in ("loss", "pred", "acc"):
        r = cli(*command, path, "--output", output)
        assert r.exit_code == 0, (command, output, r.stdout, r.stderr)
        if command[-1] == "json":
            rows = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
            assert rows["pred"]["grad"] is None and rows["acc"]["grad"] is None


def test_argmax_graph_in_a_batch(tmp_path):
    g = loads(ARGMAX_GRAPH)
    xs = np.random.default_rng(3).uniform(0, 1, (5, 2, 3))
    res = g.run_batch({"x": xs}, output=["acc", "loss"])
    for i in range(5):
        one = g.run({"x": xs[i]}, output=["acc", "loss"])
        assert res.outputs["acc"][i] == one.value("acc")
        assert res.outputs["pred"][i].tolist() == one.value("pred").tolist()
        np.testing.assert_allclose(res.grads["loss"]["x"][i], one.grad("x", "loss"), rtol=1e-13)
        assert not res.grads["acc"]["x"][i].any()


# --- the derivative graph of each op against the numeric backward and central differences ------------------

# (expression, inputs): a scalar output whose gradient with respect to every input is checked
DERIVE_CASES = [
    ("sum(sin(x) * w)", {"x": (2, 3)}),
    ("sum(cos(x) * w)", {"x": (2, 3)}),
    ("sum(sqrt(p) * w)", {"p": (3,)}),
    ("sum(abs(x) * w)", {"x": (2, 3)}),
    ("sum(square(x) * w)", {"x": (3,)}),
    ("sum(leaky_relu(x, alpha=0.2) * w)", {"x": (2, 3)}),
    ("sum(clip(x, lo=-0.5, hi=0.5) * w)", {"x": (2, 3)}),
    ("sum(clip(x, hi=0.3) * w)", {"x": (2, 3)}),
    ("sum(maximum(x, u) * w)", {"x": (2, 3), "u": (3,)}),
    ("sum(minimum(x, u) * w)", {"x": (2, 3), "u": (2, 1)}),
    ("sum(where(c, x, u) * w)", {"x": (2, 3), "u": (3,)}),
    ("sum(max(x, axis=0) * w)", {"x": (2, 3)}),
    ("sum(min(x, axis=0, keepdims=true) * w)", {"x": (2, 3)}),
    ("max(x)", {"x": (2, 3)}),
    ("sum(logsumexp(x, axis=-1, keepdims=true) * w)", {"x": (2, 3)}),
    ("logsumexp(x)", {"x": (2, 3)}),
    ("sum(softmax(x) * w)", {"x": (2, 3)}),
    ("sum(log_softmax(x, axis=0) * w)", {"x": (2, 3)}),
    ("cross_entropy_error(softmax(x), k)", {"x": (2, 3)}),
    ("cross_entropy_error(p, q)", {"p": (2, 3), "q": (2, 3)}),
    ("mean_squared_error(x, u)", {"x": (2, 3), "u": (3,)}),
    ("mean_squared_error(x, u) + accuracy(x, k) + sum(argmax(x, axis=1))", {"x": (2, 3), "u": (2, 3)}),
]


def derive_case(expr: str, shapes: dict, seed: int = 0) -> cgcalc.Graph:
    rng = np.random.default_rng(seed)
    inputs: dict = {}
    for name, shape in shapes.items():
        lo, hi = (0.2, 1.0) if name in "pq" else (-2.0, 2.0)
        inputs[name] = away_from(rng.uniform(lo, hi, shape), [-0.5, 0.5, 0.3, 0.0])
    inputs["w"] = rng.uniform(-1, 1, (2, 3)).round(3)
    inputs["c"] = ("const", [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    inputs["k"] = ("const", [2, 0])
    return graph(inputs, {"out": expr})


@pytest.mark.parametrize("expr, shapes", DERIVE_CASES, ids=[c[0] for c in DERIVE_CASES])
def test_the_derivative_graph_equals_the_numeric_gradient(expr, shapes):
    g = derive_case(expr, shapes)
    r = g.run()
    d = g.derive().run()
    for name in shapes:
        got = d.value(f"d_out_d_{name}")
        np.testing.assert_allclose(got, r.grad(name), rtol=1e-13, atol=1e-15, err_msg=name)
        # and both against central differences of the forward value
        x = np.asarray(r.value(name), dtype=float)
        num = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            h = 1e-6 * max(1.0, abs(x[idx]))
            hi, lo = x.copy(), x.copy()
            hi[idx] += h
            lo[idx] -= h
            num[idx] = (g.run({name: hi}).value("out") - g.run({name: lo}).value("out")) / (2 * h)
        np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-6, err_msg=name)


# second derivatives: the piecewise-linear ops' are 0 (away from their kinks), the others' are not
HESSIAN_CASES = [c for c in DERIVE_CASES if not c[0].startswith(("max(x)", "mean_squared_error(x, u) +"))]


@pytest.mark.parametrize("expr, shapes", HESSIAN_CASES, ids=[c[0] for c in HESSIAN_CASES])
def test_second_derivatives_against_central_differences_of_the_gradient(expr, shapes):
    """hessian (the derivative graph differentiated again) against central differences of run's gradient."""
    g = derive_case(expr, shapes, seed=1)
    name = next(iter(shapes))
    labels, H = g.hessian(wrt=[name])
    x = np.asarray(g.run().value(name), dtype=float)
    cols = []
    for idx in np.ndindex(x.shape):
        h = 1e-5 * max(1.0, abs(x[idx]))
        hi, lo = x.copy(), x.copy()
        hi[idx] += h
        lo[idx] -= h
        cols.append(
            ((np.asarray(g.run({name: hi}).grad(name)) - np.asarray(g.run({name: lo}).grad(name))) / (2 * h)).ravel()
        )
    np.testing.assert_allclose(H, np.array(cols).T, rtol=1e-4, atol=1e-5)


# --- batch == single runs -------------------------------------------------------------------------------------


ROW_CASES = [
    ("clip", [(2, 3)], {"lo": -0.5}),
    ("where", [(3, 1), (4,), ()], {}),
    ("maximum", [(3, 1), (4,)], {}),
    ("max", [(2, 3, 4)], {"axis": [0, -1]}),
    ("min", [(2, 3)], {"axis": 0, "keepdims": True}),
    ("max", [(2, 3)], {}),
    ("logsumexp", [(2, 3)], {"axis": -1}),
    ("logsumexp", [(2, 3)], {}),
    ("argmax", [(2, 3)], {}),
    ("argmax", [(2, 3)], {"axis": 0}),
    ("cross_entropy_error", [(3,), ()], {}),
    ("cross_entropy_error", [(4, 3), (4, 3)], {}),
    ("cross_entropy_error", [(4, 3), (4,)], {}),
    ("mean_squared_error", [(3, 1), (4,)], {}),
    ("mean_squared_error", [(), ()], {}),
    ("accuracy", [(4, 3), (4,)], {}),
    ("accuracy", [(3,), (3,)], {}),
]


def row_values(op, shapes, rng, rows):
    if op in ("cross_entropy_error", "accuracy"):
        y, t, _ = labelled(rng, (rows,) + shapes[0], "indices" if shapes[1] != shapes[0] else "onehot")
        return [y, np.asarray(t)]
    xs = [rng.integers(-2, 3, (rows,) + s).astype(float) * 0.5 for s in shapes]  # ties and exact zeros too
    return xs


@pytest.mark.parametrize("op, shapes, attrs", ROW_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_a_layer_runs_a_batch_row_by_row(op, shapes, attrs):
    rows = 4
    rng = np.random.default_rng(21)
    cls = LAYERS[op]
    lay = cls.layout(shapes, cls.check_attrs(attrs))
    batch = [np.asarray(x).reshape((rows,) + v) for x, v in zip(row_values(op, shapes, rng, rows), lay.views)]
    layer = cls(**lay.attrs)
    y = layer.forward(*batch)
    assert np.shape(y) == (rows,) + lay.out_view
    dout = rng.standard_normal(np.shape(y))
    ds = layer.backward(dout)
    for r in range(rows):
        one = cls(**lay.attrs)
        np.testing.assert_allclose(y[r], one.forward(*[x[r] for x in batch]), rtol=1e-15, atol=0)
        for d, d1, v in zip(ds, one.backward(dout[r]), lay.views):
            if d1 is None:
                assert d is None
                continue
            np.testing.assert_allclose(sum_to(d, (rows,) + v)[r], sum_to(np.asarray(d1), v), rtol=1e-15, atol=0)


SCALAR_GRAPH = """\
inputs: {a: 0.5, b: -1.0, c: 1.0}
nodes:
  s: sin(a) * cos(b) + sqrt(abs(a)) + square(b)
  caps: clip(a, lo=-1, hi=0.75) + leaky_relu(b, alpha=0.1)
  tiers: maximum(a, b) - minimum(b, c) + where(c, a, b)
  red: max(a) + min(b) + logsumexp(c) + mean_squared_error(a, b)
  out: s * caps + tiers * red
"""
SPECIALS = [0.0, -0.0, 0.75, -1.0, 1.0, 0.5, INF, -INF, NAN, 1e-300, -3.0]


@pytest.mark.parametrize("exact", [True, False])
def test_run_batch_of_a_scalar_graph_with_every_elementwise_op_is_bit_for_bit(exact):
    """Ties (a = b, at clip's bounds), signed zeros, infinities and NaN included: each row equals its own run."""
    g = loads(SCALAR_GRAPH)
    vals = np.array(SPECIALS)
    grid = np.array(np.meshgrid(vals, vals, vals[::-1])).reshape(3, -1)
    cols = {"a": grid[0], "b": grid[1], "c": grid[2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the single runs' warnings are results, not failures
        res = g.run_batch(cols, exact=exact)
        for i in range(0, grid.shape[1], 7 if exact else 53):
            one = g.run(rg.row(cols, i))
            assert rg.same_bits(res.outputs["out"][i], one.value("out")) or not exact, i
            for x in "abc":
                got, want = res.grads["out"][x][i], one.grad(x)
                if exact:
                    assert rg.same_bits(got, want), (i, x, got, want)
                else:
                    assert rg.close(got, want, 1e-12, 1e-12), (i, x, got, want)
            assert exact or rg.close(res.outputs["out"][i], one.value("out"), 1e-12, 1e-12), i


def test_a_scalar_graph_of_the_new_ops_runs_without_numpy():
    code = textwrap.dedent(
        f"""\
        import sys, cgcalc
        r = cgcalc.loads({SCALAR_GRAPH!r}).run()
        assert "numpy" not in sys.modules, "numpy was imported"
        print(r.value("out"))
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_exact_arrays_of_sin_and_cos_are_the_c_library_element_by_element():
    x = np.random.default_rng(5).uniform(-1e6, 1e6, 2000)
    with exact_arrays():
        node = Node("sin", [x])
        (dx,) = node.backward(np.ones(2000))
    assert node.y.tolist() == [math.sin(v) for v in x.tolist()]
    assert dx.tolist() == [math.cos(v) for v in x.tolist()]


# --- backward does not modify its inputs --------------------------------------------------------------------

PURITY = [
    ("clip", [(4, 5)], {"lo": -0.5, "hi": 0.5}),
    ("where", [(3, 1), (4,), (3, 4)], {}),
    ("max", [(3, 4)], {"axis": 0}),
    ("min", [(3, 4)], {}),
    ("logsumexp", [(3, 4)], {"axis": -1, "keepdims": True}),
    ("argmax", [(3, 4)], {"axis": 1}),
    ("cross_entropy_error", [(4, 3), (4, 3)], {}),
    ("cross_entropy_error", [(4, 3), (4,)], {}),
    ("mean_squared_error", [(3, 1), (4,)], {}),
    ("accuracy", [(4, 3), (4,)], {}),
]


@pytest.mark.parametrize("op, shapes, attrs", PURITY, ids=lambda v: v if isinstance(v, str) else "")
def test_forward_and_backward_never_modify_their_arguments(op, shapes, attrs):
    rng = np.random.default_rng(4)
    xs = [np.asarray(x).reshape((1,) + s)[0] for x, s in zip(row_values(op, shapes, rng, 1), shapes)]
    for x in xs:
        x.flags.writeable = False  # any write raises
    saved = [x.copy() for x in xs]
    node = Node(op, xs, attrs)
    dout = rng.standard_normal(np.shape(node.y))
    dout = np.asarray(dout)
    dout.flags.writeable = False
    first = node.backward(dout)
    again = node.backward(dout)
    for x, before in zip(xs, saved):
        assert np.array_equal(x, before)
    for g1, g2 in zip(first, again):
        assert (g1 is None and g2 is None) or np.asarray(g1).tobytes() == np.asarray(g2).tobytes()


# --- errors before anything runs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inputs, expr, fragments",
    [
        ("x: [1, 2], y: [1, 2, 3]", "maximum(x, y)", ["(2,)", "(3,)", "'z'"]),
        ("x: [1, 2], y: [1, 2, 3]", "where(x, y, 1)", ["(2,)", "(3,)"]),
        ("x: [[1, 2]], y: [1, 2, 3]", "mean_squared_error(x, y)", ["(1, 2)", "(3,)"]),
        ("x: [[1, 2]], y: [1, 2]", "cross_entropy_error(x, y)", ["(1, 2)", "(2,)", "one-hot", "class indices"]),
        ("x: [[[1, 2]]], y: 1", "cross_entropy_error(x, y)", ["(C,) or (N, C)", "(1, 1, 2)"]),
        ("x: [[1, 2]], y: [1, 2, 3]", "accuracy(x, y)", ["(1, 2)", "(3,)"]),
        ("x: [1, 2], y: 0", "max(x, axis=1)", ["axis 1", "(2,)"]),
        ("x: [[]], y: 0", "min(x, axis=1)", ["empty", "(1, 0)"]),
        ("x: [[]], y: 0", "logsumexp(x)", ["empty", "(1, 0)"]),
        ("x: [[1, 2]], y: 0", "argmax(x, axis=2)", ["axis 2", "(1, 2)"]),
        ("x: [[]], y: 0", "argmax(x)", ["empty", "(1, 0)"]),
    ],
)
def test_shape_errors_are_found_before_running_and_name_the_shapes(inputs, expr, fragments):
    with pytest.raises(ShapeError) as e:
        cgcalc.loads(f"inputs: {{{inputs}}}\nnodes:\n  z: {expr}\n")
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


@pytest.mark.parametrize(
    "expr, fragments",
    [
        ("clip(x)", ["clip needs a bound"]),
        ("clip(x, lo=2, hi=1)", ["lo 2.0 is above hi 1.0"]),
        ("clip(x, low=0)", ["no attribute 'low'", "did you mean 'lo'"]),
        ("leaky_relu(x, alpha=true)", ["alpha must be a number"]),
        ("argmax(x, axis=[0])", ["axis must be an integer"]),
        ("max(x, axes=0)", ["no attribute 'axes'", "did you mean 'axis'"]),
        ("where(x, x)", ["takes 3 inputs", "gives 2"]),
    ],
)
def test_attribute_errors(expr, fragments):
    with pytest.raises(GraphError) as e:
        cgcalc.loads(f"inputs: {{x: [1, 2]}}\nnodes:\n  z: {expr}\n")
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


def test_an_op_that_needs_an_attribute_given_none_in_mapping_form_is_an_error_not_a_crash(tmp_path):
    for text in (
        '{"inputs": {"x": [1, 2]}, "nodes": {"y": {"op": "clip", "in": ["x"]}}}',
        "inputs: {x: 1}\nnodes:\n  y: {op: clip, in: [x]}\n",
    ):
        with pytest.raises(GraphError, match="clip needs a bound"):
            cgcalc.loads(text, json=text.startswith("{"))


def test_class_index_out_of_range_is_named():
    for expr, shown in (("cross_entropy_error(x, 3)", "3.0"), ("accuracy(x, 1.5)", "1.5")):
        # the index as a number reads (not numpy's repr, np.float64(3.0))
        with pytest.raises(GraphError, match=rf"class index {shown} is not an integer in 0\.\.2"):
            cgcalc.loads(f"inputs: {{x: [0.2, 0.3, 0.5]}}\nnodes:\n  z: {expr}\n").run()


def test_kernels_specials_of_clip_and_select_on_floats_and_arrays():
    from cgcalc.core import kernels

    cases = [((-0.0, 0.0, 1.0), 0.0), ((NAN, 0.0, 1.0), NAN), ((5.0, None, 1.0), 1.0), ((-5.0, -1.0, None), -1.0)]
    for (x, lo, hi), want in cases:
        assert same(kernels.clip(x, lo, hi), want)
        got = kernels.clip(np.array([x]), lo, hi)[0]
        assert same(float(got), want) and math.copysign(1, got) == math.copysign(1, want)
    for cond in (NAN, 1.0, -0.0):
        assert kernels.select(cond, 1.0, 2.0) == float(np.where(np.array([cond]), 1.0, 2.0)[0])
