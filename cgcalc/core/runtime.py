"""Forward and backward over a compiled Plan; returns an immutable Result.

A graph whose inputs are all scalars runs on Python floats (no numpy at all); anything else runs on
numpy arrays. A fresh layer object is made for every node on every run: nothing is shared.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

from .compiler import Plan
from ..errors import CgcalcError, GraphError, UsageError, suggest
from .kernels import FLOAT, ONE, array_kernel
from .layers import fmt_shape

Value = Any  # a float, or a numpy array


def input_values(plan: Plan, overrides: Mapping[str, Any] | None) -> list[Value]:
    """The inputs' values by slot: the file's, replaced by overrides (numbers, lists or arrays)."""
    values: list[Value] = []
    for inp in plan.inputs:
        values.append(inp.value if not inp.shape else _file_array(inp))
    for name, v in (overrides or {}).items():
        slot = plan.index.get(name)
        if slot is None or slot >= len(plan.inputs):
            kind = "a node, not an input" if slot is not None else "not an input"
            raise UsageError(f"cannot set '{name}': it is {kind}{suggest(name, [i.name for i in plan.inputs])}")
        values[slot] = as_value(v, name)
    return values


def as_value(v: Any, name: str) -> Value:
    """A user's number or (nested) list or array as float64: a float, or an ndarray."""
    if isinstance(v, bool):
        raise UsageError(f"value of '{name}' must be a number, not {v}")
    if isinstance(v, (int, float)):
        return float(v)
    import numpy as np

    try:
        a = np.array(v, dtype=np.float64)
    except (ValueError, TypeError):
        raise UsageError(f"value of '{name}' must be a number or a rectangular list of numbers") from None
    return float(a) if a.ndim == 0 else a


def _file_array(inp):
    import numpy as np

    a = np.array(inp.value, dtype=np.float64).reshape(inp.shape)
    a.flags.writeable = False
    return a


def shape_of(v: Value) -> tuple[int, ...]:
    return () if type(v) is float else tuple(v.shape)


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
            row = {"name": name, "op": op, "inputs": ins, "value": to_plain(self.values[slot]),
                   "grad": to_plain(self.grads[self.output][slot])}
            if multi:
                row["grads"] = {o: to_plain(g[slot]) for o, g in self.grads.items()}
            rows.append(row)
        return {"graph": plan.spec.name, "output": self.output,
                "outputs": {o: to_plain(v) for o, v in self.outputs.items()}, "nodes": rows}


def to_plain(v: Value):
    if v is None or type(v) is float:
        return v
    return v.tolist() if getattr(v, "ndim", 0) else float(v)


class Session:
    """One evaluation context: the slot values (inputs given) and the kernel they call for."""

    def __init__(self, plan: Plan, overrides: Mapping[str, Any] | None = None, exact: bool = False) -> None:
        self.plan = plan
        self.values = input_values(plan, overrides) + [None] * len(plan.steps) + list(plan.constants)
        n_in = len(plan.inputs)
        if overrides and any(shape_of(self.values[i]) != plan.shapes[i] for i in range(n_in)):
            plan.infer_shapes([shape_of(v) for v in self.values[:n_in]])  # raises on a mismatch
        scalar = all(type(v) is float for v in self.values[:n_in])
        self.k = FLOAT if scalar else array_kernel(exact)

    def errstate(self):
        """numpy's warnings off (non-finite values are reported by us, by node); nothing for floats."""
        if self.k is FLOAT:
            from contextlib import nullcontext

            return nullcontext()
        return self.k.np.errstate(all="ignore")

    def forward(self, values: list | None = None) -> list:
        """Run every node; fills `values` in place and returns the layers (for backward)."""
        return forward(self.plan, self.values if values is None else values, self.k)

    def backward(self, layers: list, output: str, values: list | None = None) -> list:
        """Every slot's gradient: 0 where the output does not depend on it, None for `grad: false`."""
        values = self.values if values is None else values
        grads = backward(self.plan, values, layers, self.plan.index[output], self.k)
        return complete(self.plan, values, grads, self.k, range(self.plan.n_named))


@contextmanager
def gc_paused():
    """Building or running 100,000 small objects makes Python's cyclic collector run again and again for
    nothing (they form no cycles); measured, it costs 40-55% of the time. Pause it meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_freeze_count() == 0:
                # Without this, the first allocation after enable() scans every object made meanwhile
                # (~25 ms per 100,000 nodes). They are long-lived and form no cycles: freeze + unfreeze
                # moves them all to the oldest generation and resets the young count, in O(1). (Skipped
                # when the program froze objects itself: unfreeze would thaw those too.)
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def check_outputs(plan: Plan, outputs: list[str] | None) -> list[str]:
    outputs = list(outputs or plan.outputs[:1])
    for o in outputs:
        if o not in plan.index:
            raise UsageError(f"no input or node named '{o}'{suggest(o, plan.index)}")
    return outputs


def run(plan: Plan, overrides: Mapping[str, Any] | None = None, outputs: list[str] | None = None,
        exact: bool = False) -> Result:
    """Forward, then backward from each of `outputs` (default: the first of the graph's outputs)."""
    outputs = check_outputs(plan, outputs)
    s = Session(plan, overrides, exact)
    with s.errstate(), gc_paused():
        layers = s.forward()
        warnings = _nonfinite_values(plan, s.values, s.k)
        grads = {}
        for out in outputs:
            grads[out] = g = s.backward(layers, out)
            warnings += _nonfinite_grads(plan, g, out, s.k)
    values = [_frozen(v) for v in s.values[: plan.n_named]]
    grads = {o: [_frozen(v) for v in g] for o, g in grads.items()}
    return Result(plan, values, grads, outputs[0], warnings)


def _frozen(v: Value) -> Value:
    """A result's array made read-only: a gradient may be another slot's value itself (mul hands out its
    cached input), and a write through one must not change the other."""
    if type(v) is not float and v is not None and v.flags.writeable:
        v.flags.writeable = False
    return v


def forward(plan: Plan, values: list, k, lead: int = 0) -> list:
    layers = []
    append = layers.append
    st = None
    try:
        # the hot loop of a large scalar graph: tuple unpacking and arity-specific calls, no list per node
        for st in plan.steps:
            slot, _, _, cls, args, attrs, needs, _ = st
            layer = cls(k, needs, lead, attrs)
            if len(args) == 2:
                values[slot] = layer.forward(values[args[0]], values[args[1]])
            elif len(args) == 1:
                values[slot] = layer.forward(values[args[0]])
            else:
                values[slot] = layer.forward(*[values[a] for a in args])
            append(layer)
    except CgcalcError as e:
        pos = plan.pos_of(st) or (None, None)
        raise GraphError(f"node '{st.name}' ({st.op}): {e.message}", file=plan.spec.file,
                         line=pos[0], col=pos[1], node=st.name) from None
    return layers


def backward(plan: Plan, values: list, layers: list, out: int, k, flows: dict | None = None) -> list:
    """Gradients by slot, seeded with ONE at `out`; None where no gradient arrived. With `flows`, also what
    flows along each edge: flows[(step index, input index)] is the contribution the step passed back."""
    grads: list = [None] * plan.n_named
    grads[out] = ONE
    steps = plan.steps
    array = k is not FLOAT
    for i in range(len(steps) - 1, -1, -1):
        slot, _, _, cls, args, _, needs, _ = steps[i]
        g = grads[slot]
        if g is None or True not in needs:
            continue
        if array and type(g) is float and not cls.scalar_dout:
            g = k.np.full(getattr(values[slot], "shape", ()), g)  # a scalar node in a graph of arrays
        ds = layers[i].backward(g)
        for j in range(len(args)):
            d = ds[j]
            if d is not None:
                a = args[j]
                old = grads[a]
                grads[a] = d if old is None else old + d  # accumulate: a value used twice gets both
                if flows is not None:
                    flows[i, j] = d
    return grads


def edge_flows(result: Result) -> dict[tuple[int, int], Value]:
    """What flows back along each edge in `result`'s run (step index, input index) -> gradient, for the
    selected output: at a fan-out each edge carries its own contribution, not the node's total."""
    plan = result.plan
    n_in = len(plan.inputs)
    s = Session(plan, {plan.names[i]: result.values[i] for i in range(n_in)})
    flows: dict = {}
    with s.errstate(), gc_paused():
        layers = s.forward()
        backward(plan, s.values, layers, plan.index[result.output], s.k, flows)
    return flows


def complete(plan: Plan, values: list, grads: list, k, slots) -> list:
    """Gradients as the user sees them: arrays of the value's shape (ONE and other floats spread out),
    0 where the output does not depend on a slot, None for a `grad: false` input."""
    n_in = len(plan.inputs)
    for slot in slots:
        if slot < n_in and not plan.inputs[slot].grad:
            grads[slot] = None  # none, also when it is the output itself (its seed is not a gradient)
            continue
        g = grads[slot]
        if g is None:
            g = 0.0
        if k is not FLOAT:
            shape = getattr(values[slot], "shape", ())
            if getattr(g, "shape", ()) != shape:
                g = k.np.full(shape, g) if shape else float(g)
        grads[slot] = g
    return grads


def _finite(v, k) -> bool:
    return math.isfinite(v) if type(v) is float else bool(k.np.isfinite(v).all())


def _nonfinite_values(plan: Plan, values: list, k) -> list[str]:
    n = plan.n_named
    if k is FLOAT:
        try:
            if math.isfinite(math.fsum(values[:n])):
                return []
        except (OverflowError, ValueError):
            pass
    for slot in range(n):
        v = values[slot]
        if not _finite(v, k):
            what = _kind(v, k)
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


def _nonfinite_grads(plan: Plan, grads: list, out: str, k) -> list[str]:
    # the first gradient to go bad in backward order points at the node that produced it
    if k is FLOAT:
        try:
            if math.isfinite(math.fsum(filter(None, grads))):  # None and 0.0 left out: all finite, at C speed
                return []
        except (OverflowError, ValueError):
            pass
    n_in = len(plan.inputs)
    for slot in [s.slot for s in reversed(plan.steps)] + list(range(n_in)):
        g = grads[slot]
        if g is not None and not _finite(g, k):
            return [f"{_kind(g, k)} in the gradient ∂{out}/∂{plan.names[slot]} "
                    "(the first to go non-finite, going backward)"]
    return []


def _kind(v, k) -> str:
    if type(v) is float:
        return "NaN" if v != v else "inf"
    return "NaN" if bool(k.np.isnan(v).any()) else "inf"


class BatchResult:
    """Outputs and input gradients of many rows at once, each array with a leading row axis."""

    __slots__ = ("rows", "outputs", "grads", "output")

    def __init__(self, rows: int, outputs: dict, grads: dict, output: str) -> None:
        self.rows = rows
        self.outputs = outputs  # output name -> array (rows, *shape)
        self.grads = grads  # output name -> {input name -> array (rows, *shape)}
        self.output = output  # the selected output

    def columns(self) -> dict:
        """Every output O, then dO/dX for each differentiated output O and each input X: name -> array."""
        cols = dict(self.outputs)
        for o, per_input in self.grads.items():
            for x, g in per_input.items():
                cols[f"d{o}/d{x}"] = g
        return cols


def run_batch(plan: Plan, columns: Mapping[str, Any], outputs: list[str] | None = None,
              exact: bool = True, rows: int | None = None) -> BatchResult:
    """Vectorized runs: every row of `columns` (input name -> array with a leading row axis) at once.

    Row i's results equal `run(plan, {name: columns[name][i]})`: bit for bit for a graph of scalars
    (exp, log, tanh, pow and sigmoid then use the C library element by element, as single runs do; pass
    exact=False for numpy's faster versions), and to rounding otherwise (matmul's BLAS sums in its own order).
    """
    import numpy as np

    outputs = check_outputs(plan, outputs)
    names = [i.name for i in plan.inputs]
    n_in = len(names)
    given: dict[int, Any] = {}
    for name, col in columns.items():
        slot = plan.index.get(name)
        if slot is None or slot >= n_in:
            raise UsageError(f"'{name}' is not an input of the graph{suggest(name, names)}")
        a = np.asarray(col, dtype=np.float64)
        if a.ndim == 0:
            raise UsageError(f"column '{name}' needs a leading row axis (got a single number)")
        if rows is None:
            rows = a.shape[0]
        elif a.shape[0] != rows:
            raise UsageError(f"column '{name}' has {a.shape[0]} rows, others have {rows}")
        given[slot] = a
    if rows is None:
        raise UsageError("run_batch needs at least one column, or rows=N to run the file's values N times")
    per_row = [tuple(given[s].shape[1:]) if s in given else plan.shapes[s] for s in range(n_in)]
    shapes = plan.infer_shapes(per_row) if per_row != list(plan.shapes[:n_in]) else list(plan.shapes)
    if any(shapes):
        plan.check_memory(shapes, rows)
    k = array_kernel(exact=exact and all(not s for s in per_row))
    values: list = [None] * (plan.n_named + len(plan.constants))
    for s, inp in enumerate(plan.inputs):
        if s in given:
            values[s] = given[s]
        else:
            file_value = inp.value if not inp.shape else _file_array(inp)
            values[s] = np.broadcast_to(np.asarray(file_value, dtype=np.float64), (rows, *inp.shape))
    # constants get the row axis too, so that a layer tells a per-row shape apart from the batch's: a literal
    # class index of softmax_with_loss is a (rows,) column of indices, not a one-hot array of 2s
    values[plan.n_named:] = [np.broadcast_to(np.float64(c), (rows,)) for c in plan.constants]
    with np.errstate(all="ignore"):
        layers = forward(plan, values, k, lead=1)
        # let go of the node values nobody reads again (the layers keep what backward needs): memory freed
        # now is memory backward's arrays reuse, instead of asking the system for fresh pages
        keep = {plan.index[o] for o in list(plan.outputs) + outputs}
        for st in plan.steps:
            if st.slot not in keep:
                values[st.slot] = np.broadcast_to(np.float64(0.0), np.shape(values[st.slot]))
        grads = {}
        input_slots = [s for s in range(n_in) if plan.inputs[s].grad]
        for o in outputs:
            g = backward(plan, values, layers, plan.index[o], k)
            complete(plan, values, g, k, input_slots)
            grads[o] = {names[s]: g[s] for s in input_slots}
    outs = {o: values[plan.index[o]] for o in dict.fromkeys(list(plan.outputs) + outputs)}
    # a result is read-only, and never the caller's own column (mul hands out its cached input as a gradient)
    theirs = list(given.values())
    outs = {o: _private(v, theirs) for o, v in outs.items()}
    grads = {o: {x: _private(v, theirs) for x, v in g.items()} for o, g in grads.items()}
    return BatchResult(rows, outs, grads, outputs[0])


def _private(v, theirs: list):
    import numpy as np

    if any(np.may_share_memory(v, c) for c in theirs):
        v = v.copy()
    return _frozen(v)
