"""Forward and backward over a compiled Plan; returns an immutable Result (core/result.py).

A graph whose inputs are all scalars runs on Python floats (no numpy at all); anything else runs on
numpy arrays. A fresh layer object is made for every node on every run: nothing is shared.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import CgcalcError, GraphError, UsageError, suggest
from .base import ONE
from .compiler import Plan
from .kernels import exact_arrays
from .result import Result, Value, _frozen, _nonfinite_grads, _nonfinite_values
from .result import to_plain as to_plain  # (Result, Value, _frozen and to_plain are imported from here too)


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
    try:
        if isinstance(v, (int, float)):
            return float(v)
        a = real_array(v, f"value of '{name}'", copy=True)
    except (ValueError, TypeError, OverflowError):
        raise UsageError(f"value of '{name}' must be a number or a rectangular list of numbers") from None
    return float(a) if a.ndim == 0 else a


def real_array(v: Any, what: str, copy: bool = False) -> Any:
    """v as a float64 array (a copy, or when it is one already, v itself unless `copy`); a complex array is
    refused (numpy would drop its imaginary part, and say so only in a warning)."""
    import numpy as np

    a = np.asarray(v)
    if a.dtype.kind == "c":
        raise UsageError(f"{what} is complex: cgcalc computes with real numbers")
    return np.array(a, dtype=np.float64) if copy else np.asarray(a, dtype=np.float64)


def _file_array(inp):
    import numpy as np

    a = np.array(inp.value, dtype=np.float64).reshape(inp.shape)
    a.flags.writeable = False
    return a


def shape_of(v: Value) -> tuple[int, ...]:
    return () if type(v) is float else tuple(v.shape)


class Session:
    """One evaluation context: the slot values (inputs given), the layouts their shapes call for, and whether
    they are floats (a graph of scalars: no numpy at all) or arrays."""

    def __init__(self, plan: Plan, overrides: Mapping[str, Any] | None = None, exact: bool = False) -> None:
        self.plan = plan
        self.values = input_values(plan, overrides) + [None] * len(plan.steps) + list(plan.constants)
        n_in = len(plan.inputs)
        self.layouts = plan.layouts
        if overrides and any(shape_of(self.values[i]) != plan.shapes[i] for i in range(n_in)):
            self.layouts = plan.infer([shape_of(v) for v in self.values[:n_in]])[1]  # raises on a mismatch
        scalars = all(type(v) is float for v in self.values[:n_in])
        # a node may make an array of scalar inputs (stack(a, b)): numpy's warnings are off for it too, and its
        # math is the C library's, as for the floats around it and as in run_batch of a graph of scalar inputs
        self.arrays = not scalars or any(plan.shapes)
        self.exact = exact or scalars

    @contextmanager
    def errstate(self) -> Iterator[None]:
        """numpy's warnings off (non-finite values are reported by us, by node), and the array math chosen;
        nothing for floats."""
        if not self.arrays:
            yield
            return
        import numpy as np

        with np.errstate(all="ignore"), exact_arrays(self.exact):
            yield

    def forward(self, values: list | None = None) -> list:
        """Run every node; fills `values` in place and returns the layers (for backward)."""
        return forward(self.plan, self.values if values is None else values, self.layouts)

    def nonfinite(self) -> list[str]:
        """After forward: a warning naming the first node (or input) whose value is NaN or inf, or none."""
        return _nonfinite_values(self.plan, self.values)

    def backward(self, layers: list, output: str, values: list | None = None) -> list:
        """Every slot's gradient: 0 where the output does not depend on it, None for `grad: false`."""
        values = self.values if values is None else values
        grads = backward(self.plan, values, layers, self.layouts, self.plan.index[output])
        return complete(self.plan, values, grads, range(self.plan.n_named))


@contextmanager
def gc_paused() -> Iterator[None]:
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


def run(
    plan: Plan, overrides: Mapping[str, Any] | None = None, outputs: list[str] | None = None, exact: bool = False
) -> Result:
    """Forward, then backward from each of `outputs` (default: the first of the graph's outputs)."""
    outputs = check_outputs(plan, outputs)
    s = Session(plan, overrides, exact)
    with s.errstate(), gc_paused():
        layers = s.forward()
        warnings = _nonfinite_values(plan, s.values)
        grads = {}
        for out in outputs:
            grads[out] = g = s.backward(layers, out)
            warnings += _nonfinite_grads(plan, g, out)
    values = [_frozen(v) for v in s.values[: plan.n_named]]
    grads = {o: [_frozen(v) for v in g] for o, g in grads.items()}
    return Result(plan, values, grads, outputs[0], warnings)


def forward(plan: Plan, values: list, layouts, lead: int = 0) -> list:
    """Every node's value into `values`; the layers, for backward. Around each layer, what it should not have
    to know: its inputs viewed as its Layout says (in a batch, behind `lead` row axes), and its output
    reshaped to the node's shape."""
    layers = []
    append = layers.append
    st = None
    try:
        for st, lay in zip(plan.steps, layouts):
            args = st.args
            if lay is None:  # the hot loop of a large graph: arity-specific calls, no list per node
                layer = st.cls()
                if len(args) == 2:
                    values[st.slot] = layer.forward(values[args[0]], values[args[1]])
                else:
                    values[st.slot] = layer.forward(*[values[a] for a in args])
            else:
                layer = st.cls(**lay.attrs)
                y = layer.forward(*[_view(values[a], v, lead) for a, v in zip(args, lay.views)])
                values[st.slot] = _view(y, lay.out, lead)
            append(layer)
    except CgcalcError as e:
        raise located(plan, st, e) from None
    return layers


def located(plan: Plan, st, e: CgcalcError) -> GraphError:
    """A layer's error as the error of its node, where the file writes it."""
    pos = plan.pos_of(st) or (None, None)
    return GraphError(
        f"node '{st.name}' ({st.op}): {e.message}", file=plan.spec.file, line=pos[0], col=pos[1], node=st.name
    )


def _view(x, shape: tuple[int, ...], lead: int):
    """x (behind `lead` row axes) as `shape`; a float as it is (it broadcasts against anything)."""
    if type(x) is float or x.shape[lead:] == shape:
        return x
    return x.reshape(x.shape[:lead] + shape)


def backward(plan: Plan, values: list, layers: list, layouts, out: int, flows: dict | None = None) -> list:
    """Gradients by slot, seeded with ONE at `out`; None where no gradient arrived. Each layer's gradients
    are summed back to its inputs' shapes here (broadcasting, DeZero's sum_to). With `flows`, also what flows
    along each edge: flows[(step index, input index)] is the contribution the step passed back."""
    grads: list = [None] * plan.n_named
    grads[out] = ONE
    steps = plan.steps
    for i in range(len(steps) - 1, -1, -1):
        st = steps[i]
        g = grads[st.slot]
        needs = st.needs
        if g is None or True not in needs:
            continue
        lay = layouts[i]
        args = st.args
        if lay is None:  # the hot loop of a large graph: the gradients have their inputs' shapes already
            ds = layers[i].backward(g)
            for j in range(len(args)):
                d = ds[j]
                if d is None or not needs[j]:
                    continue
                a = args[j]
                old = grads[a]
                grads[a] = d if old is None else old + d  # accumulate: a value used twice gets both
                if flows is not None:
                    flows[i, j] = d
            continue
        node = values[st.slot]
        n = 0 if type(node) is float else node.ndim - len(lay.out)  # the lead (row) axes, in a batch
        lead = node.shape[:n] if n else ()
        if type(g) is float:
            if (lead or lay.out_view) and not _alike(st.cls, lay):
                import numpy as np  # a float standing for a full array: made one where shapes differ

                g = np.full(lead + lay.out_view, g)
        elif g.shape[n:] != lay.out_view:
            g = g.reshape(g.shape[:n] + lay.out_view)
        # (a layer skips the gradients no one wants: of the data, in a fit, of a `grad: false` input)
        ds = layers[i].backward(g) if False not in needs else layers[i].backward_some(g, needs)
        views = lay.views
        for j in range(len(args)):
            d = ds[j]
            if d is None or not needs[j]:
                continue
            a = args[j]
            if type(d) is not float:
                v = values[a]
                if type(v) is float:  # a scalar input of a graph of arrays
                    d = d.sum()
                elif d.shape != v.shape:
                    d = _summed(d, lead, views[j], v.shape)
            old = grads[a]
            grads[a] = d if old is None else old + d
            if flows is not None:
                flows[i, j] = d
    return grads


_AXES: dict = {}  # (gradient's shape, lead, view) -> the axes sum_to sums over (None: none)


def _summed(d, lead: tuple, view: tuple, shape: tuple):
    """sum_to(d, lead + view).reshape(shape), the same sums, with the axes worked out once per shapes."""
    key = (d.shape, lead, view)
    axes = _AXES.get(key, False)
    if axes is False:
        if len(_AXES) > 4096:
            _AXES.clear()
        gshape, target = d.shape, lead + view
        k = len(gshape) - len(target)
        axes = None
        if gshape != target:
            axes = tuple(range(k)) + tuple(k + i for i, m in enumerate(target) if m == 1 and gshape[k + i] != 1)
        _AXES[key] = axes
    if axes is not None:
        import numpy as np

        d = np.add.reduce(d, axis=axes, keepdims=True)  # what ndarray.sum calls
    return d if d.shape == shape else d.reshape(shape)


def _alike(cls, lay) -> bool:
    """An elementwise op whose inputs all have its output's shape (a Layout only for its attributes): its layer
    takes the seed's float as it is, as it does without a Layout (no array of ones made for it)."""
    return cls.elementwise and all(v == lay.out_view for v in lay.views)


def edge_flows(result: Result) -> dict[tuple[int, int], Value]:
    """What flows back along each edge in `result`'s run (step index, input index) -> gradient, for the
    selected output: at a fan-out each edge carries its own contribution, not the node's total."""
    plan = result.plan
    n_in = len(plan.inputs)
    s = Session(plan, {plan.names[i]: result.values[i] for i in range(n_in)})
    flows: dict = {}
    with s.errstate(), gc_paused():
        layers = s.forward()
        backward(plan, s.values, layers, s.layouts, plan.index[result.output], flows)
    return flows


def complete(plan: Plan, values: list, grads: list, slots) -> list:
    """Gradients as the user sees them: arrays of the value's shape (ONE and other floats spread out),
    0 where the output does not depend on a slot, None for a `grad: false` input and a node that takes no
    gradient (argmax's)."""
    has_grad = plan.has_grad
    for slot in slots:
        if not has_grad[slot]:
            grads[slot] = None  # none, also when it is the output itself (its seed is not a gradient)
            continue
        g = grads[slot]
        if g is None:
            g = 0.0
        v = values[slot]
        if type(v) is not float:
            if getattr(g, "shape", ()) != v.shape:
                import numpy as np

                g = np.full(v.shape, g) if v.shape else float(g)
        grads[slot] = g
    return grads
