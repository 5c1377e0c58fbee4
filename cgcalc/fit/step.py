"""One step's arithmetic: the plan a training step runs (only what the loss needs), the graph evaluated at a point
(forward, and backward to the parameters), the book's numerical gradient, and Newton's update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.runtime import complete, shape_of
from ..errors import CgcalcError


def pruned(plan, output: str, params: Sequence[str]):
    """The plan of a training step: only the nodes `output` depends on (a graph's accuracy node need not be
    computed at every step, only when it is logged), and gradients only toward the parameters, not the data
    (core.subplan.toward)."""
    from ..core.subplan import toward

    return toward(plan, output, params)


class Point:
    """The graph evaluated at a point: forward, and backward from the output to the parameters. The plan is made
    a Program once per set of input shapes, which fit tells by the number of rows (a batch graph's last,
    smaller minibatch has its own). numpy's warnings are the caller's to turn off (once, for the whole loop)."""

    def __init__(self, plan, output: str, base: list, params: list[str]) -> None:
        self.plan, self.base = plan, base
        self.out = plan.index[output]
        self.slots = {name: plan.index[name] for name in params}
        self.programs: dict = {}
        self.tail = [None] * len(plan.steps) + list(plan.constants)

    def values(self, params: Mapping[str, Any], cols: Mapping[str, Any] | None = None) -> list:
        vals = list(self.base)
        index = self.plan.index
        for name, v in params.items():
            vals[index[name]] = v
        if cols:
            for name, v in cols.items():
                vals[index[name]] = v
        return vals

    def run(self, vals: list, rows: int | None = None, grads: bool = True) -> tuple[list, dict | None]:
        """(every slot's value, the parameters' gradients or None); `rows`: how many the columns in `vals`
        have (None: the graph's own inputs)."""
        plan = self.plan
        program = self.programs.get(rows)
        if program is None:
            from ..core.program import Program

            program = self.programs[rows] = Program(plan, *plan.infer([shape_of(v) for v in vals]))
        full = vals + self.tail
        layers = program.forward(full)
        if not grads:
            return full, None
        g = program.backward(full, layers, self.out)
        slots = self.slots
        complete(plan, full, g, slots.values())
        return full, {name: g[s] for name, s in slots.items()}


def numerical_gradient(loss, params: dict) -> dict:
    """The book's numerical_gradient (chapter 4) of loss(params): central differences with h = 1e-4, element by
    element, with the same arithmetic (x + h from float(x), then x - h)."""
    h = 1e-4
    grads = {}
    work = dict(params)
    for name, v in params.items():
        if type(v) is float:
            work[name] = float(v) + h
            f1 = loss(work)
            work[name] = v - h
            f2 = loss(work)
            work[name] = v
            grads[name] = (f1 - f2) / (2 * h)
            continue
        import numpy as np

        x = np.array(v, dtype=np.float64)
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        work[name] = x
        for i in range(x.size):
            tmp = flat[i]
            flat[i] = float(tmp) + h
            f1 = loss(work)
            flat[i] = tmp - h
            f2 = loss(work)
            gflat[i] = (f1 - f2) / (2 * h)
            flat[i] = tmp
        work[name] = v
        grads[name] = g
    return grads


class Newton:
    """Newton's method (DeZero step 29: x <- x - f'(x) / f''(x)), the Hessian from Graph.hessian; with several
    parameter elements, x <- x - lr H⁻¹ g over all of them together."""

    def __init__(self, graph, output: str, overrides, lr: float) -> None:
        self.graph, self.output, self.lr = graph, output, lr
        self.fixed = dict(overrides or {})

    def update(self, params: dict, grads: dict) -> dict:
        import numpy as np

        _, h = self.graph.hessian({**self.fixed, **params}, wrt=list(params), output=self.output)
        flat = [np.ravel(grads[p]) for p in params]
        g = np.concatenate(flat) if len(flat) > 1 else flat[0]
        if g.size == 1:
            d = g / h[0, 0]  # as DeZero divides (a solver may multiply by a reciprocal instead)
        else:
            try:
                d = np.linalg.solve(h, g)
            except np.linalg.LinAlgError:
                raise CgcalcError("newton: the Hessian is singular here, so the step is undefined") from None
        out, start = {}, 0
        for p, v in params.items():
            size = int(np.size(v))
            step = d[start : start + size]
            start += size
            out[p] = v - self.lr * float(step[0]) if type(v) is float else v - self.lr * step.reshape(np.shape(v))
        return out
