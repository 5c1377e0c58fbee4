"""Derivative graphs (issue 12): Graph.derive / derive_text / hessian / hvp and the store of terms behind them.

Every expected value comes from outside the code under test: the issue's published oracles (DeZero's and JAX's
printed numbers, the book's apple graph), numbers worked out by hand in a comment, sympy evaluated at 40 digits,
float64 central differences, or the layers' numeric backward (`Graph.run().grad`), an implementation separate
from the `backward_ops` that derivative graphs are built with.
"""

from __future__ import annotations

import textwrap

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
