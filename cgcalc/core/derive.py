"""The derivative of a graph, as a graph: reverse mode written in ops (DeZero's create_graph=True, kept small).

A `Terms` store holds one DAG: the graph's inputs, its nodes, and the nodes that compute derivatives. Each op's
backward is its layer's `backward_ops(g, dout, out, ins, attrs)`: the same rule as its numeric `backward`,
written with the store's ops instead of numbers. The store simplifies as it builds — constants folded, x * 1 →
x, x + 0 → x, x * 0 → 0, zero gradients dropped, -(-x) → x, shape ops of a shape they already have dropped —
and shares equal terms (hash-consing; add and mul, being commutative, with their operands in a fixed order),
so that derivative graphs stay small: the 8th derivative of tanh(x) has 200 nodes where DeZero's has 2,587.

Differentiating again is differentiating the store's own terms: order N is N passes over one store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import UsageError, suggest
from .base import Shape, broadcast_shapes, fmt_shape
from .compiler import Plan
from .registry import LAYERS

COMMUTATIVE = frozenset(("add", "mul"))
# ops that give zeros when an input is zero (for getitem_grad, its only input)
_OF_ZERO = frozenset(
    ("matmul", "neg", "sum", "mean", "max", "min", "step", "sign", "identity", "getitem", "getitem_grad")
)
_new = tuple.__new__  # a Term without NamedTuple's Python-level __new__


class Term(NamedTuple):
    op: str  # "input", "const", or an op of LAYERS
    args: tuple[int, ...]
    attrs: tuple  # (key, value) pairs in the file's form, lists as tuples (hashable)
    shape: Shape
    value: float | None = None  # of a constant
    name: str | None = None  # of an input


class FrozenMapping(tuple):
    """A mapping in an attribute (getitem's slice {start: 1, stop: 3}), frozen: its (key, value) pairs."""

    __slots__ = ()


def _frozen(v: Any) -> Any:
    if isinstance(v, dict):
        return FrozenMapping((k, _frozen(x)) for k, x in v.items())
    return tuple(_frozen(x) for x in v) if isinstance(v, (list, tuple)) and not isinstance(v, FrozenMapping) else v


def _thawed(v: Any) -> Any:
    if isinstance(v, FrozenMapping):
        return {k: _thawed(x) for k, x in v}
    return [_thawed(x) for x in v] if isinstance(v, tuple) else v


def _file_attrs(cls, attrs: dict) -> dict:
    """A layer's checked attributes back in the form a file writes them, defaults left out."""
    out = {}
    for k, v in attrs.items():
        if k in cls.attr_defaults and v == cls.attr_defaults[k]:
            continue
        out[k] = _thawed(_frozen(v))
    return out


class Terms:
    """A hash-consed DAG of ops. Ids are in topological order: a term's arguments are made before it."""

    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.values: list[float | None] = []  # by term: value(t), kept for speed
        self.kinds: list[bool] = []  # by term: is it -a or c * a (c a power of two), which _algebra rewrites?
        self._ids: dict[tuple, int] = {}
        self.grad_false: set[int] = set()

    # --- making terms ----------------------------------------------------------------------------

    def _intern(self, term: Term) -> int:
        op = term.op
        key = (op, term.args, term.attrs, term.name, repr(term.value)) if op == "const" else term[:3] + (term.name,)
        t = self._ids.get(key)
        if t is None:
            t = self._ids[key] = len(self.terms)
            self.terms.append(term)
            if op == "const":
                self.values.append(term.value)
            elif op == "broadcast_to" and term.name is None:
                self.values.append(self.values[term.args[0]])
            else:
                self.values.append(None)
            self.kinds.append(op == "neg" or (op == "mul" and self._scaled(t)[1] != t))
        return t

    def input(self, name: str, shape: Shape, grad: bool = True) -> int:
        t = self._intern(Term("input", (), (), shape, None, name))
        if not grad:
            self.grad_false.add(t)
        return t

    def const(self, v: float) -> int:
        return self._intern(Term("const", (), (), (), float(v)))

    def shape(self, t: int) -> Shape:
        return self.terms[t].shape

    def value(self, t: int) -> float | None:
        """The number every element of t is, when t is a constant (or a constant broadcast); else None."""
        return self.values[t]

    def full(self, v: float, shape: Shape) -> int:
        c = self.const(v)
        return c if not shape else self.op("broadcast_to", c, shape=shape)

    def node(self, name: str, op: str, args: Sequence[int], attrs: dict, shape: Shape) -> int:
        """A node of the graph itself, as written (of the shape the compiler found): never rewritten or merged
        with another (each keeps its own gradient, and its name in a derivative graph)."""
        frozen = tuple(sorted((k, _frozen(v)) for k, v in attrs.items())) if attrs else ()
        return self._intern(Term(op, tuple(args), frozen, shape, None, name))

    def op(self, op: str, *args: int, **attrs: Any) -> int:
        """The term op(args) with these attributes (in the file's form), simplified, shared if it exists."""
        cls = LAYERS[op]
        terms = self.terms
        shape = terms[args[0]].shape
        n = len(args)  # an elementwise op's output has its inputs' shape when they all have one (up to 3 inputs)
        same = n == 1 or terms[args[1]].shape == shape and (n == 2 or terms[args[2]].shape == shape)
        if not (cls.elementwise and same):
            shape = cls.layout([terms[a].shape for a in args], cls.check_attrs(attrs)).out
        values = self.values
        vals = [values[a] for a in args]
        simple = self._simplified(op, args, attrs, shape, vals)
        if simple is not None:
            return simple
        if op in COMMUTATIVE and self._order(args[0]) > self._order(args[1]):
            args = (args[1], args[0])  # a constant first, else the older term
        frozen = tuple(sorted((k, _frozen(v)) for k, v in attrs.items())) if attrs else ()
        return self._intern(Term(op, args, frozen, shape))

    def _order(self, t: int) -> tuple[bool, int]:
        return (self.terms[t].op != "const", t)

    def _scaled(self, t: int) -> tuple[float, int]:
        """(c, a) when t is c * a for a scalar constant c that is a power of two (or t is a: (1, t))."""
        term = self.terms[t]
        if term.op == "mul":
            c = self.value(term.args[0])
            if c is not None and not self.shape(term.args[0]) and _power_of_two(c):
                return c, term.args[1]
        return 1.0, t

    def _combined(self, a: int, b: int, sign: float) -> int | None:
        """c1 a + c2 a (sign 1) or c1 a - c2 a (sign -1) as (c1 +- c2) a: exact when c1, c2 are powers of
        two (both products are exact, and both sides round the same real number once)."""
        (c1, x), (c2, y) = self._scaled(a), self._scaled(b)
        if x != y:
            return None
        c = c1 + sign * c2
        if c - c1 != sign * c2:  # the coefficients' sum itself rounded: leave it
            return None
        return self.op("mul", self.const(c), x)

    def expand(self, t: int, shape: Shape) -> int:
        return t if self.shape(t) == shape else self.op("broadcast_to", t, shape=shape)

    def _simplified(self, op: str, args: tuple[int, ...], attrs: dict, shape: Shape, vals: list) -> int | None:
        if vals.count(None) == len(vals):  # the common case: no constant among the arguments
            if op in ("reshape", "sum_to", "broadcast_to", "identity") and self.terms[args[0]].shape == shape:
                return args[0]
            if op == "reshape" and self.terms[args[0]].op == "reshape":
                return self.op("reshape", self.terms[args[0]].args[0], **attrs)
            if op == "neg" and self.terms[args[0]].op == "neg":
                return self.terms[args[0]].args[0]
            return self._algebra(op, args, vals, shape)
        cls = LAYERS[op]
        if cls.elementwise and None not in vals:
            try:
                layer = cls(**cls.check_attrs(attrs)) if attrs else cls()  # (clip's bounds, leaky_relu's alpha)
                x = layer.forward(*vals)  # constant folding, with the layer's own float math
            except (ArithmeticError, ValueError):
                x = None
            if type(x) is float and math.isfinite(x):
                return self.full(x, shape)
        if op == "where" and vals[0] is not None:  # a constant condition picks one side
            return self.expand(args[1] if vals[0] != 0 else args[2], shape)
        if op in ("reshape", "sum_to", "broadcast_to", "identity") and self.shape(args[0]) == shape:
            return args[0]
        if op in ("reshape", "sum_to", "broadcast_to") and vals[0] is not None and self.terms[args[0]].op != "const":
            return self.full(vals[0] * (1.0 if op != "sum_to" else _ratio(self.shape(args[0]), shape)), shape)
        if op == "reshape" and self.terms[args[0]].op == "reshape":
            return self.op("reshape", self.terms[args[0]].args[0], **attrs)
        if op == "neg" and self.terms[args[0]].op == "neg":
            return self.terms[args[0]].args[0]
        if op in ("transpose", "getitem") and vals[0] is not None:
            return self.full(vals[0], shape)
        if op in ("concat", "stack") and len({repr(v) for v in vals}) == 1:  # every input one constant (not None)
            return self.full(vals[0], shape)
        return self._algebra(op, args, vals, shape)

    def _algebra(self, op: str, args: tuple[int, ...], vals: list, shape: Shape) -> int | None:
        """x + 0, x - 0, 0 - x, x * 1, x * 0, x * -1, x / 1, 0 / x, x ** 1, x ** 0, 0 @ x (IEEE aside: a 0
        that meets an inf or NaN would give NaN; a derivative graph treats 0 as the absence of a term); and
        minus signs moved outwards, so that they cancel and equal terms meet (exact: negation is)."""
        if op in ("add", "sub", "mul"):
            simple = getattr(self, "_" + op)(args[0], args[1], vals, shape)
            if simple is not None:
                return simple
        elif op == "div":
            if vals[1] == 1:
                return self.expand(args[0], shape)
            if vals[0] == 0:
                return self.full(0.0, shape)
        elif op == "pow":
            if vals[1] == 1:
                return self.expand(args[0], shape)
            if vals[1] == 0:
                return self.full(1.0, shape)
        elif op == "neg":
            inner = self.terms[args[0]]
            if inner.op == "sub":
                return self.op("sub", inner.args[1], inner.args[0])
            if inner.op == "mul" and self.value(inner.args[0]) is not None:
                return self.op("mul", self.const(-self.value(inner.args[0])), inner.args[1])
        if op in _OF_ZERO and 0 in vals:
            return self.full(0.0, shape)  # (a zero's step and sign are 0 too; sum, mean...: 0 of the reduced shape)
        return None

    def _negated(self, t: int) -> int | None:
        """a when t is -a."""
        term = self.terms[t]
        return term.args[0] if term.op == "neg" else None

    def _add(self, a: int, b: int, vals: list, shape: Shape) -> int | None:
        for y, vx in ((b, vals[0]), (a, vals[1])):
            if vx == 0:
                return self.expand(y, shape)
        na, nb = self._negated(a), self._negated(b)
        if na is not None and nb is not None:
            return self.neg(self.op("add", na, nb))  # -a + -b = -(a + b)
        if nb is not None:
            return self.op("sub", a, nb)
        if na is not None:
            return self.op("sub", b, na)
        return self._combined(a, b, 1.0)

    def _sub(self, a: int, b: int, vals: list, shape: Shape) -> int | None:
        if vals[1] == 0:
            return self.expand(a, shape)
        if vals[0] == 0:
            return self.expand(self.neg(b), shape)
        if a == b:
            return self.full(0.0, shape)
        combined = self._combined(a, b, -1.0)
        if combined is not None:
            return combined
        nb = self._negated(b)
        if nb is not None:
            return self.op("add", a, nb)  # a - -b = a + b
        na = self._negated(a)
        if na is not None:
            return self.neg(self.op("add", na, b))  # -a - b = -(a + b)
        return None

    def _mul(self, a: int, b: int, vals: list, shape: Shape) -> int | None:
        for y, vx in ((b, vals[0]), (a, vals[1])):
            if vx == 0:
                return self.full(0.0, shape)
            if vx == 1:
                return self.expand(y, shape)
            if vx == -1:
                return self.expand(self.neg(y), shape)
        na, nb = self._negated(a), self._negated(b)
        if na is not None or nb is not None:
            m = self.op("mul", a if na is None else na, b if nb is None else nb)
            return m if (na is None) == (nb is None) else self.neg(m)
        for x, y, vx in ((a, b, vals[0]), (b, a, vals[1])):
            inner = self.terms[y]
            if vx is not None and not self.shape(x) and inner.op == "mul":
                c = self.value(inner.args[0])
                if c is not None and not self.shape(inner.args[0]) and (_power_of_two(c) or _power_of_two(vx)):
                    return self.op("mul", self.const(vx * c), inner.args[1])  # c (d a) = (c d) a, exactly
        for x, y in ((a, b), (b, a)):
            c, inner = self._scaled(y)
            if inner != y and self.value(x) is None:
                return self.op("mul", self.const(c), self.op("mul", x, inner))  # x (2 a) = 2 (x a), exactly
        return None

    # --- the arithmetic backward_ops is written with --------------------------------------------------

    def add(self, a: int, b: int) -> int:
        return self._plain("add", a, b) if a != b and self._unremarkable(a, b) else self.op("add", a, b)

    def sub(self, a: int, b: int) -> int:
        return self._plain("sub", a, b) if a != b and self._unremarkable(a, b) else self.op("sub", a, b)

    def mul(self, a: int, b: int) -> int:
        return self._plain("mul", a, b) if self._unremarkable(a, b) else self.op("mul", a, b)

    def div(self, a: int, b: int) -> int:
        return self._plain("div", a, b) if self._unremarkable(a, b) else self.op("div", a, b)

    def neg(self, a: int) -> int:
        return self.op("neg", a)

    def _unremarkable(self, a: int, b: int) -> bool:
        """No rule of _algebra applies to a op b: no constant, no minus sign, no scaled term (the common case,
        made without the general path: derive of a large graph makes tens of thousands of these)."""
        values, kinds = self.values, self.kinds
        return values[a] is None and values[b] is None and not kinds[a] and not kinds[b]

    def _plain(self, op: str, a: int, b: int) -> int:
        terms = self.terms
        sa, sb = terms[a].shape, terms[b].shape
        shape = sa if sa == sb else broadcast_shapes(sa, sb)
        if a > b and op in COMMUTATIVE:
            a, b = b, a
        key = (op, (a, b), (), None)
        t = self._ids.get(key)
        if t is None:
            t = self._ids[key] = len(terms)
            terms.append(_new(Term, (op, (a, b), (), shape, None, None)))
            self.values.append(None)
            self.kinds.append(op == "mul" and self._scaled(t)[1] != t)
        return t

    def sum_to(self, t: int, shape: Shape) -> int:
        """t reduced to `shape` (a broadcast input's gradient), or spread to it (a constant standing for an
        array)."""
        have = self.shape(t)
        if have == shape:
            return t
        if broadcast_shapes(have, shape) == shape:
            return self.op("broadcast_to", t, shape=shape)
        return self.op("sum_to", t, shape=shape)

    # --- reverse mode --------------------------------------------------------------------------------

    def gradients(self, out: int, wrt: Sequence[int], every: bool = False) -> list[int]:
        """d sum(out) / d w for each w in wrt, as terms (0 where out does not depend on w). The adjoint of
        every term on the way is left in `self.adjoints`; with `every`, of every term out depends on, whether
        or not it depends on a w (a node fed only by constants has a gradient too)."""
        terms, values = self.terms, self.values
        n = out + 1
        depends = [every] * n  # on some w in wrt: only those take a gradient
        if not every:
            for w in wrt:
                if w < n:
                    depends[w] = True
            for t in range(min(wrt, default=n), n):
                if not depends[t]:
                    for a in terms[t][1]:
                        if depends[a]:
                            depends[t] = True
                            break
        self.adjoints = {}
        if not depends[out]:
            return [self.full(0.0, self.shape(w)) for w in wrt]
        adj: dict[int, int] = {out: self.full(1.0, self.shape(out))}
        get = adj.get
        for t in range(out, -1, -1):
            g = get(t)
            if g is None or not depends[t]:
                continue
            op, args, attrs = terms[t][:3]
            if op == "input" or op == "const":
                continue
            cls = LAYERS[op]
            checked = cls.check_attrs({k: _thawed(v) for k, v in attrs}) if attrs else cls.attr_defaults
            for a, d in zip(args, cls.backward_ops(self, g, t, args, checked)):
                if d is None or not depends[a]:
                    continue
                shape = terms[a].shape
                if terms[d].shape != shape:
                    d = self.sum_to(d, shape)
                if values[d] == 0:
                    continue  # dropped: a zero gradient adds nothing
                old = get(a)
                adj[a] = d if old is None else self.add(old, d)
        self.adjoints = adj
        return [adj[w] if w in adj else self.full(0.0, self.shape(w)) for w in wrt]


def _power_of_two(x: float) -> bool:
    m, _ = math.frexp(x)
    return abs(m) == 0.5


def _count(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _ratio(have: Shape, shape: Shape) -> float:
    """How many elements of `have` sum into each of `shape`'s (sum_to of a constant)."""
    n = 1
    for d in have:
        n *= d
    for d in shape:
        n //= d if d else 1
    return float(n)


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


def plan_terms(plan: Plan) -> tuple[Terms, list[int], dict[str, int]]:
    """The graph's inputs and nodes as terms, each node as it is written."""
    g = Terms()
    slots: list[int] = []
    for inp in plan.inputs:
        slots.append(g.input(inp.name, inp.shape, inp.grad))
    slots += [-1] * len(plan.steps) + [g.const(c) for c in plan.constants]
    for st in plan.steps:
        attrs = _file_attrs(st.cls, st.attrs) if st.attrs else {}
        slots[st.slot] = g.node(st.name, st.op, [slots[a] for a in st.args], attrs, plan.shapes[st.slot])
    nodes = {plan.names[s]: slots[s] for s in range(plan.n_named)}
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
                by_term = {t: n for n, t in reversed(list(nodes.items()))}
                adjoints = {by_term[t]: a for t, a in g.adjoints.items() if t in by_term}
        level = nxt
    prefix = "d" if order == 1 else f"d{order}"
    outputs = [(_safe(f"{prefix}_{output}_" + "_".join(f"d_{w}" for w in ws)), t) for ws, t in level]
    return Derivative(g, inputs, nodes, outputs, adjoints)


def _safe(name: str) -> str:
    """A name a file can hold: an expression's inner node `y.2` becomes `y_2`."""
    return name if name.isidentifier() else re.sub(r"\W", "_", name)


def _nested(flat: Any, shape: Shape) -> Any:
    if not shape:
        return flat
    flat = list(flat)
    for n in reversed(shape[1:]):
        flat = [flat[i : i + n] for i in range(0, len(flat), n)] if n else [[] for _ in range(len(flat))]
    return flat if shape[0] else []


def to_document(
    plan: Plan, d: Derivative, output: str, wrt: Sequence[str], order: int = 1, extra: Sequence[tuple[str, int]] = ()
) -> dict:
    """The derivative as a graph file's values (name, description, inputs, nodes, outputs): the graph's own
    inputs, the nodes the derivatives need (the graph's own under their names), and the derivatives as
    outputs. Names never collide: a taken one gets _2, _3..."""
    g, terms = d.terms, d.terms.terms
    used: set[str] = set(plan.names)
    name_of: dict[int, str] = {t: i.name for t, i in zip(d.inputs, plan.inputs)}
    name_of.update({t: n for n, t in extra})  # inputs the derivative adds (an HVP's vector)

    def fresh(base: str) -> str:
        if base not in used:
            used.add(base)
            return base
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        return name

    for n, t in d.nodes.items():
        if t not in name_of:
            # an expression's inner node (`y.2`) becomes a name a file can hold (`y_2`)
            name_of[t] = n if n.isidentifier() else fresh(_safe(n))

    # which terms the outputs need: ids are topological, so one pass downwards marks them all
    need = [False] * len(terms)
    for _, t in d.outputs:
        need[t] = True
    for t in range(len(terms) - 1, -1, -1):
        if need[t]:
            for a in terms[t].args:
                need[a] = True
    out_names = [fresh(n) for n, _ in d.outputs]
    aliases: list[tuple[str, int]] = []  # an output that is an input, a constant or a named node: identity
    for name, (_, t) in zip(out_names, d.outputs):
        if t in name_of or terms[t].op == "const":
            aliases.append((name, t))
        else:
            name_of[t] = name
    for n, a in d.adjoints.items():
        if a not in name_of and need[a] and terms[a].op != "const":
            name_of[a] = fresh(_safe(f"d_{output}_d_{n}"))
    refs: list[Any] = [None] * len(terms)  # what a reference to a term writes: its name, or a constant's value
    for t, n in name_of.items():
        refs[t] = n
    k = 0
    nodes: dict[str, dict] = {}
    for t in range(len(terms)):
        if not need[t]:
            continue
        op, args, attrs = terms[t][:3]
        if op == "const":
            refs[t] = terms[t].value
            continue
        if op == "input":
            continue
        name = refs[t]
        if name is None:
            k += 1
            name = refs[t] = fresh(f"t{k}")
        entry = {"op": op, "in": [refs[a] for a in args]}
        if attrs:
            entry.update({key: _thawed(v) for key, v in attrs})
        nodes[name] = entry
    for name, t in aliases:
        nodes[name] = {"op": "identity", "in": [refs[t] if terms[t].op != "const" else terms[t].value]}
    inputs: dict[str, Any] = {}
    for inp in plan.inputs:
        v = _nested(inp.value, inp.shape) if inp.shape else inp.value
        inputs[inp.name] = v if inp.grad else {"value": v, "grad": False}
    for n, t in extra:
        shape = g.shape(t)
        inputs[n] = _nested([0.0] * _count(shape), shape) if shape else 0.0
    what = "d" if order == 1 else f"d{order}"
    return {
        "name": f"{plan.spec.name}-derivative" + (f"-{order}" if order > 1 else ""),
        "description": f"{what} {output} / d ({', '.join(wrt)}) of {plan.spec.name}, by cgcalc derive",
        "inputs": inputs,
        "nodes": nodes,
        "outputs": out_names,
    }


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
