"""Every layer in LAYERS: backward against central differences, broadcasting, kernels, and purity.

The reference for each gradient is numerical: d/dx of sum(dout * f(x)) by central differences, with a
random upstream gradient `dout`, so nothing here is derived from the code under test.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, broadcastable_shapes, mutually_broadcastable_shapes

import cgcalc
from cgcalc.core.kernels import FLOAT, array_kernel
from cgcalc.core.layers import LAYERS, sum_to

NUMPY = array_kernel()
EXACT = array_kernel(exact=True)

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-6

# input domains away from poles, branch cuts and kinks: (low, high, random sign)
FULL = (-2.0, 2.0, False)
POS = (0.5, 2.0, False)
AWAY = (0.5, 2.0, True)  # |x| in [0.5, 2], either sign
DOMAINS: dict[str, list[tuple[float, float, bool]]] = {
    "add": [FULL, FULL],
    "sub": [FULL, FULL],
    "mul": [FULL, FULL],
    "div": [FULL, AWAY],
    "pow": [POS, FULL],
    "neg": [FULL],
    "exp": [FULL],
    "log": [(0.5, 3.0, False)],
    "relu": [(0.1, 2.0, True)],
    "sigmoid": [(-4.0, 4.0, False)],
    "tanh": [FULL],
}
BINARY = ["add", "sub", "mul", "div", "pow"]
UNARY = ["neg", "exp", "log", "relu", "sigmoid", "tanh"]
ARRAY_OPS = ["matmul", "affine", "sum", "mean", "softmax_with_loss"]

SEEDS = st.integers(0, 2**32 - 1)
SETTINGS = settings(max_examples=50, deadline=None)


def test_registry_has_the_sixteen_ops_of_the_spec():
    assert set(LAYERS) == set(BINARY + UNARY + ARRAY_OPS)
    assert len(LAYERS) == 16
    for op, cls in LAYERS.items():
        assert cls.op == op


# --- helpers -------------------------------------------------------------------------------------


def make(op: str, k=NUMPY, needs=None, attrs=None):
    cls = LAYERS[op]
    attrs = cls.check_attrs(dict(attrs or {}))
    return cls(k, needs if needs is not None else (True,) * cls.arity, 0, attrs)


def draw_values(rng, shape, domain, as_float=False):
    lo, hi, signed = domain
    x = rng.uniform(lo, hi, size=shape)
    if signed:
        x = x * rng.choice([-1.0, 1.0], size=shape)
    if as_float and shape == ():
        return float(x)
    return np.asarray(x, dtype=np.float64)


def objective(op, xs, dout, attrs=None, k=NUMPY) -> float:
    """sum(dout * f(xs)), on a fresh layer."""
    y = make(op, k=k, attrs=attrs).forward(*xs)
    return float(np.sum(dout * y))


def numeric_grad(op, xs, i, dout, attrs=None, k=NUMPY):
    """Central differences of the objective with respect to xs[i]."""
    x = xs[i]
    if isinstance(x, float):
        hi = list(xs)
        lo = list(xs)
        hi[i], lo[i] = x + EPS, x - EPS
        return (objective(op, hi, dout, attrs, k) - objective(op, lo, dout, attrs, k)) / (2 * EPS)
    g = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        hi = [np.array(a, dtype=np.float64, copy=True) if j == i else a for j, a in enumerate(xs)]
        lo = [np.array(a, dtype=np.float64, copy=True) if j == i else a for j, a in enumerate(xs)]
        hi[i][idx] += EPS
        lo[i][idx] -= EPS
        g[idx] = (objective(op, hi, dout, attrs, k) - objective(op, lo, dout, attrs, k)) / (2 * EPS)
    return g


def check_gradients(op, xs, rng, attrs=None, no_grad=(), k=NUMPY):
    """Backward of a layer against central differences, for every input; returns the forward value."""
    layer = make(op, k=k, attrs=attrs)
    y = layer.forward(*xs)
    dout = rng.standard_normal(np.shape(y))
    if k is FLOAT:
        dout = float(dout)
    grads = layer.backward(dout)
    assert len(grads) == len(xs)
    for i, (g, x) in enumerate(zip(grads, xs)):
        if i in no_grad:
            assert g is None
            continue
        assert g is not None
        assert np.shape(g) == np.shape(x), f"gradient of input {i} has shape {np.shape(g)}, input {np.shape(x)}"
        np.testing.assert_allclose(g, numeric_grad(op, xs, i, dout, attrs, k), rtol=RTOL, atol=ATOL,
                                   err_msg=f"{op}: gradient of input {i}")
    return y


# --- elementwise ops, numpy kernel, broadcasting ---------------------------------------------------


pair_shapes = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4).map(
    lambda s: s.input_shapes
)


@pytest.mark.parametrize("op", BINARY)
@SETTINGS
@given(shapes=pair_shapes, seed=SEEDS, as_float=st.booleans())
@example(shapes=((3, 1), (4,)), seed=1, as_float=False)
@example(shapes=((4,), (3, 1)), seed=2, as_float=False)
@example(shapes=((), (2, 3)), seed=3, as_float=True)
@example(shapes=((2, 3), ()), seed=4, as_float=False)
@example(shapes=((2, 1, 3), (4, 1)), seed=5, as_float=False)
@example(shapes=((1,), (2, 3)), seed=6, as_float=False)
def test_binary_gradients_with_broadcasting(op, shapes, seed, as_float):
    rng = np.random.default_rng(seed)
    xs = [draw_values(rng, s, d, as_float) for s, d in zip(shapes, DOMAINS[op])]
    y = check_gradients(op, xs, rng)
    assert np.shape(y) == np.broadcast_shapes(*shapes)
    a, b = (np.asarray(x) for x in xs)
    expected = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}[op](a, b)
    np.testing.assert_allclose(y, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("op", UNARY)
@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=4), seed=SEEDS, as_float=st.booleans())
def test_unary_gradients(op, shape, seed, as_float):
    rng = np.random.default_rng(seed)
    x = draw_values(rng, shape, DOMAINS[op][0], as_float)
    y = check_gradients(op, [x], rng)
    assert np.shape(y) == shape


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("needs", [(True, False), (False, True)])
def test_binary_backward_skips_inputs_without_gradient(op, needs):
    rng = np.random.default_rng(7)
    xs = [draw_values(rng, (2, 3), d) for d in DOMAINS[op]]
    layer = make(op, needs=needs)
    layer.forward(*xs)
    grads = layer.backward(rng.standard_normal((2, 3)))
    for need, g in zip(needs, grads):
        assert (g is None) == (not need)


# --- the float kernel ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", BINARY + UNARY)
@SETTINGS
@given(seed=SEEDS)
def test_float_kernel_gradients(op, seed):
    rng = np.random.default_rng(seed)
    xs = [draw_values(rng, (), d, as_float=True) for d in DOMAINS[op]]
    layer = make(op, k=FLOAT)
    y = layer.forward(*xs)
    assert type(y) is float
    dout = float(rng.standard_normal())
    grads = layer.backward(dout)
    assert len(grads) == len(xs)
    for i, g in enumerate(grads):
        assert type(g) is float
        assert g == pytest.approx(numeric_grad(op, xs, i, dout, k=FLOAT), rel=RTOL, abs=ATOL)


def test_float_kernel_is_the_default_of_layer():
    assert LAYERS["mul"]().k is FLOAT
    assert LAYERS["mul"]().forward(3.0, 4.0) == 12.0


def run_elementwise(op, k, xs, dout):
    layer = make(op, k=k)
    y = layer.forward(*xs)
    return y, layer.backward(dout)


@pytest.mark.parametrize("op", BINARY + UNARY)
@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
def test_float_numpy_and_exact_kernels_agree(op, seed):
    rng = np.random.default_rng(seed)
    n = 200
    xs = [draw_values(rng, (n,), d) for d in DOMAINS[op]]
    dout = rng.standard_normal(n)

    y_np, g_np = run_elementwise(op, NUMPY, xs, dout)
    y_ex, g_ex = run_elementwise(op, EXACT, xs, dout)
    y_fl = np.empty(n)
    g_fl = np.empty((len(xs), n))
    for j in range(n):
        yj, gj = run_elementwise(op, FLOAT, [float(x[j]) for x in xs], float(dout[j]))
        assert type(yj) is float
        y_fl[j] = yj
        g_fl[:, j] = gj

    # EXACT applies the C library element by element: bit for bit what FLOAT gives
    assert y_ex.tobytes() == y_fl.tobytes()
    for i in range(len(xs)):
        assert np.asarray(g_ex[i], dtype=np.float64).tobytes() == g_fl[i].tobytes()

    # numpy's SIMD functions may differ in the last bit; a gradient such as dout * (1 - y) * y turns
    # that one ulp of y into an error relative to dout, not to the (smaller) gradient
    np.testing.assert_allclose(y_np, y_fl, rtol=1e-15, atol=0)
    for i in range(len(xs)):
        err = np.abs(g_np[i] - g_fl[i])
        assert np.all(err <= 1e-15 * (np.abs(g_fl[i]) + np.abs(dout))), (op, i, err.max())


# --- matmul and affine -----------------------------------------------------------------------------


@st.composite
def matmul_operands(draw):
    k, n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stacks = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)).input_shapes
    a_kind = draw(st.sampled_from(["vector", "matrix", "stack"]))
    b_kind = draw(st.sampled_from(["vector", "matrix", "stack"]))
    sa = {"vector": (k,), "matrix": (n, k), "stack": stacks[0] + (n, k)}[a_kind]
    sb = {"vector": (k,), "matrix": (k, m), "stack": stacks[1] + (k, m)}[b_kind]
    return sa, sb


@SETTINGS
@given(shapes=matmul_operands(), seed=SEEDS)
@example(shapes=((3,), (3,)), seed=1)
@example(shapes=((3,), (3, 2)), seed=2)
@example(shapes=((2, 3), (3,)), seed=3)
@example(shapes=((2, 3), (3, 4)), seed=4)
@example(shapes=((5, 2, 3), (3, 4)), seed=5)
@example(shapes=((3,), (5, 3, 4)), seed=6)
@example(shapes=((2, 1, 2, 3), (4, 3, 2)), seed=7)
def test_matmul_gradients(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (draw_values(rng, s, FULL) for s in shapes)
    y = check_gradients("matmul", [a, b], rng)
    expected = np.matmul(a, b)
    assert np.shape(y) == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-14)


@st.composite
def affine_operands(draw):
    k, n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sx = draw(st.sampled_from([(k,), (n, k)]))
    out = (m,) if len(sx) == 1 else (n, m)
    # usually b is (m,) as in the book, but any shape that broadcasts with the product will do,
    # including one that enlarges it: (1,) @ (1, 1) + (2,)
    sb = draw(broadcastable_shapes(out, min_dims=0, max_dims=len(out) + 1))
    return sx, (k, m), sb


@SETTINGS
@given(shapes=affine_operands(), seed=SEEDS)
@example(shapes=((2, 3), (3, 4), (4,)), seed=1)
@example(shapes=((3,), (3, 4), (4,)), seed=2)
@example(shapes=((2, 3), (3, 4), (1, 4)), seed=3)
@example(shapes=((2, 3), (3, 4), (2, 4)), seed=4)
@example(shapes=((2, 3), (3, 4), ()), seed=5)
@example(shapes=((1,), (1, 1), (2,)), seed=6)
@example(shapes=((1, 2), (2, 1), (3,)), seed=7)
def test_affine_gradients(shapes, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (draw_values(rng, s, FULL) for s in shapes)
    y = check_gradients("affine", [x, W, b], rng)
    np.testing.assert_allclose(y, x @ W + b, rtol=1e-14, atol=1e-14)


def test_affine_with_b_that_enlarges_the_product():
    text = "inputs:\n  x: [[1, 2]]\n  W: [[1], [2]]\n  b: [1, 2, 3]\nnodes:\n  y: {op: affine, in: [x, W, b]}\n"
    r = cgcalc.loads(text).run()
    # y = x @ W + b = [[5 + 1, 5 + 2, 5 + 3]]; d sum(y) / dx = 3 W.T, dW = 3 x.T, db = 1
    np.testing.assert_array_equal(r.value("y"), [[6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(r.grad("x"), [[3.0, 6.0]])
    np.testing.assert_array_equal(r.grad("W"), [[3.0], [6.0]])
    np.testing.assert_array_equal(r.grad("b"), [1.0, 1.0, 1.0])


# --- sum and mean ----------------------------------------------------------------------------------


@st.composite
def reductions(draw):
    shape = draw(array_shapes(min_dims=0, max_dims=4, max_side=4))
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "list"] if nd else ["none"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-nd, nd - 1))
    else:
        picked = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
        # write some of them from the end, as -1, -2, ...
        axis = [a - nd if draw(st.booleans()) else a for a in picked]
    keepdims = draw(st.booleans())
    attrs = {} if kind == "none" and draw(st.booleans()) else {"axis": axis}
    if keepdims or draw(st.booleans()):
        attrs["keepdims"] = keepdims
    return shape, attrs


@pytest.mark.parametrize("op", ["sum", "mean"])
@settings(max_examples=60, deadline=None)
@given(case=reductions(), seed=SEEDS)
@example(case=((2, 3, 4), {"axis": 1}), seed=1)
@example(case=((2, 3, 4), {"axis": -1, "keepdims": True}), seed=2)
@example(case=((2, 3, 4), {"axis": [0, -1]}), seed=3)
@example(case=((2, 3, 4), {"axis": [2, 0], "keepdims": True}), seed=4)
@example(case=((2, 3), {}), seed=5)
@example(case=((2, 3), {"keepdims": True}), seed=6)
@example(case=((), {}), seed=7)
def test_reduction_gradients(op, case, seed):
    shape, attrs = case
    rng = np.random.default_rng(seed)
    x = draw_values(rng, shape, FULL)
    y = check_gradients(op, [x], rng, attrs=attrs)
    axis = attrs.get("axis")
    axis = tuple(axis) if isinstance(axis, list) else axis
    expected = getattr(np, op)(x, axis=axis, keepdims=attrs.get("keepdims", False))
    assert np.shape(y) == np.shape(expected)
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-15)


# --- softmax_with_loss -----------------------------------------------------------------------------


def reference_loss(x, onehot):
    z = x - x.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    n = x.shape[0] if x.ndim == 2 else 1
    return -(onehot * logp).sum() / n


@settings(max_examples=40, deadline=None)
@given(
    batch=st.sampled_from([None, 1, 2, 5]),
    classes=st.integers(2, 5),
    target=st.sampled_from(["onehot", "soft", "indices"]),
    seed=SEEDS,
)
@example(batch=None, classes=3, target="indices", seed=1)
@example(batch=None, classes=3, target="onehot", seed=2)
@example(batch=4, classes=3, target="indices", seed=3)
@example(batch=4, classes=3, target="soft", seed=4)
def test_softmax_with_loss_gradients(batch, classes, target, seed):
    rng = np.random.default_rng(seed)
    shape = (classes,) if batch is None else (batch, classes)
    x = rng.uniform(-3, 3, size=shape)
    labels = rng.integers(0, classes, size=shape[:-1])
    onehot = np.eye(classes)[labels]
    if target == "soft":
        p = rng.uniform(0.1, 1.0, size=shape)
        onehot = p / p.sum(axis=-1, keepdims=True)
    t = np.asarray(labels, dtype=np.float64) if target == "indices" else onehot
    y = check_gradients("softmax_with_loss", [x, t], rng, no_grad=(1,) if target == "indices" else ())
    assert np.shape(y) == ()
    assert float(y) == pytest.approx(reference_loss(x, onehot), rel=1e-13, abs=1e-15)


def test_softmax_with_loss_of_the_book():
    # uniform scores over 3 classes: the loss is log 3 whatever the label; dx = (1/3 - t) / N
    x = np.zeros((2, 3))
    t = np.array([0.0, 2.0])
    layer = make("softmax_with_loss", needs=(True, False))
    assert float(layer.forward(x, t)) == pytest.approx(math.log(3), rel=1e-15)
    (dx, dt) = layer.backward(np.float64(1.0))
    assert dt is None
    np.testing.assert_allclose(dx, [[(1 / 3 - 1) / 2, 1 / 6, 1 / 6], [1 / 6, 1 / 6, (1 / 3 - 1) / 2]], rtol=1e-14)


@pytest.mark.parametrize("text", [
    "inputs:\n  x: [1, 2, 3]\n  t: {value: 2, grad: false}\nnodes:\n  y: softmax_with_loss(x, t)\n",
    "inputs:\n  x: [1, 2, 3]\nnodes:\n  y: softmax_with_loss(x, 2)\n",
])
def test_softmax_with_loss_of_one_sample_and_a_class_index(text):
    r = cgcalc.loads(text).run()
    logsum = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert r.value("y") == pytest.approx(logsum - 3, rel=1e-12)
    p = [math.exp(v - logsum) for v in (1, 2, 3)]
    np.testing.assert_allclose(r.grad("x"), [p[0], p[1], p[2] - 1], rtol=1e-12)


# --- backward never writes into what it was handed ------------------------------------------------


def purity_cases():
    """One representative call per op: (op, input arrays, attrs), broadcasting where the op has it."""
    rng = np.random.default_rng(11)
    cases = []
    for op in BINARY:
        d0, d1 = DOMAINS[op]
        cases.append((op, [draw_values(rng, (3, 1), d0), draw_values(rng, (4,), d1)], {}))
    for op in UNARY:
        cases.append((op, [draw_values(rng, (2, 3), DOMAINS[op][0])], {}))
    # relu with both signs: the book's Relu.backward does `dout[mask] = 0` on its caller's array
    cases.append(("relu", [rng.uniform(-2, 2, size=(4, 5))], {}))
    cases.append(("matmul", [rng.standard_normal((2, 3)), rng.standard_normal((3, 4))], {}))
    cases.append(("matmul", [rng.standard_normal(3), rng.standard_normal((2, 3, 4))], {}))
    cases.append(("affine", [rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)], {}))
    cases.append(("sum", [rng.standard_normal((2, 3))], {"axis": 0}))
    cases.append(("sum", [rng.standard_normal((2, 3))], {"axis": -1, "keepdims": True}))
    cases.append(("mean", [rng.standard_normal((2, 3, 2))], {"axis": [0, 2]}))
    cases.append(("mean", [rng.standard_normal((2, 3))], {}))
    cases.append(("softmax_with_loss", [rng.standard_normal((2, 3)), np.eye(3)[[0, 2]]], {}))
    cases.append(("softmax_with_loss", [rng.standard_normal((2, 3)), np.array([1.0, 2.0])], {}))
    return cases


@pytest.mark.parametrize("op, xs, attrs", purity_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_forward_and_backward_never_modify_their_arguments(op, xs, attrs):
    rng = np.random.default_rng(12)
    saved = [x.copy() for x in xs]
    layer = make(op, attrs=attrs)
    y = layer.forward(*xs)
    dout = rng.standard_normal(np.shape(y))
    if op == "relu":
        dout[0, 0] = 5.0  # a place where x may be negative: the book's trap would zero it
    saved_dout = dout.copy()
    layer.backward(dout)
    for x, before in zip(xs, saved):
        assert np.array_equal(x, before)
    assert np.array_equal(dout, saved_dout)

    # the strict form: read-only arguments, so any write raises instead of passing unnoticed
    frozen = [x.copy() for x in xs]
    for x in frozen:
        x.flags.writeable = False
    frozen_dout = dout.copy()
    frozen_dout.flags.writeable = False
    layer = make(op, attrs=attrs)
    layer.forward(*frozen)
    layer.backward(frozen_dout)


# --- specific cases ---------------------------------------------------------------------------------


SIGMOID_GRAPH = "inputs:\n  x: {x}\nnodes:\n  y: sigmoid(x)\n"


@pytest.mark.parametrize("x, expected", [(1000, 1.0), (-1000, 0.0)])
def test_sigmoid_saturates_without_overflow_on_floats(x, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = cgcalc.loads(SIGMOID_GRAPH.format(x=x)).run()
    assert r.value("y") == expected
    assert r.grad("x") == 0.0
    assert r.warnings == ()


def test_sigmoid_saturates_without_overflow_on_arrays():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = cgcalc.loads(SIGMOID_GRAPH.format(x="[1000, -1000, 0]")).run()
    assert r.value("y").tolist() == [1.0, 0.0, 0.5]
    assert r.grad("x").tolist() == [0.0, 0.0, 0.25]
    assert r.warnings == ()


@pytest.mark.parametrize("k", [FLOAT, NUMPY, EXACT], ids=["float", "numpy", "exact"])
def test_sigmoid_layer_at_1000_raises_no_runtime_warning(k):
    xs = [1000.0, -1000.0] if k is FLOAT else [np.array([1000.0, -1000.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if k is FLOAT:
            out = []
            for x in xs:
                layer = make("sigmoid", k=FLOAT)
                out.append((layer.forward(x), layer.backward(1.0)[0]))
            assert out == [(1.0, 0.0), (0.0, 0.0)]
        else:
            layer = make("sigmoid", k=k)
            assert layer.forward(xs[0]).tolist() == [1.0, 0.0]
            assert layer.backward(np.ones(2))[0].tolist() == [0.0, 0.0]


def test_pow_gradient_for_base_and_exponent():
    # d/da a**b = b a**(b-1) = 3 * 4 = 12;  d/db a**b = a**b ln a = 8 ln 2
    r = cgcalc.loads("inputs:\n  a: 2\n  b: 3\nnodes:\n  y: {op: pow, in: [a, b]}\n").run()
    assert r.value("y") == 8.0
    assert r.grad("a") == pytest.approx(12.0, rel=1e-15)
    assert r.grad("b") == pytest.approx(8 * math.log(2), rel=1e-15)
    layer = make("pow")
    layer.forward(np.array([2.0, 0.5]), np.array([3.0, -1.0]))
    da, db = layer.backward(np.ones(2))
    np.testing.assert_allclose(da, [12.0, -4.0], rtol=1e-15)
    np.testing.assert_allclose(db, [8 * math.log(2), 2 * math.log(0.5)], rtol=1e-15)


# (a, b) -> a ** b, d/da, d/db. At a = 0 the exponent's derivative a**b ln a has the limit 0 for b > 0
# (0 ** b is constant 0 there); for b = 0 the base's derivative b a**(b-1) is 0 (a ** 0 is constant 1).
POW_EDGES = [
    (0.0, 2.0, 0.0, 0.0, 0.0),
    (0.0, 3.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0, 0.0),
    (2.0, 0.0, 1.0, 0.0, math.log(2.0)),
    (-2.0, 2.0, 4.0, -4.0, math.nan),  # ln of a negative base: no real derivative in the exponent
]


@pytest.mark.parametrize("a, b, y, da, db", POW_EDGES)
def test_pow_at_zero_base_and_zero_exponent_on_floats(a, b, y, da, db):
    layer = make("pow", k=FLOAT)
    assert layer.forward(a, b) == y
    got_da, got_db = layer.backward(1.0)
    assert got_da == da
    assert got_db == db or (math.isnan(db) and math.isnan(got_db))


@pytest.mark.parametrize("k", [NUMPY, EXACT], ids=["numpy", "exact"])
def test_pow_at_zero_base_and_zero_exponent_on_arrays(k):
    a, b, y, da, db = (np.array(col) for col in zip(*POW_EDGES))
    layer = make("pow", k=k)
    with np.errstate(all="ignore"):  # as the runtime calls it: non-finite values are its to report
        np.testing.assert_array_equal(layer.forward(a, b), y)
        got_da, got_db = layer.backward(np.ones(len(a)))
    np.testing.assert_array_equal(got_da, da)
    np.testing.assert_array_equal(got_db, db)  # NaN where db is NaN, equal elsewhere


@pytest.mark.parametrize("values", ["a: -2\n  b: 0.5", "a: [-2, 4]\n  b: 0.5"])
def test_pow_of_negative_base_and_fractional_exponent_is_nan_and_named(values):
    r = cgcalc.loads(f"inputs:\n  {values}\nnodes:\n  root: {{op: pow, in: [a, b]}}\n").run()
    y = np.atleast_1d(r.value("root"))
    assert math.isnan(y[0])
    assert r.warnings, "a NaN must be reported"
    assert "NaN" in r.warnings[0]
    assert "'root'" in r.warnings[0]


@pytest.mark.parametrize("x", ["-3", "[-3, -1, 2]"])
def test_square_of_negative_input_in_expression_form_has_no_nan(x):
    # the exponent is a constant: it takes no gradient, so log(x) of a negative x is never computed
    r = cgcalc.loads(f"inputs:\n  x: {x}\nnodes:\n  y: x ** 2\n  z: x ** 3\noutputs: [y]\n").run()
    xs = np.atleast_1d(np.array(json.loads(x), dtype=float))
    np.testing.assert_array_equal(np.atleast_1d(r.value("y")), xs**2)
    np.testing.assert_array_equal(np.atleast_1d(r.grad("x")), 2 * xs)
    np.testing.assert_array_equal(np.atleast_1d(r.value("z")), xs**3)
    assert r.warnings == ()
    r3 = cgcalc.loads(f"inputs:\n  x: {x}\nnodes:\n  z: x ** 3\n").run()
    np.testing.assert_array_equal(np.atleast_1d(r3.grad("x")), 3 * xs**2)
    assert r3.warnings == ()


@pytest.mark.parametrize("a, b, y, da, db", [
    (1.0, 0.0, math.inf, math.inf, -math.inf),
    (-1.0, 0.0, -math.inf, math.inf, math.inf),
    (1.0, -0.0, -math.inf, -math.inf, -math.inf),
])
def test_division_by_zero_on_floats_gives_inf_without_exceptions(a, b, y, da, db):
    layer = make("div", k=FLOAT)
    assert layer.forward(a, b) == y
    assert layer.backward(1.0) == (da, db)


def test_zero_over_zero_on_floats_is_nan():
    layer = make("div", k=FLOAT)
    assert math.isnan(layer.forward(0.0, 0.0))
    da, db = layer.backward(1.0)
    assert da == math.inf
    assert math.isnan(db)


def test_division_by_zero_through_a_graph_is_a_warning_naming_the_node():
    r = cgcalc.loads("inputs:\n  a: 1\n  b: 0\nnodes:\n  q: a / b\n").run()
    assert r.value("q") == math.inf
    assert r.grad("a") == math.inf
    assert r.grad("b") == -math.inf
    assert r.warnings and "'q'" in r.warnings[0]


@pytest.mark.parametrize("op, xs, check", [
    ("exp", [1000.0], lambda y: y == math.inf),
    ("log", [0.0], lambda y: y == -math.inf),
    ("log", [-1.0], math.isnan),
    ("pow", [10.0, 400.0], lambda y: y == math.inf),
    ("pow", [-10.0, 401.0], lambda y: y == -math.inf),
    ("pow", [0.0, -1.0], lambda y: y == math.inf),
    ("pow", [-2.0, 0.5], math.isnan),
])
def test_float_kernel_returns_ieee_values_instead_of_raising(op, xs, check):
    layer = make(op, k=FLOAT)
    y = layer.forward(*xs)
    assert type(y) is float
    assert check(y)
    layer.backward(1.0)  # must not raise either


def test_relu_gradient_is_zero_for_negative_inputs():
    layer = make("relu")
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_array_equal(layer.forward(x), [0.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(layer.backward(np.array([1.0, 2.0, 3.0, 4.0]))[0], [0.0, 0.0, 3.0, 4.0])


# --- sum_to ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gshape, shape, expected", [
    ((2, 3, 4), (3, 4), lambda g: g.sum(axis=0)),
    ((2, 3, 4), (4,), lambda g: g.sum(axis=(0, 1))),
    ((2, 3, 4), (3, 1), lambda g: g.sum(axis=(0, 2))[:, None]),
    ((2, 3, 4), (1, 3, 1), lambda g: g.sum(axis=(0, 2))[None, :, None]),
    ((2, 3, 4), (2, 1, 4), lambda g: g.sum(axis=1)[:, None, :]),
    ((2, 3), (), lambda g: g.sum()),
    ((2, 3), (1, 1), lambda g: np.array([[g.sum()]])),
    ((2, 3), (2, 3), lambda g: g),
    ((5, 1), (1,), lambda g: g.sum(axis=0)),
])
def test_sum_to_on_leading_and_size_one_axes(gshape, shape, expected):
    g = np.arange(1.0, 1.0 + math.prod(gshape)).reshape(gshape)
    out = sum_to(g, shape)
    assert np.shape(out) == shape
    np.testing.assert_array_equal(out, expected(g))


@settings(max_examples=60, deadline=None)
@given(shapes=broadcastable_shapes(shape=(3, 2, 4), min_dims=0, max_dims=3).flatmap(
    lambda s: st.tuples(st.just(s), mutually_broadcastable_shapes(num_shapes=1, base_shape=s, max_dims=4)
                        .map(lambda b: b.result_shape))), seed=SEEDS)
def test_sum_to_is_the_adjoint_of_broadcasting(shapes, seed):
    # <sum_to(g, S), v> == <g, broadcast_to(v, G)> for every v of shape S
    small, big = shapes
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(big)
    v = rng.standard_normal(small)
    out = sum_to(g, small)
    assert np.shape(out) == small
    assert float(np.sum(out * v)) == pytest.approx(float(np.sum(g * np.broadcast_to(v, big))), rel=1e-12, abs=1e-12)
