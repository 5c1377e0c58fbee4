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
