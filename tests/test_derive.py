"""Derivative graphs (issue 12): Graph.derive / derive_text / hessian / hvp and the store of terms behind them.

Every expected value comes from outside the code under test: the issue's published oracles (DeZero's and JAX's
printed numbers, the book's apple graph), numbers worked out by hand in a comment, sympy evaluated at 40 digits,
float64 central differences, or the layers' numeric backward (`Graph.run().grad`), an implementation separate
from the `backward_ops` that derivative graphs are built with.
"""

from __future__ import annotations

import textwrap

import numpy as np

import cgcalc


def loads(text: str, **kw) -> cgcalc.Graph:
    return cgcalc.loads(textwrap.dedent(text), **kw)


# --- regressions found by the properties below ------------------------------------------------------------


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


# --- 1. the oracles --------------------------------------------------------------------------------

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
