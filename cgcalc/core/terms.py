"""The store derivative graphs are built in: a hash-consed DAG of terms that simplifies as it builds.

Each op's backward is its layer's `backward_ops(g, dout, out, ins, attrs)`: the same rule as its numeric `backward`,
written with the store's ops instead of numbers. The store simplifies as it builds — constants folded, x * 1 →
x, x + 0 → x, x * 0 → 0, zero gradients dropped, -(-x) → x, shape ops of a shape they already have dropped —
and shares equal terms (hash-consing; add and mul, being commutative, with their operands in a fixed order),
so that derivative graphs stay small. `Terms.gradients` is reverse mode over the store's own terms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from .attr_values import _frozen, thawed
from .base import Shape, broadcast_shapes
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
        # not interned: a derivative's own terms are nameless, so none is ever looked up as equal to a node
        t = len(self.terms)
        self.terms.append(_new(Term, (op, tuple(args), frozen, shape, None, name)))
        self.values.append(None)
        self.kinds.append(op == "neg" or (op == "mul" and self._scaled(t)[1] != t))
        return t

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
            checked = cls.check_attrs({k: thawed(v) for k, v in attrs}) if attrs else cls.attr_defaults
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


def count(shape: Shape) -> int:
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
