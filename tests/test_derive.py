"""Derivative graphs (issue 12): Graph.derive / derive_text / hessian / hvp and the store of terms behind them.

Every expected value comes from outside the code under test: the issue's published oracles (DeZero's and JAX's
printed numbers, the book's apple graph), numbers worked out by hand in a comment, sympy evaluated at 40 digits,
float64 central differences, or the layers' numeric backward (`Graph.run().grad`), an implementation separate
from the `backward_ops` that derivative graphs are built with.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import randgraphs as rg
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import cgcalc
from cgcalc.errors import GraphError, UsageError


def loads(text: str, **kw) -> cgcalc.Graph:
    return cgcalc.loads(textwrap.dedent(text), **kw)


# --- regressions: bugs the properties of tests/test_derive_props.py found -----------------------------------------


def test_an_array_output_and_an_unused_array_input_derive():
    """The seed of an array output and the zero gradient of an unused array input are a broadcast constant,
    `broadcast_to(1, shape)`: the simplifier once rewrote that as itself for ever (RecursionError)."""
    g = loads(
        """
        inputs:
          x: [1, 2]
          W: [[1, 2], [3, 4]]
        nodes:
          y: x * x
        """
    )
    r = g.derive().run()
    assert r.value("d_y_d_x").tolist() == [2.0, 4.0]  # d sum(x * x) / dx = 2x
    assert r.value("d_y_d_W").tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_the_gradient_of_an_expressions_inner_node_gets_a_valid_name():
    """y.1 = x * x, y.2 = tanh(y.1): the derivative needs d y / d y.1 as a node of its own, once named
    `d_y_d_y.1`, a name no graph file can hold (GraphError on reading the derived graph back)."""
    g = loads(
        """
        inputs:
          x: 0.5
        nodes:
          y: tanh(x * x) * 3
        """
    )
    text = g.derive_text()
    names = [line.split(":")[0].strip() for line in text.split("nodes:\n")[1].splitlines()[:-1]]
    assert "d_y_d_y_1" in names and all(n.isidentifier() for n in names), names
    # d/dx 3 tanh(x^2) = 6 x (1 - tanh(x^2)^2); at x = 0.5: 3 (1 - tanh(0.25)^2)
    want = 3 * (1 - np.tanh(0.25) ** 2)
    assert np.isclose(cgcalc.loads(text).run().value("d_y_d_x"), want, rtol=1e-15, atol=0)


# --- the oracles ------------------------------------------------------------------------------------------

DEZERO = """
    inputs:
      x: 2
    nodes:
      y: x ** 4 - 2 * x ** 2
    """


def test_dezero_step_33_first_and_second_derivative():
    """DeZero step 33: y = x^4 - 2x^2 at x = 2: y' = 4x^3 - 4x = 24, y'' = 12x^2 - 4 = 44 (68 is DeZero's
    known wrong answer without cleargrad: a second derivative must not accumulate onto the first)."""
    g = loads(DEZERO)
    d1, d2 = g.derive(), g.derive(order=2)
    assert d1.outputs == ("d_y_d_x",) and d2.outputs == ("d2_y_d_x_d_x",)
    assert d1.run().value("d_y_d_x") == 24.0
    assert d2.run().value("d2_y_d_x_d_x") == 44.0
    assert d1.derive().run().value("d_d_y_d_x_d_x") == 44.0  # the derivative of the derivative graph


def test_dezero_step_33_newtons_method_prints_dezeros_numbers():
    """x <- x - f'(x) / f''(x) from x = 2, f' and f'' by the derivative graphs: DeZero's printed values, bit for
    bit (DeZero's f' and f'' are 4x^3 - 4x and 12x^2 - 4 in float64: the same numbers, exactly)."""
    g = loads(DEZERO)
    d1, d2 = g.derive(), g.derive(order=2)
    xs, x = [], 2.0
    for _ in range(6):
        xs.append(x)
        x = x - d1.run(x=x).value("d_y_d_x") / d2.run(x=x).value("d2_y_d_x_d_x")
    assert xs == [
        2.0,
        1.4545454545454546,
        1.1510467893775467,
        1.0253259289766978,
        1.0009084519430513,
        1.0000012353089454,
    ]


def test_jax_documentation_polynomial_orders_1_to_4():
    """JAX's documentation: f(x) = x^3 + 2x^2 - 3x + 1: f'(1) = 4, f''(1) = 10, f'''(1) = 6, f''''(1) = 0."""
    g = loads(
        """
        inputs:
          x: 1
        nodes:
          f: x ** 3 + 2 * x ** 2 - 3 * x + 1
        """
    )
    names = ["d_f_d_x", "d2_f_d_x_d_x", "d3_f_d_x_d_x_d_x", "d4_f_d_x_d_x_d_x_d_x"]
    got = []
    for k, name in enumerate(names, 1):
        d = g.derive(order=k)
        assert d.outputs == (name,)
        got.append(d.run().value(name))
    assert got == [4.0, 10.0, 6.0, 0.0]


def test_jax_hessian_docstring_scalar_inputs():
    """jax.hessian's docstring: g(x) = x0^3 - 2 x0 x1 - x1^6 at [1, 2]: [[6x0, -2], [-2, -30x1^4]] =
    [[6, -2], [-2, -480]]; also every second partial of derive(order=2), d2_g_d_x0_d_x1 among them."""
    g = loads(
        """
        inputs:
          x0: 1
          x1: 2
        nodes:
          g: x0 ** 3 - 2 * x0 * x1 - x1 ** 6
        """
    )
    labels, h = g.hessian()
    assert labels == ["x0", "x1"]
    assert h.tolist() == [[6.0, -2.0], [-2.0, -480.0]]
    d2 = g.derive(order=2)
    assert d2.outputs == ("d2_g_d_x0_d_x0", "d2_g_d_x0_d_x1", "d2_g_d_x1_d_x0", "d2_g_d_x1_d_x1")
    assert [d2.run().value(o) for o in d2.outputs] == [6.0, -2.0, -2.0, -480.0]


def test_jax_hessian_docstring_array_input():
    """The same g with x an array, as JAX has it (x0 = x @ [1, 0], x1 = x @ [0, 1]): labels x[0], x[1]."""
    g = loads(
        """
        inputs:
          x: [1, 2]
          e0: {value: [1, 0], grad: false}
          e1: {value: [0, 1], grad: false}
        nodes:
          x0: x @ e0
          x1: x @ e1
          g: x0 ** 3 - 2 * x0 * x1 - x1 ** 6
        outputs: [g]
        """
    )
    labels, h = g.hessian()
    assert labels == ["x[0]", "x[1]"]
    assert h.tolist() == [[6.0, -2.0], [-2.0, -480.0]]
    assert {k: v.tolist() for k, v in g.hvp({"x": [1.0, 0.0]}).items()} == {"x": [6.0, -2.0]}


def test_apple_graph_hessian(graphs_dir):
    """The book's apple graph, price = apple * apple_num * tax at (100, 2, 1.1): every second partial is the
    third input (d2/dapple dapple_num = tax = 1.1, d2/dapple dtax = apple_num = 2, d2/dapple_num dtax =
    apple = 100), the diagonal 0 — the issue's [[0, 1.1, 2], [1.1, 0, 100], [2, 100, 0]], exactly."""
    want = [[0.0, 1.1, 2.0], [1.1, 0.0, 100.0], [2.0, 100.0, 0.0]]
    labels, h = cgcalc.load(graphs_dir / "apple.yaml").hessian()
    assert labels == ["apple", "apple_num", "tax"]
    assert h.tolist() == want
    # the apple-orange graph, price = (apple * apple_num + orange * orange_num) * tax: the same three rows
    g = cgcalc.load(graphs_dir / "apple_orange.yaml")
    labels, h = g.hessian(wrt=["apple", "apple_num", "tax"])
    assert labels == ["apple", "apple_num", "tax"]
    assert h.tolist() == want
    # and d2 price / dorange dtax = orange_num = 3 among all five inputs
    labels, h = g.hessian()
    assert h[labels.index("orange"), labels.index("tax")] == 3.0


def test_apple_graph_derivative_file_is_the_books_gradients(graphs_dir):
    """The derivative file runs to the gradient column of the book (5.4.1): 2.2, 110, 200, and its formulas
    are the issue's: d price / d apple = apple_num * tax, d price / d tax = apple * apple_num."""
    g = cgcalc.load(graphs_dir / "apple.yaml")
    d = g.derive()
    assert d.outputs == ("d_price_d_apple", "d_price_d_apple_num", "d_price_d_tax")
    r = d.run()
    assert [r.value(o) for o in d.outputs] == [2 * 1.1, 100 * 1.1, 200.0]
    steps = {d.plan.names[st.slot]: (st.op, [d.plan.label(a) for a in st.args]) for st in d.plan.steps}
    assert steps["d_price_d_apple"] == ("mul", ["apple_num", "tax"])
    assert steps["d_price_d_apple_num"] == ("mul", ["apple", "tax"])
    assert steps["apple_price"] == ("mul", ["apple", "apple_num"])
    assert steps["d_price_d_tax"] == ("identity", ["apple_price"])


# --- the ops derivative graphs are made of ------------------------------------------------------------------------

dims = st.integers(1, 4)
shapes = st.lists(dims, min_size=0, max_size=3).map(tuple)


def _sum_to(x: np.ndarray, shape: tuple) -> np.ndarray:
    """numpy's own sum of x down to `shape`: the leading axes broadcasting would add, then each axis of `shape`
    that is 1 where x's is not."""
    y = x.sum(axis=tuple(range(x.ndim - len(shape))))
    for i, n in enumerate(shape):
        if n == 1 and y.shape[i] != 1:
            y = y.sum(axis=i, keepdims=True)
    return y


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


class Case(NamedTuple):
    """One node of a new op: its attributes, the input's shape and numpy's forward of it."""

    op: str
    attrs: dict
    shape: tuple
    forward: Callable[[np.ndarray], np.ndarray]


@st.composite
def reshape_cases(draw) -> Case:
    shape = draw(shapes)
    size = int(np.prod(shape))
    target = []
    left = size
    for _ in range(draw(st.integers(0, 3))):
        f = draw(st.sampled_from([d for d in range(1, left + 1) if left % d == 0]))
        target.append(f)
        left //= f
    if left > 1 or draw(st.booleans()):
        target.append(left)
    target = draw(st.permutations(target))
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return Case("reshape", {"shape": target}, shape, lambda x: np.reshape(x, target))


@st.composite
def transpose_cases(draw) -> Case:
    shape = draw(st.lists(dims, min_size=1, max_size=3).map(tuple))
    if draw(st.booleans()):
        return Case("transpose", {}, shape, lambda x: np.transpose(x))  # default: the axes reversed
    axes = draw(st.permutations(range(len(shape))))
    written = [a - len(shape) if draw(st.booleans()) else a for a in axes]  # negative axes count from the end
    return Case("transpose", {"axes": written}, shape, lambda x: np.transpose(x, axes))


@st.composite
def sum_to_cases(draw) -> Case:
    shape = draw(shapes)
    target = tuple(1 if draw(st.booleans()) else d for d in shape[draw(st.integers(0, len(shape))) :])
    return Case("sum_to", {"shape": list(target)}, shape, lambda x: _sum_to(x, target))


@st.composite
def broadcast_to_cases(draw) -> Case:
    shape = draw(shapes)
    lead = draw(st.lists(dims, max_size=2))
    target = tuple(lead) + tuple(draw(dims) if d == 1 else d for d in shape)
    return Case("broadcast_to", {"shape": list(target)}, shape, lambda x: np.broadcast_to(x, target))


@st.composite
def softmax_cases(draw, op: str) -> Case:
    shape = draw(st.lists(dims, min_size=1, max_size=3).map(tuple))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    f = _softmax if op == "softmax" else _log_softmax
    attrs = {} if axis == -1 and draw(st.booleans()) else {"axis": axis}  # default -1
    return Case(op, attrs, shape, lambda x: f(x, axis))


cases = st.one_of(
    reshape_cases(),
    transpose_cases(),
    sum_to_cases(),
    broadcast_to_cases(),
    softmax_cases("softmax"),
    softmax_cases("log_softmax"),
    shapes.map(lambda s: Case("identity", {}, s, lambda x: x)),
    shapes.map(lambda s: Case("step", {}, s, lambda x: np.where(x > 0, 1.0, 0.0))),
)


def _case_graph(c: Case, x: np.ndarray, w: np.ndarray) -> cgcalc.Graph:
    """y = op(x) as a mapping-form node, l = sum(w * y) with fixed random weights w (a scalar to differentiate
    whose gradient is not all ones)."""
    node = {"op": c.op, "in": ["x"], **c.attrs}
    text = (
        f"inputs:\n  x: {json.dumps(x.tolist())}\n  w: {{value: {json.dumps(w.tolist())}, grad: false}}\n"
        f"nodes:\n  y: {json.dumps(node)}\n  l: sum(w * y)\noutputs: [l, y]\n"
    )
    return cgcalc.loads(text)


def _values(rng: np.random.Generator, shape: tuple, op: str) -> np.ndarray:
    x = rng.uniform(-2, 2, shape)
    if op == "step":  # central differences of step mean something away from its jump only
        x = np.where(np.abs(x) < 0.1, 0.5, x)
    return x


@settings(max_examples=120, deadline=None)
@given(c=cases, seed=st.integers(0, 2**32 - 1))
def test_new_ops_forward_backward_and_derivative_against_numpy_and_central_differences(c, seed):
    """Forward == numpy's (bit for bit where the operations are the same; softmax, and sum_to's sums in
    another order, to 1e-14); the gradient of l = sum(w * op(x)) by the layer's numeric backward and by the
    derivative graph (backward_ops) against central differences of l (h = 1e-6; every op here is linear but
    softmax and log_softmax, so the differences are near-exact); and the two gradients against each other to
    1e-14."""
    rng = np.random.default_rng(seed)
    x = _values(rng, c.shape, c.op)
    want = np.asarray(c.forward(x))
    w = rng.normal(size=want.shape)
    g = _case_graph(c, x, w)
    r = g.run()
    got = np.asarray(r.value("y"))
    assert got.shape == want.shape, (c.op, c.attrs, got.shape, want.shape)
    if c.op == "softmax":  # cgcalc's is exp(log_softmax(x)), stable at +-1000; numpy's here e / sum(e)
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)
    elif c.op == "sum_to":  # the axes summed at once there, one by one here
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15 * np.abs(x).sum())
    else:
        assert np.array_equal(got, want), (c.op, c.attrs, got, want)
    np.testing.assert_allclose(r.value("l"), np.sum(w * want), rtol=1e-14, atol=1e-14 * np.abs(w * want).sum())
    fd = np.empty(x.shape)
    for ix in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[ix] = 1e-6
        fd[ix] = (g.run(x=x + e).value("l") - g.run(x=x - e).value("l")) / 2e-6
    grad = np.asarray(r.grad("x", "l"))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8, err_msg=f"numeric backward of {c.op} {c.attrs}")
    d = g.derive(wrt=["x"], output="l")
    assert d.outputs == ("d_l_d_x",)
    dx = np.asarray(d.run().value("d_l_d_x"))
    np.testing.assert_allclose(dx, fd, rtol=1e-6, atol=1e-8, err_msg=f"backward_ops of {c.op} {c.attrs}")
    np.testing.assert_allclose(dx, grad, rtol=1e-14, atol=1e-15 * float(np.abs(grad).max(initial=1.0)))


@settings(max_examples=40, deadline=None)
@given(c=st.one_of(softmax_cases("softmax"), softmax_cases("log_softmax")), seed=st.integers(0, 2**32 - 1))
def test_softmax_and_log_softmax_hessians_against_central_differences(c, seed):
    """The second derivative goes through the backward_ops of softmax and log_softmax's own backward (softmax,
    sum with keepdims, broadcasting): the Hessian of l = sum(w * op(x)) against central differences of the
    numeric gradient."""
    rng = np.random.default_rng(seed)
    x = _values(rng, c.shape, c.op)
    w = rng.normal(size=x.shape)
    g = _case_graph(c, x, w)
    _, h = g.hessian(wrt=["x"], output="l")
    n = x.size
    fd = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1e-5
        plus = g.run(x=x + e.reshape(x.shape), output="l").grad("x")
        minus = g.run(x=x - e.reshape(x.shape), output="l").grad("x")
        fd[:, j] = np.ravel(plus - minus) / 2e-5
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(c=cases, seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 4))
def test_new_ops_run_batch_equals_single_runs(c, seed, rows):
    """run_batch of y = op(x) and l = sum(w * y), rows of x, equals a run per row: values and gradients."""
    rng = np.random.default_rng(seed)
    x = _values(rng, c.shape, c.op)
    w = rng.normal(size=np.shape(c.forward(x)))
    g = _case_graph(c, x, w)
    columns = {"x": np.stack([_values(rng, c.shape, c.op) for _ in range(rows)])}
    problems = rg.batch_vs_single(g, columns, ["l", "y"], exact=False)
    assert not problems, (c, problems)


def test_one_hot_forward_batch_and_its_index_error():
    """one_hot: class indices as rows of the identity (numpy's np.eye(classes)[t]); no gradient for t (it holds
    labels: 0 where asked); a fractional or out-of-range index is a GraphError naming it."""
    t = np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    g = loads(
        f"""
        inputs:
          t: {{value: {json.dumps(t.tolist())}, grad: false}}
          u: {json.dumps(t.tolist())}
        nodes:
          y: {{op: one_hot, in: [t], classes: 3}}
          z: {{op: one_hot, in: [u], classes: 4}}
        outputs: [y, z]
        """
    )
    r = g.run(output=["y", "z"])
    assert np.array_equal(r.value("y"), np.eye(3)[t.astype(int)])
    assert np.array_equal(r.value("z"), np.eye(4)[t.astype(int)])
    assert np.array_equal(r.grad("u", "z"), np.zeros_like(t))
    columns = {"t": np.array([t, t[::-1]])}
    assert not rg.batch_vs_single(g, columns, ["y"], exact=True)
    for bad in ("1.5", "3", "-1"):
        text = f"inputs:\n  t: {{value: [0, {bad}], grad: false}}\nnodes:\n  y: {{op: one_hot, in: [t], classes: 3}}\n"
        with pytest.raises(GraphError, match=rf"one_hot: class index .*{bad}.* is not an integer in 0\.\.2"):
            loads(text).run()


def test_step_is_relus_mask_at_zero_and_nan_for_floats_and_arrays():
    """step(x) = 1 where x > 0, else 0: step(0) = step(-0.0) = 0 (relu's gradient at its kink is 0), and a NaN
    passes as 1 (relu's mask passes a NaN's gradient on), the same on Python floats and on arrays."""
    for v, want in ((0.0, 0.0), (-0.0, 0.0), (1e-300, 1.0), (-3.0, 0.0), (float("nan"), 1.0)):
        scalar = loads(f"inputs:\n  x: {v!r}\nnodes:\n  y: {{op: step, in: [x]}}\n".replace("nan", ".nan"))
        array = loads(f"inputs:\n  x: [{v!r}]\nnodes:\n  y: {{op: step, in: [x]}}\n".replace("nan", ".nan"))
        assert scalar.run().value("y") == want, v
        assert array.run().value("y").tolist() == [want], v
        assert scalar.run().grad("x") == 0.0


@pytest.mark.parametrize(
    "node, shape, message",
    [
        (
            "{op: reshape, in: [x], shape: [4, 2]}",
            "[[1, 2, 3], [4, 5, 6]]",
            r"reshape: \(2, 3\) has 6 elements, \(4, 2\) 8",
        ),
        ("{op: reshape, in: [x], shape: [-1, 4]}", "[[1, 2, 3], [4, 5, 6]]", r"cannot reshape \(2, 3\) to \(-1, 4\)"),
        ("{op: reshape, in: [x], shape: [-1, -1]}", "[1, 2]", r"reshape: shape must be .* \(one -1 allowed\)"),
        ("{op: sum_to, in: [x], shape: [2]}", "[[1, 2, 3], [4, 5, 6]]", r"sum_to: \(2, 3\) cannot be summed to \(2,\)"),
        ("{op: sum_to, in: [x], shape: [1, 2, 3]}", "[[1, 2, 3], [4, 5, 6]]", r"sum_to: \(2, 3\) cannot be summed"),
        ("{op: sum_to, in: [x], shape: [-1]}", "[1, 2]", r"sum_to: shape must be a list of whole numbers"),
        (
            "{op: broadcast_to, in: [x], shape: [2, 2]}",
            "[1, 2, 3]",
            r"broadcast_to: \(3,\) cannot be broadcast to \(2, 2\)",
        ),
        (
            "{op: broadcast_to, in: [x], shape: [3]}",
            "[[1, 2, 3]]",
            r"broadcast_to: \(1, 3\) cannot be broadcast to \(3,\)",
        ),
        (
            "{op: transpose, in: [x], axes: [0, 0]}",
            "[[1, 2], [3, 4]]",
            r"transpose: axes \[0, 0\] are not a permutation",
        ),
        ("{op: transpose, in: [x], axes: [0, 1, 2]}", "[[1, 2], [3, 4]]", r"axes \[0, 1, 2\] are not a permutation"),
        ("{op: transpose, in: [x], axes: [0, 2]}", "[[1, 2], [3, 4]]", r"axes \[0, 2\] are not a permutation"),
        ("{op: transpose, in: [x], axes: 1}", "[[1, 2], [3, 4]]", r"transpose: axes must be a list of integers"),
        ("{op: softmax, in: [x], axis: 2}", "[[1, 2], [3, 4]]", r"softmax: axis 2 is out of range for shape \(2, 2\)"),
        ("{op: log_softmax, in: [x], axis: -3}", "[[1, 2], [3, 4]]", r"log_softmax: axis -3 is out of range"),
        (
            "{op: softmax, in: [x], axes: 0}",
            "[[1, 2], [3, 4]]",
            r"op 'softmax' has no attribute 'axes' \(did you mean 'axis'\?\)",
        ),
    ],
)
def test_shape_and_attribute_errors_of_the_new_ops_are_named(node, shape, message):
    """Each is a GraphError that names the node, the op and what does not fit, with the file's line."""
    with pytest.raises(GraphError, match=message) as e:
        loads(f"inputs:\n  x: {shape}\nnodes:\n  y: {node}\n")
    assert "node 'y'" in str(e.value) and str(e.value).startswith("4:"), str(e.value)


@pytest.mark.parametrize(
    "op, message",
    [
        ("reshape", r"reshape needs its target shape"),
        ("sum_to", r"sum_to needs its target shape"),
        ("broadcast_to", r"broadcast_to needs its target shape"),
        ("one_hot", r"one_hot needs classes"),
    ],
)
@pytest.mark.parametrize("form", ["mapping", "call", "json"])
def test_a_required_attribute_left_out_is_a_graph_error(op, message, form):
    """A node written with no attribute at all is given the op's defaults without check_attrs (the compiler's
    fast path), and the default of a required attribute is None: once a TypeError from deep in the layout."""
    text = {
        "mapping": f"inputs:\n  t: [0, 1]\nnodes:\n  y: {{op: {op}, in: [t]}}\n",
        "call": f"inputs:\n  t: [0, 1]\nnodes:\n  y: {op}(t)\n",
        "json": json.dumps({"inputs": {"t": [0, 1]}, "nodes": {"y": {"op": op, "in": ["t"]}}}),
    }[form]
    with pytest.raises(GraphError, match=message) as e:
        cgcalc.loads(text, json=form == "json")
    assert "node 'y'" in str(e.value), str(e.value)


# --- Hessians of array inputs with closed forms -------------------------------------------------------------------


def test_hessian_of_a_quadratic_form_is_the_symmetric_part_of_its_matrix():
    """f(x) = 1/2 x . (A x): H = (A + A^T) / 2, whatever A; labels x[0], x[1], x[2]; H v by hvp."""
    a = np.array([[2.0, 1.0, 0.0], [3.0, -1.0, 0.5], [0.0, 4.0, 1.0]])
    g = loads(
        f"""
        inputs:
          x: [0.5, -1, 2]
          A: {{value: {json.dumps(a.tolist())}, grad: false}}
        nodes:
          f: 0.5 * (x @ (A @ x))
        """
    )
    labels, h = g.hessian()
    assert labels == ["x[0]", "x[1]", "x[2]"]
    np.testing.assert_allclose(h, (a + a.T) / 2, rtol=1e-15, atol=0)
    v = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(g.hvp({"x": v})["x"], (a + a.T) / 2 @ v, rtol=1e-15, atol=1e-15)


def test_hessian_of_a_matrix_input_has_labels_by_element():
    """f(W) = sum((x @ W)^2) for x (2,), W (2, 3): d2 f / dW[i,j] dW[k,l] = 2 x_i x_k (j == l), in W's C order:
    W[0,0], W[0,1], W[0,2], W[1,0]..."""
    x = np.array([1.5, -2.0])
    g = loads(
        f"""
        inputs:
          x: {{value: {json.dumps(x.tolist())}, grad: false}}
          W: [[1, 2, 3], [4, 5, 6]]
        nodes:
          f: sum((x @ W) ** 2)
        """
    )
    labels, h = g.hessian()
    assert labels == [f"W[{i},{j}]" for i in range(2) for j in range(3)]
    want = np.array(
        [[2 * x[i] * x[k] * (j == m) for k in range(2) for m in range(3)] for i in range(2) for j in range(3)]
    )
    np.testing.assert_allclose(h, want, rtol=1e-15, atol=0)


# --- the derivative as a graph file -------------------------------------------------------------------------------

MIXED = """
    inputs:
      x: [0.5, -1.5, 2]
      W: [[1, -0.5], [0.25, 2], [-1, 1]]
      b: 0.5
      t: {value: [0, 1], grad: false}
    nodes:
      h: tanh(x @ W + b)
      loss: softmax_with_loss(h * 2, t) + sum(sigmoid(x) * x)
    outputs: [loss, h]
    """


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_derive_text_reads_back_to_the_numeric_gradient(fmt):
    """derive_text in YAML and in JSON, read back with cgcalc.loads: the same inputs (grad: false kept), the
    outputs d_loss_d_x, d_loss_d_W, d_loss_d_b, and numbers equal to run().grad (see test_derive_props.py for
    why to 1e-14 and not bit for bit: a matmul)."""
    g = loads(MIXED)
    text = g.derive_text(fmt=fmt)
    if fmt == "json":
        doc = json.loads(text)
        assert doc["outputs"] == ["d_loss_d_x", "d_loss_d_W", "d_loss_d_b"]
        assert doc["inputs"]["t"] == {"value": [0.0, 1.0], "grad": False}
    else:
        assert text.startswith("# cgcalc derive of ")
    d = cgcalc.loads(text, json=fmt == "json")
    assert d.inputs == ("x", "W", "b", "t")
    assert [i.grad for i in d.plan.inputs] == [True, True, True, False]
    assert d.outputs == ("d_loss_d_x", "d_loss_d_W", "d_loss_d_b")
    r, rd = g.run(), d.run()
    for w in ("x", "W", "b"):
        np.testing.assert_allclose(rd.value(f"d_loss_d_{w}"), r.grad(w), rtol=1e-14, atol=1e-16)
    same = g.derive().run()  # Graph.derive: the same file, read back by the API
    for o in d.outputs:
        assert np.array_equal(same.value(o), rd.value(o))
    # order 2 in both formats: the same numbers
    d2y = cgcalc.loads(g.derive_text(wrt=["b", "x"], order=2, fmt=fmt), json=fmt == "json")
    assert d2y.outputs == ("d2_loss_d_b_d_b", "d2_loss_d_b_d_x", "d2_loss_d_x_d_b", "d2_loss_d_x_d_x")
    d2 = g.derive(wrt=["b", "x"], order=2).run()
    for o in d2y.outputs:
        assert np.array_equal(d2y.run().value(o), d2.value(o))


def test_a_name_the_graph_already_has_is_not_taken_again():
    """A graph whose own node is named d_price_d_apple (here: what the book calls apple_price): the derivative
    d price / d apple is d_price_d_apple_2, and the graph's node keeps its name (d price / d tax is it)."""
    g = loads(
        """
        inputs:
          apple: 100
          apple_num: 2
          tax: 1.1
        nodes:
          d_price_d_apple: apple * apple_num
          price: d_price_d_apple * tax
        outputs: [price]
        """
    )
    d = g.derive()
    assert d.outputs == ("d_price_d_apple_2", "d_price_d_apple_num", "d_price_d_tax")
    r = d.run()
    assert [r.value(o) for o in d.outputs] == [2 * 1.1, 100 * 1.1, 200.0]
    assert r.value("d_price_d_apple") == 200.0  # the graph's own node, apple * apple_num


def test_names_the_derivative_would_make_up_are_fresh_too():
    """Inputs and nodes named like the derivative's own helpers (t1, t2, v_x for an HVP's vector, d_y_d_t2 for
    an adjoint) and an expression's inner nodes (d_y_d_t2.1): every name in the file is new or the graph's own,
    and the numbers are the numeric gradient's."""
    g = loads(
        """
        inputs:
          x: 0.5
          t1: 2
          v_x: 3
        nodes:
          t2: x * t1
          d_y_d_t2: exp(t2) * v_x
          y: tanh(d_y_d_t2) * x
        outputs: [y]
        """
    )
    d = g.derive()
    assert d.outputs == ("d_y_d_x", "d_y_d_t1", "d_y_d_v_x")
    assert len(set(d.plan.names)) == len(d.plan.names)
    assert all(n.isidentifier() for n in d.plan.names)
    r, rd = g.run(), d.run()
    for w in ("x", "t1", "v_x"):
        assert rd.value(f"d_y_d_{w}") == r.grad(w)
    # the HVP's vector inputs: v_x is taken, so x's is v_x_2; H v against the Hessian
    labels, h = g.hessian()
    v = {"x": 1.0, "t1": -0.5, "v_x": 2.0}
    hv = g.hvp(v)
    np.testing.assert_allclose([hv[w] for w in labels], h @ [v[w] for w in labels], rtol=1e-14)


@pytest.mark.parametrize("expr", [False, True])
def test_names_yaml_would_read_as_numbers_are_quoted_where_used(expr):
    """Inputs named nan and Inf and a node named INFINITY (names a graph may have): every reference to them in
    the derivative file is quoted ("nan"), so that it reads back as the name, not the number; with and without an
    expression's inner node (y.1) among the graph's names."""
    y = "INFINITY * nan + 1" if expr else "{op: add, in: ['INFINITY', 'Inf']}"  # (unquoted: numbers)
    g = loads(f"inputs:\n  nan: 2.0\n  Inf: 3.0\nnodes:\n  INFINITY: {{op: mul, in: ['nan', 'Inf']}}\n  y: {y}\n")
    text = g.derive_text()
    assert '"nan"' in text and '"Inf"' in text and not re.search(r"[\[ ](nan|Inf|INFINITY)[,\]]", text), text
    d = cgcalc.loads(text)
    r, rd = g.run(), d.run()
    assert [rd.value(f"d_y_d_{w}") for w in ("nan", "Inf")] == [r.grad("nan"), r.grad("Inf")]
    assert all(o in text for o in d.outputs)


def test_inner_nodes_of_expressions_become_valid_names():
    """y: exp(x * x) + x has inner nodes y.1, y.2 (cgcalc's names): the derivative file calls the ones it keeps
    y_1, y_2, and reads back."""
    g = loads(
        """
        inputs:
          x: 0.75
        nodes:
          y: exp(x * x) + sin_x * x
          sin_x: tanh(x)
        outputs: [y]
        """
    )
    assert "y.1" in g.plan.names
    text = g.derive_text()
    d = cgcalc.loads(text)
    assert {"y_1", "y_2"} <= set(d.plan.names), text  # x * x and exp of it: both needed
    assert all("." not in n for n in d.plan.names)
    assert d.run().value("d_y_d_x") == g.run().grad("x")
    # an inner node as the output: its derivative's name is a valid one too
    inner = g.derive(output="y.1")
    assert inner.outputs == ("d_y_1_d_x",)
    assert inner.run().value("d_y_1_d_x") == 2 * 0.75  # d(x * x)/dx = 2x


def test_the_derivative_of_a_derivative_graph_is_the_second_derivative():
    """Graph.derive of a derived graph == derive(order=2): every second partial of f(a, b) two ways (the same
    rules, but a different store of terms: equal to rounding); and an order-3 chain of derive calls against
    derive(order=3) for one input."""
    g = loads(
        """
        inputs:
          a: 0.8
          b: -1.25
        nodes:
          f: sigmoid(a * b) * exp(b) + a ** 3 / (1 + b * b)
        """
    )
    d1, d2 = g.derive(), g.derive(order=2).run()
    for x in ("a", "b"):
        dd = d1.derive(output=f"d_f_d_{x}")
        assert dd.outputs == (f"d_d_f_d_{x}_d_a", f"d_d_f_d_{x}_d_b")
        r = dd.run()
        for y in ("a", "b"):
            got, want = r.value(f"d_d_f_d_{x}_d_{y}"), d2.value(f"d2_f_d_{x}_d_{y}")
            assert got == pytest.approx(want, rel=1e-14, abs=1e-15)
    chain = g.derive(wrt=["a"]).derive().derive(wrt=["a"])
    assert chain.outputs == ("d_d_d_f_d_a_d_a_d_a",)
    want = g.derive(wrt=["a"], order=3).run().value("d3_f_d_a_d_a_d_a")
    assert chain.run().value(chain.outputs[0]) == pytest.approx(want, rel=1e-13)


def test_usage_errors_name_the_problem_and_suggest(graphs_dir):
    """--wrt of a node, of a typo, of a grad: false input; --output of a typo; order > 1 of an array output;
    order 0; a name twice: UsageError (the CLI's exit code), with 'did you mean' where a name is close."""
    g = cgcalc.load(graphs_dir / "apple.yaml")
    cases = [
        (dict(wrt=["apple_price"]), r"'apple_price': it is a node, not an input \(did you mean 'apple'\?\)"),
        (dict(wrt=["aple"]), r"'aple': it is not an input \(did you mean 'apple'\?\)"),
        (dict(output="prise"), r"no input or node named 'prise' \(did you mean 'price'\?\)"),
        (dict(order=0), r"--order must be 1 or more, got 0"),
        (dict(wrt=["tax", "tax"]), r"--wrt names an input twice"),
    ]
    for kw, message in cases:
        with pytest.raises(UsageError, match=message):
            g.derive(**kw)
        with pytest.raises(UsageError, match=message):
            g.derive_text(**kw)
    with pytest.raises(UsageError, match=r"'apple_price': it is a node"):
        g.hessian(wrt=["apple_price"])
    with pytest.raises(UsageError, match=r"'aple'.* \(did you mean 'apple'\?\)"):
        g.hvp({"aple": 1.0})
    frozen = loads("inputs:\n  x: 1\n  c: {value: 2, grad: false}\nnodes:\n  y: x * c\n")
    with pytest.raises(UsageError, match=r"cannot differentiate with respect to 'c': it is a `grad: false` input"):
        frozen.derive(wrt=["c"])
    none = loads("inputs:\n  c: {value: 2, grad: false}\nnodes:\n  y: c * c\n")
    with pytest.raises(UsageError, match=r"no input that takes a gradient"):
        none.derive()
    arrays = loads("inputs:\n  x: [1, 2]\nnodes:\n  y: x * x\n  s: sum(y)\noutputs: [y, s]\n")
    for call in (lambda: arrays.derive(order=2), lambda: arrays.hessian(), lambda: arrays.hvp({"x": [1.0, 0.0]})):
        with pytest.raises(UsageError, match=r"needs a scalar output; 'y' has shape \(2,\): differentiate a sum"):
            call()
    assert arrays.hessian(output="s")[1].tolist() == [[2.0, 0.0], [0.0, 2.0]]  # of the scalar: fine


# --- small derivative graphs --------------------------------------------------------------------------------------


def test_the_8th_derivative_of_tanh_has_at_most_300_nodes():
    """DeZero's n-th derivative graphs of tanh(x) grow exponentially (7, 13, 27, 59, 139, 351, 935, 2587
    variable nodes for n = 1..8); cgcalc's, len(g.derive(order=n).plan.steps), measured on this branch:

        n      1  2  3   4   5   6   7    8
        nodes  3  5  8  13  24  48  96  200

    The bound is the issue's (300); the values are sympy's n-th derivatives of tanh at x = 0.7 (40 digits)."""
    g = loads("inputs:\n  x: 0.7\nnodes:\n  y: tanh(x)\n")
    x = sympy.Symbol("x")
    counts = []
    for n in range(1, 9):
        d = g.derive(order=n)
        counts.append(len(d.plan.steps))
        want = float(sympy.diff(sympy.tanh(x), x, n).evalf(40, subs={x: sympy.Rational(7, 10)}))
        got = d.run().value(d.outputs[0])
        assert got == pytest.approx(want, rel=1e-12), (n, got, want)
    assert counts[-1] <= 300, counts


# --- where the derivative graph and the numeric backward differ, and why ------------------------------------------


def test_a_literal_zero_is_the_absence_of_a_term_in_a_derivative_graph():
    """Documented in terms.py (Terms._algebra): the simplifier drops a term multiplied by a literal 0. So
    f = exp(x) * 0 at x = 1000 has the numeric gradient 0 * exp(1000) = 0 * inf = NaN (and a warning), its
    derivative graph the constant 0; and d(-(0 * x))/dx is -0.0 numerically (-1 * 0), +0.0 in the derivative
    graph (no term at all). The property tests compare with ==, which does not tell the zeros apart."""
    g = loads("inputs:\n  x: 1000\nnodes:\n  f: exp(x) * 0\n")
    r = g.run()
    assert math.isnan(r.grad("x")) and r.warnings
    assert g.derive().run().value("d_f_d_x") == 0.0
    g = loads("inputs:\n  x: 3\nnodes:\n  f: -(0 * x)\n")
    assert math.copysign(1, g.run().grad("x")) == -1.0
    assert math.copysign(1, g.derive().run().value("d_f_d_x")) == 1.0


def test_relu_at_its_kink_is_zero_both_ways():
    """relu's numeric backward masks x > 0; the derivative graph multiplies by step(x), 0 at x = 0: the same."""
    g = loads("inputs:\n  x: [0, -0.0, 2]\nnodes:\n  f: sum(relu(x) * 3)\n")
    assert g.run().grad("x").tolist() == [0.0, 0.0, 3.0]
    assert g.derive().run().value("d_f_d_x").tolist() == [0.0, 0.0, 3.0]


def test_pow_with_a_variable_exponent_at_base_zero_matches_the_numeric_gradient():
    g = loads("inputs:\n  x: 0\n  y: 2\nnodes:\n  f: x ** y\n")
    r = g.run()
    assert (r.grad("x"), r.grad("y")) == (0.0, 0.0)  # d/dx = y x^(y-1) = 0; d/dy: the limit x^y log x -> 0
    rd = g.derive().run()
    assert (rd.value("d_f_d_x"), rd.value("d_f_d_y")) == (0.0, 0.0)


def _same(a: float, b: float) -> bool:
    # (the sign of a zero aside: at y = 0 and x < 0 the derivative graph computes y x ** (y - 1) = -0.0, so that
    # its derivative in y is right, where backward's special case gives 0.0)
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("x", [0.0, -0.0, 2.0, -2.0, 0.5, math.inf, math.nan])
@pytest.mark.parametrize("y", [0.0, 2.0, 3.0, -1.0, 0.5, math.nan])
def test_pow_s_derivative_graph_has_its_special_cases_bit_for_bit(x: float, y: float):
    # backward: dx = 0 where y = 0; dy = 0 where x = 0 and y >= 0 (torch's limits); the derivative graph writes
    # them with where, steps and a safe input, and must give the same numbers, NaN for NaN
    g = loads(f"inputs:\n  x: {x!r}\n  y: {y!r}\nnodes:\n  f: x ** y\n".replace("nan", ".nan").replace("inf", ".inf"))
    with np.errstate(all="ignore"):
        r = g.run()
        rd = g.derive().run()
    for w in ("x", "y"):
        assert _same(float(rd.value(f"d_f_d_{w}")), float(r.grad(w))), (w, rd.value(f"d_f_d_{w}"), r.grad(w))


def test_pow_s_second_derivative_in_the_exponent_at_exponent_zero_is_kept():
    # f = x ** y at (2, 0): f_xy = x^(y-1) (1 + y log x) = 1/2, f_yy = x^y log^2 x = log(2)^2, f_xx = y (y-1)
    # x^(y-2) = 0. (Backward's dx = 0 where y = 0 is no reason for d/dy of dx to be 0 there.)
    labels, h = loads("inputs:\n  x: 2\n  y: 0\nnodes:\n  f: x ** y\n").hessian()
    assert np.allclose(h, [[0.0, 0.5], [0.5, math.log(2) ** 2]], rtol=1e-14, atol=0), h.tolist()


def test_pow_s_second_derivatives_at_base_zero_are_the_limits_not_nan():
    # f = x ** y. At (0, 2): f_xx = y (y-1) x^(y-2) = 2, f_xy = x^(y-1) (1 + y log x) -> 0, f_yy = x^y log^2 x -> 0;
    # at (0, 3) all three -> 0; at (2, 3) the formulas themselves
    for (x, y), expected in (
        ((0.0, 2.0), [[2.0, 0.0], [0.0, 0.0]]),
        ((0.0, 3.0), [[0.0, 0.0], [0.0, 0.0]]),
        ((2.0, 3.0), [[12.0, 4 * (1 + 3 * math.log(2))], [4 * (1 + 3 * math.log(2)), 8 * math.log(2) ** 2]]),
    ):
        g = loads(f"inputs:\n  x: {x}\n  y: {y}\nnodes:\n  f: x ** y\n")
        labels, h = g.hessian()
        assert labels == ["x", "y"]
        assert np.allclose(h, expected, rtol=1e-14, atol=0), (x, y, h.tolist())


def test_hessian_at_overrides_of_another_shape_is_right_or_refused():
    """f = sum(W * x * x), x = 2 in the file, W (2, 2): at x = [1, 2] (broadcast against W's rows) the Hessian
    w.r.t. x is diag(2 (W[0,0] + W[1,0]), 2 (W[0,1] + W[1,1])) = diag(8, 12). Either that, labelled x[0], x[1]
    first, or a UsageError/GraphError: not a matrix for the file's shapes."""
    g = loads("inputs:\n  x: 2\n  W: [[1, 2], [3, 4]]\nnodes:\n  f: sum(W * x * x)\n")
    assert g.run({"x": [1.0, 2.0]}).grad("x").tolist() == [8.0, 24.0]  # 2 x (W[0,j] + W[1,j]) = [2*4, 4*6]
    try:
        labels, h = g.hessian({"x": [1.0, 2.0]}, wrt=["x"])
    except (UsageError, GraphError):
        return
    assert labels == ["x[0]", "x[1]"]
    assert h.tolist() == [[8.0, 0.0], [0.0, 12.0]]
