"""A plan made ready to run many times at the same input shapes (a fit's steps, one minibatch after another).

runtime.forward and backward work out at every node, from the values' shapes, which inputs a layer sees
reshaped, whether its gradient is seeded as an array, which of its inputs want a gradient and how each
gradient is summed back to its input's shape. For a node of a small net that is as much work as the layer's
own arithmetic. A Program works it out once, from the shapes the layouts were inferred for, so that a run is
the layers' calls and the gradients' sums: the same calls and sums, in the same order, so the same floats,
bit for bit (tests/test_program.py runs both on the same values). For single runs (no row axis) only: a batch
goes through run_batch.
"""

from __future__ import annotations

from ..errors import CgcalcError
from .base import ONE, Shape
from .plan import Plan
from .runtime import _alike, _summed, located


class Program:
    """`plan` at the input shapes `shapes` (every slot's, as Plan.infer gives them) with their `layouts`."""

    __slots__ = ("plan", "fwd", "bwd")

    def __init__(self, plan: Plan, shapes: list[Shape], layouts) -> None:
        self.plan = plan
        # forward, per step: (slot, class, attributes (None: no Layout), argument slots, the shape each
        # argument is viewed as (None: as it is; all None: None), the node's shape when the layer's differs)
        fwd = []
        for st, lay in zip(plan.steps, layouts):
            if lay is None:
                fwd.append((st.slot, st.cls, None, st.args, None, None))
                continue
            views = tuple(None if shapes[a] == v else v for a, v in zip(st.args, lay.views))
            fwd.append(
                (
                    st.slot,
                    st.cls,
                    lay.attrs,
                    st.args,
                    views if any(v is not None for v in views) else None,
                    lay.out if lay.out != lay.out_view else None,
                )
            )
        self.fwd = tuple(fwd)
        # backward, per step that passes a gradient on, last first: (step index, slot, needs when some input
        # wants none (None: all do), the shape a float seed is spread to (None: it stays a float), the shape an
        # array gradient is viewed as (None: as it is), and per input that wants one: (index, slot, its view))
        bwd = []
        for i in range(len(plan.steps) - 1, -1, -1):
            st, lay = plan.steps[i], layouts[i]
            needs = st.needs
            if True not in needs:
                continue
            wanted = tuple((j, a, None if lay is None else lay.views[j]) for j, a in enumerate(st.args) if needs[j])
            if lay is None:
                bwd.append((i, st.slot, None, None, None, wanted))
                continue
            spread = lay.out_view if lay.out_view and not _alike(st.cls, lay) else None
            viewed = lay.out_view if lay.out != lay.out_view else None
            bwd.append((i, st.slot, needs if False in needs else None, spread, viewed, wanted))
        self.bwd = tuple(bwd)

    def forward(self, values: list) -> list:
        """runtime.forward(plan, values, layouts): every node's value into `values`; the layers."""
        layers: list = []
        append = layers.append
        try:
            for slot, cls, attrs, args, views, out in self.fwd:
                if attrs is None:
                    layer = cls()
                    if len(args) == 2:
                        values[slot] = layer.forward(values[args[0]], values[args[1]])
                    elif len(args) == 1:
                        values[slot] = layer.forward(values[args[0]])
                    else:
                        values[slot] = layer.forward(*[values[a] for a in args])
                    append(layer)
                    continue
                layer = cls(**attrs)
                if views is None:
                    y = layer.forward(*[values[a] for a in args])
                else:
                    y = layer.forward(*[_viewed(values[a], v) for a, v in zip(args, views)])
                values[slot] = y if out is None or type(y) is float else y.reshape(out)
                append(layer)
        except CgcalcError as e:  # in the step after the last layer made
            raise located(self.plan, self.plan.steps[len(layers)], e) from None
        return layers

    def backward(self, values: list, layers: list, out: int) -> list:
        """runtime.backward(plan, values, layers, layouts, out): gradients by slot, seeded with ONE at `out`."""
        grads: list = [None] * self.plan.n_named
        grads[out] = ONE
        for i, slot, some, spread, viewed, wanted in self.bwd:
            g = grads[slot]
            if g is None:
                continue
            if type(g) is float:
                if spread is not None:
                    import numpy as np

                    g = np.full(spread, g)
            elif viewed is not None:
                g = g.reshape(viewed)
            ds = layers[i].backward(g) if some is None else layers[i].backward_some(g, some)
            for j, a, view in wanted:
                d = ds[j]
                if d is None:
                    continue
                if view is not None and type(d) is not float:
                    v = values[a]
                    if type(v) is float:
                        d = d.sum()
                    elif d.shape != v.shape:
                        d = _summed(d, (), view, v.shape)
                old = grads[a]
                grads[a] = d if old is None else old + d
        return grads


def _viewed(x, shape: Shape | None):
    return x if shape is None or type(x) is float else x.reshape(shape)
