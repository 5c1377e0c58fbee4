"""Issue 13's shape ops in expressions: getitem (`x[0]`, `x[:, 1]`, `x[1:3]`, `x[-1]`, `x[::2]`, `x[..., 0]`, and
in mapping form), `x.T`, concat and stack (any number of inputs), and getitem_grad, getitem's backward as an op.

References never come from the code under test: numpy's own indexing, concatenate and stack (the index turned
into Python's by tests/randgraphs.py's python_index), Python's own parser (eval of the same expression on numpy
arrays), float64 central differences (test_layers' check_gradients), and torch (tests/torch_tables/: the table
tests/torch_tables/make_index_ops.py made with torch, stored beside it). Then: layers and graphs in a batch ==
single runs, the derivative graph == the numeric gradient and central differences, a table of bad expressions
and attributes (each a located one-line error), `cgcalc ops getitem`, and a chain of .T ten times Python's recursion limit.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import randgraphs as rg
from cli_helpers import assert_error, cli, write
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from test_layers import SEEDS, Node, check_gradients

import cgcalc
from cgcalc.core.base import sum_to
from cgcalc.core.registry import LAYERS
from cgcalc.errors import GraphError

SETTINGS = settings(max_examples=30, deadline=None)
TORCH_TABLE = Path(__file__).parent / "torch_tables" / "index_ops.json"


def graph(inputs: dict, nodes: dict, outputs=None) -> cgcalc.Graph:
    """A JSON graph: inputs name -> array (or ("const", value) for `grad: false`), nodes name -> text or dict."""
    doc: dict = {"inputs": {}, "nodes": nodes}
    for k, v in inputs.items():
        const = isinstance(v, tuple)
        value = np.asarray(v[1] if const else v, dtype=float).tolist()
        doc["inputs"][k] = {"value": value, "grad": False} if const else value
    if outputs:
        doc["outputs"] = outputs
    return cgcalc.loads(json.dumps(doc), json=True)


# --- getitem against numpy's indexing, backward against central differences -----------------------------------


@st.composite
def indexed(draw):
    """(shape, index): a random basic index of a random shape, empty slices and a '...' now and then."""
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))

    def item(n):
        if draw(st.booleans()):
            return draw(st.integers(-n, n - 1))
        keys = {
            "start": st.integers(-n - 1, n + 1),
            "stop": st.integers(-n - 1, n + 1),
            "step": st.sampled_from([1, 2, -1, -3]),
        }
        return {k: draw(v) for k, v in keys.items() if draw(st.booleans())}

    r = len(shape)
    k = draw(st.integers(0, r))
    items = [item(n) for n in shape[:k]]
    if draw(st.booleans()):  # '...', then the last few axes
        tail = draw(st.integers(0, r - k))
        items += ["..."] + [item(n) for n in shape[r - tail :]]
    return shape, items


@SETTINGS
@given(case=indexed(), seed=SEEDS)
@example(case=((3, 4), [{}, 1]), seed=1)
@example(case=((2, 3, 4), ["...", 0]), seed=2)
@example(case=((5,), [{"step": -2}]), seed=3)
@example(case=((3, 4), [-1, {"start": 3, "stop": 1}]), seed=4)  # an empty slice
def test_getitem_forward_and_gradient(case, seed):
    shape, index = case
    want = np.arange(float(np.prod(shape))).reshape(shape)[rg.python_index(index)]
    x = np.random.default_rng(seed).uniform(-2, 2, shape)
    y = check_gradients("getitem", [x], np.random.default_rng(seed), attrs={"index": index})
    np.testing.assert_array_equal(y, x[rg.python_index(index)])
    assert np.shape(y) == want.shape


@SETTINGS
@given(case=indexed(), seed=SEEDS)
def test_getitem_grad_is_the_adjoint_of_getitem(case, seed):
    # <x[index], d> == <x, getitem_grad(d)>, and central differences of getitem_grad
    shape, index = case
    out = np.empty(shape)[rg.python_index(index)].shape
    rng = np.random.default_rng(seed)
    x, d = rng.uniform(-2, 2, shape), rng.uniform(-2, 2, out)
    z = check_gradients("getitem_grad", [d], rng, attrs={"index": index, "shape": list(shape)})
    assert np.shape(z) == shape
    assert np.sum(x * z) == pytest.approx(np.sum(x[rg.python_index(index)] * d), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("op", ["concat", "stack"])
@SETTINGS
@given(
    shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
    n=st.integers(1, 4),
    axis=st.integers(-4, 3),
    sizes=st.lists(st.integers(1, 3), min_size=4, max_size=4),
    seed=SEEDS,
)
@example(shape=(2, 3), n=3, axis=-1, sizes=[1, 2, 3, 1], seed=1)
@example(shape=(), n=2, axis=0, sizes=[1, 1, 1, 1], seed=2)
def test_concat_and_stack_forward_and_gradients(op, shape, n, axis, sizes, seed):
    r = len(shape) + (op == "stack")
    assume(r and -r <= axis < r)  # (the errors otherwise: see BAD_EXPRESSIONS)
    rng = np.random.default_rng(seed)
    shapes = [shape] * n
    if op == "concat":  # each its own length on the axis
        shapes = [shape[: axis % r] + (m,) + shape[axis % r + 1 :] for m in sizes[:n]]
    xs = [rng.uniform(-2, 2, s) for s in shapes]
    y = check_gradients(op, xs, rng, attrs={"axis": axis})
    np.testing.assert_array_equal(y, (np.concatenate if op == "concat" else np.stack)(xs, axis=axis))


# --- expressions: Python's own parse of the same text ---------------------------------------------------------

X = np.arange(12.0).reshape(3, 4) - 5.5
W = np.linspace(-1, 1, 8).reshape(4, 2)
V = np.array([0.5, -1.5, 2.0])
PYTHON_FORMS = [
    "x[0]", "x[:, 1]", "x[1:3]", "x[-1]", "x[::2]", "x[..., 0]", "x[0,]", "x[-1, ::-1]", "x[1:-1:1, 3:0:-2]",
    "x[:]", "x[...]", "x[0, ...]", "x[-3:, :2][1]", "x[0][1:][::-1]", "x.T", "x.T.T", "x[0].T", "v.T",
    "x.T @ v", "-x.T ** 2", "-x[0, 1] ** 2", "2 ** v[0]", "x[1] ** v[2]", "(x @ w).T[-1, ::-1]",
    "(x + 1).T[0] * v[1:2]", "exp(x[0, 0]) + x[2, -1]", "sum(x[:, 1:] * x[:, :-1], axis=0)[0]",
    "concat(x, x[:1])[3]", "concat(x.T, w, axis=1)[:, -1]", "stack(v, v * 2)[1]", "stack(v[0], v[1], axis=-1)",
    "concat(v)", "stack(x)[0, 1:]",
]  # fmt: skip


@pytest.mark.parametrize("expr", PYTHON_FORMS)
def test_an_expression_computes_what_python_computes_for_the_same_text(expr):
    got = graph({"x": X, "w": W, "v": V}, {"y": expr}).run().value("y")
    scope = {"x": X, "w": W, "v": V, "exp": np.exp, "sum": np.sum, "stack": lambda *a, axis=0: np.stack(a, axis)}
    scope["concat"] = lambda *a, axis=0: np.concatenate(a, axis)
    want = eval(expr, {"__builtins__": {}}, scope)  # Python parses it: the reference for the precedence
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(case=indexed())
def test_an_index_written_in_brackets_is_the_mapping_form(case):
    shape, index = case
    x = np.arange(float(np.prod(shape))).reshape(shape) * 0.5
    want = x[rg.python_index(index)]
    text = rg.index_text(index) if index else "..."
    g = graph({"x": x}, {"y": f"x[{text}]", "z": {"op": "getitem", "in": ["x"], "index": index or ["..."]}})
    r = g.run(output=["y", "z"])
    np.testing.assert_array_equal(r.value("y"), want)
    np.testing.assert_array_equal(r.value("z"), want)


def test_the_mapping_form_in_yaml_and_json():
    yaml_text = (
        "inputs:\n  x: [[1, 2, 3], [4, 5, 6]]\nnodes:\n"
        "  a: {op: getitem, in: [x], index: [{}, 1]}\n"
        "  b: {op: getitem, in: [x], index: [..., {start: 1, stop: null}]}\n"
        '  c: {op: getitem, in: [x], index: ["...", {step: -1}]}\n'
        "  d: {op: getitem, in: [x], index: -1}\n"
        "  e: {op: concat, in: [x, x, x], axis: 1}\n"
        "outputs: [a, b, c, d, e]\n"
    )
    r = cgcalc.loads(yaml_text).run(output=["a"])
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=float)
    for name, want in {"a": x[:, 1], "b": x[..., 1:], "c": x[..., ::-1], "d": x[-1], "e": np.hstack([x] * 3)}.items():
        np.testing.assert_array_equal(r.value(name), want)
    doc = {"inputs": {"x": x.tolist()}, "nodes": {"a": {"op": "getitem", "in": ["x"], "index": [{"start": 1}, 0]}}}
    assert cgcalc.loads(json.dumps(doc), json=True).run().value("a").tolist() == [4.0]


# --- against torch (the stored table) -------------------------------------------------------------------------


def torch_cases():
    return json.loads(TORCH_TABLE.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", torch_cases(), ids=lambda c: c["expr"])
def test_values_gradients_and_hessian_vector_products_equal_torchs(case):
    inputs = {n: np.asarray(v) for n, v in case["inputs"].items()}
    g = graph({**inputs, "w": ("const", case["w"])}, {"out": case["expr"], "loss": "sum(w * tanh(out))"}, ["loss"])
    r = g.run()
    if "@" in case["expr"]:  # BLAS and torch may add a product's terms in another order
        np.testing.assert_allclose(r.value("out"), case["out"], rtol=1e-14, atol=1e-15)
    else:  # indexing moves numbers: exactly torch's
        np.testing.assert_array_equal(r.value("out"), case["out"])
    hv = g.hvp({n: np.asarray(v) for n, v in case["v"].items()})
    for n in inputs:
        np.testing.assert_allclose(r.grad(n), case["grad"][n], rtol=1e-13, atol=1e-15, err_msg=n)
        np.testing.assert_allclose(hv[n], case["hvp"][n], rtol=1e-12, atol=1e-14, err_msg=n)


def test_the_torch_table_covers_the_forms_the_issue_names():
    exprs = " ".join(c["expr"] for c in torch_cases())
    for form in ("x[0]", "x[:, 1]", "x[1:3]", "x[-1]", "x[::2]", "x[..., 0]", ".T", "concat(", "stack(", "::-"):
        assert form in exprs, form


# --- batch == single runs ---------------------------------------------------------------------------------------

ROW_CASES = [
    ("getitem", [(3, 4)], {"index": [{}, 1]}),
    ("getitem", [(2, 3, 4)], {"index": ["...", {"step": -2}]}),
    ("getitem", [(4,)], {"index": [-1]}),
    ("getitem", [()], {"index": ["..."]}),
    ("getitem_grad", [(2,)], {"index": [{"start": 1}, 0], "shape": [3, 4]}),
    ("concat", [(2, 3), (2, 1), (2, 2)], {"axis": -1}),
    ("concat", [(1, 3), (2, 3)], {}),
    ("stack", [(), (), ()], {}),
    ("stack", [(2, 3), (2, 3)], {"axis": -1}),
    ("transpose", [(2, 3, 4)], {"axes": [2, 0, 1]}),
]


@pytest.mark.parametrize("op, shapes, attrs", ROW_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_a_layer_runs_a_batch_row_by_row_bit_for_bit(op, shapes, attrs):
    # each input with a row axis in front: every row's value and gradients are its own run's, exactly
    rows, rng, cls = 3, np.random.default_rng(5), LAYERS[op]
    lay = cls.layout(shapes, cls.check_attrs(attrs))
    batch = [rng.standard_normal((rows,) + v) for v in lay.views]
    layer = cls(**lay.attrs)
    y = layer.forward(*batch)
    assert np.shape(y) == (rows,) + lay.out_view
    dout = rng.standard_normal(np.shape(y))
    ds = layer.backward(dout)
    for i in range(rows):
        one = cls(**lay.attrs)
        np.testing.assert_array_equal(y[i], one.forward(*[x[i] for x in batch]))
        for d, d1, v in zip(ds, one.backward(dout[i]), lay.views):
            np.testing.assert_array_equal(sum_to(d, (rows,) + v)[i], d1)


@pytest.mark.parametrize("op, shapes, attrs", ROW_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_forward_and_backward_never_modify_their_arguments(op, shapes, attrs):
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal(s) for s in shapes]
    for x in xs:
        x.flags.writeable = False  # a write raises
    saved = [x.copy() for x in xs]
    node = Node(op, xs, attrs)
    dout = np.asarray(rng.standard_normal(np.shape(node.y)))
    dout.flags.writeable = False
    first = node.backward(dout)
    assert all(np.array_equal(x, s) for x, s in zip(xs, saved))
    for a, b in zip(first, node.backward(dout)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


BATCH_GRAPHS = [
    ({"x": (3, 4), "w": (4,)}, "loss: sum(tanh(concat(x[:, 1:3], x.T[:2].T, axis=1)) @ w) + x[-1, ::-2] @ x[0, 1::2]"),
    ({"a": (), "b": ()}, "loss: sum(tanh(stack(a, b, a * b)) * stack(b, 2, a)) + stack(a, b)[1] ** 3"),
    ({"x": (2, 3)}, "loss: sum(exp(stack(x, x[::-1], axis=1)[..., 0]) * concat(x[0], x[1])[1:3])"),
    # scalar inputs, a node of constants (a float in a single run) and an array made of them: both the C library's
    ({"a": ()}, "loss: tanh(-1.5) * a + sum(tanh(stack(0.5, a)))"),
]


@pytest.mark.parametrize("shapes, node", BATCH_GRAPHS, ids=[g[1][:40] for g in BATCH_GRAPHS])
def test_run_batch_rows_equal_single_runs_bit_for_bit(shapes, node):
    # bit for bit: the shape ops move numbers, and a graph of scalar inputs (the second, the last) computes with the
    # C library in both, its arrays (stack of scalars) too
    rng = np.random.default_rng(7)
    inputs = "".join(f"  {n}: {json.dumps(rng.uniform(-1, 1, s).tolist())}\n" for n, s in shapes.items())
    g = cgcalc.loads(f"inputs:\n{inputs}nodes:\n  {node}\n")
    columns = {n: rng.uniform(-1, 1, (5,) + s) for n, s in shapes.items()}
    assert rg.batch_vs_single(g, columns, ["loss"], exact=True) == []


# --- derivative graphs ----------------------------------------------------------------------------------------

DERIVE_CASES = [
    ("sum(x[:, 1] * w[0]) + sum(x[1:3, ::-1] ** 2)", {"x": (3, 4)}),
    ("sum(x[..., 0] ** 3) + x[-1, -1] * x[0, 0]", {"x": (3, 2)}),
    ("sum(tanh(x.T @ x))", {"x": (3, 2)}),
    ("sum(concat(x, x * x, axis=1)[:, 1:] ** 2)", {"x": (2, 3)}),
    ("sum(stack(x[0], x[1] ** 2, axis=-1) ** 3)", {"x": (2, 3)}),
    ("sum(sin(concat(x[0], u, x[1])))", {"x": (2, 3), "u": (2,)}),
]


def derive_graph(expr: str, shapes: dict, seed: int = 0) -> cgcalc.Graph:
    rng = np.random.default_rng(seed)
    inputs = {n: rng.uniform(-1.5, 1.5, s) for n, s in shapes.items()}
    return graph({**inputs, "w": ("const", [0.5, -2.0])}, {"out": expr})


@pytest.mark.parametrize("expr, shapes", DERIVE_CASES, ids=[c[0] for c in DERIVE_CASES])
def test_the_derivative_graph_equals_the_numeric_gradient_and_central_differences(expr, shapes):
    g = derive_graph(expr, shapes)
    r = g.run()
    d = g.derive().run()
    exact = "@" not in expr  # matmul: BLAS adds in its own order (see test_derive_props)
    for name in shapes:
        got = np.asarray(d.value(f"d_out_d_{name}"))
        if exact:
            np.testing.assert_array_equal(got, r.grad(name))
        np.testing.assert_allclose(got, r.grad(name), rtol=1e-13, atol=1e-15)
        x = np.asarray(r.value(name))
        num = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            hi, lo = x.copy(), x.copy()
            hi[idx] += 1e-6
            lo[idx] -= 1e-6
            num[idx] = (g.run({name: hi}).value("out") - g.run({name: lo}).value("out")) / 2e-6
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("expr, shapes", DERIVE_CASES[2:], ids=[c[0] for c in DERIVE_CASES[2:]])
def test_second_derivatives_against_central_differences_of_the_gradient(expr, shapes):
    """hessian: the derivative graph (getitem_grad, getitem) differentiated again."""
    g = derive_graph(expr, shapes, seed=1)
    name = next(iter(shapes))
    _, H = g.hessian(wrt=[name])
    x = np.asarray(g.run().value(name))
    cols = []
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += 1e-5
        lo[idx] -= 1e-5
        cols.append(((np.asarray(g.run({name: hi}).grad(name)) - g.run({name: lo}).grad(name)) / 2e-5).ravel())
    np.testing.assert_allclose(H, np.array(cols).T, rtol=1e-5, atol=1e-6)


def test_the_derivative_graph_file_reads_back_with_its_slices():
    g = derive_graph(DERIVE_CASES[3][0], DERIVE_CASES[3][1])
    text = g.derive_text()
    assert "getitem_grad" in text and "index: [{}, {start: 1}]" in text
    again = cgcalc.loads(text).run()
    np.testing.assert_array_equal(again.value("d_out_d_x"), g.run().grad("x"))


def test_a_formula_shows_an_index_as_python_writes_it():
    from cgcalc.views.formulas import formulas

    g = graph({"x": [1.0, 2.0, 3.0]}, {"y": "x[0] * x[::-2]"})
    formula = formulas(g.plan, "y")["y.1"]  # d y / d x[0]: the elements x[0] multiplies, summed
    assert "x[::-2]" in formula and "index" not in formula, formula


def test_the_random_graphs_of_the_property_tests_hold_every_form():
    """tests/randgraphs.py's graphs (test_batch_props, test_derive_props) index with '...', negative steps and
    in mapping form, write .T, and concat and stack several inputs."""
    graphs = [rg.random_graph(rg.RandomSource(seed), ops=rg.SHAPE_OPS + ("tanh",)) for seed in range(150)]
    every = "\n".join(g.text for g in graphs)
    for form in ("...", "::-", ".T", "op: getitem", "transpose(", "axes:", "concat(", "op: stack"):
        assert form in every, form
    joined = {(n.op, len(n.args)) for g in graphs for n in g.nodes}
    assert {("concat", 3), ("stack", 3), ("stack", 1)} <= joined


# --- errors: located, one line, before anything runs ----------------------------------------------------------

INPUTS = (
    "inputs:\n  x: [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]\n  a: [[1, 2, 3], [4, 5, 6]]\n  b: [1, 2]\n  s: 1\n"
)
# (expression, the text the error points at (its first occurrence), fragments of the message)
BAD_EXPRESSIONS = [
    ("x[i]", "i", ["expected an index", "found 'i'"]),
    ("x[1.5]", "1.5", ["an index is a whole number", "'1.5'"]),
    ("x[]", "]", ["expected an index", "found ']'"]),
    ("x[0", None, ["expected ']'", "end of expression"]),
    ("x[::0]", "0", ["step must not be 0"]),
    ("x[..., 0, ...]", "...]", ["only one '...'"]),
    ("x.shape", "shape", ["expected .T", "'.shape'"]),
    ("x[0] + 2[0]", "[0]\n", ["unexpected '['"]),
    ("x[99999999999999999]", "9", ["too large"]),
    ("exp(x)[5] + 1", "[5]", ["index 5 is out of range for axis 0 of (3, 4)", "[y.1 (3, 4)]"]),
    ("x[0][0][0] + 1", "[0] +", ["[0] indexes 1 axis, but () has 0"]),
    ("x[0, 0, 0] + 1", "[0, 0, 0]", ["[0, 0, 0] indexes 3 axes, but (3, 4) has 2"]),
    ("concat(x, a) + 1", "concat", ["concat along axis 0: (3, 4) and (2, 3) differ on another axis"]),
    ("concat(x, b) + 1", "concat", ["(3, 4) and (2,) have different numbers of axes"]),
    ("concat(s, s) + 1", "concat", ["a scalar has no axis"]),
    ("concat(x, x, axis=2) + 1", "concat", ["axis 2 is out of range for (3, 4)"]),
    ("concat(x, x, axis=0.5) + 1", "concat", ["axis must be an integer"]),
    ("concat() + 1", "concat", ["takes at least 1 input", "gives 0"]),
    ("stack(x, a) + 1", "stack", ["every input must have one shape, not (3, 4) and (2, 3)"]),
    ("stack(b, b, axis=-3) + 1", "stack", ["axis -3 is out of range"]),
]


def _col(expr: str, at: str | None) -> int:
    """The column of `at` in the line `  y: EXPR` (the end of the expression when None)."""
    return 6 + (len(expr) if at is None else (expr + "\n").index(at))


@pytest.mark.parametrize("expr, at, fragments", BAD_EXPRESSIONS, ids=[c[0] for c in BAD_EXPRESSIONS])
def test_a_bad_expression_is_a_located_one_line_error(tmp_path, expr, at, fragments):
    p = write(tmp_path, "g.yaml", INPUTS + f"nodes:\n  y: {expr}\n")
    assert_error(cli("run", p), f"{p}:7:{_col(expr, at)}", *fragments)


# (the node's mapping, what the error points at: an attribute's key, the op, or the node (None), fragments)
BAD_MAPPINGS = [
    ("{op: getitem, in: [x]}", None, ["getitem needs its index"]),
    ("{op: getitem, in: [x], index: [1.5]}", "index", ["each index is a whole number", "got 1.5"]),
    ("{op: getitem, in: [x], index: [true]}", "index", ["each index is", "got True"]),
    ("{op: getitem, in: [x], index: [{start: 1, end: 3}]}", "index", ["keys start, stop and step, not 'end'"]),
    ("{op: getitem, in: [x], index: [{step: 0}]}", "index", ["step must not be 0"]),
    ("{op: getitem, in: [x], index: [{start: a}]}", "index", ["start must be a whole number or null, got 'a'"]),
    ("{op: getitem, in: [x], index: ['...', '...']}", "index", ["only one '...'"]),
    ("{op: getitem, in: [x], idx: [0]}", "idx", ["no attribute 'idx'", "did you mean 'index'"]),
    ("{op: getitem, in: [x], index: [5]}", None, ["index 5 is out of range for axis 0 of (3, 4)", "[x (3, 4)]"]),
    ("{op: getitem, in: [x, x], index: [0]}", "getitem", ["takes 1 input", "gives 2"]),
    ("{op: getitem_grad, in: [b], index: [0], shape: [3, 4]}", None, ["d must have the shape of x[0] of (3, 4), (4,)"]),
    ("{op: getitem_grad, in: [b], index: [0]}", "index", ["getitem_grad needs the shape"]),
    ("{op: stack, in: [x], axis: {a: 1}}", "axis", ["axis must be an integer"]),
]


@pytest.mark.parametrize("node, at, fragments", BAD_MAPPINGS, ids=[c[0] for c in BAD_MAPPINGS])
def test_a_bad_attribute_is_a_located_one_line_error(tmp_path, node, at, fragments):
    p = write(tmp_path, "g.yaml", INPUTS + f"nodes:\n  y: {node}\n")
    assert_error(cli("run", p), f"{p}:7:{3 if at is None else 6 + node.index(at)}", *fragments)


def test_no_other_op_takes_a_mapping_for_an_attribute():
    # an attribute may now hold a mapping (getitem's slices): every other attribute refuses one with a message
    for op, cls in LAYERS.items():
        for key in cls.attr_defaults:
            if (op, key) in (("getitem", "index"), ("getitem_grad", "index")):
                continue
            with pytest.raises(GraphError):
                cls.check_attrs({**{k: v for k, v in cls.attr_defaults.items() if v is not None}, key: {"a": 1}})


# --- cgcalc ops getitem; a deep chain ---------------------------------------------------------------------------


def test_ops_getitem_documents_the_index_in_both_forms():
    r = cli("ops", "getitem")
    assert r.exit_code == 0 and r.stderr == ""
    for text in ("GetItem", "dx = zeros", "{start: 1, stop: 3, step: 1}", "x[:, 1]", "index: [{}, 1]", '"..."'):
        assert text in r.stdout, text
    assert "at least 1 input" in cli("ops", "concat").stdout
    line = cli("ops", "getitm").stderr.strip()
    assert line == "error: unknown op 'getitm' (did you mean 'getitem'?) (see: cgcalc ops)"
    rows = {ln.split()[0]: ln.split() for ln in cli("ops").stdout.splitlines() if ln.split()}
    assert rows["concat"][2] == "1+" and rows["getitem"][2] == "1"


def test_a_chain_of_transposes_ten_times_pythons_recursion_limit_parses_and_runs():
    # x.T.T... is parsed by a loop and lowered by an explicit stack: nothing recurses per .T
    g = cgcalc.loads("inputs:\n  x: [[1, 2, 3]]\nnodes:\n  y: sum(x" + ".T" * 10_000 + "[0] * 2)\n")
    r = g.run()
    assert len(g.plan.steps) == 10_003 and r.value("y") == 12.0
    assert r.grad("x").tolist() == [[2.0, 2.0, 2.0]]


def test_a_graph_of_scalar_inputs_that_stacks_them_warns_only_cgcalcs_way(tmp_path):
    # stack(a, b) makes an array of scalars: numpy's own RuntimeWarning must not reach stderr, only cgcalc's line
    p = write(tmp_path, "g.yaml", "inputs:\n  a: -1\n  b: 2\nnodes:\n  y: sum(log(stack(a, b)))\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (pytest records warnings: a leak would pass unseen)
        r = cli("run", p)
    assert r.exit_code == 0, r.stderr
    assert r.stderr == "warning: NaN first produced by node 'y.2' = log(y.1 (array of shape (2,)))\n"


def test_the_schema_takes_the_mapping_forms_and_refuses_a_bad_index():
    jsonschema = pytest.importorskip("jsonschema")
    from cgcalc.views.schema import graph_schema

    validator = jsonschema.Draft202012Validator(graph_schema())
    x = {"x": [[1.0, 2.0], [3.0, 4.0]]}
    good = [[{}, 1], ["...", {"start": 1, "stop": None, "step": -1}], -1, {"stop": 1}]
    for index in good:
        doc = {"inputs": x, "nodes": {"y": {"op": "getitem", "in": ["x"], "index": index}}}
        assert list(validator.iter_errors(doc)) == [], index
        cgcalc.loads(json.dumps(doc), json=True)  # and cgcalc takes it
    for index in ([1.5], [{"begin": 1}], [{"step": "2"}], "first"):
        doc = {"inputs": x, "nodes": {"y": {"op": "getitem", "in": ["x"], "index": index}}}
        assert list(validator.iter_errors(doc)), index
        with pytest.raises(GraphError):
            cgcalc.loads(json.dumps(doc), json=True)
    many = {"inputs": x, "nodes": {"y": {"op": "concat", "in": ["x", "x", "x", "x"], "axis": 1}}}
    assert list(validator.iter_errors(many)) == []


def test_a_picture_labels_getitem_with_its_index_when_it_fits(tmp_path):
    g = write(
        tmp_path, "g.yaml", "inputs:\n  x: [[1, 2, 3], [4, 5, 6]]\nnodes:\n  y: sum(x[:, 1:]) + sum(x[1, ::-1][0:2])\n"
    )
    out = cli("export", g, "--format", "mermaid")
    assert out.exit_code == 0, out.stderr
    assert '(("[:, 1:] ·' in out.stdout and '(("[0:2] ·' in out.stdout  # up to 7 characters: the index
    assert out.stdout.count('(("[ ] ·') == 1 and "::-1" not in out.stdout  # [1, ::-1], 9: the symbol instead
