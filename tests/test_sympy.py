"""Random scalar expression graphs against sympy's symbolic derivatives, and Python's precedence.

Hypothesis builds an expression twice, in parallel: as the text a user would write in a graph file and
as a sympy expression. cgcalc parses the text; sympy differentiates its own tree. The two meet only in
the numbers compared at the end.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from typing import NamedTuple

import mpmath
import pytest
import sympy
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import cgcalc

X, Y, Z = sympy.symbols("x y z", real=True)
SYMBOLS = {"x": X, "y": Y, "z": Z}

RTOL, ATOL = 1e-9, 1e-12

# constants that are exact in binary, so that the text and sympy's Rational mean the same number
CONSTANTS = ["0.5", "1", "1.5", "2", "3", "0.25", "4"]


class Term(NamedTuple):
    """One expression three ways: the text cgcalc reads, sympy's tree, and a float64 evaluation."""

    text: str
    sym: sympy.Expr
    fn: Callable[[dict[str, float]], float]


class Unsafe(Exception):
    """A point where some intermediate value is too large, or too close to a pole, to compare sensibly."""


BOUND = 1e8  # every intermediate value stays within this; keeps float64 far from overflow and poles


def bounded(v: float) -> float:
    if not abs(v) <= BOUND:  # also NaN
        raise Unsafe
    return v


def away_from_zero(v: float) -> float:
    if v < 1 / BOUND:
        raise Unsafe
    return v


def sym_sigmoid(u):
    return 1 / (1 + sympy.exp(-u))


def constant(c: str) -> Term:
    return Term(c, sympy.Rational(c), lambda env: float(c))


def variable(n: str) -> Term:
    return Term(n, SYMBOLS[n], lambda env: env[n])


def leaves():
    names = st.sampled_from(list(SYMBOLS)).map(variable)
    return st.one_of(names, names, st.sampled_from(CONSTANTS).map(constant))


def unary(name: str, sym, fn, arg: Term) -> Term:
    return Term(f"{name}({arg.text})", sym(arg.sym), lambda env: bounded(fn(arg.fn(env))))


ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def binary(a: Term, op: str, b: Term) -> Term:
    f = ARITH[op]
    if op == "/":  # b is a positive expression

        def fn(env):
            return bounded(a.fn(env) / away_from_zero(b.fn(env)))
    else:

        def fn(env):
            return bounded(f(a.fn(env), b.fn(env)))

    return Term(f"({a.text}) {op} ({b.text})", f(a.sym, b.sym), fn)


def integer_power(a: Term, n: int) -> Term:
    def fn(env):
        v = a.fn(env)
        return bounded((away_from_zero(v) if n < 0 else v) ** n)

    return Term(f"({a.text}) ** {n}", a.sym**n, fn)


def power(a: Term, b: Term) -> Term:
    """a ** b for a positive base a and any exponent."""
    return Term(
        f"({a.text}) ** ({b.text})", a.sym**b.sym, lambda env: bounded(math.pow(away_from_zero(a.fn(env)), b.fn(env)))
    )


def f_sigmoid(u: float) -> float:
    return 1 / (1 + math.exp(-u))


def positives(inner):
    """Expressions that are positive wherever `inner` is finite: safe under log, / and a real **."""
    consts = st.sampled_from(["0.5", "2", "3"]).map(constant)
    square = st.tuples(inner, st.sampled_from(["0.5", "1", "2"])).map(
        lambda t: binary(integer_power(t[0], 2), "+", constant(t[1]))
    )
    exp = inner.map(lambda t: unary("exp", sympy.exp, math.exp, t))
    sig = inner.map(lambda t: unary("sigmoid", sym_sigmoid, f_sigmoid, t))
    return st.one_of(consts, square, exp, sig)


def extend(inner):
    """One more operation on top of smaller expressions."""
    pos = positives(inner)

    def op(sym):
        return st.tuples(inner, inner).map(lambda t: binary(t[0], sym, t[1]))

    return st.one_of(
        op("+"),
        op("-"),
        op("*"),
        st.tuples(inner, pos).map(lambda t: binary(t[0], "/", t[1])),
        # small integer exponents (constants: no gradient for them) on any base
        st.tuples(inner, st.integers(0, 3)).map(lambda t: integer_power(*t)),
        # negative integer exponents, and an expression as exponent, on a positive base
        st.tuples(pos, st.integers(-3, -1)).map(lambda t: integer_power(*t)),
        st.tuples(pos, inner).map(lambda t: power(*t)),
        inner.map(lambda t: Term(f"-({t.text})", -t.sym, lambda env: -t.fn(env))),
        inner.map(lambda t: unary("exp", sympy.exp, math.exp, t)),
        pos.map(lambda t: unary("log", sympy.log, lambda v: math.log(away_from_zero(v)), t)),
        inner.map(lambda t: unary("tanh", sympy.tanh, math.tanh, t)),
        inner.map(lambda t: unary("sigmoid", sym_sigmoid, f_sigmoid, t)),
    )


expressions = st.recursive(leaves(), extend, max_leaves=8)
# the node's own expression must be an operation: not a name or number, nor a minus sign folded into one
top_expressions = extend(expressions).filter(lambda t: not re.fullmatch(r"[-(]*[0-9.]+\)*", t.text))

points = st.floats(0.25, 2.0).flatmap(lambda v: st.sampled_from([v, -v]))


def graph_text(expr: str, values: dict[str, float]) -> str:
    lines = ["inputs:"] + [f"  {n}: {v!r}" for n, v in values.items()]
    lines += ["nodes:", f"  f: {json.dumps(expr)}", "outputs: [f]"]
    return "\n".join(lines) + "\n"


def reference(exprs, symbols, point) -> list[float] | None:
    """Each expression at the point, evaluated by mpmath at 40 digits (far more precise than float64).

    A rough float64 pass comes first and turns away points where a value overflows or leaves the real
    line: it keeps mpmath from chasing astronomically large numbers.
    """
    try:
        rough = [sympy.lambdify(symbols, e, modules="math")(*point) for e in exprs]
    except (OverflowError, ValueError, ZeroDivisionError):
        return None
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and abs(v) < 1e12 for v in rough):
        return None
    with mpmath.workdps(40):
        fine = [sympy.lambdify(symbols, e, modules="mpmath")(*map(mpmath.mpf, point)) for e in exprs]
        return [float(v) for v in fine]


def close(got: float, want: float) -> bool:
    return abs(got - want) <= ATOL + RTOL * abs(want)


@settings(max_examples=150, deadline=None)
@given(expr=top_expressions, x=points, y=points, z=points)
@example(
    expr=Term(
        "x ** 2 * y + exp(-x) / y",
        X**2 * Y + sympy.exp(-X) / Y,
        lambda e: e["x"] ** 2 * e["y"] + math.exp(-e["x"]) / e["y"],
    ),
    x=1.5,
    y=2.0,
    z=1.0,
)
@example(expr=Term("log(x * x + 1)", sympy.log(X * X + 1), lambda e: math.log(e["x"] ** 2 + 1)), x=-0.5, y=1.0, z=1.0)
@example(expr=Term("x * x", X * X, lambda e: e["x"] ** 2), x=-1.5, y=1.0, z=1.0)
@example(expr=Term("sigmoid(z) - tanh(y)", sym_sigmoid(Z) - sympy.tanh(Y), lambda e: 0.0), x=1.0, y=0.5, z=-2.0)
@example(expr=Term("x ** -2 - -y ** 3 * z", X**-2 + Y**3 * Z, lambda e: 0.0), x=0.5, y=-1.5, z=2.0)
def test_random_expression_value_and_gradients_match_sympy(expr, x, y, z):
    text, sym = expr.text, expr.sym
    values = {"x": x, "y": y, "z": z}
    try:
        expr.fn(values)
    except (Unsafe, OverflowError, ZeroDivisionError, ValueError):
        assume(False)
    exprs = [sym] + [sympy.diff(sym, s) for s in SYMBOLS.values()]
    ref = reference(exprs, list(SYMBOLS.values()), [x, y, z])
    # keep to values float64 holds with room to spare; the point is the calculus, not overflow
    assume(ref is not None)
    want, want_grads = ref[0], dict(zip(SYMBOLS, ref[1:]))

    r = cgcalc.loads(graph_text(text, values)).run()
    assert r.warnings == (), text
    assert close(r.value("f"), want), (text, r.value("f"), want)
    for n, w in want_grads.items():
        g = r.grad(n)
        assert type(g) is float
        assert close(g, w), (text, n, g, w)


def test_a_variable_the_expression_does_not_use_has_gradient_zero():
    r = cgcalc.loads(graph_text("x * x + 1", {"x": 3.0, "y": 2.0, "z": 1.0})).run()
    assert r.value("f") == 10.0
    assert r.grad("x") == 6.0
    assert r.grad("y") == 0.0
    assert r.grad("z") == 0.0


# --- precedence: the same as Python's ------------------------------------------------------------


PRECEDENCE = [
    "-a ** 2",
    "a ** -b ** c",
    "a - b - c",
    "a / b / c",
    "a ** b ** c",
    "-a * b",
    "a - -b",
    "a + b * c ** 2",
    "(a + b) * c",
    "a * -b ** 2 + c",
    "-(a - b) ** 2 / c",
    "a - b * c / a",
]
CONSTANT_ONLY = [
    "2 ** 3 ** 2",
    "-2 ** 2",
    "2 ** -1",
    "-2 ** -2 ** 2",
    "10 - 4 - 3",
    "64 / 4 / 2",
    "2 * 3 ** 2",
    "-3 * 2 + 1",
    "(1 + 2) * 3",
    "2 - -3 ** 2",
]


@pytest.mark.parametrize("text", PRECEDENCE)
def test_precedence_matches_sympys_parse_of_the_same_text(text):
    values = {"a": 1.5, "b": 0.75, "c": 2.0}
    names = sympy.symbols("a b c", positive=True)
    local = dict(zip(["a", "b", "c"], names))
    sym = sympy.parse_expr(text, local_dict=local, evaluate=True)
    ref = reference([sym] + [sympy.diff(sym, s) for s in names], names, list(values.values()))
    assert ref is not None
    lines = ["inputs:"] + [f"  {n}: {v!r}" for n, v in values.items()] + ["nodes:", f"  f: {json.dumps(text)}"]
    r = cgcalc.loads("\n".join(lines) + "\n").run()
    assert close(r.value("f"), ref[0]), (text, r.value("f"), ref[0])
    for n, want in zip(values, ref[1:]):
        assert close(r.grad(n), want), (text, n, r.grad(n), want)


@pytest.mark.parametrize("text", CONSTANT_ONLY)
def test_constant_expression_matches_python(text):
    want = float(eval(text, {"__builtins__": {}}))  # Python's own arithmetic is the reference here
    r = cgcalc.loads(f"inputs:\n  x: 1\nnodes:\n  f: {json.dumps(text)}\n").run()
    assert r.value("f") == want


@pytest.mark.parametrize(
    "text, want",
    [
        ("-a ** 2", -4.0),  # -(a ** 2), not (-a) ** 2
        ("a ** -b ** c", 2.0**-9.0),  # a ** (-(b ** c))
        ("a - b - c", -3.0),  # (a - b) - c, not a - (b - c) = 1
        ("2 ** 3 ** 2", 512.0),  # right-associative
        ("a ** b ** c", 2.0**9.0),
    ],
)
def test_precedence_known_values(text, want):
    r = cgcalc.loads(f"inputs:\n  a: 2\n  b: 3\n  c: 2\nnodes:\n  f: {json.dumps(text)}\n").run()
    assert r.value("f") == want


# random chains of operators with Python's precedence, no parentheses at all
_OPS = ["+", "-", "*", "/", "**"]


@st.composite
def flat_expressions(draw):
    n = draw(st.integers(2, 5))
    parts = []
    powers = 0
    for i in range(n):
        if draw(st.booleans()):
            parts.append("-")
        parts.append(draw(st.sampled_from(["a", "b", "c", "2", "3"])))
        if i < n - 1:
            op = draw(st.sampled_from(_OPS))
            if op == "**":
                powers += 1
                if powers > 2:  # three levels of ** overflow quickly
                    op = "*"
            parts.append(op)
    return " ".join(parts)  # "- x" after an operator is a unary minus, as in Python


@settings(max_examples=150, deadline=None)
@given(text=flat_expressions())
@example(text="- a ** 2")
@example(text="a ** - b ** c")
def test_random_flat_expressions_follow_python_precedence(text):
    values = {"a": 1.25, "b": 0.5, "c": 1.5}
    want = float(eval(text, {"__builtins__": {}}, dict(values)))  # the reference: Python's own parser
    assume(math.isfinite(want) and abs(want) < 1e12)
    names = sympy.symbols("a b c", positive=True)
    local = dict(zip(["a", "b", "c"], names))
    sym = sympy.parse_expr(text, local_dict=local)
    ref = reference([sympy.diff(sym, s) for s in names], names, list(values.values()))
    assume(ref is not None)
    lines = ["inputs:"] + [f"  {n}: {v!r}" for n, v in values.items()] + ["nodes:", f"  f: {json.dumps(text)}"]
    r = cgcalc.loads("\n".join(lines) + "\n").run()
    assert close(r.value("f"), want), (text, r.value("f"), want)
    for n, want_grad in zip(values, ref):
        assert close(r.grad(n), want_grad), (text, n, r.grad(n), want_grad)
