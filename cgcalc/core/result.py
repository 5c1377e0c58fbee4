"""What a run returns: the Result (values and gradients by slot, read-only) and the warnings about values or
gradients gone NaN or infinite, naming the node that made them first."""

from __future__ import annotations

import math
from typing import Any

from ..errors import suggest
from ..numbers import fmt_float, fmt_value
from .base import fmt_shape
from .plan import Plan

Value = Any  # a float, or a numpy array


class Result:
    """Values and gradients of one run. Read-only."""

    __slots__ = ("plan", "values", "grads", "output", "warnings")

    def __init__(self, plan: Plan, values: list, grads: dict[str, list], output: str, warnings: list[str]):
        self.plan = plan
        self.values = values  # by slot
        self.grads = grads  # output name -> gradients by slot (None for no gradient)
        self.output = output
        self.warnings = tuple(warnings)

    def _slot(self, name: str) -> int:
        slot = self.plan.index.get(name)
        if slot is None:
            raise KeyError(f"no input or node named '{name}'{suggest(name, self.plan.index)}")
        return slot

    def value(self, name: str) -> Value:
        """The forward value of an input or node (a float or an ndarray)."""
        return self.values[self._slot(name)]

    def grad(self, name: str, output: str | None = None) -> Value | None:
        """d sum(output) / d name (the selected output unless given); None for a `grad: false` input."""
        out = output or self.output
        if out not in self.grads:
            raise KeyError(f"no gradients were computed for output '{out}'")
        return self.grads[out][self._slot(name)]

    @property
    def outputs(self) -> dict[str, Value]:
        """The graph's outputs, and the selected output when it is not one of them."""
        names = list(self.plan.outputs)
        names += [o for o in self.grads if o not in names]
        return {o: self.value(o) for o in names}

    def __repr__(self) -> str:
        v = self.values[self.plan.index[self.output]]
        scalar = type(v) is float or getattr(v, "ndim", 1) == 0
        text = fmt_float(float(v)) if scalar else fmt_value(v, 6)
        return f"<cgcalc.Result graph={self.plan.spec.name!r} output={self.output!r} value={text}>"

    def _repr_html_(self) -> str:  # a notebook shows the table (views/notebook.py: the one way up, see its doc)
        from ..views.notebook import result_html

        return result_html(self)

    def to_dict(self) -> dict:
        """The JSON shape of the contract (floats stay floats, NaN included; arrays become lists)."""
        plan = self.plan
        multi = len(self.grads) > 1
        rows = []
        n_in = len(plan.inputs)
        for slot, name in enumerate(plan.names):
            if slot < n_in:
                op, ins = "input", []
            else:
                st = plan.steps[slot - n_in]
                op, ins = st.op, [plan.label(a) for a in st.args]
            row = {
                "name": name,
                "op": op,
                "inputs": ins,
                "value": to_plain(self.values[slot]),
                "grad": to_plain(self.grads[self.output][slot]),
            }
            if multi:
                row["grads"] = {o: to_plain(g[slot]) for o, g in self.grads.items()}
            rows.append(row)
        return {
            "graph": plan.spec.name,
            "output": self.output,
            "outputs": {o: to_plain(v) for o, v in self.outputs.items()},
            "nodes": rows,
        }


def to_plain(v: Value) -> Any:
    if v is None or type(v) is float:
        return v
    return v.tolist() if getattr(v, "ndim", 0) else float(v)


def _frozen(v: Value) -> Value:
    """A result's array made read-only: a gradient may be another slot's value itself (mul hands out its
    cached input), and a write through one must not change the other."""
    if type(v) is not float and v is not None and v.flags.writeable:
        v.flags.writeable = False
    return v


def _finite(v) -> bool:
    if type(v) is float:
        return math.isfinite(v)
    import numpy as np

    return bool(np.isfinite(v).all())


def _nonfinite_values(plan: Plan, values: list) -> list[str]:
    n = plan.n_named
    if all(type(v) is float for v in values[:n]):
        try:
            if math.isfinite(math.fsum(values[:n])):
                return []
        except (OverflowError, ValueError):
            pass
    for slot in range(n):
        v = values[slot]
        if not _finite(v):
            what = _kind(v)
            if slot < len(plan.inputs):
                return [f"input '{plan.names[slot]}' is {what}"]
            st = plan.steps[slot - len(plan.inputs)]
            args = ", ".join(_arg(plan, a, values[a]) for a in st.args)
            pos = plan.pos_of(st)
            where = f" (line {pos[0]})" if pos else ""
            return [f"{what} first produced by node '{st.name}' = {st.op}({args}){where}"]
    return []


def _arg(plan: Plan, slot: int, v) -> str:
    """An input of a node as a warning shows it: name=value for a number, name (shape) for an array."""
    if slot >= plan.n_named:
        return plan.label(slot)
    name = plan.names[slot]
    if type(v) is float or getattr(v, "ndim", 0) == 0:
        return f"{name}={float(v)!r}"
    return f"{name} (array of shape {fmt_shape(tuple(v.shape))})"


def _nonfinite_grads(plan: Plan, grads: list, out: str) -> list[str]:
    # the first gradient to go bad in backward order points at the node that produced it
    if all(type(g) is float or g is None for g in grads):
        try:
            if math.isfinite(math.fsum(filter(None, grads))):  # None and 0.0 left out: all finite, at C speed
                return []
        except (OverflowError, ValueError):
            pass
    n_in = len(plan.inputs)
    for slot in [s.slot for s in reversed(plan.steps)] + list(range(n_in)):
        g = grads[slot]
        if g is not None and not _finite(g):
            return [
                f"{_kind(g)} in the gradient ∂{out}/∂{plan.names[slot]} (the first to go non-finite, going backward)"
            ]
    return []


def _kind(v) -> str:
    if type(v) is float:
        return "NaN" if v != v else "inf"
    import numpy as np

    return "NaN" if bool(np.isnan(v).any()) else "inf"
