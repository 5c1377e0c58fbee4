"""`cgcalc check`: backprop against central differences, element by element, as the book's
gradient_check.py does. Pure data out; render.py draws it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.compiler import Plan
from ..core.layers import Relu
from ..core.runtime import Session, check_outputs, to_plain
from ..errors import CgcalcError

if TYPE_CHECKING:
    from ..api import Graph

PASS, FAIL, KINK, UNDEFINED = "pass", "FAIL", "kink", "undefined"
NAN = math.nan
MAX_ELEMENTS = 1000  # elements checked per input by default; each costs two runs of the whole graph


@dataclass(frozen=True, slots=True)
class Element:
    index: tuple[int, ...]  # () for a scalar input
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    status: str  # pass | FAIL | kink (a point where an op has no derivative) | undefined (graph fails at x±eps)


@dataclass(frozen=True, slots=True)
class InputCheck:
    output: str
    name: str
    shape: tuple[int, ...]
    elements: tuple[Element, ...]
    total: int = 1  # elements the input has (more than `elements` when a sample was checked)

    @property
    def status(self) -> str:
        statuses = {e.status for e in self.elements}
        for s in (FAIL, KINK, UNDEFINED):
            if s in statuses:
                return s
        return PASS

    @property
    def worst(self) -> Element | None:
        order = {FAIL: 0, KINK: 1, UNDEFINED: 2, PASS: 3}
        return min(self.elements, key=lambda e: (order[e.status], -_nan_big(e.abs_err)), default=None)


def _nan_big(x: float) -> float:
    return float("inf") if x != x else x


@dataclass(frozen=True, slots=True)
class CheckReport:
    graph: str
    eps: float
    rtol: float
    atol: float
    inputs: tuple[InputCheck, ...]
    warnings: tuple[str, ...] = ()  # the first NaN or inf a node produced at the given inputs, as `run` says
    order: int = 1  # 2: Hessian entries against central differences of the gradient

    @property
    def ok(self) -> bool:
        return all(e.status != FAIL for c in self.inputs for e in c.elements)

    def to_dict(self) -> dict:
        return {
            "graph": self.graph,
            "eps": self.eps,
            "rtol": self.rtol,
            "atol": self.atol,
            "ok": self.ok,
            **({"order": self.order} if self.order != 1 else {}),
            "inputs": [
                {
                    "output": c.output,
                    "name": c.name,
                    "shape": list(c.shape),
                    "status": c.status,
                    "checked": len(c.elements),
                    "elements_total": c.total,
                    "elements": [
                        {
                            "index": list(e.index),
                            "analytic": e.analytic,
                            "numeric": e.numeric,
                            "abs_err": e.abs_err,
                            "rel_err": e.rel_err,
                            "status": e.status,
                        }
                        for e in c.elements
                    ],
                }
                for c in self.inputs
            ],
        }


def _kinks(layers: list) -> tuple:
    """Which side of its kink every relu input is on: x > 0, x == 0 or x < 0, element by element; and of every
    other op with kinks, what its `sides()` says (a tie of maximum, clip at a bound, argmax's choice...)."""
    sig = []
    for layer in layers:
        if isinstance(layer, Relu):
            x = layer.x
            sig.append(str(to_plain((x > 0) * 1 - (x < 0) * 1)))
        else:
            sides = getattr(layer, "sides", None)
            if sides is not None:
                sig.append(str([to_plain(v) for v in sides()]))
    return tuple(sig)


def check(
    plan: Plan,
    overrides: Mapping[str, Any] | None = None,
    outputs: list[str] | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    max_elements: int | None = MAX_ELEMENTS,
) -> CheckReport:
    """Every element of every input that takes a gradient (of an input with more than max_elements, a
    fixed random sample of that many): backprop vs (f(x+h) - f(x-h)) / 2h, h = eps * max(1, |x|)."""
    outputs = check_outputs(plan, outputs)
    s = Session(plan, overrides)
    results = []
    with s.errstate():
        layers = s.forward()
        warnings = tuple(s.nonfinite())
        base = list(s.values)
        analytic = {o: s.backward(layers, o) for o in outputs}
        for slot, inp in enumerate(plan.inputs):
            if not inp.grad:
                continue
            x0 = base[slot]
            scalar = type(x0) is float
            indices = [()] if scalar else list(_ndindex(x0.shape))
            total = len(indices)
            if max_elements is not None and total > max_elements:
                # each element costs two runs of the whole graph: check a fixed random sample
                import random

                indices = sorted(random.Random(slot).sample(indices, max_elements))
            per_out: dict[str, list[Element]] = {o: [] for o in outputs}
            for idx in indices:
                grads = {o: float(analytic[o][slot] if scalar else analytic[o][slot][idx]) for o in outputs}
                for o, e in _element(s, base, slot, idx, grads, eps, rtol, atol).items():
                    per_out[o].append(e)
            for o in outputs:
                results.append(InputCheck(o, inp.name, () if scalar else tuple(x0.shape), tuple(per_out[o]), total))
    results.sort(key=lambda c: outputs.index(c.output))  # stable: inputs stay in file order
    return CheckReport(plan.spec.name, eps, rtol, atol, tuple(results), warnings)


def _element(
    s: Session, base: list, slot: int, idx: tuple, grads: dict[str, float], eps: float, rtol: float, atol: float
) -> dict[str, Element]:
    """One element of one input, for each output: its backprop gradient (`grads`) against central differences."""
    x0 = base[slot]
    scalar = type(x0) is float
    xi = x0 if scalar else float(x0[idx])
    if not math.isfinite(xi):  # no derivative to speak of at an infinite or NaN input
        return {o: Element(idx, a, NAN, NAN, NAN, UNDEFINED) for o, a in grads.items()}
    # the step scales with |x|: a fixed 1e-6 is below the float spacing of 1e8; and the step taken is what
    # x +- h rounds to, not h itself
    h = eps * max(1.0, abs(xi))
    xp, xm = xi + h, xi - h
    if not xp - xm > 0:  # a step below the float spacing of x (--eps 1e-320), or an infinite one: no difference
        return {o: Element(idx, a, NAN, NAN, NAN, UNDEFINED) for o, a in grads.items()}
    outs = []  # each output's value at x + h and at x - h
    sides = []  # which side of its kink each relu input is on, at x + h and x - h
    for xs in (xp, xm):
        values = list(base)
        if scalar:
            values[slot] = xs
        else:
            x = x0.copy()
            x[idx] = xs
            values[slot] = x
        try:
            lay = s.forward(values)
        except CgcalcError:
            return {o: Element(idx, a, NAN, NAN, NAN, UNDEFINED) for o, a in grads.items()}
        sides.append(_kinks(lay))
        outs.append({o: values[s.plan.index[o]] for o in grads})
    kinked = sides[0] != sides[1]  # a relu input that this element moves across (or off) its kink
    out = {}
    for o, a in grads.items():
        num, noise = _central(outs[0][o], outs[1][o], xp - xm)
        err = abs(a - num)
        rel = err / max(abs(a), abs(num)) if max(abs(a), abs(num)) > 0 else 0.0
        ok = err <= atol + rtol * abs(num)
        status = PASS if ok else (KINK if kinked else FAIL)
        if not ok and (not math.isfinite(num) or err <= noise):
            # the output is not finite around x, or float64 cannot resolve the difference
            status = UNDEFINED
        out[o] = Element(idx, a, num, err, rel, status)
    return out


def _ndindex(shape: tuple[int, ...]):
    import numpy as np

    return np.ndindex(*shape)


def _central(vp, vm, step: float) -> tuple[float, float]:
    """d sum(O) / dx from O at x + h and x - h, and the rounding noise it may carry. Each element of O is
    differenced first and the differences summed, so that one huge element does not swamp the others."""
    if type(vp) is float and type(vm) is float:
        diff, moved = vp - vm, abs(vp) + abs(vm) if vp != vm else 0.0
    else:
        import numpy as np

        vp, vm = np.asarray(vp), np.asarray(vm)
        d = vp - vm
        diff = float(d.sum())
        moved = float(np.where(d != 0, np.abs(vp) + np.abs(vm), 0.0).sum())
    # each O(x +- h) is off by up to half an ulp, so the difference by up to ~eps_machine * (|O+| + |O-|)
    return diff / step, 2.3e-16 * moved / step


def check_hessian(
    g: Graph,
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    max_elements: int | None = MAX_ELEMENTS,
) -> CheckReport:
    """`check --order 2`: every entry of the Hessian (from the derivative graph) against central differences
    of the gradient, (∇f(x + h e_j) - ∇f(x - h e_j)) / 2h for each column j, h = eps * max(1, |x_j|). One
    InputCheck per (row input, column input): its output is ∂O/∂row, its elements the entries."""
    import numpy as np

    from ..core.derive import checked
    from .hessian import hessian

    plan = g.plan
    wrt, output = checked(plan, None, output, what="check --order 2")
    h = hessian(g, overrides, wrt, output, max_elements or 10**9)
    slots = [plan.index[w] for w in wrt]
    s = Session(plan, overrides)
    cells: dict[tuple[str, str], list[Element]] = {(y, x): [] for y in wrt for x in wrt}
    with s.errstate():
        layers = s.forward()
        warnings = tuple(s.nonfinite())
        base = list(s.values)
        rows = [(w, idx) for w, slot in zip(wrt, slots) for idx in _indices(base[slot])]
        for c, (x, idx) in enumerate(rows):
            column = _gradient_difference(s, base, plan.index[x], idx, output, slots, eps)
            for r, (y, ridx) in enumerate(rows):
                a = float(h.matrix[r, c])
                if column is None:
                    cells[y, x].append(Element(ridx + idx, a, NAN, NAN, NAN, UNDEFINED))
                    continue
                num, noise, kinked = column[0][r], column[1][r], column[2]
                cells[y, x].append(_entry(ridx + idx, a, num, noise, kinked, rtol, atol))
    del layers
    results = [
        InputCheck(f"∂{output}/∂{y}", x, tuple(np.shape(base[plan.index[x]])), tuple(es), len(es))
        for (y, x), es in cells.items()
    ]
    return CheckReport(plan.spec.name, eps, rtol, atol, tuple(results), warnings + tuple(h.warnings()), 2)


def _indices(v) -> list[tuple]:
    return [()] if type(v) is float else list(_ndindex(v.shape))


def _gradient_difference(s: Session, base: list, slot: int, idx: tuple, output: str, slots: list[int], eps: float):
    """(numeric column, its rounding noise, whether a relu input crossed its kink), from the gradient at
    x +- h along one element; None where the step rounds away or the graph fails there."""
    import numpy as np

    x0 = base[slot]
    xi = x0 if type(x0) is float else float(x0[idx])
    if not math.isfinite(xi):
        return None
    hstep = eps * max(1.0, abs(xi))
    xp, xm = xi + hstep, xi - hstep
    if not xp - xm > 0:
        return None
    grads, sides = [], []
    for xs in (xp, xm):
        values = list(base)
        if type(x0) is float:
            values[slot] = xs
        else:
            x = x0.copy()
            x[idx] = xs
            values[slot] = x
        try:
            lay = s.forward(values)
            gr = s.backward(lay, output, values)
        except CgcalcError:
            return None
        sides.append(_kinks(lay))
        grads.append(np.concatenate([np.ravel(np.asarray(gr[k], dtype=np.float64)) for k in slots]))
    step = xp - xm
    num = (grads[0] - grads[1]) / step
    noise = 2.3e-16 * np.where(grads[0] != grads[1], np.abs(grads[0]) + np.abs(grads[1]), 0.0) / step
    return num.tolist(), noise.tolist(), sides[0] != sides[1]


def _entry(index: tuple, a: float, num: float, noise: float, kinked: bool, rtol: float, atol: float) -> Element:
    err = abs(a - num)
    rel = err / max(abs(a), abs(num)) if max(abs(a), abs(num)) > 0 else 0.0
    ok = err <= atol + rtol * abs(num)
    status = PASS if ok else (KINK if kinked else FAIL)
    if not ok and (not math.isfinite(num) or err <= noise):
        status = UNDEFINED
    return Element(index, a, num, err, rel, status)
