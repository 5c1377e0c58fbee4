"""A tornado: the output at the low and high end of each input's range, the others fixed, in one vectorized run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..core.compiler import Plan
from ..core.vectorized import run_batch
from ..errors import UsageError
from .common import _base, _columns, _scalar, _scalar_input


class TornadoRow(NamedTuple):
    input: str
    value: float  # the input's own value (the file's, or --set)
    low_input: float
    high_input: float
    low: float  # the output at low_input, the other inputs fixed (computed, not extrapolated)
    high: float
    swing: float  # |high - low|
    grad: float  # d output / d input at the base point
    linear_low: float  # the gradient's linear estimate: base + grad * (low_input - value)
    linear_high: float


class Tornado(NamedTuple):
    graph: str
    output: str
    base: float
    by: float  # the fraction inputs without a --range move by (0.1: ±10%)
    rows: list[TornadoRow]  # sorted by swing, largest first (ties in file order)
    ranged: list[str]  # the inputs moved to --range bounds rather than by `by`
    skipped: list[str]  # inputs not moved: arrays, and constants (grad: false)
    warnings: list[str]

    def to_dict(self) -> dict:
        keys = ("input", "low_input", "high_input", "low", "high", "swing")
        return {
            "graph": self.graph,
            "output": self.output,
            "base": self.base,
            "rows": [{k: getattr(r, k) for k in keys} for r in self.rows],
        }


def tornado(
    plan: Plan,
    overrides: Mapping[str, Any] | None = None,
    by: float = 0.1,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    output: str | None = None,
) -> Tornado:
    """Each scalar input moved down and up (by the fraction `by` of its value, or to its `ranges` bounds) with the
    others fixed; the output at each, computed in one vectorized run, and the gradient's linear estimate."""
    import numpy as np

    if not (math.isfinite(by) and by > 0):
        raise UsageError(f"tornado: by must be a fraction above 0, got {by!r}")
    ranges = dict(ranges or {})
    base = _base(plan, overrides, output, "tornado")
    for name in ranges:
        _scalar_input(plan, base, name, "tornado", "moves")
    out = base.output
    moving = [i.name for s, i in enumerate(plan.inputs) if i.grad and _scalar(base.values[s])]
    skipped = [i.name for i in plan.inputs if i.name not in moving]
    if not moving:
        raise UsageError(
            f"tornado moves scalar inputs with a gradient, and {plan.spec.name} has none "
            f"(its inputs are arrays or constants: {', '.join(skipped)})"
        )
    warnings, bounds = [], []
    for name in moving:
        x = float(base.value(name))
        if name in ranges:
            bounds.append(ranges[name])
            continue
        bounds.append((x - by * abs(x), x + by * abs(x)))
        if x == 0:
            warnings.append(f"'{name}' is 0: moving it by ±{by:.0%} leaves it at 0 (give --range {name}=LO:HI)")
    k = len(moving)
    cols = {}
    for i, name in enumerate(moving):
        col = np.full(2 * k, float(base.value(name)))
        col[2 * i : 2 * i + 2] = bounds[i]
        cols[name] = col
    r = run_batch(plan, _columns(base, overrides, 2 * k, cols), [out], grads=False)
    at = r.outputs[out].tolist()
    y0 = float(base.value(out))
    rows = []
    for i, name in enumerate(moving):
        lo_x, hi_x = bounds[i]
        x, g = float(base.value(name)), float(base.grad(name))
        low, high = at[2 * i], at[2 * i + 1]
        rows.append(
            TornadoRow(name, x, lo_x, hi_x, low, high, abs(high - low), g, y0 + g * (lo_x - x), y0 + g * (hi_x - x))
        )
    rows.sort(key=lambda row: -row.swing if row.swing == row.swing else math.inf)
    bad = [row.input for row in rows if not (math.isfinite(row.low) and math.isfinite(row.high))]
    if bad:
        warnings.append(f"{out} is not finite where {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} moved")
    ranged = [n for n in moving if n in ranges]
    return Tornado(plan.spec.name, out, y0, by, rows, ranged, skipped, warnings)
