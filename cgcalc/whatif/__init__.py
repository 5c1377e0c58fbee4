"""What-if questions answered with the exact gradients: elasticities, sweeps, tornado rows and goal seek.

Plain numbers in, plain records out (each with `to_dict()`, the JSON shape of its command); the views draw
them and the CLI prints them. Every sweep and tornado is one vectorized run (`run_batch`), so that a point
equals `run` at that point (bit for bit for a graph of scalars).
"""

from .common import (
    MAX_POINTS,
    Axis,
    NoSolution,
    axis,
    elasticities,
    parse_axis,
    parse_bounds,
    parse_percent,
    parse_range,
    parse_target,
)
from .solve import SCAN_POINTS, Solution, solve
from .sweep import Sweep, sweep
from .tornado import Tornado, TornadoRow, tornado

__all__ = [
    "MAX_POINTS",
    "SCAN_POINTS",
    "Axis",
    "NoSolution",
    "Solution",
    "Sweep",
    "Tornado",
    "TornadoRow",
    "axis",
    "elasticities",
    "parse_axis",
    "parse_bounds",
    "parse_percent",
    "parse_range",
    "parse_target",
    "solve",
    "sweep",
    "tornado",
]
