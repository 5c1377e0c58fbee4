"""The store derivative graphs are built in: a hash-consed DAG of terms that simplifies as it builds.

Each op's backward is its layer's `backward_ops(g, dout, out, ins, attrs)`: the same rule as its numeric `backward`,
written with the store's ops instead of numbers. The store simplifies as it builds — constants folded, x * 1 →
x, x + 0 → x, x * 0 → 0, zero gradients dropped, -(-x) → x, shape ops of a shape they already have dropped —
and shares equal terms (hash-consing; add and mul, being commutative, with their operands in a fixed order),
so that derivative graphs stay small (the rules: rewrite.py). `Terms.gradients` is reverse mode over the
store's own terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .attr_values import _frozen, file_attrs, thawed
from .base import Shape, broadcast_shapes
from .registry import LAYERS
from .rewrite import ARGS, ATTRS, COMMUTATIVE, NAME, OP, SHAPE, VALUE, Rewrites, Term, _power_of_two

__all__ = ["ARGS", "ATTRS", "NAME", "OP", "SHAPE", "VALUE", "Term", "Terms", "count"]

# unary ops with a rule of _simplified for a term that is not a constant (the others' are made by _plain1)
_RULED = frozenset(("neg", "identity", "reshape", "sum_to", "broadcast_to"))


class Terms(Rewrites):
    """A hash-consed DAG of ops. Ids are in topological order: a term's arguments are made before it."""

    def __init__(self, limits: bool = True) -> None:
        # backward's special cases (pow's limits at x = 0) written as ops; without: the textbook formulas (the
        # formulas `run --formulas` prints)
        self.limits = limits
        self.terms: list[Term] = []
        self.values: list[float | None] = []  # by term: value(t), kept for speed
        # by term: no rule of _algebra looks at it: no value, and neither -a nor c * a (c a power of two)
        self.plain: list[bool] = []
        self._ids: dict[tuple, int] = {}
        self._consts: dict[float, int] = {}  # a nonzero constant's term, by value
        self.grad_false: set[int] = set()

    # --- making terms ----------------------------------------------------------------------------

    def _intern(self, term: Term) -> int:
        op, args, attrs, _, value, name = term
        # a term is its own key (its shape follows from the rest); a constant's value by its repr (-0.0 is not 0.0)
        key = (op, args, attrs, name, repr(value)) if op == "const" else term
        t = self._ids.get(key)
        if t is None:
            t = self._ids[key] = len(self.terms)
            self.terms.append(term)
            if op == "const":
                self.values.append(value)
            elif op == "broadcast_to" and name is None:
                self.values.append(self.values[args[0]])
            else:
                self.values.append(None)
            self.plain.append(self.values[t] is None and op != "neg" and (op != "mul" or self._scaled(t)[1] == t))
        return t

    def input(self, name: str, shape: Shape, grad: bool = True) -> int:
        t = self._intern(("input", (), (), shape, None, name))
        if not grad:
            self.grad_false.add(t)
        return t

    def const(self, v: float) -> int:
        v = float(v)
        t = self._consts.get(v) if v else None  # (0.0 and -0.0 are equal keys: they go by _intern's repr)
        if t is None:
            t = self._intern(("const", (), (), (), v, None))
            if v:
                self._consts[v] = t
        return t

    def shape(self, t: int) -> Shape:
        return self.terms[t][SHAPE]

    def value(self, t: int) -> float | None:
        """The number every element of t is, when t is a constant (or a constant broadcast); else None."""
        return self.values[t]

    def full(self, v: float, shape: Shape) -> int:
        c = self.const(v)
        return c if not shape else self.op("broadcast_to", c, shape=shape)

    def nodes(self, steps: Sequence[tuple], slots: list[int], shapes: Sequence[Shape]) -> None:
        """The nodes of the graph itself, as written (a plan's steps: (slot, name, op, cls, args, attrs, needs)
        rows, of the shapes the compiler found), each one's term put in `slots` at its slot (its arguments'
        read there): never rewritten or merged with another (each keeps its own gradient, and its name in a
        derivative graph). One loop without a call per node: derive of 10,000 nodes."""
        # not interned: a derivative's own terms are nameless, so none is ever looked up as equal to a node
        terms, values, plain = self.terms, self.values, self.plain
        for slot, name, op, cls, args, attrs, _ in steps:
            n = len(args)  # (one and two arguments, the usual, by subscript: faster than a call)
            ins = (
                (slots[args[0]], slots[args[1]])
                if n == 2
                else (slots[args[0]],)
                if n == 1
                else tuple(slots[a] for a in args)
            )
            frozen = tuple(sorted((k, _frozen(v)) for k, v in file_attrs(cls, attrs).items())) if attrs else ()
            slots[slot] = t = len(terms)
            terms.append((op, ins, frozen, shapes[slot], None, name))
            values.append(None)
            plain.append(op != "neg" and (op != "mul" or self._scaled(t)[1] == t))

    def op(self, op: str, *args: int, **attrs: Any) -> int:
        """The term op(args) with these attributes (in the file's form), simplified, shared if it exists."""
        cls = LAYERS[op]
        if len(args) == 1 and not attrs and cls.elementwise and op not in _RULED and self.values[args[0]] is None:
            return self._plain1(op, args[0])  # the common case of a unary op: no rule applies
        terms = self.terms
        shape = terms[args[0]][SHAPE]
        n = len(args)  # an elementwise op's output has its inputs' shape when they all have one (up to 3 inputs)
        same = n == 1 or terms[args[1]][SHAPE] == shape and (n == 2 or terms[args[2]][SHAPE] == shape)
        if not (cls.elementwise and same):
            shape = cls.layout([terms[a][SHAPE] for a in args], cls.check_attrs(attrs)).out
        values = self.values
        vals = [values[a] for a in args]
        simple = self._simplified(op, args, attrs, shape, vals)
        if simple is not None:
            return simple
        if op in COMMUTATIVE and self._order(args[0]) > self._order(args[1]):
            args = (args[1], args[0])  # a constant first, else the older term
        frozen = tuple(sorted((k, _frozen(v)) for k, v in attrs.items())) if attrs else ()
        return self._intern((op, args, frozen, shape, None, None))

    def expand(self, t: int, shape: Shape) -> int:
        return t if self.shape(t) == shape else self.op("broadcast_to", t, shape=shape)

    # --- the arithmetic backward_ops is written with --------------------------------------------------

    def add(self, a: int, b: int) -> int:
        plain = self.plain
        if plain[a] and plain[b] and a != b:
            return self._made("add", a, b) if a < b else self._made("add", b, a)
        return self._plain("add", a, b) if a != b and self._unremarkable(a, b) else self.op("add", a, b)

    def sub(self, a: int, b: int) -> int:
        plain = self.plain
        if plain[b] and a != b and (plain[a] or self.values[a]):  # (and c - b: sigmoid's and tanh's 1 - y)
            return self._made("sub", a, b)
        return self._plain("sub", a, b) if a != b and self._unremarkable(a, b) else self.op("sub", a, b)

    def mul(self, a: int, b: int) -> int:
        plain = self.plain
        if plain[a] and plain[b]:
            return self._made("mul", a, b) if a <= b else self._made("mul", b, a)
        return self._plain("mul", a, b) if self._unremarkable(a, b, factor=True) else self.op("mul", a, b)

    def div(self, a: int, b: int) -> int:
        plain, values = self.plain, self.values
        if plain[a] and plain[b]:
            return self._made("div", a, b)
        if values[a] == 0 or values[b] == 1:
            return self.op("div", a, b)
        return self._plain("div", a, b) if self._unremarkable(a, b) else self.op("div", a, b)

    def neg(self, a: int) -> int:
        return self.op("neg", a)

    def _unremarkable(self, a: int, b: int, factor: bool = False) -> bool:
        """No rule of _algebra applies to a op b (the common case, made without the general path: derive of a
        large graph makes tens of thousands of these): no minus sign, no scaled term, and no constant, or one
        constant on one side that is not 0 (for a factor: nor 1 or -1, of a term that is no product; div's 0 /
        x and x / 1 its caller leaves to the general path)."""
        values, plain = self.values, self.plain
        va, vb = values[a], values[b]
        if (va is None and not plain[a]) or (vb is None and not plain[b]):
            return False  # -a, or c * a
        if va is None and vb is None:
            return True
        if va is not None and vb is not None:
            return False
        c, x = (va, b) if vb is None else (vb, a)
        if factor:
            return c != 0 and c != 1 and c != -1 and self.terms[x][OP] != "mul"
        return c != 0

    def _plain(self, op: str, a: int, b: int) -> int:
        """a op b with one constant and no rule that applies: add and mul with a constant first, else the older
        term first (as `op` orders them)."""
        terms, values = self.terms, self.values
        if op in COMMUTATIVE:
            ca, cb = terms[a][OP] == "const", terms[b][OP] == "const"
            if (a > b) if ca == cb else cb:
                a, b = b, a
        t = self._made(op, a, b)
        if op == "mul" and t == len(terms) - 1:  # new: a scaled term (c * x with c a power of two)?
            c = values[a]
            self.plain[t] = not (c is not None and not terms[a][SHAPE] and _power_of_two(c))
        return t

    def _made(self, op: str, a: int, b: int) -> int:
        """The term a op b as it is (its arguments in order), shared if it exists."""
        terms = self.terms
        n = len(terms)
        sa, sb = terms[a][SHAPE], terms[b][SHAPE]
        term = (op, (a, b), (), sa if sa == sb else broadcast_shapes(sa, sb), None, None)
        t = self._ids.setdefault(term, n)
        if t == n:
            terms.append(term)
            self.values.append(None)
            self.plain.append(True)
        return t

    def _plain1(self, op: str, a: int) -> int:
        terms = self.terms
        n = len(terms)
        term = (op, (a,), (), terms[a][SHAPE], None, None)
        t = self._ids.setdefault(term, n)
        if t == n:
            terms.append(term)
            self.values.append(None)
            self.plain.append(True)
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
                    for a in terms[t][ARGS]:
                        if depends[a]:
                            depends[t] = True
                            break
        self.adjoints = {}
        if not depends[out]:
            return [self.full(0.0, self.shape(w)) for w in wrt]
        adjl: list = [None] * n  # by term: its adjoint so far (a list: faster than the dict)
        adjl[out] = self.full(1.0, self.shape(out))
        first = [out]  # the terms in the order they got one (the dict's order)
        add = self.add
        rules: dict[str, tuple] = {}  # by op: its layer's backward_ops and attribute defaults
        for t in range(out, -1, -1):
            g = adjl[t]
            if g is None or not depends[t]:
                continue
            op, args, attrs, _, _, _ = terms[t]
            rule = rules.get(op)
            if rule is None:
                if op == "input" or op == "const":
                    continue
                rule = rules[op] = LAYERS[op].backward_ops, LAYERS[op].attr_defaults
            backward_ops, checked = rule
            if attrs:
                checked = LAYERS[op].check_attrs({k: thawed(v) for k, v in attrs})
            ds, i = backward_ops(self, g, t, args, checked), 0
            for a in args:  # (with ds[i], not a zip: measured, the terms made in 7% less time on 10,000 nodes)
                d = ds[i]
                i += 1
                if d is None or not depends[a]:
                    continue
                if terms[d][SHAPE] != terms[a][SHAPE]:
                    d = self.sum_to(d, terms[a][SHAPE])
                if values[d] == 0:
                    continue  # dropped: a zero gradient adds nothing
                old = adjl[a]
                if old is None:
                    adjl[a] = d
                    first.append(a)
                else:
                    adjl[a] = add(old, d)
        self.adjoints = adj = {a: adjl[a] for a in first}
        return [adj[w] if w in adj else self.full(0.0, self.shape(w)) for w in wrt]


def count(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
