"""Every layer in LAYERS: backward against central differences, broadcasting, the float and array math, purity.

Layers are driven as the runtime drives them (`Node` below): the op's `layout` for the input shapes, a layer
made with the layout's attributes, the inputs viewed as the layout says, each gradient summed back to its
input's shape. The reference for each gradient is numerical: d/dx of sum(dout * f(x)) by central differences,
with a random upstream gradient `dout`, so nothing here is derived from the code under test.
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
from cgcalc.core import kernels
from cgcalc.core.base import sum_to
from cgcalc.core.kernels import exact_arrays
from cgcalc.core.registry import LAYERS

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
    # issue 13's elementwise ops without attributes (and leaky_relu with its default alpha); ties of maximum and
    # minimum, clip, where and the kinks are tested in test_math_ops.py
    "sin": [(-4.0, 4.0, False)],
    "cos": [(-4.0, 4.0, False)],
    "sqrt": [(0.2, 3.0, False)],
    "abs": [AWAY],
    "square": [FULL],
    "leaky_relu": [(0.1, 2.0, True)],
    "maximum": [FULL, FULL],
    "minimum": [FULL, FULL],
}
BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]
UNARY = ["neg", "exp", "log", "relu", "sigmoid", "tanh", "sin", "cos", "sqrt", "abs", "square", "leaky_relu"]
ARRAY_OPS = ["matmul", "affine", "sum", "mean", "softmax_with_loss"]
# issue 13's other ops (tests in test_math_ops.py): inputs each
MORE_OPS = {
    "clip": 1,
    "where": 3,
    "max": 1,
    "min": 1,
    "logsumexp": 1,
    "argmax": 1,
    "cross_entropy_error": 2,
    "mean_squared_error": 2,
    "accuracy": 2,
}
ISSUE_13_ELEMENTWISE = ["sin", "cos", "sqrt", "abs", "square", "leaky_relu", "maximum", "minimum"]
MODES = ["float", "numpy", "exact"]  # Python floats; numpy arrays; numpy arrays inside exact_arrays()

SEEDS = st.integers(0, 2**32 - 1)
SETTINGS = settings(max_examples=25, deadline=None)


# the ops derivative graphs are made of (issue 12), besides the spec's sixteen
DERIVATIVE_OPS = [
    "softmax",
    "log_softmax",
    "one_hot",
    "reshape",
    "transpose",
    "sum_to",
    "broadcast_to",
    "identity",
    "step",
    "im2col",  # and those of chapters 6 and 7 (issue 13; tests/test_conv_layers.py)
    "col2im",
    "max_mask",
    "sign",  # abs's and maximum's derivatives
    "getitem_grad",  # getitem's (tests/test_index_ops.py)
]
# issue 13: the book's chapters 6 and 7 (tests/test_conv_layers.py)
BOOK_OPS = ["batch_norm", "dropout", "conv2d", "max_pool", "avg_pool"]
# issue 13: indexing and joining (tests/test_index_ops.py); concat and stack take any number of inputs
INDEX_OPS = ["getitem", "concat", "stack"]
ARITY = {"affine": 3, "matmul": 2, "softmax_with_loss": 2, "batch_norm": 3, "conv2d": 3}


def test_registry_has_the_ops_of_the_spec_of_issue_13_and_the_derivative_ops():
    assert set(LAYERS) == set(BINARY + UNARY + ARRAY_OPS + list(MORE_OPS) + DERIVATIVE_OPS + BOOK_OPS + INDEX_OPS)
    n_13 = len(ISSUE_13_ELEMENTWISE) + len(MORE_OPS) + len(DERIVATIVE_OPS) + len(BOOK_OPS) + len(INDEX_OPS)
    assert len(LAYERS) == 16 + n_13
    for op, cls in LAYERS.items():
        assert callable(getattr(cls, "backward_ops", None)), f"{op} states no backward as ops"
        assert cls.forward_rule and cls.backward_rule, f"{op} has no rule for `cgcalc ops`"
    for op, cls in LAYERS.items():
        if op in DERIVATIVE_OPS:
            continue
        assert cls.op == op
        assert cls.arity == (len(DOMAINS[op]) if op in DOMAINS else {**ARITY, **MORE_OPS}.get(op, 1))
        assert cls.variadic == (op in ("concat", "stack"))


# --- helpers -------------------------------------------------------------------------------------


def view(x, shape):
    """x as `shape`, as the runtime's _view does it: a Python float stays a float (it broadcasts)."""
    if type(x) is float or np.shape(x) == shape:
        return x
    return np.reshape(x, shape)


class Node:
    """One node run forward as the runtime runs it; backward(dout) gives one gradient per input, of its shape."""

    def __init__(self, op: str, xs, attrs=None) -> None:
        cls = LAYERS[op]
        self.xs = xs
        self.lay = cls.layout([np.shape(x) for x in xs], cls.check_attrs(dict(attrs or {})))
        self.layer = cls(**self.lay.attrs)
        y = self.layer.forward(*[view(x, v) for x, v in zip(xs, self.lay.views)])
        self.y = view(y, self.lay.out)

    def backward(self, dout):
        ds = self.layer.backward(view(dout, self.lay.out_view))
        assert len(ds) == len(self.xs), "one gradient per input"
        out = []
        for d, x, v in zip(ds, self.xs, self.lay.views):
            if d is not None and type(d) is not float:
                d = d.sum() if type(x) is float else sum_to(d, v).reshape(np.shape(x))
            out.append(d)
        return out


def draw_values(rng, shape, domain, as_float=False):
    lo, hi, signed = domain
    x = rng.uniform(lo, hi, size=shape)
    if signed:
        x = x * rng.choice([-1.0, 1.0], size=shape)
    if as_float and shape == ():
        return float(x)
    return np.asarray(x, dtype=np.float64)


def values_for(op, shapes, rng):
    """Inputs of the given shapes inside the op's domain (softmax: scores, and one-hot rows or class indices)."""
    if op == "softmax_with_loss":
        sx, st_ = shapes
        labels = rng.integers(0, sx[-1], size=sx[:-1])
        t = np.eye(sx[-1])[labels] if st_ == sx else np.asarray(labels, dtype=np.float64)
        return [rng.uniform(-3, 3, size=sx), float(t) if t.shape == () else t]
    return [draw_values(rng, s, d) for s, d in zip(shapes, DOMAINS.get(op, [FULL] * len(shapes)))]


def objective(op, xs, dout, attrs=None) -> float:
    """sum(dout * f(xs)), on a fresh layer."""
    return float(np.sum(dout * Node(op, xs, attrs).y))


def numeric_grad(op, xs, i, dout, attrs=None):
    """Central differences of the objective with respect to xs[i]."""
    x = xs[i]
    if type(x) is float:
        hi, lo = list(xs), list(xs)
        hi[i], lo[i] = x + EPS, x - EPS
        return (objective(op, hi, dout, attrs) - objective(op, lo, dout, attrs)) / (2 * EPS)
    g = np.zeros(np.shape(x))
    for idx in np.ndindex(g.shape):
        hi = [np.array(a, dtype=np.float64, copy=True) if j == i else a for j, a in enumerate(xs)]
        lo = [np.array(a, dtype=np.float64, copy=True) if j == i else a for j, a in enumerate(xs)]
        hi[i][idx] += EPS
        lo[i][idx] -= EPS
        g[idx] = (objective(op, hi, dout, attrs) - objective(op, lo, dout, attrs)) / (2 * EPS)
    return g


def check_gradients(op, xs, rng, attrs=None, no_grad=()):
    """Backward of a layer against central differences, for every input; returns the forward value."""
    node = Node(op, xs, attrs)
    dout = rng.standard_normal(np.shape(node.y))
    if type(node.y) is float:
        dout = float(dout)
    grads = node.backward(dout)
    for i, (g, x) in enumerate(zip(grads, xs)):
        if i in no_grad:
            assert g is None
            continue
        assert g is not None
        assert np.shape(g) == np.shape(x), f"gradient of input {i} has shape {np.shape(g)}, input {np.shape(x)}"
        np.testing.assert_allclose(
            g, numeric_grad(op, xs, i, dout, attrs), rtol=RTOL, atol=ATOL, err_msg=f"{op}: gradient of input {i}"
        )
    return node.y


# --- elementwise ops, broadcasting ----------------------------------------------------------------


pair_shapes = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4).map(
    lambda s: s.input_shapes
)


@pytest.mark.parametrize("op", BINARY)
@SETTINGS
@given(shapes=pair_shapes, seed=SEEDS, as_float=st.booleans())
@example(shapes=((3, 1), (4,)), seed=1, as_float=False)
@example(shapes=((4,), (3, 1)), seed=2, as_float=False)
@example(shapes=((), (2, 3)), seed=3, as_float=True)
@example(shapes=((2, 3), ()), seed=4, as_float=True)
@example(shapes=((2, 1, 3), (4, 1)), seed=5, as_float=False)
@example(shapes=((1,), (2, 3)), seed=6, as_float=False)
def test_binary_gradients_with_broadcasting(op, shapes, seed, as_float):
    rng = np.random.default_rng(seed)
    xs = [draw_values(rng, s, d, as_float) for s, d in zip(shapes, DOMAINS[op])]
    y = check_gradients(op, xs, rng)
    assert np.shape(y) == np.broadcast_shapes(*shapes)
    a, b = (np.asarray(x) for x in xs)
    expected = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide,
        "pow": np.power,
        "maximum": np.maximum,
        "minimum": np.minimum,
    }[op](a, b)
    np.testing.assert_allclose(y, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("op", UNARY)
@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=4), seed=SEEDS, as_float=st.booleans())
def test_unary_gradients(op, shape, seed, as_float):
    rng = np.random.default_rng(seed)
    x = draw_values(rng, shape, DOMAINS[op][0], as_float)
    y = check_gradients(op, [x], rng)
    assert np.shape(y) == shape
    expected = {
        "neg": np.negative,
        "exp": np.exp,
        "log": np.log,
        "relu": lambda v: np.maximum(v, 0.0),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
        "sin": np.sin,
        "cos": np.cos,
        "sqrt": np.sqrt,
        "abs": np.abs,
        "square": np.square,
        "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
    }[op](np.asarray(x))
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=0)


# --- the float path ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", BINARY + UNARY)
@SETTINGS
@given(seed=SEEDS)
def test_float_path_gradients(op, seed):
    rng = np.random.default_rng(seed)
    xs = [draw_values(rng, (), d, as_float=True) for d in DOMAINS[op]]
    layer = LAYERS[op]()  # elementwise layers take no attributes
    y = layer.forward(*xs)
    assert type(y) is float
    dout = float(rng.standard_normal())
    grads = layer.backward(dout)
    assert len(grads) == len(xs)
    for i, g in enumerate(grads):
        assert type(g) is float
        assert g == pytest.approx(numeric_grad(op, xs, i, dout), rel=RTOL, abs=ATOL)


def run_elementwise(op, xs, dout):
    node = Node(op, xs)
    return node.y, node.backward(dout)


@pytest.mark.parametrize("op", BINARY + UNARY)
@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
def test_float_numpy_and_exact_arrays_agree(op, seed):
    rng = np.random.default_rng(seed)
    n = 200
    xs = [draw_values(rng, (n,), d) for d in DOMAINS[op]]
    dout = rng.standard_normal(n)

    y_np, g_np = run_elementwise(op, xs, dout)
    with exact_arrays():
        y_ex, g_ex = run_elementwise(op, xs, dout)
    y_fl = np.empty(n)
    g_fl = np.empty((len(xs), n))
    for j in range(n):
        yj, gj = run_elementwise(op, [float(x[j]) for x in xs], float(dout[j]))
        assert type(yj) is float
        y_fl[j] = yj
        g_fl[:, j] = gj

    # exact arrays apply the C library element by element: bit for bit what the float path gives
    assert np.asarray(y_ex, dtype=np.float64).tobytes() == y_fl.tobytes()
    for i in range(len(xs)):
        assert np.asarray(g_ex[i], dtype=np.float64).tobytes() == g_fl[i].tobytes()

    # numpy's SIMD functions may differ in the last bit; a gradient such as dout * (1 - y) * y turns
    # that one ulp of y into an error relative to dout, not to the (smaller) gradient
    np.testing.assert_allclose(y_np, y_fl, rtol=1e-15, atol=0)
    for i in range(len(xs)):
        err = np.abs(g_np[i] - g_fl[i])
        assert np.all(err <= 1e-15 * (np.abs(g_fl[i]) + np.abs(dout))), (op, i, err.max())


# C99 / IEEE 754 values, written by hand: (function, arguments, result)
INF, NAN = math.inf, math.nan
KERNEL_SPECIALS = [
    ("exp", (1000.0,), INF),
    ("exp", (-1000.0,), 0.0),
    ("exp", (-INF,), 0.0),
    ("log", (0.0,), -INF),
    ("log", (-0.0,), -INF),
    ("log", (-1.0,), NAN),
    ("log", (INF,), INF),
    ("tanh", (1000.0,), 1.0),
    ("tanh", (-INF,), -1.0),
    ("sigmoid", (1000.0,), 1.0),
    ("sigmoid", (-1000.0,), 0.0),
    ("sigmoid", (0.0,), 0.5),
    ("sigmoid", (-720.0,), math.exp(-720.0)),  # e / (1 + e) is e here; 1 / (1 + exp(720)) would be 0
    ("pow", (10.0, 400.0), INF),
    ("pow", (-10.0, 401.0), -INF),
    ("pow", (-10.0, 400.0), INF),
    ("pow", (0.0, -1.0), INF),
    ("pow", (-0.0, -1.0), -INF),
    ("pow", (-0.0, -2.0), INF),
    ("pow", (-2.0, 0.5), NAN),
    ("pow", (0.0, 0.0), 1.0),
    ("pow", (1.0, NAN), 1.0),
    ("pow", (NAN, 0.0), 1.0),
    ("pow", (-1.0, INF), 1.0),
    ("pow", (0.5, INF), 0.0),
    ("pow", (-INF, -1.0), -0.0),
    ("div", (1.0, 0.0), INF),
    ("div", (-1.0, 0.0), -INF),
    ("div", (1.0, -0.0), -INF),
    ("div", (0.0, 0.0), NAN),
    ("relu", (-0.5,), 0.0),
    ("relu", (NAN,), NAN),
    ("sin", (INF,), NAN),
    ("sin", (-0.0,), -0.0),
    ("cos", (-INF,), NAN),
    ("sqrt", (-1.0,), NAN),
    ("sqrt", (-0.0,), -0.0),
    ("sqrt", (INF,), INF),
    ("sqrt", (NAN,), NAN),
    # maximum and minimum: NaN wins, and a zero is +0.0 whichever order the zeros come in
    ("maximum", (-0.0, 0.0), 0.0),
    ("maximum", (0.0, -0.0), 0.0),
    ("maximum", (-0.0, -0.0), 0.0),
    ("maximum", (NAN, 1.0), NAN),
    ("maximum", (1.0, NAN), NAN),
    ("maximum", (-INF, -1.0), -1.0),
    ("minimum", (-0.0, 0.0), 0.0),
    ("minimum", (0.0, -0.0), 0.0),
    ("minimum", (NAN, 1.0), NAN),
    ("minimum", (1.0, NAN), NAN),
    ("minimum", (INF, 1.0), 1.0),
    ("sign", (-0.0,), 0.0),
    ("sign", (0.0,), 0.0),
    ("sign", (-3.0,), -1.0),
    ("sign", (NAN,), NAN),
]


def same(a, b) -> bool:
    """Equal, NaN equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("mode", MODES)
def test_kernels_give_ieee_values_on_floats_and_arrays(mode):
    with warnings.catch_warnings(), np.errstate(all="ignore"), exact_arrays(mode == "exact"):
        warnings.simplefilter("error")
        for name, args, expected in KERNEL_SPECIALS:
            f = getattr(kernels, name)
            got = f(*args) if mode == "float" else f(*[np.array([a]) for a in args])
            if mode == "float":
                assert type(got) is float, name
                # the layer of the same name neither raises nor leaves the floats, forward or backward
                layer = LAYERS[name]()
                assert same(layer.forward(*args), expected)
                assert all(type(g) is float for g in layer.backward(1.0)), name
            else:
                assert got.shape == (1,), name
                got = float(got[0])
            assert same(got, expected), (mode, name, args, got)
            assert math.copysign(1, got) == math.copysign(1, expected) or math.isnan(got), (name, args, got)


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
@example(shapes=((2, 1, 2, 3), (3,)), seed=8)
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
    sw = draw(st.sampled_from([(k, m), (k,)]))
    out = sx[:-1] + sw[1:]
    # usually b is (m,) as in the book, but any shape that broadcasts with the product will do,
    # including one that enlarges it: (1,) @ (1, 1) + (2,)
    sb = draw(broadcastable_shapes(out, min_dims=0, max_dims=len(out) + 1))
    return sx, sw, sb


@SETTINGS
@given(shapes=affine_operands(), seed=SEEDS)
@example(shapes=((2, 3), (3, 4), (4,)), seed=1)
@example(shapes=((3,), (3, 4), (4,)), seed=2)
@example(shapes=((2, 3), (3, 4), (1, 4)), seed=3)
@example(shapes=((2, 3), (3, 4), (2, 4)), seed=4)
@example(shapes=((2, 3), (3, 4), ()), seed=5)
@example(shapes=((1,), (1, 1), (2,)), seed=6)
@example(shapes=((1, 2), (2, 1), (3,)), seed=7)
@example(shapes=((2, 3), (3,), (2,)), seed=8)
@example(shapes=((3,), (3,), (2,)), seed=9)
@example(shapes=((2, 3), (3,), (4, 1)), seed=10)
def test_affine_gradients(shapes, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (draw_values(rng, s, FULL) for s in shapes)
    y = check_gradients("affine", [x, W, b], rng)
    expected = x @ W + b
    assert np.shape(y) == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-14)


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
@settings(max_examples=30, deadline=None)
@given(case=reductions(), seed=SEEDS, as_float=st.booleans())
@example(case=((2, 3, 4), {"axis": 1}), seed=1, as_float=False)
@example(case=((2, 3, 4), {"axis": -1, "keepdims": True}), seed=2, as_float=False)
@example(case=((2, 3, 4), {"axis": [0, -1]}), seed=3, as_float=False)
@example(case=((2, 3, 4), {"axis": [2, 0], "keepdims": True}), seed=4, as_float=False)
@example(case=((2, 3), {}), seed=5, as_float=False)
@example(case=((2, 3), {"keepdims": True}), seed=6, as_float=False)
@example(case=((), {}), seed=7, as_float=True)
def test_reduction_gradients(op, case, seed, as_float):
    shape, attrs = case
    rng = np.random.default_rng(seed)
    x = draw_values(rng, shape, FULL, as_float)
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


@settings(max_examples=25, deadline=None)
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
    if t.shape == ():
        t = float(t)  # as the runtime hands a scalar input over
    y = check_gradients("softmax_with_loss", [x, t], rng, no_grad=(1,) if target == "indices" else ())
    assert np.shape(y) == ()
    assert float(y) == pytest.approx(reference_loss(x, onehot), rel=1e-13, abs=1e-15)


def test_softmax_with_loss_of_the_book():
    # uniform scores over 3 classes: the loss is log 3 whatever the label; dx = (1/3 - t) / N
    node = Node("softmax_with_loss", [np.zeros((2, 3)), np.array([0.0, 2.0])])
    assert float(node.y) == pytest.approx(math.log(3), rel=1e-15)
    dx, dt = node.backward(1.0)
    assert dt is None  # class indices take no gradient
    np.testing.assert_allclose(dx, [[(1 / 3 - 1) / 2, 1 / 6, 1 / 6], [1 / 6, 1 / 6, (1 / 3 - 1) / 2]], rtol=1e-14)


@pytest.mark.parametrize(
    "text",
    [
        "inputs:\n  x: [1, 2, 3]\n  t: {value: 2, grad: false}\nnodes:\n  y: softmax_with_loss(x, t)\n",
        "inputs:\n  x: [1, 2, 3]\nnodes:\n  y: softmax_with_loss(x, 2)\n",
    ],
)
def test_softmax_with_loss_of_one_sample_and_a_class_index(text):
    r = cgcalc.loads(text).run()
    logsum = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert r.value("y") == pytest.approx(logsum - 3, rel=1e-12)
    p = [math.exp(v - logsum) for v in (1, 2, 3)]
    np.testing.assert_allclose(r.grad("x"), [p[0], p[1], p[2] - 1], rtol=1e-12)


# --- a layer made for one row runs a batch of rows ---------------------------------------------------


ROW_CASES = [
    ("add", [(3, 1), (4,)], {}),
    ("div", [(2, 3), ()], {}),
    ("pow", [(4,), (3, 1)], {}),
    ("tanh", [(2, 3)], {}),
    ("matmul", [(3,), (3,)], {}),
    ("matmul", [(3,), (2, 3, 4)], {}),
    ("matmul", [(2, 3), (3,)], {}),
    ("affine", [(3,), (3, 2), (2,)], {}),
    ("affine", [(1, 2), (2, 1), (3,)], {}),
    ("affine", [(2, 3), (3,), (2,)], {}),
    ("sum", [(2, 3, 4)], {"axis": [0, -1]}),
    ("sum", [(2, 3)], {}),
    ("mean", [(2, 3)], {"axis": 0, "keepdims": True}),
    ("softmax_with_loss", [(3,), ()], {}),
    ("softmax_with_loss", [(2, 3), (2, 3)], {}),
    ("softmax_with_loss", [(4, 3), (4,)], {}),
]


@pytest.mark.parametrize("op, shapes, attrs", ROW_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_a_layer_runs_a_batch_row_by_row(op, shapes, attrs):
    # the layout's views, axes and sample axis count from the end: the same layer, handed each input with a
    # row axis in front, gives each row what it gives that row alone (what run_batch relies on)
    rows = 3
    rng = np.random.default_rng(21)
    cls = LAYERS[op]
    lay = cls.layout(shapes, cls.check_attrs(attrs))
    batch = [
        np.asarray(x).reshape((rows,) + v)
        for x, v in zip(values_for(op, [(rows,) + s for s in shapes], rng), lay.views)
    ]
    layer = cls(**lay.attrs)
    y = layer.forward(*batch)
    assert np.shape(y) == (rows,) + lay.out_view
    dout = rng.standard_normal(np.shape(y))
    ds = layer.backward(dout)
    for r in range(rows):
        one = cls(**lay.attrs)
        np.testing.assert_allclose(y[r], one.forward(*[x[r] for x in batch]), rtol=1e-13, atol=1e-15)
        for d, d1, v in zip(ds, one.backward(dout[r]), lay.views):
            if d1 is None:
                assert d is None
                continue
            np.testing.assert_allclose(sum_to(d, (rows,) + v)[r], sum_to(np.asarray(d1), v), rtol=1e-13, atol=1e-15)


# --- backward never writes into what it was handed ------------------------------------------------


def purity_cases():
    """One representative call per op: (op, input shapes, attrs), broadcasting where the op has it."""
    # relu's inputs have both signs: the book's Relu.backward does `dout[mask] = 0` on its caller's array
    return (
        [(op, [(3, 1), (4,)], {}) for op in BINARY]
        + [(op, [(4, 5)], {}) for op in UNARY]
        + [
            ("matmul", [(2, 3), (3, 4)], {}),
            ("matmul", [(3,), (2, 3, 4)], {}),
            ("affine", [(2, 3), (3, 4), (4,)], {}),
            ("affine", [(1, 2), (2, 1), (3,)], {}),
            ("sum", [(2, 3)], {"axis": 0}),
            ("sum", [(2, 3)], {"axis": -1, "keepdims": True}),
            ("mean", [(2, 3, 2)], {"axis": [0, 2]}),
            ("mean", [(2, 3)], {}),
            ("softmax_with_loss", [(2, 3), (2, 3)], {}),
            ("softmax_with_loss", [(2, 3), (2,)], {}),
        ]
    )


@pytest.mark.parametrize("op, shapes, attrs", purity_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_forward_and_backward_never_modify_their_arguments(op, shapes, attrs):
    rng = np.random.default_rng(12)
    xs = values_for(op, shapes, rng)
    saved = [x.copy() for x in xs]
    node = Node(op, xs, attrs)
    dout = rng.standard_normal(np.shape(node.y))
    if op == "relu":
        assert (xs[0] < 0).any()
        dout[xs[0] < 0] = 5.0  # where x is negative: the book's trap would zero these
    saved_dout = dout.copy()
    first = node.backward(dout)
    for x, before in zip(xs, saved):
        assert np.array_equal(x, before)
    assert np.array_equal(dout, saved_dout)
    # the runtime calls backward once per selected output: again, it gives the same gradients
    for g, again in zip(first, node.backward(dout)):
        assert g is None and again is None or np.asarray(g).tobytes() == np.asarray(again).tobytes()

    # the strict form: read-only arguments, so any write raises instead of passing unnoticed
    frozen = [x.copy() for x in xs]
    for x in frozen:
        x.flags.writeable = False
    dout.flags.writeable = False
    Node(op, frozen, attrs).backward(dout)


# --- gradients the runtime does not give ------------------------------------------------------------


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("side", [0, 1])
@pytest.mark.parametrize("kind", ["grad_false", "constant"])
def test_no_gradient_for_grad_false_inputs_and_constants(op, side, kind):
    # the layer computes every input's gradient; the graph gives none to a grad: false input (and a constant
    # has no name to ask by), while the other input's is the true one
    xs = values_for(op, [(2, 3), (2, 3)], np.random.default_rng(7))
    other = "ab"[1 - side]
    if kind == "constant":
        xs[side] = np.full((2, 3), 1.5)  # inside every op's domain
        inputs, args = f"  {other}: 0\n", ["1.5", other] if side == 0 else [other, "1.5"]
    else:
        inputs, args = f"  {'ab'[side]}: {{value: 0, grad: false}}\n  {other}: 0\n", ["a", "b"]
    g = cgcalc.loads(f"inputs:\n{inputs}nodes:\n  y: {{op: {op}, in: [{args[0]}, {args[1]}]}}\n")
    r = g.run({n: x for n, x in zip("ab", xs) if n in args})
    if kind == "grad_false":
        assert r.grad("ab"[side]) is None
        assert next(row for row in r.to_dict()["nodes"] if row["name"] == "ab"[side])["grad"] is None
    np.testing.assert_allclose(r.grad(other), numeric_grad(op, xs, 1 - side, np.ones((2, 3))), rtol=RTOL, atol=ATOL)
    assert r.warnings == ()


# --- specific cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, y, dx", [("1000", 1.0, 0.0), ("-1000", 0.0, 0.0), ("[1000, -1000, 0]", [1.0, 0.0, 0.5], [0.0, 0.0, 0.25])]
)
def test_sigmoid_saturates_without_overflow_through_a_graph(x, y, dx):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = cgcalc.loads(f"inputs:\n  x: {x}\nnodes:\n  y: sigmoid(x)\n").run()
    assert np.asarray(r.value("y")).tolist() == y
    assert np.asarray(r.grad("x")).tolist() == dx
    assert r.warnings == ()


@pytest.mark.parametrize("mode", MODES)
def test_sigmoid_layer_at_1000_raises_no_runtime_warning(mode):
    # no np.errstate here: the layer must not overflow, not merely have its warning silenced
    with warnings.catch_warnings(), exact_arrays(mode == "exact"):
        warnings.simplefilter("error")
        for x, y in [(1000.0, 1.0), (-1000.0, 0.0)]:
            layer = LAYERS["sigmoid"]()
            assert layer.forward(x if mode == "float" else np.array([x])) == y
            assert layer.backward(1.0 if mode == "float" else np.ones(1))[0] == 0.0


def test_pow_gradient_for_base_and_exponent():
    # d/da a**b = b a**(b-1) = 3 * 4 = 12;  d/db a**b = a**b ln a = 8 ln 2
    r = cgcalc.loads("inputs:\n  a: 2\n  b: 3\nnodes:\n  y: {op: pow, in: [a, b]}\n").run()
    assert r.value("y") == 8.0
    assert r.grad("a") == pytest.approx(12.0, rel=1e-15)
    assert r.grad("b") == pytest.approx(8 * math.log(2), rel=1e-15)


# (a, b) -> a ** b, d/da, d/db. At a = 0 the exponent's derivative a**b ln a has the limit 0 for b > 0
# (0 ** b is constant 0 there); for b = 0 the base's derivative b a**(b-1) is 0 (a ** 0 is constant 1).
# ln of a negative base: no real derivative in the exponent (the last)
POW_EDGES = [
    (0.0, 2.0, 0.0, 0.0, 0.0),
    (0.0, 3.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0, 0.0),
    (2.0, 0.0, 1.0, 0.0, math.log(2.0)),
    (-2.0, 2.0, 4.0, -4.0, NAN),
]


@pytest.mark.parametrize("mode", MODES)
def test_pow_at_zero_base_and_zero_exponent(mode):
    a, b, y, da, db = (np.array(col) for col in zip(*POW_EDGES))
    # as the runtime calls it: non-finite values are its to report
    with np.errstate(all="ignore"), exact_arrays(mode == "exact"):
        if mode == "float":
            rows = []
            for ai, bi in zip(a.tolist(), b.tolist()):
                layer = LAYERS["pow"]()
                rows.append((layer.forward(ai, bi), *layer.backward(1.0)))
            assert all(type(v) is float for row in rows for v in row)
            got = [np.array(col) for col in zip(*rows)]
        else:
            layer = LAYERS["pow"]()
            got = [layer.forward(a, b), *layer.backward(np.ones(len(a)))]
    for g, want in zip(got, (y, da, db)):
        np.testing.assert_array_equal(g, want)  # NaN where NaN is wanted, equal elsewhere


@pytest.mark.parametrize("values", ["a: -2\n  b: 0.5", "a: [-2, 4]\n  b: 0.5"])
def test_pow_of_negative_base_and_fractional_exponent_is_nan_and_named(values):
    r = cgcalc.loads(f"inputs:\n  {values}\nnodes:\n  root: {{op: pow, in: [a, b]}}\n").run()
    y = np.atleast_1d(r.value("root"))
    assert math.isnan(y[0])
    assert r.warnings, "a NaN must be reported"
    assert "NaN" in r.warnings[0]
    assert "'root'" in r.warnings[0]


@pytest.mark.parametrize("x", ["-3", "[-3, -1, 2]"])
def test_square_of_negative_input_has_no_nan(x):
    # the exponent is a constant or a grad: false input: pow's backward computes out * log(x), NaN for a
    # negative x, but nobody takes that gradient, and nothing is reported
    xs = np.atleast_1d(np.array(json.loads(x), dtype=float))
    r = cgcalc.loads(f"inputs:\n  x: {x}\nnodes:\n  y: x ** 2\n  z: x ** 3\noutputs: [y]\n").run()
    np.testing.assert_array_equal(np.atleast_1d(r.value("y")), xs**2)
    np.testing.assert_array_equal(np.atleast_1d(r.grad("x")), 2 * xs)
    np.testing.assert_array_equal(np.atleast_1d(r.value("z")), xs**3)
    assert r.warnings == ()
    r3 = cgcalc.loads(f"inputs:\n  x: {x}\nnodes:\n  z: x ** 3\n").run()
    np.testing.assert_array_equal(np.atleast_1d(r3.grad("x")), 3 * xs**2)
    assert r3.warnings == ()
    rk = cgcalc.loads(
        f"inputs:\n  x: {x}\n  k: {{value: 2, grad: false}}\nnodes:\n  y: {{op: pow, in: [x, k]}}\n"
    ).run()
    np.testing.assert_array_equal(np.atleast_1d(rk.grad("x")), 2 * xs)
    assert rk.grad("k") is None
    assert rk.warnings == ()


@pytest.mark.parametrize(
    "a, b, y, da, db",
    [
        (1.0, 0.0, INF, INF, -INF),
        (-1.0, 0.0, -INF, INF, INF),
        (1.0, -0.0, -INF, -INF, -INF),
        (0.0, 0.0, NAN, INF, NAN),
    ],
)
def test_division_by_zero_on_floats_gives_ieee_values_without_exceptions(a, b, y, da, db):
    layer = LAYERS["div"]()
    assert same(layer.forward(a, b), y)
    got_da, got_db = layer.backward(1.0)
    assert same(got_da, da) and same(got_db, db)


def test_division_by_zero_through_a_graph_is_a_warning_naming_the_node():
    r = cgcalc.loads("inputs:\n  a: 1\n  b: 0\nnodes:\n  q: a / b\n").run()
    assert r.value("q") == math.inf
    assert r.grad("a") == math.inf
    assert r.grad("b") == -math.inf
    assert r.warnings and "'q'" in r.warnings[0]


def test_relu_gradient_is_zero_for_negative_inputs():
    layer = LAYERS["relu"]()
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_array_equal(layer.forward(x), [0.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(layer.backward(np.array([1.0, 2.0, 3.0, 4.0]))[0], [0.0, 0.0, 3.0, 4.0])


# --- sum_to ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gshape, shape, expected",
    [
        ((2, 3, 4), (3, 4), lambda g: g.sum(axis=0)),
        ((2, 3, 4), (4,), lambda g: g.sum(axis=(0, 1))),
        ((2, 3, 4), (3, 1), lambda g: g.sum(axis=(0, 2))[:, None]),
        ((2, 3, 4), (1, 3, 1), lambda g: g.sum(axis=(0, 2))[None, :, None]),
        ((2, 3, 4), (2, 1, 4), lambda g: g.sum(axis=1)[:, None, :]),
        ((2, 3), (), lambda g: g.sum()),
        ((2, 3), (1, 1), lambda g: np.array([[g.sum()]])),
        ((2, 3), (2, 3), lambda g: g),
        ((5, 1), (1,), lambda g: g.sum(axis=0)),
    ],
)
def test_sum_to_on_leading_and_size_one_axes(gshape, shape, expected):
    g = np.arange(1.0, 1.0 + math.prod(gshape)).reshape(gshape)
    out = sum_to(g, shape)
    assert np.shape(out) == shape
    np.testing.assert_array_equal(out, expected(g))


@settings(max_examples=30, deadline=None)
@given(
    shapes=broadcastable_shapes(shape=(3, 2, 4), min_dims=0, max_dims=3).flatmap(
        lambda s: st.tuples(
            st.just(s),
            mutually_broadcastable_shapes(num_shapes=1, base_shape=s, max_dims=4).map(lambda b: b.result_shape),
        )
    ),
    seed=SEEDS,
)
def test_sum_to_is_the_adjoint_of_broadcasting(shapes, seed):
    # <sum_to(g, S), v> == <g, broadcast_to(v, G)> for every v of shape S
    small, big = shapes
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(big)
    v = rng.standard_normal(small)
    out = sum_to(g, small)
    assert np.shape(out) == small
    assert float(np.sum(out * v)) == pytest.approx(float(np.sum(g * np.broadcast_to(v, big))), rel=1e-12, abs=1e-12)
