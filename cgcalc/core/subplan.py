"""Plans for part of a graph's work: the nodes one output depends on, and gradients only toward some inputs.

A run differentiates every input that takes a gradient. A fit needs the gradients of its parameters only, not of
its data (x, t) nor of anything computed from the data alone: `toward(plan, output, wrt)` keeps the nodes
`output` depends on and marks, at each node, only the inputs that lie on a path back to an input of `wrt`,
so that backward passes no gradient anywhere else (and a layer skips computing it: see Layer.backward_some).
"""

from __future__ import annotations

from collections.abc import Sequence

from .plan import Plan


def toward(plan: Plan, output: str, wrt: Sequence[str]) -> Plan:
    """`plan` computing only what `output` needs and differentiating only toward the inputs `wrt`: a step's input
    takes a gradient only on a path from `output` back to one of them (and when it took one in `plan`). The
    same inputs and constants; the nodes renumbered, each step still pointing at its node in the file (for
    messages). Slots that take no gradient here have none in a result (None), as a `grad: false` input."""
    n_in, n_named = len(plan.inputs), plan.n_named
    kept = _needed(plan, plan.index[output])
    names = [*plan.names[:n_in], *(st.name for st in kept)]
    new = {st.slot: n_in + k for k, st in enumerate(kept)}
    shift = len(names) - n_named  # the constants' slots move down with the nodes

    def slot(a: int) -> int:
        return a if a < n_in else new[a] if a < n_named else a + shift

    # reaches[s]: slot s (of the new plan) is, or depends on, an input of `wrt` that takes a gradient
    wanted = set(wrt)
    reaches = [plan.has_grad[s] and plan.names[s] in wanted for s in range(n_in)] + [False] * len(kept)
    steps = []
    for st in kept:
        args = tuple(map(slot, st.args))
        needs = tuple([need and a < len(names) and reaches[a] for a, need in zip(args, st.needs)])
        reaches[new[st.slot]] = True in needs
        steps.append(st._replace(slot=new[st.slot], args=args, needs=needs))
    lines = None
    if plan.lines is not None:
        from array import array

        lines = tuple(array("l", [col[st.slot - n_in] for st in kept]) for col in plan.lines)
    has_grad = (*reaches[:n_in], *(reaches[n_in + k] and plan.has_grad[st.slot] for k, st in enumerate(kept)))
    index = {name: s for s, name in enumerate(names)}
    p = Plan(plan.spec, tuple(names), index, plan.inputs, tuple(steps), plan.constants, (), has_grad, (output,), lines)
    shapes, p.layouts = p.infer(list(plan.shapes[:n_in]))
    p.shapes = tuple(shapes[: len(names)])
    return p


def _needed(plan: Plan, out: int) -> list:
    """The steps `out` depends on (itself included), in their order."""
    n_named = plan.n_named
    need = [False] * n_named
    need[out] = True
    for st in reversed(plan.steps):
        if need[st.slot]:
            for a in st.args:
                if a < n_named:
                    need[a] = True
    return [st for st in plan.steps if need[st.slot]]
