"""The derivative of a graph, as a graph: reverse mode written in ops (DeZero's create_graph=True, kept small).

A `Terms` store (terms.py) holds one DAG: the graph's inputs, its nodes, and the nodes that compute derivatives. Each op's
backward is its layer's `backward_ops(g, dout, out, ins, attrs)`: the same rule as its numeric `backward`,
written with the store's ops instead of numbers. The store simplifies as it builds — constants folded, x * 1 →
x, x + 0 → x, x * 0 → 0, zero gradients dropped, -(-x) → x, shape ops of a shape they already have dropped —
and shares equal terms (hash-consing; add and mul, being commutative, with their operands in a fixed order),
so that derivative graphs stay small: the 8th derivative of tanh(x) has 200 nodes where DeZero's has 2,587.

Differentiating again is differentiating the store's own terms: order N is N passes over one store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import UsageError, suggest
from .base import Shape, fmt_shape
from .compiler import Plan
from .terms import ARGS, OP, Terms, count


class Derivative(NamedTuple):
    """What `derive` made: the store, the graph's own terms, and the derivative terms with their names."""

    terms: Terms
    inputs: list[int]  # by input slot
    nodes: dict[str, int]  # each node of the graph by name -> its term
    outputs: list[tuple[str, int]]  # (documented name, term), in order
    adjoints: dict[str, int]  # first order: d output / d node, for every input and node with one


def checked(
    plan: Plan, wrt: Sequence[str] | None, output: str | None, order: int = 1, what: str | None = None
) -> tuple[list[str], str]:
    """The inputs to differentiate with respect to and the output, checked (UsageError). `what` (say, "a
    Hessian") needs a scalar output as order > 1 does."""
    output = output or plan.outputs[0]
    if output not in plan.index:
        raise UsageError(f"no input or node named '{output}'{suggest(output, plan.index)}")
    names = [i.name for i in plan.inputs]
    wrt = list(wrt) if wrt else [i.name for i in plan.inputs if i.grad]
    for w in wrt:
        if w not in names:
            kind = "a node, not an input" if w in plan.index else "not an input"
            raise UsageError(f"cannot differentiate with respect to '{w}': it is {kind}{suggest(w, names)}")
        if not plan.inputs[names.index(w)].grad:
            raise UsageError(f"cannot differentiate with respect to '{w}': it is a `grad: false` input")
    if len(set(wrt)) != len(wrt):
        raise UsageError("--wrt names an input twice")
    if not wrt:
        raise UsageError("the graph has no input that takes a gradient (every input is `grad: false`)")
    if order < 1:
        raise UsageError(f"--order must be 1 or more, got {order}")
    if (order > 1 or what) and plan.shapes[plan.index[output]] != ():
        shape = fmt_shape(plan.shapes[plan.index[output]])
        raise UsageError(
            f"{what or f'--order {order}'} needs a scalar output; '{output}' has shape {shape}: "
            "differentiate a sum or mean of it (a node such as sum(O))"
        )
    if len(wrt) ** order > 10_000:
        raise UsageError(f"--order {order} of {len(wrt)} inputs is {len(wrt) ** order:,} derivatives: over 10,000")
    return wrt, output


def plan_terms(plan: Plan, limits: bool = True) -> tuple[Terms, list[int], dict[str, int]]:
    """The graph's inputs and nodes as terms, each node as it is written (`limits`: see Terms)."""
    g = Terms(limits)
    slots = [g.input(inp.name, inp.shape, inp.grad) for inp in plan.inputs]
    slots += [-1] * len(plan.steps) + [g.const(c) for c in plan.constants]
    g.nodes(plan.steps, slots, plan.shapes)
    nodes = dict(zip(plan.names, slots))  # (names: of the inputs and nodes, by slot)
    return g, slots[: len(plan.inputs)], nodes


def derive(plan: Plan, wrt: Sequence[str] | None = None, output: str | None = None, order: int = 1) -> Derivative:
    """The terms of the order-N derivatives of `output` (default: the first output) with respect to each of
    `wrt` (default: every input that takes a gradient). Names: d_O_d_x; for N > 1, dN_O_d_x_d_y... (every
    N-th partial, in `wrt` order: the last name varies fastest)."""
    wrt, output = checked(plan, wrt, output, order)
    g, inputs, nodes = plan_terms(plan)
    names = [i.name for i in plan.inputs]
    w_terms = [inputs[names.index(w)] for w in wrt]
    level: list[tuple[list[str], int]] = [([], nodes[output])]
    adjoints: dict[str, int] = {}
    for k in range(order):
        nxt = []
        for ws, t in level:
            nxt += [(ws + [w], d) for w, d in zip(wrt, g.gradients(t, w_terms))]
            if k == 0:
                # by the first name of its term: every term with an adjoint is an input or a node (constants
                # depend on no input), so each has one
                by_term = dict(zip(reversed(nodes.values()), reversed(nodes.keys())))
                adjoints = dict(zip(map(by_term.__getitem__, g.adjoints), g.adjoints.values()))
        level = nxt
    prefix = "d" if order == 1 else f"d{order}"
    outputs = [(_safe(f"{prefix}_{output}_" + "_".join(f"d_{w}" for w in ws)), t) for ws, t in level]
    return Derivative(g, inputs, nodes, outputs, adjoints)


def _safe(name: str) -> str:
    """A name a file can hold: an expression's inner node `y.2` becomes `y_2`."""
    return name if name.isidentifier() else re.sub(r"\W", "_", name)


def nested(flat: Any, shape: Shape) -> Any:
    if not shape:
        return flat
    flat = list(flat)
    for n in reversed(shape[1:]):
        flat = [flat[i : i + n] for i in range(0, len(flat), n)] if n else [[] for _ in range(len(flat))]
    return flat if shape[0] else []


class _Fresh:
    """Names not yet taken: a taken base gets _2, _3..."""

    def __init__(self, taken: Sequence[str]) -> None:
        self.used = set(taken)

    def copy(self) -> _Fresh:
        other = _Fresh(())
        other.used = set(self.used)
        return other

    def __call__(self, base: str) -> str:
        name, k = base, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


class Layout(NamedTuple):
    """A derivative graph ready to write (io/graph_text.terms_text): the file's name, description and inputs,
    the terms to write as nodes in order (constants among them: written where they are used), each term's
    name in the file (the writer names the others t1, t2... with `fresh`, as it comes to them), the outputs
    that are identity nodes of another term, and the outputs."""

    head: dict  # name, description, inputs: a graph file's values
    terms: Sequence[Any]  # the store's terms
    order: list[int]  # the needed terms that are not inputs, in topological order
    names: list[str | None]  # by term: its name in the file (an input or a node; an identifier), None for a constant
    aliases: list[tuple[str, int]]  # an output that is an input, a constant or a named node: identity of it
    outputs: list[str]
    fresh: _Fresh  # names not taken: t1, t2... for a term without a name (its `used`: every name in `names`)


def layout(
    plan: Plan, d: Derivative, output: str, wrt: Sequence[str], order: int = 1, extra: Sequence[tuple[str, int]] = ()
) -> Layout:
    """The derivative as a graph file: the graph's own inputs, the nodes the derivatives need (the graph's own
    under their names, the others t1, t2...), and the derivatives as outputs. Names never collide: a taken one
    gets _2, _3..."""
    terms = d.terms.terms
    fresh = _Fresh(plan.names)
    names: list[str | None] = [None] * len(terms)
    for t, i in zip(d.inputs, plan.inputs):
        names[t] = i.name
    for n, t in extra:  # inputs the derivative adds (an HVP's vector)
        names[t] = n
        fresh.used.add(n)
    for n, t in d.nodes.items():
        if names[t] is None:
            # an expression's inner node (`y.2`) becomes a name a file can hold (`y_2`)
            names[t] = n if n.isidentifier() else fresh(_safe(n))
    need, written = _needed(terms, [t for _, t in d.outputs])
    out_names = [fresh(n) for n, _ in d.outputs]
    aliases: list[tuple[str, int]] = []
    for name, (_, t) in zip(out_names, d.outputs):
        if names[t] is not None or terms[t][OP] == "const":
            aliases.append((name, t))
        else:
            names[t] = name
    used = fresh.used
    for n, a in d.adjoints.items():
        if names[a] is None and need[a] and terms[a][OP] != "const":
            name = f"d_{output}_d_{n}"
            if not name.isidentifier():
                name = _safe(name)
            names[a] = fresh(name) if name in used else used.add(name) or name
    what = "d" if order == 1 else f"d{order}"
    head = {
        "name": f"{plan.spec.name}-derivative" + (f"-{order}" if order > 1 else ""),
        "description": f"{what} {output} / d ({', '.join(wrt)}) of {plan.spec.name}, by cgcalc derive",
        "inputs": _inputs(plan, d.terms, extra),
    }
    return Layout(head, terms, written, names, aliases, out_names, fresh)


def _needed(terms: Sequence, outputs: Sequence[int]) -> tuple[list[bool], list[int]]:
    """Which terms the outputs need, and those that are not inputs in topological order (the nodes to write):
    ids are topological, so one pass downwards marks them all."""
    need = [False] * len(terms)
    for t in outputs:
        need[t] = True
    written = []
    for t in range(max(outputs, default=-1), -1, -1):
        if need[t]:
            term = terms[t]
            for a in term[ARGS]:
                need[a] = True
            if term[OP] != "input":
                written.append(t)
    written.reverse()
    return need, written


def _inputs(plan: Plan, g: Terms, extra: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The graph's inputs as its file wrote them (`grad: false` kept), and the added ones (an HVP's vector) at 0."""
    inputs: dict[str, Any] = {}
    for inp in plan.inputs:
        v = nested(inp.value, inp.shape) if inp.shape else inp.value
        inputs[inp.name] = v if inp.grad else {"value": v, "grad": False}
    for n, t in extra:
        shape = g.shape(t)
        inputs[n] = nested([0.0] * count(shape), shape) if shape else 0.0
    return inputs


def hvp_terms(plan: Plan, wrt: Sequence[str], output: str) -> tuple[Derivative, list[tuple[str, int]]]:
    """The Hessian-vector product as terms: new inputs v_x (one per x in wrt, of x's shape) and outputs
    hvp_x = d/dx sum_y <dO/dy, v_y>: one derivative of a scalar, however many inputs."""
    wrt, output = checked(plan, wrt, output, what="a Hessian")
    d = derive(plan, wrt, output)
    g = d.terms
    names = [i.name for i in plan.inputs]
    w_terms = [d.inputs[names.index(w)] for w in wrt]
    taken = set(plan.names)
    vs = []
    for w, wt in zip(wrt, w_terms):
        n, k = f"v_{w}", 2
        while n in taken:
            n, k = f"v_{w}_{k}", k + 1
        taken.add(n)
        vs.append((n, g.input(n, g.shape(wt))))
    dot = None
    for (_, grad), (_, v) in zip(d.outputs, vs):
        p = g.mul(grad, v)
        if g.shape(p):
            p = g.op("sum", p)
        dot = p if dot is None else g.add(dot, p)
    hv = g.gradients(dot, w_terms)
    return Derivative(g, d.inputs, d.nodes, [(f"hvp_{w}", t) for w, t in zip(wrt, hv)], {}), vs


def element_labels(names: Sequence[str], shapes: Sequence[Shape]) -> list[str]:
    """x for a scalar, W[0,1] for each element of an array (C order)."""
    import itertools

    out = []
    for n, shape in zip(names, shapes):
        if not shape:
            out.append(n)
        else:
            out += [f"{n}[{','.join(map(str, ix))}]" for ix in itertools.product(*map(range, shape))]
    return out
