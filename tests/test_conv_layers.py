"""Chapters 6 and 7: batch_norm, dropout, conv2d, max_pool, avg_pool, and im2col, col2im, max_mask (what their
backward is written with in derivative graphs).

Forward values against references written here from the definitions (a direct nested-loop convolution, window
by window pooling, the batch-norm formula), never against im2col; the book's own numbers; backward against
float64 central differences (test_layers' Node and check_gradients: the runtime's way of driving a layer); the
backward as ops (derive, hessian) against the numeric backward and against central differences of it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import cli, one_error_line, write
from hypothesis import assume, example, given
from hypothesis import strategies as st
from test_layers import SEEDS, SETTINGS, Node, check_gradients

import cgcalc
from cgcalc.core.base import sum_to
from cgcalc.core.conv_layers import col2im, im2col
from cgcalc.core.registry import LAYERS
from cgcalc.errors import GraphError

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
CONV_NET = ROOT / "graphs" / "simple_conv_net.yaml"

BOOK_X = [[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]]
BOOK_W = [[2, 0, 1], [0, 1, 2], [1, 0, 2]]
BOOK_POOL = [[1, 2, 1, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 4, 0, 1]]


# --- references, from the definitions ----------------------------------------------------------------


def padded(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def ref_conv(x, W, b, stride=1, pad=0):
    """out[n, f, i, j] = sum over c, u, v of xp[n, c, i*s + u, j*s + v] * W[f, c, u, v] + b[f], one by one."""
    n_, c_, h, w = x.shape
    fn, _, fh, fw = W.shape
    xp = padded(x, pad)
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    out = np.zeros((n_, fn, oh, ow))
    for n in range(n_):
        for f in range(fn):
            for i in range(oh):
                for j in range(ow):
                    acc = b[f]
                    for c in range(c_):
                        for u in range(fh):
                            for v in range(fw):
                                acc += xp[n, c, i * stride + u, j * stride + v] * W[f, c, u, v]
                    out[n, f, i, j] = acc
    return out


def ref_pool(x, ph, pw, stride, pad, reduce):
    n_, c_, h, w = x.shape
    xp = padded(x, pad)
    oh, ow = (h + 2 * pad - ph) // stride + 1, (w + 2 * pad - pw) // stride + 1
    out = np.zeros((n_, c_, oh, ow))
    for n in range(n_):
        for c in range(c_):
            for i in range(oh):
                for j in range(ow):
                    out[n, c, i, j] = reduce(xp[n, c, i * stride : i * stride + ph, j * stride : j * stride + pw])
    return out


def ref_im2col(x, fh, fw, stride, pad):
    """Row (n, i, j), column (c, u, v): the element of the padded x that the window at (i, j) puts there."""
    n_, c_, h, w = x.shape
    xp = padded(x, pad)
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    rows = []
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                rows.append(
                    [xp[n, c, i * stride + u, j * stride + v] for c in range(c_) for u in range(fh) for v in range(fw)]
                )
    return np.array(rows).reshape(n_ * oh * ow, c_ * fh * fw)


def ref_batch_norm(x, gamma, beta, eps, axes):
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


# --- the book's numbers ----------------------------------------------------------------------------


def conv_graph(x, W, b, **attrs) -> cgcalc.Graph:
    extra = "".join(f", {k}={v}" for k, v in attrs.items())
    return cgcalc.loads(f"inputs:\n  x: {x}\n  W: {W}\n  b: {b}\nnodes:\n  y: conv2d(x, W, b{extra})\n")


def test_the_books_convolution():
    # Figure 7-4 and 7-5 of the book: a 4x4 input and a 3x3 filter, then with a bias of 3
    assert np.asarray(conv_graph([[BOOK_X]], [[BOOK_W]], [0]).run().value("y")).tolist() == [[[[15, 16], [6, 15]]]]
    assert np.asarray(conv_graph([[BOOK_X]], [[BOOK_W]], [3]).run().value("y")).tolist() == [[[[18, 19], [9, 18]]]]


def test_the_books_max_pooling():
    g = cgcalc.loads(f"inputs:\n  x: {[[BOOK_POOL]]}\nnodes:\n  y: max_pool(x, pool_h=2, pool_w=2, stride=2)\n")
    r = g.run()
    assert np.asarray(r.value("y")).tolist() == [[[[2, 3], [4, 2]]]]
    # the gradient goes to each window's maximum
    assert np.asarray(r.grad("x")).tolist() == [[[[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 0, 0]]]]


def test_the_books_im2col_shapes():
    assert im2col(np.random.default_rng(1).random((1, 3, 7, 7)), 5, 5, 1, 0).shape == (9, 75)
    assert im2col(np.random.default_rng(2).random((10, 3, 7, 7)), 5, 5, 1, 0).shape == (90, 75)
    lay = LAYERS["im2col"].layout([(10, 3, 7, 7)], LAYERS["im2col"].check_attrs({"filter_h": 5, "filter_w": 5}))
    assert lay.out == (90, 75)


@pytest.mark.parametrize(
    "h, f, stride, pad, out", [(4, 3, 1, 0, 2), (4, 3, 1, 1, 4), (7, 3, 2, 0, 3), (28, 5, 1, 0, 24), (6, 2, 2, 0, 3)]
)
def test_output_size_is_the_books_formula(h, f, stride, pad, out):
    # OH = (H + 2P - FH) / S + 1
    conv, pool = LAYERS["conv2d"], LAYERS["max_pool"]
    attrs = conv.check_attrs({"stride": stride, "pad": pad})
    assert conv.layout([(1, 2, h, h + 1), (3, 2, f, f + 1), (3,)], attrs).out == (1, 3, out, out)
    attrs = pool.check_attrs({"pool_h": f, "pool_w": f, "stride": stride, "pad": pad})
    assert pool.layout([(1, 2, h, h)], attrs).out == (1, 2, out, out)


# --- forward against the references --------------------------------------------------------------------


@st.composite
def conv_case(draw, pool: bool = False):
    """Shapes of a convolution (or pooling) whose output size is whole: drawn from the output size back."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    fh, fw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    oh, ow = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = (oh - 1) * stride + fh - 2 * pad, (ow - 1) * stride + fw - 2 * pad
    assume(h >= 1 and w >= 1)
    fn = draw(st.integers(1, 3))
    return (n, c, h, w), (fn, c, fh, fw), stride, pad


@SETTINGS
@given(case=conv_case(), seed=SEEDS)
@example(case=((1, 1, 4, 4), (1, 1, 3, 3), 1, 0), seed=0)
@example(case=((2, 2, 5, 5), (3, 2, 3, 3), 2, 1), seed=1)
@example(case=((1, 2, 3, 4), (2, 2, 1, 2), 1, 1), seed=2)
def test_conv2d_forward_and_gradients(case, seed):
    sx, sw, stride, pad = case
    rng = np.random.default_rng(seed)
    x, W, b = rng.uniform(-2, 2, sx), rng.uniform(-2, 2, sw), rng.uniform(-2, 2, sw[:1])
    attrs = {"stride": stride, "pad": pad}
    y = check_gradients("conv2d", [x, W, b], rng, attrs)
    np.testing.assert_allclose(y, ref_conv(x, W, b, stride, pad), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("op", ["max_pool", "avg_pool"])
@SETTINGS
@given(case=conv_case(), seed=SEEDS)
@example(case=((1, 1, 4, 4), (1, 1, 2, 2), 2, 0), seed=0)
@example(case=((2, 2, 3, 3), (1, 2, 2, 2), 1, 0), seed=1)  # overlapping windows
@example(case=((1, 1, 2, 4), (1, 1, 2, 2), 2, 1), seed=2)  # padding: zeros
def test_pooling_forward_and_gradients(op, case, seed):
    sx, (_, _, ph, pw), stride, pad = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, sx)
    attrs = {"pool_h": ph, "pool_w": pw, "stride": stride, "pad": pad}
    y = check_gradients(op, [x], rng, attrs)
    reduce = np.max if op == "max_pool" else np.mean
    np.testing.assert_allclose(y, ref_pool(x, ph, pw, stride, pad, reduce), rtol=1e-14, atol=1e-15)


def test_max_pool_of_a_tie_gives_the_gradient_to_the_first_maximum():
    # np.argmax's rule, the book's: the first in the window, read row by row
    node = Node("max_pool", [np.array([[[[1.0, 3.0], [3.0, 3.0]]]])])
    assert node.y.tolist() == [[[[3.0]]]]
    assert node.backward(np.array([[[[5.0]]]]))[0].tolist() == [[[[0.0, 5.0], [0.0, 0.0]]]]


def test_max_pool_pads_with_zeros_as_the_book_does():
    # the book's im2col pads with 0: a window over the padding of an all-negative x has the maximum 0
    node = Node("max_pool", [np.full((1, 1, 2, 2), -1.0)], {"pool_h": 2, "pool_w": 2, "stride": 2, "pad": 1})
    assert node.y.tolist() == [[[[0.0, 0.0], [0.0, 0.0]]]]
    assert node.backward(np.ones((1, 1, 2, 2)))[0].tolist() == [[[[0.0, 0.0], [0.0, 0.0]]]]


@SETTINGS
@given(case=conv_case(), seed=SEEDS)
def test_im2col_and_col2im(case, seed):
    sx, (_, _, fh, fw), stride, pad = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, sx)
    attrs = {"filter_h": fh, "filter_w": fw, "stride": stride, "pad": pad}
    col = check_gradients("im2col", [x], rng, attrs)
    np.testing.assert_array_equal(col, ref_im2col(x, fh, fw, stride, pad))
    # col2im is im2col's adjoint: <im2col(x), c> == <x, col2im(c)> for every c
    c = rng.standard_normal(col.shape)
    back = check_gradients("col2im", [c], rng, {"shape": list(sx), **attrs})
    assert float(np.sum(col * c)) == pytest.approx(float(np.sum(x * back)), rel=1e-12, abs=1e-12)


def test_col2im_adds_overlapping_windows():
    # 3x3 windows, stride 1, over a 4x4 image: each pixel is in as many windows as cover it
    ones = np.ones((4, 9))
    counts = col2im(ones, (1, 1, 4, 4), 3, 3, 1, 0)
    assert counts[0, 0].tolist() == [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]


def test_max_mask():
    node = Node("max_mask", [np.array([[1.0, 3.0, 3.0], [-1.0, -2.0, -5.0]])])
    assert node.y.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert node.backward(np.ones((2, 3)))[0].tolist() == [[0.0] * 3] * 2  # flat: no gradient
    assert Node("max_mask", [np.array([[1.0, 3.0], [2.0, 0.0]])], {"axis": 0}).y.tolist() == [[0.0, 1.0], [1.0, 0.0]]


@st.composite
def norm_case(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    axis = axes[0] if len(axes) == 1 and draw(st.booleans()) else sorted(axes)

    # gamma and beta: any shape that broadcasts against x without enlarging it (size-1 axes, fewer axes)
    def param():
        k = draw(st.integers(0, rank))
        return tuple(1 if draw(st.booleans()) else n for n in shape[rank - k :])

    return shape, axis, param(), param()


@SETTINGS
@given(case=norm_case(), seed=SEEDS)
@example(case=((4, 3), 0, (3,), (3,)), seed=1)  # the book's (N, D)
@example(case=((2, 3, 2, 2), [0, 2, 3], (3, 1, 1), (3, 1, 1)), seed=2)  # per channel
@example(case=((1, 3), 0, (3,), ()), seed=3)  # a batch of one: x - mu is 0
def test_batch_norm_forward_and_gradients(case, seed):
    shape, axis, sg, sb = case
    rng = np.random.default_rng(seed)
    x, gamma, beta = rng.uniform(-2, 2, shape), rng.uniform(0.5, 2, sg), rng.uniform(-1, 1, sb)
    attrs = {"axis": axis}
    y = check_gradients("batch_norm", [x, gamma, beta], rng, attrs)
    axes = tuple(axis) if isinstance(axis, list) else (axis,)
    np.testing.assert_allclose(y, ref_batch_norm(x, gamma, beta, 1e-7, axes), rtol=1e-12, atol=1e-12)


def test_batch_norm_with_the_books_eps():
    # the book adds 10e-7 (= 1e-6); eps: 1e-6 gives its numbers, the default 1e-7 the issue's
    rng = np.random.default_rng(5)
    x, gamma, beta = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(3)
    mu = x.mean(axis=0)
    book = gamma * (x - mu) / np.sqrt(np.mean((x - mu) ** 2, axis=0) + 10e-7) + beta
    np.testing.assert_allclose(Node("batch_norm", [x, gamma, beta], {"eps": 1e-6}).y, book, rtol=1e-14, atol=1e-15)
    assert not np.allclose(Node("batch_norm", [x, gamma, beta]).y, book, rtol=1e-12, atol=0)
    assert "10e-7" in LAYERS["batch_norm"].forward_rule


def test_batch_norm_backward_is_the_books():
    """The book's BatchNormalization.__backward, written out here for (N, D), gives the same dx, dgamma, dbeta."""
    rng = np.random.default_rng(9)
    x, gamma, beta, dout = (
        rng.standard_normal((6, 4)),
        rng.standard_normal(4),
        rng.standard_normal(4),
        rng.standard_normal((6, 4)),
    )
    eps = 1e-7
    mu = x.mean(axis=0)
    xc = x - mu
    std = np.sqrt(np.mean(xc**2, axis=0) + eps)
    xn = xc / std
    dbeta, dgamma = dout.sum(axis=0), np.sum(xn * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / x.shape[0]) * xc * dvar
    dx = dxc - np.sum(dxc, axis=0) / x.shape[0]
    got = Node("batch_norm", [x, gamma, beta]).backward(dout)
    for g, want in zip(got, (dx, dgamma, dbeta)):
        np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-14)


# --- dropout --------------------------------------------------------------------------------------------


def book_mask(seed, shape, ratio):
    """The book's Dropout.forward mask after np.random.seed(seed) (numpy's global state restored after)."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return np.random.rand(*shape) > ratio
    finally:
        np.random.set_state(state)


@pytest.mark.parametrize("ratio, seed", [(0.5, 0), (0.2, 7), (0.0, 3), (1.0, 3)])
def test_dropout_is_the_books_mask_from_the_seed(ratio, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5))
    attrs = {"ratio": ratio, "seed": seed}
    mask = book_mask(seed, x.shape, ratio)
    node = Node("dropout", [x], attrs)
    np.testing.assert_array_equal(node.y, x * mask)
    assert node.backward(np.full((4, 5), 2.0))[0].tolist() == (2.0 * mask).tolist()
    np.testing.assert_array_equal(Node("dropout", [x], attrs).y, node.y)  # the same on every run
    check_gradients("dropout", [x], rng, attrs)


def test_dropout_train_false_scales():
    x = np.arange(6.0).reshape(2, 3)
    node = Node("dropout", [x], {"ratio": 0.3, "train": False})
    np.testing.assert_array_equal(node.y, x * 0.7)
    np.testing.assert_array_equal(node.backward(np.ones((2, 3)))[0], np.full((2, 3), 0.7))


def test_dropout_seeds_differ_and_a_scalar_stays_a_float():
    x = np.ones(1000)
    a, b = Node("dropout", [x]).y, Node("dropout", [x], {"seed": 1}).y
    assert 400 < a.sum() < 600 and not np.array_equal(a, b)
    r = cgcalc.loads("inputs:\n  x: 3\nnodes:\n  y: dropout(x, ratio=0.1)\n").run()
    assert type(r.value("y")) is float and r.value("y") == 3.0 * book_mask(0, (), 0.1)


# --- a layer made for one row runs a batch of rows ----------------------------------------------------------


ROW_CASES = [
    ("conv2d", [(2, 2, 4, 4), (3, 2, 3, 3), (3,)], {}),
    ("conv2d", [(1, 1, 5, 5), (2, 1, 3, 3), (2,)], {"stride": 2, "pad": 1}),
    ("max_pool", [(2, 2, 4, 4)], {}),
    ("max_pool", [(1, 2, 5, 5)], {"pool_h": 3, "pool_w": 3, "stride": 1, "pad": 1}),
    ("avg_pool", [(2, 1, 4, 6)], {"pool_h": 2, "pool_w": 3, "stride": 1}),
    ("batch_norm", [(4, 3), (3,), (3,)], {}),
    ("batch_norm", [(2, 3, 2, 2), (3, 1, 1), ()], {"axis": [0, 2, 3]}),
    ("dropout", [(3, 4)], {"ratio": 0.3, "seed": 5}),
    ("dropout", [()], {}),
    ("im2col", [(2, 1, 4, 4)], {"filter_h": 3, "filter_w": 2}),
    ("col2im", [(8, 4)], {"shape": [2, 1, 3, 3], "filter_h": 2, "filter_w": 2}),
    ("max_mask", [(2, 3)], {}),
]


@pytest.mark.parametrize("op, shapes, attrs", ROW_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_a_layer_runs_a_batch_row_by_row(op, shapes, attrs):
    # every input (W and b too) differs from row to row: the layer, handed each with a row axis in front, gives
    # each row what it gives that row alone (what run_batch relies on)
    rows = 3
    rng = np.random.default_rng(4)
    cls = LAYERS[op]
    lay = cls.layout(shapes, cls.check_attrs(attrs))
    batch = [rng.uniform(-2, 2, (rows,) + v) for v in lay.views]
    layer = cls(**lay.attrs)
    y = layer.forward(*batch)
    assert np.shape(y) == (rows,) + lay.out_view
    dout = rng.standard_normal(np.shape(y))
    ds = layer.backward(dout)
    for r in range(rows):
        one = cls(**lay.attrs)
        np.testing.assert_allclose(y[r], one.forward(*[x[r] for x in batch]), rtol=1e-13, atol=1e-15)
        for d, d1, v in zip(ds, one.backward(dout[r]), lay.views):
            np.testing.assert_allclose(sum_to(d, (rows,) + v)[r], sum_to(np.asarray(d1), v), rtol=1e-13, atol=1e-15)


def test_run_batch_equals_single_runs_with_a_row_axis_in_front_of_a_4d_x():
    g = cgcalc.loads(
        f"inputs:\n  x: {np.zeros((2, 1, 4, 4)).tolist()}\n  W: {np.zeros((2, 1, 3, 3)).tolist()}\n  b: [0, 0]\n"
        "  gamma: [[[1]], [[1]]]\n  beta: 0\nnodes:\n"
        "  c: conv2d(x, W, b, pad=1)\n"
        "  n: batch_norm(c, gamma, beta, axis=[0, 2, 3])\n"
        "  p: max_pool(dropout(n, ratio=0.25, seed=3), stride=1)\n"
        "  q: avg_pool(relu(p), pool_h=3, pool_w=3, stride=3)\n"
        "  loss: sum(q * q)\n"
    )
    rng = np.random.default_rng(11)
    rows = 4
    cols = {
        "x": rng.standard_normal((rows, 2, 1, 4, 4)),
        "W": rng.standard_normal((rows, 2, 1, 3, 3)),
        "b": rng.standard_normal((rows, 2)),
        "gamma": rng.uniform(0.5, 2, (rows, 2, 1, 1)),
    }
    out = g.run_batch(cols)
    for r in range(rows):
        one = g.run({k: v[r] for k, v in cols.items()})
        np.testing.assert_allclose(out.outputs["loss"][r], one.value("loss"), rtol=1e-12)
        for k in cols:
            np.testing.assert_allclose(out.grads["loss"][k][r], one.grad(k), rtol=1e-10, atol=1e-13)


# --- backward never writes into what it was handed ------------------------------------------------------


@pytest.mark.parametrize("op, shapes, attrs", ROW_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_forward_and_backward_never_modify_their_arguments(op, shapes, attrs):
    rng = np.random.default_rng(12)
    xs = [rng.uniform(-2, 2, s) for s in shapes]
    for x in xs:
        x.flags.writeable = False  # any write raises
    saved = [x.copy() for x in xs]
    node = Node(op, xs, attrs)
    dout = rng.standard_normal(np.shape(node.y))
    dout.flags.writeable = False
    first = node.backward(dout)
    for x, before in zip(xs, saved):
        assert np.array_equal(x, before)
    # the runtime calls backward once per selected output: again, it gives the same gradients
    for g, again in zip(first, node.backward(dout)):
        assert np.asarray(g).tobytes() == np.asarray(again).tobytes()


# --- the backward as ops: derive, hessian -------------------------------------------------------------------


DERIVE_CASES = {
    "conv2d": (
        "loss: sum(conv2d(x, W, b, stride=2, pad=1) ** 2)",
        {"x": (2, 2, 5, 5), "W": (3, 2, 3, 3), "b": (3,)},
    ),
    "max_pool": ("loss: sum(max_pool(x, pool_h=3, pool_w=2, stride=1, pad=1) ** 2)", {"x": (1, 2, 4, 3)}),
    "avg_pool": ("loss: sum(avg_pool(x, stride=1) ** 3)", {"x": (2, 1, 3, 4)}),
    "batch_norm": (
        "loss: sum(batch_norm(x, gamma, beta, axis=[0, 2], eps=1e-5) ** 3)",
        {"x": (4, 2, 3), "gamma": (2, 1), "beta": (3,)},
    ),
    "dropout": ("loss: sum(dropout(x, ratio=0.4, seed=2) ** 3) + sum(dropout(x, train=false) ** 3)", {"x": (3, 4)}),
    "im2col": ("loss: sum(im2col(x, filter_h=2, filter_w=3, stride=1, pad=1) ** 3)", {"x": (1, 2, 3, 3)}),
}


def derive_graph(op: str, seed: int = 0) -> cgcalc.Graph:
    node, shapes = DERIVE_CASES[op]
    rng = np.random.default_rng(seed)
    values = {n: rng.uniform(0.5, 1.5, s) * rng.choice([-1, 1], s) for n, s in shapes.items()}
    if "gamma" in values:
        values["gamma"] = np.abs(values["gamma"])
    inputs = "".join(f"  {n}: {json.dumps(v.tolist())}\n" for n, v in values.items())
    return cgcalc.loads(f"inputs:\n{inputs}nodes:\n  {node}\n")


@pytest.mark.parametrize("op", sorted(DERIVE_CASES))
def test_derive_gives_the_numeric_backward(op):
    g = derive_graph(op)
    r = g.run()
    d = g.derive().run()
    for x in g.inputs:
        np.testing.assert_allclose(d.value(f"d_loss_d_{x}"), r.grad(x), rtol=1e-12, atol=1e-13, err_msg=x)


def flat_grad(g: cgcalc.Graph, point: dict) -> np.ndarray:
    r = g.run(point)
    return np.concatenate([np.ravel(r.grad(x)) for x in g.inputs])


@pytest.mark.parametrize("op", sorted(DERIVE_CASES))
def test_hessian_against_central_differences_of_the_gradient(op):
    """Second derivatives through the backward as ops (im2col, col2im, max_mask...) against central differences
    of run's numeric gradient: H[:, j] = (grad(p + h e_j) - grad(p - h e_j)) / 2h."""
    g = derive_graph(op, seed=1)
    labels, H = g.hessian()
    base = {x: np.asarray(g.run().value(x), dtype=np.float64) for x in g.inputs}
    sizes = [base[x].size for x in g.inputs]
    assert len(labels) == sum(sizes)
    h = 1e-5
    numeric = np.zeros_like(H)
    j = 0
    for x, size in zip(g.inputs, sizes):
        for k in range(size):
            hi, lo = dict(base), dict(base)
            hi[x], lo[x] = base[x].copy(), base[x].copy()
            hi[x].flat[k] += h
            lo[x].flat[k] -= h
            numeric[:, j] = (flat_grad(g, hi) - flat_grad(g, lo)) / (2 * h)
            j += 1
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-7)


def test_the_simple_conv_net_graph_checks_at_order_1_and_2():
    assert cli("check", CONV_NET).exit_code == 0
    r = cli("check", CONV_NET, "--order", "2", "-f", "json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["ok"]


def test_the_simple_conv_net_graph_against_a_reference():
    """The example graph's loss, recomputed here from ref_conv and ref_pool and the book's formulas."""
    g = cgcalc.load(CONV_NET)
    r = g.run()
    v = {x: np.asarray(r.value(x)) for x in g.inputs}
    h = np.maximum(ref_conv(v["x"], v["W1"], v["b1"]), 0)
    p = ref_pool(h, 2, 2, 2, 0, np.max).reshape(2, -1)
    a = np.maximum(p @ v["W2"] + v["b2"], 0) @ v["W3"] + v["b3"]
    y = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    assert r.value("loss") == pytest.approx(-np.sum(v["t"] * np.log(y)) / 2, rel=1e-13)
    assert np.asarray(r.value("p1")).shape == (2, 2, 2, 2)
    assert all(np.any(np.asarray(r.grad(x)) != 0) for x in ("x", "W1", "b1", "W2", "b2", "W3", "b3"))


# --- shapes and attributes, refused before running --------------------------------------------------------


def error_of(tmp_path, text: str) -> str:
    return one_error_line(cli("run", write(tmp_path, "g.yaml", text)))


CONV_INPUTS = "inputs:\n  x: {x}\n  W: {w}\n  b: {b}\nnodes:\n  y: conv2d(x, W, b{attrs})\n"


@pytest.mark.parametrize(
    "x, w, b, attrs, words",
    [
        (
            "[[[[1, 2, 3], [4, 5, 6]]]]",
            "[[[[1, 2], [3, 4]]], [[[1, 2], [3, 4]]]]",
            "[0, 0]",
            ", stride=2",
            ["width (3 + 2 * 0 - 2) / 2 + 1 = 1.5", "whole number", "x (1, 1, 2, 3)", "W (2, 1, 2, 2)"],
        ),
        (
            "[[[[1, 2], [3, 4]]]]",
            "[[[[1, 2, 3], [1, 2, 3], [1, 2, 3]]]]",
            "[0]",
            "",
            ["height 3 is larger", "(1, 1, 2, 2)", "(1, 1, 3, 3)"],
        ),
        ("[[[[1, 2], [3, 4]]]]", "[[[[1]], [[1]]]]", "[0]", "", ["1 channels", "x (1, 1, 2, 2)", "W (1, 2, 1, 1)"]),
        ("[[[[1, 2], [3, 4]]]]", "[[[[1]]]]", "[0, 1]", "", ["b must have shape (FN,) = (1,)", "(2,)"]),
        ("[[1, 2], [3, 4]]", "[[[[1]]]]", "[0]", "", ["needs x of shape (N, C, H, W)", "(2, 2)"]),
    ],
)
def test_conv2d_shape_errors_name_both_shapes(tmp_path, x, w, b, attrs, words):
    line = error_of(tmp_path, CONV_INPUTS.format(x=x, w=w, b=b, attrs=attrs))
    assert "node 'y' (conv2d)" in line
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize(
    "node, words",
    [
        ("conv2d(x, x, x, stride=0)", ["stride must be a whole number >= 1, got 0"]),
        ("conv2d(x, x, x, pad=-1)", ["pad must be a whole number >= 0, got -1"]),
        ("conv2d(x, x, x, stride=1.5)", ["stride must be a whole number >= 1, got 1.5"]),
        ("conv2d(x, x, x, strde=2)", ["no attribute 'strde'", "stride"]),
        ("max_pool(x, pool=2)", ["no attribute 'pool'"]),
        ("max_pool(x, pool_h=true)", ["pool_h must be a whole number >= 1, got True"]),
        ("batch_norm(x, x, x, eps=-1)", ["eps must be a number >= 0"]),
        ("batch_norm(x, x, x, axis=1.5)", ["axis must be an integer or a list"]),
        ("dropout(x, ratio=2)", ["ratio must be a number from 0 to 1, got 2"]),
        ("dropout(x, seed=-1)", ["seed must be a whole number"]),
        ("dropout(x, train=1)", ["train must be true or false"]),
        ("col2im(x, shape=[1, 2])", ["shape must be 4 whole numbers"]),
    ],
)
def test_bad_attributes(tmp_path, node, words):
    line = error_of(tmp_path, f"inputs:\n  x: 1\nnodes:\n  y: {node}\n")
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "inputs:\n  x: [[1, 2, 3], [4, 5, 6]]\n  g: [1, 2]\n  b: 0\nnodes:\n  y: batch_norm(x, g, b)\n",
            ["gamma (2,) and beta ()", "x (2, 3)"],
        ),
        ("inputs:\n  x: [1, 2]\nnodes:\n  y: batch_norm(x, 1, 0, axis=1)\n", ["axis 1 is out of range for shape (2,)"]),
        ("inputs:\n  x: 3\nnodes:\n  y: batch_norm(x, 1, 0)\n", ["at least 1 dimension"]),
        ("inputs:\n  x: [[[[1, 2, 3]]]]\nnodes:\n  y: max_pool(x)\n", ["height 2 is larger than the input's 1"]),
        (
            "inputs:\n  x: [[[[1, 2, 3]]]]\nnodes:\n  y: avg_pool(x, pool_h=1, pool_w=2, stride=2)\n",
            ["(3 + 2 * 0 - 2) / 2 + 1 = 1.5"],
        ),
        ("inputs:\n  x: [[[[1, 2, 3]]]]\nnodes:\n  y: im2col(x)\n", ["im2col needs filter_h and filter_w"]),
        (
            "inputs:\n  c: [[1, 2], [3, 4]]\nnodes:\n  y: col2im(c, shape=[1, 1, 3, 3], filter_h=2, filter_w=2)\n",
            ["col must be (N*OH*OW, C*filter_h*filter_w) = (4, 4)", "got (2, 2)"],
        ),
    ],
)
def test_other_shape_errors(tmp_path, text, words):
    line = error_of(tmp_path, text)
    for word in words:
        assert word in line, (word, line)


def test_attributes_in_the_mapping_form_and_validate():
    g = cgcalc.loads(
        "inputs:\n  x: [[[[1, 2, 3, 4], [5, 6, 7, 8]]]]\nnodes:\n"
        "  y: {op: avg_pool, in: [x], pool_h: 2, pool_w: 2, stride: 2}\n"
        "  z: {op: batch_norm, in: [x, 1, 0], eps: 1e-3, axis: [0, 3]}\n"
        "  d: {op: dropout, in: [x], train: false, ratio: 0.25}\n"
    )
    r = g.run()
    assert np.asarray(r.value("y")).tolist() == [[[[3.5, 5.5]]]]
    np.testing.assert_array_equal(r.value("d"), np.asarray(r.value("x")) * 0.75)
    with pytest.raises(GraphError, match="ratio must be"):
        cgcalc.loads("inputs:\n  x: 1\nnodes:\n  y: {op: dropout, in: [x], ratio: -0.5}\n")


EMPTY_CASES = [
    ("conv2d", [(0, 2, 4, 4), (3, 2, 3, 3), (3,)], {}, (0, 3, 2, 2)),
    ("conv2d", [(2, 2, 4, 4), (0, 2, 3, 3), (0,)], {}, (2, 0, 2, 2)),
    ("conv2d", [(2, 0, 4, 4), (3, 0, 3, 3), (3,)], {}, (2, 3, 2, 2)),
    ("max_pool", [(0, 2, 4, 4)], {}, (0, 2, 2, 2)),
    ("max_pool", [(2, 0, 4, 4)], {}, (2, 0, 2, 2)),
    ("max_pool", [(1, 1, 0, 2)], {"pad": 1}, (1, 1, 1, 2)),  # a window all padding
    ("avg_pool", [(0, 1, 2, 2)], {}, (0, 1, 1, 1)),
    ("im2col", [(0, 1, 3, 3)], {"filter_h": 2, "filter_w": 2}, (0, 4)),
    ("col2im", [(0, 4)], {"shape": [0, 1, 3, 3], "filter_h": 2, "filter_w": 2}, (0, 1, 3, 3)),
    ("dropout", [(0, 3)], {}, (0, 3)),
    ("batch_norm", [(3, 0), (0,), (0,)], {}, (3, 0)),
    ("max_mask", [(0, 3)], {}, (0, 3)),
]


@pytest.mark.parametrize("op, shapes, attrs, out", EMPTY_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_empty_arrays(op, shapes, attrs, out):
    node = Node(op, [np.ones(s) for s in shapes], attrs)
    assert np.shape(node.y) == out
    assert [np.shape(d) for d in node.backward(np.ones(out))] == shapes


@pytest.mark.parametrize(
    "text, words",
    [
        (
            "inputs:\n  x: [[], []]\nnodes:\n  y: batch_norm(x, 1, 0, axis=1)\n",
            ["x (2, 0) has no element along axis 1"],
        ),
        ("inputs:\n  x: [[], []]\nnodes:\n  y: max_mask(x)\n", ["axis -1 of (2, 0) is empty"]),
    ],
)
def test_nothing_to_normalize_or_to_mark(tmp_path, text, words):
    line = error_of(tmp_path, text)
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize(
    "args",
    [("trace",), ("export", "--format", "dot"), ("export", "--format", "mermaid"), ("derive",), ("validate",)],
    ids=lambda a: " ".join(a),
)
def test_the_simple_conv_net_graph_through_the_other_commands(args):
    r = cli(args[0], CONV_NET, *args[1:])
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""


def test_batch_of_the_simple_conv_net_graph_equals_its_runs(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"x": rng.uniform(0, 1, (2, 1, 6, 6)).tolist(), "b1": rng.uniform(-0.1, 0.1, 2).tolist()} for _ in range(3)]
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    r = cli("batch", CONV_NET, src, "-o", out)
    assert r.exit_code == 0, r.stderr
    g = cgcalc.load(CONV_NET)
    for row, line in zip(rows, out.read_text().splitlines(), strict=True):
        got, one = json.loads(line), g.run(row)
        assert got["loss"] == pytest.approx(one.value("loss"), rel=1e-13)
        for x in ("x", "W1", "b1", "W2"):
            np.testing.assert_allclose(got[f"dloss/d{x}"], one.grad(x), rtol=1e-11, atol=1e-15)
