"""run_batch: many rows of one graph at once, each value with a leading row axis, through the same layers and
the same forward and backward as a single run (so that row i equals that row's own run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UsageError, suggest
from .compiler import Plan
from .kernels import exact_arrays
from .runtime import _file_array, _frozen, backward, check_outputs, complete, forward, real_array


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


def _start_values(plan: Plan, given: dict, rows: int) -> list:
    """Every slot's starting value: the given columns, the file's value of the others repeated per row, and
    the constants with the row axis too, so that a layer tells a per-row shape apart from the batch's (a
    literal class index of softmax_with_loss is a (rows,) column of indices, not a one-hot array of 2s)."""
    import numpy as np

    values: list = [None] * (plan.n_named + len(plan.constants))
    for s, inp in enumerate(plan.inputs):
        if s in given:
            values[s] = given[s]
        else:
            file_value = inp.value if not inp.shape else _file_array(inp)
            values[s] = np.broadcast_to(np.asarray(file_value, dtype=np.float64), (rows, *inp.shape))
    values[plan.n_named :] = [np.broadcast_to(np.float64(c), (rows,)) for c in plan.constants]
    return values


def run_batch(
    plan: Plan,
    columns: Mapping[str, Any],
    outputs: list[str] | None = None,
    exact: bool = True,
    rows: int | None = None,
    grads: bool = True,
    nodes: Sequence[str] = (),
    node_grads: bool = False,
) -> BatchResult:
    """Vectorized runs: every row of `columns` (input name -> array with a leading row axis) at once.

    Row i's results equal `run(plan, {name: columns[name][i]})`: bit for bit for a graph of scalars
    (exp, log, tanh, pow, sigmoid, sin and cos then use the C library element by element, as single runs do;
    pass exact=False for numpy's faster versions), and to rounding otherwise (matmul's BLAS sums in its own
    order).
    grads=False runs forward only (no gradient is computed).
    `nodes`: intermediate nodes whose values are results too (after the outputs); with node_grads, also
    dO/dN for each of them (after the inputs' gradients; none for a node that takes no gradient).
    """
    import numpy as np

    outputs = check_outputs(plan, outputs)
    names = [i.name for i in plan.inputs]
    n_in = len(names)
    given, rows = _columns(plan, columns, rows)
    per_row = [tuple(given[s].shape[1:]) if s in given else plan.shapes[s] for s in range(n_in)]
    if per_row != list(plan.shapes[:n_in]):
        shapes, layouts = plan.infer(per_row)
    else:
        shapes, layouts = list(plan.shapes), plan.layouts
    if any(shapes):
        plan.check_memory(shapes, rows)
    exact = exact and all(not s for s in per_row)
    values = _start_values(plan, given, rows)
    with np.errstate(all="ignore"), exact_arrays(exact):
        layers = forward(plan, values, layouts, lead=1)
        # let go of the node values nobody reads again (the layers keep what backward needs): memory freed
        # now is memory backward's arrays reuse, instead of asking the system for fresh pages
        keep = {plan.index[o] for o in [*plan.outputs, *outputs, *nodes]}
        for st in plan.steps:
            if st.slot not in keep:
                values[st.slot] = np.broadcast_to(np.float64(0.0), np.shape(values[st.slot]))
        wanted, grads = grads, {}
        input_slots = [s for s in range(n_in) if plan.inputs[s].grad]
        node_slots = [plan.index[x] for x in nodes if plan.has_grad[plan.index[x]]] if node_grads else []
        for o in outputs if wanted else ():
            g = backward(plan, values, layers, layouts, plan.index[o])
            complete(plan, values, g, input_slots + node_slots)
            grads[o] = {plan.names[s]: g[s] for s in input_slots + node_slots}
    outs = {o: values[plan.index[o]] for o in dict.fromkeys([*plan.outputs, *outputs, *nodes])}
    # a result is read-only, and never the caller's own column (mul hands out its cached input as a gradient)
    theirs = list(given.values())
    outs = {o: _private(v, theirs) for o, v in outs.items()}
    grads = {o: {x: _private(v, theirs) for x, v in g.items()} for o, g in grads.items()}
    return BatchResult(rows, outs, grads, outputs[0])


def _columns(plan: Plan, columns: Mapping[str, Any], rows: int | None) -> tuple[dict[int, Any], int]:
    """The given columns by slot, as float64 arrays with a leading row axis, and how many rows they have."""
    names = [i.name for i in plan.inputs]
    given: dict[int, Any] = {}
    for name, col in columns.items():
        slot = plan.index.get(name)
        if slot is None or slot >= len(names):
            raise UsageError(f"'{name}' is not an input of the graph{suggest(name, names)}")
        a = real_array(col, f"column '{name}'")
        if a.ndim == 0:
            raise UsageError(f"column '{name}' needs a leading row axis (got a single number)")
        if rows is None:
            rows = a.shape[0]
        elif a.shape[0] != rows:
            raise UsageError(f"column '{name}' has {a.shape[0]} rows, others have {rows}")
        given[slot] = a
    if rows is None:
        raise UsageError("run_batch needs at least one column, or rows=N to run the file's values N times")
    return given, rows


def _private(v, theirs: list):
    import numpy as np

    if any(np.may_share_memory(v, c) for c in theirs):
        v = v.copy()
    return _frozen(v)
