"""cgcalc: a computational-graph calculator (forward values and backprop gradients of every node)."""

from .api import Graph, load, loads
from .core.runtime import Result
from .errors import CgcalcError, GraphError, RowsError, ShapeError

__all__ = ["CgcalcError", "Graph", "GraphError", "Result", "RowsError", "ShapeError", "load", "loads"]


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import version

        return version("cgcalc")
    raise AttributeError(name)
