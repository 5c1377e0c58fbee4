"""Property tests of derivative graphs (issue 12): random graphs against the layers' numeric gradients, random
scalar expressions against sympy at orders 1-4, Hessians and HVPs of array graphs against central differences.

The references never come from `derive` itself: `Graph.run().grad` is the layers' numeric `backward` (a separate
implementation from the `backward_ops` derivative graphs are built with), sympy differentiates its own tree and
mpmath evaluates it at 40 digits, and central differences use nothing but forward runs and numeric gradients.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import re
from typing import Any, NamedTuple

import mpmath
import numpy as np
import randgraphs as rg
import sympy
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

import cgcalc

# as in tests/test_batch_props.py: shrinking a random graph is slow, so off unless CGCALC_PROPS_SHRINK=1
PHASES = tuple(Phase) if os.environ.get("CGCALC_PROPS_SHRINK") == "1" else (Phase.explicit, Phase.reuse, Phase.generate)


def budget(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=PHASES,
        report_multiple_bugs=False,
    )


TINY = np.finfo(np.float64).tiny  # the smallest normal float64


def _finite_and_normal(*vs) -> bool:
    """No inf or NaN, and no subnormal number, among these values (floats, arrays or None)."""
    for v in vs:
        if v is None:
            continue
        a = np.abs(np.asarray(v, dtype=np.float64))
        if not np.isfinite(a).all() or ((a != 0) & (a < TINY)).any():
            return False
    return True


def _report(g: rg.RGraph, derived: str, problems: list[str]) -> str:
    return (
        "--- graph ---\n"
        + g.text
        + "--- derivative graph ---\n"
        + derived
        + "--- mismatches ---\n"
        + "\n".join(problems)
    )


# --- the derivative graph computes the numeric gradient -----------------------------------------------------------


def derivative_vs_numeric(g: rg.RGraph, overrides: dict | None, exact: bool, output: str) -> list[str]:
    """The derivative graph of `output` against run().grad for every input that takes a gradient, at the file's
    values or at `overrides`: equal (==: 0.0 and -0.0 are equal) when `exact`, else to 1e-14 relative with an
    absolute allowance of 1e-14 times the largest gradient in the graph (BLAS may add a matmul's products in
    another order; see the test's docstring). Returns the mismatches."""
    graph = cgcalc.loads(g.text, json=g.json)
    r = graph.run(overrides, output=output)
    wrt = [i.name for i in graph.plan.inputs if i.grad]
    d = graph.derive(output=None if output == g.outputs[0] else output)  # the default: the first output
    assert d.outputs == tuple(f"d_{output}_d_{w}" for w in wrt)
    rd = d.run(overrides)
    gmag = rg.magnitude(*[r.grad(n) for n in graph.plan.names])
    problems = []
    for w, o in zip(wrt, d.outputs):
        want, got = np.asarray(r.grad(w)), np.asarray(rd.value(o))
        ok = got.shape == want.shape and (
            np.array_equal(got, want) if exact else rg.close(got, want, 1e-14, 1e-14 * gmag)
        )
        if not ok:
            problems.append(f"{o}: derivative graph {got.tolist()!r} != numeric gradient {want.tolist()!r}")
    return problems


def _graph_with_gradients(src: rg.RandomSource, scalar: bool) -> rg.RGraph:
    g = rg.random_graph(src, scalar=scalar, file_shapes=False)  # a derivative graph is made for the file's shapes
    graph = cgcalc.loads(g.text, json=g.json)
    assume(any(i.grad for i in graph.plan.inputs))
    assume(not graph.run().warnings)  # (NaN or inf: rare, see tests/randgraphs.py)
    return g


@budget(120)
@given(r=st.randoms(use_true_random=False))
def test_derivative_graph_of_an_array_graph_equals_the_numeric_gradient(r):
    """Every op, broadcasting, N-D and 1-D matmul/affine operands, sum/mean over axes with keepdims,
    softmax_with_loss with one-hot, soft and class-index targets (tests/randgraphs.py), at the file's values and
    at a random row of other values.

    Bit for bit (up to the sign of zero) unless the graph has a matmul or an affine: the derivative graph runs
    the same operations in the same order as the numeric backward. The sign of zero: the derivative graph drops
    a zero term where the numeric backward adds or multiplies it (d(-(0 * x))/dx: +0.0 in the derivative graph,
    -0.0 by the numeric backward; see test_derive.py). matmul/affine: the same products, but on arrays laid out
    differently (the numeric seed is a full array of ones, the derivative graph's a broadcast_to view of 1 with
    zero strides), and numpy's matmul adds them in another order for such a view than BLAS does for a
    contiguous array (1 ulp, 1e-15 relative: seen in 10 of 6,000 graphs)."""
    src = rg.RandomSource(r)
    g = _graph_with_gradients(src, scalar=False)
    exact = not g.ops() & {"matmul", "affine"}
    output = src.choice(g.outputs)  # the first, another node, or an input
    problems = derivative_vs_numeric(g, None, exact, output)
    assert not problems, _report(g, cgcalc.loads(g.text, json=g.json).derive_text(), problems)
    row = rg.row(rg.random_rows(g, src, max_rows=1), 0)
    assume(not cgcalc.loads(g.text, json=g.json).run(row).warnings)
    problems = derivative_vs_numeric(g, row, exact, output)
    assert not problems, _report(g, cgcalc.loads(g.text, json=g.json).derive_text(), [f"at {row}"] + problems)


@budget(120)
@given(r=st.randoms(use_true_random=False))
def test_derivative_graph_of_a_scalar_graph_is_the_numeric_gradient_bit_for_bit(r):
    """A graph of scalars runs on Python floats both ways, the same operations in the same order (the
    simplifier's rewrites are exact: powers of two, signs, x * 1, x + 0), so the numbers are equal; only the
    sign of a zero may differ (see above)."""
    src = rg.RandomSource(r)
    g = _graph_with_gradients(src, scalar=True)
    problems = derivative_vs_numeric(g, None, True, src.choice(g.outputs))
    assert not problems, _report(g, cgcalc.loads(g.text, json=g.json).derive_text(), problems)


@budget(100)
@given(r=st.randoms(use_true_random=False))
def test_derivative_graph_at_extreme_magnitudes_is_the_numeric_gradient(r):
    """mul, div and neg of values from 1e-150 to 1e150 (rg.scale_graph): equal, as long as no value of either
    graph is subnormal. Below 2.2e-308 the simplifier's exact rewrite x * (2 a) -> 2 * (x a) is no longer exact
    (x a rounds to fewer bits than x (2 a) does): seen as 1 ulp of a subnormal in 2 of 2,800 graphs. The domain is
    restricted for that documented difference, not the comparison loosened."""
    src = rg.RandomSource(r)
    g = rg.scale_graph(src)
    graph = cgcalc.loads(g.text, json=g.json)
    res = graph.run()
    assume(any(i.grad for i in graph.plan.inputs))
    d = graph.derive()
    rd = d.run()
    assume(_finite_and_normal(*res.values, *[res.grad(n) for n in graph.plan.names], *rd.values))
    problems = derivative_vs_numeric(g, None, True, g.outputs[0])
    assert not problems, _report(g, graph.derive_text(), problems)


@budget(80)
@given(r=st.randoms(use_true_random=False))
def test_run_batch_of_a_derivative_graph_equals_its_rows_run_one_by_one(r):
    """run_batch of the derivative graph, row i == run(row i): every output (the derivatives) and every gradient
    of them (second derivatives, by the numeric backward of the derivative graph's own ops: step, sum_to,
    broadcast_to, reshape, transpose, softmax, log_softmax, one_hot...). Bit for bit for a graph of scalars."""
    src = rg.RandomSource(r)
    g = _graph_with_gradients(src, scalar=src.boolean(0.3))
    d = cgcalc.loads(g.text, json=g.json).derive()
    columns = rg.random_rows(g, src)
    for i in range(len(next(iter(columns.values())))):
        assume(not d.run(rg.row(columns, i)).warnings)
    problems = rg.batch_vs_single(d, columns, list(d.outputs), exact=g.is_scalar())
    assert not problems, _report(g, cgcalc.loads(g.text, json=g.json).derive_text(), problems)


def test_the_property_graphs_derivatives_use_every_op_derivative_graphs_are_made_of():
    """The properties above are only as good as their graphs: over 200 of them, the derivative graphs hold every
    op that backward_ops writes (relu's step, the shape ops, softmax_with_loss's softmax, log_softmax, one_hot,
    getitem's getitem_grad, and the getitem that splits concat's and stack's gradient)."""
    ops: set[str] = set()
    for seed in range(200):
        g = rg.random_graph(rg.RandomSource(seed), file_shapes=False)
        graph = cgcalc.loads(g.text, json=g.json)
        if any(i.grad for i in graph.plan.inputs):
            ops |= {s.op for s in graph.derive().plan.steps}
    want = {"step", "sum_to", "broadcast_to", "reshape", "transpose", "softmax", "log_softmax", "one_hot", "identity"}
    want |= {"getitem", "getitem_grad"}
    assert want <= ops, want - ops


# --- random scalar expressions against sympy, orders 1 to 4 -------------------------------------------------------

X, Y = sympy.symbols("x y", real=True)
SYM = {"x": X, "y": Y}
CONSTANTS = ["0.25", "0.5", "1.5", "2", "3"]  # exact in binary: the text and sympy's Rational are one number
EXPONENTS = ["-2", "-1", "2", "3", "0.5", "1.5"]  # pow with constant exponents (0.5, 1.5: of a positive base)
BOUND = 1e4  # every value of the expression stays within this at the point


class E(NamedTuple):
    """One expression three ways: the text cgcalc reads, sympy's tree, its float64 value at the point."""

    text: str
    sym: Any
    val: float


class Unsafe(Exception):
    pass


def _checked(e: E) -> E:
    if not (math.isfinite(e.val) and abs(e.val) <= BOUND):
        raise Unsafe
    return e


def _positive(u: E, lo: float = 0.3) -> E:
    """u itself when u >= lo at the point, else u ** 2 + 0.5 (>= 0.5 everywhere): a base for log, / and **."""
    if u.val >= lo:
        return u
    return E(f"({u.text}) ** 2 + 0.5", u.sym**2 + sympy.Rational(1, 2), u.val**2 + 0.5)


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


@st.composite
def expressions_at(draw, names: tuple[str, ...], max_depth: int = 3):
    """(expression, point): a random expression of `names` built at a drawn point, so that each op meets its
    operands in a safe domain there (log, / and a real ** of a positive value, relu of a value at least 0.1 away
    from its kink: sympy takes relu's branch at the point, valid in a neighbourhood)."""
    point = {n: draw(st.floats(0.3, 1.5)) * draw(st.sampled_from([1, -1])) for n in names}

    def leaf() -> E:
        if draw(st.integers(0, 3)) == 0:
            c = draw(st.sampled_from(CONSTANTS))
            return E(c, sympy.Rational(c), float(c))
        n = draw(st.sampled_from(names))
        return E(n, SYM[n], point[n])

    def build(depth: int, top: bool = False) -> E:
        if depth == 0 or (not top and draw(st.integers(0, 4)) == 0):
            return leaf()
        op = draw(st.sampled_from(["add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "sigmoid", "relu"]))
        a = build(depth - 1)
        if op in ("add", "sub", "mul", "div"):
            b = build(depth - 1)
            if op == "div":
                b = _positive(b) if b.val > -0.3 else b  # |b| >= 0.3 at the point
            sign = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[op]
            f = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}[op]
            return _checked(E(f"({a.text}) {sign} ({b.text})", f(a.sym, b.sym), f(a.val, b.val)))
        if op == "pow":
            k = draw(st.sampled_from(EXPONENTS))
            if "." in k or k.startswith("-"):
                a = _positive(a)
            return _checked(E(f"({a.text}) ** ({k})", a.sym ** sympy.Rational(k), a.val ** float(k)))
        if op == "neg":
            return E(f"-({a.text})", -a.sym, -a.val)
        if op == "exp":
            return _checked(E(f"exp({a.text})", sympy.exp(a.sym), math.exp(min(a.val, 50.0))))  # > BOUND: Unsafe
        if op == "log":
            a = _positive(a)
            return E(f"log({a.text})", sympy.log(a.sym), math.log(a.val))
        if op == "tanh":
            return E(f"tanh({a.text})", sympy.tanh(a.sym), math.tanh(a.val))
        if op == "sigmoid":
            return E(f"sigmoid({a.text})", 1 / (1 + sympy.exp(-a.sym)), _sigmoid(a.val))
        if abs(a.val) < 0.1:  # relu: too close to its kink at this point
            return a
        return E(f"relu({a.text})", a.sym if a.val > 0 else sympy.Integer(0), max(a.val, 0.0))

    try:
        e = build(max_depth, top=True)
    except (Unsafe, OverflowError, ZeroDivisionError, ValueError):
        assume(False)
    if not e.sym.free_symbols or re.fullmatch(r"[-( ]*[\w.]+\)*", e.text):  # no variable, or no operation
        n = names[0]
        e = E(f"({e.text}) + {n}", e.sym + SYM[n], e.val + point[n])
    return e, point


def _dirac_delta(x, k=0):
    assert x != 0, "a point on a kink"
    return 0


def sympy_at(exprs: list, point: dict[str, float]) -> list[float]:
    """Each sympy expression at the point, by mpmath at 40 digits. (sympy writes (x^2)^(3/2) as |x|^3 for a real
    x: its derivatives hold sign(x) and DiracDelta(x), which is 0 away from x = 0.)"""
    names = list(point)
    modules = [{"DiracDelta": _dirac_delta}, "mpmath"]
    with mpmath.workdps(40):
        args = [mpmath.mpf(point[n]) for n in names]
        return [float(sympy.lambdify([SYM[n] for n in names], e, modules=modules)(*args)) for e in exprs]


def graph_of(e: E, point: dict[str, float]) -> cgcalc.Graph:
    lines = ["inputs:"] + [f"  {n}: {v!r}" for n, v in point.items()] + ["nodes:", f"  f: {json.dumps(e.text)}"]
    return cgcalc.loads("\n".join(lines) + "\n")


def against_sympy(e: E, point: dict[str, float], order: int) -> list[str]:
    """derive(order) of f against sympy's partials, every one (in derive's order: the last name varies fastest).
    Scale-aware: |got - want| <= 1e-10 max(|want|, the largest value the derivative graph computes), as float64
    rounding errors are relative to the values added, not to the result."""
    names = tuple(point)
    d = graph_of(e, point).derive(order=order)
    combos = list(itertools.product(names, repeat=order))
    assert d.outputs == tuple(f"d{order if order > 1 else ''}_f_" + "_".join(f"d_{w}" for w in c) for c in combos)
    partials = {(): e.sym}
    for c in combos:  # every prefix of c is among the combinations of a lower order
        for k in range(1, order + 1):
            if c[:k] not in partials:
                partials[c[:k]] = sympy.diff(partials[c[: k - 1]], SYM[c[k - 1]])
    wants = sympy_at([partials[c] for c in combos], point)
    r = d.run()
    scale = rg.magnitude(*r.values)
    problems = []
    for o, want in zip(d.outputs, wants):
        got = r.value(o)
        if not abs(got - want) <= 1e-10 * max(abs(want), scale, 1e-300):
            problems.append(f"{o} = {got!r}, sympy: {want!r}")
    return problems


@budget(40)
@given(ep=expressions_at(("x",), max_depth=4), order=st.integers(1, 4))
@example(ep=(E("tanh(x) * x ** (3)", sympy.tanh(X) * X**3, 0.0), {"x": 0.75}), order=4)
@example(ep=(E("relu(x) * exp(x)", X * sympy.exp(X), 0.0), {"x": 0.5}), order=3)
@example(ep=(E("log(x) / (sigmoid(x))", sympy.log(X) * (1 + sympy.exp(-X)), 0.0), {"x": 1.25}), order=4)
def test_derive_of_order_k_matches_sympy(ep, order):
    """derive(order=k), k = 1..4, of a random expression of x: the k-th derivative, against sympy's."""
    e, point = ep
    problems = against_sympy(e, point, order)
    assert not problems, (e.text, point, problems)


@budget(30)
@given(ep=expressions_at(("x", "y")), order=st.integers(2, 3))
@example(ep=(E("(x) ** (3) * (y) ** (2)", X**3 * Y**2, 0.0), {"x": 0.5, "y": -1.25}), order=3)
@example(ep=(E("exp(x * y) / (y)", sympy.exp(X * Y) / Y, 0.0), {"x": 0.5, "y": 1.5}), order=2)
def test_mixed_partials_of_two_inputs_match_sympy(ep, order):
    """Every second (and third) partial of f(x, y): d2_f_d_x_d_y and d2_f_d_y_d_x both, against sympy."""
    e, point = ep
    problems = against_sympy(e, point, order)
    assert not problems, (e.text, point, problems)


# --- Hessians and Hessian-vector products of array graphs against central differences -----------------------------

SMOOTH = tuple(op for op in rg.OPS if op != "relu")  # central differences across relu's kink mean nothing
MAX_ELEMENTS = 30  # elements of all inputs together: the Hessian is at most 30 x 30, 60 gradient runs


def smooth_scalar_graph(src: rg.RandomSource) -> tuple[rg.RGraph, str]:
    """A random array graph of smooth ops (tests/randgraphs.py) ending in a scalar: its last node, summed (or
    averaged) when it is an array. Returns the graph and the scalar's name."""
    gen = rg.Gen(src, max_nodes=6, ops=SMOOTH, scalar=src.boolean(0.15))
    gen.graph()
    last = next(t for t in reversed(gen.terms) if t.ref == gen.nodes[-1].name)
    if last.shape:
        n = rg.size(last.shape)
        try:
            gen.add_node("sum", [last], {}, (), min(last.lo * n, last.hi * n), max(last.lo * n, last.hi * n))
        except rg.TooBig:
            gen.add_node("mean", [last], {}, (), last.lo, last.hi)
    top = gen.nodes[-1].name  # an output: finish() inlines no output into an expression, nor renames it
    return rg.finish(src, gen.inputs, gen.nodes, file_shapes=False), top


def flat_gradient(graph: cgcalc.Graph, wrt: list[str], values: dict, output: str) -> np.ndarray:
    r = graph.run(values, output=output)
    return np.concatenate([np.ravel(r.grad(w)) for w in wrt])


def shift(values: dict, wrt: list[str], step: np.ndarray) -> dict:
    """values + step, step flat over the inputs of wrt (C order, as Graph.hessian's labels)."""
    out, start = dict(values), 0
    for w in wrt:
        v = np.asarray(values[w], dtype=np.float64)
        out[w] = v + step[start : start + v.size].reshape(v.shape)
        start += v.size
    return out


def _point(src: rg.RandomSource, g: rg.RGraph, graph: cgcalc.Graph) -> dict:
    """The file's values, or (half the time) a random row of other values for some inputs."""
    r = graph.run()
    values = {i.name: r.value(i.name) for i in graph.plan.inputs}
    if src.boolean(0.5):
        values.update(rg.row(rg.random_rows(g, src, max_rows=1), 0))
    return values


@budget(60)
@given(r=st.randoms(use_true_random=False))
def test_hessian_of_an_array_graph_equals_central_differences_of_the_gradient(r):
    """Graph.hessian column j against (grad(x + h e_j) - grad(x - h e_j)) / 2h, the gradient by the layers'
    numeric backward, h = 1e-5 max(1, |x_j|): the difference's error is ~h^2 f''' + eps |grad| / h, so the
    tolerance is 1e-6 of the largest value, gradient or second derivative involved. Labels are x, W[0,1]..."""
    src = rg.RandomSource(r)
    g, out = smooth_scalar_graph(src)
    graph = cgcalc.loads(g.text, json=g.json)
    wrt = [i.name for i in graph.plan.inputs if i.grad]
    sizes = [rg.size(i.shape) for i in graph.plan.inputs if i.grad]
    assume(wrt and sum(sizes) <= MAX_ELEMENTS)
    values = _point(src, g, graph)
    res = graph.run(values, output=out)
    assume(not res.warnings)
    labels, h = graph.hessian(values, output=out)
    shapes = [np.shape(values[w]) for w in wrt]
    want_labels = [
        w if not s else f"{w}[{','.join(map(str, ix))}]" for w, s in zip(wrt, shapes) for ix in np.ndindex(s)
    ]
    assert labels == want_labels
    n = len(labels)
    assert h.shape == (n, n)
    x = np.concatenate([np.ravel(values[w]) for w in wrt])
    fd = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1e-5 * max(1.0, abs(x[j]))
        plus, minus = shift(values, wrt, e), shift(values, wrt, -e)
        assume(not graph.run(plus, output=out).warnings and not graph.run(minus, output=out).warnings)
        fd[:, j] = (flat_gradient(graph, wrt, plus, out) - flat_gradient(graph, wrt, minus, out)) / (2 * e[j])
    scale = max(1.0, rg.magnitude(fd, h, flat_gradient(graph, wrt, values, out), *res.values))
    assert rg.close(h, fd, 1e-6, 1e-6 * scale), (g.text, labels, h.tolist(), fd.tolist())
    # symmetric: the rows come from different paths through the graph, so up to rounding
    assert rg.close(h, h.T, 1e-12, 1e-12 * scale), (g.text, h.tolist())


@budget(60)
@given(r=st.randoms(use_true_random=False))
def test_hvp_equals_hessian_times_v_and_central_differences_along_v(r):
    """Graph.hvp(v) against Graph.hessian @ v (two code paths: to rounding), and against the independent
    (grad(x + h v) - grad(x - h v)) / 2h (to 1e-6 of the largest value involved)."""
    src = rg.RandomSource(r)
    g, out = smooth_scalar_graph(src)
    graph = cgcalc.loads(g.text, json=g.json)
    wrt = [i.name for i in graph.plan.inputs if i.grad]
    assume(wrt and sum(rg.size(i.shape) for i in graph.plan.inputs if i.grad) <= MAX_ELEMENTS)
    values = _point(src, g, graph)
    assume(not graph.run(values, output=out).warnings)
    rng = np.random.default_rng(src.seed())
    vector = {w: rng.normal(size=np.shape(values[w])) for w in wrt}
    vector = {w: float(v) if np.ndim(v) == 0 else v for w, v in vector.items()}
    hv = graph.hvp(vector, values, output=out)
    assert list(hv) == wrt
    for w in wrt:
        assert np.shape(hv[w]) == np.shape(values[w]), w
    got = np.concatenate([np.ravel(hv[w]) for w in wrt])
    v = np.concatenate([np.ravel(vector[w]) for w in wrt])
    _, h = graph.hessian(values, output=out)
    x = np.concatenate([np.ravel(values[w]) for w in wrt])
    step = 1e-5 * max(1.0, float(np.abs(x).max())) / float(np.abs(v).max())
    plus, minus = shift(values, wrt, step * v), shift(values, wrt, -step * v)
    assume(not graph.run(plus, output=out).warnings and not graph.run(minus, output=out).warnings)
    fd = (flat_gradient(graph, wrt, plus, out) - flat_gradient(graph, wrt, minus, out)) / (2 * step)
    scale = max(1.0, rg.magnitude(fd, h, got, flat_gradient(graph, wrt, values, out)) * float(np.abs(v).sum()))
    assert rg.close(got, h @ v, 1e-12, 1e-12 * scale), (g.text, got.tolist(), (h @ v).tolist())
    assert rg.close(got, fd, 1e-6, 1e-6 * scale), (g.text, got.tolist(), fd.tolist())


@budget(60)
@given(r=st.randoms(use_true_random=False))
def test_every_name_a_derivative_file_gives_is_an_identifier_it_has_taken(r):
    """The YAML writer leaves every name plain when none of the names taken is a word YAML reads as a number
    (nan, Inf...): it counts on derive's layout giving identifiers only (an expression's inner node y.1 becomes
    y_1), each among `fresh.used`. Orders 1 and 2, and the HVP graph with its added vector inputs."""
    from cgcalc.core.derive import checked, derive, hvp_terms, layout

    src = rg.RandomSource(r)
    g = _graph_with_gradients(src, scalar=src.boolean(0.5))
    plan = cgcalc.loads(g.text, json=g.json).plan
    wrt, output = checked(plan, None, None)
    lays = [layout(plan, derive(plan, wrt, output), output, wrt)]
    if plan.shapes[plan.index[output]] == ():
        lays.append(layout(plan, derive(plan, wrt, output, 2), output, wrt, 2))
        d, vs = hvp_terms(plan, wrt, output)
        lays.append(layout(plan, d, output, wrt, 2, vs))
    for lay in lays:
        given_names = [n for n in lay.names if n is not None]
        assert given_names and all(n.isidentifier() and n in lay.fresh.used for n in given_names), given_names
