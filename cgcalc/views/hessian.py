"""The Hessian of a run as data: labels, the matrix, and whether it came out symmetric (it does wherever the
graph is twice differentiable; at a kink — relu at 0, say — the two mixed partials may differ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ..api import Graph

MAX_ELEMENTS = 400  # of all --wrt inputs together: a 400 x 400 matrix; beyond it, --hvp


class Hessian(NamedTuple):
    graph: str
    output: str
    labels: list[str]
    matrix: Any  # (n, n) ndarray
    asymmetry: float  # max |H - H.T| as computed (0 when symmetric to the last bit)

    def to_dict(self) -> dict:
        return {"graph": self.graph, "output": self.output, "wrt": self.labels, "hessian": self.matrix.tolist()}

    def warnings(self) -> list[str]:
        if not self.asymmetry:
            return []
        return [
            f"the Hessian is not symmetric here (max |H - Hᵀ| = {self.asymmetry:.3g}): the graph is not twice "
            "differentiable at this point (a kink, such as relu at 0); shown as computed"
        ]


def hessian(
    g: Graph,
    overrides: Mapping[str, Any] | None = None,
    wrt: Sequence[str] | None = None,
    output: str | None = None,
    max_elements: int = MAX_ELEMENTS,
) -> Hessian:
    """Graph g's Hessian; symmetric by construction (the upper triangle mirrored) when the computed matrix
    is symmetric to rounding, else as computed, with `asymmetry` saying by how much."""
    import numpy as np

    from ..core.derive import checked
    from ..errors import UsageError

    wrt, output = checked(g.plan, wrt, output, what="a Hessian")
    n = sum(int(np.prod(g.plan.shapes[g.plan.index[w]], dtype=np.int64)) for w in wrt)
    if n > max_elements:
        raise UsageError(
            f"the Hessian of {n:,} elements would have {n * n:,} entries, over the limit of {max_elements:,} "
            f"elements (--max-elements); for its product with a vector, use --hvp NAME=VALUE,..."
        )
    labels, h = g.hessian(overrides, wrt=wrt, output=output)
    diff = np.abs(h - h.T)
    scale = np.maximum(np.abs(h), np.abs(h.T))
    noise = diff <= 1e-13 * np.maximum(scale, 1e-300)
    if noise.all() or not np.isfinite(diff).all():
        asym = 0.0
        upper = np.triu(h)
        h = upper + np.triu(h, 1).T
    else:
        asym = float(diff[~noise].max())
    return Hessian(g.name, output, labels, h, asym)
