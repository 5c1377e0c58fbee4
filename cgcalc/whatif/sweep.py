"""A sweep: the output and its derivatives over a range (or a grid) of one or two inputs, in one vectorized run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..core.compiler import Plan
from ..core.vectorized import run_batch
from ..errors import UsageError
from .common import MAX_POINTS, Axis, _base, _columns, _point, _scalar_input


class Sweep(NamedTuple):
    """The output and its derivatives at every point of a sweep (a grid for two inputs, the first varying
    slowest). Arrays of one value per point."""

    graph: str
    output: str
    axes: list[Axis]
    columns: dict  # input name -> the input's value at each point
    values: Any  # the output at each point
    grads: dict  # input name -> d output / d input at each point
    at: dict  # the run at the file's values (with --set): {"inputs": {name: x}, "value": v, "grad": {name: g}}
    warnings: list[str]

    @property
    def inputs(self) -> list[str]:
        return [a.name for a in self.axes]

    def to_dict(self) -> dict:
        names = self.inputs
        xs = [self.columns[n].tolist() for n in names]
        gs = [self.grads[n].tolist() for n in names]
        values = self.values.tolist()
        if len(names) == 1:
            (a,) = names
            points = [{a: x, "value": v, "grad": {a: g}} for x, v, g in zip(xs[0], values, gs[0])]
        else:
            a, b = names
            points = [
                {a: x, b: y, "value": v, "grad": {a: ga, b: gb}}
                for x, y, v, ga, gb in zip(xs[0], xs[1], values, gs[0], gs[1])
            ]
        return {"graph": self.graph, "output": self.output, "inputs": names, "points": points}


def sweep(
    plan: Plan,
    axes: Sequence[Axis],
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
) -> Sweep:
    """The output and its gradient with respect to each swept input at every point, in one vectorized run."""
    import numpy as np

    if not 1 <= len(axes) <= 2:
        raise UsageError(f"sweep takes one or two NAME=START:STOP:N, got {len(axes)}")
    for a in axes:
        if not (isinstance(a.n, int) and a.n >= 2):
            raise UsageError(f"sweep of '{a.name}': N must be a whole number of at least 2, got {a.n!r}")
        if not (math.isfinite(a.start) and math.isfinite(a.stop)) or a.start == a.stop:
            raise UsageError(f"sweep of '{a.name}': START and STOP must be finite and different")
    names = [a.name for a in axes]
    if len(set(names)) < len(names):
        raise UsageError(f"sweep: '{names[0]}' is swept twice")
    for n in names:
        if overrides and n in overrides:
            raise UsageError(f"sweep: '{n}' is both swept and set with --set (choose one)")
    base = _base(plan, overrides, output, "sweep")
    for n in names:
        _scalar_input(plan, base, n, "sweep", "varies")
    total = math.prod(a.n for a in axes)
    if total > MAX_POINTS:
        counts = " × ".join(f"{a.n:,}" for a in axes)
        raise UsageError(
            f"sweep of {counts} = {total:,} points is over the limit of {MAX_POINTS:,} "
            "(cgcalc batch evaluates any number of rows, streaming)"
        )
    out = base.output
    at_axis = [a.values() for a in axes]
    if len(axes) == 1:
        moved = {names[0]: at_axis[0]}
    else:  # the grid, the first input varying slowest
        moved = {names[0]: np.repeat(at_axis[0], axes[1].n), names[1]: np.tile(at_axis[1], axes[0].n)}
    r = run_batch(plan, _columns(base, overrides, total, moved), [out])
    values = r.outputs[out]
    if values.shape != (total,):  # an input that changes the output's shape along the sweep cannot: scalars
        raise UsageError(f"sweep needs a scalar output; '{out}' has shape {values.shape[1:]}")
    grads = {n: r.grads[out][n] for n in names}
    at = {
        "inputs": {n: float(base.value(n)) for n in names},
        "value": float(base.value(out)),
        "grad": {n: float(base.grad(n)) for n in names},
    }
    warnings = []
    for what, a in [(out, values)] + [(f"d{out}/d{n}", grads[n]) for n in names]:
        finite = np.isfinite(a)
        if finite.all():
            continue
        bad = ~finite
        first = int(np.argmax(bad))
        where = _point(names, [moved[n][first] for n in names])
        warnings.append(f"{what} is not finite at {int(bad.sum()):,} of {total:,} points (the first: {where})")
    return Sweep(plan.spec.name, out, list(axes), moved, values, grads, at, warnings)
